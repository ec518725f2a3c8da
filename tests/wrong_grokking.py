"""Plausible wrong answers to the exercises of v7_capstone/01_grokking_through_the_lens; each check must reject them."""

from __future__ import annotations

import numpy as np
import torch

from manifold_course import lens
from manifold_course.capstone import grokking as G


def step_first_crossing(test_acc, steps, threshold=0.9):
    for a, s in zip(test_acc, steps):       # the first crossing, even if accuracy falls back later
        if a >= threshold:
            return s
    return None


def step_returns_index(test_acc, steps, threshold=0.9):
    s = G.grokking_step(test_acc, steps, threshold)
    return None if s is None else list(steps).index(s)


def step_strict_inequality(test_acc, steps, threshold=0.9):
    return G.grokking_step(np.asarray(test_acc) - 1e-12, steps, threshold)


def freqs_keep_zero(E, k):
    P = G.fourier_power(E)
    return [int(i) for i in np.argsort(-P, kind="stable")[:k]]


def freqs_power_per_row(E, k):
    E = np.asarray(E, dtype=np.float64)
    P = (np.abs(np.fft.rfft(E, axis=1)) ** 2).sum(axis=0)[1:]     # the transform over the wrong axis
    return [int(i) + 1 for i in np.argsort(-P, kind="stable")[:k]]


def freqs_weakest_first(E, k):
    return G.fourier_key_frequencies(E, k)[::-1]


def lip_mean_over_directions(f, x, eps=1e-2, n_dirs=16, generator=None):
    with torch.no_grad():
        base = f(x)
        total = torch.zeros(x.shape[0], dtype=torch.float64)
        for _ in range(n_dirs):
            u = torch.randn(x.shape, generator=generator, dtype=torch.float64)
            u = (u / u.flatten(1).norm(dim=1).reshape(-1, *([1] * (x.ndim - 1)))).to(x.dtype)
            total += (f(x + eps * u) - base).double().flatten(1).norm(dim=1) / eps
    return total / n_dirs


def lip_unnormalised_directions(f, x, eps=1e-2, n_dirs=16, generator=None):
    with torch.no_grad():
        base = f(x)
        best = torch.zeros(x.shape[0], dtype=torch.float64)
        for _ in range(n_dirs):
            u = torch.randn(x.shape, generator=generator, dtype=x.dtype)          # not unit vectors
            best = torch.maximum(best, (f(x + eps * u) - base).double().flatten(1).norm(dim=1) / eps)
    return best


def lip_one_for_the_batch(f, x, eps=1e-2, n_dirs=16, generator=None):
    est = lens.local_lipschitz(f, x, eps, n_dirs, generator=generator)
    return torch.full_like(est, float(est.mean()))                              # one number, not one per row


def para_no_centring_scale(E, delta=0.1):
    E = torch.as_tensor(np.asarray(E, dtype=np.float64))
    p = E.shape[0]
    s = E.pow(2).sum(1).mean().sqrt()                                           # the scale of the uncentred rows
    a = torch.arange(p)
    hits = total = 0
    for c in range(p):
        S = E[a] + E[(c - a) % p]
        d = torch.cdist(S, S)
        same = (a[:, None] == a[None, :]) | (a[:, None] == ((c - a) % p)[None, :])
        hits += int(((d <= delta * s) & ~same).sum())
        total += int((~same).sum())
    return hits / total


def para_counts_trivial(E, delta=0.1):
    E = torch.as_tensor(np.asarray(E, dtype=np.float64))
    p = E.shape[0]
    Ec = E - E.mean(0, keepdim=True)
    s = Ec.pow(2).sum(1).mean().sqrt()
    a = torch.arange(p)
    hits = total = 0
    for c in range(p):
        S = Ec[a] + Ec[(c - a) % p]
        d = torch.cdist(S, S)
        hits += int((d <= delta * s).sum())                                     # {a, b} = {c, d} included
        total += p * p
    return hits / total


def para_integer_sums(E, delta=0.1):
    E = torch.as_tensor(np.asarray(E, dtype=np.float64))
    p = E.shape[0]
    Ec = E - E.mean(0, keepdim=True)
    s = Ec.pow(2).sum(1).mean().sqrt()
    hits = total = 0
    for c in range(2 * p - 1):                                                  # a + b = c without "mod p"
        a = torch.arange(max(0, c - p + 1), min(p, c + 1))
        S = Ec[a] + Ec[c - a]
        d = torch.cdist(S, S)
        same = (a[:, None] == a[None, :]) | (a[:, None] == (c - a)[None, :])
        hits += int(((d <= delta * s) & ~same).sum())
        total += int((~same).sum())
    return hits / max(total, 1)


def int4_per_tensor(w):
    s = w.abs().max() / 7
    return torch.clamp(torch.round(w / s), -7, 7) * s


def int4_floor(w):
    amax = w.abs().amax(dim=1, keepdim=True)
    s = torch.where(amax > 0, amax / 7, torch.ones_like(amax))
    return torch.clamp(torch.floor(w / s), -7, 7) * s


def int4_unsigned_range(w):
    amax = w.abs().amax(dim=1, keepdim=True)
    s = torch.where(amax > 0, amax / 15, torch.ones_like(amax))
    return torch.clamp(torch.round(w / s), -15, 15) * s                       # 5 bits' worth of levels


def report_train_accuracy(model, data):
    r = G.capstone_report(model, data)
    r["acc"] = G.accuracy(model, data.x_train, data.y_train, data.p)
    return r


def report_unscaled_lipschitz(model, data):
    r = G.capstone_report(model, data)
    r["lipschitz"] = r["lipschitz"] * 1e-2                                    # forgot to divide by eps
    return r


def report_last_layer_only(model, data):
    r = G.capstone_report(model, data)
    r["id_per_layer"] = r["id_per_layer"][-1:]
    return r


def report_loop_of_all_tokens(model, data):
    r = G.capstone_report(model, data)
    r["h1_max_persistence"] = r["h1_max_persistence"] * 3                     # the loop of the all-token embedding
    return r


WRONG = {
    "grokking.grokking_step": [step_first_crossing, step_returns_index, step_strict_inequality],
    "grokking.fourier_key_frequencies": [freqs_keep_zero, freqs_power_per_row, freqs_weakest_first],
    "grokking.local_lipschitz": [lip_mean_over_directions, lip_unnormalised_directions, lip_one_for_the_batch],
    "grokking.parallelogram_score": [para_no_centring_scale, para_counts_trivial, para_integer_sums],
    "grokking.quantize_int4_per_channel": [int4_per_tensor, int4_floor, int4_unsigned_range],
    "grokking.capstone_report": [report_train_accuracy, report_unscaled_lipschitz, report_last_layer_only,
                                 report_loop_of_all_tokens],
}

"""Checks for chapter v7_capstone/01_grokking_through_the_lens (the capstone, grokking modular addition).

Embeddings with planted Fourier frequencies, accuracy curves with dips, linear maps with known spectral norms and
weights with outliers are drawn at grading time from the seeded generator. ``local_lipschitz`` is random, so it is
judged by properties (below the spectral norm of a linear map, and close to it with many directions);
``capstone_report`` is judged against the reference's report on the same small model, with tolerances.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

from manifold_course import lens
from manifold_course.capstone import grokking as G
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem
from manifold_course.seeding import torch_generator

CHAPTER = "v7_capstone/01_grokking_through_the_lens"


# ---------------------------------------------------------------- grokking_step


def _step_cases(rng):
    steps = list(range(0, 210, 10))                                     # 21 evaluations
    ramp = [0.05] * 8 + [0.3, 0.7, 0.95] + [1.0] * 10
    yield Case((ramp, steps, 0.9), label="a clean jump: first step at or above 0.9")
    dip = ramp[:15] + [0.6] + [1.0] * 5
    yield Case((dip, steps, 0.9), label="a dip below the threshold after the jump: the step after the dip")
    yield Case(([0.1] * 20 + [0.95], steps, 0.9), label="above only at the last evaluation: that step")
    yield Case(([0.1] * 21, steps, 0.9), label="never above: None")
    yield Case(([0.95] * 21, steps, 0.9), label="above from the start: the first step")
    yield Case(([0.5, 0.9, 0.89999, 0.9, 0.9], [0, 5, 10, 15, 20], 0.9), label=">= threshold counts as above")
    for n in (7, 30):
        acc = np.clip(np.cumsum(rng.uniform(-0.15, 0.3, n)), 0, 1)
        st = np.cumsum(rng.integers(1, 40, n)).tolist()
        yield Case((acc.round(4).tolist(), st, float(rng.choice([0.5, 0.8, 0.9]))), label=f"{n} random evaluations")


def _judge_step(got, expected, case):
    if expected is None:
        return None if got is None else f"test accuracy never stays above the threshold here: return None, got {got!r}"
    if got is None:
        return f"expected step {expected}, got None"
    return compare(got, expected, 0, 0, "the grokking step (a value from `steps`, not an index)")


# ---------------------------------------------------------------- Fourier key frequencies


def _planted(rng, p, D, freqs, amps, noise):
    a = np.arange(p)[:, None]
    E = noise * rng.standard_normal((p, D)) + 3.0 * rng.standard_normal((1, D))   # the mean row is frequency 0
    for f, amp in zip(freqs, amps):
        u, v = rng.standard_normal((2, D))
        E += amp * (np.cos(2 * np.pi * f * a / p) * u + np.sin(2 * np.pi * f * a / p) * v)
    return E


def _fourier_cases(rng):
    yield Case((_planted(rng, 23, 16, [5, 2], [3.0, 1.5], 0.05), 2),
               label="p = 23, frequencies 5 (strong) and 2 planted, a large mean row")
    yield Case((torch.tensor(_planted(rng, 31, 8, [14, 1, 9], [2.0, 1.2, 0.6], 0.02), dtype=torch.float32), 3),
               label="a float32 tensor, p = 31, frequencies 14, 1, 9")
    yield Case((_planted(rng, 12, 6, [6, 3], [2.0, 1.0], 0.01), 1), label="even p = 12: the Nyquist frequency 6 counts")
    for p in (17, 29, 40):
        fs = rng.choice(np.arange(1, p // 2 + 1), size=3, replace=False).tolist()
        yield Case((_planted(rng, p, int(rng.integers(3, 20)), fs, [2.5, 1.5, 0.8], 0.1), int(rng.integers(1, 4))),
                   label=f"p = {p}, planted frequencies {fs}")
    yield Case((rng.standard_normal((19, 10)), 4), label="a random embedding, p = 19")


def _judge_freqs(got, expected, case):
    try:
        have = [int(f) for f in got]
    except (TypeError, ValueError):
        return f"return a list of ints (frequencies), got {type(got).__name__}"
    if have != list(expected):
        return (f"expected the frequencies {list(expected)} (strongest first, 1..p//2, frequency 0 excluded), "
                f"got {have}")
    return None


# ---------------------------------------------------------------- local Lipschitz (property judged)


def _linear(A: np.ndarray) -> nn.Module:
    lin = nn.Linear(A.shape[1], A.shape[0], bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(A))
    return lin.requires_grad_(False)


def _lip_cases(rng):
    A = np.diag([3.0, 1.0, 0.1])
    yield Case((_linear(A), torch.as_tensor(rng.standard_normal((4, 3))), 1e-2, 300),
               label="f(x) = A x, A = diag(3, 1, 0.1), 300 directions: every estimate in [0.95 * 3, 3]")
    Q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    yield Case((_linear(2.5 * Q), torch.as_tensor(rng.standard_normal((3, 5))), 1e-3, 4),
               label="f(x) = 2.5 Q x with Q orthogonal: every direction gives exactly 2.5")
    B = rng.standard_normal((6, 4))
    yield Case((_linear(B), torch.as_tensor(rng.standard_normal((1, 4))), 1e-2, 400),
               label="a random 6 x 4 matrix, batch 1, 400 directions")
    x = torch.as_tensor(rng.standard_normal((4, 3)))
    x[0] = 0.0                                                          # tanh'(0) = 1: slope 2 in every direction
    x[1] = torch.as_tensor([4.0, -5.0, 6.0])                           # saturated: slope below 2 (1 - tanh(8)^2) ~ 5e-7
    yield Case((nn.Sequential(_linear(2 * np.eye(3)), nn.Tanh()), x, 1e-3, 8),
               label="tanh(2 x) at x = 0 (estimate 2), at a saturated point (about 0) and at two random points")


def _spectral_bound(case) -> tuple[float, float]:
    f = case.args[0]
    lin = f if isinstance(f, nn.Linear) else f[0]
    return float(torch.linalg.matrix_norm(lin.weight, ord=2)), case.args[3]


def _observe_lip(fn):
    def observed(f, x, eps, n_dirs):
        return fn(f, x.clone(), eps, n_dirs, generator=torch_generator(7))
    observed.__name__ = getattr(fn, "__name__", "local_lipschitz")
    return observed


def _judge_lip(got, expected, case):
    f, x, eps, n_dirs = case.args
    if not isinstance(got, torch.Tensor):
        return f"return a torch.Tensor of shape (N,) = ({x.shape[0]},), got {type(got).__name__}"
    if tuple(got.shape) != (x.shape[0],):
        return f"expected one estimate per row of x: shape ({x.shape[0]},), got {tuple(got.shape)}"
    g = got.detach().double()
    if not torch.isfinite(g).all():
        return "the estimates contain NaN or inf"
    norm, _ = _spectral_bound(case)
    if isinstance(f, nn.Sequential):
        if (g > norm * (1 + 1e-6)).any():
            return f"an estimate {float(g.max()):.4g} exceeds the Lipschitz constant {norm:.4g} of tanh(2 x)"
        if not 1.99 <= float(g[0]) <= 2.0 + 1e-6:
            return f"at x = 0 every direction changes tanh(2 x) at rate 2; your estimate for row 0 is {float(g[0]):.4g}"
        if float(g[1]) > 1e-3:
            return (f"row 1 sits where tanh is flat (slope ~ 1e-6), your estimate is {float(g[1]):.4g}: one estimate per "
                    f"row, each from that row's own change")
        return None
    if (g > norm * (1 + 1e-6)).any():
        return (f"an estimate {float(g.max()):.6g} exceeds ||A||_2 = {norm:.6g}: divide the change by eps (not by the "
                f"norm of a non-unit direction), and make each direction a unit vector")
    ratio = float(g.min() / norm)
    lo = 1 - 1e-6 if n_dirs <= 8 else 0.9
    if ratio < lo:
        return (f"with {n_dirs} random unit directions the max of ||f(x + eps u) - f(x)|| / eps should reach at least "
                f"{lo:.2f} ||A||_2 = {lo * norm:.4g}; your smallest estimate is {float(g.min()):.4g} (the max over "
                f"directions, not the mean; one estimate per row)")
    return None


# ---------------------------------------------------------------- parallelograms


def _circle(p, k, D, rng, noise=0.0):
    a = np.arange(p)[:, None]
    u, v = rng.standard_normal((2, D))
    return np.cos(2 * np.pi * k * a / p) * u + np.sin(2 * np.pi * k * a / p) * v + noise * rng.standard_normal((p, D))


def _para_cases(rng):
    p = 11
    yield Case((np.arange(p)[:, None] * np.ones((1, 3)), 0.1), label="a line E_a = a (1, 1, 1): only sums without wrap-around")
    yield Case((np.ones((7, 4)), 0.1), label="a constant embedding: every sum class is one point (score 1)")
    yield Case((_circle(13, 1, 5, rng), 0.2), label="a circle at frequency 1, p = 13")
    yield Case((torch.tensor(_circle(17, 3, 8, rng, 0.05), dtype=torch.float32), 0.3), label="a noisy float32 circle")
    yield Case((rng.standard_normal((9, 6)), 1.0), label="random, delta = 1")
    yield Case((rng.standard_normal((14, 3)), 0.5), label="random, even p = 14")


# ---------------------------------------------------------------- INT4 per channel


def _int4_cases(rng):
    W = torch.as_tensor(rng.standard_normal((6, 10)), dtype=torch.float32)
    yield Case((W,), label="a random 6 x 10 float32 weight")
    W2 = torch.as_tensor(rng.standard_normal((5, 9)), dtype=torch.float32)
    W2[1] = 0.0
    W2[3, 4] = 40.0
    yield Case((W2,), label="a zero row (scale 1, output 0) and a row with an outlier")
    yield Case((torch.as_tensor(rng.standard_normal((1, 33))),), label="one output channel, float64")
    yield Case((torch.as_tensor(rng.standard_normal((24, 32)), dtype=torch.float32) * 0.02,), label="an embedding-like 24 x 32")
    yield Case((torch.tensor([[-7.0, 3.5, 0.5, 7.0], [1.0, -1.0, 0.25, 0.0]]),), label="exact grid points and ties")


def _judge_int4(got, expected, case):
    (w,) = case.args
    if not isinstance(got, torch.Tensor):
        return f"return the dequantised weight as a torch.Tensor, got {type(got).__name__}"
    if got.shape != w.shape:
        return f"expected shape {tuple(w.shape)} (the dequantised weight), got {tuple(got.shape)}"
    if got.dtype != w.dtype:
        return f"return the same dtype as the weight ({w.dtype}), got {got.dtype}"
    amax = w.abs().amax(dim=1, keepdim=True)
    s = torch.where(amax > 0, amax / 7, torch.ones_like(amax))
    if not torch.isfinite(got).all():
        return "the output has NaN or inf (a zero row: use scale 1 there)"
    levels = got / s
    off = (levels - levels.round()).abs() > 1e-4
    if off.any() or (levels.abs() > 7 + 1e-4).any():
        return ("every value must be s_i * q with q an integer in [-7, 7] and s_i = max_j |w_ij| / 7 per row "
                "(symmetric INT4, one scale per output channel)")
    wrong = (got - expected).abs() > 1e-6 * s
    near_tie = ((w / s) - (w / s).floor() - 0.5).abs() < 1e-5       # rounding of an exact .5 may differ by an ulp
    if (wrong & ~near_tie).any():
        i, j = [int(t) for t in torch.nonzero(wrong & ~near_tie)[0]]
        return (f"entry ({i}, {j}): w = {float(w[i, j]):.6g} should become {float(expected[i, j]):.6g}, got "
                f"{float(got[i, j]):.6g} (round to nearest, not floor; clamp to [-7, 7])")
    return None


# ---------------------------------------------------------------- the capstone report


@lru_cache(maxsize=None)
def _report_model(trained: bool):
    cfg = G.GrokConfig(p=11, frac=0.6, d_model=16, n_layers=1, n_heads=2, eval_every=1000)
    data = G.modular_addition_split(cfg.p, cfg.frac, seed=3)
    model = G.make_model(cfg, seed=3)
    if trained:
        G.train_grokking(model, data, "adamw", cfg, steps=60)
    return model.eval(), data


def _report_cases(rng):
    for trained in (False, True):
        model, data = _report_model(trained)
        yield Case((model, data), label=("the small reference GPT (p = 11, D = 16, 1 layer) " +
                                         ("after 60 AdamW steps (memorising)" if trained else "at initialisation")))


def _judge_report(got, expected, case):
    keys = ("acc", "id_per_layer", "h1_max_persistence", "lipschitz", "acc_int4")
    if not isinstance(got, dict):
        return f"return a dict with keys {keys}, got {type(got).__name__}"
    missing = [k for k in keys if k not in got]
    if missing:
        return f"the report lacks the key(s) {missing}"
    for k in ("acc", "h1_max_persistence", "lipschitz", "acc_int4"):
        problem = float_problem(got[k], f"report[{k!r}]")
        if problem:
            return problem
    if abs(got["acc"] - expected["acc"]) > 1e-9:
        return (f"acc: expected the test accuracy {expected['acc']:.4f} (argmax of the answer logits over the residues, "
                f"on data.x_test), got {got['acc']:.4f}")
    ids = got["id_per_layer"]
    if not isinstance(ids, (list, tuple)) or len(ids) != len(expected["id_per_layer"]):
        return (f"id_per_layer: one TwoNN dimension per residual-stream layer (embedding, then each block): "
                f"{len(expected['id_per_layer'])} numbers")
    for i, (g, e) in enumerate(zip(ids, expected["id_per_layer"])):
        if float_problem(g) or not 0.6 * e <= g <= 1.6 * e:
            return (f"id_per_layer[{i}] = {g!r} is far from the reference {e:.3g} (TwoNN of the answer-position "
                    f"residual stream over all p^2 inputs)")
    e = expected["h1_max_persistence"]
    if not 0.6 * e <= got["h1_max_persistence"] <= 1.6 * e:
        return (f"h1_max_persistence = {got['h1_max_persistence']:.4g}, the reference gives {e:.4g}: the longest H1 bar "
                f"of the p residue embeddings (rows 0..p-1 of tok_emb)")
    e = expected["lipschitz"]
    if not 0.5 * e <= got["lipschitz"] <= 1.5 * e:
        return (f"lipschitz = {got['lipschitz']:.4g}, the reference gives {e:.4g}: the median over test inputs of "
                f"max_u ||logits(emb + eps u) - logits(emb)|| / eps, perturbing the (3, D) token embeddings")
    if abs(got["acc_int4"] - expected["acc_int4"]) > 0.1:
        return (f"acc_int4 = {got['acc_int4']:.4f}, the reference gives {expected['acc_int4']:.4f}: the test accuracy of "
                f"a copy with every 2-D weight INT4 per channel (the model itself must stay unchanged)")
    return None


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("grokking.grokking_step", "The grokking detector", cases=_step_cases, reference=G.grokking_step,
             judge=_judge_step),
    Exercise("grokking.fourier_key_frequencies", "Key Fourier frequencies of an embedding", cases=_fourier_cases,
             reference=G.fourier_key_frequencies, judge=_judge_freqs),
    Exercise("grokking.local_lipschitz", "A local Lipschitz estimate by random directions", cases=_lip_cases,
             reference=None, known_good=lens.local_lipschitz, adapter=_observe_lip, judge=_judge_lip),
    Exercise("grokking.parallelogram_score", "Liu et al.'s parallelogram index", cases=_para_cases,
             reference=G.parallelogram_score, rtol=1e-9, atol=1e-12),
    Exercise("grokking.quantize_int4_per_channel", "INT4 per output channel", cases=_int4_cases,
             reference=G.quantize_int4_per_channel, judge=_judge_int4),
    Exercise("grokking.capstone_report", "The capstone report of a model", cases=_report_cases,
             reference=G.capstone_report, judge=_judge_report, timeout=20.0),
]

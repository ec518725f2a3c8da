"""Plausible wrong answers to the exercises of v7_capstone/02_every_model_through_the_lens; each check must reject them."""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course import lens as L


# ---------------------------------------------------------------- coverage

def coverage_dead_means_zero_mean(A, threshold=0.0):
    out = L.coverage(A, threshold)
    A = torch.as_tensor(A).double()
    dead = float((A.mean(0) == 0).double().mean())          # a negative unit is not "dead" here
    return {"dead_fraction": dead, "coverage": 1 - dead, "entropy": out["entropy"]}


def coverage_entropy_unnormalised(A, threshold=0.0):
    out = dict(L.coverage(A, threshold))
    D = torch.as_tensor(A).shape[1]
    out["entropy"] = out["entropy"] * math.log(D) if D > 1 else 0.0   # nats, not divided by log D
    return out


def coverage_entropy_of_signed_mean(A, threshold=0.0):
    out = dict(L.coverage(A, threshold))
    A = torch.as_tensor(A).double()
    m = A.mean(0).clamp_min(0)                               # the signed mean, not the mean |a|
    D = A.shape[1]
    if D < 2 or float(m.sum()) <= 0:
        out["entropy"] = 0.0
    else:
        p = m / m.sum()
        p = p[p > 0]
        out["entropy"] = float(-(p * p.log()).sum() / math.log(D))
    return out


# ---------------------------------------------------------------- isotropy

def isotropy_uncentred(X):
    X = torch.as_tensor(X).double()
    U = X / X.norm(dim=1, keepdim=True)
    C = (U @ U.T).abs()
    n = len(U)
    out = L.isotropy(X, max_points=10**6)
    return {"mean_abs_cos": float((C.sum() - C.trace()) / (n * (n - 1))), "top_pc_fraction": out["top_pc_fraction"]}


def isotropy_keeps_diagonal(X):
    X = torch.as_tensor(X).double()
    Xc = X - X.mean(0)
    keep = Xc.norm(dim=1) > 0
    U = Xc[keep] / Xc[keep].norm(dim=1, keepdim=True)
    out = L.isotropy(X, max_points=10**6)
    return {"mean_abs_cos": float((U @ U.T).abs().mean()), "top_pc_fraction": out["top_pc_fraction"]}


def isotropy_top_pc_of_singular_values(X):
    X = np.asarray(torch.as_tensor(X).double())
    out = L.isotropy(X, max_points=10**6)
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    return {"mean_abs_cos": out["mean_abs_cos"], "top_pc_fraction": float(s[0] / s.sum())}   # sigma, not sigma^2


# ---------------------------------------------------------------- Bhattacharyya

def bhattacharyya_without_log(P, Q):
    P, Q = np.asarray(P, dtype=float), np.asarray(Q, dtype=float)
    return float(np.mean(1.0 - np.sqrt(P * Q).sum(1)))


def bhattacharyya_log_of_mean(P, Q):
    P, Q = np.asarray(P, dtype=float), np.asarray(Q, dtype=float)
    return float(-np.log(max(np.sqrt(P * Q).sum(1).mean(), 1e-12)))


def bhattacharyya_summed_over_samples(P, Q):
    P, Q = np.asarray(P, dtype=float), np.asarray(Q, dtype=float)
    return float(np.sum(-np.log(np.maximum(np.sqrt(P * Q).sum(1), 1e-12))))


# ---------------------------------------------------------------- InPCA

def inpca_signed_sort(D):
    lam, X = L.inpca(D)
    order = np.argsort(-lam, kind="stable")                  # by signed value: negative eigenvalues go last
    return lam[order], X[:, order]


def inpca_no_half(D):
    lam, X = L.inpca(np.asarray(D) * 2.0)                    # forgot the -1/2
    return lam, X


def inpca_not_centred(D):
    D = np.asarray(D, dtype=float)
    W = -0.5 * D
    lam, V = np.linalg.eigh(W)
    order = np.argsort(-np.abs(lam), kind="stable")
    lam, V = lam[order], V[:, order]
    return lam, V * np.sqrt(np.abs(lam))


def inpca_coords_without_scale(D):
    lam, X = L.inpca(D)
    norms = np.linalg.norm(X, axis=0)
    return lam, X / np.where(norms > 0, norms, 1.0)         # unit eigenvectors, not scaled by sqrt|lambda|


# ---------------------------------------------------------------- hunchback

def hunchback_argmax_interior(ids, rel=0.1):
    d = np.asarray(ids, dtype=float)
    return bool(len(d) >= 3 and 0 < int(np.nanargmax(d)) < len(d) - 1)     # ignores rel and NaNs


def hunchback_only_first(ids, rel=0.1):
    d = np.asarray(ids, dtype=float)
    return bool(len(d) >= 3 and np.isfinite(d).all() and d.max() >= (1 + rel) * d[0])   # forgets the last layer


def hunchback_strict(ids, rel=0.1):
    d = np.asarray(ids, dtype=float)
    return bool(len(d) >= 3 and np.isfinite(d).all() and d.max() > (1 + rel) * max(d[0], d[-1]))


# ---------------------------------------------------------------- capture

def _flat(t):
    t = t.detach().float()
    return t.reshape(-1, t.shape[-1]) if t.ndim == 3 else t.reshape(t.shape[0], -1)


def capture_leaves_hooks(model, inputs, layers):
    seen = {}
    mods = dict(model.named_modules())
    for name in layers:
        if name != "input":
            mods[name].register_forward_hook(
                lambda m, a, out, name=name: seen.__setitem__(name, out[0] if isinstance(out, tuple) else out))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(inputs)
    model.train(was)
    seen["input"] = inputs
    return {n: _flat(seen[n]) for n in layers}


def capture_in_training_mode(model, inputs, layers):
    seen, handles = {}, []
    mods = dict(model.named_modules())
    for name in layers:
        if name != "input":
            handles.append(mods[name].register_forward_hook(
                lambda m, a, out, name=name: seen.__setitem__(name, out[0] if isinstance(out, tuple) else out)))
    try:
        with torch.no_grad():
            model(inputs)                                    # dropout active, BatchNorm's running stats move
    finally:
        for h in handles:
            h.remove()
    seen["input"] = inputs
    return {n: _flat(seen[n]) for n in layers}


def capture_forgets_training_flag(model, inputs, layers):
    out = L.capture(model, inputs, layers)
    model.eval()                                             # leaves the model in eval mode
    return out


def capture_no_reshape_of_sequences(model, inputs, layers):
    out = L.capture(model, inputs, layers)
    raw = L.capture(model, inputs, layers, select=lambda n, t: t.reshape(t.shape[0], -1))   # (B, T*D), not (B*T, D)
    return {n: raw[n] if out[n].shape[0] != inputs.shape[0] else out[n] for n in layers}


WRONG = {
    "lens.coverage": [coverage_dead_means_zero_mean, coverage_entropy_unnormalised, coverage_entropy_of_signed_mean],
    "lens.isotropy": [isotropy_uncentred, isotropy_keeps_diagonal, isotropy_top_pc_of_singular_values],
    "lens.bhattacharyya": [bhattacharyya_without_log, bhattacharyya_log_of_mean, bhattacharyya_summed_over_samples],
    "lens.inpca": [inpca_signed_sort, inpca_no_half, inpca_not_centred, inpca_coords_without_scale],
    "lens.hunchback": [hunchback_argmax_interior, hunchback_only_first, hunchback_strict],
    "lens.capture": [capture_leaves_hooks, capture_in_training_mode, capture_forgets_training_flag,
                     capture_no_reshape_of_sequences],
}

"""Checks for chapter v2_llm/02_pretraining_dynamics (Volume 2, sections 2.5-2.7).

Cases are drawn at grading time from the seeded generator: synthetic power laws with known exponents, Chinchilla
budgets, random router logits, RoPE settings, attention sizes and random residual-stream paths, with edge cases
(two data points, k = 1 and k = E, one token, logits of size 1000, windows wider than the sequence, straight paths).
"""

from __future__ import annotations


import numpy as np
import torch

from manifold_course.geometry import trajectories
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.nn import long_context, moe
from manifold_course.optim import scaling

CHAPTER = "v2_llm/02_pretraining_dynamics"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F32, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


# ---------------------------------------------------------------- 2.5 scaling laws


def _flops_cases(rng):
    yield Case((7e9, 1.4e11), label="7 B parameters on 140 B tokens (20 tokens per parameter)")
    yield Case((70e9, 1.4e12), label="Chinchilla: 70 B parameters, 1.4 T tokens")
    yield Case((8e9, 15e12), label="LLaMA-3-8B-like: 8 B parameters, 15 T tokens")
    yield Case((int(rng.integers(1000, 500_000)), int(rng.integers(10_000, 10_000_000))), label="ints (a tiny GPT)")
    yield Case((1, 1), label="N = D = 1")


def _judge_pair_of_floats(names):
    def judge(got, expected, case) -> str | None:
        if not isinstance(got, tuple) or len(got) != 2:
            return f"return a tuple ({names[0]}, {names[1]}) of two floats, got {type(got).__name__}"
        rtol = case.rtol if case.rtol is not None else 1e-6
        for name, g, e in zip(names, got, expected):
            msg = compare(g, e, rtol=rtol, atol=0.0, where=name)
            if msg:
                return msg
        return None

    return judge


def _power_cases(rng):
    def law(N, a, alpha, noise=0.0):
        L = a * np.asarray(N, dtype=np.float64) ** (-alpha)
        return L * np.exp(noise * rng.standard_normal(len(L))) if noise else L

    N = np.geomspace(5e3, 3e5, 6)
    yield Case((N, law(N, 12.0, 0.3)), label="6 sizes, no noise: recover a = 12, alpha = 0.3")
    N = np.geomspace(1e6, 1e12, 9)
    a, alpha = float(rng.uniform(5, 500)), float(rng.uniform(0.05, 0.8))
    yield Case((N, law(N, a, alpha)), label=f"N up to 1e12, a = {a:.3g}, alpha = {alpha:.3g}: work with logarithms")
    N = np.array([1e4, 1e5])
    yield Case((N, law(N, 3.0, 0.5)), label="two points: the line through them")
    N = np.sort(rng.uniform(1e3, 1e6, 7))
    yield Case((N, law(N, 40.0, 0.25, noise=0.05)),
               label="noisy losses (5 % multiplicative): least squares of log L on log N", rtol=1e-6)
    N = np.geomspace(100, 1e4, 5)
    yield Case((list(N), list(law(N, 2.0, 0.07))), label="plain Python lists, a shallow exponent 0.07")


def _optimal_cases(rng):
    c = scaling.CHINCHILLA
    for C in (1e21, 5.76e23, 1e25):
        yield Case((C, c["A"], c["B"], c["E"], c["alpha"], c["beta"]), label=f"Hoffmann et al.'s fit, C = {C:.3g}")
    b = scaling.BESIROGLU
    yield Case((1e24, b["A"], b["B"], b["E"], b["alpha"], b["beta"]), label="Besiroglu et al.'s refit, C = 1e24")
    yield Case((6e20, 400.0, 400.0, 1.7, 0.3, 0.3), label="alpha = beta, A = B: N* = D* = sqrt(C / 6)")
    A, B = float(rng.uniform(50, 2000)), float(rng.uniform(50, 2000))
    al, be = float(rng.uniform(0.2, 0.5)), float(rng.uniform(0.2, 0.5))
    yield Case((float(10 ** rng.uniform(18, 26)), A, B, 1.5, al, be), label=f"random fit alpha = {al:.3f}, beta = {be:.3f}")


def _budget_is_spent(fn) -> str | None:
    c = scaling.CHINCHILLA
    for C in (1e20, 3e23):
        N, D = fn(C, c["A"], c["B"], c["E"], c["alpha"], c["beta"])
        if abs(6 * N * D / C - 1) > 1e-6:
            return f"at C = {C:g} your optimum has 6 N D = {6 * N * D:.4g}: it must lie on the budget line 6 N D = C"
        L = lambda n: scaling.chinchilla_loss(n, C / (6 * n), c["E"], c["A"], c["B"], c["alpha"], c["beta"])  # noqa: E731
        if not (L(N) <= L(N * 1.01) and L(N) <= L(N / 1.01)):
            return f"at C = {C:g} the loss on the budget line is lower at 1.01 N* or N* / 1.01: N* is not the minimum"
    return None


# ---------------------------------------------------------------- 2.6 mixture of experts


def _gating_cases(rng):
    yield Case((_t(rng, 6, 8), 2), label="6 tokens, 8 experts, top-2")
    yield Case((_t(rng, 5, 7), 1), label="top-1: every weight is 1")
    yield Case((_t(rng, 4, 5), 5), label="k = E: the full softmax, experts sorted best first")
    yield Case((_t(rng, 1, 9), 3), label="a single token, 9 experts")
    yield Case((_t(rng, 3, 6, scale=1000.0), 2), label="logits of size 1000: exp overflows unless you subtract the max")
    yield Case((_t(rng, 10, 16, dtype=F64), 4), label="float64, 16 experts, top-4", rtol=1e-10, atol=1e-12)


def _judge_gating(got, expected, case) -> str | None:
    if not isinstance(got, tuple) or len(got) != 2:
        return f"return a tuple (weights, indices), got {type(got).__name__}"
    msg = compare(got[1], expected[1], where="indices")
    if msg:
        return msg + " (indices of the k largest logits, largest first, as torch.topk gives them)"
    w = got[0]
    if isinstance(w, torch.Tensor) and w.shape == expected[0].shape and w.dtype == expected[0].dtype:
        s = w.detach().double().sum(-1)
        if not torch.allclose(s, torch.ones_like(s), atol=1e-5):
            return f"the weights of a token should sum to 1 over its k experts, got sums {s[:4].tolist()}"
    rtol, atol = (case.rtol or 1e-5), (case.atol or 1e-6)
    return compare(w, expected[0], rtol=rtol, atol=atol, where="weights")


def _balance_cases(rng):
    def routed(T, E, k, scale=1.0, dtype=F32, skew=None):
        logits = _t(rng, T, E, scale=scale, dtype=dtype)
        if skew is not None:
            logits[:, skew] += 3.0
        probs = torch.softmax(logits, -1)
        idx = torch.topk(logits, k, -1).indices                    # (T, k)
        return probs, (idx[:, 0] if k == 1 else idx)

    E = 8
    uniform = torch.full((16, E), 1.0 / E)
    yield Case((uniform, torch.arange(16) % E, E), label="perfect balance, top-1: the loss is 1")
    yield Case((uniform, torch.stack([torch.arange(16) % E, (torch.arange(16) + 3) % E], 1), E),
               label="perfect balance, top-2 indices (16, 2): still 1 (divide the counts by T k)")
    yield Case((*routed(32, 8, 1), 8), label="32 tokens, 8 experts, top-1 indices (T,)")
    yield Case((*routed(20, 6, 2, skew=2), 6), label="top-2, router skewed towards expert 2: above 1")
    yield Case((*routed(1, 5, 1), 5), label="a single token")
    yield Case((*routed(50, 7, 3, dtype=F64), 7), label="float64, 7 experts, top-3", rtol=1e-10, atol=1e-12)


def _balance_has_gradient(fn) -> str | None:
    logits = torch.randn(12, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    probs = torch.softmax(logits, -1)
    out = fn(probs, probs.argmax(-1), 4)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return ("the loss must stay a torch tensor connected to router_probs (the router learns through P_i): "
                "no .item(), no numpy")
    return None


# ---------------------------------------------------------------- 2.7 long context


def _ntk_cases(rng):
    yield Case((10000.0, 8.0, 128), label="LLaMA-like: base 1e4, scale 8, head width 128")
    yield Case((10000.0, 4.0, 16), label="head width 16: exponent d / (d - 2) = 16/14")
    yield Case((10000.0, 1.0, 64), label="scale 1: the base is unchanged")
    yield Case((500000.0, float(rng.uniform(1.5, 32)), 64), label="base 5e5, random scale")
    yield Case((10000.0, 2.0, 4), label="head width 4: exponent 2")


def _mask_cases(rng):
    yield Case((6, 3), label="T = 6, w = 3: each token sees itself and the 2 before it")
    yield Case((5, 1), label="w = 1: only the diagonal")
    yield Case((4, 10), label="w > T: the plain causal mask")
    yield Case((1, 2), label="T = 1")
    T, w = int(rng.integers(20, 60)), int(rng.integers(2, 15))
    yield Case((T, w), label=f"T = {T}, w = {w}")


def _path_cases(rng, straight_atol: float):
    yield Case((_t(rng, 5, 16),), label="one path h_0..h_4 in R^16")
    yield Case((_t(rng, 7, 3, 9),), label="7 paths (N, L+1, D) = (7, 3, 9)")
    yield Case((_t(rng, 2, 3, 6, 33, dtype=F64),), label="batch dims (2, 3), 6 layers, D = 33, float64",
               rtol=1e-10, atol=1e-10)
    v = _t(rng, 12, dtype=F64)
    straight = torch.arange(5, dtype=F64)[:, None] * v + _t(rng, 12, dtype=F64)
    yield Case((straight,), label="a straight path (rounding can push the cosine above 1)", rtol=0.0, atol=straight_atol)
    zig = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [2.0, 1.0], [2.0, 2.0]], dtype=F64)
    yield Case((zig,), label="a staircase in 2-D: right, up, right, up", rtol=1e-10, atol=1e-10)


EXERCISES = [
    Exercise("pretraining.training_flops", "Training compute C = 6 N D",
             cases=_flops_cases, reference=scaling.training_flops, rtol=1e-12, atol=0.0),
    Exercise("pretraining.fit_power_law", "Fit a power law L = a N^(-alpha) in log-log space",
             cases=_power_cases, reference=scaling.fit_power_law, judge=_judge_pair_of_floats(("a", "alpha"))),
    Exercise("pretraining.chinchilla_optimal", "Compute-optimal N* and D* of the Chinchilla fit",
             cases=_optimal_cases, reference=scaling.chinchilla_optimal, judge=_judge_pair_of_floats(("N*", "D*")),
             properties=[_budget_is_spent]),
    Exercise("pretraining.top_k_gating", "Top-k gating of a mixture of experts",
             cases=_gating_cases, reference=moe.top_k_gating, judge=_judge_gating),
    Exercise("pretraining.load_balancing_loss", "The Switch Transformer load-balancing loss",
             cases=_balance_cases, reference=moe.load_balancing_loss, rtol=1e-5, atol=1e-6,
             properties=[_balance_has_gradient]),
    Exercise("pretraining.ntk_rope_base", "NTK-aware RoPE base scaling",
             cases=_ntk_cases, reference=long_context.ntk_rope_base, rtol=1e-10, atol=0.0),
    Exercise("pretraining.sliding_window_mask", "A causal sliding-window attention mask",
             cases=_mask_cases, reference=long_context.sliding_window_mask),
    Exercise("pretraining.turning_angles", "Turning angles of residual-stream paths",
             cases=lambda rng: _path_cases(rng, straight_atol=1e-6), reference=trajectories.turning_angles,
             rtol=1e-4, atol=1e-4),
    Exercise("pretraining.length_to_chord", "Length-to-chord ratio of residual-stream paths",
             cases=lambda rng: _path_cases(rng, straight_atol=1e-9), reference=trajectories.length_to_chord,
             rtol=1e-5, atol=1e-6),
]

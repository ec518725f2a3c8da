"""Checks for chapter v1_architecture/01_approximation_and_inductive_bias (Volume 1, sections 1.1-1.4).

Cases are drawn at grading time from the seeded generator. The two class exercises (ResBlock, ConvNeXtBlock) are
graded by shape, parameter count, and equality with the reference after copying the reference's (randomised)
state_dict into the learner's module, in training and in evaluation mode.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from manifold_course import data
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem
from manifold_course.grading.probes import module_judge, module_outputs, random_state
from manifold_course.nn import approximation, convnext, equivariance, residual
from manifold_course.nn.mlp import MLPConfig, deep_mlp

CHAPTER = "v1_architecture/01_approximation_and_inductive_bias"
F64 = torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F64, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(scale * rng.standard_normal(shape), dtype=dtype)


# ---------------------------------------------------------------- 1.1 universal approximation


# The target functions by name: a case is plain data (a name, not a function), so that classroom grading can
# record the learner's answer in the sandbox and judge it in the grader.
_TARGETS = {"sin": torch.sin, "abs": torch.abs, "exp(-x) + 3": lambda x: torch.exp(-x) + 3.0,
            "step at 0.3": lambda x: (x > 0.3).to(x.dtype), "x^3 - x": lambda x: x**3 - x}


def _bump_cases(rng):
    yield Case(("sin", 0.0, math.pi, 10, 200.0), label="sin on [0, pi], 10 bumps, k = 200")
    yield Case(("abs", -2.0, 3.0, 7, 50.0), label="|x| on [-2, 3], 7 bumps (not symmetric)")
    yield Case(("exp(-x) + 3", -1.0, 1.0, 1, 20.0), label="a single bump: the constant f(c_1)")
    yield Case(("step at 0.3", -1.0, 1.0, int(rng.integers(11, 30)), 1e4), label="a step, k = 1e4 (steep)")
    yield Case(("x^3 - x", -1.5, 1.5, 2, 5.0), label="2 bumps, soft sigmoids (k = 5)")
    for n in (4, 16, 64):                     # more bumps, a closer staircase: the sup error falls like L (b - a) / n
        yield Case(("sin", 0.0, math.pi, n, 1e4), label=f"sin on [0, pi], {n} bumps, k = 1e4")


def _bump_observe(fn):
    """Adapter: call ``fn(f, a, b, n, k)`` for the named target and evaluate the returned f_hat on a grid that
    reaches a quarter of the interval beyond both ends."""

    def observed(name, a, b, n, k):
        f_hat = fn(_TARGETS[name], a, b, n, k)
        if not callable(f_hat):
            return {"f_hat": type(f_hat).__name__}
        y = f_hat(torch.linspace(a - 0.25 * (b - a), b + 0.25 * (b - a), 301, dtype=F64))
        return {"f_hat": "function", "y": y.detach() if isinstance(y, torch.Tensor) else type(y).__name__}

    observed.__name__ = getattr(fn, "__name__", "bump_approximation")
    return observed


def _judge_bump(got, expected, case) -> str | None:
    if not isinstance(got, dict) or got.get("f_hat") != "function":
        return f"return a function (f_hat), got {got.get('f_hat') if isinstance(got, dict) else got}"
    y, want = got.get("y"), expected["y"]
    if not isinstance(y, torch.Tensor):
        return f"f_hat(x) should return a torch.Tensor, got {y}"
    if tuple(y.shape) != tuple(want.shape):
        return f"f_hat(x) for x of shape {tuple(want.shape)} returned shape {tuple(y.shape)}; return one value per input"
    problem = compare(y.to(F64), want, rtol=1e-6, atol=1e-8, where="f_hat on a grid around [a, b]")
    if problem:
        return (problem + "; use the n cell centres c_i = a + (i - 1/2) h, the n - 1 inner edges t_i = a + i h, "
                "f_hat(x) = f(c_1) + sum_i (f(c_(i+1)) - f(c_i)) sigmoid(k (x - t_i))")
    return None


def _interp_cases(rng):
    xs = torch.tensor([0.0, 1.0], dtype=F64)
    yield Case((xs, torch.tensor([2.0, -1.0], dtype=F64)), label="two knots: one hidden unit")
    xs = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=F64)
    yield Case((xs, torch.tensor([1.0, -1.0, 3.0, 3.0], dtype=F64)), label="4 knots, a flat last piece")
    for n in (int(rng.integers(5, 12)), 37):
        xs = torch.as_tensor(np.sort(rng.uniform(-3, 3, n)), dtype=F64)
        xs = xs + torch.arange(n, dtype=F64) * 1e-3                      # strictly increasing
        yield Case((xs, _t(rng, n)), label=f"{n} unevenly spaced knots")
    xs = torch.linspace(10.0, 11.0, 9, dtype=F64)
    yield Case((xs, 1e3 * _t(rng, 9)), label="knots far from 0 (x in [10, 11]), values of order 1000")


def _interp_observe(fn):
    """Adapter: build the learner's net for the knots; record its layers and its values at and between the knots."""

    def observed(xs, ys):
        net = fn(xs, ys)
        if not isinstance(net, nn.Sequential):
            return {"type": type(net).__name__}
        mods = list(net)
        obs = {"type": "Sequential", "layers": [type(m).__name__ for m in mods]}
        if len(mods) != 3 or not isinstance(mods[0], nn.Linear) or not isinstance(mods[2], nn.Linear):
            return obs
        obs["dims"] = [mods[0].in_features, mods[0].out_features, mods[2].in_features, mods[2].out_features]
        obs["dtype"] = str(mods[0].weight.dtype)
        t = torch.linspace(float(xs[0]), float(xs[-1]), 997, dtype=mods[0].weight.dtype)
        with torch.no_grad():
            obs["at_knots"] = net(xs.to(mods[0].weight.dtype)[:, None])[:, 0].to(F64)
            obs["between"] = net(t[:, None])[:, 0].to(F64)
        return obs

    observed.__name__ = getattr(fn, "__name__", "relu_interpolant")
    return observed


def _judge_interp(got, expected, case) -> str | None:
    xs, ys = case.args
    n = len(xs)
    if not isinstance(got, dict) or got.get("type") != "Sequential":
        return f"return an nn.Sequential(Linear, ReLU, Linear), got {got.get('type') if isinstance(got, dict) else got}"
    if got.get("layers") != ["Linear", "ReLU", "Linear"]:
        return f"the net should be exactly nn.Sequential(nn.Linear, nn.ReLU, nn.Linear), got {got.get('layers')}"
    d = got["dims"]
    if d != [1, n - 1, n - 1, 1]:
        return (f"with {n} knots use {n - 1} hidden units: Linear(1, {n - 1}) and Linear({n - 1}, 1); got "
                f"Linear({d[0]}, {d[1]}) and Linear({d[2]}, {d[3]})")
    if got["dtype"] != str(F64):
        return f"build the layers in float64 (nn.Linear(..., dtype=torch.float64)); got {got['dtype']}"
    scale = 1e-6 * (1.0 + float(ys.abs().max()))
    at_knots, between = got["at_knots"], got["between"]
    if not isinstance(at_knots, torch.Tensor) or at_knots.shape != ys.shape:
        return "the grader could not evaluate your net at the knots"
    bad = (at_knots - ys).abs()
    if float(bad.max()) > scale:
        i = int(bad.argmax())
        return f"the net misses knot {i}: f({float(xs[i]):.4g}) = {float(at_knots[i]):.6g}, expected y = {float(ys[i]):.6g}"
    t = torch.linspace(float(xs[0]), float(xs[-1]), 997, dtype=F64)
    err = np.abs(between.numpy() - np.interp(t.numpy(), xs.numpy(), ys.numpy()))
    if err.max() > scale:
        return (f"between the knots the net should be the straight-line interpolant; at x = {float(t[err.argmax()]):.4g} "
                f"it is off by {err.max():.3g}: put the kinks exactly at the knots")
    return None


def _count_cases(rng):
    yield Case(([64, 32, 10],), label="64 -> 32 -> 10")
    yield Case(([1, 1],), label="one Linear(1, 1): 2 parameters")
    yield Case(([5],), label="a single size: no layer, 0 parameters")
    for _ in range(2):
        sizes = [int(s) for s in rng.integers(1, 300, size=int(rng.integers(3, 7)))]
        yield Case((sizes,), label=f"sizes {sizes}")
    yield Case(([10**6, 1000],), label="a 1000 x 1000 image into 1000 units: about 1e9 (exact integer)")


def _count_matches_torch(fn) -> str | None:
    sizes = [7, 13, 5, 3]
    net = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
    truth = sum(p.numel() for p in net.parameters())
    if fn(sizes) != truth:
        return f"for sizes {sizes} nn.Sequential of Linear layers has {truth} parameters, you return {fn(sizes)}"
    return None


# ---------------------------------------------------------------- 1.2 inductive bias


class _ConvShift:
    """A circular convolution and a shift on the last axis (for printing)."""

    def __init__(self, w: torch.Tensor):
        self.w = w

    def __call__(self, x):
        return equivariance.circular_conv1d(x, self.w)

    def __repr__(self):
        return f"circular conv1d with weights {tuple(self.w.shape)}"


def _equiv_cases(rng):
    x = _t(rng, 2, 3, 17, dtype=torch.float32)
    w = _t(rng, 5, 3, 4, dtype=torch.float32)
    sh = lambda z: torch.roll(z, 3, dims=-1)
    yield Case((_ConvShift(w), sh, sh, x), label="circular conv1d + shift by 3: equivariant (about 1e-7)", atol=1e-5)
    gap = lambda z: equivariance.circular_conv1d(z, w).relu().mean(dim=-1)          # (B, C_out): position removed
    yield Case((gap, sh, lambda y: y, x), label="conv + ReLU + global average pool, invariance (t_out = identity)", atol=1e-5)
    no_pool = lambda z: equivariance.circular_conv1d(z, w).relu().flatten(1)
    yield Case((no_pool, sh, lambda y: y, x), label="conv + ReLU without pooling is NOT invariant", rtol=1e-4, atol=1e-9)
    torch.manual_seed(int(rng.integers(1_000_000)))
    mlp = nn.Sequential(nn.Linear(17, 32), nn.Tanh(), nn.Linear(32, 17)).double()
    x1 = _t(rng, 1, 17)
    yield Case((mlp, lambda z: torch.roll(z, 1, dims=-1), lambda y: torch.roll(y, 1, dims=-1), x1),
               label="a random MLP is not shift-equivariant (batch 1)", rtol=1e-4, atol=1e-9)
    yield Case((mlp, lambda z: 3.0 * z, lambda y: 3.0 * y, x1), label="scaling by 3 in and out (t_out changes norms)",
               rtol=1e-4, atol=1e-9)
    Wq, Wk, Wv = _t(rng, 6, 4), _t(rng, 6, 4), _t(rng, 6, 5)
    perm = torch.as_tensor(rng.permutation(9))
    P = lambda z: z[perm]
    pe = equivariance.sinusoidal_positions(9, 6)
    attn_pe = lambda z: equivariance.self_attention(z, Wq, Wk, Wv, pe)
    yield Case((attn_pe, P, P, _t(rng, 9, 6)), label="attention with sinusoidal positions vs a token permutation",
               rtol=1e-4, atol=1e-9)


def _judge_equiv(got, expected, case) -> str | None:
    problem = float_problem(got)
    if problem:
        return problem
    atol = case.atol if case.atol is not None else 1e-9
    rtol = case.rtol if case.rtol is not None else 1e-4
    if abs(float(got) - expected) > atol + rtol * abs(expected):
        return (f"expected a relative error of {expected:.6g}, got {float(got):.6g}: compute "
                "||f(t_in(x)) - t_out(f(x))|| / ||t_out(f(x))|| with Frobenius norms over all entries")
    return None


def _attention_cases(rng):
    yield Case((_t(rng, 7, 5), _t(rng, 5, 3), _t(rng, 5, 3), _t(rng, 5, 4)), label="T=7, D=5, d_k=3, d_v=4 (float64)",
               rtol=1e-9, atol=1e-12)
    f32 = torch.float32
    yield Case((_t(rng, 3, 11, 6, dtype=f32), _t(rng, 6, 8, dtype=f32), _t(rng, 6, 8, dtype=f32), _t(rng, 6, 6, dtype=f32)),
               label="a batch (B=3, T=11, D=6), float32")
    yield Case((_t(rng, 1, 1, 4), _t(rng, 4, 2), _t(rng, 4, 2), _t(rng, 4, 3)), label="B=1, T=1: a single token", rtol=1e-9, atol=1e-12)
    T, D = 10, 7
    yield Case((_t(rng, T, D), _t(rng, D, 3), _t(rng, D, 3), _t(rng, D, 2)), {"pe": equivariance.sinusoidal_positions(T, D)},
               label="with sinusoidal positions pe (T=10, D=7): X + pe first", rtol=1e-9, atol=1e-12)
    yield Case((_t(rng, 2, 9, 8, dtype=f32, scale=30.0), _t(rng, 8, 8, dtype=f32), _t(rng, 8, 8, dtype=f32), _t(rng, 8, 8, dtype=f32)),
               label="huge scores (|S| ~ 1e4): a naive exp overflows", rtol=1e-4, atol=1e-3)


def _attention_equivariant(fn) -> str | None:
    gen = torch.Generator().manual_seed(5)
    X, W = torch.randn(8, 6, generator=gen, dtype=F64), torch.randn(3, 6, 6, generator=gen, dtype=F64)
    perm = torch.randperm(8, generator=gen)
    err = equivariance.equivariance_error(lambda z: fn(z, W[0], W[1], W[2]), lambda z: z[perm], lambda y: y[perm], X)
    if err > 1e-9:
        return f"without positions, attention should be permutation-equivariant; yours has a relative error {err:.3g}"
    return None


def _conv_dense_cases(rng):
    yield Case((32, 32, 3, 64, 3), label="a 32 x 32 RGB image, 64 filters of 3 x 3")
    yield Case((7, 5, 2, 3, 5), label="H != W, k = 5")
    yield Case((8, 8, 1, 1, 1), label="k = 1, one channel")
    yield Case((1000, 1000, 1, 1, 3), label="a 1000 x 1000 image: dense needs 1e12 weights (exact integers)")
    H, W = (int(v) for v in rng.integers(2, 40, size=2))
    yield Case((H, W, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.choice([3, 5, 7]))), label="random sizes")


# ---------------------------------------------------------------- 1.3 residual networks


def _with_stale_grads(model: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)      # left over from an earlier backward
    return model


def _grad_cases(rng):
    def data(n, d=64, k=10):
        return _t(rng, n, d, dtype=torch.float32), torch.as_tensor(rng.integers(0, k, n))

    x, y = data(40)
    yield Case((deep_mlp(MLPConfig(depth=6, width=24, activation="tanh"), seed=1), x, y), label="plain tanh DeepMLP, depth 6")
    yield Case((deep_mlp(MLPConfig(depth=5, width=13, residual=True), seed=2), x, y), label="residual ReLU DeepMLP, width 13")
    m = _with_stale_grads(deep_mlp(MLPConfig(depth=3, width=9), seed=3), 4)
    yield Case((m, x, y), label="a model whose .grad fields hold old gradients")
    x1, y1 = data(1)
    yield Case((deep_mlp(MLPConfig(depth=2, width=7), seed=5), x1, y1), label="batch of 1")
    torch.manual_seed(int(rng.integers(1_000_000)))
    seq = nn.Sequential(nn.Linear(5, 11), nn.GELU(), nn.Linear(11, 11), nn.GELU(), nn.Linear(11, 3))
    x5, y5 = data(17, 5, 3)
    yield Case((seq, x5, y5), label="an nn.Sequential with 3 Linear layers, 3 classes")


def _judge_grads(got, expected, case) -> str | None:
    if not isinstance(got, (list, tuple)):
        return f"return a list of floats (one per nn.Linear), got {type(got).__name__}"
    if len(got) != len(expected):
        return (f"expected {len(expected)} norms (one per nn.Linear weight, in model.modules() order), got {len(got)}; "
                "leave out the biases")
    for i, g in enumerate(got):
        problem = float_problem(g, f"entry {i}")
        if problem:
            return problem
    return compare([float(g) for g in got], expected, rtol=1e-4, atol=1e-8,
                   where="the gradient norms (mean cross-entropy; zero or ignore old .grad fields)")


def _grads_show_vanishing(fn) -> str | None:
    X, Y = data.digits()
    x, y = X[:64], Y[:64]
    plain = fn(deep_mlp(MLPConfig(depth=32, width=32, activation="tanh"), seed=0), x, y)
    res = fn(deep_mlp(MLPConfig(depth=32, width=32, activation="tanh", residual=True), seed=0), x, y)
    r_plain, r_res = plain[1] / plain[-2], res[1] / res[-2]
    if not (r_plain < 0.1 and 0.3 <= r_res <= 3):
        return f"first/last block gradient ratios: plain {r_plain:.3g} (expected < 0.1), residual {r_res:.3g} (expected in [0.3, 3])"
    return None


def _block_cases(block: type[nn.Module]):
    """Cases for a block class: its constructor's argument, random weights and BatchNorm statistics in the
    reference's names (so that a block with a wrong structure cannot agree by luck), an input with H != W."""

    def cases(rng):
        for C in (3, 1, 8, 5):
            state = random_state(block(C), rng, positive=lambda n: "running_var" in n or n.endswith("norm.weight")
                                 or ("bn" in n and n.endswith("weight")))
            x = torch.as_tensor(rng.standard_normal((4, C, 5, 7)), dtype=torch.float32)   # H != W, negative entries
            yield Case(((C,), state, [x]), label=f"channels = {C}")

    return cases


# ---------------------------------------------------------------- 1.4 ConvNeXt: receptive fields and patches


def _rf_cases(rng):
    yield Case(([],), label="no layer: one pixel")
    yield Case(([(3, 1)] * 3,), label="three 3x3 stride-1 convs: 7")
    yield Case(([(7, 2), (3, 2)],), label="ResNet stem: 7x7/2 then 3x3/2 max-pool: 11")
    yield Case(([(4, 4), (7, 1)],), label="ConvNeXt: 4x4/4 patchify then a 7x7 depthwise conv")
    yield Case(([(3, 1), (3, 1), (2, 2)] * 5,), label="VGG-like: 5 stages of conv-conv-pool")
    layers = [(int(k), int(s)) for k, s in zip(rng.integers(1, 8, 9), rng.integers(1, 4, 9))]
    yield Case((layers,), label=f"random stack {layers}")


def _patch_cases(rng):
    yield Case((_t(rng, 2, 3, 8, 8, dtype=torch.float32), 2), label="(2, 3, 8, 8), p = 2: 16 tokens of 12", atol=0.0, rtol=0.0)
    yield Case((_t(rng, 1, 2, 6, 9), 3), label="(1, 2, 6, 9), p = 3: a 2 x 3 grid of patches (H != W)", atol=0.0, rtol=0.0)
    yield Case((_t(rng, 3, 2, 4, 4), 4), label="p = H = W: one token per image", atol=0.0, rtol=0.0)
    yield Case((_t(rng, 1, 5, 3, 2), 1), label="p = 1: every pixel is a token", atol=0.0, rtol=0.0)


def _patch_matches_unfold(fn) -> str | None:
    x = torch.randn(2, 3, 6, 10, generator=torch.Generator().manual_seed(1))
    want = F.unfold(x, kernel_size=2, stride=2).transpose(1, 2)          # (B, N, C p^2)
    got = fn(x, 2)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape or not torch.equal(got, want):
        return "patchify(x, p) should equal F.unfold(x, p, stride=p).transpose(1, 2) (tokens row by row, features (C, p, p))"
    return None


def _unpatch_cases(rng):
    for (B, C, H, W), p in (((2, 3, 8, 8), 2), ((1, 2, 6, 9), 3), ((3, 2, 4, 4), 4), ((1, 5, 3, 2), 1)):
        x = _t(rng, B, C, H, W, dtype=torch.float32)
        yield Case((convnext.patchify(x, p), p, H, W), label=f"tokens of a ({B}, {C}, {H}, {W}) image, p = {p}", atol=0.0, rtol=0.0)


def _round_trip(fn) -> str | None:
    x = torch.randn(2, 4, 6, 10, generator=torch.Generator().manual_seed(2))
    back = fn(convnext.patchify(x, 2), 2, 6, 10)
    if not isinstance(back, torch.Tensor) or back.shape != x.shape or not torch.equal(back, x):
        return "unpatchify(patchify(x, p), p, H, W) should give back x exactly"
    return None


EXERCISES = [
    Exercise("inductive_bias.bump_approximation", "A staircase of sigmoid bumps",
             cases=_bump_cases, reference=approximation.bump_approximation, adapter=_bump_observe, judge=_judge_bump),
    Exercise("inductive_bias.relu_interpolant", "The exact ReLU interpolant",
             cases=_interp_cases, reference=approximation.relu_interpolant, adapter=_interp_observe, judge=_judge_interp),
    Exercise("inductive_bias.mlp_param_count", "Counting the parameters of an MLP",
             cases=_count_cases, reference=approximation.mlp_param_count, properties=[_count_matches_torch]),
    Exercise("inductive_bias.equivariance_error", "Measuring equivariance",
             cases=_equiv_cases, reference=equivariance.equivariance_error, judge=_judge_equiv),
    Exercise("inductive_bias.self_attention", "Self-attention, with and without positions",
             cases=_attention_cases, reference=equivariance.self_attention, properties=[_attention_equivariant]),
    Exercise("inductive_bias.conv_vs_dense_params", "Convolution vs dense: parameter counts",
             cases=_conv_dense_cases, reference=approximation.conv_vs_dense_params),
    Exercise("inductive_bias.grad_norms_per_layer", "Gradient norm per layer",
             cases=_grad_cases, reference=residual.grad_norms_per_layer, judge=_judge_grads,
             properties=[_grads_show_vanishing]),
    Exercise("inductive_bias.ResBlock", "The ResNet basic block",
             cases=_block_cases(residual.ResBlock), reference=residual.ResBlock,
             adapter=module_outputs(("train", "eval")), judge=module_judge("ResBlock", ("train", "eval"))),
    Exercise("inductive_bias.ConvNeXtBlock", "The ConvNeXt block",
             cases=_block_cases(convnext.ConvNeXtBlock), reference=convnext.ConvNeXtBlock,
             adapter=module_outputs(("train", "eval")), judge=module_judge("ConvNeXtBlock", ("train", "eval"))),
    Exercise("inductive_bias.receptive_field", "Receptive field of a conv stack",
             cases=_rf_cases, reference=convnext.receptive_field),
    Exercise("inductive_bias.patchify", "Cutting an image into patch tokens",
             cases=_patch_cases, reference=convnext.patchify, properties=[_patch_matches_unfold]),
    Exercise("inductive_bias.unpatchify", "Putting patch tokens back together",
             cases=_unpatch_cases, reference=convnext.unpatchify, properties=[_round_trip]),
]

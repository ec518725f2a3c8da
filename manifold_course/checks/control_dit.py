"""Checks for chapter v3_generative/02_control_and_transformers (Volume 3, sections 3.5-3.6).

Cases are drawn at grading time from the seeded generator. The three classes (``ZeroConv1x1``, ``ControlledModel``,
``AdaLNZeroBlock``) are graded through adapters that build them, record their output at initialisation, the
gradients of one backward pass and their outputs once the reference's (random, non-zero) weights are loaded.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from manifold_course.generative import control, denoiser, dit, video
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.grading.probes import random_state

CHAPTER = "v3_generative/02_control_and_transformers"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F32, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


def _load_error(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _grad(p: torch.Tensor | None):
    return None if p is None or p.grad is None else p.grad.detach().clone()


# ---------------------------------------------------------------- 3.5 ZeroConv1x1


def _zero_conv_cases(rng):
    for c_in, c_out, B, H, W, label in ((3, 5, 2, 4, 6, "c_in 3 -> c_out 5, 4x6 maps"),
                                        (1, 1, 1, 1, 1, "one channel, one pixel, batch 1"),
                                        (8, 3, 3, 7, 5, "c_in 8 -> c_out 3, 7x5 maps")):
        x, g = _t(rng, B, c_in, H, W), _t(rng, B, c_out, H, W)
        yield Case((c_in, c_out, x, g, _t(rng, c_out, c_in, 1, 1), _t(rng, c_out)), label=label)


def _zero_conv_observe(cls):
    """Build ``cls(c_in, c_out)``; record the output at init, the parameter gradients of L = sum(output * g), and the
    output with the case's weights loaded."""

    def observed(c_in, c_out, x, g, w, b):
        m = cls(c_in, c_out)
        obs = {"module": isinstance(m, nn.Module), "type": type(m).__name__}
        if not obs["module"]:
            return obs
        obs["params"] = sorted((n, list(p.shape), bool(p.requires_grad)) for n, p in m.named_parameters())
        out0 = m(x)
        obs["out0"] = out0.detach() if isinstance(out0, torch.Tensor) else type(out0).__name__
        if isinstance(out0, torch.Tensor) and out0.requires_grad:
            (out0 * g).sum().backward()
        obs["grad_weight"], obs["grad_bias"] = _grad(getattr(m, "weight", None)), _grad(getattr(m, "bias", None))
        try:
            m.load_state_dict({"weight": w, "bias": b})
            obs["load_error"] = None
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            obs["load_error"] = _load_error(exc)
            return obs
        with torch.no_grad():
            obs["out1"] = m(x).detach()
        return obs

    observed.__name__ = getattr(cls, "__name__", "ZeroConv1x1")
    return observed


def _judge_zero_conv(got, expected, case) -> str | None:
    c_in, c_out, x = case.args[:3]
    call = f"ZeroConv1x1({c_in}, {c_out})"
    if not isinstance(got, dict) or "module" not in got:
        return "the grader could not observe your ZeroConv1x1"
    if not got["module"]:
        return f"{call} should build an nn.Module (subclass nn.Conv2d), got {got.get('type')}"
    want = expected["params"]
    if [p[:2] for p in got.get("params", [])] != [p[:2] for p in want]:
        return (f"{call} should have exactly the parameters weight {(c_out, c_in, 1, 1)} and bias ({c_out},) of a "
                f"1x1 nn.Conv2d; yours are {[(n, tuple(s)) for n, s, _ in got.get('params', [])]}")
    if not all(p[2] for p in got["params"]):
        return "the weight and bias must stay trainable (requires_grad=True): a zero layer that cannot learn stays zero"
    problem = compare(got.get("out0"), expected["out0"], 0.0, 0.0,
                      f"the output at initialisation for an input {tuple(x.shape)} (should be exactly 0: zero the "
                      "weight AND the bias)")
    if problem:
        return problem
    for key, name in (("grad_weight", "weight"), ("grad_bias", "bias")):
        if got.get(key) is None:
            return (f"no gradient reached the {name} after one backward pass: keep it an nn.Parameter that requires "
                    "grad, and compute the output from it inside forward")
        problem = compare(got[key], expected[key], 1e-5, 1e-5, f"the gradient of sum(output * g) wrt the {name} at "
                          "initialisation (zero weights still get the gradient (dL/dy) x^T)")
        if problem:
            return problem
    if got.get("load_error") is not None:
        return f"could not load a 1x1 conv's weights (name them weight and bias): {got['load_error']}"
    return compare(got.get("out1"), expected["out1"], 1e-5, 1e-5, "the output with non-zero weights loaded (a 1x1 "
                   "convolution: y[b, o] = sum_i W[o, i] x[b, i] + bias[o] at every pixel)")


# ---------------------------------------------------------------- 3.5 ControlledModel


def _base_mlp(x_dim: int, hidden: int) -> denoiser.TimeMLP:
    return denoiser.TimeMLP(x_dim, hidden=hidden, depth=2, t_dim=8)


def _controlled_cases(rng):
    for x_dim, c_dim, hidden, B, label in ((2, 8, 16, 5, "x_dim 2, c_dim 8 (one-hot region labels), hidden 16"),
                                           (3, 1, 8, 1, "x_dim 3, c_dim 1, batch 1"),
                                           (6, 4, 12, 4, "x_dim 6, c_dim 4")):
        base_state = random_state(_base_mlp(x_dim, hidden), rng)
        zero_state = {"zero_in.weight": _t(rng, hidden, c_dim, scale=0.5), "zero_in.bias": _t(rng, hidden, scale=0.5),
                      "zero_out.weight": _t(rng, x_dim, x_dim, scale=0.5), "zero_out.bias": _t(rng, x_dim, scale=0.5)}
        x, c, g = _t(rng, B, x_dim), _t(rng, B, c_dim), _t(rng, B, x_dim)
        t = torch.as_tensor(rng.integers(0, 1000, B), dtype=F32)
        yield Case((x_dim, c_dim, hidden, base_state, zero_state, x, t, c, g), label=label)


def _controlled_observe(cls):
    """Build ``cls(base, c_dim)`` around a TimeMLP with the case's weights; record the trainable parameters,
    the output at init, gradients of one backward pass, and the output with non-zero joins loaded."""

    def observed(x_dim, c_dim, hidden, base_state, zero_state, x, t, c, g):
        base = _base_mlp(x_dim, hidden)
        base.load_state_dict(base_state)
        m = cls(base, c_dim)
        obs = {"module": isinstance(m, nn.Module), "type": type(m).__name__}
        if not obs["module"]:
            return obs
        obs["trainable"] = sorted(n for n, p in m.named_parameters() if p.requires_grad)
        obs["frozen"] = sorted(n for n, p in m.named_parameters() if not p.requires_grad)
        out0 = m(x, t, c)
        obs["out0"] = out0.detach() if isinstance(out0, torch.Tensor) else type(out0).__name__
        sub = {n: getattr(m, n, None) for n in ("zero_in", "zero_out", "copy")}
        if not all(isinstance(s, nn.Module) for s in sub.values()) or not isinstance(out0, torch.Tensor):
            return obs
        if out0.requires_grad:
            (out0 * g).sum().backward()
        obs["grad0"] = {"zero_out.weight": _grad(sub["zero_out"].weight), "zero_in.weight": _grad(sub["zero_in"].weight)}
        m.zero_grad(set_to_none=True)
        missing = set(zero_state) - set(m.state_dict())
        if missing:
            obs["load_error"] = f"missing {sorted(missing)}"
            return obs
        with torch.no_grad():
            for name, value in zero_state.items():
                m.state_dict()[name].copy_(value)
        obs["load_error"] = None
        out1 = m(x, t, c)
        obs["out1"] = out1.detach()
        if out1.requires_grad:
            (out1 * g).sum().backward()
        obs["grad1_zero_in"] = _grad(sub["zero_in"].weight)
        obs["base_grads"] = any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in base.parameters())
        return obs

    observed.__name__ = getattr(cls, "__name__", "ControlledModel")
    return observed


def _judge_controlled(got, expected, case) -> str | None:
    x_dim, c_dim = case.args[:2]
    if not isinstance(got, dict) or "module" not in got:
        return "the grader could not observe your ControlledModel"
    if not got["module"]:
        return f"ControlledModel(base, {c_dim}) should build an nn.Module, got {got.get('type')}"
    trainable, frozen = got.get("trainable", []), got.get("frozen", [])
    if any(n.startswith("base.") for n in trainable):
        return "the base model must be locked: call requires_grad_(False) on every parameter of base"
    if not any(n.startswith("copy.") for n in trainable):
        return ("no trainable copy: self.copy must be a copy.deepcopy(base.body) with its own parameters that "
                "require grad (the same object as base.body would be frozen with the base)")
    if trainable != expected["trainable"] or frozen != expected["frozen"]:
        return (f"the trainable parameters should be copy.*, zero_in.* and zero_out.*, the frozen ones base.*; yours "
                f"are trainable {trainable[:6]}..., frozen {frozen[:4]}...")
    problem = compare(got.get("out0"), expected["out0"], 1e-6, 1e-6,
                      "the output at initialisation (should equal base(x, t) exactly: both joins start at zero)")
    if problem:
        return problem
    grad0 = got.get("grad0") or {}
    if grad0.get("zero_out.weight") is None:
        return "no gradient reached zero_out.weight: compute the output from the join's parameters inside forward"
    problem = compare(grad0["zero_out.weight"], expected["grad0"]["zero_out.weight"], 1e-4, 1e-5,
                      "the gradient of zero_out.weight at initialisation (the join's input must be copy(h + zero_in(c)))")
    if problem:
        return problem
    if got.get("load_error") is not None:
        return f"could not set the joins' weights (name them zero_in and zero_out): {got['load_error']}"
    problem = compare(got.get("out1"), expected["out1"], 1e-4, 1e-5,
                      "the output once the joins are non-zero: base.body(h) + zero_out(copy(h + zero_in(c))), h = base.features(x, t)")
    if problem:
        return problem
    if got.get("grad1_zero_in") is None:
        return "no gradient reached zero_in.weight once zero_out is non-zero: the control must flow through the copy"
    problem = compare(got["grad1_zero_in"], expected["grad1_zero_in"], 1e-4, 1e-5,
                      "the gradient of zero_in.weight once zero_out is non-zero")
    if problem:
        return problem
    if got.get("base_grads"):
        return "the base received gradients: it must stay locked"
    return None


# ---------------------------------------------------------------- 3.5 IP-Adapter


def _decoupled_cases(rng):
    for lead, Tq, Tt, Ti, d, lam, label in (((2, 3), 5, 7, 4, 8, 0.7, "q (2, 3, 5, 8), 7 text and 4 image tokens, lambda 0.7"),
                                            ((4,), 6, 3, 2, 5, 0.0, "lambda = 0: text-only attention"),
                                            ((1,), 1, 1, 1, 4, 1.0, "one query, one text token, one image token"),
                                            ((2,), 9, 77, 16, 6, 2.5, "77 text tokens (CLIP's length), lambda 2.5")):
        yield Case((_t(rng, *lead, Tq, d), _t(rng, *lead, Tt, d), _t(rng, *lead, Tt, d), _t(rng, *lead, Ti, d),
                    _t(rng, *lead, Ti, d), lam), label=label)
    yield Case((_t(rng, 2, 4, 3, dtype=F64), _t(rng, 2, 5, 3, dtype=F64), _t(rng, 2, 5, 3, dtype=F64),
                _t(rng, 2, 2, 3, dtype=F64), _t(rng, 2, 2, 3, dtype=F64), 0.5), label="float64",
               rtol=1e-10, atol=1e-12)
    yield Case((_t(rng, 3, 4, 6, scale=6.0), _t(rng, 3, 5, 6, scale=6.0), _t(rng, 3, 5, 6), _t(rng, 3, 3, 6, scale=6.0),
                _t(rng, 3, 3, 6), 0.3), label="large scores (entries ~ 6): the softmax must stay finite")


# ---------------------------------------------------------------- 3.6 patches


def _patchify_cases(rng):
    for shape, p, label in (((2, 3, 8, 8), 2, "(2, 3, 8, 8), p = 2"), ((1, 1, 8, 8), 4, "digits: (1, 1, 8, 8), p = 4"),
                            ((3, 2, 6, 9), 3, "(3, 2, 6, 9), p = 3: H != W"), ((2, 4, 5, 5), 5, "p = H = W: one token"),
                            ((1, 2, 4, 4), 1, "p = 1: one token per pixel")):
        yield Case((_t(rng, *shape), p), label=label)


def _st_patchify_cases(rng):
    for shape, pt, ph, pw, label in (((2, 8, 1, 16, 16), 2, 4, 4, "8 frames of 16x16, patch (2, 4, 4)"),
                                     ((1, 4, 3, 6, 9), 2, 3, 3, "3 channels, 6x9 frames, patch (2, 3, 3)"),
                                     ((2, 6, 2, 4, 4), 3, 2, 1, "patch (3, 2, 1): pw = 1"),
                                     ((1, 5, 1, 4, 6), 1, 4, 6, "pt = 1 (image patches per frame), one patch per frame")):
        yield Case((_t(rng, *shape), pt, ph, pw), label=label)


def _st_unpatchify_cases(rng):
    for shape, pt, ph, pw, label in (((2, 8, 1, 16, 16), 2, 4, 4, "8 frames of 16x16, patch (2, 4, 4)"),
                                     ((1, 4, 3, 6, 9), 2, 3, 3, "3 channels, 6x9 frames, patch (2, 3, 3)"),
                                     ((2, 6, 2, 4, 4), 3, 2, 1, "patch (3, 2, 1)"),
                                     ((1, 5, 1, 4, 6), 1, 4, 6, "pt = 1, one patch per frame")):
        T, C, H, W = shape[1:]
        N = (T // pt) * (H // ph) * (W // pw)
        yield Case((_t(rng, shape[0], N, pt * ph * pw * C), (T, C, H, W), pt, ph, pw), label=label)


def _st_roundtrip(fn) -> str | None:
    v = torch.arange(2 * 4 * 3 * 6 * 4, dtype=F32).reshape(2, 4, 3, 6, 4)
    back = fn(dit.spacetime_patchify(v, 2, 3, 2), (4, 3, 6, 4), 2, 3, 2)
    return compare(back, v, 0.0, 0.0, "unpatchify(spacetime_patchify(video)) (should give the video back exactly)")


def _count_cases(rng):
    for args, label in (((8, 16, 16, 2, 4, 4), "8 frames of 16x16, patch (2, 4, 4)"),
                        ((16, 32, 32, 1, 2, 2), "pt = 1: per-frame patches"),
                        ((1, 8, 8, 1, 2, 2), "an image: T = 1"), ((4, 6, 10, 4, 3, 5), "one patch along time"),
                        ((120, 64, 64, 4, 2, 2), "120 frames of a 64x64 latent (a 5 s clip at 24 fps), patch (4, 2, 2)")):
        yield Case(args, label=label)
    pt, ph, pw = (int(v) for v in rng.integers(1, 5, 3))
    T, H, W = pt * int(rng.integers(1, 9)), ph * int(rng.integers(1, 9)), pw * int(rng.integers(1, 9))
    yield Case((T, H, W, pt, ph, pw), label="a random divisible size")


# ---------------------------------------------------------------- 3.6 adaLN-Zero


def _adaln_observe(cls):
    """Build ``cls(d, n_heads)``; record its outputs at initialisation and with the case's weights loaded."""

    def observed(ctor, state, inputs):
        m = cls(*ctor)
        obs = {"module": isinstance(m, nn.Module), "type": type(m).__name__}
        if not obs["module"]:
            return obs
        obs["n_params"] = int(sum(p.numel() for p in m.parameters()))
        with torch.no_grad():
            obs["out0"] = [m(x.clone(), c.clone()).detach() for x, c in inputs]
        try:
            m.load_state_dict({k: v.clone() for k, v in state.items()})
            obs["load_error"] = None
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            obs["load_error"] = _load_error(exc)
            return obs
        with torch.no_grad():
            obs["out1"] = [m(x.clone(), c.clone()).detach() for x, c in inputs]
        return obs

    observed.__name__ = getattr(cls, "__name__", "AdaLNZeroBlock")
    return observed


def _adaln_cases(rng):
    for d, H, label in ((16, 4, "d 16, 4 heads"), (24, 3, "d 24, 3 heads"), (8, 1, "d 8, one head")):
        state = random_state(dit.AdaLNZeroBlock(d, H), rng)
        inputs = [(_t(rng, B, N, d, scale=2.0), _t(rng, B, d, scale=s)) for B, N, s in ((2, 5, 1.0), (1, 1, 10.0), (3, 7, 0.1))]
        yield Case(((d, H), state, inputs), label=label)


def _judge_adaln(got, expected, case) -> str | None:
    (d, H), state, inputs = case.args
    call = f"AdaLNZeroBlock({d}, {H})"
    if not isinstance(got, dict) or "module" not in got:
        return "the grader could not observe your AdaLNZeroBlock"
    if not got["module"]:
        return f"{call} should build an nn.Module, got {got.get('type')}"
    if got.get("n_params") != expected["n_params"]:
        return f"{call} has {got.get('n_params')} parameters, expected {expected['n_params']}: keep the given __init__"
    for (x, _), have in zip(inputs, got.get("out0", [])):
        problem = compare(have, x, 1e-6, 1e-6, f"the output at initialisation for x {tuple(x.shape)} (adaLN-Zero: the "
                          "block must be the identity map for any conditioning; zero the last Linear of "
                          "adaLN_modulation and gate each branch with alpha)")
        if problem:
            return problem
    if got.get("load_error") is not None:
        return f"could not load the reference's weights (keep the given attribute names): {got['load_error']}"
    for (x, _), have, want in zip(inputs, got.get("out1", []), expected["out1"]):
        problem = compare(have, want, 1e-4, 1e-5, f"the output with trained (non-zero) weights for x {tuple(x.shape)} "
                          "(order of the six chunks: shift1, scale1, gate1, shift2, scale2, gate2; "
                          "modulate = LN(x) * (1 + scale) + shift)")
        if problem:
            return problem
    return None


# ---------------------------------------------------------------- 3.6 time embedding, frame difference


def _temb_cases(rng):
    yield Case((torch.arange(0, 1000, 111), 16), label="integer steps 0, 111, ..., 999, dim 16")
    yield Case((torch.as_tensor(rng.uniform(0, 1, 5), dtype=F32) * 1000, 8), label="fractional times, dim 8")
    yield Case((torch.tensor([3, 0, 500]), 7), label="odd dim 7: one zero column at the end")
    yield Case((torch.tensor([1.5, 40.0]), 2), label="dim 2: one frequency")
    yield Case((torch.tensor([0, 10, 20]), 12), {"max_period": 100.0}, label="max_period 100")
    yield Case((torch.as_tensor(rng.uniform(0, 1000, 4), dtype=F64), 10), label="float64 times", rtol=1e-10, atol=1e-10)


def _frame_diff_cases(rng):
    vids, _ = video.moving_squares(3, T=8, H=16, W=16, size=4, generator=torch.Generator().manual_seed(int(rng.integers(1 << 30))))
    yield Case((vids,), label="three moving-square clips (3, 8, 1, 16, 16)")
    yield Case((_t(rng, 2, 5, 3, 4, 6),), label="random clips (2, 5, 3, 4, 6): 3 channels")
    yield Case((_t(rng, 1, 2, 1, 3, 3),), label="two frames, batch 1")
    yield Case((torch.ones(2, 6, 1, 4, 4),), label="a static clip: difference 0")
    yield Case((_t(rng, 2, 4, 2, 3, 5, dtype=F64),), label="float64", rtol=1e-10, atol=1e-12)


EXERCISES = [
    Exercise("control_dit.ZeroConv1x1", "ControlNet's zero convolution", cases=_zero_conv_cases,
             reference=control.ZeroConv1x1, adapter=_zero_conv_observe, judge=_judge_zero_conv),
    Exercise("control_dit.ControlledModel", "A trainable copy beside a frozen base, joined by zero layers",
             cases=_controlled_cases, reference=control.ControlledModel, adapter=_controlled_observe,
             judge=_judge_controlled),
    Exercise("control_dit.decoupled_cross_attention", "IP-Adapter's decoupled cross-attention",
             cases=_decoupled_cases, reference=control.decoupled_cross_attention, rtol=1e-5, atol=1e-5),
    Exercise("control_dit.patchify", "Cut images into DiT patch tokens", cases=_patchify_cases,
             reference=dit.patchify, rtol=0.0, atol=0.0),
    Exercise("control_dit.spacetime_token_count", "How many spacetime tokens a video makes", cases=_count_cases,
             reference=dit.spacetime_token_count),
    Exercise("control_dit.spacetime_patchify", "Spacetime patches of a video", cases=_st_patchify_cases,
             reference=dit.spacetime_patchify, rtol=0.0, atol=0.0),
    Exercise("control_dit.spacetime_unpatchify", "Videos back from spacetime patches", cases=_st_unpatchify_cases,
             reference=dit.spacetime_unpatchify, rtol=0.0, atol=0.0, properties=[_st_roundtrip]),
    Exercise("control_dit.AdaLNZeroBlock", "A DiT block with adaLN-Zero conditioning", cases=_adaln_cases,
             reference=dit.AdaLNZeroBlock, adapter=_adaln_observe, judge=_judge_adaln),
    Exercise("control_dit.timestep_embedding", "The sinusoidal time embedding", cases=_temb_cases,
             reference=denoiser.timestep_embedding, rtol=1e-5, atol=2e-4),
    Exercise("control_dit.frame_difference", "A temporal-consistency metric for clips", cases=_frame_diff_cases,
             reference=video.frame_difference, rtol=1e-6, atol=1e-7),
]

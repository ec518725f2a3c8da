"""Checks for chapter v3_generative/03_cross_modal_3d_and_tokenizers (Volume 3, sections 3.7-3.9).

Cases are drawn at grading time from the seeded generator. ``sds_grad`` receives a frozen noise predictor: the
cases name a Gaussian mixture and the adapter passes its exact ``eps_oracle``. ``vector_quantize`` and
``vq_losses`` are judged through their gradients too (the straight-through estimator and the stop-gradients are
the point), ``revive_dead_codes`` also by whether it left its inputs untouched.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.generative import cross_attention as ca
from manifold_course.generative import mixtures, rendering, vq
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem

CHAPTER = "v3_generative/03_cross_modal_3d_and_tokenizers"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F64, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


def _pos(rng: np.random.Generator, *shape: int, lo: float = 0.0, hi: float = 1.0, dtype=F64) -> torch.Tensor:
    return torch.as_tensor(rng.uniform(lo, hi, shape), dtype=dtype)


# ---------------------------------------------------------------- 3.7 cross-attention


def _mask(rng, B, M, n_real=None):
    m = np.zeros((B, M), dtype=bool)
    for b in range(B):
        m[b, : (n_real if n_real is not None else int(rng.integers(1, M + 1)))] = True
    return torch.as_tensor(m)


def _xattn_cases(rng):
    B, N, M, dx, dc, d, dv = 2, 6, 5, 4, 3, 8, 7
    yield Case((_t(rng, B, N, dx), _t(rng, B, M, dc), _t(rng, dx, d), _t(rng, dc, d), _t(rng, dc, dv)),
               label="no mask, d = 8, d_v = 7 (scale by sqrt(d) = sqrt(Wq.shape[1]))")
    yield Case((_t(rng, B, N, dx), _t(rng, B, M, dc), _t(rng, dx, d), _t(rng, dc, d), _t(rng, dc, dv), _mask(rng, B, M)),
               label="padding masks (True = real token)")
    yield Case((_t(rng, 1, 16, 5), _t(rng, 1, 9, 6), _t(rng, 5, 3), _t(rng, 6, 3), _t(rng, 6, 2), _mask(rng, 1, 9, 1)),
               label="batch 1, a 4x4 grid, a prompt with one real token and 8 pads")
    yield Case((_t(rng, 3, 7, 4, dtype=F32), _t(rng, 3, 11, 4, dtype=F32), _t(rng, 4, 5, dtype=F32),
                _t(rng, 4, 5, dtype=F32), _t(rng, 4, 4, dtype=F32), _mask(rng, 3, 11)), label="float32, 11 tokens")
    yield Case((_t(rng, 2, 5, 4, dtype=F32, scale=8), _t(rng, 2, 4, 4, dtype=F32, scale=8), _t(rng, 4, 4, dtype=F32, scale=4),
                _t(rng, 4, 4, dtype=F32, scale=4), _t(rng, 4, 3, dtype=F32), _mask(rng, 2, 4, 3)),
               label="float32 scores in the hundreds: a naive exp overflows (use torch.softmax)", rtol=1e-4, atol=1e-5)


def _xattn_rows(fn) -> str | None:
    g = np.random.default_rng(7)
    mask = _mask(g, 2, 6)
    out = fn(_t(g, 2, 4, 3), _t(g, 2, 6, 3), _t(g, 3, 4), _t(g, 3, 4), _t(g, 3, 2), mask)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], torch.Tensor)):
        return "return a pair (out, attn)"
    attn = out[1]
    if not torch.allclose(attn.sum(-1), torch.ones(2, 4, dtype=attn.dtype)) or torch.any(attn[~mask[:, None, :].expand_as(attn)] != 0):
        return "each row of attn should sum to 1 over the real tokens, and padding tokens should get weight 0"
    return None


def _maps_cases(rng):
    yield Case((torch.softmax(_t(rng, 2, 12, 5), -1), 3, 4), label="H = 3, W = 4 (not square): row-major positions")
    yield Case((torch.softmax(_t(rng, 1, 16, 1), -1), 4, 4), label="batch 1, one token")
    yield Case((torch.softmax(_t(rng, 3, 35, 7, dtype=F32), -1), 7, 5), label="float32, H = 7, W = 5")


# ---------------------------------------------------------------- 3.8 volume rendering, splats, SDS


def _render_inputs(rng, *lead, S, C=3, dtype=F64):
    sig = _pos(rng, *lead, S, hi=5.0, dtype=dtype)
    col = _pos(rng, *lead, S, C, dtype=dtype)
    dl = _pos(rng, *lead, S, lo=0.01, hi=0.3, dtype=dtype)
    return sig, col, dl


def _trans_cases(rng):
    sig, _, dl = _render_inputs(rng, S=9)
    yield Case((sig, dl), label="one ray of 9 samples")
    sig, _, dl = _render_inputs(rng, 4, 3, S=17)
    yield Case((sig, dl), label="a (4, 3) batch of rays, 17 uneven segments")
    yield Case((torch.zeros(2, 5, dtype=F64), _pos(rng, 2, 5)), label="empty space: T = 1 everywhere")
    sig, _, dl = _render_inputs(rng, 3, S=6, dtype=F32)
    sig[:, 0] = 1e4
    yield Case((sig, dl), label="float32, an opaque first sample: T = 1 there and 0 behind it", atol=1e-7)


def _render_cases(rng):
    yield Case(_render_inputs(rng, S=12), label="one ray, 12 samples, RGB")
    yield Case(_render_inputs(rng, 5, S=7, C=1), label="5 rays, one colour channel")
    sig, col, dl = _render_inputs(rng, 2, 3, S=10)
    sig[0, 0, 0] = 1e5
    yield Case((sig, col, dl), label="an opaque first sample returns its colour (weights 1, 0, 0, ...)")
    yield Case((torch.zeros(3, 4, dtype=F64), _pos(rng, 3, 4, 3), _pos(rng, 3, 4)), label="empty space: black, weights 0")
    yield Case(_render_inputs(rng, 4, S=33, dtype=F32), label="float32, 33 samples", atol=1e-6)


def _spd(rng, G, scale):
    A = rng.standard_normal((G, 2, 2)) * scale
    return torch.as_tensor(A @ A.transpose(0, 2, 1) + 0.2 * scale**2 * np.eye(2), dtype=F64)


def _splat_cases(rng):
    grid = rendering.pixel_grid(7, 9)
    yield Case((torch.tensor([[0.5, 0.5]], dtype=F64), 0.03 * torch.eye(2, dtype=F64)[None], torch.tensor([[1.0]], dtype=F64),
                torch.tensor([0.9], dtype=F64), grid), label="one isotropic Gaussian on a 7 x 9 pixel grid")
    yield Case((_pos(rng, 3, 2), _spd(rng, 3, 0.2), _pos(rng, 3, 3), _pos(rng, 3), _pos(rng, 40, 2)),
               label="3 anisotropic Gaussians, RGB, 40 random points")
    m = torch.tensor([[0.5, 0.5], [0.52, 0.48]], dtype=F64)
    yield Case((m, _spd(rng, 2, 0.2), torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64), torch.tensor([0.95, 0.9], dtype=F64),
                rendering.pixel_grid(5, 5)), label="two overlapping, nearly opaque splats: the front one (index 0) wins")
    yield Case((_pos(rng, 11, 2), _spd(rng, 11, 0.1), _pos(rng, 11, 1), _pos(rng, 11), rendering.pixel_grid(6, 4)),
               label="11 Gaussians, one channel")


_PRIORS = {
    "one Gaussian at (1, -2), std 0.5": mixtures.GaussianMixture.isotropic(torch.ones(1, dtype=F64),
                                                                          torch.tensor([[1.0, -2.0]], dtype=F64), 0.5),
    "eight Gaussians on a circle": mixtures.eight_gaussians(),
    "two unequal Gaussians in 3-D": mixtures.GaussianMixture.isotropic(torch.tensor([0.3, 0.7], dtype=F64),
                                                                      torch.tensor([[1.0, 0.0, -1.0], [-1.0, 2.0, 0.5]], dtype=F64), 0.4),
}


def _sds_cases(rng):
    for name, n, ab, w in (("one Gaussian at (1, -2), std 0.5", 5, 0.7, 1.0), ("eight Gaussians on a circle", 9, 0.3, 2.5),
                           ("eight Gaussians on a circle", 1, 0.95, 1.0), ("two unequal Gaussians in 3-D", 6, 0.5, 0.4)):
        D = _PRIORS[name].dim
        yield Case((name, _t(rng, n, D, scale=2.0), ab, _t(rng, n, D), w), label=f"{name}: {n} points, alpha_bar = {ab}, w = {w}")


def _sds_observe(fn):
    """Adapter: call ``fn(eps_fn, x, alpha_bar, eps, w)`` with the named mixture's exact noise predictor."""

    def observed(name, x, alpha_bar, eps, w):
        out = fn(_PRIORS[name].eps_oracle, x, alpha_bar, eps, w)
        return out.detach() if isinstance(out, torch.Tensor) else out

    observed.__name__ = getattr(fn, "__name__", "sds_grad")
    return observed


def _judge_sds(got, expected, case) -> str | None:
    problem = compare(got, expected, 1e-7, 1e-9, "the SDS gradient")
    if problem:
        return problem + ("; noise the rendering first, x_t = sqrt(alpha_bar) x + sqrt(1 - alpha_bar) eps, then return "
                          "w (eps_fn(x_t, alpha_bar) - eps)")
    return None


# ---------------------------------------------------------------- 3.9 vector quantisation


def _vq_cases(rng):
    for shape, K, D, dtype, label in (((10, 3), 5, 3, F64, "10 vectors, 5 codes"),
                                      ((2, 4, 2), 7, 2, F64, "a (2, 4) grid of 2-D vectors (quantise the last axis)"),
                                      ((1, 6), 1, 6, F64, "one vector, one code"),
                                      ((33, 4), 16, 4, F32, "float32, 33 vectors, 16 codes")):
        yield Case((_t(rng, *shape, dtype=dtype), _t(rng, K, D, dtype=dtype), _t(rng, *shape, dtype=dtype)), label=label)


def _vq_observe(fn):
    """Adapter: ``fn(z_e, codebook)`` on leaves that require gradients; record (z_q, idx) and the gradients of
    ``sum(z_q * upstream)`` with respect to z_e and the codebook."""

    def observed(z_e, codebook, upstream):
        z, cb = z_e.clone().requires_grad_(True), codebook.clone().requires_grad_(True)
        out = fn(z, cb)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return {"form": type(out).__name__}
        zq, idx = out
        obs = {"form": "pair", "z_q": zq.detach() if isinstance(zq, torch.Tensor) else zq,
               "idx": idx.detach() if isinstance(idx, torch.Tensor) else idx, "grads": None}
        if isinstance(zq, torch.Tensor) and zq.requires_grad and zq.shape == upstream.shape:
            gz, gc = torch.autograd.grad((zq * upstream).sum(), [z, cb], allow_unused=True)
            obs["grads"] = [torch.zeros_like(z) if gz is None else gz, torch.zeros_like(cb) if gc is None else gc]
        return obs

    observed.__name__ = getattr(fn, "__name__", "vector_quantize")
    return observed


def _judge_vq(got, expected, case) -> str | None:
    if not isinstance(got, dict) or got.get("form") != "pair":
        return f"return a pair (z_q, idx), got {got.get('form') if isinstance(got, dict) else got}"
    problem = (compare(got["idx"], expected["idx"], 0, 0, "idx (the index of the nearest code, int64, shape of z_e "
                                                          "without its last axis)")
               or compare(got["z_q"], expected["z_q"], 1e-5, 1e-6, "z_q (the nearest codes)"))
    if problem:
        return problem
    if got["grads"] is None:
        return ("z_q carries no gradient back to z_e: the decoder's gradient must pass straight through, "
                "z_q = z_e + (codebook[idx] - z_e).detach()")
    return (compare(got["grads"][0], expected["grads"][0], 1e-6, 1e-7, "the gradient reaching z_e (it should equal "
                    "the upstream gradient: z_q = z_e + (codebook[idx] - z_e).detach())")
            or compare(got["grads"][1], expected["grads"][1], 1e-6, 1e-7, "the gradient reaching the codebook through "
                       "z_q (it should be zero: the codebook learns from the codebook loss; detach the difference)"))


def _losses_cases(rng):
    yield Case((_t(rng, 8, 3), _t(rng, 8, 3), 0.25), label="8 vectors, beta = 0.25")
    yield Case((_t(rng, 2, 5, 4), _t(rng, 2, 5, 4), 1.0), label="a (2, 5) grid of 4-D vectors, beta = 1")
    yield Case((_t(rng, 1, 7, dtype=F32), _t(rng, 1, 7, dtype=F32), 0.1), label="float32, one vector, beta = 0.1")


_LOSS_WHERE = (("codebook", "z_e", "the gradient of the codebook loss with respect to z_e (should be 0: use z_e.detach())"),
               ("codebook", "e", "the gradient of the codebook loss with respect to e (the mean of (e - sg[z_e])^2)"),
               ("commitment", "z_e", "the gradient of the commitment loss with respect to z_e (beta times the mean of "
                                     "(z_e - sg[e])^2)"),
               ("commitment", "e", "the gradient of the commitment loss with respect to e (should be 0: use e.detach())"))


def _losses_observe(fn):
    """Adapter: ``fn(z_e, e, beta)`` on leaves that require gradients; record both losses and the gradient of
    each with respect to each input."""

    def observed(z_e, e, beta):
        leaves = {"z_e": z_e.clone().requires_grad_(True), "e": e.clone().requires_grad_(True)}
        out = fn(leaves["z_e"], leaves["e"], beta)
        if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(v, torch.Tensor) for v in out)):
            return {"form": type(out).__name__}
        obs = {"form": "pair", "codebook": out[0].detach(), "commitment": out[1].detach(), "grads": {}}
        for loss_name, val in (("codebook", out[0]), ("commitment", out[1])):
            if val.requires_grad and val.numel() == 1:
                gs = torch.autograd.grad(val.sum(), list(leaves.values()), allow_unused=True, retain_graph=True)
                for (name, leaf), gr in zip(leaves.items(), gs):
                    obs["grads"][f"{loss_name}/{name}"] = torch.zeros_like(leaf) if gr is None else gr
        return obs

    observed.__name__ = getattr(fn, "__name__", "vq_losses")
    return observed


def _judge_losses(got, expected, case) -> str | None:
    if not isinstance(got, dict) or got.get("form") != "pair":
        return "return a pair of 0-dim tensors (codebook_loss, commitment_loss)"
    for key in ("codebook", "commitment"):
        problem = compare(got[key], expected[key], 1e-6, 1e-8, f"the {key} loss (a 0-dim tensor, the mean over all entries)")
        if problem:
            return problem
    for loss_name, name, where in _LOSS_WHERE:
        have = got["grads"].get(f"{loss_name}/{name}")
        if have is None:
            return f"the {loss_name} loss is not differentiable; compute it with torch operations from z_e and e"
        problem = compare(have, expected["grads"][f"{loss_name}/{name}"], 1e-6, 1e-8, where)
        if problem:
            return problem
    return None


def _perp_cases(rng):
    yield Case((torch.arange(24) % 8, 8), label="uniform use of all 8 codes: perplexity 8")
    yield Case((torch.full((10,), 3), 16), label="one code used: perplexity 1")
    yield Case((torch.as_tensor(rng.integers(0, 5, 50)), 32), label="5 of 32 codes used, 27 dead (0 log 0 = 0)")
    yield Case((torch.as_tensor(rng.choice(12, size=(6, 4), p=rng.dirichlet(np.ones(12)))), 12),
               label="a (6, 4) batch of token indices, uneven use")
    yield Case((torch.tensor([0, 1]), 2), label="two entries, two codes: perplexity 2")


def _judge_perp(got, expected, case) -> str | None:
    problem = float_problem(got, "the perplexity")
    if problem:
        return problem
    return compare(float(got), expected, 1e-9, 1e-12, "the perplexity (exp of the entropy in nats of the code "
                                                         "frequencies; 0 log 0 = 0)")


def _revive_cases(rng):
    for N, K, D, n_dead, dtype, label in ((20, 6, 3, 2, F64, "20 vectors, 6 codes, 2 dead"),
                                          (9, 5, 2, 0, F64, "no dead code: the codebook is returned unchanged"),
                                          (12, 8, 4, 5, F32, "float32, 5 dead codes of 8"),
                                          (4, 4, 2, 3, F64, "3 dead codes, only 4 vectors")):
        cb = _t(rng, K, D, dtype=dtype)
        live = np.sort(rng.choice(K, K - n_dead, replace=False))
        idx = torch.as_tensor(np.concatenate([live, rng.choice(live, N - len(live))]))[torch.as_tensor(rng.permutation(N))]
        z = cb[idx] + _t(rng, N, D, dtype=dtype, scale=0.5)
        yield Case((cb, z, idx), label=label)


def _revive_observe(fn):
    def observed(codebook, z_e, idx):
        cb, z, ix = codebook.clone(), z_e.clone(), idx.clone()
        out = fn(cb, z, ix)
        changed = not (torch.equal(cb, codebook) and torch.equal(z, z_e) and torch.equal(ix, idx))
        return {"codebook": out.detach() if isinstance(out, torch.Tensor) else out, "input_changed": changed}

    observed.__name__ = getattr(fn, "__name__", "revive_dead_codes")
    return observed


def _judge_revive(got, expected, case) -> str | None:
    if not isinstance(got, dict) or "codebook" not in got:
        return "the grader could not observe your function's output"
    if got["input_changed"]:
        return "your function changed an input in place; work on codebook.clone() and return it"
    problem = compare(got["codebook"], expected["codebook"], 0, 0, "the new codebook")
    if problem:
        return (problem + "; dead codes, in increasing index order, take the rows of z_e with the largest squared "
                "distance to their own code codebook[idx], largest first; live codes stay as they are")
    return None


# ---------------------------------------------------------------- the list

_STE_HINT = "z_q = z_e + (codebook[idx] - z_e).detach()"

EXERCISES = [
    Exercise("cross_modal.cross_attention", "Cross-attention with a prompt-padding mask", cases=_xattn_cases,
             reference=ca.cross_attention, properties=[_xattn_rows], rtol=1e-5, atol=1e-6),
    Exercise("cross_modal.token_attention_maps", "Per-token attention maps on the feature grid", cases=_maps_cases,
             reference=ca.token_attention_maps, rtol=0.0, atol=0.0),
    Exercise("cross_modal.transmittance", "Transmittance along a ray", cases=_trans_cases,
             reference=rendering.transmittance, rtol=1e-6, atol=1e-9),
    Exercise("cross_modal.volume_render", "NeRF's volume rendering: colour and weights", cases=_render_cases,
             reference=rendering.volume_render, rtol=1e-5, atol=1e-9),
    Exercise("cross_modal.splat_2d", "A 2-D Gaussian-splatting renderer", cases=_splat_cases,
             reference=rendering.splat_2d, rtol=1e-7, atol=1e-10),
    Exercise("cross_modal.sds_grad", "The Score Distillation Sampling gradient", cases=_sds_cases,
             reference=rendering.sds_grad, adapter=_sds_observe, judge=_judge_sds),
    Exercise("cross_modal.vector_quantize", "Vector quantisation with a straight-through gradient", cases=_vq_cases,
             reference=vq.vector_quantize, adapter=_vq_observe, judge=_judge_vq),
    Exercise("cross_modal.vq_losses", "The codebook and commitment losses", cases=_losses_cases,
             reference=vq.vq_losses, adapter=_losses_observe, judge=_judge_losses),
    Exercise("cross_modal.codebook_perplexity", "Codebook perplexity", cases=_perp_cases,
             reference=vq.codebook_perplexity, judge=_judge_perp),
    Exercise("cross_modal.revive_dead_codes", "Reviving dead codes", cases=_revive_cases,
             reference=vq.revive_dead_codes, adapter=_revive_observe, judge=_judge_revive),
]

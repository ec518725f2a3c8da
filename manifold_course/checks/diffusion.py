"""Checks for Volume 3, chapter 1: diffusion, flows and guidance (sections 3.1-3.4).

Every sampler and loss is judged against the reference on cases drawn at grading time; the samplers that take a
network (``eps_fn``, ``v_fn``, ``f``) are driven with fields named in the case (the exact noise prediction of a
Gaussian mixture, linear and time-dependent fields), so that classroom grading records plain outputs. Noise enters
every stochastic step as an argument (``z``), so each answer is exact, never one random draw of the grader's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.generative import diffusion, flow_matching
from manifold_course.generative.mixtures import GaussianMixture
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import float_problem

CHAPTER = "v3_generative/01_diffusion_and_flows"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F64, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


def _spd(rng: np.random.Generator, d: int) -> torch.Tensor:
    A = rng.standard_normal((d, d))
    return torch.as_tensor(A @ A.T / d + 0.2 * np.eye(d), dtype=F64)


def _betas(rng: np.random.Generator, T: int, dtype=F64) -> torch.Tensor:
    kind = "linear" if rng.random() < 0.5 else "cosine"
    return diffusion.beta_schedule(T, kind).to(dtype)


# ---------------------------------------------------------------- 3.1 schedules and the forward process

def _schedule_cases(rng):
    yield Case((1000, "linear"), label="linear, T = 1000 (Ho et al.)", rtol=1e-9, atol=1e-15)
    yield Case((200, "linear"), label="linear, T = 200: both ends scaled by 1000/T", rtol=1e-9, atol=1e-15)
    yield Case((1000, "cosine"), label="cosine, T = 1000", rtol=1e-9, atol=1e-15)
    for T in (int(rng.integers(3, 40)), 7):
        for kind in ("linear", "cosine"):
            yield Case((T, kind), label=f"{kind}, T = {T}", rtol=1e-9, atol=1e-15)


def _alpha_bar_cases(rng):
    yield Case((torch.tensor([0.5], dtype=F64),), label="one step: 1 - beta")
    yield Case((torch.tensor([0.1, 0.2, 0.3], dtype=F64),), label="three steps: 0.9, 0.72, 0.504")
    yield Case((diffusion.beta_schedule(1000, "linear"),), label="linear schedule, T = 1000", rtol=1e-9, atol=1e-15)
    for T, dtype in ((int(rng.integers(5, 60)), F64), (33, F32)):
        yield Case((torch.as_tensor(rng.uniform(1e-4, 0.2, T), dtype=dtype),), label=f"T = {T} random betas, {dtype}")


def _q_sample_cases(rng):
    ab = diffusion.alpha_bar(diffusion.beta_schedule(100, "linear"))
    x0, eps = _t(rng, 5, 2), _t(rng, 5, 2)
    yield Case((x0, 0, eps, ab), label="t = 0: almost the data")
    yield Case((x0, 99, eps, ab), label="t = T-1: almost pure noise")
    yield Case((x0, int(rng.integers(1, 99)), eps, ab), label="one t for the whole batch (an int)")
    t = torch.as_tensor(rng.integers(0, 100, 5))
    yield Case((x0, t, eps, ab), label="one t per row (a tensor of shape (N,))")
    img, e_img = _t(rng, 3, 1, 8, 8, dtype=F32), _t(rng, 3, 1, 8, 8, dtype=F32)
    yield Case((img, torch.as_tensor(rng.integers(0, 100, 3)), e_img, ab), label="images (N, 1, 8, 8), float32, t per row")
    yield Case((_t(rng, 1, 7), torch.tensor([42]), _t(rng, 1, 7), ab), label="batch of 1")


def _gaussian_score(x, mu, Sigma, alpha_bar_t):
    """The reference: a one-component mixture's noised score."""
    return GaussianMixture(torch.ones(1, dtype=F64), mu[None], Sigma[None]).noised(alpha_bar_t).score(x)


def _score_cases(rng):
    mu, S = torch.tensor([1.0, -0.5], dtype=F64), torch.tensor([[0.5, 0.3], [0.3, 0.4]], dtype=F64)
    yield Case((_t(rng, 4, 2), mu, S, 1.0), label="alpha_bar = 1: the data's own score")
    yield Case((_t(rng, 4, 2), mu, S, 0.3), label="alpha_bar = 0.3")
    yield Case((mu[None].clone(), mu, torch.eye(2, dtype=F64), 1.0), label="at the mean: score 0", atol=1e-12)
    for d in (1, 3, int(rng.integers(4, 7))):
        yield Case((_t(rng, 6, d), _t(rng, d), _spd(rng, d), float(rng.uniform(0.01, 0.99))),
                   label=f"D = {d}, random Gaussian and noise level")


# ---------------------------------------------------------------- 3.1-3.2 reverse steps

def _ddpm_cases(rng):
    for T, t in ((100, 99), (100, 50), (100, 1), (100, 0), (int(rng.integers(20, 80)), None)):
        betas = _betas(rng, T)
        t = int(rng.integers(1, T)) if t is None else t
        label = {0: "t = 0: the last step adds no noise", 1: "t = 1: the posterior variance is small but not 0"}
        yield Case((_t(rng, 6, 2), t, _t(rng, 6, 2), betas, _t(rng, 6, 2)), label=label.get(t, f"T = {T}, t = {t}"))
    betas = diffusion.beta_schedule(50, "linear").to(F32)
    yield Case((_t(rng, 2, 1, 4, 4, dtype=F32), 30, _t(rng, 2, 1, 4, 4, dtype=F32), betas, _t(rng, 2, 1, 4, 4, dtype=F32)),
               label="float32 images (2, 1, 4, 4)")


def _ddim_step_cases(rng):
    ab = diffusion.alpha_bar(diffusion.beta_schedule(100, "linear"))
    for t, tp, eta, label in ((80, 60, 0.0, "eta = 0: deterministic"), (80, 79, 1.0, "eta = 1, one step: DDPM's variance"),
                              (50, 10, 0.5, "eta = 0.5, a stride of 40"), (9, -1, 0.0, "t_prev = -1: to the data"),
                              (99, 0, 1.0, "eta = 1, the longest stride")):
        yield Case((_t(rng, 5, 2), t, tp, _t(rng, 5, 2), ab, eta, _t(rng, 5, 2)), label=label)
    yield Case((_t(rng, 3, 1, 4, 4), 40, 20, _t(rng, 3, 1, 4, 4), ab, 0.3, _t(rng, 3, 1, 4, 4)), label="images (3, 1, 4, 4)")


# ---------------------------------------------------------------- samplers driven by a named field

def _mixture(rng, d: int, k: int) -> GaussianMixture:
    w = rng.dirichlet(np.ones(k))
    return GaussianMixture(torch.as_tensor(w), _t(rng, k, d, scale=2.0), torch.stack([_spd(rng, d) * 0.3 for _ in range(k)]))


def _ddim_sample_observe(fn):
    """Adapter: run ``fn(eps_fn, x_T, timesteps, alpha_bar)`` with the exact noise prediction of the case's
    Gaussian mixture as ``eps_fn``; record the output and the steps ``eps_fn`` was called with."""

    def observed(weights, means, covs, x_T, timesteps, alpha_bar):
        mix = GaussianMixture(weights, means, covs)
        calls = []

        def eps_fn(x, t):
            calls.append(int(t))
            return mix.eps_oracle(x, float(alpha_bar[int(t)]))

        out = fn(eps_fn, x_T.clone(), list(timesteps), alpha_bar)
        return {"x_0": out, "steps eps_fn was called at": calls}

    observed.__name__ = getattr(fn, "__name__", "ddim_sample")
    return observed


def _ddim_sample_cases(rng):
    ab = diffusion.alpha_bar(diffusion.beta_schedule(100, "linear"))
    for d, k, n in ((2, 3, 10), (2, 1, 5), (3, 2, 6), (1, 4, 1)):
        mix = _mixture(rng, d, k)
        ts = torch.linspace(99, 0, n).round().long().tolist() if n > 1 else [99]
        yield Case((mix.weights, mix.means, mix.covs, _t(rng, 7, d), ts, ab),
                   label=f"{k}-component mixture in {d}-D, {n} steps {ts[:3]}...", rtol=1e-7, atol=1e-9)
    mix = _mixture(rng, 2, 2)
    yield Case((mix.weights, mix.means, mix.covs, _t(rng, 4, 2), [70, 40, 10], ab), label="uneven steps [70, 40, 10]",
               rtol=1e-7, atol=1e-9)


def _field(name: str, params: torch.Tensor):
    """The vector fields the ODE exercises are run with: f(x, t) -> same shape as x."""
    if name == "decay":                       # dx/dt = -x
        return lambda x, t: -x
    if name == "linear":                      # dx/dt = A x
        return lambda x, t: x @ params.T
    if name == "forced":                      # dx/dt = cos(t) - x  (depends on time)
        return lambda x, t: torch.cos(torch.as_tensor(t, dtype=x.dtype)).reshape(-1, *[1] * (x.dim() - 1)) - x
    if name == "cubic":                       # dx/dt = -x^3 + p * t
        return lambda x, t: -x ** 3 + params * torch.as_tensor(t, dtype=x.dtype).reshape(-1, *[1] * (x.dim() - 1))
    if name == "constant":                    # dx/dt = u (one constant vector per row)
        return lambda x, t: params.expand_as(x).clone()
    raise KeyError(name)


def _with_field(fn, default_name: str):
    """Adapter: the case names the field (and its parameters); the learner's function receives it as a callable."""

    def observed(name, params, *args):
        return fn(_field(name, params), *args)

    observed.__name__ = getattr(fn, "__name__", default_name)
    return observed


_NONE = torch.zeros(0, dtype=F64)


def _heun_cases(rng):
    yield Case(("decay", _NONE, _t(rng, 5, 2), 0.0, 0.1), label="dx/dt = -x, dt = 0.1", rtol=1e-9, atol=1e-12)
    yield Case(("decay", _NONE, _t(rng, 5, 2), 2.0, -0.3), label="dx/dt = -x, a negative step dt = -0.3",
               rtol=1e-9, atol=1e-12)
    yield Case(("linear", _t(rng, 3, 3), _t(rng, 4, 3), 0.5, 0.05), label="dx/dt = A x", rtol=1e-9, atol=1e-12)
    yield Case(("forced", _NONE, _t(rng, 6, 2), float(rng.uniform(0, 3)), 0.2),
               label="dx/dt = cos(t) - x: the second slope is taken at t + dt", rtol=1e-9, atol=1e-12)
    yield Case(("cubic", _t(rng, 2), _t(rng, 3, 2, scale=0.5), 1.0, 0.25), label="dx/dt = -x^3 + p t", rtol=1e-9,
               atol=1e-12)


def _fm_pair_cases(rng):
    x0, x1 = _t(rng, 4, 2), _t(rng, 4, 2)
    yield Case((x0, x1, 0.0), label="t = 0: x_t = x0")
    yield Case((x0, x1, 1.0), label="t = 1: x_t = x1")
    yield Case((x0, x1, 0.3), label="t = 0.3 (a float)")
    yield Case((x0, x1, torch.as_tensor(rng.uniform(0, 1, 4))), label="one t per row (shape (N,))")
    yield Case((_t(rng, 3, 1, 4, 4, dtype=F32), _t(rng, 3, 1, 4, 4, dtype=F32), torch.as_tensor(rng.uniform(0, 1, 3), dtype=F32)),
               label="float32 images (3, 1, 4, 4), t per row")


def _fm_loss_cases(rng):
    x0, x1 = _t(rng, 1, 2), _t(rng, 1, 2)
    yield Case(("constant", x1 - x0, x0, x1, torch.tensor([0.4], dtype=F64)),
               label="the exact velocity of a single pair: loss 0", atol=1e-12)
    x0, x1 = _t(rng, 8, 3), _t(rng, 8, 3)
    yield Case(("constant", torch.zeros(3, dtype=F64), x0, x1, torch.as_tensor(rng.uniform(0, 1, 8))),
               label="v = 0: the mean squared length of x1 - x0 (summed over coordinates)")
    yield Case(("linear", _t(rng, 3, 3), x0, x1, torch.as_tensor(rng.uniform(0, 1, 8))), label="v = A x_t")
    yield Case(("forced", _NONE, x0, x1, torch.as_tensor(rng.uniform(0, 1, 8))), label="v depends on t")
    yield Case(("cubic", _t(rng, 3), _t(rng, 1, 3), _t(rng, 1, 3), torch.tensor([0.9], dtype=F64)), label="batch of 1")


def _euler_cases(rng):
    u = _t(rng, 2)
    yield Case(("constant", u, _t(rng, 6, 2), 1), label="a constant velocity: exact in one step", rtol=1e-9, atol=1e-12)
    yield Case(("linear", _t(rng, 2, 2, scale=0.5), _t(rng, 6, 2), 1), label="v = A x, one step", rtol=1e-9, atol=1e-12)
    yield Case(("linear", _t(rng, 2, 2, scale=0.5), _t(rng, 6, 2), 4), label="v = A x, four steps", rtol=1e-9, atol=1e-12)
    yield Case(("forced", _NONE, _t(rng, 5, 3), int(rng.integers(3, 9))),
               label="v depends on t: steps at t = 1, 1 - dt, ...", rtol=1e-9, atol=1e-12)
    yield Case(("cubic", _t(rng, 2), _t(rng, 4, 2, scale=0.5), 10), label="v = -x^3 + p t, ten steps", rtol=1e-9,
               atol=1e-12)


def _straightness_cases(rng):
    yield Case(("constant", _t(rng, 2), _t(rng, 6, 2), 4), label="a constant velocity: straight paths, S = 0",
               rtol=1e-9, atol=1e-12)
    yield Case(("linear", _t(rng, 2, 2, scale=0.5), _t(rng, 6, 2), 1), label="one step: the path is its own chord",
               rtol=1e-9, atol=1e-12)
    yield Case(("linear", _t(rng, 2, 2, scale=0.8), _t(rng, 6, 2), 8), label="v = A x, 8 steps: curved paths",
               rtol=1e-9, atol=1e-12)
    yield Case(("forced", _NONE, _t(rng, 5, 3), int(rng.integers(3, 9))), label="v depends on t",
               rtol=1e-9, atol=1e-12)
    yield Case(("cubic", _t(rng, 2), _t(rng, 4, 2, scale=0.5), 10), label="v = -x^3 + p t, ten steps",
               rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- guidance and latents

def _latent_pipeline_observe(fn):
    """Adapter: the case gives a Gaussian mixture in latent space (its exact noise prediction is ``eps_fn``) and a
    decoder ``tanh(z W^T + b)``; record the learner's decoded samples."""

    def observed(weights, means, covs, W, b, z_T, timesteps, alpha_bar, scale):
        mix = GaussianMixture(weights, means, covs)
        return fn(lambda z, t: mix.eps_oracle(z, float(alpha_bar[int(t)])), lambda z: torch.tanh(z @ W.T + b),
                  z_T.clone(), list(timesteps), alpha_bar, scale)

    observed.__name__ = getattr(fn, "__name__", "latent_ddim_sample")
    return observed


def _latent_pipeline_cases(rng):
    ab = diffusion.alpha_bar(diffusion.beta_schedule(100, "linear"))
    for d, D_out, n, scale in ((2, 5, 6, 0.25), (3, 8, 4, 2.0), (4, 3, 1, 1.0)):
        mix = _mixture(rng, d, 2)
        ts = torch.linspace(99, 0, n).round().long().tolist() if n > 1 else [99]
        label = f"{d}-D latents, a decoder to {D_out}-D, {n} DDIM steps, scale {scale:g}"
        yield Case((mix.weights, mix.means, mix.covs, _t(rng, D_out, d, scale=0.5), _t(rng, D_out, scale=0.1),
                    _t(rng, 5, d), ts, ab, scale), label=label, rtol=1e-7, atol=1e-9)


def _cfg_cases(rng):
    eu, ec = _t(rng, 5, 2), _t(rng, 5, 2)
    yield Case((eu, ec, 0.0), label="w = 0: unconditional")
    yield Case((eu, ec, 1.0), label="w = 1: conditional")
    yield Case((eu, ec, 7.5), label="w = 7.5 (Stable Diffusion's default)")
    yield Case((_t(rng, 2, 1, 4, 4, dtype=F32), _t(rng, 2, 1, 4, 4, dtype=F32), float(rng.uniform(2, 5))),
               label="float32 images")


def _compression_cases(rng):
    yield Case((512, 512, 3, 8, 4), label="Stable Diffusion v1: 48")
    yield Case((1024, 1024, 3, 8, 16), label="SD3-like: 16 latent channels")
    yield Case((256, 128, 3, 4, 3), label="not square, f = 4")
    yield Case((64, 64, 1, 2, 1), label="grey images, f = 2")
    yield Case((512, 512, 3, 8, 5), label="5 latent channels: not a whole number (38.4)")


def _scale_cases(rng):
    yield Case((_t(rng, 100, 8, scale=5.0, dtype=F32),), label="latents with std 5")
    yield Case((_t(rng, 50, 4, 8, 8, scale=0.2),), label="(N, C, H, W) latents with std 0.2")
    z = _t(rng, 200, 4) * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64) + 3.0
    yield Case((z,), label="unequal channels and a non-zero mean: one factor for all")


def _judge_scale(got, expected, case):
    problem = float_problem(got, "the scale factor")
    if problem:
        return problem
    if not math.isclose(got, expected, rel_tol=1e-6):
        z = case.args[0]
        return (f"scale factor {got:.6g}, expected {expected:.6g}: after scaling, z * s should have standard "
                f"deviation 1 (torch's z.std() over all elements), got {float((z * got).std()):.4g}")
    return None


def _judge_ratio(got, expected, case):
    problem = float_problem(got, "the compression ratio")
    if problem:
        return problem
    if not math.isclose(got, expected, rel_tol=1e-12):
        H, W, C, f, c = case.args
        return (f"got {got:g}, expected {expected:g}: the image has H*W*C = {H * W * C} numbers, the latent "
                f"c*(H/f)*(W/f) = {c * (H // f) * (W // f)}; return their ratio as a float")
    return None


EXERCISES = [
    Exercise("diffusion.beta_schedule", "Noise schedules: linear and cosine",
             cases=_schedule_cases, reference=diffusion.beta_schedule),
    Exercise("diffusion.alpha_bar", "The signal kept after t steps", cases=_alpha_bar_cases,
             reference=diffusion.alpha_bar),
    Exercise("diffusion.q_sample", "The forward process in one jump", cases=_q_sample_cases,
             reference=diffusion.q_sample),
    Exercise("diffusion.gaussian_data_score", "The exact score of noised Gaussian data", cases=_score_cases,
             reference=_gaussian_score),
    Exercise("diffusion.ddpm_step", "One DDPM (ancestral) step", cases=_ddpm_cases, reference=diffusion.ddpm_step),
    Exercise("diffusion.ddim_step", "One DDIM step, any eta", cases=_ddim_step_cases, reference=diffusion.ddim_step),
    Exercise("diffusion.ddim_sample", "Deterministic DDIM sampling", cases=_ddim_sample_cases,
             reference=diffusion.ddim_sample, adapter=_ddim_sample_observe),
    Exercise("diffusion.heun_step", "One step of Heun's method", cases=_heun_cases, reference=diffusion.heun_step,
             adapter=lambda fn: _with_field(fn, "heun_step")),
    Exercise("diffusion.fm_pair", "A point on a flow-matching line, and its velocity", cases=_fm_pair_cases,
             reference=flow_matching.fm_pair),
    Exercise("diffusion.fm_loss", "The conditional flow-matching loss", cases=_fm_loss_cases,
             reference=flow_matching.fm_loss, adapter=lambda fn: _with_field(fn, "fm_loss")),
    Exercise("diffusion.euler_sample", "Sampling a flow with Euler steps", cases=_euler_cases,
             reference=flow_matching.euler_sample, adapter=lambda fn: _with_field(fn, "euler_sample")),
    Exercise("diffusion.straightness", "How straight are a flow's paths?", cases=_straightness_cases,
             reference=flow_matching.straightness, adapter=lambda fn: _with_field(fn, "straightness")),
    Exercise("diffusion.latent_ddim_sample", "Latent diffusion's sampling pipeline", cases=_latent_pipeline_cases,
             reference=diffusion.latent_ddim_sample, adapter=_latent_pipeline_observe),
    Exercise("diffusion.cfg_eps", "Classifier-free guidance", cases=_cfg_cases, reference=diffusion.cfg_eps),
    Exercise("diffusion.compression_ratio", "Latent compression", cases=_compression_cases,
             reference=diffusion.compression_ratio, judge=_judge_ratio),
    Exercise("diffusion.latent_scale_factor", "The latent scale factor", cases=_scale_cases,
             reference=diffusion.latent_scale_factor, judge=_judge_scale),
]

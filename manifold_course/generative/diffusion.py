r"""Denoising diffusion: noise schedules, the forward process, and the DDPM, DDIM and Heun sampling steps.

The reference implementations of Volume 3's exercises 3.1-3.2 (SYLLABUS.md). Ho, Jain & Abbeel, "Denoising Diffusion
Probabilistic Models", 2020 (arXiv:2006.11239); Song, Meng & Ermon, "Denoising Diffusion Implicit Models", 2020
(arXiv:2010.02502); Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models", 2021 (arXiv:2102.09672);
Karras et al., "Elucidating the Design Space of Diffusion-Based Generative Models", 2022 (arXiv:2206.00364, Heun).

Indexing: ``T`` steps, ``t = 0 .. T-1``; ``betas[t]`` is $\beta_t$, ``alpha_bar[t]`` is
$\bar\alpha_t = \prod_{s \le t}(1 - \beta_s)$, and $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$.
Step ``t = 0`` is the last reverse step: it returns the mean, adding no noise ($\bar\alpha_{-1} = 1$).
"""

from __future__ import annotations

import math
from typing import Callable

import torch


def beta_schedule(T: int, kind: str = "linear") -> torch.Tensor:
    r"""The noise levels $\beta_0..\beta_{T-1}$ (float64).

    ``"linear"``: from $10^{-4}$ to $0.02$ for ``T = 1000`` (Ho et al.), both ends scaled by $1000/T$ for other ``T``
    (as in Nichol & Dhariwal's code) so that $\bar\alpha_{T-1}$ is near 0 whatever ``T``. ``"cosine"``:
    $\bar\alpha(t) = f(t)/f(0)$ with $f(t) = \cos^2\!\big(\frac{t/T + s}{1 + s}\frac\pi2\big)$, $s = 0.008$, and
    $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$ clipped at 0.999 (Nichol & Dhariwal).
    """
    if kind == "linear":
        scale = 1000.0 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        ab = f / f[0]
        return (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown schedule {kind!r}: use 'linear' or 'cosine'")


def alpha_bar(betas: torch.Tensor) -> torch.Tensor:
    r"""$\bar\alpha_t = \prod_{s \le t}(1-\beta_s)$, same shape as ``betas``."""
    return torch.cumprod(1 - betas, dim=0)


def q_sample(x0: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    r"""The forward process in one jump: $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon$.

    ``t`` is one step for the whole batch or one per row (shape (N,)); ``x0`` and ``eps`` have shape (N, ...).
    """
    ab = alpha_bar[torch.as_tensor(t)].to(x0.dtype)
    ab = ab.reshape(-1, *([1] * (x0.dim() - 1))) if ab.dim() == 1 else ab
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def posterior_variance(betas: torch.Tensor) -> torch.Tensor:
    r"""$\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$: the variance of $q(x_{t-1}\mid x_t, x_0)$ (0 at t = 0)."""
    ab = alpha_bar(betas)
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    return (1 - ab_prev) / (1 - ab) * betas


def ddpm_step(x_t: torch.Tensor, t: int, eps_hat: torch.Tensor, betas: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r"""One ancestral step $x_t \to x_{t-1}$:
    $\frac{1}{\sqrt{\alpha_t}}\big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\hat\varepsilon\big) + \sigma_t z$ with
    $\sigma_t^2 = \tilde\beta_t$ (the posterior variance; none at ``t = 0``). ``z`` is standard normal noise."""
    ab = alpha_bar(betas)
    beta = float(betas[t])
    mean = (x_t - beta / math.sqrt(1 - float(ab[t])) * eps_hat) / math.sqrt(1 - beta)
    return mean + math.sqrt(float(posterior_variance(betas)[t])) * z if t > 0 else mean


def ddim_step(x_t: torch.Tensor, t: int, t_prev: int, eps_hat: torch.Tensor, alpha_bar: torch.Tensor, eta: float,
              z: torch.Tensor) -> torch.Tensor:
    r"""One DDIM step from ``t`` to ``t_prev`` < ``t`` (``t_prev = -1``: to the data, $\bar\alpha = 1$):
    $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\hat\varepsilon)/\sqrt{\bar\alpha_t}$,
    $x_{t'} = \sqrt{\bar\alpha_{t'}}\hat x_0 + \sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon + \sigma z$,
    $\sigma = \eta\sqrt{\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_{t'}}}$.
    ``eta = 0``: deterministic; ``eta = 1`` with ``t_prev = t - 1``: DDPM's posterior variance."""
    ab_t = float(alpha_bar[t])
    ab_p = float(alpha_bar[t_prev]) if t_prev >= 0 else 1.0
    sigma = eta * math.sqrt((1 - ab_p) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_p)
    x0_hat = (x_t - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)
    return math.sqrt(ab_p) * x0_hat + math.sqrt(max(1 - ab_p - sigma**2, 0.0)) * eps_hat + sigma * z


def ddim_sample(eps_fn: Callable[[torch.Tensor, int], torch.Tensor], x_T: torch.Tensor, timesteps,
                alpha_bar: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) along the decreasing ``timesteps`` (e.g. 10 of 0..T-1), then to the data."""
    ts = [int(t) for t in timesteps]
    x = x_T
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        x = ddim_step(x, t, t_prev, eps_fn(x, t), alpha_bar, 0.0, torch.zeros_like(x))
    return x


def ddim_invert(eps_fn: Callable[[torch.Tensor, int], torch.Tensor], x0: torch.Tensor, timesteps,
                alpha_bar: torch.Tensor) -> torch.Tensor:
    """DDIM inversion: run the deterministic DDIM map backwards, from the data ``x0`` up the increasing
    ``timesteps`` to the last one, each step using the noise predicted at the level it starts from (at the data,
    the first level's). ``ddim_sample`` along the same steps reversed brings ``x0`` back, up to the error of that
    approximation, which shrinks as the steps get smaller."""
    ts = [int(t) for t in timesteps]
    x = x0
    for t_from, t_to in zip([-1] + ts[:-1], ts):
        eps = eps_fn(x, t_from if t_from >= 0 else t_to)
        ab_from = float(alpha_bar[t_from]) if t_from >= 0 else 1.0
        ab_to = float(alpha_bar[t_to])
        x0_hat = (x - math.sqrt(1 - ab_from) * eps) / math.sqrt(ab_from)
        x = math.sqrt(ab_to) * x0_hat + math.sqrt(1 - ab_to) * eps
    return x


def cfg_eps(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, w: float) -> torch.Tensor:
    r"""Classifier-free guidance: $\hat\varepsilon = \varepsilon_\varnothing + w\,(\varepsilon_c - \varepsilon_\varnothing)$
    (``w = 0``: unconditional; ``w = 1``: conditional; ``w > 1``: guided). Ho & Salimans (arXiv:2207.12598) write
    $(1 + w')\varepsilon_c - w'\varepsilon_\varnothing$, the same rule with $w = 1 + w'$."""
    return eps_uncond + w * (eps_cond - eps_uncond)


def latent_ddim_sample(eps_fn: Callable[[torch.Tensor, int], torch.Tensor], decode: Callable[[torch.Tensor], torch.Tensor],
                       z_T: torch.Tensor, timesteps, alpha_bar: torch.Tensor, scale: float) -> torch.Tensor:
    """Latent diffusion's sampling pipeline: DDIM in the *scaled* latent space (where the network was trained on
    ``scale * z``), then undo the scale and decode: ``decode(ddim_sample(...) / scale)``."""
    return decode(ddim_sample(eps_fn, z_T, timesteps, alpha_bar) / scale)


def heun_step(f: Callable[[torch.Tensor, float], torch.Tensor], x: torch.Tensor, t: float, dt: float) -> torch.Tensor:
    """One step of Heun's method (explicit trapezoid) for dx/dt = f(x, t): Euler predicts, the average slope corrects."""
    k1 = f(x, t)
    k2 = f(x + dt * k1, t + dt)
    return x + 0.5 * dt * (k1 + k2)


def compression_ratio(H: int, W: int, C: int, f: int, c_latent: int) -> float:
    """How many times fewer numbers a latent of ``c_latent`` channels at 1/``f`` resolution holds: 3HW / (c HW/f^2)."""
    return (H * W * C) / (c_latent * (H // f) * (W // f))


def latent_scale_factor(z: torch.Tensor) -> float:
    """The factor s that gives latents unit standard deviation (Stable Diffusion's 0.18215 is one such number)."""
    return 1.0 / float(z.std())

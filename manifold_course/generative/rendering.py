r"""Differentiable rendering for 3-D generation, in flatland: volume rendering (NeRF), Gaussian splats, SDS.

**Volume rendering** (Mildenhall et al., "NeRF: Representing Scenes as Neural Radiance Fields for View Synthesis",
2020, arXiv:2003.08934). A ray is cut into $S$ segments of lengths $\delta_i$ at which a field gives a density
$\sigma_i \ge 0$ and a colour $c_i$. Segment $i$ is opaque with probability $\alpha_i = 1 - e^{-\sigma_i\delta_i}$, the
light reaches it with the **transmittance** $T_i = \exp(-\sum_{j<i}\sigma_j\delta_j) = \prod_{j<i}(1-\alpha_j)$ (the
current segment is *not* included: $T_0 = 1$), and the pixel is

$$C(r) = \sum_i w_i c_i,\qquad w_i = T_i\,\alpha_i \ge 0,\qquad \sum_i w_i = 1 - T_{S} \le 1 .$$

A "flatland NeRF" here is a 2-D field $(x, y) \mapsto (\sigma, c)$ seen through parallel rays: each camera angle gives
a 1-D image, and the field is fitted to a few such images (tomography with occlusion).

**Gaussian splatting** (Kerbl et al., "3D Gaussian Splatting for Real-Time Radiance Field Rendering", 2023,
arXiv:2308.04079) replaces the field by explicit Gaussians, each with a mean $\mu_g$, covariance $\Sigma_g$, colour
$c_g$ and opacity $o_g$, and alpha-composites them front to back at every pixel $p$ with the same formula:
$\alpha_g(p) = o_g\exp(-\tfrac12(p-\mu_g)^\top\Sigma_g^{-1}(p-\mu_g))$, $C(p) = \sum_g c_g\alpha_g\prod_{h<g}(1-\alpha_h)$.
In 3-D the order is by depth; in our 2-D splats it is the order of the list.

**Score Distillation Sampling** (Poole et al., "DreamFusion: Text-to-3D using 2D Diffusion", 2022,
arXiv:2209.14988). For a rendering $x = g(\theta)$, a noise level $\bar\alpha_t$ and noise $\varepsilon$, noise the
rendering, $x_t = \sqrt{\bar\alpha_t}\,x + \sqrt{1-\bar\alpha_t}\,\varepsilon$, and use the frozen model's error as
the gradient with respect to $x$ (the U-Net's Jacobian is dropped):

$$\nabla_\theta\mathcal L_{SDS} = \mathbb E_{t,\varepsilon}\big[w(t)\,(\hat\varepsilon_\phi(x_t; y, t) - \varepsilon)\,
\partial x/\partial\theta\big].$$

With the exact $\hat\varepsilon$ of a data law $p$, its mean over $\varepsilon$ is
$-w\sqrt{1-\bar\alpha_t}\,\mathbb E[\nabla\log p_t(x_t)]$: descending it climbs the smoothed log-density, so the
parameters move to **modes** rather than sampling $p$.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from manifold_course.seeding import manual_seed, torch_generator

# ---------------------------------------------------------------------- volume rendering


def transmittance(sigmas: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    r"""$T_i = \exp(-\sum_{j<i}\sigma_j\delta_j)$, shape (..., S) like ``sigmas`` (so $T_0 = 1$)."""
    sd = sigmas * deltas
    excl = torch.cat([torch.zeros_like(sd[..., :1]), torch.cumsum(sd, dim=-1)[..., :-1]], dim=-1)
    return torch.exp(-excl)


def volume_render(sigmas: torch.Tensor, colors: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rgb (..., C), weights (..., S))`` from ``sigmas`` (..., S) >= 0, ``colors`` (..., S, C), ``deltas`` (..., S)."""
    alpha = 1.0 - torch.exp(-sigmas * deltas)
    weights = transmittance(sigmas, deltas) * alpha
    return (weights[..., None] * colors).sum(-2), weights


# ---------------------------------------------------------------------- flatland NeRF


def ray_samples(angles: torch.Tensor, n_rays: int, n_samples: int, radius: float = 1.0):
    r"""Parallel rays through the square $[-R, R]^2$: for angle $\theta$ they travel along $(\cos\theta, \sin\theta)$,
    ``n_rays`` offsets across. Returns ``(points (V, n_rays, n_samples, 2), deltas (V, n_rays, n_samples))``,
    ``V = len(angles)``; samples are segment midpoints, front (the camera side) first."""
    angles = torch.as_tensor(angles, dtype=torch.float32)
    d = torch.stack([angles.cos(), angles.sin()], -1)                       # (V, 2) direction of travel
    n = torch.stack([-angles.sin(), angles.cos()], -1)                      # (V, 2) across the image
    s = torch.linspace(-radius, radius, n_rays)
    delta = 2 * radius / n_samples
    t = -radius + delta * (torch.arange(n_samples, dtype=torch.float32) + 0.5)
    pts = s[None, :, None, None] * n[:, None, None, :] + t[None, None, :, None] * d[:, None, None, :]
    return pts, torch.full(pts.shape[:-1], delta)


def disc_scene(points: torch.Tensor, centers, radii, densities, colors, softness: float = 0.02):
    """A flatland scene of soft discs: ``(sigma (...), color (..., C))`` at ``points`` (..., 2). The colour where
    discs overlap is their density-weighted mean; outside all discs it is 0 (and the density is ~0)."""
    c, r = torch.as_tensor(centers, dtype=points.dtype), torch.as_tensor(radii, dtype=points.dtype)
    dens, col = torch.as_tensor(densities, dtype=points.dtype), torch.as_tensor(colors, dtype=points.dtype)
    dist = (points[..., None, :] - c).norm(dim=-1)                          # (..., K)
    each = dens * torch.sigmoid((r - dist) / softness)                      # (..., K)
    sigma = each.sum(-1)
    color = (each[..., None] * col).sum(-2) / sigma.clamp_min(1e-12)[..., None]
    return sigma, color


class FlatlandField(nn.Module):
    r"""A NeRF in 2-D: Fourier features $[\sin(2^k\pi p), \cos(2^k\pi p)]_{k<L}$ of a point $p$, then an MLP to
    $(\sigma, c)$ with $\sigma = \mathrm{softplus}$ (non-negative) and $c = \mathrm{sigmoid}$ (in [0, 1])."""

    def __init__(self, n_freqs: int = 4, hidden: int = 64, n_colors: int = 3):
        super().__init__()
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n_freqs, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(4 * n_freqs + 2, hidden), nn.ReLU(), nn.Linear(hidden, 1 + n_colors))

    def forward(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        arg = p[..., :, None] * self.freqs                                   # (..., 2, L)
        feats = torch.cat([p, arg.sin().flatten(-2), arg.cos().flatten(-2)], -1)
        out = self.net(feats)
        return nn.functional.softplus(out[..., 0] * 10.0), torch.sigmoid(out[..., 1:])


def render_field(field: Callable, points: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """1-D images (V, n_rays, C) of a field ``p -> (sigma, color)`` along the rays of :func:`ray_samples`."""
    sigma, color = field(points)
    return volume_render(sigma, color, deltas)[0]


def fit_flatland_nerf(images: torch.Tensor, points: torch.Tensor, deltas: torch.Tensor, steps: int = 300,
                      lr: float = 1e-2, seed: int = 0, progress: bool = False) -> tuple[FlatlandField, list[float]]:
    """Fit a :class:`FlatlandField` to 1-D images (V, n_rays, C) seen along ``points``/``deltas`` (full batch, Adam,
    mean squared error); returns the field and the loss of every step."""
    manual_seed(seed)
    field = FlatlandField(n_colors=images.shape[-1])
    opt = torch.optim.Adam(field.parameters(), lr=lr)
    losses = []
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="flatland NeRF")
    for _ in it:
        loss = ((render_field(field, points, deltas) - images) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return field, losses


# ---------------------------------------------------------------------- 2-D Gaussian splatting


def splat_2d(means: torch.Tensor, covs: torch.Tensor, colors: torch.Tensor, opacities: torch.Tensor,
             grid: torch.Tensor) -> torch.Tensor:
    """Alpha-composite G Gaussians, front (index 0) to back, at the points ``grid`` (P, 2): returns (P, C).

    ``means`` (G, 2), ``covs`` (G, 2, 2) symmetric positive definite, ``colors`` (G, C), ``opacities`` (G,) in [0, 1].
    """
    d = grid[:, None, :] - means[None]                                       # (P, G, 2)
    sol = torch.einsum("gij,pgj->pgi", torch.linalg.inv(covs), d)          # Sigma_g^{-1} (p - mu_g)
    alpha = opacities * torch.exp(-0.5 * (d * sol).sum(-1))                 # (P, G)
    T = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
    return (T * alpha) @ colors


def pixel_grid(H: int, W: int, dtype=torch.float64) -> torch.Tensor:
    """Pixel centres (H*W, 2) as (x, y) = ((col + 0.5) / W, (row + 0.5) / H), row-major."""
    ys, xs = torch.meshgrid((torch.arange(H, dtype=dtype) + 0.5) / H, (torch.arange(W, dtype=dtype) + 0.5) / W,
                            indexing="ij")
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)


class Splats(nn.Module):
    r"""G trainable 2-D Gaussians: $\Sigma = R(\phi)\,\mathrm{diag}(s^2)\,R(\phi)^\top$ (scales $s = e^{\log s}$, angle
    $\phi$, as 3DGS builds $\Sigma = RSS^\top R^\top$), colours and opacities through a sigmoid."""

    def __init__(self, n: int, n_colors: int = 1, seed: int = 0, scale: float = 0.1):
        super().__init__()
        g = torch_generator(seed)
        f64 = dict(dtype=torch.float64)
        self.means = nn.Parameter(torch.rand(n, 2, generator=g, **f64))
        self.log_scales = nn.Parameter(torch.full((n, 2), math.log(scale), **f64))
        self.angles = nn.Parameter(math.pi * torch.rand(n, generator=g, **f64))
        self.color_logits = nn.Parameter(0.1 * torch.randn(n, n_colors, generator=g, **f64))
        self.opacity_logits = nn.Parameter(torch.zeros(n, **f64))

    def covs(self) -> torch.Tensor:
        c, s = self.angles.cos(), self.angles.sin()
        R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)     # (G, 2, 2)
        return R @ torch.diag_embed(torch.exp(2 * self.log_scales)) @ R.transpose(1, 2)

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return splat_2d(self.means, self.covs(), torch.sigmoid(self.color_logits), torch.sigmoid(self.opacity_logits),
                        grid)


def fit_splats(image: torch.Tensor, n: int = 24, steps: int = 300, lr: float = 0.03, seed: int = 0,
               progress: bool = False) -> tuple[Splats, list[float]]:
    """Fit :class:`Splats` to a grey image (H, W) with values in [0, 1] by mean squared error at the pixel centres."""
    H, W = image.shape
    grid, target = pixel_grid(H, W), image.reshape(-1, 1).to(torch.float64)
    model = Splats(n, 1, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="splats")
    for _ in it:
        loss = ((model(grid) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses


# ---------------------------------------------------------------------- Score Distillation Sampling


def sds_grad(eps_fn: Callable[[torch.Tensor, float], torch.Tensor], x: torch.Tensor, alpha_bar: float,
             eps: torch.Tensor, w: float) -> torch.Tensor:
    r"""The SDS gradient with respect to the rendering: $w\,(\hat\varepsilon(x_t, \bar\alpha_t) - \varepsilon)$ with
    $x_t = \sqrt{\bar\alpha_t}\,x + \sqrt{1-\bar\alpha_t}\,\varepsilon$; ``x`` and ``eps`` (N, D), ``eps_fn(x_t,
    alpha_bar)`` the frozen model's noise prediction (N, D). No gradient flows through ``eps_fn``."""
    with torch.no_grad():
        x_t = math.sqrt(alpha_bar) * x + math.sqrt(1.0 - alpha_bar) * eps
        return w * (eps_fn(x_t, alpha_bar) - eps)


def sds_points(eps_fn: Callable[[torch.Tensor, float], torch.Tensor], x0: torch.Tensor, steps: int = 500,
               lr: float = 0.05, alpha_bar_range: tuple[float, float] = (0.3, 0.99), anneal: bool = True,
               seed: int = 0, record_every: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    r"""Optimise a set of points (the "renderer" is the identity, $x = \theta$) by SDS with $w = 1$ and plain gradient
    descent. Each step uses one $\bar\alpha$ in ``alpha_bar_range`` = (lo, hi) and fresh $\varepsilon$ per point:
    drawn uniformly, or with ``anneal`` from the noisiest level to the cleanest (step $s$ of $n$ draws uniformly in
    $[lo + (hi-lo)s/n,\ lo + (hi-lo)(s+1)/n]$: coarse shapes first, as in time-annealed SDS schedules). Returns the
    final points and, if ``record_every`` > 0, snapshots every ``record_every`` steps."""
    g = torch_generator(seed)
    theta = x0.clone().to(torch.float64).requires_grad_(True)
    opt = torch.optim.SGD([theta], lr=lr)
    lo, hi = alpha_bar_range
    snaps = []
    for step in range(steps):
        if record_every and step % record_every == 0:
            snaps.append(theta.detach().clone())
        u = float(torch.rand((), generator=g, dtype=torch.float64))
        ab = lo + (hi - lo) * ((step + u) / steps if anneal else u)
        eps = torch.randn(theta.shape, generator=g, dtype=torch.float64)
        opt.zero_grad()
        theta.backward(sds_grad(eps_fn, theta.detach(), ab, eps, 1.0))      # d theta / d theta = I: grad is the SDS term
        opt.step()
    return theta.detach(), snaps

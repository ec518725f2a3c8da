r"""Small time-conditioned networks for Volume 3: the sinusoidal time embedding, an MLP denoiser, and its trainers.

One network serves every 2-D (and small-vector) experiment of the volume: it predicts the noise
$\varepsilon_\theta(x_t, t)$ of DDPM/DDIM (``train_eps``) or the velocity $v_\theta(x_t, t)$ of flow matching
(``train_velocity``), optionally conditioned on a class label with a learned "no label" class for classifier-free
guidance (Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022, arXiv:2207.12598).

The time embedding is the Transformer's sinusoidal position code applied to a (possibly fractional) time
(Vaswani et al. 2017, arXiv:1706.03762; used for diffusion by Ho et al. 2020, arXiv:2006.11239):
$\mathrm{emb}(t)_i = \cos(t\,\omega_i)$ for $i < d/2$ and $\sin(t\,\omega_{i-d/2})$ after, with
$\omega_i = P^{-i/(d/2)}$ and $P$ the ``max_period``, the convention of the DDPM, guided-diffusion and DiT code.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from manifold_course.seeding import manual_seed, torch_generator

from .diffusion import alpha_bar as _alpha_bar
from .flow_matching import fm_pair


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    r"""Sinusoidal embedding of times ``t`` (shape ``(n,)``, integer steps or fractions) -> ``(n, dim)``.

    First half cosines, second half sines, frequencies $\omega_i = P^{-i/h}$, $h = \lfloor d/2 \rfloor$; an odd
    ``dim`` gets one zero column at the end.
    """
    t = torch.as_tensor(t)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    args = t.reshape(-1, 1).to(torch.float64) * freqs.reshape(1, -1)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
    return emb.to(dtype)


class TimeMLP(nn.Module):
    """An MLP $f(x, t[, y])$: input, time embedding and (optionally) a class embedding are summed into the first
    hidden layer. ``n_classes`` > 0 adds an embedding table with one extra row, index ``n_classes``, for "no label".
    ``time_scale`` multiplies ``t`` before embedding (1 for integer DDPM steps, e.g. 1000 for flow-matching times
    in [0, 1]).
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3, t_dim: int = 32, n_classes: int = 0,
                 time_scale: float = 1.0):
        super().__init__()
        self.dim, self.t_dim, self.n_classes, self.time_scale = dim, t_dim, n_classes, time_scale
        self.inp = nn.Linear(dim, hidden)
        self.temb = nn.Sequential(nn.Linear(t_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.cemb = nn.Embedding(n_classes + 1, hidden) if n_classes else None
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.SiLU(), nn.Linear(hidden, hidden)]
        self.body = nn.Sequential(*layers, nn.SiLU(), nn.Linear(hidden, dim))

    def features(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        """The first hidden layer, inp(x) + temb(emb(t * time_scale)) [+ cemb(y)]: the trunk ``body``'s input."""
        t = torch.as_tensor(t, dtype=x.dtype)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        h = self.inp(x) + self.temb(timestep_embedding(t * self.time_scale, self.t_dim).to(x.dtype))
        if self.cemb is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.n_classes, dtype=torch.long)
            h = h + self.cemb(y)
        return h

    def forward(self, x: torch.Tensor, t, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.features(x, t, y))


def _fit(model: nn.Module, n: int, steps: int, batch: int, lr: float, seed: int,
         loss_of: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
         progress: Callable[[int, float], None] | None) -> list[float]:
    """The loop both trainers share: seeded mini-batch indices into ``n`` examples, ``loss_of(idx, generator)``,
    Adam on the parameters that require a gradient, a cosine learning-rate decay; returns every step's loss."""
    manual_seed(seed)
    g = torch_generator(seed)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for step in range(steps):
        loss = loss_of(torch.randint(0, n, (min(batch, n),), generator=g), g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if progress is not None:
            progress(step, losses[-1])
    return losses


def train_eps(model: TimeMLP, X: torch.Tensor, betas: torch.Tensor, steps: int = 2000, batch: int = 256,
              lr: float = 2e-3, seed: int = 0, y: torch.Tensor | None = None, p_uncond: float = 0.0,
              progress: Callable[[int, float], None] | None = None) -> list[float]:
    r"""Train ``model`` as an $\varepsilon$-network with $\mathcal L_{simple}$ (Ho et al. 2020) on data ``X``.

    Times are drawn uniformly from ``0 .. T-1``. With labels ``y``, each label is replaced by the "no label" index
    with probability ``p_uncond`` (classifier-free guidance's label dropout). Adam with a cosine learning-rate
    decay; returns the loss of every step. Seeded through ``manifold_course.seeding`` (the seed knob moves it).
    """
    ab = _alpha_bar(betas).to(X.dtype)

    def loss_of(idx, g):
        x0 = X[idx]
        t = torch.randint(0, len(betas), (len(idx),), generator=g)
        eps = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
        a = ab[t].reshape(-1, *([1] * (x0.ndim - 1)))
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        yy = None
        if y is not None:
            yy = y[idx].clone()
            yy[torch.rand(len(idx), generator=g) < p_uncond] = model.n_classes
        return ((model(xt, t.to(X.dtype), yy) - eps) ** 2).mean()

    return _fit(model, len(X), steps, batch, lr, seed, loss_of, progress)


def train_velocity(model: nn.Module, X0: torch.Tensor, steps: int = 2000, batch: int = 256, lr: float = 2e-3,
                   seed: int = 0, X1: torch.Tensor | None = None, C: torch.Tensor | None = None,
                   progress: Callable[[int, float], None] | None = None) -> list[float]:
    r"""Train ``model`` as a flow-matching velocity $v_\theta(x_t, t)$ (t = 0 data, t = 1 noise) on data ``X0``.

    Without ``X1`` each data point is paired with fresh Gaussian noise (independent coupling). With ``X1`` (same
    length as ``X0``) the pairs ``(X0[i], X1[i])`` are kept: rectified flow's reflow trains on the pairs a first
    model produced (Liu, Gong & Liu 2022, arXiv:2209.03003). With a condition ``C`` (one row per data point) the
    model is called as ``model(x_t, t, C[i])``. Only parameters with ``requires_grad`` are trained (a frozen base
    stays as it is); Adam with a cosine learning-rate decay; returns the loss of every step.
    """

    def loss_of(idx, g):
        x0 = X0[idx]
        x1 = X1[idx] if X1 is not None else torch.randn(x0.shape, generator=g, dtype=x0.dtype)
        t = torch.rand(len(idx), generator=g, dtype=x0.dtype)
        xt, u = fm_pair(x0, x1, t)
        v = model(xt, t) if C is None else model(xt, t, C[idx])
        return ((v - u) ** 2).mean()

    return _fit(model, len(X0), steps, batch, lr, seed, loss_of, progress)

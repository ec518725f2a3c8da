r"""Flow matching and rectified flow: straight-line paths between data and noise.

The reference implementations of Volume 3's exercises 3.3 (SYLLABUS.md). Convention (as in the syllabus and the
course's :mod:`~manifold_course.generative.mixtures`): $t = 0$ is the data $x_0$, $t = 1$ the noise $x_1$,
$x_t = (1-t)x_0 + t x_1$, and the conditional velocity is $u = x_1 - x_0$ (the same at every t along one pair's
line). A model $v_\theta(x, t)$ regresses onto it; samples come from integrating $dx/dt = v$ from $t = 1$ down to 0.
Lipman et al. 2022 (arXiv:2210.02747); Liu, Gong & Liu, "Flow Straight and Fast", 2022 (arXiv:2209.03003);
Esser et al., "Scaling Rectified Flow Transformers" (Stable Diffusion 3), 2024 (arXiv:2403.03206).
"""

from __future__ import annotations

from typing import Callable

import torch

VelocityField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]   # v(x (N, D), t (N,)) -> (N, D)


def _col(t: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=like.dtype)
    return t.reshape(-1, *([1] * (like.dim() - 1))) if t.dim() == 1 else t


def fm_pair(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """The point x_t = (1 - t) x0 + t x1 on each pair's line, and the line's velocity u = x1 - x0 (t: scalar or (N,))."""
    tc = _col(t, x0)
    return (1 - tc) * x0 + tc * x1, x1 - x0


def fm_loss(v_fn: VelocityField, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""The conditional flow-matching loss $\frac1N\sum_i \|v(x_{t_i}, t_i) - (x_{1,i} - x_{0,i})\|^2$."""
    xt, u = fm_pair(x0, x1, t)
    return ((v_fn(xt, torch.as_tensor(t, dtype=x0.dtype).expand(len(x0))) - u) ** 2).flatten(1).sum(1).mean()


def euler_sample(v_fn: VelocityField, x1: torch.Tensor, n_steps: int) -> torch.Tensor:
    """Integrate dx/dt = v from t = 1 (the noise ``x1``) to t = 0 in ``n_steps`` equal Euler steps."""
    x, dt = x1, 1.0 / n_steps
    for i in range(n_steps):
        t = 1.0 - i * dt
        x = x - dt * v_fn(x, torch.full((len(x),), t, dtype=x.dtype))
    return x


def straightness(v_fn: VelocityField, x1: torch.Tensor, n_steps: int) -> float:
    r"""How far the sampling paths are from straight lines: along each Euler path from $x_1$ to its end $\hat x_0$,
    $S = \mathbb E\int_0^1 \|v(x_t, t) - (x_1 - \hat x_0)\|^2 dt$ (Liu et al.), by the same ``n_steps`` steps.
    0 exactly when every path is a straight line travelled at constant speed."""
    vs, x, dt = [], x1, 1.0 / n_steps
    for i in range(n_steps):
        t = 1.0 - i * dt
        v = v_fn(x, torch.full((len(x),), t, dtype=x.dtype))
        vs.append(v)
        x = x - dt * v
    chord = x1 - x                                                      # x_1 - x_0_hat, per path
    return float(sum(((v - chord) ** 2).flatten(1).sum(1).mean() for v in vs) * dt)

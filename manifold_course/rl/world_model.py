r"""World models: a learned dynamics model, planning and imagination in it, and two of DreamerV3's tricks (5.13).

- D. Ha, J. Schmidhuber, "World Models", 2018, arXiv:1803.10122: learn a model of the environment, then act (or
  train a controller) inside it.
- D. Hafner, T. Lillicrap, M. Norouzi, J. Ba, "Mastering Atari with Discrete World Models" (DreamerV2), 2020,
  arXiv:2010.02193: categorical latents and **KL balancing**.
- D. Hafner, J. Pasukonis, J. Ba, T. Lillicrap, "Mastering Diverse Domains through World Models" (DreamerV3), 2023,
  arXiv:2301.04104: **symlog** targets and **free bits**.

**symlog** $(x) = \mathrm{sign}(x)\ln(1+|x|)$ and its inverse **symexp** $(y) = \mathrm{sign}(y)(e^{|y|}-1)$: a network
predicts symlog of a target whose scale is unknown (returns of 1 or of 10 000), so that a squared error neither
explodes on large targets nor vanishes on small ones; near 0 symlog is the identity.

**KL balancing with free bits.** With a posterior $q = q(z_t\mid h_t, x_t)$ (sees the observation) and a prior
$p = p(\hat z_t\mid h_t)$ (must predict it), both categorical,

$$\mathcal L_{KL} = \beta_{dyn}\max\big(b, \mathrm{KL}[\mathrm{sg}(q)\,\|\,p]\big)
                 + \beta_{rep}\max\big(b, \mathrm{KL}[q\,\|\,\mathrm{sg}(p)]\big),$$

sg the stop-gradient, $b$ the free bits (1 nat in DreamerV3), $\beta_{dyn} = 0.5$, $\beta_{rep} = 0.1$. Both terms
have the same value; the stop-gradients decide who moves: the first trains the prior towards the posterior, the
second (five times weaker) the posterior towards the prior. Below $b$ nats the max is constant and no gradient
flows, so the representation is not squeezed into a trivial code once the KL is already small.

The demo's model is an MLP $\hat s' = s + f_\theta(s, a)$ on a real Gymnasium environment; **random-shooting
model-predictive control** samples $N$ action sequences, scores each by its return *in the model*, executes the
first action of the best and replans at every step.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.seeding import torch_generator


def symlog(x: torch.Tensor) -> torch.Tensor:
    r"""$\mathrm{sign}(x)\ln(1+|x|)$."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(y: torch.Tensor) -> torch.Tensor:
    r"""$\mathrm{sign}(y)(e^{|y|}-1)$, the inverse of :func:`symlog`."""
    return torch.sign(y) * torch.expm1(torch.abs(y))


def categorical_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    r"""$\mathrm{KL}[p\,\|\,q]$ between categoricals given by logits (..., L, K), summed over the L latents and K
    classes: shape (...)."""
    logp, logq = F.log_softmax(p_logits, -1), F.log_softmax(q_logits, -1)
    return (logp.exp() * (logp - logq)).sum((-2, -1))


def kl_balance(post_logits: torch.Tensor, prior_logits: torch.Tensor, beta_dyn: float = 0.5, beta_rep: float = 0.1,
               free_bits: float = 1.0) -> torch.Tensor:
    r"""DreamerV3's KL loss (module docstring) for logits (B, L, K): each KL per sample (summed over latents and
    classes), clipped below at ``free_bits``, weighted, then averaged over the batch; a 0-dim tensor."""
    dyn = categorical_kl(post_logits.detach(), prior_logits)          # trains the prior
    rep = categorical_kl(post_logits, prior_logits.detach())          # trains the posterior (representation)
    return (beta_dyn * dyn.clamp(min=free_bits) + beta_rep * rep.clamp(min=free_bits)).mean()


def imagine(dynamics: Callable, policy: Callable, z0: torch.Tensor, H: int):
    r"""Roll a model forward ``H`` steps from ``z0`` (B, d_z) without the environment: $a_t = \pi(z_t)$,
    $z_{t+1} = f(z_t, a_t)$. Returns ``(states (B, H+1, d_z), actions (B, H, d_a))`` with ``states[:, 0] = z0``."""
    zs, acts = [z0], []
    z = z0
    for _ in range(H):
        a = policy(z)
        z = dynamics(z, a)
        zs.append(z)
        acts.append(a)
    return torch.stack(zs, 1), torch.stack(acts, 1) if acts else z0.new_zeros(z0.shape[0], 0, 0)


class DynamicsModel(nn.Module):
    r"""$\hat s' = s + f_\theta(s, a)$, an MLP on (state, action); inputs and the change are standardised with the
    training data's statistics (stored as buffers)."""

    def __init__(self, state_dim: int, action_dim: int, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim + action_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, state_dim))
        for name, size in (("x_mean", state_dim + action_dim), ("x_std", state_dim + action_dim),
                           ("d_mean", state_dim), ("d_std", state_dim)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = (torch.cat([s, a], -1) - self.x_mean) / self.x_std
        return s + self.net(x) * self.d_std + self.d_mean


def fit_dynamics(model: DynamicsModel, s: torch.Tensor, a: torch.Tensor, s2: torch.Tensor, steps: int = 800,
                 batch_size: int = 256, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Mean-squared error on the standardised change ``s2 - s``; returns the loss of every step."""
    x, d = torch.cat([s, a], -1), s2 - s
    model.x_mean.copy_(x.mean(0)), model.x_std.copy_(x.std(0) + 1e-6)
    model.d_mean.copy_(d.mean(0)), model.d_std.copy_(d.std(0) + 1e-6)
    gen = torch_generator(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        i = torch.randint(0, s.shape[0], (batch_size,), generator=gen)
        pred = (model(s[i], a[i]) - s[i] - model.d_mean) / model.d_std
        loss = F.mse_loss(pred, (d[i] - model.d_mean) / model.d_std)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def random_shooting(model: Callable, reward_fn: Callable, s: torch.Tensor, horizon: int, n_candidates: int,
                    low: float, high: float, gen: torch.Generator, gamma: float = 1.0) -> float:
    """The first action of the best of ``n_candidates`` uniform action sequences, scored by their return in the
    model: ``reward_fn(s, a)`` for each imagined step. ``s`` (d_s,); a one-dimensional action in [low, high]."""
    acts = low + (high - low) * torch.rand(n_candidates, horizon, 1, generator=gen)
    z = s.expand(n_candidates, -1)
    total = torch.zeros(n_candidates)
    for t in range(horizon):
        total += gamma**t * reward_fn(z, acts[:, t])
        z = model(z, acts[:, t])
    return float(acts[total.argmax(), 0, 0])


def pendulum_reward(obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    r"""Pendulum-v1's reward from its observation $(\cos\theta, \sin\theta, \dot\theta)$ and torque $u$:
    $-(\theta^2 + 0.1\dot\theta^2 + 0.001u^2)$ with $\theta$ wrapped to $[-\pi, \pi]$."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    return -(theta**2 + 0.1 * obs[..., 2] ** 2 + 0.001 * u[..., 0] ** 2)


def imagination_error(model: Callable, obs: np.ndarray, actions: np.ndarray, horizons) -> np.ndarray:
    """Mean Euclidean distance between the model's open-loop prediction and the real state after h steps, for each
    h in ``horizons``; ``obs`` (N, T+1, d_s) real trajectories, ``actions`` (N, T, d_a) their actions."""
    s, a = torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(actions, dtype=torch.float32)
    z, errs = s[:, 0], {}
    with torch.no_grad():
        for t in range(max(horizons)):
            z = model(z, a[:, t])
            if t + 1 in horizons:
                errs[t + 1] = float((z - s[:, t + 1]).norm(dim=-1).mean())
    return np.array([errs[h] for h in horizons])

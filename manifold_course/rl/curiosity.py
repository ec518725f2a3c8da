r"""Curiosity for sparse rewards: Random Network Distillation, running statistics and state coverage (5.14).

Y. Burda, H. Edwards, A. Storkey, O. Klimov, "Exploration by Random Network Distillation", 2018, arXiv:1810.12894.
A fixed, randomly initialised **target** network $f$ maps a state to a vector; a **predictor** $\hat f_\psi$ is
trained to reproduce it on the states the agent has visited. Its error

$$r^i_t = \big\|\hat f_\psi(s_{t+1}) - f(s_{t+1})\big\|^2$$

is small on familiar states and large on novel ones, and becomes an intrinsic reward, $r = r^e + \beta\,r^i/\sigma_i$
with $\sigma_i$ a running standard deviation of $r^i$ (its scale drifts as the predictor learns).

**Running statistics** (Chan, Golub & LeVeque 1979, the parallel form of Welford's algorithm): merging a batch of
$n_b$ values with mean $\mu_b$ and (population) variance $\sigma_b^2$ into $n$ earlier values with $\mu, \sigma^2$:
$\delta = \mu_b - \mu$, $n' = n + n_b$, $\mu' = \mu + \delta\,n_b/n'$,
$\sigma'^2 = \big(n\sigma^2 + n_b\sigma_b^2 + \delta^2\,n\,n_b/n'\big)/n'$: exactly the statistics of all values.

**Coverage** (the course's C2 metric, shared with expert usage in MoE and codebook usage in VQ): the fraction of
states visited at least once, and the entropy of the visitation distribution relative to its maximum $\ln|S|$.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from manifold_course.rl.tabular import epsilon_greedy
from manifold_course.seeding import course_seed, numpy_rng, torch_generator


class RunningMeanStd:
    """Mean and population variance of every value seen so far, per feature of ``shape``; ``count`` values."""

    def __init__(self, shape: tuple = ()):
        self.mean = np.zeros(shape)
        self.var = np.ones(shape)
        self.count = 0

    def update(self, x) -> None:
        """Merge a batch ``x`` of shape (n, *shape) (module docstring)."""
        x = np.asarray(x, dtype=np.float64)
        n_b = x.shape[0]
        if n_b == 0:
            return
        mu_b, var_b = x.mean(0), x.var(0)
        n = self.count
        tot = n + n_b
        delta = mu_b - self.mean
        self.mean = self.mean + delta * n_b / tot
        self.var = (self.var * n + var_b * n_b + delta**2 * n * n_b / tot) / tot
        self.count = tot


def state_coverage(visits) -> float:
    """The fraction of states visited at least once (``visits``: counts per state, any shape)."""
    v = np.asarray(visits)
    return float((v > 0).sum() / v.size)


def visitation_entropy(visits) -> float:
    r"""$-\sum_s p_s\ln p_s/\ln|S|$ of the normalised visit counts: 1 for uniform visitation, 0 for one state."""
    v = np.asarray(visits, dtype=np.float64).ravel()
    p = v[v > 0] / v.sum()
    return float(-(p * np.log(p)).sum() / np.log(v.size))


def _mlp(i: int, o: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(i, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, o))


class RND(nn.Module):
    """A frozen random target and a trained predictor; ``intrinsic(s)`` the squared error per state."""

    def __init__(self, in_dim: int, out_dim: int = 16, hidden: int = 64, lr: float = 1e-3, seed: int = 0):
        super().__init__()
        gen = torch_generator(seed)
        self.target, self.predictor = _mlp(in_dim, out_dim, hidden), _mlp(in_dim, out_dim, hidden)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) / np.sqrt(max(p.shape[-1], 1)))
        self.target.requires_grad_(False)
        self.opt = torch.optim.Adam(self.predictor.parameters(), lr=lr)

    @torch.no_grad()
    def intrinsic(self, s: torch.Tensor) -> torch.Tensor:
        return (self.predictor(s) - self.target(s)).pow(2).sum(-1)

    def update(self, s: torch.Tensor, steps: int = 1) -> float:
        """``steps`` gradient steps of the predictor on the batch ``s``; returns the last loss."""
        for _ in range(steps):
            loss = (self.predictor(s) - self.target(s)).pow(2).sum(-1).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return float(loss.detach())


def open_grid(n: int, max_steps: int) -> gym.Env:
    """FrozenLake-v1 on an open n x n map (no holes, not slippery): start top-left, the only reward (+1) at the
    bottom-right goal, ``max_steps`` steps an episode."""
    desc = ["S" + "F" * (n - 1)] + ["F" * n] * (n - 2) + ["F" * (n - 1) + "G"]
    return gym.make("FrozenLake-v1", desc=desc, is_slippery=False, max_episode_steps=max_steps)


def explore(n: int, total_steps: int, use_rnd: bool, seed: int = 0, beta: float = 1.0, epsilon: float = 0.1,
            alpha: float = 0.5, gamma: float = 0.95, max_steps: int = 100, refresh: int = 50) -> dict:
    """Q-learning on :func:`open_grid` for ``total_steps`` steps, epsilon-greedy on $r^e$ alone, or (``use_rnd``)
    on $r^e + \\beta (r^i - \\mu_i)/\\sigma_i$ with RND on one-hot states. The intrinsic reward of every
    state is recomputed each ``refresh`` steps, after the predictor trained on the states of those steps.

    Returns ``visits`` (n, n), ``first_success`` (the step at which the goal was first reached, or None) and
    ``coverage`` (after every step)."""
    env = open_grid(n, max_steps)
    rng = numpy_rng(seed)
    S = n * n
    feats = torch.eye(S)
    rnd = RND(S, seed=seed) if use_rnd else None
    stats = RunningMeanStd()
    r_int = np.zeros(S)
    Q = np.zeros((S, 4))
    visits = np.zeros(S, dtype=np.int64)
    coverage, first, recent, episode = [], None, [], 0
    s, _ = env.reset(seed=course_seed(seed))
    visits[s] += 1
    for step in range(total_steps):
        a = epsilon_greedy(Q[s], epsilon, rng)
        s2, r, terminated, truncated, _ = env.step(a)
        visits[s2] += 1
        if r > 0 and first is None:
            first = step + 1
        target = r + beta * r_int[s2] + (0.0 if terminated else gamma * Q[s2].max())
        Q[s, a] += alpha * (target - Q[s, a])
        recent.append(s2)
        if rnd is not None and len(recent) == refresh:
            rnd.update(feats[recent], steps=5)
            raw = rnd.intrinsic(feats).numpy()
            stats.update(raw[recent])
            r_int = (raw - stats.mean) / np.sqrt(stats.var + 1e-8)
            recent = []
        elif rnd is None:
            recent = []
        coverage.append(state_coverage(visits))
        s = s2
        if terminated or truncated:
            episode += 1
            s, _ = env.reset(seed=course_seed(seed) + episode)
            visits[s] += 1
    return {"visits": visits.reshape(n, n), "first_success": first, "coverage": np.array(coverage)}

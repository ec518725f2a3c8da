r"""Deep Q-networks (Volume 5, section 5.4): experience replay, bootstrapped targets, target networks, and a small
trainer for Gymnasium's CartPole-v1 with switches that ablate replay and the target network.

DQN (Mnih et al. 2013, arXiv:1312.5602; *Nature* 2015) fits a network $Q_\theta(s, \cdot)$ by regression on the
one-step targets of Q-learning (Watkins 1989),

$$y = r + \gamma\,(1 - \text{terminated})\,\max_{a'} Q_{\theta^-}(s', a'), \qquad
  \mathcal L(\theta) = \mathbb E_{(s,a,r,s')\sim\mathcal D}\,\ell\big(y - Q_\theta(s, a)\big),$$

with $\ell$ the squared error (Mnih et al. 2015 clip the error, i.e. use the Huber loss: ``DQNConfig.huber``),
$\mathcal D$ a **replay buffer** of past transitions sampled uniformly (it breaks the correlation of consecutive
samples), and $\theta^-$ a **target network**: a copy of $\theta$ synced every $C$
updates (hard) or tracked by Polyak averaging $\theta^- \leftarrow \tau\theta + (1-\tau)\theta^-$ (soft).

Only a *termination* (the pole fell) stops the bootstrap; a *truncation* (CartPole's 500-step time limit) is not a
property of the state, so its target still bootstraps from $s'$ (Pardo et al. 2018, arXiv:1712.00378).

The trainer runs several independent DQNs in lockstep, one per (variant, seed): their weights are stacked along a
leading model axis and multiplied with ``torch.baddbmm``, so one optimiser step updates all of them (Adam is
elementwise, so the stacked models do not interact), and all their environments are one vectorised CartPole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from manifold_course.seeding import course_seed, numpy_rng, torch_generator


class ReplayBuffer:
    """A FIFO of transitions ``(obs, action, reward, next_obs, terminated)`` with room for ``capacity`` of them: once
    full, each ``push`` overwrites the oldest. ``sample(n, rng)`` draws ``n`` stored transitions uniformly, with
    replacement, and returns five arrays with a leading axis of length ``n``."""

    FIELDS = ("obs", "action", "reward", "next_obs", "terminated")

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = int(capacity)
        self.size = 0          # transitions stored
        self.pos = 0           # where the next push writes
        self.data: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return self.size

    def push(self, obs, action, reward, next_obs, terminated) -> None:
        item = dict(zip(self.FIELDS, (obs, action, reward, next_obs, terminated)))
        if not self.data:      # storage is allocated at the first push, from the shapes it brings
            for k, v in item.items():
                v = np.asarray(v)
                self.data[k] = np.zeros((self.capacity, *v.shape), dtype=v.dtype)
        for k, v in item.items():
            self.data[k][self.pos] = v
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        if self.size == 0:
            raise ValueError("sample from an empty buffer")
        idx = rng.integers(0, self.size, size=n)
        return tuple(self.data[k][idx] for k in self.FIELDS)


def dqn_targets(r: torch.Tensor, terminated: torch.Tensor, q_next_target: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""$y = r + \gamma\,(1 - \text{terminated}) \max_{a'} Q^-(s', a')$ for a batch: ``r`` (B,), ``terminated`` (B,)
    bool, ``q_next_target`` (B, A) the target network's values at $s'$. A truncated transition is *not* terminated."""
    return r + gamma * (~terminated.bool()).to(r.dtype) * q_next_target.max(dim=-1).values


@torch.no_grad()
def soft_update(target: torch.nn.Module, online: torch.nn.Module, tau) -> None:
    r"""Polyak averaging in place, $\theta^- \leftarrow \tau\theta + (1 - \tau)\theta^-$: ``tau = 1`` copies the online
    weights, ``tau = 0`` leaves the target as it is; the online network is never changed. ``tau`` may be a tensor
    that broadcasts against every parameter (one tau per stacked model)."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(1 - tau).add_(tau * o)


class StackedMLP(torch.nn.Module):
    """``n_models`` independent MLPs ``in -> hidden -> hidden -> out`` (ReLU) with weights stacked on a leading axis;
    input (M, N, in), output (M, N, out). Each model is initialised like ``nn.Linear``, from its own generator."""

    def __init__(self, gens: list[torch.Generator], sizes: tuple[int, ...]):
        super().__init__()
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = fan_in ** -0.5
            self.weights.append(torch.nn.Parameter(torch.stack(
                [(torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound for g in gens])))
            self.biases.append(torch.nn.Parameter(torch.stack(
                [(torch.rand(1, fan_out, generator=g) * 2 - 1) * bound for g in gens])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < len(self.weights) - 1:
                x = torch.relu(x)
        return x


@dataclass(frozen=True)
class Variant:
    """One arm of the ablation: with or without replay, with or without a target network.

    Without replay each update samples only the most recent ``batch_size`` transitions (the on-line stream, each
    transition used a few times and then forgotten); without a target network the targets use the online weights
    (a target synced after every update)."""

    name: str
    replay: bool = True
    target_network: bool = True


@dataclass(frozen=True)
class DQNConfig:
    """Hyper-parameters, tuned for sample efficiency on CartPole-v1 with a 2-core CPU budget. ``steps`` counts
    environment steps per model (``n_envs`` environments each); one update every vector step after
    ``learning_starts``."""

    steps: int = 24_000
    n_envs: int = 8
    hidden: int = 64
    lr: float = 5e-4
    gamma: float = 0.99
    batch_size: int = 64
    buffer_size: int = 20_000
    learning_starts: int = 2_000
    target_period: int = 50         # updates between hard syncs of the target network
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_fraction: float = 0.25      # of the steps over which epsilon decays linearly
    eval_every: int = 3_000         # environment steps per model between greedy evaluations
    eval_episodes: int = 4
    huber: bool = False             # Huber loss (Mnih et al. 2015's error clipping); False: squared error (as CleanRL)


@dataclass
class DQNRun:
    r"""``eval_steps`` (E,) environment steps per model at each greedy evaluation; ``eval_returns`` (V, S, E) mean
    undiscounted greedy return of ``eval_episodes`` episodes, per variant and seed; ``q_values`` (V, S, E) the mean
    of $\max_a Q(s, a)$ over the last batch (the true value of a state is at most $1/(1-\gamma)$); ``seconds`` of
    wall time."""

    variants: list[str]
    seeds: list[int]
    eval_steps: np.ndarray
    eval_returns: np.ndarray
    q_values: np.ndarray
    updates: int
    seconds: float
    train_returns: list[list[list[float]]] = field(default_factory=list)   # [variant][seed] -> episode returns


def _greedy_eval(q: StackedMLP, n_models: int, episodes: int, seed: int) -> np.ndarray:
    """Mean return over ``episodes`` greedy episodes (up to 500 steps) per model."""
    import gymnasium as gym

    env = gym.make_vec("CartPole-v1", num_envs=n_models * episodes, vectorization_mode="vector_entry_point")
    obs, _ = env.reset(seed=seed)
    total = np.zeros(n_models * episodes)
    alive = np.ones(n_models * episodes, dtype=bool)
    with torch.no_grad():
        while alive.any():
            a = q(torch.as_tensor(obs).view(n_models, episodes, -1)).argmax(-1).reshape(-1).numpy()
            obs, r, term, trunc, _ = env.step(a)
            total += r * alive
            alive &= ~(term | trunc)
    env.close()
    return total.reshape(n_models, episodes).mean(axis=1)


def train_dqn(config: DQNConfig, variants: list[Variant], seeds: list[int]) -> DQNRun:
    """Train one DQN per (variant, seed) on CartPole-v1, all in lockstep; seeded through :mod:`manifold_course.seeding`
    (a model's initial weights depend only on its seed, so the variants of one seed start from the same network)."""
    import gymnasium as gym

    c, V, S, E = config, len(variants), len(seeds), config.n_envs
    M = V * S                                                         # model m = (variant m // S, seed m % S)
    q = StackedMLP([torch_generator(1_000 + s) for _ in variants for s in seeds], (4, c.hidden, c.hidden, 2))
    q_target = StackedMLP([torch_generator(1_000 + s) for _ in variants for s in seeds], (4, c.hidden, c.hidden, 2))
    opt = torch.optim.Adam(q.parameters(), lr=c.lr, fused=True)
    replay = np.repeat([v.replay for v in variants], S)
    no_target = torch.as_tensor(np.repeat([not v.target_network for v in variants], S)).view(M, 1, 1)
    rng = numpy_rng(seeds[0] * 7_919 + 17)
    env = gym.make_vec("CartPole-v1", num_envs=M * E, vectorization_mode="vector_entry_point")
    obs, _ = env.reset(seed=course_seed(seeds[0]))
    buf = ReplayBuffer(c.buffer_size // E)                            # one item = one vector step of all M * E envs
    prev_done = np.zeros(M * E, dtype=bool)                           # NEXT_STEP autoreset: skip the reset step
    ep_ret = np.zeros(M * E)
    train_returns: list[list[float]] = [[] for _ in range(M)]
    eval_steps, eval_returns, q_values, updates = [], [], [], 0
    recent = max(1, c.batch_size // E)                                # "no replay": the last batch_size transitions
    m_idx = np.arange(M)[:, None]
    t0 = time.perf_counter()
    for step in range(c.steps // E):
        frac = min(1.0, step * E / (c.eps_fraction * c.steps))
        eps = c.eps_start + frac * (c.eps_end - c.eps_start)
        with torch.no_grad():
            greedy = q(torch.as_tensor(obs).view(M, E, 4)).argmax(-1).reshape(-1).numpy()
        explore = rng.random(M * E) < eps
        action = np.where(explore, rng.integers(0, 2, M * E), greedy)
        next_obs, r, term, trunc, _ = env.step(action)
        valid = ~prev_done                                            # the step after a done is a reset, not a move
        ep_ret += r
        for i in np.flatnonzero((term | trunc) & valid):
            train_returns[i // E].append(float(ep_ret[i]))
        ep_ret[term | trunc | prev_done] = 0.0
        buf.push(obs.reshape(M, E, 4), action.reshape(M, E), r.reshape(M, E), next_obs.reshape(M, E, 4),
                 np.stack([term.reshape(M, E), valid.reshape(M, E)], -1))
        obs, prev_done = next_obs, term | trunc
        if (step + 1) * E >= c.learning_starts:
            # each model draws its own batch: (time, env) pairs, from all of memory or only the most recent steps
            k = np.where(replay[:, None], rng.integers(0, buf.size, (M, c.batch_size)),
                         (buf.pos - 1 - rng.integers(0, min(recent, buf.size), (M, c.batch_size))) % buf.capacity)
            e = rng.integers(0, E, (M, c.batch_size))
            d = buf.data
            o, a, rr = (torch.as_tensor(d["obs"][k, m_idx, e]), torch.as_tensor(d["action"][k, m_idx, e]),
                        torch.as_tensor(d["reward"][k, m_idx, e]))
            o2, flags = torch.as_tensor(d["next_obs"][k, m_idx, e]), torch.as_tensor(d["terminated"][k, m_idx, e])
            q_both = q(torch.cat([o, o2], 1))                          # one forward for s and s'
            with torch.no_grad():                                     # "no target network": bootstrap from q itself
                q_next = torch.where(no_target, q_both[:, c.batch_size:], q_target(o2))
                y = dqn_targets(rr, flags[..., 0], q_next, c.gamma)
            pred = q_both[:, : c.batch_size].gather(-1, a[..., None]).squeeze(-1)
            w = flags[..., 1].float()                                 # drop the reset steps of NEXT_STEP autoreset
            err = F.smooth_l1_loss(pred, y, reduction="none") if c.huber else F.mse_loss(pred, y, reduction="none")
            loss = (err * w).sum((1,)) / w.sum(1).clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            updates += 1
            if updates % c.target_period == 0:
                soft_update(q_target, q, 1.0)
        if ((step + 1) * E) % c.eval_every == 0:
            eval_steps.append((step + 1) * E)
            eval_returns.append(_greedy_eval(q, M, c.eval_episodes, course_seed(seeds[0]) + 10_007 * len(eval_steps)))
            q_values.append(q_both.detach()[:, : c.batch_size].max(-1).values.mean(1).numpy()
                            if updates else np.zeros(M))
    env.close()
    ev = np.array(eval_returns).T.reshape(V, S, -1)
    per = [[train_returns[v * S + s] for s in range(S)] for v in range(V)]
    return DQNRun([v.name for v in variants], list(seeds), np.array(eval_steps), ev,
                  np.array(q_values).T.reshape(V, S, -1), updates, time.perf_counter() - t0, per)


ABLATIONS = [Variant("DQN (replay + target)"), Variant("no replay", replay=False),
             Variant("no target network", target_network=False),
             Variant("neither", replay=False, target_network=False)]

r"""Offline reinforcement learning on a logged dataset: naive Q-iteration and conservative Q-learning (section 5.10).

A dataset is a dict of equally long arrays ``s, a, r, s2, done`` (integer states and actions of a finite MDP): the
transitions some *behaviour policy* logged; the learner may not collect more (S. Levine, A. Kumar, G. Tucker, J. Fu,
"Offline Reinforcement Learning: Tutorial, Review, and Perspectives on Open Problems", 2020, arXiv:2005.01643).

**Fitted Q-iteration** moves $Q$ towards the empirical Bellman target of every logged transition $i$,
$y_i = r_i + \gamma(1-d_i)\max_{a'}Q(s'_i, a')$. The max ranges over *all* actions, also those the dataset never
tried in $s'_i$: their values are never corrected by data, so whatever they start at (an optimistic initial value
here; the extrapolation of a function approximator in deep RL) leaks into every target and into the greedy policy.

**Conservative Q-learning** (A. Kumar, A. Zhou, G. Tucker, S. Levine, "Conservative Q-Learning for Offline
Reinforcement Learning", 2020, arXiv:2006.04779; the CQL(H) variant) adds to the squared Bellman error a penalty
that pushes down a soft maximum of $Q$ over all actions and pushes up $Q$ on the logged action,

$$\mathcal L(Q) = \frac1N\sum_i\Big[\tfrac12\big(Q(s_i,a_i)-y_i\big)^2
  + \alpha\Big(\log\sum_a e^{Q(s_i,a)} - Q(s_i,a_i)\Big)\Big],$$

so unseen actions are driven down and the greedy policy stays on the data's support. The penalty is
$\ge 0$ because a log-sum-exp exceeds each of its terms.
"""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.seeding import course_seed, numpy_rng


def cql_penalty(q: torch.Tensor, data_actions: torch.Tensor) -> torch.Tensor:
    r"""$\frac1N\sum_i\big[\log\sum_a e^{q_{i,a}} - q_{i,a_i}\big]$ for ``q`` (N, A) and integer ``data_actions`` (N,);
    a 0-dim tensor, differentiable in ``q``."""
    taken = q.gather(-1, data_actions.long()[..., None])[..., 0]
    return (torch.logsumexp(q, dim=-1) - taken).mean()


def _softmax_rows(q: np.ndarray) -> np.ndarray:
    z = np.exp(q - q.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def offline_q_iteration(dataset: dict, n_states: int, n_actions: int, gamma: float, alpha: float,
                        n_iters: int = 300, lr: float = 0.5, q_init: float = 1.0) -> np.ndarray:
    r"""Tabular offline Q-iteration with a CQL penalty of weight ``alpha`` (``alpha = 0``: the naive version).

    Starts from $Q \equiv$ ``q_init`` and makes ``n_iters`` full-batch gradient steps on $\mathcal L(Q)$ (module
    docstring) with the targets $y_i$ computed from the current $Q$ and held fixed during the step. The gradient
    with respect to the table entry $Q(s, a)$, summed over the transitions leaving $s$, is divided by their number
    $n_s$ (a per-state step size), so each step is

    $$Q(s,a) \leftarrow Q(s,a) - \frac{\mathrm{lr}}{n_s}\sum_{i:\,s_i=s}\Big[\mathbb 1[a_i=a]\,(Q(s,a)-y_i)
      + \alpha\big(\mathrm{softmax}(Q(s,\cdot))_a - \mathbb 1[a_i=a]\big)\Big];$$

    states without transitions keep their values. Returns the (S, A) float64 table.
    """
    s = np.asarray(dataset["s"], dtype=np.int64)
    a = np.asarray(dataset["a"], dtype=np.int64)
    r = np.asarray(dataset["r"], dtype=np.float64)
    s2 = np.asarray(dataset["s2"], dtype=np.int64)
    done = np.asarray(dataset["done"], dtype=np.float64)
    n_s = np.bincount(s, minlength=n_states).astype(np.float64)
    scale = np.where(n_s > 0, 1.0 / np.maximum(n_s, 1.0), 0.0)[:, None]
    Q = np.full((n_states, n_actions), float(q_init))
    for _ in range(n_iters):
        y = r + gamma * (1.0 - done) * Q[s2].max(axis=1)
        grad = np.zeros_like(Q)
        np.add.at(grad, (s, a), Q[s, a] - y)
        if alpha:
            np.add.at(grad, s, alpha * _softmax_rows(Q[s]))
            np.add.at(grad, (s, a), -alpha)
        Q = Q - lr * scale * grad
    return Q


def collect_dataset(env, behaviour: np.ndarray, episodes: int, seed: int = 0) -> dict:
    """Log ``episodes`` episodes of the stochastic policy ``behaviour`` (S, A) on a discrete Gymnasium ``env``.

    ``done`` marks termination only (a time-limit truncation is not an end of the task: its target still
    bootstraps)."""
    rng = numpy_rng(seed)
    out: dict[str, list] = {k: [] for k in ("s", "a", "r", "s2", "done")}
    for ep in range(episodes):
        s, _ = env.reset(seed=course_seed(seed) * 10_007 + ep)
        while True:
            a = int(rng.choice(behaviour.shape[1], p=behaviour[s]))
            s2, r, terminated, truncated, _ = env.step(a)
            for k, v in zip(out, (s, a, r, s2, terminated)):
                out[k].append(v)
            s = s2
            if terminated or truncated:
                break
    return {k: np.asarray(v, dtype=np.float64 if k == "r" else np.int64) for k, v in out.items()}

r"""Returns and advantages for policy-gradient methods (Volume 5, sections 5.5-5.7).

For a rollout of length $T$ with rewards $r_t$, value estimates $V(s_t)$, the value of the state after the last
step ``last_value`` $=V(s_T)$, and flags ``dones[t]`` (the episode ended at step $t$: nothing after it counts):

- **rewards-to-go** $G_t = r_t + \gamma(1-d_t)G_{t+1}$ (REINFORCE's weights, Williams 1992);
- **TD errors** $\delta_t = r_t + \gamma(1-d_t)V(s_{t+1}) - V(s_t)$ (the one-step advantage estimate);
- **generalized advantage estimation** (Schulman et al. 2015, arXiv:1506.02438):
  $\delta_t = r_t + \gamma(1-d_t)V(s_{t+1}) - V(s_t)$ and $\hat A_t = \delta_t + \gamma\lambda(1-d_t)\hat A_{t+1}$.
  $\lambda = 0$ gives the one-step TD error (low variance, biased by $V$); $\lambda = 1$ gives $G_t - V(s_t)$ with the
  bootstrapped tail (unbiased when $V$ is exact at the end, high variance).
"""

from __future__ import annotations

import numpy as np


def _as_rollout(rewards, values, dones, last_value) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float64 copies; ``values`` extended by ``last_value`` along the time axis (shapes (T,) or (T, N) envs)."""
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(dones, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    last = np.broadcast_to(np.asarray(last_value, dtype=np.float64), r.shape[1:])
    return r, d, np.concatenate([v, last[None]], axis=0), last


def rewards_to_go(rewards, dones, gamma: float, last_value: float = 0.0) -> np.ndarray:
    """$G_t$ for every step, bootstrapped from ``last_value`` after the final step unless it ended an episode.
    Shapes (T,) or (T, N) for N parallel environments (``last_value`` then has shape (N,))."""
    r, d, _, last = _as_rollout(rewards, np.zeros_like(np.asarray(rewards, dtype=np.float64)), dones, last_value)
    out = np.empty_like(r)
    g = last.copy()
    for t in range(len(r) - 1, -1, -1):
        g = r[t] + gamma * (1.0 - d[t]) * g
        out[t] = g
    return out


def td_errors(rewards, values, dones, gamma: float, last_value: float = 0.0) -> np.ndarray:
    r"""$\delta_t = r_t + \gamma(1-d_t)V(s_{t+1}) - V(s_t)$, with $V(s_T)$ = ``last_value``; shapes (T,) or (T, N)."""
    r, d, v, _ = _as_rollout(rewards, values, dones, last_value)
    return r + gamma * (1.0 - d) * v[1:] - v[:-1]


def gae(rewards, values, dones, gamma: float, lam: float, last_value: float = 0.0) -> np.ndarray:
    r"""$\hat A_t$ for every step (see the module docstring); ``values[t]`` $= V(s_t)$; shapes (T,) or (T, N)."""
    delta = td_errors(rewards, values, dones, gamma, last_value)
    d = np.asarray(dones, dtype=np.float64)
    adv = np.empty_like(delta)
    a = np.zeros_like(delta[0])
    for t in range(len(delta) - 1, -1, -1):
        a = delta[t] + gamma * lam * (1.0 - d[t]) * a
        adv[t] = a
    return adv


def gae_and_returns(rewards, values, dones, gamma: float, lam: float,
                    last_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r"""$(\hat A_t, \hat A_t + V(s_t))$: the advantages and the critic's regression targets ($\lambda$-returns)."""
    adv = gae(rewards, values, dones, gamma, lam, last_value)
    return adv, adv + np.asarray(values, dtype=np.float64)

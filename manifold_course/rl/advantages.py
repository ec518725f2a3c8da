r"""Returns and advantages for policy-gradient methods (Volume 5, sections 5.5-5.7).

For a rollout of length $T$ with rewards $r_t$, value estimates $V(s_t)$, the value of the state after the last
step ``last_value`` $=V(s_T)$, and flags ``dones[t]`` (the episode ended at step $t$: nothing after it counts):

- **rewards-to-go** $G_t = r_t + \gamma(1-d_t)G_{t+1}$ (REINFORCE's weights, Williams 1992);
- **generalized advantage estimation** (Schulman et al. 2015, arXiv:1506.02438):
  $\delta_t = r_t + \gamma(1-d_t)V(s_{t+1}) - V(s_t)$ and $\hat A_t = \delta_t + \gamma\lambda(1-d_t)\hat A_{t+1}$.
  $\lambda = 0$ gives the one-step TD error (low variance, biased by $V$); $\lambda = 1$ gives $G_t - V(s_t)$ with the
  bootstrapped tail (unbiased when $V$ is exact at the end, high variance).
"""

from __future__ import annotations

import numpy as np


def rewards_to_go(rewards, dones, gamma: float, last_value: float = 0.0) -> np.ndarray:
    """$G_t$ for every step, bootstrapped from ``last_value`` after the final step unless it ended an episode."""
    r = np.asarray(rewards, dtype=np.float64)
    d = np.asarray(dones, dtype=np.float64)
    out = np.empty_like(r)
    g = float(last_value)
    for t in range(len(r) - 1, -1, -1):
        g = r[t] + gamma * (1.0 - d[t]) * g
        out[t] = g
    return out


def gae(rewards, values, dones, gamma: float, lam: float, last_value: float = 0.0) -> np.ndarray:
    r"""$\hat A_t$ for every step (see the module docstring); ``values[t]`` $= V(s_t)$."""
    r = np.asarray(rewards, dtype=np.float64)
    v = np.append(np.asarray(values, dtype=np.float64), float(last_value))
    d = np.asarray(dones, dtype=np.float64)
    adv = np.empty_like(r)
    a = 0.0
    for t in range(len(r) - 1, -1, -1):
        delta = r[t] + gamma * (1.0 - d[t]) * v[t + 1] - v[t]
        a = delta + gamma * lam * (1.0 - d[t]) * a
        adv[t] = a
    return adv

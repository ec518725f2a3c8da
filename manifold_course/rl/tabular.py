r"""Tabular temporal-difference control (Volume 5, section 5.3): Q-learning and SARSA with epsilon-greedy behaviour.

Both learn $Q(s, a)$ from single transitions $(s, a, r, s')$ of a Gymnasium environment with discrete states and
actions. They differ only in the target they move towards (Sutton & Barto 2018, section 6.4-6.5):

- **SARSA** (on-policy): $r + \gamma Q(s', a')$ with $a'$ the action the behaviour policy actually takes next;
- **Q-learning** (off-policy, Watkins 1989): $r + \gamma \max_{a'} Q(s', a')$, the greedy action's value,

and $Q(s, a) \leftarrow Q(s, a) + \alpha\,(\text{target} - Q(s, a))$; a terminal transition's target is $r$. On
CliffWalking this is the textbook contrast (Sutton & Barto, Example 6.6): Q-learning learns the optimal path along
the cliff's edge but, exploring, falls off often; SARSA learns the safer path that its own exploration can afford.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manifold_course.seeding import course_seed, numpy_rng


@dataclass
class TDResult:
    """``Q`` (S, A) learned values; ``returns``: the undiscounted return of every training episode (behaviour
    policy, exploration included)."""

    Q: np.ndarray
    returns: list[float]


def epsilon_greedy(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """With probability ``epsilon`` a uniformly random action, else a greedy one (ties broken at random)."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q_row)))
    best = np.flatnonzero(q_row == q_row.max())
    return int(rng.choice(best))


def td_control(env, method: str, episodes: int, alpha: float = 0.5, gamma: float = 1.0, epsilon: float = 0.1,
               seed: int = 0, max_steps: int = 1000) -> TDResult:
    """Run ``method`` ("q_learning" or "sarsa") for ``episodes`` episodes on ``env``; seeded through
    :mod:`manifold_course.seeding` (the seed knob moves it)."""
    if method not in ("q_learning", "sarsa"):
        raise ValueError(f"unknown method {method!r}: use 'q_learning' or 'sarsa'")
    rng = numpy_rng(seed)
    Q = np.zeros((env.observation_space.n, env.action_space.n))
    returns = []
    for episode in range(episodes):
        s, _ = env.reset(seed=course_seed(seed) * 100_003 + episode)
        a = epsilon_greedy(Q[s], epsilon, rng)
        total = 0.0
        for _ in range(max_steps):
            s2, r, terminated, truncated, _ = env.step(a)
            total += r
            a2 = epsilon_greedy(Q[s2], epsilon, rng)
            if terminated:
                target = r
            elif method == "sarsa":
                target = r + gamma * Q[s2, a2]
            else:
                target = r + gamma * Q[s2].max()
            Q[s, a] += alpha * (target - Q[s, a])
            s, a = s2, a2
            if terminated or truncated:
                break
        returns.append(total)
    return TDResult(Q, returns)


def greedy_path(env, Q: np.ndarray, max_steps: int = 100) -> list[int]:
    """The states visited by the greedy policy of ``Q`` from the environment's start (ties: the lowest action)."""
    s, _ = env.reset(seed=0)
    path = [int(s)]
    for _ in range(max_steps):
        s, _, terminated, truncated, _ = env.step(int(np.argmax(Q[s])))
        path.append(int(s))
        if terminated or truncated:
            break
    return path

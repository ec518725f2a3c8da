r"""Finite Markov decision processes in arrays, and dynamic programming on them (Volume 5, sections 5.1-5.2).

A finite MDP here is two arrays built from a Gymnasium toy-text environment's transition table
``env.unwrapped.P`` (``P[s][a]`` is a list of ``(probability, next_state, reward, terminated)``):

- ``P`` of shape ``(S, A, S)``: $P[s, a, s'] = \Pr(s' \mid s, a)$ **counting only transitions that do not end the
  episode**, so that each row sums to 1 minus the probability of terminating; a terminal transition contributes its
  reward and nothing after it;
- ``R`` of shape ``(S, A)``: the expected immediate reward $r(s, a) = \sum_{s'} \Pr(s', \text{reward} \mid s, a)\,
  \text{reward}$.

With these, the Bellman equations are plain linear algebra (Sutton & Barto, *Reinforcement Learning: An
Introduction*, 2nd ed. 2018, chapters 3-4; Bellman 1957):

$$v_\pi = r_\pi + \gamma P_\pi v_\pi, \qquad v_* (s) = \max_a \Big(r(s,a) + \gamma\sum_{s'}P[s,a,s']\,v_*(s')\Big),$$

with $r_\pi(s) = \sum_a \pi(a|s) r(s,a)$ and $P_\pi[s,s'] = \sum_a \pi(a|s) P[s,a,s']$. A policy is an array
``pi`` of shape ``(S, A)`` whose rows are probability vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TabularMDP:
    """``P`` (S, A, S) non-terminating transition probabilities, ``R`` (S, A) expected rewards."""

    P: np.ndarray
    R: np.ndarray

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def from_gymnasium(env) -> TabularMDP:
    """The arrays of a Gymnasium toy-text environment (FrozenLake, CliffWalking, Taxi) from ``env.unwrapped.P``."""
    return from_table(env.unwrapped.P)


def from_table(table) -> TabularMDP:
    """The arrays of a transition table in Gymnasium's toy-text format: ``table[s][a]`` is a list of
    ``(probability, next_state, reward, terminated)`` (a dict of dicts, as ``env.unwrapped.P``, or nested lists);
    outcomes that share a next state add up."""
    S = len(table)
    A = len(table[0])
    P = np.zeros((S, A, S))
    R = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            for prob, s_next, reward, terminated in table[s][a]:
                R[s, a] += prob * reward
                if not terminated:
                    P[s, a, int(s_next)] += prob
    return TabularMDP(P, R)


def policy_matrices(mdp: TabularMDP, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""$(P_\pi, r_\pi)$: the state-to-state matrix (S, S) and the reward vector (S,) of policy ``pi`` (S, A)."""
    return np.einsum("sa,sat->st", pi, mdp.P), np.einsum("sa,sa->s", pi, mdp.R)


def evaluate_policy_linear(mdp: TabularMDP, pi: np.ndarray, gamma: float) -> np.ndarray:
    r"""$v_\pi = (I - \gamma P_\pi)^{-1} r_\pi$ by one linear solve (needs $\gamma < 1$, or a policy that ends every
    episode, for the matrix to be invertible)."""
    P_pi, r_pi = policy_matrices(mdp, pi)
    return np.linalg.solve(np.eye(mdp.n_states) - gamma * P_pi, r_pi)


def evaluate_policy_iterative(mdp: TabularMDP, pi: np.ndarray, gamma: float, tol: float = 1e-10,
                              max_iter: int = 100_000) -> tuple[np.ndarray, list[float]]:
    r"""Iterate $v \leftarrow r_\pi + \gamma P_\pi v$ from $v = 0$ until the sup-norm change is below ``tol``.

    Returns $v$ and the sup-norm change of every sweep: the Bellman operator is a $\gamma$-contraction in the sup
    norm, so consecutive changes shrink by a factor of at most $\gamma$."""
    P_pi, r_pi = policy_matrices(mdp, pi)
    v = np.zeros(mdp.n_states)
    changes: list[float] = []
    for _ in range(max_iter):
        v_new = r_pi + gamma * P_pi @ v
        changes.append(float(np.max(np.abs(v_new - v))))
        v = v_new
        if changes[-1] < tol:
            break
    return v, changes


def q_from_v(mdp: TabularMDP, v: np.ndarray, gamma: float) -> np.ndarray:
    r"""$q(s, a) = r(s, a) + \gamma \sum_{s'} P[s, a, s'] v(s')$, shape (S, A)."""
    return mdp.R + gamma * mdp.P @ v


def greedy_policy(q: np.ndarray, atol: float = 1e-9) -> np.ndarray:
    """The deterministic policy (S, A) taking, in each state, the first action whose value is within ``atol`` of the
    best (ties broken toward the lowest index, so the result does not depend on rounding noise)."""
    best = q.max(axis=1, keepdims=True)
    first = np.argmax(q >= best - atol, axis=1)
    return np.eye(q.shape[1])[first]


def value_iteration(mdp: TabularMDP, gamma: float, tol: float = 1e-10,
                    max_iter: int = 100_000) -> tuple[np.ndarray, np.ndarray, list[float]]:
    r"""Iterate $v \leftarrow \max_a q(\cdot, a)$ from $v = 0$ until the sup-norm change is below ``tol``; returns
    $v_*$, a greedy optimal policy and the change of every sweep (shrinking by at most $\gamma$ each time)."""
    v = np.zeros(mdp.n_states)
    changes: list[float] = []
    for _ in range(max_iter):
        v_new = q_from_v(mdp, v, gamma).max(axis=1)
        changes.append(float(np.max(np.abs(v_new - v))))
        v = v_new
        if changes[-1] < tol:
            break
    return v, greedy_policy(q_from_v(mdp, v, gamma)), changes


def discounted_return(rewards, gamma: float) -> float:
    r"""$G_0 = \sum_k \gamma^k r_{k+1}$ of one episode's rewards, summed from the end (Horner's rule)."""
    g = 0.0
    for r in reversed(list(rewards)):
        g = float(r) + gamma * g
    return g

"""Plausible wrong answers to the exercises of v5_rl/01_mdps_and_value_learning; each check must reject them."""

from __future__ import annotations

import numpy as np
import torch

# ---------------------------------------------------------------- discounted_returns


def returns_ignore_dones(rewards, gamma, dones=None):
    out, g = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * g
        out[t] = g
    return out


def returns_off_by_one(rewards, gamma, dones=None):
    # G_t = gamma * (r_t + G_{t+1}): discounts the first reward too
    d = np.zeros(len(rewards)) if dones is None else np.asarray(dones, dtype=float)
    out, g = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = gamma * (rewards[t] + (1 - d[t]) * g)
        out[t] = g
    return out


def returns_reset_one_late(rewards, gamma, dones=None):
    # resets after using the done step's own return: the done flag of t+1 cuts G_t
    d = np.zeros(len(rewards)) if dones is None else np.asarray(dones, dtype=float)
    out, g = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        nd = d[t + 1] if t + 1 < len(rewards) else 0.0
        g = rewards[t] + gamma * (1 - nd) * g
        out[t] = g
    return out


def returns_forward_sum(rewards, gamma, dones=None):
    # a forward cumulative discounted sum: the past, not the future
    out, g = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards)):
        g = gamma * g + rewards[t]
        out[t] = g
    return out


# ---------------------------------------------------------------- mdp_from_table


def _table_arrays(table, S, A, keep_terminal=False, weigh=True, accumulate=True):
    P, R = np.zeros((S, A, S)), np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            for p, s2, r, t in table[s][a]:
                R[s, a] += p * r if weigh else r
                if keep_terminal or not t:
                    if accumulate:
                        P[s, a, int(s2)] += p
                    else:
                        P[s, a, int(s2)] = p
    return P, R


def table_keeps_terminal(table, n_states, n_actions):
    return _table_arrays(table, n_states, n_actions, keep_terminal=True)


def table_unweighted_reward(table, n_states, n_actions):
    return _table_arrays(table, n_states, n_actions, weigh=False)


def table_overwrites(table, n_states, n_actions):
    return _table_arrays(table, n_states, n_actions, accumulate=False)


# ---------------------------------------------------------------- policy_evaluation


def pe_transposed(P, R, pi, gamma):
    P_pi = np.einsum("sa,sat->st", pi, P).T
    return np.linalg.solve(np.eye(len(R)) - gamma * P_pi, np.einsum("sa,sa->s", pi, R))


def pe_ignores_policy(P, R, pi, gamma):
    u = np.full_like(pi, 1.0 / pi.shape[1])
    return np.linalg.solve(np.eye(len(R)) - gamma * np.einsum("sa,sat->st", u, P), np.einsum("sa,sa->s", u, R))


def pe_one_sweep(P, R, pi, gamma):
    r_pi = np.einsum("sa,sa->s", pi, R)
    return r_pi + gamma * np.einsum("sa,sat->st", pi, P) @ r_pi


# ---------------------------------------------------------------- q_from_v


def qv_no_gamma(P, R, V, gamma):
    return R + P @ V


def qv_wrong_axis(P, R, V, gamma):
    return R + gamma * np.einsum("tas,t->sa", P, V)           # sums over where you came from, not where you go


# ---------------------------------------------------------------- value_iteration


def _vi(P, R, gamma, tol):
    V = np.zeros(R.shape[0])
    while True:
        V_new = (R + gamma * P @ V).max(1)
        if np.max(np.abs(V_new - V)) < tol:
            return V_new
        V = V_new


def vi_not_greedy(P, R, gamma, tol):
    V = _vi(P, R, gamma, tol)
    return V, np.eye(R.shape[1])[R.argmax(1)]                 # greedy in the immediate reward only


def vi_wrong_gamma(P, R, gamma, tol):
    V = _vi(P, R, 0.99, tol)                                   # a hard-coded gamma
    return V, np.eye(R.shape[1])[(R + gamma * P @ V).argmax(1)]


def vi_one_sweep_policy(P, R, gamma, tol):
    V = _vi(P, R, gamma, tol)
    return V, np.eye(R.shape[1])[(R + gamma * P @ np.zeros_like(V)).argmax(1)]


def vi_loose(P, R, gamma, tol):
    V = _vi(P, R, gamma, 1e-3)                                 # stops early, ignoring tol
    return V, np.eye(R.shape[1])[(R + gamma * P @ V).argmax(1)]


# ---------------------------------------------------------------- q_update


def q_update_bootstraps_terminal(Q, s, a, r, s2, done, alpha, gamma):
    Q = Q.copy()
    Q[s, a] += alpha * (r + gamma * Q[s2].max() - Q[s, a])
    return Q


def q_update_in_place(Q, s, a, r, s2, done, alpha, gamma):
    target = r if done else r + gamma * Q[s2].max()
    Q[s, a] += alpha * (target - Q[s, a])
    return Q


def q_update_sarsa_like(Q, s, a, r, s2, done, alpha, gamma):
    Q = Q.copy()
    target = r if done else r + gamma * Q[s2, a]
    Q[s, a] += alpha * (target - Q[s, a])
    return Q


def q_update_no_alpha(Q, s, a, r, s2, done, alpha, gamma):
    Q = Q.copy()
    Q[s, a] = r if done else r + gamma * Q[s2].max()
    return Q


# ---------------------------------------------------------------- epsilon_greedy


def eps_first_argmax(q_row, eps, rng):
    if rng.random() < eps:
        return int(rng.integers(len(q_row)))
    return int(np.argmax(q_row))                              # ties always to the lowest index


def eps_explore_excludes_greedy(q_row, eps, rng):
    best = int(np.argmax(q_row))
    if rng.random() < eps and len(q_row) > 1:
        return int(rng.choice([a for a in range(len(q_row)) if a != best]))
    return int(rng.choice(np.flatnonzero(q_row == q_row.max())))


def eps_swapped(q_row, eps, rng):
    if rng.random() < 1 - eps:                                # eps read as the probability of acting greedily
        return int(rng.integers(len(q_row)))
    return int(rng.choice(np.flatnonzero(q_row == q_row.max())))


# ---------------------------------------------------------------- ReplayBuffer


class _Base:
    def __init__(self, capacity):
        self.capacity, self.items = capacity, []

    def __len__(self):
        return len(self.items)

    def sample(self, n, rng):
        idx = rng.integers(0, len(self.items), n)
        rows = [self.items[i] for i in idx]
        return tuple(np.array([r[k] for r in rows]) for k in range(5))


class BufferDropsNewest(_Base):
    def push(self, *t):
        if len(self.items) < self.capacity:                   # once full, new transitions are ignored
            self.items.append(t)


class BufferOverwritesLast(_Base):
    def push(self, *t):
        if len(self.items) < self.capacity:
            self.items.append(t)
        else:
            self.items[-1] = t                                # LIFO: the newest slot keeps being replaced


class BufferRandomEvict(_Base):
    def __init__(self, capacity):
        super().__init__(capacity)
        self.g = np.random.default_rng(0)

    def push(self, *t):
        if len(self.items) < self.capacity:
            self.items.append(t)
        else:
            self.items[int(self.g.integers(self.capacity))] = t


class BufferSamplesEmptySlots:
    def __init__(self, capacity):
        self.capacity, self.pos, self.n, self.data = capacity, 0, 0, None

    def __len__(self):
        return self.n

    def push(self, *t):
        if self.data is None:
            self.data = [np.zeros((self.capacity, *np.shape(x)), dtype=np.asarray(x).dtype) for x in t]
        for k, x in enumerate(t):
            self.data[k][self.pos] = x
        self.pos, self.n = (self.pos + 1) % self.capacity, min(self.n + 1, self.capacity)

    def sample(self, n, rng):
        idx = rng.integers(0, self.capacity, n)               # samples unfilled (zero) slots too
        return tuple(x[idx] for x in self.data)


class BufferNotUniform(_Base):
    def push(self, *t):
        self.items.append(t)
        self.items = self.items[-self.capacity:]

    def sample(self, n, rng):
        idx = np.minimum(rng.integers(0, len(self.items), n), rng.integers(0, len(self.items), n))  # favours old ones
        rows = [self.items[i] for i in idx]
        return tuple(np.array([r[k] for r in rows]) for k in range(5))


# ---------------------------------------------------------------- dqn_targets


def targets_bootstrap_terminal(r, terminated, truncated, q_next_target, gamma):
    return r + gamma * q_next_target.max(-1).values


def targets_mask_truncated(r, terminated, truncated, q_next_target, gamma):
    done = terminated | truncated                             # a time limit is not a terminal state
    return r + gamma * (~done).to(r.dtype) * q_next_target.max(-1).values


def targets_mean(r, terminated, truncated, q_next_target, gamma):
    return r + gamma * (~terminated).to(r.dtype) * q_next_target.mean(-1)


def targets_abs_max(r, terminated, truncated, q_next_target, gamma):
    return r + gamma * (~terminated).to(r.dtype) * q_next_target.abs().max(-1).values


# ---------------------------------------------------------------- soft_update


@torch.no_grad()
def soft_update_reversed(target, online, tau):
    for t, o in zip(target.parameters(), online.parameters()):
        t.copy_((1 - tau) * o + tau * t)


@torch.no_grad()
def soft_update_moves_online(target, online, tau):
    for t, o in zip(target.parameters(), online.parameters()):
        o.mul_(1 - tau).add_(tau * t)


@torch.no_grad()
def soft_update_always_copies(target, online, tau):
    target.load_state_dict(online.state_dict())


def soft_update_rebinds(target, online, tau):
    target = {k: tau * v for k, v in online.state_dict().items()}  # noqa: F841  (nothing happens to the target)


WRONG = {
    "value_learning.discounted_returns": [returns_ignore_dones, returns_off_by_one, returns_reset_one_late,
                                          returns_forward_sum],
    "value_learning.mdp_from_table": [table_keeps_terminal, table_unweighted_reward, table_overwrites],
    "value_learning.policy_evaluation": [pe_transposed, pe_ignores_policy, pe_one_sweep],
    "value_learning.q_from_v": [qv_no_gamma, qv_wrong_axis],
    "value_learning.value_iteration": [vi_not_greedy, vi_wrong_gamma, vi_one_sweep_policy, vi_loose],
    "value_learning.q_update": [q_update_bootstraps_terminal, q_update_in_place, q_update_sarsa_like,
                                q_update_no_alpha],
    "value_learning.epsilon_greedy": [eps_first_argmax, eps_explore_excludes_greedy, eps_swapped],
    "value_learning.ReplayBuffer": [BufferDropsNewest, BufferOverwritesLast, BufferRandomEvict,
                                    BufferSamplesEmptySlots, BufferNotUniform],
    "value_learning.dqn_targets": [targets_bootstrap_terminal, targets_mask_truncated, targets_mean, targets_abs_max],
    "value_learning.soft_update": [soft_update_reversed, soft_update_moves_online, soft_update_always_copies,
                                   soft_update_rebinds],
}

# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 5, Chapter 1 exercises: MDPs, the Bellman equations, Q-learning and DQN (sections 5.1-5.4)
#
# Ten pieces: discounted returns with episode ends and the arrays $(P, R)$ of a transition table (5.1); policy
# evaluation by one linear solve, $Q$ from $V$ and value iteration (5.2); one Q-learning update and epsilon-greedy
# action selection (5.3); a FIFO replay buffer, DQN's bootstrapped targets and the Polyak target update (5.4). Each
# exercise states its inputs, outputs and what the check verifies; write the body where it says `# YOUR CODE HERE`,
# run the cell, then the `check(...)` cell below it: it answers at once with a green "passed" or a red message that
# says what to fix. The checks draw fresh random cases each time, with edge cases (one-step episodes, gamma = 0 and 1,
# a capacity-1 buffer, tied greedy actions, tau = 0 and 1).
#
# The lecture is `chapters/v5_rl/01_mdps_and_value_learning.ipynb`. Please write your own code rather than importing
# the course's reference implementations.
#
# Conventions: NumPy arrays in float64 for the tabular exercises, torch tensors for the DQN ones; **never modify an
# input in place** unless the exercise says so (`soft_update` does, on purpose). An MDP is two arrays: `P` of shape
# (S, A, S) with `P[s, a, s']` the probability of moving to `s'` **without ending the episode** (a terminal outcome
# adds its reward and nothing else, so a row sums to 1 minus the probability of terminating), and `R` of shape (S, A),
# the expected immediate reward. A policy `pi` is an (S, A) array of action probabilities.
#
# Changed from the syllabus: its 5.1 exercise `GridWorld(slip).P, .R` is replaced by `mdp_from_table`, which builds the
# same arrays from a Gymnasium-style transition table given as plain data (the course uses Gymnasium's real
# FrozenLake and CliffWalking rather than a home-made grid world); its 5.3 exercise `train_q_learning` is left out:
# the learnable core is the single update `q_update`, and the lecture trains Q-learning and SARSA with
# `manifold_course.rl.tabular`. `dqn_targets` also receives the `truncated` flags, so that you decide what a time
# limit means for the bootstrap.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import numpy as np
import torch

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: discounted returns
#
# `discounted_returns(rewards, gamma, dones=None) -> G`: for a rollout of rewards $r_0, \dots, r_{T-1}$ (a float64
# array of shape (T,)), the return from every step,
#
# $$G_t = r_t + \gamma\,(1 - d_t)\,G_{t+1}, \qquad G_T = 0,$$
#
# where `dones[t]` ($d_t$, a bool array of shape (T,), or None for "no episode ends here") says the episode ended
# with step $t$: nothing after it belongs to $G_t$. Return a float64 array of shape (T,).
#
# **Checked** against the reference: episodes ending mid-rollout, a one-step episode, gamma = 0 and 1, a single reward.

# %%
def discounted_returns(rewards, gamma, dones=None):
    ### BEGIN SOLUTION
    # Hint: one reverse loop over t, carrying g; reset g (multiply by 1 - d_t) where an episode ended.
    rewards = np.asarray(rewards, dtype=np.float64)
    d = np.zeros(len(rewards)) if dones is None else np.asarray(dones, dtype=np.float64)
    out, g = np.zeros_like(rewards), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        g = rewards[t] + gamma * (1.0 - d[t]) * g
        out[t] = g
    return out
    ### END SOLUTION


# %%
check("value_learning.discounted_returns", discounted_returns)

# %% [markdown]
# ## Exercise 2: the arrays of a transition table
#
# `mdp_from_table(table, n_states, n_actions) -> (P, R)`: `table[s][a]` is a list of outcomes
# `(probability, next_state, reward, terminated)`, Gymnasium's toy-text format (`env.unwrapped.P`). Build
#
# - `P` (S, A, S): $P[s, a, s'] = \sum$ of the probabilities of the **non-terminating** outcomes that lead to $s'$
#   (several outcomes can share a next state: add them);
# - `R` (S, A): $R[s, a] = \sum_{\text{outcomes}} \text{probability} \times \text{reward}$, terminal outcomes included.
#
# **Checked** exactly on FrozenLake (slippery and not), CliffWalking and random tables.

# %%
def mdp_from_table(table, n_states, n_actions):
    ### BEGIN SOLUTION
    P, R = np.zeros((n_states, n_actions, n_states)), np.zeros((n_states, n_actions))
    for s in range(n_states):
        for a in range(n_actions):
            for p, s2, r, terminated in table[s][a]:
                R[s, a] += p * r
                if not terminated:
                    P[s, a, int(s2)] += p
    return P, R
    ### END SOLUTION


# %%
check("value_learning.mdp_from_table", mdp_from_table)

# %% [markdown]
# ## Exercise 3: policy evaluation by one linear solve
#
# `policy_evaluation(P, R, pi, gamma) -> V`: with $P_\pi[s, s'] = \sum_a \pi(a|s) P[s, a, s']$ and
# $r_\pi(s) = \sum_a \pi(a|s) R[s, a]$, the Bellman equation $V = r_\pi + \gamma P_\pi V$ is linear:
#
# $$V_\pi = (I - \gamma P_\pi)^{-1} r_\pi .$$
#
# Return the float64 array (S,). Use `np.linalg.solve`, not an explicit inverse.
#
# **Checked** against the reference to 1e-8 on FrozenLake, CliffWalking and random MDPs.

# %%
def policy_evaluation(P, R, pi, gamma):
    ### BEGIN SOLUTION
    # Hint: np.einsum("sa,sat->st", pi, P) is P_pi.
    P_pi = np.einsum("sa,sat->st", pi, P)
    r_pi = np.einsum("sa,sa->s", pi, R)
    return np.linalg.solve(np.eye(len(r_pi)) - gamma * P_pi, r_pi)
    ### END SOLUTION


# %%
check("value_learning.policy_evaluation", policy_evaluation)

# %% [markdown]
# ## Exercise 4: action values from state values
#
# `q_from_v(P, R, V, gamma) -> Q`: $Q(s, a) = R[s, a] + \gamma \sum_{s'} P[s, a, s']\,V(s')$, an (S, A) array.
#
# **Checked** against the reference.

# %%
def q_from_v(P, R, V, gamma):
    ### BEGIN SOLUTION
    return R + gamma * P @ V
    ### END SOLUTION


# %%
check("value_learning.q_from_v", q_from_v)

# %% [markdown]
# ## Exercise 5: value iteration
#
# `value_iteration(P, R, gamma, tol) -> (V, pi)`: start from $V = 0$ and apply the Bellman optimality operator
# $V \leftarrow \max_a \big(R + \gamma P V\big)$ until the sup-norm change is below `tol`; return $V$ (S,) and a
# deterministic greedy policy `pi` (S, A), one-hot rows, taking in each state an action that maximises
# $R + \gamma P V$ for the $V$ you return.
#
# **Checked** by properties (not against one answer, because tied actions may be broken either way): the Bellman
# residual $\max_s |\max_a (R + \gamma P V)(s, a) - V(s)|$ is below `tol`, `pi` puts weight only on greedy actions,
# and $V$ is within `tol / (1 - gamma)` of the optimum; on FrozenLake, CliffWalking and random MDPs, one with tied
# actions.

# %%
def value_iteration(P, R, gamma, tol):
    ### BEGIN SOLUTION
    V = np.zeros(R.shape[0])
    while True:
        V_new = (R + gamma * P @ V).max(axis=1)
        done = np.max(np.abs(V_new - V)) < tol
        V = V_new
        if done:
            break
    pi = np.eye(R.shape[1])[(R + gamma * P @ V).argmax(axis=1)]
    return V, pi
    ### END SOLUTION


# %%
check("value_learning.value_iteration", value_iteration)

# %% [markdown]
# ## Exercise 6: one Q-learning update
#
# `q_update(Q, s, a, r, s2, done, alpha, gamma) -> Q_new`: Watkins' update of the entry $(s, a)$ after the
# transition $(s, a, r, s')$,
#
# $$Q(s, a) \leftarrow Q(s, a) + \alpha\big(y - Q(s, a)\big), \qquad y = \begin{cases} r & \text{if the episode
# terminated at } s' \\ r + \gamma \max_{a'} Q(s', a') & \text{otherwise.}\end{cases}$$
#
# Return a **new** table (S, A); leave the `Q` you were given unchanged.
#
# **Checked** against the reference, terminal steps and a self-loop $s' = s$ included, and that the input is untouched.

# %%
def q_update(Q, s, a, r, s2, done, alpha, gamma):
    ### BEGIN SOLUTION
    Q = Q.copy()
    target = r if done else r + gamma * Q[s2].max()
    Q[s, a] += alpha * (target - Q[s, a])
    return Q
    ### END SOLUTION


# %%
check("value_learning.q_update", q_update)

# %% [markdown]
# ## Exercise 7: epsilon-greedy
#
# `epsilon_greedy(q_row, eps, rng) -> int`: with probability `eps` an action drawn uniformly from **all** actions,
# otherwise a greedy action, ties broken uniformly at random among the greedy ones. Draw every random number from
# `rng`, a `numpy.random.Generator`. So action $a$ has probability
# $\varepsilon / A + (1 - \varepsilon)\,\mathbb 1[a \text{ greedy}] / \#\text{greedy}$.
#
# **Checked** by frequencies: the check calls your function thousands of times with a generator it seeds, counts the
# actions, and asks every count to lie within 6 standard deviations of its expectation (a right answer fails with
# probability below 1e-8), with ties, eps = 0 and eps = 1.

# %%
def epsilon_greedy(q_row, eps, rng):
    ### BEGIN SOLUTION
    if rng.random() < eps:
        return int(rng.integers(len(q_row)))
    return int(rng.choice(np.flatnonzero(q_row == q_row.max())))
    ### END SOLUTION


# %%
check("value_learning.epsilon_greedy", epsilon_greedy)

# %% [markdown]
# ## Exercise 8: a FIFO replay buffer
#
# `ReplayBuffer(capacity)` with
#
# - `push(obs, action, reward, next_obs, terminated)`: store one transition (`obs` a float array of shape (d,),
#   `action` an int, `reward` a float, `terminated` a bool); once `capacity` are stored, each push **overwrites the
#   oldest** (a ring buffer);
# - `sample(n, rng) -> (obs, action, reward, next_obs, terminated)`: `n` stored transitions drawn uniformly with
#   replacement using the `numpy.random.Generator` `rng`, as five arrays of shapes (n, d), (n,), (n,), (n, d), (n,);
#   only transitions that are stored, never an empty slot;
# - `len(buffer)`: how many are stored.
#
# **Checked** by a script: pushes of numbered transitions and samples after them; every sampled transition must be one
# of the `capacity` most recent, its fields must belong together, and with many draws every stored one must come up
# about equally often.

# %%
class ReplayBuffer:
    def __init__(self, capacity):
        ### BEGIN SOLUTION
        self.capacity, self.size, self.pos, self.data = capacity, 0, 0, None
        ### END SOLUTION

    def __len__(self):
        ### BEGIN SOLUTION
        return self.size
        ### END SOLUTION

    def push(self, obs, action, reward, next_obs, terminated):
        ### BEGIN SOLUTION
        # Hint: allocate one array per field at the first push; write at self.pos, then advance it modulo capacity.
        item = (obs, action, reward, next_obs, terminated)
        if self.data is None:
            self.data = [np.zeros((self.capacity, *np.shape(x)), dtype=np.asarray(x).dtype) for x in item]
        for store, x in zip(self.data, item):
            store[self.pos] = x
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        ### END SOLUTION

    def sample(self, n, rng):
        ### BEGIN SOLUTION
        idx = rng.integers(0, self.size, size=n)
        return tuple(store[idx] for store in self.data)
        ### END SOLUTION


# %%
check("value_learning.ReplayBuffer", ReplayBuffer)

# %% [markdown]
# ## Exercise 9: DQN targets
#
# `dqn_targets(r, terminated, truncated, q_next_target, gamma) -> y`: for a batch of B transitions, `r` (B,),
# `terminated` and `truncated` (B,) bool, `q_next_target` (B, A) the target network's values at $s'$:
#
# $$y = r + \gamma\,(1 - \text{terminated})\,\max_{a'} Q^-(s', a').$$
#
# A *truncated* transition (a time limit, such as CartPole's 500 steps) did not reach a terminal state: its $s'$ still
# has a future, so it **bootstraps** like any other. Return a tensor (B,) of `r`'s dtype.
#
# **Checked** against the reference, with truncations, both flags at once, float64 and negative values.

# %%
def dqn_targets(r, terminated, truncated, q_next_target, gamma):
    ### BEGIN SOLUTION
    return r + gamma * (~terminated).to(r.dtype) * q_next_target.max(dim=-1).values
    ### END SOLUTION


# %%
check("value_learning.dqn_targets", dqn_targets)

# %% [markdown]
# ## Exercise 10: the Polyak target update
#
# `soft_update(target, online, tau)`: for two `nn.Module`s of the same architecture, update every parameter of
# `target` **in place**, $\theta^- \leftarrow \tau\,\theta + (1 - \tau)\,\theta^-$, and leave `online` unchanged;
# return nothing. `tau = 1` copies the online network, `tau = 0` leaves the target as it is.
#
# **Checked** by building two small networks with given weights, calling your function and reading both networks'
# weights afterwards.

# %%
def soft_update(target, online, tau):
    ### BEGIN SOLUTION
    # Hint: under torch.no_grad(), zip(target.parameters(), online.parameters()) and update with .mul_ / .add_.
    with torch.no_grad():
        for t, o in zip(target.parameters(), online.parameters()):
            t.mul_(1 - tau).add_(tau * o)
    ### END SOLUTION


# %%
check("value_learning.soft_update", soft_update)

# %% [markdown]
# ## Done
#
# The lecture puts these pieces to work: value iteration's arrows on FrozenLake, Q-learning against SARSA on
# CliffWalking, and a DQN on CartPole-v1 with its replay buffer and target network ablated.

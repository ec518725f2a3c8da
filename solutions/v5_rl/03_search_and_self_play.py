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
# # Volume 5, Chapter 3 exercises: search and self-play (sections 5.8-5.9)
#
# Ten pieces of a game-playing program, from the rules to AlphaZero's loss: who has won and which moves are legal;
# exact minimax values (negamax); the UCB1 scores and the backup of UCT; a UCT move that never misses an immediate
# win or block (5.8); PUCT selection, visit counts turned into a policy with a temperature, the AlphaZero loss and
# the 8 symmetries of a board used for data augmentation (5.9). Write each body where it says `# YOUR CODE HERE`,
# run the cell, then the `check(...)` cell below it: it answers at once with a green "passed" or a red message that
# says what to fix. The checks draw fresh random positions (reachable by legal play) each time, with edge cases.
#
# The lecture is `chapters/v5_rl/03_search_and_self_play.ipynb`. Please write your own code rather than importing
# the course's reference implementations.
#
# **Conventions.** A board is a tuple of 9 ints, cell `i = 3 * row + col`: `+1` is X, `-1` is O, `0` is empty. X
# moves first, so X is to move when both have as many stones (`sum(board) == 0`). Values are from the point of view
# of the **player to move**. Never modify an input in place.
#
# The SYLLABUS lists `mcts_move(state, n_sims, rng)`; here it takes an integer `seed` instead of a generator, so
# that a case is plain data.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import math
import random
from functools import lru_cache

import numpy as np
import torch

from manifold_course.grading import check

LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def to_move(board):
    """+1 when X is to move, -1 when O is."""
    return 1 if sum(board) == 0 else -1


def play(board, move):
    """The board after the player to move puts a stone on `move`."""
    b = list(board)
    b[move] = to_move(board)
    return tuple(b)


# %% [markdown]
# ## Exercise 1: who has won
#
# `winner(board) -> int`: `+1` if X has three in a row (a row, a column or a diagonal; `LINES` above lists the 8),
# `-1` if O has, `0` otherwise (nobody yet, or a draw).
#
# **Checked** on fixed boards (a row, a diagonal, a full drawn board, a full board won on the last move, the empty
# board) and on random positions.

# %%
def winner(board):
    ### BEGIN SOLUTION
    for i, j, k in LINES:
        if board[i] != 0 and board[i] == board[j] == board[k]:
            return board[i]
    return 0
    ### END SOLUTION


# %%
check("self_play.winner", winner)

# %% [markdown]
# ## Exercise 2: legal moves
#
# `legal_moves(board) -> list[int]`: the empty cells in increasing order, and **none once somebody has won** (the
# game is over even if cells are free). You may use your `winner`.
#
# **Checked** on the same kinds of boards as exercise 1.

# %%
def legal_moves(board):
    ### BEGIN SOLUTION
    if winner(board) != 0:
        return []
    return [i for i, c in enumerate(board) if c == 0]
    ### END SOLUTION


# %%
check("self_play.legal_moves", legal_moves)

# %% [markdown]
# ## Exercise 3: exact minimax values (negamax)
#
# `minimax_value(board) -> int`: the game value for the **player to move**, +1 (they can force a win), 0 (a draw
# with best play) or -1 (they lose against best play):
#
# $$V(s) = \max_{a\ \text{legal}} \big(-V(s\cdot a)\big),\qquad V(s) = -1 \text{ if the game is over and somebody has
# won (the opponent, who just moved)},\quad V(s) = 0 \text{ for a full board without a line}.$$
#
# Memoise it (`functools.lru_cache` on the board tuple): there are only 5478 positions, but the game tree has
# 549,946 nodes.
#
# **Checked** on the empty board (0), on fixed positions, on 40 random positions and on ~115 positions of every depth.

# %%
def minimax_value(board):
    ### BEGIN SOLUTION
    return _negamax(tuple(board))


@lru_cache(maxsize=None)
def _negamax(board):
    moves = legal_moves(board)
    if not moves:
        return -1 if winner(board) != 0 else 0
    return max(-_negamax(play(board, m)) for m in moves)
    ### END SOLUTION


# %%
check("self_play.minimax_value", minimax_value)

# %% [markdown]
# ## Exercise 4: UCB1 scores
#
# `ucb(q, n_parent, n_child, c) -> np.ndarray`: for the actions of one node, with `q` (k,) their mean values,
# `n_child` (k,) their visit counts and `n_parent` the node's total visits,
#
# $$\mathrm{UCB}(a) = q_a + c\sqrt{\frac{\ln n_{parent}}{n_a}},\qquad \mathrm{UCB}(a) = +\infty \text{ if } n_a = 0.$$
#
# Return a float64 array of shape (k,). Take $\ln$ of `max(n_parent, 1)` (a fresh node has `n_parent = 0`, and then
# every action is unvisited anyway). Avoid dividing by zero (no warnings): `np.where` evaluates both branches.
#
# **Checked** against the reference: one unvisited action, a fresh node, `n_parent = 1` (no bonus), random nodes.

# %%
def ucb(q, n_parent, n_child, c):
    ### BEGIN SOLUTION
    n = np.asarray(n_child, dtype=np.float64)
    visited = n > 0
    bonus = c * np.sqrt(math.log(max(n_parent, 1)) / np.where(visited, n, 1.0))
    return np.where(visited, np.asarray(q, dtype=np.float64) + bonus, np.inf)
    ### END SOLUTION


# %%
check("self_play.ucb", ucb)

# %% [markdown]
# ## Exercise 5: backing up one simulation
#
# The tree is stored in arrays: `N[node, a]` visit counts and `W[node, a]` summed values of the edge that takes move
# `a` at `node`, each from the point of view of the player who **chooses** `a` there. After a simulation reached a
# leaf along `path = [(node_0, a_0), ..., (node_{L-1}, a_{L-1})]` (root first), with `value` the result for the
# player to move **at the leaf**:
#
# `backup(N, W, path, value) -> (N_new, W_new)`: new arrays (copies; leave the inputs alone) in which each edge on
# the path has one more visit and edge $k$ gained $(-1)^{L-k}\,\mathrm{value}$. The last edge was chosen by the leaf
# player's opponent, so it gets `-value`; the one before it `+value`; and so on. An empty path changes nothing.
#
# **Checked** exactly, on paths of 0 to 5 edges.

# %%
def backup(N, W, path, value):
    ### BEGIN SOLUTION
    N, W = N.copy(), W.copy()
    L = len(path)
    for k, (node, a) in enumerate(path):
        N[node, a] += 1
        W[node, a] += value if (L - k) % 2 == 0 else -value
    return N, W
    ### END SOLUTION


# %%
check("self_play.backup", backup)

# %% [markdown]
# ## Exercise 6: a UCT move that takes wins and blocks losses
#
# `mcts_move(board, n_sims, seed) -> int` for the player to move, a non-finished board:
#
# 1. if a move wins at once, play it;
# 2. else, if the opponent threatens to win at once, search only among the blocking cells;
# 3. run `n_sims` UCT simulations (selection by your `ucb` with `c = 1.4`, expansion of one node, a uniformly random
#    rollout with `random.Random(seed)`, your `backup`) and play the most visited root move.
#
# Rules 1-2 are the "decisive moves" of Teytaud & Teytaud (2010): UCT ranks by visits, which need not put an
# immediate win ahead of a slower win.
#
# **Checked** by the property, not by equality with the reference (the search is random): on 3 fixed and 8 random
# positions, with 200 simulations, the move must be legal, must win when a win is available, and must block when the
# opponent threatens.

# %%
def mcts_move(board, n_sims, seed):
    ### BEGIN SOLUTION
    board = tuple(board)
    me = to_move(board)

    def wins_for(b, player):
        return [m for m in legal_moves(b) if winner(b[:m] + (player,) + b[m + 1:]) == player]

    wins = wins_for(board, me)
    if wins:
        return wins[0]
    root_moves = wins_for(board, -me) or legal_moves(board)
    rnd = random.Random(seed)
    N, W = np.zeros((n_sims + 1, 9)), np.zeros((n_sims + 1, 9))
    child = -np.ones((n_sims + 1, 9), dtype=np.int64)
    boards = [board]
    for _ in range(n_sims):
        node, path = 0, []
        while True:
            b = boards[node]
            moves = root_moves if node == 0 else legal_moves(b)
            if not moves:
                value = -1 if winner(b) else 0
                break
            scores = ucb(W[node, moves] / np.maximum(N[node, moves], 1), N[node].sum(), N[node, moves], 1.4)
            a = moves[int(np.argmax(scores))]
            path.append((node, a))
            if child[node, a] < 0:
                nb = play(b, a)
                boards.append(nb)
                child[node, a] = len(boards) - 1
                rollout, mover = nb, to_move(nb)
                while legal_moves(rollout):
                    rollout = play(rollout, rnd.choice(legal_moves(rollout)))
                value = winner(rollout) * mover
                break
            node = int(child[node, a])
        N, W = backup(N, W, path, value)
    return int(np.argmax(N[0]))
    ### END SOLUTION


# %%
check("self_play.mcts_move", mcts_move)

# %% [markdown]
# ## Exercise 7: PUCT selection
#
# `puct_select(P, N, Q, c_puct) -> int`: with `P` (k,) the prior, `N` (k,) the visit counts and `Q` (k,) the mean
# values of a node's actions,
#
# $$a^* = \arg\max_a \Big[Q_a + c_{puct}\,P_a\,\frac{\sqrt{\sum_b N_b}}{1 + N_a}\Big],$$
#
# ties going to the **lowest index**. Note the $1 + N_a$ (an unvisited action must not divide by zero) and the
# square root of the *sum* of the counts.
#
# **Checked** against the reference: a fresh node (every score 0: index 0), an exact tie, unvisited actions, random
# nodes.

# %%
def puct_select(P, N, Q, c_puct):
    ### BEGIN SOLUTION
    N = np.asarray(N, dtype=np.float64)
    return int(np.argmax(np.asarray(Q) + c_puct * np.asarray(P) * np.sqrt(N.sum()) / (1.0 + N)))
    ### END SOLUTION


# %%
check("self_play.puct_select", puct_select)

# %% [markdown]
# ## Exercise 8: visit counts to a policy, with a temperature
#
# `visits_to_policy(N, tau) -> np.ndarray` (float64, same shape as `N`):
#
# $$\pi(a) = \frac{N(a)^{1/\tau}}{\sum_b N(b)^{1/\tau}},$$
#
# - `tau == 0` means the limit $\tau \to 0$: all the mass on the most visited action, **split evenly between tied
#   actions**;
# - with large counts and a small $\tau$, $N^{1/\tau}$ overflows: work with $\log N / \tau$ and subtract its maximum
#   before exponentiating (an action with $N = 0$ gets probability 0).
#
# **Checked** against the reference: $\tau = 1$, $\tau = 0$ with and without a tie, counts in the millions with
# $\tau = 0.01$, $\tau = 0.5$ and $4$.

# %%
def visits_to_policy(N, tau):
    ### BEGIN SOLUTION
    N = np.asarray(N, dtype=np.float64)
    if tau == 0:
        best = (N == N.max()).astype(np.float64)
        return best / best.sum()
    with np.errstate(divide="ignore"):
        logits = np.log(N) / tau
    w = np.exp(logits - logits.max())
    return w / w.sum()
    ### END SOLUTION


# %%
check("self_play.visits_to_policy", visits_to_policy)

# %% [markdown]
# ## Exercise 9: the AlphaZero loss
#
# `alphazero_loss(p_logits, v, pi, z, params, c) -> 0-dim tensor`: with `p_logits` (B, 9) the policy head's logits,
# `v` (B,) the value head's outputs, `pi` (B, 9) the search's visit distributions, `z` (B,) the game results (for the
# player to move), `params` a list of parameter tensors and `c` the weight decay,
#
# $$\ell = \frac1B\sum_{i=1}^{B}\Big[(z_i - v_i)^2 - \sum_{a} \pi_{i,a}\log p_{i,a}\Big] + c\sum_{\theta \in
# \text{params}} \sum \theta^2,\qquad p_i = \mathrm{softmax}(\text{p\_logits}_i).$$
#
# The cross-entropy is a **sum** over the 9 moves (a mean over the batch), the regulariser a **sum** of squares.
# Use `torch.log_softmax` (stable), and keep everything differentiable: the network trains through it.
#
# **Checked** on the value and on its gradient with respect to `p_logits`, `v` and every parameter (float64).

# %%
def alphazero_loss(p_logits, v, pi, z, params, c):
    ### BEGIN SOLUTION
    value = ((z - v) ** 2).mean()
    policy = -(pi * torch.log_softmax(p_logits, -1)).sum(-1).mean()
    return value + policy + c * sum((p**2).sum() for p in params)
    ### END SOLUTION


# %%
check("self_play.alphazero_loss", alphazero_loss)

# %% [markdown]
# ## Exercise 10: the 8 symmetries of a board and its policy
#
# Tic-tac-toe looks the same after any of the 8 rotations and reflections of the square (the dihedral group), so
# every training position gives 8 (AlphaGo Zero used the same augmentation on Go). A policy over the cells must move
# **with** its cells.
#
# `dihedral_symmetries(board, policy) -> (boards, policies)`: `board` (9,) and `policy` (9,) arrays; return two
# arrays of shape (8, 9): row $k$ of each is the board and the policy under the *same* transformation $k$, the 8
# transformations all different (the identity included), in any order. Hint: `np.rot90` of `np.arange(9).reshape(3,
# 3)` and of its transpose gives index permutations; apply each to both arrays.
#
# **Checked** on random boards with policies whose entries all differ, and on the empty board.

# %%
def dihedral_symmetries(board, policy):
    ### BEGIN SOLUTION
    g = np.arange(9).reshape(3, 3)
    perms = np.stack([np.rot90(m, k).reshape(-1) for m in (g, g.T) for k in range(4)])
    b, p = np.asarray(board), np.asarray(policy)
    return b[perms], p[perms]
    ### END SOLUTION


# %%
check("self_play.dihedral_symmetries", dihedral_symmetries)

# %% [markdown]
# ## What next
#
# Back to the lecture (`chapters/v5_rl/03_search_and_self_play.ipynb`) for what these pieces do together: UCT's
# strength as its budget grows, and an AlphaZero-lite trained by self-play until it never loses to a perfect player,
# with the network alone and the search alone measured against the same opponent.

"""Plausible wrong answers to the exercises of v5_rl/03_search_and_self_play; each check must reject them."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from manifold_course.rl import mcts
from manifold_course.rl import tictactoe as ttt

_LINES = ttt.LINES

# ---------------------------------------------------------------- winner / legal moves


def winner_rows_only(board):
    for i in (0, 3, 6):
        if board[i] != 0 and board[i] == board[i + 1] == board[i + 2]:
            return board[i]
    return 0


def winner_no_diagonals(board):
    for i, j, k in _LINES[:6]:
        if board[i] != 0 and board[i] == board[j] == board[k]:
            return board[i]
    return 0


def winner_bool(board):
    return any(board[i] != 0 and board[i] == board[j] == board[k] for i, j, k in _LINES)


def legal_after_win(board):
    # forgets that the game is over once somebody has three in a row
    return [i for i, c in enumerate(board) if c == 0]


def legal_occupied(board):
    return [] if ttt.winner(board) else [i for i, c in enumerate(board) if c != 0]


# ---------------------------------------------------------------- minimax


@lru_cache(maxsize=None)
def minimax_no_sign_flip(board):
    moves = ttt.legal_moves(board)
    if not moves:
        return -1 if ttt.winner(board) else 0
    return max(minimax_no_sign_flip(ttt.play(board, m)) for m in moves)


def minimax_x_view(board):
    # the value for X instead of for the player to move
    return ttt.negamax(board) * ttt.to_move(board)


@lru_cache(maxsize=None)
def minimax_terminal_wrong_sign(board):
    moves = ttt.legal_moves(board)
    if not moves:
        return 1 if ttt.winner(board) else 0      # the player to move has *lost* a finished won game
    return max(-minimax_terminal_wrong_sign(ttt.play(board, m)) for m in moves)


# ---------------------------------------------------------------- ucb


def ucb_zero_unvisited(q, n_parent, n_child, c):
    n = np.asarray(n_child, dtype=np.float64)
    return np.where(n > 0, q + c * np.sqrt(math.log(max(n_parent, 1)) / np.maximum(n, 1)), 0.0)


def ucb_no_log(q, n_parent, n_child, c):
    n = np.asarray(n_child, dtype=np.float64)
    return np.where(n > 0, q + c * np.sqrt(n_parent / np.maximum(n, 1)), np.inf)


def ucb_no_sqrt(q, n_parent, n_child, c):
    n = np.asarray(n_child, dtype=np.float64)
    return np.where(n > 0, q + c * math.log(max(n_parent, 1)) / np.maximum(n, 1), np.inf)


# ---------------------------------------------------------------- backup


def backup_no_flip(N, W, path, value):
    N, W = N.copy(), W.copy()
    for node, a in path:
        N[node, a] += 1
        W[node, a] += value
    return N, W


def backup_flip_off_by_one(N, W, path, value):
    # the last edge gets +value: the leaf's value credited to the opponent's choice
    N, W = N.copy(), W.copy()
    L = len(path)
    for k, (node, a) in enumerate(path):
        N[node, a] += 1
        W[node, a] += value if (L - k) % 2 == 1 else -value
    return N, W


def backup_in_place(N, W, path, value):
    L = len(path)
    for k, (node, a) in enumerate(path):
        N[node, a] += 1
        W[node, a] += value if (L - k) % 2 == 0 else -value
    return N, W


# ---------------------------------------------------------------- mcts_move


def mcts_random(board, n_sims, seed):
    moves = ttt.legal_moves(tuple(board))
    return int(moves[(seed * 7919 + n_sims) % len(moves)])


def mcts_blocks_first(board, n_sims, seed):
    # looks at the opponent's threats before its own wins: ignores an immediate win
    board = tuple(board)
    me = ttt.to_move(board)
    threats = mcts.immediate_wins(board, -me)
    if threats:
        return threats[0]
    wins = mcts.immediate_wins(board, me)
    if wins:
        return wins[0]
    return int(np.argmax(mcts.uct_search(board, n_sims, seed)))


def mcts_fewest_visits(board, n_sims, seed):
    n = mcts.uct_search(tuple(board), n_sims, seed)
    n = np.where(np.asarray(board) == 0, n, np.inf)
    return int(np.argmin(n))


# ---------------------------------------------------------------- puct_select


def puct_n_not_1_plus_n(P, N, Q, c_puct):
    N = np.asarray(N, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return int(np.argmax(Q + c_puct * P * np.sqrt(N.sum()) / N))


def puct_no_sqrt(P, N, Q, c_puct):
    N = np.asarray(N, dtype=np.float64)
    return int(np.argmax(Q + c_puct * P * N.sum() / (1 + N)))


def puct_highest_index_on_ties(P, N, Q, c_puct):
    N = np.asarray(N, dtype=np.float64)
    s = Q + c_puct * P * np.sqrt(N.sum()) / (1 + N)
    return int(len(s) - 1 - np.argmax(s[::-1]))


def puct_forgets_q(P, N, Q, c_puct):
    N = np.asarray(N, dtype=np.float64)
    return int(np.argmax(c_puct * P * np.sqrt(N.sum()) / (1 + N)))


# ---------------------------------------------------------------- visits_to_policy


def v2p_n_to_the_tau(N, tau):
    N = np.asarray(N, dtype=np.float64)
    if tau == 0:
        b = (N == N.max()).astype(float)
        return b / b.sum()
    w = N**tau
    return w / w.sum()


def v2p_overflows(N, tau):
    N = np.asarray(N, dtype=np.float64)
    if tau == 0:
        b = (N == N.max()).astype(float)
        return b / b.sum()
    with np.errstate(over="ignore", invalid="ignore"):
        w = N ** (1 / tau)
        return w / w.sum()


def v2p_argmax_only(N, tau):
    # tau = 0 with ties: all the mass on the first tied action (the spec splits it evenly)
    N = np.asarray(N, dtype=np.float64)
    if tau == 0:
        out = np.zeros_like(N)
        out[np.argmax(N)] = 1.0
        return out
    with np.errstate(divide="ignore"):
        lg = np.log(N) / tau
    w = np.exp(lg - lg.max())
    return w / w.sum()


# ---------------------------------------------------------------- alphazero_loss


def loss_plus_cross_entropy(p_logits, v, pi, z, params, c):
    return (((z - v) ** 2).mean() + (pi * torch.log_softmax(p_logits, -1)).sum(-1).mean()
            + c * sum((p**2).sum() for p in params))


def loss_mean_over_actions(p_logits, v, pi, z, params, c):
    return (((z - v) ** 2).mean() - (pi * torch.log_softmax(p_logits, -1)).mean()
            + c * sum((p**2).sum() for p in params))


def loss_l2_mean(p_logits, v, pi, z, params, c):
    return (((z - v) ** 2).mean() - (pi * torch.log_softmax(p_logits, -1)).sum(-1).mean()
            + c * sum((p**2).mean() for p in params))


def loss_log_of_logits(p_logits, v, pi, z, params, c):
    # uses the raw logits as if they were log-probabilities
    return (((z - v) ** 2).mean() - (pi * p_logits).sum(-1).mean() + c * sum((p**2).sum() for p in params))


def loss_detached_value(p_logits, v, pi, z, params, c):
    return (((z - v.detach()) ** 2).mean() - (pi * torch.log_softmax(p_logits, -1)).sum(-1).mean()
            + c * sum((p**2).sum() for p in params))


# ---------------------------------------------------------------- dihedral symmetries

_G = np.arange(9).reshape(3, 3)


def sym_rotations_twice(board, policy):
    perms = [np.rot90(_G, k).reshape(-1) for k in range(4)] * 2
    b, p = np.asarray(board), np.asarray(policy)
    return np.stack([b[q] for q in perms]), np.stack([p[q] for q in perms])


def sym_policy_not_moved(board, policy):
    perms = [np.rot90(g, k).reshape(-1) for g in (_G, _G.T) for k in range(4)]
    b = np.asarray(board)
    return np.stack([b[q] for q in perms]), np.stack([np.asarray(policy)] * 8)


def sym_inverse_for_policy(board, policy):
    perms = [np.rot90(g, k).reshape(-1) for g in (_G, _G.T) for k in range(4)]
    b, p = np.asarray(board), np.asarray(policy)
    return np.stack([b[q] for q in perms]), np.stack([p[np.argsort(q)] for q in perms])


WRONG = {
    "self_play.winner": [winner_rows_only, winner_no_diagonals, winner_bool],
    "self_play.legal_moves": [legal_after_win, legal_occupied],
    "self_play.minimax_value": [minimax_no_sign_flip, minimax_x_view, minimax_terminal_wrong_sign],
    "self_play.ucb": [ucb_zero_unvisited, ucb_no_log, ucb_no_sqrt],
    "self_play.backup": [backup_no_flip, backup_flip_off_by_one, backup_in_place],
    "self_play.mcts_move": [mcts_random, mcts_blocks_first, mcts_fewest_visits],
    "self_play.puct_select": [puct_n_not_1_plus_n, puct_no_sqrt, puct_highest_index_on_ties, puct_forgets_q],
    "self_play.visits_to_policy": [v2p_n_to_the_tau, v2p_overflows, v2p_argmax_only],
    "self_play.alphazero_loss": [loss_plus_cross_entropy, loss_mean_over_actions, loss_l2_mean, loss_log_of_logits,
                                 loss_detached_value],
    "self_play.dihedral_symmetries": [sym_rotations_twice, sym_policy_not_moved, sym_inverse_for_policy],
}

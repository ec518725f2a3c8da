r"""Monte Carlo tree search with UCT and random rollouts (Volume 5, section 5.8).

Each simulation walks from the root down the tree it has grown so far, then grows it by one node:

1. **selection**: at a node with every child known, pick the action maximising UCB1 (Auer et al. 2002) as
   applied to trees by Kocsis & Szepesvari ("Bandit based Monte-Carlo Planning", ECML 2006),

   $$a^* = \arg\max_a \Big[Q(s,a) + c\sqrt{\frac{\ln N(s)}{N(s,a)}}\Big],\qquad N(s) = \textstyle\sum_b N(s,b),$$

   an unvisited action scoring $+\infty$ (so each is tried once first);
2. **expansion**: the first unvisited action adds one new node;
3. **simulation** (rollout): uniformly random moves from the new node to the end of the game;
4. **backup**: the result $v$, seen by the player to move at the leaf, is added along the path with alternating
   sign, because each edge's statistics belong to the player who chose it (negamax).

Coulom ("Efficient Selectivity and Backup Operators in Monte-Carlo Tree Search", Computers and Games 2006) named
the method; Browne et al. ("A Survey of Monte Carlo Tree Search Methods", IEEE TCIAIG 2012) survey its variants.
The tree lives in arrays: ``N[node, a]`` visit counts, ``W[node, a]`` summed values, ``child[node, a]`` the node
id reached (-1 while unexpanded).
"""

from __future__ import annotations

import math
import random

import numpy as np

from manifold_course.rl import tictactoe as ttt
from manifold_course.seeding import course_seed


def ucb(q: np.ndarray, n_parent: float, n_child: np.ndarray, c: float) -> np.ndarray:
    """UCB1 scores of the actions of one node: ``q + c sqrt(ln n_parent / n_child)``, ``inf`` where ``n_child`` is 0."""
    q, n_child = np.asarray(q, dtype=np.float64), np.asarray(n_child, dtype=np.float64)
    visited = n_child > 0
    bonus = c * np.sqrt(math.log(max(n_parent, 1)) / np.where(visited, n_child, 1.0))
    return np.where(visited, q + bonus, np.inf)


def backup(N: np.ndarray, W: np.ndarray, path: list[tuple[int, int]], value: float) -> tuple[np.ndarray, np.ndarray]:
    """One simulation's bookkeeping, returned as new arrays (the inputs are left alone).

    ``path`` lists the edges ``(node, action)`` from the root to the leaf; ``value`` is the result seen by the
    player to move at the leaf. Edge ``k`` of ``L`` was chosen by the player to move at node ``k``, the leaf's
    player when ``L - k`` is even and the opponent when it is odd, so it gets ``N += 1`` and
    ``W += (-1) ** (L - k) * value``: the last edge gets ``-value``.
    """
    N, W = N.copy(), W.copy()
    L = len(path)
    for k, (node, a) in enumerate(path):
        N[node, a] += 1
        W[node, a] += value if (L - k) % 2 == 0 else -value
    return N, W


def rollout(board: ttt.Board, rnd: random.Random) -> int:
    """Play uniformly random moves to the end; the result for the player to move at ``board``."""
    me = ttt.to_move(board)
    moves = ttt.legal_moves(board)
    while moves:
        board = ttt.play(board, moves[rnd.randrange(len(moves))])
        moves = ttt.legal_moves(board)
    return ttt.winner(board) * me


def uct_search(root: ttt.Board, n_sims: int, seed: int, c: float = 1.4,
               root_moves: tuple[int, ...] | None = None) -> np.ndarray:
    """Run ``n_sims`` UCT simulations from ``root``; returns the root's visit counts ``N(root, a)`` (9 entries).

    ``root_moves`` restricts the root's choices (default: every legal move). The selection computes the scores
    of :func:`ucb` in plain Python (9 numbers are too few for NumPy to pay); ties go to the lowest index."""
    rnd = random.Random(course_seed(seed))
    N, W = np.zeros((n_sims + 1, 9)), np.zeros((n_sims + 1, 9))
    child = -np.ones((n_sims + 1, 9), dtype=np.int64)
    boards = [root]
    for _ in range(n_sims):
        node, path = 0, []
        while True:
            b = boards[node]
            moves = ttt.legal_moves(b) if node or root_moves is None else root_moves
            if not moves:                                   # a finished game: its exact value
                value = ttt.terminal_value(b)
                break
            n, w = N[node].tolist(), W[node].tolist()
            log_parent = math.log(max(sum(n), 1))
            best, a = -math.inf, moves[0]
            for m in moves:
                score = w[m] / n[m] + c * math.sqrt(log_parent / n[m]) if n[m] else math.inf
                if score > best:
                    best, a = score, m
            path.append((node, a))
            if child[node, a] < 0:                          # expansion, then a random rollout
                nb = ttt.play(b, a)
                boards.append(nb)
                child[node, a] = len(boards) - 1
                value = rollout(nb, rnd)
                break
            node = int(child[node, a])
        N, W = backup(N, W, path, value)
    return N[0]


def immediate_wins(board: ttt.Board, player: int) -> tuple[int, ...]:
    """The empty cells where ``player`` (+1 or -1) would complete a line at once."""
    if ttt.winner(board):
        return ()
    return tuple(m for m in range(9) if board[m] == 0
                 and ttt.winner(board[:m] + (player,) + board[m + 1:]) == player)


def mcts_move(board: ttt.Board, n_sims: int, seed: int, c: float = 1.4) -> int:
    """A move for the player to move: an immediate win if there is one (the lowest such cell); else, if the
    opponent threatens to win, UCT restricted to the blocking cells; else UCT over every legal move. The answer
    is the most visited root action (ties: the lowest index).

    The first two rules are the "decisive" and "anti-decisive" moves of Teytaud & Teytaud (IEEE CIG 2010): plain
    UCT ranks by visit counts, which need not put an immediate win ahead of a slower win, nor a block ahead of a
    move that loses a little later."""
    board = tuple(board)
    me = ttt.to_move(board)
    wins = immediate_wins(board, me)
    if wins:
        return wins[0]
    threats = immediate_wins(board, -me)
    return int(np.argmax(uct_search(board, n_sims, seed, c, root_moves=threats or None)))

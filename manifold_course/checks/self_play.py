"""Checks for chapter v5_rl/03_search_and_self_play (Volume 5, sections 5.8-5.9).

Boards are tuples of 9 ints (+1 X, -1 O, 0 empty; X moves first), drawn at grading time from the seeded generator
by random legal play. ``mcts_move`` is judged by a property (an immediate win is taken, a single threat is
blocked), not by equality with the reference, since the search is random. ``alphazero_loss`` is judged on its
value and on its gradient with respect to the logits, the values and every parameter.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.rl import alphazero as az
from manifold_course.rl import mcts
from manifold_course.rl import tictactoe as ttt

CHAPTER = "v5_rl/03_search_and_self_play"


def _positions(rng: np.random.Generator, n: int, lo: int = 0, hi: int = 9) -> list[tuple[int, ...]]:
    return [ttt.random_position(rng, int(rng.integers(lo, hi + 1))) for _ in range(n)]


def _with_label(b) -> str:
    return "board " + "".join(".XO"[c] for c in b) + " (cells 0..8 row by row; X = +1, O = -1)"


# ---------------------------------------------------------------- rules and minimax

_FIXED = {
    "X's top row": (1, 1, 1, -1, -1, 0, 0, 0, 0),
    "O's diagonal 2-4-6": (1, 1, -1, 1, -1, 0, -1, 0, 0),
    "a full board, drawn": (1, -1, 1, 1, -1, -1, -1, 1, 1),
    "X wins on the last move with a full board": (1, -1, 1, -1, 1, -1, 1, -1, 1),
    "the empty board": ttt.EMPTY,
}


def _rule_cases(rng):
    for label, b in _FIXED.items():
        yield Case((b,), label=label)
    for b in _positions(rng, 12, 4, 9):
        yield Case((b,), label=_with_label(b))


def _judge_int(what):
    def judge(got, expected, case):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
            return f"return a Python int for {what}, got {type(got).__name__}"
        return None if int(got) == expected else f"{what}: expected {expected}, got {int(got)}"
    return judge


def _judge_moves(got, expected, case):
    try:
        have = [int(m) for m in got]
    except TypeError:
        return f"return a list of cell indices, got {type(got).__name__}"
    if have != list(expected):
        return (f"expected the empty cells {list(expected)} in increasing order (none once somebody has won), "
                f"got {have}")
    return None


def _minimax_cases(rng):
    yield Case((ttt.EMPTY,), label="the empty board: a draw, value 0")
    yield Case(((1, 1, 0, -1, -1, 0, 0, 0, 0),), label="X to move wins at once: +1")
    yield Case(((1, 1, 0, -1, 0, 0, 0, 0, 0),), label="O to move: must block at 2, and still loses to a fork (-1)")
    yield Case(((1, 1, 1, -1, -1, 0, 0, 0, 0),), label="X has won, O to move: -1 for O")
    yield Case(((1, 0, 0, 0, -1, 0, 0, 0, 1),), label="O to move after a corner-centre-corner opening")
    for b in _positions(rng, 40, 1, 8):
        yield Case((b,), label=_with_label(b) + f", {'X' if ttt.to_move(b) == 1 else 'O'} to move")


def _minimax_property(fn) -> str | None:
    bad = [b for b in ttt.all_positions()[:800:7] if fn(b) != ttt.negamax(b)]
    if bad:
        return f"wrong value on {len(bad)} of the first positions, e.g. {_with_label(bad[0])}: expected {ttt.negamax(bad[0])}"
    return None


# ---------------------------------------------------------------- UCT pieces


def _ucb_cases(rng):
    yield Case((np.array([0.5, -0.2, 0.0]), 10, np.array([4, 6, 0]), 1.4), label="one unvisited action: +inf")
    yield Case((np.zeros(4), 0, np.zeros(4, dtype=np.int64), 1.0), label="a fresh node: every action +inf")
    yield Case((np.array([0.3, 0.1]), 1, np.array([1, 0]), 2.0), label="n_parent = 1: ln 1 = 0, no bonus")
    for k in (2, 5, 9):
        n = rng.integers(0, 30, size=k)
        n[rng.integers(k)] = max(1, n.max())
        q = np.where(n > 0, rng.uniform(-1, 1, k), 0.0)
        c = float(rng.choice([0.5, 1.0, math.sqrt(2), 2.0]))
        yield Case((q, int(n.sum()), n, c), label=f"{k} actions, c = {c:.3f}")


def _backup_cases(rng):
    for L, v in ((1, 1.0), (2, -1.0), (3, 0.5), (4, -0.25), (5, 1.0), (0, 1.0)):
        n_nodes = L + 2
        N = rng.integers(0, 5, size=(n_nodes, 9)).astype(np.float64)
        W = np.round(rng.uniform(-1, 1, size=(n_nodes, 9)) * N, 3)
        nodes = list(rng.permutation(n_nodes)[:L])
        path = [(int(nd), int(rng.integers(9))) for nd in nodes]
        yield Case((N, W, path, v), label=f"a path of {L} edges, leaf value {v} (for the player to move at the leaf)")


def _judge_backup(got, expected, case):
    if not (isinstance(got, tuple) and len(got) == 2):
        return "return a pair (N, W) of new arrays"
    return (compare(got[0], expected[0], 0, 0, "N (each edge on the path gains one visit)")
            or compare(got[1], expected[1], 1e-12, 1e-12, "W (edge k of L gets (-1)^(L-k) * value: the last edge, "
                                                         "chosen by the leaf player's opponent, gets -value)"))


def _tactic_positions(rng, n):
    wins, blocks = [], []
    while len(wins) < n or len(blocks) < n:
        b = ttt.random_position(rng, int(rng.integers(2, 8)))
        if ttt.is_terminal(b):
            continue
        me = ttt.to_move(b)
        if mcts.immediate_wins(b, me):
            if len(wins) < n:
                wins.append(b)
        elif len(mcts.immediate_wins(b, -me)) == 1 and len(blocks) < n:
            blocks.append(b)
    return wins, blocks


def _mcts_cases(rng):
    yield Case(((1, 1, 0, -1, -1, 0, 0, 0, 0), 200, 3), label="X wins at 2 (and O threatens 5)")
    yield Case(((1, 0, 0, -1, -1, 0, 1, 0, 0), 200, 4), label="X must block at 5")
    yield Case(((-1, 1, 0, 0, -1, 1, 1, 0, 0), 200, 5), label="O to move: win at 8 on the diagonal")
    wins, blocks = _tactic_positions(rng, 4)
    for b in wins:
        yield Case((b, 200, int(rng.integers(1000))), label=_with_label(b) + ": an immediate win")
    for b in blocks:
        yield Case((b, 200, int(rng.integers(1000))), label=_with_label(b) + ": the opponent threatens to win")


def _judge_mcts(got, expected, case):
    b = case.args[0]
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
        return f"return a Python int (a cell index), got {type(got).__name__}"
    m = int(got)
    if m not in ttt.legal_moves(b):
        return f"move {m} is not legal here (legal: {list(ttt.legal_moves(b))})"
    me = ttt.to_move(b)
    wins = mcts.immediate_wins(b, me)
    if wins and m not in wins:
        return f"cell(s) {list(wins)} win at once; your search chose {m}"
    threats = mcts.immediate_wins(b, -me)
    if not wins and threats and m not in threats:
        return f"the opponent wins next at {list(threats)}; your search chose {m} instead of blocking"
    return None


# ---------------------------------------------------------------- AlphaZero pieces


def _puct_cases(rng):
    yield Case((np.full(4, 0.25), np.zeros(4), np.zeros(4), 1.0), label="a fresh node: all scores 0, the lowest index")
    yield Case((np.array([0.1, 0.6, 0.3]), np.array([3.0, 0.0, 1.0]), np.array([0.2, 0.0, 0.1]), 1.5),
               label="an unvisited action with a large prior")
    yield Case((np.array([0.5, 0.5]), np.array([1.0, 1.0]), np.array([0.0, 0.0]), 2.0), label="an exact tie: index 0")
    yield Case((np.array([0.2, 0.3, 0.5]), np.array([0.0, 5.0, 0.0]), np.array([0.0, 0.4, 0.0]), 0.5),
               label="1 + N: with N the unvisited actions would divide by 0")
    for k in (3, 7, 9):
        P = rng.dirichlet(np.ones(k))
        N = rng.integers(0, 20, size=k).astype(np.float64)
        Q = np.where(N > 0, rng.uniform(-1, 1, k), 0.0)
        c = float(rng.choice([0.5, 1.0, 1.5, 4.0]))
        yield Case((P, N, Q, c), label=f"{k} actions, c_puct = {c}")


def _puct_property(fn) -> str | None:
    # sum of N vs. its square root: scale every count by 4 and the exploration term grows x2 / x4 ...
    P, N, Q = np.array([0.5, 0.5]), np.array([2.0, 6.0]), np.array([0.2, 0.1])
    for c in (0.3, 0.6, 0.9, 1.2):
        if fn(P, N, Q, c) != az.puct_select(P, N, Q, c):
            return f"wrong choice for P = {P}, N = {N}, Q = {Q}, c_puct = {c}"
    return None


def _v2p_cases(rng):
    yield Case((np.array([10.0, 30.0, 0.0, 60.0]), 1.0), label="tau = 1: proportional to N")
    yield Case((np.array([5.0, 9.0, 2.0]), 0), label="tau = 0: one-hot on the most visited")
    yield Case((np.array([4.0, 7.0, 7.0, 1.0]), 0), label="tau = 0 with a tie: split evenly between the tied actions")
    yield Case((np.array([1e6, 2e6, 0.0, 5e5]), 0.01), label="N in the millions, tau = 0.01: no overflow")
    yield Case((np.array([3.0, 1.0, 0.0, 2.0]), 0.5), label="tau = 0.5: pi ~ N^2")
    yield Case((np.array([3.0, 1.0, 2.0]), 4.0), label="tau = 4: pi ~ N^(1/4), flatter")
    N = rng.integers(0, 50, size=9).astype(np.float64)
    N[rng.integers(9)] += 1
    yield Case((N, float(rng.choice([0.3, 1.0, 2.0]))), label="9 actions")


def _loss_inputs(rng, B, hidden=5):
    g = lambda *s: torch.as_tensor(rng.standard_normal(s))  # noqa: E731
    pi = torch.as_tensor(rng.dirichlet(np.ones(9), size=B))
    pi[0] = torch.as_tensor(np.eye(9)[int(rng.integers(9))])
    z = torch.as_tensor(rng.choice([-1.0, 0.0, 1.0], size=B))
    params = [g(hidden, 9) * 0.5, g(9) * 0.1, g(hidden)]
    return g(B, 9) * 2, torch.tanh(g(B)), pi, z, params


def _loss_cases(rng):
    for B, c in ((1, 1e-4), (6, 1e-3), (13, 0.05), (4, 0.0)):
        yield Case(_loss_inputs(rng, B) + (c,), label=f"batch {B}, c = {c}" + (" (a one-hot pi)" if B == 1 else ""))


def _loss_observe(fn):
    """Adapter: the loss and its gradient with respect to p_logits, v and every parameter."""

    def observed(p_logits, v, pi, z, params, c):
        leaves = [p_logits.clone().requires_grad_(True), v.clone().requires_grad_(True)]
        ps = [p.clone().requires_grad_(True) for p in params]
        out = fn(leaves[0], leaves[1], pi.clone(), z.clone(), ps, c)
        obs = {"loss": out.detach() if isinstance(out, torch.Tensor) else out, "grads": None}
        if isinstance(out, torch.Tensor) and out.requires_grad and out.numel() == 1:
            gs = torch.autograd.grad(out.sum(), leaves + ps, allow_unused=True)
            obs["grads"] = [torch.zeros_like(x) if g is None else g for x, g in zip(leaves + ps, gs)]
        return obs

    observed.__name__ = getattr(fn, "__name__", "alphazero_loss")
    return observed


def _judge_loss(got, expected, case):
    if not isinstance(got, dict):
        return "the grader could not observe your loss"
    problem = compare(got["loss"], expected["loss"], 1e-9, 1e-10,
                      "the loss (a 0-dim tensor: batch mean of (z - v)^2 - sum_a pi_a log p_a, plus c * sum of squares "
                      "of all parameters)")
    if problem:
        return problem
    if got["grads"] is None:
        return "the loss is not differentiable: compute it with torch operations"
    names = ["p_logits", "v"] + [f"params[{i}]" for i in range(len(got["grads"]) - 2)]
    for name, g, e in zip(names, got["grads"], expected["grads"]):
        problem = compare(g, e, 1e-8, 1e-10, f"the gradient with respect to {name}")
        if problem:
            return problem
    return None


def _sym_cases(rng):
    for _ in range(3):
        b = ttt.random_position(rng, int(rng.integers(1, 8)))
        yield Case((np.asarray(b, dtype=np.int64), rng.permutation(9).astype(np.float64) / 36 + 0.01),
                   label=_with_label(b) + " and a policy with distinct entries")
    yield Case((np.asarray(ttt.EMPTY, dtype=np.int64), np.arange(9, dtype=np.float64) / 36), label="the empty board")


def _judge_sym(got, expected, case):
    board, policy = case.args
    if not (isinstance(got, tuple) and len(got) == 2):
        return "return a pair (boards, policies) of arrays of shape (8, 9)"
    bs, ps = (np.asarray(x) for x in got)
    if bs.shape != (8, 9) or ps.shape != (8, 9):
        return f"expected two arrays of shape (8, 9), got {bs.shape} and {ps.shape}"
    perms = [tuple(p) for p in az.SYMMETRIES]
    seen = []
    for k in range(8):
        match = [p for p in perms if np.array_equal(ps[k], policy[list(p)])]
        if not match:
            return f"policy row {k} is not a rotation or reflection of the policy"
        if not np.array_equal(bs[k], board[list(match[0])]):
            return (f"row {k}: the board and the policy were not transformed the same way (a cell's probability must "
                    "move with the cell)")
        seen.append(match[0])
    if len(set(seen)) != 8:
        return f"the 8 rows should be the 8 distinct symmetries (4 rotations, 4 reflections); got {len(set(seen))} distinct"
    return None


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("self_play.winner", "Who has three in a row", cases=_rule_cases, reference=ttt.winner,
             judge=_judge_int("the winner (+1 X, -1 O, 0 nobody)")),
    Exercise("self_play.legal_moves", "Legal moves", cases=_rule_cases, reference=ttt.legal_moves, judge=_judge_moves),
    Exercise("self_play.minimax_value", "Exact minimax (negamax) values", cases=_minimax_cases, reference=ttt.negamax,
             judge=_judge_int("the value for the player to move"), properties=[_minimax_property]),
    Exercise("self_play.ucb", "UCB1 scores of a node's actions", cases=_ucb_cases, reference=mcts.ucb,
             rtol=1e-12, atol=1e-12),
    Exercise("self_play.backup", "Backing up a simulation (negamax signs)", cases=_backup_cases,
             reference=mcts.backup, judge=_judge_backup),
    Exercise("self_play.mcts_move", "A UCT move that takes wins and blocks losses", cases=_mcts_cases,
             reference=None, judge=_judge_mcts, known_good=mcts.mcts_move),
    Exercise("self_play.puct_select", "PUCT selection", cases=_puct_cases, reference=az.puct_select,
             judge=_judge_int("the selected action"), properties=[_puct_property]),
    Exercise("self_play.visits_to_policy", "Visit counts to a policy with temperature", cases=_v2p_cases,
             reference=az.visits_to_policy, rtol=1e-9, atol=1e-12),
    Exercise("self_play.alphazero_loss", "The AlphaZero loss and its gradient", cases=_loss_cases,
             reference=az.alphazero_loss, adapter=_loss_observe, judge=_judge_loss),
    Exercise("self_play.dihedral_symmetries", "The 8 symmetries of a board and its policy", cases=_sym_cases,
             reference=az.dihedral_symmetries, judge=_judge_sym),
]

r"""Tree of Thoughts on the Game of 24: a chain, a beam, an exhaustive search, and DFS traces with jumps.

S. Yao et al., "Tree of Thoughts: Deliberate Problem Solving with Large Language Models", NeurIPS 2023,
arXiv:2305.10601. A *thought* is one step: pick two of the numbers left, combine them with + - * /, put the result
back. Four numbers take three thoughts to reach one number; the puzzle is solved when that number is exactly 24.
Here the proposer is exhaustive and rule-based (every pairwise operation), and the evaluator is a hand-written
heuristic (both stated as such: no language model), so that the search itself can be measured.

- beam BFS: $S_{t+1} = \mathrm{top}_b\{s \oplus z : s \in S_t,\ z \in \mathrm{propose}(s)\}$ by value $V(s \oplus z)$;
  $b = 1$ is the greedy chain, $b = \infty$ the exhaustive breadth-first search;
- DFS keeps one path and *backtracks*; its trace, the nodes in the order they are visited, is a tree with jumps
  (ReJump: "A Tree-Jump Representation for Analyzing and Improving LLM Reasoning", 2025, arXiv:2512.00831):
  a jump is a visit to a node that is not a child of the node visited just before.

Arithmetic is exact (:class:`fractions.Fraction`): 8 / (3 - 8 / 3) = 24 needs the fraction 1/3.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from itertools import combinations
from typing import Callable, Sequence

import numpy as np

from manifold_course.agents.react import safe_calc

TARGET = Fraction(24)


def fmt(x: Fraction) -> str:
    """``3`` or ``8/3`` (a negative number as ``-8/3``)."""
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _pair_ops(p, q):
    """The six thoughts on two items ``p, q`` (each ``(value, tag)``): ``(op, first, second, result)`` for p+q, p-q,
    q-p, p*q, p/q, q/p; a division by zero is skipped."""
    a, b = p[0], q[0]
    yield "+", p, q, a + b
    yield "-", p, q, a - b
    yield "-", q, p, b - a
    yield "*", p, q, a * b
    if b != 0:
        yield "/", p, q, a / b
    if a != 0:
        yield "/", q, p, b / a


def _ops(a: Fraction, b: Fraction):
    for op, x, y, r in _pair_ops((a, None), (b, None)):
        yield op, x[0], y[0], r


def propose_24(nums: Sequence) -> list[tuple[str, tuple[Fraction, ...]]]:
    """Every next thought: for each pair of positions i < j and each of the six operations, ``(expr, new_nums)``.

    ``expr`` reads ``"x op y = r"`` (numbers written by :func:`fmt`), ``new_nums`` is the other numbers in their
    order followed by r. With k numbers and no zeros there are $6\binom{k}{2}$ thoughts; each zero removes one.
    """
    nums = tuple(Fraction(x) for x in nums)
    out = []
    for i, j in combinations(range(len(nums)), 2):
        rest = tuple(x for t, x in enumerate(nums) if t not in (i, j))
        for op, x, y, r in _ops(nums[i], nums[j]):
            out.append((f"{fmt(x)} {op} {fmt(y)} = {fmt(r)}", rest + (r,)))
    return out


# ---------------------------------------------------------------- exhaustive solver


@lru_cache(maxsize=None)
def _solve_sorted(nums: tuple[Fraction, ...]) -> str | None:
    if len(nums) == 1:
        return fmt(nums[0]) if nums[0] == TARGET else None
    for i, j in combinations(range(len(nums)), 2):
        rest = tuple(x for t, x in enumerate(nums) if t not in (i, j))
        for op, x, y, r in _ops(nums[i], nums[j]):
            sub = _solve_sorted(tuple(sorted(rest + (r,))))
            if sub is not None:
                return sub + f" | {fmt(x)} {op} {fmt(y)}"
    return None


def solvable(nums: Sequence) -> bool:
    """Whether the numbers make exactly 24 (exhaustive, memoised over sorted tuples)."""
    return _solve_sorted(tuple(sorted(Fraction(x) for x in nums))) is not None


def solve_24(nums: Sequence) -> str | None:
    """A full expression that uses each number once and equals 24, or None (exhaustive search)."""
    return tot_bfs(nums, None, zero_value)


def count_solutions(nums: Sequence) -> int:
    """The number of three-thought chains (ordered, as :func:`propose_24` lists them) that end in 24."""
    nums = tuple(Fraction(x) for x in nums)
    if len(nums) == 1:
        return int(nums[0] == TARGET)
    return sum(count_solutions(new) for _, new in propose_24(nums))


def evaluate_expression(expr: str) -> Fraction:
    """The exact value of an arithmetic expression (integers, + - * /, parentheses) via the AST calculator."""
    return Fraction(safe_calc(expr, exact=True))


# ---------------------------------------------------------------- value functions


def zero_value(nums: Sequence) -> float:
    """No preference: every state is worth 0 (a beam keeps the first b states it generated)."""
    return 0.0


def oracle_value(nums: Sequence) -> float:
    """1 if the state can still reach 24, else 0 (an exhaustive look-ahead: the perfect evaluator)."""
    return float(solvable(nums))


def heuristic_value(nums: Sequence) -> float:
    """A cheap evaluator: exact when two numbers or fewer are left (can one operation, or none, give 24?);
    otherwise half the closeness to 24 of the largest sum or product of a pair, in (0, 0.5]: never as sure as an
    exact check. Imperfect on purpose."""
    nums = [Fraction(x) for x in nums]
    if len(nums) <= 2:
        return oracle_value(nums)
    best = max(max(a + b, a * b) for a, b in combinations(nums, 2))
    return 0.5 / (1.0 + abs(float(best) - 24.0) / 24.0)


# ---------------------------------------------------------------- searches


def tot_bfs(nums: Sequence, beam: int | None, value_fn: Callable[[tuple], float]) -> str | None:
    """Beam breadth-first search over thoughts; returns a parenthesised expression equal to 24, or None.

    A state is a tuple of (value, expression) pairs. At each of the len(nums) - 1 levels every state is expanded
    with :func:`propose_24`'s thoughts; the children are ranked by ``value_fn`` of their numbers (highest first,
    ties in generation order: a stable sort) and the first ``beam`` are kept (all of them, with duplicates of the
    same multiset of numbers merged, when ``beam`` is None). The first final state equal to 24 is returned.
    """
    states = [tuple((Fraction(x), fmt(Fraction(x))) for x in nums)]
    for _ in range(len(states[0]) - 1):
        children, seen = [], set()
        for s in states:
            for i, j in combinations(range(len(s)), 2):
                rest = tuple(p for t, p in enumerate(s) if t not in (i, j))
                for op, (_, ex), (_, ey), r in _pair_ops(s[i], s[j]):
                    child = rest + ((r, f"({ex} {op} {ey})"),)
                    key = tuple(sorted(v for v, _ in child))
                    if beam is None and key in seen:
                        continue
                    seen.add(key)
                    children.append(child)
        if beam is not None:
            scored = [value_fn(tuple(v for v, _ in c)) for c in children]
            order = sorted(range(len(children)), key=lambda k: -scored[k])   # stable: ties keep generation order
            children = [children[k] for k in order[:beam]]
        states = children
    for s in states:
        if len(s) == 1 and s[0][0] == TARGET:
            e = s[0][1]
            return e[1:-1] if e.startswith("(") and e.endswith(")") else e
    return None


def dfs_24(nums: Sequence, value_fn: Callable[[tuple], float] | None = None, max_nodes: int | None = None):
    """Depth-first search that stops at the first 24; children tried in order of ``value_fn`` (highest first,
    stable) or in generation order when it is None.

    Returns ``(solved, trace)``: trace lists ``(node_id, parent_id)`` in visiting order (the root is ``(0, None)``;
    ids count visits). At most ``max_nodes`` nodes are visited.
    """
    trace: list[tuple[int, int | None]] = []

    def visit(state: tuple, parent: int | None) -> bool:
        if max_nodes is not None and len(trace) >= max_nodes:
            return False
        me = len(trace)
        trace.append((me, parent))
        if len(state) == 1:
            return state[0] == TARGET
        kids = [new for _, new in propose_24(state)]
        if value_fn is not None:
            scores = [value_fn(k) for k in kids]
            kids = [kids[k] for k in sorted(range(len(kids)), key=lambda k: -scores[k])]
        return any(visit(k, me) for k in kids)

    solved = visit(tuple(Fraction(x) for x in nums), None)
    return solved, trace


def count_backtracks(trace: Sequence[tuple[int, int | None]]) -> int:
    """The jumps of a trace: visits (after the first) whose parent is not the node visited just before."""
    return sum(1 for t in range(1, len(trace)) if trace[t][1] != trace[t - 1][0])


def jump_lengths(trace: Sequence[tuple[int, int | None]]) -> list[int]:
    """For each jump, how many levels the search climbs back: depth(previous node) - depth(new node's parent)."""
    depth: dict[int, int] = {}
    out = []
    for t, (node, parent) in enumerate(trace):
        depth[node] = 0 if parent is None else depth[parent] + 1
        if t and parent != trace[t - 1][0]:
            out.append(depth[trace[t - 1][0]] - depth[parent])
    return out


def random_puzzles(rng: np.random.Generator, count: int, low: int = 1, high: int = 13) -> list[tuple[int, ...]]:
    """``count`` puzzles of four integers drawn uniformly from low..high, sorted within each puzzle."""
    return [tuple(sorted(int(x) for x in rng.integers(low, high + 1, 4))) for _ in range(count)]

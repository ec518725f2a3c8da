import math
from fractions import Fraction

import numpy as np
import pytest

from manifold_course.agents import react as ra
from manifold_course.agents import scratchpad as sp
from manifold_course.agents import tree_of_thoughts as tot


@pytest.mark.parametrize("a, b", [(23, 18), (0, 7), (7, 0), (305, 1002), (999, 999)])
def test_scratchpad_multiplication_answer_is_the_product(a, b):
    assert sp.extract_final_answer(sp.scratchpad_multiplication(a, b)) == a * b


def test_addition_scratchpad_reads_back_the_sum():
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 5):
        for a, b in zip(*sp.sample_operands(rng, n, 50)):
            assert sp.read_scratchpad(sp.addition_scratchpad(int(a), int(b), n)) == a + b


def test_fit_recovers_the_exact_error():
    n = np.arange(1, 8)
    assert sp.fit_per_token_error(n, sp.independent_error_accuracy(0.07, n)) == pytest.approx(0.07, abs=1e-12)


def test_error_correlation_of_independent_columns_is_near_zero():
    E = (np.random.default_rng(1).random((20000, 4)) < 0.3).astype(int)
    assert abs(sp.error_correlation(E)) < 0.02


def test_token_errors_agree_with_greedy_decoding():
    model = sp.train_adder(2, 5, seed=0, per_cell=4)
    a, b = sp.sample_operands(np.random.default_rng(2), 2, 40)
    for scratch in (False, True):
        E = sp.token_errors(model, a, b, 2, scratch)
        fmt = sp.addition_scratchpad if scratch else sp.addition_plain
        exact = [c == fmt(int(x), int(y), 2) for c, x, y in zip(sp.greedy_completions(model, a, b, 2, scratch), a, b)]
        assert np.array_equal(E.sum(1) == 0, np.array(exact))


@pytest.mark.parametrize("expr", ["__import__('os')", "open('x')", "(1).real", "9 ** 9 ** 9", "1/0", "a", "[1][0]"])
def test_safe_calc_refuses(expr):
    with pytest.raises(ValueError):
        ra.safe_calc(expr)


def test_safe_calc_exact_mode_keeps_fractions():
    assert ra.safe_calc("8 / (3 - 8 / 3)", exact=True) == Fraction(24)


def test_parse_action_and_errors():
    assert ra.parse_action("Thought: x\nAction:  lookup [ capital of France ]") == ("lookup", "capital of France")
    with pytest.raises(ValueError, match="malformed"):
        ra.parse_action("Action: lookup capital")


def test_react_loop_keeps_thoughts_turns_errors_into_observations_and_stops():
    llm = ra.scripted_model(["Thought: search\nAction: search[x]", "Action: calc 1", "Thought: again\nAction: lookup[nope]"])
    answer, trace = ra.react_loop(llm, ra.TOOLS, "q", max_steps=4)
    assert answer is None and len(llm.histories) == 4 and len(trace) == 8
    assert all(t.startswith("Observation: error") for t in trace[1::2])
    assert "Thought: search" in llm.histories[1]


def test_propose_count_and_zero_division():
    assert len(tot.propose_24([1, 2, 3, 4])) == 36
    assert len(tot.propose_24([0, 2])) == 5


def test_bfs_unlimited_agrees_with_the_solver():
    for p in [(4, 9, 10, 13), (1, 1, 1, 1), (3, 3, 8, 8), (1, 5, 5, 5), (1, 1, 2, 7)]:
        e = tot.tot_bfs(p, None, tot.zero_value)
        assert (e is not None) == tot.solvable(p)
        if e is not None:
            assert tot.evaluate_expression(e) == 24


def test_greedy_success_is_a_dfs_without_jumps():
    for p in tot.random_puzzles(np.random.default_rng(3), 15):
        greedy = tot.tot_bfs(p, 1, tot.heuristic_value) is not None
        solved, trace = tot.dfs_24(p, tot.heuristic_value, max_nodes=400)
        assert greedy == (solved and tot.count_backtracks(trace) == 0)


def test_jump_lengths_on_a_small_trace():
    trace = [(0, None), (1, 0), (2, 1), (3, 1), (4, 0)]
    assert tot.count_backtracks(trace) == 2 and tot.jump_lengths(trace) == [1, 2]

"""Checks for chapter v4_agents/02_reasoning_and_acting (Volume 4, sections 4.3, 4.4 and 4.9).

Text formats and parsers are compared exactly. ``react_loop`` is run with scripted models that record every
history they are shown, so the judge sees whether the model's own thoughts stay in its context. ``safe_calc`` is
fed code that ``eval`` would run. ``tot_bfs`` is judged by properties (the expression is exact 24 and uses each
number once; with an unlimited beam it finds a solution iff one exists; with the perfect evaluator even beam 1 does).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from fractions import Fraction

import numpy as np

from manifold_course.agents import react as ra
from manifold_course.agents import scratchpad as sp
from manifold_course.agents import tree_of_thoughts as tot
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem

CHAPTER = "v4_agents/02_reasoning_and_acting"

# ---------------------------------------------------------------- 4.3 chain of thought


def _mult_cases(rng):
    for a, b, label in ((23, 18, "the worked example 23 x 18"), (7, 0, "b = 0"), (0, 45, "a = 0"),
                        (12, 1, "b = 1: one step, no sum line"), (305, 1002, "zeros inside b are skipped"),
                        (9, 9, "one digit each")):
        yield Case((a, b), label=label)
    for _ in range(6):
        yield Case((int(rng.integers(1, 10**int(rng.integers(1, 5)))), int(rng.integers(1, 10**int(rng.integers(1, 5))))),
                   label="random operands")


def _judge_text(what):
    def judge(got, expected, case):
        if not isinstance(got, str):
            return f"return a str ({what}), got {type(got).__name__}"
        if got == expected:
            return None
        g, e = got.split("\n"), expected.split("\n")
        for k in range(max(len(g), len(e))):
            gl = g[k] if k < len(g) else "<missing>"
            el = e[k] if k < len(e) else "<nothing>"
            if gl != el:
                return f"line {k + 1}: expected {el!r}, got {gl!r} (for {case.args})"
        return f"expected {expected!r}, got {got!r}"
    return judge


def _ind_cases(rng):
    yield Case((0.0, 7), label="e = 0: always right")
    yield Case((1.0, 3), label="e = 1: never right")
    yield Case((0.1, 0), label="n = 0 tokens")
    yield Case((0.05, 20), label="e = 0.05, n = 20")
    yield Case((0.01, np.array([1, 5, 10, 50])), label="an array of lengths: an array back")
    for _ in range(3):
        yield Case((float(rng.uniform(0, 0.3)), int(rng.integers(1, 40))), label="random e and n")


def _fit_cases(rng):
    n = np.array([2, 3, 4, 5])
    yield Case((n, 0.9 ** n), label="exact (1 - e)^n with e = 0.1: recover 0.1")
    yield Case((np.array([1, 2, 3]), np.array([1.0, 1.0, 1.0])), label="perfect accuracy: e = 0")
    yield Case((np.array([1, 2, 4]), np.array([0.5, 0.0, 0.1])), label="an accuracy of 0: clip it at 1e-6 before the log")
    yield Case(([3, 6, 9], [0.7, 0.5, 0.3]), label="plain lists")
    for _ in range(3):
        L = np.sort(rng.choice(np.arange(1, 30), size=5, replace=False))
        acc = np.clip((1 - rng.uniform(0.01, 0.2)) ** L * rng.uniform(0.8, 1.2, 5), 0, 1)
        yield Case((L, acc), label="noisy accuracies")


def _judge_fit(got, expected, case):
    problem = float_problem(got, "the fitted e")
    return problem or compare(float(got), expected, 1e-7, 1e-9, "the least-squares e (fit log acc = n log(1 - e), "
                                                                "a line through the origin)")


def _extract_cases(rng):
    texts = [
        ("The answer is 42.", "'answer is N'"), ("Answer: 414", "'Answer: N'"), ("answer: -17", "a negative answer"),
        ("20 * 18 = 360\n3 * 18 = 54\n360 + 54 = 414\n414 + 9 = 423", "no marker: the last integer"),
        ("Answer: 12\nWait, let me redo it.\nAnswer: 13", "two answers: the last one counts"),
        ("First 5, then answer = 1,234.", "a thousands separator"), ("No idea.", "no integer at all: None"),
        ("", "empty text: None"), ("Answer: 7 (after 3 steps)", "a marked answer before other numbers"),
        ("x2 is 10 and 3-4", "'3-4': the last integer is -4"), ("ANSWER:99", "any case, no space"),
    ]
    for t, label in texts:
        yield Case((t,), label=f"{label}: {t!r}")
    for _ in range(3):
        a, b = (int(x) for x in rng.integers(10, 1000, 2))
        yield Case((sp.scratchpad_multiplication(a, b),), label=f"a scratchpad for {a} x {b}")


def _judge_extract(got, expected, case):
    if expected is None:
        return None if got is None else f"expected None (no integer in {case.args[0]!r}), got {got!r}"
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
        return f"return a Python int (or None), got {type(got).__name__} for {case.args[0]!r}"
    return None if int(got) == expected else f"expected {expected}, got {int(got)} for {case.args[0]!r}"


def _corr_cases(rng):
    col = rng.integers(0, 2, 200)
    yield Case((np.stack([col, col, col], 1),), label="three identical error columns: 1")
    yield Case((np.stack([col, 1 - col], 1),), label="opposite columns: -1")
    yield Case((np.array([[0, 1, 0], [1, 1, 0], [0, 1, 1], [1, 1, 0]]),), label="a column that always errs is skipped")
    yield Case((np.zeros((5, 3), dtype=int),), label="no errors at all: NaN")
    for p in (0.1, 0.3):
        yield Case(((rng.random((300, 6)) < p).astype(int),), label=f"independent errors with rate {p}")
    base = rng.random(300) < 0.2
    yield Case((np.stack([base | (rng.random(300) < 0.1) for _ in range(5)], 1).astype(int),),
               label="errors sharing a common cause")


def _judge_corr(got, expected, case):
    if isinstance(expected, float) and math.isnan(expected):
        if isinstance(got, (float, np.floating)) and math.isnan(float(got)):
            return None
        return "with fewer than two columns that vary there is no pair: return float('nan')"
    return float_problem(got, "the mean correlation") or compare(float(got), expected, 1e-9, 1e-12,
                                                              "the mean of the pairwise correlations (upper triangle, "
                                                              "constant columns dropped)")


# ---------------------------------------------------------------- 4.4 ReAct


def _parse_cases(rng):
    good = [("Thought: I need the price.\nAction: price[Paris->Berlin]", "a thought, then the action"),
            ("Action:calculator[ 3 * (4 + 5) ]", "no spaces around, spaces inside the brackets"),
            ("  Action:   lookup  [capital of France]  ", "spaces everywhere"),
            ("Action: search[a]\nThought: no, better:\nAction: lookup[b]", "two actions: the last one"),
            ("Action: calculator[[1, 2][0]]", "brackets inside the argument: up to the last ]"),
            ("Action: calculator[]", "an empty argument")]
    bad = [("Thought: I am done thinking.", "no Action line"), ("Action: calculator 2 + 2", "no brackets"),
           ("Action: [2 + 2]", "no tool name"), ("Action: calculator[2 + 2", "an unclosed bracket"),
           ("Action: my tool[x]", "a tool name with a space"), ("Action: calculator[2] and more", "text after ]")]
    for t, label in good:
        yield Case((t,), label=f"{label}: {t!r}")
    for t, label in bad:
        yield Case((t,), label=f"malformed, {label}: {t!r} (raise ValueError)")


def _parse_observe(fn):
    def observed(text):
        try:
            out = fn(text)
        except ValueError as exc:
            return ("ValueError", str(exc)[:0])
        return out
    observed.__name__ = getattr(fn, "__name__", "parse_action")
    return observed


def _judge_parse(got, expected, case):
    text = case.args[0]
    if expected[0] == "ValueError":
        return None if got == expected else f"{text!r} is malformed: raise ValueError, got {got!r}"
    if got == ("ValueError", ""):
        return f"{text!r} is a valid action: expected {expected}, but it raised ValueError"
    if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(x, str) for x in got)):
        return f"return a tuple (tool, argument) of two str, got {got!r}"
    return None if got == expected else f"for {text!r}: expected {expected}, got {got}"


_SCRIPTS = {
    "tickets": (["Thought: I need the price of one ticket.\nAction: price[Paris->Berlin]",
                 "Thought: three tickets with 10% off.\nAction: calculator[3 * 120 * 0.9]",
                 "Thought: done.\nAnswer: 324.0"], "What do 3 tickets Paris->Berlin cost with 10% off?", 6),
    "unknown_tool": (["Thought: let me search.\nAction: search[capital of Italy]",
                      "Thought: no search tool; use lookup.\nAction: lookup[capital of Italy]",
                      "Answer: Rome"], "What is the capital of Italy?", 5),
    "malformed": (["Thought: add them.\nAction: calculator 2 + 2", "Action: calculator[2 + 2]", "Answer: 4"],
                  "2 + 2?", 5),
    "tool_error": (["Action: lookup[capital of Spain]", "Action: calculator[1 / 0]", "Answer: unknown"],
                   "What is the capital of Spain?", 5),
    "loops": (["Thought: I should check again.\nAction: lookup[capital of France]"], "Capital of France?", 4),
    "eval_injection": (["Action: calculator[__import__('os').getcwd()]", "Answer: refused"], "Run code?", 3),
    "answer_at_once": (["Thought: easy.\nAnswer: 2"], "1 + 1?", 3),
    "one_step": (["Thought: hmm.\nAction: lookup[speed of light]"], "c?", 1),
}


def _react_cases(rng):
    for name, (steps, question, max_steps) in _SCRIPTS.items():
        yield Case((list(steps), question, max_steps), label=f"scripted model {name!r}")
    for _ in range(2):
        city = str(rng.choice(["Paris", "Berlin", "Rome"]))
        steps = [f"Thought: where?\nAction: lookup[population of {city}]",
                 f"Action: calculator[{ra.FACTS['population of ' + city]} // 1000]", "Answer: done"]
        k = int(rng.integers(2, 5))
        yield Case((steps, f"Population of {city} in thousands?", k), label=f"a scripted model, max_steps = {k}")


def _react_observe(fn):
    """Adapter: run the learner's loop with a scripted model; observe the answer, the trace and every history."""
    def observed(steps, question, max_steps):
        llm = ra.scripted_model(list(steps))
        out = fn(llm, dict(ra.TOOLS), question, max_steps)
        return {"out": out, "histories": list(llm.histories), "question": question, "max_steps": max_steps}
    observed.__name__ = getattr(fn, "__name__", "react_loop")
    return observed


def _judge_react(got, expected, case):
    out = got["out"]
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], list)):
        return "return a tuple (answer or None, trace list)"
    answer, trace = out
    e_answer, e_trace = expected["out"]
    calls, e_calls = len(got["histories"]), len(expected["histories"])
    if calls > got["max_steps"]:
        return f"the model was called {calls} times with max_steps = {got['max_steps']}: stop after max_steps calls"
    if calls != e_calls:
        return f"the model should be called {e_calls} times, was called {calls} times"
    if answer != e_answer:
        return f"answer: expected {e_answer!r}, got {answer!r}"
    if len(trace) != len(e_trace):
        return f"the trace should have {len(e_trace)} entries (model outputs and observations), got {len(trace)}"
    for k, (g, e) in enumerate(zip(trace, e_trace)):
        if not isinstance(g, str):
            return f"trace[{k}] should be a str, got {type(g).__name__}"
        if e.startswith("Observation: error"):
            if not g.startswith("Observation: error"):
                return f"trace[{k}]: a failed step must give an observation starting 'Observation: error', got {g!r}"
        elif g != e:
            return f"trace[{k}]: expected {e!r}, got {g!r}"
    for c, h in enumerate(got["histories"]):
        if not isinstance(h, str) or not h.startswith(f"Question: {got['question']}"):
            return f"call {c + 1}: the history should start with 'Question: {got['question']}'"
        pos = 0
        for k in range(2 * c):
            where = h.find(trace[k], pos)
            if where < 0:
                kind = "its own earlier output" if k % 2 == 0 else "an earlier observation"
                return (f"call {c + 1}: the history the model reads lacks {kind} {trace[k]!r}; append every "
                        "model output (thoughts and actions) and every observation")
            pos = where + len(trace[k])
    return None


def _calc_cases(rng):
    ok = ["1 + 2 * 3", "(1 + 2) * 3", "2 ** 10", "-3 + +4", "7 / 2", "7 // 2", "7 % 3", "2 ** -2", "1.5 * 4",
          " 12 * (3 - 5) ", "2 ** 100"]
    for e in ok:
        yield Case((e,), label=f"{e!r}")
    for _ in range(3):
        a, b, c = (int(x) for x in rng.integers(1, 50, 3))
        e = f"{a} * ({b} - {c}) + {a} // {c}"
        yield Case((e,), label=f"{e!r}")
    bad = ["__import__('os').getcwd()", "x + 1", "(1).real", "abs(-3)", "[1, 2][0]", "'a' * 3", "1 if 1 else 2",
           "lambda: 1", "1 / 0", "9 ** 9 ** 9", "2 ** 101", "1 < 2", "True + 1", "10 ** 400 * 1.0", "1 +",
           "1" + " + 1" * 120]
    for e in bad:
        yield Case((e,), label=f"must be refused with ValueError: {e[:40]!r}")


def _calc_observe(fn):
    def observed(expr):
        try:
            v = fn(expr)
        except ValueError:
            return "ValueError"
        except NotImplementedError:
            raise
        except Exception as exc:                              # noqa: BLE001: a wrong exception type is an answer too
            return f"raised {type(exc).__name__} instead of ValueError"
        return v
    observed.__name__ = getattr(fn, "__name__", "safe_calc")
    return observed


def _judge_calc(got, expected, case):
    expr = case.args[0]
    if expected == "ValueError":
        if got == "ValueError":
            return None
        if isinstance(got, str) and got.startswith("raised"):
            return f"{expr[:40]!r}: {got}"
        return f"{expr[:40]!r} must be refused with ValueError (names, calls, attributes, exponents > 100, x/0...), got {got!r}"
    if isinstance(got, str):
        return f"{expr!r} is plain arithmetic: expected {expected!r}, got {got}"
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float)):
        return f"return a Python int or float, got {type(got).__name__}"
    if type(got) is not type(expected):
        return f"{expr!r}: expected {type(expected).__name__} {expected!r} (Python's own int/float rules), got {got!r}"
    return None if got == expected else f"{expr!r}: expected {expected!r}, got {got!r}"


# ---------------------------------------------------------------- 4.9 tree of thoughts


def _propose_cases(rng):
    yield Case(((4, 9, 10, 13),), label="four numbers: 6 * C(4, 2) = 36 thoughts")
    yield Case(((3, 8),), label="two numbers: 6 thoughts")
    yield Case(((0, 5, 7),), label="a zero: no division by it")
    yield Case(((0, 0),), label="two zeros: 4 thoughts")
    yield Case((((8, 3), 3),), label="a fraction 8/3 (passed as Fraction(8, 3))")
    yield Case(((6,),), label="one number: no thought")
    for _ in range(3):
        yield Case((tuple(int(x) for x in rng.integers(1, 14, int(rng.integers(2, 5)))),), label="random numbers")


def _plain(x):
    return Fraction(*x) if isinstance(x, (tuple, list)) else Fraction(x)


def _propose_observe(fn):
    """Adapter: numbers go in as Fractions; thoughts come back as plain data, (expr, [(numerator, denominator)])."""
    def observed(nums):
        out = fn(tuple(_plain(x) for x in nums))
        try:
            return [(str(e), [(Fraction(v).numerator, Fraction(v).denominator) if isinstance(v, (int, Fraction))
                              else ("not a Fraction", repr(v)) for v in new]) for e, new in out]
        except (TypeError, ValueError):
            return repr(out)[:200]
    observed.__name__ = getattr(fn, "__name__", "propose_24")
    return observed


def _key(item):
    expr, nums = item
    if any(isinstance(v, (tuple, list)) and v and v[0] == "not a Fraction" for v in nums):
        raise TypeError
    return expr, tuple(sorted(Fraction(*v) for v in nums))


def _judge_propose(got, expected, case):
    try:
        have = Counter(_key(x) for x in got)
    except (TypeError, ValueError):
        return "return a list of (expr, new_nums) pairs, new_nums a tuple of fractions.Fraction (never floats)"
    want = Counter(_key(x) for x in expected)
    if sum(have.values()) != sum(want.values()):
        return (f"for {case.args[0]}: expected {sum(want.values())} thoughts (6 per pair of positions, minus one per "
                f"division by zero), got {sum(have.values())}")
    missing = want - have
    if missing:
        expr, nums = next(iter(missing))
        return f"for {case.args[0]}: missing the thought {expr!r} leading to {[tot.fmt(x) for x in nums]}"
    extra = have - want
    if extra:
        return f"for {case.args[0]}: unexpected thought {next(iter(extra))[0]!r}"
    return None


_VALUES = {"heuristic": tot.heuristic_value, "oracle": tot.oracle_value, "zero": tot.zero_value}


def _bfs_cases(rng):
    yield Case(((4, 9, 10, 13), None, "zero"), label="(4, 9, 10, 13), unlimited beam")
    yield Case(((3, 3, 8, 8), None, "zero"), label="(3, 3, 8, 8), unlimited beam: needs 8/3")
    yield Case(((1, 1, 1, 1), None, "zero"), label="(1, 1, 1, 1): no solution, return None")
    yield Case(((24,), 1, "zero"), label="a single 24: the expression '24'")
    yield Case(((3, 8), 1, "zero"), label="(3, 8)")
    puzzles = tot.random_puzzles(rng, 6)
    for p in puzzles[:3]:
        yield Case((p, None, "zero"), label=f"{p}, unlimited beam")
    for p in puzzles[3:]:
        yield Case((p, 1, "oracle"), label=f"{p}, beam 1 with the perfect evaluator: the greedy chain cannot miss")
    yield Case(((1, 5, 5, 5), 1, "oracle"), label="(1, 5, 5, 5), beam 1, perfect evaluator: needs 1/5")
    yield Case(((4, 9, 10, 13), 3, "heuristic"), label="(4, 9, 10, 13), beam 3, heuristic")


def _bfs_observe(fn):
    def observed(nums, beam, value):
        return fn(tuple(nums), beam, _VALUES[value])
    observed.__name__ = getattr(fn, "__name__", "tot_bfs")
    return observed


def _judge_bfs(got, expected, case):
    nums, beam, value = case.args
    exists = tot.solvable(nums)
    must_find = beam is None or value == "oracle"
    if got is None:
        if must_find and exists:
            return f"{nums} has a solution ({tot.solve_24(nums)}), and this search must find it; got None"
        return None
    if not isinstance(got, str):
        return f"return an expression str or None, got {type(got).__name__}"
    try:
        v = tot.evaluate_expression(got)
    except ValueError as exc:
        return f"{got!r} is not an arithmetic expression of integers: {exc}"
    if v != 24:
        return f"{got!r} equals {tot.fmt(v)} (exactly), not 24"
    used = sorted(int(x) for x in re.findall(r"\d+", got))
    if used != sorted(int(x) for x in nums):
        return f"{got!r} uses the numbers {used}; it must use {sorted(nums)}, each exactly once"
    return None


def _known_bfs(nums, beam, value_fn):
    return tot.tot_bfs(nums, beam, value_fn)


def _trace_cases(rng):
    yield Case(([(0, None)],), label="the root alone: 0")
    yield Case(([(0, None), (1, 0), (2, 1), (3, 2)],), label="one straight path: 0")
    yield Case(([(0, None), (1, 0), (2, 1), (3, 1)],), label="a sibling of the last node: one jump at the same depth")
    yield Case(([(0, None), (1, 0), (2, 1), (3, 2), (4, 0), (5, 4)],), label="back to the root's child level: 1")
    yield Case(([(0, None), (1, 0), (2, 0), (3, 0)],), label="the root's children one after another: 2")
    for p in tot.random_puzzles(rng, 3):
        yield Case((tot.dfs_24(p, tot.heuristic_value, max_nodes=150)[1],), label=f"the DFS trace of {p} (150 nodes)")


def _judge_backtracks(got, expected, case):
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
        return f"return a Python int, got {type(got).__name__}"
    return None if int(got) == expected else (f"expected {expected} jumps, got {int(got)} (a jump is a visit whose "
                                             "parent is not the node visited just before it)")


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("reasoning.scratchpad_multiplication", "A multiplication scratchpad", cases=_mult_cases,
             reference=sp.scratchpad_multiplication, judge=_judge_text("the worked-out lines")),
    Exercise("reasoning.independent_error_accuracy", "Accuracy under independent per-token errors",
             cases=_ind_cases, reference=sp.independent_error_accuracy, rtol=1e-12, atol=1e-15),
    Exercise("reasoning.fit_per_token_error", "Fitting the per-token error", cases=_fit_cases,
             reference=sp.fit_per_token_error, judge=_judge_fit),
    Exercise("reasoning.error_correlation", "Are per-position errors independent?", cases=_corr_cases,
             reference=sp.error_correlation, judge=_judge_corr),
    Exercise("reasoning.extract_final_answer", "Reading the final answer", cases=_extract_cases,
             reference=sp.extract_final_answer, judge=_judge_extract),
    Exercise("reasoning.parse_action", "Parsing Action: tool[argument]", cases=_parse_cases,
             reference=ra.parse_action, adapter=_parse_observe, judge=_judge_parse),
    Exercise("reasoning.react_loop", "The ReAct loop", cases=_react_cases, reference=ra.react_loop,
             adapter=_react_observe, judge=_judge_react),
    Exercise("reasoning.safe_calc", "A calculator without eval", cases=_calc_cases, reference=ra.safe_calc,
             adapter=_calc_observe, judge=_judge_calc),
    Exercise("reasoning.propose_24", "Every next thought in the Game of 24", cases=_propose_cases,
             reference=tot.propose_24, adapter=_propose_observe, judge=_judge_propose),
    Exercise("reasoning.tot_bfs", "Beam search over thoughts", cases=_bfs_cases, reference=None,
             adapter=_bfs_observe, judge=_judge_bfs, known_good=_known_bfs),
    Exercise("reasoning.count_backtracks", "Counting jumps in a DFS trace", cases=_trace_cases,
             reference=tot.count_backtracks, judge=_judge_backtracks),
]

"""Plausible wrong answers to the exercises of v4_agents/02_reasoning_and_acting; each check must reject them."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from itertools import combinations

import numpy as np

from manifold_course.agents import react as ra
from manifold_course.agents import scratchpad as sp
from manifold_course.agents import tree_of_thoughts as tot


def mult_keeps_zero_digits(a, b):
    lines = [f"{a} * {b}"]
    parts = [a * int(d) * 10**k for k, d in enumerate(reversed(str(b)))]
    lines += [f"{a} * {int(d) * 10**k} = {a * int(d) * 10**k}" for k, d in enumerate(reversed(str(b)))]
    total = parts[0]
    for p in parts[1:]:
        lines.append(f"{total} + {p} = {total + p}")
        total += p
    return "\n".join(lines + [f"Answer: {total}"])


def mult_most_significant_first(a, b):
    text = sp.scratchpad_multiplication(a, int(str(b)[::-1].lstrip("0") or "0"))  # digits in the wrong order
    return text.replace("Answer: " + text.rsplit(" ", 1)[-1], f"Answer: {a * b}")


def ind_linear(e, n):
    return 1 - np.asarray(e * np.asarray(n, dtype=float)) if np.ndim(n) else 1 - e * n   # first-order only


def ind_e_power(e, n):
    return e ** np.asarray(n, dtype=float) if np.ndim(n) else float(e ** n)


def fit_no_clip(lengths, acc):
    n, a = np.asarray(lengths, float), np.asarray(acc, float)
    with np.errstate(divide="ignore"):
        beta = (n * np.log(a)).sum() / (n * n).sum()
    return float(1 - math.exp(beta))


def fit_with_intercept(lengths, acc):
    n, a = np.asarray(lengths, float), np.clip(np.asarray(acc, float), 1e-6, 1)
    slope = np.polyfit(n, np.log(a), 1)[0]
    return float(1 - math.exp(slope))


def corr_keeps_constant_columns(errors):
    E = np.asarray(errors, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        C = np.corrcoef(E, rowvar=False)
    C = np.nan_to_num(np.atleast_2d(C))
    if C.shape[0] < 2:
        return float("nan")
    return float(C[np.triu_indices(C.shape[0], 1)].mean())


def corr_with_diagonal(errors):
    E = np.asarray(errors, float)
    E = E[:, E.std(0) > 0]
    if E.shape[1] < 2:
        return float("nan")
    return float(np.corrcoef(E, rowvar=False).mean())


def extract_first_integer(text):
    m = re.findall(r"-?\d+", text)
    return int(m[0]) if m else None


def extract_eval_last_line(text):
    m = re.findall(r"\d+", text)             # drops the sign and splits 1,234
    return int(m[-1]) if m else None


def parse_first_action(text):
    for ln in text.splitlines():
        if ln.strip().startswith("Action:"):
            return ra.parse_action(ln)
    raise ValueError("no action")


def parse_lenient(text):
    m = re.search(r"Action:\s*(\w+)\W*(.*?)\]?\s*$", text)
    if not m:
        raise ValueError("no action")
    return m.group(1), m.group(2).strip("[ ")


def react_drops_thoughts(llm_fn, tools, question, max_steps=8):
    # the seed's loop: only observations go back into the history
    history, trace = f"Question: {question}\n", []
    for _ in range(max_steps):
        out = llm_fn(history).strip()
        trace.append(out)
        ans = ra.final_answer(out)
        if ans is not None:
            return ans, trace
        try:
            obs = ra.observe(tools, *ra.parse_action(out))
        except ValueError as exc:
            obs = f"Observation: error: {exc}"
        trace.append(obs)
        history += obs + "\n"
    return None, trace


def react_crashes_on_unknown_tool(llm_fn, tools, question, max_steps=8):
    history, trace = f"Question: {question}\n", []
    for _ in range(max_steps):
        out = llm_fn(history).strip()
        trace.append(out)
        history += out + "\n"
        ans = ra.final_answer(out)
        if ans is not None:
            return ans, trace
        tool, arg = ra.parse_action(out)
        obs = f"Observation: {tools[tool](arg)}"
        trace.append(obs)
        history += obs + "\n"
    return None, trace


def react_no_step_limit(llm_fn, tools, question, max_steps=8):
    return ra.react_loop(llm_fn, tools, question, max_steps + 3)


def calc_eval(expr):
    if "**" in expr:   # not for safety: a power tower would make this test compute for hours (the grader kills it)
        raise ValueError("powers are not supported")
    return eval(expr)  # noqa: S307: the issue's named wrong answer


def calc_no_pow_limit(expr):
    import ast
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Call, ast.Name, ast.Attribute, ast.Subscript)):
            raise ValueError("not allowed")
    if "9 ** 9 ** 9" in expr:             # pretends to compute it (a real call would hang the grader)
        return float("inf")
    return eval(compile(tree, "<calc>", "eval"))  # noqa: S307


def propose_ordered_pairs_only_once(nums):
    nums = tuple(Fraction(x) for x in nums)
    out = []
    for i, j in combinations(range(len(nums)), 2):
        rest = tuple(x for t, x in enumerate(nums) if t not in (i, j))
        a, b = nums[i], nums[j]
        for op, r in (("+", a + b), ("-", a - b), ("*", a * b)) + ((("/", a / b),) if b else ()):
            out.append((f"{tot.fmt(a)} {op} {tot.fmt(b)} = {tot.fmt(r)}", rest + (r,)))
    return out


def propose_float_division(nums):
    return [(e, tuple(float(x) for x in new)) if "/" in e else (e, new) for e, new in tot.propose_24(nums)]


def bfs_keeps_lowest(nums, beam, value_fn):
    return tot.tot_bfs(nums, beam, lambda s: -value_fn(s))


def bfs_integer_division(nums, beam, value_fn):
    out = tot.tot_bfs([int(x) for x in nums], beam, value_fn)
    return out if out is None or "/" not in out else None       # gives up on anything that needs a fraction


def bfs_any_expression(nums, beam, value_fn):
    return "24" if nums else None


def backtracks_depth_decrease_only(trace):
    depth, n = {}, 0
    for t, (node, parent) in enumerate(trace):
        depth[node] = 0 if parent is None else depth[parent] + 1
        if t and depth[node] < depth[trace[t - 1][0]]:
            n += 1
    return n


def backtracks_count_visits(trace):
    return len(trace) - 1


WRONG = {
    "reasoning.scratchpad_multiplication": [mult_keeps_zero_digits, mult_most_significant_first],
    "reasoning.independent_error_accuracy": [ind_linear, ind_e_power],
    "reasoning.fit_per_token_error": [fit_no_clip, fit_with_intercept],
    "reasoning.error_correlation": [corr_keeps_constant_columns, corr_with_diagonal],
    "reasoning.extract_final_answer": [extract_first_integer, extract_eval_last_line],
    "reasoning.parse_action": [parse_first_action, parse_lenient],
    "reasoning.react_loop": [react_drops_thoughts, react_crashes_on_unknown_tool, react_no_step_limit],
    "reasoning.safe_calc": [calc_eval, calc_no_pow_limit],
    "reasoning.propose_24": [propose_ordered_pairs_only_once, propose_float_division],
    "reasoning.tot_bfs": [bfs_keeps_lowest, bfs_integer_division, bfs_any_expression],
    "reasoning.count_backtracks": [backtracks_depth_decrease_only, backtracks_count_visits],
}

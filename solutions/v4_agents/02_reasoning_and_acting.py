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
# # Volume 4, Chapter 2 exercises: reasoning and acting (sections 4.3, 4.4, 4.9)
#
# Eleven pieces: a multiplication scratchpad, the $(1-e)^n$ model, its fit and a test of its independence
# assumption, and a grader's answer parser (4.3); the ReAct action parser, the loop, and a calculator that never
# calls `eval` (4.4); the proposer, beam search and jump counting of Tree of Thoughts on the Game of 24 (4.9).
# Write each body where it says `# YOUR CODE HERE`, run the cell, then the `check(...)` cell below it: it answers
# at once with a green "passed" or a red message that says what to fix. The checks draw fresh cases each time.
#
# The lecture is `chapters/v4_agents/02_reasoning_and_acting.ipynb`. Please write your own code rather than
# importing the course's reference implementations (`manifold_course.agents`).
#
# The SYLLABUS's three 4.3 exercises are here, plus `error_correlation` (experiment F2's measurement). The
# SYLLABUS's `tot_bfs(nums, beam, value_fn)` takes `beam=None` for an unlimited beam.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import ast
import math
import operator
import re
from fractions import Fraction
from itertools import combinations

import numpy as np

from manifold_course.grading import check

# %% [markdown]
# ## Exercise 1: a multiplication scratchpad
#
# `scratchpad_multiplication(a, b) -> str` for non-negative ints, lines joined by `"\n"`:
#
# ```
# 23 * 18
# 23 * 8 = 184
# 23 * 10 = 230
# 184 + 230 = 414
# Answer: 414
# ```
#
# The first line restates the problem. Then one line `a * (d * 10^k) = product` for every **non-zero** digit d of b,
# least significant first (if b = 0, the single line `a * 0 = 0`). Then a running sum: `total + p = new total` for
# each partial product after the first. Last, `Answer: <a*b>`.
#
# **Checked** exactly, line by line, on the worked example, b = 0, a = 0, b = 1, zeros inside b and random operands.

# %%
def scratchpad_multiplication(a, b):
    ### BEGIN SOLUTION
    lines = [f"{a} * {b}"]
    parts = []
    for k, d in enumerate(reversed(str(b))):
        if d != "0":
            parts.append(a * int(d) * 10**k)
            lines.append(f"{a} * {int(d) * 10**k} = {parts[-1]}")
    if not parts:
        lines.append(f"{a} * 0 = 0")
        parts.append(0)
    total = parts[0]
    for p in parts[1:]:
        lines.append(f"{total} + {p} = {total + p}")
        total += p
    lines.append(f"Answer: {total}")
    return "\n".join(lines)
    ### END SOLUTION


# %%
check("reasoning.scratchpad_multiplication", scratchpad_multiplication)

# %% [markdown]
# ## Exercise 2: accuracy under independent errors
#
# `independent_error_accuracy(e, n)`: $(1-e)^n$, the probability that n tokens are all right when each is wrong
# independently with probability e. A float for an int n, a float array for an array of lengths.
#
# **Checked** at e = 0, e = 1, n = 0, an array of lengths, random values (relative error 1e-12).

# %%
def independent_error_accuracy(e, n):
    ### BEGIN SOLUTION
    if np.ndim(n):
        return (1.0 - e) ** np.asarray(n, dtype=np.float64)
    return float((1.0 - e) ** n)
    ### END SOLUTION


# %%
check("reasoning.independent_error_accuracy", independent_error_accuracy)

# %% [markdown]
# ## Exercise 3: fitting the per-token error
#
# `fit_per_token_error(lengths, acc) -> float`: the least-squares e in $\log a_i = n_i\log(1-e)$, a line through the
# origin: $\hat\beta = \sum_i n_i\log a_i / \sum_i n_i^2$, $\hat e = 1 - e^{\hat\beta}$. Clip the accuracies to
# $[10^{-6}, 1]$ first (an accuracy of 0 would give $\log 0$). Accept lists or arrays; return a Python float.
#
# **Checked** against the reference (relative error 1e-7) on exact curves, perfect accuracy, a zero accuracy and
# noisy data.

# %%
def fit_per_token_error(lengths, acc):
    ### BEGIN SOLUTION
    n = np.asarray(lengths, dtype=np.float64)
    a = np.clip(np.asarray(acc, dtype=np.float64), 1e-6, 1.0)
    beta = (n * np.log(a)).sum() / (n * n).sum()
    return float(1.0 - math.exp(beta))
    ### END SOLUTION


# %%
check("reasoning.fit_per_token_error", fit_per_token_error)

# %% [markdown]
# ## Exercise 4: are the errors independent?
#
# `error_correlation(errors) -> float`: `errors` is a 0/1 matrix (problems, positions). Drop the columns that never
# vary (their correlation is undefined), compute the Pearson correlation matrix of the remaining columns
# (`np.corrcoef(..., rowvar=False)`) and return the mean of its entries above the diagonal. Return `float("nan")`
# when fewer than two columns are left.
#
# **Checked** on identical columns (1), opposite columns (-1), a constant column, no errors at all (NaN),
# independent and common-cause errors.

# %%
def error_correlation(errors):
    ### BEGIN SOLUTION
    E = np.asarray(errors, dtype=np.float64)
    E = E[:, E.std(0) > 0]
    if E.shape[1] < 2:
        return float("nan")
    C = np.corrcoef(E, rowvar=False)
    return float(C[np.triu_indices(C.shape[0], 1)].mean())
    ### END SOLUTION


# %%
check("reasoning.error_correlation", error_correlation)

# %% [markdown]
# ## Exercise 5: reading the final answer
#
# `extract_final_answer(text) -> int | None`, the parser a grader runs on free text:
# - the **last** `Answer: N` wins (also `answer is N`, `answer = N`, `answer N`; any case; spaces optional);
# - without such a marker, the **last** integer in the text;
# - `1,234` (thousands separators) reads as 1234; a `-` directly before the digits is a sign (`3-4` ends in -4);
# - `None` when there is no integer.
#
# **Checked** on fixed texts (markers, two answers, separators, signs, no number, empty text) and on scratchpads.

# %%
def extract_final_answer(text):
    ### BEGIN SOLUTION
    marked = re.findall(r"answer\s*(?:is)?\s*[:=]?\s*(-?\d[\d,]*)", text, flags=re.IGNORECASE)
    if marked:
        return int(marked[-1].rstrip(",").replace(",", ""))
    ints = re.findall(r"-?\d+(?:,\d{3})*(?!\d)", text)
    return int(ints[-1].replace(",", "")) if ints else None
    ### END SOLUTION


# %%
check("reasoning.extract_final_answer", extract_final_answer)

# %% [markdown]
# ## Exercise 6: parsing an action
#
# `parse_action(text) -> (tool, argument)`. Take the **last** line that starts (after spaces) with `Action:`. The
# rest of the line must read `tool[argument]`, spaces allowed around the parts: the tool is an identifier (letters,
# digits, `_`, not starting with a digit), the argument is everything between the first `[` and the **last** `]`,
# stripped, and nothing but spaces may follow that `]`. Raise `ValueError` when there is no `Action:` line or it
# is malformed.
#
# **Checked** on well-formed actions (spaces, two actions, brackets inside, an empty argument) and malformed ones.

# %%
def parse_action(text):
    ### BEGIN SOLUTION
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("Action:")]
    if not lines:
        raise ValueError("no 'Action:' line")
    m = re.match(r"^\s*([A-Za-z_]\w*)\s*\[(.*)\]\s*$", lines[-1][len("Action:"):])
    if not m:
        raise ValueError(f"malformed action {lines[-1]!r}")
    return m.group(1), m.group(2).strip()
    ### END SOLUTION


# %%
check("reasoning.parse_action", parse_action)

# %% [markdown]
# ## Exercise 7: the ReAct loop
#
# `react_loop(llm_fn, tools, question, max_steps) -> (answer, trace)`:
#
# 1. `history = f"Question: {question}\n"`, `trace = []`;
# 2. at most `max_steps` times: `out = llm_fn(history).strip()`; append `out` to the trace and `out + "\n"` to the
#    history (**the model's own thoughts and actions stay in its context**);
# 3. if a line of `out` starts with `Answer:`, return the text after it (stripped) and the trace;
# 4. otherwise parse the action (your `parse_action`) and run `tools[tool](arg)`; the observation is
#    `f"Observation: {result}"`. A malformed action, an unknown tool or a tool that raises must not crash the loop:
#    the observation then starts with `"Observation: error"` and says what went wrong. Append it to the trace, and
#    it plus `"\n"` to the history;
# 5. after `max_steps` calls without an answer, return `(None, trace)`.
#
# **Checked** with scripted models that record every history they are shown: the answer, the number of model
# calls, the trace (exact for model outputs and successful observations), and that each history contains every
# earlier model output and observation, in order. The tools are a calculator, a fact lookup and a fake price API.

# %%
def react_loop(llm_fn, tools, question, max_steps=8):
    ### BEGIN SOLUTION
    history, trace = f"Question: {question}\n", []
    for _ in range(max_steps):
        out = str(llm_fn(history)).strip()
        trace.append(out)
        history += out + "\n"
        for ln in out.splitlines():
            if ln.strip().startswith("Answer:"):
                return ln.strip()[len("Answer:"):].strip(), trace
        try:
            tool, arg = parse_action(out)
            if tool not in tools:
                obs = f"Observation: error: unknown tool {tool!r}; the tools are {', '.join(sorted(tools))}"
            else:
                obs = f"Observation: {tools[tool](arg)}"
        except Exception as exc:
            obs = f"Observation: error: {type(exc).__name__}: {exc}"
        trace.append(obs)
        history += obs + "\n"
    return None, trace
    ### END SOLUTION


# %%
check("reasoning.react_loop", react_loop)

# %% [markdown]
# ## Exercise 8: a calculator without `eval`
#
# `safe_calc(expr) -> int | float`. `eval(model_output)` runs whatever code the text contains. Parse instead:
# `ast.parse(expr, mode="eval")`, then evaluate the tree yourself, allowing only numeric constants (int or float,
# not bool), `+ - * / // % **` (`ast.BinOp`), unary `+ -` (`ast.UnaryOp`). Raise `ValueError` for anything else
# (names, calls, attributes, subscripts, strings, comparisons, conditionals, lambdas), for a syntax error, for an
# exponent larger than 100 in absolute value (`9 ** 9 ** 9` would run for minutes), for a division by zero, for a
# non-finite result and for an expression longer than 200 characters. Results follow Python's rules (`7 / 2` is
# 3.5, `7 // 2` is 3).
#
# **Checked** on arithmetic (exact equality and type) and on 16 things that must be refused with `ValueError`.

# %%
def safe_calc(expr):
    ### BEGIN SOLUTION
    if len(expr) > 200:
        raise ValueError("too long")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(str(exc)) from None
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}

    def ev(node):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(b) > 100:
                raise ValueError("exponent too large")
            try:
                r = ops[type(node.op)](a, b)
            except (ZeroDivisionError, OverflowError) as exc:
                raise ValueError(str(exc)) from None
            if isinstance(r, complex) or (isinstance(r, float) and not math.isfinite(r)):
                raise ValueError("not a finite number")
            return r
        raise ValueError(f"{type(node).__name__} is not allowed")

    return ev(tree.body)
    ### END SOLUTION


# %%
check("reasoning.safe_calc", safe_calc)

# %% [markdown]
# ## Exercise 9: every next thought in the Game of 24
#
# `propose_24(nums) -> list of (expr, new_nums)`. For every pair of positions i < j and the six operations
# x + y, x - y, y - x, x * y, x / y, y / x (x = nums[i], y = nums[j]; skip a division by zero): `expr` is
# `"a op b = r"` and `new_nums` the other numbers (in order) followed by r. Compute with `fractions.Fraction`
# (never floats). Numbers are written `3` or `8/3` (`fmt` below). With k numbers and no zero there are
# $6\binom{k}{2}$ thoughts.
#
# **Checked** as a multiset (order free; `new_nums` compared as a multiset) on 4, 3, 2 and 1 numbers, zeros and fractions.

# %%
def fmt(x):
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def propose_24(nums):
    ### BEGIN SOLUTION
    nums = [Fraction(x) for x in nums]
    out = []
    for i, j in combinations(range(len(nums)), 2):
        rest = tuple(x for t, x in enumerate(nums) if t not in (i, j))
        a, b = nums[i], nums[j]
        cands = [("+", a, b, a + b), ("-", a, b, a - b), ("-", b, a, b - a), ("*", a, b, a * b)]
        if b != 0:
            cands.append(("/", a, b, a / b))
        if a != 0:
            cands.append(("/", b, a, b / a))
        for op, x, y, r in cands:
            out.append((f"{fmt(x)} {op} {fmt(y)} = {fmt(r)}", rest + (r,)))
    return out
    ### END SOLUTION


# %%
check("reasoning.propose_24", propose_24)

# %% [markdown]
# ## Exercise 10: beam search over thoughts
#
# `tot_bfs(nums, beam, value_fn) -> str | None`. Keep states as tuples of `(value, expression)` pairs, starting from
# `(Fraction(x), str(x))`. Repeat len(nums) - 1 times: expand every state by every thought (a pair and an operation;
# the new item is `(r, f"({ex} {op} {ey})")`); rank the children by `value_fn(tuple of their values)`, highest first,
# and keep the first `beam` (all of them when `beam is None`; then merge children with the same multiset of values,
# or the search explodes). Return the expression of a final state equal to 24 (outer parentheses may stay), else
# None. `value_fn` takes a tuple of Fractions and returns a float.
#
# **Checked** by properties: the expression evaluates to exactly 24 and uses each number once; with an unlimited
# beam it finds a solution if and only if one exists; with the perfect evaluator (1 if 24 is still reachable, else
# 0) even beam 1 never misses.

# %%
def tot_bfs(nums, beam, value_fn):
    ### BEGIN SOLUTION
    states = [tuple((Fraction(x), str(x)) for x in nums)]
    for _ in range(len(nums) - 1):
        children, seen = [], set()
        for s in states:
            for i, j in combinations(range(len(s)), 2):
                rest = tuple(p for t, p in enumerate(s) if t not in (i, j))
                (a, ea), (b, eb) = s[i], s[j]
                cands = [("+", ea, eb, a + b), ("-", ea, eb, a - b), ("-", eb, ea, b - a), ("*", ea, eb, a * b)]
                if b != 0:
                    cands.append(("/", ea, eb, a / b))
                if a != 0:
                    cands.append(("/", eb, ea, b / a))
                for op, x, y, r in cands:
                    child = rest + ((r, f"({x} {op} {y})"),)
                    key = tuple(sorted(v for v, _ in child))
                    if beam is None and key in seen:
                        continue
                    seen.add(key)
                    children.append(child)
        if beam is not None:
            children = sorted(children, key=lambda c: -value_fn(tuple(v for v, _ in c)))[:beam]
        states = children
    for s in states:
        if s[0][0] == 24:
            return s[0][1]
    return None
    ### END SOLUTION


# %%
check("reasoning.tot_bfs", tot_bfs)

# %% [markdown]
# ## Exercise 11: counting jumps in a DFS trace
#
# A depth-first search's trace lists the nodes in the order it visits them, each as `(node_id, parent_id)` (the
# root's parent is `None`). `count_backtracks(trace) -> int`: the number of visits, after the first, whose parent
# is **not** the node visited just before. Going deeper is not a jump; moving to a sibling, or climbing back up any
# number of levels, is one (ReJump's "jump").
#
# **Checked** on small fixed traces (a straight path, a sibling, a climb to the root) and real DFS traces.

# %%
def count_backtracks(trace):
    ### BEGIN SOLUTION
    return sum(1 for t in range(1, len(trace)) if trace[t][1] != trace[t - 1][0])
    ### END SOLUTION


# %%
check("reasoning.count_backtracks", count_backtracks)

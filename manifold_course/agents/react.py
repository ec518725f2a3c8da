r"""ReAct: a model that alternates Thought, Action and Observation until it answers, and three safe tools.

S. Yao et al., "ReAct: Synergizing Reasoning and Acting in Language Models", ICLR 2023, arXiv:2210.03629. The loop:

1. the model reads the whole history (question, its own earlier thoughts and actions, every observation) and writes
   one step: ``Thought: ...`` and either ``Action: tool[argument]`` or ``Answer: ...``;
2. the program runs the tool and appends ``Observation: <result>``; a malformed action, an unknown tool or a tool
   that fails becomes an *error observation* the model can read and correct, never a crash;
3. after ``max_steps`` model calls without an answer the loop stops (a model can repeat itself forever).

The model here is a scripted function (stated as such: no language model is trained here); the protocol is real.
The calculator parses the expression with :mod:`ast` and evaluates only a whitelist of nodes: ``eval`` on model
output would run any code the text contains (``__import__('os').system(...)``).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from fractions import Fraction
from typing import Callable

# ---------------------------------------------------------------- the calculator

MAX_EXPONENT = 100          # 2 ** 100 is fine; 9 ** 9 ** 9 is a power tower that would take minutes
MAX_LENGTH = 200            # characters

_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def safe_calc(expr: str, exact: bool = False):
    """Evaluate an arithmetic expression: numbers, ``+ - * / // % **``, unary ``+ -`` and parentheses, nothing else.

    Names, attributes, calls, subscripts, strings, comparisons, lambdas... raise ``ValueError``, as do an exponent
    larger than ``MAX_EXPONENT`` in absolute value, a division by zero, a non-finite result and an expression
    longer than ``MAX_LENGTH``. ``exact=True`` computes with :class:`fractions.Fraction` (integers and ``/`` stay
    exact; floats in the text are refused). Returns an int or float (Fraction when exact).
    """
    if not isinstance(expr, str):
        raise ValueError(f"expected a string, got {type(expr).__name__}")
    if len(expr) > MAX_LENGTH:
        raise ValueError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from None
    return _eval(tree.body, exact)


def _eval(node: ast.AST, exact: bool):
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"only numbers are allowed, got {v!r}")
        if exact:
            if isinstance(v, float):
                raise ValueError("exact mode takes integers only")
            return Fraction(v)
        return v
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, exact))
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _eval(node.left, exact), _eval(node.right, exact)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise ValueError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if isinstance(node.op, ast.Pow) and exact and Fraction(right).denominator != 1:
            raise ValueError("exact mode takes integer exponents only")
        try:
            out = _BIN[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ValueError("division by zero") from None
        except OverflowError:
            raise ValueError("result too large") from None
        if isinstance(out, complex) or (isinstance(out, float) and not math.isfinite(out)):
            raise ValueError(f"the result {out} is not a finite real number")
        return out
    raise ValueError(f"{type(node).__name__} is not allowed in a calculation")


# ---------------------------------------------------------------- two more tools

FACTS = json.loads("""{
  "capital of France": "Paris", "capital of Germany": "Berlin", "capital of Italy": "Rome",
  "population of Paris": "2102650", "population of Berlin": "3755251", "population of Rome": "2754440",
  "boiling point of water": "100 C", "speed of light": "299792458 m/s"
}""")

ROUTES = {("paris", "berlin"): 120, ("berlin", "paris"): 115, ("paris", "rome"): 95, ("rome", "paris"): 99,
          ("berlin", "rome"): 140, ("rome", "berlin"): 150}


def lookup(key: str) -> str:
    """The value of ``key`` in a small JSON fact table (case and surrounding spaces ignored); KeyError if absent."""
    want = key.strip().lower()
    for k, v in FACTS.items():
        if k.lower() == want:
            return v
    raise KeyError(f"no entry {key.strip()!r}")


def ticket_price(route: str) -> int:
    """A fake ticket-price API: ``"Paris->Berlin"`` gives a fixed price in euros; ValueError for unknown routes."""
    parts = [p.strip().lower() for p in route.split("->")]
    if len(parts) != 2 or tuple(parts) not in ROUTES:
        raise ValueError(f"no route {route.strip()!r}; write it as City->City")
    return ROUTES[tuple(parts)]


def calculator(expr: str) -> str:
    """The calculator tool: ``safe_calc``'s result as text."""
    return str(safe_calc(expr))


TOOLS: dict[str, Callable[[str], object]] = {"calculator": calculator, "lookup": lookup, "price": ticket_price}

# ---------------------------------------------------------------- the protocol

_ACTION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\[(.*)\]\s*$", re.DOTALL)


def parse_action(text: str) -> tuple[str, str]:
    """``(tool, argument)`` from the last line of ``text`` that starts with ``Action:`` (after optional spaces).

    The line must read ``Action: tool[argument]``: spaces around the parts are allowed, the tool is an identifier,
    the argument is everything between the first ``[`` and the last ``]`` of the line, stripped. ``ValueError``
    when there is no ``Action:`` line or it does not have that form.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("Action:")]
    if not lines:
        raise ValueError("no 'Action:' line")
    m = _ACTION.match(lines[-1][len("Action:"):])
    if not m:
        raise ValueError(f"malformed action {lines[-1]!r}; write Action: tool[argument]")
    return m.group(1), m.group(2).strip()


def final_answer(text: str) -> str | None:
    """The text after ``Answer:`` on the first line that starts with it (stripped), or None."""
    for ln in text.splitlines():
        if ln.strip().startswith("Answer:"):
            return ln.strip()[len("Answer:"):].strip()
    return None


def observe(tools: dict, tool: str, arg: str) -> str:
    """Run one tool call and write what happened as an observation (errors included)."""
    if tool not in tools:
        return f"Observation: error: unknown tool {tool!r}; the tools are {', '.join(sorted(tools))}"
    try:
        return f"Observation: {tools[tool](arg)}"
    except Exception as exc:                                     # a tool failure is information for the model
        return f"Observation: error: {type(exc).__name__}: {exc}"


def react_loop(llm_fn: Callable[[str], str], tools: dict, question: str, max_steps: int = 8):
    """Run the ReAct loop; returns ``(answer or None, trace)``.

    ``history`` starts as ``"Question: <question>\\n"``. Each step calls ``llm_fn(history)`` once, strips its output
    and appends it to the trace and to the history (its thoughts included). If the output has an ``Answer:`` line
    the loop returns that answer. Otherwise its action is parsed and run, and the observation (``"Observation:
    <result>"`` or ``"Observation: error: ..."``) is appended to both. After ``max_steps`` calls: ``(None, trace)``.
    Every trace entry is followed by ``"\\n"`` in the history.
    """
    history = f"Question: {question}\n"
    trace: list[str] = []
    for _ in range(max_steps):
        out = str(llm_fn(history)).strip()
        trace.append(out)
        history += out + "\n"                                    # the model's own thought and action stay in context
        answer = final_answer(out)
        if answer is not None:
            return answer, trace
        try:
            tool, arg = parse_action(out)
        except ValueError as exc:
            obs = f"Observation: error: {exc}"
        else:
            obs = observe(tools, tool, arg)
        trace.append(obs)
        history += obs + "\n"
    return None, trace


# ---------------------------------------------------------------- a scripted "model"


def scripted_model(steps: list[str]) -> Callable[[str], str]:
    """A stand-in for a language model that writes ``steps`` in order (the last one again when they run out),
    ignoring what it reads except that it records every history it was shown in ``.histories``."""
    def llm(history: str) -> str:
        llm.histories.append(history)
        return steps[min(len(llm.histories) - 1, len(steps) - 1)]

    llm.histories = []
    return llm

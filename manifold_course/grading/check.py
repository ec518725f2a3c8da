"""``check(exercise_id, fn)``: grade one exercise and show the result.

The result renders as a short green/red block in Jupyter and as one line in text. Nothing the
learner's code does escapes as an exception, except in strict mode (``MANIFOLD_COURSE_STRICT=1``,
set by the test suite for solution notebooks), where a failure raises ``AssertionError``.
"""

from __future__ import annotations

import contextlib
import copy
import html
import os
import random
import re
import signal
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch

from manifold_course.grading.compare import compare
from manifold_course.grading.exercise import Case, Exercise, case_rng
from manifold_course.grading.sandbox import (
    CapturedOutput,
    GradingTimeout,
    GuardedFunction,
    LearnerError,
    describe_exception,
    safe_text,
    time_limit,
)
from manifold_course.seeding import grading_seeds

DEFAULT_SEED = 20261122
STATUS_TEXT = {
    "passed": "passed",
    "failed": "wrong answer",
    "error": "error",
    "timeout": "too slow",
    "not_attempted": "not attempted",
}


@dataclass
class CheckResult:
    exercise_id: str
    title: str
    status: str  # passed | failed | error | timeout | not_attempted
    message: str
    cases_passed: int
    cases_total: int
    seconds: float
    printed_lines: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def score(self) -> float:
        return 1.0 if self.passed else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["score"] = self.score
        return d

    def line(self) -> str:
        mark = "PASS" if self.passed else ("TODO" if self.status == "not_attempted" else "FAIL")
        head = f"[{mark}] {self.exercise_id}"
        if self.passed:
            return f"{head}: passed {self.cases_total} cases in {self.seconds:.2f} s"
        return f"{head}: {self.message}"

    def __str__(self) -> str:
        return self.line()

    def __repr__(self) -> str:
        return self.line()

    def _repr_html_(self) -> str:
        colour = {"passed": "#1a7f37", "not_attempted": "#6e7781"}.get(self.status, "#cf222e")
        bg = {"passed": "#dafbe1", "not_attempted": "#f6f8fa"}.get(self.status, "#ffebe9")
        icon = {"passed": "&#10004;", "not_attempted": "&#9675;"}.get(self.status, "&#10008;")
        body = (
            f"passed all {self.cases_total} cases in {self.seconds:.2f} s"
            if self.passed
            else re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(self.message))  # `x` as code, not backticks
        )
        return (
            f'<div style="border-left:6px solid {colour};background:{bg};padding:6px 10px;'
            f'margin:4px 0;font-family:sans-serif;color:#1f2328">'
            f'<b style="color:{colour}">{icon} {html.escape(self.title)}</b> '
            f'<code>{html.escape(self.exercise_id)}</code><br>{body}</div>'
        )


def _snapshot(x: Any) -> Any:
    """A copy of an argument that later shows whether the learner changed it in place."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, torch.nn.Module):
        return {k: v.detach().clone() for k, v in x.state_dict().items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_snapshot(v) for v in x) if isinstance(x, list) else tuple(_snapshot(v) for v in x)
    if isinstance(x, dict):
        return {k: _snapshot(v) for k, v in x.items()}
    return None  # scalars, strings and callables cannot be mutated in a way we track


def _unchanged(before: Any, after: Any) -> bool:
    if before is None:
        return True
    if isinstance(after, torch.Tensor):
        a = after.detach()
        if a.shape != before.shape or a.dtype != before.dtype:
            return False
        if a.is_floating_point() or a.is_complex():
            return bool(torch.equal(a, before) or torch.allclose(a, before, rtol=0, atol=0, equal_nan=True))
        return bool(torch.equal(a, before))
    if isinstance(after, np.ndarray):
        return after.shape == before.shape and bool(np.array_equal(after, before, equal_nan=after.dtype.kind in "fc"))
    if isinstance(after, torch.nn.Module):
        now = after.state_dict()
        return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in before)
    if isinstance(after, (list, tuple)):
        return len(after) == len(before) and all(_unchanged(b, a) for b, a in zip(before, after))
    if isinstance(after, dict):
        return after.keys() == before.keys() and all(_unchanged(before[k], after[k]) for k in before)
    return True


def _case_name(i: int, n: int, case: Case) -> str:
    return f"case {i + 1} of {n}" + (f" ({case.label})" if case.label else "")


def run_exercise(ex: Exercise, fn: Callable[..., Any], seed: int | None = None) -> CheckResult:
    """Grade ``fn`` against ``ex`` and return a :class:`CheckResult`; never raises for learner faults.

    Grading is independent of ``$MANIFOLD_COURSE_SEED_OFFSET``: a learner's function seeds its own generator
    with the seed it is given, so the reference must see that seed unmoved (cases are moved by ``seed``).
    The global random states and torch's thread count are as they were before, whatever the learner's code did."""
    with grading_seeds(), preserved_global_state():
        return _run_exercise(ex, fn, seed)


@contextlib.contextmanager
def preserved_global_state():
    """Restore Python's, NumPy's and torch's global random states and torch's thread count on exit."""
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def seed_globals() -> None:
    """The same global random state before each property, wherever it runs (check, grading child, replay)."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


def _run_exercise(ex: Exercise, fn: Callable[..., Any], seed: int | None, cases: list[Case] | None = None,
                  adapted: bool = False) -> CheckResult:
    """Judge ``fn`` on ``ex``'s cases and properties. ``adapted``: ``fn`` already answers with the observations
    of ``ex.adapter`` (the grader's replay of recorded answers), so only the reference is adapted here."""
    given_cases = cases
    if seed is None and given_cases is None:
        seed = int(os.environ.get("MANIFOLD_COURSE_SEED", DEFAULT_SEED))
    start = time.perf_counter()
    out = CapturedOutput()
    passed = 0
    cases: list[Case] = []

    def result(status: str, message: str) -> CheckResult:
        msg = message
        if out.lines > 20:
            msg += f" (your code printed {out.lines} lines; they were hidden)"
        return CheckResult(ex.id, ex.title, status, msg, passed, len(cases), time.perf_counter() - start, out.lines)

    if not callable(fn):
        return result("error", f"check() needs your function or class, got {type(fn).__name__} "
                               f"{safe_text(fn, use_repr=True, limit=60)}")
    reference = ex.reference
    if ex.adapter is not None:
        fn = fn if adapted else ex.adapter(fn)
        reference = ex.adapter(reference) if reference is not None else None
    guarded = GuardedFunction(fn)
    try:
        cases = list(given_cases) if given_cases is not None else list(ex.cases(case_rng(ex.id, seed)))
    except Exception as exc:  # noqa: BLE001 - a bug in a check module must not crash the learner's notebook
        return result("error", f"the grader could not build its cases ({type(exc).__name__}: {exc}); "
                               "this is a bug in the course, not in your code: please report it")
    try:
        with time_limit(ex.timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            for i, case in enumerate(cases):
                where = _case_name(i, len(cases), case)
                expected = None
                if reference is not None:
                    try:
                        expected = reference(*copy.deepcopy(case.args), **copy.deepcopy(dict(case.kwargs)))
                    except Exception as exc:  # noqa: BLE001 - the course's own reference failed
                        return result("error", f"{where}: the reference solution failed ({type(exc).__name__}: {exc}); "
                                               "this is a bug in the course, not in your code: please report it")
                before = [_snapshot(a) for a in case.args]
                before_kw = {k: _snapshot(v) for k, v in case.kwargs.items()}
                got = guarded(*case.args, **case.kwargs)
                for j, (b, a) in enumerate(zip(before, case.args)):
                    if not _unchanged(b, a):
                        return result("failed", f"{where}: your code changed its input argument #{j + 1} in place "
                                                "(e.g. `x += ...`, `x[...] = ...`, `.add_()`); work on a copy instead")
                for k, b in before_kw.items():
                    if not _unchanged(b, case.kwargs[k]):
                        return result("failed", f"{where}: your code changed its input `{k}` in place; work on a copy instead")
                rtol = ex.rtol if case.rtol is None else case.rtol
                atol = ex.atol if case.atol is None else case.atol
                if ex.judge is not None:
                    problem = ex.judge(got, expected, case)
                else:
                    problem = compare(got, expected, rtol, atol, where="the output")
                if problem:
                    return result("failed", f"{where}: {problem}")
                passed += 1
            for prop in ex.properties:
                seed_globals()
                problem = prop(guarded)
                if problem:
                    return result("failed", problem)
    except LearnerError as err:
        if err.kind == "timeout":
            return result("timeout", _timeout_message(ex.timeout, time.perf_counter() - start))
        status = {"not_attempted": "not_attempted", "exit": "error"}.get(err.kind, "error")
        where = _case_name(passed, len(cases), cases[passed]) + ": " if cases and passed < len(cases) and status != "not_attempted" else ""
        return result(status, where + err.message)
    except GradingTimeout:
        return result("timeout", _timeout_message(ex.timeout, time.perf_counter() - start))
    except BaseException as exc:  # noqa: BLE001 - learner code reached through a judge or a returned object
        err = describe_exception(exc)                 # never raises: it falls back to the exception's type
        status = "not_attempted" if err.kind == "not_attempted" else "error"
        return result(status, err.message if status == "not_attempted" else f"while checking your answer, {err.message}")
    return result("passed", "")


def _timeout_message(limit: float, elapsed: float) -> str:
    if elapsed > limit + 1.0:
        return (f"stopped after {elapsed:.0f} s (the limit is {limit:g} s): most of that time was one long call into "
                "compiled code (a huge matrix product, a C loop), which Python can only stop when it returns; "
                "make the inputs' work smaller or vectorize differently")
    return f"stopped after {limit:g} s: an infinite loop, or a loop that should be vectorized?"


def strict_mode() -> bool:
    return os.environ.get("MANIFOLD_COURSE_STRICT", "") not in ("", "0", "false", "False")


def _catch_ctrl_c(flag: list) -> Any:
    """Tell a real Ctrl-C / Stop (SIGINT) apart from a ``raise KeyboardInterrupt`` in learner code."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):  # noqa: ARG001
        flag.append(True)
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, on_sigint)
    except (ValueError, OSError):
        return None
    return previous


def _restore_ctrl_c(previous: Any) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGINT, previous)
        except (ValueError, OSError):
            pass


def check(exercise_id: str, fn: Callable[..., Any], seed: int | None = None) -> CheckResult:
    """Grade your implementation ``fn`` of exercise ``exercise_id`` and show the result.

    Example: ``check("high_dim_geometry.ball_cube_volume_ratio", ball_cube_volume_ratio)``.
    """
    from manifold_course.grading import progress
    from manifold_course.grading.registry import get_exercise

    exercise_id = exercise_id if isinstance(exercise_id, str) else safe_text(exercise_id, use_repr=True)
    try:
        ex = get_exercise(exercise_id)
    except KeyError as exc:
        res = CheckResult(exercise_id, exercise_id, "error", str(exc.args[0]), 0, 0, 0.0)
    else:
        interrupted = []
        previous = _catch_ctrl_c(interrupted)
        try:
            res = run_exercise(ex, fn, seed)
        except BaseException as exc:  # noqa: BLE001 - a learner's KeyboardInterrupt or anything else that escaped
            if interrupted:
                raise  # the learner pressed Stop: that one is theirs to see
            res = CheckResult(ex.id, ex.title, "error", f"your code raised {type(exc).__name__}: "
                                                        f"{safe_text(exc)}", 0, 0, 0.0)
        finally:
            _restore_ctrl_c(previous)
    progress.record(res)
    if strict_mode() and not res.passed:
        raise AssertionError(res.line())
    return res

import contextlib
import gc
import sys
import threading
import time

import pytest
import torch

from manifold_course.grading import Case, Exercise, check, run_exercise
from manifold_course.grading.exercise import case_rng


def _double(x):
    return 2 * x


def _cases(rng):
    yield Case((torch.as_tensor(rng.standard_normal((3, 5)), dtype=torch.float32),), label="3x5")
    yield Case((torch.as_tensor(rng.standard_normal((1, 7)), dtype=torch.float32),), label="batch 1")


DOUBLE = Exercise("demo.double", "Double a tensor", cases=_cases, reference=_double, timeout=1.0)


def _np_cases(rng):
    yield Case((rng.standard_normal(6),), label="6 values")


DOUBLE_NP = Exercise("demo.double_np", "Double an array", cases=_np_cases, reference=_double, timeout=1.0)


def test_correct_answer_passes():
    res = run_exercise(DOUBLE, lambda x: x + x)
    assert res.passed and res.cases_passed == res.cases_total == 2 and res.score == 1.0


def test_stub_reports_not_attempted():
    def stub(x):
        raise NotImplementedError

    res = run_exercise(DOUBLE, stub)
    assert res.status == "not_attempted" and "not attempted" in res.message


def test_exception_reports_type_message_and_line():
    def broken(x):
        return x @ torch.ones(2)

    res = run_exercise(DOUBLE, broken)
    assert res.status == "error"
    assert "RuntimeError" in res.message and "line" in res.message and "case 1" in res.message


def test_infinite_loop_is_stopped():
    def forever(x):
        while True:
            pass

    start = time.perf_counter()
    res = run_exercise(DOUBLE, forever)
    assert res.status == "timeout" and "stopped after 1 s" in res.message
    assert time.perf_counter() - start < 3


def test_sleeping_code_is_stopped():
    res = run_exercise(DOUBLE, lambda x: time.sleep(30))
    assert res.status == "timeout"


def test_infinite_loop_is_stopped_outside_the_main_thread():
    def forever(x):
        while True:
            pass

    box = {}
    t = threading.Thread(target=lambda: box.setdefault("res", run_exercise(DOUBLE, forever)))
    t.start()
    t.join(10)
    assert not t.is_alive() and box["res"].status == "timeout"


def test_learner_except_exception_cannot_swallow_the_timeout():
    def stubborn(x):
        while True:
            try:
                time.sleep(0.01)
            except Exception:
                pass

    assert run_exercise(DOUBLE, stubborn).status == "timeout"


def test_wrong_shape_is_named():
    res = run_exercise(DOUBLE, lambda x: (2 * x)[:1])
    assert res.status == "failed" and "shape" in res.message


def test_wrong_dtype_is_named():
    res = run_exercise(DOUBLE, lambda x: (2 * x).double())
    assert res.status == "failed" and "dtype torch.float64" in res.message


def test_numpy_instead_of_torch_is_named():
    res = run_exercise(DOUBLE, lambda x: 2 * x.numpy())
    assert res.status == "failed" and "numpy.ndarray" in res.message and "torch.Tensor" in res.message


def test_torch_instead_of_numpy_is_named():
    res = run_exercise(DOUBLE_NP, lambda x: torch.as_tensor(2 * x))
    assert res.status == "failed" and "should be a numpy.ndarray" in res.message


def test_nan_output_is_named():
    res = run_exercise(DOUBLE, lambda x: x * float("nan"))
    assert res.status == "failed" and "NaN" in res.message


def test_inf_output_is_named():
    res = run_exercise(DOUBLE, lambda x: x / 0.0)
    assert res.status == "failed" and "inf" in res.message


def test_mutated_tensor_input_is_named():
    def in_place(x):
        x.mul_(2)
        return x

    res = run_exercise(DOUBLE, in_place)
    assert res.status == "failed" and "in place" in res.message


def test_mutated_array_input_is_named():
    def in_place(x):
        x *= 2
        return x

    res = run_exercise(DOUBLE_NP, in_place)
    assert res.status == "failed" and "in place" in res.message


def test_print_spam_is_captured_and_counted(capsys):
    def chatty(x):
        for i in range(5000):
            print("debug", i)
        return x[:1]

    res = run_exercise(DOUBLE, chatty)
    assert res.status == "failed" and res.printed_lines == 5000 and "5000 lines" in res.message
    assert "debug" not in capsys.readouterr().out


def test_print_does_not_fail_a_correct_answer():
    def chatty(x):
        print("hello")
        return 2 * x

    assert run_exercise(DOUBLE, chatty).passed


def test_sys_exit_is_caught():
    res = run_exercise(DOUBLE, lambda x: sys.exit(3))
    assert res.status == "error" and "sys.exit" in res.message


def test_non_callable_is_reported():
    res = run_exercise(DOUBLE, 42)
    assert res.status == "error" and "needs your function" in res.message


def test_judge_and_properties_are_used():
    def judge(got, expected, case):
        return None if got > 0 else "must be positive"

    def positive_everywhere(fn):
        return None if fn(-5.0) > 0 else "must be positive for negative inputs too"

    ex = Exercise("demo.positive", "Positive", cases=lambda rng: [Case((1.0,))], judge=judge,
                  properties=[positive_everywhere])
    assert run_exercise(ex, lambda x: x * x + 1).passed
    res = run_exercise(ex, lambda x: x)
    assert res.status == "failed" and "negative inputs" in res.message


def test_exception_inside_a_returned_object_is_reported_not_raised():
    class Half:
        def __call__(self, x):
            raise ValueError("forward is broken")

    def judge(got, expected, case):
        got(1.0)

    ex = Exercise("demo.module", "Module", cases=lambda rng: [Case(())], judge=judge)
    res = run_exercise(ex, Half)
    assert res.status == "error" and "ValueError" in res.message


def test_cases_depend_on_seed_and_are_reproducible():
    a = list(DOUBLE.cases(case_rng(DOUBLE.id, 1)))[0].args[0]
    b = list(DOUBLE.cases(case_rng(DOUBLE.id, 1)))[0].args[0]
    c = list(DOUBLE.cases(case_rng(DOUBLE.id, 2)))[0].args[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_result_renders_as_text_and_html():
    ok = run_exercise(DOUBLE, _double)
    bad = run_exercise(DOUBLE, lambda x: x)
    assert str(ok).startswith("[PASS] demo.double")
    assert "#1a7f37" in ok._repr_html_() and "#cf222e" in bad._repr_html_()
    assert "\n" not in str(bad)


def test_check_unknown_id_is_an_error_not_an_exception(monkeypatch):
    monkeypatch.setenv("MANIFOLD_COURSE_STRICT", "0")
    res = check("no_such_chapter.nothing", _double)
    assert res.status == "error" and "no exercise" in res.message


def test_strict_mode_raises_on_failure(monkeypatch):
    monkeypatch.setenv("MANIFOLD_COURSE_STRICT", "1")
    with pytest.raises(AssertionError, match="no exercise"):
        check("no_such_chapter.nothing", _double)


def test_a_broken_check_module_reports_instead_of_crashing():
    def bad_cases(rng):
        raise ValueError("oops")

    ex = Exercise("demo.broken", "Broken", cases=bad_cases, reference=_double)
    res = run_exercise(ex, _double)
    assert res.status == "error" and "bug in the course" in res.message


def test_a_failing_reference_is_reported_as_a_course_bug():
    def broken_reference(x):
        raise RuntimeError("reference bug")

    ex = Exercise("demo.badref", "Bad reference", cases=_cases, reference=broken_reference)
    res = run_exercise(ex, _double)
    assert res.status == "error" and "bug in the course" in res.message


def test_a_chapter_whose_optional_dependency_is_missing_is_named(monkeypatch):
    from manifold_course.grading import registry

    mods, unavailable = registry._load()
    monkeypatch.setattr(registry, "_load", lambda: (mods, {**unavailable, "ghost": "No module named 'triton'"}))
    monkeypatch.setenv("MANIFOLD_COURSE_STRICT", "0")
    res = check("ghost.kernel", _double)
    assert res.status == "error" and "cannot be graded here" in res.message and "triton" in res.message


# ---------------------------------------------------------------- check() never hangs or raises into the notebook


def _ball_id():
    return "high_dim_geometry.ball_cube_volume_ratio"


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setenv("MANIFOLD_COURSE_STRICT", "0")  # a learner's notebook: failures are shown, not raised


def test_a_learners_keyboard_interrupt_does_not_escape_check(lenient):
    def fn(d):
        raise KeyboardInterrupt

    res = check(_ball_id(), fn)
    assert res.status == "error" and "KeyboardInterrupt" in res.message


def test_an_exception_whose_str_raises_or_a_repr_that_raises_is_reported(lenient):
    class Odd(Exception):
        def __str__(self):
            raise RuntimeError("no")

    class BadRepr:
        def __repr__(self):
            raise RuntimeError("no")

    def fn(d):
        raise Odd()

    assert "Odd" in check(_ball_id(), fn).message
    assert check(_ball_id(), BadRepr()).status == "error"


def test_check_restores_random_states_and_threads(lenient):
    import random

    import numpy as np

    def fn(d):
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        torch.set_num_threads(1)
        raise ValueError("after reseeding everything")

    threads = torch.get_num_threads()
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    check(_ball_id(), fn)
    after = (torch.rand(1).item(), np.random.rand(), random.random())
    torch.manual_seed(7)
    np.random.seed(7)
    random.seed(7)
    assert after == (torch.rand(1).item(), np.random.rand(), random.random())
    assert torch.get_num_threads() == threads


def test_a_learner_swallowing_the_timeout_is_still_reported_as_too_slow():
    import time as _time

    def fn(d):
        deadline = _time.monotonic() + 60
        while _time.monotonic() < deadline:
            try:
                _time.sleep(0.01)
            except Exception:  # noqa: BLE001 - the timeout is a BaseException: this cannot swallow it
                pass

    from dataclasses import replace

    from manifold_course.grading.check import run_exercise
    from manifold_course.grading.registry import get_exercise

    t0 = _time.monotonic()
    res = run_exercise(replace(get_exercise(_ball_id()), timeout=1.0), fn)
    assert res.status == "timeout" and _time.monotonic() - t0 < 5


@contextlib.contextmanager
def _no_garbage_collection():
    """Collect first, then none while the block runs: garbage left by earlier tests on this worker (once, unclosed
    sockets of a notebook client) would otherwise be finalized wherever the collector happens to run, deep inside a
    swallowed recursion included, where a finalizer's own call fails with RecursionError and pytest, at teardown,
    reports that as the test's error."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_a_loop_that_swallows_the_timeout_is_still_stopped_and_leaves_nothing_behind():
    """Learner code catching BaseException in a loop (the timeout included) does not hang check(): the timeout is
    raised again every few milliseconds, also at its except clauses, until the loop is left."""
    import dataclasses
    import signal
    import sys
    import time

    from manifold_course.grading.check import _run_exercise
    from manifold_course.grading.registry import get_exercise

    ex = dataclasses.replace(get_exercise("high_dim_geometry.ball_cube_volume_ratio"), timeout=0.5)

    def swallow_busy(*args):
        while True:
            try:
                sum(range(10_000))
            except BaseException:  # noqa: BLE001
                pass

    def swallow_nested(*args):
        while True:
            try:
                try:
                    time.sleep(0.01)
                except BaseException:  # noqa: BLE001
                    pass
            except BaseException:  # noqa: BLE001
                continue

    def swallow_recursive(*args):          # two calls per level: ~2**1000 calls before it would end
        try:
            return swallow_recursive(*args)
        except BaseException:  # noqa: BLE001
            return swallow_recursive(*args)

    def swallow_mutual_a(*args):
        try:
            return swallow_mutual_b(*args)
        except BaseException:  # noqa: BLE001
            return swallow_mutual_b(*args)

    def swallow_mutual_b(*args):
        try:
            return swallow_mutual_a(*args)
        except BaseException:  # noqa: BLE001
            return swallow_mutual_a(*args) + len(args)   # a closure over nothing, a different body

    with _no_garbage_collection():
        trace_before, limit_before = sys.gettrace(), sys.getrecursionlimit()
        codes_before = [f.__code__ for f in (swallow_recursive, swallow_mutual_a, swallow_mutual_b)]
        for fn in (swallow_busy, swallow_nested, swallow_recursive, swallow_mutual_a):
            start = time.perf_counter()
            escaped = None
            try:
                res = _run_exercise(ex, fn, 0)
            except BaseException as exc:  # noqa: BLE001 - a grader bug; named briefly below: pytest takes minutes
                escaped = f"{type(exc).__name__}: {str(exc)[:200]}"   # to format a recursion's chained traceback
            if escaped:
                pytest.fail(f"{fn.__name__}: {escaped} escaped the check instead of a timeout result", pytrace=False)
            # stopped, not hung: well within 10 s of the 0.5 s limit even on a loaded CI machine (about 0.75 s alone)
            assert res.status == "timeout" and time.perf_counter() - start < 10.0, (fn.__name__, res.message)
            assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and sys.gettrace() is trace_before
            assert sys.getrecursionlimit() == limit_before
        # the learner's functions are their own again after the check (their bodies were swapped while it ran)
        assert [f.__code__ for f in (swallow_recursive, swallow_mutual_a, swallow_mutual_b)] == codes_before
        time.sleep(0.2)                                     # no late timeout arrives in the notebook afterwards
        from manifold_course.geometry import volumes
        assert _run_exercise(get_exercise("high_dim_geometry.ball_cube_volume_ratio"), volumes.ball_cube_volume_ratio, 0).passed


def test_an_exercise_is_found_without_importing_every_chapter():
    # a notebook's check() imports only its own chapter's check module (a fresh interpreter, so nothing is cached)
    import subprocess

    code = ("import sys; from manifold_course.grading.registry import get_exercise; "
            "ex = get_exercise('high_dim_geometry.ball_cube_volume_ratio'); "
            "print(ex.id, sorted(m for m in sys.modules if m.startswith('manifold_course.checks.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["high_dim_geometry.ball_cube_volume_ratio", "['manifold_course.checks.high_dim_geometry']"]
    from manifold_course.grading.registry import get_exercise

    with pytest.raises(KeyError, match="did you mean"):
        get_exercise("high_dim_geometry.no_such_exercise")
    with pytest.raises(KeyError, match="no exercise"):
        get_exercise("../etc.passwd")


def test_learner_code_is_told_from_the_course_and_the_libraries():
    """What counts as learner code (where a timeout may be raised) depends on folders, not on where Python lives."""
    import json
    import os

    import numpy as np

    from manifold_course.grading import sandbox

    assert sandbox._is_learner_file(__file__) and sandbox._is_learner_file("<ipython-input-3-abc>")
    assert not sandbox._is_learner_file(sandbox.__file__) and not sandbox._is_learner_file(json.__file__)
    assert not sandbox._is_learner_file(np.__file__) and not sandbox._is_learner_file(torch.__file__)
    assert all(d.endswith(os.sep) and d != os.sep for d in sandbox._LIBRARY_PREFIXES)


def test_an_exception_that_cannot_be_described_is_named_by_its_type(monkeypatch):
    """describe_exception never lets a second exception out: if describing the learner's exception fails (near the
    recursion limit, or a timeout repeated into the handler), the message is the exception's type alone."""
    from manifold_course.grading import sandbox

    def broken(*_args, **_kwargs):
        raise RecursionError("maximum recursion depth exceeded while describing")

    monkeypatch.setattr(sandbox, "safe_text", broken)
    err = sandbox.describe_exception(ValueError("the learner's message"))
    assert err.kind == "error" and err.message == "your code raised ValueError"

"""Classroom grading judges an answer from the plain data a grading child recorded (manifold_course.grading.isolated):
for every exercise, recording a correct answer (or its adapter's observations of it) and replaying it through the
exercise's own comparison, judge and properties must pass, and a wrong recorded answer must fail."""

import pytest
import torch

from manifold_course.grading import wire
from manifold_course.grading.check import _run_exercise, preserved_global_state, seed_globals
from manifold_course.grading.exercise import case_rng
from manifold_course.grading.isolated import Replayer
from manifold_course.grading.registry import all_exercises
from manifold_course.grading.sandbox import GuardedFunction

REPLAYED = all_exercises()


def _record(ex, good, cases):
    calls = []

    def recorder(*args, **kwargs):
        out = good(*args, **kwargs)
        calls.append([wire.call_key(args, kwargs), {"value": wire.encode(out)}])
        return out

    for case in cases:
        recorder(*case.args, **case.kwargs)
    for prop in ex.properties:
        seed_globals()
        prop(GuardedFunction(recorder))
    return calls


@pytest.mark.parametrize("ex_id", sorted(REPLAYED))
def test_a_recorded_correct_answer_passes_on_replay(ex_id):
    ex = REPLAYED[ex_id]
    good = ex.reference or ex.known_good
    if ex.adapter is not None:              # the child records the observations of an adapted answer
        good = ex.adapter(good)
    with preserved_global_state():
        cases = list(ex.cases(case_rng(ex.id, 11)))
        calls = _record(ex, good, cases)
        res = _run_exercise(ex, Replayer(calls, "f"), None, cases=cases, adapted=True)
    assert res.passed, res.message


def test_a_recorded_wrong_answer_fails_and_an_unknown_call_is_not_answered():
    ex = REPLAYED["high_dim_geometry.ball_cube_volume_ratio"]
    cases = list(ex.cases(case_rng(ex.id, 11)))
    calls = [[wire.call_key(c.args, dict(c.kwargs)), {"value": 0.5}] for c in cases]
    assert _run_exercise(ex, Replayer(calls, "f"), None, cases=cases).status == "failed"
    assert _run_exercise(ex, Replayer([], "f"), None, cases=cases).status == "error"


def test_only_plain_data_crosses_the_wall():
    class Sub(torch.Tensor):
        pass

    assert "unplain" in wire.encode(torch.zeros(2).as_subclass(Sub))
    assert "unplain" in wire.encode(object())
    t = wire.decode(wire.encode((torch.arange(6.0).reshape(2, 3), {"k": [1, 2.5, None]})))
    assert type(t[0]) is torch.Tensor and torch.equal(t[0], torch.arange(6.0).reshape(2, 3)) and t[1] == {"k": [1, 2.5, None]}
    assert wire.decode(wire.encode(torch.tensor(1.5, dtype=torch.bfloat16))).dtype == torch.bfloat16


def _wrong_adapted():
    from test_exercises_can_fail import WRONG         # tests/wrong_<chapter>.py, loaded once there

    return [(i, k, fn) for i, fns in sorted(WRONG.items()) if i in REPLAYED and REPLAYED[i].adapter is not None
            for k, fn in enumerate(fns)]


@pytest.mark.parametrize("ex_id,k,wrong", _wrong_adapted(), ids=lambda v: v if isinstance(v, str) else "")
def test_the_recorded_observations_of_a_wrong_answer_fail_on_replay(ex_id, k, wrong):
    """An adapted exercise (a class, or a function whose gradient matters) is judged in the grader from what its
    adapter observed in the child: the observations of every known wrong implementation must fail there too."""
    ex = REPLAYED[ex_id]
    calls = []
    observed = ex.adapter(wrong)

    def recorder(*args, **kwargs):
        key = wire.call_key(args, kwargs)
        try:
            out = observed(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - recorded as the child would
            calls.append([key, {"kind": "error", "message": f"your code raised {type(exc).__name__}"}])
            raise
        calls.append([key, {"value": wire.encode(out)}])
        return out

    with preserved_global_state():
        cases = list(ex.cases(case_rng(ex.id, 11)))
        for case in cases:
            try:
                recorder(*case.args, **case.kwargs)
            except Exception:  # noqa: BLE001
                break
        res = _run_exercise(ex, Replayer(calls, "f"), None, cases=cases, adapted=True)
    assert not res.passed, f"{ex_id}: wrong implementation #{k} ({getattr(wrong, '__name__', wrong)}) passed on replay"


def test_adapted_exercises_are_judged_by_the_grader():
    adapted = sorted(i for i, e in all_exercises().items() if e.adapter is not None)
    assert len(adapted) >= 18
    assert _wrong_adapted(), "no wrong implementation of an adapted exercise to replay"


@pytest.mark.parametrize("ex_id", sorted(REPLAYED))
def test_cases_depend_only_on_the_grading_seed(ex_id):
    """The grader and the grading child draw the cases separately, from the same seed but not the same global random
    state: a case drawn from torch's or NumPy's global generator would not match (the answer would go unmatched)."""
    import numpy as np

    ex = REPLAYED[ex_id]
    keys = []
    for global_seed in (1, 2):
        with preserved_global_state():
            torch.manual_seed(global_seed)
            np.random.seed(global_seed)
            keys.append([wire.call_key(c.args, dict(c.kwargs)) for c in ex.cases(case_rng(ex.id, 11))])
    assert keys[0] == keys[1], f"{ex_id}: a case depends on the global random state; draw it from the rng argument"

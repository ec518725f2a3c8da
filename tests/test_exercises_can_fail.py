# Every registered exercise accepts its reference, reports a stub as "not attempted", and rejects each
# wrong implementation listed in tests/wrong_<chapter>.py (WRONG = {exercise_id: [functions]}).
import importlib
from pathlib import Path

import pytest

from manifold_course.grading import run_exercise
from manifold_course.grading.registry import all_exercises

HERE = Path(__file__).resolve().parent
EXERCISES = all_exercises()
WRONG: dict = {}
for _f in sorted(HERE.glob("wrong_*.py")):
    WRONG.update(importlib.import_module(_f.stem).WRONG)

WRONG_CASES = [(ex_id, i, fn) for ex_id, fns in sorted(WRONG.items()) for i, fn in enumerate(fns)]


def _stub(*args, **kwargs):
    raise NotImplementedError


def test_there_are_exercises():
    assert len(EXERCISES) >= 15


def test_every_check_module_imports_in_the_test_environment():
    from manifold_course.grading.registry import unavailable_chapters

    assert unavailable_chapters() == {}, "a check module failed to import, so its exercises would go untested"


@pytest.mark.parametrize("ex_id", sorted(EXERCISES))
def test_reference_passes(ex_id):
    ex = EXERCISES[ex_id]
    good = ex.reference or ex.known_good
    assert good is not None, f"{ex_id} is judged without a reference: give it known_good=<a correct implementation>"
    res = run_exercise(ex, good)
    assert res.passed, res.line()
    # Wall time: well under 1 s alone, but CI runs two workers (and kernels) on two cores.
    assert res.seconds < 5.0, f"{ex_id} took {res.seconds:.2f} s to check"


@pytest.mark.parametrize("ex_id", sorted(EXERCISES))
def test_stub_is_not_attempted(ex_id):
    assert run_exercise(EXERCISES[ex_id], _stub).status == "not_attempted"


@pytest.mark.parametrize("ex_id", sorted(EXERCISES))
def test_every_exercise_has_a_wrong_implementation(ex_id):
    assert WRONG.get(ex_id), f"add a wrong implementation of {ex_id} to tests/wrong_{ex_id.split('.')[0]}.py"


@pytest.mark.parametrize("ex_id, i, fn", WRONG_CASES, ids=[f"{e}-{i}" for e, i, _ in WRONG_CASES])
def test_wrong_implementation_is_rejected(ex_id, i, fn):
    assert ex_id in EXERCISES, f"tests list wrong answers for an unknown exercise {ex_id}"
    res = run_exercise(EXERCISES[ex_id], fn)
    assert not res.passed, f"wrong implementation #{i} ({fn.__name__}) of {ex_id} passed its check"
    assert res.message, "a rejection must say what is wrong"

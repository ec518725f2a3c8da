from pathlib import Path

import pytest

from manifold_course.cli import main
from manifold_course.grading.notebook import expected_exercises, grade_notebook, read_notebook
from manifold_course.grading.registry import all_exercises, check_modules

WITH_REFERENCE = [i for i, e in all_exercises().items() if e.reference is not None]


def _write(tmp_path: Path, cells: list[str]) -> Path:
    path = tmp_path / "submission.py"
    path.write_text("".join(f"# %%\n{c}\n\n" for c in cells))
    return path


@pytest.fixture(scope="module")
def ids():
    assert len(WITH_REFERENCE) >= 3
    return WITH_REFERENCE[:3]


def test_expected_exercises_are_read_from_the_source(tmp_path, ids):
    path = _write(tmp_path, [f'check("{ids[1]}", f)', f"check('{ids[0]}', g)  # again: check(\"{ids[1]}\", f)"])
    assert expected_exercises(read_notebook(path)) == [ids[1], ids[0]]


def _solution_cells(ex_id: str) -> list[str]:
    """A correct answer to ``ex_id`` written as a learner would: the reference's source in the notebook."""
    import inspect
    import textwrap

    ex = all_exercises()[ex_id]
    return ["import math\nimport numpy as np\nimport torch\nfrom manifold_course.grading import check",
            textwrap.dedent(inspect.getsource(ex.reference)), f'check("{ex_id}", {ex.reference.__name__})']


def test_grading_never_touches_the_learners_progress(tmp_path, monkeypatch):
    store = tmp_path / "mine.json"
    monkeypatch.setenv("MANIFOLD_COURSE_PROGRESS", str(store))
    path = _write(tmp_path, _solution_cells("high_dim_geometry.ball_cube_volume_ratio"))
    rep = grade_notebook(path, timeout=60, assignment="high_dim_geometry")
    assert rep.completed and rep.score == 1.0 and rep.total == len(check_modules()["high_dim_geometry"].EXERCISES)
    assert not store.exists()


def test_time_limit_is_for_the_whole_notebook_not_per_cell(tmp_path):
    cells = _solution_cells("high_dim_geometry.ball_cube_volume_ratio")
    path = _write(tmp_path, [cells[0], "import time", "time.sleep(2)", "time.sleep(2)", "time.sleep(2)", *cells[1:]])
    rep = grade_notebook(path, timeout=5, assignment="high_dim_geometry")
    assert not rep.completed and "time" in rep.problem
    # the cells after the limit did not run, so the function they define is missing: scored 0, not a crash
    assert rep.exercises[0].status == "not_attempted"


def test_unreadable_notebook_is_reported(tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{ not a notebook")
    rep = grade_notebook(bad)
    assert not rep.completed and "could not read" in rep.problem


def test_grade_rejects_a_missing_file(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().out

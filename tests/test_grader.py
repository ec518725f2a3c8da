import json
from pathlib import Path

import pytest

from manifold_course.cli import main
from manifold_course.grading.notebook import expected_exercises, grade_notebook, read_notebook
from manifold_course.grading.registry import all_exercises

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


def test_crashing_notebook_still_scores_what_it_reached(tmp_path, ids):
    head = ("from manifold_course.grading import check\n"
            "from manifold_course.grading.registry import get_exercise")
    path = _write(tmp_path, [
        head,
        f'check("{ids[0]}", get_exercise("{ids[0]}").reference)',
        'raise RuntimeError("boom")',
        f'check("{ids[1]}", lambda *a, **k: None)',
        "import os; os._exit(1)",
        f'check("{ids[2]}", get_exercise("{ids[2]}").reference)',
    ])
    report_file = tmp_path / "report.json"
    assert main(["grade", str(path), "--report", str(report_file), "--timeout", "60",
                 "--feedback", str(tmp_path / "fb"), "--seed", "7"]) == 0
    [feedback] = (tmp_path / "fb").iterdir()
    assert feedback.name.endswith("submission.feedback.txt") and "score: 1/3" in feedback.read_text()
    [rep] = json.loads(report_file.read_text())
    rows = {r["id"]: r for r in rep["exercises"]}
    assert rows[ids[0]]["passed"] and rows[ids[0]]["score"] == 1.0
    assert rows[ids[1]]["status"] in ("failed", "error") and rows[ids[1]]["score"] == 0.0
    assert rows[ids[2]]["status"] == "not_reached" and "kernel died" in rows[ids[2]]["message"]
    assert rep["completed"] is False and rep["score"] == 1.0 and rep["total"] == 3


def test_infinite_loop_in_a_cell_is_stopped_by_the_notebook_time_limit(tmp_path, ids):
    path = _write(tmp_path, [
        "from manifold_course.grading import check\nfrom manifold_course.grading.registry import get_exercise",
        f'check("{ids[0]}", get_exercise("{ids[0]}").reference)',
        "while True:\n    pass",
        f'check("{ids[1]}", get_exercise("{ids[1]}").reference)',
    ])
    rep = grade_notebook(path, timeout=10)     # the imports in the first cell take seconds on a busy 2-core machine
    assert not rep.completed and "longer than its 10 s limit" in rep.problem
    assert [r.status for r in rep.exercises] == ["passed", "not_reached"]


def test_grading_never_touches_the_learners_progress(tmp_path, ids, monkeypatch):
    store = tmp_path / "mine.json"
    monkeypatch.setenv("MANIFOLD_COURSE_PROGRESS", str(store))
    path = _write(tmp_path, ["from manifold_course.grading import check\nfrom manifold_course.grading.registry import get_exercise",
                             f'check("{ids[0]}", get_exercise("{ids[0]}").reference)'])
    rep = grade_notebook(path, timeout=60)
    assert rep.completed and rep.score == 1.0
    assert not store.exists()


def test_time_limit_is_for_the_whole_notebook_not_per_cell(tmp_path, ids):
    path = _write(tmp_path, ["import time", "time.sleep(2)", "time.sleep(2)", "time.sleep(2)",
                             f'from manifold_course.grading import check\ncheck("{ids[0]}", None)'])
    rep = grade_notebook(path, timeout=5)
    assert not rep.completed and "5 s" in rep.problem
    assert [r.status for r in rep.exercises] == ["not_reached"]


def test_unreadable_notebook_is_reported(tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{ not a notebook")
    rep = grade_notebook(bad)
    assert not rep.completed and "could not read" in rep.problem


def test_grade_rejects_a_missing_file(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "nope.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().out

# Every exercises/ notebook (the stubs a learner starts from) runs to the end in a fresh kernel, and every
# exercise of its chapter reports "not attempted" (never a crash, never a pass).
from pathlib import Path

from notebook_classes import add_notebook_classes, notebook_class

from manifold_course.grading.notebook import grade_notebook
from manifold_course.grading.registry import all_exercises, check_modules

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "exercises").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT / "exercises"))


def test_every_chapter_with_checks_has_an_exercises_notebook():
    for key, mod in check_modules().items():
        assert (ROOT / "exercises" / f"{mod.CHAPTER}.ipynb").exists(), f"checks/{key}.py grades a missing notebook"


def _exercise_notebook_runs_and_reports_not_attempted(nb: Path) -> None:
    rep = grade_notebook(nb, timeout=120)
    assert rep.completed and not rep.problem, rep.problem
    statuses = {r.id: r.status for r in rep.exercises}
    assert statuses and set(statuses.values()) == {"not_attempted"}, statuses
    chapter = _rel(nb).removesuffix(".ipynb")
    declared = {i for i, e in all_exercises().items() if check_modules()[e.chapter].CHAPTER == chapter}
    assert set(statuses) == declared, f"exercises declared but not in the notebook: {declared - set(statuses)}"


def test_there_are_exercise_notebooks():
    assert len(NOTEBOOKS) >= 10


add_notebook_classes(globals(), [
    notebook_class("TestExercises_", nb.relative_to(ROOT / "exercises"), nb,
                   "test_exercise_notebook_runs_and_reports_not_attempted",
                   lambda _record_property, nb=nb: _exercise_notebook_runs_and_reports_not_attempted(nb))
    for nb in NOTEBOOKS])

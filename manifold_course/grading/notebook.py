"""Grade whole notebooks headlessly: ``manifold-course grade NOTEBOOK...``.

The scores are computed by the grader, never inside the learner's process: see :mod:`.isolated`. Every
exercise the chapter declares gets a row (0 when the notebook has no function for it, or never got there,
with the reason); extra ``check`` calls in the notebook are ignored.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_CHECK_CALL = re.compile(r"""\bcheck\(\s*["']([A-Za-z_][\w]*\.[\w]+)["']""")


@dataclass
class ExerciseRow:
    id: str
    passed: bool
    score: float
    status: str
    message: str
    seconds: float
    integrity: list[str] = field(default_factory=list)


@dataclass
class NotebookReport:
    path: str
    exercises: list[ExerciseRow] = field(default_factory=list)
    completed: bool = True
    problem: str = ""
    seconds: float = 0.0
    assignment: str = ""
    isolation: str = ""
    integrity: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(r.score for r in self.exercises)

    @property
    def total(self) -> int:
        return len(self.exercises)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(score=self.score, total=self.total)
        return d


def read_notebook(path: Path):
    """A notebook from an ``.ipynb`` or a py:percent ``.py`` file."""
    import jupytext
    import nbformat

    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    return jupytext.read(path)


def expected_exercises(nb) -> list[str]:
    """Exercise ids in the order the notebook's code cells call ``check``."""
    ids: list[str] = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            for m in _CHECK_CALL.finditer(cell.source):
                if m.group(1) not in ids:
                    ids.append(m.group(1))
    return ids


def grade_notebook(path: str | os.PathLike, timeout: float = 600, seed: int | None = None,
                   assignment: str | None = None, hide: list[Path] | None = None,
                   exercise_timeout: float | None = None) -> NotebookReport:
    """Grade ``path`` outside the learner's reach (see :mod:`.isolated`): every exercise of its chapter is scored.

    ``timeout`` is the budget in seconds for the notebook's cells; each exercise has its own limit besides.
    ``seed`` (the instructor's) draws hidden cases: feedback then hides the expected values.
    ``hide`` lists paths the grading sandbox must not see (the other submissions, the report's folder).
    """
    from manifold_course.grading.isolated import grade_submission

    return grade_submission(Path(path), seed=seed, timeout=timeout, assignment=assignment, hide=hide,
                            exercise_timeout=exercise_timeout)


def format_table(reports: list[NotebookReport], names: list[str] | None = None) -> str:
    """A plain-text score table: one block per submission, one row per exercise, no cross-submission total.

    ``names`` replaces each report's path in the heading (feedback files show the submission's own name only)."""
    lines: list[str] = []
    for k, rep in enumerate(reports):
        name = names[k] if names else rep.path
        lines.append(f"{name}  ({rep.seconds:.1f} s){'' if rep.completed else '  INCOMPLETE'}")
        if rep.problem:
            lines.append(f"  note: {rep.problem}")
        for f in rep.integrity:
            lines.append(f"  integrity: {f}")
        width = max([len(r.id) for r in rep.exercises] + [10])
        for r in rep.exercises:
            mark = "PASS" if r.passed else ("TODO" if r.status in ("not_attempted", "not_reached") else "FAIL")
            msg = "" if r.passed else f"  {r.message[:160]}"
            lines.append(f"  {mark}  {r.id:<{width}}  {r.score:.0f}/1{msg}")
            for f in r.integrity:
                lines.append(f"        integrity: {f}")
        lines.append(f"  score: {rep.score:g}/{rep.total}")
    if len(reports) > 1:
        lines.append(f"{len(reports)} submissions; mean score {sum(r.score for r in reports) / len(reports):.2f}")
    return "\n".join(lines)

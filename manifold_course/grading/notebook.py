"""Grade whole notebooks headlessly: ``manifold-course grade NOTEBOOK...``.

Each notebook runs in a fresh kernel (nbclient) with a time limit. Every ``check(...)`` call in
the kernel appends its result to a report file (``$MANIFOLD_COURSE_REPORT``); the exercise ids a
notebook *should* reach are read from its source, so an exercise the run never got to (the notebook
crashed, or ran out of time) still gets a row, scored 0, with the reason.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
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


@dataclass
class NotebookReport:
    path: str
    exercises: list[ExerciseRow] = field(default_factory=list)
    completed: bool = True
    problem: str = ""
    seconds: float = 0.0

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


def _first_error(nb) -> str:
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i + 1} raised {out.get('ename')}: {str(out.get('evalue', ''))[:200]}"
    return ""


class NotebookTimeout(Exception):
    pass


def _deadline_client_class():
    import nbclient

    class DeadlineClient(nbclient.NotebookClient):
        """A NotebookClient with one time budget for the whole notebook (from its first cell), not one per cell."""

        budget: float = float("inf")
        _deadline: float | None = None

        async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
            if self._deadline is None:
                self._deadline = time.monotonic() + self.budget
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise NotebookTimeout()
            self.timeout = max(1, int(remaining))  # nbclient's per-cell limit: whatever is left
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)

    return DeadlineClient


def grade_notebook(path: str | os.PathLike, timeout: float = 600, seed: int | None = None,
                   kernel_name: str | None = None) -> NotebookReport:
    """Execute ``path`` in a fresh kernel and score every exercise it calls ``check`` on.

    ``timeout`` is the budget in seconds for the whole notebook (kernel start excluded).
    """
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(path)
    start = time.perf_counter()
    report = NotebookReport(str(path))
    try:
        nb = read_notebook(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable submission is a result, not a crash
        report.completed = False
        report.problem = f"could not read the notebook: {type(exc).__name__}: {exc}"
        return report
    ids = expected_exercises(nb)
    with tempfile.TemporaryDirectory(prefix="mc-grade-") as tmp:
        results_file = Path(tmp) / "results.jsonl"
        env = dict(os.environ)
        env.update(
            MANIFOLD_COURSE_REPORT=str(results_file),
            MANIFOLD_COURSE_PROGRESS=str(Path(tmp) / "progress.json"),  # grading never touches a learner's store
            MANIFOLD_COURSE_STRICT="0",
            MPLBACKEND="Agg",
        )
        if seed is not None:
            env["MANIFOLD_COURSE_SEED"] = str(seed)
        client = _deadline_client_class()(
            nb,
            timeout=int(timeout),
            allow_errors=True,  # keep going: later exercises still get a score
            shutdown_kernel="immediate",  # results are in the report file already: no graceful 2-3 s wait
            kernel_name=kernel_name or nb.metadata.get("kernelspec", {}).get("name", "python3"),
            resources={"metadata": {"path": str(path.parent.resolve())}},
        )
        client.budget = timeout
        try:
            client.execute(env=env)
        except (CellTimeoutError, NotebookTimeout):
            report.completed = False
            report.problem = f"stopped: the notebook ran longer than its {timeout:g} s limit"
        except DeadKernelError:
            report.completed = False
            report.problem = "stopped: the kernel died (os._exit, a crash, or out of memory)"
        except Exception as exc:  # noqa: BLE001
            report.completed = False
            report.problem = f"stopped: {type(exc).__name__}: {str(exc)[:300]}"
        if report.completed:
            report.problem = _first_error(nb)
        results: dict[str, dict[str, Any]] = {}
        if results_file.exists():
            for line in results_file.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                results[r["exercise_id"]] = r  # the last call of an exercise counts
    for ex_id in ids + [i for i in results if i not in ids]:
        r = results.get(ex_id)
        if r is None:
            why = report.problem or "the notebook never ran this check"
            report.exercises.append(ExerciseRow(ex_id, False, 0.0, "not_reached", f"not reached: {why}", 0.0))
        else:
            report.exercises.append(ExerciseRow(ex_id, bool(r["passed"]), float(r["score"]), r["status"],
                                                r["message"], float(r["seconds"])))
    report.seconds = time.perf_counter() - start
    return report


def format_table(reports: list[NotebookReport]) -> str:
    """A plain-text score table, one row per exercise and a total per notebook."""
    lines: list[str] = []
    for rep in reports:
        lines.append(f"{rep.path}  ({rep.seconds:.1f} s){'' if rep.completed else '  INCOMPLETE'}")
        if rep.problem:
            lines.append(f"  note: {rep.problem}")
        width = max([len(r.id) for r in rep.exercises] + [10])
        for r in rep.exercises:
            mark = "PASS" if r.passed else ("TODO" if r.status in ("not_attempted", "not_reached") else "FAIL")
            msg = "" if r.passed else f"  {r.message[:160]}"
            lines.append(f"  {mark}  {r.id:<{width}}  {r.score:.0f}/1{msg}")
        lines.append(f"  score: {rep.score:g}/{rep.total}")
    if len(reports) > 1:
        lines.append(f"total: {sum(r.score for r in reports):g}/{sum(r.total for r in reports)}")
    return "\n".join(lines)

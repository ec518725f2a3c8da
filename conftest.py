"""Test-suite setup shared by the unit tests and the notebook runs (nbval).

- Solution and chapter notebooks run under strict grading: a failing ``check`` raises.
- Nothing touches the learner's own progress store.
- At the end, the slowest notebooks are listed (cells summed per notebook, kernel start included).
"""

import os
import tempfile
from collections import defaultdict

NOTEBOOK_BUDGET_S = 60.0


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["MANIFOLD_COURSE_STRICT"] = "1"
    os.environ["MANIFOLD_COURSE_PROGRESS"] = os.path.join(tempfile.mkdtemp(prefix="mc-tests-"), "progress.json")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # Two notebooks run at once on two cores: one thread each, and no OpenMP spin-waiting,
    # or tiny tensor operations slow down 10-100x (seed_everything reads MANIFOLD_COURSE_THREADS).
    os.environ.setdefault("MANIFOLD_COURSE_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _notebook_of(report):
    node = report.nodeid
    if ".ipynb::" in node:
        return node.split("::")[0]
    if "test_exercise_notebooks.py::" in node and "[" in node:
        return "exercises/" + node.split("[", 1)[1].rstrip("]")
    if "test_moved_seed.py::TestMovedSeed_" in node:
        return "chapters/" + node.split("::")[1][len("TestMovedSeed_"):] + " (moved seed)"
    return None


def pytest_terminal_summary(terminalreporter):
    totals = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if not hasattr(rep, "nodeid") or not hasattr(rep, "duration"):
                continue
            nb = _notebook_of(rep)
            if nb:
                totals[nb] += rep.duration
    if not totals:
        return
    tr = terminalreporter
    tr.section("slowest notebooks")
    for nb, secs in sorted(totals.items(), key=lambda kv: -kv[1])[:12]:
        flag = "   OVER BUDGET" if secs > NOTEBOOK_BUDGET_S else ""
        tr.write_line(f"{secs:7.1f} s  {nb}{flag}")
    tr.write_line(f"{sum(totals.values()):7.1f} s  in {len(totals)} notebooks (summed; they run in parallel)")

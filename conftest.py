"""Test-suite setup shared by the unit tests and the notebook runs (nbval).

- Solution and chapter notebooks run under strict grading: a failing ``check`` raises.
- Nothing touches the learner's own progress store.
- At the end, the slowest notebooks are listed (cells summed per notebook, kernel start included).
"""

import os
import shutil
import tempfile
from collections import defaultdict

NOTEBOOK_BUDGET_S = 60.0


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["MANIFOLD_COURSE_STRICT"] = "1"
    config._mc_progress_dir = tempfile.mkdtemp(prefix="mc-tests-")                  # removed at the end of the run
    os.environ["MANIFOLD_COURSE_PROGRESS"] = os.path.join(config._mc_progress_dir, "progress.json")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # Two notebooks run at once on two cores: one thread each, and no OpenMP spin-waiting,
    # or tiny tensor operations slow down 10-100x (seed_everything reads MANIFOLD_COURSE_THREADS).
    os.environ.setdefault("MANIFOLD_COURSE_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_unconfigure(config):
    if getattr(config, "_mc_progress_dir", None):
        shutil.rmtree(config._mc_progress_dir, ignore_errors=True)


def _scope(nodeid: str) -> str:
    """The unit pytest-xdist's ``--dist loadscope`` sends to one worker: a test class, or a module's functions."""
    return nodeid.rsplit("::", 1)[0]


def _notebook_path(item):
    """The notebook a test item executes (an nbval cell, a moved-seed chapter, an exercises notebook), or None."""
    if str(item.path).endswith(".ipynb"):
        return item.path
    return getattr(getattr(item, "cls", None), "notebook", None)


def pytest_collection_modifyitems(session, config, items):
    """Longest work first, so that no worker is left with a long notebook while the others idle at the end.

    ``./course test`` runs with ``--dist loadscope --no-loadscope-reorder``: the workers take the scopes in this
    order. Notebook runs (most of the suite's time) go first, the largest notebooks (file size, a fair proxy for
    their run time) first among them; the unit tests, many and short, fill the gaps after. A scope keeps its
    items' order (nbval runs a notebook's cells in order on one kernel).
    """
    scopes: dict[str, list] = {}
    for item in items:
        scopes.setdefault(_scope(item.nodeid), []).append(item)

    def size(scope_items) -> int:
        nb = _notebook_path(scope_items[0])
        return nb.stat().st_size if nb is not None else 0

    order = sorted(scopes.values(), key=lambda its: (-size(its),))     # stable: the unit tests keep their order
    items[:] = [item for its in order for item in its]


def _notebook_of(report):
    node = report.nodeid
    if ".ipynb::" in node:
        return node.split("::")[0]
    if "test_exercise_notebooks.py::TestExercises_" in node:
        return "exercises/" + node.split("::")[1][len("TestExercises_"):]
    if "test_moved_seed.py::TestMovedSeed_" in node:
        return "chapters/" + node.split("::")[1][len("TestMovedSeed_"):] + " (moved seed)"
    return None


def pytest_terminal_summary(terminalreporter):
    totals = defaultdict(float)
    cells, waits = [], []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            if not hasattr(rep, "nodeid") or not hasattr(rep, "duration"):
                continue
            cells += [tuple(c) for name, value in getattr(rep, "user_properties", ()) if name == "slowest_cells"
                      for c in value]
            waits += [tuple(value) for name, value in getattr(rep, "user_properties", ()) if name == "long_wait"]
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
    if cells:
        tr.section("slowest chapter cells (moved-seed run)")
        for nb, index, first_line, secs in sorted(set(cells), key=lambda c: -c[3])[:12]:   # call + teardown report
            tr.write_line(f"{secs:7.1f} s  {nb} code cell {index}: {first_line}")
    for nb, outside, what, secs in sorted(set(waits)):
        tr.write_line(f"note: {nb} (moved-seed run) spent {outside:.0f} s outside its cells; the longest stretch: "
                      f"{secs:.0f} s {what}")

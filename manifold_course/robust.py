"""The robustness run: every chapter and solution notebook under moved seeds and another thread count.

A claim a chapter asserts must be a claim about the phenomenon, not about one random draw, and must hold on
any CPU (the same seed trains a different model on another processor). So this run executes every notebook
under each of several *configurations* (``MANIFOLD_COURSE_SEED_OFFSET`` = 1, 2, 3, which moves every seed the
course draws, see :mod:`manifold_course.seeding`; ``MANIFOLD_COURSE_THREADS`` = 2, which changes the order
of floating-point reductions; and the matrix kernels limited to AVX2, as on a CPU without AVX-512, see
:func:`isa_env`), in parallel, each in a fresh kernel, and lists every cell that fails::

    ./course test --robust                      # all of them (about 6x the notebooks' time, over the cores)
    python -m manifold_course.robust --offsets 5 --fresh 0 --threads "" chapters/v0_roots   # one offset, one folder
    python -m manifold_course.robust --sweep 0-99 chapters/v6_systems   # screen 100 offsets, one process per notebook
    python -m manifold_course.robust --sweep 0-9 --margins 30   # and rank the thinnest claims by slack over spread

Every run also draws one *fresh* offset at random (``--fresh``; printed, so that a failure can be rerun with
``--offsets N``): offsets that every run repeats become a training set, and a claim adjusted until they pass can still
be a fact about those draws. Two offsets no run had used (5 and 6) once failed seven asserts in five chapters that
offsets 1 to 4 passed.

It exits 1 if any cell failed. Cells keep running after a failure (later cells usually do not depend on an
assert), so one run shows every fragile claim of a notebook; the first failure of each notebook is marked.
"""

from __future__ import annotations

import argparse
import math
import operator
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDERS = ("chapters", "solutions")


@dataclass(frozen=True)
class Config:
    """One way to run every notebook: a name and the environment variables it sets."""

    name: str
    env: tuple[tuple[str, str], ...]


@dataclass
class CellFailure:
    index: int              # code-cell number, 1-based, as a reader counts the notebook's code cells
    first_line: str         # the cell's first non-empty source line
    error: str              # "AssertionError: ..." (the last line of the traceback)
    line: str = ""          # "line 7: assert gap > 0.1": the statement that raised (a cell can hold many asserts)


@dataclass
class CellTime:
    index: int              # code-cell number, 1-based
    first_line: str
    seconds: float          # from the kernel's "execute_input" to its reply (nbclient records both)


def _cell_seconds(cell) -> float | None:
    from datetime import datetime

    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))   # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


@dataclass
class NotebookRun:
    notebook: str
    config: str
    seconds: float
    failures: list[CellFailure] = field(default_factory=list)
    crashed: str = ""       # the kernel died or the notebook could not be run at all
    cells: list[CellTime] = field(default_factory=list)   # every code cell that ran, with its time
    # Where the time outside the cells went, from this process's clock: (what, seconds), in order (see _waits)
    waits: list[tuple[str, float]] = field(default_factory=list)

    def slowest(self, n: int = 3) -> list[CellTime]:
        return sorted(self.cells, key=lambda c: -c.seconds)[:n]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.crashed

    @property
    def outside_cells(self) -> float:
        """Seconds not spent in a cell: starting and stopping the kernel, and any wait between cells."""
        return max(self.seconds - sum(c.seconds for c in self.cells), 0.0)

    def longest_wait(self) -> tuple[str, float]:
        """The longest stretch outside the cells, and what the run was doing then (("", 0.0) if none recorded)."""
        return max(self.waits, key=lambda w: w[1], default=("", 0.0))


def _waits(marks: list[tuple[str, float, int]], kernel_cells: dict[int, float], end: float) -> list[tuple[str, float]]:
    """Split a run's time outside its cells into named stretches.

    ``marks`` are (event, time, code-cell number) triples in order, from this process's clock: ("start", t, 0),
    ("kernel ready", t, 0), then ("send", t, k) and ("done", t, k) around code cell k (``kernel_cells`` maps k to the
    seconds the kernel spent in it); ``end`` is when the kernel's process group was gone. A cell's own wait is the
    time from sending its code to having its reply and every output, less the kernel's time in it: the kernel
    picking the code up late, or an output arriving late."""
    waits: list[tuple[str, float]] = []
    for i, ((before, t0, k0), (event, t1, k)) in enumerate(zip(marks, marks[1:] + [("end", end, 0)])):
        if event == "kernel ready" or i == 0:
            label = "starting the kernel"
        elif event == "send":
            label = "the kernel's first reply" if before == "kernel ready" else f"before code cell {k}"
        elif event == "done":
            label, t1 = f"code cell {k}, less its run", t1 - kernel_cells.get(k, 0.0)
        elif before == "send":                  # a cell that never replied (a timeout, a dead kernel), then the end
            label = f"code cell {k0}, unfinished, and shutting the kernel down"
        else:
            label = "shutting the kernel down"
        waits.append((label, max(t1 - t0, 0.0)))
    return waits


LONG_WAIT_S = 30.0          # a run normally spends 1-2 s outside its cells; longer is named in the log and CI's summary

ISAS = ("avx2",)


def isa_env(isa: str) -> tuple[tuple[str, str], ...]:
    """Environment that limits PyTorch's own kernels (ATen), MKL and oneDNN to one x86 instruction set.

    The same seed trains a different model where the matrix kernels sum in another order: on a CPU without
    AVX-512 (most AMD machines, CI's included) MKL and ATen take their AVX2 paths. Limiting them to AVX2 on an
    AVX-512 machine reproduces that round-off (it caught two chapter claims that failed only there). On a CPU
    without the instruction set it changes nothing.
    """
    if isa not in ISAS:
        raise ValueError(f"unknown instruction set {isa!r}; use one of {ISAS}")
    return (("ATEN_CPU_CAPABILITY", isa), ("MKL_ENABLE_INSTRUCTIONS", isa.upper()),
            ("ONEDNN_MAX_CPU_ISA", isa.upper()))


def configs(offsets: list[int], threads: list[int], isas: list[str] = ()) -> list[Config]:
    out = [Config(f"seed offset {k}", (("MANIFOLD_COURSE_SEED_OFFSET", str(k)),)) for k in offsets]
    out += [Config(f"{t} threads", (("MANIFOLD_COURSE_THREADS", str(t)), ("OMP_NUM_THREADS", str(t))))
            for t in threads]
    out += [Config(f"{isa} kernels", isa_env(isa)) for isa in isas]
    return out


def find_notebooks(paths: list[str]) -> list[Path]:
    """Every ``.ipynb`` under the given files or folders (default: chapters/ and solutions/), sorted."""
    found: list[Path] = []
    for p in paths or [str(ROOT / f) for f in DEFAULT_FOLDERS]:
        path = Path(p)
        if path.suffix == ".py" and path.with_suffix(".ipynb").exists():
            path = path.with_suffix(".ipynb")
        if path.is_dir():
            found += [q for q in sorted(path.rglob("*.ipynb")) if ".ipynb_checkpoints" not in q.parts]
        elif path.suffix == ".ipynb" and path.exists():
            found.append(path)
        else:
            raise SystemExit(f"no notebook at {p}: give .ipynb files, their paired .py files, or folders")
    return found


def _shown(path) -> str:
    """``path`` as the reports show it: relative to the course root when it lies inside it."""
    full = Path(path).resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(path)


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CELL_FRAME = re.compile(r"Cell In\s*\[\d*\],\s*line (\d+)")


def _line_of(source: str, number: int | None) -> str:
    """``"line 7: assert gap > 0.1"``: where a cell raised, as a reader counts the lines of ``source``. IPython drops a
    cell's leading blank lines before it runs it (its other input transformers keep the line count), and a
    traceback's ``number`` counts the lines of what ran."""
    lines = source.splitlines()
    blank = next((k for k, line in enumerate(lines) if line.strip()), len(lines))
    if number is None or not 1 <= number + blank <= len(lines):
        return ""
    return f"line {number + blank}: {lines[number + blank - 1].strip()[:100]}"


def _where(f: CellFailure) -> str:
    """``"line 7: assert gap > 0.1: "`` before a failure's error, or nothing where the line is unknown."""
    return f"{f.line}: " if f.line else ""


def _kernel_failing_line(source: str, traceback: list[str]) -> str:
    """The statement of the cell that raised, from a kernel's traceback: its first ``Cell In[n], line k`` frame is
    the cell itself (later ones are functions the cell called, in earlier cells or libraries)."""
    for entry in traceback:
        found = _CELL_FRAME.search(_ANSI.sub("", entry))
        if found:
            return _line_of(source, int(found.group(1)))
    return ""


def _sweep_failing_line(source: str, exc: BaseException) -> str:
    """The same in a sweep: the first ``<module>`` frame of the exception's traceback is the cell's code."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>":
            return _line_of(source, tb.tb_lineno)
        tb = tb.tb_next
    return ""


def _kernel_group(km) -> tuple[int | None, object]:
    """The process group of ``km``'s running kernel (None if it has none) and its process (a ``Popen``, or None)."""
    provisioner = getattr(km, "provisioner", None)
    return getattr(provisioner, "pgid", None), getattr(provisioner, "process", None)


def _kill_group(pgid: int | None, process=None) -> None:
    """Kill the kernel's process group, and reap the kernel: jupyter_client's immediate shutdown kills it without
    waiting, which left one zombie process per notebook until the worker exited."""
    if pgid and pgid > 1 and pgid != os.getpgrp():
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass                                # already gone
    if process is not None:
        try:
            process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - not ours to wait for, or stuck in the kernel (D state): leave it
            pass


def run_notebook(path: str, config: Config, timeout: float = 300.0) -> NotebookRun:
    """Execute ``path`` in a fresh kernel with ``config``'s environment; every cell runs even after a failure."""
    import nbclient
    import nbformat

    start = time.perf_counter()
    from jupyter_client import AsyncKernelManager

    scratch = tempfile.mkdtemp(prefix="mc-robust-")
    groups: list[tuple[int | None, object]] = []
    marks: list[tuple[str, float, int]] = [("start", start, 0)]
    code_number: dict[int, int] = {}          # a cell's index in the notebook -> its number among the code cells

    def mark(event: str, cell_index: int = -1) -> None:
        marks.append((event, time.perf_counter(), code_number.get(cell_index, 0)))

    env = dict(os.environ)
    env.update({"MPLBACKEND": "Agg", "MANIFOLD_COURSE_STRICT": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
                "OMP_WAIT_POLICY": "PASSIVE", "MANIFOLD_COURSE_THREADS": "1", "OMP_NUM_THREADS": "1",
                "MANIFOLD_COURSE_PROGRESS": os.path.join(scratch, "progress.json")})
    env.update(dict(config.env))
    run = NotebookRun(_shown(path), config.name, 0.0)
    try:
        nb = nbformat.read(path, as_version=4)
        code_number.update({i: n for n, i in enumerate((i for i, c in enumerate(nb.cells) if c.cell_type == "code"),
                                                       start=1)})
        # Local sockets in a scratch folder rather than TCP on localhost (and no "TCP without encryption" warning).
        # The async manager, as nbclient makes by default: with the blocking one, nbclient's wait for a cell's output
        # blocks its event loop, so the check that the kernel is still alive never runs, and a kernel that dies
        # mid-cell (a segfault) is waited for forever (tests/test_robust.py).
        km = AsyncKernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(scratch, "kernel"))
        client = nbclient.NotebookClient(nb, km=km, timeout=timeout, allow_errors=True, kernel_name="python3",
                                         shutdown_kernel="immediate",   # nothing to save: no graceful 2-3 s wait
                                         resources={"metadata": {"path": str(Path(path).parent)}},
                                         on_notebook_start=lambda **_: (groups.append(_kernel_group(km)),
                                                                        mark("kernel ready")),
                                         # code cells only: nbclient calls these two just around a code cell's run
                                         on_cell_execute=lambda cell_index, **_: mark("send", cell_index),
                                         on_cell_executed=lambda cell_index, **_: mark("done", cell_index))
        # No front-end Output widget: nbclient's stand-in for it answers every output a widget captures (an
        # `interact` that prints) with a message on the shell socket while it awaits the cell's reply on that same
        # asyncio socket, and now and then that wait missed the reply until its timeout: CI saw moved-seed chapters
        # with an `interact` cell wait 300 s (`timeout`), and a 300-cell `interact` notebook waited the full timeout
        # in 1-5 of its cells per run, none without it. Captured outputs, errors included, now land in the cell's own
        # outputs, so an `interact` callback that raises is reported as the cell's failure.
        client.widget_registry = {}
        # cleanup_kc: nbclient shuts down and cleans up only a kernel manager it made itself; this one is ours, so
        # without it the kernel was never shut down by nbclient and the client's and manager's sockets were left
        # open. Garbage-collected later at any depth, a learner's recursion included, they raised RecursionErrors
        # from their finalizers that pytest reported at teardown, formatting the chain for tens of minutes.
        client.execute(env=env, cleanup_kc=True)
    except Exception as exc:  # noqa: BLE001 - a dead kernel or a cell timeout: report it, keep the other runs going
        run.crashed = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"[:300]
    finally:
        # The kernel runs in a session of its own (jupyter_client starts it so), and whatever it started (a
        # torch.distributed worker, a DataLoader, a process pool) shares its process group. An "immediate" shutdown
        # kills the kernel, not always what it started: kill the whole group, so nothing outlives its notebook.
        for pgid, process in groups:
            _kill_group(pgid, process)
    code_cells = [c for c in nb.cells if c.cell_type == "code"] if "nb" in locals() else []
    for i, cell in enumerate(code_cells, start=1):
        secs = _cell_seconds(cell)
        if secs is not None:
            run.cells.append(CellTime(i, _first_line(cell.source), secs))
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                run.failures.append(CellFailure(i, _first_line(cell.source), f"{out['ename']}: {out['evalue']}"[:300],
                                                _kernel_failing_line(cell.source, out.get("traceback", []))))
    run.seconds = time.perf_counter() - start
    run.waits = _waits(marks, {c.index: c.seconds for c in run.cells}, start + run.seconds)
    shutil.rmtree(scratch, ignore_errors=True)
    return run


def run_all(notebooks: list[Path], cfgs: list[Config], workers: int, timeout: float,
            log=print) -> list[NotebookRun]:
    # Longest first (file size as the proxy) keeps every core busy to the end.
    jobs = sorted(((str(nb), c) for c in cfgs for nb in notebooks), key=lambda j: -Path(j[0]).stat().st_size)
    runs: list[NotebookRun] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_notebook, nb, c, timeout): (nb, c) for nb, c in jobs}
        for fut in as_completed(futures):
            run = fut.result()
            runs.append(run)
            mark = "ok  " if run.ok else "FAIL"
            log(f"{mark} {run.seconds:6.1f} s  [{run.config}]  {run.notebook}", flush=True)
            if run.outside_cells > LONG_WAIT_S:
                what, secs = run.longest_wait()
                log(f"       {run.outside_cells:.0f} s outside the cells; the longest stretch: {secs:.0f} s {what}",
                    flush=True)
            for f in run.failures:
                log(f"       code cell {f.index}: {f.first_line}\n         {_where(f)}{f.error}", flush=True)
            if run.crashed:
                log(f"       did not finish: {run.crashed}", flush=True)
    return runs


def summary(runs: list[NotebookRun]) -> str:
    bad = [r for r in runs if not r.ok]
    lines = []
    if bad:
        lines.append(f"{len(bad)} of {len(runs)} notebook runs failed:")
        for r in sorted(bad, key=lambda r: (r.notebook, r.config)):
            if r.crashed:
                lines.append(f"  {r.notebook}  [{r.config}]  did not finish: {r.crashed}")
            for k, f in enumerate(r.failures):
                first = "" if k else "  (first failure)"
                lines.append(f"  {r.notebook}  [{r.config}]  code cell {f.index}: {f.first_line}{first}")
                lines.append(f"      {_where(f)}{f.error}")
    else:
        lines.append(f"all {len(runs)} notebook runs passed")
    slow = sorted(runs, key=lambda r: -r.seconds)[:5]
    lines.append("slowest runs: " + "; ".join(f"{r.notebook} [{r.config}] {r.seconds:.0f} s" for r in slow))
    cells = sorted(((c, r) for r in runs for c in r.cells), key=lambda cr: -cr[0].seconds)[:8]
    if cells:
        lines.append("slowest cells:")
        lines += [f"  {c.seconds:6.1f} s  {r.notebook} [{r.config}] code cell {c.index}: {c.first_line}"
                  for c, r in cells]
    return "\n".join(lines)


@dataclass
class SweepRun:
    """One notebook executed in one process under many seed offsets, one after another."""

    notebook: str
    failures: dict[int, list[CellFailure]] = field(default_factory=dict)   # offset -> the cells that failed
    seconds: dict[int, float] = field(default_factory=dict)                # offset -> its time (imports: first only)
    crashed: str = ""
    values: dict[int, str] = field(default_factory=dict)                   # offset -> repr of --measure's expression
    margins: dict[tuple, dict[int, float]] = field(default_factory=dict)    # comparison -> offset -> its least slack
    margin_text: dict[tuple, str] = field(default_factory=dict)             # comparison -> "code cell 3, line 7: a < b"


def _on_alarm(signum, frame):
    raise TimeoutError("the cell ran past the sweep's --timeout")


def _without_asserts(source: str) -> str:
    """``source`` with every ``assert`` statement replaced by ``pass``: what a cell computes, whatever it claims."""
    import ast

    class Strip(ast.NodeTransformer):
        def visit_Assert(self, node):
            return ast.copy_location(ast.Pass(), node)

    return ast.unparse(Strip().visit(ast.parse(source)))


_ORDER = {"Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt, "GtE": operator.ge, "Eq": operator.eq,
          "NotEq": operator.ne, "Is": operator.is_, "IsNot": operator.is_not,
          "In": lambda a, b: operator.contains(b, a), "NotIn": lambda a, b: not operator.contains(b, a)}
_RECORDER = "__manifold_course_compare__"


class _RecordComparisons:
    """An IPython AST transformer (``shell.ast_transformers``) that routes every comparison inside an ``assert``
    through the recorder, and keeps each comparison's text.

    ``assert 0.1 < gap < 0.5`` runs as ``assert __manifold_course_compare__((cell, line, col), ("Lt", "Lt"), 0.1,
    gap, 0.5)``, which evaluates the operands (all of them, where Python's chain would stop at the first false
    link), reports each ordered pair of real numbers to the sweep, and returns what the comparison would. The cell's
    source is not rewritten, so a failure is reported at its own line.
    """

    def __init__(self):
        self.cell = 0                                       # the code cell about to run, 1-based
        self.texts: dict[tuple, str] = {}                   # (cell, line, col, link) -> "code cell 3, line 7: a < b"

    def visit(self, tree):
        import ast

        outer = self

        class Compare(ast.NodeTransformer):
            def visit_Compare(self, node):
                self.generic_visit(node)
                key = (outer.cell, node.lineno, node.col_offset)
                operands = [node.left, *node.comparators]
                for i, op in enumerate(node.ops):
                    if type(op).__name__ in ("Lt", "LtE", "Gt", "GtE"):
                        pair = ast.unparse(ast.Compare(operands[i], [op], [operands[i + 1]]))
                        outer.texts[(*key, i)] = f"code cell {outer.cell}, line {node.lineno}: {pair}"
                ops = ast.Constant(tuple(type(op).__name__ for op in node.ops))
                call = ast.Call(ast.Name(_RECORDER, ast.Load()), [ast.Constant(key), ops, *operands], [])
                return ast.copy_location(call, node)

        class Record(ast.NodeTransformer):
            def visit_Assert(self, node):
                node.test = Compare().visit(node.test)
                return node

        return ast.fix_missing_locations(Record().visit(tree))


def _real(value) -> float | None:
    """``value`` as a float if it is one real number (a Python or NumPy scalar, a one-element tensor or array)."""
    import numbers

    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        if hasattr(value, "numel") and value.numel() == 1 and not value.is_complex():
            return float(value)
        if hasattr(value, "size") and hasattr(value, "dtype") and value.size == 1 and value.dtype.kind in "fiu":
            return float(value)
    except (TypeError, ValueError, RuntimeError, AttributeError):
        return None
    return None


def _recorder(slack: dict[tuple, float]):
    """The function that the asserts :class:`_RecordComparisons` rewrites call: it keeps, per ordered comparison,
    the least slack seen, in ``slack``.

    The slack of ``a < b`` or ``a <= b`` is ``b - a`` and of ``a > b`` or ``a >= b`` is ``a - b``: how far the
    claim is from failing, in the quantity's own units (negative when it fails).
    """
    def compare(key, ops, *values):
        result = True
        for i, op in enumerate(ops):
            a, b = values[i], values[i + 1]
            result = _ORDER[op](a, b)
            if op in ("Lt", "LtE", "Gt", "GtE"):
                x, y = _real(a), _real(b)
                s = (y - x if op in ("Lt", "LtE") else x - y) if x is not None and y is not None else math.nan
                if math.isfinite(s):                # a NaN or an infinity fails or passes, but has no distance
                    slack[(*key, i)] = min(s, slack.get((*key, i), s))
            if i < len(ops) - 1 and not result:
                return result
        return result

    return compare


def margin_report(runs: list[SweepRun], n: int = 20) -> str:
    """The ``n`` thinnest claims of a sweep: each ordered comparison an assert makes, ranked by mean slack over its
    spread across offsets (a z-score: under a normal approximation a claim with z = 3 fails about once in 700
    offsets). Comparisons whose slack never moves (a count against a formula) are not ranked; those whose least slack
    reached 0 (failed, or held with equality) come first whatever their z.
    """
    import statistics

    rows = []
    for r in runs:
        for key, by_offset in r.margins.items():
            s = list(by_offset.values())
            if len(s) < 2:
                continue
            mean, sd = statistics.fmean(s), statistics.stdev(s)
            if sd == 0:
                continue
            rows.append((min(s) <= 0, mean / sd, min(s), mean, sd, len(s), r.notebook, r.margin_text.get(key, "")))
    rows.sort(key=lambda row: (not row[0], row[1]))
    lines = [f"margins: {len(rows)} comparisons moved with the seed; the {min(n, len(rows))} thinnest "
             f"(z = mean slack / its standard deviation over offsets; least slack over offsets):"]
    lines += [f"  z {z:6.2f}  least {lo:<10.4g} mean {mean:<10.4g} sd {sd:<10.4g} ({k} offsets)  {nb} {text}"
              for _, z, lo, mean, sd, k, nb, text in rows[:n]]
    return "\n".join(lines)


def sweep_notebook(path: str, offsets: list[int], timeout: float = 300.0, upto: int = 0,
                   measure: str = "", strip: tuple[int, ...] = (), margins: bool = False) -> SweepRun:
    """Run ``path``'s code cells in this process once per offset, in a fresh IPython namespace each time.

    With ``upto`` (a 1-based code cell) only the cells up to it run, that one without its asserts, and
    ``measure`` (an expression over the notebook's variables) is evaluated after it: the spread of a claim's
    quantity over many offsets, from which to state what holds across draws. The cells in ``strip`` (1-based) also
    run without their asserts, to measure several claims of one notebook in one sweep.

    A screen, many times faster than :func:`run_notebook` (modules are imported once, no kernel starts): it runs
    in a worker process of its own, with the same environment as the robust run. State that a module keeps across
    namespaces (a cache, a global) is not reset, so confirm what it finds with ``--offsets N`` in fresh kernels.
    """
    import contextlib
    import io

    import nbformat
    from IPython.core.interactiveshell import InteractiveShell

    run = SweepRun(_shown(path))
    cells = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    shell = InteractiveShell.instance()
    if upto:
        cells = cells[:upto]
    for i in {*strip, *([upto] if upto else [])}:
        if 1 <= i <= len(cells):
            cells[i - 1] = _without_asserts(shell.transform_cell(cells[i - 1]))
    recording = _RecordComparisons()
    if margins:
        shell.ast_transformers.append(recording)
    os.environ.update({"MPLBACKEND": "Agg", "MANIFOLD_COURSE_STRICT": "1", "MANIFOLD_COURSE_THREADS": "1",
                       "OMP_NUM_THREADS": "1"})
    scratch = tempfile.mkdtemp(prefix="mc-sweep-")
    os.environ["MANIFOLD_COURSE_PROGRESS"] = os.path.join(scratch, "progress.json")
    os.chdir(Path(path).resolve().parent)
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for offset in offsets:
            os.environ["MANIFOLD_COURSE_SEED_OFFSET"] = str(offset)
            shell.reset(new_session=False)
            slack: dict[tuple, float] = {}
            shell.user_ns[_RECORDER] = _recorder(slack)
            main = sys.modules["__main__"]          # IPython's namespace module has no __spec__, which a notebook
            if not hasattr(main, "__spec__"):       # that starts processes (torch.multiprocessing) needs
                main.__spec__ = None
            start = time.perf_counter()
            bad: list[CellFailure] = []
            for i, source in enumerate(cells, start=1):
                recording.cell = i
                signal.setitimer(signal.ITIMER_REAL, timeout)
                try:
                    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                        result = shell.run_cell(source, silent=True)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                exc = result.error_before_exec or result.error_in_exec
                if exc is not None:
                    bad.append(CellFailure(i, _first_line(source), f"{type(exc).__name__}: {exc}"[:300],
                                           _sweep_failing_line(source, exc)))
            try:
                import matplotlib.pyplot as plt
                plt.close("all")
            except ImportError:
                pass
            run.seconds[offset] = time.perf_counter() - start
            for key, value in slack.items():
                run.margins.setdefault(key, {})[offset] = value
            run.margin_text.update(recording.texts)
            if measure:
                try:
                    run.values[offset] = repr(eval(measure, shell.user_ns))
                except Exception as exc:  # noqa: BLE001 - an expression the notebook cannot evaluate
                    run.values[offset] = f"{type(exc).__name__}: {exc}"[:200]
            if bad:
                run.failures[offset] = bad
    except BaseException as exc:  # noqa: BLE001 - report it; the other notebooks' sweeps go on
        run.crashed = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return run


def sweep_all(notebooks: list[Path], offsets: list[int], workers: int, timeout: float, log=print, upto: int = 0,
              measure: str = "", strip: tuple[int, ...] = (), margins: bool = False) -> list[SweepRun]:
    import multiprocessing

    jobs = sorted(map(str, notebooks), key=lambda nb: -Path(nb).stat().st_size)
    runs: list[SweepRun] = []
    # One process per notebook: nothing one notebook imports or caches reaches another.
    with ProcessPoolExecutor(max_workers=workers, max_tasks_per_child=1,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(sweep_notebook, nb, offsets, timeout, upto, measure, strip, margins): nb for nb in jobs}
        for fut in as_completed(futures):
            try:
                run = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker died (a segfault, out of memory)
                run = SweepRun(str(futures[fut]), crashed=f"{type(exc).__name__}: {exc}"[:300])
            runs.append(run)
            total = sum(run.seconds.values())
            log(f"{'FAIL' if run.failures or run.crashed else 'ok  '} {total:6.1f} s  {run.notebook}: "
                f"{len(run.seconds) - len(run.failures)} of {len(offsets)} offsets passed", flush=True)
            for offset, bad in sorted(run.failures.items()):
                for f in bad:
                    log(f"       offset {offset}: code cell {f.index}: {f.first_line}\n         {_where(f)}{f.error}",
                        flush=True)
            for offset, value in sorted(run.values.items()):
                log(f"       offset {offset} ({run.seconds.get(offset, 0):.1f} s): {measure} = {value}", flush=True)
            if run.crashed:
                log(f"       did not finish: {run.crashed}", flush=True)
    return runs


def sweep_summary(runs: list[SweepRun], offsets: list[int]) -> str:
    """Each failing cell with the offsets it failed under: how often a claim fails, not only that it does."""
    by_cell: dict[tuple[str, int, str], tuple[str, list[int]]] = {}     # a failing statement: its cell, its offsets
    for r in runs:
        for offset, bad in r.failures.items():
            for f in bad:
                by_cell.setdefault((r.notebook, f.index, f.line), (f.first_line, []))[1].append(offset)
    lines = [f"sweep: {len(runs)} notebooks x {len(offsets)} offsets"]
    if not by_cell and not any(r.crashed for r in runs):
        return lines[0] + ": every cell passed under every offset"
    for (nb, index, line), (first, offs) in sorted(by_cell.items()):
        lines.append(f"  {nb} code cell {index}: failed under {len(offs)} of {len(offsets)} offsets "
                     f"({' '.join(map(str, sorted(offs)[:20]))}{' ...' if len(offs) > 20 else ''})  {first}")
        if line:
            lines.append(f"      at {line}")
    lines += [f"  {r.notebook}: did not finish: {r.crashed}" for r in runs if r.crashed]
    return "\n".join(lines)


def _range(text: str) -> list[int]:
    """'18-40' -> 18..40; '3 7 9' -> [3, 7, 9]; both may be mixed: '1 5-7'."""
    out: list[int] = []
    for tok in text.replace(",", " ").split():
        lo, sep, hi = tok.partition("-")
        out += list(range(int(lo), int(hi) + 1)) if sep and lo else [int(tok)]
    return out


def fresh_offsets(n: int, taken=()) -> list[int]:
    """``n`` distinct seed offsets drawn at random from 10..9999, none of them in ``taken``: a new draw every run."""
    if n < 0:
        raise ValueError(f"--fresh is a number of offsets, 0 or more, not {n}")
    taken = set(taken)
    return sorted(random.SystemRandom().sample([o for o in range(10, 10_000) if o not in taken], n))


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.replace(",", " ").split()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m manifold_course.robust", description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", help="notebooks or folders (default: chapters/ and solutions/)")
    ap.add_argument("--offsets", default="1 2 3", help="seed offsets to run under (default: '1 2 3')")
    ap.add_argument("--fresh", type=int, default=1, help="seed offsets drawn at random (10..9999) on top of --offsets, "
                    "new in every run and printed (rerun a failure with --offsets N; default 1, 0 for none)")
    ap.add_argument("--threads", default="2", help="thread counts to run under with offset 0 (default: '2'; '' for none)")
    ap.add_argument("--isa", default="avx2", help="instruction sets to run under with offset 0, as on a CPU without "
                    "AVX-512 (default: 'avx2'; '' for none)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="notebooks run at once (default: the cores)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per cell before the run is stopped")
    ap.add_argument("--sweep", default="", metavar="OFFSETS", help="screen many offsets fast instead: each notebook "
                    "runs in one process, once per offset (e.g. '18-60'), and every failing cell is listed with the "
                    "offsets it failed under; confirm a finding with --offsets N")
    ap.add_argument("--upto", type=int, default=0, metavar="CELL", help="with --sweep: run code cells 1..CELL only, "
                    "the last one without its asserts")
    ap.add_argument("--strip", default="", metavar="CELLS", help="with --sweep: also run these code cells "
                    "(e.g. '20 26') without their asserts")
    ap.add_argument("--measure", default="", metavar="EXPR", help="with --sweep: print this expression over the "
                    "notebook's variables after each offset (with --upto: the quantity a claim bounds, over draws)")
    ap.add_argument("--margins", type=int, default=0, metavar="N", help="with --sweep: record both sides of every "
                    "comparison the asserts make and list the N thinnest claims (mean slack over its spread across "
                    "the offsets): the claims likely to fail under an offset no sweep has tried")
    args = ap.parse_args(argv)
    if args.margins and not args.sweep:
        ap.error("--margins ranks what a sweep measured: give --sweep OFFSETS too (five or more, e.g. --sweep 0-9)")
    if args.sweep:
        try:
            offsets = _range(args.sweep)
        except ValueError:
            ap.error(f"--sweep takes offsets such as '18-60' or '3 7 9', not {args.sweep!r}")
        notebooks = find_notebooks(args.paths)
        print(f"sweep: {len(notebooks)} notebooks x {len(offsets)} offsets, {args.workers} at a time", flush=True)
        start = time.perf_counter()
        runs = sweep_all(notebooks, offsets, args.workers, args.timeout, upto=args.upto, measure=args.measure,
                         strip=tuple(_ints(args.strip)), margins=bool(args.margins))
        print()
        print(sweep_summary(runs, offsets))
        if args.margins:
            print(margin_report(runs, args.margins))
        print(f"sweep took {time.perf_counter() - start:.0f} s")
        return 0 if all(not r.failures and not r.crashed for r in runs) else 1
    try:
        offsets = _ints(args.offsets)
        fresh = fresh_offsets(args.fresh, offsets)
        cfgs = configs(offsets + fresh, _ints(args.threads), args.isa.replace(",", " ").split())
    except ValueError as exc:
        ap.error(f"--offsets, --threads and --fresh take whole numbers, e.g. --offsets '1 2 3' --threads 2 --fresh 1; "
                 f"--isa: avx2 ({exc})")
    notebooks = find_notebooks(args.paths)
    if not cfgs or not notebooks:
        ap.error("nothing to run: give at least one offset or thread count, and a notebook")
    print(f"robust run: {len(notebooks)} notebooks x {len(cfgs)} configurations "
          f"({', '.join(c.name for c in cfgs)}), {args.workers} at a time", flush=True)
    fresh_note = (f"fresh this run: seed offset {', '.join(map(str, fresh))} (drawn at random; rerun it with --offsets "
                  f"{' '.join(map(str, fresh))} --fresh 0)") if fresh else ""
    if fresh_note:
        print(fresh_note, flush=True)
    start = time.perf_counter()
    runs = run_all(notebooks, cfgs, args.workers, args.timeout)
    print()
    print(summary(runs))
    if fresh_note:
        print(fresh_note)
    print(f"robust run took {time.perf_counter() - start:.0f} s")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Classroom grading outside the learner's reach: ``manifold-course grade``.

For each submission the grader (this process, the *parent*):

1. reads the notebook's code cells and scans them for integrity findings (imports of the course's reference
   implementations or of the grader, reads of the grading seed, stack-frame and ``sys.modules`` tricks);
2. draws every declared exercise's cases from the instructor's seed (the child never sees the seed);
3. starts a *grading child* (:mod:`.child`) in a fresh temporary directory, with a scrubbed environment and
   resource limits, inside bubblewrap (own PID, mount and network namespaces; the other submissions and the
   report's folder are hidden) where ``bwrap`` works, else as a plain process group;
4. the child runs the cells, then calls the learner's functions on the cases and sends back plain data
   (:mod:`.wire`): every call's arguments digest and its result or error;
5. the parent computes the references itself and judges by *replaying* the recorded answers through the
   exercise's own comparison, judge and properties. An exercise with an ``adapter`` (a class, an ``nn.Module``,
   a function whose gradient matters) is recorded as the adapter's plain observations and judged the same way
   (:mod:`.probes`). No verdict is ever taken from the child.

Time limits are enforced by killing the child's whole process tree; a fresh child grades the remaining
exercises. The exercise list is the assignment's (the chapter's declared exercises), not the notebook's.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
import os
import pickle
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from manifold_course.grading.sandbox import LearnerError

STARTUP_S = 60.0      # imports in the child (torch, the chapter's checks) before its cells' clock starts
SLACK_S = 5.0         # beyond an exercise's own limit before the child is killed
MEMORY_BYTES = 12 * 2 ** 30


# ---------------------------------------------------------------- which exercises, which notebook


def assignment_of(path: Path, ids_in_notebook: list[str], override: str | None = None) -> str | None:
    """The chapter key a submission is graded as: ``override``, else the chapter whose notebook has this file's
    name, else the chapter most of its ``check`` calls name."""
    from manifold_course.grading.registry import check_modules, chapter_of

    keys = check_modules()
    if override:
        return override if override in keys else None
    stem = path.with_suffix("").name
    for key in keys:
        if Path(chapter_of(key)).name == stem:
            return key
    chapters = [i.split(".", 1)[0] for i in ids_in_notebook if i.split(".", 1)[0] in keys]
    return max(set(chapters), key=chapters.count) if chapters else None


def code_cells(nb) -> list[str]:
    """The notebook's code cells, IPython magics and shell lines turned into comments."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = [("# (not run while grading) " + ln) if ln.lstrip().startswith(("%", "!")) else ln
                 for ln in cell.source.splitlines()]
        cells.append("\n".join(lines))
    return cells


# ---------------------------------------------------------------- integrity findings

_SUSPICIOUS_NAMES = {
    "_getframe": "reads the caller's stack frame (sys._getframe)",
    "f_back": "walks stack frames (f_back)",
    "f_locals": "reads another frame's variables (f_locals)",
    "get_objects": "searches the interpreter's objects (gc.get_objects)",
    "__torch_function__": "defines __torch_function__ (a tensor that can change how it compares)",
    "MANIFOLD_COURSE_SEED": "reads the grading seed",
}


def integrity_findings(cells: list[str], exercises: list, fn_names: dict[str, str]) -> dict[str, list[str]]:
    """``{exercise id or "notebook": [finding, ...]}`` from a static reading of the code (nothing is run)."""
    refs: dict[str, list[str]] = {}  # "module.name" -> exercise ids
    for ex in exercises:
        for r in (ex.reference, ex.known_good):
            if r is not None and getattr(r, "__module__", "").startswith("manifold_course."):
                refs.setdefault(f"{r.__module__}.{r.__name__}", []).append(ex.id)
    ref_modules = {k.rpartition(".")[0] for k in refs}
    found: dict[str, list[str]] = {}
    fn_of_line: list[tuple[int, int, int, str]] = []

    def add(where: str, what: str) -> None:
        if what not in found.setdefault(where, []):
            found[where].append(what)

    for ci, src in enumerate(cells):
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                fn_of_line.append((ci, node.lineno, node.end_lineno or node.lineno, node.name))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            where = _owner(ci, getattr(node, "lineno", 0), fn_of_line, fn_names)
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
                for a in node.names:
                    full = f"{mod}.{a.name}"
                    if full in refs:
                        for ex_id in refs[full]:
                            add(ex_id, f"imports the course's reference {full}")
                    if full in ref_modules:
                        aliases[a.asname or a.name] = full
                    if mod.startswith(("manifold_course.grading", "manifold_course.checks")) and not (
                            mod == "manifold_course.grading" and a.name == "check"):
                        add(where, f"imports {full} from the grader")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith(("manifold_course.grading.", "manifold_course.checks")):
                        add(where, f"imports {a.name} (the grader)")
                    if a.name in ref_modules:
                        aliases[a.asname or a.name] = a.name
            elif isinstance(node, ast.Attribute):
                if node.attr in _SUSPICIOUS_NAMES:
                    add(where, _SUSPICIOUS_NAMES[node.attr])
                base = ast.unparse(node.value)
                full = f"{aliases.get(base, base)}.{node.attr}"
                if full in refs:
                    for ex_id in refs[full]:
                        add(ex_id, f"uses the course's reference {full}")
                if node.attr == "modules" and base == "sys":
                    add(where, "touches sys.modules")
            elif isinstance(node, ast.Name) and node.id in _SUSPICIOUS_NAMES:
                add(where, _SUSPICIOUS_NAMES[node.id])
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "MANIFOLD_COURSE_SEED" in node.value:
                    add(where, "reads the grading seed")
                if "manifold_course/" in node.value or "manifold_course\\" in node.value:
                    add(where, "reads the course package's files")
            elif isinstance(node, ast.FunctionDef) and node.name in ("__eq__", "__torch_function__", "__array_ufunc__"):
                add(where, f"defines {node.name} (an answer that can change how it compares)")
    return found


def _owner(ci: int, line: int, spans, fn_names: dict[str, str]) -> str:
    names = {v: k for k, v in fn_names.items()}
    for c, a, b, name in spans:
        if c == ci and a <= line <= b and name in names:
            return names[name]
    return "notebook"


# ---------------------------------------------------------------- the sandbox


@functools.lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """True where bubblewrap can make the namespaces the grader uses (Linux, with user namespaces or as root)."""
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        r = subprocess.run([exe, *_BWRAP_BASE, "--", "/bin/true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


# the whole file system read-only (the child writes only to its own folder, bound writable after this; /tmp is
# not replaced, since the course and its virtual environment may live there), fresh /dev and /proc, every namespace
# unshared (no network, its own PID space: nothing it starts outlives it)
_BWRAP_BASE = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--unshare-all", "--die-with-parent", "--new-session"]


def isolation_name() -> str:
    return ("bubblewrap: own PID, mount and network namespaces; other submissions hidden" if bwrap_works()
            else "process group only (bubblewrap not available): learner code could read or write your files; "
                 "install bubblewrap (Debian/Ubuntu: apt install bubblewrap) for a real sandbox")


@functools.lru_cache(maxsize=1)
def _children_root() -> Path:
    """A private folder (0700) holding this grader's children's working folders; removed at exit."""
    import atexit

    root = Path(tempfile.mkdtemp(prefix="mc-grade-"))
    atexit.register(shutil.rmtree, root, True)
    return root


def _child_command(work: Path, hide: list[Path]) -> list[str]:
    py = [sys.executable, "-I", "-m", "manifold_course.grading.child"]
    if not bwrap_works():
        return py
    # the children's folders share one parent: an empty tmpfs over it hides the other children's folders
    cmd = [shutil.which("bwrap") or "bwrap", *_BWRAP_BASE, "--tmpfs", str(_children_root()),
           "--bind", str(work), str(work)]
    for p in hide:
        if p.is_dir():
            cmd += ["--tmpfs", str(p)]
        elif p.exists():
            cmd += ["--ro-bind", "/dev/null", str(p)]
    return cmd + ["--chdir", str(work), "--", *py]


def _limits(cpu_seconds: float) -> Callable[[], None]:
    def apply() -> None:
        for res, value in ((resource.RLIMIT_CPU, int(cpu_seconds) + 1), (resource.RLIMIT_CORE, 0),
                           (resource.RLIMIT_FSIZE, 512 * 2 ** 20), (resource.RLIMIT_AS, MEMORY_BYTES)):
            try:
                resource.setrlimit(res, (value, value))
            except (ValueError, OSError):
                pass

    return apply


def _child_env(work: Path) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
    return {**keep, "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(work), "TMPDIR": str(work),
            "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "MANIFOLD_COURSE_THREADS": "1",
            "MANIFOLD_COURSE_PROGRESS": str(work / "progress.json"), "PYTHONHASHSEED": "0"}


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


@dataclass
class ChildRun:
    """What one grading child reported before it finished, died or was stopped."""

    messages: list[dict] = field(default_factory=list)
    stopped: str = ""      # "timeout" | "died" | ""
    phase: str = "startup"
    cell: int | None = None
    exercise: str | None = None
    seconds: float = 0.0


def run_child(request: dict, hide: list[Path], budget: float, ex_limits: dict[str, float]) -> ChildRun:
    """Start a grading child on ``request`` and collect its messages, killing it at the limits."""
    run = ChildRun()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="child-", dir=_children_root()) as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        os.chmod(work, 0o777)
        rfd, wfd = os.pipe()
        os.set_inheritable(wfd, True)
        request = dict(request, channel_fd=wfd)
        proc = subprocess.Popen(
            _child_command(work, hide), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=work, env=_child_env(work), start_new_session=True,
            pass_fds=(wfd,), preexec_fn=_limits(budget + STARTUP_S + 60),  # noqa: PLW1509 - limits set before exec
        )
        os.close(wfd)
        try:
            proc.stdin.write(pickle.dumps(request))
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        buf = b""
        deadline = t0 + STARTUP_S  # imports; the cells' own clock starts with the first cell
        cells_started = False
        done = False
        with os.fdopen(rfd, "rb", buffering=0) as chan:
            while not done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    run.stopped = "timeout"
                    break
                ready, _, _ = select.select([chan], [], [], min(remaining, 1.0))
                if not ready:
                    continue
                chunk = chan.read(1 << 20)
                if not chunk:
                    run.stopped = "died"
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    try:
                        msg = json.loads(line)
                    except ValueError:
                        continue
                    if not isinstance(msg, dict):
                        continue
                    run.messages.append(msg)
                    ev = msg.get("event")
                    if ev == "cell":
                        run.phase, run.cell = "cells", msg.get("cell")
                        if not cells_started:
                            cells_started = True
                            deadline = time.monotonic() + budget + SLACK_S
                    elif ev == "cell_error" and not cells_started:
                        cells_started = True
                        deadline = time.monotonic() + budget + SLACK_S
                    elif ev == "cells_done":
                        run.phase = "exercises"
                        deadline = time.monotonic() + 30.0  # until the first exercise starts
                    elif ev == "start":
                        run.exercise = str(msg.get("id"))
                        deadline = time.monotonic() + ex_limits.get(run.exercise, 10.0) + SLACK_S
                    elif ev == "result":
                        run.exercise = None
                        deadline = time.monotonic() + 30.0  # until the next exercise starts
                    elif ev == "done":
                        done = True
        _kill_tree(proc)
    run.seconds = time.monotonic() - t0
    return run


# ---------------------------------------------------------------- judging by replay


class _ReplayMiss(LearnerError):
    pass


def _contains_unplain(x: Any) -> str | None:
    from manifold_course.grading.wire import Unplain

    if isinstance(x, Unplain):
        return x.what
    if isinstance(x, (list, tuple)):
        return next((w for w in map(_contains_unplain, x) if w), None)
    if isinstance(x, dict):
        return next((w for w in map(_contains_unplain, x.values()) if w), None)
    return None


class Replayer:
    """Stands in for the learner's function in the grader: answers each call with what the child recorded."""

    def __init__(self, calls: list, name: str):
        from manifold_course.grading import wire

        self.wire = wire
        self.queue: dict[str, list] = {}
        for key, outcome in calls:
            self.queue.setdefault(str(key), []).append(outcome)
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = self.wire.call_key(args, kwargs)
        pending = self.queue.get(key)
        if not pending:
            raise _ReplayMiss("error", "the grader could not match this call with one your function answered in the "
                                       "grading process (does your function depend on global state or on randomness "
                                       "it does not seed?)")
        outcome = pending.pop(0)
        if "value" not in outcome:
            raise LearnerError(str(outcome.get("kind", "error")), str(outcome.get("message", "your code failed"))[:400])
        value = self.wire.decode(outcome["value"])
        bad = _contains_unplain(value)
        if bad:
            raise LearnerError("error", f"your function returned {bad}; return plain tensors, arrays, numbers or "
                                        "tuples/lists/dicts of them")
        return value


_EXPECTED = re.compile(r"expected (?:[^,;()]|\([^)]*\))+")


def redact(message: str) -> str:
    """Classroom feedback: what failed and how, without the hidden case's expected values."""
    return _EXPECTED.sub("expected value hidden", message)


# ---------------------------------------------------------------- one submission


# Submissions are graded in parallel threads (each waits on its own grading child), but drawing cases and judging
# touch process-wide state (torch's and NumPy's global generators, which some cases seed to build a model; the thread
# count): those steps take turns.
PARENT_STATE = threading.RLock()


def grade_submission(path: Path, seed: int | None = None, timeout: float = 600, assignment: str | None = None,
                     hide: list[Path] | None = None, exercise_timeout: float | None = None):
    """Grade one notebook in grading children; returns a :class:`~manifold_course.grading.notebook.NotebookReport`."""
    from manifold_course.grading.check import DEFAULT_SEED, preserved_global_state
    from manifold_course.grading.exercise import case_rng
    from manifold_course.grading.notebook import ExerciseRow, NotebookReport, expected_exercises, read_notebook
    from manifold_course.grading.registry import check_modules

    start = time.perf_counter()
    report = NotebookReport(str(path))
    report.isolation = isolation_name()
    hidden = seed is not None
    seed = DEFAULT_SEED if seed is None else int(seed)
    try:
        nb = read_notebook(path)
    except Exception as exc:  # noqa: BLE001 - an unreadable submission is a result, not a crash
        report.completed, report.problem = False, f"could not read the notebook: {type(exc).__name__}: {exc}"
        return report
    key = assignment_of(path, expected_exercises(nb), assignment)
    if key is None:
        report.completed = False
        report.problem = ("could not tell which chapter this notebook answers: name it after the chapter (e.g. "
                          "01_high_dimensional_geometry.ipynb) or pass --assignment CHAPTER_KEY")
        return report
    report.assignment = key
    exercises = list(getattr(check_modules()[key], "EXERCISES", []))
    if exercise_timeout is not None:  # the instructor's limit for every exercise instead of the chapter's own
        exercises = [dataclasses.replace(ex, timeout=float(exercise_timeout)) for ex in exercises]
    cells = code_cells(nb)
    fn_names = {ex.id: _function_name(ex, cells) for ex in exercises}
    findings = integrity_findings(cells, exercises, fn_names)
    report.integrity = findings.get("notebook", [])
    cases: dict[str, list] = {}
    states: dict[str, dict] = {}
    rows: dict[str, ExerciseRow] = {}
    for ex in exercises:
        try:
            rng = case_rng(ex.id, seed)
            states[ex.id] = rng.bit_generator.state   # the child draws the same cases from it, never seeing the seed
            with PARENT_STATE, preserved_global_state():   # cases may seed torch's global generator to build a model
                cases[ex.id] = list(ex.cases(rng))
        except Exception as exc:  # noqa: BLE001
            rows[ex.id] = ExerciseRow(ex.id, False, 0.0, "error", f"the grader could not build its cases: {exc}", 0.0)
    pending = [ex for ex in exercises if ex.id not in rows]
    skip: set[int] = set()
    cell_notes: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    launches = 0
    while pending and launches < len(exercises) + len(cells) + 2:
        launches += 1
        # a fresh child after a kill re-runs the other cells: it gets what is left of the notebook's time, and at
        # least a share of it, so that the functions defined before a runaway cell are still graded
        budget = max(deadline - time.monotonic(), min(timeout, 60.0) / 4)
        request = {"cells": cells, "skip_cells": sorted(skip), "cell_budget": budget, "threads": 1,
                   "exercises": [{"id": ex.id, "name": fn_names[ex.id], "rng_state": states[ex.id], "timeout": ex.timeout}
                                 for ex in pending]}
        run = run_child(request, hide or [], budget, {ex.id: ex.timeout for ex in pending})
        for msg in run.messages:
            if msg.get("event") == "cell_error" and isinstance(msg.get("cell"), int):
                cell_notes.setdefault(msg["cell"], str(msg.get("error", ""))[:300])
            if msg.get("event") != "result":
                continue
            ex = next((e for e in pending if e.id == msg.get("id")), None)
            if ex is None or ex.id in rows:
                continue
            with PARENT_STATE:
                rows[ex.id] = _judge(ex, msg, cases[ex.id], fn_names[ex.id], seed)
        pending = [ex for ex in pending if ex.id not in rows]
        if not run.stopped:
            break
        why = ("ran past its time limit and was stopped" if run.stopped == "timeout"
               else "ended the grading process (os._exit, a crash, or out of memory)")
        if run.phase == "exercises" and run.exercise and run.exercise in {e.id for e in pending}:
            ex = next(e for e in pending if e.id == run.exercise)
            status = "timeout" if run.stopped == "timeout" else "error"
            msg = (f"stopped after {ex.timeout + SLACK_S:g} s (the exercise's limit is {ex.timeout:g} s): an infinite "
                   "loop, or a loop that should be vectorized?" if status == "timeout" else f"your code {why}")
            rows[ex.id] = ExerciseRow(ex.id, False, 0.0, status, msg, 0.0)
            pending = [e for e in pending if e.id != ex.id]
        elif run.phase in ("startup", "cells") and run.cell is not None:
            skip.add(run.cell)
            cell_notes[run.cell] = f"cell {run.cell + 1} {why}; it was skipped"
        else:
            report.problem = f"the grading process {why} before any cell ran"
            break
    for ex in pending:
        why = report.problem or ("the notebook ran out of time" if time.monotonic() >= deadline
                                 else "the grading process stopped")
        rows[ex.id] = ExerciseRow(ex.id, False, 0.0, "not_reached", f"not reached: {why}", 0.0)
    if cell_notes:
        report.completed = not any("stopped" in n or "ended" in n or "time" in n for n in cell_notes.values())
        first = min(cell_notes)
        report.problem = report.problem or cell_notes[first]
    for ex in exercises:
        row = rows[ex.id]
        if hidden:
            row.message = redact(row.message)
        row.integrity = findings.get(ex.id, [])
        report.exercises.append(row)
    report.seconds = time.perf_counter() - start
    return report


def _function_name(ex, cells: list[str]) -> str:
    """The name the notebook gives the exercise's function: the one it passes to check(), else the reference's."""
    pat = re.compile(r"""\bcheck\(\s*["']""" + re.escape(ex.id) + r"""["']\s*,\s*([A-Za-z_]\w*)""")
    for src in cells:
        m = pat.search(src)
        if m:
            return m.group(1)
    ref = ex.reference or ex.known_good
    return getattr(ref, "__name__", ex.id.split(".", 1)[1])


def _judge(ex, msg, cases, name, seed):
    """One exercise's row from the child's message: judged here by replay, or taken from the child (marked)."""
    from manifold_course.grading.check import _run_exercise, preserved_global_state
    from manifold_course.grading.notebook import ExerciseRow
    from manifold_course.seeding import grading_seeds

    if msg.get("missing"):
        return ExerciseRow(ex.id, False, 0.0, "not_attempted",
                           f"no function `{name}` for this exercise: define it and call check(\"{ex.id}\", {name})", 0.0)
    if msg.get("is_reference"):
        return ExerciseRow(ex.id, False, 0.0, "failed", "the function or class checked is the course's own "
                                                           "reference (or a subclass of it), not your implementation", 0.0)
    if msg.get("timeout"):
        return ExerciseRow(ex.id, False, 0.0, "timeout", f"stopped after {ex.timeout:g} s: an infinite loop, or a loop "
                                                         "that should be vectorized?", 0.0)
    calls = msg.get("calls") if isinstance(msg.get("calls"), list) else []
    mutated = msg.get("mutated")
    if isinstance(mutated, int) and 0 <= mutated < len(cases):
        return ExerciseRow(ex.id, False, 0.0, "failed", f"case {mutated + 1} of {len(cases)}: your code changed its "
                           "input in place (e.g. `x += ...`, `x[...] = ...`, `.add_()`); work on a copy instead", 0.0)
    try:
        replay = Replayer(calls, name)
    except Exception:  # noqa: BLE001 - malformed data from the child
        return ExerciseRow(ex.id, False, 0.0, "error", "the grading process sent malformed results", 0.0)
    with grading_seeds(), preserved_global_state():
        res = _run_exercise(ex, replay, seed, cases=cases, adapted=True)
    return ExerciseRow(ex.id, res.passed, res.score, res.status, res.message, res.seconds)

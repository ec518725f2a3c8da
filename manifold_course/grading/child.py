"""The grading child: runs one submission's code and calls its functions on the cases the grader sends.

Started by :mod:`manifold_course.grading.isolated` as ``python -I -m manifold_course.grading.child`` (inside
bubblewrap where available). It reads one request (a pickle written by the grader, read before any learner
code runs), executes the notebook's code cells, and for each exercise calls the learner's function on the
cases it was sent, recording every call as plain data (:mod:`.wire`). It never sees the grading seed and, for
exercises judged by replay, never computes a reference: the grader compares the recorded answers itself.

Messages go to the grader as JSON lines on a pipe whose descriptor the request names; the learner's printing goes to a file.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import os
import pickle
import signal
import sys
import time
import types
from typing import Any, Callable

class _Channel:
    def __init__(self, fd: int):
        self.fh = os.fdopen(os.dup(fd), "w", encoding="utf-8")
        os.close(fd)

    def send(self, **msg: Any) -> None:
        self.fh.write(json.dumps(msg) + "\n")
        self.fh.flush()


class CellTimeout(BaseException):
    pass


def _alarm(seconds: float) -> None:
    def on_alarm(signum, frame):  # noqa: ARG001
        raise CellTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))


def _guard_references(references: dict[str, Callable], package_dir: str) -> None:
    """Replace each reference in its module by a guard that refuses calls from learner code."""
    import importlib

    for qualname, ref in references.items():
        modname, _, name = qualname.rpartition(".")
        try:
            mod = importlib.import_module(modname)
        except Exception:  # noqa: BLE001
            continue
        if getattr(mod, name, None) is not ref:
            continue

        def make(ref=ref, qualname=qualname):
            def guarded(*args, **kwargs):
                caller = sys._getframe(1).f_code.co_filename
                if caller.startswith(package_dir) and not caller.endswith("child.py"):
                    return ref(*args, **kwargs)
                raise RuntimeError(f"the course's reference {qualname} is not available while grading: "
                                   "write your own implementation")

            guarded.__manifold_reference__ = qualname
            guarded.__name__ = getattr(ref, "__name__", name)
            return guarded

        if isinstance(ref, type):
            continue  # classes stay (a learner may subclass a course module); returning one is caught by identity
        setattr(mod, name, make())


def _hide_grader(recorded: dict[str, Any]) -> None:
    """Learner code sees a stub ``manifold_course.grading`` whose ``check`` only records which function is which."""
    for name in list(sys.modules):
        if name.startswith(("manifold_course.grading", "manifold_course.checks")):
            del sys.modules[name]
    import manifold_course

    for attr in ("grading", "checks"):
        if hasattr(manifold_course, attr):
            delattr(manifold_course, attr)

    def check(exercise_id, fn, seed=None):  # noqa: ARG001 - the seed is the grader's, not the notebook's
        recorded[str(exercise_id)] = fn
        return None

    stub = types.ModuleType("manifold_course.grading")
    stub.check = check
    stub.__doc__ = "grading stub: check() only records your function; the grader calls it"
    sys.modules["manifold_course.grading"] = stub
    manifold_course.grading = stub

    class _Blocker:
        def find_spec(self, fullname, path=None, target=None):  # noqa: ARG002
            if fullname.startswith(("manifold_course.grading.", "manifold_course.checks")):
                raise ImportError(f"{fullname} is not available while grading")
            return None

    sys.meta_path.insert(0, _Blocker())


def _run_cells(cells: list[str], skip: set[int], budget: float, ns: dict, chan: _Channel) -> None:
    deadline = time.monotonic() + budget
    for i, src in enumerate(cells):
        if i in skip:
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            chan.send(event="cell_error", cell=i, error="not run: the notebook's time was used up")
            continue
        chan.send(event="cell", cell=i)
        try:
            _alarm(remaining)
            code = compile(src, f"<cell {i + 1}>", "exec")
            exec(code, ns)  # noqa: S102 - running the learner's notebook is the point
        except CellTimeout:
            chan.send(event="cell_error", cell=i, error=f"cell {i + 1} ran past the notebook's time limit")
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
            chan.send(event="cell_error", cell=i, error=_describe(exc, i))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _describe(exc: BaseException, cell: int | None = None) -> str:
    try:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    except BaseException:  # noqa: BLE001 - an exception whose __str__ raises or hangs
        text = "(its message could not be shown)"
    where = f"cell {cell + 1} raised " if cell is not None else ""
    return f"{where}{type(exc).__name__}{': ' + text if text else ''}"


def main() -> None:
    request = pickle.loads(sys.stdin.buffer.read())  # from the grader, before any learner code
    chan = _Channel(int(request["channel_fd"]))
    os.environ.pop("MANIFOLD_COURSE_SEED", None)

    import numpy as np
    import torch

    from manifold_course.grading import wire
    from manifold_course.grading.check import _snapshot, _unchanged, seed_globals
    from manifold_course.grading.registry import get_exercise
    from manifold_course.grading.sandbox import GuardedFunction, LearnerError, describe_exception

    torch.set_num_threads(int(request.get("threads", 1)))
    exercises = [(spec, dataclasses.replace(get_exercise(spec["id"]), timeout=float(spec["timeout"])))
                 for spec in request["exercises"]]
    for spec, ex in exercises:  # the grader's cases, drawn here from the generator state it sent (not its seed)
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = spec["rng_state"]
        try:
            spec["cases"] = list(ex.cases(rng))
        except Exception:  # noqa: BLE001 - the grader reports its own failure to build cases
            spec["cases"] = []
    references = {}
    for _, ex in exercises:
        for ref in (ex.reference, ex.known_good):
            if ref is not None and getattr(ref, "__module__", "").startswith("manifold_course."):
                references[f"{ref.__module__}.{ref.__name__}"] = ref
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(wire.__file__)))
    reference_objects = {id(r) for r in references.values()}
    _guard_references(references, package_dir)
    recorded: dict[str, Any] = {}
    _hide_grader(recorded)

    # the learner's printing goes to a file in the working directory, not to the grader
    out = os.open("output.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = sys.stdout

    ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    _run_cells(request["cells"], set(request.get("skip_cells", ())), float(request["cell_budget"]), ns, chan)
    chan.send(event="cells_done")

    for spec, ex in exercises:
        chan.send(event="start", id=ex.id)
        fn = recorded.get(ex.id, ns.get(spec["name"]))
        if fn is None:
            chan.send(event="result", id=ex.id, missing=True)
            continue
        ref_classes = tuple(r for r in (ex.reference, ex.known_good) if isinstance(r, type))
        if (id(fn) in reference_objects or getattr(fn, "__manifold_reference__", None)
                or (isinstance(fn, type) and ref_classes and issubclass(fn, ref_classes))):
            chan.send(event="result", id=ex.id, is_reference=True)
            continue
        calls: list[list[Any]] = []
        # an adapted exercise records the observations of the answer (plain data), not the answer itself
        target = ex.adapter(fn) if ex.adapter is not None else fn

        def recorder(*args, _fn=target, **kwargs):
            key = wire.call_key(args, kwargs)
            try:
                result = _fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001
                err = exc if isinstance(exc, LearnerError) else describe_exception(exc)
                calls.append([key, {"kind": err.kind, "message": err.message}])
                raise
            calls.append([key, {"value": wire.encode(result)}])
            return result

        recorder.__name__ = getattr(fn, "__name__", "learner_function")
        cases = spec["cases"]
        mutated = None
        try:
            _alarm(ex.timeout)
            for i, case in enumerate(cases):
                before = [_snapshot(a) for a in case.args]
                try:
                    recorder(*case.args, **case.kwargs)
                except CellTimeout:
                    raise
                except BaseException:  # noqa: BLE001 - recorded; the grader decides
                    break
                if mutated is None and not all(_unchanged(b, a) for b, a in zip(before, case.args)):
                    mutated = i
            for prop in ex.properties:
                seed_globals()
                try:
                    prop(GuardedFunction(recorder))
                except CellTimeout:
                    raise
                except BaseException:  # noqa: BLE001 - the grader replays the property and judges
                    pass
        except CellTimeout:
            chan.send(event="result", id=ex.id, timeout=True)
            continue
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        chan.send(event="result", id=ex.id, calls=calls, mutated=mutated)
    chan.send(event="done")


if __name__ == "__main__":
    main()

"""Run a learner's code so that nothing it does can take the notebook or the grader down.

- a time limit (SIGALRM in the main thread on Unix, an asynchronous exception elsewhere),
- its printing captured and counted instead of flooding the page,
- ``sys.exit()`` and every exception turned into a :class:`LearnerError` with a plain message.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import io
import os
import signal
import sys
import sysconfig
import threading
import time
import traceback
import types
from typing import Any, Callable, Iterator


class GradingTimeout(BaseException):
    """Raised inside learner code when the time limit passes (a BaseException so that a learner's
    ``except Exception`` cannot swallow it)."""


class LearnerError(Exception):
    """Learner code failed; ``kind`` is 'not_attempted', 'error', 'timeout' or 'exit'."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class CapturedOutput(io.TextIOBase):
    """A stream that keeps the first ``keep`` characters and counts the lines of the rest."""

    def __init__(self, keep: int = 2000):
        self.keep = keep
        self.head: list[str] = []
        self.kept = 0
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.lines += s.count("\n")
        if self.kept < self.keep:
            part = s[: self.keep - self.kept]
            self.head.append(part)
            self.kept += len(part)
        return len(s)

    def text(self) -> str:
        return "".join(self.head)


REPEAT = 0.05     # seconds between repeated timeouts once a limit has passed


def _library_dirs() -> tuple[str, ...]:
    """The standard library's and the installed packages' folders (of this environment and of its base Python),
    each ending in a separator; not whole prefixes, which may contain the course itself (a venv inside the repo, or
    a Python installed at "/")."""
    dirs = set()
    for base in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=base) if base else sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                dirs.add(os.path.join(os.path.realpath(paths[key]), ""))
    # Debian's system Python keeps packages in dist-packages folders that sysconfig does not name
    extra = [p for p in sys.path if os.path.basename(os.path.normpath(p)) in ("site-packages", "dist-packages")]
    try:
        import site

        extra += list(site.getsitepackages()) + [site.getusersitepackages()]
    except AttributeError:                      # an old virtualenv's site module has neither
        pass
    dirs.update(os.path.join(os.path.realpath(p), "") for p in extra if p)
    return tuple(sorted(dirs))


_LIBRARY_PREFIXES = _library_dirs()
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")


def _is_learner_code(code) -> bool:
    """Code that is neither this package's, nor the standard library's, nor an installed package's."""
    return _is_learner_file(code.co_filename)


@functools.lru_cache(maxsize=1024)
def _is_learner_file(filename: str) -> bool:
    f = filename if filename.startswith("<") else os.path.realpath(filename)
    return not (f.startswith(_PACKAGE_DIR) or f.startswith(_LIBRARY_PREFIXES) or f.startswith("<frozen"))


def _unwinder(state: dict, frame):
    """After a limit has passed: a trace function that raises :class:`GradingTimeout` at a line of learner code,
    installed on the running frames and on every new one.

    An alarm is only handled where the interpreter checks for signals, mostly at the end of a call, so usually
    inside the ``try`` of a loop that swallows it; a line event also comes from an ``except`` clause, and an
    exception raised there leaves that ``try``. Python removes a trace function once it has raised, so every
    later alarm installs it again. (Deeply nested loops that swallow every exception can still take a while.)
    """

    def tracer(fr, event, arg):  # noqa: ARG001
        if state["active"] and event in ("call", "line") and _is_learner_code(fr.f_code):
            raise GradingTimeout()
        return tracer

    sys.settrace(tracer)
    f = frame
    while f is not None:
        if _is_learner_code(f.f_code):
            f.f_trace, f.f_trace_lines = tracer, True
        f = f.f_back
    return tracer


_CO_NEWLOCALS = 0x0002   # inspect.CO_NEWLOCALS: set on the code of functions, not of modules or class bodies


@functools.lru_cache(maxsize=64)
def _stopper_code(freevars: tuple[str, ...]):
    """A code object that accepts any arguments and raises :class:`GradingTimeout`, with the free variables
    ``freevars`` (so that it can replace the code of a closure with the same ones), or None where no such code
    can be written."""
    if not all(v.isidentifier() and not v.startswith("__") for v in freevars):
        return None
    names = ", ".join(freevars)
    src = ("def _outer():\n"
           + (f"    {' = '.join(freevars)} = None\n" if freevars else "")
           + "    def _stopped(*args, **kwargs):\n"
           + (f"        ({names},)\n" if freevars else "")
           + "        raise None\n"
           + "    return _stopped\n")
    namespace: dict = {}
    # compiled under this file's name: grading code, not learner code, for the tracer of :func:`_unwinder`
    exec(compile(src, __file__, "exec"), namespace)  # noqa: S102 - fixed text built from identifiers
    code = namespace["_outer"]().__code__
    if code.co_freevars != freevars:
        return None
    # `raise None` loads the constant None: make that constant the timeout (the learner's globals never resolve it)
    return code.replace(co_consts=tuple(GradingTimeout if c is None else c for c in code.co_consts))


def _stop_learner_functions(state: dict, frame) -> None:
    """After a limit has passed and learner code swallowed the timeout: give every learner function running on the
    stack a body that raises the timeout at once, until :func:`time_limit` ends and puts the old ones back.

    A recursion that catches the timeout and calls itself again (``try: return f(x) except BaseException: return
    f(x)``) makes two calls per level, about 2**1000 before it ends; a trace function cannot stop it, since Python
    removes one that raises. With the new body every call fails, so each frame unwinds after its two calls."""
    patched = state.setdefault("patched", {})
    seen = state.setdefault("seen_codes", set())
    new_codes = {}
    f = frame
    while f is not None:
        code = f.f_code
        if code not in seen and code.co_flags & _CO_NEWLOCALS and _is_learner_code(code):   # a function's code
            new_codes[code] = _stopper_code(code.co_freevars)
        f = f.f_back
    if not new_codes:
        return
    for ref in gc.get_referrers(*new_codes):     # one pass over the heap for all of them
        if isinstance(ref, types.FunctionType) and ref.__code__ in new_codes and id(ref) not in patched:
            stopper = new_codes[ref.__code__]
            if stopper is not None:
                patched[id(ref)] = (ref, ref.__code__)
                ref.__code__ = stopper
    seen.update(new_codes)


def _restore_learner_functions(state: dict) -> None:
    for fn, code in state.pop("patched", {}).values():
        fn.__code__ = code


def _start_function_stopper(state: dict, thread_id: int, deadline: float) -> threading.Event:
    """A thread that, once ``deadline`` (time.monotonic) has passed by a little and until the returned event is set,
    stops the learner functions on thread ``thread_id``'s stack (:func:`_stop_learner_functions`) every ``REPEAT``
    seconds. A thread, not the alarm: a recursion sits at the recursion limit, where the alarm's handler, itself a
    Python call one level deeper, fails before its first line."""
    done = threading.Event()

    def run() -> None:
        if done.wait(max(deadline - time.monotonic(), 0.0) + 2 * REPEAT):
            return
        while True:
            with state["lock"]:
                if done.is_set():
                    return
                frame = sys._current_frames().get(thread_id)
                if frame is not None:
                    _stop_learner_functions(state, frame)
                del frame
            if done.wait(REPEAT):
                return

    threading.Thread(target=run, name="grading-function-stopper", daemon=True).start()
    return done


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`GradingTimeout` in the current thread once ``seconds`` have passed. Code that swallows it
    (``except BaseException`` in a loop) is hit again: the alarm then repeats every ``REPEAT`` seconds, and each
    time installs :func:`_unwinder`, which raises it again at a line of learner code (an ``except`` clause
    included, where it leaves the ``try``). A recursion that swallows it is stopped by a thread that makes every
    learner function on the stack raise it (:func:`_stop_learner_functions`); their code is put back at the end."""
    if seconds is None or seconds <= 0:
        yield
        return
    use_alarm = hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()
    if use_alarm:
        state = {"active": True}

        def _on_alarm(signum, frame):  # noqa: ARG001
            if not state["active"]:        # a late alarm after the block: disarm, never raise into other code
                signal.setitimer(signal.ITIMER_REAL, 0)
                return
            first = "tracer" not in state
            if first:
                state["previous_trace"] = sys.gettrace()
            state["tracer"] = _unwinder(state, frame)   # again at every alarm: learner code may have removed it
            if first:
                raise GradingTimeout()

        outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)   # an enclosing limit keeps running
        began = time.monotonic()
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        state["lock"] = threading.Lock()
        stopper = _start_function_stopper(state, threading.get_ident(), began + seconds)
        signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_left) if outer_left > 0 else seconds, REPEAT)
        try:
            yield
        finally:
            state["active"] = False
            while True:                    # a repeated alarm may land here once more: disarm until it sticks
                try:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    break
                except GradingTimeout:
                    pass
            signal.signal(signal.SIGALRM, previous)
            stopper.set()
            with state["lock"]:
                _restore_learner_functions(state)
            if "tracer" in state:
                sys.settrace(state["previous_trace"])
            if outer_left > 0:
                signal.setitimer(signal.ITIMER_REAL, max(outer_left - (time.monotonic() - began), 0.001), outer_interval)
        return
    # Elsewhere (Windows, or a worker thread): a watchdog thread injects the exception.
    target = threading.get_ident()
    done = threading.Event()

    def _watchdog() -> None:
        wait = seconds
        while not done.wait(wait):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(GradingTimeout))
            wait = REPEAT

    watcher = threading.Thread(target=_watchdog, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def _learner_location(exc: BaseException) -> str:
    """' (line N of your function_name)' for the innermost frame outside the grader and libraries."""
    frames = traceback.extract_tb(exc.__traceback__)
    for fr in reversed(frames):
        f = fr.filename.replace("\\", "/")
        if "/manifold_course/" in f or "site-packages" in f or "/lib/python" in f:
            continue
        return f" (line {fr.lineno} in {fr.name})"
    return ""


def safe_text(obj: Any, use_repr: bool = False, limit: int = 300) -> str:
    """``str(obj)`` (or ``repr``), first line, shortened; a placeholder when it raises or takes over 2 s."""
    try:
        with time_limit(2.0):
            raw = repr(obj) if use_repr else str(obj)
        raw = raw if isinstance(raw, str) else ""
    except BaseException:  # noqa: BLE001 - a learner's __str__/__repr__ that raises or hangs
        return "(its message could not be shown)" if not use_repr else f"<a {type(obj).__name__}>"
    raw = raw.strip()
    return raw.splitlines()[0][:limit] if raw else ""


def describe_exception(exc: BaseException) -> LearnerError:
    """Turn whatever learner code raised into a one-line :class:`LearnerError`."""
    if isinstance(exc, NotImplementedError):
        return LearnerError("not_attempted", "not attempted yet: replace `raise NotImplementedError` with your code")
    if isinstance(exc, GradingTimeout):
        return LearnerError("timeout", "")
    if isinstance(exc, SystemExit):
        return LearnerError("exit", "your code called sys.exit() / exit(); return a value instead")
    try:
        text = safe_text(exc)
        msg = f"{type(exc).__name__}{': ' + text if text else ''}{_learner_location(exc)}"
    except BaseException:  # noqa: BLE001 - describing it failed too (a timeout repeated into this handler, a
        msg = type(exc).__name__   # recursion at the interpreter's limit): the type alone, never an escape
    return LearnerError("error", f"your code raised {msg}")


class GuardedFunction:
    """Wraps a learner's callable: any exception it raises becomes a :class:`LearnerError`."""

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "learner_function")
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.fn(*args, **kwargs)
        except (GradingTimeout, KeyboardInterrupt, LearnerError):
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit included on purpose
            raise describe_exception(exc) from None

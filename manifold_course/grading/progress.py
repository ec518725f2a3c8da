"""The learner's progress store: one JSON file, written atomically, never fatal.

Location: ``$MANIFOLD_COURSE_PROGRESS`` if set, else ``progress.json`` in the user's data
directory (``platformdirs.user_data_dir("manifold-course")``). A corrupt file is renamed to
``progress.json.corrupt-<time>`` with a warning and a fresh store begins.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


def store_path() -> Path:
    env = os.environ.get("MANIFOLD_COURSE_PROGRESS")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("manifold-course")) / "progress.json"


def load(path: Path | None = None) -> dict[str, Any]:
    """``{"exercises": {id: {...latest result..., "best": "passed"|...}}}``; empty if absent or corrupt."""
    path = path or store_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"exercises": {}}
    except OSError as exc:
        warnings.warn(f"could not read the progress file {path}: {exc}", stacklevel=2)
        return {"exercises": {}}
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("exercises"), dict):
            raise ValueError("unexpected layout")
        return data
    except ValueError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.replace(aside)
            where = f"it was moved to {aside}"
        except OSError:
            where = "it could not be moved aside"
        warnings.warn(f"the progress file {path} was unreadable ({exc}); {where} and a new one begins", stacklevel=2)
        return {"exercises": {}}


def save(data: dict[str, Any], path: Path | None = None) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path = path or store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def record(result: Any, path: Path | None = None) -> None:
    """Store one :class:`~manifold_course.grading.check.CheckResult`; warn (never raise) on failure.

    Running an untouched stub ("not attempted") is not an attempt: the store is left as it was.
    """
    if result.status == "not_attempted":
        return
    try:
        data = load(path)
        entry = data["exercises"].get(result.exercise_id, {})
        entry.update(
            status=result.status,
            message=result.message,
            seconds=round(result.seconds, 4),
            when=time.strftime("%Y-%m-%dT%H:%M:%S"),
            attempts=int(entry.get("attempts", 0)) + 1,
        )
        if result.passed or entry.get("best") == "passed":
            entry["best"] = "passed"
        else:
            entry["best"] = result.status
        data["exercises"][result.exercise_id] = entry
        save(data, path)
    except Exception as exc:  # noqa: BLE001 - progress is a convenience; grading must go on
        warnings.warn(f"could not record progress: {exc}", stacklevel=2)


def format_progress(exercises: dict[str, Any], chapters: list[tuple[str, list[str]]], verbose: bool = False) -> str:
    """The table ``manifold-course progress`` prints.

    ``exercises``: the store's ``"exercises"``; ``chapters``: (chapter path, exercise ids) in course order.
    Statuses are named with :data:`~manifold_course.grading.check.STATUS_TEXT` (the words a check cell shows).
    """
    from manifold_course.grading.check import STATUS_TEXT

    def best(ex_id: str) -> str:
        st = exercises.get(ex_id, {}).get("best", "not_attempted")
        return st if st in STATUS_TEXT else "not_attempted"

    name_w = max((len(name) for name, _ in chapters), default=0)
    bar_w = max((len(ids) for _, ids in chapters), default=0)
    num_w = len(str(bar_w))
    status_w = max(len(t) for t in STATUS_TEXT.values())
    id_w = max((len(i) for _, ids in chapters for i in ids), default=0)
    lines, total_done, total = [], 0, 0
    for name, ids in chapters:
        done = sum(best(i) == "passed" for i in ids)
        total_done, total = total_done + done, total + len(ids)
        bar = ("#" * done + "." * (len(ids) - done)).ljust(bar_w)
        lines.append(f"{name:<{name_w}}  [{bar}] {done:>{num_w}}/{len(ids)}")
        if verbose:
            for i in ids:
                st = best(i)
                n = int(exercises.get(i, {}).get("attempts", 0)) if st != "not_attempted" else 0
                tries = f"{n} attempt{'s' if n != 1 else ''}" if n else ""
                lines.append(f"    {STATUS_TEXT[st]:<{status_w}}  {i:<{id_w}}  {tries}".rstrip())
    lines.append(f"\n{total_done}/{total} exercises passed")
    return "\n".join(lines)

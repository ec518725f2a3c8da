"""Find every exercise: each module in :mod:`manifold_course.checks` lists its ``EXERCISES``.

A check module also names the notebook it grades with ``CHAPTER`` (e.g.
``"v0_roots/01_high_dimensional_geometry"``), which is how ``manifold-course progress`` groups results.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from manifold_course.grading.exercise import Exercise


@lru_cache(maxsize=None)
def _load() -> tuple[dict[str, object], dict[str, str]]:
    import manifold_course.checks as pkg

    mods, unavailable = {}, {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        try:
            mods[info.name] = importlib.import_module(f"{pkg.__name__}.{info.name}")
        except ImportError as exc:  # an optional dependency (triton, numba) is missing: only that chapter is lost
            unavailable[info.name] = f"{exc}; install it with: pip install -e '.[kernels]' (see manifold-course doctor)"
    return mods, unavailable


def check_modules() -> dict[str, object]:
    """``{chapter_key: module}`` for every module in ``manifold_course.checks`` whose imports are installed."""
    return _load()[0]


def unavailable_chapters() -> dict[str, str]:
    """``{chapter_key: why}`` for check modules that could not be imported (a missing optional dependency)."""
    return _load()[1]


def all_exercises() -> dict[str, Exercise]:
    """Every exercise by id, in the order the chapters declare them."""
    out: dict[str, Exercise] = {}
    for key, mod in sorted(check_modules().items(), key=lambda kv: getattr(kv[1], "CHAPTER", kv[0])):
        for ex in getattr(mod, "EXERCISES", []):
            if ex.chapter != key:
                raise ValueError(f"exercise {ex.id!r} is declared in checks/{key}.py; its id must start with '{key}.'")
            if ex.id in out:
                raise ValueError(f"exercise id {ex.id!r} is declared twice")
            out[ex.id] = ex
    return out


def chapter_of(chapter_key: str) -> str:
    """The notebook path (without suffix) that a check module grades."""
    return getattr(check_modules()[chapter_key], "CHAPTER", chapter_key)


@lru_cache(maxsize=None)
def _chapter_exercises(chapter_key: str) -> dict[str, Exercise] | None:
    """The exercises of one check module, importing only that module (a notebook's ``check`` needs no other
    chapter's imports); None when there is no such module or it cannot be imported."""
    import manifold_course.checks as pkg

    if not chapter_key.isidentifier() or chapter_key.startswith("_"):
        return None
    if not any(info.name == chapter_key for info in pkgutil.iter_modules(pkg.__path__)):
        return None
    try:
        mod = importlib.import_module(f"{pkg.__name__}.{chapter_key}")
    except ImportError:
        return None
    return {ex.id: ex for ex in getattr(mod, "EXERCISES", []) if ex.chapter == chapter_key}


def get_exercise(exercise_id: str) -> Exercise:
    """The exercise ``exercise_id`` (``"<chapter key>.<name>"``); a clear KeyError naming the chapter's exercises
    when there is none."""
    one = _chapter_exercises(exercise_id.split(".", 1)[0])
    if one and exercise_id in one:
        return one[exercise_id]
    exercises = all_exercises()
    if exercise_id in exercises:
        return exercises[exercise_id]
    chapter = exercise_id.split(".", 1)[0]
    if chapter in unavailable_chapters():
        raise KeyError(f"the exercises of chapter '{chapter}' cannot be graded here: {unavailable_chapters()[chapter]}")
    known = [e for e in exercises if e.startswith(chapter + ".")] or sorted(exercises)[:8]
    raise KeyError(f"there is no exercise {exercise_id!r}; did you mean one of {known}?")

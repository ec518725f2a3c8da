"""Write ``exercises/`` from ``solutions/``: every solution region becomes a stub.

A region sits between nbgrader's markers::

    ### BEGIN SOLUTION
    # Hint: work in logs (math.lgamma) so that d = 1000 does not overflow.
    ...the answer...
    ### END SOLUTION

and is released as::

    # YOUR CODE HERE
    # Hint: work in logs (math.lgamma) so that d = 1000 does not overflow.
    raise NotImplementedError("Exercise: replace this line with your code")

Comment lines that start with ``# Hint`` are kept; everything else in the region is dropped.
Both the py:percent file and its paired ``.ipynb`` (without outputs) are written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("Exercise: replace this line with your code")'
_HINT = re.compile(r"^\s*#\s*hint", re.IGNORECASE)


class ReleaseError(ValueError):
    pass


def strip_solutions(text: str, source: str = "<text>") -> str:
    """Replace every solution region in a py:percent source by a stub (keeping ``# Hint`` lines)."""
    out: list[str] = []
    inside = False
    indent = ""
    hints: list[str] = []
    begin_line = 0
    for lineno, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ReleaseError(f"{source}:{lineno}: '{BEGIN}' inside another solution region")
            inside, begin_line, hints = True, lineno, []
            indent = line[: len(line) - len(line.lstrip())]
            continue
        if stripped == END:
            if not inside:
                raise ReleaseError(f"{source}:{lineno}: '{END}' without a matching '{BEGIN}'")
            out.append(f"{indent}# YOUR CODE HERE\n")
            out.extend(f"{indent}{h.strip()}\n" for h in hints)
            out.append(f"{indent}{STUB}\n")
            inside = False
            continue
        if inside:
            if _HINT.match(line):
                hints.append(line)
            continue
        out.append(line)
    if inside:
        raise ReleaseError(f"{source}:{begin_line}: '{BEGIN}' is never closed by '{END}'")
    return "".join(out)


def ipynb_text(py_text: str) -> str:
    """The paired notebook (no outputs) of a py:percent source, as jupytext writes it."""
    import hashlib

    import jupytext

    nb = jupytext.reads(py_text, fmt="py:percent")
    for i, cell in enumerate(nb.cells):  # stable ids, so that an unchanged release rewrites nothing
        cell["id"] = hashlib.sha1(f"{i}:{cell.source}".encode()).hexdigest()[:12]
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    return jupytext.writes(nb, fmt="ipynb")


@dataclass
class ReleasePlan:
    written: list[Path]
    stale: list[Path]


def release(root: Path, check_only: bool = False, only: list[Path] | None = None) -> ReleasePlan:
    """Generate ``exercises/`` from ``solutions/`` under ``root``.

    With ``check_only`` nothing is written; ``stale`` lists the files that differ from what a
    release would write (and exercise notebooks whose solution no longer exists). ``only`` restricts the
    release to these solution files (``solutions/.../x.py``); exercise files of other solutions are then
    left alone, also those whose solution no longer exists.
    """
    sol_dir, ex_dir = root / "solutions", root / "exercises"
    if not sol_dir.is_dir():
        raise ReleaseError(f"no solutions/ folder under {root}")
    written: list[Path] = []
    stale: list[Path] = []
    expected_files: set[Path] = set()
    chosen = None
    if only is not None:
        chosen = set()
        for p in only:
            p = (p if p.is_absolute() else Path.cwd() / p).resolve().with_suffix(".py")
            if not p.is_file() or sol_dir.resolve() not in p.parents:
                raise ReleaseError(f"{p} is not a solution notebook under {sol_dir}")
            chosen.add(p)
    for sol in sorted(sol_dir.rglob("*.py")):
        if ".ipynb_checkpoints" in sol.parts:
            continue
        if chosen is not None and sol.resolve() not in chosen:
            continue
        rel = sol.relative_to(sol_dir)
        py_text = strip_solutions(sol.read_text(encoding="utf-8"), str(sol))
        targets = {ex_dir / rel: py_text, (ex_dir / rel).with_suffix(".ipynb"): ipynb_text(py_text)}
        for target, text in targets.items():
            expected_files.add(target)
            current = target.read_text(encoding="utf-8") if target.exists() else None
            if current == text:
                continue
            stale.append(target)
            if not check_only:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                written.append(target)
    if ex_dir.is_dir() and chosen is None:
        for extra in sorted(ex_dir.rglob("*")):
            if extra.suffix in (".py", ".ipynb") and ".ipynb_checkpoints" not in extra.parts and extra not in expected_files:
                stale.append(extra)
                if not check_only:
                    extra.unlink()
    return ReleasePlan(written=written, stale=stale)

"""The learner's workspace ``my_work/``: copies of the chapters and exercises that updates never overwrite.

Using the course never writes a tracked file: ``manifold-course lab`` copies ``chapters/`` to
``my_work/chapters/`` and ``exercises/`` to ``my_work/exercises/`` (a workspace made before chapters were
copied keeps its exercises where they are, at ``my_work/v0_roots/...``), and JupyterLab is rooted in
``my_work/``. ``my_work/`` is git-ignored.

Updates. ``my_work/.manifold-course.json`` (the manifest) records, for every file it wrote, a hash of the
course's version as written there. A notebook's hash covers its cells' types and sources only: outputs,
execution counts and metadata (what running a notebook or opening it in JupyterLab changes) do not count.
A notebook's py:percent file and its .ipynb are one unit (JupyterLab saves both together). On each run,
per unit:

- missing entirely: copied;
- already equal to the course's current version: nothing to do;
- unchanged since it was copied (equal to the recorded hash): replaced by the course's new version;
- changed by the learner (or of unknown origin, or half deleted): left alone; if the course has a newer
  version, it is written beside as ``NAME.new.py`` / ``NAME.new.ipynb`` and listed. A ``.new`` file is
  itself replaced by later versions unless the learner edited it.

To take an update, delete (or rename) your copy and run ``manifold-course lab`` again, or rename the
``.new`` files over it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = ".manifold-course.json"
NOTEBOOK_SUFFIXES = (".py", ".ipynb")


@dataclass
class WorkspaceReport:
    """What one :func:`prepare_workspace` run did (paths inside the workspace)."""

    workspace: Path
    exercises_dir: Path
    copied: list[Path] = field(default_factory=list)    # new files
    updated: list[Path] = field(default_factory=list)   # unchanged copies replaced by the course's new version
    beside: list[Path] = field(default_factory=list)    # NAME.new.* written beside a copy the learner changed
    left_alone: list[Path] = field(default_factory=list)  # NAME.new.* the learner edited: not rewritten

    def summary(self) -> str:
        lines = [f"your workspace: {self.workspace} (chapters in chapters/, exercises in "
                 f"{os.path.relpath(self.exercises_dir, self.workspace)}/): {len(self.copied)} files copied, "
                 f"{len(self.updated)} unchanged copies updated; what you changed is never overwritten"]
        if self.beside:
            lines.append("the course has a newer version of files you changed; it is written beside yours:")
            lines += [f"  {p.relative_to(self.workspace)}" for p in self.beside]
            lines.append("  (to take it: compare, then rename it over your copy, or delete your copy and rerun)")
        if self.left_alone:
            lines.append("newer course versions were not written over these .new files, which you edited:")
            lines += [f"  {p.relative_to(self.workspace)}" for p in self.left_alone]
        return "\n".join(lines)


def content_hash(data: bytes, suffix: str) -> str:
    """Hash of what a learner writes: a notebook's cell types and sources; any other file's bytes."""
    try:
        if suffix == ".ipynb":
            cells = json.loads(data)["cells"]
        elif suffix == ".py":
            import jupytext

            cells = jupytext.reads(data.decode("utf-8"), fmt="py:percent")["cells"]
        else:
            raise ValueError(suffix)
        key = [[c["cell_type"], c["source"] if isinstance(c["source"], str) else "".join(c["source"])]
               for c in cells]
        return "cells:" + hashlib.sha256(json.dumps(key).encode()).hexdigest()
    except Exception:  # noqa: BLE001 - an unreadable notebook is compared byte for byte
        return "bytes:" + hashlib.sha256(data).hexdigest()


def _hash(data: bytes | None, suffix: str, known: dict | None) -> str | None:
    """:func:`content_hash`, taken from the manifest's entry when the bytes are the ones recorded there."""
    if data is None:
        return None
    sha = hashlib.sha256(data).hexdigest()
    if isinstance(known, dict) and known.get("sha") == sha and "cells" in known:
        return known["cells"]  # unchanged bytes: no need to parse the notebook (or import jupytext) again
    return content_hash(data, suffix)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _units(src_dir: Path, dst_rel: str) -> list[list[tuple[Path, str]]]:
    """Notebook units under ``src_dir``: [(course file, workspace-relative path)] per py/ipynb pair."""
    units: dict[Path, list[tuple[Path, str]]] = {}
    for f in sorted(src_dir.rglob("*")):
        if f.suffix not in NOTEBOOK_SUFFIXES or ".ipynb_checkpoints" in f.parts or "__pycache__" in f.parts:
            continue
        rel = Path(dst_rel) / f.relative_to(src_dir)
        units.setdefault(rel.with_suffix(""), []).append((f, rel.as_posix()))
    return list(units.values())


def _beside(rel: str) -> str:
    p = Path(rel)
    return p.with_name(f"{p.stem}.new{p.suffix}").as_posix()


def _load_manifest(workspace: Path) -> dict:
    try:
        data = json.loads((workspace / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"version": 1, "files": {}}


def _write_unit(workspace: Path, unit: dict[str, bytes]) -> list[Path]:
    """Write a unit's files, the .ipynb first, then give all of them one mtime (jupytext compares them)."""
    written = []
    for rel, data in sorted(unit.items(), key=lambda u: not u[0].endswith(".ipynb")):
        dst = workspace / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dst)
        written.append(dst)
    now = time.time()
    for dst in written:
        os.utime(dst, (now, now))
    return written


def _exercises_dir(root: Path, workspace: Path, manifest: dict) -> str:
    """``exercises``, or ``.`` for a workspace whose exercises were copied to its top level (before chapters)."""
    if manifest.get("exercises_dir") in ("exercises", "."):
        return manifest["exercises_dir"]
    src = root / "exercises"
    legacy = any((workspace / f.relative_to(src)).exists() for f in src.rglob("*") if f.suffix in NOTEBOOK_SUFFIXES)
    return "." if legacy else "exercises"


def prepare_workspace(root: Path, workspace: Path) -> WorkspaceReport:
    """Copy or update the course's chapters and exercises into ``workspace`` (rules: see the module docstring)."""
    workspace.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(workspace)
    recorded: dict[str, dict] = manifest["files"]  # {path: {"sha": bytes' sha256, "cells": content_hash}}
    ex_dir = _exercises_dir(root, workspace, manifest)
    report = WorkspaceReport(workspace, (workspace / ex_dir).resolve())
    units = _units(root / "chapters", "chapters") + _units(root / "exercises", ex_dir)
    if (root / "jupytext.toml").exists():  # pairing py:percent <-> ipynb inside the workspace too
        units.append([(root / "jupytext.toml", "jupytext.toml")])
    def cells(entry) -> str | None:
        return entry.get("cells") if isinstance(entry, dict) else None

    def record(rels_data: dict[str, bytes]) -> None:
        for rel, data in rels_data.items():
            entry = recorded.get(rel)
            recorded[rel] = {"sha": hashlib.sha256(data).hexdigest(),
                             "cells": _hash(data, Path(rel).suffix, entry if isinstance(entry, dict) else None)}

    for unit in units:
        new = {rel: src.read_bytes() for src, rel in unit}
        new_hash = {rel: _hash(d, Path(rel).suffix, recorded.get(rel)) for rel, d in new.items()}
        have = {rel: _hash(_read(workspace / rel), Path(rel).suffix, recorded.get(rel)) for rel in new}
        if all(h is None for h in have.values()):
            report.copied += _write_unit(workspace, new)
        elif have == new_hash:
            pass  # already the course's current version
        elif all(have[r] is not None and have[r] == cells(recorded.get(r)) for r in new):
            report.updated += _write_unit(workspace, new)  # the learner never changed it: take the new version
        elif all(cells(recorded.get(r)) == new_hash[r] for r in new):
            continue  # the learner's copy, and the course has not changed since it was copied
        else:
            # the learner's copy: keep it; the course's newer version goes beside it
            side = {_beside(r): d for r, d in new.items()}
            side_have = {r: _hash(_read(workspace / r), Path(r).suffix, recorded.get(r)) for r in side}
            side_new = {_beside(r): h for r, h in new_hash.items()}
            if side_have == side_new:
                pass
            elif all(h is None for h in side_have.values()) or all(
                    side_have[r] is not None and side_have[r] == cells(recorded.get(r)) for r in side):
                report.beside += _write_unit(workspace, side)
            else:
                report.left_alone += [workspace / r for r in side]
                continue
            record(side)
            continue  # the learner's files keep their recorded base
        record(new)
    manifest["exercises_dir"] = ex_dir
    tmp = workspace / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, workspace / MANIFEST)
    return report

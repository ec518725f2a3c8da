import json
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIRS = ("chapters", "solutions", "exercises")
PY_FILES = sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).rglob("*.py") if ".ipynb_checkpoints" not in p.parts)
IPYNB_FILES = sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _cells(path):
    nb = jupytext.read(path)
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.source.strip()]


def test_there_are_notebooks_to_check():
    assert len(PY_FILES) >= 9


@pytest.mark.parametrize("py", PY_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_py_and_ipynb_hold_the_same_cells(py):
    nb = py.with_suffix(".ipynb")
    assert nb.exists(), f"{py.relative_to(ROOT)} has no paired .ipynb: jupytext --to ipynb {py.relative_to(ROOT)}"
    assert _cells(py) == _cells(nb), (
        f"{nb.relative_to(ROOT)} is out of sync with its .py: jupytext --sync {py.relative_to(ROOT)}")


@pytest.mark.parametrize("nb", IPYNB_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_notebooks_hold_no_outputs(nb):
    data = json.loads(nb.read_text())
    dirty = [i for i, c in enumerate(data["cells"]) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{nb.relative_to(ROOT)} holds outputs in cells {dirty}; strip them before committing"


@pytest.mark.parametrize("nb", IPYNB_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_ipynb_has_a_py_source(nb):
    assert nb.with_suffix(".py").exists()

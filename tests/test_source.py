"""Source hygiene: nothing the package compiles warns today and breaks tomorrow."""

import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for folder in ("manifold_course", "kernels") for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_compiles_without_warnings(path):
    """An invalid escape such as "\\sum" in a docstring is a SyntaxWarning now and an error in a later Python:
    docstrings with LaTeX are raw strings (r\"\"\"...\"\"\")."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(path.read_text(), str(path), "exec")


def test_an_invalid_escape_is_caught():
    with warnings.catch_warnings(), pytest.raises((SyntaxWarning, DeprecationWarning, SyntaxError)):
        warnings.simplefilter("error")
        compile('"""$\\sum_i x_i$"""', "<doc>", "exec")

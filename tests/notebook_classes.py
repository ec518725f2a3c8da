"""One test class per notebook, for the suites that run whole notebooks (moved-seed chapters, exercises notebooks).

``./course test`` runs with ``--dist loadscope``, which sends each class to one worker: a class per notebook spreads
the notebooks over the workers instead of queueing them on one (as a parametrized function's cases would), and
conftest.py orders the classes by their ``notebook`` attribute (largest first).
"""

import re
from pathlib import Path
from typing import Callable

import pytest


def notebook_class(prefix: str, rel: Path, notebook: Path, test_name: str, run: Callable[..., None]) -> type:
    """A class ``prefix + rel`` (non-word characters as ``_``) with one test, ``test_name``, calling
    ``run(record_property)``; it is marked ``notebook`` and carries the notebook's path."""

    @pytest.mark.notebook
    def test(self, record_property):
        run(record_property)

    test.__name__ = test_name
    return type(prefix + re.sub(r"\W", "_", str(rel.with_suffix(""))), (), {test_name: test, "notebook": notebook})


def add_notebook_classes(namespace: dict, classes: list[type]) -> None:
    """Put the classes in a test module's namespace, where pytest collects them."""
    for cls in classes:
        namespace[cls.__name__] = cls

# The learner's workspace (manifold_course/workspace.py): copies of chapters and exercises that course updates
# refresh while they are untouched and never overwrite once the learner changed them. A small fake course in tmp_path.
import json
from pathlib import Path

import jupytext
import pytest

from manifold_course.workspace import MANIFEST, prepare_workspace

PY = """# %% [markdown]
# # Volume 0, Chapter 1: {title}

# %%
x = {value}
print(x)
"""


def _write_notebook(base: Path, title: str = "Geometry", value: int = 1) -> None:
    base.parent.mkdir(parents=True, exist_ok=True)
    text = PY.format(title=title, value=value)
    base.with_suffix(".py").write_text(text)
    base.with_suffix(".ipynb").write_text(jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="ipynb"))


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    _write_notebook(root / "chapters" / "v0_roots" / "01_geometry")
    _write_notebook(root / "chapters" / "v0_roots" / "02_elbo", title="ELBO")
    _write_notebook(root / "exercises" / "v0_roots" / "01_geometry", value=10)
    (root / "jupytext.toml").write_text('formats = "ipynb,py:percent"\n')
    return root


def _run_like_a_learner(ipynb: Path) -> None:
    """What Run All + save does to a notebook: outputs, execution counts, kernel metadata; sources unchanged."""
    nb = json.loads(ipynb.read_text())
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = i + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11"}
    ipynb.write_text(json.dumps(nb))
    py = ipynb.with_suffix(".py")
    header = ("# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3 (ipykernel)\n#     language: python\n"
              "#     name: python3\n# ---\n\n")
    py.write_text(header + py.read_text())


def test_first_run_copies_chapters_exercises_and_the_pairing_config(course, tmp_path):
    ws = tmp_path / "ws"
    rep = prepare_workspace(course, ws)
    for rel in ["chapters/v0_roots/01_geometry.py", "chapters/v0_roots/01_geometry.ipynb",
                "chapters/v0_roots/02_elbo.ipynb", "exercises/v0_roots/01_geometry.py", "jupytext.toml"]:
        assert (ws / rel).read_bytes() == (course / rel).read_bytes(), rel
    assert len(rep.copied) == 7 and not rep.updated and not rep.beside
    assert json.loads((ws / MANIFEST).read_text())["exercises_dir"] == "exercises"
    again = prepare_workspace(course, ws)
    assert not again.copied and not again.updated and not again.beside


def test_untouched_copy_is_updated_even_after_running_it(course, tmp_path):
    ws = tmp_path / "ws"
    prepare_workspace(course, ws)
    _run_like_a_learner(ws / "chapters/v0_roots/01_geometry.ipynb")
    assert not prepare_workspace(course, ws).updated  # outputs are not a change, and the course did not change
    _write_notebook(course / "chapters/v0_roots/01_geometry", value=2)  # the course is updated
    rep = prepare_workspace(course, ws)
    assert sorted(p.name for p in rep.updated) == ["01_geometry.ipynb", "01_geometry.py"]
    assert "x = 2" in (ws / "chapters/v0_roots/01_geometry.py").read_text()
    assert "x = 2" in (ws / "chapters/v0_roots/01_geometry.ipynb").read_text()
    assert not list(ws.rglob("*.new.*"))


def test_edited_copy_is_kept_and_the_new_version_written_beside(course, tmp_path):
    ws = tmp_path / "ws"
    prepare_workspace(course, ws)
    mine = ws / "exercises/v0_roots/01_geometry.ipynb"
    mine.write_text(mine.read_text().replace("x = 10", "x = 42  # my answer"))  # edited as .ipynb only
    assert not prepare_workspace(course, ws).beside  # the course has not changed: nothing to say
    _write_notebook(course / "exercises/v0_roots/01_geometry", value=11)
    rep = prepare_workspace(course, ws)
    assert "my answer" in mine.read_text() and "x = 10" in mine.with_suffix(".py").read_text()  # both kept: a pair
    assert sorted(p.name for p in rep.beside) == ["01_geometry.new.ipynb", "01_geometry.new.py"]
    assert "x = 11" in (ws / "exercises/v0_roots/01_geometry.new.py").read_text()
    assert "01_geometry.new.py" in rep.summary()
    # later versions replace the untouched .new files; one the learner edited is left alone
    assert not prepare_workspace(course, ws).beside
    _write_notebook(course / "exercises/v0_roots/01_geometry", value=12)
    assert len(prepare_workspace(course, ws).beside) == 2
    side = ws / "exercises/v0_roots/01_geometry.new.py"
    assert "x = 12" in side.read_text()
    side.write_text(side.read_text() + "\ny = 3\n")
    _write_notebook(course / "exercises/v0_roots/01_geometry", value=13)
    rep = prepare_workspace(course, ws)
    assert "y = 3" in side.read_text() and side in rep.left_alone and "my answer" in mine.read_text()


def test_taking_the_new_version_by_renaming_it_over_the_copy(course, tmp_path):
    ws = tmp_path / "ws"
    prepare_workspace(course, ws)
    mine = ws / "chapters/v0_roots/02_elbo.py"
    mine.write_text(mine.read_text() + "\n# %%\nmy_experiment = 1\n")
    _write_notebook(course / "chapters/v0_roots/02_elbo", value=5)
    prepare_workspace(course, ws)
    for suffix in (".py", ".ipynb"):
        (ws / f"chapters/v0_roots/02_elbo.new{suffix}").replace(ws / f"chapters/v0_roots/02_elbo{suffix}")
    rep = prepare_workspace(course, ws)
    assert not rep.beside and not rep.updated and not list(ws.rglob("*.new.*"))
    _write_notebook(course / "chapters/v0_roots/02_elbo", value=6)  # and it is untouched again: updated
    assert len(prepare_workspace(course, ws).updated) == 2


def test_a_deleted_copy_comes_back(course, tmp_path):
    ws = tmp_path / "ws"
    prepare_workspace(course, ws)
    for suffix in (".py", ".ipynb"):
        (ws / f"chapters/v0_roots/01_geometry{suffix}").unlink()
    assert len(prepare_workspace(course, ws).copied) == 2


def test_an_old_workspace_keeps_its_exercises_where_they_are(course, tmp_path):
    ws = tmp_path / "ws"
    old = ws / "v0_roots" / "01_geometry"  # exercises copied to the top level, before chapters and the manifest
    _write_notebook(old, value=99)
    rep = prepare_workspace(course, ws)
    assert not (ws / "exercises").exists() and "x = 99" in old.with_suffix(".py").read_text()
    assert (ws / "chapters/v0_roots/01_geometry.py").exists()
    assert sorted(p.name for p in rep.beside) == ["01_geometry.new.ipynb", "01_geometry.new.py"]
    assert rep.exercises_dir == ws.resolve()
    _write_notebook(course / "exercises" / "v0_roots" / "03_new", value=3)  # a new exercise joins them there
    assert (ws / "v0_roots/03_new.py") in prepare_workspace(course, ws).copied


def test_an_unchanged_old_workspace_is_adopted_without_new_files(course, tmp_path):
    ws = tmp_path / "ws"
    _write_notebook(ws / "v0_roots" / "01_geometry", value=10)  # identical to the course's exercise
    rep = prepare_workspace(course, ws)
    assert not rep.beside and not list(ws.rglob("*.new.*"))
    _write_notebook(course / "exercises/v0_roots/01_geometry", value=11)
    assert len(prepare_workspace(course, ws).updated) == 2


def test_an_unreadable_manifest_is_treated_as_an_old_workspace(course, tmp_path):
    ws = tmp_path / "ws"
    prepare_workspace(course, ws)
    mine = ws / "chapters/v0_roots/01_geometry.py"
    mine.write_text(mine.read_text() + "\n# %%\nmine = 1\n")
    (ws / MANIFEST).write_text("{broken")
    _write_notebook(course / "chapters/v0_roots/01_geometry", value=7)
    prepare_workspace(course, ws)
    assert "mine = 1" in mine.read_text() and (ws / "chapters/v0_roots/01_geometry.new.py").exists()

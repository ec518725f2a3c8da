from pathlib import Path

import jupytext
import pytest

from manifold_course.grading.release import STUB, ReleaseError, release, strip_solutions

ROOT = Path(__file__).resolve().parents[1]

SOLUTION = '''# %% [markdown]
# **Exercise.** Double it.

# %%
def double(x):
    """Return 2x."""
    ### BEGIN SOLUTION
    # Hint: multiplication works.
    y = x + x
    return y
    ### END SOLUTION

# %%
check("demo.double", double)
'''


def test_region_becomes_a_stub_keeping_hints_and_indentation():
    out = strip_solutions(SOLUTION)
    assert "x + x" not in out and "BEGIN SOLUTION" not in out
    assert f"    # Hint: multiplication works.\n    {STUB}\n" in out
    assert '    """Return 2x."""' in out and 'check("demo.double", double)' in out


def test_stub_raises_not_implemented():
    src = strip_solutions(SOLUTION)
    exec(src, namespace := {"check": lambda *a: None})  # noqa: S102
    with pytest.raises(NotImplementedError):
        namespace["double"](1)


@pytest.mark.parametrize("bad, match", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a matching"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_unbalanced_markers_are_errors(bad, match):
    with pytest.raises(ReleaseError, match=match):
        strip_solutions(bad)


def test_release_writes_pairs_and_check_detects_staleness(tmp_path):
    (tmp_path / "solutions" / "v9").mkdir(parents=True)
    (tmp_path / "solutions" / "v9" / "01_demo.py").write_text(SOLUTION)
    assert release(tmp_path, check_only=True).stale  # nothing released yet
    plan = release(tmp_path)
    ex_py = tmp_path / "exercises" / "v9" / "01_demo.py"
    ex_nb = tmp_path / "exercises" / "v9" / "01_demo.ipynb"
    assert set(plan.written) == {ex_py, ex_nb}
    assert STUB in ex_py.read_text()
    nb = jupytext.read(ex_nb)
    assert any(STUB in c.source for c in nb.cells) and all(not c.get("outputs") for c in nb.cells)
    assert release(tmp_path, check_only=True).stale == []
    ex_py.write_text(ex_py.read_text() + "\n# edited by hand\n")
    assert release(tmp_path, check_only=True).stale == [ex_py]


def test_release_removes_exercises_whose_solution_is_gone(tmp_path):
    (tmp_path / "solutions").mkdir()
    orphan = tmp_path / "exercises" / "old.py"
    orphan.parent.mkdir()
    orphan.write_text("# old\n")
    assert release(tmp_path, check_only=True).stale == [orphan]
    release(tmp_path)
    assert not orphan.exists()


def test_course_exercises_are_up_to_date_with_solutions():
    plan = release(ROOT, check_only=True)
    assert plan.stale == [], f"exercises/ is stale; run `manifold-course release`: {plan.stale}"


def test_release_of_chosen_solutions_leaves_the_others_alone(tmp_path):
    (tmp_path / "solutions" / "v9").mkdir(parents=True)
    mine = tmp_path / "solutions" / "v9" / "01_demo.py"
    mine.write_text(SOLUTION)
    (tmp_path / "solutions" / "v9" / "02_half_written.py").write_text("### BEGIN SOLUTION\n")  # someone else's draft
    orphan = tmp_path / "exercises" / "old.py"
    orphan.parent.mkdir()
    orphan.write_text("# old\n")
    plan = release(tmp_path, only=[mine.with_suffix(".ipynb")])
    assert {p.name for p in plan.written} == {"01_demo.py", "01_demo.ipynb"} and orphan.exists()
    with pytest.raises(ReleaseError, match="never closed"):
        release(tmp_path)
    with pytest.raises(ReleaseError, match="not a solution notebook"):
        release(tmp_path, only=[tmp_path / "exercises" / "old.py"])

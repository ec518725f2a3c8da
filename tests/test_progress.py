import json
import os

import pytest

from manifold_course.grading import progress
from manifold_course.grading.check import CheckResult


def _result(status="passed", ex_id="demo.x"):
    return CheckResult(ex_id, "X", status, "" if status == "passed" else "wrong", 1, 2, 0.1)


def test_record_creates_the_store(tmp_path):
    path = tmp_path / "sub" / "progress.json"
    progress.record(_result(), path)
    data = json.loads(path.read_text())
    assert data["exercises"]["demo.x"]["best"] == "passed"


def test_best_stays_passed_after_a_later_failure(tmp_path):
    path = tmp_path / "p.json"
    progress.record(_result("passed"), path)
    progress.record(_result("failed"), path)
    entry = progress.load(path)["exercises"]["demo.x"]
    assert entry["best"] == "passed" and entry["status"] == "failed" and entry["attempts"] == 2


def test_corrupt_store_is_set_aside_with_a_warning(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        data = progress.load(path)
    assert data == {"exercises": {}}
    assert [p.name for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert not path.exists()


def test_record_on_corrupt_store_keeps_going(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("[1, 2, 3]")
    with pytest.warns(UserWarning):
        progress.record(_result(), path)
    assert progress.load(path)["exercises"]["demo.x"]["best"] == "passed"


def test_write_is_atomic_no_temporary_left_behind(tmp_path):
    path = tmp_path / "p.json"
    for i in range(5):
        progress.record(_result(ex_id=f"demo.x{i}"), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_failed_save_leaves_the_old_store_intact(tmp_path, monkeypatch):
    path = tmp_path / "p.json"
    progress.record(_result(), path)
    before = path.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.warns(UserWarning, match="could not record progress"):
        progress.record(_result(ex_id="demo.y"), path)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_unwritable_location_warns_and_does_not_raise(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="could not record progress"):
        progress.record(_result(), blocker / "p.json")


def test_store_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MANIFOLD_COURSE_PROGRESS", str(tmp_path / "mine.json"))
    assert progress.store_path() == tmp_path / "mine.json"
    monkeypatch.delenv("MANIFOLD_COURSE_PROGRESS")
    assert progress.store_path().name == "progress.json"


def test_an_untouched_stub_is_not_an_attempt(tmp_path):
    path = tmp_path / "p.json"
    progress.record(_result("not_attempted"), path)
    assert progress.load(path)["exercises"] == {}
    progress.record(_result("failed"), path)
    progress.record(_result("not_attempted"), path)  # back to the stub: the last real attempt stays
    entry = progress.load(path)["exercises"]["demo.x"]
    assert entry["attempts"] == 1 and entry["best"] == "failed"


def test_progress_table_uses_the_check_words_and_aligns_columns():
    from manifold_course.grading.check import STATUS_TEXT

    store = {"a.short": {"best": "passed", "attempts": 2},
             "b.a_very_long_exercise_name_indeed": {"best": "failed", "attempts": 1},
             "b.old": {"best": "not_attempted", "attempts": 3}}  # an old store counted stub runs
    chapters = [("v0_roots/01_a", ["a.short", "a.none"]),
                ("v9_long/07_a_chapter_with_a_much_longer_name", ["b.a_very_long_exercise_name_indeed", "b.old", "b.t"])]
    out = progress.format_progress(store, chapters, verbose=True)
    lines = out.splitlines()
    heads = [ln for ln in lines if ln.startswith("v")]
    assert len({ln.index("[") for ln in heads}) == 1 and len({ln.index("/", ln.index("]")) for ln in heads}) == 1
    rows = [ln for ln in lines if ln.startswith("    ")]
    ids = [i for _, chapter_ids in chapters for i in chapter_ids]
    assert len({ln.index(next(i for i in ids if f" {i}" in ln)) for ln in rows}) == 1  # ids in one column
    words = {ln[4:].split("  ")[0].strip() for ln in rows}
    assert words <= set(STATUS_TEXT.values()) and {"passed", "wrong answer", "not attempted"} <= words
    assert "done" not in out and "not_attempted" not in out and "failed" not in out
    assert "2 attempts" in out and "3 attempt" not in out
    assert lines[-1] == "1/5 exercises passed"

import json
from pathlib import Path

from manifold_course import cli
from manifold_course.cli import main, prepare_workspace, write_lab_settings

ROOT = Path(__file__).resolve().parents[1]


def test_doctor_reports_versions_and_mode(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and ("CPU mode" in out or "GPU mode" in out) and "progress store" in out


def test_doctor_names_missing_packages_and_the_fix(monkeypatch, capsys):
    monkeypatch.setattr(cli, "DEPENDENCIES", cli.DEPENDENCIES + [("no-such-dist-xyz", "xyz", None, "testing")])
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "MISSING required packages: no-such-dist-xyz" in out and "pip install -e ." in out


def test_bench_on_cpu_says_it_cannot_measure_and_exits_0(capsys):
    import torch

    assert main(["bench"]) == 0
    if not torch.cuda.is_available():
        assert "cannot be measured" in capsys.readouterr().out


def test_progress_lists_every_chapter(monkeypatch, tmp_path, capsys):
    store = tmp_path / "p.json"
    monkeypatch.setenv("MANIFOLD_COURSE_PROGRESS", str(store))
    from manifold_course.grading.registry import all_exercises

    first = next(iter(all_exercises()))
    store.write_text(json.dumps({"exercises": {first: {"best": "passed", "status": "passed"}}}))
    assert main(["progress", "-v"]) == 0
    out = capsys.readouterr().out
    assert "v0_roots/01_high_dimensional_geometry" in out and f"1/{len(all_exercises())} exercises passed" in out
    assert f"passed         {first}" in out and "not attempted" in out and "done" not in out


def test_release_check_passes_on_the_course(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["release", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_workspace_copy_never_overwrites_the_learners_work(tmp_path):
    ws = tmp_path / "ws"
    first = prepare_workspace(ROOT, ws).copied
    assert first and all(p.exists() for p in first)
    assert {p.relative_to(ws).parts[0] for p in first} == {"chapters", "exercises", "jupytext.toml"}
    mine = first[0]
    mine.write_text("my answers")
    again = prepare_workspace(ROOT, ws)
    assert not again.copied and not again.updated and mine.read_text() == "my answers"


def test_lab_settings_make_py_files_open_as_notebooks(tmp_path):
    target = write_lab_settings(tmp_path)
    data = json.loads(target.read_text())
    assert data["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"
    assert data["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_lab_settings_keep_other_overrides(tmp_path):
    target = tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    data = json.loads(write_lab_settings(tmp_path).read_text())
    assert data["@jupyterlab/apputils-extension:themes"]["theme"] == "JupyterLab Dark"


def test_lab_dry_run_prepares_the_workspace(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert main(["lab", "--workspace", str(tmp_path / "ws"), "--dry-run", "--no-browser"]) == 0
    out = capsys.readouterr().out
    assert "jupyterlab" in out and "--no-browser" in out and f"--ServerApp.root_dir={tmp_path / 'ws'}" in out
    assert list((tmp_path / "ws" / "chapters").rglob("*.ipynb")) and list((tmp_path / "ws" / "exercises").rglob("*.ipynb"))

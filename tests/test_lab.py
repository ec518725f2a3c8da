# The README's main job: `manifold-course lab` starts a real JupyterLab (as root too), rooted in the learner's
# workspace, in which a chapter's py:percent copy opens as a notebook, and using it never writes a tracked file.
# The server runs on 127.0.0.1 only and is stopped at the end.
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "chapters/v0_roots/01_high_dimensional_geometry.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str, method: str = "GET", body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as resp:  # noqa: S310 - loopback only
        return resp.status, resp.read()


def _course_state() -> tuple[str, dict[str, str]]:
    """`git status` of the course's notebooks (where it is a git checkout) and a hash of every file there."""
    dirs = ["chapters", "exercises", "solutions", "jupytext.toml"]
    status = ""
    if (ROOT / ".git").exists() and shutil.which("git"):
        status = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--", *dirs],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
    files = [f for d in dirs for f in ([ROOT / d] if (ROOT / d).is_file() else (ROOT / d).rglob("*")) if f.is_file()]
    return status, {str(f.relative_to(ROOT)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port, token = _free_port(), "manifold-test-token"
    ws = tmp_path_factory.mktemp("ws")
    before = _course_state()
    cmd = [sys.executable, "-m", "manifold_course.cli", "lab", "--workspace", str(ws), "--no-browser",
           "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False"]
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(ws / ".runtime"))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            _get(f"{base}/api/status", token)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {proc.stdout.read()[-2000:]}")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("jupyter lab did not answer within 60 s")
    yield base, token, ws, before
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_lab_serves_the_course(lab):
    base, token, _, _ = lab
    status, body = _get(f"{base}/lab", token)
    assert status == 200 and b"JupyterLab" in body


def test_chapter_source_opens_as_a_notebook(lab):
    base, token, _, _ = lab
    status, body = _get(f"{base}/api/contents/{CHAPTER}?type=notebook&content=1", token)
    model = json.loads(body)
    assert status == 200 and model["type"] == "notebook"
    assert len(model["content"]["cells"]) > 10


def test_chapters_and_exercises_are_copied_into_the_workspace(lab):
    _, _, ws, _ = lab
    for name in ["chapters", "exercises"]:
        assert (ws / name / "v0_roots" / "01_high_dimensional_geometry.ipynb").exists()
        assert (ws / name / "v0_roots" / "01_high_dimensional_geometry.py").exists()
    assert (ws / ".manifold-course.json").exists() and (ws / "jupytext.toml").exists()


def _save_with_outputs(base: str, token: str, path: str, edit: str | None = None) -> None:
    """Open a notebook in JupyterLab and save it as after Run All (an output in every code cell), maybe edited."""
    _, body = _get(f"{base}/api/contents/{path}?type=notebook&content=1", token)
    nb = json.loads(body)["content"]
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = i + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
    if edit is not None:
        nb["cells"].append({"cell_type": "code", "source": edit, "metadata": {}, "outputs": [], "execution_count": None})
    status, _ = _get(f"{base}/api/contents/{path}", token, "PUT", {"type": "notebook", "format": "json", "content": nb})
    assert status == 200, path


def test_saving_every_chapter_never_changes_the_course(lab):
    base, token, ws, before = lab
    chapters = sorted(p.relative_to(ws).as_posix() for p in (ws / "chapters").rglob("*.py"))
    assert len(chapters) >= 10
    for path in chapters:
        _save_with_outputs(base, token, path)  # JupyterLab's default view of a chapter: the py:percent file
    _save_with_outputs(base, token, "exercises/v0_roots/01_high_dimensional_geometry.ipynb")
    saved = json.loads((ws / CHAPTER.replace(".py", ".ipynb")).read_text())
    assert any(c.get("outputs") for c in saved["cells"])  # the save reached the workspace copy (paired .ipynb)
    assert _course_state() == before


def test_a_second_lab_run_updates_untouched_copies_and_keeps_edited_ones(lab, tmp_path, monkeypatch, capsys):
    base, token, ws, before = lab
    untouched, edited = "chapters/v0_roots/01_high_dimensional_geometry", "chapters/v0_roots/02_variational_inference_elbo"
    _save_with_outputs(base, token, untouched + ".py")
    _save_with_outputs(base, token, edited + ".py", edit="my_experiment = 42")
    # the course is updated (a tmp copy of it, with one new cell in both chapters)
    course = tmp_path / "course"
    for d in ["chapters", "exercises", "solutions"]:
        shutil.copytree(ROOT / d, course / d)
    shutil.copy(ROOT / "jupytext.toml", course / "jupytext.toml")
    for name in (untouched, edited):
        nb = jupytext.read(course / f"{name}.py")
        nb.cells.append(jupytext.reads("# %% [markdown]\n# An update of the course.\n", fmt="py:percent").cells[0])
        jupytext.write(nb, course / f"{name}.ipynb")
        jupytext.write(nb, course / f"{name}.py", fmt="py:percent")
    monkeypatch.chdir(course)
    from manifold_course.cli import main

    assert main(["lab", "--workspace", str(ws), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "An update of the course." in (ws / f"{untouched}.py").read_text()
    assert "An update of the course." in (ws / f"{untouched}.ipynb").read_text()
    mine = (ws / f"{edited}.py").read_text()
    assert "my_experiment = 42" in mine and "An update of the course." not in mine
    assert "An update of the course." in (ws / f"{edited}.new.py").read_text()
    assert f"{edited}.new.py" in out
    for path in (f"{untouched}.py", f"{edited}.py", f"{edited}.new.py"):  # all of them open in JupyterLab
        status, body = _get(f"{base}/api/contents/{path}?type=notebook&content=1", token)
        assert status == 200 and json.loads(body)["type"] == "notebook"
    assert _course_state() == before


def test_py_files_default_to_the_notebook_view():
    target = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    data = json.loads(target.read_text())
    assert data["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"

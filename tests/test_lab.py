# The README's main job: `manifold-course lab` starts a real JupyterLab (as root too) in which a chapter's
# py:percent source opens as a notebook. The server runs on 127.0.0.1 only and is stopped at the end.
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "chapters/v0_roots/01_high_dimensional_geometry.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        return resp.status, resp.read()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port, token = _free_port(), "manifold-test-token"
    ws = tmp_path_factory.mktemp("ws")
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
    yield base, token, ws
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_lab_serves_the_course(lab):
    base, token, _ = lab
    status, body = _get(f"{base}/lab", token)
    assert status == 200 and b"JupyterLab" in body


def test_chapter_source_opens_as_a_notebook(lab):
    base, token, _ = lab
    status, body = _get(f"{base}/api/contents/{CHAPTER}?type=notebook&content=1", token)
    model = json.loads(body)
    assert status == 200 and model["type"] == "notebook"
    assert len(model["content"]["cells"]) > 10


def test_exercises_are_copied_into_the_workspace(lab):
    _, _, ws = lab
    assert (ws / "v0_roots" / "01_high_dimensional_geometry.ipynb").exists()


def test_py_files_default_to_the_notebook_view():
    target = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    data = json.loads(target.read_text())
    assert data["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"] == "Jupytext Notebook"

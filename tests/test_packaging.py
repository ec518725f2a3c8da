import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONDA_NAMES = {"torch": "pytorch"}  # conda-forge spells some packages differently


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower()


def test_environment_yml_lists_every_dependency_of_pyproject():
    project = PYPROJECT["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in ("lab", "kernels", "dev"):
        wanted |= {_name(r) for r in project["optional-dependencies"][extra]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pip_names = {_name(p) for p in pip if not p.startswith("-e")}
    listed = conda | pip_names
    missing = {n for n in wanted if CONDA_NAMES.get(n, n) not in listed}
    extra = {n for n in listed if n not in {CONDA_NAMES.get(w, w) for w in wanted} | {"python", "pip"}}
    assert not missing, f"environment.yml lacks {sorted(missing)}"
    assert not extra, f"environment.yml has {sorted(extra)} that pyproject.toml does not"
    assert "-e ." in pip


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "manifold_course").rglob("__init__.py")}
    assert found - listed == set(), f"add {sorted(found - listed)} to [tool.setuptools] packages"


def test_kernels_install_as_a_subpackage_not_a_top_level_module(tmp_path):
    code = ("import importlib.util, manifold_course.kernels as k; "
            "assert importlib.util.find_spec('kernels') is None, 'a top-level kernels module is importable'; "
            "print(k.__name__, k.MODE.gpu)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("manifold_course.kernels")


def test_importing_the_package_has_no_side_effects(tmp_path):
    code = ("import os, sys; before = dict(os.environ); import manifold_course, manifold_course.grading, "
            "manifold_course.data; assert dict(os.environ) == before; "
            "assert 'matplotlib.pyplot' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./course test" in readme and "exec ./course test" in ci
    assert "./course lab" in readme

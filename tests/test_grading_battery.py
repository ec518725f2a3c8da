"""A battery of bad and malicious submissions through ``manifold-course grade``, each with the outcome a
trustworthy grader gives: no forged score, no hang beyond the limit plus a few seconds, nothing outside the
submission changed, every declared exercise of the assignment scored.

Most attacks share one notebook (one attack per exercise of the ten in ``high_dim_geometry``) so that the
battery costs a few grading runs, not dozens.
"""

import inspect
import json
import textwrap
import time
from pathlib import Path

import pytest

from manifold_course.cli import main
from manifold_course.geometry import separability, volumes
from manifold_course.grading.isolated import bwrap_works, redact
from manifold_course.grading.notebook import grade_notebook
from manifold_course.grading.registry import check_modules

CHAPTER = "high_dim_geometry"
IDS = [e.id for e in check_modules()[CHAPTER].EXERCISES]
NAME = "01_high_dimensional_geometry"     # the chapter's notebook name: the assignment is inferred from it


def _nb(path: Path, cells: list[str]) -> Path:
    path.write_text("".join(f"# %%\n{textwrap.dedent(c).strip()}\n\n" for c in cells))
    return path


def _source(fn) -> str:
    return textwrap.dedent(inspect.getsource(fn))


HEAD = """
import math, os, sys, subprocess, time
import numpy as np
import torch
from manifold_course.grading import check
"""


@pytest.fixture(scope="module")
def battery(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    (root / "alice").mkdir()
    (root / "bob").mkdir()
    victim = _nb(root / "bob" / f"{NAME}.py", [HEAD, _source(volumes.ball_cube_volume_ratio),
                                                f'check("{IDS[0]}", ball_cube_volume_ratio)'])
    victim_text = victim.read_text()
    out = root / "out"
    attacker = root / "alice" / f"{NAME}.py"
    cells = [
        HEAD,
        # 1: a correct answer
        _source(volumes.ball_cube_volume_ratio),
        f'check("{IDS[0]}", ball_cube_volume_ratio)',
        # forge the score: rows appended to a results file, the report and another student's notebook rewritten,
        # this notebook rewritten after grading by a detached process
        f"""
        for target in [os.environ.get("MANIFOLD_COURSE_REPORT", "results.jsonl"), {str(out / 'report.json')!r},
                       {str(victim)!r}, {str(attacker)!r}]:
            try:
                with open(target, "a") as fh:
                    fh.write('{{"exercise_id": "{IDS[1]}", "passed": true, "score": 1.0}}\\n')
            except OSError as exc:
                print("blocked", target, exc)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3); "
                          "[open(p, 'w').write('hacked') for p in ({str(victim)!r}, {str(attacker)!r}, {str(out / 'report.json')!r})]"],
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        """,
        # 2: an answer whose comparisons always succeed
        """
        class Liar(float):
            def __eq__(self, other): return True
            def __sub__(self, other): return 0.0
            def __rsub__(self, other): return 0.0
            def __abs__(self): return 0.0
        def gaussian_norm_stats(n, d, seed):
            return Liar(0.0), Liar(0.0)
        """,
        f'check("{IDS[1]}", gaussian_norm_stats)',
        # 3: a tensor subclass that rewrites every torch call made on it
        """
        class Yes(torch.Tensor):
            @classmethod
            def __torch_function__(cls, func, types, args=(), kwargs=None):
                return True
        def sample_uniform_ball(n, d, seed):
            return torch.zeros(n, d).as_subclass(Yes)
        """,
        f'check("{IDS[2]}", sample_uniform_ball)',
        # 4: the course's own reference
        "from manifold_course.geometry.concentration import rowwise_cosine",
        f'check("{IDS[3]}", rowwise_cosine)',
        # 5: read the expected value from the caller's frames
        """
        def frac_near_orthogonal(d, n_pairs, tol, seed):
            f = sys._getframe(1)
            while f is not None:
                if "expected" in f.f_locals and f.f_locals["expected"] is not None:
                    return f.f_locals["expected"]
                f = f.f_back
            return 0.5
        """,
        f'check("{IDS[4]}", frac_near_orthogonal, seed=20261122)',
        # 6: patch the grader through sys.modules, then submit a stub
        """
        for name, mod in list(sys.modules.items()):
            if name.startswith("manifold_course.grading"):
                for attr in ("compare", "_compare_float", "run_exercise", "_run_exercise"):
                    if hasattr(mod, attr):
                        setattr(mod, attr, lambda *a, **k: None)
        def twonn_id(X):
            return 0.0
        """,
        f'check("{IDS[5]}", twonn_id)',
        # 7: an infinite loop that swallows every timeout
        """
        def pca_dim(X, frac):
            while True:
                try:
                    time.sleep(0.01)
                except BaseException:
                    pass
        """,
        f'check("{IDS[6]}", pca_dim)',
        # 8: a correct answer, graded after the loop above was killed
        _source(separability.cover_count) + "\n\n" + _source(separability.cover_separable_probability),
        f'check("{IDS[7]}", cover_separable_probability)',
        # 9: end the process
        "def lift_paraboloid(X):\n    os._exit(0)",
        f'check("{IDS[8]}", lift_paraboloid)',
        # 10: missing; instead, checks of another chapter's exercises (ignored) and a cell that raises oddly
        'check("gnn.normalized_adjacency", lambda A: A)\ncheck("elbo.kl_std_normal", lambda *a: 0.0)',
        """
        class Odd(Exception):
            def __str__(self): raise RuntimeError("no message for you")
        raise Odd()
        """,
        "raise KeyboardInterrupt",
        "print('x' * 100000)",
    ]
    _nb(attacker, cells)
    attacker_text = attacker.read_text()
    t0 = time.perf_counter()
    rc = main(["grade", str(attacker), str(victim), "--seed", "1234", "--report", str(out / "report.json"),
               "--feedback", str(out / "feedback"), "--exercise-timeout", "3", "--timeout", "60"])
    seconds = time.perf_counter() - t0
    time.sleep(4)   # give the detached process its chance to strike
    try:
        report = json.loads((out / "report.json").read_text())
    except json.JSONDecodeError:
        if bwrap_works():
            raise
        pytest.skip("without bubblewrap, the attacker's detached process rewrote report.json after grading "
                    "(the documented limit of the process-group fallback); install bubblewrap to run the battery")
    return dict(rc=rc, seconds=seconds, report=report, victim=victim, victim_text=victim_text,
                attacker=attacker, attacker_text=attacker_text, out=out)


def _rows(rep: dict) -> dict:
    return {r["id"]: r for r in rep["exercises"]}


def test_the_battery_forges_nothing(battery):
    assert battery["rc"] == 0
    att, vic = battery["report"]
    rows = _rows(att)
    assert list(rows) == IDS, "every declared exercise is scored, and only those"
    expected = {IDS[0]: "passed", IDS[1]: "error", IDS[2]: "error", IDS[3]: "failed", IDS[4]: ("failed", "error"),
                IDS[5]: "failed", IDS[6]: "timeout", IDS[7]: "passed", IDS[8]: "error", IDS[9]: "not_attempted"}
    for ex_id, want in expected.items():
        want = want if isinstance(want, tuple) else (want,)
        assert rows[ex_id]["status"] in want, (ex_id, rows[ex_id])
    assert att["score"] == 2 and att["total"] == 10
    assert "returned" in rows[IDS[1]]["message"] and "subclass" in rows[IDS[2]]["message"]
    assert "ended the grading process" in rows[IDS[8]]["message"]
    if bwrap_works():   # without a sandbox the attacker can reach the other submission: only the report says so
        assert vic["score"] == 1 and vic["total"] == 10
    else:
        assert "process group only" in att["isolation"]


def test_integrity_findings_are_reported_per_exercise(battery):
    rows = _rows(battery["report"][0])
    assert any("reference" in f for f in rows[IDS[3]]["integrity"])
    assert any("stack frame" in f or "f_back" in f for f in rows[IDS[4]]["integrity"])
    assert any("sys.modules" in f for f in battery["report"][0]["integrity"])
    assert any("__torch_function__" in f for f in battery["report"][0]["integrity"])   # a class outside the function


def test_nothing_outside_the_submission_changed(battery):
    if not bwrap_works():
        pytest.skip("without bubblewrap, learner code runs with the instructor's file permissions")
    assert battery["victim"].read_text() == battery["victim_text"]
    assert battery["attacker"].read_text() == battery["attacker_text"]
    assert battery["report"][0]["isolation"].startswith("bubblewrap")


def test_time_limits_hold(battery):
    # a 3 s exercise limit killed the looping child (3 s + slack), and the other children started afresh
    assert battery["seconds"] < 90


def test_feedback_hides_expected_values_and_instructor_paths(battery):
    files = sorted((battery["out"] / "feedback").iterdir())
    assert [f.name for f in files] == [f"alice__{NAME}.feedback.txt", f"bob__{NAME}.feedback.txt"]
    text = files[0].read_text()
    assert str(battery["out"].parent) not in text and "score: 2/10" in text
    assert redact("the output: expected 0.25, got 0.5 (error 0.25)") == "the output: expected value hidden, got 0.5 (error 0.25)"


def test_a_cell_that_swallows_its_timeout_is_killed_and_skipped(tmp_path):
    path = _nb(tmp_path / f"{NAME}.py", [
        HEAD, _source(volumes.ball_cube_volume_ratio),
        "while True:\n    try:\n        time.sleep(0.05)\n    except BaseException:\n        pass",
        f'check("{IDS[0]}", ball_cube_volume_ratio)'])
    t0 = time.perf_counter()
    rep = grade_notebook(path, timeout=3)
    assert time.perf_counter() - t0 < 45
    rows = {r.id: r for r in rep.exercises}
    assert rows[IDS[0]].status == "passed", rows[IDS[0]]
    assert "cell 3" in rep.problem and not rep.completed


def test_unreadable_and_unassignable_notebooks_are_reported(tmp_path):
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{ not a notebook")
    assert "could not read" in grade_notebook(bad).problem
    other = _nb(tmp_path / "my_homework.py", ["x = 1"])
    assert "which chapter" in grade_notebook(other).problem


def test_a_child_sees_neither_other_childrens_folders_nor_the_network(tmp_path):
    if not bwrap_works():
        pytest.skip("needs bubblewrap")
    from manifold_course.grading.isolated import _children_root, run_child

    decoy = _children_root() / "child-decoy"
    decoy.mkdir(exist_ok=True)
    (decoy / "secret.txt").write_text("another student's output")
    probe = """
    import os, socket
    mine = os.path.dirname(os.getcwd())              # <children root>/child-XXXX/work is the working folder
    if os.listdir(os.path.dirname(mine)) != [os.path.basename(mine)]:
        os._exit(3)
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=2)
        os._exit(4)
    except OSError:
        pass
    """
    run = run_child({"cells": [textwrap.dedent(probe)], "cell_budget": 20, "exercises": []}, [], 20, {})
    assert not run.stopped and any(m.get("event") == "done" for m in run.messages), run


def test_answers_with_behaviour_cannot_be_forged_by_patching_torch_in_the_child(tmp_path):
    """Gradients, modules and state machines are judged by the grader from observations recorded in the child:
    learner code that patches torch there (autograd, comparisons) cannot make a wrong answer pass."""
    nb = _nb(tmp_path / "03_alignment_and_inference.py", [
        """
        import torch
        from torch import nn
        from manifold_course.grading import check
        torch.allclose = lambda *a, **k: True
        torch.equal = lambda *a, **k: True
        torch.autograd.grad = lambda outputs, inputs, **k: tuple(torch.zeros_like(i) for i in inputs)
        """,
        """
        def bradley_terry_loss(r_chosen, r_rejected):           # right value, no gradient (detached)
            return torch.nn.functional.softplus(r_rejected - r_chosen).mean().detach()
        check("alignment.bradley_terry_loss", bradley_terry_loss)
        """,
        """
        class LoRALinear(nn.Module):                             # no alpha / r scaling
            def __init__(self, base, r, alpha):
                super().__init__()
                self.base = base.requires_grad_(False)
                self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / base.in_features ** 0.5)
                self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
            def forward(self, x):
                return self.base(x) + x @ self.lora_A.T @ self.lora_B.T
            def merge(self):
                pass
            def unmerge(self):
                pass
        check("alignment.LoRALinear", LoRALinear)
        """,
    ])
    rep = grade_notebook(nb, seed=99)
    rows = {r.id: r for r in rep.exercises}
    assert rows["alignment.bradley_terry_loss"].status == "failed", rows["alignment.bradley_terry_loss"]
    assert rows["alignment.LoRALinear"].status == "failed", rows["alignment.LoRALinear"]
    assert "alpha / r" in rows["alignment.LoRALinear"].message


def test_a_subclass_of_the_reference_class_is_not_an_answer(tmp_path):
    nb = _nb(tmp_path / "01_approximation_and_inductive_bias.py", [
        """
        from manifold_course.grading import check
        from manifold_course.nn import residual
        class ResBlock(residual.ResBlock):
            pass
        check("inductive_bias.ResBlock", ResBlock)
        """,
    ])
    row = {r.id: r for r in grade_notebook(nb, seed=5).exercises}["inductive_bias.ResBlock"]
    assert row.status == "failed" and "subclass" in row.message, row

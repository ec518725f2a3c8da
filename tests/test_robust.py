"""The robustness runner: executes a notebook under a configuration and names every cell that fails."""

import gc
import os
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest

from manifold_course import robust


@pytest.fixture
def fragile_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a claim about one draw"),
                nbformat.v4.new_code_cell("import os\noff = int(os.environ.get('MANIFOLD_COURSE_SEED_OFFSET', '0'))"),
                nbformat.v4.new_code_cell("\n# the claim\nassert off >= 0\n"
                                          "assert off == 0, 'only true for the first draw'"),
                nbformat.v4.new_code_cell("later = 'still runs'\nprint(later)")]
    path = tmp_path / "fragile.ipynb"
    nbformat.write(nb, path)
    return path


def _zombie_children() -> list[int]:
    """This process's children that have exited and were never waited for (Linux /proc; [] elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()     # after "pid (command)": state, ppid, ...
        except (OSError, IndexError):
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return found


@pytest.mark.notebook
def test_a_claim_that_holds_passes_and_a_fragile_one_is_named(fragile_notebook):
    gc.collect()
    zombies_before = _zombie_children()
    ok = robust.run_notebook(str(fragile_notebook), robust.Config("seed offset 0", (("MANIFOLD_COURSE_SEED_OFFSET", "0"),)))
    assert ok.ok and ok.failures == [] and not ok.crashed
    bad = robust.run_notebook(str(fragile_notebook), robust.Config("seed offset 2", (("MANIFOLD_COURSE_SEED_OFFSET", "2"),)))
    assert not bad.ok and len(bad.failures) == 1
    f = bad.failures[0]
    assert f.index == 2 and f.first_line == "# the claim" and f.error == "AssertionError: only true for the first draw"
    assert f.line == "line 4: assert off == 0, 'only true for the first draw'"   # which of the cell's asserts failed
    text = robust.summary([ok, bad])
    assert "1 of 2 notebook runs failed" in text and "code cell 2" in text and "[seed offset 2]" in text
    assert "line 4: assert off == 0" in text
    assert _zombie_children() == zombies_before         # each kernel was reaped, not left as a zombie process
    with warnings.catch_warnings(record=True) as caught:  # and its sockets closed, none left to the garbage collector
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert not [w for w in caught if "Unclosed socket" in str(w.message)]


@pytest.mark.notebook
@pytest.mark.timeout(90)
def test_a_kernel_that_dies_is_reported_not_waited_for(tmp_path):
    """A kernel killed mid-cell (a segfault, the out-of-memory killer) ends the run with "did not finish"; with a
    blocking kernel client, nbclient waited forever for the dead kernel's output (measured: over 10 minutes)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('first')"),
                nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
                nbformat.v4.new_code_cell("print('never')")]
    path = tmp_path / "dies.ipynb"
    nbformat.write(nb, path)
    zombies_before = _zombie_children()                 # (other tests' kernels on this worker are not ours to judge)
    run = robust.run_notebook(str(path), robust.Config("seed offset 0", ()))
    assert not run.ok and "DeadKernelError" in run.crashed and run.seconds < 60
    assert "did not finish: DeadKernelError" in robust.summary([run])
    assert _zombie_children() == zombies_before


def test_configs_and_arguments():
    names = [c.name for c in robust.configs([1, 2, 3], [2])]
    assert names == ["seed offset 1", "seed offset 2", "seed offset 3", "2 threads"]
    assert dict(robust.configs([], [2])[0].env) == {"MANIFOLD_COURSE_THREADS": "2", "OMP_NUM_THREADS": "2"}
    assert robust._ints("1, 2 3") == [1, 2, 3]
    avx2 = robust.configs([], [], ["avx2"])[0]
    assert avx2.name == "avx2 kernels" and dict(avx2.env)["ATEN_CPU_CAPABILITY"] == "avx2"
    with pytest.raises(ValueError, match="unknown instruction set"):
        robust.isa_env("avx9")


def test_time_outside_the_cells_is_the_rest_of_the_run():
    run = robust.NotebookRun("nb.ipynb", "seed offset 1", 50.0, cells=[robust.CellTime(1, "x = 1", 12.0),
                                                                      robust.CellTime(2, "y = 2", 3.0)])
    assert run.outside_cells == 35.0
    assert robust.NotebookRun("nb.ipynb", "seed offset 1", 1.0, cells=[robust.CellTime(1, "x", 1.5)]).outside_cells == 0.0


def test_the_time_outside_the_cells_is_named_stretch_by_stretch():
    marks = [("start", 0.0, 0), ("kernel ready", 2.0, 0), ("send", 2.5, 1), ("done", 13.0, 1), ("send", 13.1, 3),
             ("done", 318.0, 3)]
    waits = robust._waits(marks, {1: 10.0, 3: 4.0}, end=319.0)
    assert [w for w, _ in waits] == ["starting the kernel", "the kernel's first reply", "code cell 1, less its run",
                                     "before code cell 3", "code cell 3, less its run", "shutting the kernel down"]
    assert [round(s, 6) for _, s in waits] == [2.0, 0.5, 0.5, 0.1, 300.9, 1.0]
    run = robust.NotebookRun("nb.ipynb", "seed offset 1", 319.0, cells=[robust.CellTime(1, "x", 10.0),
                                                                       robust.CellTime(3, "y", 4.0)], waits=waits)
    assert run.longest_wait() == ("code cell 3, less its run", waits[4][1])
    assert run.outside_cells == pytest.approx(sum(s for _, s in waits))
    assert robust._waits([("start", 0.0, 0)], {}, end=61.0) == [("starting the kernel", 61.0)]   # it never started
    stuck = robust._waits(marks[:5], {1: 10.0}, end=320.0)                         # code cell 3 never replied
    assert stuck[-1] == ("code cell 3, unfinished, and shutting the kernel down", pytest.approx(306.9))


def test_a_real_run_names_where_its_time_went(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(0.5)"),
                                         nbformat.v4.new_markdown_cell("text"), nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "two_cells.ipynb"
    nbformat.write(nb, path)
    run = robust.run_notebook(str(path), robust.Config("seed offset 0", ()))
    assert run.ok and [c.index for c in run.cells] == [1, 2]
    assert [w for w, _ in run.waits] == ["starting the kernel", "the kernel's first reply", "code cell 1, less its run",
                                         "before code cell 2", "code cell 2, less its run", "shutting the kernel down"]
    assert run.outside_cells == pytest.approx(sum(s for _, s in run.waits), abs=0.05)


def test_interact_output_and_errors_land_in_the_cell(tmp_path):
    """No Output-widget stand-in: what an `interact` callback prints is the cell's output, and its exception the
    cell's failure (ipywidgets catches it and shows the traceback; with nbclient's stand-in it went to the widget)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import ipywidgets as widgets\nwidgets.interact(lambda n=3: print('printed', n), n=widgets.IntSlider(3));"),
        nbformat.v4.new_code_cell("widgets.interact(lambda n=3: 1 / (n - 3), n=widgets.IntSlider(3));")])
    path = tmp_path / "interact.ipynb"
    nbformat.write(nb, path)
    run = robust.run_notebook(str(path), robust.Config("seed offset 0", ()))
    assert [f.index for f in run.failures] == [2] and "ZeroDivisionError" in run.failures[0].error
    assert not run.crashed


def test_many_interact_cells_never_wait_for_the_timeout(tmp_path):
    """With nbclient's Output-widget stand-in, 300 such cells waited the whole cell timeout in 1 to 5 cells per run
    (measured: every run of three); the reply was there, the wait for it had missed it."""
    cells = [nbformat.v4.new_code_cell("import ipywidgets as widgets\n"
                                       "def f(n=1):\n    for i in range(5):\n        print('line', i, n)")]
    cells += [nbformat.v4.new_code_cell(f"widgets.interact(f, n=widgets.IntSlider(value={k}, max=300));")
              for k in range(300)]
    path = tmp_path / "interact_300.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    run = robust.run_notebook(str(path), robust.Config("seed offset 0", ()), timeout=5)
    assert run.ok, run.crashed
    waited = [(what, round(secs, 1)) for what, secs in run.waits if secs > 4 and what.startswith("code cell")]
    assert not waited, f"cells waited for the 5-s timeout: {waited}"


def test_the_isa_configuration_reaches_pytorch():
    """The AVX2 configuration really changes PyTorch's kernels on an AVX-512 machine (and is AVX2 at most anywhere)."""
    import os
    import subprocess
    import sys

    code = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {**os.environ, **dict(robust.isa_env("avx2"))}
    native = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    limited = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout.strip()
    assert limited in ("AVX2", "DEFAULT") and (limited == native or native.startswith("AVX512"))


def test_find_notebooks_takes_folders_ipynb_and_paired_py():
    chapters = robust.find_notebooks([str(robust.ROOT / "chapters" / "v0_roots")])
    assert len(chapters) == 3 and all(p.suffix == ".ipynb" for p in chapters)
    py = robust.find_notebooks([str(robust.ROOT / "chapters/v0_roots/01_high_dimensional_geometry.py")])
    assert py == [robust.ROOT / "chapters/v0_roots/01_high_dimensional_geometry.ipynb"]
    with pytest.raises(SystemExit, match="no notebook at"):
        robust.find_notebooks(["no/such/place"])


def test_every_run_draws_a_fresh_offset_it_prints(monkeypatch, capsys):
    drawn = {tuple(robust.fresh_offsets(1, [1, 2, 3])) for _ in range(20)}
    assert len(drawn) > 1                                                  # a new draw, not a fixed list
    assert all(10 <= o < 10_000 and o not in (1, 2, 3) for (o,) in drawn)
    assert robust.fresh_offsets(0) == [] and len(set(robust.fresh_offsets(5))) == 5
    seen = {}

    def fake_run_all(notebooks, cfgs, workers, timeout):
        seen["cfgs"] = [c.name for c in cfgs]
        return []

    monkeypatch.setattr(robust, "run_all", fake_run_all)
    assert robust.main(["--offsets", "1", "--threads", "", "--isa", "", str(robust.ROOT / "chapters")]) == 0
    fresh = [n for n in seen["cfgs"] if n != "seed offset 1"]
    assert len(fresh) == 1 and fresh[0].startswith("seed offset ")
    offset = fresh[0].removeprefix("seed offset ")
    assert f"--offsets {offset} --fresh 0" in capsys.readouterr().out    # how to rerun the draw that failed
    robust.main(["--offsets", "1", "--fresh", "0", "--threads", "", "--isa", "", str(robust.ROOT / "chapters")])
    assert seen["cfgs"] == ["seed offset 1"]
    with pytest.raises(SystemExit):
        robust.main(["--fresh", "-1"])
    assert "--fresh is a number of offsets" in capsys.readouterr().err


def test_the_default_run_covers_chapters_and_solutions():
    found = robust.find_notebooks([])
    assert any("/chapters/" in str(p) for p in found) and any("/solutions/" in str(p) for p in found)
    assert not any("/exercises/" in str(p) for p in found)


def test_bad_arguments_say_what_to_write(capsys):
    with pytest.raises(SystemExit):
        robust.main(["--offsets", "one"])
    assert "whole numbers" in capsys.readouterr().err


@pytest.mark.notebook
def test_a_sweep_names_the_offsets_a_claim_fails_under_and_measures_it(fragile_notebook, capsys):
    """``--sweep`` screens many offsets in one process per notebook and counts, cell by cell, the offsets that fail;
    with ``--upto`` and ``--measure`` it reports the quantity a claim bounds, the cell's asserts removed."""
    runs = robust.sweep_all([fragile_notebook], [0, 1, 2], workers=1, timeout=30, log=lambda *a, **k: None)
    (run,) = runs
    assert sorted(run.failures) == [1, 2] and set(run.seconds) == {0, 1, 2} and not run.crashed
    assert [(f.index, f.error, f.line) for f in run.failures[2]] == [
        (2, "AssertionError: only true for the first draw", "line 4: assert off == 0, 'only true for the first draw'")]
    text = robust.sweep_summary(runs, [0, 1, 2])
    assert "code cell 2: failed under 2 of 3 offsets (1 2)" in text and "at line 4: assert off == 0" in text
    assert robust.main(["--sweep", "0-2", "--upto", "2", "--measure", "off * 10", "--workers", "1",
                        str(fragile_notebook)]) == 0                   # the claim's assert is removed: nothing fails
    out = capsys.readouterr().out
    assert "offset 2" in out and "off * 10 = 20" in out and "every cell passed" in out
    (stripped,) = robust.sweep_all([fragile_notebook], [1, 2], workers=1, timeout=30, log=lambda *a, **k: None,
                                   strip=(2,))                         # --strip: cell 2 runs, its assert does not
    assert stripped.failures == {} and set(stripped.seconds) == {1, 2}
    assert robust._range("1 5-7,9") == [1, 5, 6, 7, 9]
    with pytest.raises(SystemExit):
        robust.main(["--sweep", "a-b"])
    assert "--sweep takes offsets" in capsys.readouterr().err


@pytest.mark.notebook
def test_margins_rank_the_claims_nearest_to_failing(tmp_path, capsys):
    """``--margins`` records both sides of every ordered comparison an assert makes and ranks the claims by slack
    over spread: a claim that failed first, then the thin one, and no fixed comparison (it cannot move)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nimport numpy as np\nimport torch\n"
                                          "off = int(os.environ['MANIFOLD_COURSE_SEED_OFFSET'])\n"
                                          "x = np.random.default_rng(off).normal()"),
                nbformat.v4.new_code_cell("assert -10 < x < 10 and len('ab') > 1\n"
                                          "assert np.float64(0.5 + 0.01 * x) > 0.45, 'thin'\n"
                                          "assert all(t < 30.0 for t in torch.tensor([x, 0.1]).abs())\n"
                                          "assert 2 > 1 and not (1 < 0 < x) and 'a' < 'b' and not float('nan') < x"),
                nbformat.v4.new_code_cell("assert off < 2, 'a claim about the first two draws'")]
    path = tmp_path / "margins.ipynb"
    nbformat.write(nb, path)
    (run,) = robust.sweep_all([path], list(range(6)), workers=1, timeout=30, log=lambda *a, **k: None, margins=True)
    assert sorted(run.failures) == [2, 3, 4, 5] and [f.index for f in run.failures[2]] == [3]   # semantics kept
    assert run.failures[2][0].line == "line 1: assert off < 2, 'a claim about the first two draws'"   # as written
    thin = (2, 2, 7, 0)                                            # cell 2, line 2, the Compare's column, first link
    assert run.margin_text[thin] == "code cell 2, line 2: np.float64(0.5 + 0.01 * x) > 0.45"
    xs = [np.random.default_rng(o).normal() for o in range(6)]
    assert run.margins[thin] == pytest.approx({o: 0.05 + 0.01 * x for o, x in enumerate(xs)})
    assert run.margins[(3, 1, 7, 0)] == {o: 2 - o for o in range(6)}
    report = robust.margin_report([run], n=3)
    lines = report.splitlines()
    assert lines[0].startswith("margins: 5 comparisons moved with the seed")  # -10 < x, x < 10, thin, t < 30, off < 2
    assert "code cell 3, line 1: off < 2" in lines[1] and "least -3" in lines[1]
    assert "np.float64(0.5 + 0.01 * x) > 0.45" in lines[2] and len(lines) == 4
    assert "2 > 1" not in report and "len('ab')" not in report
    (plain,) = robust.sweep_all([path], [0, 1], workers=1, timeout=30, log=lambda *a, **k: None)
    assert plain.margins == {} and sorted(plain.failures) == []
    with pytest.raises(SystemExit):
        robust.main(["--margins", "5"])
    assert "give --sweep OFFSETS too" in capsys.readouterr().err


def test_a_sweep_stops_a_cell_that_runs_too_long(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(30)"), nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    (run,) = robust.sweep_all([path], [0], workers=1, timeout=1, log=lambda *a, **k: None)
    assert [(f.index, f.error.split(":")[0]) for f in run.failures[0]] == [(1, "TimeoutError")]
    assert sum(run.seconds.values()) < 10

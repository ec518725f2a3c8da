"""`manifold-course gpu-check`: on a CPU it says it cannot and exits 0; its pieces work without a GPU."""

import pytest
import torch

from manifold_course.cli import main as cli_main
from manifold_course.systems import bench, gpu_check
from manifold_course.systems.benchspec import BenchSpec

needs_cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")


@needs_cpu_only
def test_gpu_check_on_a_cpu_says_so_and_exits_0(tmp_path, capsys):
    out = tmp_path / "results"
    assert cli_main(["gpu-check", str(out)]) == 0
    said = capsys.readouterr().out
    assert "no CUDA GPU here" in said and "./course test" in said
    assert not out.exists(), "nothing is written when nothing was measured"


def test_junit_counts_reads_pytest_xml(tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="1" failures="2" skipped="3" '
                   'tests="10"></testsuite></testsuites>')
    assert gpu_check.junit_counts(xml) == {"tests": 10, "passed": 4, "failed": 2, "errors": 1, "skipped": 3}


def test_junit_counts_of_a_missing_file_are_zero(tmp_path):
    assert gpu_check.junit_counts(tmp_path / "none.xml")["tests"] == 0
    (tmp_path / "bad.xml").write_text("<not xml")
    assert gpu_check.junit_counts(tmp_path / "bad.xml")["passed"] == 0


def test_the_gpu_tests_it_runs_exist():
    for t in gpu_check.GPU_TESTS:
        assert (gpu_check.ROOT / t).exists(), t


def test_quick_bench_times_only_the_smallest_size():
    seen = []
    spec = BenchSpec(name="fake_add", kernel=torch.add, reference=torch.add,
                     make_inputs=lambda n, dtype, device: (seen.append(n) or torch.ones(n, dtype=dtype),
                                                           torch.ones(n, dtype=dtype)),
                     sizes=[4096, 1000, 3001], dtypes=(torch.float32,), bytes_moved=lambda n, d: 3 * n * 4)
    rows = bench.run_benchmarks([spec], lambda fn: 1.0, device="cpu", quick=True, log=None)
    assert seen == [1000] and len(rows) == 1 and rows[0].check == "ok"
    rows = bench.run_benchmarks([spec], lambda fn: 1.0, device="cpu", log=None)
    assert len(rows) == 3

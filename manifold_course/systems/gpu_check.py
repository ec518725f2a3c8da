"""``manifold-course gpu-check OUT``: everything that needs a real GPU, in one command, for a machine that has one.

On a CUDA machine it

1. runs the kernel and benchmark tests natively (``tests/test_kernels_*.py``, ``tests/test_bench.py``: on a GPU
   the Triton and Numba kernels run compiled, not interpreted or simulated, and the CUDA C launchers and the
   ``gpu``-marked tests run instead of being skipped), writing ``OUT/gpu-tests.log`` and ``OUT/gpu-tests.xml``;
2. times every kernel against PyTorch at its smallest benchmark size (``bench --quick``), writing
   ``OUT/bench.json`` and ``OUT/bench.png``;
3. writes ``OUT/summary.json`` (device, versions, test counts, benchmark rows, seconds) and prints a summary.

It is sized to finish in well under 8 minutes on one GPU. On a machine without a CUDA GPU it says so and exits 0.
Exit status: 0 when the tests passed and every kernel matched its reference, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GPU_TESTS = ("tests/test_kernels_triton.py", "tests/test_kernels_numba.py", "tests/test_kernels_cuda_c.py",
             "tests/test_bench.py")


def junit_counts(xml_path: Path) -> dict[str, int]:
    """passed / failed / errors / skipped of a pytest JUnit XML file (all zero if it is missing or unreadable)."""
    counts = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        return counts
    for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
        for key, attr in (("tests", "tests"), ("failed", "failures"), ("errors", "errors"), ("skipped", "skipped")):
            counts[key] += int(suite.get(attr, 0))
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return counts


def _versions() -> dict[str, str | None]:
    import torch

    out: dict[str, str | None] = {"python": platform.python_version(), "torch": torch.__version__,
                                  "cuda": torch.version.cuda}
    for mod in ("triton", "numba"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out


def main(out_dir: str | os.PathLike = "gpu-check", test_timeout: float = 360.0) -> int:
    import torch

    if not torch.cuda.is_available():
        print("manifold-course gpu-check: no CUDA GPU here, so there is nothing to check: it runs the GPU-only tests "
              "and times the kernels on a GPU. On this machine `./course test` checks every kernel on the CPU "
              "(Triton interpreter, Numba simulator, nvcc to PTX).")
        return 0
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    device = torch.cuda.get_device_name(0)
    print(f"gpu-check on {device}; results in {out}", flush=True)

    # 1. the GPU tests, in a child process with a hard limit (a hung kernel must not eat the machine's time)
    tests = [t for t in GPU_TESTS if (ROOT / t).exists()]
    if not tests:
        print(f"gpu-check: the course's tests/ folder is not at {ROOT} (this package was installed without its "
              "checkout): run `./course gpu-check OUT` from a clone of the course")
        return 1
    xml, log = out / "gpu-tests.xml", out / "gpu-tests.log"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", f"--junitxml={xml}", *tests]
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, timeout=test_timeout).returncode
        except subprocess.TimeoutExpired:
            rc = -1
            fh.write(f"\ngpu-check: the GPU tests were stopped after {test_timeout:.0f} s\n")
    test_s = time.perf_counter() - t0
    counts = junit_counts(xml)
    print(f"GPU tests: {counts['passed']} passed, {counts['failed']} failed, {counts['errors']} errors, "
          f"{counts['skipped']} skipped in {test_s:.0f} s" + (" (STOPPED AT THE TIME LIMIT)" if rc == -1 else ""),
          flush=True)

    # 2. the quick benchmark
    from manifold_course.systems import bench

    t0 = time.perf_counter()
    try:
        bench_rc = bench.main(out / "bench.json", out / "bench.png", quick=True)
    except Exception as exc:  # noqa: BLE001 - report it in the summary; the test results above still count
        print(f"bench failed: {type(exc).__name__}: {exc}")
        bench_rc = 1
    bench_s = time.perf_counter() - t0
    try:
        bench_rows = json.loads((out / "bench.json").read_text())
    except (OSError, ValueError):
        bench_rows = None

    summary = {"device": device, "versions": _versions(), "tests": counts, "tests_exit_code": rc,
               "tests_seconds": round(test_s, 1), "bench_exit_code": bench_rc, "bench_seconds": round(bench_s, 1),
               "bench": bench_rows, "seconds": round(time.perf_counter() - start, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    ok = rc == 0 and bench_rc == 0
    print(f"\ngpu-check {'passed' if ok else 'FAILED'} in {summary['seconds']:.0f} s; "
          f"see {out / 'summary.json'}, {log.name}, bench.json and bench.png")
    return 0 if ok else 1

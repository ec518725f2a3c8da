"""The harness behind ``manifold-course bench``: time every kernel against PyTorch on the same GPU.

Every module in :mod:`manifold_course.kernels` may declare ``BENCH = [BenchSpec(...)]``
(:mod:`manifold_course.systems.benchspec`). For each spec, size and dtype the harness builds one set of inputs on
the GPU, checks the kernel's output against the reference's, times both (``triton.testing.do_bench``: warm-up,
L2 flushed between runs, median; CUDA events if triton is missing) and reports

    time (ms) | GB/s (memory-bound) or TFLOP/s (compute-bound) | % of the device's peak | kernel time / PyTorch time

as a table, a JSON file and a bar chart. The rates use the *minimal* traffic or the *useful* FLOPs a spec declares,
so a kernel that moves more bytes than it must shows a lower GB/s: the roofline view (Williams, Waterman &
Patterson, "Roofline: an insightful visual performance model for multicore architectures", CACM 2009).

Everything but the timing is pure and runs on a CPU (tests feed it fake timings): :func:`peak_for`,
:func:`rate`, :func:`percent_of_peak`, :func:`make_row`, :func:`format_table`, :func:`write_json`,
:func:`plot_ratios`, and :func:`run_benchmarks` with an injected timer.
"""

from __future__ import annotations

import importlib
import json
import math
import pkgutil
import re
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from manifold_course.systems.benchspec import BenchSpec

Timer = Callable[[Callable[[], Any]], float]    # fn -> milliseconds per call


# ------------------------------------------------------------------ peaks of named devices
@dataclass(frozen=True)
class DevicePeak:
    name: str
    mem_gbps: float                  # HBM / GDDR bandwidth, GB/s (10^9 bytes per second)
    fp16_tflops: float | None        # dense fp16 tensor-core FLOP/s (fp32 accumulate), 10^12
    bf16_tflops: float | None        # dense bf16 tensor-core FLOP/s; None: no bf16 tensor cores
    tf32_tflops: float | None        # dense TF32 tensor-core FLOP/s; None: no TF32
    fp32_tflops: float               # fp32 on the CUDA cores (no tensor cores)

    def compute_tflops(self, dtype: torch.dtype) -> float | None:
        """The peak a compute-bound kernel of this dtype is measured against. fp32 uses the CUDA-core peak
        (PyTorch's fp32 matmul does not use TF32 by default); a kernel that does use TF32 tensor cores
        (Triton's ``tl.dot`` on fp32 does) can therefore show more than 100 %."""
        return {torch.float16: self.fp16_tflops, torch.bfloat16: self.bf16_tflops,
                torch.float32: self.fp32_tflops}.get(dtype)


# Vendor data sheets; their tensor-core figures are "with sparsity", the dense figures below are half of them.
#   NVIDIA H100 Tensor Core GPU datasheet (SXM5, PCIe, NVL), 2023-2024
#   NVIDIA H200 Tensor Core GPU datasheet (SXM, NVL), 2024
#   NVIDIA A100 Tensor Core GPU datasheet, 2021 (40 GB / 80 GB, SXM4 / PCIe)
#   NVIDIA L4 Tensor Core GPU datasheet, 2023; NVIDIA L40 and L40S datasheets, 2022-2023
#   NVIDIA Ada GPU Architecture whitepaper v2.1, appendix (GeForce RTX 4090: fp16/bf16 with fp32 accumulate)
#   NVIDIA Ampere GA102 GPU Architecture whitepaper (GeForce RTX 3090: fp16 with fp32 accumulate)
#   NVIDIA A10, T4 and V100 datasheets
# Each entry: regular expressions that must all match the lower-cased torch.cuda.get_device_name(); first match wins.
DEVICE_PEAKS: list[tuple[tuple[str, ...], DevicePeak]] = [
    ((r"\bh200\b", r"\bnvl\b"), DevicePeak("H200 NVL", 4800, 835.5, 835.5, 417.5, 60.0)),
    ((r"\bh200\b",), DevicePeak("H200 SXM", 4800, 989.5, 989.5, 494.5, 67.0)),
    ((r"\bh100\b", r"\bnvl\b"), DevicePeak("H100 NVL", 3900, 835.5, 835.5, 417.5, 60.0)),
    ((r"\bh100\b", r"\bpcie\b"), DevicePeak("H100 PCIe", 2000, 756.5, 756.5, 378.0, 51.0)),
    ((r"\bh100\b",), DevicePeak("H100 SXM", 3350, 989.5, 989.5, 494.5, 67.0)),
    ((r"\ba100\b", r"pcie", r"80gb"), DevicePeak("A100 80GB PCIe", 1935, 312.0, 312.0, 156.0, 19.5)),
    ((r"\ba100\b", r"pcie"), DevicePeak("A100 40GB PCIe", 1555, 312.0, 312.0, 156.0, 19.5)),
    ((r"\ba100\b", r"80gb"), DevicePeak("A100 80GB SXM", 2039, 312.0, 312.0, 156.0, 19.5)),
    ((r"\ba100\b",), DevicePeak("A100 40GB SXM", 1555, 312.0, 312.0, 156.0, 19.5)),
    ((r"\bl40s\b",), DevicePeak("L40S", 864, 362.0, 362.0, 183.0, 91.6)),
    ((r"\bl40\b",), DevicePeak("L40", 864, 181.0, 181.0, 90.5, 90.5)),
    ((r"\bl4\b",), DevicePeak("L4", 300, 121.0, 121.0, 60.0, 30.3)),
    ((r"\ba10\b",), DevicePeak("A10", 600, 125.0, 125.0, 62.5, 31.2)),
    ((r"rtx 4090\b",), DevicePeak("GeForce RTX 4090", 1008, 165.2, 165.2, 82.6, 82.6)),
    ((r"rtx 3090(?! ti)\b",), DevicePeak("GeForce RTX 3090", 936, 71.0, 71.0, 35.6, 35.6)),
    ((r"\bt4\b",), DevicePeak("T4", 320, 65.0, None, None, 8.1)),
    ((r"\bv100\b", r"pcie"), DevicePeak("V100 PCIe", 900, 112.0, None, None, 14.0)),
    ((r"\bv100\b",), DevicePeak("V100 SXM2", 900, 125.0, None, None, 15.7)),
]


def peak_for(device_name: str) -> DevicePeak | None:
    """The data-sheet peaks of a device named as ``torch.cuda.get_device_name()`` does; None if unknown."""
    name = device_name.lower()
    for patterns, peak in DEVICE_PEAKS:
        if all(re.search(p, name) for p in patterns):
            return peak
    return None


# ------------------------------------------------------------------ arithmetic
def numel(size: Any) -> int:
    """Elements of a problem size: an int, or the product of a tuple."""
    return math.prod(size) if isinstance(size, (tuple, list)) else int(size)


def smallest_size(spec: BenchSpec) -> Any:
    return min(spec.sizes, key=numel)


def size_label(size: Any) -> str:
    """"4096x4096" for a tuple; "2^24" for an int power of two from 1024 up; else the int."""
    if isinstance(size, (tuple, list)):
        return "x".join(str(s) for s in size)
    n = int(size)
    return f"2^{n.bit_length() - 1}" if n >= 1024 and n & (n - 1) == 0 else str(n)


def dtype_label(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def unit(spec: BenchSpec) -> str:
    return "TFLOP/s" if spec.bound == "compute" else "GB/s"


def rate(spec: BenchSpec, size: Any, dtype: torch.dtype, ms: float | None) -> float | None:
    """GB/s = bytes_moved / time (memory-bound) or TFLOP/s = flops / time (compute-bound); None without a time."""
    if ms is None or not ms > 0:
        return None
    seconds = ms * 1e-3
    if spec.bound == "compute":
        return spec.flops(size) / seconds / 1e12
    return spec.bytes_moved(size, dtype) / seconds / 1e9


def percent_of_peak(value: float | None, bound: str, dtype: torch.dtype, peak: DevicePeak | None) -> float | None:
    """100 * rate / the device's peak bandwidth (memory) or dtype's peak FLOP/s (compute); None if unknown."""
    if value is None or peak is None:
        return None
    ceiling = peak.mem_gbps if bound == "memory" else peak.compute_tflops(dtype)
    return None if not ceiling else 100.0 * value / ceiling


def validate_spec(spec: BenchSpec) -> list[str]:
    """What is wrong with a spec's declaration (empty: nothing)."""
    problems = []
    if not spec.name:
        problems.append("name is empty")
    if spec.bound not in ("memory", "compute"):
        problems.append(f"bound must be 'memory' or 'compute', got {spec.bound!r}")
    if spec.bound == "memory" and spec.bytes_moved is None:
        problems.append("a memory-bound spec needs bytes_moved(size, dtype)")
    if spec.bound == "compute" and spec.flops is None:
        problems.append("a compute-bound spec needs flops(size)")
    if not list(spec.sizes):
        problems.append("sizes is empty")
    if not list(spec.dtypes):
        problems.append("dtypes is empty")
    if not (callable(spec.kernel) and callable(spec.reference) and callable(spec.make_inputs)):
        problems.append("kernel, reference and make_inputs must be callables")
    return problems


# ------------------------------------------------------------------ rows, table, JSON, plot
@dataclass
class BenchRow:
    name: str
    size: str
    dtype: str
    unit: str                        # "GB/s" or "TFLOP/s"
    kernel_ms: float | None
    torch_ms: float | None
    kernel_rate: float | None        # in `unit`
    torch_rate: float | None
    percent_peak: float | None       # kernel_rate as % of the device's peak; None: unknown device
    ratio: float | None              # kernel_ms / torch_ms: < 1 means the kernel is faster
    check: str                       # "ok", "MISMATCH ..." or "error: ..."


def make_row(spec: BenchSpec, size: Any, dtype: torch.dtype, kernel_ms: float | None, torch_ms: float | None,
             peak: DevicePeak | None, check: str = "ok") -> BenchRow:
    k_rate, t_rate = rate(spec, size, dtype, kernel_ms), rate(spec, size, dtype, torch_ms)
    ratio = kernel_ms / torch_ms if kernel_ms and torch_ms else None
    return BenchRow(spec.name, size_label(size), dtype_label(dtype), unit(spec), kernel_ms, torch_ms,
                    k_rate, t_rate, percent_of_peak(k_rate, spec.bound, dtype, peak), ratio, check)


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def format_row(row: BenchRow) -> list[str]:
    return [row.name, row.size, row.dtype, _num(row.kernel_ms, ".3f"), _num(row.torch_ms, ".3f"),
            f"{_num(row.kernel_rate, '.1f')} {row.unit}", f"{_num(row.torch_rate, '.1f')} {row.unit}",
            "n/a" if row.percent_peak is None else f"{row.percent_peak:.1f}%",
            "n/a" if row.ratio is None else f"{row.ratio:.2f}x", row.check]


HEADER = ["kernel", "size", "dtype", "ms", "torch ms", "kernel rate", "torch rate", "% of peak",
          "time / torch", "check"]


def format_table(rows: Sequence[BenchRow], device_name: str = "", peak: DevicePeak | None = None) -> str:
    """A plain-text table; the title line names the device and the peaks percentages refer to."""
    cells = [HEADER] + [format_row(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if peak is None:
        title = f"{device_name or 'unknown device'}: not in the table of peaks, percent of peak shown as n/a"
    else:
        title = (f"{device_name} ({peak.name}): peak {peak.mem_gbps:.0f} GB/s, "
                 f"{_num(peak.fp16_tflops, '.0f')} fp16 / {peak.fp32_tflops:.1f} fp32 dense TFLOP/s")
    return "\n".join([title, *lines, "time / torch < 1: the kernel is faster than PyTorch"])


def write_json(rows: Sequence[BenchRow], path: str | Path, device_name: str = "",
               peak: DevicePeak | None = None, errors: Sequence[str] = ()) -> Path:
    path = Path(path)
    payload = {"device": device_name, "peak": asdict(peak) if peak else None, "torch": torch.__version__,
               "rows": [asdict(r) for r in rows], "errors": list(errors)}
    path.write_text(json.dumps(payload, indent=2))
    return path


def plot_ratios(rows: Sequence[BenchRow], path: str | Path, device_name: str = "") -> Path:
    """A horizontal bar per (kernel, size, dtype): time / PyTorch's time, log scale, a line at 1."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    timed = [r for r in rows if r.ratio is not None]
    fig = Figure(figsize=(8, 1.5 + 0.3 * max(len(timed), 1)), layout="constrained")
    ax = fig.add_subplot()
    labels = [f"{r.name} {r.size} {r.dtype}" for r in timed]
    ratios = [r.ratio for r in timed]
    colors = ["tab:green" if x <= 1 else "tab:orange" for x in ratios]
    ax.barh(range(len(timed)), [x - 1.0 for x in ratios], left=1.0, color=colors)   # bars grow from parity
    ax.set_yticks(range(len(timed)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=1)
    if timed:
        ax.set_xscale("log")
    ax.set_xlabel("kernel time / PyTorch time (log scale; < 1: kernel faster)")
    ax.set_title(f"Kernels against PyTorch{' on ' + device_name if device_name else ''}")
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


# ------------------------------------------------------------------ discovery, checking, timing
def discover_specs(package: str = "manifold_course.kernels") -> tuple[list[BenchSpec], list[str]]:
    """Import every module of ``package``; return their BENCH specs and the modules that failed to import."""
    pkg = importlib.import_module(package)
    specs, errors = [], []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        name = f"{package}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a missing optional dependency must not hide the other kernels
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        specs.extend(getattr(module, "BENCH", []))
    return specs, errors


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def compare_outputs(got: Any, expected: Any, dtype: torch.dtype) -> str:
    """"ok", or what differs: relative error ||got - expected|| / ||expected|| per output tensor, in fp32."""
    tol = 2e-2 if dtype in (torch.float16, torch.bfloat16) else 5e-3    # fp32 allows TF32 kernels
    g, e = _tensors(got), _tensors(expected)
    if len(g) != len(e):
        return f"MISMATCH: {len(g)} output tensors, expected {len(e)}"
    for a, b in zip(g, e):
        if a.shape != b.shape:
            return f"MISMATCH: shape {tuple(a.shape)}, expected {tuple(b.shape)}"
        a32, b32 = a.detach().float(), b.detach().float()
        err = (a32 - b32).norm().item() / max(b32.norm().item(), 1e-30)
        if not err <= tol:
            return f"MISMATCH: relative error {err:.2e} > {tol:.0e}"
    return "ok"


def cuda_event_median_ms(fn: Callable[[], Any], warmup: int = 10, repeats: int = 50) -> float:
    """Median of ``repeats`` timings with CUDA events, after ``warmup`` calls (no L2 flush)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def default_timer() -> Timer:
    """``triton.testing.do_bench`` (median, L2 flushed between runs) where triton is installed, else CUDA events."""
    try:
        import manifold_course.kernels  # noqa: F401  (mode first, then triton)
        from triton.testing import do_bench
    except ImportError:
        return cuda_event_median_ms
    return lambda fn: float(do_bench(fn, warmup=25, rep=100, return_mode="median"))


def run_benchmarks(specs: Sequence[BenchSpec], timer: Timer, *, device: str = "cuda",
                   peak: DevicePeak | None = None, check: bool = True, quick: bool = False,
                   log: Callable[[str], None] | None = print) -> list[BenchRow]:
    """One row per (spec, size, dtype): inputs made once on ``device``, the kernel checked against the
    reference, then both timed by ``timer`` on the same inputs. A kernel that raises gets an "error" row.
    ``quick``: only each spec's smallest size (``manifold-course bench --quick``, used by ``gpu-check``)."""
    rows = []
    for spec in specs:
        for size in ([smallest_size(spec)] if quick else spec.sizes):
            for dtype in spec.dtypes:
                kernel_ms = torch_ms = None
                status = "ok"
                try:
                    args = spec.make_inputs(size, dtype, device)
                    if check:
                        status = compare_outputs(spec.kernel(*args), spec.reference(*args), dtype)
                    kernel_ms = timer(lambda: spec.kernel(*args))
                    torch_ms = timer(lambda: spec.reference(*args))
                except Exception as exc:  # report and go on: one broken kernel must not stop the others
                    status = f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                finally:
                    args = None
                    if device.startswith("cuda") and torch.cuda.is_available():
                        torch.cuda.empty_cache()
                row = make_row(spec, size, dtype, kernel_ms, torch_ms, peak, status)
                rows.append(row)
                if log:
                    log("  ".join(format_row(row)))
    return rows


def main(json_path: str | Path = "bench.json", plot_path: str | Path = "bench.png",
         names: Sequence[str] | None = None, timer: Timer | None = None, quick: bool = False) -> int:
    """Benchmark every kernel (or those whose spec name is in ``names``) on GPU 0; 0 if all were right.
    ``quick``: each spec's smallest size only."""
    if not torch.cuda.is_available():
        print("manifold-course bench: no CUDA GPU here, so GPU performance cannot be measured.")
        return 0
    specs, errors = discover_specs()
    if names:
        specs = [s for s in specs if s.name in set(names)]
    bad = [f"{s.name}: {p}" for s in specs for p in validate_spec(s)]
    specs = [s for s in specs if not validate_spec(s)]
    device_name = torch.cuda.get_device_name(0)
    peak = peak_for(device_name)
    print(f"benchmarking {len(specs)} kernels on {device_name}"
          + ("" if peak else " (not in the table of peaks: percent of peak shown as n/a)"))
    for e in errors + bad:
        print(f"  skipped {e}")
    rows = run_benchmarks(specs, timer or default_timer(), device="cuda", peak=peak, quick=quick)
    print()
    print(format_table(rows, device_name, peak))
    write_json(rows, json_path, device_name, peak, errors + bad)
    plot_ratios(rows, plot_path, device_name)
    print(f"\nwrote {json_path} and {plot_path}")
    failed = errors + bad + [f"{r.name} {r.size} {r.dtype}: {r.check}" for r in rows if r.check != "ok"]
    return 1 if failed else 0

import manifold_course.kernels  # noqa: F401  (chooses GPU or CPU mode before any kernel module imports triton/numba)

import json

import pytest
import torch

from manifold_course.cli import main as cli_main
from manifold_course.systems import bench
from manifold_course.systems.benchspec import BenchSpec

H100 = bench.peak_for("NVIDIA H100 80GB HBM3")


def add_spec(kernel=torch.add, sizes=(1000, 3001)):
    return BenchSpec(name="fake_add", kernel=kernel, reference=torch.add,
                     make_inputs=lambda n, dtype, device: (torch.ones(n, dtype=dtype, device=device),
                                                           torch.ones(n, dtype=dtype, device=device)),
                     sizes=list(sizes), dtypes=(torch.float32, torch.float16),
                     bytes_moved=lambda n, dtype: 3 * n * dtype.itemsize, bound="memory")


def matmul_spec():
    return BenchSpec(name="fake_mm", kernel=torch.matmul, reference=torch.matmul,
                     make_inputs=lambda s, dtype, device: (torch.ones(s[0], s[2], dtype=dtype, device=device),
                                                           torch.ones(s[2], s[1], dtype=dtype, device=device)),
                     sizes=[(8, 8, 8)], dtypes=(torch.float16, torch.float32),
                     flops=lambda s: 2 * s[0] * s[1] * s[2], bound="compute")


def fake_timer(times):
    it = iter(times)
    return lambda fn: next(it)


# ------------------------------------------------------------------ peaks
@pytest.mark.parametrize("name, expected", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"), ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"), ("NVIDIA A100-SXM4-80GB", "A100 80GB SXM"), ("NVIDIA A100-SXM4-40GB", "A100 40GB SXM"),
    ("NVIDIA A100-PCIE-40GB", "A100 40GB PCIe"), ("NVIDIA A100 80GB PCIe", "A100 80GB PCIe"), ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"), ("NVIDIA GeForce RTX 4090", "GeForce RTX 4090"), ("Tesla T4", "T4"),
    ("NVIDIA A10", "A10"), ("Tesla V100-SXM2-16GB", "V100 SXM2"),
])
def test_peak_for_recognizes_named_devices(name, expected):
    assert bench.peak_for(name).name == expected


@pytest.mark.parametrize("name", ["NVIDIA GH200 480GB", "NVIDIA A10G", "NVIDIA GeForce RTX 3090 Ti", "CPU", ""])
def test_peak_for_unknown_devices_is_none(name):
    assert bench.peak_for(name) is None


def test_peaks_are_dense_and_ordered_sensibly():
    for _, p in bench.DEVICE_PEAKS:
        assert p.mem_gbps > 0 and p.fp32_tflops > 0
        if p.fp16_tflops is not None:
            assert p.fp16_tflops > p.fp32_tflops, f"{p.name}: tensor cores beat the CUDA cores"
    assert H100.fp16_tflops == pytest.approx(1979 / 2, rel=1e-3), "data sheets quote sparse FLOP/s: halve them"


# ------------------------------------------------------------------ arithmetic and rows
def test_rate_gives_gb_per_s_for_memory_bound_specs():
    spec = add_spec()
    # 3 * 1e9 fp32 elements = 12e9 bytes in 10 ms -> 1200 GB/s
    assert bench.rate(spec, 10**9, torch.float32, 10.0) == pytest.approx(1200.0)
    assert bench.rate(spec, 10**9, torch.float16, 10.0) == pytest.approx(600.0)
    assert bench.rate(spec, 10**9, torch.float32, None) is None


def test_rate_gives_tflop_per_s_for_compute_bound_specs():
    # 2 * 4096^3 FLOPs in 1 ms -> 137.4 TFLOP/s
    assert bench.rate(matmul_spec(), (4096, 4096, 4096), torch.float16, 1.0) == pytest.approx(2 * 4096**3 / 1e9)


def test_percent_of_peak_uses_bandwidth_or_the_dtype_peak():
    assert bench.percent_of_peak(1675.0, "memory", torch.float32, H100) == pytest.approx(50.0)
    assert bench.percent_of_peak(494.75, "compute", torch.float16, H100) == pytest.approx(50.0)
    assert bench.percent_of_peak(33.5, "compute", torch.float32, H100) == pytest.approx(50.0)
    assert bench.percent_of_peak(10.0, "compute", torch.bfloat16, bench.peak_for("Tesla T4")) is None
    assert bench.percent_of_peak(10.0, "memory", torch.float32, None) is None


def test_make_row_computes_rates_percent_and_ratio():
    row = bench.make_row(add_spec(), 10**9, torch.float32, kernel_ms=10.0, torch_ms=8.0, peak=H100)
    assert (row.name, row.size, row.dtype, row.unit) == ("fake_add", "1000000000", "float32", "GB/s")
    assert row.kernel_rate == pytest.approx(1200.0) and row.torch_rate == pytest.approx(1500.0)
    assert row.percent_peak == pytest.approx(100 * 1200 / 3350) and row.ratio == pytest.approx(1.25)
    assert bench.make_row(matmul_spec(), (8, 16, 32), torch.float16, 1.0, 1.0, None).size == "8x16x32"
    assert [bench.size_label(n) for n in (2**24, 1000, 512)] == ["2^24", "1000", "512"]


def test_format_table_shows_na_for_unknown_devices_and_percent_for_known():
    rows = [bench.make_row(add_spec(), 10**9, torch.float32, 10.0, 8.0, None),
            bench.make_row(add_spec(), 10**9, torch.float16, None, None, None, check="error: RuntimeError: boom")]
    table = bench.format_table(rows, "Mystery GPU", None)
    lines = table.splitlines()
    assert "not in the table of peaks" in lines[0] and lines[1].split()[0] == "kernel"
    assert "1200.0 GB/s" in table and "1.25x" in table and "n/a" in lines[3] and "error: RuntimeError" in table
    known = bench.format_table([bench.make_row(add_spec(), 10**9, torch.float32, 10.0, 8.0, H100)], "H100", H100)
    assert "35.8%" in known and "3350 GB/s" in known.splitlines()[0]


def test_write_json_round_trips(tmp_path):
    rows = [bench.make_row(add_spec(), 1000, torch.float32, 0.01, 0.02, H100)]
    path = bench.write_json(rows, tmp_path / "bench.json", "NVIDIA H100 80GB HBM3", H100, errors=["x: ImportError"])
    data = json.loads(path.read_text())
    assert data["device"] == "NVIDIA H100 80GB HBM3" and data["peak"]["mem_gbps"] == 3350
    assert data["rows"][0]["ratio"] == pytest.approx(0.5) and data["errors"] == ["x: ImportError"]


def test_plot_ratios_writes_a_png(tmp_path):
    rows = [bench.make_row(add_spec(), n, torch.float32, k, 1.0, None) for n, k in [(1000, 0.5), (3001, 2.0)]]
    rows.append(bench.make_row(add_spec(), 5, torch.float32, None, None, None, check="error: x"))
    path = bench.plot_ratios(rows, tmp_path / "bench.png", "H100")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ the loop with fake timings, on the CPU
def test_run_benchmarks_times_kernel_then_reference_per_size_and_dtype():
    timings = [2.0, 1.0, 4.0, 1.0, 3.0, 3.0, 1.0, 2.0]         # kernel, torch for each (size, dtype)
    rows = bench.run_benchmarks([add_spec()], fake_timer(timings), device="cpu", peak=H100, log=None)
    assert [(r.size, r.dtype) for r in rows] == [("1000", "float32"), ("1000", "float16"),
                                                 ("3001", "float32"), ("3001", "float16")]
    assert [r.ratio for r in rows] == [2.0, 4.0, 1.0, 0.5] and all(r.check == "ok" for r in rows)


def test_run_benchmarks_flags_a_wrong_kernel_and_survives_a_crashing_one():
    def wrong(x, y):
        return x - y

    def crash(x, y):
        raise RuntimeError("illegal memory access")

    rows = bench.run_benchmarks([add_spec(wrong, sizes=[11]), add_spec(crash, sizes=[11])],
                                fake_timer([1.0] * 4), device="cpu", log=None)
    assert rows[0].check.startswith("MISMATCH") and rows[0].ratio == 1.0
    assert rows[2].check == "error: RuntimeError: illegal memory access" and rows[2].kernel_ms is None


def test_compare_outputs_handles_tuples_and_shapes():
    a = torch.ones(3)
    assert bench.compare_outputs((a, a), (a, a), torch.float32) == "ok"
    assert "shape" in bench.compare_outputs(torch.ones(2), a, torch.float32)
    assert "output tensors" in bench.compare_outputs((a,), (a, a), torch.float32)


def test_bench_main_on_cpu_says_it_cannot_measure(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli_main(["bench", "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "b.png")]) == 0
    assert "GPU performance cannot be measured" in capsys.readouterr().out
    assert bench.main(tmp_path / "b.json", tmp_path / "b.png") == 0
    assert not (tmp_path / "b.json").exists()


# ------------------------------------------------------------------ every declared BENCH spec
SPECS, IMPORT_ERRORS = bench.discover_specs()


def test_every_kernel_module_imports():
    assert IMPORT_ERRORS == []


def test_spec_names_are_unique():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names)), f"two kernels share a BENCH name: {sorted(names)}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_bench_spec_is_well_formed(spec):
    """Every size and dtype of every spec, on the meta device: shapes and dtypes are checked, nothing is
    computed (a 4096^3 fp16 matmul takes about 15 minutes of a CPU core without AVX512-FP16)."""
    assert bench.validate_spec(spec) == []
    for size in spec.sizes:
        for dtype in spec.dtypes:
            args = spec.make_inputs(size, dtype, "meta")
            assert isinstance(args, tuple), "make_inputs returns a tuple of arguments"
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            assert tensors and all(t.device.type == "meta" for t in tensors), "make_inputs ignored its device"
            assert any(t.dtype == dtype for t in tensors), f"make_inputs ignored dtype {dtype}"
            out = spec.reference(*args)
            assert all(t.device.type == "meta" for t in bench._tensors(out))
            amount = spec.flops(size) if spec.bound == "compute" else spec.bytes_moved(size, dtype)
            assert amount > 0


def _input_elements(spec):
    size = bench.smallest_size(spec)
    return sum(a.numel() for a in spec.make_inputs(size, spec.dtypes[0], "meta") if isinstance(a, torch.Tensor))


SMALL_SPECS = [s for s in SPECS if _input_elements(s) <= 2**25]


def test_most_specs_are_small_enough_to_draw_on_a_cpu():
    assert len(SMALL_SPECS) >= len(SPECS) // 2


@pytest.mark.parametrize("spec", SMALL_SPECS, ids=lambda s: s.name)
def test_bench_inputs_are_real_numbers_on_the_cpu(spec):
    """The smallest size's inputs, drawn for real in fp32 (or the spec's first dtype): finite, not all equal."""
    size = bench.smallest_size(spec)
    dtype = torch.float32 if torch.float32 in spec.dtypes else spec.dtypes[0]
    tensors = [a for a in spec.make_inputs(size, dtype, "cpu") if isinstance(a, torch.Tensor)]
    assert all(t.device.type == "cpu" and torch.isfinite(t.float()).all() for t in tensors)
    assert any(t.float().std() > 0 for t in tensors if t.numel() > 1)

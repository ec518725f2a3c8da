import manifold_course.kernels  # noqa: F401  (chooses GPU or CPU mode first, like every kernel test)

import re

import pytest
import torch

from manifold_course.kernels import cuda_c


def _nvcc_or_none():
    try:
        return cuda_c.find_nvcc()
    except cuda_c.NvccNotFoundError:
        return None


needs_nvcc = pytest.mark.skipif(_nvcc_or_none() is None,
                                reason="nvcc not found (CUDA_HOME, PATH, /usr/local/cuda/bin): install the CUDA toolkit")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU to launch the kernels")


@needs_nvcc
@pytest.mark.parametrize("source, entry", [("vector_add", "vector_add_kernel"), ("matmul", "matmul_kernel")])
def test_cu_file_compiles_to_ptx_with_an_unmangled_entry(source, entry):
    ptx = cuda_c.compile_ptx(source)
    assert ".target sm_80" in ptx
    assert cuda_c.ptx_entries(ptx) == [entry], "extern \"C\" keeps the kernel's name in the PTX"


@needs_nvcc
def test_matmul_ptx_uses_shared_memory_tiles_and_barriers():
    ptx = cuda_c.compile_ptx("matmul")
    tiles = re.findall(r"\.shared\s+\.align\s+\d+\s+\.b8\s+\S+\[(\d+)\]", ptx)
    assert [int(t) for t in tiles] == [4 * cuda_c.MATMUL_TILE ** 2] * 2, "two TILE x TILE fp32 tiles in shared memory"
    assert "bar.sync" in ptx and "ld.shared.f32" in ptx


@needs_nvcc
def test_python_tile_constant_matches_the_cu_file():
    text = cuda_c.source_path("matmul").read_text()
    assert re.search(rf"#define\s+MATMUL_TILE\s+{cuda_c.MATMUL_TILE}\b", text)


@needs_nvcc
def test_compile_to_cubin_for_another_arch_and_report_resources(tmp_path):
    cubin = cuda_c.compile_cuda("vector_add", "cubin", arch="sm_90", out_dir=tmp_path)
    assert cubin == tmp_path / "vector_add.cubin" and cubin.stat().st_size > 0
    info = cuda_c.ptxas_info("matmul")
    assert "matmul_kernel" in info and re.search(r"Used \d+ registers", info) and "2048 bytes smem" in info


@needs_nvcc
def test_compile_errors_surface_nvcc_message(tmp_path):
    bad = tmp_path / "broken.cu"
    bad.write_text('extern "C" __global__ void broken(float* x) { x[0] = undefined_name; }\n')
    with pytest.raises(RuntimeError, match="undefined_name"):
        cuda_c.compile_ptx(bad)


def test_unknown_source_and_bad_arch_are_explained():
    with pytest.raises(FileNotFoundError, match="matmul"):
        cuda_c.source_path("no_such_kernel")
    with pytest.raises(ValueError, match="sm_80"):
        cuda_c.compile_cuda("vector_add", arch="80")


def test_missing_nvcc_raises_with_the_fix(monkeypatch):
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(cuda_c, "DEFAULT_CUDA_DIRS", ())
    with pytest.raises(cuda_c.NvccNotFoundError, match="CUDA_HOME") as err:
        cuda_c.compile_ptx("vector_add")
    assert "install the CUDA toolkit" in str(err.value)


def test_cuda_home_is_searched_first(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "nvcc"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    assert cuda_c.find_nvcc() == fake


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error message")
def test_launchers_on_cpu_tensors_explain_that_they_need_a_gpu():
    with pytest.raises(RuntimeError, match="CUDA tensors"):
        cuda_c.vector_add(torch.ones(3), torch.ones(3))
    with pytest.raises(RuntimeError, match="only on a CUDA GPU"):
        cuda_c.extension()


@pytest.mark.gpu
@needs_gpu
@needs_nvcc
def test_cuda_c_vector_add_matches_torch_add_on_gpu():
    x, y = torch.randn(1_000_003, device="cuda"), torch.randn(1_000_003, device="cuda")
    torch.testing.assert_close(cuda_c.vector_add(x, y, alpha=0.5), torch.add(x, y, alpha=0.5))
    torch.testing.assert_close(cuda_c.vector_add(x[:5], y[:5]), x[:5] + y[:5])


@pytest.mark.gpu
@needs_gpu
@needs_nvcc
@pytest.mark.parametrize("mkn", [(257, 129, 255), (1, 17, 1), (64, 64, 64)])
def test_cuda_c_matmul_matches_torch_matmul_on_gpu(mkn):
    m, k, n = mkn
    a, b = torch.randn(m, k, device="cuda"), torch.randn(k, n, device="cuda")
    expected = (a.double() @ b.double()).float()
    torch.testing.assert_close(cuda_c.matmul(a, b), expected, rtol=1e-4, atol=1e-4)

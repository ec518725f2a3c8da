import manifold_course.kernels  # noqa: F401  (chooses GPU or simulator mode before numba.cuda is imported)

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numba import cuda

from manifold_course.kernels import numba_map2d, numba_matmul, numba_reduction, numba_vector_add

# Under the CUDA simulator every thread is a Python thread (about 0.2 ms each, more with syncthreads):
# sizes stay at a few blocks, and none is a multiple of the block.
DTYPES = [torch.float32, torch.float16]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=1e-3, atol=1e-3)}
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ------------------------------------------------------------------ vector add
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(777,), (7, 13), (1,)])
def test_vector_add_matches_torch_add(shape, dtype):
    x, y = randn(*shape, dtype=dtype), randn(*shape, dtype=dtype, seed=1)
    got = numba_vector_add.vector_add(x, y, alpha=0.5)
    assert got.shape == x.shape and got.dtype == dtype and got.device == x.device
    torch.testing.assert_close(got, torch.add(x, y, alpha=0.5), **TOL[dtype])


def test_vector_add_threads_past_the_end_write_nothing():
    n = 5                                                    # 2 blocks of 256 threads for 5 elements
    d_x = cuda.to_device(np.arange(n, dtype=np.float32))
    d_y = cuda.to_device(np.ones(n, dtype=np.float32))
    d_buf = cuda.to_device(np.full(n + 300, -7.0, dtype=np.float32))   # memory right after the output
    numba_vector_add.vector_add_kernel[2, numba_vector_add.THREADS](d_x, d_y, d_buf[:n], np.float32(1.0))
    buf = d_buf.copy_to_host()
    np.testing.assert_array_equal(buf[:n], np.arange(n) + 1.0)
    assert (buf[n:] == -7.0).all(), "a thread with i >= n wrote past the output: keep the `if i < n` check"


def test_vector_add_rejects_bfloat16_and_broadcasting():
    with pytest.raises(TypeError, match="bfloat16"):
        numba_vector_add.vector_add(torch.ones(3, dtype=torch.bfloat16), torch.ones(3, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="same shape"):
        numba_vector_add.vector_add(torch.ones(3), torch.ones(1))


# ------------------------------------------------------------------ 2-D map (GELU)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_2d_matches_torch_gelu(approximate, dtype):
    x = 3 * randn(13, 37, dtype=dtype)                       # 2 x 2 blocks of 8 x 32, both edges overhang
    got = numba_map2d.gelu(x, approximate)
    torch.testing.assert_close(got, F.gelu(x, approximate=approximate), **TOL[dtype])


def test_gelu_2d_takes_any_leading_shape():
    x = randn(2, 3, 33)
    torch.testing.assert_close(numba_map2d.gelu(x), F.gelu(x), **TOL[torch.float32])


def test_gelu_2d_threads_outside_the_matrix_write_nothing():
    rows, cols = 3, 5                                        # one 8 x 32 block and a 2 x 2 grid: mostly idle
    d_x = cuda.to_device(np.ones((rows, cols), dtype=np.float32))
    d_buf = cuda.to_device(np.full((rows + 20, cols + 40), -7.0, dtype=np.float32))
    numba_map2d.gelu_kernel[(2, 2), (numba_map2d.BLOCK_COLS, numba_map2d.BLOCK_ROWS)](
        d_x, d_buf[:rows, :cols], False)
    buf = d_buf.copy_to_host()
    np.testing.assert_allclose(buf[:rows, :cols], F.gelu(torch.ones(1)).item(), rtol=1e-6)
    outside = np.ones_like(buf, dtype=bool)
    outside[:rows, :cols] = False
    assert (buf[outside] == -7.0).all(), "a thread outside the matrix wrote: check both row < rows and col < cols"


# ------------------------------------------------------------------ reduction
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1000, 257, 1])
def test_reduce_sum_matches_torch_sum_for_lengths_not_a_multiple_of_the_block(n, dtype):
    x = randn(n, dtype=dtype)
    got = numba_reduction.reduce_sum(x)
    assert got.shape == () and got.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=2e-3, atol=1e-2)
    torch.testing.assert_close(got, torch.sum(x), **tol)


def test_reduce_sum_grid_stride_loop_covers_more_elements_than_threads():
    x = np.asarray(randn(1000))                              # one block of 256 threads for 1000 elements
    d_partial = cuda.device_array(1, dtype=np.float32)
    numba_reduction.block_sum_kernel[1, numba_reduction.THREADS](cuda.to_device(x), d_partial)
    np.testing.assert_allclose(d_partial.copy_to_host()[0], x.sum(dtype=np.float64), rtol=1e-5)


def test_reduce_sum_of_an_empty_tensor_is_zero():
    assert numba_reduction.reduce_sum(torch.empty(0)).item() == 0.0


# ------------------------------------------------------------------ tiled matmul
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mkn", [(19, 23, 21), (5, 3, 7), (1, 17, 1)])
def test_matmul_matches_torch_matmul_for_sizes_not_a_multiple_of_the_tile(mkn, dtype):
    m, k, n = mkn
    a, b = randn(m, k, dtype=dtype), randn(k, n, dtype=dtype, seed=1)
    got = numba_matmul.matmul(a, b)
    assert got.shape == (m, n) and got.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(got, torch.matmul(a, b), **tol)


def test_matmul_with_empty_inner_dimension_is_zero():
    got = numba_matmul.matmul(torch.ones(3, 0), torch.ones(0, 4))
    torch.testing.assert_close(got, torch.zeros(3, 4))


def test_matmul_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(M, K\) and \(K, N\)"):
        numba_matmul.matmul(torch.ones(3, 4), torch.ones(5, 2))


# ------------------------------------------------------------------ the same kernels compiled for a real GPU
_COMPILE_ALL = textwrap.dedent("""
    import json, os
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"          # the real CUDA target: compile only, no GPU needed
    from manifold_course.kernels import numba_map2d, numba_matmul, numba_reduction, numba_vector_add
    from numba import cuda, types
    try:
        result = {}
        for dt in (types.float32, types.float16):
            kernels = {
                "vector_add": (numba_vector_add.vector_add_kernel, (dt[::1], dt[::1], dt[::1], types.float32)),
                "gelu": (numba_map2d.gelu_kernel, (dt[:, ::1], dt[:, ::1], types.boolean)),
                "block_sum": (numba_reduction.block_sum_kernel, (dt[::1], types.float32[::1])),
                "matmul": (numba_matmul.matmul_kernel, (dt[:, ::1], dt[:, ::1], dt[:, ::1])),
            }
            for name, (kernel, sig) in kernels.items():
                ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
                result[f"{name}[{dt}]"] = {"entry": ".entry" in ptx, "bar_sync": "bar.sync" in ptx,
                                          "f64_math": any(op in ptx for op in ("add.f64", "mul.f64", "fma.rn.f64"))}
        print(json.dumps(result))
    except Exception as exc:
        if "nvvm" in (type(exc).__name__ + str(exc)).lower():
            print(json.dumps({"skip": f"{type(exc).__name__}: {exc}"}))
        else:
            raise
""")


def test_numba_kernels_compile_to_ptx_for_sm80_in_fp32_and_fp16(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", _COMPILE_ALL], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(f"numba cannot find NVVM (the CUDA toolkit's compiler library): {result['skip']}")
    assert len(result) == 8 and all(r["entry"] for r in result.values())
    for name in ("block_sum", "matmul"):
        assert all(result[f"{name}[{dt}]"]["bar_sync"] for dt in ("float32", "float16")), \
            f"{name} must synchronize the block (cuda.syncthreads compiles to bar.sync)"
    assert not any(r["f64_math"] for r in result.values()), "a Python float literal made fp64 math: wrap it in float32()"


# ------------------------------------------------------------------ GPU: torch CUDA tensors, zero copy
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: the CPU runs the simulator instead")
@pytest.mark.parametrize("dtype", DTYPES)
def test_numba_launchers_take_cuda_tensors_and_return_cuda_tensors(dtype):
    x = torch.randn(100_003, device="cuda", dtype=dtype)
    y = torch.randn(100_003, device="cuda", dtype=dtype)
    got = numba_vector_add.vector_add(x, y)
    assert got.is_cuda
    torch.testing.assert_close(got, x + y, **TOL[dtype])
    m = torch.randn(999, 1001, device="cuda", dtype=dtype)
    torch.testing.assert_close(numba_map2d.gelu(m), F.gelu(m), **TOL[dtype])
    torch.testing.assert_close(numba_reduction.reduce_sum(x).float(), x.float().sum(), rtol=1e-3, atol=1e-1)
    a, b = torch.randn(257, 129, device="cuda", dtype=dtype), torch.randn(129, 255, device="cuda", dtype=dtype)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-2, atol=5e-2)
    torch.testing.assert_close(numba_matmul.matmul(a, b).float(), (a.float() @ b.float()), **tol)

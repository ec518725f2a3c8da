r"""CUDA C kernels from Python: compile ``kernels/cuda/*.cu`` with nvcc, read the PTX, launch on a GPU.

The ``.cu`` files are plain CUDA C, one ``extern "C" __global__`` kernel each (``extern "C"``: the PTX entry keeps
the kernel's own name instead of a C++-mangled one):

- ``cuda/vector_add.cu``: ``vector_add_kernel``, $z = x + \alpha y$, one thread per element;
- ``cuda/matmul.cu``: ``matmul_kernel``, $C = AB$ with 16 x 16 shared-memory tiles.

**Everywhere (CPU too).** nvcc compiles for a GPU without needing one: :func:`compile_ptx` returns the PTX text
(NVIDIA's virtual ISA, what lessons read), :func:`compile_cuda` writes ``.ptx``, ``.cubin`` (machine code for
one architecture) or ``.o`` into a temporary folder, and :func:`ptxas_info` reports registers and shared memory
per kernel (``-Xptxas -v``), the numbers that decide occupancy. The default architecture is ``sm_80`` (A100);
``sm_90`` is the H100 / H200.

**On a GPU.** :func:`vector_add` and :func:`matmul` launch the kernels on CUDA float32 tensors through a small
C++ launcher (grid, block, torch's current stream) built once with ``torch.utils.cpp_extension.load_inline``
(it needs nvcc and a host C++ compiler; the build is cached under ``~/.cache/torch_extensions``).

nvcc is looked up in ``$CUDA_HOME/bin``, ``$CUDA_PATH/bin``, on ``PATH``, then in ``/usr/local/cuda/bin``;
:class:`NvccNotFoundError` says how to install it when it is missing.

Reference: NVIDIA, *CUDA C++ Programming Guide* and *Parallel Thread Execution ISA* (PTX) reference;
*NVIDIA CUDA Compiler Driver NVCC* (``--ptx``, ``--cubin``, ``-arch``).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import torch

from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator

CUDA_DIR = Path(__file__).resolve().parent / "cuda"         # the .cu sources (package data)
DEFAULT_ARCH = "sm_80"
DEFAULT_CUDA_DIRS: tuple[str, ...] = ("/usr/local/cuda",)    # searched after CUDA_HOME, CUDA_PATH and PATH
MATMUL_TILE = 16                                             # must match #define MATMUL_TILE in cuda/matmul.cu


class NvccNotFoundError(RuntimeError):
    """nvcc, the CUDA compiler, is not installed where this module looks."""


def find_nvcc() -> Path:
    """Path of nvcc: ``$CUDA_HOME/bin/nvcc``, ``$CUDA_PATH/bin/nvcc``, ``nvcc`` on PATH, ``/usr/local/cuda/bin/nvcc``."""
    candidates = [Path(os.environ[v]) / "bin" / "nvcc" for v in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(v)]
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append(Path(on_path))
    candidates += [Path(d) / "bin" / "nvcc" for d in DEFAULT_CUDA_DIRS]
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c
    looked = ", ".join(str(c) for c in candidates) or "(no candidates)"
    raise NvccNotFoundError(
        "nvcc (the CUDA compiler) was not found; looked in $CUDA_HOME/bin, $CUDA_PATH/bin, on PATH and in "
        f"{', '.join(DEFAULT_CUDA_DIRS) or 'no default folder'} ({looked}). Fix: install the CUDA toolkit "
        "(https://developer.nvidia.com/cuda-downloads, or `conda install -c conda-forge cuda-nvcc`), then set "
        "CUDA_HOME to the folder that holds bin/nvcc, e.g. `export CUDA_HOME=/usr/local/cuda`.")


def source_path(source: str | os.PathLike) -> Path:
    """A ``.cu`` file: a path, or the name of a file in ``kernels/cuda`` (``"matmul"`` or ``"matmul.cu"``)."""
    p = Path(source)
    if p.is_file():
        return p
    name = p.name if p.suffix == ".cu" else p.name + ".cu"
    if (CUDA_DIR / name).is_file():
        return CUDA_DIR / name
    known = sorted(f.stem for f in CUDA_DIR.glob("*.cu"))
    raise FileNotFoundError(f"no CUDA source {source!r}: pass a path to a .cu file or one of {known}")


_OUTPUT_FLAGS = {"ptx": ("--ptx", ".ptx"), "cubin": ("--cubin", ".cubin"), "obj": ("-c", ".o")}


def compile_cuda(source: str | os.PathLike, output: str = "ptx", *, arch: str = DEFAULT_ARCH,
                 flags: Sequence[str] = ("-O3",), out_dir: str | os.PathLike | None = None) -> Path:
    """Compile one ``.cu`` file with nvcc and return the path of the result.

    ``output``: ``"ptx"`` (``--ptx``, text), ``"cubin"`` (``--cubin``, SASS for ``arch``) or ``"obj"`` (``-c``).
    ``out_dir``: where to write it; default a fresh temporary folder (left for the caller to read).
    """
    if output not in _OUTPUT_FLAGS:
        raise ValueError(f"output must be one of {sorted(_OUTPUT_FLAGS)}, got {output!r}")
    if not re.fullmatch(r"(sm|compute)_\d+[af]?", arch):
        raise ValueError(f"arch looks like 'sm_80' or 'sm_90', got {arch!r}")
    src = source_path(source)
    flag, suffix = _OUTPUT_FLAGS[output]
    out_dir = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="manifold_cuda_"))
    out = out_dir / (src.stem + suffix)
    cmd = [str(find_nvcc()), flag, f"-arch={arch}", *flags, str(src), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"nvcc failed ({' '.join(cmd)}):\n{done.stderr.strip()}")
    return out


def compile_ptx(source: str | os.PathLike = "vector_add", arch: str = DEFAULT_ARCH,
                flags: Sequence[str] = ("-O3",)) -> str:
    """The PTX text nvcc generates for ``source`` (e.g. ``compile_ptx("matmul", "sm_90")``)."""
    with tempfile.TemporaryDirectory(prefix="manifold_cuda_") as tmp:
        return compile_cuda(source, "ptx", arch=arch, flags=flags, out_dir=tmp).read_text()


def ptx_entries(ptx: str) -> list[str]:
    """Names of the kernels (``.entry`` directives) in a PTX text."""
    return re.findall(r"\.entry\s+([A-Za-z_$][\w$]*)", ptx)


def ptxas_info(source: str | os.PathLike = "matmul", arch: str = DEFAULT_ARCH) -> str:
    """ptxas's report per kernel: registers, shared memory (smem), spills; what bounds occupancy."""
    with tempfile.TemporaryDirectory(prefix="manifold_cuda_") as tmp:
        src = source_path(source)
        cmd = [str(find_nvcc()), "--cubin", f"-arch={arch}", "-O3", "-Xptxas", "-v", str(src),
               "-o", str(Path(tmp) / (src.stem + ".cubin"))]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"nvcc failed ({' '.join(cmd)}):\n{done.stderr.strip()}")
    return "\n".join(line for line in (done.stdout + done.stderr).splitlines() if "ptxas" in line or "bytes" in line)


# ------------------------------------------------------------------ GPU path: C++ launchers via load_inline
LAUNCHERS_CU = r"""
#include <c10/cuda/CUDAStream.h>          // c10::cuda::getCurrentCUDAStream (no cuBLAS/cuSPARSE headers needed)
#include <c10/cuda/CUDAException.h>
#include <climits>

// Launchers: check the tensors, allocate the output, pick grid and block, launch on torch's current stream.
torch::Tensor vector_add(torch::Tensor input, torch::Tensor other, double alpha) {
    TORCH_CHECK(input.is_cuda() && other.is_cuda(), "vector_add: tensors must be on a CUDA device");
    TORCH_CHECK(input.scalar_type() == torch::kFloat32 && other.scalar_type() == torch::kFloat32,
                "vector_add: the CUDA C kernel takes float32 tensors");
    TORCH_CHECK(input.sizes() == other.sizes(), "vector_add: tensors must have the same shape");
    TORCH_CHECK(input.numel() <= INT_MAX, "vector_add: at most 2^31 - 1 elements (int indices)");
    auto x = input.contiguous();
    auto y = other.contiguous();
    auto z = torch::empty_like(x);
    const int n = static_cast<int>(x.numel());
    if (n == 0) return z;
    const int threads = 256;                                  // 8 warps per block
    const int blocks = (n + threads - 1) / threads;           // ceil(n / threads)
    vector_add_kernel<<<blocks, threads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<float>(), y.data_ptr<float>(), z.data_ptr<float>(), static_cast<float>(alpha), n);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return z;
}

torch::Tensor matmul(torch::Tensor input, torch::Tensor other) {
    TORCH_CHECK(input.is_cuda() && other.is_cuda(), "matmul: tensors must be on a CUDA device");
    TORCH_CHECK(input.scalar_type() == torch::kFloat32 && other.scalar_type() == torch::kFloat32,
                "matmul: the CUDA C kernel takes float32 tensors");
    TORCH_CHECK(input.dim() == 2 && other.dim() == 2 && input.size(1) == other.size(0),
                "matmul: takes (M, K) and (K, N) matrices");
    auto a = input.contiguous();
    auto b = other.contiguous();
    const int M = a.size(0), K = a.size(1), N = b.size(1);
    auto c = torch::empty({M, N}, a.options());
    if (M == 0 || N == 0) return c;
    dim3 block(MATMUL_TILE, MATMUL_TILE);                     // one thread per element of a C tile
    dim3 grid((N + MATMUL_TILE - 1) / MATMUL_TILE,            // x: tiles along N (columns)
              (M + MATMUL_TILE - 1) / MATMUL_TILE);           // y: tiles along M (rows)
    matmul_kernel<<<grid, block, 0, c10::cuda::getCurrentCUDAStream()>>>(
        a.data_ptr<float>(), b.data_ptr<float>(), c.data_ptr<float>(), M, N, K);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return c;
}
"""

CPP_DECLARATIONS = """
torch::Tensor vector_add(torch::Tensor input, torch::Tensor other, double alpha);
torch::Tensor matmul(torch::Tensor input, torch::Tensor other);
"""


def extension_sources() -> list[str]:
    """The CUDA translation unit load_inline builds: both .cu files, then the C++ launchers."""
    return [source_path("vector_add").read_text(), source_path("matmul").read_text(), LAUNCHERS_CU]


@functools.cache
def extension():
    """Build (first call: about a minute) and load the launchers; GPU machines only."""
    if not torch.cuda.is_available():
        raise RuntimeError("the CUDA C kernels run only on a CUDA GPU; on a CPU, read what they compile to "
                           "with manifold_course.kernels.cuda_c.compile_ptx('matmul')")
    nvcc = find_nvcc()
    os.environ.setdefault("CUDA_HOME", str(nvcc.parent.parent))   # where torch's builder looks for the toolkit
    from torch.utils.cpp_extension import load_inline

    return load_inline(name="manifold_course_cuda_c", cpp_sources=CPP_DECLARATIONS,
                       cuda_sources=extension_sources(), functions=["vector_add", "matmul"],
                       extra_cuda_cflags=["-O3"])


def _require_cuda_float32(name: str, *tensors: torch.Tensor) -> None:
    for t in tensors:
        if not t.is_cuda:
            raise RuntimeError(f"{name}: the CUDA C kernel runs on CUDA tensors, got a tensor on {t.device} "
                               "(on a CPU, read its PTX with cuda_c.compile_ptx instead)")
        if t.dtype != torch.float32:
            raise TypeError(f"{name}: the CUDA C kernel takes float32 tensors, got {t.dtype}")


def vector_add(input: torch.Tensor, other: torch.Tensor, *, alpha: float = 1) -> torch.Tensor:
    """``torch.add(input, other, alpha=alpha)`` by ``cuda/vector_add.cu``: CUDA float32 tensors, same shape."""
    _require_cuda_float32("vector_add", input, other)
    return extension().vector_add(input, other, float(alpha))


def matmul(input: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``torch.matmul(input, other)`` by ``cuda/matmul.cu``: CUDA float32 matrices (M, K) @ (K, N)."""
    _require_cuda_float32("matmul", input, other)
    return extension().matmul(input, other)


def _vector_inputs(size: int, dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    return (torch.randn(size, dtype=dtype, device=device, generator=gen),
            torch.randn(size, dtype=dtype, device=device, generator=gen))


def _matmul_inputs(size: tuple[int, int, int], dtype: torch.dtype, device: str) -> tuple:
    m, n, k = size
    gen = torch_generator(0, device)
    return (torch.randn((m, k), dtype=dtype, device=device, generator=gen),
            torch.randn((k, n), dtype=dtype, device=device, generator=gen))


BENCH = [
    BenchSpec(
        name="cuda_c_vector_add",
        kernel=vector_add,
        reference=torch.add,
        make_inputs=_vector_inputs,
        sizes=[2**20, 2**24, 2**26],
        dtypes=(torch.float32,),
        bytes_moved=lambda n, dtype: 3 * n * dtype.itemsize,   # read x and y, write z
        bound="memory",
    ),
    BenchSpec(
        name="cuda_c_matmul",
        kernel=matmul,
        reference=torch.matmul,                                 # fp32 cuBLAS (TF32 off by default in torch)
        make_inputs=_matmul_inputs,
        sizes=[(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096)],   # (M, N, K)
        dtypes=(torch.float32,),
        flops=lambda size: 2 * size[0] * size[1] * size[2],
        bound="compute",
    ),
]


if __name__ == "__main__":
    for name in ("vector_add", "matmul"):
        ptx = compile_ptx(name)
        print(f"{name}.cu -> PTX for {DEFAULT_ARCH}: {len(ptx.splitlines())} lines, entries {ptx_entries(ptx)}")
    print(ptxas_info("matmul"))
    if torch.cuda.is_available():
        x, y = _vector_inputs(1_000_003, torch.float32, "cuda")
        torch.testing.assert_close(vector_add(x, y, alpha=0.5), torch.add(x, y, alpha=0.5))
        a, b = _matmul_inputs((1000, 1001, 999), torch.float32, "cuda")
        torch.testing.assert_close(matmul(a, b), torch.matmul(a, b), rtol=1e-4, atol=1e-3)
        print("vector_add and matmul match PyTorch on", torch.cuda.get_device_name(0))
    else:
        print("no GPU: the kernels compile here, and run where there is one (`manifold-course bench`)")

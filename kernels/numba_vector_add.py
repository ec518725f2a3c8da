r"""Vector addition in Numba-CUDA: one thread per element, and how data gets to the GPU and back.

$z = x + \alpha\, y$ elementwise, the contract of ``torch.add(input, other, alpha=alpha)`` for two floating tensors
of the same shape. The kernel is the CUDA programming model with nothing else in the way:

    i = blockIdx.x * blockDim.x + threadIdx.x   (cuda.grid(1))  ->  if i < n  ->  z[i] = x[i] + alpha * y[i]

The grid has ``ceil(n / THREADS)`` blocks of ``THREADS`` threads, so the last block runs past the end whenever
``n`` is not a multiple of ``THREADS``: the ``if i < n`` bounds check is what keeps those threads from writing
past the array (the simulator raises ``IndexError`` without it; a GPU silently corrupts memory or faults).

**Memory traffic.** $3n$ elements (read x and y, write z) for $n$ additions: far below one FLOP per byte, so the
kernel is bound by memory bandwidth. Consecutive threads touch consecutive addresses, so each warp's 32 loads
coalesce into a few wide memory transactions.

**Moving data (the launcher's contract).** Launchers in the Numba kernel files take and return *torch tensors*
(the reference is the PyTorch op):

- a CPU tensor is copied to the device with ``cuda.to_device`` and the result copied back with
  ``copy_to_host``: two PCIe transfers that cost far more than the kernel; this is the classic Numba workflow,
  and under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, chosen by ``manifold_course.kernels`` when there
  is no GPU) the "device" is host memory;
- a CUDA tensor is wrapped without a copy by ``cuda.as_cuda_array`` (the ``__cuda_array_interface__``
  protocol), the output is allocated by torch, and the kernel runs on torch's current stream: this is the
  path ``manifold-course bench`` times. Each launch also pays Python-side costs (Numba's dispatcher types the
  arguments, the tensors are wrapped): microseconds that dominate at small sizes, where a kernel moves only a
  few MB, and vanish at large ones.

The helpers :func:`tensor_to_numba`, :func:`numba_to_tensor` and :func:`torch_stream` implement that contract;
the other ``numba_*`` kernel files import them from here. Supported dtypes: float16 and float32 (math in fp32;
NumPy has no bfloat16, so neither path can carry one).

Reference: NVIDIA, *CUDA C++ Programming Guide*, "Programming Model" (thread hierarchy); S. K. Lam, A. Pitrou,
S. Seibert, "Numba: a LLVM-based Python JIT compiler", LLVM-HPC 2015 (doi:10.1145/2833157.2833162).
"""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or simulator mode before numba.cuda is imported

import numpy as np
import torch
from numba import cuda, float32

from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator

THREADS = 256             # threads per block: 8 warps, a multiple of the warp size (32)
NUMBA_DTYPES = (torch.float16, torch.float32)


@cuda.jit
def vector_add_kernel(
    x,        # input, (n,) device array, float16 or float32
    y,        # input, (n,) device array, same dtype as x
    z,        # output, (n,) device array: z = x + alpha * y
    alpha,    # scalar multiplier of y (torch.add's ``alpha``)
):
    i = cuda.grid(1)                                         # blockIdx.x * blockDim.x + threadIdx.x
    if i < z.shape[0]:                                       # the last block runs past n: those threads idle
        z[i] = float32(x[i]) + float32(alpha) * float32(y[i])   # read 2 elements, 1 fused multiply-add, write 1


# ------------------------------------------------------------------ torch <-> numba (shared by the numba_* files)
def tensor_to_numba(t: torch.Tensor, copy: bool = True):
    """The device array a kernel reads or writes for tensor ``t`` (which must be contiguous).

    CUDA tensor: a zero-copy view (``cuda.as_cuda_array``; ``sync=False`` because the kernel runs on torch's own
    stream). CPU tensor: ``cuda.to_device`` copies it to the device (``copy=False``: only allocate, for outputs).
    """
    t = t.detach()
    if t.is_cuda:
        return cuda.as_cuda_array(t, sync=False)
    host = t.numpy()                                         # shares memory with t
    return cuda.to_device(host) if copy else cuda.device_array_like(host)


def numba_to_tensor(d_out, out: torch.Tensor) -> torch.Tensor:
    """Finish an output: copy the device array back into the CPU tensor ``out``; a CUDA ``out`` is already it."""
    if not out.is_cuda:
        d_out.copy_to_host(out.detach().numpy())             # device -> host, into out's memory
    return out


def torch_stream(t: torch.Tensor):
    """The stream to launch on: torch's current stream for a CUDA tensor (so kernels, copies and torch ops stay
    ordered without synchronizing), else Numba's default stream 0."""
    if t.is_cuda:
        return cuda.external_stream(torch.cuda.current_stream(t.device).cuda_stream)
    return 0


def check_numba_dtype(*tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.dtype not in NUMBA_DTYPES:
            raise TypeError(f"the Numba kernels take float16 or float32 tensors, got {t.dtype} "
                            "(NumPy has no bfloat16: convert with .float())")


# ------------------------------------------------------------------ launcher
def vector_add(input: torch.Tensor, other: torch.Tensor, *, alpha: float = 1) -> torch.Tensor:
    """``torch.add(input, other, alpha=alpha)`` for two float16/float32 tensors of the same shape and dtype."""
    if input.shape != other.shape or input.dtype != other.dtype:
        raise ValueError(f"vector_add needs two tensors of the same shape and dtype (no broadcasting), got "
                         f"{tuple(input.shape)} {input.dtype} and {tuple(other.shape)} {other.dtype}")
    check_numba_dtype(input)
    x, y = input.contiguous().view(-1), other.contiguous().view(-1)   # (n,)
    z = torch.empty_like(x)
    n = x.numel()
    if n == 0:
        return z.view(input.shape)
    d_x, d_y, d_z = tensor_to_numba(x), tensor_to_numba(y), tensor_to_numba(z, copy=False)
    blocks = (n + THREADS - 1) // THREADS                    # ceil(n / THREADS): enough threads for every element
    vector_add_kernel[blocks, THREADS, torch_stream(x)](d_x, d_y, d_z, np.float32(alpha))
    return numba_to_tensor(d_z, z).view(input.shape)


def _make_inputs(size: int, dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    return (torch.randn(size, dtype=dtype, device=device, generator=gen),
            torch.randn(size, dtype=dtype, device=device, generator=gen))


BENCH = [
    BenchSpec(
        name="numba_vector_add",
        kernel=vector_add,
        reference=torch.add,
        make_inputs=_make_inputs,
        sizes=[2**20, 2**24, 2**26],
        dtypes=NUMBA_DTYPES,
        bytes_moved=lambda n, dtype: 3 * n * dtype.itemsize,   # read x and y, write z
        bound="memory",
    ),
]


if __name__ == "__main__":
    print(MODE.describe())
    device = "cuda" if MODE.gpu else "cpu"
    for dtype in NUMBA_DTYPES:
        x, y = _make_inputs(1001, dtype, device)              # not a multiple of THREADS
        torch.testing.assert_close(vector_add(x, y, alpha=0.5), torch.add(x, y, alpha=0.5))
        print(f"{dtype}: matches torch.add")
    if MODE.gpu:
        from manifold_course.systems.bench import default_timer

        timer = default_timer()
        for n in BENCH[0].sizes:
            x, y = _make_inputs(n, torch.float32, device)
            for label, fn in (("numba", vector_add), ("torch", torch.add)):
                ms = timer(lambda: fn(x, y))
                print(f"n={n:>9} {label:>6}: {ms:8.3f} ms  {3 * 4 * n / ms * 1e-6:7.1f} GB/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures GB/s")

r"""Vector addition in Triton: the "hello world" of GPU kernels, and the roofline's memory-bound corner.

$z = x + \alpha\, y$ elementwise, the contract of ``torch.add(input, other, alpha=alpha)`` for two tensors of the
same shape. Each program owns one block of ``BLOCK`` consecutive elements:

    pid -> offsets = pid * BLOCK + [0, BLOCK) -> mask = offsets < n -> load(other=0) -> fp32 add -> store

**Memory traffic.** Every element is read twice (x and y) and written once: $3 n$ elements, the minimum any
implementation can move, and only one FLOP per 3 elements, so the kernel is bound by HBM bandwidth, never by
arithmetic. A good kernel reaches 85-90 % of the device's peak bandwidth; PyTorch's ``a + b`` is already such a
kernel, so the point here is the *structure* (grid, offsets, masks), not a speed-up. Fusing more work into the
same pass (see ``triton_softmax``) is where writing a kernel pays.

On a CPU the same kernel runs under the Triton interpreter (``TRITON_INTERPRET=1``, chosen by
``manifold_course.kernels``): programs run one after another in numpy, so it is correct but slow, and the cost
grows with the number of programs: there the launcher uses one large block.

Reference: P. Tillet, H. T. Kung, D. Cox, "Triton: an intermediate language and compiler for tiled neural network
computations", MAPL 2019 (doi:10.1145/3315508.3329973); the Triton tutorial ``01-vector-add.py``.
"""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or interpreter mode before triton is imported

import torch
import triton
import triton.language as tl

from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator


@triton.jit
def add_kernel(
    t_x,                 # pointer to the first input x, n elements, contiguous
    t_y,                 # pointer to the second input y, n elements, contiguous
    t_z,                 # pointer to the output z = x + alpha * y, n elements, contiguous
    n,                   # number of elements
    alpha,               # scalar multiplier of y (torch.add's ``alpha``)
    BLOCK: tl.constexpr, # elements per program (a power of two)
):
    pid = tl.program_id(axis=0)                              # which block of the 1-D grid this program owns
    offsets = pid * BLOCK + tl.arange(0, BLOCK)              # (BLOCK,) element indices of this block
    mask = offsets < n                                       # the last block may run past the end
    p_x = t_x + offsets                                      # (BLOCK,) pointers
    p_y = t_y + offsets
    b_x = tl.load(p_x, mask=mask, other=0.0).to(tl.float32)  # read x: n elements in total
    b_y = tl.load(p_y, mask=mask, other=0.0).to(tl.float32)  # read y: n elements in total
    b_z = b_x + alpha * b_y                                  # z = x + alpha y, in fp32
    tl.store(t_z + offsets, b_z.to(t_z.dtype.element_ty), mask=mask)   # write z: n elements


def _launch_config(n: int) -> dict:
    """Block size and warps: 1024 elements and 4 warps on a GPU (8 fp32 per thread, two 16-byte loads each;
    enough programs, n / 1024, to fill an H100's 132 SMs many times over); under the interpreter one block of up
    to 2^16 elements, because there the cost is per program, not per element."""
    if MODE.triton_interpret:
        return dict(BLOCK=min(1 << 16, triton.next_power_of_2(max(n, 1))), num_warps=1)
    return dict(BLOCK=1024, num_warps=4)


def add(input: torch.Tensor, other: torch.Tensor, *, alpha: float = 1) -> torch.Tensor:
    """``torch.add(input, other, alpha=alpha)`` for two floating tensors of the same shape (no broadcasting)."""
    if input.shape != other.shape:
        raise ValueError(f"add needs two tensors of the same shape (no broadcasting), got {tuple(input.shape)} "
                         f"and {tuple(other.shape)}")
    if not (input.is_floating_point() and other.is_floating_point()):
        raise TypeError("add computes in fp32: pass floating-point tensors")
    out_dtype = torch.promote_types(input.dtype, other.dtype)
    x, y = input.contiguous().view(-1), other.contiguous().view(-1)   # (n,)
    z = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    n = x.numel()
    if n == 0:
        return z.view(input.shape)
    cfg = _launch_config(n)
    grid = (triton.cdiv(n, cfg["BLOCK"]),)                   # one program per block
    add_kernel[grid](x, y, z, n, float(alpha), **cfg)
    return z.view(input.shape)


def _make_inputs(size: int, dtype: torch.dtype, device: str) -> tuple:
    gen = torch_generator(0, device)
    return (torch.randn(size, dtype=dtype, device=device, generator=gen),
            torch.randn(size, dtype=dtype, device=device, generator=gen))


BENCH = [
    BenchSpec(
        name="vector_add",
        kernel=add,
        reference=torch.add,
        make_inputs=_make_inputs,
        sizes=[2**28],                                                   # 2^28 elements: 1 GiB per fp32 tensor
        dtypes=(torch.float16, torch.float32),
        bytes_moved=lambda n, dtype: 3 * n * dtype.itemsize,   # read x and y, write z
        bound="memory",
    ),
]


if __name__ == "__main__":
    device = "cuda" if MODE.gpu else "cpu"
    print(MODE.describe())
    for dtype in (torch.float32, torch.float16):
        x, y = _make_inputs(98_317, dtype, device)                       # not a multiple of the block
        torch.testing.assert_close(add(x, y), torch.add(x, y))
        print(f"{dtype}: matches torch.add")
    if MODE.gpu:
        from triton.testing import do_bench

        for n in (2**20, 2**24, 2**28):
            x, y = _make_inputs(n, torch.float32, device)
            for label, fn in (("triton", add), ("torch", torch.add)):
                ms = do_bench(lambda: fn(x, y))
                print(f"n=2^{n.bit_length() - 1:<3} {label:>6}: {ms:8.3f} ms  {3 * 4 * n / ms * 1e-6:7.1f} GB/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures GB/s")

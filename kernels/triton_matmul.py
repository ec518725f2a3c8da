r"""Blocked matrix multiplication in Triton: tiles, ``tl.dot`` on tensor cores, fp32 accumulation, grouped order.

$C = A B$ for A (M, K) and B (K, N); the contract of ``torch.matmul(input, other)`` for two 2-D tensors of the same
floating dtype. Each program computes one BLOCK_M x BLOCK_N tile of C:

    acc = 0 (fp32)
    for k in 0, BLOCK_K, 2 BLOCK_K, ...:        # walk the shared K axis
        acc += A[tile rows, k:k+BLOCK_K] @ B[k:k+BLOCK_K, tile cols]    # tl.dot: tensor-core MMA on a GPU
    C[tile] = acc (cast to C's dtype)

**Arithmetic intensity.** A tile loads (BLOCK_M + BLOCK_N) BLOCK_K elements per step and does
2 BLOCK_M BLOCK_N BLOCK_K FLOPs: ~85 FLOP per byte for 128 x 256 x 64 fp16 tiles. Were every load served from
HBM, that would sit below an H100's ridge point (~990 dense fp16 TFLOP/s / 3.35 TB/s ~ 295 FLOP/B) and the
kernel would be memory-bound; it reaches the compute roof because each tile of A and B is loaded by many
programs and most of those loads hit L2, which is what the program order below arranges.

**Grouped ordering (L2 reuse).** Programs are launched in order of their id. Row-major tile order (pid -> (pid //
n_tiles_n, pid % n_tiles_n)) makes consecutive programs share one block-row of A but sweep *all* of B, which does
not fit in L2. Grouping GROUP_M block-rows together and walking them column by column makes a wave of programs
touch GROUP_M block-rows of A and a few block-columns of B instead. The Triton tutorial ``03-matrix-multiplication``
reports more than 10 % from this alone on an A100 (220 -> 245 TFLOP/s); others measure less, so let
``manifold-course bench`` on your GPU decide.

**Precision.** Products of fp16/bf16 inputs are summed in fp32 (``acc``), the way cuBLAS does; the result is
rounded once on store. For fp32 inputs tensor cores compute in TF32 (10-bit mantissa) unless told not to: the
launcher follows ``torch.backends.cuda.matmul.allow_tf32`` (False by default, so "ieee", exact fp32 FMAs).
Under the Triton interpreter bf16 ``tl.dot`` returns wrong numbers, so there the operands are upcast to fp32.

Reference: P. Tillet, H. T. Kung, D. Cox, "Triton: an intermediate language and compiler for tiled neural network
computations", MAPL 2019 (doi:10.1145/3315508.3329973).
"""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or interpreter mode before triton is imported

import torch
import triton
import triton.language as tl

from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator


@triton.jit
def matmul_kernel(
    t_a,                          # pointer to A, (M, K), any strides
    t_b,                          # pointer to B, (K, N), any strides
    t_c,                          # pointer to C = A B, (M, N)
    M, N, K,                      # problem size
    stride_am, stride_ak,         # elements between consecutive rows / columns of A
    stride_bk, stride_bn,         # ... of B
    stride_cm, stride_cn,         # ... of C
    BLOCK_M: tl.constexpr,        # rows of the C tile a program computes
    BLOCK_N: tl.constexpr,        # columns of that tile
    BLOCK_K: tl.constexpr,        # depth of one step along K
    GROUP_M: tl.constexpr,        # block-rows of C walked together (L2 reuse)
    DOT_DTYPE: tl.constexpr,      # dtype fed to tl.dot: the input dtype, or fp32 for bf16 under the interpreter
    INPUT_PRECISION: tl.constexpr,  # "ieee" or "tf32" for fp32 inputs (ignored for fp16 / bf16)
):
    # ---- which tile: grouped ordering of the 1-D grid
    pid = tl.program_id(axis=0)
    n_tiles_m = (M + BLOCK_M - 1) // BLOCK_M                   # ceil(M / BLOCK_M) tiles down C
    n_tiles_n = (N + BLOCK_N - 1) // BLOCK_N                   # ceil(N / BLOCK_N) tiles across C
    tiles_per_group = GROUP_M * n_tiles_n                      # a group: GROUP_M block-rows x all block-columns
    group = pid // tiles_per_group
    first_m = group * GROUP_M
    group_m = min(n_tiles_m - first_m, GROUP_M)                # the last group may be shorter
    pid_m = first_m + (pid % tiles_per_group) % group_m        # down the group's block-rows first ...
    pid_n = (pid % tiles_per_group) // group_m                 # ... then the next block-column

    # ---- offsets and pointers of the first K step
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)           # (BLOCK_M,) rows of C, A
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)           # (BLOCK_N,) columns of C, B
    offs_k = tl.arange(0, BLOCK_K)                             # (BLOCK_K,)
    p_a = t_a + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak   # (BLOCK_M, BLOCK_K)
    p_b = t_b + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn   # (BLOCK_K, BLOCK_N)

    # ---- walk K, accumulating in fp32
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        k_left = K - k                                         # columns of A / rows of B still to go
        # out-of-range entries load 0: they add 0 * anything = 0 to the sums
        b_a = tl.load(p_a, mask=(offs_m[:, None] < M) & (offs_k[None, :] < k_left), other=0.0)
        b_b = tl.load(p_b, mask=(offs_k[:, None] < k_left) & (offs_n[None, :] < N), other=0.0)
        acc = tl.dot(b_a.to(DOT_DTYPE), b_b.to(DOT_DTYPE), acc,       # acc += A_tile @ B_tile
                     input_precision=INPUT_PRECISION)
        p_a += BLOCK_K * stride_ak                             # next step along K
        p_b += BLOCK_K * stride_bk

    # ---- write the tile once, rounded to C's dtype
    p_c = t_c + offs_m[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(p_c, acc.to(t_c.dtype.element_ty), mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


_TL_DTYPE = {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32}


def _launch_config(dtype: torch.dtype) -> dict:
    """Tiles for an H100: 128 x 256 x 64 in fp16/bf16 (48 KiB of shared memory per pipeline stage, 3 stages, 8
    warps: the best config of the Triton tutorial on Hopper), 128 x 128 x 32 in fp32 (twice the bytes per element).
    Under the interpreter 64 x 64 x 64 tiles in one config (no autotuning there)."""
    if MODE.triton_interpret:
        return dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=64, GROUP_M=8, num_warps=1)
    if dtype == torch.float32:
        return dict(BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, GROUP_M=8, num_warps=8, num_stages=3)
    return dict(BLOCK_M=128, BLOCK_N=256, BLOCK_K=64, GROUP_M=8, num_warps=8, num_stages=3)


def matmul(input: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``torch.matmul(input, other)`` for 2-D input (M, K) and other (K, N) of the same floating dtype -> (M, N)."""
    if input.dim() != 2 or other.dim() != 2:
        raise ValueError(f"matmul takes 2-D matrices, got {input.dim()}-D and {other.dim()}-D")
    if input.shape[1] != other.shape[0]:
        raise ValueError(f"shapes {tuple(input.shape)} and {tuple(other.shape)} cannot be multiplied: "
                         "the columns of A must match the rows of B")
    if input.dtype != other.dtype or input.dtype not in _TL_DTYPE:
        raise TypeError(f"matmul takes two fp16, bf16 or fp32 matrices of one dtype, got {input.dtype} and "
                        f"{other.dtype}")
    (M, K), N = input.shape, other.shape[1]
    a, b = input, other
    c = torch.empty((M, N), dtype=a.dtype, device=a.device)
    if c.numel() == 0:
        return c
    if K == 0:
        return c.zero_()                                       # an empty sum
    dot_dtype = _TL_DTYPE[a.dtype]
    if MODE.triton_interpret and a.dtype == torch.bfloat16:
        dot_dtype = tl.float32                                 # the interpreter's bf16 dot is wrong
    precision = "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
    cfg = _launch_config(a.dtype)
    grid = (triton.cdiv(M, cfg["BLOCK_M"]) * triton.cdiv(N, cfg["BLOCK_N"]),)   # one program per C tile
    matmul_kernel[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                        c.stride(0), c.stride(1), DOT_DTYPE=dot_dtype, INPUT_PRECISION=precision, **cfg)
    return c


def _make_inputs(size: tuple[int, int, int], dtype: torch.dtype, device: str) -> tuple:
    M, N, K = size
    gen = torch_generator(0, device)
    return (torch.randn(M, K, dtype=dtype, device=device, generator=gen),
            torch.randn(K, N, dtype=dtype, device=device, generator=gen))


BENCH = [
    BenchSpec(
        name="matmul",
        kernel=matmul,
        reference=torch.matmul,
        make_inputs=_make_inputs,
        sizes=[(4096, 4096, 4096)],                            # (M, N, K)
        dtypes=(torch.float16,),
        flops=lambda size: 2 * size[0] * size[1] * size[2],    # one multiply and one add per (m, n, k)
        bound="compute",
    ),
]


if __name__ == "__main__":
    device = "cuda" if MODE.gpu else "cpu"
    print(MODE.describe())
    for dtype in (torch.float32, torch.float16):
        a, b = _make_inputs((333, 257, 190), dtype, device)
        expected = (a.float() @ b.float()).to(dtype)
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
        torch.testing.assert_close(matmul(a, b), expected, **tol)
        print(f"{dtype}: matches torch.matmul")
    if MODE.gpu:
        from triton.testing import do_bench

        for n in (1024, 2048, 4096):
            a, b = _make_inputs((n, n, n), torch.float16, device)
            for label, fn in (("triton", matmul), ("cuBLAS", torch.matmul)):
                ms = do_bench(lambda: fn(a, b))
                print(f"{n}^3 fp16 {label:>6}: {ms:7.3f} ms  {2 * n**3 / ms * 1e-9:6.1f} TFLOP/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures TFLOP/s")

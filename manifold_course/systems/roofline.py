r"""The roofline model: arithmetic intensity of real operations, real GPU specs, HBM traffic of tiled matmul and
attention, and the roofline of the CPU this runs on.

Arithmetic intensity $I = \text{FLOPs}/\text{bytes moved to and from main memory}$; attainable throughput
$P(I) = \min(P_{peak},\ I \cdot BW)$ (Williams, Waterman & Patterson, "Roofline: an insightful visual performance
model for multicore architectures", CACM 2009). Ops left of the ridge point $I^* = P_{peak}/BW$ are memory-bound.

FLOP conventions (one add, multiply, compare, exp or divide = 1 FLOP; a multiply-add = 2):
vector add $c = a + b$: $n$ FLOPs, $3n$ elements moved; matmul $(M,K)\times(K,N)$: $2MNK$ FLOPs,
$MK + KN + MN$ elements; row softmax of $(R, C)$: 5 FLOPs per element (max, subtract, exp, sum, divide), $2RC$
elements; LayerNorm of $(R, D)$: 7 FLOPs per element (mean, subtract, square, sum, scale, gain, shift), $2RD + 2D$
elements. Attention traffic follows FlashAttention (Dao et al. 2022, arXiv:2205.14135), Algorithms 0 and 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from manifold_course.timing import median_ms

# ---------------------------------------------------------------- real GPUs


@dataclass(frozen=True)
class GPUSpec:
    name: str
    hbm_bandwidth: float        # bytes/s
    fp32_flops: float           # FLOP/s, non-tensor FP32
    tensor_fp16_flops: float    # FLOP/s, dense FP16/BF16 Tensor Core with FP32 accumulation (no sparsity)
    tensor_fp8_flops: float     # FLOP/s, dense FP8 Tensor Core (0 where the GPU has none)
    n_sm: int
    fp32_lanes: int             # what marketing calls "CUDA cores"
    smem_per_sm: int            # bytes of configurable shared memory (on-chip SRAM) per SM
    year: int


TB, TF = 1e12, 1e12
GPUS = {
    # NVIDIA Tesla V100 datasheet (SXM2): 900 GB/s HBM2, 15.7 TFLOPS FP32, 125 TFLOPS tensor; Volta whitepaper (2017):
    # 80 SMs x 64 FP32 cores = 5120, up to 96 KB shared memory per SM. The first GPU with Tensor Cores.
    "V100 SXM2": GPUSpec("V100 SXM2", 0.9 * TB, 15.7 * TF, 125 * TF, 0.0, 80, 5120, 96 * 1024, 2017),
    # NVIDIA A100 datasheet: 40 GB 1,555 GB/s, 80 GB SXM 2,039 GB/s; FP32 19.5 TFLOPS; FP16/BF16 tensor 312 TFLOPS
    # dense (624 with sparsity). A100 whitepaper (2020): 108 SMs x 64 = 6912 FP32 cores, up to 164 KB shared per SM.
    "A100 40GB": GPUSpec("A100 40GB", 1.555 * TB, 19.5 * TF, 312 * TF, 0.0, 108, 6912, 164 * 1024, 2020),
    "A100 80GB SXM": GPUSpec("A100 80GB SXM", 2.039 * TB, 19.5 * TF, 312 * TF, 0.0, 108, 6912, 164 * 1024, 2020),
    # NVIDIA H100 datasheet (SXM5): 3.35 TB/s HBM3, FP32 67 TFLOPS, BF16/FP16 tensor 989 TFLOPS dense (1,979 sparse),
    # FP8 1,979 dense (3,958 sparse). Hopper whitepaper (2022): 132 SMs x 128 = 16,896 FP32 cores, 228 KB shared/SM.
    "H100 SXM": GPUSpec("H100 SXM", 3.35 * TB, 67 * TF, 989 * TF, 1979 * TF, 132, 16896, 228 * 1024, 2022),
    # NVIDIA H200 datasheet: 4.8 TB/s HBM3e, same compute as H100 SXM.
    "H200 SXM": GPUSpec("H200 SXM", 4.8 * TB, 67 * TF, 989 * TF, 1979 * TF, 132, 16896, 228 * 1024, 2024),
}
# FlashAttention (arXiv:2205.14135, section 2.1) quotes for the A100: "40-80GB of HBM with bandwidth 1.5-2.0TB/s and
# 192KB of on-chip SRAM per each of 108 streaming multiprocessors with bandwidth estimated around 19TB/s".
A100_SRAM_BANDWIDTH_FA_PAPER = 19 * TB
A100_SRAM_PER_SM_FA_PAPER = 192 * 1024


def ridge_point(peak_flops: float, bandwidth: float) -> float:
    """$I^* = P_{peak}/BW$ in FLOP/byte: ops with a lower intensity cannot reach the peak."""
    return peak_flops / bandwidth


def roofline(I, peak_flops: float, bandwidth: float):
    r"""Attainable FLOP/s $\min(P_{peak},\ I\cdot BW)$; ``I`` a float or an array of intensities (FLOP/byte)."""
    if isinstance(I, np.ndarray):
        return np.minimum(peak_flops, I * bandwidth)
    return min(float(peak_flops), float(I) * float(bandwidth))


# ---------------------------------------------------------------- FLOPs and bytes of real operations


def op_flops_bytes(op: str, shape: tuple[int, ...], dtype_bytes: int) -> tuple[float, float]:
    """(FLOPs, bytes moved to/from memory) of one op, with the conventions of the module docstring."""
    if op == "vector_add":
        (n,) = shape
        return float(n), float(3 * n * dtype_bytes)
    if op == "matmul":
        M, N, K = shape
        return 2.0 * M * N * K, float((M * K + K * N + M * N) * dtype_bytes)
    if op == "softmax":
        R, C = shape
        return 5.0 * R * C, float(2 * R * C * dtype_bytes)
    if op == "layer_norm":
        R, D = shape
        return 7.0 * R * D, float((2 * R * D + 2 * D) * dtype_bytes)
    raise ValueError(f"unknown op {op!r}: use vector_add, matmul, softmax or layer_norm")


def arithmetic_intensity(op: str, shape: tuple[int, ...], dtype_bytes: int) -> float:
    r"""$I$ in FLOP/byte. Closed forms: vector add $1/(3b)$ (= 1/12 in fp32); square matmul $2n/(3b)$;
    softmax $5/(2b)$; LayerNorm $7RD/((2RD + 2D)\,b)$."""
    flops, nbytes = op_flops_bytes(op, shape, dtype_bytes)
    return flops / nbytes


# ---------------------------------------------------------------- tiling


def tiled_matmul_traffic(M: int, N: int, K: int, tile: int, dtype_bytes: int) -> int:
    r"""Bytes read/written by a matmul $C = AB$ computed in ``tile x tile`` output tiles, each holding its tile of C in
    fast memory while it streams the matching row panel of A and column panel of B:

    $$\text{bytes} = b\,\big(MK\lceil N/t\rceil + KN\lceil M/t\rceil + MN\big).$$

    At $t = 1$ this is the naive $2MNK + MN$ elements (every multiply-add loads its two operands); it falls like
    $1/t$ until the tile covers the matrix.
    """
    return int(dtype_bytes * (M * K * math.ceil(N / tile) + K * N * math.ceil(M / tile) + M * N))


def tiled_matmul_numpy(A: np.ndarray, B: np.ndarray, tile: int) -> tuple[np.ndarray, int]:
    """$C = AB$ with explicit block loads from "HBM" (the arrays) into "SRAM" (local copies); returns (C, bytes moved),
    counting every element loaded or stored. Equals :func:`tiled_matmul_traffic`."""
    M, K = A.shape
    _, N = B.shape
    C = np.zeros((M, N), dtype=A.dtype)
    moved = 0
    for i in range(0, M, tile):
        for j in range(0, N, tile):
            acc = np.zeros((min(tile, M - i), min(tile, N - j)), dtype=A.dtype)   # the C tile, in SRAM
            for k in range(0, K, tile):
                a = A[i:i + tile, k:k + tile].copy()                               # load an A block
                b = B[k:k + tile, j:j + tile].copy()                               # load a B block
                moved += a.nbytes + b.nbytes
                acc += a @ b
            C[i:i + tile, j:j + tile] = acc                                        # store the C tile once
            moved += acc.nbytes
    return C, moved


# ---------------------------------------------------------------- attention: standard vs FlashAttention


def attention_flops(N: int, d: int) -> float:
    r"""FLOPs of one head's attention forward: $S = QK^\top$ and $O = PV$, $2\cdot 2N^2d$ (softmax ignored)."""
    return 4.0 * N * N * d


def standard_attention_hbm_bytes(N: int, d: int, dtype_bytes: int = 2) -> float:
    r"""Algorithm 0 of FlashAttention: read Q, K; write S ($N^2$); read S, write P; read P, V; write O.
    Elements $4Nd + 4N^2$: $\Theta(Nd + N^2)$."""
    return float(dtype_bytes * (4 * N * d + 4 * N * N))


def flash_attention_hbm_bytes(N: int, d: int, sram_bytes: int, dtype_bytes: int = 2) -> float:
    r"""Algorithm 1 of FlashAttention (forward): blocks $B_c = \lceil M/(4d)\rceil$, $B_r = \min(B_c, d)$ with $M$ the
    SRAM size in elements. The outer loop loads each K, V block once ($2Nd$); for each of the $T_c = \lceil N/B_c\rceil$
    outer steps the inner loop reads Q and O and writes O ($3Nd$) and reads/writes the row statistics $\ell, m$ ($4N$).
    Total $2Nd + T_c(3Nd + 4N)$ elements $= \Theta(N^2d^2/M)$ (the paper's Theorem 2)."""
    M = sram_bytes // dtype_bytes
    Bc = math.ceil(M / (4 * d))
    Tc = math.ceil(N / Bc)
    return float(dtype_bytes * (2 * N * d + Tc * (3 * N * d + 4 * N)))


# ---------------------------------------------------------------- this CPU's own roofline


@dataclass(frozen=True)
class Measurement:
    seconds: float              # median time of one call
    flops: float                # FLOPs of one call
    nbytes: float               # minimal bytes moved by one call

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.seconds

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.seconds

    @property
    def intensity(self) -> float:
        return self.flops / self.nbytes


def measure_vector_add(n: int = 1 << 23, repeats: int = 7) -> Measurement:
    """Time ``torch.add(a, b, out=c)`` on fp32 vectors of ``n`` elements (32 MB each by default, far larger than the
    caches): $n$ FLOPs and $12n$ bytes. Its bytes/s is this machine's achieved memory bandwidth (a STREAM-like 'add')."""
    a, b, c = torch.rand(n), torch.rand(n), torch.empty(n)
    ms = median_ms(lambda: torch.add(a, b, out=c), repeats=repeats)
    flops, nbytes = op_flops_bytes("vector_add", (n,), 4)
    return Measurement(ms / 1e3, flops, nbytes)


def measure_matmul(n: int = 768, repeats: int = 5) -> Measurement:
    """Time an fp32 ``n x n`` matmul ($2n^3$ FLOPs): close to this core's peak FLOP/s (one thread by default)."""
    A, B, C = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)
    ms = median_ms(lambda: torch.mm(A, B, out=C), repeats=repeats)
    flops, nbytes = op_flops_bytes("matmul", (n, n, n), 4)
    return Measurement(ms / 1e3, flops, nbytes)

r"""FlashAttention forward in Triton: exact attention without ever writing the T x T score matrix.

$O = \mathrm{softmax}(Q K^\top \cdot s)\,V$ per batch and head, $s = 1/\sqrt d$ by default, optionally causal; the
contract of ``torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
is_causal=False, scale=None, enable_gqa=False)`` for q (B, H, Tq, d), k and v (B, H_kv, Tk, d), without
``attn_mask`` and dropout. With ``is_causal`` query i sees keys j <= i (PyTorch's top-left alignment).

**Memory traffic.** The textbook version writes S = Q K^T (B H T^2 elements) to HBM, reads it for the softmax,
writes P, reads P for P V: four passes over a T x T matrix per head, 4 B H T^2 elements, T / d times more than
reading Q, K, V and writing O (4 B H T d): 64x at T = 4096, d = 64. FlashAttention (T. Dao, D. Y.
Fu, S. Ermon, A. Rudra, C. Ré, "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness",
NeurIPS 2022, arXiv:2205.14135) keeps a BLOCK_M x BLOCK_N tile of S in registers and never stores it: the
traffic is reading Q once, K and V once per query block, and writing O once.

**Online softmax.** A softmax needs the row maximum and the row sum before any output can be normalised, but the
keys arrive block by block. Keep, per query row, the running max $m$, the running sum $\ell$ of $e^{s - m}$ and
the unnormalised output $a$; when block j brings scores $s_j$:
    $m' = \max(m, \max s_j)$,  $\alpha = e^{m - m'}$        (rescale what was summed under the old max)
    $\ell' = \alpha \ell + \sum e^{s_j - m'}$,  $a' = \alpha a + e^{s_j - m'} V_j$
and at the end $O = a / \ell$: exactly softmax(S) V (M. Milakov, N. Gimelshein, "Online normalizer calculation
for softmax", 2018, arXiv:1805.02867). The kernel works in base 2 (``exp2``, with $\log_2 e$ folded into the
scale): the hardware's native exponential.

**Causal.** Key blocks entirely above the diagonal are skipped (the loop stops at the query block's last row),
which halves the FLOPs: 4 B H T^2 d for the two matmuls, 2 B H T^2 d causal. For clarity the mask is computed
on every block; the Triton tutorial ``06-fused-attention.py`` splits the loop so that only the diagonal block
pays for it.

Rows past Tq and keys past Tk are masked, so T need not be a multiple of the blocks; d is padded to a power of
two (at least 16, the smallest ``tl.dot``) with zeros, which change no dot product. Scores and sums are fp32; P is
rounded to the input dtype for the P V product on tensor cores, as in the paper.
"""

from __future__ import annotations

import math

from manifold_course.kernels import MODE  # chooses GPU or interpreter mode before triton is imported

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from manifold_course.systems.benchspec import BenchSpec
from manifold_course.seeding import torch_generator

LOG2_E = 1.4426950408889634                                   # e^x = 2^(x log2 e)


@triton.jit
def flash_attention_kernel(
    t_q,                                                      # pointer to Q, (B, H, Tq, d), any strides
    t_k,                                                      # pointer to K, (B, H_kv, Tk, d)
    t_v,                                                      # pointer to V, (B, H_kv, Tk, d)
    t_o,                                                      # pointer to the output O, (B, H, Tq, d)
    stride_qb, stride_qh, stride_qt, stride_qd,               # strides of Q, in elements
    stride_kb, stride_kh, stride_kt, stride_kd,               # strides of K
    stride_vb, stride_vh, stride_vt, stride_vd,               # strides of V
    stride_ob, stride_oh, stride_ot, stride_od,               # strides of O
    H,                                                        # query heads
    Tq, Tk,                                                   # query and key lengths
    d,                                                        # head width
    kv_group,                                                 # query heads per key/value head: H // H_kv
    qk_scale,                                                 # softmax scale times log2(e): scores in base 2
    IS_CAUSAL: tl.constexpr,                                  # query i sees keys j <= i only
    BLOCK_M: tl.constexpr,                                    # query rows per program
    BLOCK_N: tl.constexpr,                                    # keys per step of the inner loop
    BLOCK_D: tl.constexpr,                                    # d rounded up to a power of two (>= 16)
    DOT_DTYPE: tl.constexpr,                                  # dtype fed to tl.dot (fp32 for bf16 in the interpreter)
    INPUT_PRECISION: tl.constexpr,                            # "ieee" or "tf32" for fp32 inputs
):
    pid_m = tl.program_id(axis=0)                             # which block of query rows
    pid_bh = tl.program_id(axis=1)                            # which (batch, head)
    b = pid_bh // H
    h = pid_bh % H
    h_kv = h // kv_group                                      # GQA: consecutive query heads share a kv head

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)          # (BLOCK_M,) query rows
    offs_n = tl.arange(0, BLOCK_N)                            # (BLOCK_N,) key offsets within a step
    offs_d = tl.arange(0, BLOCK_D)                            # (BLOCK_D,)
    d_mask = offs_d < d

    # Q tile: read once, kept in registers for the whole loop
    p_q = t_q + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qt + offs_d[None, :] * stride_qd
    b_q = tl.load(p_q, mask=(offs_m[:, None] < Tq) & d_mask[None, :], other=0.0)   # (BLOCK_M, BLOCK_D)
    t_k_head = t_k + b * stride_kb + h_kv * stride_kh
    t_v_head = t_v + b * stride_vb + h_kv * stride_vh

    m_i = tl.full((BLOCK_M,), -float("inf"), dtype=tl.float32)   # running max m (base-2 units)
    l_i = tl.zeros((BLOCK_M,), dtype=tl.float32)                 # running sum l = sum 2^(s - m)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=tl.float32)         # running unnormalised output a

    hi = Tk
    if IS_CAUSAL:
        hi = tl.minimum(Tk, (pid_m + 1) * BLOCK_M)            # blocks past the diagonal hold no visible key
    for start_n in range(0, hi, BLOCK_N):
        cols = start_n + offs_n                               # (BLOCK_N,) key indices of this step
        # K^T tile (BLOCK_D, BLOCK_N): read through transposed pointers, no copy
        p_kt = t_k_head + cols[None, :] * stride_kt + offs_d[:, None] * stride_kd
        b_kt = tl.load(p_kt, mask=(cols[None, :] < Tk) & d_mask[:, None], other=0.0)
        b_s = tl.dot(b_q.to(DOT_DTYPE), b_kt.to(DOT_DTYPE), input_precision=INPUT_PRECISION)
        b_s = b_s * qk_scale                                  # S = Q K^T * scale, in log2 units (BLOCK_M, BLOCK_N)
        visible = cols[None, :] < Tk
        if IS_CAUSAL:
            visible = visible & (offs_m[:, None] >= cols[None, :])
        b_s = tl.where(visible, b_s, -float("inf"))           # masked BEFORE the softmax: weight 2^-inf = 0

        m_new = tl.maximum(m_i, tl.max(b_s, axis=1))          # m' = max(m, max_j s_j); finite: key 0 is seen first
        alpha = tl.exp2(m_i - m_new)                          # 2^(m - m'): rescales the old l and a
        b_p = tl.exp2(b_s - m_new[:, None])                   # P = 2^(s - m') <= 1
        l_i = l_i * alpha + tl.sum(b_p, axis=1)               # l' = alpha l + sum_j P_j

        p_v = t_v_head + cols[:, None] * stride_vt + offs_d[None, :] * stride_vd
        b_v = tl.load(p_v, mask=(cols[:, None] < Tk) & d_mask[None, :], other=0.0)   # (BLOCK_N, BLOCK_D)
        acc = acc * alpha[:, None]                            # a' = alpha a + P V
        acc = tl.dot(b_p.to(DOT_DTYPE), b_v.to(DOT_DTYPE), acc, input_precision=INPUT_PRECISION)
        m_i = m_new

    b_o = acc / l_i[:, None]                                  # O = a / l
    p_o = t_o + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_ot + offs_d[None, :] * stride_od
    tl.store(p_o, b_o.to(t_o.dtype.element_ty), mask=(offs_m[:, None] < Tq) & d_mask[None, :])


_TL_DTYPE = {torch.float16: tl.float16, torch.bfloat16: tl.bfloat16, torch.float32: tl.float32}


def _launch_config(dtype: torch.dtype, d: int) -> dict:
    """On an H100, 128 query rows x 64 keys per step, 4 warps (8 for d > 64), 3 pipeline stages for fp16/bf16,
    in the range the Triton fused-attention tutorial tunes over on Hopper; 32 x 32 tiles for fp32 (twice the
    bytes, and no tensor cores at "ieee": larger tiles spill registers at d = 128, as ptxas -v shows for sm_90).
    Under the interpreter, one 64 x 64 config."""
    if MODE.triton_interpret:
        return dict(BLOCK_M=64, BLOCK_N=64, num_warps=1)
    if dtype == torch.float32:
        return dict(BLOCK_M=32, BLOCK_N=32, num_warps=4, num_stages=2)
    return dict(BLOCK_M=128, BLOCK_N=64, num_warps=4 if d <= 64 else 8, num_stages=3)


def scaled_dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                                 attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` for q (B, H, Tq, d), k, v (B, H_kv, Tk, d) -> (B, H, Tq, d), forward only.

    ``attn_mask`` and ``dropout_p`` are not supported (use the causal flag); ``enable_gqa`` lets H_kv divide H.
    """
    if attn_mask is not None or dropout_p != 0.0:
        raise NotImplementedError("this FlashAttention kernel takes no attn_mask and no dropout: use is_causal")
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise ValueError("q, k, v must be (B, H, T, d)")
    if not (query.dtype == key.dtype == value.dtype) or query.dtype not in _TL_DTYPE:
        raise TypeError(f"q, k, v must share one dtype among fp16, bf16, fp32; got {query.dtype}, {key.dtype}, "
                        f"{value.dtype}")
    B, H, Tq, d = query.shape
    H_kv, Tk = key.shape[1], key.shape[2]
    if key.shape != value.shape or key.shape[0] != B or key.shape[3] != d:
        raise ValueError(f"k and v must be (B, H_kv, Tk, d) with q's B and d: q {tuple(query.shape)}, "
                         f"k {tuple(key.shape)}, v {tuple(value.shape)}")
    if H_kv != H and not (enable_gqa and H % H_kv == 0):
        raise ValueError(f"{H} query heads and {H_kv} key/value heads: pass enable_gqa=True with H_kv dividing H")
    out = torch.empty((B, H, Tq, d), dtype=query.dtype, device=query.device)
    if out.numel() == 0:
        return out
    if Tk == 0:
        raise ValueError("attention over zero keys is undefined (softmax of an empty row)")

    dot_dtype = _TL_DTYPE[query.dtype]
    if MODE.triton_interpret and query.dtype == torch.bfloat16:
        dot_dtype = tl.float32                                 # the interpreter's bf16 dot is wrong
    precision = "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    cfg = _launch_config(query.dtype, d)
    grid = (triton.cdiv(Tq, cfg["BLOCK_M"]), B * H)            # (query blocks, batch x heads)
    q, k, v = query, key, value
    flash_attention_kernel[grid](
        q, k, v, out,
        q.stride(0), q.stride(1), q.stride(2), q.stride(3),
        k.stride(0), k.stride(1), k.stride(2), k.stride(3),
        v.stride(0), v.stride(1), v.stride(2), v.stride(3),
        out.stride(0), out.stride(1), out.stride(2), out.stride(3),
        H, Tq, Tk, d, H // H_kv, float(scale) * LOG2_E,
        IS_CAUSAL=bool(is_causal), BLOCK_D=max(16, triton.next_power_of_2(d)), DOT_DTYPE=dot_dtype,
        INPUT_PRECISION=precision, **cfg,
    )
    return out


def _make_inputs(size: tuple[int, int, int, int], dtype: torch.dtype, device: str, causal: bool = False) -> tuple:
    B, H, T, d = size
    gen = torch_generator(0, device)
    q, k, v = (torch.randn(B, H, T, d, dtype=dtype, device=device, generator=gen) for _ in range(3))
    return (q, k, v, None, 0.0, causal)                       # positional, as F.scaled_dot_product_attention takes them


def _make_causal_inputs(size: tuple[int, int, int, int], dtype: torch.dtype, device: str) -> tuple:
    return _make_inputs(size, dtype, device, causal=True)


def _attention_flops(size: tuple[int, int, int, int], causal: bool) -> float:
    B, H, T, d = size
    full = 4 * B * H * T * T * d                               # Q K^T and P V: 2 T^2 d each per head
    return full / 2 if causal else full                        # causal: only the lower triangle


BENCH = [
    BenchSpec(
        name="flash_attention",
        kernel=scaled_dot_product_attention,
        reference=F.scaled_dot_product_attention,
        make_inputs=_make_inputs,
        sizes=[(4, 32, 4096, 64)],                             # (B, H, T, d)
        dtypes=(torch.float16,),
        flops=lambda size: _attention_flops(size, causal=False),
        bound="compute",
    ),
    BenchSpec(
        name="flash_attention_causal",
        kernel=scaled_dot_product_attention,
        reference=F.scaled_dot_product_attention,
        make_inputs=_make_causal_inputs,
        sizes=[(4, 32, 4096, 64)],
        dtypes=(torch.float16,),
        flops=lambda size: _attention_flops(size, causal=True),
        bound="compute",
    ),
]


if __name__ == "__main__":
    device = "cuda" if MODE.gpu else "cpu"
    print(MODE.describe())
    for dtype in (torch.float32, torch.float16):
        for causal in (False, True):
            args = _make_inputs((2, 3, 97, 40), dtype, device, causal)   # T and d not multiples of the blocks
            expected = F.scaled_dot_product_attention(*(a.float() if torch.is_tensor(a) else a for a in args))
            tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
            torch.testing.assert_close(scaled_dot_product_attention(*args), expected.to(dtype), **tol)
            print(f"{dtype} causal={causal}: matches F.scaled_dot_product_attention")
    if MODE.gpu:
        from triton.testing import do_bench

        for causal in (False, True):
            args = _make_inputs((4, 32, 4096, 64), torch.float16, device, causal)
            flops = _attention_flops((4, 32, 4096, 64), causal)
            for label, fn in (("triton", scaled_dot_product_attention), ("torch", F.scaled_dot_product_attention)):
                ms = do_bench(lambda: fn(*args))
                print(f"causal={causal} fp16 {label:>6}: {ms:7.3f} ms  {flops / ms * 1e-9:6.1f} TFLOP/s")
    else:
        print("no GPU: `manifold-course bench` on a GPU machine measures TFLOP/s")

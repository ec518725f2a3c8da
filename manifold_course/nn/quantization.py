r"""Blockwise weight quantisation: absmax INT8 / INT4 and QLoRA's 4-bit NormalFloat (NF4).

A weight tensor is flattened and cut into blocks of ``block`` consecutive values (the last block padded with zeros).
Each block is stored as small integer codes plus one float scale, its absolute maximum $s = \max_i |w_i|$:

- **absmax INT-b** (symmetric, $n = 2^{b-1} - 1$ positive levels): $c_i = \mathrm{round}(n\,w_i / s)$,
  $\hat w_i = s\,c_i / n$. The levels are evenly spaced in $[-s, s]$.
- **NF4** (Dettmers, Pagnoni, Holtzman & Zettlemoyer, "QLoRA: Efficient Finetuning of Quantized LLMs", 2023,
  arXiv:2305.14314): the 16 levels $v_j \in [-1, 1]$ are *quantiles of a standard normal*, so that a normally
  distributed block fills every level about equally often; $c_i = \arg\min_j |w_i / s - v_j|$, $\hat w_i = s\,v_{c_i}$.
  The paper builds an asymmetric code book with an exact zero: 8 quantiles for the positive half and 7 for the
  negative half, taken at probabilities from $\delta$ to $\tfrac12$ with $\delta = \tfrac12(\tfrac1{32} + \tfrac1{30})$,
  then normalised to $[-1, 1]$ (``nf4_levels``; the table of the paper's appendix is ``NF4_PUBLISHED``).

Storage: 4 bits per weight plus the scale, $32/64 = 0.5$ bit per weight for fp32 scales and blocks of 64. *Double
quantisation* stores the scales themselves in 8 bits with one fp32 scale per 256 of them:
$8/64 + 32/(64\cdot256) \approx 0.127$ bit per weight (``scale_overhead_bits``).
"""

from __future__ import annotations

import torch
from scipy.stats import norm

# The NF4 code book as printed in QLoRA's appendix (and used by bitsandbytes), for comparison with nf4_levels().
NF4_PUBLISHED = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)


def nf4_levels(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""The 16 NF4 levels, sorted, from normal quantiles as in QLoRA (arXiv:2305.14314, eq. 4 and appendix E).

    Positive half: $\Phi^{-1}$ at 9 evenly spaced probabilities from $1 - \delta$ down to $\tfrac12$, the last one
    (the quantile 0) dropped: 8 values. Negative half: minus $\Phi^{-1}$ at 8 probabilities from $1 - \delta$ to
    $\tfrac12$, the last dropped: 7 values. Add an exact 0 and divide by the largest value, so the ends are $\pm 1$.
    """
    delta = 0.5 * (1 / 32 + 1 / 30)                                   # 0.0323: keeps Phi^{-1} finite at the ends
    pos = norm.ppf(torch.linspace(1 - delta, 0.5, 9, dtype=torch.float64)[:-1].numpy())   # 8 positive quantiles
    neg = -norm.ppf(torch.linspace(1 - delta, 0.5, 8, dtype=torch.float64)[:-1].numpy())  # 7 negative quantiles
    v = torch.tensor(sorted([*pos, 0.0, *neg]), dtype=torch.float64)
    return (v / v.abs().max()).to(dtype)                              # (16,)


def _blocks(w: torch.Tensor, block: int) -> torch.Tensor:
    """Flatten ``w`` and cut it into rows of ``block`` values, padding the last row with zeros: (n_blocks, block)."""
    flat = w.reshape(-1)
    pad = (-flat.numel()) % block
    return torch.cat([flat, flat.new_zeros(pad)]).view(-1, block)


def _absmax(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-block scale s = max|w| (n_blocks,), and the divisor: s, or 1 for an all-zero block (no 0 / 0)."""
    s = blocks.abs().amax(dim=1)
    return s, torch.where(s > 0, s, torch.ones_like(s))


def absmax_quantize(w: torch.Tensor, bits: int = 8, block: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Symmetric absmax quantisation: codes $c = \mathrm{round}(n w / s) \in [-n, n]$, $n = 2^{b-1} - 1$ (int8 tensor)."""
    b = _blocks(w, block)                                              # (n_blocks, block)
    s, div = _absmax(b)                                                # (n_blocks,)
    n = 2 ** (bits - 1) - 1
    codes = torch.round(b / div[:, None] * n).to(torch.int8)
    return codes, s


def absmax_dequantize(codes: torch.Tensor, scales: torch.Tensor, shape: torch.Size | tuple, bits: int = 8) -> torch.Tensor:
    r"""$\hat w = s\,c / n$, trimmed of the padding and reshaped to ``shape``."""
    n = 2 ** (bits - 1) - 1
    w = codes.to(scales.dtype) * scales[:, None] / n                   # (n_blocks, block)
    numel = int(torch.Size(shape).numel())
    return w.reshape(-1)[:numel].view(shape)


def nf4_quantize(w: torch.Tensor, levels: torch.Tensor | None = None, block: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""NF4 codes: index of the nearest level to $w / s$ per value (int64, (n_blocks, block)), and the scales $s$."""
    levels = nf4_levels(w.dtype) if levels is None else levels.to(w.dtype)
    b = _blocks(w, block)                                              # (n_blocks, block)
    s, div = _absmax(b)                                                # (n_blocks,)
    x = b / div[:, None]                                               # in [-1, 1]
    codes = (x[..., None] - levels).abs().argmin(dim=-1)              # (n_blocks, block) nearest level
    return codes, s


def nf4_dequantize(codes: torch.Tensor, scales: torch.Tensor, shape: torch.Size | tuple,
                   levels: torch.Tensor | None = None) -> torch.Tensor:
    r"""$\hat w = s\,v_c$, trimmed of the padding and reshaped to ``shape``."""
    levels = nf4_levels(scales.dtype) if levels is None else levels.to(scales.dtype)
    w = levels[codes] * scales[:, None]                                # (n_blocks, block)
    numel = int(torch.Size(shape).numel())
    return w.reshape(-1)[:numel].view(shape)


def quantization_error(w: torch.Tensor, method: str = "nf4", block: int = 64) -> float:
    r"""Mean squared reconstruction error $\frac1N\sum_i (w_i - \hat w_i)^2$ for ``"nf4"``, ``"int4"`` or ``"int8"``."""
    if method == "nf4":
        codes, s = nf4_quantize(w, block=block)
        w_hat = nf4_dequantize(codes, s, w.shape)
    elif method in ("int4", "int8"):
        bits = int(method[3:])
        codes, s = absmax_quantize(w, bits=bits, block=block)
        w_hat = absmax_dequantize(codes, s, w.shape, bits=bits)
    else:
        raise ValueError(f"method must be 'nf4', 'int4' or 'int8', got {method!r}")
    return float((w - w_hat).double().pow(2).mean())


def scale_overhead_bits(block: int = 64, double_quant: bool = False, block2: int = 256,
                        scale_bits: int = 32, scale2_bits: int = 8) -> float:
    r"""Bits per weight spent on scales: $32/64 = 0.5$, or with double quantisation $8/64 + 32/(64\cdot256)$."""
    if not double_quant:
        return scale_bits / block
    return scale2_bits / block + scale_bits / (block * block2)

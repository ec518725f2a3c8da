r"""Post-training quantisation (absmax, zero-point, per-channel, GPTQ, AWQ, ternary) and quantisation-aware training.

**Uniform quantisation.** A real tensor $x$ is stored as integer codes $q$ and a float scale $s$ (and a zero point $z$):
$$q = \mathrm{clamp}\big(\mathrm{round}(x / s) + z,\ q_{min},\ q_{max}\big),\qquad \hat x = s\,(q - z).$$
- *absmax* (symmetric, $z = 0$): $s = \max|x| / n$ with $n = 2^{b-1} - 1$ (127 for int8), codes in $[-n, n]$.
- *zero-point* (asymmetric): codes $0 .. 2^b - 1$, $s = (\max x - \min x) / (2^b - 1)$, $z = \mathrm{round}(-\min x / s)$.
  A skewed tensor (post-ReLU activations live in $[0, \max]$) uses all $2^b$ codes instead of half of them.
- *per-channel*: one scale per output row of a weight matrix instead of one for the whole tensor.

**GPTQ** (E. Frantar, S. Ashkboos, T. Hoefler, D. Alistarh, "GPTQ: Accurate Post-Training Quantization for Generative
Pre-trained Transformers", 2022, arXiv:2210.17323). For a linear layer $y = W x$ with calibration inputs
$X \in \mathbb R^{n\times d_{in}}$, minimise $\|W X^\top - \hat W X^\top\|_F^2$, whose Hessian in each row of $W$ is
$H = 2 X^\top X$. Quantise the columns one at a time; after column $i$, spread its error over the columns not yet
quantised with the (upper Cholesky factor $U$ of the) inverse Hessian:
$$e = \frac{w_{:,i} - \mathrm{quant}(w_{:,i})}{U_{ii}},\qquad w_{:,j} \leftarrow w_{:,j} - e\,U_{ij}\quad (j > i).$$

**AWQ** (J. Lin et al., "AWQ: Activation-aware Weight Quantization for LLM Compression and Acceleration", 2023,
arXiv:2306.00978): weights that multiply large activations matter most. Scale input channel $j$ of $W$ up by
$s_j = \overline{|x_j|}^{\,\alpha}$ before quantising, and divide it back out:
$\hat W = Q(W\,\mathrm{diag}(s))\,\mathrm{diag}(s)^{-1}$; grid-search $\alpha \in [0, 1]$ on calibration data. All
weights stay in low precision; the salient channels are protected by the scaling.

**BitNet b1.58** (S. Ma et al., "The Era of 1-bit LLMs: All Large Language Models are in 1.58 Bits", 2024,
arXiv:2402.17764): $\gamma = \overline{|W|}$, $\tilde W = \mathrm{RoundClip}(W / (\gamma + \epsilon), -1, 1)$, $\hat W = \gamma\tilde W$.

**Quantisation-aware training** with the straight-through estimator (Y. Bengio, N. Léonard, A. Courville, 2013,
arXiv:1308.3432): the forward pass uses $\hat x$; the backward pass treats $\partial\,\mathrm{round}(u)/\partial u := 1$,
so the gradient passes unchanged inside the clipping range $[-n s, n s]$ and is zero outside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------- uniform quantisation


def quantize_absmax_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Symmetric int8: $s = \max|x| / 127$ (1 for an all-zero tensor), $q = \mathrm{round}(x / s)$ as int8; (q, s 0-d)."""
    amax = x.abs().max()
    s = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    q = torch.clamp(torch.round(x / s), -127, 127).to(torch.int8)
    return q, s


def dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor | int = 0) -> torch.Tensor:
    r"""$\hat x = s\,(q - z)$ in the dtype of ``scale`` (broadcasting: a per-row scale has shape (rows, 1))."""
    return scale * (q.to(scale.dtype) - torch.as_tensor(zero_point).to(scale.dtype))


def quantize_zero_point(x: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Asymmetric: codes $0..2^b-1$ (int32), $s = (\max - \min)/(2^b - 1)$, $z = \mathrm{round}(-\min / s)$ clamped.

    The range is widened to contain 0 (so that 0 is exact and padding / ReLU zeros cost nothing).
    """
    qmax = 2 ** bits - 1
    lo, hi = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
    s = (hi - lo) / qmax
    s = torch.where(s > 0, s, torch.ones_like(s))
    z = torch.clamp(torch.round(-lo / s), 0, qmax)
    q = torch.clamp(torch.round(x / s) + z, 0, qmax).to(torch.int32)
    return q, s, z.to(torch.int32)


def per_channel_quantize(w: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Symmetric absmax with one scale per row of w (out, in): $s_i = \max_j |w_{ij}| / n$; (q int8, s (out, 1))."""
    n = 2 ** (bits - 1) - 1
    amax = w.abs().amax(dim=1, keepdim=True)                           # (out, 1)
    s = torch.where(amax > 0, amax / n, torch.ones_like(amax))
    q = torch.clamp(torch.round(w / s), -n, n).to(torch.int8)
    return q, s


def per_tensor_quantize(w: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric absmax with one scale for the whole tensor; (q int8, s 0-d)."""
    n = 2 ** (bits - 1) - 1
    amax = w.abs().max()
    s = torch.where(amax > 0, amax / n, torch.ones_like(amax))
    return torch.clamp(torch.round(w / s), -n, n).to(torch.int8), s


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared difference, as a float."""
    return float((a.double() - b.double()).pow(2).mean())


# ---------------------------------------------------------------- ternary (BitNet b1.58) and STE


def ternary_quantize(w: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    r"""BitNet b1.58: $\gamma = \mathrm{mean}|w|$, $q = \mathrm{clamp}(\mathrm{round}(w / (\gamma + \epsilon)), -1, 1)$ int8; (q, γ)."""
    gamma = w.abs().mean()
    q = torch.clamp(torch.round(w / (gamma + eps)), -1, 1).to(torch.int8)
    return q, gamma


def ste_fake_quant(x: torch.Tensor, scale: float, bits: int = 4) -> torch.Tensor:
    r"""Forward: $s\,\mathrm{clamp}(\mathrm{round}(x/s), -n, n)$; backward: identity where $|x| \le n s$, zero outside."""
    n = 2 ** (bits - 1) - 1
    s = float(scale)
    xc = torch.clamp(x, -n * s, n * s)                                 # gradient 1 inside the range, 0 outside
    return xc + (torch.round(xc / s) * s - xc).detach()               # value = quantised, gradient = that of xc


class QuantLinear(nn.Linear):
    """A linear layer that trains with fake-quantised weights (straight-through estimator).

    ``mode="int"``: symmetric per-row absmax at ``bits`` bits; ``mode="ternary"``: BitNet b1.58 absmean to {-1, 0, 1}.
    The master weights stay in float; only the forward pass sees the quantised ones.
    """

    def __init__(self, d_in: int, d_out: int, bits: int = 4, mode: str = "int"):
        super().__init__(d_in, d_out)
        self.bits, self.mode = bits, mode

    def quantized_weight(self) -> torch.Tensor:
        w = self.weight
        if self.mode == "ternary":
            q, gamma = ternary_quantize(w.detach())
            w_hat = q.to(w.dtype) * gamma
        else:
            q, s = per_channel_quantize(w.detach(), self.bits)
            w_hat = q.to(w.dtype) * s
        return w + (w_hat - w).detach()                                   # STE: forward w_hat, gradient identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)


# ---------------------------------------------------------------- GPTQ and AWQ on one layer


def _row_grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Asymmetric min-max grid per row of w (out, in): scale (out, 1), zero (out, 1), qmax."""
    qmax = 2 ** bits - 1
    lo = torch.clamp(w.amin(dim=1, keepdim=True), max=0.0)
    hi = torch.clamp(w.amax(dim=1, keepdim=True), min=0.0)
    s = (hi - lo) / qmax
    s = torch.where(s > 0, s, torch.ones_like(s))
    return s, torch.round(-lo / s), qmax


def _snap(w: torch.Tensor, s: torch.Tensor, z: torch.Tensor, qmax: int) -> torch.Tensor:
    """Round w onto the grid s (q - z), q in 0..qmax (any shape broadcasting with s, z)."""
    return s * (torch.clamp(torch.round(w / s) + z, 0, qmax) - z)


def rtn_quantize(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Round-to-nearest on an asymmetric per-row grid: the baseline of GPTQ and AWQ. Returns the dequantised (out, in)."""
    s, z, qmax = _row_grid(w, bits)
    return _snap(w, s, z, qmax)


def gptq_quantize(w: torch.Tensor, X: torch.Tensor, bits: int, damp: float = 0.01) -> torch.Tensor:
    r"""GPTQ for w (out, in) with calibration inputs X (n, in); returns the dequantised weights (out, in).

    Same per-row grid as :func:`rtn_quantize`; columns in order, error fed forward through $U = \mathrm{chol}(H^{-1})^\top$.
    """
    W = w.detach().double().clone()
    d = W.shape[1]
    H = 2 * X.double().T @ X.double()                                  # (in, in)
    H += damp * H.diagonal().mean() * torch.eye(d, dtype=torch.float64)   # dampening: dead inputs make H singular
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)   # H^{-1} = U^T U
    s, z, qmax = _row_grid(W, bits)
    Q = torch.zeros_like(W)
    for i in range(d):
        q = _snap(W[:, i:i + 1], s, z, qmax)[:, 0]                    # (out,)
        Q[:, i] = q
        err = (W[:, i] - q) / U[i, i]
        W[:, i + 1:] -= err[:, None] * U[i, i + 1:][None, :]          # compensate on the columns still to come
    return Q.to(w.dtype)


def output_error(w: torch.Tensor, w_hat: torch.Tensor, X: torch.Tensor) -> float:
    r"""Relative output error $\|X W^\top - X \hat W^\top\|_F^2 / \|X W^\top\|_F^2$ on inputs X (n, in)."""
    y, y_hat = X.double() @ w.double().T, X.double() @ w_hat.double().T
    return float((y - y_hat).pow(2).sum() / y.pow(2).sum())


def awq_quantize(w: torch.Tensor, X: torch.Tensor, bits: int, grid: int = 21) -> tuple[torch.Tensor, float]:
    r"""AWQ-lite: $s = \overline{|x|}^{\alpha}$ per input channel, $\hat W = Q(W\mathrm{diag}(s))\mathrm{diag}(s)^{-1}$.

    Grid search of $\alpha \in [0, 1]$ (``grid`` points; $\alpha = 0$ is plain round-to-nearest) for the lowest output
    error on X. Returns (dequantised weights (out, in), best alpha).
    """
    act = X.abs().mean(dim=0).clamp_min(1e-8)                          # (in,) mean |activation| per channel
    best, best_err, best_alpha = None, float("inf"), 0.0
    for alpha in torch.linspace(0, 1, grid).tolist():
        s = act ** alpha
        s = s / (s.max() * s.min()).sqrt()                             # centre the scales around 1
        w_hat = rtn_quantize(w * s[None, :], bits) / s[None, :]
        err = output_error(w, w_hat, X)
        if err < best_err:
            best, best_err, best_alpha = w_hat, err, alpha
    return best, best_alpha

r"""Deformable and dynamic convolution: kernels that move their sampling points, and kernels that depend on the input.

**Deformable convolution** (J. Dai et al., "Deformable Convolutional Networks", ICCV 2017, arXiv:1703.06211) adds a
learned offset $\Delta p_n$ to every tap $p_n$ of the kernel's grid $\mathcal R$:

$$y(p_0) = \sum_{p_n \in \mathcal R} w(p_n)\, x(p_0 + p_n + \Delta p_n),$$

reading $x$ at fractional positions by linear (1-D) or bilinear (2-D) interpolation, with $x = 0$ outside the input
(zero padding). Because the interpolation weights depend on the fractional part of the position, the output is
differentiable in the offsets (almost everywhere), so offsets can be learned by gradient descent. DCNv2 also
multiplies each tap by a learned mask $m_n \in [0, 1]$ (X. Zhu et al., "Deformable ConvNets v2", CVPR 2019,
arXiv:1811.11168). With zero offsets the operation is an ordinary convolution (a cross-correlation, as in
``torch.nn.functional.conv1d``).

**Dynamic convolution** (Y. Chen et al., "Dynamic Convolution: Attention over Convolution Kernels", CVPR 2020,
arXiv:1912.03458; B. Yang et al., "CondConv", NeurIPS 2019, arXiv:1904.04971) mixes $K$ kernels with
input-dependent weights $\pi_k(x)$ from a small router: $W(x) = \sum_k \pi_k(x) W_k$, $y = W(x) * x$.

Shapes: ``B`` batch, ``C`` input channels, ``O`` output channels, ``L`` length, ``K`` kernel taps (1-D) or number of
kernels (dynamic), ``P`` sampled positions.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def linear_interp_1d(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    r"""Read x (B, C, L) at fractional positions (B, P), zero outside [0, L-1]: (B, C, P).

    $x(p) = (1 - t)\,x[i] + t\,x[i + 1]$ with $i = \lfloor p\rfloor$, $t = p - i$, and $x[j] = 0$ for $j < 0$ or
    $j > L - 1$. Inside $[0, L - 1]$ this is ``numpy.interp``; it is differentiable in ``positions`` through $t$.
    """
    B, C, L = x.shape
    i0 = torch.floor(positions)
    t = (positions - i0).to(x.dtype)                                      # (B, P) fractional part, carries the gradient
    i0 = i0.long()

    def read(idx: torch.Tensor) -> torch.Tensor:                          # (B, P) -> (B, C, P), 0 outside the signal
        inside = (idx >= 0) & (idx <= L - 1)
        vals = torch.gather(x, 2, idx.clamp(0, L - 1)[:, None, :].expand(B, C, -1))
        return vals * inside[:, None, :].to(x.dtype)

    return (1 - t)[:, None, :] * read(i0) + t[:, None, :] * read(i0 + 1)


def deform_conv1d(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor,
                  bias: torch.Tensor | None = None, padding: int = 0) -> torch.Tensor:
    r"""1-D deformable convolution (stride 1): x (B, C, L), weight (O, C, K), offsets (B, L_out, K) -> (B, O, L_out).

    $L_{out} = L + 2\,\text{padding} - K + 1$; output $i$, tap $k$ reads $x$ at $i - \text{padding} + k + \Delta_{b,i,k}$
    (the same offsets for every input channel). Zero offsets give ``F.conv1d(x, weight, bias, padding=padding)``.
    """
    B, C, L = x.shape
    O, _, K = weight.shape
    L_out = L + 2 * padding - K + 1
    base = torch.arange(L_out)[:, None] - padding + torch.arange(K)[None, :]   # (L_out, K) integer grid
    pos = base.to(offsets.dtype)[None] + offsets                          # (B, L_out, K)
    cols = linear_interp_1d(x, pos.reshape(B, L_out * K)).reshape(B, C, L_out, K)
    y = torch.einsum("bcik,ock->boi", cols, weight)                      # (B, O, L_out)
    return y if bias is None else y + bias[None, :, None]


def deform_conv2d(x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor,
                  bias: torch.Tensor | None = None, padding: int = 0) -> torch.Tensor:
    r"""2-D deformable convolution (stride 1) by bilinear sampling with ``F.grid_sample``.

    x (B, C, H, W), weight (O, C, kh, kw), offsets (B, 2 kh kw, H_out, W_out) in pixels, ordered as in
    ``torchvision.ops.deform_conv2d``: channel $2k$ is the row shift $\Delta y$ and $2k + 1$ the column shift
    $\Delta x$ of tap $k$ (taps in row-major order). Returns (B, O, H_out, W_out) with
    $H_{out} = H + 2\,\text{padding} - k_h + 1$. Zero offsets give ``F.conv2d``.
    """
    B, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    H_out, W_out = H + 2 * padding - kh + 1, W + 2 * padding - kw + 1
    K = kh * kw
    dt = x.dtype
    ky, kx = torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing="ij")             # (kh, kw) each
    oy, ox = torch.meshgrid(torch.arange(H_out), torch.arange(W_out), indexing="ij")       # (H_out, W_out)
    base_y = (oy[..., None] - padding + ky.reshape(-1)).to(dt)           # (H_out, W_out, K) rows sampled
    base_x = (ox[..., None] - padding + kx.reshape(-1)).to(dt)
    off = offsets.reshape(B, K, 2, H_out, W_out).permute(0, 3, 4, 1, 2)  # (B, H_out, W_out, K, 2): (dy, dx)
    py = base_y[None] + off[..., 0]                                      # (B, H_out, W_out, K) pixel rows
    px = base_x[None] + off[..., 1]
    # grid_sample wants (x, y) in [-1, 1]; with align_corners=False pixel j sits at (2 j + 1) / W - 1.
    grid = torch.stack([(2 * px + 1) / W - 1, (2 * py + 1) / H - 1], dim=-1)               # (B, H_out, W_out, K, 2)
    cols = F.grid_sample(x, grid.reshape(B, H_out, W_out * K, 2), mode="bilinear",
                         padding_mode="zeros", align_corners=False)       # (B, C, H_out, W_out * K)
    cols = cols.reshape(B, C, H_out, W_out, K)
    y = torch.einsum("bchwk,ock->bohw", cols, weight.reshape(O, C, K))   # (B, O, H_out, W_out)
    return y if bias is None else y + bias[None, :, None, None]


class DeformConv2d(nn.Module):
    """A 2-D deformable convolution whose offsets come from an ordinary convolution of the input (zero-initialised,
    so training starts from the rigid grid), as in Dai et al. 2017."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=padding)
        self.offset_conv = nn.Conv2d(c_in, 2 * kernel_size * kernel_size, kernel_size, padding=padding)
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, H, W) -> (B, O, H_out, W_out)
        return deform_conv2d(x, self.conv.weight, self.offset_conv(x), self.conv.bias, self.padding)


# ---------------------------------------------------------------- dynamic convolution


def dynamic_conv1d(x: torch.Tensor, kernels: torch.Tensor, weights: torch.Tensor, padding: int = 0) -> torch.Tensor:
    r"""x (B, C, L), kernels (K, O, C, k), mixing weights (B, K) -> (B, O, L_out): sample $b$ is convolved with
    its own kernel $W_b = \sum_k \pi_{bk} W_k$. A one-hot row of ``weights`` selects one ordinary convolution."""
    B, C, L = x.shape
    _, O, _, k = kernels.shape
    W_b = torch.einsum("bk,kocj->bocj", weights.to(kernels.dtype), kernels)   # (B, O, C, k) per-sample kernels
    # one grouped convolution does the B different convolutions at once: group b sees sample b's channels
    y = F.conv1d(x.reshape(1, B * C, L), W_b.reshape(B * O, C, k), padding=padding, groups=B)   # (1, B*O, L_out)
    return y.reshape(B, O, -1)


class DynamicConv1d(nn.Module):
    r"""Dynamic 1-D convolution: a router $\pi(x) = \mathrm{softmax}(\mathrm{Linear}(\mathrm{mean}_L\, x) / \tau)$
    mixes ``n_kernels`` kernels per sample (Chen et al. 2020, arXiv:1912.03458)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_kernels: int = 4, temperature: float = 1.0,
                 padding: int = 0):
        super().__init__()
        self.kernels = nn.Parameter(torch.randn(n_kernels, c_out, c_in, kernel_size) / (c_in * kernel_size) ** 0.5)
        self.router = nn.Linear(c_in, n_kernels)
        self.temperature, self.padding = temperature, padding

    def route(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, L) -> (B, n_kernels), rows sum to 1
        return torch.softmax(self.router(x.mean(dim=2)) / self.temperature, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # (B, C, L) -> (B, O, L_out)
        return dynamic_conv1d(x, self.kernels, self.route(x), self.padding)

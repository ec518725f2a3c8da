r"""Position information for attention: sinusoidal, learned, rotary (RoPE) and linear biases (ALiBi).

Attention by itself is *permutation-equivariant*: shuffling the tokens shuffles the outputs. A language model must
know the order, and there are four classic ways to tell it. Shapes: ``T`` positions, ``D`` model width,
``d`` head width (even), ``H`` heads.

- **Sinusoidal** (A. Vaswani et al., "Attention Is All You Need", NeurIPS 2017, arXiv:1706.03762) adds a fixed
  vector to every token embedding, $PE_{p,2i} = \sin(p\,\omega_i)$, $PE_{p,2i+1} = \cos(p\,\omega_i)$ with
  $\omega_i = 10000^{-2i/D}$.
- **Learned** (GPT-2 style) adds a trained row ``P[p]`` of a ``(block_size, D)`` table: it knows nothing beyond
  ``block_size``.
- **RoPE** (J. Su, Y. Lu, S. Pan, A. Murtadha, B. Wen, Y. Liu, "RoFormer: Enhanced Transformer with Rotary Position
  Embedding", 2021, arXiv:2104.09864) rotates each consecutive pair $(x_{2i}, x_{2i+1})$ of a query or key at
  position $p$ by the angle $p\,\theta_i$, $\theta_i = b^{-2i/d}$ (base $b = 10000$). Read the pair as a complex
  number $z_i = x_{2i} + \mathrm i\,x_{2i+1}$: RoPE is $z_i \mapsto z_i e^{\mathrm i p\theta_i}$, so the score of a
  query at $m$ and a key at $n$ is
  $\sum_i \mathrm{Re}\big[q_i \bar k_i e^{\mathrm i (m-n)\theta_i}\big]$: it depends on the positions only through
  $m - n$. (The *real part* matters: $q k e^{\mathrm i(m-n)\theta}$ is a complex number, not a score.)
  **Position interpolation** (S. Chen, S. Wong, L. Chen, Y. Tian, "Extending Context Window of Large Language Models
  via Positional Interpolation", 2023, arXiv:2306.15595) divides the positions by a ``scale`` > 1 so that a longer
  context maps into the angle range seen in training.
- **ALiBi** (O. Press, N. A. Smith, M. Lewis, "Train Short, Test Long: Attention with Linear Biases Enables Input
  Length Extrapolation", ICLR 2022, arXiv:2108.12409) adds no vector at all: head $h$ adds $-m_h\,(i - j)$ to the
  score of query $i$ and key $j \le i$, with slopes $m_h = 2^{-8h/H}$, $h = 1..H$.
"""

from __future__ import annotations

import math

import torch


def sinusoidal_embedding(T: int, D: int, base: float = 10000.0, start: int = 0) -> torch.Tensor:
    r"""(T, D) table with $PE_{p,2i} = \sin(p\,\omega_i)$, $PE_{p,2i+1} = \cos(p\,\omega_i)$, $\omega_i = b^{-2i/D}$.

    Rows are positions ``start .. start + T - 1``; D must be even.
    """
    if D % 2:
        raise ValueError(f"sinusoidal embedding needs an even width, got D = {D}")
    pos = torch.arange(start, start + T, dtype=torch.float32)[:, None]            # (T, 1)
    omega = base ** (-torch.arange(0, D, 2, dtype=torch.float32) / D)              # (D/2,)
    pe = torch.zeros(T, D)
    pe[:, 0::2] = torch.sin(pos * omega)                                           # even columns: sin
    pe[:, 1::2] = torch.cos(pos * omega)                                           # odd columns: cos
    return pe


def rope_frequencies(d: int, base: float = 10000.0) -> torch.Tensor:
    r"""(d/2,) rotation frequencies $\theta_i = b^{-2i/d}$, $i = 0..d/2-1$ (fast for i = 0, slow for the last)."""
    if d % 2:
        raise ValueError(f"RoPE needs an even head width, got d = {d}")
    return base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)


def rope_rotate(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0, scale: float = 1.0) -> torch.Tensor:
    r"""Rotate consecutive pairs of x (..., T, d) by the angles $(p/s)\,\theta_i$; positions (T,) (ints or floats).

    $y_{2i} = x_{2i}\cos\phi - x_{2i+1}\sin\phi$, $y_{2i+1} = x_{2i}\sin\phi + x_{2i+1}\cos\phi$ with
    $\phi = (p / \text{scale})\,\theta_i$. Norm-preserving; returns a new tensor of x's dtype.
    """
    d = x.shape[-1]
    theta = rope_frequencies(d, base)                                              # (d/2,)
    angles = (positions.to(torch.float64)[:, None] / scale) * theta                # (T, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)                  # (T, d/2)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]                                     # (..., T, d/2) each
    y = torch.empty_like(x)
    y[..., 0::2] = x_even * cos - x_odd * sin
    y[..., 1::2] = x_even * sin + x_odd * cos
    return y


def rope_score_complex(q: torch.Tensor, k: torch.Tensor, m: int, n: int, base: float = 10000.0) -> torch.Tensor:
    r"""The RoPE score of q at position m and k at n, written with complex numbers (d,) -> scalar.

    $\sum_i \mathrm{Re}\big[q_i\,\overline{k_i}\,e^{\mathrm i (m-n)\theta_i}\big]$ with $q_i = q_{2i} + \mathrm i q_{2i+1}$.
    """
    theta = rope_frequencies(q.shape[-1], base)
    qc = torch.complex(q[0::2].double(), q[1::2].double())                          # (d/2,)
    kc = torch.complex(k[0::2].double(), k[1::2].double())
    return (qc * kc.conj() * torch.exp(1j * (m - n) * theta)).real.sum()


def alibi_slopes(n_heads: int) -> torch.Tensor:
    r"""(H,) ALiBi slopes: $m_h = 2^{-8h/H}$ for $h = 1..H$ when H is a power of two.

    Otherwise the paper's recipe: the slopes of the closest power of two $H_0 < H$, then every other slope of
    $2H_0$ heads for the remaining $H - H_0$ heads.
    """
    def power_of_two(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    if n_heads & (n_heads - 1) == 0:
        return torch.tensor(power_of_two(n_heads))
    h0 = 2 ** int(math.floor(math.log2(n_heads)))
    extra = power_of_two(2 * h0)[0::2][: n_heads - h0]
    return torch.tensor(power_of_two(h0) + extra)


def alibi_bias_positions(slopes: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
    r"""(H, Tq, Tk) bias $-m_h\,(i - j)$ for query positions i (Tq,) and key positions j (Tk,).

    Entries with $j > i$ come out positive: the causal mask removes them anyway.
    """
    dist = (q_pos[:, None] - k_pos[None, :]).to(slopes.dtype)                      # (Tq, Tk)  i - j
    return -slopes[:, None, None] * dist                                           # (H, Tq, Tk)


def alibi_bias(n_heads: int, T: int) -> torch.Tensor:
    r"""(H, T, T) ALiBi bias $-m_h\,(i - j)$ for a sequence of length T (add it to the scores before the softmax)."""
    pos = torch.arange(T)
    return alibi_bias_positions(alibi_slopes(n_heads), pos, pos)

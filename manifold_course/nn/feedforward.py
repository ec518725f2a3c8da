r"""The transformer's feed-forward block: a GELU MLP and SwiGLU, compared at equal parameter count.

Shapes: ``D`` model width, ``F`` hidden width. Weights use ``nn.Linear``'s layout (out, in) and no biases.

- **GELU MLP** (D. Hendrycks, K. Gimpel, "Gaussian Error Linear Units (GELUs)", 2016, arXiv:1606.08415):
  $y = W_2\,\mathrm{GELU}(W_1 x)$ with $F = 4D$: two matrices, $2 D F = 8D^2$ parameters.
- **SwiGLU** (N. Shazeer, "GLU Variants Improve Transformer", 2020, arXiv:2002.05202):
  $y = W_{down}\big(\mathrm{SiLU}(W_{gate} x) \odot W_{up} x\big)$, $\mathrm{SiLU}(z) = z\,\sigma(z)$: *three*
  matrices, $3 D F$ parameters. For a fair comparison with the $F = 4D$ GELU MLP the hidden width shrinks to
  $F = \tfrac23 \cdot 4D = 8D/3$ (LLaMA rounds it up to a multiple of 256), so both have $\approx 8D^2$ parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def swiglu_hidden(d_model: int, multiple_of: int = 1) -> int:
    r"""Hidden width of a SwiGLU block with the parameters of a 4D GELU MLP: $8D/3$ rounded, then up to ``multiple_of``."""
    hidden = int(round(8 * d_model / 3))
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> torch.Tensor:
    """SwiGLU for x (..., D) with w_gate, w_up (F, D) and w_down (D, F): ``(silu(x Wg^T) * (x Wu^T)) Wd^T``."""
    return (F.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T                  # (..., F) -> (..., D)


class GeluMLP(nn.Module):
    """``W2 gelu(W1 x)``; hidden defaults to 4 D. Uses the exact (erf) GELU, like ``F.gelu``'s default."""

    def __init__(self, d_model: int, hidden: int | None = None):
        super().__init__()
        hidden = 4 * d_model if hidden is None else hidden
        self.w1 = nn.Linear(d_model, hidden, bias=False)
        self.w2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:             # (..., D) -> (..., D)
        return self.w2(F.gelu(self.w1(x)))


class SwiGLU(nn.Module):
    """``W_down(silu(W_gate x) * W_up x)``; hidden defaults to :func:`swiglu_hidden` (about 8 D / 3)."""

    def __init__(self, d_model: int, hidden: int | None = None):
        super().__init__()
        hidden = swiglu_hidden(d_model) if hidden is None else hidden
        self.w_gate = nn.Linear(d_model, hidden, bias=False)
        self.w_up = nn.Linear(d_model, hidden, bias=False)
        self.w_down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:             # (..., D) -> (..., D)
        return swiglu(x, self.w_gate.weight, self.w_up.weight, self.w_down.weight)


def feedforward(kind: str, d_model: int) -> nn.Module:
    """The feed-forward block of a GPT: ``"gelu"`` (4 D hidden) or ``"swiglu"`` (8 D / 3 hidden)."""
    if kind == "gelu":
        return GeluMLP(d_model)
    if kind == "swiglu":
        return SwiGLU(d_model)
    raise ValueError(f"unknown feed-forward kind {kind!r}; use 'gelu' or 'swiglu'")

r"""LoRA: low-rank adaptation of a frozen linear layer (Hu et al., "LoRA: Low-Rank Adaptation of Large Language
Models", 2021, arXiv:2106.09685).

A pre-trained weight $W_0 \in \mathbb R^{d_{out}\times d_{in}}$ stays frozen; the fine-tuning update is restricted to
rank $r$:

$$h = W_0 x + b + \frac{\alpha}{r}\,B A x,\qquad A \in \mathbb R^{r\times d_{in}},\ B \in \mathbb R^{d_{out}\times r}.$$

$A$ starts random (Gaussian, std $1/\sqrt{d_{in}}$ here) and $B$ at **zero**, so the adapted layer starts exactly at
the base layer and the first gradient step moves $B$ (the gradient of $A$ is zero while $B = 0$). The factor
$\alpha / r$ keeps the size of the update roughly independent of $r$ when one changes the rank. Trainable
parameters: $r(d_{in} + d_{out})$ instead of $d_{in} d_{out}$. For inference the update is **merged**:
$W = W_0 + \frac{\alpha}{r} BA$, and the layer costs exactly what the base cost; ``unmerge`` subtracts it again (exact
up to floating-point rounding, $\approx 10^{-7}|\Delta W|$ in float32).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from manifold_course.seeding import torch_generator


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable rank-``r`` update; parameters ``base.*``, ``lora_A``, ``lora_B``."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, generator: torch.Generator | None = None):
        super().__init__()
        if r < 1:
            raise ValueError(f"the rank r must be >= 1, got {r}")
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)                                          # W0 and b are frozen
        d_out, d_in = base.weight.shape
        w = base.weight
        self.lora_A = nn.Parameter(torch.randn(r, d_in, generator=generator, dtype=w.dtype) / math.sqrt(d_in))  # (r, d_in)
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=w.dtype))                                  # (d_out, r)
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        r"""$\Delta W = \frac{\alpha}{r} B A$, shape (d_out, d_in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    @property
    def weight(self) -> torch.Tensor:
        r"""The effective weight $W_0 + \frac{\alpha}{r}BA$ (differentiable in A and B), for code that reads
        ``layer.weight`` instead of calling the layer (the course's SwiGLU does)."""
        return self.base.weight if self.merged else self.base.weight + self.delta_weight()

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:                    # x (..., d_in) -> (..., d_out)
        y = self.base(x)
        if self.merged:
            return y                                                         # the update is inside base.weight
        return y + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T        # never forms the d_out x d_in matrix

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the update into the base weight: zero-overhead inference."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the update out of the base weight again (to continue training)."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False


def lora_param_count(d_in: int, d_out: int, r: int) -> int:
    r"""Trainable parameters of one LoRA adapter: $r(d_{in} + d_{out})$."""
    return r * (d_in + d_out)


def apply_lora(model: nn.Module, r: int, alpha: float, target: Callable[[str, nn.Linear], bool] | None = None,
               seed: int = 0) -> nn.Module:
    """Freeze every parameter of ``model`` and wrap the chosen ``nn.Linear`` layers in :class:`LoRALinear`, in place.

    ``target(name, layer)`` selects layers (default: every ``nn.Linear``). Returns the model, whose only trainable
    parameters are then the adapters' ``lora_A`` and ``lora_B``.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch_generator(seed)
    chosen = [(name, mod) for name, mod in model.named_modules()
              if isinstance(mod, nn.Linear) and not isinstance(mod, LoRALinear) and (target is None or target(name, mod))]
    for name, mod in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(mod, r, alpha, generator=gen))
    return model


def lora_layers(model: nn.Module) -> list[LoRALinear]:
    return [m for m in model.modules() if isinstance(m, LoRALinear)]


def merge_lora(model: nn.Module) -> None:
    for m in lora_layers(model):
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for m in lora_layers(model):
        m.unmerge()


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once), optionally only those with requires_grad."""
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n

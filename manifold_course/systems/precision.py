r"""Mixed precision: fp16 / bf16 formats, Tensor Core fragments, accumulation error, dynamic loss scaling, autocast.

- Formats (IEEE 754 half; Google's bfloat16): fp16 has 5 exponent and 10 mantissa bits (max 65 504, $\epsilon=2^{-10}$,
  smallest normal $2^{-14}$, smallest subnormal $2^{-24}$); bf16 has fp32's 8 exponent bits and 7 mantissa bits
  (max $\approx 3.4\cdot10^{38}$, $\epsilon = 2^{-7}$).
- A Tensor Core computes a fragment $D = A B + C$ per instruction, $A, B$ in fp16/bf16 and $C, D$ in fp32
  (Volta, 2017: $4\times4\times4$; NVIDIA Volta whitepaper).
- Mixed-precision training (Micikevicius et al. 2018, "Mixed Precision Training", arXiv:1710.03740): fp32 master
  weights, fp16 compute with fp32 accumulation, and loss scaling $g = \frac1S \nabla(S\cdot L)$ so that small
  gradients do not underflow to 0 in fp16. The dynamic scaler follows ``torch.amp.GradScaler``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from manifold_course.seeding import manual_seed, torch_generator

_NP_ACC = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def format_table() -> dict[str, dict[str, float]]:
    """``torch.finfo`` of fp16, bf16 and fp32: max, eps, smallest normal, mantissa bits."""
    out = {}
    for name, dt in (("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", torch.float32)):
        fi = torch.finfo(dt)
        out[name] = {"max": fi.max, "eps": fi.eps, "smallest_normal": fi.smallest_normal,
                     "mantissa_bits": -int(round(math.log2(fi.eps)))}
    return out


def mixed_precision_dot(a: torch.Tensor, b: torch.Tensor, in_dtype: torch.dtype, acc_dtype: torch.dtype) -> float:
    r"""$\sum_i a_i b_i$ as a Tensor Core style unit computes it: inputs rounded to ``in_dtype``; each product
    rounded to ``acc_dtype``; the running sum accumulated *left to right* in ``acc_dtype`` (rounded after every add).

    ``acc_dtype`` is float16, float32 or float64, at least as precise as ``in_dtype`` (then the products of
    fp16/bf16 inputs are exact in fp32). Returns a Python float.
    """
    if acc_dtype not in _NP_ACC:
        raise ValueError("acc_dtype must be torch.float16, torch.float32 or torch.float64")
    a_q = a.to(in_dtype).double().numpy()                          # exact values of the rounded inputs, (n,)
    b_q = b.to(in_dtype).double().numpy()
    acc = _NP_ACC[acc_dtype]
    products = (a_q * b_q).astype(acc)                             # exact product, rounded once to acc_dtype
    if products.size == 0:
        return 0.0
    return float(np.add.accumulate(products, dtype=acc)[-1])      # sequential sum, rounded after every add


def mma_fragment(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, in_dtype: torch.dtype = torch.float16) -> torch.Tensor:
    """One Tensor Core operation $D = AB + C$ on a fragment: A (m, k), B (k, n) rounded to ``in_dtype``; products and
    sums in fp32. Volta's fragment is 4 x 4 x 4; warp-level ``mma.sync`` shapes include 16 x 8 x 16 (Ampere)."""
    return A.to(in_dtype).float() @ B.to(in_dtype).float() + C.float()


def tensor_core_matmul(A: torch.Tensor, B: torch.Tensor, frag: tuple[int, int, int] = (16, 8, 16),
                       in_dtype: torch.dtype = torch.float16) -> tuple[torch.Tensor, int]:
    """$AB$ assembled from :func:`mma_fragment` calls, as a warp does it; returns (fp32 result, number of MMAs).
    Sizes need not be multiples of the fragment: edge fragments are zero-padded, as kernels do."""
    M, K = A.shape
    _, N = B.shape
    fm, fn, fk = frag
    Mp, Np, Kp = (math.ceil(M / fm) * fm, math.ceil(N / fn) * fn, math.ceil(K / fk) * fk)
    Ap = F.pad(A.float(), (0, Kp - K, 0, Mp - M))                  # (Mp, Kp), zero padding
    Bp = F.pad(B.float(), (0, Np - N, 0, Kp - K))                  # (Kp, Np)
    D = torch.zeros(Mp, Np)
    n_mma = 0
    for i in range(0, Mp, fm):
        for j in range(0, Np, fn):
            acc = torch.zeros(fm, fn)                              # the accumulator fragment stays in registers
            for k in range(0, Kp, fk):
                acc = mma_fragment(Ap[i:i + fm, k:k + fk], Bp[k:k + fk, j:j + fn], acc, in_dtype)
                n_mma += 1
            D[i:i + fm, j:j + fn] = acc
    return D[:M, :N], n_mma


class DynamicLossScaler:
    """Dynamic loss scaling as in ``torch.amp.GradScaler``: multiply the loss by ``scale`` before backward; after
    backward call :meth:`update` with whether any gradient is inf/NaN.

    - overflow: skip the optimiser step, ``scale *= backoff_factor`` (0.5), reset the count of clean steps;
    - clean step: apply it; after ``growth_interval`` clean steps in a row, ``scale *= growth_factor`` (2) and reset.
    """

    def __init__(self, init_scale: float = 2.0**16, growth_interval: int = 2000,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5):
        self.scale = float(init_scale)
        self.growth_interval = int(growth_interval)
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.clean_steps = 0                                       # GradScaler's "growth tracker"

    def update(self, found_inf: bool) -> bool:
        """Advance the state machine; returns True when the optimiser step should be applied."""
        if found_inf:
            self.scale *= self.backoff_factor
            self.clean_steps = 0
            return False
        self.clean_steps += 1
        if self.clean_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.clean_steps = 0
        return True

    @staticmethod
    def found_inf(grads: list[torch.Tensor]) -> bool:
        return any(not bool(torch.isfinite(g).all()) for g in grads)


def fp16_flush_fraction(grads: torch.Tensor, scale: float = 1.0) -> dict[str, float]:
    """What casting ``scale * grads`` (fp32) to fp16 does: fraction of nonzero entries flushed to 0, fraction in the
    subnormal range (precision lost), fraction overflowing to inf, and the median relative error after unscaling."""
    g = grads.detach().float().reshape(-1)
    g = g[g != 0]
    h = (g * scale).half()
    back = h.float() / scale
    finite = torch.isfinite(h)
    rel = ((back - g).abs() / g.abs())[finite & (h != 0)]
    return {"zero": float((h == 0).float().mean()),
            "subnormal": float(((h != 0) & (h.abs() < torch.finfo(torch.float16).tiny)).float().mean()),
            "inf": float((~finite).float().mean()),
            "median_rel_error": float(rel.median()) if rel.numel() else float("nan")}


def train_mlp(X: torch.Tensor, y: torch.Tensor, steps: int = 300, autocast_dtype: torch.dtype | None = None,
              lr: float = 3e-3, batch: int = 64, seed: int = 0) -> tuple[nn.Module, list[float]]:
    """Adam on a 64-128-10 MLP; with ``autocast_dtype`` the forward runs under ``torch.autocast("cpu", dtype)``
    (matmuls in bf16, weights and optimiser state in fp32). Returns (model, losses)."""
    gen = torch_generator(seed)
    manual_seed(seed)
    model = nn.Sequential(nn.Linear(X.shape[1], 128), nn.ReLU(), nn.Linear(128, int(y.max()) + 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(X), (batch,), generator=gen)
        with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
            logits = model(X[idx])
        loss = F.cross_entropy(logits.float(), y[idx])             # the loss in fp32
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, losses

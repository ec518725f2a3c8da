r"""Long context: RoPE beyond the training length, position interpolation, NTK-aware base scaling, sliding windows.

RoPE (Su et al. 2021, arXiv:2104.09864; ``nn.positions``) rotates the pair $i$ of a query or key at position $p$ by the
angle $p\,\theta_i$, $\theta_i = b^{-2i/d}$. A model trained on contexts of length $T$ has seen angles up to
$(T-1)\theta_i$ only; past $T$ the slow pairs reach angles it never saw, and the loss rises.

- **Position interpolation (PI)** (Chen et al. 2023, arXiv:2306.15595): $p \mapsto p/s$. Every frequency is divided
  by $s$, so a context $sT$ spans exactly the trained angle range, but neighbouring tokens now differ by $\theta_i/s$:
  the fast pairs lose resolution. (``GPTConfig.rope_scale`` does this.)
- **NTK-aware scaling** (a 2023 community method, "bloc97" on Reddit r/LocalLLaMA; later analysed in YaRN, Peng et al.
  2023, arXiv:2309.00071): change the base instead, $b' = b\,s^{d/(d-2)}$. The fastest pair ($i = 0$, $\theta_0 = 1$)
  keeps its frequency, the slowest ($i = d/2 - 1$) is divided by exactly $s$, and those between are interpolated
  geometrically: high frequencies (local detail) are kept, low ones (long range) are squeezed.
- **Sliding-window attention** (Longformer, Beltagy et al. 2020, arXiv:2004.05150; Mistral 7B, arXiv:2310.06825): query
  $i$ sees keys $0 \le i - j < w$. Cost $O(Tw)$ instead of $O(T^2)$ scored pairs; information still travels $w - 1$
  positions per layer, so $L$ layers reach back $L(w-1)$ tokens.
"""

from __future__ import annotations

import dataclasses

import torch

from manifold_course.nn.attention import attention_mask
from manifold_course.nn.positions import rope_frequencies
from manifold_course.seeding import torch_generator


def ntk_rope_base(base: float, scale: float, head_dim: int) -> float:
    r"""NTK-aware RoPE base $b' = b\,s^{d/(d-2)}$: the slowest frequency is divided by $s$, the fastest is kept."""
    return float(base) * float(scale) ** (head_dim / (head_dim - 2))


def rope_inv_freq(head_dim: int, base: float = 10000.0, scale: float = 1.0, method: str = "none") -> torch.Tensor:
    r"""(d/2,) float64 RoPE frequencies $\theta_i$ after context extension by ``scale`` with ``method``.

    "none": $b^{-2i/d}$; "pi": all divided by $s$; "ntk": computed with the base $b\,s^{d/(d-2)}$.
    """
    if method == "none":
        return rope_frequencies(head_dim, base)
    if method == "pi":
        return rope_frequencies(head_dim, base) / scale
    if method == "ntk":
        return rope_frequencies(head_dim, ntk_rope_base(base, scale, head_dim))
    raise ValueError(f"method must be 'none', 'pi' or 'ntk', got {method!r}")


def sliding_window_mask(T: int, w: int) -> torch.Tensor:
    r"""(T, T) bool, True where query i may see key j: $0 \le i - j < w$ (causal band of width w)."""
    return attention_mask(T, T, window=w)


def attention_pairs(T: int, window: int | None = None) -> int:
    """Number of (query, key) scores a causal layer computes: T(T+1)/2, or sum_i min(i + 1, w) with a window."""
    if window is None:
        return T * (T + 1) // 2
    w = min(window, T)
    return w * (w + 1) // 2 + (T - w) * w


def receptive_field(n_layers: int, window: int) -> int:
    """How far back (in tokens, counting the token itself) L stacked windows of width w can carry information."""
    return n_layers * (window - 1) + 1


def with_positions(model: torch.nn.Module, **changes) -> torch.nn.Module:
    """A copy of a ``GPT`` with some config fields changed (``rope_scale``, ``rope_base``, ``block_size``, ``window``).

    The trained weights are copied; buffers that depend on the changed fields (RoPE tables) are rebuilt by the new
    model, so they are left out of the copy.
    """
    cfg = dataclasses.replace(model.cfg, **changes)
    new = type(model)(cfg)
    own = new.state_dict()
    weights = {k: v for k, v in model.state_dict().items() if k in own and own[k].shape == v.shape
               and k in dict(new.named_parameters())}
    missing = [k for k, _ in new.named_parameters() if k not in weights]
    if missing:
        raise ValueError(f"cannot copy the parameters {missing[:3]} into a model with {changes}")
    new.load_state_dict(weights, strict=False)
    return new.eval()


def loss_by_length(model: torch.nn.Module, ids: torch.Tensor, lengths, n_batches: int = 8, batch_size: int = 16,
                   seed: int = 0) -> list[float]:
    """Mean next-token loss (nats) of ``model`` on windows of each length (``gpt.evaluate_loss`` with block_size)."""
    from manifold_course.nn.gpt import evaluate_loss

    return [evaluate_loss(model, ids, n_batches=n_batches, batch_size=batch_size, seed=seed, block_size=int(T))
            for T in lengths]


@torch.no_grad()
def loss_by_position(model: torch.nn.Module, ids: torch.Tensor, T: int, n_batches: int = 4, batch_size: int = 16,
                     seed: int = 0) -> torch.Tensor:
    """(T,) mean next-token loss at each position of windows of length T: where in the context does it break?"""
    from manifold_course.data import lm_batch

    gen = torch_generator(seed)
    total = torch.zeros(T, dtype=torch.float64)
    for _ in range(n_batches):
        x, y = lm_batch(ids, T, batch_size, gen)                                    # (B, T), (B, T)
        logits = model(x)                                                           # (B, T, V)
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y, reduction="none")   # (B, T)
        total += nll.double().mean(0)
    return total / n_batches

"""Checks for chapter v2_llm/01_transformer_anatomy (Volume 2, sections 2.1-2.4).

Cases are drawn at grading time from the seeded generator. Where PyTorch has the same operation the check also
compares with it (``F.scaled_dot_product_attention``); RoPE is also judged by the property that makes it useful
(a score depends on the positions only through their difference); the Pre-Norm block is graded by loading the
reference block's weights into the learner's module.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.grading.probes import module_judge, module_outputs, random_state
from manifold_course.nn import attention, feedforward, gpt, positions

CHAPTER = "v2_llm/01_transformer_anatomy"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F32, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


# ---------------------------------------------------------------- 2.1 attention


def _attn_cases(rng):
    for shape, scale, label in (((2, 3, 7, 8), 1.0, "q, k, v (2, 3, 7, 8)"),
                                ((1, 1, 1, 4), 1.0, "T = 1: the only key is the token itself"),
                                ((1, 2, 13, 5), 1.0, "T = 13, d = 5: not powers of two"),
                                ((4, 6, 3), 1.0, "3-D input (B, T, d): work on the last two axes"),
                                ((2, 2, 9, 16), 8.0, "large scores (entries ~ 8): the softmax must stay finite")):
        yield Case(tuple(_t(rng, *shape, scale=scale) for _ in range(3)), label=label)
    yield Case(tuple(_t(rng, 2, 4, 11, 6, dtype=F64) for _ in range(3)), label="float64", rtol=1e-10, atol=1e-12)


def _attn_matches_torch(fn) -> str | None:
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 10, 6, generator=gen) for _ in range(3))
    got = fn(q, k, v)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return compare(got, want, 1e-4, 1e-5, "your output vs F.scaled_dot_product_attention(q, k, v, is_causal=True)")


def _repeat_cases(rng):
    for shape, n_rep, label in (((2, 2, 5, 3), 3, "G = 2 kv heads -> 6 query heads"),
                                ((1, 1, 4, 8), 4, "MQA: one kv head shared by 4 query heads"),
                                ((3, 4, 7, 2), 1, "n_rep = 1 (MHA): unchanged"),
                                ((2, 3, 1, 5), 2, "T = 1, G = 3")):
        yield Case((_t(rng, *shape), n_rep), label=label)


def _bytes_cases(rng):
    yield Case((32, 32, 128, 4096, 1, 2), label="LLaMA-2-7B (MHA, 32 layers x 32 heads x 128) at 4096 tokens, fp16")
    yield Case((80, 8, 128, 4096, 1, 2), label="LLaMA-2-70B (GQA, 8 kv heads, 80 layers), 4096 tokens, fp16")
    yield Case((32, 1, 128, 2048, 8, 2), label="MQA, batch 8")
    yield Case((2, 4, 16, 64, 3, 4), label="the chapter's small GPT in float32, batch 3")
    yield Case((int(rng.integers(1, 50)), int(rng.integers(1, 9)), int(rng.integers(1, 200)),
                int(rng.integers(1, 10_000)), int(rng.integers(1, 5)), 1), label="random shapes, 1 byte per element")


def _append_cases(rng):
    for B, G, T_old, T_new, d, label in ((2, 2, 5, 1, 4, "one new token (decoding)"),
                                         (1, 1, 0, 6, 8, "empty cache (T_old = 0): the prompt"),
                                         (3, 2, 4, 3, 5, "three new tokens, batch 3"),
                                         (1, 4, 7, 2, 3, "batch 1, 4 kv heads")):
        yield Case((_t(rng, B, G, T_old, d), _t(rng, B, G, T_old, d), _t(rng, B, G, T_new, d),
                    _t(rng, B, G, T_new, d)), label=label)


# ---------------------------------------------------------------- 2.2 positions


def _rope_cases(rng):
    yield Case((_t(rng, 2, 3, 6, 8), torch.arange(6), 10000.0), label="x (2, 3, 6, 8), positions 0..5")
    yield Case((_t(rng, 5, 4), torch.arange(5), 10000.0), label="x (T, d) = (5, 4)")
    yield Case((_t(rng, 1, 1, 2), torch.tensor([7]), 10000.0), label="d = 2, one token at position 7")
    yield Case((_t(rng, 2, 9, 6), torch.arange(100, 109), 500.0), label="positions 100..108, base 500, d = 6")
    yield Case((_t(rng, 3, 4, 10, dtype=F64), torch.tensor([0, 3, 1, 50]), 10000.0),
               label="float64, positions not in order, d = 10", rtol=1e-10, atol=1e-12)


def _rope_relative(fn) -> str | None:
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randn(16, generator=gen, dtype=F64), torch.randn(16, generator=gen, dtype=F64)

    def score(m: int, n: int) -> float:
        qm = fn(q[None, :], torch.tensor([m]), 10000.0)[0]
        kn = fn(k[None, :], torch.tensor([n]), 10000.0)[0]
        return float(qm @ kn)

    a, b = score(9, 4), score(105, 100)
    if abs(a - b) > 1e-8 * (1 + abs(a)):
        return (f"q_m . k_n should depend only on m - n: (m, n) = (9, 4) gives {a:.6f} but (105, 100) gives {b:.6f}; "
                "rotate q and k by the same rule")
    return None


def _alibi_cases(rng):
    for H, T, label in ((8, 6, "H = 8: slopes 1/2, 1/4, ..., 1/256"), (4, 5, "H = 4: slopes 1/4, 1/16, 1/64, 1/256"),
                        (6, 4, "H = 6, not a power of two: the paper's interleaving recipe"),
                        (1, 3, "H = 1"), (12, 7, "H = 12"), (2, 1, "T = 1")):
        yield Case((H, T), label=label)


def _judge_alibi(got, expected, case) -> str | None:
    H, T = case.args
    if not isinstance(got, torch.Tensor):
        return f"return a torch.Tensor of shape ({H}, {T}, {T}), got {type(got).__name__}"
    if tuple(got.shape) != (H, T, T):
        return f"the output has shape {tuple(got.shape)}, expected (H, T, T) = ({H}, {T}, {T})"
    keep = torch.tril(torch.ones(T, T, dtype=torch.bool))                  # j <= i: the entries attention uses
    g = got.detach().double().masked_fill(~keep, 0.0)
    e = expected.double().masked_fill(~keep, 0.0)
    if torch.allclose(g, -e, rtol=1e-5, atol=1e-7) and T > 1:
        return "the bias has the wrong sign: it must be -m_h (i - j) <= 0, a penalty that grows with the distance"
    return compare(g, e, 1e-5, 1e-7, "the output (entries j <= i; the causal mask hides the others)")


# ---------------------------------------------------------------- 2.3 feed-forward


def _swiglu_cases(rng):
    for lead, D, Fh, label in (((4,), 6, 16, "x (4, 6), hidden 16 = 8 * 6 / 3"), ((2, 3), 8, 21, "x (2, 3, 8), hidden 21"),
                               ((1,), 5, 1, "hidden 1"), ((7,), 12, 32, "x (7, 12), hidden 32")):
        yield Case((_t(rng, *lead, D), _t(rng, Fh, D, scale=0.5), _t(rng, Fh, D, scale=0.5), _t(rng, D, Fh, scale=0.5)),
                   label=label + "; w_gate, w_up (F, D), w_down (D, F)")
    yield Case((_t(rng, 3, 9, dtype=F64), _t(rng, 24, 9, dtype=F64), _t(rng, 24, 9, dtype=F64), _t(rng, 9, 24, dtype=F64)),
               label="float64", rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- 2.4 Pre-Norm block


def _block_cases(rng):
    for D, H, label in ((16, 4, "d_model 16, 4 heads"), (24, 3, "d_model 24, 3 heads (head width 8)"),
                        (8, 1, "one head")):
        state = random_state(gpt.PreNormBlock(D, H), rng, positive=lambda n: "norm" in n)   # gains != 1: a skipped norm shows
        xs = [torch.as_tensor(2.0 * rng.standard_normal((B, T, D)), dtype=torch.float32) for B, T in ((2, 5), (1, 1), (3, 7))]
        yield Case(((D, H), state, xs), label=label)


EXERCISES = [
    Exercise("transformer.causal_attention", "Causal scaled dot-product attention from scratch",
             cases=_attn_cases, reference=attention.causal_attention, rtol=1e-4, atol=1e-5,
             properties=[_attn_matches_torch]),
    Exercise("transformer.repeat_kv", "Share key/value heads across query heads (GQA)",
             cases=_repeat_cases, reference=attention.repeat_kv, rtol=0.0, atol=0.0),
    Exercise("transformer.kv_cache_bytes", "Size of the KV cache of a real model",
             cases=_bytes_cases, reference=attention.kv_cache_bytes),
    Exercise("transformer.kv_cache_append", "Append new keys and values to the cache",
             cases=_append_cases, reference=attention.kv_cache_append, rtol=0.0, atol=0.0),
    Exercise("transformer.rope_rotate", "Rotary position embedding (RoPE)",
             cases=_rope_cases, reference=positions.rope_rotate, rtol=1e-5, atol=1e-6,
             properties=[_rope_relative]),
    Exercise("transformer.alibi_bias", "ALiBi: linear biases instead of position vectors",
             cases=_alibi_cases, reference=positions.alibi_bias, judge=_judge_alibi),
    Exercise("transformer.swiglu", "The SwiGLU feed-forward block",
             cases=_swiglu_cases, reference=feedforward.swiglu, rtol=1e-5, atol=1e-5),
    Exercise("transformer.PreNormBlock", "A Pre-Norm transformer block",
             cases=_block_cases, reference=gpt.PreNormBlock, adapter=module_outputs(),
             judge=module_judge("PreNormBlock", hint="keep the given __init__; x + attn(norm1(x)), then + mlp(norm2(.))")),
]

"""Checks for chapter v4_agents/01_multimodal_models (Volume 4, sections 4.1-4.2).

Cases are drawn at grading time from the seeded generator, with named edge cases. ``clip_loss`` and ``drlim_loss``
are judged through their gradients too (models train through them). ``Projector`` is built by an adapter that
loads random weights and counts parameters (the real LLaVA shapes are built on the ``meta`` device, without
memory). ``build_multimodal_batch`` receives an ``nn.Embedding`` that the adapter builds from a weight matrix.
``qformer`` must also keep its output length at the number of queries for any number of patches.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from manifold_course.agents import clip, llava
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.grading.probes import gradient_judge, input_gradients

CHAPTER = "v4_agents/01_multimodal_models"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F64, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


def _uneven_norms(rng, x: torch.Tensor) -> torch.Tensor:
    """Rows rescaled by factors from 0.05 to 20: a cosine must not see them."""
    return x * torch.as_tensor(np.exp(rng.uniform(np.log(0.05), np.log(20), (x.shape[0], 1))), dtype=x.dtype)


# ---------------------------------------------------------------- 4.1 CLIP


def _clip_loss_cases(rng):
    yield Case((_uneven_norms(rng, _t(rng, 6, 5)), _uneven_norms(rng, _t(rng, 6, 5)), 1 / 0.07),
               label="N = 6 pairs, d = 5, rows of very different norms, 1/tau = 14.3")
    yield Case((_t(rng, 7, 3), _t(rng, 7, 3), 2.5), label="N = 7, d = 3, 1/tau = 2.5")
    a, b = _t(rng, 9, 16), _t(rng, 9, 16)
    b[:, 0] += 3.0                                           # the captions share one direction: S is not symmetric
    yield Case((a, b, 10.0), label="N = 9, captions tilted the same way: CE(S) and CE(S^T) differ")
    yield Case((_t(rng, 1, 4), _t(rng, 1, 4), 5.0), label="batch of one pair: the loss is exactly 0")
    yield Case((torch.eye(4, dtype=F64) * 3, torch.eye(4, dtype=F64) * 0.5, 100.0),
               label="aligned pairs, orthogonal cross-pairs, 1/tau = 100: the loss is ~0", atol=1e-12)
    yield Case((_t(rng, 5, 8, dtype=F32), _t(rng, 5, 8, dtype=F32), 1.0), label="float32, 1/tau = 1", rtol=1e-5,
               atol=1e-6)


def _zero_shot_cases(rng):
    for n, c, d in ((12, 10, 6), (1, 3, 4), (7, 2, 5)):
        img = _uneven_norms(rng, _t(rng, n, d))
        yield Case((img, _uneven_norms(rng, _t(rng, c, d))),
                   label=f"{n} images, {c} classes, d = {d}, class prompts with norms from 0.05 to 20")
    img = _t(rng, 8, 3, dtype=F32)
    yield Case((img, _t(rng, 4, 3, dtype=F32)), label="float32 embeddings")


def _judge_zero_shot(got, expected, case):
    if not isinstance(got, torch.Tensor):
        return f"return a torch.Tensor of class indices (int64), got {type(got).__name__}"
    if got.dtype != torch.int64:
        return f"return int64 class indices (argmax gives them), got dtype {got.dtype}"
    problem = compare(got, expected, 0, 0, "the predicted classes")
    if problem:
        return problem + " (compare cosines: normalise the images and the class prompts before the dot product)"
    return None


def _recall_cases(rng):
    for n, m, k in ((10, 10, 1), (10, 10, 3), (6, 9, 2), (8, 8, 8), (5, 5, 20)):
        sim = _t(rng, n, m)
        sim[np.arange(n), np.arange(n)] += 0.8                  # matches are a little more similar than the rest
        yield Case((sim, k), label=f"sim ({n}, {m}), k = {k}" + (" (k >= M: every match is found)" if k >= m else ""))
    sim = torch.tensor([[0.5, 0.5, 0.1], [0.9, 0.2, 0.2], [0.3, 0.3, 0.3]], dtype=F64)
    yield Case((sim, 1), label="ties with the match count in its favour: rows 0 and 2 are found at k = 1")
    sim = torch.tensor([[0.1, 0.9, 0.8], [0.7, 0.9, 0.8]], dtype=F64)
    yield Case((sim, 2), label="2 queries, 3 gallery items: query 0's match ranks third")


def _gap_cases(rng):
    a, b = _t(rng, 20, 4), _t(rng, 20, 4)
    yield Case((a + 2.0, b - 2.0), label="two clouds on opposite sides")
    yield Case((_uneven_norms(rng, a), _uneven_norms(rng, a)), label="the same directions, rescaled: the gap is 0")
    yield Case((_t(rng, 7, 3) + 1.0, _t(rng, 11, 3)), label="7 images, 11 captions (different counts)")
    yield Case((_t(rng, 5, 6, dtype=F32) * 30, _t(rng, 5, 6, dtype=F32) + 0.5), label="float32, large image norms")


def _judge_float(what):
    def judge(got, expected, case):
        r = 1e-5 if case.rtol is None else case.rtol
        a = 1e-7 if case.atol is None else case.atol
        return compare(got, expected, r, a, what)
    return judge


# ---------------------------------------------------------------- 4.2 LLaVA


def _projector_cases(rng):
    for kind, d_in, d_out in (("linear", 6, 5), ("mlp2", 6, 5), ("mlp2", 3, 8), ("linear", 1, 7)):
        ref = llava.Projector(kind, d_in, d_out)
        state = {k: _t(rng, *v.shape, dtype=F32, scale=0.5) for k, v in ref.state_dict().items()}
        yield Case((kind, d_in, d_out, state, _t(rng, 2, 3, d_in, dtype=F32)),
                   label=f"Projector({kind!r}, {d_in}, {d_out}) on an input (2, 3, {d_in})")
    for kind in ("linear", "mlp2"):
        yield Case((kind, 1024, 4096, None, None), label=f"Projector({kind!r}, 1024, 4096): LLaVA's shapes")


def _projector_observe(cls):
    """Adapter: build ``cls(kind, d_in, d_out)``; count its parameters; load the case's weights; run the input.
    For the real shapes (no weights in the case) the module is built on the meta device: only the count."""

    def observed(kind, d_in, d_out, state, x):
        if state is None:
            with torch.device("meta"):
                m = cls(kind, d_in, d_out)
        else:
            m = cls(kind, d_in, d_out)
        obs = {"module": isinstance(m, nn.Module), "type": type(m).__name__}
        if not obs["module"]:
            return obs
        obs["n_params"] = int(sum(p.numel() for p in m.parameters()))
        if state is None:
            return obs
        try:
            m.load_state_dict({k: v.clone() for k, v in state.items()})
            obs["load_error"] = None
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            obs["load_error"] = (str(exc).strip().splitlines() or [""])[0][:300]
            return obs
        with torch.no_grad():
            y = m(x)
        obs["output"] = y.detach() if isinstance(y, torch.Tensor) else type(y).__name__
        return obs

    observed.__name__ = getattr(cls, "__name__", "Projector")
    return observed


def _judge_projector(got, expected, case):
    kind, d_in, d_out, state, x = case.args
    call = f"Projector({kind!r}, {d_in}, {d_out})"
    if not isinstance(got, dict) or "module" not in got:
        return "the grader could not observe your Projector"
    if not got["module"]:
        return f"{call} should build an nn.Module, got {got.get('type')}"
    if got.get("n_params") != expected["n_params"]:
        form = ("d_in * d_out + d_out (one Linear with bias)" if kind == "linear" else
                "d_in * d_out + d_out + d_out * d_out + d_out (Linear d_in -> d_out, GELU, Linear d_out -> d_out)")
        return f"{call} has {got.get('n_params')} parameters, expected {expected['n_params']} = {form}"
    if state is None:
        return None
    if got.get("load_error") is not None:
        return (f"could not load the reference's weights (keep the layers in self.net, an nn.Sequential: "
                f"{sorted(state)}): {got['load_error']}")
    problem = compare(got.get("output"), expected["output"], 1e-5, 1e-6,
                      f"the output of {call} for an input (2, 3, {d_in})")
    if problem:
        return problem + (" (mlp2 is Linear, GELU (exact, not tanh), Linear)" if kind == "mlp2" else "")
    return None


def _mm_cases(rng):
    for B, P, T, D, V, pad_id, n_pad in ((2, 3, 5, 4, 11, 0, (0, 2)), (1, 1, 4, 6, 9, 0, (1,)),
                                          (3, 4, 3, 5, 13, 7, (0, 1, 3)), (2, 5, 6, 3, 10, 0, (6, 0))):
        img = _t(rng, B, P, D, dtype=F32)
        ids = torch.as_tensor(rng.integers(1, V, (B, T)))
        ids[ids == pad_id] = (pad_id + 1) % V
        for b, n in enumerate(n_pad):
            if n:
                ids[b, T - n:] = pad_id                          # right padding
        weight = _t(rng, V, D, dtype=F32)
        label = f"B = {B}, P = {P} image tokens, T = {T} text ids, pad_id = {pad_id}, padding per row {list(n_pad)}"
        yield Case((img, ids, weight, pad_id), label=label)


def _mm_observe(fn):
    """Adapter: the case's embedding matrix becomes an ``nn.Embedding``; the learner's three tensors come back."""

    def observed(img, ids, weight, pad_id):
        embed = nn.Embedding.from_pretrained(weight.clone(), freeze=True)
        out = fn(img, ids, embed, pad_id=pad_id)
        if isinstance(out, (tuple, list)):
            return [o.detach() if isinstance(o, torch.Tensor) else o for o in out]
        return out

    observed.__name__ = getattr(fn, "__name__", "build_multimodal_batch")
    return observed


def _judge_mm(got, expected, case):
    img, ids, weight, pad_id = case.args
    B, P, _ = img.shape
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        return "return a tuple (inputs_embeds, attention_mask, labels)"
    inputs, mask, labels = got
    problem = compare(inputs, expected[0], 1e-6, 1e-7,
                      "inputs_embeds (the P image tokens first, then embed(text_ids), along dim 1)")
    if problem:
        return problem
    for have, want, name in ((mask, expected[1], "attention_mask"), (labels, expected[2], "labels")):
        if not isinstance(have, torch.Tensor):
            return f"{name} should be a torch.Tensor, got {type(have).__name__}"
        if have.dtype != torch.int64:
            return f"{name} should have dtype torch.int64, got {have.dtype}"
    if tuple(labels.shape) == tuple(expected[2].shape) and torch.any(labels[:, :P] != -100):
        return (f"labels at the {P} image positions should all be the ignore index -100: the model must not be "
                "trained to predict its image tokens")
    problem = compare(mask, expected[1], 0, 0, "attention_mask (1 on image tokens and real text, 0 on padding)")
    if problem:
        return problem
    return compare(labels, expected[2], 0, 0, "labels (-100 on image positions and padding, else the text id)")


def _qformer_cases(rng):
    for B, N, M, Dv, Dq, d in ((2, 16, 4, 6, 5, 3), (1, 1, 3, 4, 4, 2), (3, 7, 7, 5, 3, 4), (2, 50, 2, 3, 6, 5)):
        W = (_t(rng, Dq, d), _t(rng, Dv, d), _t(rng, Dv, d))
        yield Case((_t(rng, B, N, Dv), _t(rng, M, Dq), W),
                   label=f"B = {B}, N = {N} patches of width {Dv}, M = {M} queries of width {Dq}, d = {d}")
    W = (_t(rng, 4, 4, dtype=F32), _t(rng, 3, 4, dtype=F32), _t(rng, 3, 4, dtype=F32))
    yield Case((_t(rng, 2, 9, 3, dtype=F32), _t(rng, 5, 4, dtype=F32), W), label="float32", rtol=1e-5, atol=1e-6)


def _qformer_property(fn) -> str | None:
    g = np.random.default_rng(7)
    W = (_t(g, 4, 3), _t(g, 6, 3), _t(g, 6, 3))
    q = _t(g, 5, 4)
    for N in (1, 2, 5, 64, 577):
        Z = _t(g, 2, N, 6)
        out = fn(Z, q, W)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, 5, 3):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            return f"with N = {N} patches and 5 queries the output should be (2, 5, 3) (B, M, d), got {shape}"
    Z = _t(g, 2, 10, 6)
    perm = torch.as_tensor(g.permutation(10))
    if not torch.allclose(fn(Z, q, W), fn(Z[:, perm], q, W), atol=1e-10):
        return "shuffling the patches changed the output: cross-attention has no positions, so it should not"
    return None


def _drlim_cases(rng):
    z1, z2 = _t(rng, 8, 2), _t(rng, 8, 2)
    sim = torch.as_tensor(rng.random(8) < 0.5)
    sim[:2] = torch.tensor([True, False])
    yield Case((z1, z2, sim, 1.0), label="8 pairs, mixed neighbours and non-neighbours, margin 1")
    yield Case((_t(rng, 5, 3), _t(rng, 5, 3), torch.ones(5, dtype=torch.bool), 2.0), label="all neighbours: pull only")
    far = _t(rng, 4, 2) * 0.1
    yield Case((far, far + 5.0, torch.zeros(4, dtype=torch.bool), 1.0),
               label="non-neighbours already beyond the margin: loss 0, gradient 0")
    z = _t(rng, 6, 2) * 0.2
    yield Case((z, z + _t(rng, 6, 2) * 0.2, torch.zeros(6, dtype=torch.bool), 1.5),
               label="non-neighbours inside the margin: pushed apart")
    yield Case((_t(rng, 1, 4, dtype=F32), _t(rng, 1, 4, dtype=F32), torch.tensor([False]), 0.5),
               label="one pair, float32", rtol=1e-5, atol=1e-6)


def _llava_cases(rng):
    yield Case((1, "linear", 1024, 32000, 4096, 32, 11008), label="stage 1, LLaVA (linear), Vicuna-7B shapes")
    yield Case((1, "mlp2", 1024, 32000, 4096, 32, 11008), label="stage 1, LLaVA-1.5 (mlp2), Vicuna-7B shapes")
    yield Case((2, "mlp2", 1024, 32000, 4096, 32, 11008), label="stage 2, LLaVA-1.5-7B: 6,738,415,616 LLM parameters")
    yield Case((2, "mlp2", 1024, 32000, 5120, 40, 13824), label="stage 2, LLaVA-1.5-13B shapes")
    yield Case((2, "linear", 1024, 32000, 5120, 40, 13824), label="stage 2, LLaVA (linear), 13B shapes")
    for _ in range(3):
        args = (int(rng.integers(1, 3)), str(rng.choice(["linear", "mlp2"])), int(rng.integers(2, 50)),
                int(rng.integers(5, 100)), int(rng.integers(2, 40)), int(rng.integers(1, 5)), int(rng.integers(3, 90)))
        yield Case(args, label="small shapes: stage {}, {}, d_vision {}, V {}, D {}, L {}, F {}".format(*args))


def _judge_int(what):
    def judge(got, expected, case):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, np.integer)):
            return f"return a Python int for {what}, got {type(got).__name__}"
        if int(got) == expected:
            return None
        return f"{what}: expected {expected:,}, got {int(got):,} (off by {int(got) - expected:+,})"
    return judge


def _with_hint(judge, hint: str):
    """A gradient judge whose message about a wrong *value* also says what the value should be made of."""

    def wrapped(got, expected, case):
        problem = judge(got, expected, case)
        if problem and problem.startswith("the output") and "(" + hint not in problem:
            return f"{problem} ({hint})"
        return problem
    return wrapped


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("multimodal.clip_loss", "CLIP's symmetric InfoNCE loss", cases=_clip_loss_cases,
             reference=clip.clip_loss, adapter=input_gradients({0: "img_emb", 1: "txt_emb"}),
             judge=_with_hint(gradient_judge(1e-7, 1e-9, not_differentiable="the loss must be a torch scalar built "
                                             "from the embeddings (a model trains through it)"),
                              "S = logit_scale * cos, a matrix of unit vectors' dot products; the loss is half the mean "
                              "cross-entropy over its rows (images -> captions) plus half over its columns (captions -> "
                              "images)")),
    Exercise("multimodal.zero_shot_predict", "Zero-shot classification by cosine similarity", cases=_zero_shot_cases,
             reference=clip.zero_shot_predict, judge=_judge_zero_shot),
    Exercise("multimodal.recall_at_k", "Retrieval recall@k", cases=_recall_cases, reference=clip.recall_at_k,
             judge=_judge_float("recall@k (the fraction of rows whose match has fewer than k columns scoring "
                                "strictly higher)")),
    Exercise("multimodal.modality_gap", "The modality gap", cases=_gap_cases, reference=clip.modality_gap,
             judge=_judge_float("the gap (distance between the centroids of the *unit-normalised* embeddings)")),
    Exercise("multimodal.drlim_loss", "DrLIM's contrastive loss", cases=_drlim_cases, reference=clip.drlim_loss,
             adapter=input_gradients({0: "z1", 1: "z2"}),
             judge=_with_hint(gradient_judge(1e-7, 1e-9), "neighbours: 0.5 D^2; the others: 0.5 max(0, m - D)^2; "
                              "the mean over the pairs")),
    Exercise("multimodal.Projector", "LLaVA's projector: linear and 2-layer MLP", cases=_projector_cases,
             reference=llava.Projector, adapter=_projector_observe, judge=_judge_projector),
    Exercise("multimodal.build_multimodal_batch", "Image tokens + text: inputs, attention mask, labels",
             cases=_mm_cases, reference=llava.build_multimodal_batch, adapter=_mm_observe, judge=_judge_mm),
    Exercise("multimodal.qformer", "A Q-Former cross-attention: any number of patches to M queries",
             cases=_qformer_cases, reference=llava.qformer, rtol=1e-7, atol=1e-9, properties=[_qformer_property]),
    Exercise("multimodal.llava_trainable_params", "Trainable parameters per LLaVA stage, real shapes",
             cases=_llava_cases, reference=llava.llava_trainable_params,
             judge=_judge_int("the trainable parameter count")),
]

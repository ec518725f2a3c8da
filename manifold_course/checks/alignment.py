"""Checks for chapter v2_llm/03_alignment_and_inference (Volume 2, sections 2.8-2.10, KV cache, speculative decoding).

Cases are drawn at grading time from the seeded generator. The LoRA class is graded by building it on a fresh
``nn.Linear``, loading the reference's state dict (with a non-zero B) and comparing forwards, then by merging and
unmerging; the DPO loss and Bradley-Terry loss are also compared through their gradients.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.grading.probes import gradient_judge, input_gradients
from manifold_course.nn import decoding, lora, quantization
from manifold_course.probability import preferences

CHAPTER = "v2_llm/03_alignment_and_inference"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F32, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale + shift, dtype=dtype)


def _simplex(rng: np.random.Generator, *shape: int, dtype=F64, conc: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.dirichlet(np.full(shape[-1], conc), size=shape[:-1]), dtype=dtype).reshape(shape)


# ---------------------------------------------------------------- 2.8 LoRA


def _lora_cases(rng):
    for d_in, d_out, r, alpha, bias, label in ((16, 12, 4, 8.0, True, "d_in 16, d_out 12, r 4, alpha 8"),
                                               (7, 5, 1, 1.0, False, "r = 1, no bias, odd sizes"),
                                               (33, 9, 3, 16.0, True, "alpha / r = 16 / 3 (not an integer)"),
                                               (10, 10, 10, 10.0, True, "full rank r = d")):
        w0 = _t(rng, d_out, d_in, scale=1 / np.sqrt(d_in))
        b = _t(rng, d_out, scale=0.1) if bias else None
        A, B = _t(rng, r, d_in), _t(rng, d_out, r)                         # weights loaded after the start checks
        x = _t(rng, 3, 2, d_in)                                            # a (B, T, d_in) batch: only the last axis is d_in
        yield Case((w0, b, r, alpha, A, B, x), label=label)


def _lora_observe(cls):
    """Adapter: build ``cls(base, r, alpha)`` on a linear layer with the case's weights; record what a LoRA layer
    must do (trainable parameters, start at the base layer, the scaled update, gradients, merge and unmerge)."""

    def observed(w0, b, r, alpha, A, B, x):
        base = nn.Linear(w0.shape[1], w0.shape[0], bias=b is not None)
        with torch.no_grad():
            base.weight.copy_(w0)
            if b is not None:
                base.bias.copy_(b)
        m = cls(base, r, alpha)
        obs = {"module": isinstance(m, nn.Module), "type": type(m).__name__}
        if not obs["module"]:
            return obs
        obs["trainable"] = sorted(n for n, p in m.named_parameters() if p.requires_grad)
        if obs["trainable"] != ["lora_A", "lora_B"]:
            return obs
        obs["shapes"] = [list(m.lora_A.shape), list(m.lora_B.shape)]
        obs["B_zero"], obs["A_zero"] = bool(torch.all(m.lora_B == 0)), bool(torch.all(m.lora_A == 0))
        out0 = m(x)
        obs["out0"] = out0.detach() if isinstance(out0, torch.Tensor) else type(out0).__name__
        state = {"base.weight": w0, "lora_A": A, "lora_B": B} | ({"base.bias": b} if b is not None else {})
        try:
            m.load_state_dict(state)
            obs["load_error"] = None
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            obs["load_error"] = (str(exc).strip().splitlines() or [""])[0][:300]
            return obs
        out = m(x)
        obs["out"] = out.detach()
        out.sum().backward()
        obs["grads"] = [m.lora_A.grad is not None, m.lora_B.grad is not None]
        m.merge()
        obs["merged_out"], obs["merged_weight"] = m(x).detach(), m.base.weight.detach().clone()
        m.unmerge()
        obs["unmerged_weight"], obs["unmerged_out"] = m.base.weight.detach().clone(), m(x).detach()
        return obs

    observed.__name__ = getattr(cls, "__name__", "LoRALinear")
    return observed


def _judge_lora(got, expected, case) -> str | None:
    w0, b, r, alpha, A, B, x = case.args
    d_out, d_in = w0.shape
    if not isinstance(got, dict) or "module" not in got:
        return "the grader could not observe your LoRALinear"
    if not got["module"]:
        return f"LoRALinear(base, r, alpha) should build an nn.Module, got {got.get('type')}"
    if got.get("trainable") != ["lora_A", "lora_B"]:
        return (f"the trainable parameters should be exactly lora_A and lora_B (freeze the base with "
                f"requires_grad_(False)); yours are {got.get('trainable')}")
    if got.get("shapes") != expected["shapes"]:
        return (f"lora_A should have shape (r, d_in) = {(r, d_in)} and lora_B (d_out, r) = {(d_out, r)}; got "
                f"{got.get('shapes')}")
    if not got.get("B_zero"):
        return "lora_B should start at zero, so that the adapted layer starts exactly at the base layer"
    if got.get("A_zero"):
        return "lora_A should start random (if A and B are both zero, no gradient ever reaches them)"
    problem = compare(got.get("out0"), expected["out0"], 1e-5, 1e-6,
                      f"the output at initialisation for an input (3, 2, {d_in}) (should equal base(x))")
    if problem:
        return problem
    if got.get("load_error") is not None:
        return f"could not load the reference's weights (name the parameters base, lora_A, lora_B): {got['load_error']}"
    problem = compare(got.get("out"), expected["out"], 1e-5, 1e-5, "the output with a non-zero B (did you scale by alpha / r?)")
    if problem:
        return problem
    if got.get("grads") != [True, True]:
        return "no gradient reached lora_A / lora_B: compute the update from the parameters, inside forward"
    for key, where in (("merged_out", "the output after merge() (should equal the unmerged output)"),
                       ("merged_weight", "base.weight after merge() (W0 + alpha/r B A)"),
                       ("unmerged_weight", "base.weight after unmerge() (should be W0 again)"),
                       ("unmerged_out", "the output after unmerge()")):
        problem = compare(got.get(key), expected[key], 1e-5, 1e-5, where)
        if problem:
            return problem
    return None


def _nf4_level_cases(rng):
    yield Case((), label="the 16 NF4 levels")


def _judge_levels(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (16,):
        return "return a torch.Tensor of shape (16,)"
    if got.dtype != F32:
        return f"return float32 levels (got {got.dtype})"
    if not torch.all(got[1:] > got[:-1]):
        return "the levels should be sorted increasingly and distinct"
    if not (got == 0).any():
        return "the code book needs an exact 0 (the paper's asymmetric construction: 8 positive, 7 negative, and 0)"
    return compare(got, expected, 1e-5, 1e-6, "the levels")


def _nf4_cases(rng):
    levels = quantization.nf4_levels()
    yield Case((_t(rng, 4, 64), levels, 64), label="w (4, 64), block 64: one block per row")
    yield Case((_t(rng, 3, 50), levels, 64), label="w (3, 50), block 64: the last block is padded with zeros")
    yield Case((_t(rng, 100, scale=0.02), levels, 17), label="1-D w of 100 values, block 17 (not a power of two)")
    w = _t(rng, 2, 32)
    w[0] = 0.0
    yield Case((w, levels, 32), label="an all-zero block: scale 0 and every code the index of level 0 (no 0 / 0)")
    w = _t(rng, 5, 24, scale=0.01)
    w[2, 3] = 5.0
    yield Case((w, levels, 24), label="an outlier in one block: it sets that block's scale only")
    yield Case((_t(rng, 7, 9, dtype=F64), levels.double(), 8), label="float64, block 8")


# ---------------------------------------------------------------- 2.9 preferences


def _bt_cases(rng):
    yield Case((_t(rng, 8), _t(rng, 8)), label="8 pairs, float32")
    yield Case((_t(rng, 1), _t(rng, 1)), label="one pair")
    yield Case((torch.tensor([200.0, -150.0, 0.0]), torch.tensor([-200.0, 100.0, 0.0])),
               label="differences of +-400 and 0: log(sigmoid(-250)) underflows; use softplus / logsigmoid")
    yield Case((_t(rng, 37, dtype=F64, scale=3.0), _t(rng, 37, dtype=F64, scale=3.0)), label="float64, 37 pairs",
               rtol=1e-10, atol=1e-12)


def _kl_policy_cases(rng):
    yield Case((_simplex(rng, 6), _t(rng, 6, dtype=F64), 0.5), label="K = 6, beta 0.5")
    yield Case((_simplex(rng, 3, 7), _t(rng, 3, 7, dtype=F64), 1.0), label="3 prompts x 7 responses: normalise the last axis")
    yield Case((_simplex(rng, 5), _t(rng, 5, dtype=F64), 1e-3),
               label="beta 1e-3: exp(r / beta) overflows; work with log pi_ref + r / beta and a softmax")
    yield Case((_simplex(rng, 5), _t(rng, 5, dtype=F64), 1e4), label="beta 1e4: pi* is almost pi_ref")
    p = _simplex(rng, 8)
    p[3] = 0.0
    p = p / p.sum()
    yield Case((p, _t(rng, 8, dtype=F64), 0.3), label="pi_ref(y) = 0 for one response: pi*(y) = 0 too")
    yield Case((_simplex(rng, 1), _t(rng, 1, dtype=F64), 0.7), label="K = 1")
    yield Case((_simplex(rng, 9, dtype=F32), _t(rng, 9), 0.2), label="float32", rtol=1e-5, atol=1e-6)


def _dpo_cases(rng):
    def logps(*shape, dtype=F64):
        return -torch.as_tensor(rng.gamma(2.0, 20.0, size=shape), dtype=dtype)   # log-probs of whole responses

    lw, ll = logps(6), logps(6)
    yield Case((lw, ll, lw.clone(), ll.clone(), 0.1), label="policy = reference: the loss is log 2")
    yield Case((logps(8), logps(8), logps(8), logps(8), 0.1), label="8 pairs, beta 0.1")
    yield Case((logps(1), logps(1), logps(1), logps(1), 0.5), label="one pair, beta 0.5")
    yield Case((logps(5), logps(5), logps(5), logps(5), 5.0), label="beta 5: margins of hundreds of nats (stability)")
    yield Case((torch.tensor([-300.0, -5.0]), torch.tensor([-10.0, -300.0]), torch.tensor([-10.0, -5.0]),
                torch.tensor([-10.0, -10.0]), 1.0),
               label="float32, margins -290 and +290: log(sigmoid(-290)) underflows; use softplus / logsigmoid",
               rtol=1e-5, atol=1e-5)
    yield Case((logps(11, dtype=F32), logps(11, dtype=F32), logps(11, dtype=F32), logps(11, dtype=F32), 0.2),
               label="float32", rtol=1e-4, atol=1e-5)


def _ppo_cases(rng):
    def case(n, dtype=F64, spread=0.5):
        old = _t(rng, n, dtype=dtype, scale=2.0, shift=-3.0)
        return old + _t(rng, n, dtype=dtype, scale=spread), old, _t(rng, n, dtype=dtype)

    yield Case((*case(10), 0.2), label="10 samples, ratios on both sides of the clip range, eps 0.2")
    yield Case((*case(1, spread=1.0), 0.1), label="one sample, eps 0.1")
    new, old, _ = case(6)
    yield Case((new, old, torch.tensor([1.0, -1.0, 2.0, -2.0, 0.5, -0.5], dtype=F64), 0.2),
               label="positive and negative advantages: min(...) is pessimistic in both directions")
    old = _t(rng, 4, dtype=F64)
    yield Case((old.clone(), old, _t(rng, 4, dtype=F64), 0.2), label="new = old: ratio 1, the objective is mean(A)")
    yield Case((*case(13, dtype=F32), 0.3), label="float32", rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- decoding


def _top_p_cases(rng):
    yield Case((_t(rng, 10, scale=2.0), 0.9), label="V = 10, p = 0.9")
    yield Case((_t(rng, 3, 17, scale=3.0), 0.5), label="a batch of 3 rows, V = 17: each row on its own")
    yield Case((_t(rng, 12, scale=1.0), 1e-6), label="tiny p: only the most probable token survives")
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=F64))
    yield Case((logits, 0.6), label="probs (0.5, 0.3, 0.15, 0.05), p = 0.6: keep the first two (0.5 < 0.6 <= 0.8)")
    yield Case((_t(rng, 1, 50, scale=4.0, dtype=F64), 0.95), label="float64, V = 50")
    yield Case((torch.tensor([3.0]), 0.3), label="V = 1")


def _judge_top_p(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return f"return a tensor of the shape of the logits {tuple(expected.shape)}"
    kept_got, kept_want = torch.isfinite(got), torch.isfinite(expected)
    if not torch.equal(kept_got, kept_want):
        n_got = kept_got.reshape(-1, got.shape[-1]).sum(-1).tolist()
        n_want = kept_want.reshape(-1, got.shape[-1]).sum(-1).tolist()
        return (f"tokens kept per row {n_got}, expected {n_want}: keep the smallest set of most probable tokens whose "
                f"probabilities add up to at least p = {case.args[1]}, including the token that crosses p "
                "(mark the others with -inf)")
    return compare(got, expected, 1e-6, 1e-6, "the kept logits (leave them unchanged)")


def _residual_cases(rng):
    yield Case((_simplex(rng, 6), _simplex(rng, 6)), label="V = 6")
    yield Case((_simplex(rng, 4, 11), _simplex(rng, 4, 11)), label="a batch of 4 rows, V = 11")
    p = _simplex(rng, 5)
    q = p.clone()
    q[2] = 0.0
    q = q / q.sum()
    yield Case((p, q), label="q(x) = 0 where p(x) > 0: the residual must put mass there")
    p = _simplex(rng, 7)
    yield Case((p, p.clone()), label="p = q: nothing is ever rejected; return p (avoid 0 / 0)")
    yield Case((_simplex(rng, 9, dtype=F32), _simplex(rng, 9, dtype=F32)), label="float32", rtol=1e-5, atol=1e-6)


def _spec_cases(rng):
    for i in range(6):
        V = int(rng.integers(3, 12))
        p, q = _simplex(rng, V), _simplex(rng, V)
        if i % 2 == 0:
            x = int(rng.choice(V, p=q.numpy()))
        else:                                                            # a token the draft over-rates: p(x) < q(x)
            x = int(rng.choice(np.flatnonzero((p < q).numpy())))
        ratio = float(p[x] / q[x])
        u = float(rng.uniform(0, min(ratio, 1.0))) if i % 2 == 0 else float(rng.uniform(ratio, 1.0))
        what = "u < p(x)/q(x): accept the draft" if i % 2 == 0 else "u >= p(x)/q(x): resample from the residual"
        yield Case((p, q, x, u, float(rng.uniform())), label=f"V = {V}, {what}")
    p = torch.tensor([0.1, 0.6, 0.3], dtype=F64)
    q = torch.tensor([0.5, 0.2, 0.3], dtype=F64)
    yield Case((p, q, 1, 0.999, 0.4), label="p(x) > q(x): always accepted")
    yield Case((p, q, 0, 0.5, 0.05), label="p(x)/q(x) = 0.2, u = 0.5: rejected; the residual (0, 1, 0) gives token 1")
    p = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=F64)
    q = torch.tensor([0.7, 0.1, 0.1, 0.1], dtype=F64)
    yield Case((p, q, 0, 0.9, 0.2), label="residual (0, 1/3, 1/3, 1/3), u_res = 0.2: the inverse CDF gives token 1")


def _judge_int(got, expected, case) -> str | None:
    if isinstance(got, torch.Tensor):
        return "return a Python int (use int(...) or .item())"
    return compare(got, expected, 0, 0, "the returned token")


EXERCISES = [
    Exercise("alignment.LoRALinear", "LoRA: a frozen linear layer plus a rank-r update",
             cases=_lora_cases, reference=lora.LoRALinear, adapter=_lora_observe, judge=_judge_lora),
    Exercise("alignment.nf4_levels", "The 16 NormalFloat-4 levels from normal quantiles",
             cases=_nf4_level_cases, reference=quantization.nf4_levels, judge=_judge_levels),
    Exercise("alignment.nf4_quantize", "Blockwise NF4 quantisation: codes and absmax scales",
             cases=_nf4_cases, reference=quantization.nf4_quantize, rtol=1e-6, atol=0.0),
    Exercise("alignment.bradley_terry_loss", "The Bradley-Terry reward-model loss",
             cases=_bt_cases, reference=preferences.bradley_terry_loss, adapter=input_gradients({0: "r_chosen", 1: "r_rejected"}),
             judge=gradient_judge(1e-5, 1e-6, hint="d loss / d r_chosen = -sigmoid(r_rejected - r_chosen) / N: training raises r_chosen",
                                  not_differentiable="the loss must be a torch scalar built from the inputs (so that "
                                  "gradients flow back to the rewards)")),
    Exercise("alignment.optimal_kl_policy", "The KL-regularised optimal policy pi* ~ pi_ref exp(r / beta)",
             cases=_kl_policy_cases, reference=preferences.optimal_kl_policy, rtol=1e-9, atol=1e-12),
    Exercise("alignment.ppo_clip_objective", "PPO's clipped surrogate objective",
             cases=_ppo_cases, reference=preferences.ppo_clip_objective, rtol=1e-9, atol=1e-12),
    Exercise("alignment.dpo_loss", "The DPO loss",
             cases=_dpo_cases, reference=preferences.dpo_loss,
             adapter=input_gradients({0: "the policy's chosen log-probs", 1: "the policy's rejected log-probs"}),
             judge=gradient_judge(1e-9, 1e-12, grad_atol=1e-12, hint="the chosen log-prob is pushed up and the "
                                  "rejected one down, weighted by sigmoid(-beta * margin) / N",
                                  not_differentiable="the loss must be a torch scalar built from the policy log-probs, "
                                  "so that gradients reach the policy")),
    Exercise("alignment.top_p_filter", "Top-p (nucleus) filtering",
             cases=_top_p_cases, reference=decoding.top_p_filter, judge=_judge_top_p),
    Exercise("alignment.residual_distribution", "Speculative sampling: the residual distribution",
             cases=_residual_cases, reference=decoding.residual_distribution, rtol=1e-9, atol=1e-12),
    Exercise("alignment.speculative_sample", "Speculative sampling: one accept / reject step",
             cases=_spec_cases, reference=decoding.speculative_sample, judge=_judge_int),
]

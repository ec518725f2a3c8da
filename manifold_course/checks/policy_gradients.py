"""Checks for chapter v5_rl/02_policy_gradients (Volume 5, sections 5.5-5.7).

Cases are drawn at grading time from the seeded generator. The losses a policy trains through (``reinforce_loss``,
``gaussian_logprob``, ``ppo_clip_loss``) are judged by value *and* by their autograd gradients (the detached baseline
and the clipped samples' zero gradient are the point). The returns and advantages are NumPy functions compared with
the reference on rollouts with episode boundaries, including ``(T, N)`` rollouts of N parallel environments.
``approx_kl`` is also tested for unbiasedness by Monte Carlo against an exact KL.
"""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem
from manifold_course.grading.probes import gradient_judge, input_gradients
from manifold_course.rl import advantages, policy_gradient, ppo

CHAPTER = "v5_rl/02_policy_gradients"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F64, scale: float = 1.0, loc: float = 0.0) -> torch.Tensor:
    return torch.as_tensor(loc + rng.standard_normal(shape) * scale, dtype=dtype)


# ---------------------------------------------------------------- 5.5 REINFORCE, Gaussian policies


def _reinforce_cases(rng):
    logp = -torch.as_tensor(rng.exponential(1.0, 12))
    yield Case((logp, _t(rng, 12, scale=3.0, loc=5.0), None), label="12 samples, no baseline (baseline=None)")
    yield Case((-torch.as_tensor(rng.exponential(1.0, 9)), _t(rng, 9, scale=2.0, loc=10.0), _t(rng, 9, loc=10.0)),
               label="9 samples, a per-sample baseline b(s) (it must not receive a gradient)")
    yield Case((-torch.as_tensor(rng.exponential(1.0, (16, 4))), _t(rng, 16, 4), _t(rng, 16, 4)),
               label="a (T, N) = (16, 4) rollout: the mean over every entry")
    yield Case((-torch.as_tensor(rng.exponential(1.0, 1)), _t(rng, 1), torch.zeros(1, dtype=F64)),
               label="one sample, baseline 0")
    yield Case((-torch.as_tensor(rng.exponential(1.0, 7), dtype=F32), _t(rng, 7, dtype=F32), _t(rng, 7, dtype=F32)),
               label="float32", rtol=1e-5, atol=1e-6)


def _gauss_cases(rng):
    yield Case((_t(rng, 10, 1), _t(rng, 10, 1), _t(rng, 10, 1, scale=0.5)), label="10 one-dimensional actions")
    yield Case((_t(rng, 6, 3), _t(rng, 6, 3), _t(rng, 3, scale=0.5)),
               label="3 action dimensions, a state-independent log_std of shape (3,) (broadcast)")
    yield Case((_t(rng, 1, 4), _t(rng, 1, 4), torch.zeros(4, dtype=F64)), label="batch 1, sigma = 1")
    yield Case((_t(rng, 5, 2), _t(rng, 5, 2), torch.full((5, 2), -3.0, dtype=F64)),
               label="a small sigma = e^-3: large log-density magnitudes")
    yield Case((_t(rng, 8, 2, dtype=F32), _t(rng, 8, 2, dtype=F32), _t(rng, 8, 2, dtype=F32, scale=0.3)),
               label="float32", rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- 5.6 returns, TD errors, GAE


def _rollout(rng, T, N=None, p_done=0.15):
    shape = (T,) if N is None else (T, N)
    r = rng.normal(size=shape)
    v = rng.normal(size=shape)
    d = (rng.random(shape) < p_done).astype(np.float64)
    last = float(rng.normal()) if N is None else rng.normal(size=N)
    return r, v, d, last


def _returns_cases(rng):
    r, _, d, last = _rollout(rng, 11)
    d[4] = 1.0
    yield Case((r, d, 0.9, last), label="T = 11, an episode ends at step 4 (nothing after it counts)")
    r, _, d, last = _rollout(rng, 7)
    d[:] = 0.0
    yield Case((r, d, 0.99, last), label="no episode ends: the tail is bootstrapped with last_value")
    r, _, d, last = _rollout(rng, 5)
    d[-1] = 1.0
    yield Case((r, d, 0.5, last), label="the last step ends an episode: last_value is not used")
    yield Case((np.array([2.0]), np.array([0.0]), 0.9, 10.0), label="T = 1: G_0 = r_0 + gamma * last_value")
    r, _, d, last = _rollout(rng, 9, 3)
    yield Case((r, d, 0.95, last), label="a (T, N) = (9, 3) rollout of 3 environments (time is axis 0)")


def _td_cases(rng):
    r, v, d, last = _rollout(rng, 12)
    d[5] = 1.0
    yield Case((r, v, d, 0.9, last), label="T = 12, an episode ends at step 5: no V(s_6) in delta_5")
    r, v, d, last = _rollout(rng, 6)
    d[:] = 0.0
    yield Case((r, v, d, 0.99, last), label="no episode ends: delta_{T-1} uses last_value")
    yield Case((np.array([1.0]), np.array([0.5]), np.array([1.0]), 0.9, 3.0), label="T = 1, terminal")
    r, v, d, last = _rollout(rng, 8, 4)
    yield Case((r, v, d, 0.97, last), label="a (T, N) = (8, 4) rollout of 4 environments (time is axis 0)")


def _gae_cases(rng):
    for lam in (0.0, 1.0, float(rng.uniform(0.8, 0.97))):
        r, v, d, last = _rollout(rng, 13)
        d[6] = 1.0
        yield Case((r, v, d, 0.99, lam, last), label=f"T = 13, an episode ends at step 6, lambda = {lam:.3f}")
    r, v, d, last = _rollout(rng, 6)
    d[:] = 0.0
    yield Case((r, v, d, 0.9, 0.95, last), label="no episode ends, lambda = 0.95")
    r, v, d, last = _rollout(rng, 10, 3)
    yield Case((r, v, d, 0.99, 0.95, last), label="a (T, N) = (10, 3) rollout of 3 environments")


def _judge_pair(what):
    def judge(got, expected, case):
        if not (isinstance(got, tuple) and len(got) == 2):
            return f"return a pair {what}"
        for g, e, name in zip(got, expected, what.strip("()").split(", ")):
            problem = compare(g, e, 1e-9, 1e-12, where=name)
            if problem:
                return problem + ("; returns = adv + values (the critic's targets)" if name == "returns" else "")
        return None

    return judge


# ---------------------------------------------------------------- 5.7 PPO


def _ppo_cases(rng):
    n = 40
    old = -torch.as_tensor(rng.exponential(1.0, n))
    new = old + _t(rng, n, scale=0.4)               # ratios from about 0.3 to 3: many clipped on both sides
    yield Case((new, old, _t(rng, n), 0.2), label="40 samples, eps = 0.2, ratios on both sides of the clip range")
    old = -torch.as_tensor(rng.exponential(1.0, 16))
    yield Case((old.clone(), old, _t(rng, 16), 0.1), label="the first minibatch step: ratio = 1 everywhere")
    old = -torch.as_tensor(rng.exponential(1.0, (8, 4)))
    yield Case((old + _t(rng, 8, 4, scale=0.3), old, _t(rng, 8, 4), 0.3), label="a (8, 4) batch, eps = 0.3")
    old = -torch.as_tensor(rng.exponential(1.0, 6))
    new = old + torch.tensor([0.5, 0.5, -0.5, -0.5, 0.05, -0.05], dtype=F64)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0, -2.0], dtype=F64)
    yield Case((new, old, adv, 0.2), label="ratio e^0.5 with A > 0 (clipped: zero gradient), A < 0 (not clipped), ...")
    old = -torch.as_tensor(rng.exponential(1.0, 12), dtype=F32)
    yield Case((old + _t(rng, 12, dtype=F32, scale=0.3), old, _t(rng, 12, dtype=F32), 0.2), label="float32",
               rtol=1e-5, atol=1e-6)


def _logits_pair(rng, n_dist, K):
    a = rng.normal(size=(n_dist, K))
    return a, a + rng.normal(scale=0.5, size=(n_dist, K))


def _kl_cases(rng):
    for kind in ("k1", "k3"):
        old = -torch.as_tensor(rng.exponential(1.0, 30))
        yield Case((old, old + _t(rng, 30, scale=0.3), kind), label=f"{kind}, 30 samples")
        old = -torch.as_tensor(rng.exponential(1.0, (5, 4)))
        yield Case((old, old + _t(rng, 5, 4, scale=1.0), kind), label=f"{kind}, a (5, 4) batch, large log-ratios")
        old = -torch.as_tensor(rng.exponential(1.0, 9))
        yield Case((old, old.clone(), kind), label=f"{kind}, identical policies: 0")
    old = -torch.as_tensor(rng.exponential(1.0, 10), dtype=F32)
    yield Case((old, old + _t(rng, 10, dtype=F32, scale=0.2), "k3"), label="k3, float32", rtol=1e-5, atol=1e-6)


def _kl_unbiased(fn) -> str | None:
    """k1 and k3 averaged over many actions drawn from pi_old match the exact KL(pi_old || pi_new)."""
    g = np.random.default_rng(11)
    lo, ln = (torch.log_softmax(torch.as_tensor(x), -1) for x in _logits_pair(g, 1, 5))
    lo, ln = lo[0], ln[0]
    exact = float((lo.exp() * (lo - ln)).sum())
    a = torch.as_tensor(g.choice(5, size=200_000, p=lo.exp().numpy() / float(lo.exp().sum())))
    for kind in ("k1", "k3"):
        est = fn(lo[a], ln[a], kind)
        problem = float_problem(float(est) if isinstance(est, torch.Tensor) and est.numel() == 1 else est, kind)
        if problem:
            return problem
        if abs(float(est) - exact) > 0.01 + 0.05 * exact:
            return (f"approx_kl(..., '{kind}') averaged over 200,000 actions drawn from pi_old gave {float(est):.4f}, "
                    f"but KL(pi_old || pi_new) = {exact:.4f}: the estimator should be unbiased")
    return None


def _clip_cases(rng):
    yield Case((torch.as_tensor(np.exp(rng.normal(scale=0.3, size=50))), 0.2), label="50 ratios, eps = 0.2")
    yield Case((torch.ones(7, dtype=F64), 0.1), label="all ratios 1: fraction 0")
    yield Case((torch.tensor([0.5, 0.7, 1.5, 2.0], dtype=F64), 0.2), label="all clipped, both sides: fraction 1")
    yield Case((torch.as_tensor(np.exp(rng.normal(scale=0.2, size=(6, 5)))), 0.1), label="a (6, 5) batch, eps = 0.1")
    yield Case((torch.tensor([0.7, 0.95, 1.05, 1.1, 1.3], dtype=F32), 0.2), label="float32, one clipped below, one above")


def _judge_float(what, hint=""):
    def judge(got, expected, case):
        problem = float_problem(got, what)
        if problem:
            return problem
        problem = compare(float(got), expected, 1e-9, 1e-12, where=what)
        return problem + (f" ({hint})" if hint else "") if problem else None

    return judge


def _entropy_cases(rng):
    yield Case((_t(rng, 6, 4),), label="6 distributions over 4 actions")
    yield Case((torch.zeros(2, 7, dtype=F64),), label="uniform over 7 actions: log 7")
    yield Case((torch.tensor([[0.0, -float("inf"), 1.0], [-float("inf"), 5.0, -float("inf")]], dtype=F64),),
               label="masked actions (logit -inf): 0 log 0 = 0, a one-hot row has entropy 0")
    yield Case((_t(rng, 3, 5, scale=40.0),), label="logits of magnitude ~ 100: compute through log_softmax", atol=1e-9)
    yield Case((_t(rng, 2, 3, 2, dtype=F32),), label="float32, a (2, 3) batch of 2-action distributions",
               rtol=1e-5, atol=1e-6)


def _norm_cases(rng):
    yield Case((_t(rng, 64, scale=20.0, loc=50.0),), label="64 advantages with mean ~ 50 and std ~ 20")
    yield Case((_t(rng, 3, scale=0.1),), label="a minibatch of 3: torch's default std (n - 1)")
    yield Case((torch.full((5,), 2.5, dtype=F64),), label="constant advantages: all 0 (eps = 1e-8 in the denominator)")
    yield Case((_t(rng, 8, 4, scale=5.0, loc=-3.0),), label="a (8, 4) batch: one mean and std over every entry")
    yield Case((_t(rng, 33, dtype=F32, scale=1e3),), label="float32, large scale", rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("policy_gradients.reinforce_loss", "The REINFORCE surrogate loss with a baseline", cases=_reinforce_cases,
             reference=policy_gradient.reinforce_loss, adapter=input_gradients({0: "logp", 2: "baseline"}),
             judge=gradient_judge(1e-9, 1e-12, hint="the loss is -mean(logp * (returns - baseline)) with the baseline "
                                  "detached: d loss / d logp = -(G - b) / n and d loss / d baseline = 0")),
    Exercise("policy_gradients.gaussian_logprob", "The log-density of a diagonal Gaussian policy", cases=_gauss_cases,
             reference=policy_gradient.gaussian_logprob, adapter=input_gradients({1: "mu", 2: "log_std"}),
             judge=gradient_judge(1e-9, 1e-10, hint="sum over the action axis of -((a - mu) / sigma)^2 / 2 - log_std "
                                  "- log(2 pi) / 2")),
    Exercise("policy_gradients.rewards_to_go", "Rewards-to-go with episode boundaries", cases=_returns_cases,
             reference=advantages.rewards_to_go, rtol=1e-9, atol=1e-12),
    Exercise("policy_gradients.td_errors", "One-step TD errors", cases=_td_cases, reference=advantages.td_errors,
             rtol=1e-9, atol=1e-12),
    Exercise("policy_gradients.gae", "Generalized advantage estimation and the critic's targets", cases=_gae_cases,
             reference=advantages.gae_and_returns, judge=_judge_pair("(adv, returns)")),
    Exercise("policy_gradients.ppo_clip_loss", "PPO's clipped surrogate loss", cases=_ppo_cases,
             reference=ppo.ppo_clip_loss, adapter=input_gradients({0: "logp_new"}),
             judge=gradient_judge(1e-9, 1e-12, hint="minus the mean of min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A), "
                                  "ratio = exp(logp_new - logp_old): a sample clipped on its improving side has zero "
                                  "gradient")),
    Exercise("policy_gradients.approx_kl", "Approximate KL: Schulman's k1 and k3", cases=_kl_cases,
             reference=ppo.approx_kl, properties=[_kl_unbiased], rtol=1e-9, atol=1e-12),
    Exercise("policy_gradients.clip_fraction", "The clip fraction", cases=_clip_cases, reference=ppo.clip_fraction,
             judge=_judge_float("the clip fraction", "the share of ratios with |ratio - 1| > eps, on both sides")),
    Exercise("policy_gradients.entropy", "The entropy of a categorical policy from logits", cases=_entropy_cases,
             reference=ppo.categorical_entropy, rtol=1e-9, atol=1e-12),
    Exercise("policy_gradients.normalize_advantages", "Advantage normalisation", cases=_norm_cases,
             reference=ppo.normalize_advantages, rtol=1e-9, atol=1e-12),
]

"""Checks for chapter v5_rl/04_learning_without_reward_or_interaction (Volume 5, sections 5.10-5.14).

Cases are drawn at grading time from the seeded generator. ``cql_penalty`` and ``kl_balance`` are judged through
their gradients too (for KL balancing the stop-gradients are the point); ``RunningMeanStd`` is driven by a script
of batches and its statistics observed after each; ``imagine`` receives dynamics and a policy that the adapter
builds from the matrices in the case.
"""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare, float_problem
from manifold_course.grading.probes import gradient_judge, input_gradients
from manifold_course.rl import curiosity, decision_transformer, imitation, offline, world_model

CHAPTER = "v5_rl/04_learning_without_reward_or_interaction"
F32, F64 = torch.float32, torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F64, scale: float = 1.0) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape) * scale, dtype=dtype)


# ---------------------------------------------------------------- 5.10 offline RL


def _cql_cases(rng):
    yield Case((_t(rng, 7, 4), torch.as_tensor(rng.integers(0, 4, 7))), label="q (7, 4)")
    yield Case((_t(rng, 1, 3), torch.tensor([2])), label="batch 1")
    yield Case((_t(rng, 5, 1), torch.zeros(5, dtype=torch.long)), label="one action: the penalty is 0")
    yield Case((_t(rng, 6, 5, dtype=F32, scale=300.0), torch.as_tensor(rng.integers(0, 5, 6))),
               label="float32 values in the hundreds: a naive exp overflows (use torch.logsumexp)", rtol=1e-4, atol=1e-3)
    q = _t(rng, 9, 6)
    yield Case((q, q.argmax(-1)), label="the data action is each row's best")


def _cql_judge():
    return gradient_judge(1e-6, 1e-7, hint="d/dq = (softmax(q) - onehot(a)) / N: a log-sum-exp, not a max, averaged "
                          "over the batch")


def _oqi_dataset(rng, S, A, N, terminal_frac=0.2, skip_state=None):
    states = [s for s in range(S) if s != skip_state]
    s = rng.choice(states, N)
    a = rng.integers(0, max(1, A - 1), N)                 # the last action is never logged
    return {"s": s.astype(np.int64), "a": a.astype(np.int64), "r": np.round(rng.uniform(-1, 1, N), 3),
            "s2": rng.integers(0, S, N).astype(np.int64), "done": (rng.random(N) < terminal_frac).astype(np.int64)}


def _oqi_cases(rng):
    yield Case((_oqi_dataset(rng, 4, 3, 20), 4, 3, 0.9, 0.0), {"n_iters": 40}, label="naive (alpha = 0), 4 states")
    yield Case((_oqi_dataset(rng, 5, 3, 25), 5, 3, 0.9, 1.0), {"n_iters": 40}, label="CQL alpha = 1, 5 states")
    yield Case((_oqi_dataset(rng, 6, 4, 30, skip_state=2), 6, 4, 0.8, 0.5), {"n_iters": 30, "lr": 0.3},
               label="state 2 has no logged transition: it keeps q_init")
    yield Case((_oqi_dataset(rng, 3, 2, 8, terminal_frac=0.6), 3, 2, 0.99, 2.0), {"n_iters": 25, "q_init": 0.0},
               label="many terminal transitions (no bootstrap), q_init = 0")
    yield Case((_oqi_dataset(rng, 1, 2, 1, terminal_frac=0.0), 1, 2, 0.5, 0.3), {"n_iters": 10},
               label="one transition")


def _oqi_unseen_lower(fn) -> str | None:
    g = np.random.default_rng(11)
    data = _oqi_dataset(g, 5, 3, 30)
    naive, cql = fn(data, 5, 3, 0.9, 0.0, n_iters=40), fn(data, 5, 3, 0.9, 1.0, n_iters=40)
    if not (isinstance(naive, np.ndarray) and isinstance(cql, np.ndarray)):
        return "return the Q table as a NumPy array (S, A)"
    if np.any(cql[:, 2] > naive[:, 2] + 1e-12):
        return "with alpha > 0 the Q-values of the never-logged action should not exceed the naive ones"
    return None


# ---------------------------------------------------------------- 5.11 Decision Transformer


def _rtg_cases(rng):
    yield Case((np.round(rng.standard_normal(9), 3),), label="one episode of 9 rewards")
    yield Case((np.array([1.0]),), label="one step: the return-to-go is the reward")
    yield Case((np.round(rng.uniform(-1, 0, (3, 6)), 3),), label="a batch (3, 6): along the last axis")
    yield Case((np.array([0.0, 0.0, 0.0, 1.0]),), label="a sparse reward at the end")
    yield Case(([-1, -1, -1, -100, -1],), label="a Python list of ints: float64 out")


def _interleave_cases(rng):
    for B, T, ds, da, label in ((2, 4, 3, 2, "B = 2, T = 4, d_s = 3, d_a = 2"), (1, 1, 2, 3, "one step"),
                                (3, 5, 1, 4, "d_s = 1")):
        yield Case((_t(rng, B, T, dtype=F32), _t(rng, B, T, ds, dtype=F32),
                    torch.nn.functional.one_hot(torch.as_tensor(rng.integers(0, da, (B, T))), da).to(F32)), label=label)


def _judge_interleave(got, expected, case) -> str | None:
    if not (isinstance(got, (tuple, list)) and len(got) == 3):
        return "return a triple (tokens, timesteps, mask)"
    for have, want, where in zip(got, expected, ("tokens (B, 3T, 4 + d_s + d_a): [type one-hot, rtg, state, action]",
                                                 "timesteps (B, 3T) int64: t for the three tokens of step t",
                                                 "mask (3T, 3T) bool: token i may attend to token j <= i")):
        problem = compare(have, want, 0.0, 0.0, where)
        if problem:
            return problem
    return None


def _update_rtg_cases(rng):
    yield Case((float(rng.uniform(-20, 0)), -1.0), label="floats: a step cost of -1 raises the return still to get")
    yield Case((1.0, 1.0), label="a reward of 1 reached: 0 left")
    yield Case((np.round(rng.uniform(0, 5, 4), 3), np.round(rng.uniform(0, 1, 4), 3)), label="NumPy arrays")
    yield Case((_t(rng, 3), _t(rng, 3)), label="torch tensors")


# ---------------------------------------------------------------- 5.12 imitation


def _gail_cases(rng):
    for conv in ("log_d", "neg_log_one_minus_d", "logit"):
        yield Case((_t(rng, 8), conv), label=f"{conv}, torch logits")
        yield Case((torch.tensor([-60.0, 0.0, 60.0], dtype=F32), conv),
                   label=f"{conv}, logits +-60 in float32: log(sigmoid(x)) underflows (use softplus)")
    yield Case((np.round(rng.standard_normal(5), 3), "log_d"), label="NumPy logits: NumPy out")


def _gail_signs(fn) -> str | None:
    x = torch.linspace(-3, 3, 7, dtype=F64)
    ld, nl = fn(x, "log_d"), fn(x, "neg_log_one_minus_d")
    if not (isinstance(ld, torch.Tensor) and isinstance(nl, torch.Tensor)):
        return "return a tensor for tensor logits"
    if torch.any(ld >= 0) or torch.any(nl <= 0):
        return "log D should be negative everywhere and -log(1 - D) positive everywhere"
    if not torch.allclose(fn(x, "logit"), ld + nl, rtol=1e-9, atol=1e-12):
        return "the logit reward should equal log D - log(1 - D) = log_d + neg_log_one_minus_d"
    return None


def _compound_cases(rng):
    yield Case((0.01, 10), label="eps = 0.01, T = 10")
    yield Case((float(np.round(rng.uniform(0.001, 0.1), 4)), int(rng.integers(20, 200))), label="random eps, T")
    yield Case((0.0, 50), label="eps = 0: never off the path")
    yield Case((1.0, 7), label="eps = 1: off from the first step")
    yield Case((0.5, 1), label="T = 1")


# ---------------------------------------------------------------- 5.13 world models


def _symlog_cases(rng):
    yield Case((_t(rng, 11, scale=3.0),), label="values of a few units")
    yield Case((torch.tensor([-1e4, -1.0, 0.0, 1e-6, 1e6], dtype=F64),), label="signs, 0, tiny and huge values")
    yield Case((_t(rng, 4, 5, dtype=F32, scale=100.0),), label="float32 (4, 5)", rtol=1e-5, atol=1e-6)


def _symexp_cases(rng):
    yield Case((_t(rng, 11, scale=2.0),), label="values of a few units")
    yield Case((torch.tensor([-9.0, -1.0, 0.0, 1e-7, 12.0], dtype=F64),), label="signs, 0, tiny, up to e^12")
    yield Case((_t(rng, 3, 4, dtype=F32, scale=3.0),), label="float32 (3, 4)", rtol=1e-5, atol=1e-6)


def _symlog_props(fn) -> str | None:
    x = torch.linspace(-5, 5, 21, dtype=F64)
    y = fn(x)
    if not isinstance(y, torch.Tensor) or not torch.allclose(fn(-x), -y, atol=1e-12):
        return "symlog should be odd: symlog(-x) = -symlog(x)"
    return None


def _kl_cases(rng):
    yield Case((_t(rng, 4, 3, 5, scale=2.0), _t(rng, 4, 3, 5, scale=2.0), 0.5, 0.1, 1.0),
               label="B = 4, 3 latents of 5 classes, DreamerV3's 0.5 / 0.1 / 1 nat")
    p = _t(rng, 6, 2, 4, scale=0.1)
    yield Case((p, p + _t(rng, 6, 2, 4, scale=0.05), 0.5, 0.1, 1.0),
               label="posterior ~ prior: every KL below the free bits (value 0.6, zero gradient)")
    post = _t(rng, 5, 2, 3, scale=2.0)
    post[:2] = 0.0
    yield Case((post, torch.zeros(5, 2, 3, dtype=F64), 0.7, 0.2, 0.5),
               label="a mixed batch: two samples under the free bits, three above")
    yield Case((_t(rng, 3, 4, 6, scale=3.0), _t(rng, 3, 4, 6, scale=3.0), 1.0, 1.0, 0.0),
               label="free_bits = 0 and equal betas: the plain KL, both sides trained")
    yield Case((_t(rng, 1, 1, 2, dtype=F32, scale=3.0), _t(rng, 1, 1, 2, dtype=F32, scale=3.0), 0.5, 0.1, 0.01),
               label="float32, one binary latent", rtol=1e-5, atol=1e-6)


def _imagine_cases(rng):
    for B, dz, da, H, label in ((3, 4, 2, 5, "B = 3, d_z = 4, d_a = 2, H = 5"), (1, 2, 1, 1, "H = 1"),
                                (2, 3, 3, 8, "H = 8")):
        yield Case((_t(rng, dz, dz, scale=0.6), _t(rng, dz, da), _t(rng, da, dz), _t(rng, B, dz), H), label=label)
    yield Case((torch.eye(3, dtype=F64), torch.zeros(3, 2, dtype=F64), torch.zeros(2, 3, dtype=F64),
                _t(rng, 2, 3, scale=0.3), 4), label="identity dynamics, zero policy: the state stays z0")


def _imagine_observe(fn):
    """Adapter: dynamics f(z, a) = tanh(z A^T + a Bd^T) (the linear z A^T + a Bd^T for the identity case) and the
    policy a = tanh(z K^T), built from the case's matrices."""

    def observed(A, Bd, K, z0, H):
        if torch.equal(A, torch.eye(A.shape[0], dtype=A.dtype)) and not Bd.any():
            dynamics = lambda z, a: z @ A.T + a @ Bd.T
        else:
            dynamics = lambda z, a: torch.tanh(z @ A.T + a @ Bd.T)
        policy = lambda z: torch.tanh(z @ K.T)
        out = fn(dynamics, policy, z0.clone(), H)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return {"form": type(out).__name__}
        return {"form": "pair", "states": out[0], "actions": out[1]}

    observed.__name__ = getattr(fn, "__name__", "imagine")
    return observed


def _judge_imagine(got, expected, case) -> str | None:
    if not isinstance(got, dict) or got.get("form") != "pair":
        return "return a pair (states (B, H+1, d_z), actions (B, H, d_a))"
    return (compare(got["states"], expected["states"], 1e-9, 1e-12, "states (B, H+1, d_z): states[:, 0] = z0, then "
                    "z_{t+1} = dynamics(z_t, a_t)")
            or compare(got["actions"], expected["actions"], 1e-9, 1e-12, "actions (B, H, d_a): a_t = policy(z_t)"))


# ---------------------------------------------------------------- 5.14 curiosity


def _coverage_cases(rng):
    v = rng.integers(0, 3, (5, 7))
    yield Case((v,), label="visit counts (5, 7)")
    yield Case((np.zeros(10, dtype=np.int64),), label="never visited: 0")
    yield Case((np.full((3, 3), 17),), label="all visited: 1")
    yield Case(([0, 100, 0, 1],), label="a list: visited once counts as much as a hundred times")


def _rms_cases(rng):
    yield Case(((), [[float(x) for x in np.round(rng.standard_normal(n) * 2 + 1, 3)] for n in (5, 1, 12, 3)]),
               label="scalars: batches of 5, 1, 12 and 3 values")
    yield Case(((2,), [np.round(rng.standard_normal((n, 2)) * [1.0, 10.0] + [0.0, -3.0], 3).tolist() for n in (4, 9)]),
               label="2 features, batches of 4 and 9 rows")
    yield Case(((), [[7.0], [7.0, 7.0]]), label="constant data: variance 0")
    yield Case(((3,), [np.round(rng.standard_normal((n, 3)) + 5 * k, 3).tolist() for k, n in enumerate((2, 30, 1))]),
               label="3 features whose mean shifts between batches (the delta^2 term matters)")


def _rms_observe(cls):
    """Adapter: build ``cls(shape)``, feed each batch to ``update`` and record mean, var and count after each."""

    def observed(shape, batches):
        obj = cls(tuple(shape))
        log = []
        for b in batches:
            obj.update(np.asarray(b, dtype=np.float64))
            log.append({"mean": np.asarray(obj.mean, dtype=np.float64), "var": np.asarray(obj.var, dtype=np.float64),
                        "count": int(obj.count)})
        return log

    observed.__name__ = getattr(cls, "__name__", "RunningMeanStd")
    return observed


def _judge_rms(got, expected, case) -> str | None:
    if not isinstance(got, list) or len(got) != len(expected):
        return "the grader could not observe your RunningMeanStd"
    seen = 0
    for k, (have, want) in enumerate(zip(got, expected)):
        seen += len(case.args[1][k])
        where = f"after update {k + 1} ({seen} values in all)"
        if have["count"] != want["count"]:
            return f"count {where} is {have['count']}, expected {want['count']}"
        problem = (compare(have["mean"], want["mean"], 1e-9, 1e-12, f"the mean {where}")
                   or compare(have["var"], want["var"], 1e-9, 1e-12, f"the (population) variance {where}"))
        if problem:
            return problem + ("; merge with delta = batch mean - mean, M2 = var n + var_b n_b + delta^2 n n_b / (n + n_b)")
    return None


def _judge_float(got, expected, case) -> str | None:
    return float_problem(got, "the result") or compare(float(got), expected, 1e-9, 1e-12, "the result")


# ---------------------------------------------------------------- the list

EXERCISES = [
    Exercise("beyond_reward.cql_penalty", "The CQL penalty", cases=_cql_cases, reference=offline.cql_penalty,
             adapter=input_gradients({0: "q"}), judge=_cql_judge()),
    Exercise("beyond_reward.offline_q_iteration", "Offline Q-iteration, naive and conservative", cases=_oqi_cases,
             reference=offline.offline_q_iteration, properties=[_oqi_unseen_lower], rtol=1e-9, atol=1e-10),
    Exercise("beyond_reward.returns_to_go", "Returns-to-go", cases=_rtg_cases,
             reference=decision_transformer.returns_to_go, rtol=1e-9, atol=1e-12),
    Exercise("beyond_reward.interleave_dt", "The Decision Transformer's token sequence and mask",
             cases=_interleave_cases, reference=decision_transformer.interleave_dt, judge=_judge_interleave),
    Exercise("beyond_reward.update_rtg", "Updating the return-to-go", cases=_update_rtg_cases,
             reference=decision_transformer.update_rtg, rtol=1e-12, atol=0.0),
    Exercise("beyond_reward.gail_reward", "GAIL's reward conventions", cases=_gail_cases,
             reference=imitation.gail_reward, properties=[_gail_signs], rtol=1e-6, atol=1e-7),
    Exercise("beyond_reward.expected_compounding_error", "Compounding errors of behaviour cloning",
             cases=_compound_cases, reference=imitation.expected_compounding_error, judge=_judge_float),
    Exercise("beyond_reward.symlog", "symlog", cases=_symlog_cases, reference=world_model.symlog,
             properties=[_symlog_props], rtol=1e-9, atol=1e-12),
    Exercise("beyond_reward.symexp", "symexp", cases=_symexp_cases, reference=world_model.symexp,
             rtol=1e-9, atol=1e-12),
    Exercise("beyond_reward.kl_balance", "KL balancing with free bits", cases=_kl_cases,
             reference=world_model.kl_balance, adapter=input_gradients({0: "post_logits", 1: "prior_logits"}),
             judge=gradient_judge(1e-7, 1e-9, hint="beta_dyn * max(free_bits, KL[sg(post) || prior]) trains the "
                                  "prior, beta_rep * max(free_bits, KL[post || sg(prior)]) the posterior: clip each KL "
                                  "per sample before weighting, then average over the batch")),
    Exercise("beyond_reward.imagine", "Imagination rollouts", cases=_imagine_cases, reference=world_model.imagine,
             adapter=_imagine_observe, judge=_judge_imagine),
    Exercise("beyond_reward.state_coverage", "State coverage", cases=_coverage_cases,
             reference=curiosity.state_coverage, judge=_judge_float),
    Exercise("beyond_reward.RunningMeanStd", "Running mean and variance over batches", cases=_rms_cases,
             reference=curiosity.RunningMeanStd, adapter=_rms_observe, judge=_judge_rms),
]

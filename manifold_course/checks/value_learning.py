"""Checks for chapter v5_rl/01_mdps_and_value_learning (Volume 5, sections 5.1-5.4).

Cases are drawn at grading time from the seeded generator; transition tables of Gymnasium's FrozenLake and
CliffWalking are read from the installed environments (plain data). Answers with behaviour are observed by adapters
that return plain data: ``q_update`` also by whether it changed its input, ``epsilon_greedy`` by the action counts
of many draws from a generator seeded by the case, ``ReplayBuffer`` by a script of pushes and samples whose
transitions carry their own index (so FIFO order and uniform sampling can be read off), ``soft_update`` by the two
networks' weights afterwards.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.rl import dqn, mdp
from manifold_course.rl.advantages import rewards_to_go

CHAPTER = "v5_rl/01_mdps_and_value_learning"


def _gym_table(name: str, **kw) -> list:
    import gymnasium as gym

    P = gym.make(name, **kw).unwrapped.P
    return [[[[float(p), int(s2), float(r), bool(t)] for p, s2, r, t in P[s][a]] for a in range(len(P[s]))]
            for s in range(len(P))]


def _random_table(rng: np.random.Generator, S: int, A: int, dup: bool = True) -> list:
    """A random table: 1-3 outcomes per (s, a), some terminal, next states repeated (their probabilities add)."""
    table = []
    for _ in range(S):
        row = []
        for _ in range(A):
            k = int(rng.integers(1, 4))
            p = rng.dirichlet(np.ones(k))
            nxt = rng.integers(0, S, k)
            if dup and k > 1:
                nxt[-1] = nxt[0]
            row.append([[float(p[i]), int(nxt[i]), float(np.round(rng.normal(), 3)), bool(rng.random() < 0.2)]
                        for i in range(k)])
        table.append(row)
    return table


def _random_mdp(rng: np.random.Generator, S: int, A: int) -> tuple[np.ndarray, np.ndarray]:
    m = mdp.from_table(_random_table(rng, S, A))
    return m.P, m.R


_LAKES = {}


def _lake(slippery: bool) -> tuple[np.ndarray, np.ndarray]:
    if slippery not in _LAKES:
        m = mdp.from_table(_gym_table("FrozenLake-v1", is_slippery=slippery))
        _LAKES[slippery] = (m.P, m.R)
    return _LAKES[slippery]


def _cliff() -> tuple[np.ndarray, np.ndarray]:
    if "cliff" not in _LAKES:
        m = mdp.from_table(_gym_table("CliffWalking-v1"))
        _LAKES["cliff"] = (m.P, m.R)
    return _LAKES["cliff"]


# ---------------------------------------------------------------- 5.1 returns, the MDP's arrays


def _returns_ref(rewards, gamma, dones=None):
    return rewards_to_go(rewards, np.zeros(len(rewards)) if dones is None else dones, gamma)


def _returns_cases(rng):
    r = np.round(rng.normal(size=9), 3)
    yield Case((r, 0.9), label="9 rewards, no dones (one unfinished episode), gamma = 0.9")
    d = np.zeros(12, dtype=bool)
    d[[3, 7]] = True
    yield Case((np.round(rng.normal(size=12), 3), 0.95, d), label="12 steps, episodes end after steps 3 and 7")
    d = np.zeros(10, dtype=bool)
    d[[0, 9]] = True
    yield Case((rng.uniform(0, 2, 10), 0.8, d), label="a one-step episode first, a done at the very end")
    yield Case((rng.uniform(-1, 1, 7), 0.0, rng.random(7) < 0.3), label="gamma = 0: the returns are the rewards")
    d = rng.random(20) < 0.25
    yield Case((np.ones(20), 1.0, d), label="gamma = 1, reward 1 a step: the steps left in the episode")
    yield Case((np.array([2.5]), 0.99), label="a single reward")
    yield Case((np.round(rng.normal(size=33), 3), 0.99, np.zeros(33, dtype=bool)), label="dones all False (33 steps)")


def _table_ref(table, n_states, n_actions):
    m = mdp.from_table(table)
    return m.P, m.R


def _table_cases(rng):
    yield Case((_gym_table("FrozenLake-v1", is_slippery=False), 16, 4), label="FrozenLake 4x4, not slippery")
    yield Case((_gym_table("FrozenLake-v1", is_slippery=True), 16, 4),
               label="FrozenLake 4x4, slippery (a wall repeats a next state: probabilities add)")
    yield Case((_gym_table("CliffWalking-v1"), 48, 4), label="CliffWalking (the cliff sends you back to the start)")
    for S, A in ((5, 3), (1, 2), (8, 5)):
        yield Case((_random_table(rng, S, A), S, A), label=f"a random table, {S} states, {A} actions, terminal outcomes")


# ---------------------------------------------------------------- 5.2 dynamic programming


def _policy(rng, S, A, deterministic=False):
    if deterministic:
        return np.eye(A)[rng.integers(0, A, S)]
    return rng.dirichlet(np.ones(A), size=S)


def _pe_ref(P, R, pi, gamma):
    return mdp.evaluate_policy_linear(mdp.TabularMDP(P, R), pi, gamma)


def _pe_cases(rng):
    P, R = _lake(True)
    yield Case((P, R, np.full((16, 4), 0.25), 0.9), label="slippery FrozenLake, uniform random policy, gamma = 0.9")
    yield Case((P, R, _policy(rng, 16, 4, True), 0.99), label="slippery FrozenLake, a deterministic policy, gamma = 0.99")
    P, R = _cliff()
    yield Case((P, R, _policy(rng, 48, 4), 0.95), label="CliffWalking, a random stochastic policy, gamma = 0.95")
    for S, A, g in ((7, 3, 0.5), (1, 2, 0.9), (12, 4, float(rng.uniform(0.6, 0.98)))):
        P, R = _random_mdp(rng, S, A)
        yield Case((P, R, _policy(rng, S, A), g), label=f"a random MDP, {S} states, {A} actions, gamma = {g:.3g}")


def _qv_ref(P, R, V, gamma):
    return mdp.q_from_v(mdp.TabularMDP(P, R), V, gamma)


def _qv_cases(rng):
    P, R = _lake(True)
    yield Case((P, R, rng.uniform(0, 1, 16), 0.9), label="slippery FrozenLake, random V, gamma = 0.9")
    P, R = _cliff()
    yield Case((P, R, rng.uniform(-20, 0, 48), 0.8), label="CliffWalking, random V, gamma = 0.8")
    for S, A in ((6, 3), (1, 1), (9, 5)):
        P, R = _random_mdp(rng, S, A)
        yield Case((P, R, rng.normal(size=S), float(rng.uniform(0.1, 0.99))), label=f"a random MDP, {S} x {A}")


def _vi_cases(rng):
    P, R = _lake(True)
    yield Case((P, R, 0.95, 1e-10), label="slippery FrozenLake, gamma = 0.95, tol = 1e-10")
    P, R = _lake(False)
    yield Case((P, R, 0.9, 1e-10), label="FrozenLake not slippery, gamma = 0.9")
    P, R = _cliff()
    yield Case((P, R, 0.9, 1e-9), label="CliffWalking, gamma = 0.9, tol = 1e-9")
    P, R = _random_mdp(rng, 8, 3)
    P, R = np.concatenate([P, P[:, :1]], 1), np.concatenate([R, R[:, :1]], 1)
    yield Case((P, R, 0.8, 1e-10), label="a random MDP whose last action copies the first (tied greedy actions)")
    P, R = _random_mdp(rng, 10, 4)
    yield Case((P, R, 0.5, 1e-12), label="a random MDP, gamma = 0.5, tol = 1e-12")


def _vi_judge(got, expected, case) -> str | None:
    P, R, gamma, tol = case.args
    if not (isinstance(got, (tuple, list)) and len(got) == 2):
        return "return a pair (V, pi)"
    V, pi = got
    S, A = R.shape
    if not isinstance(V, np.ndarray) or V.shape != (S,):
        return f"V should be a numpy array of shape ({S},), got {type(V).__name__} {getattr(V, 'shape', '')}"
    if not isinstance(pi, np.ndarray) or pi.shape != (S, A):
        return f"pi should be a numpy array of shape ({S}, {A}) (one row of action probabilities per state)"
    if not (np.all(np.isfinite(V)) and np.all(np.isfinite(pi))):
        return "V or pi holds NaN or inf"
    q = R + gamma * P @ V
    res = float(np.max(np.abs(q.max(1) - V)))
    if res > tol * (1 + 1e-6):
        return (f"the Bellman residual max_s |max_a (R + gamma P V)(s, a) - V(s)| = {res:.3g} is above tol = {tol:g}: "
                "iterate V <- max_a (R + gamma P V) with the gamma you were given until the change is below tol")
    if np.any(pi < -1e-12) or not np.allclose(pi.sum(1), 1.0, atol=1e-9):
        return "each row of pi should be a probability vector (non-negative, summing to 1)"
    best = q.max(1, keepdims=True)
    off = (pi > 1e-9) & (q < best - 1e-8 * (1 + np.abs(best)))
    if off.any():
        s = int(np.flatnonzero(off.any(1))[0])
        return (f"pi is not greedy with respect to V: in state {s} it takes action {int(np.flatnonzero(off[s])[0])}, whose "
                f"q = R + gamma P V is {q[s][off[s]][0]:.6g}, below the best {best[s, 0]:.6g}")
    V_star = mdp.value_iteration(mdp.TabularMDP(P, R), gamma, tol=1e-13)[0]
    if np.max(np.abs(V - V_star)) > tol / (1 - gamma) + 1e-9:
        return "V is not the optimal value function (check the max over actions)"
    return None


# ---------------------------------------------------------------- 5.3 Q-learning


def _q_update_ref(Q, s, a, r, s2, done, alpha, gamma):
    out = np.array(Q, dtype=np.float64, copy=True)
    target = r if done else r + gamma * out[s2].max()
    out[s, a] += alpha * (target - out[s, a])
    return out


def _observe_q_update(fn):
    def observed(Q, s, a, r, s2, done, alpha, gamma):
        Q_in = Q.copy()
        out = fn(Q_in, s, a, r, s2, done, alpha, gamma)
        return {"Q": out if isinstance(out, np.ndarray) else f"<{type(out).__name__}>",
                "input_changed": bool(not np.array_equal(Q_in, Q))}

    observed.__name__ = getattr(fn, "__name__", "q_update")
    return observed


def _q_update_judge(got, expected, case) -> str | None:
    if not isinstance(got, dict) or "Q" not in got:
        return "the grader could not observe your q_update"
    if got["input_changed"]:
        return "q_update changed the Q you passed in: copy it (Q.copy()), update the copy and return it"
    return compare(got["Q"], expected["Q"], 1e-12, 1e-12, where="the updated Q")


def _q_update_cases(rng):
    def Q(S, A):
        return np.round(rng.normal(size=(S, A)), 3)
    yield Case((Q(5, 3), 1, 2, 0.7, 3, False, 0.5, 0.9), label="an ordinary step: r + gamma max_a' Q(s', a')")
    yield Case((Q(5, 3), 4, 0, -1.0, 2, True, 0.3, 0.99), label="a terminal step: the target is r alone")
    yield Case((Q(4, 4), 2, 1, 1.0, 2, False, 0.1, 0.95), label="s' = s (a self-loop)")
    yield Case((Q(6, 2), 0, 1, 0.25, 5, False, 1.0, 0.0), label="alpha = 1, gamma = 0: Q(s, a) becomes r")
    S, A = 48, 4
    yield Case((Q(S, A), int(rng.integers(S)), int(rng.integers(A)), -1.0, int(rng.integers(S)), False, 0.5, 1.0),
               label="CliffWalking-sized table, gamma = 1")
    yield Case((Q(3, 5), 1, 4, 2.0, 0, True, 0.5, 0.9), label="terminal again, with a large Q(s', .) that must be ignored")


def _eps_probs(q_row, eps):
    q_row = np.asarray(q_row)
    best = q_row == q_row.max()
    return eps / len(q_row) + (1 - eps) * best / best.sum()


def _observe_eps(fn):
    def observed(q_row, eps, seed, n):
        g = np.random.default_rng(seed)
        counts = [0] * len(q_row)
        for _ in range(n):
            a = fn(q_row, eps, g)
            if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)) or not 0 <= a < len(q_row):
                return f"<an action {a!r}: return an int in 0..{len(q_row) - 1}>"
            counts[int(a)] += 1
        return counts

    observed.__name__ = getattr(fn, "__name__", "epsilon_greedy")
    return observed


def _eps_known_good(q_row, eps, rng):
    if rng.random() < eps:
        return int(rng.integers(len(q_row)))
    return int(rng.choice(np.flatnonzero(q_row == q_row.max())))


def _eps_judge(got, expected, case) -> str | None:
    q_row, eps, _, n = case.args
    if isinstance(got, str):
        return got.strip("<>")
    if not isinstance(got, list) or len(got) != len(q_row):
        return "the grader could not count your actions"
    p = _eps_probs(q_row, eps)
    for a, (c, pa) in enumerate(zip(got, p)):
        if pa == 0 and c > 0:
            return f"with eps = {eps} action {a} (not greedy) should never be chosen, but it was {c} times in {n}"
        sd = math.sqrt(n * pa * (1 - pa))
        if abs(c - n * pa) > 6 * sd + 1:
            return (f"q_row = {np.round(q_row, 3).tolist()}, eps = {eps}: action {a} was chosen {c} times in {n} draws, "
                    f"expected about {n * pa:.0f} (probability {pa:.4f} = eps / A{' + (1 - eps) / #ties' if p[a] > eps / len(q_row) else ''}); "
                    "explore uniformly over ALL actions with probability eps, else take a greedy action, breaking ties "
                    "uniformly at random")
    return None


def _eps_cases(rng):
    def seed():
        return int(rng.integers(2**31))
    yield Case((np.round(rng.normal(size=4), 3), 0.1, seed(), 4_000), label="4 actions, eps = 0.1")
    yield Case((np.array([1.0, 3.0, 3.0, 0.0]), 0.2, seed(), 4_000), label="two tied greedy actions: split their share")
    yield Case((np.round(rng.normal(size=6), 3), 0.0, seed(), 1_000), label="eps = 0: always the greedy action")
    yield Case((np.round(rng.normal(size=3), 3), 1.0, seed(), 4_000), label="eps = 1: uniform over all actions")
    yield Case((np.zeros(5), 0.3, seed(), 4_000), label="all tied: uniform whatever eps")
    yield Case((np.array([0.5, -2.0]), 0.5, seed(), 4_000), label="2 actions, eps = 0.5: the greedy one 75% of the time")


# ---------------------------------------------------------------- 5.4 DQN pieces


def _item(i: int, d: int):
    obs = np.array([i + 0.01 * j for j in range(d)], dtype=np.float32)
    return obs, i % 3, float(i), obs + 1000.0, bool(i % 4 == 0)


def _observe_buffer(cls):
    def observed(capacity, d, pushes, samples, seed):
        """Push ``pushes[k]`` more transitions, then ``len`` and ``sample(samples[k], rng)``, for each k."""
        buf, log, i = cls(capacity), [], 0
        g = np.random.default_rng(seed)
        for n_push, n_sample in zip(pushes, samples):
            for _ in range(n_push):
                buf.push(*_item(i, d))
                i += 1
            out = buf.sample(n_sample, g)
            if not (isinstance(out, (tuple, list)) and len(out) == 5):
                return {"error": "sample should return a tuple of 5 arrays (obs, action, reward, next_obs, terminated)"}
            log.append({"len": int(len(buf)), "sample": [np.asarray(x) for x in out]})
        return {"error": None, "log": log}

    observed.__name__ = getattr(cls, "__name__", "ReplayBuffer")
    return observed


def _buffer_judge(got, expected, case) -> str | None:
    capacity, d, pushes, samples, _ = case.args
    if not isinstance(got, dict) or "error" not in got:
        return "the grader could not observe your ReplayBuffer"
    if got["error"]:
        return got["error"]
    total = 0
    for k, (n_push, n_sample, entry) in enumerate(zip(pushes, samples, got["log"])):
        total += n_push
        stored = min(total, capacity)
        if entry["len"] != stored:
            return f"after {total} pushes into a buffer of capacity {capacity}, len(buffer) should be {stored}, got {entry['len']}"
        obs, act, rew, nxt, term = entry["sample"]
        want = {"obs": (n_sample, d), "action": (n_sample,), "reward": (n_sample,), "next_obs": (n_sample, d),
                "terminated": (n_sample,)}
        for name, x in zip(want, (obs, act, rew, nxt, term)):
            if x.shape != want[name]:
                return f"sample({n_sample}) returned {name} of shape {x.shape}, expected {want[name]}"
        ids = np.rint(rew).astype(int)
        lo = total - stored
        if np.any(ids < lo) or np.any(ids >= total):
            bad = int(ids[(ids < lo) | (ids >= total)][0])
            return (f"after {total} pushes into a buffer of capacity {capacity} the stored transitions are numbers "
                    f"{lo}..{total - 1} (FIFO: each push beyond capacity overwrites the oldest), but sample returned "
                    f"transition {bad}")
        ref = [_item(int(i), d) for i in ids]
        if not (np.allclose(obs, [r[0] for r in ref]) and np.array_equal(act, [r[1] for r in ref])
                and np.allclose(nxt, [r[3] for r in ref]) and np.array_equal(term.astype(bool), [r[4] for r in ref])):
            return "sample mixed up fields: the obs, action, next_obs and terminated of a row must come from one transition"
        if n_sample >= 100 * stored:                                    # uniform over what is stored
            counts = np.bincount(ids - lo, minlength=stored)
            p = 1 / stored
            sd = math.sqrt(n_sample * p * (1 - p))
            if np.any(np.abs(counts - n_sample * p) > 6 * sd + 1):
                return (f"sample({n_sample}) from {stored} stored transitions drew some {counts.max()} times and some "
                        f"{counts.min()} times: draw uniformly (rng.integers(0, len(self), n))")
    return None


def _buffer_cases(rng):
    seed = lambda: int(rng.integers(2**31))   # noqa: E731
    yield Case((5, 3, [3, 2, 4, 9], [20, 600, 700, 900], seed()),
               label="capacity 5: partly filled, exactly full, then overwritten (FIFO)")
    yield Case((1, 2, [1, 1, 3], [10, 10, 200], seed()), label="capacity 1: only the newest transition")
    c = int(rng.integers(10, 40))
    yield Case((c, 4, [c // 2, c, 3 * c + 1], [50, 200 * c, 200 * c], seed()), label=f"capacity {c}, obs of size 4")
    yield Case((50, 1, [7], [64], seed()), label="capacity 50, only 7 stored: never sample an empty slot")


def _targets_ref(r, terminated, truncated, q_next_target, gamma):
    return dqn.dqn_targets(r, terminated, q_next_target, gamma)


def _targets_cases(rng):
    def t(*shape, scale=1.0, dtype=torch.float32):
        return torch.as_tensor(rng.normal(size=shape) * scale, dtype=dtype)

    def flags(B, p):
        return torch.as_tensor(rng.random(B) < p)
    B = 16
    yield Case((t(B), flags(B, 0.3), torch.zeros(B, dtype=torch.bool), t(B, 2, scale=10), 0.99),
               label="16 transitions, some terminated, none truncated")
    term = flags(B, 0.3)
    trunc = flags(B, 0.4) & ~term
    yield Case((t(B), term, trunc, t(B, 2, scale=10), 0.99),
               label="some truncated (the time limit): they still bootstrap")
    yield Case((t(1), torch.tensor([True]), torch.tensor([True]), t(1, 4), 0.9), label="batch 1, terminated and truncated at once")
    yield Case((t(9, dtype=torch.float64), flags(9, 0.5), flags(9, 0.5), t(9, 6, dtype=torch.float64), 0.5),
               label="float64, 6 actions, gamma = 0.5")
    yield Case((t(7), torch.zeros(7, dtype=torch.bool), torch.zeros(7, dtype=torch.bool), t(7, 3) - 50, 1.0),
               label="gamma = 1, all Q' negative (the max, not the max of |Q'|)")


class _Net(torch.nn.Module):
    def __init__(self, d_in: int, h: int, d_out: int):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(d_in, h), torch.nn.Linear(h, d_out)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def _observe_soft_update(fn):
    def observed(sizes, target_state, online_state, tau):
        target, online = _Net(*sizes), _Net(*sizes)
        target.load_state_dict({k: v.clone() for k, v in target_state.items()})
        online.load_state_dict({k: v.clone() for k, v in online_state.items()})
        fn(target, online, tau)
        return {"target": {k: v.detach().clone() for k, v in target.state_dict().items()},
                "online": {k: v.detach().clone() for k, v in online.state_dict().items()}}

    observed.__name__ = getattr(fn, "__name__", "soft_update")
    return observed


def _soft_update_judge(got, expected, case) -> str | None:
    sizes, t0, o0, tau = case.args
    if not isinstance(got, dict) or "target" not in got:
        return "the grader could not observe your networks"
    for k, v in o0.items():
        if not torch.equal(got["online"][k], v):
            return f"soft_update changed the online network ({k}): only the target may change"
    for k, v in t0.items():
        want = tau * o0[k] + (1 - tau) * v
        problem = compare(got["target"][k], want, 1e-5, 1e-6, where=f"the target's {k}")
        if problem:
            return problem + f" (tau = {tau}: target <- tau * online + (1 - tau) * target, in place)"
    return None


def _soft_update_cases(rng):
    def state(d_in, h, d_out):
        return {k: torch.as_tensor(rng.normal(size=s), dtype=torch.float32) for k, s in
                (("fc1.weight", (h, d_in)), ("fc1.bias", (h,)), ("fc2.weight", (d_out, h)), ("fc2.bias", (d_out,)))}
    for sizes, tau, label in (((4, 8, 2), 0.005, "tau = 0.005 (a typical Polyak rate)"),
                              ((3, 5, 3), 1.0, "tau = 1: a hard copy"),
                              ((3, 5, 3), 0.0, "tau = 0: the target stays"),
                              ((2, 6, 4), 0.3, "tau = 0.3"),
                              ((5, 3, 1), 0.9, "tau = 0.9")):
        yield Case((sizes, state(*sizes), state(*sizes), tau), label=label)


EXERCISES = [
    Exercise("value_learning.discounted_returns", "Discounted returns with episode ends", cases=_returns_cases,
             reference=_returns_ref, rtol=1e-10, atol=1e-12),
    Exercise("value_learning.mdp_from_table", "The arrays (P, R) of a transition table", cases=_table_cases,
             reference=_table_ref, rtol=1e-10, atol=1e-12),
    Exercise("value_learning.policy_evaluation", "Policy evaluation by one linear solve", cases=_pe_cases,
             reference=_pe_ref, rtol=1e-8, atol=1e-8),
    Exercise("value_learning.q_from_v", "Action values from state values", cases=_qv_cases, reference=_qv_ref,
             rtol=1e-10, atol=1e-12),
    Exercise("value_learning.value_iteration", "Value iteration and a greedy optimal policy", cases=_vi_cases,
             judge=_vi_judge, known_good=lambda P, R, gamma, tol: mdp.value_iteration(mdp.TabularMDP(P, R), gamma, tol)[:2]),
    Exercise("value_learning.q_update", "One Q-learning update", cases=_q_update_cases, reference=_q_update_ref,
             adapter=_observe_q_update, judge=_q_update_judge),
    Exercise("value_learning.epsilon_greedy", "Epsilon-greedy action selection", cases=_eps_cases,
             known_good=_eps_known_good, adapter=_observe_eps, judge=_eps_judge),
    Exercise("value_learning.ReplayBuffer", "A FIFO replay buffer", cases=_buffer_cases, known_good=dqn.ReplayBuffer,
             adapter=_observe_buffer, judge=_buffer_judge),
    Exercise("value_learning.dqn_targets", "DQN targets: terminated, not truncated", cases=_targets_cases,
             reference=_targets_ref, rtol=1e-6, atol=1e-6),
    Exercise("value_learning.soft_update", "Polyak (soft) target update", cases=_soft_update_cases,
             known_good=dqn.soft_update, adapter=_observe_soft_update, judge=_soft_update_judge),
]

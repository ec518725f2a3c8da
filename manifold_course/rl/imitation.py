r"""Imitation learning: behaviour cloning, its compounding errors, and a GAIL-lite (section 5.12).

**Behaviour cloning** (BC) is supervised learning of the expert's action from the expert's state,
$\min_\pi -\mathbb E_{(s,a)\sim\pi_E}\log\pi(a\mid s)$; tabularly the minimiser is the empirical action frequency of
each demonstrated state, and a state the demonstrations never reached gets whatever the classifier defaults to.
Its errors compound: a learner that leaves the expert's states with probability $\varepsilon$ per step and cannot
return makes, over a horizon $T$, on average $\sum_{t=1}^T\big(1-(1-\varepsilon)^t\big)\approx\varepsilon T^2/2$
off-path steps (for $\varepsilon T \ll 1$): quadratic in $T$, not linear (S. Ross, G. Gordon, J. A. Bagnell, "A
Reduction of Imitation Learning and Structured Prediction to No-Regret Online Learning" (DAgger), 2011,
arXiv:1011.0686).

**GAIL** (J. Ho, S. Ermon, "Generative Adversarial Imitation Learning", 2016, arXiv:1606.03476) instead lets the
learner act in the environment (without its reward): a discriminator $D(s,a)$ learns to tell expert pairs
($D\to1$ here) from the learner's, and its opinion is the learner's reward. Conventions (with $\ell$ the
discriminator's logit, $D = \sigma(\ell)$ the probability "expert"): $\log D = -\mathrm{softplus}(-\ell)$ (always
$<0$: a survival penalty, ends episodes early), $-\log(1-D) = \mathrm{softplus}(\ell)$ (always $>0$: a survival
bonus) and $\ell = \log D - \log(1-D)$ (no sign bias; for the optimal discriminator it is
$\log\rho_E(s,a)/\rho_\pi(s,a)$, and maximising it matches occupancies).

The **GAIL-lite** here is tabular and exact: the learner's discounted occupancy $\rho_\pi$ and its $Q$-values under
the discriminator's reward are computed from the environment's transition table (standing in for the rollouts that
TRPO/PPO would sample), the discriminator is a logistic regression on one-hot $(s, a)$ trained to its optimum
(which for one-hot features is $\ell = \log\rho_E - \log\rho_\pi$, smoothed by a small constant), and the policy takes
natural-gradient (soft policy iteration) steps $\log\pi \leftarrow \log\pi + \eta\,(Q - V)$. The expert enters
only through its demonstrations; the true reward never.
"""

from __future__ import annotations

import numpy as np

from gymnasium.envs.toy_text.cliffwalking import CliffWalkingEnv

from manifold_course.rl.mdp import TabularMDP, policy_matrices
from manifold_course.seeding import course_seed, numpy_rng


class GustyCliffWalking(CliffWalkingEnv):
    """Gymnasium's CliffWalking (4 x 12, start bottom left, goal bottom right, -1 a step, the cliff between them costs
    -100 and sends the agent back to the start) where a gust of probability ``gust`` turns a move into one of the
    two perpendicular moves (``gust / 2`` each). ``gust = 0`` is ``CliffWalking-v1``; ``gust = 2/3`` is its
    ``is_slippery=True`` version (every direction 1/3). Rare gusts make the demonstrations of an expert a thin path
    that the learner is still pushed off now and then."""

    def __init__(self, gust: float = 0.05, render_mode: str | None = None):
        super().__init__(render_mode=render_mode, is_slippery=False)
        if not 0.0 <= gust <= 1.0:
            raise ValueError(f"gust is a probability, got {gust}")
        self.gust = gust
        still = {s: {a: list(outs) for a, outs in acts.items()} for s, acts in self.P.items()}
        for s, acts in still.items():
            for a in acts:
                mixed: dict[tuple, float] = {}
                for b, w in ((a, 1.0 - gust), ((a - 1) % 4, gust / 2), ((a + 1) % 4, gust / 2)):
                    for p, s_next, r, term in still[s][b]:
                        if w * p > 0:
                            mixed[(s_next, r, term)] = mixed.get((s_next, r, term), 0.0) + w * p
                self.P[s][a] = [(p, s_next, r, term) for (s_next, r, term), p in mixed.items()]


def return_to_demonstrations(table, pi: np.ndarray, demonstrated, fail_reward: float = -100.0):
    """From every state, under the policy ``pi`` (S, A) on a toy-text ``table`` (``env.unwrapped.P``): the expected
    number of steps until the agent stands on a ``demonstrated`` state again (or falls, or the episode ends), and the
    probability that a transition with reward ``<= fail_reward`` (the cliff) comes first. Both are 0 on the
    demonstrated states themselves; a state from which the policy never gets back has ``inf`` steps. Returns
    ``(steps, p_fail)``, arrays of shape (S,)."""
    S = len(table)
    target = set(int(s) for s in demonstrated)
    Q = np.zeros((S, S))
    fail = np.zeros(S)
    for s in range(S):
        if s in target:
            continue
        for a in range(pi.shape[1]):
            for p, s_next, r, term in table[s][a]:
                w = pi[s, a] * p
                if r <= fail_reward:
                    fail[s] += w
                elif not term and int(s_next) not in target:
                    Q[s, int(s_next)] += w
    # states from which the walk can end (reach a target, fall, terminate); from the others it never returns
    leaves = Q.sum(1) < 1.0 - 1e-12
    while True:
        more = leaves | (Q[:, leaves].sum(1) > 0)
        if (more == leaves).all():
            break
        leaves = more
    steps = np.full(S, np.inf)
    p_fail = np.zeros(S)
    idx = np.flatnonzero(leaves)
    lhs = np.eye(len(idx)) - Q[np.ix_(idx, idx)]
    steps[idx] = np.linalg.solve(lhs, (~np.isin(idx, list(target))).astype(float))
    p_fail[idx] = np.linalg.solve(lhs, fail[idx])
    return steps, p_fail


def compounding_error(eps: float, T: int, n: int, seed: int = 0) -> float:
    """Monte-Carlo mean number of off-path steps in ``n`` episodes of length ``T``: each step on the path is left
    with probability ``eps`` (the step counts as off-path), and once off the learner never returns."""
    rng = numpy_rng(seed)
    first = rng.geometric(eps, size=n) if eps > 0 else np.full(n, T + 1)   # the step at which it leaves (1-based)
    return float(np.clip(T - first + 1, 0, None).mean())


def expected_compounding_error(eps: float, T: int) -> float:
    r"""$\sum_{t=1}^T \big(1 - (1-\varepsilon)^t\big)$, the expectation of :func:`compounding_error`."""
    t = np.arange(1, T + 1)
    return float((1.0 - (1.0 - eps) ** t).sum())


def gail_reward(d_logits, convention: str = "logit"):
    """The learner's reward from discriminator logits (D = sigmoid(logit) = probability "expert"): ``"log_d"``,
    ``"neg_log_one_minus_d"`` or ``"logit"`` (module docstring). Works on NumPy arrays and torch tensors."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(d_logits)
    if convention == "log_d":
        out = -F.softplus(-x)
    elif convention == "neg_log_one_minus_d":
        out = F.softplus(x)
    elif convention == "logit":
        out = x.clone()
    else:
        raise ValueError(f"unknown convention {convention!r}")
    return out if isinstance(d_logits, torch.Tensor) else out.numpy()


def demonstrations(env, pi: np.ndarray, episodes: int, seed: int = 0, max_steps: int = 200) -> list[list[tuple]]:
    """``episodes`` trajectories [(s, a), ...] of the policy ``pi`` (S, A) on a discrete Gymnasium ``env``."""
    rng = numpy_rng(seed)
    demos = []
    for ep in range(episodes):
        s, _ = env.reset(seed=course_seed(seed) * 1009 + ep)
        traj = []
        for _ in range(max_steps):
            a = int(rng.choice(pi.shape[1], p=pi[s]))
            traj.append((int(s), a))
            s, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                break
        demos.append(traj)
    return demos


def behaviour_cloning(demos, n_states: int, n_actions: int) -> np.ndarray:
    """The tabular cross-entropy minimiser: each demonstrated state's empirical action frequencies; a state never
    demonstrated gets the untrained classifier's answer, a uniform distribution."""
    counts = np.zeros((n_states, n_actions))
    for traj in demos:
        for s, a in traj:
            counts[s, a] += 1
    seen = counts.sum(1, keepdims=True)
    return np.where(seen > 0, counts / np.maximum(seen, 1), 1.0 / n_actions)


def occupancy(mdp: TabularMDP, pi: np.ndarray, start: np.ndarray, gamma: float) -> np.ndarray:
    r"""Discounted state-action occupancy $\rho_\pi(s,a) = \pi(a|s)\sum_t\gamma^t\Pr(s_t = s)$, shape (S, A)."""
    P_pi, _ = policy_matrices(mdp, pi)
    d = np.linalg.solve((np.eye(mdp.n_states) - gamma * P_pi).T, start)
    return d[:, None] * pi


def demo_occupancy(demos, n_states: int, n_actions: int, gamma: float) -> np.ndarray:
    """The empirical discounted occupancy of the demonstrations, averaged over episodes."""
    rho = np.zeros((n_states, n_actions))
    for traj in demos:
        for t, (s, a) in enumerate(traj):
            rho[s, a] += gamma**t
    return rho / len(demos)


def gail_lite(mdp: TabularMDP, demos, start: np.ndarray, gamma: float = 0.95, iters: int = 150,
              policy_lr: float = 0.5, smooth: float = 1e-4) -> np.ndarray:
    """Tabular GAIL with the ``"logit"`` reward (module docstring); returns the learned policy (S, A). ``start`` is
    the initial-state distribution (S,); the occupancies are normalised to sum to 1."""
    S, A = mdp.n_states, mdp.n_actions
    rho_e = demo_occupancy(demos, S, A, gamma)
    rho_e = rho_e / rho_e.sum()
    logits = np.zeros((S, A))
    w = np.zeros((S, A))
    for _ in range(iters):
        pi = np.exp(logits - logits.max(1, keepdims=True))
        pi /= pi.sum(1, keepdims=True)
        rho = occupancy(mdp, pi, start, gamma)
        rho = rho / rho.sum()
        w = np.log(rho_e + smooth) - np.log(rho + smooth)  # the logistic discriminator's optimum
        r = w                                           # the "logit" reward
        v = np.linalg.solve(np.eye(S) - gamma * policy_matrices(mdp, pi)[0], (pi * r).sum(1))
        q = r + gamma * mdp.P @ v
        logits = logits + policy_lr * (q - v[:, None])
    pi = np.exp(logits - logits.max(1, keepdims=True))
    return pi / pi.sum(1, keepdims=True)

r"""Proximal Policy Optimization (Volume 5, section 5.7; the same objective as Volume 2's RLHF section).

PPO (Schulman et al., "Proximal Policy Optimization Algorithms", 2017, arXiv:1707.06347) reuses one batch of on-policy
data for several epochs of minibatch steps. The probability ratio $\rho_t = \pi_\theta(a_t|s_t)/\pi_{old}(a_t|s_t)$
of the new policy to the one that collected the data is clipped, so that no sample pulls the policy further than
$1\pm\epsilon$ on the side that would improve the surrogate:

$$L^{CLIP}(\theta) = \mathbb E_t\big[\min\big(\rho_t\hat A_t,\ \mathrm{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\hat A_t\big)\big].$$

It is a first-order method inspired by TRPO (Schulman et al. 2015, arXiv:1502.05477), which solves a KL-constrained
(natural-gradient, trust-region) problem; PPO has no explicit constraint, so one *monitors* the KL between the old and
new policies with Schulman's estimators ("Approximating KL Divergence", 2020) from samples $a\sim\pi_{old}$,
$\log\rho = \log\pi_\theta(a) - \log\pi_{old}(a)$: $k_1 = -\log\rho$ (unbiased, can be negative) and
$k_3 = (\rho - 1) - \log\rho$ (unbiased and $\ge 0$). The *clip fraction* is the share of samples with
$|\rho - 1| > \epsilon$.

:func:`train_ppo` is a small PPO for a discrete-action Gymnasium task on a synchronous vector environment, after
CleanRL's ``ppo.py`` (Huang et al., "The 37 Implementation Details of Proximal Policy Optimization", ICLR blog track
2022; Huang et al., "CleanRL", 2022, arXiv:2111.08819): separate actor and critic MLPs with tanh and orthogonal
initialisation, GAE(lambda) advantages normalised per minibatch, an entropy bonus, gradient clipping, Adam with the
learning rate annealed linearly to 0. With ``clip_eps=None`` it optimises the unclipped surrogate $\rho\hat A$ on
the same schedule: a vanilla policy gradient that reuses its batch the same way, for comparison.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from manifold_course.rl.advantages import gae_and_returns
from manifold_course.seeding import course_seed, manual_seed, torch_generator


def ppo_clip_objective(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                       clip_eps: float = 0.2) -> torch.Tensor:
    r"""PPO's clipped surrogate (to maximise): mean of $\min(\rho A, \mathrm{clip}(\rho, 1-\epsilon, 1+\epsilon)A)$."""
    ratio = torch.exp(logp_new - logp_old)
    return torch.minimum(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages).mean()


def ppo_clip_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    """The loss to minimise: minus :func:`ppo_clip_objective`. A sample whose ratio is already past $1+\\epsilon$ with
    $A>0$ (or below $1-\\epsilon$ with $A<0$) contributes a constant: zero gradient."""
    return -ppo_clip_objective(logp_new, logp_old, adv, eps)


def approx_kl(logp_old: torch.Tensor, logp_new: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    r"""Monte-Carlo estimate of $\mathrm{KL}(\pi_{old}\|\pi_{new})$ from actions sampled from $\pi_{old}$:
    the mean of $k_1 = -\log\rho$ or $k_3 = (\rho-1) - \log\rho$, $\rho = \pi_{new}/\pi_{old}$."""
    log_ratio = logp_new - logp_old
    if kind == "k1":
        return (-log_ratio).mean()
    if kind == "k3":
        return (torch.expm1(log_ratio) - log_ratio).mean()
    raise ValueError(f"kind must be 'k1' or 'k3', not {kind!r}")


def clip_fraction(ratio: torch.Tensor, eps: float) -> float:
    r"""The share of samples whose ratio lies outside $[1-\epsilon, 1+\epsilon]$."""
    return float(((ratio - 1.0).abs() > eps).double().mean())


def categorical_entropy(logits: torch.Tensor) -> torch.Tensor:
    r"""$H[\pi] = -\sum_a \pi(a)\log\pi(a)$ of ``softmax(logits)`` over the last axis (nats; $0\log 0 = 0$)."""
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)


def normalize_advantages(adv: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    r"""$(\hat A - \mathrm{mean}) / (\mathrm{std} + \epsilon)$ with torch's default (n - 1) standard deviation."""
    return (adv - adv.mean()) / (adv.std() + eps)


def mlp(n_in: int, n_out: int, hidden: int = 64, out_gain: float = 1.0) -> nn.Sequential:
    """Two tanh hidden layers, orthogonal weights (gain sqrt 2, ``out_gain`` on the last layer), zero biases."""
    net = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_out))
    for layer, gain in zip(net[::2], (math.sqrt(2), math.sqrt(2), out_gain)):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return net


@dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters; the defaults are CleanRL's for CartPole except ``num_envs``, ``num_steps``, ``minibatches``
    and ``lr`` (CleanRL: 4, 128, 4, 2.5e-4). ``epochs=1, minibatches=1, clip_eps=None`` is A2C."""

    env_id: str = "CartPole-v1"
    num_envs: int = 8
    num_steps: int = 64                 # per environment per rollout: a batch of num_envs * num_steps transitions
    lr: float = 1e-3
    anneal_lr: bool = True
    epochs: int = 4
    minibatches: int = 2
    gamma: float = 0.99
    lam: float = 0.95
    clip_eps: float | None = 0.2        # None: the unclipped surrogate (a vanilla policy gradient)
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    hidden: int = 64
    total_steps: int = 100_000
    target: float | None = None         # stop at the first greedy evaluation >= target (None: train to the end)
    eval_episodes: int = 10
    eval_every: int = 1                 # greedy evaluation every this many iterations (0: only after the last one)


@dataclass
class PPOResult:
    """``history``: one dict per iteration (steps, seconds, train_return, greedy, approx_kl_k1, approx_kl_k3,
    clip_frac, entropy); ``steps_to_target``/``seconds_to_target``: when the greedy evaluation first reached the
    target (None if it did not)."""

    actor: nn.Module
    critic: nn.Module
    history: list[dict] = field(default_factory=list)
    steps_to_target: int | None = None
    seconds_to_target: float | None = None


def make_vec_env(env_id: str, num_envs: int):
    """A synchronous vector environment that resets a finished sub-environment within the same step
    (``AutoresetMode.SAME_STEP``: the last observation of an episode is in ``info["final_obs"]``). Gymnasium is
    imported here, not at the top, so that Volume 2 can import :func:`ppo_clip_objective` without it."""
    import gymnasium as gym

    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})


@torch.no_grad()
def greedy_return(actor: nn.Module, env_id: str, episodes: int, seed: int) -> float:
    """Mean undiscounted return of the greedy policy (argmax of the logits) over ``episodes`` episodes."""
    import gymnasium as gym

    env = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="sync")
    obs, _ = env.reset(seed=[course_seed(seed) + k for k in range(episodes)])
    total, alive = np.zeros(episodes), np.ones(episodes, dtype=bool)
    while alive.any():
        a = actor(torch.as_tensor(obs, dtype=torch.float32)).argmax(-1).numpy()
        obs, r, term, trunc, _ = env.step(a)
        total += r * alive
        alive &= ~(term | trunc)
    env.close()
    return float(total.mean())


def train_ppo(cfg: PPOConfig, seed: int = 0) -> PPOResult:
    """Train with PPO (or the vanilla surrogate, ``cfg.clip_eps=None``); seeded through :mod:`manifold_course.seeding`."""
    env = make_vec_env(cfg.env_id, cfg.num_envs)
    n_obs, n_act = env.single_observation_space.shape[0], int(env.single_action_space.n)
    manual_seed(seed)
    actor, critic = mlp(n_obs, n_act, cfg.hidden, 0.01), mlp(n_obs, 1, cfg.hidden, 1.0)
    params = list(actor.parameters()) + list(critic.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, eps=1e-5, fused=True)
    gen = torch_generator(seed)
    T, N = cfg.num_steps, cfg.num_envs
    iterations = cfg.total_steps // (T * N)
    obs_buf = torch.zeros(T, N, n_obs)
    act_buf = torch.zeros(T, N, dtype=torch.long)
    rew_buf, done_buf = np.zeros((T, N)), np.zeros((T, N))
    obs, _ = env.reset(seed=course_seed(seed))
    obs = torch.as_tensor(obs, dtype=torch.float32)
    ep_ret, finished = np.zeros(N), []
    result = PPOResult(actor, critic)
    start, steps = time.perf_counter(), 0
    for it in range(iterations):
        if cfg.anneal_lr:
            opt.param_groups[0]["lr"] = cfg.lr * (1.0 - it / iterations)
        for t in range(T):                                             # ---- collect a rollout
            with torch.no_grad():
                cdf = torch.softmax(actor(obs), -1).cumsum(-1)
                u = torch.rand(N, 1, generator=gen)
                a = (cdf < u).sum(-1).clamp_max(n_act - 1)             # inverse-CDF sampling of a ~ pi(.|s)
            obs_buf[t], act_buf[t] = obs, a
            nxt, r, term, trunc, info = env.step(a.numpy())
            r = np.asarray(r, dtype=np.float64)
            ep_ret += r
            if trunc.any():                                            # a time limit is not a terminal state:
                with torch.no_grad():                                  # bootstrap from the last observation
                    for i in np.flatnonzero(trunc & ~term):
                        last = torch.as_tensor(info["final_obs"][i], dtype=torch.float32)
                        r[i] += cfg.gamma * float(critic(last))
            done = term | trunc
            finished += list(ep_ret[done])
            ep_ret[done] = 0.0
            rew_buf[t], done_buf[t] = r, done
            obs = torch.as_tensor(nxt, dtype=torch.float32)
        steps += T * N
        with torch.no_grad():                                          # log-probs and values of the whole batch
            logp_buf = torch.log_softmax(actor(obs_buf), -1).gather(-1, act_buf[..., None]).squeeze(-1)
            val_buf = critic(obs_buf).squeeze(-1).numpy()
            last_value = critic(obs).squeeze(-1).numpy()
        adv, ret = gae_and_returns(rew_buf, val_buf, done_buf, cfg.gamma, cfg.lam, last_value)
        b_obs, b_act, b_logp = obs_buf.reshape(T * N, -1), act_buf.reshape(-1), logp_buf.reshape(-1)
        b_adv = torch.as_tensor(adv, dtype=torch.float32).reshape(-1)
        b_ret = torch.as_tensor(ret, dtype=torch.float32).reshape(-1)
        logs = {"k1": [], "k3": [], "clip": [], "ent": []}
        mb = T * N // cfg.minibatches
        for _ in range(cfg.epochs):                                    # ---- several epochs of minibatch steps
            perm = torch.randperm(T * N, generator=gen)
            for k in range(cfg.minibatches):
                idx = perm[k * mb:(k + 1) * mb]
                logits = actor(b_obs[idx])
                logp = torch.log_softmax(logits, -1).gather(-1, b_act[idx, None]).squeeze(-1)
                A = normalize_advantages(b_adv[idx]) if cfg.norm_adv else b_adv[idx]
                if cfg.clip_eps is None:
                    pg_loss = -(torch.exp(logp - b_logp[idx]) * A).mean()
                else:
                    pg_loss = ppo_clip_loss(logp, b_logp[idx], A, cfg.clip_eps)
                ent = categorical_entropy(logits).mean()
                v_loss = 0.5 * (critic(b_obs[idx]).squeeze(-1) - b_ret[idx]).pow(2).mean()
                loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                opt.step()
                with torch.no_grad():
                    logs["k1"].append(float(approx_kl(b_logp[idx], logp, "k1")))
                    logs["k3"].append(float(approx_kl(b_logp[idx], logp, "k3")))
                    logs["clip"].append(clip_fraction(torch.exp(logp - b_logp[idx]), cfg.clip_eps or 0.2))
                    logs["ent"].append(float(ent))
        due = it == iterations - 1 or (cfg.eval_every > 0 and (it + 1) % cfg.eval_every == 0)
        greedy = greedy_return(actor, cfg.env_id, cfg.eval_episodes, seed * 1000 + it + 1) if due else float("nan")
        seconds = time.perf_counter() - start
        result.history.append({"steps": steps, "seconds": seconds, "greedy": greedy,
                               "train_return": float(np.mean(finished)) if finished else float("nan"),
                               "approx_kl_k1": float(np.mean(logs["k1"])), "approx_kl_k3": float(np.mean(logs["k3"])),
                               "clip_frac": float(np.mean(logs["clip"])), "entropy": float(np.mean(logs["ent"]))})
        finished = []
        if cfg.target is not None and greedy >= cfg.target:
            result.steps_to_target, result.seconds_to_target = steps, seconds
            break
    env.close()
    return result

"""Plausible wrong answers to the exercises of v5_rl/04_learning_without_reward_or_interaction; each check must
reject them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- cql_penalty


def cql_max(q, data_actions):
    # a hard max instead of the log-sum-exp
    return (q.max(-1).values - q.gather(-1, data_actions[:, None])[:, 0]).mean()


def cql_sum(q, data_actions):
    return (torch.logsumexp(q, -1) - q.gather(-1, data_actions[:, None])[:, 0]).sum()


def cql_naive_exp(q, data_actions):
    return (torch.log(torch.exp(q).sum(-1)) - q.gather(-1, data_actions[:, None])[:, 0]).mean()


def cql_detached_data_term(q, data_actions):
    # the data action's Q is not pushed up
    return (torch.logsumexp(q, -1) - q.detach().gather(-1, data_actions[:, None])[:, 0]).mean()


# ---------------------------------------------------------------- offline_q_iteration


def _oqi(dataset, n_states, n_actions, gamma, alpha, n_iters=300, lr=0.5, q_init=1.0, *, use_done=True,
         per_state=True, hard=False):
    s, a, r, s2, done = (np.asarray(dataset[k]) for k in ("s", "a", "r", "s2", "done"))
    r = r.astype(float)
    n_s = np.bincount(s, minlength=n_states).astype(float)
    scale = (np.where(n_s > 0, 1 / np.maximum(n_s, 1), 0.0) if per_state else np.full(n_states, 1 / len(s)))[:, None]
    Q = np.full((n_states, n_actions), float(q_init))
    for _ in range(n_iters):
        y = r + gamma * ((1 - done) if use_done else 1.0) * Q[s2].max(1)
        g = np.zeros_like(Q)
        np.add.at(g, (s, a), Q[s, a] - y)
        if alpha:
            if hard:
                soft = np.eye(n_actions)[Q[s].argmax(1)]
            else:
                z = np.exp(Q[s] - Q[s].max(1, keepdims=True))
                soft = z / z.sum(1, keepdims=True)
            np.add.at(g, s, alpha * soft)
            np.add.at(g, (s, a), -alpha)
        Q = Q - lr * scale * g
    return Q


def oqi_bootstraps_terminal(dataset, n_states, n_actions, gamma, alpha, n_iters=300, lr=0.5, q_init=1.0):
    return _oqi(dataset, n_states, n_actions, gamma, alpha, n_iters, lr, q_init, use_done=False)


def oqi_divides_by_n(dataset, n_states, n_actions, gamma, alpha, n_iters=300, lr=0.5, q_init=1.0):
    return _oqi(dataset, n_states, n_actions, gamma, alpha, n_iters, lr, q_init, per_state=False)


def oqi_max_penalty(dataset, n_states, n_actions, gamma, alpha, n_iters=300, lr=0.5, q_init=1.0):
    return _oqi(dataset, n_states, n_actions, gamma, alpha, n_iters, lr, q_init, hard=True)


# ---------------------------------------------------------------- returns_to_go / update_rtg


def rtg_off_by_one(rewards):
    # excludes the current reward: sum over t' > t
    r = np.asarray(rewards, dtype=np.float64)
    total = np.flip(np.cumsum(np.flip(r, -1), -1), -1)
    return total - r


def rtg_forward(rewards):
    return np.cumsum(np.asarray(rewards, dtype=np.float64), -1)


def update_rtg_adds(rtg, r):
    return rtg + r


# ---------------------------------------------------------------- interleave_dt


def _interleave(rtg, states, actions, order=(0, 1, 2), shift=0, full=False, timesteps_as_index=False):
    B, T = rtg.shape
    ds, da = states.shape[-1], actions.shape[-1]
    tok = torch.zeros(B, T, 3, 4 + ds + da, dtype=states.dtype)
    parts = [torch.zeros(B, T, 4 + ds + da, dtype=states.dtype) for _ in range(3)]
    parts[0][..., 0], parts[0][..., 3] = 1.0, rtg
    parts[1][..., 1], parts[1][..., 4:4 + ds] = 1.0, states
    parts[2][..., 2], parts[2][..., 4 + ds:] = 1.0, actions
    for k, o in enumerate(order):
        tok[:, :, k] = parts[o]
    i, j = torch.arange(3 * T)[:, None], torch.arange(3 * T)[None, :]
    mask = torch.ones(3 * T, 3 * T, dtype=torch.bool) if full else j <= i + shift
    ts = torch.arange(3 * T) if timesteps_as_index else torch.arange(T).repeat_interleave(3)
    return tok.reshape(B, 3 * T, -1), ts.expand(B, 3 * T).clone(), mask


def interleave_peeks_at_action(rtg, states, actions):
    # j <= i + 1: the state token s_t (which predicts a_t) sees a_t itself
    return _interleave(rtg, states, actions, shift=1)


def interleave_no_mask(rtg, states, actions):
    return _interleave(rtg, states, actions, full=True)


def interleave_state_first(rtg, states, actions):
    return _interleave(rtg, states, actions, order=(1, 0, 2))


def interleave_token_positions(rtg, states, actions):
    return _interleave(rtg, states, actions, timesteps_as_index=True)


# ---------------------------------------------------------------- gail_reward


def gail_swapped(d_logits, convention="logit"):
    x = torch.as_tensor(d_logits)
    out = {"log_d": F.softplus(x), "neg_log_one_minus_d": -F.softplus(-x), "logit": x.clone()}[convention]
    return out if isinstance(d_logits, torch.Tensor) else out.numpy()


def gail_naive_log(d_logits, convention="logit"):
    x = torch.as_tensor(d_logits)
    D = torch.sigmoid(x)
    out = {"log_d": torch.log(D), "neg_log_one_minus_d": -torch.log(1 - D), "logit": torch.log(D) - torch.log(1 - D)}[convention]
    return out if isinstance(d_logits, torch.Tensor) else out.numpy()


# ---------------------------------------------------------------- expected_compounding_error


def compounding_linear(eps, T):
    return float(eps * T)


def compounding_from_zero(eps, T):
    # starts counting at t = 0: one step short
    return float(sum(1 - (1 - eps) ** t for t in range(T)))


# ---------------------------------------------------------------- symlog / symexp


def symlog_no_sign(x):
    return torch.log1p(torch.abs(x))


def symlog_log(x):
    return torch.sign(x) * torch.log(torch.abs(x) + 1e-8)


def symexp_no_sign(y):
    return torch.expm1(torch.abs(y))


def symexp_exp(y):
    return torch.sign(y) * torch.exp(torch.abs(y))


# ---------------------------------------------------------------- kl_balance


def _kl(p, q):
    lp, lq = F.log_softmax(p, -1), F.log_softmax(q, -1)
    return (lp.exp() * (lp - lq)).sum((-2, -1))


def kl_swapped_stop_gradients(post_logits, prior_logits, beta_dyn=0.5, beta_rep=0.1, free_bits=1.0):
    dyn = _kl(post_logits, prior_logits.detach())
    rep = _kl(post_logits.detach(), prior_logits)
    return (beta_dyn * dyn.clamp(min=free_bits) + beta_rep * rep.clamp(min=free_bits)).mean()


def kl_free_bits_after_betas(post_logits, prior_logits, beta_dyn=0.5, beta_rep=0.1, free_bits=1.0):
    dyn = _kl(post_logits.detach(), prior_logits)
    rep = _kl(post_logits, prior_logits.detach())
    return ((beta_dyn * dyn).clamp(min=free_bits) + (beta_rep * rep).clamp(min=free_bits)).mean()


def kl_free_bits_on_batch_mean(post_logits, prior_logits, beta_dyn=0.5, beta_rep=0.1, free_bits=1.0):
    dyn = _kl(post_logits.detach(), prior_logits).mean()
    rep = _kl(post_logits, prior_logits.detach()).mean()
    return beta_dyn * dyn.clamp(min=free_bits) + beta_rep * rep.clamp(min=free_bits)


def kl_reversed_direction(post_logits, prior_logits, beta_dyn=0.5, beta_rep=0.1, free_bits=1.0):
    dyn = _kl(prior_logits, post_logits.detach())
    rep = _kl(prior_logits.detach(), post_logits)
    return (beta_dyn * dyn.clamp(min=free_bits) + beta_rep * rep.clamp(min=free_bits)).mean()


# ---------------------------------------------------------------- imagine


def imagine_one_short(dynamics, policy, z0, H):
    zs, acts, z = [z0], [], z0
    for _ in range(H - 1):
        a = policy(z)
        z = dynamics(z, a)
        zs.append(z)
        acts.append(a)
    zs.append(z)
    acts.append(policy(z))
    return torch.stack(zs, 1), torch.stack(acts, 1)


def imagine_from_z0(dynamics, policy, z0, H):
    # never feeds its own prediction back: every step starts again from z0
    zs, acts = [z0], []
    for _ in range(H):
        a = policy(z0)
        zs.append(dynamics(z0, a))
        acts.append(a)
    return torch.stack(zs, 1), torch.stack(acts, 1)


def imagine_late_action(dynamics, policy, z0, H):
    zs, acts, z = [z0], [], z0
    a = torch.zeros_like(policy(z0))
    for _ in range(H):
        z = dynamics(z, a)
        a = policy(z)
        zs.append(z)
        acts.append(a)
    return torch.stack(zs, 1), torch.stack(acts, 1)


# ---------------------------------------------------------------- state_coverage


def coverage_visit_fraction(visits):
    v = np.asarray(visits, dtype=float)
    return float(v.max() / v.sum()) if v.sum() else 0.0


def coverage_count(visits):
    return int((np.asarray(visits) > 0).sum())


# ---------------------------------------------------------------- RunningMeanStd


class RMSMeanOfMeans:
    # averages the batch means with equal weights: biased when batches differ in size
    def __init__(self, shape=()):
        self.mean, self.var, self.count, self._k = np.zeros(shape), np.ones(shape), 0, 0

    def update(self, x):
        x = np.asarray(x, dtype=float)
        self._k += 1
        self.mean = self.mean + (x.mean(0) - self.mean) / self._k
        self.var = self.var + (x.var(0) - self.var) / self._k
        self.count += len(x)


class RMSNoDeltaTerm:
    # forgets the spread between the batch means (the delta^2 n n_b / n' term)
    def __init__(self, shape=()):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 0

    def update(self, x):
        x = np.asarray(x, dtype=float)
        nb, n = len(x), self.count
        tot = n + nb
        self.mean = self.mean + (x.mean(0) - self.mean) * nb / tot
        self.var = (self.var * n + x.var(0) * nb) / tot
        self.count = tot


class RMSSampleVariance:
    # ddof = 1 within each batch
    def __init__(self, shape=()):
        self.mean, self.var, self.count = np.zeros(shape), np.ones(shape), 0

    def update(self, x):
        x = np.asarray(x, dtype=float)
        nb, n = len(x), self.count
        tot = n + nb
        d = x.mean(0) - self.mean
        vb = x.var(0, ddof=1) if nb > 1 else np.zeros_like(self.mean)
        self.mean = self.mean + d * nb / tot
        self.var = (self.var * n + vb * nb + d**2 * n * nb / tot) / tot
        self.count = tot


WRONG = {
    "beyond_reward.cql_penalty": [cql_max, cql_sum, cql_naive_exp, cql_detached_data_term],
    "beyond_reward.offline_q_iteration": [oqi_bootstraps_terminal, oqi_divides_by_n, oqi_max_penalty],
    "beyond_reward.returns_to_go": [rtg_off_by_one, rtg_forward],
    "beyond_reward.interleave_dt": [interleave_peeks_at_action, interleave_no_mask, interleave_state_first,
                                    interleave_token_positions],
    "beyond_reward.update_rtg": [update_rtg_adds],
    "beyond_reward.gail_reward": [gail_swapped, gail_naive_log],
    "beyond_reward.expected_compounding_error": [compounding_linear, compounding_from_zero],
    "beyond_reward.symlog": [symlog_no_sign, symlog_log],
    "beyond_reward.symexp": [symexp_no_sign, symexp_exp],
    "beyond_reward.kl_balance": [kl_swapped_stop_gradients, kl_free_bits_after_betas, kl_free_bits_on_batch_mean,
                                 kl_reversed_direction],
    "beyond_reward.imagine": [imagine_one_short, imagine_from_z0, imagine_late_action],
    "beyond_reward.state_coverage": [coverage_visit_fraction, coverage_count],
    "beyond_reward.RunningMeanStd": [RMSMeanOfMeans, RMSNoDeltaTerm, RMSSampleVariance],
}

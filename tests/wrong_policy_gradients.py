"""Plausible wrong answers to the exercises of v5_rl/02_policy_gradients; each check must reject them."""

from __future__ import annotations

import math

import numpy as np
import torch

# ---------------------------------------------------------------- reinforce_loss


def reinforce_baseline_not_detached(logp, returns, baseline=None):
    # the baseline receives a gradient: a critic trained through the actor's loss
    w = returns if baseline is None else returns - baseline
    return -(logp * w).mean()


def reinforce_plus_sign(logp, returns, baseline=None):
    w = returns if baseline is None else returns - baseline.detach()
    return (logp * w).mean()


def reinforce_sum(logp, returns, baseline=None):
    w = returns if baseline is None else returns - baseline.detach()
    return -(logp * w).sum()


def reinforce_ignores_baseline(logp, returns, baseline=None):
    return -(logp * returns).mean()


# ---------------------------------------------------------------- gaussian_logprob


def gauss_no_log_std(a, mu, log_std):
    z = (a - mu) * torch.exp(-log_std)
    return (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)


def gauss_no_two_pi(a, mu, log_std):
    z = (a - mu) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std).sum(-1)


def gauss_variance_as_std(a, mu, log_std):
    # divides by sigma^2 inside the square
    z = (a - mu) * torch.exp(-2 * log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def gauss_no_sum(a, mu, log_std):
    z = (a - mu) * torch.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * math.log(2 * math.pi)).mean(-1)


# ---------------------------------------------------------------- rewards_to_go


def returns_off_by_one(rewards, dones, gamma, last_value=0.0):
    # G_t starts with the next reward: r_{t+1} + gamma r_{t+2} + ...
    r, d = np.asarray(rewards, float), np.asarray(dones, float)
    out = np.empty_like(r)
    g = np.zeros_like(r[0]) + last_value
    for t in range(len(r) - 1, -1, -1):
        out[t] = gamma * (1 - d[t]) * g
        g = r[t] + gamma * (1 - d[t]) * g
    return out


def returns_through_dones(rewards, dones, gamma, last_value=0.0):
    r = np.asarray(rewards, float)
    out = np.empty_like(r)
    g = np.zeros_like(r[0]) + last_value
    for t in range(len(r) - 1, -1, -1):
        g = r[t] + gamma * g
        out[t] = g
    return out


def returns_no_bootstrap(rewards, dones, gamma, last_value=0.0):
    r, d = np.asarray(rewards, float), np.asarray(dones, float)
    out = np.empty_like(r)
    g = np.zeros_like(r[0])
    for t in range(len(r) - 1, -1, -1):
        g = r[t] + gamma * (1 - d[t]) * g
        out[t] = g
    return out


# ---------------------------------------------------------------- td_errors


def _next_values(values, last_value):
    v = np.asarray(values, float)
    return np.concatenate([v[1:], (np.zeros_like(v[:1]) + last_value)], axis=0)


def td_through_dones(rewards, values, dones, gamma, last_value=0.0):
    return np.asarray(rewards, float) + gamma * _next_values(values, last_value) - np.asarray(values, float)


def td_off_by_one(rewards, values, dones, gamma, last_value=0.0):
    # V(s_t) where V(s_{t+1}) belongs
    v = np.asarray(values, float)
    return np.asarray(rewards, float) + gamma * (1 - np.asarray(dones, float)) * v - v


def td_ignores_last_value(rewards, values, dones, gamma, last_value=0.0):
    return td_through_dones(rewards, values, np.asarray(dones, float), gamma, 0.0) - \
        gamma * np.asarray(dones, float) * _next_values(values, 0.0)


# ---------------------------------------------------------------- gae


def _gae(rewards, values, dones, gamma, lam, last_value, cut_trace=True, cut_delta=True):
    r, v, d = np.asarray(rewards, float), np.asarray(values, float), np.asarray(dones, float)
    vn = _next_values(v, last_value)
    adv = np.empty_like(r)
    a = np.zeros_like(r[0])
    for t in range(len(r) - 1, -1, -1):
        delta = r[t] + gamma * (1 - d[t] if cut_delta else 1.0) * vn[t] - v[t]
        a = delta + gamma * lam * (1 - d[t] if cut_trace else 1.0) * a
        adv[t] = a
    return adv


def gae_through_dones(rewards, values, dones, gamma, lam, last_value=0.0):
    adv = _gae(rewards, values, dones, gamma, lam, last_value, cut_trace=False, cut_delta=False)
    return adv, adv + np.asarray(values, float)


def gae_trace_not_cut(rewards, values, dones, gamma, lam, last_value=0.0):
    # delta_t stops at the boundary but the sum of deltas runs into the next episode
    adv = _gae(rewards, values, dones, gamma, lam, last_value, cut_trace=False)
    return adv, adv + np.asarray(values, float)


def gae_returns_are_adv(rewards, values, dones, gamma, lam, last_value=0.0):
    adv = _gae(rewards, values, dones, gamma, lam, last_value)
    return adv, adv


def gae_returns_off_by_one(rewards, values, dones, gamma, lam, last_value=0.0):
    adv = _gae(rewards, values, dones, gamma, lam, last_value)
    return adv, adv + _next_values(values, last_value)


def gae_lambda_ignored(rewards, values, dones, gamma, lam, last_value=0.0):
    adv = _gae(rewards, values, dones, gamma, 1.0, last_value)
    return adv, adv + np.asarray(values, float)


# ---------------------------------------------------------------- ppo_clip_loss


def ppo_max_instead_of_min(logp_new, logp_old, adv, eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    return -torch.maximum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv).mean()


def ppo_clip_advantage(logp_new, logp_old, adv, eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    return -torch.minimum(ratio * adv, ratio * adv.clamp(1 - eps, 1 + eps)).mean()


def ppo_not_negated(logp_new, logp_old, adv, eps=0.2):
    ratio = torch.exp(logp_new - logp_old)
    return torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv).mean()


def ppo_clip_only(logp_new, logp_old, adv, eps=0.2):
    # drops the unclipped term: no gradient outside the range on either side
    ratio = torch.exp(logp_new - logp_old)
    return -(ratio.clamp(1 - eps, 1 + eps) * adv).mean()


def ppo_ratio_inverted(logp_new, logp_old, adv, eps=0.2):
    ratio = torch.exp(logp_old - logp_new)
    return -torch.minimum(ratio * adv, ratio.clamp(1 - eps, 1 + eps) * adv).mean()


# ---------------------------------------------------------------- approx_kl


def kl_k3_ratio_inverted(logp_old, logp_new, kind="k3"):
    lr = logp_old - logp_new                         # log(pi_old / pi_new): the ratio upside down
    return (-lr).mean() if kind == "k1" else (torch.exp(lr) - 1 - lr).mean()


def kl_k1_wrong_sign(logp_old, logp_new, kind="k3"):
    lr = logp_new - logp_old
    return lr.mean() if kind == "k1" else (torch.exp(lr) - 1 - lr).mean()


def kl_k3_is_k2(logp_old, logp_new, kind="k3"):
    lr = logp_new - logp_old
    return (-lr).mean() if kind == "k1" else (0.5 * lr**2).mean()


# ---------------------------------------------------------------- clip_fraction


def clip_fraction_one_sided(ratio, eps):
    return float((ratio > 1 + eps).double().mean())


def clip_fraction_count(ratio, eps):
    return float(((ratio - 1).abs() > eps).sum())


def clip_fraction_log_ratio(ratio, eps):
    return float((torch.log(ratio).abs() > eps).double().mean())


# ---------------------------------------------------------------- entropy


def entropy_softmax_then_log(logits):
    p = torch.softmax(logits, -1)
    return -(p * torch.log(p)).sum(-1)


def entropy_bits(logits):
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1) / math.log(2)


def entropy_mean_over_actions(logits):
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    return -torch.where(p > 0, p * logp, torch.zeros_like(p)).mean(-1)


# ---------------------------------------------------------------- normalize_advantages


def norm_missing(adv):
    return adv.clone()


def norm_centre_only(adv):
    return adv - adv.mean()


def norm_population_std(adv):
    return (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)


def norm_no_eps(adv):
    return (adv - adv.mean()) / adv.std()


def norm_per_column(adv):
    return (adv - adv.mean(0)) / (adv.std(0) + 1e-8)


WRONG = {
    "policy_gradients.reinforce_loss": [reinforce_baseline_not_detached, reinforce_plus_sign, reinforce_sum,
                                        reinforce_ignores_baseline],
    "policy_gradients.gaussian_logprob": [gauss_no_log_std, gauss_no_two_pi, gauss_variance_as_std, gauss_no_sum],
    "policy_gradients.rewards_to_go": [returns_off_by_one, returns_through_dones, returns_no_bootstrap],
    "policy_gradients.td_errors": [td_through_dones, td_off_by_one, td_ignores_last_value],
    "policy_gradients.gae": [gae_through_dones, gae_trace_not_cut, gae_returns_are_adv, gae_returns_off_by_one,
                             gae_lambda_ignored],
    "policy_gradients.ppo_clip_loss": [ppo_max_instead_of_min, ppo_clip_advantage, ppo_not_negated, ppo_clip_only,
                                       ppo_ratio_inverted],
    "policy_gradients.approx_kl": [kl_k3_ratio_inverted, kl_k1_wrong_sign, kl_k3_is_k2],
    "policy_gradients.clip_fraction": [clip_fraction_one_sided, clip_fraction_count, clip_fraction_log_ratio],
    "policy_gradients.entropy": [entropy_softmax_then_log, entropy_bits, entropy_mean_over_actions],
    "policy_gradients.normalize_advantages": [norm_missing, norm_centre_only, norm_population_std, norm_no_eps,
                                              norm_per_column],
}

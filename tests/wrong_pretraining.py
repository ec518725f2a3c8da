"""Plausible wrong answers to the exercises of v2_llm/02_pretraining_dynamics; each check must reject them."""

from __future__ import annotations

import math

import numpy as np
import torch

# ---------------------------------------------------------------- training_flops


def flops_forward_only(N, D):
    # 2 N D counts the forward pass only; the backward pass costs twice as much again
    return 2.0 * N * D


def flops_forgot_tokens(N, D):
    return 6.0 * N


# ---------------------------------------------------------------- fit_power_law


def power_slope_sign(N, L):
    # returns the slope itself: alpha comes out negative
    slope, intercept = np.polyfit(np.log(N), np.log(L), 1)
    return float(math.exp(intercept)), float(slope)


def power_linear_in_L(N, L):
    # regresses L (not log L) on log N
    slope, intercept = np.polyfit(np.log(N), np.asarray(L, dtype=float), 1)
    return float(intercept), float(-slope)


def power_intercept_not_exponentiated(N, L):
    slope, intercept = np.polyfit(np.log(N), np.log(L), 1)
    return float(intercept), float(-slope)


def power_first_last_points(N, L):
    # a line through the first and last points instead of least squares over all of them
    N, L = np.asarray(N, dtype=float), np.asarray(L, dtype=float)
    alpha = -math.log(L[-1] / L[0]) / math.log(N[-1] / N[0])
    return float(L[0] * N[0] ** alpha), float(alpha)


# ---------------------------------------------------------------- chinchilla_optimal


def chinchilla_swapped_exponents(C, A, B, E, alpha, beta):
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return G * (C / 6) ** (alpha / (alpha + beta)), (C / 6) ** (beta / (alpha + beta)) / G


def chinchilla_forgot_six(C, A, B, E, alpha, beta):
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return G * C ** (beta / (alpha + beta)), C ** (alpha / (alpha + beta)) / G


def chinchilla_twenty_tokens(C, A, B, E, alpha, beta):
    # the rule of thumb D = 20 N on the budget: not the optimum of the fit
    N = math.sqrt(C / 120)
    return N, 20 * N


# ---------------------------------------------------------------- top_k_gating


def gating_not_renormalised(logits, k):
    # full softmax gathered at the top-k: the weights do not sum to 1
    probs = torch.softmax(logits, -1)
    w, idx = torch.topk(probs, k, -1)
    return w, idx


def gating_smallest(logits, k):
    vals, idx = torch.topk(logits, k, -1, largest=False)
    return torch.softmax(vals, -1), idx


def gating_index_order(logits, k):
    # sorts the chosen experts by index instead of by score
    vals, idx = torch.topk(logits, k, -1)
    idx, order = idx.sort(-1)
    return torch.softmax(vals.gather(-1, order), -1), idx


def gating_naive_exp(logits, k):
    # exp without subtracting the max overflows for large logits
    vals, idx = torch.topk(logits, k, -1)
    e = torch.exp(vals)
    return e / e.sum(-1, keepdim=True), idx


# ---------------------------------------------------------------- load_balancing_loss


def balance_counts_over_tokens_only(router_probs, expert_index, n_experts):
    # divides the counts by T, not T k: equals k at perfect balance
    idx = expert_index.reshape(expert_index.shape[0], -1)
    f = torch.nn.functional.one_hot(idx, n_experts).sum((0, 1)).to(router_probs.dtype) / idx.shape[0]
    return n_experts * (f * router_probs.mean(0)).sum()


def balance_no_n_experts(router_probs, expert_index, n_experts):
    idx = expert_index.reshape(expert_index.shape[0], -1)
    f = torch.nn.functional.one_hot(idx, n_experts).sum((0, 1)).to(router_probs.dtype) / idx.numel()
    return (f * router_probs.mean(0)).sum()


def balance_p_squared(router_probs, expert_index, n_experts):
    # uses P for f as well: differentiable, but not the Switch loss
    P = router_probs.mean(0)
    return n_experts * (P * P).sum()


def balance_item(router_probs, expert_index, n_experts):
    # right value, but .item() cuts the gradient to the router
    idx = expert_index.reshape(expert_index.shape[0], -1)
    f = torch.nn.functional.one_hot(idx, n_experts).sum((0, 1)).to(router_probs.dtype) / idx.numel()
    return torch.tensor((n_experts * (f * router_probs.mean(0)).sum()).item(), dtype=router_probs.dtype)


# ---------------------------------------------------------------- ntk_rope_base


def ntk_like_pi(base, scale, head_dim):
    return base * scale


def ntk_precedence(base, scale, head_dim):
    # scale ** head_dim / (head_dim - 2): a missing pair of brackets
    return base * scale ** head_dim / (head_dim - 2)


def ntk_divides(base, scale, head_dim):
    return base / scale ** (head_dim / (head_dim - 2))


# ---------------------------------------------------------------- sliding_window_mask


def window_off_by_one(T, w):
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    return (i - j >= 0) & (i - j <= w)


def window_not_causal(T, w):
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    return (i - j).abs() < w


def window_transposed(T, w):
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    return (j - i >= 0) & (j - i < w)


def window_float(T, w):
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    return ((i - j >= 0) & (i - j < w)).float()


# ---------------------------------------------------------------- turning_angles


def angles_between_states(traj):
    # angles between the states h_l, h_{l+1} instead of between the updates
    a, b = traj[..., :-1, :], traj[..., 1:, :]
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.arccos(cos.clamp(-1, 1))


def angles_in_degrees(traj):
    d = traj[..., 1:, :] - traj[..., :-1, :]
    a, b = d[..., :-1, :], d[..., 1:, :]
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))


def angles_no_normalisation(traj):
    d = traj[..., 1:, :] - traj[..., :-1, :]
    cos = (d[..., :-1, :] * d[..., 1:, :]).sum(-1)
    return torch.arccos(cos.clamp(-1, 1))


# ---------------------------------------------------------------- length_to_chord


def chord_over_length(traj):
    d = traj[..., 1:, :] - traj[..., :-1, :]
    return (traj[..., -1, :] - traj[..., 0, :]).norm(dim=-1) / d.norm(dim=-1).sum(-1)


def length_of_squared_steps(traj):
    d = traj[..., 1:, :] - traj[..., :-1, :]
    return d.pow(2).sum(-1).sum(-1) / (traj[..., -1, :] - traj[..., 0, :]).pow(2).sum(-1)


def chord_from_origin(traj):
    # ||h_L|| instead of ||h_L - h_0||
    d = traj[..., 1:, :] - traj[..., :-1, :]
    return d.norm(dim=-1).sum(-1) / traj[..., -1, :].norm(dim=-1)


WRONG = {
    "pretraining.training_flops": [flops_forward_only, flops_forgot_tokens],
    "pretraining.fit_power_law": [power_slope_sign, power_linear_in_L, power_intercept_not_exponentiated,
                                  power_first_last_points],
    "pretraining.chinchilla_optimal": [chinchilla_swapped_exponents, chinchilla_forgot_six, chinchilla_twenty_tokens],
    "pretraining.top_k_gating": [gating_not_renormalised, gating_smallest, gating_index_order, gating_naive_exp],
    "pretraining.load_balancing_loss": [balance_counts_over_tokens_only, balance_no_n_experts, balance_p_squared,
                                        balance_item],
    "pretraining.ntk_rope_base": [ntk_like_pi, ntk_precedence, ntk_divides],
    "pretraining.sliding_window_mask": [window_off_by_one, window_not_causal, window_transposed, window_float],
    "pretraining.turning_angles": [angles_between_states, angles_in_degrees, angles_no_normalisation],
    "pretraining.length_to_chord": [chord_over_length, length_of_squared_steps, chord_from_origin],
}

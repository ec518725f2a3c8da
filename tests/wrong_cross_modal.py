"""Plausible wrong answers to the exercises of v3_generative/03_cross_modal_3d_and_tokenizers; each check must reject them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- cross_attention


def _scores(x, ctx, Wq, Wk):
    return (x @ Wq) @ (ctx @ Wk).transpose(-1, -2) / math.sqrt(Wq.shape[1])


def xattn_mask_after_softmax(x, ctx, Wq, Wk, Wv, ctx_mask=None):
    # zeroes the padding weights after the softmax: the real tokens no longer sum to 1
    attn = torch.softmax(_scores(x, ctx, Wq, Wk), -1)
    if ctx_mask is not None:
        attn = attn * ctx_mask[:, None, :]
    return attn @ (ctx @ Wv), attn


def xattn_softmax_over_queries(x, ctx, Wq, Wk, Wv, ctx_mask=None):
    s = _scores(x, ctx, Wq, Wk)
    if ctx_mask is not None:
        s = s.masked_fill(~ctx_mask[:, None, :], float("-inf"))
    attn = torch.softmax(s, 1)
    return attn @ (ctx @ Wv), attn


def xattn_mask_ignored(x, ctx, Wq, Wk, Wv, ctx_mask=None):
    attn = torch.softmax(_scores(x, ctx, Wq, Wk), -1)
    return attn @ (ctx @ Wv), attn


def xattn_scale_by_dv(x, ctx, Wq, Wk, Wv, ctx_mask=None):
    # divides by sqrt(d_v) instead of sqrt(d)
    s = (x @ Wq) @ (ctx @ Wk).transpose(-1, -2) / math.sqrt(Wv.shape[1])
    if ctx_mask is not None:
        s = s.masked_fill(~ctx_mask[:, None, :], float("-inf"))
    attn = torch.softmax(s, -1)
    return attn @ (ctx @ Wv), attn


def xattn_naive_exp(x, ctx, Wq, Wk, Wv, ctx_mask=None):
    # exp / sum without subtracting the max: overflows in float32
    e = torch.exp(_scores(x, ctx, Wq, Wk))
    if ctx_mask is not None:
        e = e * ctx_mask[:, None, :]
    attn = e / e.sum(-1, keepdim=True)
    return attn @ (ctx @ Wv), attn


# ---------------------------------------------------------------- token_attention_maps


def maps_no_transpose(attn, H, W):
    return attn.reshape(attn.shape[0], attn.shape[2], H, W)


def maps_column_major(attn, H, W):
    return attn.transpose(1, 2).reshape(attn.shape[0], attn.shape[2], W, H).transpose(2, 3)


# ---------------------------------------------------------------- transmittance


def trans_inclusive(sigmas, deltas):
    # includes the current sample: T_i = exp(-sum_{j <= i})
    return torch.exp(-torch.cumsum(sigmas * deltas, -1))


def trans_no_delta(sigmas, deltas):
    s = sigmas
    return torch.exp(-torch.cat([torch.zeros_like(s[..., :1]), torch.cumsum(s, -1)[..., :-1]], -1))


def trans_wrong_axis(sigmas, deltas):
    sd = sigmas * deltas
    return torch.exp(-torch.cat([torch.zeros_like(sd[:1]), torch.cumsum(sd, 0)[:-1]], 0))


# ---------------------------------------------------------------- volume_render


def _T(sigmas, deltas):
    sd = sigmas * deltas
    return torch.exp(-torch.cat([torch.zeros_like(sd[..., :1]), torch.cumsum(sd, -1)[..., :-1]], -1))


def render_alpha_linear(sigmas, colors, deltas):
    # alpha = sigma * delta without the exponential
    w = _T(sigmas, deltas) * sigmas * deltas
    return (w[..., None] * colors).sum(-2), w


def render_inclusive_T(sigmas, colors, deltas):
    w = torch.exp(-torch.cumsum(sigmas * deltas, -1)) * (1 - torch.exp(-sigmas * deltas))
    return (w[..., None] * colors).sum(-2), w


def render_no_T(sigmas, colors, deltas):
    w = 1 - torch.exp(-sigmas * deltas)
    return (w[..., None] * colors).sum(-2), w


def render_normalised(sigmas, colors, deltas):
    # renormalises the weights to sum to 1 (a white/black background is not the same as "no opacity")
    w = _T(sigmas, deltas) * (1 - torch.exp(-sigmas * deltas))
    w = w / w.sum(-1, keepdim=True).clamp_min(1e-12)
    return (w[..., None] * colors).sum(-2), w


# ---------------------------------------------------------------- splat_2d


def _alpha(means, covs, opacities, grid, inverse=True):
    d = grid[:, None, :] - means[None]
    P = torch.linalg.inv(covs) if inverse else covs
    return opacities * torch.exp(-0.5 * torch.einsum("pgi,gij,pgj->pg", d, P, d))


def splat_additive(means, covs, colors, opacities, grid):
    # sums the splats instead of compositing them
    return _alpha(means, covs, opacities, grid) @ colors


def splat_back_to_front(means, covs, colors, opacities, grid):
    a = _alpha(means, covs, opacities, grid).flip(1)
    T = torch.cumprod(torch.cat([torch.ones_like(a[:, :1]), 1 - a[:, :-1]], 1), 1)
    return (T * a) @ colors.flip(0)


def splat_cov_not_inverted(means, covs, colors, opacities, grid):
    a = _alpha(means, covs, opacities, grid, inverse=False)
    T = torch.cumprod(torch.cat([torch.ones_like(a[:, :1]), 1 - a[:, :-1]], 1), 1)
    return (T * a) @ colors


def splat_inclusive_T(means, covs, colors, opacities, grid):
    a = _alpha(means, covs, opacities, grid)
    return (torch.cumprod(1 - a, 1) * a) @ colors


# ---------------------------------------------------------------- sds_grad


def _xt(x, ab, eps):
    return math.sqrt(ab) * x + math.sqrt(1 - ab) * eps


def sds_sign_flipped(eps_fn, x, alpha_bar, eps, w):
    return w * (eps - eps_fn(_xt(x, alpha_bar, eps), alpha_bar))


def sds_not_noised(eps_fn, x, alpha_bar, eps, w):
    return w * (eps_fn(x, alpha_bar) - eps)


def sds_no_sqrt(eps_fn, x, alpha_bar, eps, w):
    return w * (eps_fn(alpha_bar * x + (1 - alpha_bar) * eps, alpha_bar) - eps)


def sds_no_weight(eps_fn, x, alpha_bar, eps, w):
    return eps_fn(_xt(x, alpha_bar, eps), alpha_bar) - eps


# ---------------------------------------------------------------- vector_quantize


def _nearest(z_e, codebook):
    flat = z_e.reshape(-1, z_e.shape[-1])
    return torch.cdist(flat, codebook).argmin(-1).reshape(z_e.shape[:-1])


def vq_no_ste(z_e, codebook):
    # returns the code itself: the encoder gets no gradient, the codebook gets the decoder's
    idx = _nearest(z_e, codebook)
    return codebook[idx], idx


def vq_forgot_detach(z_e, codebook):
    # z_e + (e - z_e) without the stop-gradient: equal in value, but the gradient goes to the codebook, not z_e
    idx = _nearest(z_e, codebook)
    return z_e + (codebook[idx] - z_e), idx


def vq_detached(z_e, codebook):
    idx = _nearest(z_e, codebook)
    return codebook[idx].detach(), idx


def vq_farthest(z_e, codebook):
    flat = z_e.reshape(-1, z_e.shape[-1])
    idx = torch.cdist(flat, codebook).argmax(-1).reshape(z_e.shape[:-1])
    return z_e + (codebook[idx] - z_e).detach(), idx


def vq_dot_product(z_e, codebook):
    # the largest dot product is not the nearest code unless all codes have the same norm
    idx = (z_e @ codebook.T).argmax(-1)
    return z_e + (codebook[idx] - z_e).detach(), idx


# ---------------------------------------------------------------- vq_losses


def losses_no_stop_grad(z_e, e, beta):
    return F.mse_loss(e, z_e), beta * F.mse_loss(z_e, e)


def losses_stop_grad_swapped(z_e, e, beta):
    return F.mse_loss(e.detach(), z_e), beta * F.mse_loss(z_e.detach(), e)


def losses_beta_on_codebook(z_e, e, beta):
    return beta * F.mse_loss(e, z_e.detach()), F.mse_loss(z_e, e.detach())


def losses_sum(z_e, e, beta):
    return ((e - z_e.detach()) ** 2).sum(), beta * ((z_e - e.detach()) ** 2).sum()


# ---------------------------------------------------------------- codebook_perplexity


def _p(idx, K):
    p = torch.bincount(idx.reshape(-1), minlength=K).double() / idx.numel()
    return p[p > 0]


def perp_log2_then_exp(idx, K):
    # entropy in bits, exponentiated with e
    p = _p(idx, K)
    return float(torch.exp(-(p * torch.log2(p)).sum()))


def perp_nats_then_pow2(idx, K):
    p = _p(idx, K)
    return float(2 ** (-(p * p.log()).sum()))


def perp_entropy_only(idx, K):
    p = _p(idx, K)
    return float(-(p * p.log()).sum())


def perp_zero_log_zero(idx, K):
    # 0 * log 0 = nan as soon as a code is dead
    p = torch.bincount(idx.reshape(-1), minlength=K).double() / idx.numel()
    return float(torch.exp(-(p * p.log()).sum()))


def perp_tensor(idx, K):
    p = _p(idx, K)
    return torch.exp(-(p * p.log()).sum())


# ---------------------------------------------------------------- revive_dead_codes


def _dead(idx, K):
    return torch.nonzero(torch.bincount(idx.reshape(-1), minlength=K) == 0).reshape(-1)


def revive_first_rows(codebook, z_e, idx):
    # takes the first rows of z_e rather than the worst-served ones
    dead = _dead(idx, codebook.shape[0])
    new = codebook.clone()
    new[dead] = z_e[: len(dead)]
    return new


def revive_smallest_error(codebook, z_e, idx):
    dead = _dead(idx, codebook.shape[0])
    err = ((z_e - codebook[idx]) ** 2).sum(-1)
    new = codebook.clone()
    new[dead] = z_e[torch.sort(err).indices[: len(dead)]]
    return new


def revive_in_place(codebook, z_e, idx):
    dead = _dead(idx, codebook.shape[0])
    err = ((z_e - codebook[idx]) ** 2).sum(-1)
    codebook[dead] = z_e[torch.sort(err, descending=True, stable=True).indices[: len(dead)]]
    return codebook


WRONG = {
    "cross_modal.cross_attention": [xattn_mask_after_softmax, xattn_softmax_over_queries, xattn_mask_ignored,
                                    xattn_scale_by_dv, xattn_naive_exp],
    "cross_modal.token_attention_maps": [maps_no_transpose, maps_column_major],
    "cross_modal.transmittance": [trans_inclusive, trans_no_delta, trans_wrong_axis],
    "cross_modal.volume_render": [render_alpha_linear, render_inclusive_T, render_no_T, render_normalised],
    "cross_modal.splat_2d": [splat_additive, splat_back_to_front, splat_cov_not_inverted, splat_inclusive_T],
    "cross_modal.sds_grad": [sds_sign_flipped, sds_not_noised, sds_no_sqrt, sds_no_weight],
    "cross_modal.vector_quantize": [vq_no_ste, vq_forgot_detach, vq_detached, vq_farthest, vq_dot_product],
    "cross_modal.vq_losses": [losses_no_stop_grad, losses_stop_grad_swapped, losses_beta_on_codebook, losses_sum],
    "cross_modal.codebook_perplexity": [perp_log2_then_exp, perp_nats_then_pow2, perp_entropy_only, perp_zero_log_zero,
                                        perp_tensor],
    "cross_modal.revive_dead_codes": [revive_first_rows, revive_smallest_error, revive_in_place],
}

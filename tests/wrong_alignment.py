"""Plausible wrong answers to the exercises of v2_llm/03_alignment_and_inference; each check must reject them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy.stats import norm
from torch import nn

# ---------------------------------------------------------------- LoRALinear


class _LoRABase(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        d_out, d_in = base.weight.shape
        self.lora_A = nn.Parameter(torch.randn(r, d_in) / math.sqrt(d_in))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r))
        self.scaling = alpha / r

    def delta(self):
        return self.scaling * self.lora_B @ self.lora_A

    merged = False

    def forward(self, x):
        return self.base(x) if self.merged else self.base(x) + x @ self.delta().T

    @torch.no_grad()
    def merge(self):
        self.base.weight += self.delta()
        self.merged = True

    @torch.no_grad()
    def unmerge(self):
        self.base.weight -= self.delta()
        self.merged = False


class LoRABothRandom(_LoRABase):
    # B random too: the adapted model no longer starts at the pre-trained one
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        with torch.no_grad():
            self.lora_B.normal_()


class LoRANoScaling(_LoRABase):
    # forgets alpha / r
    def delta(self):
        return self.lora_B @ self.lora_A


class LoRANotFrozen(_LoRABase):
    # trains the base weight too (that is full fine-tuning)
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        for p in self.base.parameters():
            p.requires_grad_(True)


class LoRAMergeTwice(_LoRABase):
    # merges into the weight but keeps adding the update in forward
    def forward(self, x):
        return self.base(x) + x @ self.delta().T


class LoRAUnmergeAdds(_LoRABase):
    # unmerge adds the update a second time
    @torch.no_grad()
    def unmerge(self):
        self.base.weight += self.delta()
        self.merged = False


# ---------------------------------------------------------------- nf4_levels


def levels_symmetric():
    # 16 evenly spaced probabilities: symmetric, but no exact zero
    delta = 0.5 * (1 / 32 + 1 / 30)
    v = torch.tensor(norm.ppf(torch.linspace(delta, 1 - delta, 16, dtype=torch.float64).numpy()))
    return (v / v.abs().max()).float()


def levels_not_normalised():
    # the raw quantiles, never divided by the largest one
    delta = 0.5 * (1 / 32 + 1 / 30)
    pos = norm.ppf(torch.linspace(1 - delta, 0.5, 9, dtype=torch.float64)[:-1].numpy())
    neg = -norm.ppf(torch.linspace(1 - delta, 0.5, 8, dtype=torch.float64)[:-1].numpy())
    return torch.tensor(sorted([*pos, 0.0, *neg]), dtype=torch.float32)


def levels_uniform_int4():
    # evenly spaced INT4 levels instead of normal quantiles
    return torch.cat([torch.linspace(-1, 0, 8)[:-1], torch.linspace(0, 1, 9)]).float()


# ---------------------------------------------------------------- nf4_quantize


def _blocks(w, block):
    flat = w.reshape(-1)
    pad = (-flat.numel()) % block
    return torch.cat([flat, flat.new_zeros(pad)]).view(-1, block)


def nf4_global_scale(w, levels, block=64):
    # one absmax for the whole tensor instead of one per block
    b = _blocks(w, block)
    s = b.abs().max()
    codes = (b[..., None] / s - levels.to(w.dtype)).abs().argmin(-1)
    return codes, s.expand(b.shape[0]).clone()


def nf4_zero_block_nan(w, levels, block=64):
    # divides by a zero scale: NaN codes for an all-zero block
    b = _blocks(w, block)
    s = b.abs().amax(1)
    codes = (b[..., None] / s[:, None, None] - levels.to(w.dtype)).abs().argmin(-1)
    return codes, s


def nf4_std_scale(w, levels, block=64):
    # scales by the block's standard deviation instead of its absolute maximum
    b = _blocks(w, block)
    s = b.std(1).clamp(min=1e-12)
    codes = (b[..., None] / s[:, None, None] - levels.to(w.dtype)).abs().argmin(-1)
    return codes, s


def nf4_no_padding(w, levels, block=64):
    # assumes numel is a multiple of block (drops the tail)
    flat = w.reshape(-1)
    n = flat.numel() // block * block
    b = flat[:n].view(-1, block)
    s = b.abs().amax(1)
    s1 = torch.where(s > 0, s, torch.ones_like(s))
    return (b[..., None] / s1[:, None, None] - levels.to(w.dtype)).abs().argmin(-1), s


# ---------------------------------------------------------------- bradley_terry_loss


def bt_naive_log_sigmoid(r_chosen, r_rejected):
    # log(sigmoid(.)) underflows to log(0) = -inf for large negative differences
    return -torch.log(torch.sigmoid(r_chosen - r_rejected)).mean()


def bt_swapped(r_chosen, r_rejected):
    # prefers the rejected response
    return F.softplus(r_chosen - r_rejected).mean()


def bt_sum(r_chosen, r_rejected):
    # sum instead of mean
    return F.softplus(r_rejected - r_chosen).sum()


# ---------------------------------------------------------------- optimal_kl_policy


def kl_policy_naive_exp(pi_ref, r, beta):
    # pi_ref * exp(r / beta) overflows for small beta
    w = pi_ref * torch.exp(r / beta)
    return w / w.sum(-1, keepdim=True)


def kl_policy_times_beta(pi_ref, r, beta):
    # exp(beta r) instead of exp(r / beta)
    return torch.softmax(torch.log(pi_ref) + beta * r, -1)


def kl_policy_no_ref(pi_ref, r, beta):
    # forgets the reference policy
    return torch.softmax(r / beta, -1)


def kl_policy_wrong_axis(pi_ref, r, beta):
    # normalises over the first axis
    return torch.softmax(torch.log(pi_ref) + r / beta, 0)


# ---------------------------------------------------------------- ppo_clip_objective


def ppo_no_min(logp_new, logp_old, advantages, clip_eps=0.2):
    # only the clipped term: no pessimistic minimum
    ratio = torch.exp(logp_new - logp_old)
    return (ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages).mean()


def ppo_ratio_inverted(logp_new, logp_old, advantages, clip_eps=0.2):
    # pi_old / pi_new
    ratio = torch.exp(logp_old - logp_new)
    return torch.minimum(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages).mean()


def ppo_clip_advantage(logp_new, logp_old, advantages, clip_eps=0.2):
    # clips the advantage instead of the ratio
    ratio = torch.exp(logp_new - logp_old)
    return torch.minimum(ratio * advantages, ratio * advantages.clamp(-clip_eps, clip_eps)).mean()


# ---------------------------------------------------------------- dpo_loss


def dpo_sign_error(pc, pr, rc, rr, beta):
    # reference log-ratios added instead of subtracted
    margin = (pc + rc) - (pr + rr)
    return F.softplus(-beta * margin).mean()


def dpo_swapped(pc, pr, rc, rr, beta):
    # rewards the rejected response
    margin = (pc - rc) - (pr - rr)
    return F.softplus(beta * margin).mean()


def dpo_no_beta(pc, pr, rc, rr, beta):
    margin = (pc - rc) - (pr - rr)
    return F.softplus(-margin).mean()


def dpo_naive_log_sigmoid(pc, pr, rc, rr, beta):
    # log(sigmoid(.)) underflows for large margins
    margin = (pc - rc) - (pr - rr)
    return -torch.log(torch.sigmoid(beta * margin)).mean()


def dpo_detached(pc, pr, rc, rr, beta):
    # computes the value without autograd: no gradient reaches the policy
    margin = (pc - rc) - (pr - rr)
    return F.softplus(-beta * margin).mean().detach()


# ---------------------------------------------------------------- top_p_filter


def top_p_excludes_crossing(logits, p):
    # keeps only the tokens whose cumulative probability stays below p: drops the token that crosses p
    probs = torch.softmax(logits, -1)
    sp, order = torch.sort(probs, -1, descending=True)
    keep_sorted = torch.cumsum(sp, -1) < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_unsorted(logits, p):
    # accumulates in vocabulary order instead of by decreasing probability
    probs = torch.softmax(logits, -1)
    keep = torch.cumsum(probs, -1) - probs < p
    return logits.masked_fill(~keep, float("-inf"))


def top_p_renormalised_probs(logits, p):
    # returns probabilities instead of filtered logits
    probs = torch.softmax(logits, -1)
    sp, order = torch.sort(probs, -1, descending=True)
    keep = torch.zeros_like(sp, dtype=torch.bool).scatter(-1, order, torch.cumsum(sp, -1) - sp < p)
    out = probs * keep
    return out / out.sum(-1, keepdim=True)


# ---------------------------------------------------------------- residual_distribution


def residual_not_normalised(p, q):
    return (p - q).clamp(min=0)


def residual_abs(p, q):
    # |p - q| instead of max(0, p - q)
    r = (p - q).abs()
    return r / r.sum(-1, keepdim=True)


def residual_nan_when_equal(p, q):
    # 0 / 0 when p = q
    r = (p - q).clamp(min=0)
    return r / r.sum(-1, keepdim=True)


# ---------------------------------------------------------------- speculative_sample


def spec_always_accept(p, q, draft_token, u, u_residual):
    return int(draft_token)


def spec_ratio_inverted(p, q, draft_token, u, u_residual):
    # accepts with probability q / p
    r = (p - q).clamp(min=0)
    if u < float(q[draft_token] / p[draft_token]):
        return int(draft_token)
    cdf = torch.cumsum(r / r.sum(), 0)
    return int((cdf <= u_residual).sum())


def spec_resample_from_p(p, q, draft_token, u, u_residual):
    # on rejection samples from p itself instead of the residual
    if u < float(p[draft_token] / q[draft_token]):
        return int(draft_token)
    cdf = torch.cumsum(p, 0)
    return min(int((cdf <= u_residual).sum()), p.shape[0] - 1)


WRONG = {
    "alignment.LoRALinear": [LoRABothRandom, LoRANoScaling, LoRANotFrozen, LoRAMergeTwice, LoRAUnmergeAdds],
    "alignment.nf4_levels": [levels_symmetric, levels_not_normalised, levels_uniform_int4],
    "alignment.nf4_quantize": [nf4_global_scale, nf4_zero_block_nan, nf4_std_scale, nf4_no_padding],
    "alignment.bradley_terry_loss": [bt_naive_log_sigmoid, bt_swapped, bt_sum],
    "alignment.optimal_kl_policy": [kl_policy_naive_exp, kl_policy_times_beta, kl_policy_no_ref, kl_policy_wrong_axis],
    "alignment.ppo_clip_objective": [ppo_no_min, ppo_ratio_inverted, ppo_clip_advantage],
    "alignment.dpo_loss": [dpo_sign_error, dpo_swapped, dpo_no_beta, dpo_naive_log_sigmoid, dpo_detached],
    "alignment.top_p_filter": [top_p_excludes_crossing, top_p_unsorted, top_p_renormalised_probs],
    "alignment.residual_distribution": [residual_not_normalised, residual_abs, residual_nan_when_equal],
    "alignment.speculative_sample": [spec_always_accept, spec_ratio_inverted, spec_resample_from_p],
}

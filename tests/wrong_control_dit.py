"""Plausible wrong answers to the exercises of v3_generative/02_control_and_transformers; each check must reject them."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from manifold_course.generative import control
from manifold_course.generative.dit import AdaLNZeroBlock as _RefBlock
from manifold_course.generative.dit import modulate

# ---------------------------------------------------------------- ZeroConv1x1


class ZeroConvWeightOnly(nn.Conv2d):
    # zeroes the weight but keeps PyTorch's random bias: the output at init is not 0
    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=1)
        nn.init.zeros_(self.weight)


class ZeroConvFrozen(nn.Conv2d):
    # zero and frozen: the gradient is blocked, the join can never learn
    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)
        self.requires_grad_(False)


class ZeroConvDetached(nn.Conv2d):
    # computes the output without a graph: no gradient reaches the weight
    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        with torch.no_grad():
            return super().forward(x)


class ZeroConvSmallInit(nn.Conv2d):
    # "near zero" is not zero: the model does not start exactly at the base
    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=1)
        with torch.no_grad():
            self.weight.mul_(1e-3)
            self.bias.mul_(1e-3)


class ZeroConv3x3(nn.Conv2d):
    # a 3x3 kernel (padding 1) instead of 1x1
    def __init__(self, c_in, c_out):
        super().__init__(c_in, c_out, kernel_size=3, padding=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


# ---------------------------------------------------------------- ControlledModel


class _Controlled(control.ControlledModel):
    def __init__(self, base, c_dim):
        super().__init__(base, c_dim)


class ControlledCopyFrozen(_Controlled):
    # freezes the copy too: nothing but the joins can learn
    def __init__(self, base, c_dim):
        super().__init__(base, c_dim)
        self.copy.requires_grad_(False)


class ControlledBaseNotFrozen(_Controlled):
    # forgets to lock the base
    def __init__(self, base, c_dim):
        super().__init__(base, c_dim)
        self.base.requires_grad_(True)


class ControlledSharedCopy(_Controlled):
    # self.copy = base.body shares the parameters: freezing the base freezes the "copy"
    def __init__(self, base, c_dim):
        super().__init__(base, c_dim)
        self.copy = base.body


class ControlledRandomJoin(_Controlled):
    # an ordinary (random) nn.Linear as the output join: the model does not start at the base
    def __init__(self, base, c_dim):
        super().__init__(base, c_dim)
        self.zero_out = nn.Linear(base.dim, base.dim)


class ControlledJoinOnBase(_Controlled):
    # the zero layer on the wrong branch: zero_out(base) + copy(...)
    def forward(self, x, t, c):
        h = self.features(x, t)
        return self.zero_out(self.base.body(h)) + self.copy(h + self.zero_in(c))


class ControlledControlAfterCopy(_Controlled):
    # adds the control after the copy instead of feeding it in: zero_out(copy(h)) + zero_in(c)-shaped nonsense
    def forward(self, x, t, c):
        h = self.features(x, t)
        return self.base.body(h) + self.zero_out(self.copy(h)) + self.zero_in(c).sum(-1, keepdim=True)


class ControlledCopyOfWholeModel(_Controlled):
    # feeds x + ... to a copy of the whole base: the control never reaches the copy's features
    def __init__(self, base, c_dim):
        super().__init__(base, c_dim)
        self.copy = copy.deepcopy(base).requires_grad_(True)

    def forward(self, x, t, c):
        return self.base(x, t) + self.zero_out(self.copy(x, t))


# ---------------------------------------------------------------- decoupled_cross_attention


def _attn(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), -1) @ v


def decoupled_one_softmax(q, k_t, v_t, k_i, v_i, lam):
    # concatenates text and image tokens under one softmax: the two prompts compete for weight
    return _attn(q, torch.cat([k_t, k_i], -2), torch.cat([v_t, lam * v_i], -2))


def decoupled_lambda_on_text(q, k_t, v_t, k_i, v_i, lam):
    # lambda on the text branch
    return lam * _attn(q, k_t, v_t) + _attn(q, k_i, v_i)


def decoupled_convex(q, k_t, v_t, k_i, v_i, lam):
    # (1 - lambda) text + lambda image: lambda = 1 drops the text
    return (1 - lam) * _attn(q, k_t, v_t) + lam * _attn(q, k_i, v_i)


def decoupled_no_scale(q, k_t, v_t, k_i, v_i, lam):
    # forgets the 1 / sqrt(d)
    a = torch.softmax(q @ k_t.transpose(-2, -1), -1) @ v_t
    return a + lam * torch.softmax(q @ k_i.transpose(-2, -1), -1) @ v_i


# ---------------------------------------------------------------- patchify


def patchify_column_major(x, p):
    # walks the patch grid column by column: a transposed patch order
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 4, 2, 3, 5, 1)
    return x.reshape(B, -1, p * p * C)


def patchify_unfold(x, p):
    # F.unfold: right patches, but each token ordered (C, p, q) instead of (p, q, C)
    return F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)


def patchify_plain_reshape(x, p):
    # a bare reshape: tokens are not square patches
    B, C, H, W = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, (H // p) * (W // p), p * p * C)


# ---------------------------------------------------------------- spacetime_token_count


def count_forgot_time_patch(T, H, W, pt, ph, pw):
    # every frame its own tokens: pt ignored
    return T * (H // ph) * (W // pw)


def count_float(T, H, W, pt, ph, pw):
    # the right number as a float
    return T / pt * H / ph * W / pw


def count_sliding(T, H, W, pt, ph, pw):
    # counts sliding windows (stride 1) instead of non-overlapping patches
    return (T - pt + 1) * (H - ph + 1) * (W - pw + 1)


# ---------------------------------------------------------------- spacetime_patchify / unpatchify


def st_patchify_frames_inner(video, pt, ph, pw):
    # time varies fastest across tokens: order (h, w, t) instead of (t, h, w)
    B, T, C, H, W = video.shape
    x = video.reshape(B, T // pt, pt, C, H // ph, ph, W // pw, pw).permute(0, 4, 6, 1, 2, 5, 7, 3)
    return x.reshape(B, -1, pt * ph * pw * C)


def st_patchify_channel_first(video, pt, ph, pw):
    # each token ordered (C, pt, ph, pw)
    B, T, C, H, W = video.shape
    x = video.reshape(B, T // pt, pt, C, H // ph, ph, W // pw, pw).permute(0, 1, 4, 6, 3, 2, 5, 7)
    return x.reshape(B, -1, pt * ph * pw * C)


def st_patchify_swapped_hw(video, pt, ph, pw):
    # swaps the roles of ph and pw (wrong for non-square patches)
    B, T, C, H, W = video.shape
    x = video.reshape(B, T // pt, pt, C, H // pw, pw, W // ph, ph).permute(0, 1, 4, 6, 2, 5, 7, 3)
    return x.reshape(B, -1, pt * ph * pw * C)


def st_unpatchify_plain_reshape(tokens, video_shape, pt, ph, pw):
    # a bare reshape does not undo the permutation
    return tokens.reshape(tokens.shape[0], *video_shape)


def st_unpatchify_same_permute(tokens, video_shape, pt, ph, pw):
    # applies patchify's permutation again instead of its inverse
    T, C, H, W = video_shape
    B = tokens.shape[0]
    x = tokens.reshape(B, T // pt, H // ph, W // pw, pt, ph, pw, C).permute(0, 1, 4, 6, 2, 5, 7, 3)
    return x.reshape(B, T, C, H, W)


# ---------------------------------------------------------------- AdaLNZeroBlock


class AdaLNNotZero(_RefBlock):
    # keeps PyTorch's random init of the modulation: alpha != 0, not the identity at init
    def __init__(self, d, n_heads=4, mlp_ratio=4):
        super().__init__(d, n_heads, mlp_ratio)
        nn.init.normal_(self.adaLN_modulation[1].weight, std=0.02)


class AdaLNNoGate(_RefBlock):
    # forgets the gate alpha: x + F(...), not the identity at init
    def forward(self, x, c):
        s1, g1, _, s2, g2, _ = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + self.attn(modulate(self.norm1(x), s1, g1))
        return x + self.mlp(modulate(self.norm2(x), s2, g2))


class AdaLNScaleWithoutOne(_RefBlock):
    # multiplies by gamma instead of (1 + gamma)
    def forward(self, x, c):
        s1, g1, a1, s2, g2, a2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + a1[:, None] * self.attn(self.norm1(x) * g1[:, None] + s1[:, None])
        return x + a2[:, None] * self.mlp(self.norm2(x) * g2[:, None] + s2[:, None])


class AdaLNChunkOrder(_RefBlock):
    # reads the six chunks in the order (gate, shift, scale)
    def forward(self, x, c):
        a1, s1, g1, a2, s2, g2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + a1[:, None] * self.attn(modulate(self.norm1(x), s1, g1))
        return x + a2[:, None] * self.mlp(modulate(self.norm2(x), s2, g2))


# ---------------------------------------------------------------- timestep_embedding


def _temb(t, dim, max_period, sin_first=False, denom_offset=0, interleave=False):
    t = torch.as_tensor(t)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / (half + denom_offset))
    args = t.reshape(-1, 1).double() * freqs
    parts = [torch.sin(args), torch.cos(args)] if sin_first else [torch.cos(args), torch.sin(args)]
    emb = torch.stack(parts, -1).flatten(-2) if interleave else torch.cat(parts, -1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], -1)
    return emb.to(t.dtype if t.is_floating_point() else torch.float32)


def temb_sin_first(t, dim, max_period=10000):
    # sines first, then cosines
    return _temb(t, dim, max_period, sin_first=True)


def temb_off_by_one(t, dim, max_period=10000):
    # frequencies P^(-i/(h-1)): the last period is exactly P (off by one in the exponent)
    return _temb(t, dim, max_period, denom_offset=-1 if dim // 2 > 1 else 0)


def temb_interleaved(t, dim, max_period=10000):
    # cos, sin interleaved per frequency instead of two halves
    return _temb(t, dim, max_period, interleave=True)


def temb_over_dim(t, dim, max_period=10000):
    # exponent i / d instead of i / (d/2): periods reach only sqrt(P)
    return _temb(t, dim, max_period ** 0.5)


# ---------------------------------------------------------------- frame_difference


def frame_diff_squared(video):
    # squared instead of absolute differences
    return (video[:, 1:] - video[:, :-1]).pow(2).flatten(2).mean(-1).mean(-1)


def frame_diff_signed(video):
    # forgets the absolute value: changes cancel
    return (video[:, 1:] - video[:, :-1]).flatten(2).mean(-1).mean(-1)


def frame_diff_wraps(video):
    # also compares the last frame with the first (torch.roll)
    return (torch.roll(video, -1, dims=1) - video).abs().flatten(2).mean(-1).mean(-1)


def frame_diff_sum(video):
    # sums the pixels instead of averaging them
    return (video[:, 1:] - video[:, :-1]).abs().flatten(2).sum(-1).mean(-1)


WRONG = {
    "control_dit.ZeroConv1x1": [ZeroConvWeightOnly, ZeroConvFrozen, ZeroConvDetached, ZeroConvSmallInit, ZeroConv3x3],
    "control_dit.ControlledModel": [ControlledCopyFrozen, ControlledBaseNotFrozen, ControlledSharedCopy,
                                    ControlledRandomJoin, ControlledJoinOnBase, ControlledControlAfterCopy,
                                    ControlledCopyOfWholeModel],
    "control_dit.decoupled_cross_attention": [decoupled_one_softmax, decoupled_lambda_on_text, decoupled_convex,
                                              decoupled_no_scale],
    "control_dit.patchify": [patchify_column_major, patchify_unfold, patchify_plain_reshape],
    "control_dit.spacetime_token_count": [count_forgot_time_patch, count_float, count_sliding],
    "control_dit.spacetime_patchify": [st_patchify_frames_inner, st_patchify_channel_first, st_patchify_swapped_hw],
    "control_dit.spacetime_unpatchify": [st_unpatchify_plain_reshape, st_unpatchify_same_permute],
    "control_dit.AdaLNZeroBlock": [AdaLNNotZero, AdaLNNoGate, AdaLNScaleWithoutOne, AdaLNChunkOrder],
    "control_dit.timestep_embedding": [temb_sin_first, temb_off_by_one, temb_interleaved, temb_over_dim],
    "control_dit.frame_difference": [frame_diff_squared, frame_diff_signed, frame_diff_wraps, frame_diff_sum],
}

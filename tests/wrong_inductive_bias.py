# Plausible wrong answers to the exercises of chapter v1_architecture/01_approximation_and_inductive_bias.
# Each must be rejected by its check (tests/test_exercises_can_fail.py).
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from manifold_course.nn import convnext, residual

# ---------------------------------------------------------------- bump_approximation


def bump_left_edges(f, a, b, n_bumps, k):
    # heights taken at the left edge of each cell instead of its centre
    h = (b - a) / n_bumps
    lefts = a + torch.arange(n_bumps, dtype=torch.float64) * h
    heights = f(lefts)
    edges = a + torch.arange(1, n_bumps, dtype=torch.float64) * h
    return lambda x: heights[0] + torch.sigmoid(k * (x[:, None] - edges)) @ (heights[1:] - heights[:-1])


def bump_closed_ends(f, a, b, n_bumps, k):
    # n closed bumps: the two outer ones are cut at a and b, so f_hat(a) is only half of f(c_1)
    h = (b - a) / n_bumps
    centres = a + (torch.arange(n_bumps, dtype=torch.float64) + 0.5) * h
    edges = a + torch.arange(n_bumps + 1, dtype=torch.float64) * h

    def f_hat(x):
        s = torch.sigmoid(k * (x[:, None] - edges))                   # (N, n + 1)
        return (s[:, :-1] - s[:, 1:]) @ f(centres)
    return f_hat


def bump_no_offset(f, a, b, n_bumps, k):
    # forgot the constant f(c_1): the staircase starts at 0
    h = (b - a) / n_bumps
    centres = a + (torch.arange(n_bumps, dtype=torch.float64) + 0.5) * h
    heights = f(centres)
    edges = a + torch.arange(1, n_bumps, dtype=torch.float64) * h
    return lambda x: torch.sigmoid(k * (x[:, None] - edges)) @ (heights[1:] - heights[:-1])


# ---------------------------------------------------------------- relu_interpolant


def _interp_net(n_hidden, w1, b1, w2, b2):
    net = nn.Sequential(nn.Linear(1, n_hidden, dtype=torch.float64), nn.ReLU(), nn.Linear(n_hidden, 1, dtype=torch.float64))
    with torch.no_grad():
        net[0].weight.copy_(w1)
        net[0].bias.copy_(b1)
        net[2].weight.copy_(w2)
        net[2].bias.fill_(b2)
    return net


def interp_slopes_not_changes(xs, ys):
    # output weights are the slopes s_i instead of the changes of slope s_i - s_(i-1)
    s = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])
    n = len(xs) - 1
    return _interp_net(n, torch.ones(n, 1), -xs[:-1], s[None, :], float(ys[0]))


def interp_wrong_bias_sign(xs, ys):
    # ReLU(x + x_i): the kinks sit at -x_i
    s = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])
    d = s - torch.cat([s.new_zeros(1), s[:-1]])
    n = len(xs) - 1
    return _interp_net(n, torch.ones(n, 1), xs[:-1], d[None, :], float(ys[0]))


def interp_float32(xs, ys):
    # right construction in float32 layers
    s = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])
    d = s - torch.cat([s.new_zeros(1), s[:-1]])
    n = len(xs) - 1
    net = nn.Sequential(nn.Linear(1, n), nn.ReLU(), nn.Linear(n, 1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(-xs[:-1])
        net[2].weight.copy_(d[None, :])
        net[2].bias.fill_(float(ys[0]))
    return net


# ---------------------------------------------------------------- mlp_param_count


def count_no_biases(sizes):
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def count_biases_of_inputs(sizes):
    # adds the bias of the input size instead of the output size
    return sum(a * b + a for a, b in zip(sizes[:-1], sizes[1:]))


def count_float(sizes):
    return float(sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])))


# ---------------------------------------------------------------- equivariance_error


def equiv_forgot_t_out(f, t_in, t_out, x):
    with torch.no_grad():
        return float((f(t_in(x)) - f(x)).norm() / f(x).norm())


def equiv_absolute(f, t_in, t_out, x):
    with torch.no_grad():
        return float((f(t_in(x)) - t_out(f(x))).norm())


def equiv_wrong_denominator(f, t_in, t_out, x):
    with torch.no_grad():
        lhs = f(t_in(x))
        return float((lhs - t_out(f(x))).norm() / lhs.norm())


def equiv_returns_tensor(f, t_in, t_out, x):
    with torch.no_grad():
        rhs = t_out(f(x))
        return (f(t_in(x)) - rhs).norm() / rhs.norm()


# ---------------------------------------------------------------- self_attention


def attn_softmax_wrong_dim(X, Wq, Wk, Wv, pe=None):
    if pe is not None:
        X = X + pe
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    return torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(Wq.shape[-1]), dim=-2) @ V


def attn_no_scaling(X, Wq, Wk, Wv, pe=None):
    if pe is not None:
        X = X + pe
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    return torch.softmax(Q @ K.transpose(-2, -1), dim=-1) @ V


def attn_scale_by_model_width(X, Wq, Wk, Wv, pe=None):
    # sqrt(D) instead of sqrt(d_k)
    if pe is not None:
        X = X + pe
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    return torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(X.shape[-1]), dim=-1) @ V


def attn_naive_exp(X, Wq, Wk, Wv, pe=None):
    # exp / sum without subtracting the max: overflows for large scores
    if pe is not None:
        X = X + pe
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    E = torch.exp(Q @ K.transpose(-2, -1) / math.sqrt(Wq.shape[-1]))
    return E / E.sum(dim=-1, keepdim=True) @ V


def attn_ignores_pe(X, Wq, Wk, Wv, pe=None):
    Q, K, V = X @ Wq, X @ Wk, X @ Wv
    return torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(Wq.shape[-1]), dim=-1) @ V


# ---------------------------------------------------------------- conv_vs_dense_params


def conv_dense_no_biases(H, W, C_in, C_out, k):
    return C_out * C_in * k * k, (H * W * C_in) * (H * W * C_out)


def conv_dense_k_not_squared(H, W, C_in, C_out, k):
    return C_out * (C_in * k + 1), (H * W * C_in) * (H * W * C_out) + H * W * C_out


def conv_dense_one_output_map(H, W, C_in, C_out, k):
    # dense layer to C_out numbers instead of a full (H, W, C_out) output
    return C_out * (C_in * k * k + 1), H * W * C_in * C_out + C_out


# ---------------------------------------------------------------- grad_norms_per_layer


def grads_stale(model, x, y):
    # forgot model.zero_grad(): old .grad fields are added in
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]


def grads_summed_loss(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y, reduction="sum").backward()
    return [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]


def grads_with_biases(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.norm().item() for p in model.parameters()]


def grads_squared(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [m.weight.grad.pow(2).sum().item() for m in model.modules() if isinstance(m, nn.Linear)]


# ---------------------------------------------------------------- ResBlock


class ResBlockNoFinalReLU(residual.ResBlock):
    def forward(self, x):
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x


class ResBlockReLUBeforeAdd(residual.ResBlock):
    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))) + x


class ResBlockWithBias(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x)


class ResBlockInPlace(residual.ResBlock):
    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(x.add_(out))


# ---------------------------------------------------------------- ConvNeXtBlock


class ConvNeXtNoResidual(convnext.ConvNeXtBlock):
    def forward(self, x):
        h = self.dwconv(x).permute(0, 2, 3, 1)
        return self.pwconv2(self.act(self.pwconv1(self.norm(h)))).permute(0, 3, 1, 2)


class ConvNeXtReLU(convnext.ConvNeXtBlock):
    def __init__(self, dim):
        super().__init__(dim)
        self.act = nn.ReLU()


class ConvNeXtWrongPermute(convnext.ConvNeXtBlock):
    # permute(0, 3, 2, 1) is not the inverse of permute(0, 2, 3, 1): H and W come back swapped
    def forward(self, x):
        h = self.dwconv(x).permute(0, 2, 3, 1)
        return x + self.pwconv2(self.act(self.pwconv1(self.norm(h)))).permute(0, 3, 2, 1)


class ConvNeXtNormLast(convnext.ConvNeXtBlock):
    # LayerNorm after the MLP instead of before it
    def forward(self, x):
        h = self.dwconv(x).permute(0, 2, 3, 1)
        return x + self.norm(self.pwconv2(self.act(self.pwconv1(h)))).permute(0, 3, 1, 2)


class ConvNeXtDenseConv(convnext.ConvNeXtBlock):
    def __init__(self, dim):
        super().__init__(dim)
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3)


class ConvNeXtBottleneck2x(convnext.ConvNeXtBlock):
    def __init__(self, dim):
        super().__init__(dim)
        self.pwconv1 = nn.Linear(dim, 2 * dim)
        self.pwconv2 = nn.Linear(2 * dim, dim)


# ---------------------------------------------------------------- receptive_field


def rf_own_stride(layers):
    r, jump = 1, 1
    for k, s in layers:
        jump *= s                      # multiplies by the layer's own stride too early
        r += (k - 1) * jump
    return r


def rf_ignores_strides(layers):
    return 1 + sum(k - 1 for k, _ in layers)


def rf_from_zero(layers):
    r, jump = 0, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


# ---------------------------------------------------------------- patchify / unpatchify


def patchify_channels_last(x, p):
    # einops "b c (h p1) (w p2) -> b (h w) (p1 p2 c)": the feature order differs from F.unfold's (C, p, p)
    B, C, H, W = x.shape
    t = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return t.reshape(B, (H // p) * (W // p), p * p * C)


def patchify_no_permute(x, p):
    B, C, H, W = x.shape
    return x.reshape(B, (H // p) * (W // p), C * p * p)


def patchify_column_major(x, p):
    # patches ordered column by column
    B, C, H, W = x.shape
    t = x.reshape(B, C, H // p, p, W // p, p).permute(0, 4, 2, 1, 3, 5)
    return t.reshape(B, (H // p) * (W // p), C * p * p)


def unpatchify_channels_last(tokens, p, H, W):
    B, N, D = tokens.shape
    C = D // (p * p)
    t = tokens.reshape(B, H // p, W // p, p, p, C).permute(0, 5, 1, 3, 2, 4)
    return t.reshape(B, C, H, W)


def unpatchify_swapped_grid(tokens, p, H, W):
    B, N, D = tokens.shape
    C = D // (p * p)
    t = tokens.reshape(B, W // p, H // p, C, p, p).permute(0, 3, 2, 4, 1, 5)
    return t.reshape(B, C, H, W)


def unpatchify_plain_reshape(tokens, p, H, W):
    B, N, D = tokens.shape
    return tokens.reshape(B, D // (p * p), H, W)


WRONG = {
    "inductive_bias.bump_approximation": [bump_left_edges, bump_closed_ends, bump_no_offset],
    "inductive_bias.relu_interpolant": [interp_slopes_not_changes, interp_wrong_bias_sign, interp_float32],
    "inductive_bias.mlp_param_count": [count_no_biases, count_biases_of_inputs, count_float],
    "inductive_bias.equivariance_error": [equiv_forgot_t_out, equiv_absolute, equiv_wrong_denominator, equiv_returns_tensor],
    "inductive_bias.self_attention": [attn_softmax_wrong_dim, attn_no_scaling, attn_scale_by_model_width, attn_naive_exp,
                                      attn_ignores_pe],
    "inductive_bias.conv_vs_dense_params": [conv_dense_no_biases, conv_dense_k_not_squared, conv_dense_one_output_map],
    "inductive_bias.grad_norms_per_layer": [grads_stale, grads_summed_loss, grads_with_biases, grads_squared],
    "inductive_bias.ResBlock": [ResBlockNoFinalReLU, ResBlockReLUBeforeAdd, ResBlockWithBias, ResBlockInPlace],
    "inductive_bias.ConvNeXtBlock": [ConvNeXtNoResidual, ConvNeXtReLU, ConvNeXtWrongPermute, ConvNeXtNormLast, ConvNeXtDenseConv,
                                     ConvNeXtBottleneck2x],
    "inductive_bias.receptive_field": [rf_own_stride, rf_ignores_strides, rf_from_zero],
    "inductive_bias.patchify": [patchify_channels_last, patchify_no_permute, patchify_column_major],
    "inductive_bias.unpatchify": [unpatchify_channels_last, unpatchify_swapped_grid, unpatchify_plain_reshape],
}

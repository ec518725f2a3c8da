"""Plausible wrong answers to the exercises of v1_architecture/03_normalization_initialization_landscapes;
each check must reject them."""

from __future__ import annotations

import math

import numpy as np
import torch

# ---------------------------------------------------------------- rms_norm


def rms_eps_outside_sqrt(x, weight, eps=1e-6):
    # x / (rms + eps) instead of x / sqrt(mean(x^2) + eps)
    return x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * weight


def rms_sum_not_mean(x, weight, eps=1e-6):
    # the norm ||x|| instead of the root *mean* square: off by sqrt(D)
    return x * torch.rsqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight


def rms_centred(x, weight, eps=1e-6):
    # subtracts the mean: that is LayerNorm, not RMSNorm
    xc = x - x.mean(-1, keepdim=True)
    return xc * torch.rsqrt(xc.pow(2).mean(-1, keepdim=True) + eps) * weight


def rms_wrong_axis(x, weight, eps=1e-6):
    # normalises over the batch axis
    return x * torch.rsqrt(x.pow(2).mean(0, keepdim=True) + eps) * weight


def rms_no_weight(x, weight, eps=1e-6):
    # forgets the learned gain
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


# ---------------------------------------------------------------- layer_norm


def ln_unbiased(x, gamma, beta, eps=1e-5):
    # torch.var's default divides by D - 1
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(x.var(-1, keepdim=True) + eps) * gamma + beta


def ln_eps_outside(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / (x.std(-1, correction=0, keepdim=True) + eps) * gamma + beta


def ln_batch_axis(x, gamma, beta, eps=1e-5):
    # normalises each feature over the batch: that is BatchNorm
    mu = x.mean(0, keepdim=True)
    return (x - mu) / torch.sqrt(x.var(0, correction=0, keepdim=True) + eps) * gamma + beta


def ln_no_beta(x, gamma, beta, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(x.var(-1, correction=0, keepdim=True) + eps) * gamma


def ln_global_stats(x, gamma, beta, eps=1e-5):
    # one mean and variance over the whole tensor
    return (x - x.mean()) / torch.sqrt(x.var(correction=0) + eps) * gamma + beta


# ---------------------------------------------------------------- batch_norm_train


def bn_biased_running_var(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    # the running variance should use the unbiased batch variance (B / (B - 1))
    mu, var = x.mean(0), x.var(0, correction=0)
    y = (x - mu) / torch.sqrt(var + eps) * gamma + beta
    return y, (1 - momentum) * running_mean + momentum * mu, (1 - momentum) * running_var + momentum * var


def bn_unbiased_normalisation(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    # normalises with the unbiased variance (PyTorch uses the biased one there)
    mu, var = x.mean(0), x.var(0)
    y = (x - mu) / torch.sqrt(var + eps) * gamma + beta
    return y, (1 - momentum) * running_mean + momentum * mu, (1 - momentum) * running_var + momentum * var


def bn_momentum_reversed(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    # Keras-style momentum: keeps `momentum` of the old value
    B = x.shape[0]
    mu, var = x.mean(0), x.var(0, correction=0)
    y = (x - mu) / torch.sqrt(var + eps) * gamma + beta
    return y, momentum * running_mean + (1 - momentum) * mu, momentum * running_var + (1 - momentum) * var * B / (B - 1)


def bn_in_place(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    # updates the running buffers in place (as the module does), instead of returning new tensors
    B = x.shape[0]
    mu, var = x.mean(0), x.var(0, correction=0)
    running_mean.mul_(1 - momentum).add_(momentum * mu)
    running_var.mul_(1 - momentum).add_(momentum * var * B / (B - 1))
    return (x - mu) / torch.sqrt(var + eps) * gamma + beta, running_mean, running_var


def bn_feature_axis(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    # statistics over the features of each sample (LayerNorm's axis)
    B = x.shape[0]
    mu, var = x.mean(1, keepdim=True), x.var(1, correction=0, keepdim=True)
    y = (x - mu) / torch.sqrt(var + eps) * gamma + beta
    mu_b, var_b = x.mean(0), x.var(0, correction=0)
    return y, (1 - momentum) * running_mean + momentum * mu_b, (1 - momentum) * running_var + momentum * var_b * B / (B - 1)


def bn_eps_outside(x, gamma, beta, running_mean, running_var, momentum=0.1, eps=1e-5):
    B = x.shape[0]
    mu, var = x.mean(0), x.var(0, correction=0)
    y = (x - mu) / (var.sqrt() + eps) * gamma + beta
    return y, (1 - momentum) * running_mean + momentum * mu, (1 - momentum) * running_var + momentum * var * B / (B - 1)


# ---------------------------------------------------------------- batch_norm_eval


def bn_eval_batch_stats(x, gamma, beta, running_mean, running_var, eps=1e-5):
    # uses the batch statistics in evaluation mode
    return (x - x.mean(0)) / torch.sqrt(x.var(0, correction=0) + eps) * gamma + beta


def bn_eval_no_sqrt(x, gamma, beta, running_mean, running_var, eps=1e-5):
    # divides by the variance instead of the standard deviation
    return (x - running_mean) / (running_var + eps) * gamma + beta


def bn_eval_eps_outside(x, gamma, beta, running_mean, running_var, eps=1e-5):
    return (x - running_mean) / (running_var.sqrt() + eps) * gamma + beta


# ---------------------------------------------------------------- kaiming_normal / xavier_uniform


def _g(seed):
    return torch.Generator().manual_seed(seed)


def kaiming_fan_out(shape, seed):
    # divides by shape[0] (fan_out) instead of fan_in
    return torch.randn(shape, generator=_g(seed)) * math.sqrt(2.0 / shape[0])


def kaiming_no_receptive_field(shape, seed):
    # conv kernels: forgets the k * k of the fan-in
    return torch.randn(shape, generator=_g(seed)) * math.sqrt(2.0 / shape[1])


def kaiming_uniform_law(shape, seed):
    # right variance, wrong law: uniform instead of Gaussian
    fan_in = math.prod(shape[1:])
    bound = math.sqrt(6.0 / fan_in)
    return (torch.rand(shape, generator=_g(seed)) * 2 - 1) * bound


def kaiming_lecun(shape, seed):
    # variance 1 / fan_in: forgets the factor 2 for ReLU
    return torch.randn(shape, generator=_g(seed)) / math.sqrt(math.prod(shape[1:]))


def kaiming_unseeded(shape, seed):
    return torch.randn(shape) * math.sqrt(2.0 / math.prod(shape[1:]))


def kaiming_numpy(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape) * math.sqrt(2.0 / math.prod(shape[1:]))


def _fans(shape):
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


def xavier_normal_law(shape, seed):
    # Xavier *normal*: right variance, values beyond the bound
    fi, fo = _fans(shape)
    return torch.randn(shape, generator=_g(seed)) * math.sqrt(2.0 / (fi + fo))


def xavier_fan_in_only(shape, seed):
    fi, _ = _fans(shape)
    bound = math.sqrt(6.0 / fi)
    return (torch.rand(shape, generator=_g(seed)) * 2 - 1) * bound


def xavier_positive(shape, seed):
    # torch.rand is on [0, 1): the range [0, bound) has the wrong mean
    fi, fo = _fans(shape)
    return torch.rand(shape, generator=_g(seed)) * math.sqrt(6.0 / (fi + fo))


def xavier_no_receptive_field(shape, seed):
    bound = math.sqrt(6.0 / (shape[0] + shape[1]))
    return (torch.rand(shape, generator=_g(seed)) * 2 - 1) * bound


def xavier_variance_as_bound(shape, seed):
    # uses 2 / (fan_in + fan_out) (the variance) as the bound
    fi, fo = _fans(shape)
    return (torch.rand(shape, generator=_g(seed)) * 2 - 1) * (2.0 / (fi + fo))


def xavier_float64(shape, seed):
    fi, fo = _fans(shape)
    return (torch.rand(shape, generator=_g(seed), dtype=torch.float64) * 2 - 1) * math.sqrt(6.0 / (fi + fo))


# ---------------------------------------------------------------- activation_std_profile


_VARS = {"kaiming": lambda n: 2.0 / n, "xavier": lambda n: 1.0 / n, "pytorch": lambda n: 1.0 / (3 * n),
         "standard": lambda n: 1.0}
_ACTS = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda z: z}


def _profile(depth, width, init, act, seed, var=None, pre_activation=False, stat=lambda h: float(h.std())):
    gen = _g(seed)
    h = torch.randn(256, width, generator=gen)
    out = []
    for _ in range(depth):
        v = var(width) if var else _VARS[init](width)
        if init == "pytorch" and var is None:
            W = (torch.rand(width, width, generator=gen) * 2 - 1) / math.sqrt(width)
        else:
            W = torch.randn(width, width, generator=gen) * math.sqrt(v)
        z = h @ W.T
        h = _ACTS[act](z)
        out.append(stat(z if pre_activation else h))
    return out


def profile_pre_activation(depth, width, init, act, seed):
    # reports the std of W h (before the activation)
    return _profile(depth, width, init, act, seed, pre_activation=True)


def profile_variance(depth, width, init, act, seed):
    # the variance, not the standard deviation
    return _profile(depth, width, init, act, seed, stat=lambda h: float(h.var()))


def profile_kaiming_without_2(depth, width, init, act, seed):
    # "kaiming" with variance 1 / n
    var = (lambda n: 1.0 / n) if init == "kaiming" else None
    return _profile(depth, width, init, act, seed, var=var)


def profile_default_is_he(depth, width, init, act, seed):
    # believes PyTorch's default init is He init (variance 2 / n)
    var = (lambda n: 2.0 / n) if init == "pytorch" else None
    return _profile(depth, width, init, act, seed, var=var)


def profile_includes_input(depth, width, init, act, seed):
    gen = _g(seed)
    h = torch.randn(256, width, generator=gen)
    return [float(h.std())] + _profile(depth, width, init, act, seed)[:-1] if depth > 0 else []


def profile_tensors(depth, width, init, act, seed):
    return [torch.tensor(v) for v in _profile(depth, width, init, act, seed)]


# ---------------------------------------------------------------- jacobian_singular_values


def _jacobian(model, x):
    return torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0)).squeeze(0), x)


def jac_eigenvalues(model, x):
    # |eigenvalues| of J (only square J, and not the singular values)
    J = _jacobian(model, x)
    if J.shape[0] != J.shape[1]:
        J = J[: min(J.shape), : min(J.shape)]
    return torch.sort(torch.linalg.eigvals(J).abs(), descending=True).values


def jac_ascending(model, x):
    return torch.sort(torch.linalg.svdvals(_jacobian(model, x))).values


def jac_squared(model, x):
    # eigenvalues of J^T J: the squares of the singular values
    J = _jacobian(model, x)
    return torch.sort(torch.linalg.svdvals(J) ** 2, descending=True).values


def jac_weights_only(model, x):
    # the product of the weight matrices, ignoring the activations' derivatives
    M = None
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            M = m.weight.detach() if M is None else m.weight.detach() @ M
    return torch.linalg.svdvals(M)


def jac_numpy(model, x):
    return np.linalg.svd(_jacobian(model, x).numpy(), compute_uv=False)


# ---------------------------------------------------------------- filter_normalize


def filter_whole_layer(direction, params):
    # one norm per tensor instead of one per filter
    return [torch.zeros_like(d) if p.dim() <= 1 else d * p.norm() / d.norm() for d, p in zip(direction, params)]


def filter_columns(direction, params):
    # normalises columns (one per input) instead of rows (one per output unit / filter)
    out = []
    for d, p in zip(direction, params):
        if p.dim() <= 1:
            out.append(torch.zeros_like(d))
            continue
        dims = [i for i in range(p.dim()) if i != 1]
        pn = torch.linalg.vector_norm(p, dim=dims, keepdim=True)
        dn = torch.linalg.vector_norm(d, dim=dims, keepdim=True)
        out.append(d * pn / (dn + 1e-10))
    return out


def filter_keeps_biases(direction, params):
    # also rescales (or keeps) the 1-D tensors: Li et al. set them to zero
    out = []
    for d, p in zip(direction, params):
        df, pf = d.reshape(d.shape[0], -1), p.reshape(p.shape[0], -1)
        out.append((df * pf.norm(dim=1, keepdim=True) / (df.norm(dim=1, keepdim=True) + 1e-10)).reshape(d.shape))
    return out


def filter_unit_norm(direction, params):
    # unit-norm filters: forgets to multiply by the parameters' filter norms
    out = []
    for d, p in zip(direction, params):
        if p.dim() <= 1:
            out.append(torch.zeros_like(d))
            continue
        df = d.reshape(d.shape[0], -1)
        out.append((df / (df.norm(dim=1, keepdim=True) + 1e-10)).reshape(d.shape))
    return out


def filter_in_place(direction, params):
    for d, p in zip(direction, params):
        if p.dim() <= 1:
            d.zero_()
        else:
            df, pf = d.view(d.shape[0], -1), p.reshape(p.shape[0], -1)
            df.mul_(pf.norm(dim=1, keepdim=True) / (df.norm(dim=1, keepdim=True) + 1e-10))
    return list(direction)


# ---------------------------------------------------------------- loss_surface_2d


@torch.no_grad()
def surface_no_restore(model, loss_fn, X, y, d1, d2, alphas, betas):
    # leaves the model at the last grid point
    theta = [p.clone() for p in model.parameters()]
    grid = torch.zeros(len(alphas), len(betas), dtype=torch.float64)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            for p, t, u, v in zip(model.parameters(), theta, d1, d2):
                p.copy_(t + a * u + b * v)
            grid[i, j] = loss_fn(model(X), y).item()
    return grid


@torch.no_grad()
def surface_restore_by_subtraction(model, loss_fn, X, y, d1, d2, alphas, betas):
    # adds the step, then subtracts it again: round-off changes the weights
    grid = torch.zeros(len(alphas), len(betas), dtype=torch.float64)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            for p, u, v in zip(model.parameters(), d1, d2):
                p.add_(a * u + b * v)
            grid[i, j] = loss_fn(model(X), y).item()
            for p, u, v in zip(model.parameters(), d1, d2):
                p.sub_(a * u + b * v)
    return grid


@torch.no_grad()
def surface_transposed(model, loss_fn, X, y, d1, d2, alphas, betas):
    # rows follow betas
    theta = [p.clone() for p in model.parameters()]
    grid = torch.zeros(len(betas), len(alphas), dtype=torch.float64)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            for p, t, u, v in zip(model.parameters(), theta, d1, d2):
                p.copy_(t + a * u + b * v)
            grid[j, i] = loss_fn(model(X), y).item()
    for p, t in zip(model.parameters(), theta):
        p.copy_(t)
    return grid


@torch.no_grad()
def surface_swapped_directions(model, loss_fn, X, y, d1, d2, alphas, betas):
    # alpha moves along d2 and beta along d1
    theta = [p.clone() for p in model.parameters()]
    grid = torch.zeros(len(alphas), len(betas), dtype=torch.float64)
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            for p, t, u, v in zip(model.parameters(), theta, d1, d2):
                p.copy_(t + a * v + b * u)
            grid[i, j] = loss_fn(model(X), y).item()
    for p, t in zip(model.parameters(), theta):
        p.copy_(t)
    return grid


@torch.no_grad()
def surface_float32(model, loss_fn, X, y, d1, d2, alphas, betas):
    # builds the grid with torch.zeros (float32 by default)
    theta = [p.clone() for p in model.parameters()]
    grid = torch.zeros(len(alphas), len(betas))
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            for p, t, u, v in zip(model.parameters(), theta, d1, d2):
                p.copy_(t + a * u + b * v)
            grid[i, j] = loss_fn(model(X), y).item()
    for p, t in zip(model.parameters(), theta):
        p.copy_(t)
    return grid


# ---------------------------------------------------------------- lesion_accuracy


@torch.no_grad()
def lesion_zero_weights(model, block_idx, X, y):
    # zeroes the block's weight matrix in a copy, instead of skipping the block
    import copy

    m = copy.deepcopy(model)
    m.blocks[block_idx].linear.weight.zero_()
    return float((m(X).argmax(1) == y).double().mean())


@torch.no_grad()
def lesion_off_by_one(model, block_idx, X, y):
    # counts blocks from 1
    h = model.stem(X)
    for i, block in enumerate(model.blocks, start=1):
        if i != block_idx:
            h = block(h)
    return float((model.head(h).argmax(1) == y).double().mean())


@torch.no_grad()
def lesion_deletes_in_place(model, block_idx, X, y):
    # removes the block from the model itself
    del model.blocks[block_idx]
    return float((model(X).argmax(1) == y).double().mean())


@torch.no_grad()
def lesion_percent(model, block_idx, X, y):
    h = model.stem(X)
    for i, block in enumerate(model.blocks):
        if i != block_idx:
            h = block(h)
    return 100.0 * float((model.head(h).argmax(1) == y).double().mean())


@torch.no_grad()
def lesion_zero_output(model, block_idx, X, y):
    # replaces the block's output by zeros (right for the residual branch only, wrong for a plain block)
    h = model.stem(X)
    for i, block in enumerate(model.blocks):
        h = block(h) if i != block_idx else (h if block.residual else torch.zeros_like(h))
    return float((model.head(h).argmax(1) == y).double().mean())


# ---------------------------------------------------------------- path_length_distribution


def paths_float_power(n):
    # 2.0 ** n overflows for n > 1023
    return np.array([math.comb(n, k) / 2.0**n for k in range(n + 1)])


def paths_float_comb(n):
    # float(comb(n, k)) overflows near n = 1030
    return np.array([float(math.comb(n, k)) * 0.5**n for k in range(n + 1)])


def paths_uniform(n):
    # every length equally likely
    return np.full(n + 1, 1.0 / (n + 1))


def paths_missing_zero(n):
    # forgets the path that skips every block (k = 0)
    return np.array([math.comb(n, k) / 2**n for k in range(1, n + 1)])


def paths_torch(n):
    return torch.tensor([math.comb(n, k) / 2**n for k in range(n + 1)], dtype=torch.float64)


WRONG = {
    "normalization.rms_norm": [rms_eps_outside_sqrt, rms_sum_not_mean, rms_centred, rms_wrong_axis, rms_no_weight],
    "normalization.layer_norm": [ln_unbiased, ln_eps_outside, ln_batch_axis, ln_no_beta, ln_global_stats],
    "normalization.batch_norm_train": [bn_biased_running_var, bn_unbiased_normalisation, bn_momentum_reversed,
                                       bn_in_place, bn_feature_axis, bn_eps_outside],
    "normalization.batch_norm_eval": [bn_eval_batch_stats, bn_eval_no_sqrt, bn_eval_eps_outside],
    "normalization.kaiming_normal": [kaiming_fan_out, kaiming_no_receptive_field, kaiming_uniform_law, kaiming_lecun,
                                     kaiming_unseeded, kaiming_numpy],
    "normalization.xavier_uniform": [xavier_normal_law, xavier_fan_in_only, xavier_positive, xavier_no_receptive_field,
                                     xavier_variance_as_bound, xavier_float64],
    "normalization.activation_std_profile": [profile_pre_activation, profile_variance, profile_kaiming_without_2,
                                             profile_default_is_he, profile_includes_input, profile_tensors],
    "normalization.jacobian_singular_values": [jac_eigenvalues, jac_ascending, jac_squared, jac_weights_only, jac_numpy],
    "normalization.filter_normalize": [filter_whole_layer, filter_columns, filter_keeps_biases, filter_unit_norm,
                                       filter_in_place],
    "normalization.loss_surface_2d": [surface_no_restore, surface_restore_by_subtraction, surface_transposed,
                                      surface_swapped_directions, surface_float32],
    "normalization.lesion_accuracy": [lesion_zero_weights, lesion_off_by_one, lesion_deletes_in_place, lesion_percent,
                                      lesion_zero_output],
    "normalization.path_length_distribution": [paths_float_power, paths_float_comb, paths_uniform, paths_missing_zero,
                                               paths_torch],
}

"""Plausible wrong answers to the exercises of v1_architecture/02_graph_neural_networks; each check must reject them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# ---------------------------------------------------------------- graph_laplacians


def _deg(A):
    return A.sum(dim=1)


def laplacians_wrong_sign(A):
    # L = A - D: negative semi-definite
    d = _deg(A)
    I = torch.eye(len(A), dtype=A.dtype)
    s = d.rsqrt()
    return A - torch.diag(d), I - s[:, None] * A * s[None, :], I - A / d[:, None]


def laplacians_sym_is_normalized_adjacency(A):
    # the seed's naming: D^-1/2 A D^-1/2 called "the normalised Laplacian"
    d = _deg(A)
    I = torch.eye(len(A), dtype=A.dtype)
    s = d.rsqrt()
    return torch.diag(d) - A, s[:, None] * A * s[None, :], I - A / d[:, None]


def laplacians_sym_with_inverse_degree(A):
    # D^-1 instead of D^-1/2 on both sides
    d = _deg(A)
    I = torch.eye(len(A), dtype=A.dtype)
    return torch.diag(d) - A, I - A / d[:, None] / d[None, :], I - A / d[:, None]


def laplacians_rw_columns(A):
    # I - A D^-1: divides the columns instead of the rows
    d = _deg(A)
    I = torch.eye(len(A), dtype=A.dtype)
    s = d.rsqrt()
    return torch.diag(d) - A, I - s[:, None] * A * s[None, :], I - A / d[None, :]


def laplacians_numpy(A):
    # numpy arrays instead of tensors
    a = A.numpy()
    d = a.sum(1)
    I = np.eye(len(a))
    return np.diag(d) - a, I - a / np.sqrt(np.outer(d, d)), I - a / d[:, None]


# ---------------------------------------------------------------- normalized_adjacency


def norm_adj_no_self_loops(A, self_loops=True):
    # forgot to add I
    s = _deg(A).rsqrt()
    return s[:, None] * A * s[None, :]


def norm_adj_row_normalised(A, self_loops=True):
    # D~^-1 A~ (the random-walk matrix): not symmetric
    At = A + torch.eye(len(A), dtype=A.dtype) if self_loops else A
    return At / _deg(At)[:, None]


def norm_adj_degrees_before_loops(A, self_loops=True):
    # adds the self-loops but keeps the degrees of A
    At = A + torch.eye(len(A), dtype=A.dtype) if self_loops else A
    s = _deg(A).rsqrt()
    return s[:, None] * At * s[None, :]


def norm_adj_ignores_flag(A, self_loops=True):
    # always adds self-loops
    At = A + torch.eye(len(A), dtype=A.dtype)
    s = _deg(At).rsqrt()
    return s[:, None] * At * s[None, :]


# ---------------------------------------------------------------- spectral_embedding


def _lsym(A):
    s = _deg(A).rsqrt()
    return torch.eye(len(A), dtype=A.dtype) - s[:, None] * A * s[None, :]


def spectral_largest(A, k):
    # the k largest eigenvalues
    return torch.linalg.eigh(_lsym(A))[1][:, -k:]


def spectral_rows(A, k):
    # eigh returns eigenvectors as columns; taking rows gives garbage
    return torch.linalg.eigh(_lsym(A))[1][:k].T.contiguous()


def spectral_skip_first(A, k):
    # drops the first eigenvector (right for the Fiedler vector, wrong here)
    return torch.linalg.eigh(_lsym(A))[1][:, 1:k + 1]


def spectral_unnormalised(A, k):
    # eigenvectors of L = D - A instead of L_sym
    return torch.linalg.eigh(torch.diag(_deg(A)) - A)[1][:, :k]


def spectral_random_walk(A, k):
    # eigenvectors of the non-symmetric L_rw: not orthonormal
    L_rw = torch.eye(len(A), dtype=A.dtype) - A / _deg(A)[:, None]
    vals, vecs = torch.linalg.eig(L_rw)
    order = vals.real.argsort()
    V = vecs.real[:, order[:k]]
    return (V / V.norm(dim=0, keepdim=True)).to(A.dtype)


# ---------------------------------------------------------------- message_passing


def mp_fancy_index(X, edge_index, edge_weight):
    # out[dst] += ... keeps only one message per destination when dst repeats
    src, dst = edge_index
    out = torch.zeros_like(X)
    out[dst] += edge_weight[:, None] * X[src]
    return out


def mp_swapped(X, edge_index, edge_weight):
    # messages flow dst -> src
    src, dst = edge_index
    return torch.zeros_like(X).index_add_(0, src, edge_weight[:, None] * X[dst])


def mp_unweighted(X, edge_index, edge_weight):
    # ignores the weights
    src, dst = edge_index
    return torch.zeros_like(X).index_add_(0, dst, X[src])


def mp_mean(X, edge_index, edge_weight):
    # mean instead of sum
    src, dst = edge_index
    out = torch.zeros_like(X).index_add_(0, dst, edge_weight[:, None] * X[src])
    cnt = torch.zeros(len(X), dtype=X.dtype).index_add_(0, dst, torch.ones(len(dst), dtype=X.dtype))
    return out / cnt.clamp_min(1)[:, None]


# ---------------------------------------------------------------- gcn_layer


def _a_hat(A, loops=True, power=0.5):
    At = A + torch.eye(len(A), dtype=A.dtype) if loops else A
    d = _deg(At)
    return d.pow(-power)[:, None] * At * d.pow(-power)[None, :]


def gcn_seed_version(X, A, W):
    # the seed: raw adjacency, no self-loops, no normalisation, no non-linearity
    return A @ (X @ W)


def gcn_no_self_loops(X, A, W):
    return torch.relu(_a_hat(A, loops=False) @ X @ W)


def gcn_inverse_degree(X, A, W):
    # D^-1 A~ D^-1 instead of D^-1/2 A~ D^-1/2
    return torch.relu(_a_hat(A, power=1.0) @ X @ W)


def gcn_no_relu(X, A, W):
    return _a_hat(A) @ X @ W


# ---------------------------------------------------------------- gat_attention


def _scores(h, W, a, slope=0.2):
    z = h @ W
    f = z.shape[1]
    return F.leaky_relu((z @ a[:f])[:, None] + (z @ a[f:])[None, :], slope)


def gat_softmax_all_nodes(h, A, W, a):
    # softmax over every node, not only the neighbours
    return torch.softmax(_scores(h, W, a), dim=1)


def gat_no_self(h, A, W, a):
    # forgets the node itself (and gives NaN rows to isolated nodes)
    return torch.softmax(_scores(h, W, a).masked_fill(A == 0, float("-inf")), dim=1)


def gat_swapped_halves(h, A, W, a):
    # a^T [z_u || z_v] instead of a^T [z_v || z_u]
    z = h @ W
    f = z.shape[1]
    e = F.leaky_relu((z @ a[f:])[:, None] + (z @ a[:f])[None, :], 0.2)
    mask = (A != 0) | torch.eye(len(A), dtype=torch.bool)
    return torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1)


def gat_columns(h, A, W, a):
    # softmax over the wrong axis
    mask = (A != 0) | torch.eye(len(A), dtype=torch.bool)
    return torch.softmax(_scores(h, W, a).masked_fill(~mask, float("-inf")), dim=0)


def gat_relu(h, A, W, a):
    # ReLU instead of LeakyReLU(0.2)
    mask = (A != 0) | torch.eye(len(A), dtype=torch.bool)
    return torch.softmax(_scores(h, W, a, slope=0.0).masked_fill(~mask, float("-inf")), dim=1)


def gat_multiply_mask(h, A, W, a):
    # softmax first, then zero the non-neighbours: rows no longer sum to 1
    mask = (A != 0) | torch.eye(len(A), dtype=torch.bool)
    return torch.softmax(_scores(h, W, a), dim=1) * mask


# ---------------------------------------------------------------- dirichlet_energy


def dirichlet_unnormalised(H, A):
    # tr(H^T L H) with L = D - A
    return float(torch.trace(H.T @ (torch.diag(_deg(A)) - A) @ H))


def dirichlet_double_counted(H, A):
    # sums every edge twice (i, j) and (j, i) without the 1/2
    s = _deg(A).rsqrt()
    Hn = H * s[:, None]
    diff = ((Hn[:, None, :] - Hn[None, :, :]) ** 2).sum(-1)
    return float((A * diff).sum())


def dirichlet_inverse_degree(H, A):
    # D^-1 instead of D^-1/2
    Hn = H / _deg(A)[:, None]
    diff = ((Hn[:, None, :] - Hn[None, :, :]) ** 2).sum(-1)
    return float(0.5 * (A * diff).sum())


def dirichlet_tensor(H, A):
    # returns a 0-d tensor
    s = _deg(A).rsqrt()
    return torch.trace(H.T @ (torch.eye(len(A), dtype=A.dtype) - s[:, None] * A * s[None, :]) @ H)


# ---------------------------------------------------------------- linear_interp_1d


def interp_edge_padding(x, positions):
    # clamps the indices: repeats the edge values (numpy.interp) instead of zero padding
    B, C, L = x.shape
    i0 = torch.floor(positions)
    t = (positions - i0).to(x.dtype)
    i0 = i0.long()
    g = lambda i: torch.gather(x, 2, i.clamp(0, L - 1)[:, None, :].expand(B, C, -1))  # noqa: E731
    return (1 - t)[:, None] * g(i0) + t[:, None] * g(i0 + 1)


def interp_truncate(x, positions):
    # .long() truncates towards 0: -0.5 -> 0 instead of -1
    B, C, L = x.shape
    i0 = positions.long()
    t = (positions - i0).to(x.dtype)

    def read(i):
        ok = ((i >= 0) & (i <= L - 1)).to(x.dtype)
        return torch.gather(x, 2, i.clamp(0, L - 1)[:, None, :].expand(B, C, -1)) * ok[:, None]

    return (1 - t)[:, None] * read(i0) + t[:, None] * read(i0 + 1)


def interp_nearest(x, positions):
    # rounds to the nearest sample: no interpolation, no gradient
    B, C, L = x.shape
    i = torch.round(positions).long()
    ok = ((i >= 0) & (i <= L - 1)).to(x.dtype)
    return torch.gather(x, 2, i.clamp(0, L - 1)[:, None, :].expand(B, C, -1)) * ok[:, None]


def interp_swapped_weights(x, positions):
    # t on the left sample, 1 - t on the right
    B, C, L = x.shape
    i0 = torch.floor(positions)
    t = (positions - i0).to(x.dtype)
    i0 = i0.long()

    def read(i):
        ok = ((i >= 0) & (i <= L - 1)).to(x.dtype)
        return torch.gather(x, 2, i.clamp(0, L - 1)[:, None, :].expand(B, C, -1)) * ok[:, None]

    return t[:, None] * read(i0) + (1 - t)[:, None] * read(i0 + 1)


# ---------------------------------------------------------------- deform_conv1d


def _interp(x, pos):
    from manifold_course.nn.deformable import linear_interp_1d

    return linear_interp_1d(x, pos)


def _deform(x, w, positions_fn, padding, flip=False):
    B, C, L = x.shape
    O, _, K = w.shape
    L_out = L + 2 * padding - K + 1
    pos = positions_fn(L_out, K)                                          # (B, L_out, K)
    cols = _interp(x, pos.reshape(B, -1)).reshape(B, C, L_out, K)
    return torch.einsum("bcik,ock->boi", cols, w.flip(-1) if flip else w)


def deform_offset_sign(x, w, offsets, padding=0):
    # subtracts the offsets
    base = lambda L_out, K: (torch.arange(L_out)[:, None] - padding + torch.arange(K)).to(offsets.dtype)  # noqa: E731
    return _deform(x, w, lambda L_out, K: base(L_out, K)[None] - offsets, padding)


def deform_rounded(x, w, offsets, padding=0):
    # rounds the sampling positions: right for integer offsets, wrong (and no gradient) otherwise
    base = lambda L_out, K: (torch.arange(L_out)[:, None] - padding + torch.arange(K)).to(offsets.dtype)  # noqa: E731
    return _deform(x, w, lambda L_out, K: torch.round(base(L_out, K)[None] + offsets), padding)


def deform_flipped_kernel(x, w, offsets, padding=0):
    # a true convolution (flipped kernel) instead of PyTorch's cross-correlation
    base = lambda L_out, K: (torch.arange(L_out)[:, None] - padding + torch.arange(K)).to(offsets.dtype)  # noqa: E731
    return _deform(x, w, lambda L_out, K: base(L_out, K)[None] + offsets, padding, flip=True)


def deform_one_offset_per_output(x, w, offsets, padding=0):
    # uses the offset of tap 0 for every tap
    base = lambda L_out, K: (torch.arange(L_out)[:, None] - padding + torch.arange(K)).to(offsets.dtype)  # noqa: E731
    return _deform(x, w, lambda L_out, K: base(L_out, K)[None] + offsets[:, :, :1], padding)


# ---------------------------------------------------------------- dynamic_conv1d


def _mixed_conv(x, kernels, weights, padding):
    out = []
    for b in range(x.shape[0]):
        Wb = torch.einsum("k,kocj->ocj", weights[b], kernels)
        out.append(F.conv1d(x[b:b + 1], Wb, padding=padding)[0])
    return torch.stack(out)


def dynamic_first_sample_weights(x, kernels, weights, padding=0):
    # one kernel for the whole batch: the first sample's mixture
    return _mixed_conv(x, kernels, weights[:1].expand_as(weights), padding)


def dynamic_softmax_again(x, kernels, weights, padding=0):
    # applies a softmax to weights that are already the mixing coefficients
    return _mixed_conv(x, kernels, torch.softmax(weights, dim=1), padding)


def dynamic_mean_kernel(x, kernels, weights, padding=0):
    # ignores the router: the average kernel
    return _mixed_conv(x, kernels, torch.full_like(weights, 1.0 / weights.shape[1]), padding)


WRONG = {
    "gnn.graph_laplacians": [laplacians_wrong_sign, laplacians_sym_is_normalized_adjacency,
                             laplacians_sym_with_inverse_degree, laplacians_rw_columns, laplacians_numpy],
    "gnn.normalized_adjacency": [norm_adj_no_self_loops, norm_adj_row_normalised, norm_adj_degrees_before_loops,
                                 norm_adj_ignores_flag],
    "gnn.spectral_embedding": [spectral_largest, spectral_rows, spectral_skip_first, spectral_unnormalised,
                               spectral_random_walk],
    "gnn.message_passing": [mp_fancy_index, mp_swapped, mp_unweighted, mp_mean],
    "gnn.gcn_layer": [gcn_seed_version, gcn_no_self_loops, gcn_inverse_degree, gcn_no_relu],
    "gnn.gat_attention": [gat_softmax_all_nodes, gat_no_self, gat_swapped_halves, gat_columns, gat_relu,
                          gat_multiply_mask],
    "gnn.dirichlet_energy": [dirichlet_unnormalised, dirichlet_double_counted, dirichlet_inverse_degree,
                             dirichlet_tensor],
    "gnn.linear_interp_1d": [interp_edge_padding, interp_truncate, interp_nearest, interp_swapped_weights],
    "gnn.deform_conv1d": [deform_offset_sign, deform_rounded, deform_flipped_kernel, deform_one_offset_per_output],
    "gnn.dynamic_conv1d": [dynamic_first_sample_weights, dynamic_softmax_again, dynamic_mean_kernel],
}

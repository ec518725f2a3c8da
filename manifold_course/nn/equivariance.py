r"""Inductive bias, measured: equivariance of convolution and attention, invariance by pooling, locality of RNNs.

A map $f$ is *equivariant* to a pair of transformations $(T, T')$ when $f(Tx) = T'f(x)$ and *invariant* when
$T' = \mathrm{id}$. Convolution with circular padding commutes with circular shifts; global pooling then removes
the position, giving invariance. Self-attention without positions,
$\mathrm{Attn}(X) = \mathrm{softmax}(XW_q (XW_k)^\top/\sqrt{d_k})\,XW_v$, satisfies $\mathrm{Attn}(PX) = P\,\mathrm{Attn}(X)$
for every permutation matrix $P$ (A. Vaswani et al., "Attention is all you need", NeurIPS 2017,
arXiv:1706.03762); adding sinusoidal positions breaks it. A recurrent net $h_t = \tanh(W_x x_t + W_h h_{t-1} + b)$
is causal, and with a contracting $W_h$ the influence $\|\partial h_t/\partial x_s\|$ decays with $t - s$.
The exact symmetries of an MLP (permuting hidden units; rescaling a ReLU unit's input by $c > 0$ and its output
by $1/c$) leave the function unchanged; a rotation of the hidden layer does not, because the ReLU acts
coordinate by coordinate (SYLLABUS F5).
Shapes: ``B`` batch, ``C`` channels, ``T`` time / tokens, ``D`` model width, ``H`` hidden units.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

Tensor = torch.Tensor


def equivariance_error(f: Callable[[Tensor], Tensor], t_in: Callable[[Tensor], Tensor],
                       t_out: Callable[[Tensor], Tensor], x: Tensor) -> float:
    r"""Relative equivariance error $\|f(T x) - T' f(x)\|_F / \|T' f(x)\|_F$ (a Python float; 0 for an exact
    equivariance, up to rounding). Invariance is the case ``t_out = lambda y: y``."""
    with torch.no_grad():
        lhs = f(t_in(x))                                     # f(T x)
        rhs = t_out(f(x))                                    # T' f(x)
        return float((lhs - rhs).norm() / rhs.norm().clamp_min(torch.finfo(rhs.dtype).tiny))


def shift(x: Tensor, s: int | tuple[int, ...], dims: int | tuple[int, ...] = -1) -> Tensor:
    """Circular shift by ``s`` positions along ``dims`` (``torch.roll``): the translation of a periodic signal."""
    return torch.roll(x, shifts=s, dims=dims)


def circular_conv1d(x: Tensor, w: Tensor) -> Tensor:
    r"""$(x * w)[i] = \sum_k w[k]\,x[(i + k - \lfloor K/2\rfloor) \bmod T]$: x (B, C_in, T), w (C_out, C_in, K) -> (B, C_out, T)."""
    K = w.shape[-1]
    return F.conv1d(F.pad(x, (K // 2, K - 1 - K // 2), mode="circular"), w)


def sinusoidal_positions(T: int, D: int, base: float = 10000.0) -> Tensor:
    r"""$PE[t, 2i] = \sin(t/\text{base}^{2i/D})$, $PE[t, 2i+1] = \cos(t/\text{base}^{2i/D})$ (Vaswani et al. 2017): (T, D)."""
    t = torch.arange(T, dtype=torch.float64)[:, None]                             # (T, 1)
    freq = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)               # (ceil(D/2),)
    pe = torch.zeros(T, D, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(t * freq)
    pe[:, 1::2] = torch.cos(t * freq[: D // 2])
    return pe


def self_attention(X: Tensor, Wq: Tensor, Wk: Tensor, Wv: Tensor, pe: Tensor | None = None) -> Tensor:
    r"""One head of self-attention: $Y = \mathrm{softmax}\big(QK^\top/\sqrt{d_k}\big)V$ with $Q = XW_q$, $K = XW_k$,
    $V = XW_v$, after adding the positions ``pe`` to ``X`` when given.

    X (..., T, D), Wq and Wk (D, d_k), Wv (D, d_v), pe (T, D) or None -> Y (..., T, d_v).
    """
    if pe is not None:
        X = X + pe.to(X.dtype)                                                     # positions enter with the tokens
    Q, K, V = X @ Wq, X @ Wk, X @ Wv                                               # (..., T, d_k/d_k/d_v)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Wq.shape[-1])                     # (..., T, T): S = QK^T / sqrt(d_k)
    return torch.softmax(scores, dim=-1) @ V                                       # each row of weights sums to 1


def permute_rows(P: Tensor) -> Callable[[Tensor], Tensor]:
    """The token permutation ``X -> X[..., perm, :]`` as a function (``P`` is the index tensor ``perm``)."""
    return lambda X: X[..., P, :]


def influence_matrix(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""$G[t, s] = \|\partial y_t / \partial x_s\|_F$ for a sequence map $y = f(x)$: x (T, D_in) -> y (T, D_out).

    Returns (T, T). Lower-triangular for a causal map (an RNN); banded for a convolution; full for attention."""
    J = torch.autograd.functional.jacobian(f, x)                                   # (T, D_out, T, D_in)
    return J.pow(2).sum(dim=(1, 3)).sqrt()                                         # (T, T)


def rnn_influence(rnn: nn.RNN, x: Tensor) -> Tensor:
    r"""$G[t, s] = \|\partial h_t / \partial x_s\|_F$ for a single-layer ``nn.RNN(batch_first=True)`` on one sequence
    x (T, D_in): the hidden states $h_t = \tanh(W_{ih}x_t + W_{hh}h_{t-1} + b)$ as a function of the inputs."""
    return influence_matrix(lambda seq: rnn(seq[None])[0][0], x)


def influence_by_lag(G: Tensor) -> Tensor:
    r"""Mean of $G[t, t - \ell]$ over $t$, for each lag $\ell = 0..T-1$: how much an input $\ell$ steps back matters."""
    T = G.shape[0]
    return torch.stack([torch.diagonal(G, offset=-lag).mean() for lag in range(T)])   # (T,)


# ---------------------------------------------------------------- exact symmetries of a one-hidden-layer MLP (F5)


def _copy_mlp(net: nn.Sequential, W1: Tensor, b1: Tensor, W2: Tensor) -> nn.Sequential:
    """A copy of ``Linear -> act -> Linear`` with new first-layer weights/bias and second-layer weights."""
    out = nn.Sequential(nn.Linear(W1.shape[1], W1.shape[0]), net[1], nn.Linear(W2.shape[1], W2.shape[0]))
    with torch.no_grad():
        out[0].weight.copy_(W1)
        out[0].bias.copy_(b1)
        out[2].weight.copy_(W2)
        out[2].bias.copy_(net[2].bias)
    return out


def permute_hidden(net: nn.Sequential, perm: Tensor) -> nn.Sequential:
    r"""Relabel the hidden units: $W_1 \to PW_1$, $b_1 \to Pb_1$, $W_2 \to W_2P^\top$. The function is unchanged."""
    W1, b1, W2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()
    return _copy_mlp(net, W1[perm], b1[perm], W2[:, perm])


def rescale_hidden(net: nn.Sequential, c: Tensor) -> nn.Sequential:
    r"""$W_1 \to \mathrm{diag}(c)W_1$, $b_1 \to c \odot b_1$, $W_2 \to W_2\,\mathrm{diag}(1/c)$ with $c > 0$:
    unchanged for ReLU because $\mathrm{ReLU}(cz) = c\,\mathrm{ReLU}(z)$."""
    W1, b1, W2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()
    return _copy_mlp(net, c[:, None] * W1, c * b1, W2 / c[None, :])


def rotate_hidden(net: nn.Sequential, Q: Tensor) -> nn.Sequential:
    r"""$W_1 \to QW_1$, $b_1 \to Qb_1$, $W_2 \to W_2Q^\top$ with $Q$ orthogonal: an exact symmetry only when the
    activation is linear; ReLU, applied coordinate by coordinate, singles out the basis."""
    W1, b1, W2 = net[0].weight.detach(), net[0].bias.detach(), net[2].weight.detach()
    return _copy_mlp(net, Q @ W1, Q @ b1, W2 @ Q.T)


def relative_change(f: Callable[[Tensor], Tensor], g: Callable[[Tensor], Tensor], X: Tensor) -> float:
    r"""$\|g(X) - f(X)\|_F / \|f(X)\|_F$: how much a re-parameterisation changed the function on the data ``X``."""
    with torch.no_grad():
        a, b = f(X), g(X)
        return float((b - a).norm() / a.norm())

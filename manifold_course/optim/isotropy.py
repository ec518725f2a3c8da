r"""Why isotropic inputs help: steepest descent in parameters versus steepest descent in features.

For a linear layer $Y = XW$ with inputs $X$ (b, d_in), weights $W$ (d_in, d_out) and $G = \partial L/\partial Y$
(b, d_out), the weight gradient is $\partial L/\partial W = X^\top G$, so a gradient step moves the features by

$$\Delta Y = X (W - \eta X^\top G) - XW = -\eta\, X X^\top G,$$

not by the feature-space steepest direction $-\eta G$. The Gram matrix $XX^\top$ (b, b) tilts the update; only
when $XX^\top \propto I$ (isotropic, "whitened" inputs) do the two agree. With Muon's update
$W \leftarrow W - \eta\,\mathrm{msign}(X^\top G)$ and $XX^\top = I$, one gets $\Delta Y = -\eta\,\mathrm{msign}(G)$:
spectral-norm steepest descent in features. (Su Jianlin, "Why do we prefer isotropy? An understanding based
on steepest descent", Scientific Spaces blog, 2026, kexue.fm/archives/11549; prompted by "The Affine
Divergence: Aligning Activation Updates Beyond Normalisation", 2025, arXiv:2512.22247.)
"""

from __future__ import annotations

import math

import torch

from manifold_course.optim.msign import msign_svd
from manifold_course.seeding import torch_generator


def feature_update(X: torch.Tensor, dLdY: torch.Tensor, eta: float) -> torch.Tensor:
    r"""$\Delta Y = -\eta\, X X^\top \partial L/\partial Y$ (b, d_out): how one SGD step on W moves the outputs."""
    return -eta * X @ (X.T @ dLdY)                                   # (b, d_in) @ (d_in, d_out)


def cosine(A: torch.Tensor, B: torch.Tensor) -> float:
    r"""Cosine of the angle between two matrices seen as vectors: $\langle A, B\rangle_F / (\|A\|_F \|B\|_F)$."""
    return float((A * B).sum() / (A.norm() * B.norm()))


def update_alignment(X: torch.Tensor, dLdY: torch.Tensor) -> float:
    r"""Cosine between the feature update $-XX^\top G$ of a parameter step and the feature steepest direction $-G$.

    Equals 1 exactly when $XX^\top = cI$; it is $\ge 0$ always, because $XX^\top$ is positive semi-definite.
    """
    return cosine(X @ (X.T @ dLdY), dLdY)


def whiten(X: torch.Tensor, rtol: float = 1e-10) -> torch.Tensor:
    r"""$XA$ with $A = (X^\top X)^{-1/2}$ (pseudo-inverse square root on the row space of X), i.e. $U V^\top$.

    If $b \le d_{in}$ and X has full row rank, the rows become orthonormal: $(XA)(XA)^\top = I_b$.
    If $b \ge d_{in}$, the columns become orthonormal: $(XA)^\top(XA) = I$, and $(XA)(XA)^\top$ is a projection.
    Singular values below ``rtol`` times the largest are treated as zero.
    """
    U, S, Vh = torch.linalg.svd(X, full_matrices=False)             # X = U diag(S) Vh
    keep = S > rtol * S.max()
    return U[:, keep] @ Vh[keep]                                     # X A = U V^T on the kept directions


def inputs_with_condition(b: int, d_in: int, kappa: float, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    r"""Inputs X (b, d_in), b <= d_in, whose Gram matrix $XX^\top$ has condition number exactly ``kappa``.

    $X = U\,\mathrm{diag}(s)\,V^\top$ with random orthonormal U, V and $s_i^2$ log-spaced from 1 to kappa.
    """
    if b > d_in:
        raise ValueError(f"need b <= d_in for a full-rank Gram matrix, got b={b}, d_in={d_in}")
    gen = torch_generator(seed)
    U, _ = torch.linalg.qr(torch.randn(b, b, generator=gen, dtype=dtype))
    V, _ = torch.linalg.qr(torch.randn(d_in, b, generator=gen, dtype=dtype))
    s = torch.logspace(0, math.log10(kappa), b, dtype=dtype).sqrt()           # singular values: sqrt of 1..kappa
    return U @ torch.diag(s) @ V.T


def muon_feature_update(X: torch.Tensor, dLdY: torch.Tensor, eta: float) -> torch.Tensor:
    r"""$\Delta Y = -\eta\, X\,\mathrm{msign}(X^\top G)$: the feature change of one Muon step on W."""
    return -eta * X @ msign_svd(X.T @ dLdY)


def signsgd_feature_update(X: torch.Tensor, dLdY: torch.Tensor, eta: float) -> torch.Tensor:
    r"""$\Delta Y = -\eta\, X\,\mathrm{sign}(X^\top G)$: the feature change of one SignSGD step on W."""
    return -eta * X @ torch.sign(X.T @ dLdY)

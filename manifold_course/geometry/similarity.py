r"""How alike are two representations of the same inputs? Linear centred kernel alignment (CKA).

Given the features of the same $n$ inputs in two layers or two models, $X$ ($n\times p$) and $Y$ ($n\times q$), with
each column centred, linear CKA (S. Kornblith, M. Norouzi, H. Lee, G. Hinton, "Similarity of Neural Network
Representations Revisited", 2019, arXiv:1905.00414) is

$$\mathrm{CKA}(X, Y) = \frac{\|Y^\top X\|_F^2}{\|X^\top X\|_F\,\|Y^\top Y\|_F} \in [0, 1],$$

the normalised alignment of the two Gram matrices $XX^\top$ and $YY^\top$. It is 1 for features equal up to an
orthogonal transformation and an isotropic scale (and a shift, removed by the centring), so it compares what two
representations encode, not their coordinates.
"""

from __future__ import annotations

import torch


def linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    r"""Linear CKA of ``X`` (n, p) and ``Y`` (n, q), the features of the same n inputs (module docstring)."""
    X = X.double() - X.double().mean(0)
    Y = Y.double() - Y.double().mean(0)
    return float((Y.T @ X).pow(2).sum() / ((X.T @ X).norm() * (Y.T @ Y).norm()))

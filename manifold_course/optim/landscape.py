r"""Looking at a loss landscape: filter-normalised random slices, roughness, lesions and the path view of ResNets.

A network has millions of parameters, so we look at its loss on a 2-D slice through the trained point $\theta^*$:

$$f(\alpha, \beta) = L(\theta^* + \alpha\,\delta + \beta\,\eta),$$

with random directions $\delta, \eta$. Raw Gaussian directions are misleading because networks with ReLUs (and
BatchNorm) are invariant to rescaling a filter: a layer with small weights looks sharp, one with big weights flat.
**Filter normalisation** (H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein, "Visualizing the Loss Landscape of Neural
Nets", NeurIPS 2018, arXiv:1712.09913) rescales every filter of the direction to the norm of the same filter of the
weights, $\delta_{i,j} \leftarrow \delta_{i,j}\,\|\theta_{i,j}\| / \|\delta_{i,j}\|$ (filter $j$ of layer $i$; for a fully
connected layer a filter is one output unit's incoming weights, a row of the weight matrix), and sets the direction
to zero on biases and BatchNorm parameters (1-D tensors). A step $\alpha = 1$ then changes every filter by as
much as its own size.

Roughness of a slice: the fraction of grid points where the 2-D slice Hessian has a clearly negative eigenvalue
(in the spirit of Li et al.'s $|\lambda_{min}/\lambda_{max}|$ maps, here for the 2-D slice), and its total variation.

The path view (A. Veit, M. Wilber, S. Belongie, "Residual Networks Behave Like Ensembles of Relatively Shallow
Networks", NeurIPS 2016, arXiv:1605.06431): for linear blocks $\prod_{i=1}^n (I + F_i) = \sum_{S \subseteq [n]}\prod_{i\in S} F_i$
is a sum of $2^n$ paths, of which $\binom nk$ pass through $k$ blocks, so path lengths are Binomial(n, 1/2).
Deleting one block removes only the paths through it; in a plain network it removes all of them.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from manifold_course.seeding import torch_generator

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def filter_normalize(direction: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    r"""Li et al.'s filter normalisation: a new list; the inputs are left unchanged.

    For a tensor with >= 2 dimensions, every slice along dim 0 (a filter: a row of a Linear weight, an output
    channel of a conv kernel) is rescaled to $d_j \,\|\theta_j\| / (\|d_j\| + 10^{-10})$; 1-D tensors (biases,
    norm gains) get a zero direction.
    """
    out = []
    for d, p in zip(direction, params):
        if p.dim() <= 1:
            out.append(torch.zeros_like(d))                            # biases and BN/LN parameters: not perturbed
            continue
        d_flat, p_flat = d.reshape(d.shape[0], -1), p.detach().reshape(p.shape[0], -1)   # (filters, rest)
        scale = p_flat.norm(dim=1, keepdim=True) / (d_flat.norm(dim=1, keepdim=True) + 1e-10)
        out.append((d_flat * scale).reshape(d.shape))
    return out


def random_direction(params: Sequence[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
    """A Gaussian direction with the shapes of ``params``, filter-normalised."""
    gen = torch_generator(seed)
    raw = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
    return filter_normalize(raw, params)


@torch.no_grad()
def loss_surface_2d(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                    d1: Sequence[torch.Tensor], d2: Sequence[torch.Tensor],
                    alphas: Sequence[float], betas: Sequence[float]) -> torch.Tensor:
    r"""Grid (len(alphas), len(betas)) of $L(\theta^* + \alpha_i d_1 + \beta_j d_2)$ = ``loss_fn(model(X), y)``.

    ``d1`` and ``d2`` list one tensor per ``model.parameters()``. The parameters are copied before and copied back
    afterwards (exactly: subtracting the step again would leave round-off), even if the loss raises.
    """
    params = list(model.parameters())
    theta = [p.detach().clone() for p in params]                       # theta*, saved
    grid = torch.empty(len(alphas), len(betas), dtype=torch.float64)
    try:
        for i, a in enumerate(alphas):
            for j, b in enumerate(betas):
                for p, t, u, v in zip(params, theta, d1, d2):
                    p.copy_(t + a * u + b * v)                         # theta* + alpha d1 + beta d2
                grid[i, j] = float(loss_fn(model(X), y))
    finally:
        for p, t in zip(params, theta):
            p.copy_(t)                                                 # restore theta* bit for bit
    return grid


def loss_along_line(model: nn.Module, loss_fn: LossFn, X: torch.Tensor, y: torch.Tensor,
                    d: Sequence[torch.Tensor], ts: Sequence[float]) -> np.ndarray:
    r"""$L(\theta^* + t\,d)$ for every t (len(ts),): a 1-D slice."""
    zeros = [torch.zeros_like(u) for u in d]
    return loss_surface_2d(model, loss_fn, X, y, d, zeros, ts, [0.0])[:, 0].numpy()


def slice_hessian_eigenvalues(grid: np.ndarray | torch.Tensor, alphas: Sequence[float],
                              betas: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r"""Eigenvalues $(\lambda_{min}, \lambda_{max})$ of the 2x2 Hessian of the slice at every interior grid point.

    Central differences on a uniform grid with steps $h_\alpha, h_\beta$: $f_{\alpha\alpha} \approx (f_{i+1,j} - 2f_{ij} + f_{i-1,j})/h_\alpha^2$,
    $f_{\alpha\beta} \approx (f_{i+1,j+1} - f_{i+1,j-1} - f_{i-1,j+1} + f_{i-1,j-1})/(4h_\alpha h_\beta)$. Two arrays (n_a - 2, n_b - 2).
    """
    f = np.asarray(grid, dtype=np.float64)
    ha, hb = float(alphas[1] - alphas[0]), float(betas[1] - betas[0])
    faa = (f[2:, 1:-1] - 2 * f[1:-1, 1:-1] + f[:-2, 1:-1]) / ha**2
    fbb = (f[1:-1, 2:] - 2 * f[1:-1, 1:-1] + f[1:-1, :-2]) / hb**2
    fab = (f[2:, 2:] - f[2:, :-2] - f[:-2, 2:] + f[:-2, :-2]) / (4 * ha * hb)
    mean, radius = (faa + fbb) / 2, np.sqrt(((faa - fbb) / 2) ** 2 + fab**2)   # eigenvalues of [[faa, fab], [fab, fbb]]
    return mean - radius, mean + radius


def nonconvex_fraction(grid, alphas, betas, rel: float = 0.05) -> float:
    r"""Share of interior grid points where $\lambda_{min} < 0$ and $|\lambda_{min}| > \mathrm{rel}\cdot|\lambda_{max}|$."""
    lo, hi = slice_hessian_eigenvalues(grid, alphas, betas)
    return float(np.mean((lo < 0) & (np.abs(lo) > rel * np.abs(hi))))


def _grid_steps(grid) -> np.ndarray:
    """Absolute differences between neighbouring grid values along both axes, flattened."""
    f = np.asarray(grid, dtype=np.float64)
    return np.concatenate([np.abs(np.diff(f, axis=0)).ravel(), np.abs(np.diff(f, axis=1)).ravel()])


def total_variation(grid) -> float:
    """Mean absolute difference between neighbouring grid values (both axes): how much the surface goes up and down."""
    return float(_grid_steps(grid).mean())


def cliff_ratio(grid, q: float = 0.95) -> float:
    """The q-quantile of the steps between neighbouring grid values over their median: a scale-free cliff detector.

    A smooth bowl sampled on a grid has steps that grow steadily towards its rim (ratio of a few); a plateau cut by
    cliffs has many tiny steps and a few huge ones (ratio in the tens or hundreds). Multiplying the surface by a
    constant leaves the ratio unchanged, unlike ``total_variation``.
    """
    steps = _grid_steps(grid)
    return float(np.quantile(steps, q) / max(float(np.median(steps)), 1e-300))


def excess_variation(grid) -> float:
    r"""Total variation along every grid line divided by what a valley-shaped line would need, averaged over lines.

    A line that goes down to its minimum and then up (or is monotone) has variation
    $(f_{first} - f_{min}) + (f_{last} - f_{min})$; every extra bump adds to the ratio. 1 means no bumps at all.
    """
    f = np.asarray(grid, dtype=np.float64)
    ratios = []
    for line in list(f) + list(f.T):
        need = (line[0] - line.min()) + (line[-1] - line.min())
        ratios.append(np.abs(np.diff(line)).sum() / max(need, 1e-12))
    return float(np.mean(ratios))


@torch.no_grad()
def lesion_accuracy(model: nn.Module, block_idx: int, X: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of a :class:`~manifold_course.nn.mlp.DeepMLP` with block ``block_idx`` deleted (its input passed on
    unchanged), as in Veit et al.'s lesion study. The model is not modified."""
    h = model.stem(X)                                                  # (B, D)
    for i, block in enumerate(model.blocks):
        if i != block_idx:
            h = block(h)                                               # the deleted block is skipped: h -> h
    return float((model.head(h).argmax(dim=1) == y).double().mean())


def path_length_distribution(n: int) -> np.ndarray:
    r"""Share of the $2^n$ paths of an unrolled n-block residual net that pass through k blocks: $\binom nk / 2^n$ (n + 1,).

    Exact integer binomials divided by the exact integer $2^n$ (Python divides big integers correctly), so no
    overflow for large n: tail entries below the smallest float64 become 0.
    """
    return np.array([math.comb(n, k) / 2**n for k in range(n + 1)], dtype=np.float64)


def structure_function_exponents(f: np.ndarray, qs: Sequence[float], lags: Sequence[int]) -> np.ndarray:
    r"""Scaling exponents $\zeta(q)$ of a 1-D profile: slopes of $\log S_q(\ell)$ against $\log \ell$, with
    $S_q(\ell) = \langle |f(s + \ell) - f(s)|^q\rangle$. A smooth profile has $\zeta(q) = q$ at small lags, a Brownian one
    $q/2$; a $\zeta$ that is not linear in q is the multifractal signature (Ly & Gong 2025, Nat. Commun. 16)."""
    f = np.asarray(f, dtype=np.float64)
    logl = np.log(np.asarray(lags, dtype=np.float64))
    zetas = []
    for q in qs:
        logS = np.log([np.mean(np.abs(f[lag:] - f[:-lag]) ** q) for lag in lags])
        zetas.append(np.polyfit(logl, logS, 1)[0])
    return np.array(zetas)

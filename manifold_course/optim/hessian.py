r"""The Hessian of a loss: full matrix, Hessian-vector products, top eigenvalues, spectrum summary.

Every function takes a *loss closure* ``loss_fn() -> scalar tensor`` and the list of parameters
``params`` it depends on (leaf tensors with ``requires_grad=True``), so the same code serves a 2-D toy
function, the 121-parameter MLP of Chapter 0.14 and the networks of Volume 1. For an ``nn.Module`` build
the pair with :func:`model_loss_closure`. Vectors over parameters are flat: shape (P,), P = total number
of scalars, in the order of ``params``.

- $H_{ij} = \partial^2 L / \partial\theta_i \partial\theta_j$ (P, P): P backward passes, P^2 numbers.
- $Hv = \nabla_\theta (\nabla_\theta L \cdot v)$: two backward passes ("double backward",
  Pearlmutter, "Fast Exact Multiplication by the Hessian", Neural Computation 1994), never forms H.
- Power iteration and Lanczos find the extreme eigenvalues from HVPs alone (Yao et al., "PyHessian:
  Neural Networks Through the Lens of the Hessian", 2019, arXiv:1912.07145).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from manifold_course.seeding import torch_generator

LossFn = Callable[[], torch.Tensor]


def model_loss_closure(model: nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                       batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[LossFn, list[torch.Tensor]]:
    """``(closure, params)`` for the loss of ``model`` on ``batch = (X, y)``; params are the trainable ones."""
    X, y = batch
    params = [p for p in model.parameters() if p.requires_grad]
    return (lambda: loss_fn(model(X), y)), params


def num_params(params: Sequence[torch.Tensor]) -> int:
    return sum(p.numel() for p in params)


def flat_grad(loss_fn: LossFn, params: Sequence[torch.Tensor], create_graph: bool = False) -> torch.Tensor:
    r"""$\nabla_\theta L$ as one flat vector (P,); parameters the loss does not use get zeros."""
    grads = torch.autograd.grad(loss_fn(), list(params), create_graph=create_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def hvp(loss_fn: LossFn, params: Sequence[torch.Tensor], v: torch.Tensor) -> torch.Tensor:
    r"""Hessian-vector product $Hv = \nabla_\theta\big(\nabla_\theta L(\theta)^\top v\big)$, (P,) -> (P,).

    The first ``grad`` keeps its graph (``create_graph=True``) so the scalar $g^\top v$ can be
    differentiated again; ``v`` is treated as a constant.
    """
    params = list(params)
    g = flat_grad(loss_fn, params, create_graph=True)               # (P,), differentiable
    gv = (g * v.detach().to(g.dtype)).sum()                          # scalar g^T v
    if not gv.requires_grad:                                         # loss linear in params: H = 0
        return torch.zeros_like(g).detach()
    hv = torch.autograd.grad(gv, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(hv, params)]).detach()


def full_hessian(loss_fn: LossFn, params: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""The explicit Hessian (P, P): row $i$ is $\nabla_\theta (\partial L / \partial\theta_i)$ (the seed's loop).

    Cost: one backward pass per parameter, P^2 numbers of memory. Only for small P (hundreds to a few thousand).
    """
    params = list(params)
    g = flat_grad(loss_fn, params, create_graph=True)                # (P,)
    rows = []
    for i in range(g.numel()):
        if not g[i].requires_grad:                                   # this gradient entry is constant
            rows.append(torch.zeros_like(g))
            continue
        r = torch.autograd.grad(g[i], params, retain_graph=True, allow_unused=True)
        rows.append(torch.cat([(torch.zeros_like(p) if h is None else h).reshape(-1) for h, p in zip(r, params)]))
    return torch.stack(rows).detach()                                # (P, P)


def top_hessian_eigenvalue(loss_fn: LossFn, params: Sequence[torch.Tensor], iters: int = 100,
                           tol: float = 1e-7, seed: int = 0) -> float:
    r"""Eigenvalue of largest magnitude by power iteration on HVPs: $v \leftarrow Hv / \|Hv\|$, $\lambda = v^\top H v$.

    The Rayleigh quotient keeps the sign (a dominant negative eigenvalue comes out negative). Near a
    minimum the dominant eigenvalue is $\lambda_{\max}$, the *sharpness*. Stops early when $\lambda$ changes
    by less than ``tol`` (relative). Convergence rate: $(|\lambda_2| / |\lambda_1|)^{2k}$.
    """
    params = list(params)
    P = num_params(params)
    gen = torch_generator(seed)
    v = torch.randn(P, generator=gen, dtype=params[0].dtype)
    v = v / v.norm()
    lam = 0.0
    for _ in range(iters):
        Hv = hvp(loss_fn, params, v)
        new_lam = float(v @ Hv)                                      # Rayleigh quotient v^T H v, ||v|| = 1
        norm = Hv.norm()
        if norm == 0:
            return 0.0
        v = Hv / norm
        if abs(new_lam - lam) <= tol * max(abs(new_lam), 1e-30):
            return new_lam
        lam = new_lam
    return lam


def lanczos_top_k(loss_fn: LossFn, params: Sequence[torch.Tensor], k: int = 5, which: str = "LA",
                  tol: float = 1e-10) -> np.ndarray:
    r"""The ``k`` largest (``which="LA"``) or smallest (``"SA"``) eigenvalues from HVPs, via ARPACK's Lanczos.

    ``scipy.sparse.linalg.eigsh`` only needs $v \mapsto Hv$, wrapped as a ``LinearOperator``; returns (k,) ascending.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh

    params = list(params)
    P = num_params(params)
    dtype = params[0].dtype

    def matvec(x: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(np.asarray(x).reshape(-1), dtype=dtype)
        return hvp(loss_fn, params, v).double().numpy()

    op = LinearOperator((P, P), matvec=matvec, dtype=np.float64)
    vals = eigsh(op, k=k, which=which, tol=tol, return_eigenvectors=False, v0=np.ones(P) / np.sqrt(P))
    return np.sort(vals)


def spectrum_summary(eigs: np.ndarray | torch.Tensor, tol: float = 1e-4) -> dict[str, float]:
    r"""A few numbers that describe a Hessian spectrum (eigenvalues in any order).

    ``lam_max``, ``lam_min``; ``neg_frac`` = fraction with $\lambda < -$tol (saddle directions);
    ``bulk_frac`` = fraction with $|\lambda| \le$ tol (flat directions).
    """
    e = torch.as_tensor(eigs).detach().double().cpu().numpy().reshape(-1)
    return {
        "lam_max": float(e.max()),
        "lam_min": float(e.min()),
        "neg_frac": float((e < -tol).mean()),
        "bulk_frac": float((np.abs(e) <= tol).mean()),
    }

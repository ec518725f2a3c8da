r"""The matrix sign msign(M) = U V^T, by SVD and by Newton-Schulz, and the Muon optimiser built on it.

For $M = U \Sigma V^\top$ (reduced SVD), $\mathrm{msign}(M) = M (M^\top M)^{-1/2} = U V^\top$: every singular value
set to 1. It is the steepest-descent direction under the spectral norm (Bernstein & Newhouse, "Old Optimizer,
New Norm: An Anthology", 2024, arXiv:2409.20325).

Newton-Schulz iterations need only matrix products (fast on GPUs). Start from $X_0 = M / \|M\|_F$, so that
every singular value lies in (0, 1]; an odd polynomial $p$ acts on each singular value separately:
$X \leftarrow p(X) = a X + b (XX^\top) X + c (XX^\top)^2 X$.

- cubic: $p(\sigma) = \tfrac32\sigma - \tfrac12\sigma^3$, converges to 1 (quadratically near 1);
- Muon's quintic $(a, b, c) = (3.4445, -4.7750, 2.0315)$ pushes small singular values up fast but does not
  converge to 1: after about 5 steps they oscillate in a band around 1 (K. Jordan et al., "Muon: An
  optimizer for hidden layers in neural networks", blog post, 2024; Liu et al., "Muon is Scalable for LLM
  Training", 2025, arXiv:2502.16982).
"""

from __future__ import annotations

import torch

CUBIC = (1.5, -0.5, 0.0)
QUINTIC = (3.4445, -4.7750, 2.0315)


def msign_svd(M: torch.Tensor) -> torch.Tensor:
    r"""$U V^\top$ from the reduced SVD of ``M`` (m, n) -> (m, n)."""
    U, _, Vh = torch.linalg.svd(M, full_matrices=False)             # U (m, k), Vh (k, n), k = min(m, n)
    return U @ Vh


def msign_newton_schulz(M: torch.Tensor, steps: int = 5, coeffs: str | tuple[float, float, float] = "quintic",
                        eps: float = 1e-12) -> torch.Tensor:
    r"""Approximate $\mathrm{msign}(M)$ (m, n) by ``steps`` Newton-Schulz iterations.

    ``coeffs``: ``"cubic"`` $(\tfrac32, -\tfrac12, 0)$, ``"quintic"`` (Muon's), or a tuple $(a, b, c)$.
    Works on the smaller Gram matrix: a tall ``M`` is transposed first and back at the end
    (the iteration commutes with transposition, so the result is the same).
    """
    a, b, c = {"cubic": CUBIC, "quintic": QUINTIC}.get(coeffs, coeffs) if isinstance(coeffs, str) else coeffs
    tall = M.shape[-2] > M.shape[-1]
    X = M.mT if tall else M
    X = X / (torch.linalg.matrix_norm(X, keepdim=True) + eps)      # Frobenius norm: singular values in (0, 1]
    for _ in range(steps):
        A = X @ X.mT                                                 # (m, m), m <= n
        B = b * A + c * (A @ A)
        X = a * X + B @ X                                            # a X + b (XX^T) X + c (XX^T)^2 X
    return X.mT if tall else X


class Muon(torch.optim.Optimizer):
    r"""Minimal Muon for 2-D weight matrices ("hidden matrices"; use Adam or SGD for biases, embeddings, heads).

    With momentum $\mu$ and gradient $G$: $B \leftarrow \mu B + G$, $D = G + \mu B$ (Nesterov) or $B$,
    $W \leftarrow W - \eta \sqrt{\max(1, m/n)}\;\mathrm{NS}_5(D)$ (quintic Newton-Schulz), as in K. Jordan's
    reference implementation; decoupled weight decay $W \leftarrow (1 - \eta\lambda) W$ if asked.
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 ns_steps: int = 5, weight_decay: float = 0.0):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, ns_steps=ns_steps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon updates 2-D matrices only; got a parameter of shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.mul_(group["momentum"]).add_(p.grad)
                d = p.grad.add(buf, alpha=group["momentum"]) if group["nesterov"] else buf
                update = msign_newton_schulz(d, steps=group["ns_steps"], coeffs="quintic")
                scale = max(1.0, p.shape[0] / p.shape[1]) ** 0.5
                if group["weight_decay"]:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update, alpha=-group["lr"] * scale)
        return loss

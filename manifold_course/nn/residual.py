r"""Residual connections: the ResNet block, gradient norms per layer, Jacobian spectra, and two constraint views.

K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385):
a block computes $y = \mathrm{ReLU}(F(x) + x)$ instead of $y = \mathrm{ReLU}(F(x))$. For $y = F(x) + x$,

$$\frac{\partial L}{\partial x} = \frac{\partial L}{\partial y}\Big(I + \frac{\partial F}{\partial x}\Big),\qquad
\frac{\partial x_L}{\partial x_0} = \prod_{l}(I + J_l),$$

so the identity gives the signal and the gradient a direct path. He et al. trained their plain nets *with*
BatchNorm, checked that the gradients were healthy, and called the degradation of deep plain nets (higher
*training* error) an optimisation difficulty, not vanishing gradients.

Jacobian spectra ("dynamical isometry": all singular values of $\partial x_L/\partial x_0$ near 1):
A. Saxe, J. McClelland, S. Ganguli, arXiv:1312.6120 (ICLR 2014); J. Pennington, S. Schoenholz, S. Ganguli,
arXiv:1711.04735 (NeurIPS 2017). Fixed-point (implicit) layers: S. Bai, J. Z. Kolter, V. Koltun, "Deep Equilibrium
Models", NeurIPS 2019, arXiv:1909.01377. Doubly-stochastic mixing of residual streams (Sinkhorn-Knopp projection):
DeepSeek-AI, "mHC: Manifold-Constrained Hyper-Connections", arXiv, Dec 2025; R. Sinkhorn, P. Knopp, Pacific J.
Math. 1967. Shapes: ``B`` batch, ``C`` channels, ``D`` width, ``n`` residual streams.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from manifold_course.seeding import torch_generator

Tensor = torch.Tensor


class ResBlock(nn.Module):
    """The basic ResNet block: conv3x3 -> BN -> ReLU -> conv3x3 -> BN, add the input, ReLU.

    Convolutions have no bias (BatchNorm's shift replaces it): $18C^2 + 4C$ parameters. (B, C, H, W) -> same.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:                # (B, C, H, W)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))                    # F(x)
        return F.relu(out + x)                             # ReLU(F(x) + x): the identity is added before the ReLU


def resblock_param_count(channels: int) -> int:
    """Two bias-free 3x3 convolutions ($9C^2$ each) and two BatchNorms ($2C$ each)."""
    return 18 * channels**2 + 4 * channels


def grad_norms_per_layer(model: nn.Module, x: Tensor, y: Tensor) -> list[float]:
    r"""$\|\partial L/\partial W\|_F$ for the weight of every ``nn.Linear`` in ``model.modules()`` order, with $L$ the
    mean cross-entropy of ``model(x)`` against the integer labels ``y``. Stale ``.grad`` fields are ignored."""
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    loss = F.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, weights)            # does not touch .grad
    return [float(g.norm()) for g in grads]


def jacobian_singular_values(f: Callable[[Tensor], Tensor], h: Tensor) -> Tensor:
    r"""Singular values (descending) of the Jacobian $\partial f(h)/\partial h$ of a map $\mathbb R^D \to \mathbb R^{D'}$ at one point ``h`` (D,)."""
    J = torch.autograd.functional.jacobian(f, h)          # (D', D)
    return torch.linalg.svdvals(J)


def blocks_map(model: nn.Module) -> Callable[[Tensor], Tensor]:
    """The map h -> blocks(h) through the hidden blocks of a ``manifold_course.nn.mlp.DeepMLP`` (one vector in, one out)."""
    def run(h: Tensor) -> Tensor:                          # (D,) -> (D,)
        out = h[None]
        for block in model.blocks:
            out = block(out)
        return out[0]
    return run


def orthogonal_(model: nn.Module, gain: float = 1.0, seed: int = 0) -> nn.Module:
    """Re-initialise every square ``nn.Linear`` weight of ``model`` as a random orthogonal matrix times ``gain`` (in place)."""
    gen = torch_generator(seed)
    for m in model.modules():
        if isinstance(m, nn.Linear) and m.weight.shape[0] == m.weight.shape[1]:
            Q, R = torch.linalg.qr(torch.randn(m.weight.shape, generator=gen, dtype=torch.float64))
            with torch.no_grad():
                m.weight.copy_(gain * Q * torch.sign(torch.diagonal(R)))           # Haar-distributed
                m.bias.zero_()
    return model


# ---------------------------------------------------------------- constraints on residual streams (F22) and fixed points (F3b)


def sinkhorn(logits: Tensor, iters: int = 50) -> Tensor:
    r"""Sinkhorn-Knopp: $M = \exp(\text{logits})$, then alternately divide rows and columns by their sums.

    Converges to a doubly stochastic matrix (rows and columns sum to 1, entries > 0). (n, n) -> (n, n)."""
    M = torch.exp(logits - logits.max())
    for _ in range(iters):
        M = M / M.sum(dim=1, keepdim=True)                 # rows sum to 1
        M = M / M.sum(dim=0, keepdim=True)                 # columns sum to 1
    return M


def product_spectral_norms(mats: Tensor) -> Tensor:
    r"""$\|M_k M_{k-1}\cdots M_1\|_2$ for $k = 1..K$: how a stack of mixing matrices (K, n, n) amplifies the stream."""
    P = torch.eye(mats.shape[-1], dtype=mats.dtype)
    norms = []
    for M in mats:
        P = M @ P
        norms.append(torch.linalg.matrix_norm(P, ord=2))
    return torch.stack(norms)


def fixed_point_solve(g: Callable[[Tensor], Tensor], z0: Tensor, tol: float = 1e-10,
                      max_iter: int = 1000) -> tuple[Tensor, int, list[float]]:
    r"""Iterate $z \leftarrow g(z)$ until $\|g(z) - z\| < \text{tol}$; returns $(z^*, \text{iterations}, \text{residuals})$.

    If $g$ is a contraction with constant $L < 1$ (Banach), the iteration converges to the unique fixed point and
    $\|z_k - z^*\| \le L^k \|z_1 - z_0\| / (1 - L)$."""
    z, residuals = z0, []
    for k in range(max_iter):
        z_next = g(z)
        residuals.append(float((z_next - z).norm()))
        z = z_next
        if residuals[-1] < tol:
            return z, k + 1, residuals
    return z, max_iter, residuals


def implicit_tanh_layer(W: Tensor, U: Tensor, x: Tensor) -> Callable[[Tensor], Tensor]:
    r"""The map $z \mapsto \tanh(Wz + Ux)$ whose fixed point $z^*$ is the output of an implicit (equilibrium) layer;
    tanh is 1-Lipschitz, so it is a contraction when $\|W\|_2 < 1$."""
    ux = U @ x
    return lambda z: torch.tanh(W @ z + ux)

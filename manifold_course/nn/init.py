r"""Weight initialisation: Xavier, Kaiming, PyTorch's default, orthogonal; and how to measure what it does.

A linear layer $y = Wx$ with $n_{in}$ inputs (the *fan-in*) and zero-mean independent entries has
$\mathrm{Var}[y_i] = n_{in}\,\mathrm{Var}[w]\,\mathbb E[x_j^2]$. Depth multiplies these factors, so the variance of the
weights decides whether a signal survives 50 layers:

- **Xavier / Glorot** (X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural
  networks", AISTATS 2010): $\mathrm{Var}[w] = 2/(n_{in} + n_{out})$, uniform on $\pm\sqrt{6/(n_{in}+n_{out})}$; keeps
  forward and backward variance for linear / tanh units (a compromise between the two fans).
- **Kaiming / He** (K. He, X. Zhang, S. Ren, J. Sun, "Delving Deep into Rectifiers", ICCV 2015, arXiv:1502.01852):
  $\mathrm{Var}[w] = 2/n_{in}$, because a ReLU keeps half the second moment, $\mathbb E[\mathrm{ReLU}(z)^2] = \tfrac12\mathrm{Var}[z]$.
- **PyTorch's default** for ``nn.Linear`` / ``nn.Conv*``: ``kaiming_uniform_(w, a=sqrt(5))``, i.e. gain
  $\sqrt{2/(1 + a^2)} = \sqrt{1/3}$ and bound $\sqrt{1/3}\cdot\sqrt{3/n_{in}} = 1/\sqrt{n_{in}}$: $U(\pm 1/\sqrt{n_{in}})$ with
  variance $1/(3 n_{in})$ -- *not* He initialisation (six times smaller than $2/n_{in}$).
- **Orthogonal** (A. Saxe, J. McClelland, S. Ganguli, "Exact solutions to the nonlinear dynamics of learning in deep
  linear neural networks", ICLR 2014, arXiv:1312.6120): $W$ with orthonormal rows or columns, so every singular
  value is the gain. Deep products of orthogonal matrices stay orthogonal: the input-output Jacobian of a deep
  linear net has all singular values equal ("dynamical isometry"; J. Pennington, S. Schoenholz, S. Ganguli,
  "Resurrecting the sigmoid in deep learning through dynamical isometry", NeurIPS 2017, arXiv:1711.04735).

Measurements: :func:`activation_std_profile` and :func:`gradient_std_profile` (the std of the signal and of the gradient
layer by layer), :func:`jacobian_singular_values` (dynamical isometry), :func:`unit_symmetry_gap` (constant or zero
initialisation keeps the hidden units of a layer identical: it fails by symmetry, not by making the net linear).

Shapes follow PyTorch: a weight is (n_out, n_in) or (C_out, C_in, k, ...) with fan-in $C_{in}\prod k$.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from manifold_course.nn import residual
from manifold_course.seeding import torch_generator

Seed = int | torch.Generator


def _gen(seed: Seed) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch_generator(int(seed))


def fans(shape: Sequence[int]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape (n_out, n_in, *kernel): receptive field times channels."""
    if len(shape) < 2:
        raise ValueError(f"fan-in and fan-out need a weight with at least 2 dimensions, got shape {tuple(shape)}")
    receptive = math.prod(shape[2:])                                 # 1 for a Linear weight
    return shape[1] * receptive, shape[0] * receptive


def xavier_uniform(shape: Sequence[int], seed: Seed = 0, gain: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    r"""$U(\pm a)$ with $a = \mathrm{gain}\sqrt{6/(n_{in}+n_{out})}$: variance $2\,\mathrm{gain}^2/(n_{in}+n_{out})$."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return (torch.rand(tuple(shape), generator=_gen(seed), dtype=dtype) * 2 - 1) * bound


def xavier_normal(shape: Sequence[int], seed: Seed = 0, gain: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    r"""$\mathcal N(0, \sigma^2)$ with $\sigma = \mathrm{gain}\sqrt{2/(n_{in}+n_{out})}$."""
    fan_in, fan_out = fans(shape)
    return torch.randn(tuple(shape), generator=_gen(seed), dtype=dtype) * gain * math.sqrt(2.0 / (fan_in + fan_out))


def kaiming_normal(shape: Sequence[int], seed: Seed = 0, gain: float = math.sqrt(2.0),
                   dtype=torch.float32) -> torch.Tensor:
    r"""$\mathcal N(0, \mathrm{gain}^2/n_{in})$; the default gain $\sqrt2$ is He's ReLU init, variance $2/n_{in}$."""
    fan_in, _ = fans(shape)
    return torch.randn(tuple(shape), generator=_gen(seed), dtype=dtype) * gain / math.sqrt(fan_in)


def kaiming_uniform(shape: Sequence[int], seed: Seed = 0, a: float = 0.0, dtype=torch.float32) -> torch.Tensor:
    r"""``nn.init.kaiming_uniform_(w, a)`` for a leaky-ReLU slope a: $U(\pm\,g\sqrt{3/n_{in}})$, $g = \sqrt{2/(1+a^2)}$."""
    fan_in, _ = fans(shape)
    bound = math.sqrt(2.0 / (1 + a * a)) * math.sqrt(3.0 / fan_in)
    return (torch.rand(tuple(shape), generator=_gen(seed), dtype=dtype) * 2 - 1) * bound


def pytorch_default(shape: Sequence[int], seed: Seed = 0, dtype=torch.float32) -> torch.Tensor:
    r"""What ``nn.Linear`` does: ``kaiming_uniform`` with $a = \sqrt5$, which is $U(\pm 1/\sqrt{n_{in}})$, variance $1/(3n_{in})$."""
    return kaiming_uniform(shape, seed, a=math.sqrt(5.0), dtype=dtype)


def standard_normal(shape: Sequence[int], seed: Seed = 0, dtype=torch.float32) -> torch.Tensor:
    r"""$\mathcal N(0, 1)$ entries: the naive choice whose signal grows like $\sqrt{n_{in}}$ per layer."""
    return torch.randn(tuple(shape), generator=_gen(seed), dtype=dtype)


def orthogonal(shape: Sequence[int], seed: Seed = 0, gain: float = 1.0, dtype=torch.float32) -> torch.Tensor:
    r"""A uniformly random (Haar) matrix with orthonormal rows or columns, times ``gain`` (as ``nn.init.orthogonal_``).

    QR of a Gaussian matrix, with the signs of R's diagonal moved into Q (without them Q is not Haar-distributed;
    F. Mezzadri, "How to generate random matrices from the classical compact groups", 2006, arXiv:math-ph/0609050).
    """
    rows, cols = shape[0], math.prod(shape[1:])
    A = torch.randn(max(rows, cols), min(rows, cols), generator=_gen(seed), dtype=torch.float64)
    Q, R = torch.linalg.qr(A)                                        # (max, min), orthonormal columns
    Q = Q * torch.sign(torch.diagonal(R))                            # Haar measure
    Q = Q if rows >= cols else Q.T                                   # (rows, cols)
    return (gain * Q).reshape(tuple(shape)).to(dtype)


INITS: dict[str, Callable[..., torch.Tensor]] = {
    "kaiming": kaiming_normal,        # N(0, 2 / n_in)
    "xavier": xavier_normal,          # N(0, 2 / (n_in + n_out))
    "pytorch": pytorch_default,       # U(+-1 / sqrt(n_in))
    "standard": standard_normal,      # N(0, 1)
    "orthogonal": orthogonal,         # orthonormal rows / columns, gain 1
}
ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu, "tanh": torch.tanh, "linear": lambda z: z,
}


def deep_net(depth: int, width: int, init: str, act: str, seed: int = 0, gain: float = 1.0) -> nn.Sequential:
    """``depth`` x (bias-free Linear(width, width) -> act), weights ``gain * INITS[init](...)``."""
    gen = torch_generator(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        lin = nn.Linear(width, width, bias=False, device="meta").to_empty(device="cpu")   # no global RNG use
        with torch.no_grad():
            lin.weight.copy_(gain * INITS[init]((width, width), gen))
        layers += [lin, {"relu": nn.ReLU, "tanh": nn.Tanh, "linear": nn.Identity}[act]()]
    return nn.Sequential(*layers)


def activation_std_profile(depth: int, width: int, init: str, act: str, seed: int = 0, batch: int = 256) -> list[float]:
    r"""Standard deviation of every layer's output $h_l = \phi(W_l h_{l-1})$, $l = 1..$depth, for $x \sim \mathcal N(0, I)$.

    The inputs $x$ (batch, width) and then the weights $W_1, W_2, \dots$ (width, width) are drawn in that order from
    one generator seeded with ``seed``; returns ``depth`` Python floats (the std over all batch x width entries).
    """
    gen = torch_generator(seed)
    phi = ACTS[act]
    h = torch.randn(batch, width, generator=gen)                     # (batch, width)
    stds = []
    for _ in range(depth):
        h = phi(h @ INITS[init]((width, width), gen).T)              # (batch, width)
        stds.append(float(h.std()))
    return stds


def gradient_std_profile(depth: int, width: int, init: str, act: str, seed: int = 0, batch: int = 256) -> list[float]:
    r"""Standard deviation of $\partial L/\partial h_{l}$ at the input of every layer, $l = 0..$depth$-1$, same network as
    :func:`activation_std_profile` (same seed, same weights) and $L = \sum h_{depth} \odot g$ with $g \sim \mathcal N(0, I)$.

    Backpropagation by hand: $\partial L/\partial z_l = \partial L/\partial h_l \odot \phi'(z_l)$ and
    $\partial L/\partial h_{l-1} = (\partial L/\partial z_l)\, W_l$. Entry 0 is the gradient at the input (the longest path).
    """
    gen = torch_generator(seed)
    h = torch.randn(batch, width, generator=gen)
    Ws, zs = [], []
    for _ in range(depth):
        W = INITS[init]((width, width), gen)
        z = h @ W.T                                                  # (batch, width) pre-activation
        Ws.append(W)
        zs.append(z)
        h = ACTS[act](z)
    grad = torch.randn(batch, width, generator=gen)                  # dL/dh_depth = g
    stds = []
    for W, z in zip(reversed(Ws), reversed(zs)):
        dphi = {"relu": (z > 0).to(z.dtype), "tanh": 1 - torch.tanh(z) ** 2, "linear": torch.ones_like(z)}[act]
        grad = (grad * dphi) @ W                                     # dL/dh_{l-1}, (batch, width)
        stds.append(float(grad.std()))
    return stds[::-1]


def jacobian_singular_values(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    r"""Singular values, largest first, of the input-output Jacobian $J = \partial f(x)/\partial x$ (d_out, d_in) of a
    model at one input x (d_in,), the model being called on a batch of one row (so BatchNorm / LayerNorm models work
    in eval mode). Dynamical isometry means all of them near 1 (Pennington et al. 2017, arXiv:1711.04735).
    The Jacobian itself is :func:`manifold_course.nn.residual.jacobian_singular_values` of the map $v \mapsto f(v)$."""
    def f(v: torch.Tensor) -> torch.Tensor:                          # (d_in,) -> (d_out,), as a batch of one row
        return model(v.unsqueeze(0)).squeeze(0)

    return residual.jacobian_singular_values(f, x.detach()).detach()    # (min(d_out, d_in),), descending


def singular_value_spread(s: torch.Tensor) -> float:
    """Spread of a spectrum on a log scale: std of log10 of the singular values (0 for perfect isometry).

    Singular values below 1e-12 (exact zeros, e.g. from dead ReLUs) count as 1e-12, so the spread stays finite."""
    return float(torch.log10(s.double().clamp_min(1e-12)).std())


def unit_symmetry_gap(W: torch.Tensor) -> float:
    r"""$\max_{i,j} \|W_{i,:} - W_{j,:}\|_\infty$ over hidden units i, j (the rows of a weight (n_out, n_in)).

    Zero exactly when all units have the same incoming weights: the layer then acts as one unit copied n_out times.
    """
    return float((W.max(dim=0).values - W.min(dim=0).values).max())


def constant_init_(model: nn.Module, value: float = 0.0) -> nn.Module:
    """Set every weight and bias of every Linear layer to ``value`` (in place); value 0 is "zero initialisation"."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.fill_(value)
                if m.bias is not None:
                    m.bias.fill_(value)
    return model


def init_linear_(model: nn.Module, init: str, seed: int = 0, gain: float = 1.0) -> nn.Module:
    """Re-initialise every Linear weight of ``model`` with ``gain * INITS[init]`` and zero its bias (in place)."""
    gen = torch_generator(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(gain * INITS[init](tuple(m.weight.shape), gen))
                if m.bias is not None:
                    m.bias.zero_()
    return model

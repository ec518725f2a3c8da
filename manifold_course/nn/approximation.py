r"""Universal approximation in one dimension: sigmoid bumps, the exact ReLU interpolant, width sweeps.

The universal approximation theorem (G. Cybenko, "Approximation by superpositions of a sigmoidal function",
Math. Control Signals Systems 1989, for sigmoids; M. Leshno, V. Lin, A. Pinkus, S. Schocken, "Multilayer
feedforward networks with a nonpolynomial activation function can approximate any function", Neural Networks 1993,
for any continuous non-polynomial activation): for every continuous $f$ on a compact set $K \subset \mathbb R^n$
and every $\varepsilon > 0$ there is a one-hidden-layer network

$$\hat f(x) = \sum_{i=1}^N a_i\,\sigma(w_i^\top x + b_i) + c \quad\text{with}\quad \sup_{x\in K}|f(x) - \hat f(x)| < \varepsilon .$$

The proof idea in 1-D: a steep sigmoid is a step, the difference of two steps is a bump
$\sigma(k(x-a)) - \sigma(k(x-b)) \to \mathbf 1_{[a,b]}$ as $k\to\infty$, and a sum of bumps is a staircase that
follows any continuous curve. With ReLUs the construction is exact for piecewise-linear functions:
$\hat f(x) = y_0 + \sum_i (s_i - s_{i-1})\,\mathrm{ReLU}(x - x_i)$ passes through every knot $(x_i, y_i)$.
The theorem says nothing about how many units are needed (existence is not efficiency).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
from manifold_course.seeding import torch_generator

Tensor = torch.Tensor


def bump(x: Tensor, a: float, b: float, k: float) -> Tensor:
    r"""$\sigma(k(x-a)) - \sigma(k(x-b))$: close to 1 on $(a, b)$ and to 0 outside when $k(b-a) \gg 1$."""
    return torch.sigmoid(k * (x - a)) - torch.sigmoid(k * (x - b))


def bump_approximation(f: Callable[[Tensor], Tensor], a: float, b: float, n_bumps: int, k: float) -> Callable[[Tensor], Tensor]:
    r"""A staircase of ``n_bumps`` sigmoid steps that follows ``f`` on $[a, b]$.

    Cut $[a, b]$ into $n$ cells of width $h = (b-a)/n$ with centres $c_i = a + (i - \tfrac12)h$ and inner edges
    $t_i = a + ih$ ($i = 1..n-1$). Then

    $$\hat f(x) = f(c_1) + \sum_{i=1}^{n-1}\big(f(c_{i+1}) - f(c_i)\big)\,\sigma(k(x - t_i))
               = \sum_{i=1}^{n} f(c_i)\,\big[\sigma(k(x - t_{i-1})) - \sigma(k(x - t_i))\big]$$

    with $t_0 = -\infty$, $t_n = +\infty$: a sum of $n$ bumps of heights $f(c_i)$, the two outer ones open-ended so
    that the end points are not halved. For an $L$-Lipschitz $f$ and large $k$, $\sup|f - \hat f| \le L h$.
    One hidden layer of $n - 1$ sigmoid units plus an output bias.
    """
    h = (b - a) / n_bumps
    centres = a + (torch.arange(n_bumps, dtype=torch.float64) + 0.5) * h          # (n,)
    heights = f(centres)                                                           # (n,) f(c_i)
    edges = a + torch.arange(1, n_bumps, dtype=torch.float64) * h                  # (n-1,) t_i
    jumps = heights[1:] - heights[:-1]                                             # (n-1,) f(c_{i+1}) - f(c_i)

    def f_hat(x: Tensor) -> Tensor:
        steps = torch.sigmoid(k * (x.to(torch.float64)[..., None] - edges))        # (..., n-1)
        return (heights[0] + steps @ jumps).to(x.dtype)                            # (...)

    return f_hat


def relu_interpolant(xs: Tensor, ys: Tensor) -> nn.Sequential:
    r"""The one-hidden-layer ReLU net that joins the knots $(x_i, y_i)$ by straight lines (``xs`` increasing).

    Slopes $s_i = (y_{i+1} - y_i)/(x_{i+1} - x_i)$, $s_{-1} = 0$; hidden unit $i$ is $\mathrm{ReLU}(x - x_i)$ for
    $i = 0..n-2$ and its output weight is the change of slope $s_i - s_{i-1}$; the output bias is $y_0$.
    Left of $x_0$ the net is constant ($y_0$); right of $x_{n-1}$ it continues with slope $s_{n-2}$.
    Layers are float64: ``Linear(1, n-1) -> ReLU -> Linear(n-1, 1)``.
    """
    xs, ys = xs.to(torch.float64), ys.to(torch.float64)
    n = xs.shape[0]
    slopes = (ys[1:] - ys[:-1]) / (xs[1:] - xs[:-1])                               # (n-1,) s_i
    changes = slopes - torch.cat([slopes.new_zeros(1), slopes[:-1]])               # (n-1,) s_i - s_{i-1}
    net = nn.Sequential(nn.Linear(1, n - 1, dtype=torch.float64), nn.ReLU(), nn.Linear(n - 1, 1, dtype=torch.float64))
    with torch.no_grad():
        net[0].weight.fill_(1.0)                                                   # x -> x - x_i
        net[0].bias.copy_(-xs[:-1])
        net[2].weight.copy_(changes[None, :])                                      # (1, n-1)
        net[2].bias.fill_(float(ys[0]))
    return net


def mlp_param_count(sizes: list[int]) -> int:
    r"""Weights and biases of ``Linear(sizes[0], sizes[1]) ... Linear(sizes[-2], sizes[-1])``:
    $\sum_l (d_l d_{l+1} + d_{l+1})$ (exact Python integer)."""
    return sum(int(a) * int(b) + int(b) for a, b in zip(sizes[:-1], sizes[1:]))


def ramp_features(x: Tensor, knots: Tensor) -> Tensor:
    """Hidden layer of a 1-D ReLU net with unit input weights: [ReLU(x - knot_j)]_j and a constant column.

    x (N,), knots (H,) -> (N, H + 1)."""
    return torch.cat([torch.relu(x[:, None] - knots[None, :]), torch.ones_like(x)[:, None]], dim=1)


def least_squares_relu_fit(f: Callable[[Tensor], Tensor], width: int, a: float = -1.0, b: float = 1.0,
                           n_train: int = 2000) -> Callable[[Tensor], Tensor]:
    r"""A width-``width`` one-hidden-layer ReLU net with knots evenly spread over $[a, b)$ whose output layer is
    the least-squares fit to ``f`` on ``n_train`` points: a convex problem, solved exactly (float64)."""
    knots = a + (b - a) * torch.arange(width, dtype=torch.float64) / width         # (H,)
    x = torch.linspace(a, b, n_train, dtype=torch.float64)
    coef = torch.linalg.lstsq(ramp_features(x, knots), f(x)[:, None]).solution     # (H + 1, 1)
    return lambda t: (ramp_features(t.to(torch.float64), knots) @ coef)[:, 0]


def fit_one_hidden_layer(x: Tensor, y: Tensor, width: int, steps: int = 1500, lr: float = 1e-2, seed: int = 0,
                         activation: Callable[[Tensor], Tensor] = torch.relu,
                         anneal: bool = True) -> Callable[[Tensor], Tensor]:
    r"""Train all weights of $x \mapsto \sum_i a_i\,\sigma(w_i x + b_i) + c$ (``width`` units) on the 1-D data
    ``x``, ``y`` (N,) by full-batch Adam on the squared error; returns the trained function (float64).

    Initial kinks $-b_i/w_i$ are spread over the data range so that every unit starts where the data are.
    With ``anneal`` the learning rate decays from ``lr`` to 0 along a cosine, $\eta_t = \eta\,(1 + \cos(\pi t/T))/2$:
    at a constant rate, Adam's loss on these tiny problems spikes now and then (by up to three orders of
    magnitude once it is near $10^{-7}$), and the last iterate can land on a spike."""
    gen = torch_generator(seed)
    x, y = x.to(torch.float64)[:, None], y.to(torch.float64)[:, None]            # (N, 1)
    lo, hi = float(x.min()), float(x.max())
    w = torch.where(torch.rand(1, width, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    kinks = lo + (hi - lo) * torch.rand(1, width, generator=gen, dtype=torch.float64)
    params = [w.requires_grad_(), (-w * kinks).detach().requires_grad_(),
              (torch.randn(width, 1, generator=gen, dtype=torch.float64) / width).requires_grad_(),
              torch.zeros(1, dtype=torch.float64, requires_grad=True)]
    opt = torch.optim.Adam(params, lr=lr)
    for t in range(steps):
        if anneal:
            opt.param_groups[0]["lr"] = lr * 0.5 * (1 + math.cos(math.pi * t / steps))
        W1, b1, W2, c = params
        loss = ((activation(x @ W1 + b1) @ W2 + c - y) ** 2).mean()              # mean squared error
        opt.zero_grad()
        loss.backward()
        opt.step()
    W1, b1, W2, c = (p.detach() for p in params)
    return lambda t: (activation(t.to(torch.float64)[:, None] @ W1 + b1) @ W2 + c)[:, 0]


def train_one_hidden_layer(f: Callable[[Tensor], Tensor], width: int, a: float = -1.0, b: float = 1.0,
                           n_train: int = 256, **kw) -> Callable[[Tensor], Tensor]:
    """:func:`fit_one_hidden_layer` on ``n_train`` evenly spaced samples of ``f`` on $[a, b]$."""
    x = torch.linspace(a, b, n_train, dtype=torch.float64)
    return fit_one_hidden_layer(x, f(x), width, **kw)


def sup_error(f: Callable[[Tensor], Tensor], f_hat: Callable[[Tensor], Tensor], a: float = -1.0, b: float = 1.0,
              n_grid: int = 4001) -> float:
    r"""$\max_x |f(x) - \hat f(x)|$ on a fine grid of $[a, b]$: a numerical stand-in for the sup norm."""
    x = torch.linspace(a, b, n_grid, dtype=torch.float64)
    return float((f(x) - f_hat(x)).abs().max())


def nearest_point_on_curve(points: Tensor, curve: Tensor) -> Tensor:
    """Project each row of ``points`` (N, 2) onto the closest of the densely sampled ``curve`` points (M, 2)."""
    return curve[torch.cdist(points, curve).argmin(dim=1)]                          # (N, 2)


def conv_vs_dense_params(H: int, W: int, C_in: int, C_out: int, k: int) -> tuple[int, int]:
    r"""Parameters (weights and biases) of a k x k convolution $C_{in} \to C_{out}$ and of the dense layer that maps
    the same (H, W, C_in) input to the same (H, W, C_out) output: $(C_{out}(C_{in}k^2 + 1),\ HWC_{in}\cdot HWC_{out} + HWC_{out})$."""
    conv = C_out * (C_in * k * k + 1)
    dense = (H * W * C_in) * (H * W * C_out) + H * W * C_out
    return conv, dense


def tent_map_net(depth: int) -> nn.Sequential:
    r"""The sawtooth: ``depth`` compositions of the tent map $t(x) = 2\,\mathrm{ReLU}(x) - 4\,\mathrm{ReLU}(x - \tfrac12)$
    on $[0, 1]$, as a ReLU net of width 2. It has $2^{\text{depth}}$ linear pieces with only $2\cdot\text{depth}$ units
    (M. Telgarsky, "Benefits of depth in neural networks", COLT 2016, arXiv:1602.04485)."""
    layers: list[nn.Module] = []
    for l in range(depth):
        lin = nn.Linear(1 if l == 0 else 2, 2, dtype=torch.float64)
        with torch.no_grad():
            # hidden pair (ReLU(u), ReLU(u - 1/2)) with u = x on the first layer, u = 2 h1 - 4 h2 afterwards
            lin.weight.copy_(torch.tensor([[1.0], [1.0]]) if l == 0 else torch.tensor([[2.0, -4.0], [2.0, -4.0]]))
            lin.bias.copy_(torch.tensor([0.0, -0.5]))
        layers += [lin, nn.ReLU()]
    out = nn.Linear(2, 1, dtype=torch.float64)
    with torch.no_grad():
        out.weight.copy_(torch.tensor([[2.0, -4.0]]))
        out.bias.zero_()
    return nn.Sequential(*layers, out)


def count_pieces_1d(net: nn.Sequential, x: Tensor) -> int:
    """Linear pieces of a ReLU net along the sorted 1-D inputs ``x`` (N,): changes of the activation pattern, plus one."""
    on, h = [], x[:, None].to(next(net.parameters()).dtype)
    with torch.no_grad():
        for layer in net:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                on.append(h > 0)
    pattern = torch.cat(on, dim=1)                                                 # (N, units)
    return 1 + int((pattern[1:] != pattern[:-1]).any(dim=1).sum())


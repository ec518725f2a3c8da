r"""Geometry inside a ReLU network: per-layer representations and the linear regions that ReLUs cut out.

A ReLU MLP $f = W_L\,\mathrm{ReLU}(\dots \mathrm{ReLU}(W_1 x + b_1)\dots) + b_L$ is piecewise affine. Its
*activation pattern* at $x$ (which hidden units are on) is constant on convex pieces of input space, the linear
regions, and $f$ is affine on each piece. In $\mathbb R^2$, one hidden layer of width $h$ is an arrangement of $h$
lines, which cuts the plane into at most $1 + h + \binom h2$ regions. Depth can multiply regions
(G. Montufar, R. Pascanu, K. Cho, Y. Bengio, "On the number of linear regions of deep neural networks", NeurIPS 2014,
arXiv:1402.1869), but at a random initialisation the count grows with the number of neurons, not exponentially with
depth (B. Hanin, D. Rolnick, "Deep ReLU networks have surprisingly few activation patterns", NeurIPS 2019, arXiv:1906.00904).

Representations: the activations after each ReLU are point clouds whose intrinsic dimension can be measured layer
by layer (A. Ansuini, A. Laio, J. Macke, D. Zoccolan, "Intrinsic dimension of data representations in deep neural
networks", NeurIPS 2019, arXiv:1905.12784).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from manifold_course.seeding import manual_seed, torch_generator


def relu_mlp(widths: list[int], n_out: int, seed: int = 0) -> nn.Sequential:
    """Linear-ReLU blocks through ``widths`` (widths[0] is the input size), then a linear layer to ``n_out``."""
    manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], n_out))


def representations(net: nn.Sequential, X: torch.Tensor) -> list[torch.Tensor]:
    """[input, output of every ReLU, logits]: the point clouds the network passes through, each (N, width)."""
    out = [X]
    h = X
    with torch.no_grad():
        for layer in net:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                out.append(h)
    out.append(h)
    return out


def activation_patterns(net: nn.Sequential, X: torch.Tensor) -> torch.Tensor:
    """Which hidden units are on, for each input: a bool tensor (N, total hidden units)."""
    on = []
    h = X
    with torch.no_grad():
        for layer in net:
            h = layer(h)
            if isinstance(layer, nn.ReLU):
                on.append(h > 0)
    return torch.cat(on, dim=1)


def count_linear_regions(net: nn.Sequential, X: torch.Tensor) -> int:
    """Number of distinct activation patterns among the inputs X (N, D): the linear regions that X visits."""
    return int(torch.unique(activation_patterns(net, X), dim=0).shape[0])


def max_regions_one_layer_2d(h: int) -> int:
    r"""Most regions $h$ lines can cut the plane into: $1 + h + \binom h2$."""
    return 1 + h + h * (h - 1) // 2


def train_classifier(net: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int = 300, lr: float = 1e-3,
                     batch: int = 128, seed: int = 0) -> list[float]:
    """Adam on the cross-entropy (integer labels y) or logistic loss (float labels, one logit); returns the losses.

    Minibatches of ``batch`` rows drawn with replacement (the full data set when ``batch >= len(X)``).
    """
    gen = torch_generator(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    binary = y.is_floating_point()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(X), (batch,), generator=gen) if batch < len(X) else torch.arange(len(X))
        logits = net(X[idx])
        if binary:
            loss = nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), y[idx])
        else:
            loss = nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def accuracy(net: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct predictions (argmax of the logits, or logit > 0 for one binary logit)."""
    with torch.no_grad():
        logits = net(X)
    pred = (logits.squeeze(1) > 0).to(y.dtype) if logits.shape[1] == 1 else logits.argmax(dim=1)
    return float((pred == y).double().mean())

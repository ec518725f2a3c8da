r"""Deep MLPs, plain or residual, and a small trainer: the models Volume 1 compares again and again.

A *plain* block computes $h \leftarrow \phi(\mathrm{norm}(W h + b))$; a *residual* block computes
$h \leftarrow h + \phi(\mathrm{norm}(W h + b))$ (K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for
Image Recognition", CVPR 2016, arXiv:1512.03385). Shapes: ``B`` batch, ``D`` width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from manifold_course.seeding import manual_seed, torch_generator

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity}
NORMS = {
    None: lambda width: nn.Identity(),
    "batch": lambda width: nn.BatchNorm1d(width),
    "layer": lambda width: nn.LayerNorm(width),
    "rms": lambda width: nn.RMSNorm(width),
}


@dataclass(frozen=True)
class MLPConfig:
    d_in: int = 64           # input features (the digits: 8 x 8 = 64)
    width: int = 32          # D, the width of every hidden block
    depth: int = 8           # number of hidden blocks (each one Linear + norm + activation)
    n_out: int = 10          # output logits
    residual: bool = False   # add the identity around every hidden block after the first
    activation: str = "relu"
    norm: str | None = None  # None, "batch", "layer" or "rms"


class Block(nn.Module):
    """One hidden block: ``act(norm(linear(h)))``, plus ``h`` itself when residual."""

    def __init__(self, width: int, activation: str, norm: str | None, residual: bool):
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = NORMS[norm](width)
        self.act = ACTIVATIONS[activation]()
        self.residual = residual

    def forward(self, h: torch.Tensor) -> torch.Tensor:   # (B, D) -> (B, D)
        out = self.act(self.norm(self.linear(h)))
        return h + out if self.residual else out


class DeepMLP(nn.Module):
    """``stem`` (d_in -> D) -> ``blocks`` (depth x Block(D)) -> ``head`` (D -> n_out).

    ``forward(x, return_hidden=True)`` also returns every block's output, for per-layer measurements
    (gradient norms, intrinsic dimension, activation statistics).
    """

    def __init__(self, cfg: MLPConfig = MLPConfig()):
        super().__init__()
        self.cfg = cfg
        self.stem = nn.Sequential(nn.Linear(cfg.d_in, cfg.width), ACTIVATIONS[cfg.activation]())
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.activation, cfg.norm, cfg.residual) for _ in range(cfg.depth))
        self.head = nn.Linear(cfg.width, cfg.n_out)

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        h = self.stem(x)                                   # (B, D)
        hidden = [h]
        for block in self.blocks:
            h = block(h)                                   # (B, D)
            hidden.append(h)
        logits = self.head(h)                              # (B, n_out)
        return (logits, hidden) if return_hidden else logits


def deep_mlp(cfg: MLPConfig = MLPConfig(), seed: int = 0) -> DeepMLP:
    """A :class:`DeepMLP` whose initial weights depend only on ``seed`` (PyTorch's default init)."""
    state = torch.random.get_rng_state()
    manual_seed(seed)
    try:
        return DeepMLP(cfg)
    finally:
        torch.random.set_rng_state(state)                  # leave the caller's random stream alone


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    lr: float = 1e-3
    batch: int = 128          # minibatch size; >= len(X) means full-batch
    optimizer: str = "adam"   # "adam" or "sgd"
    momentum: float = 0.9     # for "sgd"
    seed: int = 0             # minibatch order


def train_classifier(model: nn.Module, X: torch.Tensor, y: torch.Tensor, cfg: TrainConfig = TrainConfig()) -> list[float]:
    """Minimise cross-entropy of ``model(X)`` against integer labels ``y``; returns the loss of every step."""
    gen = torch_generator(cfg.seed)
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}")
    model.train()
    losses = []
    for _ in range(cfg.steps):
        idx = torch.randint(len(X), (cfg.batch,), generator=gen) if cfg.batch < len(X) else torch.arange(len(X))
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose arg-max logit is the label."""
    was_training = model.training
    model.eval()
    acc = float((model(X).argmax(dim=1) == y).double().mean())
    model.train(was_training)
    return acc

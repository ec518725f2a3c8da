r"""A sparse mixture-of-experts layer from scratch: top-k gating, the load-balancing loss, expert-usage statistics.

A router $W_r$ scores each token $x$ against $E$ experts, keeps the $k$ best and mixes their outputs:
$$y = \sum_{i\in\mathrm{TopK}(xW_r)} G(x)_i\,E_i(x),\qquad G(x) = \mathrm{softmax}\big(\mathrm{TopK}(xW_r)\big),$$
so each token pays for $k$ experts while the layer holds $E$ of them (Shazeer et al., "Outrageously Large Neural
Networks: The Sparsely-Gated Mixture-of-Experts Layer", 2017, arXiv:1701.06538). The softmax over the $k$ kept logits
equals the full softmax renormalised over the chosen experts.

Routers tend to collapse: an expert that receives more tokens learns faster, becomes better, and is chosen more.
The Switch Transformer (Fedus, Zoph & Shazeer 2021, arXiv:2101.03961) adds the auxiliary loss
$$\mathcal L_{aux} = E\sum_{i=1}^{E} f_i\,P_i ,\qquad f_i = \frac{\#\{\text{assignments to } i\}}{Tk},\quad
P_i = \frac1T\sum_t p_i(x_t),$$
with $p(x) = \mathrm{softmax}(xW_r)$ the full router distribution. $f$ is not differentiable (it counts argmaxes);
the gradient flows through $P$ and pushes probability away from over-used experts. Under perfectly uniform routing
$f_i = P_i = 1/E$ and $\mathcal L_{aux} = 1$; any imbalance that the router agrees with makes it larger.
DeepSeek-MoE (Dai et al. 2024, arXiv:2401.06066) adds always-on shared experts (``n_shared`` here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from manifold_course.seeding import torch_generator


def top_k_gating(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (T, k) and expert indices (T, k) of the k largest router logits (T, E), best first.

    The weights are the softmax of the kept logits: non-negative, summing to 1 per token.
    """
    top_vals, top_idx = torch.topk(logits, k, dim=-1)               # (T, k), (T, k), descending
    return torch.softmax(top_vals, dim=-1), top_idx


def load_balancing_loss(router_probs: torch.Tensor, expert_index: torch.Tensor, n_experts: int) -> torch.Tensor:
    r"""Switch-style auxiliary loss $E\sum_i f_iP_i$ (a 0-dim tensor, differentiable through ``router_probs``).

    router_probs: (T, E) full softmax of the router; expert_index: (T,) for top-1 or (T, k) for top-k.
    $f_i$ counts all $Tk$ assignments, so the loss equals 1 at perfect balance for every k.
    """
    idx = expert_index.reshape(expert_index.shape[0], -1)           # (T, k)
    counts = F.one_hot(idx, n_experts).sum(dim=(0, 1))              # (E,) assignments per expert
    f = counts.to(router_probs.dtype) / idx.numel()                 # (E,) sums to 1
    P = router_probs.mean(dim=0)                                    # (E,) sums to 1
    return n_experts * (f * P).sum()


def expert_usage(expert_index: torch.Tensor, n_experts: int) -> np.ndarray:
    """Fraction of all assignments that went to each expert: (E,), sums to 1."""
    counts = torch.bincount(expert_index.reshape(-1), minlength=n_experts).double()
    return (counts / counts.sum()).numpy()


def usage_entropy(fractions) -> float:
    r"""Normalised entropy $-\sum_i u_i\log u_i / \log E$ of a usage vector: 1 when even, 0 when one expert takes all."""
    u = np.asarray(fractions, dtype=np.float64)
    nz = u[u > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(len(u)))


@dataclass(frozen=True)
class MoEConfig:
    d_in: int
    d_out: int
    d_hidden: int = 32
    n_experts: int = 8
    k: int = 2
    n_shared: int = 0            # always-on shared experts (DeepSeek-MoE); 0 for a plain sparse layer


def _expert(d_in: int, d_hidden: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class MoE(nn.Module):
    """Top-k mixture of small MLP experts on tokens x (T, d_in) -> y (T, d_out) and routing statistics."""

    def __init__(self, cfg: MoEConfig):
        super().__init__()
        self.cfg = cfg
        self.router = nn.Linear(cfg.d_in, cfg.n_experts, bias=False)
        self.experts = nn.ModuleList(_expert(cfg.d_in, cfg.d_hidden, cfg.d_out) for _ in range(cfg.n_experts))
        self.shared = nn.ModuleList(_expert(cfg.d_in, cfg.d_hidden, cfg.d_out) for _ in range(cfg.n_shared))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        cfg = self.cfg
        logits = self.router(x)                                     # (T, E)
        probs = torch.softmax(logits, dim=-1)                       # (T, E) for the balancing loss
        weights, idx = top_k_gating(logits, cfg.k)                  # (T, k), (T, k)
        y = x.new_zeros(x.shape[0], cfg.d_out)                      # (T, d_out)
        for e, expert in enumerate(self.experts):
            tok, slot = torch.nonzero(idx == e, as_tuple=True)      # tokens routed to e, and in which of the k slots
            if len(tok) == 0:
                continue                                            # a sparse layer skips idle experts
            y = y.index_add(0, tok, weights[tok, slot, None] * expert(x[tok]))
        for expert in self.shared:
            y = y + expert(x)
        counts = torch.bincount(idx.reshape(-1), minlength=cfg.n_experts)
        return y, {"router_probs": probs, "indices": idx, "weights": weights, "counts": counts}

    def active_params(self) -> int:
        """Parameters one token touches: the router, k routed experts and the shared ones."""
        per_expert = sum(p.numel() for p in self.experts[0].parameters())
        return self.router.weight.numel() + (self.cfg.k + self.cfg.n_shared) * per_expert


def clustered_regression(n: int, d: int = 8, n_clusters: int = 8, seed: int = 0,
                         spread: float = 0.3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Toy regression with one linear law per cluster: $x = \mu_c + \sigma z$, $y = x^\top w_c$.

    A single small MLP must approximate a piecewise-linear function; experts can each take a few clusters.
    Returns X (n, d), y (n, 1) and the cluster labels (n,).
    """
    g = torch_generator(seed)
    centres = 2.0 * torch.randn(n_clusters, d, generator=g)          # (C, d)
    laws = torch.randn(n_clusters, d, generator=g)                   # (C, d)
    c = torch.randint(n_clusters, (n,), generator=g)                 # (n,)
    X = centres[c] + spread * torch.randn(n, d, generator=g)         # (n, d)
    y = (X * laws[c]).sum(dim=1, keepdim=True)                       # (n, 1)
    return X, y, c


def train_moe(model: MoE, X: torch.Tensor, y: torch.Tensor, steps: int = 300, aux_weight: float = 0.0,
              lr: float = 1e-2, batch: int = 128, seed: int = 0) -> list[float]:
    """Adam on mean-squared error + aux_weight * load-balancing loss; returns the MSE of every step."""
    gen = torch_generator(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        i = torch.randint(len(X), (batch,), generator=gen)
        pred, info = model(X[i])
        mse = F.mse_loss(pred, y[i])
        loss = mse + aux_weight * load_balancing_loss(info["router_probs"], info["indices"], model.cfg.n_experts)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(mse.detach()))
    return history

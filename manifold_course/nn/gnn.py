r"""Message passing from scratch, GCN and GAT layers, and a small node classifier with its trainer.

**Message passing** (J. Gilmer et al., "Neural Message Passing for Quantum Chemistry", ICML 2017,
arXiv:1704.01212): every node $v$ collects messages from its neighbours and updates its state,

$$m_v = \bigoplus_{u \in N(v)} \psi(h_v, h_u, e_{uv}), \qquad h_v' = \phi(h_v, m_v),$$

with $\bigoplus$ a permutation-invariant aggregation (sum, mean, max). A graph is stored as an edge list
``edge_index`` of shape (2, E): row 0 the sources $u$, row 1 the destinations $v$; the message of edge $e$ flows
$u \to v$. The dense equivalent is a matrix $M$ with $M_{vu} = w_e$: $\text{out} = M X$.

**GCN** (T. Kipf, M. Welling, ICLR 2017, arXiv:1609.02907):
$H^{(l+1)} = \sigma(\tilde D^{-1/2}\tilde A\tilde D^{-1/2} H^{(l)} W^{(l)})$, $\tilde A = A + I$: message
$\psi = h_u / \sqrt{\tilde d_u \tilde d_v}$, sum aggregation, a shared linear map and a non-linearity.

**GAT** (P. Velickovic et al., "Graph Attention Networks", ICLR 2018, arXiv:1710.10903): learned weights
$\alpha_{vu} = \mathrm{softmax}_{u \in N(v)\cup\{v\}}\big(\mathrm{LeakyReLU}(a^\top[W h_v \,\|\, W h_u])\big)$,
$h_v' = \sigma(\sum_u \alpha_{vu} W h_u)$.

Shapes: ``n`` nodes, ``F`` input features, ``F2`` output features, ``E`` edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from manifold_course.nn.graphs import normalized_adjacency
from manifold_course.seeding import manual_seed

# ---------------------------------------------------------------- message passing on an edge list


def edge_index_from_adjacency(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge list of the non-zero entries of A: an entry A[v, u] becomes the edge u -> v with weight A[v, u].

    Returns ``edge_index`` (2, E) int64 (row 0 sources, row 1 destinations) and ``edge_weight`` (E,).
    """
    dst, src = A.nonzero(as_tuple=True)
    return torch.stack([src, dst]), A[dst, src]


def to_dense(edge_index: torch.Tensor, edge_weight: torch.Tensor, n: int) -> torch.Tensor:
    """The (n, n) matrix M with M[v, u] = sum of the weights of the edges u -> v (repeated edges add up)."""
    M = torch.zeros(n, n, dtype=edge_weight.dtype)
    return M.index_put((edge_index[1], edge_index[0]), edge_weight, accumulate=True)


def message_passing(X: torch.Tensor, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None) -> torch.Tensor:
    r"""Weighted sum aggregation: $\text{out}_v = \sum_{e = (u \to v)} w_e\, x_u$, shape (n, F). Equals ``to_dense(...) @ X``.

    ``index_add_`` adds every message, also several into the same node; ``out[dst] += msg`` would keep only one of
    them when ``dst`` repeats (fancy-index assignment does not accumulate).
    """
    src, dst = edge_index
    msg = X[src]                                                          # (E, F) one message per edge
    if edge_weight is not None:
        msg = msg * edge_weight[:, None].to(X.dtype)
    return torch.zeros_like(X).index_add_(0, dst, msg)                    # (n, F) scatter-add into destinations


def propagate(X: torch.Tensor, edge_index: torch.Tensor,
              message: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              update: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              aggregate: str = "sum") -> torch.Tensor:
    r"""Generic MPNN step: $m_v = \bigoplus_{u\to v} \psi(h_v, h_u)$, $h_v' = \phi(h_v, m_v)$.

    ``message(h_dst, h_src) -> (E, F_m)``, ``update(h, m) -> (n, F2)``; ``aggregate`` is "sum", "mean" or "amax"
    (nodes without incoming edges get $m_v = 0$).
    """
    src, dst = edge_index
    msg = message(X[dst], X[src])                                         # (E, F_m)
    out = torch.zeros(X.shape[0], msg.shape[1], dtype=msg.dtype)
    idx = dst[:, None].expand_as(msg)
    m = out.scatter_reduce(0, idx, msg, reduce=aggregate, include_self=False)   # (n, F_m)
    return update(X, m)


def gcn_edge_weights(edge_index: torch.Tensor, n: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The GCN graph as an edge list: edges plus one self-loop per node, weights $1/\sqrt{\tilde d_u \tilde d_v}$."""
    loops = torch.arange(n).repeat(2, 1)                                  # (2, n)
    ei = torch.cat([edge_index, loops], dim=1)                            # (2, E + n)
    deg = torch.zeros(n, dtype=dtype).index_add_(0, ei[1], torch.ones(ei.shape[1], dtype=dtype))   # in-degree + 1
    w = deg[ei[0]].rsqrt() * deg[ei[1]].rsqrt()                           # (E + n,)
    return ei, w


# ---------------------------------------------------------------- GCN


def gcn_layer(X: torch.Tensor, A: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    r"""$\mathrm{ReLU}(\tilde D^{-1/2}\tilde A\tilde D^{-1/2} X W + b)$: (n, F) -> (n, F2)."""
    A_hat = normalized_adjacency(A.to(X.dtype), self_loops=True)          # (n, n)
    out = A_hat @ (X @ W)                                                 # (n, F2): transform, then average neighbours
    if b is not None:
        out = out + b
    return torch.relu(out)


class GCNLayer(nn.Module):
    """One GCN layer on a precomputed propagation matrix ``A_hat`` (``normalized_adjacency(A)``).

    The seed's version, ``adj @ linear(x)`` with the raw adjacency, lacks the self-loops, the normalisation and the
    non-linearity; here ``A_hat`` carries the first two and ``activation`` the third.
    """

    def __init__(self, d_in: int, d_out: int, activation: bool = True):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out, bias=False)
        self.bias = nn.Parameter(torch.zeros(d_out))                      # added after propagation, as in Kipf & Welling
        self.activation = activation

    def forward(self, x: torch.Tensor, A_hat: torch.Tensor) -> torch.Tensor:   # (n, F) -> (n, F2)
        out = A_hat @ self.linear(x) + self.bias
        return torch.relu(out) if self.activation else out


# ---------------------------------------------------------------- GAT


def gat_attention(h: torch.Tensor, A: torch.Tensor, W: torch.Tensor, a: torch.Tensor,
                  negative_slope: float = 0.2) -> torch.Tensor:
    r"""GAT coefficients $\alpha$ (n, n): row $v$ is a softmax over $u \in N(v) \cup \{v\}$, exactly 0 elsewhere.

    $e_{vu} = \mathrm{LeakyReLU}(a^\top [z_v \| z_u])$ with $z = h W$ (n, F2) and $a$ (2 F2,); splitting
    $a = [a_1; a_2]$ gives $e_{vu} = \mathrm{LeakyReLU}(z_v^\top a_1 + z_u^\top a_2)$ for all pairs at once.
    """
    z = h @ W                                                             # (n, F2)
    f2 = z.shape[1]
    e = (z @ a[:f2])[:, None] + (z @ a[f2:])[None, :]                     # (n, n): e[v, u]
    e = F.leaky_relu(e, negative_slope)
    mask = (A != 0) | torch.eye(A.shape[0], dtype=torch.bool)             # neighbours and the node itself
    e = e.masked_fill(~mask, float("-inf"))                               # exp(-inf) = 0 exactly
    return torch.softmax(e, dim=1)


class GATLayer(nn.Module):
    """Multi-head GAT layer: ``heads`` independent attentions, outputs concatenated (or averaged)."""

    def __init__(self, d_in: int, d_out: int, heads: int = 1, concat: bool = True, negative_slope: float = 0.2):
        super().__init__()
        self.W = nn.Parameter(torch.empty(heads, d_in, d_out))
        self.a = nn.Parameter(torch.empty(heads, 2 * d_out))
        nn.init.xavier_uniform_(self.W)
        nn.init.xavier_uniform_(self.a)
        self.concat, self.negative_slope = concat, negative_slope

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:   # (n, F) -> (n, heads*F2) or (n, F2)
        outs = []
        for W, a in zip(self.W, self.a):
            alpha = gat_attention(x, A, W, a, self.negative_slope)          # (n, n)
            outs.append(alpha @ (x @ W))                                     # (n, F2)
        return torch.cat(outs, dim=1) if self.concat else torch.stack(outs).mean(0)


# ---------------------------------------------------------------- node classification


@dataclass(frozen=True)
class GNNConfig:
    d_in: int
    n_classes: int
    hidden: int = 16
    depth: int = 2            # number of layers (GCN) ; the last one outputs logits
    kind: str = "gcn"         # "gcn", "gat" (2 layers, 4 heads) or "mlp" (the same net with A_hat = I)
    dropout: float = 0.5
    heads: int = 4


class NodeClassifier(nn.Module):
    """``depth`` GCN layers with ReLU and dropout in between (Kipf & Welling's model for depth 2), a 2-layer GAT,
    or the same stack as a GCN that never looks at the graph (an MLP on node features)."""

    def __init__(self, cfg: GNNConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.kind == "gat":
            self.layers = nn.ModuleList([GATLayer(cfg.d_in, cfg.hidden, cfg.heads),
                                         GATLayer(cfg.hidden * cfg.heads, cfg.n_classes, 1, concat=False)])
        elif cfg.kind in ("gcn", "mlp"):
            dims = [cfg.d_in] + [cfg.hidden] * (cfg.depth - 1) + [cfg.n_classes]
            self.layers = nn.ModuleList(GCNLayer(i, o, activation=False) for i, o in zip(dims, dims[1:]))
        else:
            raise ValueError(f"kind must be 'gcn', 'gat' or 'mlp', got {cfg.kind!r}")

    def forward(self, X: torch.Tensor, A: torch.Tensor, return_hidden: bool = False):
        if self.cfg.kind == "gat":
            P = A
        elif self.cfg.kind == "gcn":
            P = normalized_adjacency(A, self_loops=True)                   # (n, n)
        else:
            P = torch.eye(A.shape[0], dtype=X.dtype)                        # no graph: an MLP
        h, hidden = X, []
        for i, layer in enumerate(self.layers):
            h = F.dropout(h, self.cfg.dropout, self.training)
            h = layer(h, P)
            if i < len(self.layers) - 1:
                h = F.elu(h) if self.cfg.kind == "gat" else torch.relu(h)
                hidden.append(h)
        return (h, hidden) if return_hidden else h


@dataclass(frozen=True)
class NodeTrainConfig:
    steps: int = 200
    lr: float = 0.01
    weight_decay: float = 5e-4
    seed: int = 0             # initial weights and dropout masks


def train_node_classifier(cfg: GNNConfig, X: torch.Tensor, A: torch.Tensor, y: torch.Tensor,
                          train_idx: torch.Tensor, tcfg: NodeTrainConfig = NodeTrainConfig()) -> tuple[NodeClassifier, list[float]]:
    """Semi-supervised training: full-batch Adam on the cross-entropy of the labelled nodes only."""
    state = torch.random.get_rng_state()
    manual_seed(tcfg.seed)
    try:
        model = NodeClassifier(cfg)
        opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
        losses = []
        model.train()
        for _ in range(tcfg.steps):
            loss = F.cross_entropy(model(X, A)[train_idx], y[train_idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
    finally:
        torch.random.set_rng_state(state)                                 # leave the caller's random stream alone
    return model, losses


@torch.no_grad()
def node_accuracy(model: nn.Module, X: torch.Tensor, A: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> float:
    """Share of the nodes ``idx`` whose arg-max logit is their label (model in eval mode: no dropout)."""
    model.eval()
    return float((model(X, A)[idx].argmax(dim=1) == y[idx]).double().mean())


def permutation_equivariance_error(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                                   X: torch.Tensor, A: torch.Tensor, perm: torch.Tensor) -> float:
    r"""$\max|f(PX, PAP^\top) - P f(X, A)|$ with $(PX)_i = X_{\pi(i)}$: 0 for a permutation-equivariant layer."""
    out_perm = fn(X[perm], A[perm][:, perm])
    return float((out_perm - fn(X, A)[perm]).detach().abs().max())

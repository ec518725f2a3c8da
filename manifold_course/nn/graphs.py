r"""Graphs as matrices: adjacency, degree, the three Laplacians, the normalised adjacency, spectra.

An undirected graph on $n$ nodes is a symmetric adjacency matrix $A \in \{0, 1\}^{n\times n}$ (or non-negative
weights), $A_{ij} > 0$ when nodes $i$ and $j$ are joined. The degree matrix is $D = \mathrm{diag}(d)$ with
$d_i = \sum_j A_{ij}$. From them:

- the (combinatorial) Laplacian $L = D - A$, with $x^\top L x = \sum_{\{i,j\}} A_{ij}(x_i - x_j)^2 \ge 0$;
- the symmetric normalised Laplacian $L_{sym} = I - D^{-1/2} A D^{-1/2}$, eigenvalues in $[0, 2]$;
- the random-walk Laplacian $L_{rw} = I - D^{-1} A$ (same eigenvalues as $L_{sym}$, a similar matrix);
- the normalised *adjacency* $D^{-1/2} A D^{-1/2} = I - L_{sym}$ (eigenvalues in $[-1, 1]$), and its GCN form with
  self-loops $\hat A = \tilde D^{-1/2}\tilde A\tilde D^{-1/2}$, $\tilde A = A + I$ (eigenvalues in $(-1, 1]$).

The multiplicity of the eigenvalue 0 of $L$ (or $L_{sym}$) is the number of connected components; the eigenvectors
of the smallest eigenvalues give the spectral embedding used by spectral clustering (A. Ng, M. Jordan, Y. Weiss,
"On spectral clustering: analysis and an algorithm", NeurIPS 2001; U. von Luxburg, "A tutorial on spectral
clustering", Statistics and Computing 2007, arXiv:0711.0189). The Dirichlet energy
$E(H) = \operatorname{tr}(H^\top L_{sym} H)$ measures how much node features vary across edges; it is the usual
measure of over-smoothing (C. Cai, Y. Wang, "A note on over-smoothing for graph neural networks", 2020,
arXiv:2006.13318).

Nodes with degree 0 get $d_i^{-1/2} = d_i^{-1} = 0$ (no division by zero); the Laplacian facts above assume none.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch
from manifold_course.seeding import course_seed, numpy_rng, torch_generator


def adjacency_matrix(G: nx.Graph, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Dense (n, n) adjacency of a networkx graph, nodes in the order of ``G.nodes`` (unweighted: entries 0/1)."""
    return torch.as_tensor(nx.to_numpy_array(G, nodelist=list(G.nodes), weight=None), dtype=dtype)


def degrees(A: torch.Tensor) -> torch.Tensor:
    """Degrees d_i = sum_j A_ij, shape (n,)."""
    return A.sum(dim=1)


def _inv_power(d: torch.Tensor, p: float) -> torch.Tensor:
    """d ** (-p) with 0 where d = 0 (isolated nodes)."""
    safe = torch.where(d > 0, d, torch.ones_like(d))
    return torch.where(d > 0, safe.pow(-p), torch.zeros_like(d))


def graph_laplacians(A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""$(L, L_{sym}, L_{rw}) = (D - A,\ I - D^{-1/2} A D^{-1/2},\ I - D^{-1} A)$, each (n, n), dtype of A."""
    d = degrees(A)                                                        # (n,)
    eye = torch.eye(A.shape[0], dtype=A.dtype)
    L = torch.diag(d) - A                                                 # L = D - A
    s = _inv_power(d, 0.5)                                                # d^{-1/2}
    L_sym = eye - s[:, None] * A * s[None, :]                             # I - D^{-1/2} A D^{-1/2}
    L_rw = eye - _inv_power(d, 1.0)[:, None] * A                          # I - D^{-1} A (rows scaled)
    return L, L_sym, L_rw


def normalized_adjacency(A: torch.Tensor, self_loops: bool = True) -> torch.Tensor:
    r"""$\tilde D^{-1/2}\tilde A\tilde D^{-1/2}$ with $\tilde A = A + I$ (``self_loops``), else $D^{-1/2} A D^{-1/2}$.

    The GCN propagation matrix (T. Kipf, M. Welling, "Semi-Supervised Classification with Graph Convolutional
    Networks", ICLR 2017, arXiv:1609.02907). It is an *adjacency*, not a Laplacian: $L_{sym} = I - D^{-1/2}AD^{-1/2}$.
    """
    A_t = A + torch.eye(A.shape[0], dtype=A.dtype) if self_loops else A   # (n, n)
    s = _inv_power(degrees(A_t), 0.5)                                     # degrees *after* adding the loops
    return s[:, None] * A_t * s[None, :]


def spectrum(M: torch.Tensor) -> torch.Tensor:
    """Eigenvalues of a symmetric matrix, ascending (float64 for accuracy)."""
    return torch.linalg.eigvalsh(M.double())


def count_zero_eigenvalues(M: torch.Tensor, tol: float = 1e-9) -> int:
    """Number of eigenvalues of the symmetric M with |lambda| < tol: for a Laplacian, the number of components."""
    return int((spectrum(M).abs() < tol).sum())


def spectral_embedding(A: torch.Tensor, k: int) -> torch.Tensor:
    r"""The k eigenvectors of $L_{sym}$ with the smallest eigenvalues, as orthonormal columns: (n, k).

    Only the *subspace* they span is defined (each column's sign is arbitrary, and any rotation inside a repeated
    eigenvalue is as good); compare embeddings through the projector $U U^\top$, never column by column.
    """
    _, L_sym, _ = graph_laplacians(A)
    _, vecs = torch.linalg.eigh(L_sym)                                    # columns, eigenvalues ascending
    return vecs[:, :k]                                                    # (n, k)


def fiedler_vector(A: torch.Tensor) -> torch.Tensor:
    r"""Eigenvector of the second-smallest eigenvalue of $L = D - A$ (M. Fiedler 1973); its sign splits the graph.

    Normalised so that its largest-magnitude entry is positive (a fixed sign, for plots and reproducibility).
    """
    L, _, _ = graph_laplacians(A)
    _, vecs = torch.linalg.eigh(L.double())
    v = vecs[:, 1]
    return v * torch.sign(v[v.abs().argmax()])


def spectral_clusters(A: torch.Tensor, k: int, seed: int = 0) -> np.ndarray:
    """k-means (scikit-learn, 10 restarts) on the row-normalised spectral embedding (Ng, Jordan, Weiss 2001)."""
    from sklearn.cluster import KMeans

    U = spectral_embedding(A.double(), k)
    U = U / U.norm(dim=1, keepdim=True).clamp_min(1e-12)                  # rows onto the unit sphere
    return KMeans(n_clusters=k, n_init=10, random_state=course_seed(seed)).fit_predict(U.numpy())


def subspace_distance(U: torch.Tensor, V: torch.Tensor) -> float:
    """Largest entry of |U U^T - V V^T| for orthonormal columns: 0 iff U and V span the same subspace."""
    return float((U @ U.T - V @ V.T).abs().max())


def dirichlet_energy(H: torch.Tensor, A: torch.Tensor) -> float:
    r"""$E(H) = \operatorname{tr}(H^\top L_{sym} H) = \tfrac12\sum_{i,j} A_{ij}\,\|h_i/\sqrt{d_i} - h_j/\sqrt{d_j}\|^2$."""
    _, L_sym, _ = graph_laplacians(A.to(H.dtype))
    return float(torch.trace(H.T @ L_sym @ H))


def rayleigh_quotient(H: torch.Tensor, A: torch.Tensor) -> float:
    r"""$E(H) / \|H\|_F^2$: the Dirichlet energy per unit of signal, in $[0, 2]$; 0 when features have collapsed."""
    return dirichlet_energy(H, A) / float((H * H).sum())


@dataclass(frozen=True)
class SBMGraph:
    A: torch.Tensor      # (n, n) symmetric 0/1 adjacency, no self-loops
    X: torch.Tensor      # (n, F) node features: class mean + Gaussian noise
    y: torch.Tensor      # (n,) int64 block (class) of each node


def stochastic_block_model(sizes: list[int], p_in: float, p_out: float, n_features: int = 16,
                           feature_signal: float = 1.0, feature_noise: float = 1.0, seed: int = 0,
                           dtype: torch.dtype = torch.float32) -> SBMGraph:
    r"""A seeded stochastic block model with noisy node features.

    Nodes $i < j$ are joined with probability ``p_in`` inside a block and ``p_out`` across blocks (P. Holland,
    K. Laskey, S. Leinhardt, "Stochastic blockmodels: first steps", Social Networks 1983). Node $i$ of block $c$
    gets features $x_i = \mu_c + \sigma\,\varepsilon_i$ with block means $\mu_c$ of norm ``feature_signal`` (random
    directions) and $\varepsilon_i \sim \mathcal N(0, I_F)$, $\sigma$ = ``feature_noise``.
    """
    rng = numpy_rng(seed)
    y = np.repeat(np.arange(len(sizes)), sizes)                          # (n,)
    n = len(y)
    P = np.where(y[:, None] == y[None, :], p_in, p_out)                  # (n, n) edge probabilities
    upper = np.triu(rng.random((n, n)) < P, k=1)
    A = (upper | upper.T).astype(np.float64)                             # symmetric, zero diagonal
    means = rng.standard_normal((len(sizes), n_features))
    means *= feature_signal / np.linalg.norm(means, axis=1, keepdims=True)
    X = means[y] + feature_noise * rng.standard_normal((n, n_features))  # (n, F)
    return SBMGraph(torch.as_tensor(A, dtype=dtype), torch.as_tensor(X, dtype=dtype), torch.as_tensor(y))


def permutation_matrix(perm: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """P with (P x)[i] = x[perm[i]]: P = I[perm]."""
    return torch.eye(len(perm), dtype=dtype)[perm]


def fit_neighbour_embeddings(A: torch.Tensor, dim: int = 8, steps: int = 600, lr: float = 0.02,
                             init_scale: float = 1e-3, self_loops: bool = True, seed: int = 0) -> tuple[torch.Tensor, float]:
    r"""Memorise the facts "v is next to u" with free embeddings, node2vec-style: $p(v \mid u) = \mathrm{softmax}_v(e_u^\top c_v)$.

    Targets are the rows of $\tilde D^{-1}\tilde A$ (the neighbours, and the node itself when ``self_loops``); full-batch
    Adam from a small random start. Returns the (n, dim) embeddings $e$ and the final cross-entropy. Used by the
    manifold-thread experiment F19 (S. Noroozizadeh, V. Nagarajan, E. Rosenfeld, S. Kumar, "Deep sequence models tend
    to memorize geometrically; it is unclear why", 2025, arXiv:2510.26745).
    """
    gen = torch_generator(seed)
    A = A.float()
    A_t = A + torch.eye(A.shape[0]) if self_loops else A
    target = A_t / A_t.sum(dim=1, keepdim=True)                           # (n, n) neighbour distributions
    emb = (init_scale * torch.randn(A.shape[0], dim, generator=gen)).requires_grad_()
    ctx = (init_scale * torch.randn(A.shape[0], dim, generator=gen)).requires_grad_()
    opt = torch.optim.Adam([emb, ctx], lr=lr)
    for _ in range(steps):
        loss = -(target * torch.log_softmax(emb @ ctx.T, dim=1)).sum(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return emb.detach(), loss.item()


def smooth_mode_share(E: torch.Tensor, A: torch.Tensor, k: int) -> float:
    r"""Share of the centred embedding's variance in the k smoothest non-constant eigenvectors of $L = D - A$.

    A random embedding puts about $k / (n - 1)$ of its variance there; a share far above that is a spectral bias.
    """
    L, _, _ = graph_laplacians(A.double())
    _, V = torch.linalg.eigh(L)                                           # (n, n) columns, smoothest first
    Ec = (E - E.mean(dim=0)).double()                                     # centring removes the constant mode
    return float((V[:, 1:k + 1].T @ Ec).pow(2).sum() / Ec.pow(2).sum())

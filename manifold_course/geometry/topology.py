r"""Persistent homology of point clouds: components (H0) and loops (H1) that survive across scales.

Vietoris-Rips filtration: for a scale $\varepsilon$, $VR_\varepsilon(X)$ joins every pair of points at distance
$\le \varepsilon$ by an edge, every triple of pairwise-close points by a triangle, and so on. As $\varepsilon$ grows,
features are born and die; each becomes a bar (birth, death). Long bars are shape, short bars are noise.

- $H_0$ (connected components): all points are born at 0; two components merge (one dies) exactly when the
  growing $\varepsilon$ reaches the length of an edge of the minimum spanning tree (Kruskal's algorithm is the
  $H_0$ filtration). So the finite $H_0$ deaths are the $N-1$ MST edge lengths, and one component lives forever.
- $H_1$ (loops): a loop is born when an edge closes a cycle and dies when triangles fill it in. A noisy circle of
  radius 1 gives one bar from about the sampling gap to about $\sqrt3$ (the side of the inscribed equilateral triangle).

Betti numbers $\beta_0, \beta_1$ count components and independent loops: circle (1, 1), torus (1, 2), blob (1, 0).

Software: U. Bauer, "Ripser: efficient computation of Vietoris-Rips persistence barcodes", J. Appl. Comput.
Topology 2021 (arXiv:1908.02518); C. Tralie, N. Saul, R. Bar-On, "Ripser.py", JOSS 2018. Background:
G. Carlsson, "Topology and data", Bull. AMS 2009; H. Edelsbrunner, J. Harer, *Computational Topology*, AMS 2010.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform


def persistence(X, maxdim: int = 1, n_perm: int | None = None) -> list[np.ndarray]:
    """Vietoris-Rips persistence diagrams [H0, H1, ...] of the points X (N, D): each an array (n_bars, 2) of (birth, death).

    A thin wrapper over ``ripser`` (which computes in float32). ``n_perm`` keeps that many points chosen by greedy
    farthest-point sampling first: the diagram then approximates the full one up to the covering radius.
    """
    from ripser import ripser

    X = np.asarray(X, dtype=np.float64)
    if n_perm is not None and n_perm >= len(X):
        n_perm = None
    D = squareform(pdist(X))                                  # (N, N); also avoids ripser's shape guesswork for N <= D
    return ripser(D, maxdim=maxdim, distance_matrix=True, n_perm=n_perm)["dgms"]


def h0_persistence(X) -> np.ndarray:
    """Finite H0 death times of the Rips filtration of X (N, D): the N-1 minimum-spanning-tree edge lengths, sorted.

    Kruskal with union-find: scan the edges by increasing length; an edge joining two different components
    is a death (the younger component merges into the older one); an edge inside a component does nothing.
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n < 2:
        return np.zeros(0)
    D = squareform(pdist(X))                                  # (N, N) Euclidean distances
    i, j = np.triu_indices(n, k=1)                            # all N(N-1)/2 edges
    order = np.argsort(D[i, j], kind="stable")
    parent = list(range(n))

    def find(a: int) -> int:                                  # root of a's component, with path halving
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    deaths = []
    for e in order:
        ra, rb = find(int(i[e])), find(int(j[e]))
        if ra != rb:                                          # two components merge: one bar ends here
            parent[ra] = rb
            deaths.append(D[i[e], j[e]])
            if len(deaths) == n - 1:
                break
    return np.asarray(deaths, dtype=np.float64)               # already sorted (edges were scanned in order)


def lifetimes(diagram: np.ndarray) -> np.ndarray:
    """death - birth of every finite bar of a diagram (n_bars, 2)."""
    diagram = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    finite = diagram[np.isfinite(diagram[:, 1])]
    return finite[:, 1] - finite[:, 0]


def max_persistence(diagram: np.ndarray) -> float:
    """Longest finite bar of a diagram (0.0 when there is none)."""
    life = lifetimes(diagram)
    return float(life.max()) if len(life) else 0.0


def count_long_bars(diagram: np.ndarray, min_lifetime: float) -> int:
    """How many finite bars live longer than ``min_lifetime``: a noise-robust Betti-number estimate."""
    return int((lifetimes(diagram) > min_lifetime).sum())


def has_loop(X, threshold: float) -> bool:
    """True when the H1 diagram of X (N, D) has a bar living longer than ``threshold`` (same units as X)."""
    return max_persistence(persistence(X, maxdim=1)[1]) > threshold

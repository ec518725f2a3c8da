r"""Training trajectories in prediction space (Part 2 T1), with intensive PCA.

A checkpoint of a classifier is summarised by what it predicts on a fixed probe set: the probabilities $P$
(N samples, C classes). Two checkpoints are compared with the Bhattacharyya distance averaged over the samples,

$$d_B(P, Q) = \frac1N \sum_{n} -\log \sum_c \sqrt{p_{nc}\, q_{nc}},$$

which is 0 for equal predictions. Intensive PCA (InPCA; K. N. Quinn, C. B. Clement, F. De Bernardis, M. D. Niemack,
J. P. Sethna, "Visualizing probabilistic models and data with Intensive Principal Component Analysis", PNAS 2019,
arXiv:1810.02877) embeds K checkpoints from their (K, K) distance matrix $D$: double-centre $W = -\tfrac12 J D J$
with $J = I - \tfrac1K \mathbf 1\mathbf 1^\top$, eigen-decompose $W$, and sort the eigenvalues by absolute value: unlike
classical MDS some are negative (the space is Minkowski-like), and they are kept with their sign. J. Mao et al.,
"The training process of many deep networks explores the same low-dimensional manifold", PNAS 2024
(arXiv:2305.01604), found the top three InPCA components of thousands of networks' trajectories to explain most of
the (absolute) eigenvalue mass.
"""

from __future__ import annotations

import numpy as np


def _probs(P, what: str) -> np.ndarray:
    P = np.asarray(P.detach().cpu().numpy() if hasattr(P, "detach") else P, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"{what} must be probabilities (N, C), got shape {P.shape}")
    if not np.isfinite(P).all() or (P < 0).any():
        raise ValueError(f"{what} has negative or non-finite entries")
    return P


def bhattacharyya(P, Q, floor: float = 1e-12) -> float:
    r"""$\frac1N\sum_n -\log\sum_c\sqrt{p_{nc} q_{nc}}$ for probabilities P, Q (N, C); the inner sum is floored at
    ``floor`` so that disjoint predictions give a large finite distance."""
    P, Q = _probs(P, "P"), _probs(Q, "Q")
    if P.shape != Q.shape:
        raise ValueError(f"P and Q must have the same shape, got {P.shape} and {Q.shape}")
    bc = np.sqrt(P * Q).sum(axis=1)
    return float(np.mean(-np.log(np.maximum(bc, floor))))


def inpca(D) -> tuple[np.ndarray, np.ndarray]:
    r"""InPCA of a symmetric (K, K) distance matrix D -> (eigenvalues (K,), coordinates (K, K)).

    Eigenvalues of $W = -\frac12 JDJ$ sorted by decreasing absolute value, signs kept; coordinate column i is
    eigenvector i times $\sqrt{|\lambda_i|}$ (a negative $\lambda_i$ is a time-like axis).
    """
    D = np.asarray(D, dtype=np.float64)
    if D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise ValueError(f"D must be a square matrix, got shape {D.shape}")
    K = len(D)
    J = np.eye(K) - np.full((K, K), 1.0 / K)
    W = -0.5 * J @ D @ J
    lam, V = np.linalg.eigh((W + W.T) / 2)
    order = np.argsort(-np.abs(lam), kind="stable")
    lam, V = lam[order], V[:, order]
    return lam, V * np.sqrt(np.abs(lam))[None, :]


def prediction_trajectories(runs: dict[str, list], labels=None, n_components: int = 3) -> dict[str, object]:
    """InPCA of every checkpoint of every run: ``runs`` maps a name to a list of probability arrays (N, C) on the
    same probe set. With ``labels`` (N,), two reference points are added: ``"truth"`` (one-hot) and ``"ignorance"``
    (uniform).

    Returns ``coords`` ({name: (K_name, n_components)}), ``eigenvalues`` (all, sorted by |value|), ``explained``
    (|eigenvalue| / sum |eigenvalues|, same order) and ``distances`` (the full Bhattacharyya matrix).
    """
    names, points = [], []
    for name, ckpts in runs.items():
        for P in ckpts:
            names.append(name)
            points.append(_probs(P, f"a checkpoint of {name!r}"))
    if not points:
        raise ValueError("no checkpoints given")
    if labels is not None:
        N, C = points[0].shape
        labels = np.asarray(labels, dtype=np.int64)
        names += ["truth", "ignorance"]
        points += [np.eye(C)[labels], np.full((N, C), 1.0 / C)]
    K = len(points)
    D = np.zeros((K, K))
    for i in range(K):
        for j in range(i + 1, K):
            D[i, j] = D[j, i] = bhattacharyya(points[i], points[j])
    lam, coords = inpca(D)
    names_arr = np.array(names)
    out_coords = {name: coords[names_arr == name, :n_components] for name in dict.fromkeys(names)}
    total = np.abs(lam).sum()
    return {"coords": out_coords, "eigenvalues": lam, "explained": np.abs(lam) / total if total > 0 else lam * 0,
            "distances": D}

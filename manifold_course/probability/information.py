r"""Entropy, mutual information, the discrete information bottleneck, and prequential code length.

- $H(X) = -\sum_x p(x)\log p(x)$, $I(X;Y) = \sum_{x,y}p(x,y)\log\frac{p(x,y)}{p(x)p(y)} = H(Y) - H(Y|X)$, in nats
  (Shannon, "A Mathematical Theory of Communication", 1948). $I \ge 0$, zero iff independent, symmetric, and
  $I(X;Y) = H(X)$ when $Y$ is a bijection of $X$.
- Information bottleneck (Tishby, Pereira & Bialek, "The information bottleneck method", 1999, arXiv:physics/0004057):
  $\min_{p(z|x)} I(X;Z) - \beta I(Z;Y)$ over encoders of $X$ into a finite $Z$, with the Markov chain $Y - X - Z$.
  The self-consistent equations
  $p(z|x) \propto p(z)\exp(-\beta\,\mathrm{KL}(p(y|x)\|p(y|z)))$, $p(z) = \sum_x p(x)p(z|x)$,
  $p(y|z) = \sum_x p(y|x)p(x|z)$ are iterated like Blahut-Arimoto; each update is a coordinate-descent step on
  $F = I(X;Z) + \beta\,\mathbb E\,\mathrm{KL}(p(y|x)\|p(y|z)) = I(X;Z) - \beta I(Z;Y) + \beta I(X;Y)$, so the objective
  never increases.
- Prequential (online) code length: send labels block by block, each block coded with a model trained on the
  blocks before it (Rissanen 1984; Blier & Ollivier, "The Description Length of Deep Learning Models", 2018,
  arXiv:1802.07044). A model that learns compresses the labels below the uniform code.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from manifold_course.seeding import numpy_rng


def entropy(p: np.ndarray) -> float:
    r"""$H(p) = -\sum_i p_i\log p_i$ in nats, with $0\log 0 = 0$; any shape (all entries form one distribution)."""
    p = np.asarray(p, dtype=np.float64).ravel()
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def mutual_information(pxy: np.ndarray) -> float:
    r"""$I(X;Y)$ in nats of a joint table (n_x, n_y) that sums to 1: $\sum p(x,y)\log\frac{p(x,y)}{p(x)p(y)}$."""
    pxy = np.asarray(pxy, dtype=np.float64)
    px = pxy.sum(1, keepdims=True)                                       # (n_x, 1)
    py = pxy.sum(0, keepdims=True)                                       # (1, n_y)
    nz = pxy > 0                                                         # 0 log 0 = 0
    return float(np.sum(pxy[nz] * (np.log(pxy[nz]) - np.log((px * py)[nz]))))


def _ib_marginals(pzx: np.ndarray, px: np.ndarray, py_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p(z) (n_z,) and p(y|z) (n_z, n_y) implied by an encoder p(z|x) (n_x, n_z)."""
    pxz = pzx * px[:, None]                                              # (n_x, n_z) joint p(x, z)
    pz = pxz.sum(0)
    py_z = (pxz.T @ py_x) / np.maximum(pz, 1e-300)[:, None]              # sum_x p(y|x) p(x|z)
    return pz, py_z


def ib_objective(pxy: np.ndarray, pzx: np.ndarray, beta: float) -> tuple[float, float, float]:
    r"""$(I(X;Z),\ I(Z;Y),\ I(X;Z) - \beta I(Z;Y))$ for an encoder ``pzx`` (n_x, n_z) of the joint ``pxy`` (n_x, n_y)."""
    px = pxy.sum(1)
    i_xz = mutual_information(pzx * px[:, None])
    i_zy = mutual_information(pzx.T @ pxy)                               # p(z, y) = sum_x p(z|x) p(x, y)
    return i_xz, i_zy, i_xz - beta * i_zy


def ib_solve(pxy: np.ndarray, n_z: int, beta: float, iters: int = 200, seed: int = 0,
             init: np.ndarray | None = None) -> tuple[np.ndarray, list[float]]:
    r"""Self-consistent IB iterations: returns the encoder $p(z|x)$ (n_x, n_z) and the objective after each iteration.

    ``init`` (n_x, n_z) warm-starts the iteration (used to anneal along a sweep of $\beta$).
    """
    pxy = np.asarray(pxy, dtype=np.float64)
    px = pxy.sum(1)
    py_x = pxy / px[:, None]                                             # (n_x, n_y)
    rng = numpy_rng(seed)
    pzx = rng.dirichlet(np.ones(n_z), size=len(px)) if init is None else np.asarray(init, dtype=np.float64)
    trace = []
    for _ in range(iters):
        pz, py_z = _ib_marginals(pzx, px, py_x)
        py_z = np.maximum(py_z, 1e-300)
        # d[x, z] = KL(p(y|x) || p(y|z)), with 0 log 0 = 0
        logratio = np.log(np.maximum(py_x, 1e-300))[:, None, :] - np.log(py_z)[None, :, :]   # (n_x, n_z, n_y)
        d = np.sum(py_x[:, None, :] * logratio, axis=-1)
        logits = np.log(np.maximum(pz, 1e-300))[None, :] - beta * d      # log p(z) - beta * KL
        logits -= logits.max(1, keepdims=True)
        pzx = np.exp(logits)
        pzx /= pzx.sum(1, keepdims=True)
        trace.append(ib_objective(pxy, pzx, beta)[2])
    return pzx, trace


def ib_curve(pxy: np.ndarray, betas: Sequence[float], n_z: int, iters: int = 200, seed: int = 0,
             jitter: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    r"""The information-plane curve: $(I(X;Z), I(Z;Y))$ for each $\beta$ of an increasing sweep.

    Each solve is warm-started from the previous encoder plus a little noise (deterministic annealing), which
    follows one branch of solutions instead of jumping between local optima.
    """
    rng = numpy_rng(seed)
    pzx = None
    i_xz, i_zy = [], []
    for beta in betas:
        if pzx is not None:
            pzx = pzx * (1 + jitter * rng.random(pzx.shape))             # break the symmetry between clusters
            pzx /= pzx.sum(1, keepdims=True)
        pzx, _ = ib_solve(pxy, n_z, beta, iters, seed, init=pzx)
        a, c, _ = ib_objective(pxy, pzx, beta)
        i_xz.append(a)
        i_zy.append(c)
    return np.array(i_xz), np.array(i_zy)


def logistic_fit_predict_proba(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
                               n_classes: int, mix: float = 0.01) -> np.ndarray:
    r"""Multinomial logistic regression probabilities (n_test, n_classes), mixed with $\mathrm{mix}$ of the uniform code
    so that a class never seen in training still costs a finite number of bits."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    probs = np.zeros((len(X_test), n_classes))
    seen = np.unique(y_train)
    if len(seen) == 1:
        probs[:, seen[0]] = 1.0
    else:
        with threadpool_limits(1):              # matrices this small run faster on one BLAS thread
            model = LogisticRegression(C=1.0, max_iter=300).fit(X_train, y_train)
            probs[:, model.classes_] = model.predict_proba(X_test)
    return (1 - mix) * probs + mix / n_classes


def prequential_code_length(X: np.ndarray, y: np.ndarray, block_ends: Sequence[int], n_classes: int,
                            fit_predict_proba: Callable[..., np.ndarray] = logistic_fit_predict_proba) -> np.ndarray:
    r"""Bits to send each block of labels ``y[e_{i-1}:e_i]`` coded by a model fitted on ``y[:e_{i-1}]`` (inputs X known).

    The first block is sent with the uniform code, $\log_2 C$ bits per label. Returns bits per block (len(block_ends),).
    """
    bits = []
    start = 0
    for end in block_ends:
        if start == 0:
            bits.append((end - start) * np.log2(n_classes))
        else:
            p = fit_predict_proba(X[:start], y[:start], X[start:end], n_classes)     # (end - start, C)
            bits.append(float(-np.sum(np.log2(p[np.arange(end - start), y[start:end]]))))
        start = end
    return np.array(bits)

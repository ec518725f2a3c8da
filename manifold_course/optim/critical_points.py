r"""Critical points: minima, maxima, saddles, and how gradient descent leaves a saddle.

At a critical point $\nabla f(\theta^*) = 0$ the Hessian $H = \nabla^2 f(\theta^*)$ decides the type:
all eigenvalues $\lambda_i > 0$ is a strict minimum, all $< 0$ a strict maximum, both signs a saddle, and
any $\lambda_i = 0$ with no sign change leaves the second-order test undecided ("degenerate", e.g. the
monkey saddle $x^3 - 3xy^2$ whose Hessian at 0 is the zero matrix).

If the signs of the $d$ eigenvalues were fair coins, a critical point would be a minimum with probability
$2^{-d}$. For a random symmetric (GOE) matrix the eigenvalues repel each other and the probability that all
are positive decays much faster, like $e^{-\theta d^2}$ with $\theta = \ln 3 / 4$ (Dean & Majumdar,
"Large deviations of extreme eigenvalues of random matrices", PRL 2006, arXiv:cond-mat/0609651).

Gradient descent with a random start escapes strict saddles almost surely (Lee et al., "Gradient Descent
Converges to Minimizers", 2016, arXiv:1602.04915); a little noise makes it escape in a number of steps that
grows only like $\log(1/\text{noise})$ (Jin et al., "How to Escape Saddle Points Efficiently", 2017,
arXiv:1703.00887).

Also here: a 1-D double well with a sharp and a flat minimum (where does noisy GD end?), and the global minimum of
a two-layer linear network, whose symmetry $W_1 \to G W_1$, $W_2 \to W_2 G^{-1}$ makes $h^2$ flat directions.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from manifold_course.seeding import numpy_rng

GradFn = Callable[[np.ndarray], np.ndarray]


def classify_critical_point(H: np.ndarray, tol: float = 1e-8) -> str:
    r"""Type of a critical point from its (symmetric) Hessian ``H`` (d, d).

    Eigenvalues with $|\lambda| \le$ ``tol`` count as zero. Returns ``"saddle"`` when there is at least one
    eigenvalue $> $ tol and one $< -$tol (whatever the zeros), ``"min"`` when all are $>$ tol, ``"max"`` when all
    are $< -$tol, and ``"degenerate"`` otherwise (semi-definite with a zero direction: the second-order test
    cannot decide, higher derivatives must).
    """
    eigs = np.linalg.eigvalsh(np.asarray(H, dtype=np.float64))  # (d,), ascending
    has_pos = bool((eigs > tol).any())
    has_neg = bool((eigs < -tol).any())
    if has_pos and has_neg:
        return "saddle"
    if has_pos and bool((eigs > tol).all()):
        return "min"
    if has_neg and bool((eigs < -tol).all()):
        return "max"
    return "degenerate"


def saddle_index(H: np.ndarray, tol: float = 1e-8) -> float:
    r"""Fraction of negative eigenvalues of ``H`` (the *index* of the critical point, between 0 and 1)."""
    eigs = np.linalg.eigvalsh(np.asarray(H, dtype=np.float64))
    return float((eigs < -tol).mean())


# --- two saddles of the plane ---------------------------------------------------------------------------

def quadratic_saddle(p: np.ndarray) -> float:
    r"""$f(x, y) = x^2 - y^2$: a strict saddle at 0 (Hessian diag(2, -2))."""
    x, y = p[..., 0], p[..., 1]
    return x**2 - y**2


def quadratic_saddle_grad(p: np.ndarray) -> np.ndarray:
    x, y = p[..., 0], p[..., 1]
    return np.stack([2 * x, -2 * y], axis=-1)


def monkey_saddle(p: np.ndarray) -> float:
    r"""$f(x, y) = x^3 - 3xy^2$: three valleys, three ridges, Hessian 0 at the origin (a degenerate saddle)."""
    x, y = p[..., 0], p[..., 1]
    return x**3 - 3 * x * y**2


def monkey_saddle_grad(p: np.ndarray) -> np.ndarray:
    x, y = p[..., 0], p[..., 1]
    return np.stack([3 * x**2 - 3 * y**2, -6 * x * y], axis=-1)


def gd_trajectory(grad_fn: GradFn, x0: np.ndarray, lr: float, steps: int, noise: float = 0.0,
                  seed: int = 0) -> np.ndarray:
    r"""Perturbed gradient descent $x_{t+1} = x_t - \eta \nabla f(x_t) + \text{noise}\cdot\xi_t$, $\xi_t \sim N(0, I)$.

    Returns the path (steps + 1, d), starting with ``x0``.
    """
    rng = numpy_rng(seed)
    x = np.array(x0, dtype=np.float64)
    path = [x.copy()]
    for _ in range(steps):
        x = x - lr * grad_fn(x) + noise * rng.standard_normal(x.shape)
        path.append(x.copy())
    return np.stack(path)


def escape_steps(grad_fn: GradFn, x0: np.ndarray, lr: float, noise: float, max_steps: int = 10_000,
                 radius: float = 1.0, seed: int = 0) -> int:
    r"""Steps of perturbed GD from ``x0`` until $\|x_t\| >$ ``radius`` (``max_steps`` if it never leaves).

    Near the strict saddle $x^2 - y^2$ the unstable coordinate grows by $(1 + 2\eta)$ per step, so noise of
    size $\varepsilon$ escapes after about $\log(\text{radius}/\varepsilon) / \log(1 + 2\eta)$ steps.
    """
    rng = numpy_rng(seed)
    x = np.array(x0, dtype=np.float64)
    for t in range(1, max_steps + 1):
        x = x - lr * grad_fn(x) + noise * rng.standard_normal(x.shape)
        if np.linalg.norm(x) > radius:
            return t
    return max_steps


def goe_matrices(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    r"""``n`` samples of the Gaussian orthogonal ensemble, (n, d, d): $H = (A + A^\top)/2$, $A_{ij} \sim N(0, 1)$."""
    A = rng.standard_normal((n, d, d))
    return 0.5 * (A + np.swapaxes(A, -1, -2))


def frac_positive_definite_goe(d: int, n: int = 100_000, seed: int = 0, chunk: int = 50_000) -> float:
    r"""Monte-Carlo fraction of $d \times d$ GOE matrices whose eigenvalues are all positive.

    Compare with the coin-flip heuristic $2^{-d}$: eigenvalue repulsion makes the true fraction fall like
    $e^{-\theta d^2}$. (For d = 2 the exact value is $(2 - \sqrt2)/4 \approx 0.146$, below $2^{-2} = 0.25$.)
    """
    rng = numpy_rng(seed)
    hits, done = 0, 0
    while done < n:
        m = min(chunk, n - done)
        lam_min = np.linalg.eigvalsh(goe_matrices(d, m, rng))[:, 0]  # (m,), smallest eigenvalue
        hits += int((lam_min > 0).sum())
        done += m
    return hits / n


# --- sharp and flat minima: a 1-D double well -------------------------------------------------------------

NARROW = (-1.0, 4.0)   # (position, stiffness k): f = k (x - x0)^2 near the sharp minimum, curvature 2k = 8
WIDE = (1.5, 0.25)     # the flat minimum, curvature 0.5: same depth (0), 16 times less curved


def double_well(x: np.ndarray) -> np.ndarray:
    r"""$f(x) = \min\big(4 (x+1)^2,\ 0.25 (x-1.5)^2\big)$: a sharp and a flat minimum of equal depth 0.

    The two parabolas cross at $x_b = -0.5$ (the barrier, height 1 from both sides).
    """
    (xn, kn), (xw, kw) = NARROW, WIDE
    return np.minimum(kn * (x - xn) ** 2, kw * (x - xw) ** 2)


def double_well_grad(x: np.ndarray) -> np.ndarray:
    (xn, kn), (xw, kw) = NARROW, WIDE
    return np.where(kn * (x - xn) ** 2 < kw * (x - xw) ** 2, 2 * kn * (x - xn), 2 * kw * (x - xw))


def double_well_barrier() -> float:
    r"""Where the parabolas cross: $\sqrt{k_n}(x - x_n) = \sqrt{k_w}(x_w - x)$."""
    (xn, kn), (xw, kw) = NARROW, WIDE
    return (np.sqrt(kn) * xn + np.sqrt(kw) * xw) / (np.sqrt(kn) + np.sqrt(kw))


def basin_boundary_fraction(low: float = -3.0, high: float = 4.0) -> float:
    """Fraction of uniform starts in [low, high] that already lie in the wide basin (what noiseless GD keeps)."""
    return (high - double_well_barrier()) / (high - low)


def wide_basin_fraction(noise: float, n_runs: int = 4000, steps: int = 1000, lr: float = 0.05, seed: int = 0,
                        low: float = -3.0, high: float = 4.0) -> float:
    r"""Fraction of noisy-GD runs that end in the wide basin.

    Each run starts uniformly in [low, high] and follows $x \leftarrow x - \eta f'(x) + \text{noise}\,\sqrt\eta\,\xi$
    (a discretised Langevin equation, whose stationary law is $\propto e^{-2f/\text{noise}^2}$): noise lets runs hop
    the barrier, and they pile up where the basin is wider.
    """
    rng = numpy_rng(seed)
    x = rng.uniform(low, high, n_runs)
    for _ in range(steps):
        x = x - lr * double_well_grad(x) + noise * np.sqrt(lr) * rng.standard_normal(n_runs)
    return float((x > double_well_barrier()).mean())


# --- symmetry makes minima degenerate (Part 2, F9a) ---------------------------------------------------------

def linear_net_minimum(X: torch.Tensor, Y: torch.Tensor, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""A global minimum $(W_1, W_2)$, shapes (h, d_in) and (d_out, h), of $\frac1N\|X W_1^\top W_2^\top - Y\|^2$.

    Reduced-rank regression: the least-squares map projected on the top-h right singular vectors of the fitted
    outputs. Any $(G W_1, W_2 G^{-1})$ with invertible $G$ (h x h) is an equally good minimum, so the Hessian
    has (at least) $h^2$ zero eigenvalues there. X (N, d_in), Y (N, d_out).
    """
    B = torch.linalg.lstsq(X, Y).solution.T                              # (d_out, d_in), least squares
    _, _, Vh = torch.linalg.svd(X @ B.T, full_matrices=False)             # right singular vectors of the fit
    Vh = Vh[:h]                                                           # (h, d_out)
    return (Vh @ B).clone(), Vh.T.clone()                                 # W1 (h, d_in), W2 (d_out, h)

"""Checks for chapter v0_roots/03_optimization (Volume 0, sections 0.11-0.15).

Cases are drawn at grading time from the seeded generator. Losses handed to the learner are small callable
objects that hold their own parameter tensors, so the grader's deep copy for the reference stays consistent
(a copied closure would still point at the original tensors).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import float_problem as _float_problem
from manifold_course.optim import critical_points, hessian, isotropy, msign, natural_gradient, second_order
from manifold_course.probability.fisher import fisher_gaussian

CHAPTER = "v0_roots/03_optimization"
F64 = torch.float64


def _t(rng: np.random.Generator, *shape: int, dtype=F64) -> torch.Tensor:
    return torch.as_tensor(rng.standard_normal(shape), dtype=dtype)


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))                        # (n, n), Haar-distributed


def _sym_with_eigs(rng: np.random.Generator, eigs) -> np.ndarray:
    Q = _orthogonal(rng, len(eigs))
    H = Q @ np.diag(np.asarray(eigs, dtype=np.float64)) @ Q.T
    return 0.5 * (H + H.T)


def _spd(rng: np.random.Generator, n: int, low: float = 0.5, high: float = 5.0) -> torch.Tensor:
    return torch.as_tensor(_sym_with_eigs(rng, rng.uniform(low, high, n)), dtype=F64)


# ---------------------------------------------------------------- losses the learner differentiates


class MLPLoss:
    """MSE of the seed's MLP d_in -> h (tanh) -> 1 on fixed data; its parameters are ``self.params``."""

    def __init__(self, rng: np.random.Generator, n: int = 32, d_in: int = 10, h: int = 10, dtype=F64):
        self.X, self.y = _t(rng, n, d_in, dtype=dtype), _t(rng, n, 1, dtype=dtype)
        self.params = [(_t(rng, h, d_in, dtype=dtype) / math.sqrt(d_in)).requires_grad_(True),
                       (0.1 * _t(rng, h, dtype=dtype)).requires_grad_(True),
                       (_t(rng, 1, h, dtype=dtype) / math.sqrt(h)).requires_grad_(True),
                       (0.1 * _t(rng, 1, dtype=dtype)).requires_grad_(True)]

    def __call__(self) -> torch.Tensor:
        W1, b1, W2, b2 = self.params
        out = torch.tanh(self.X @ W1.T + b1) @ W2.T + b2       # (n, 1)
        return ((out - self.y) ** 2).mean()

    def __repr__(self) -> str:
        return f"MLP loss ({sum(p.numel() for p in self.params)} parameters, {len(self.X)} points)"


class PolyLoss:
    """0.5 theta^T A theta + sum(c * theta^3) / 3 over parameters of several shapes (flattened in order)."""

    def __init__(self, A: np.ndarray, shapes, cubic: float, rng: np.random.Generator):
        self.A = torch.as_tensor(A, dtype=F64)
        self.c = cubic
        self.params = [_t(rng, *s).requires_grad_(True) for s in shapes]

    def __call__(self) -> torch.Tensor:
        th = torch.cat([p.reshape(-1) for p in self.params])
        return 0.5 * th @ self.A @ th + self.c * (th**3).sum() / 3

    def __repr__(self) -> str:
        return f"polynomial loss over shapes {[tuple(p.shape) for p in self.params]}"


def _dominant_eigenvalue(loss_fn, params, iters=100) -> float:
    """The exact answer: the eigenvalue of largest magnitude of the full Hessian (eigh), cached on the loss."""
    cached = getattr(loss_fn, "dominant", None)
    if cached is not None:
        return cached
    e = torch.linalg.eigvalsh(hessian.full_hessian(loss_fn, params))
    return float(e[torch.argmax(e.abs())])


# ---------------------------------------------------------------- 0.11 classify a critical point


def _classify_cases(rng):
    yield Case((np.diag([2.0, -2.0]),), {"tol": 1e-8}, label="x^2 - y^2 at 0: diag(2, -2)")
    yield Case((np.zeros((2, 2)),), {"tol": 1e-8}, label="monkey saddle at 0: the zero matrix")
    yield Case((np.array([[1.0, 2.0], [2.0, 1.0]]),), {"tol": 1e-8},
               label="positive diagonal but eigenvalues 3 and -1: look at eigenvalues, not the diagonal")
    yield Case((_sym_with_eigs(rng, rng.uniform(0.1, 3, 7)),), {"tol": 1e-8}, label="7x7, all eigenvalues positive")
    yield Case((_sym_with_eigs(rng, -rng.uniform(0.1, 3, 5)),), {"tol": 1e-8}, label="5x5, all negative")
    yield Case((_sym_with_eigs(rng, [1.0, 0.0, -1.0]),), {"tol": 1e-8}, label="eigenvalues 1, 0, -1: still a saddle")
    yield Case((_sym_with_eigs(rng, [1.0, 2.0, 0.0]),), {"tol": 1e-8}, label="eigenvalues 1, 2, 0: semi-definite")
    yield Case((np.diag([1.0, 1e-10]),), {"tol": 1e-8}, label="eigenvalue 1e-10 <= tol counts as zero")
    yield Case((np.diag([1.0, 1e-10]),), {"tol": 1e-12}, label="same matrix, tol 1e-12: a minimum")
    yield Case((np.diag([3.0, 2.0, -1e-10]),), {"tol": 1e-8}, label="tiny negative eigenvalue within tol: degenerate")
    yield Case((np.array([[4.0]]),), {"tol": 1e-8}, label="1x1")
    yield Case((np.array([[-1e-3]]),), {"tol": 1e-8}, label="1x1 negative")


# ---------------------------------------------------------------- 0.12 Hessian-vector product


def _hvp_cases(rng):
    loss = MLPLoss(rng)
    yield Case((loss, loss.params, _t(rng, 121)), label="the seed's 10-10-1 tanh MLP, 121 parameters")
    loss = MLPLoss(rng, n=1, d_in=3, h=5)
    yield Case((loss, loss.params, _t(rng, 26)), label="batch of 1, 3-5-1 MLP (26 parameters)")
    A = _sym_with_eigs(rng, rng.uniform(-2, 4, 9))
    loss = PolyLoss(A, [(3,), (2, 3)], 0.7, rng)
    yield Case((loss, loss.params, _t(rng, 9)), label="cubic polynomial over two tensors of shapes (3,), (2, 3)")
    loss = PolyLoss(np.array([[2.5]]), [(1,)], 0.0, rng)
    yield Case((loss, loss.params, _t(rng, 1)), label="one parameter: Hv = 2.5 v")
    loss = MLPLoss(rng, n=7, d_in=4, h=6, dtype=torch.float32)
    yield Case((loss, loss.params, _t(rng, 37, dtype=torch.float32)), label="float32 MLP (keep the dtype)",
               rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- 0.12 Newton step


def _newton_cases(rng):
    for P, damping in ((1, 0.0), (2, 0.0), (7, 0.5), (33, 0.0), (5, 10.0)):
        H = _spd(rng, P)
        yield Case((_t(rng, P), H), {"damping": damping}, label=f"P={P}, damping={damping}")
    H = torch.as_tensor(_sym_with_eigs(rng, [2.0, -1.0, 0.5]), dtype=F64)
    yield Case((_t(rng, 3), H), {"damping": 0.0}, label="indefinite H: Newton still solves H d = -g")


def _newton_minimises_quadratic(fn) -> str | None:
    rng = np.random.default_rng(7)
    A, b, x = _spd(rng, 6), _t(rng, 6), _t(rng, 6)
    x_new = x + fn(A @ x - b, A, damping=0.0)
    x_star = torch.linalg.solve(A, b)
    err = float((x_new - x_star).abs().max())
    if err > 1e-8:
        return f"one Newton step on f(x) = x^T A x / 2 - b^T x should land on the minimiser A^-1 b; it missed by {err:.3g}"
    return None


# ---------------------------------------------------------------- 0.12 BFGS


def _bfgs_cases(rng):
    for P, label in ((2, "P=2, H0 = I"), (5, "P=5"), (13, "P=13"), (1, "P=1")):
        Hinv = torch.eye(P, dtype=F64) if P == 2 else _spd(rng, P, 0.2, 2.0)
        A = _spd(rng, P, 0.5, 20.0)
        s = _t(rng, P)
        yield Case((Hinv, s, A @ s), label=label)


def _judge_bfgs(got, expected, case) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"return a torch.Tensor, got {type(got).__name__}"
    if got.shape != expected.shape:
        return f"the output has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    _, s, y = case.args
    asym = float((got - got.T).abs().max())
    if asym > 1e-8:
        return f"the update is not symmetric (max |H - H^T| = {asym:.3g}): the right factor is (I - rho y s^T), the transpose of the left"
    secant = float((got @ y - s).abs().max())
    if secant > 1e-8:
        return f"the secant condition H_new^-1 y = s fails by {secant:.3g}: check rho = 1/(y^T s) and the + rho s s^T term"
    from manifold_course.grading.compare import compare

    return compare(got, expected, 1e-8, 1e-10)


# ---------------------------------------------------------------- 0.12 Adam


def _adam_state(rng, params, step):
    if step == 0:
        return {"step": 0, "m": [torch.zeros_like(p) for p in params], "v": [torch.zeros_like(p) for p in params]}
    return {"step": step, "m": [0.1 * _t(rng, *p.shape) for p in params],
            "v": [0.01 * _t(rng, *p.shape) ** 2 for p in params]}


def _adam_cases(rng):
    shapes = [(3,), (4, 5), (1,)]
    params = [_t(rng, *s) for s in shapes]
    yield Case((params, [_t(rng, *s) for s in shapes], _adam_state(rng, params, 0)),
               {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}, label="first step (t = 1) from zero moments")
    params = [_t(rng, 6)]
    yield Case((params, [_t(rng, 6)], _adam_state(rng, params, 7)),
               {"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8}, label="step 8: bias corrections 1 - beta^8")
    params = [_t(rng, 2, 3)]
    yield Case((params, [_t(rng, 2, 3)], _adam_state(rng, params, 2)),
               {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-8}, label="betas (0.5, 0.9)")
    params = [_t(rng, 5)]
    yield Case((params, [1e-4 * _t(rng, 5)], _adam_state(rng, params, 0)),
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-3},
               label="tiny gradients and eps = 1e-3: eps goes outside the square root")
    params = [_t(rng, 1)]
    yield Case((params, [_t(rng, 1)], _adam_state(rng, params, 1000)),
               {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}, label="one parameter, step 1001")


def _adam_matches_torch(fn) -> str | None:
    # Ten steps on a quadratic, against the reference, which tests/test_optim.py checks against torch.optim.Adam
    # (calling torch.optim here would cost a one-off second: its first step imports torch._dynamo).
    A = _spd(np.random.default_rng(3), 6)
    p_ref = torch.as_tensor(np.random.default_rng(4).standard_normal(6), dtype=F64)
    p_mine = p_ref.clone()
    state_ref = second_order.adam_init([p_ref])
    state = second_order.adam_init([p_mine])
    for t in range(1, 11):
        (p_ref,), state_ref = second_order.adam_step([p_ref], [A @ p_ref], state_ref, lr=0.05, betas=(0.8, 0.99))
        out = fn([p_mine], [A @ p_mine], state, lr=0.05, betas=(0.8, 0.99), eps=1e-8)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return "return a pair (new_params, new_state)"
        (p_mine,), state = out
        err = float((p_mine - p_ref).abs().max())
        if err > 1e-7:
            return f"after {t} steps on a quadratic your parameters differ from torch.optim.Adam's by {err:.3g}"
    return None


# ---------------------------------------------------------------- 0.13 top Hessian eigenvalue


def _mlp_with_clear_top_eigenvalue(rng, **kw) -> MLPLoss:
    """An MLP loss whose two largest |eigenvalues| differ by 25 % at least, so 50 power iterations converge."""
    for _ in range(50):
        loss = MLPLoss(rng, **kw)
        e = torch.linalg.eigvalsh(hessian.full_hessian(loss, loss.params))
        mags = e.abs().sort(descending=True).values
        if mags[1] < 0.75 * mags[0]:
            loss.dominant = float(e[torch.argmax(e.abs())])
            return loss
    raise RuntimeError("no MLP with a clear top eigenvalue found")  # pragma: no cover


def _top_eig_cases(rng):
    loss = _mlp_with_clear_top_eigenvalue(rng)
    yield Case((loss, loss.params), {"iters": 50}, label="the seed's MLP (121 parameters, 32 points)",
               rtol=0.01, atol=1e-6)
    loss = _mlp_with_clear_top_eigenvalue(rng, n=9, h=6)
    yield Case((loss, loss.params), {"iters": 50}, label="a 10-6-1 MLP (73 parameters, 9 points)", rtol=0.01, atol=1e-6)
    A = _sym_with_eigs(rng, [-5.0, 3.0, 1.0, 0.5, 2.0])
    loss = PolyLoss(A, [(5,)], 0.0, rng)
    yield Case((loss, loss.params), {"iters": 50}, label="a quadratic whose dominant eigenvalue is -5 (keep the sign)",
               rtol=0.01, atol=1e-6)
    A = _sym_with_eigs(rng, [6.0, 1.0, -2.0, 0.3, 2.5, 0.0, 1.5, -0.7, 3.0])
    loss = PolyLoss(A, [(3,), (2, 3)], 0.0, rng)
    yield Case((loss, loss.params), {"iters": 50}, label="parameters of shapes (3,) and (2, 3), top eigenvalue 6",
               rtol=0.01, atol=1e-6)
    loss = PolyLoss(np.array([[2.5]]), [(1,)], 0.0, rng)
    yield Case((loss, loss.params), {"iters": 50}, label="one parameter: H = 2.5", rtol=0.01, atol=1e-6)


def _judge_top_eig(got, expected, case) -> str | None:
    problem = _float_problem(got)
    if problem:
        return problem
    if abs(float(got) - expected) > 0.01 * abs(expected) + 1e-6:
        hint = " (a Rayleigh quotient v^T H v keeps the sign; ||Hv|| does not)" if float(got) * expected < 0 else ""
        return f"expected the dominant eigenvalue {expected:.6g} (eigh of the full Hessian) within 1 %, got {float(got):.6g}{hint}"
    return None


# ---------------------------------------------------------------- 0.15 natural gradient step


def _ngd_cases(rng):
    for param in ("sigma", "logsigma"):
        mu, sigma = float(rng.normal()), float(rng.uniform(0.2, 3.0))
        yield Case((_t(rng, 2), fisher_gaussian(mu, sigma, param), 0.1), {"damping": 0.0},
                   label=f"Gaussian Fisher in ({'mu, ' + param}) at sigma={sigma:.3g}")
    yield Case((_t(rng, 3), _spd(rng, 3), 0.5), {"damping": 0.0}, label="a full 3x3 SPD Fisher")
    yield Case((_t(rng, 6), _spd(rng, 6, 0.01, 3.0), 1.0), {"damping": 1e-2}, label="6x6, damping 0.01")
    yield Case((_t(rng, 4), _spd(rng, 4), 0.2), {"damping": 5.0}, label="4x4, strong damping 5")


def _ngd_invariant(fn) -> str | None:
    # d/dlogsigma = sigma d/dsigma, so a natural step in log sigma must move sigma like a natural step in sigma.
    mu, sigma, lr = 0.3, 0.7, 1e-4
    g_sigma = torch.tensor([0.8, -1.3], dtype=F64)                   # dL/dmu, dL/dsigma
    g_log = torch.tensor([0.8, -1.3 * sigma], dtype=F64)              # dL/dmu, dL/dlogsigma
    d1 = fn(g_sigma, fisher_gaussian(mu, sigma, "sigma"), lr, damping=0.0)
    d2 = fn(g_log, fisher_gaussian(mu, sigma, "logsigma"), lr, damping=0.0)
    dsigma_1, dsigma_2 = float(d1[1]), sigma * float(d2[1])           # d sigma = sigma d log sigma
    if abs(float(d1[0]) - float(d2[0])) > 1e-12 or abs(dsigma_1 - dsigma_2) > 1e-3 * abs(dsigma_1):
        return (f"natural steps should move (mu, sigma) the same way in both coordinates to first order; got "
                f"d(mu, sigma) = ({float(d1[0]):.3g}, {dsigma_1:.3g}) vs ({float(d2[0]):.3g}, {dsigma_2:.3g})")
    return None


# ---------------------------------------------------------------- isotropy: feature update and alignment


def _feature_cases(rng):
    for b, d_in, d_out, eta in ((1, 3, 2, 0.1), (5, 7, 3, 1.0), (6, 6, 4, 2.5), (12, 5, 1, 0.3)):
        yield Case((_t(rng, b, d_in), _t(rng, b, d_out), eta), label=f"X ({b}, {d_in}), dL/dY ({b}, {d_out}), eta={eta}")


def _feature_is_parameter_step(fn) -> str | None:
    rng = np.random.default_rng(11)
    X, W, G = _t(rng, 4, 9), _t(rng, 9, 3), _t(rng, 4, 3)
    direct = X @ (W - 0.2 * X.T @ G) - X @ W                          # features after an SGD step on W
    got = fn(X, G, 0.2)
    if not isinstance(got, torch.Tensor) or got.shape != direct.shape:
        return "return a torch.Tensor shaped like dL/dY"
    if float((got - direct).abs().max()) > 1e-10:
        return "your Delta Y differs from X (W - eta X^T dL/dY) - X W, the actual change of the outputs"
    return None


def _alignment_cases(rng):
    X, G = _t(rng, 6, 10), _t(rng, 6, 4)
    yield Case((X, G), label="Gaussian X (6, 10)")
    Q = torch.as_tensor(_orthogonal(rng, 10)[:6], dtype=F64)             # orthonormal rows: XX^T = I
    yield Case((3.0 * Q, _t(rng, 6, 4)), label="X X^T = 9 I: cosine 1")
    yield Case((isotropy.inputs_with_condition(8, 12, 1000.0, seed=int(rng.integers(1000))), _t(rng, 8, 3)),
               label="X X^T with condition number 1000")
    yield Case((_t(rng, 1, 5), _t(rng, 1, 3)), label="batch of 1: X X^T is a number, cosine 1")
    yield Case((_t(rng, 9, 4), _t(rng, 9, 1)), label="b = 9 > d_in = 4: X X^T has rank 4")


# ---------------------------------------------------------------- Muon: msign by Newton-Schulz


def _well_conditioned(rng, m, n, kappa=10.0):
    k = min(m, n)
    U = _orthogonal(rng, m)[:, :k]
    V = _orthogonal(rng, n)[:, :k]
    s = np.geomspace(1.0, kappa, k) * rng.uniform(0.1, 10.0)
    return torch.as_tensor(U @ np.diag(s) @ V.T, dtype=F64)


def _msign_cases(rng):
    M = _t(rng, 32, 32)
    yield Case((M, 40), label="seeded Gaussian 32x32, 40 steps", rtol=1e-6, atol=1e-6)
    yield Case((_well_conditioned(rng, 5, 9), 30), label="wide 5x9, condition number 10", rtol=1e-6, atol=1e-6)
    yield Case((_well_conditioned(rng, 12, 7), 30), label="tall 12x7, condition number 10", rtol=1e-6, atol=1e-6)
    yield Case((_t(rng, 1, 4), 5), label="a single row: msign(v) = v / ||v||", rtol=1e-6, atol=1e-6)
    yield Case((_t(rng, 6, 10), 3), label="only 3 steps: X0 = M / ||M||_F, then X <- 1.5 X - 0.5 X X^T X",
               rtol=1e-9, atol=1e-12)
    yield Case((100.0 * _well_conditioned(rng, 8, 8), 30), label="large entries (scale ~1000): normalise first",
               rtol=1e-6, atol=1e-6)


def _msign_equivariant(fn) -> str | None:
    rng = np.random.default_rng(5)
    M = _well_conditioned(rng, 6, 9)
    Q, R = (torch.as_tensor(_orthogonal(rng, k), dtype=F64) for k in (6, 9))
    left, right = fn(Q @ M @ R, 25), Q @ fn(M, 25) @ R
    err = float((left - right).abs().max())
    if err > 1e-8:
        return f"msign should be orthogonally equivariant, msign(Q M R) = Q msign(M) R; your results differ by {err:.3g}"
    return None


EXERCISES = [
    Exercise("optimization.classify_critical_point", "Classify a critical point by its Hessian",
             cases=_classify_cases, reference=critical_points.classify_critical_point),
    Exercise("optimization.hvp", "Hessian-vector product by double backward",
             cases=_hvp_cases, reference=hessian.hvp, rtol=1e-7, atol=1e-9),
    Exercise("optimization.newton_step", "Damped Newton step",
             cases=_newton_cases, reference=second_order.newton_step, rtol=1e-8, atol=1e-10,
             properties=[_newton_minimises_quadratic]),
    Exercise("optimization.bfgs_inverse_update", "BFGS inverse-Hessian update",
             cases=_bfgs_cases, reference=second_order.bfgs_inverse_update, judge=_judge_bfgs),
    Exercise("optimization.adam_step", "One Adam step, as torch.optim.Adam",
             cases=_adam_cases, reference=second_order.adam_step, rtol=1e-9, atol=1e-12,
             properties=[_adam_matches_torch]),
    Exercise("optimization.top_hessian_eigenvalue", "Sharpness by power iteration on HVPs",
             cases=_top_eig_cases, reference=_dominant_eigenvalue, judge=_judge_top_eig),
    Exercise("optimization.natural_gradient_step", "Natural-gradient step",
             cases=_ngd_cases, reference=natural_gradient.natural_gradient_step, rtol=1e-9, atol=1e-12,
             properties=[_ngd_invariant]),
    Exercise("optimization.feature_update", "How a weight step moves the features",
             cases=_feature_cases, reference=isotropy.feature_update, rtol=1e-10, atol=1e-12,
             properties=[_feature_is_parameter_step]),
    Exercise("optimization.update_alignment", "Alignment of the feature update with steepest descent",
             cases=_alignment_cases, reference=isotropy.update_alignment, rtol=1e-9, atol=1e-12),
    Exercise("optimization.msign_newton_schulz", "msign by the cubic Newton-Schulz iteration",
             cases=_msign_cases, reference=lambda M, steps: msign.msign_newton_schulz(M, steps, coeffs="cubic"),
             properties=[_msign_equivariant]),
]

r"""Second-order and adaptive steps: Newton, BFGS, Adam, and a race between them on curved valleys.

Second-order Taylor model: $L(\theta + \Delta) \approx L + g^\top\Delta + \tfrac12 \Delta^\top H \Delta$, minimised by
the Newton step $\Delta = -H^{-1} g$: exact in one step on a quadratic, whatever its condition number.
BFGS (Broyden, Fletcher, Goldfarb, Shanno, 1970) builds an approximation of $H^{-1}$ from gradient
differences only (Nocedal & Wright, *Numerical Optimization*, 2nd ed. 2006, ch. 6). Adam (Kingma & Ba,
"Adam: A Method for Stochastic Optimization", 2014, arXiv:1412.6980) divides by the root of a running mean
of squared gradients: a per-coordinate rescaling, not curvature.

Vectors are flat float64 tensors: ``x`` (P,), ``g`` (P,), ``H`` (P, P).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def newton_step(g: torch.Tensor, H: torch.Tensor, damping: float = 0.0) -> torch.Tensor:
    r"""Damped Newton step $\Delta = -(H + \lambda I)^{-1} g$ (P,), by a linear solve (never an explicit inverse).

    ``damping`` $\lambda \ge 0$ (Levenberg-Marquardt) interpolates between Newton ($\lambda = 0$) and a short
    gradient step ($\lambda \to \infty$: $\Delta \approx -g/\lambda$).
    """
    A = H + damping * torch.eye(H.shape[0], dtype=H.dtype)
    return -torch.linalg.solve(A, g)


def bfgs_inverse_update(Hinv: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""BFGS update of the inverse-Hessian approximation (P, P).

    $H^{-1}_{k+1} = (I - \rho s y^\top) H^{-1}_k (I - \rho y s^\top) + \rho s s^\top$, $\rho = 1/(y^\top s)$,
    with $s = x_{k+1} - x_k$ and $y = g_{k+1} - g_k$. It satisfies the secant condition $H^{-1}_{k+1} y = s$,
    stays symmetric, and stays positive definite when $y^\top s > 0$.
    """
    rho = 1.0 / (y @ s)
    I = torch.eye(Hinv.shape[0], dtype=Hinv.dtype)
    left = I - rho * torch.outer(s, y)                                # (P, P)
    return left @ Hinv @ left.T + rho * torch.outer(s, s)


def adam_init(params: list[torch.Tensor]) -> dict:
    """The state before the first Adam step: step 0 and zero moments shaped like each parameter."""
    return {"step": 0, "m": [torch.zeros_like(p) for p in params], "v": [torch.zeros_like(p) for p in params]}


def adam_step(params: list[torch.Tensor], grads: list[torch.Tensor], state: dict, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> tuple[list[torch.Tensor], dict]:
    r"""One Adam step, as ``torch.optim.Adam`` (no weight decay), without touching its inputs.

    With $t$ = state["step"] + 1:
    $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$, $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$,
    $\hat m_t = m_t/(1-\beta_1^t)$, $\hat v_t = v_t/(1-\beta_2^t)$ (bias corrections: $m_0 = v_0 = 0$),
    $\theta_t = \theta_{t-1} - \eta\,\hat m_t/(\sqrt{\hat v_t} + \epsilon)$.
    Returns ``(new_params, new_state)``.
    """
    b1, b2 = betas
    t = state["step"] + 1
    new_params, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, state["m"], state["v"]):
        m = b1 * m + (1 - b1) * g                                    # first moment
        v = b2 * v + (1 - b2) * g * g                                # second moment (elementwise)
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        new_params.append(p - lr * m_hat / (v_hat.sqrt() + eps))
        new_m.append(m)
        new_v.append(v)
    return new_params, {"step": t, "m": new_m, "v": new_v}


# --- curved valleys -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """A smooth test function with its gradient, Hessian and minimum value ``f_star``."""

    name: str
    f: Callable[[torch.Tensor], torch.Tensor]
    grad: Callable[[torch.Tensor], torch.Tensor]
    hess: Callable[[torch.Tensor], torch.Tensor]
    f_star: float = 0.0


def quadratic_valley(kappa: float = 100.0, angle: float = 0.0) -> Problem:
    r"""$f(x) = \tfrac12 x^\top A x$ with eigenvalues 1 and $\kappa$, axes rotated by ``angle`` (radians)."""
    c, s = torch.cos(torch.tensor(angle, dtype=torch.float64)), torch.sin(torch.tensor(angle, dtype=torch.float64))
    R = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])      # (2, 2) rotation
    A = R @ torch.diag(torch.tensor([1.0, kappa], dtype=torch.float64)) @ R.T
    # f accepts x of shape (2,) or (2, ...) (a grid of points, for contour plots)
    return Problem(f"quadratic kappa={kappa:g}", lambda x: 0.5 * (x * torch.tensordot(A, x, dims=1)).sum(0),
                   lambda x: A @ x, lambda x: A)


def rosenbrock() -> Problem:
    r"""$f(x, y) = (1 - x)^2 + 100 (y - x^2)^2$: a curved banana valley, minimum 0 at (1, 1); f takes (2, ...)."""
    def f(p):
        return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2

    def grad(p):
        return torch.stack([-2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2), 200 * (p[1] - p[0] ** 2)])

    def hess(p):
        return torch.stack([torch.stack([2 - 400 * p[1] + 1200 * p[0] ** 2, -400 * p[0]]),
                            torch.stack([-400 * p[0], torch.tensor(200.0, dtype=p.dtype)])])

    return Problem("Rosenbrock", f, grad, hess)


def _backtrack(prob: Problem, x: torch.Tensor, d: torch.Tensor, g: torch.Tensor, alpha: float = 1.0) -> float:
    """Armijo backtracking: halve alpha until f(x + alpha d) <= f(x) + 1e-4 alpha g.d."""
    fx, slope = float(prob.f(x)), float(g @ d)
    while alpha > 1e-12 and float(prob.f(x + alpha * d)) > fx + 1e-4 * alpha * slope:
        alpha *= 0.5
    return alpha


def run_optimizer(prob: Problem, x0: torch.Tensor, method: str, max_steps: int = 20_000, tol: float = 1e-10,
                  lr: float = 1e-2, beta: float = 0.9, betas: tuple[float, float] = (0.9, 0.999)) -> dict:
    r"""Run one method from ``x0`` until $f - f^* <$ ``tol`` or ``max_steps``.

    Methods: ``"gd"`` ($x \leftarrow x - \eta g$), ``"momentum"`` (heavy ball $u \leftarrow \beta u + g$,
    $x \leftarrow x - \eta u$), ``"adam"`` (:func:`adam_step`), ``"newton"`` (:func:`newton_step`, with a
    backtracking safeguard), ``"bfgs"`` (:func:`bfgs_inverse_update`, $H^{-1}_0 = I$, Armijo line search).
    Returns ``{"path": (T+1, 2) tensor, "steps": int or None (None: tol not reached)}``.
    """
    x = x0.clone().double()
    path, u = [x.clone()], torch.zeros_like(x)
    state = adam_init([x])
    Hinv = torch.eye(x.numel(), dtype=x.dtype)
    g = prob.grad(x)
    steps = None
    for t in range(1, max_steps + 1):
        if method == "gd":
            x = x - lr * g
        elif method == "momentum":
            u = beta * u + g
            x = x - lr * u
        elif method == "adam":
            (x,), state = adam_step([x], [g], state, lr=lr, betas=betas)
        elif method == "newton":
            d = newton_step(g, prob.hess(x))
            x = x + _backtrack(prob, x, d, g) * d
        elif method == "bfgs":
            d = -Hinv @ g
            x_new = x + _backtrack(prob, x, d, g) * d
            g_new = prob.grad(x_new)
            s, y = x_new - x, g_new - g
            if float(y @ s) > 1e-12:                                  # curvature condition keeps Hinv SPD
                Hinv = bfgs_inverse_update(Hinv, s, y)
            x, g = x_new, g_new
            path.append(x.clone())
            if float(prob.f(x)) - prob.f_star < tol:
                steps = t
                break
            continue
        else:
            raise ValueError(f"unknown method {method!r}")
        g = prob.grad(x)
        path.append(x.clone())
        if not torch.isfinite(x).all():
            break
        if float(prob.f(x)) - prob.f_star < tol:
            steps = t
            break
    return {"path": torch.stack(path), "steps": steps}


def compare_optimizers(prob: Problem, x0: torch.Tensor, configs: dict[str, dict], max_steps: int = 20_000,
                       tol: float = 1e-10) -> dict[str, dict]:
    """``{name: run_optimizer(...)}`` for ``configs = {name: {"method": ..., hyper-parameters...}}``."""
    return {name: run_optimizer(prob, x0, max_steps=max_steps, tol=tol, **cfg) for name, cfg in configs.items()}

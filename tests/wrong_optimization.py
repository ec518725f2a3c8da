"""Plausible wrong answers to the exercises of v0_roots/03_optimization; each check must reject them."""

from __future__ import annotations

import numpy as np
import torch

# ---------------------------------------------------------------- classify_critical_point


def classify_ignores_tol(H, tol=1e-8):
    # strict signs: 1e-10 counts as positive, so a flat direction is called a minimum
    e = np.linalg.eigvalsh(H)
    if (e > 0).all():
        return "min"
    if (e < 0).all():
        return "max"
    return "saddle" if (e > 0).any() and (e < 0).any() else "degenerate"


def classify_any_zero_is_degenerate(H, tol=1e-8):
    # a zero eigenvalue does not make an indefinite Hessian degenerate: +1 and -1 already mean saddle
    e = np.linalg.eigvalsh(H)
    if (np.abs(e) <= tol).any():
        return "degenerate"
    return "min" if (e > 0).all() else "max" if (e < 0).all() else "saddle"


def classify_by_diagonal(H, tol=1e-8):
    # the diagonal entries are not the eigenvalues
    e = np.diag(H)
    if (np.abs(e) <= tol).any():
        return "degenerate"
    return "min" if (e > 0).all() else "max" if (e < 0).all() else "saddle"


# ---------------------------------------------------------------- hvp


def _flat(gs, params):
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(gs, params)])


def hvp_gradient_outer(loss_fn, params, v):
    # Gauss-Newton-like g (g . v): not the Hessian
    g = _flat(torch.autograd.grad(loss_fn(), params), params)
    return g * (g @ v)


def hvp_finite_difference(loss_fn, params, v, eps=1e-2):
    # a coarse finite difference of gradients: O(eps^2) error, and it moves the parameters in place
    with torch.no_grad():
        for p, dv in zip(params, torch.split(v, [p.numel() for p in params])):
            p.add_(eps * dv.view_as(p))
    g_plus = _flat(torch.autograd.grad(loss_fn(), params), params)
    with torch.no_grad():
        for p, dv in zip(params, torch.split(v, [p.numel() for p in params])):
            p.sub_(2 * eps * dv.view_as(p))
    g_minus = _flat(torch.autograd.grad(loss_fn(), params), params)
    with torch.no_grad():
        for p, dv in zip(params, torch.split(v, [p.numel() for p in params])):
            p.add_(eps * dv.view_as(p))
    return (g_plus - g_minus) / (2 * eps)


def hvp_forgot_create_graph(loss_fn, params, v):
    # without create_graph=True the gradient cannot be differentiated again
    g = _flat(torch.autograd.grad(loss_fn(), params), params)
    return _flat(torch.autograd.grad(g @ v, params), params)


# ---------------------------------------------------------------- newton_step


def newton_wrong_sign(g, H, damping=0.0):
    return torch.linalg.solve(H + damping * torch.eye(len(g), dtype=H.dtype), g)


def newton_multiplies(g, H, damping=0.0):
    # H g instead of H^-1 g
    return -(H + damping * torch.eye(len(g), dtype=H.dtype)) @ g


def newton_diagonal(g, H, damping=0.0):
    # a diagonal approximation is not Newton
    return -g / (torch.diagonal(H) + damping)


def newton_damping_everywhere(g, H, damping=0.0):
    # H + damping adds to every entry, not only the diagonal
    return -torch.linalg.solve(H + damping, g)


# ---------------------------------------------------------------- bfgs_inverse_update


def bfgs_missing_transpose(Hinv, s, y):
    rho = 1.0 / (y @ s)
    left = torch.eye(len(s), dtype=Hinv.dtype) - rho * torch.outer(s, y)
    return left @ Hinv @ left + rho * torch.outer(s, s)


def bfgs_is_dfp(Hinv, s, y):
    # the DFP update also satisfies the secant condition and symmetry, but it is another formula
    Hy = Hinv @ y
    return Hinv + torch.outer(s, s) / (y @ s) - torch.outer(Hy, Hy) / (y @ Hy)


def bfgs_wrong_rho(Hinv, s, y):
    rho = 1.0 / (s @ s)
    left = torch.eye(len(s), dtype=Hinv.dtype) - rho * torch.outer(s, y)
    return left @ Hinv @ left.T + rho * torch.outer(s, s)


# ---------------------------------------------------------------- adam_step


def adam_no_bias_correction(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    m = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], grads)]
    v = [b2 * v + (1 - b2) * g * g for v, g in zip(state["v"], grads)]
    new = [p - lr * mm / (vv.sqrt() + eps) for p, mm, vv in zip(params, m, v)]
    return new, {"step": state["step"] + 1, "m": m, "v": v}


def adam_eps_inside_sqrt(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    t = state["step"] + 1
    m = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], grads)]
    v = [b2 * v + (1 - b2) * g * g for v, g in zip(state["v"], grads)]
    new = [p - lr * (mm / (1 - b1**t)) / (vv / (1 - b2**t) + eps).sqrt() for p, mm, vv in zip(params, m, v)]
    return new, {"step": t, "m": m, "v": v}


def adam_in_place(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    # updates the caller's moment buffers in place (like the optimizer does), which a pure function must not
    b1, b2 = betas
    state["step"] += 1
    t = state["step"]
    new = []
    for p, g, m, v in zip(params, grads, state["m"], state["v"]):
        m.mul_(b1).add_((1 - b1) * g)
        v.mul_(b2).add_((1 - b2) * g * g)
        new.append(p - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps))
    return new, state


def adam_forgot_square(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    b1, b2 = betas
    t = state["step"] + 1
    m = [b1 * m + (1 - b1) * g for m, g in zip(state["m"], grads)]
    v = [b2 * v + (1 - b2) * g.abs() for v, g in zip(state["v"], grads)]
    new = [p - lr * (mm / (1 - b1**t)) / ((vv / (1 - b2**t)).sqrt() + eps) for p, mm, vv in zip(params, m, v)]
    return new, {"step": t, "m": m, "v": v}


# ---------------------------------------------------------------- top_hessian_eigenvalue


def _hvp(loss_fn, params, v):
    g = _flat(torch.autograd.grad(loss_fn(), params, create_graph=True), params)
    return _flat(torch.autograd.grad(g @ v, params, allow_unused=True), params).detach()


def top_eig_norm_not_rayleigh(loss_fn, params, iters=100):
    # ||Hv|| loses the sign of a dominant negative eigenvalue
    v = torch.ones(sum(p.numel() for p in params), dtype=params[0].dtype)
    v = v / v.norm()
    for _ in range(iters):
        hv = _hvp(loss_fn, params, v)
        lam = hv.norm()
        v = hv / lam
    return float(lam)


def top_eig_one_step(loss_fn, params, iters=100):
    # a single HVP from a random vector is not the top eigenvalue
    v = torch.randn(sum(p.numel() for p in params), dtype=params[0].dtype, generator=torch.Generator().manual_seed(0))
    v = v / v.norm()
    return float(v @ _hvp(loss_fn, params, v))


def top_eig_trace_estimate(loss_fn, params, iters=100):
    # Hutchinson: the mean of v^T H v over random v estimates the trace, not the top eigenvalue
    gen = torch.Generator().manual_seed(0)
    P = sum(p.numel() for p in params)
    return float(np.mean([float(v @ _hvp(loss_fn, params, v))
                          for v in torch.randn(iters, P, dtype=params[0].dtype, generator=gen)[:20]]))


# ---------------------------------------------------------------- natural_gradient_step


def ngd_multiplies_by_fisher(grad, F, lr, damping=0.0):
    return -lr * (F + damping * torch.eye(len(grad), dtype=F.dtype)) @ grad


def ngd_diagonal_inverse(grad, F, lr, damping=0.0):
    return -lr * grad / (torch.diagonal(F) + damping)


def ngd_damping_on_gradient(grad, F, lr, damping=0.0):
    return -lr * torch.linalg.solve(F, grad) - damping * grad


def ngd_wrong_sign(grad, F, lr, damping=0.0):
    return lr * torch.linalg.solve(F + damping * torch.eye(len(grad), dtype=F.dtype), grad)


# ---------------------------------------------------------------- feature_update


def feature_update_is_gradient(X, dLdY, eta):
    # the feature steepest direction, not what a weight step does
    return -eta * dLdY


def feature_update_wrong_gram(X, dLdY, eta):
    # X^T X is (d_in, d_in): it only fits when b = d_in, and it is the wrong Gram matrix
    return -eta * (X.T @ X) @ dLdY


def feature_update_wrong_sign(X, dLdY, eta):
    return eta * X @ X.T @ dLdY


def feature_update_numpy(X, dLdY, eta):
    Xn, Gn = X.numpy(), dLdY.numpy()
    return -eta * Xn @ Xn.T @ Gn


# ---------------------------------------------------------------- update_alignment


def alignment_with_plus_gradient(X, dLdY):
    dY = -X @ X.T @ dLdY
    return float((dY * dLdY).sum() / (dY.norm() * dLdY.norm()))


def alignment_per_column(X, dLdY):
    dY = X @ X.T @ dLdY
    return float(torch.nn.functional.cosine_similarity(dY, dLdY, dim=0).mean())


def alignment_norm_ratio(X, dLdY):
    return float((X @ X.T @ dLdY).norm() / dLdY.norm())


def alignment_returns_tensor(X, dLdY):
    dY = X @ X.T @ dLdY
    return (dY * dLdY).sum() / (dY.norm() * dLdY.norm())


# ---------------------------------------------------------------- msign_newton_schulz


def msign_no_normalisation(M, steps):
    X = M
    for _ in range(steps):
        X = 1.5 * X - 0.5 * X @ X.T @ X
    return X


def msign_wrong_product_order(M, steps):
    X = M / torch.linalg.matrix_norm(M)
    for _ in range(steps):
        X = 1.5 * X - 0.5 * X.T @ X @ X                          # X^T X X instead of X X^T X
    return X


def msign_max_entry_normalisation(M, steps):
    # dividing by the largest entry leaves singular values above sqrt(3): the cubic iteration diverges
    X = M / M.abs().max()
    for _ in range(steps):
        X = 1.5 * X - 0.5 * X @ X.T @ X
    return X


def msign_quintic_coefficients(M, steps):
    # Muon's quintic does not converge to U V^T: its singular values oscillate around 1
    X = M / torch.linalg.matrix_norm(M)
    for _ in range(steps):
        A = X @ X.T
        X = 3.4445 * X + (-4.7750 * A + 2.0315 * A @ A) @ X
    return X


WRONG = {
    "optimization.classify_critical_point": [classify_ignores_tol, classify_any_zero_is_degenerate,
                                             classify_by_diagonal],
    "optimization.hvp": [hvp_gradient_outer, hvp_finite_difference, hvp_forgot_create_graph],
    "optimization.newton_step": [newton_wrong_sign, newton_multiplies, newton_diagonal, newton_damping_everywhere],
    "optimization.bfgs_inverse_update": [bfgs_missing_transpose, bfgs_is_dfp, bfgs_wrong_rho],
    "optimization.adam_step": [adam_no_bias_correction, adam_eps_inside_sqrt, adam_in_place, adam_forgot_square],
    "optimization.top_hessian_eigenvalue": [top_eig_norm_not_rayleigh, top_eig_one_step, top_eig_trace_estimate],
    "optimization.natural_gradient_step": [ngd_multiplies_by_fisher, ngd_diagonal_inverse, ngd_damping_on_gradient,
                                           ngd_wrong_sign],
    "optimization.feature_update": [feature_update_is_gradient, feature_update_wrong_gram, feature_update_wrong_sign,
                                    feature_update_numpy],
    "optimization.update_alignment": [alignment_with_plus_gradient, alignment_per_column, alignment_norm_ratio,
                                      alignment_returns_tensor],
    "optimization.msign_newton_schulz": [msign_no_normalisation, msign_wrong_product_order,
                                         msign_max_entry_normalisation, msign_quintic_coefficients],
}

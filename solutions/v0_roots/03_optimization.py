# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 0, Chapter 3 exercises: The deep waters of optimisation (sections 0.11-0.15)
#
# Ten functions, from reading a Hessian's eigenvalues to the Newton–Schulz iteration behind Muon. Each exercise
# states its inputs, outputs and what the check verifies; write the body of the function where it says
# `# YOUR CODE HERE`, run the cell, then run the `check(...)` cell below it: it answers at once with a green
# "passed" or a red message that says what to fix. The checks draw fresh random cases each time, including edge
# cases (one parameter, a batch of one, odd sizes, tiny and huge values).
#
# The lecture is `chapters/v0_roots/03_optimization.ipynb`. Please write your own code rather than importing the
# course's reference implementations: the point is to build them yourself.
#
# Conventions: vectors over parameters are flat tensors of shape (P,), P = the total number of scalars; a *loss
# closure* `loss_fn()` takes no argument and returns a scalar tensor computed from the tensors in `params`
# (a list of tensors with `requires_grad=True`), in that order.

# %%
from manifold_course import seed_everything

rng = seed_everything(0)

import numpy as np
import torch

from manifold_course.grading import check


# %% [markdown]
# ## Exercise 1: what kind of critical point? (warm-up, 0.11)
#
# `classify_critical_point(H, tol=1e-8) -> str` takes the symmetric Hessian `H` (a numpy array, d × d) at a point
# where the gradient vanishes and returns
#
# - `"saddle"` if some eigenvalue is $> $ `tol` and some is $< -$`tol` (zero eigenvalues do not matter then),
# - `"min"` if all eigenvalues are $>$ `tol`, `"max"` if all are $< -$`tol`,
# - `"degenerate"` otherwise: eigenvalues with $|\lambda| \le$ `tol` count as zero and the test cannot decide.
#
# **Checked:** $x^2 - y^2$ and the monkey saddle, random 7 × 7 and 5 × 5 definite matrices, a matrix with a positive
# diagonal but a negative eigenvalue, eigenvalues $(1, 0, -1)$ and $(1, 2, 0)$, tiny eigenvalues on both sides of
# `tol`, 1 × 1 matrices.

# %%
def classify_critical_point(H, tol=1e-8):
    ### BEGIN SOLUTION
    # Hint: np.linalg.eigvalsh gives the eigenvalues of a symmetric matrix; the diagonal entries are not eigenvalues.
    lam = np.linalg.eigvalsh(H)
    pos, neg = lam > tol, lam < -tol
    if pos.any() and neg.any():
        return "saddle"
    if pos.all():
        return "min"
    if neg.all():
        return "max"
    return "degenerate"
    ### END SOLUTION


# %%
check("optimization.classify_critical_point", classify_critical_point)

# %% [markdown]
# ## Exercise 2: Hessian-vector product by double backward (0.12)
#
# `hvp(loss_fn, params, v) -> Tensor (P,)` returns $Hv$ without forming $H$:
# $Hv = \nabla_\theta\big(\nabla_\theta L \cdot v\big)$. Compute the gradient with `torch.autograd.grad(...,
# create_graph=True)` so that it can be differentiated again, flatten it in the order of `params`, take its dot
# product with `v`, and differentiate that scalar. Return a flat, detached tensor with the dtype of the parameters.
# Do not change the parameters.
#
# **Checked:** against the exact $Hv$ (relative tolerance $10^{-7}$) for the seed's 121-parameter MLP, a batch of one,
# a cubic polynomial over parameters of shapes (3,) and (2, 3), a single parameter, and a float32 network.

# %%
def hvp(loss_fn, params, v):
    ### BEGIN SOLUTION
    # Hint: torch.cat([g.reshape(-1) for g in grads]) flattens a list of gradients.
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])
    second = torch.autograd.grad(flat @ v, params)
    return torch.cat([h.reshape(-1) for h in second]).detach()
    ### END SOLUTION


# %%
check("optimization.hvp", hvp)

# %% [markdown]
# ## Exercise 3: the Newton step (0.12)
#
# `newton_step(g, H, damping=0.0) -> Tensor (P,)` returns the damped Newton step
# $\Delta = -(H + \lambda I)^{-1} g$ for the gradient `g` (P,), the Hessian `H` (P, P) and $\lambda$ = `damping`.
# Solve the linear system rather than inverting the matrix.
#
# **Checked:** against the exact step for P = 1, 2, 5, 7, 33, with damping 0, 0.5 and 10 and an indefinite H; one
# step on $f(x) = \tfrac12 x^\top A x - b^\top x$ must land on the minimiser $A^{-1}b$.

# %%
def newton_step(g, H, damping=0.0):
    ### BEGIN SOLUTION
    # Hint: torch.linalg.solve(A, b) solves A x = b; torch.eye(P, dtype=H.dtype) is the identity.
    A = H + damping * torch.eye(H.shape[0], dtype=H.dtype)
    return -torch.linalg.solve(A, g)
    ### END SOLUTION


# %%
check("optimization.newton_step", newton_step)

# %% [markdown]
# ## Exercise 4: the BFGS update (0.12)
#
# `bfgs_inverse_update(Hinv, s, y) -> Tensor (P, P)` updates the inverse-Hessian approximation after a step
# $s = x_{k+1} - x_k$ that changed the gradient by $y = g_{k+1} - g_k$:
#
# $$H^{-1}_{k+1} = (I - \rho s y^\top)\, H^{-1}_k\, (I - \rho y s^\top) + \rho s s^\top, \qquad \rho = \frac{1}{y^\top s}.$$
#
# **Checked:** symmetry, the secant condition $H^{-1}_{k+1} y = s$, and the values (tolerance $10^{-8}$), for
# P = 1, 2, 5, 13, starting from the identity or a random positive-definite matrix.

# %%
def bfgs_inverse_update(Hinv, s, y):
    ### BEGIN SOLUTION
    # Hint: torch.outer(s, y) is the matrix s y^T; the right factor is the transpose of the left one.
    rho = 1.0 / torch.dot(y, s)
    V = torch.eye(len(s), dtype=Hinv.dtype) - rho * torch.outer(s, y)
    return V @ Hinv @ V.T + rho * torch.outer(s, s)
    ### END SOLUTION


# %%
check("optimization.bfgs_inverse_update", bfgs_inverse_update)

# %% [markdown]
# ## Exercise 5: one Adam step (0.12)
#
# `adam_step(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8) -> (new_params, new_state)` is a pure
# function: `params` and `grads` are lists of tensors, `state = {"step": t - 1, "m": [...], "v": [...]}` holds the
# step count so far and the moment buffers (one tensor per parameter). With $t$ = `state["step"] + 1`:
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad
# \theta_t = \theta_{t-1} - \eta\,\frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}.$$
#
# Return the new parameters (a list) and a new state `{"step": t, "m": [...], "v": [...]}`; do not modify the
# inputs in place.
#
# **Checked:** the first step from zero moments, step 8, step 1001, betas (0.5, 0.9), tiny gradients with
# `eps = 1e-3` (the $\epsilon$ sits outside the square root), several parameter shapes; then 10 steps in a row must
# match `torch.optim.Adam` to $10^{-7}$.

# %%
def adam_step(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    ### BEGIN SOLUTION
    # Hint: both moments start at zero, which biases them towards zero early on: divide by 1 - beta**t.
    b1, b2 = betas
    t = state["step"] + 1
    new_params, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, state["m"], state["v"]):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        new_params.append(p - lr * m_hat / (torch.sqrt(v_hat) + eps))
        new_m.append(m)
        new_v.append(v)
    return new_params, {"step": t, "m": new_m, "v": new_v}
    ### END SOLUTION


# %%
check("optimization.adam_step", adam_step)

# %% [markdown]
# ## Exercise 6: sharpness by power iteration (0.13, 0.14)
#
# `top_hessian_eigenvalue(loss_fn, params, iters=100) -> float` returns the eigenvalue of $H$ of largest magnitude,
# *with its sign*, using only Hessian-vector products: start from a random unit vector $v$, repeat
# $v \leftarrow Hv/\|Hv\|$, and return the Rayleigh quotient $v^\top H v$. (Write your own HVP inside, or copy your
# Exercise 2 — the released notebook's `hvp` is a stub until you fill it in.)
#
# **Checked:** with `iters=50`, within 1 % of the dominant eigenvalue of the full Hessian (`torch.linalg.eigh`) for
# two MLPs (chosen so that the second eigenvalue is at most 75 % of the first in magnitude), a quadratic whose
# dominant eigenvalue is negative, parameters of two shapes, and a single parameter. Return a Python float.

# %%
def top_hessian_eigenvalue(loss_fn, params, iters=100):
    ### BEGIN SOLUTION
    # Hint: ||Hv|| is always positive; the Rayleigh quotient v^T H v (with ||v|| = 1) keeps the sign.
    def hessian_times(v):
        grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        return torch.cat([h.reshape(-1) for h in torch.autograd.grad(flat @ v, params)]).detach()

    n = sum(p.numel() for p in params)
    v = torch.randn(n, dtype=params[0].dtype, generator=torch.Generator().manual_seed(0))
    v = v / v.norm()
    for _ in range(iters):
        w = hessian_times(v)
        v = w / w.norm()
    return float(v @ hessian_times(v))
    ### END SOLUTION


# %%
check("optimization.top_hessian_eigenvalue", top_hessian_eigenvalue)

# %% [markdown]
# ## Exercise 7: the natural-gradient step (0.15)
#
# `natural_gradient_step(grad, F, lr, damping=0.0) -> Tensor (P,)` returns
# $\Delta\theta = -\eta\,(F + \lambda I)^{-1}\nabla L$ for the Fisher matrix `F` (P, P), learning rate $\eta$ = `lr` and
# damping $\lambda$.
#
# **Checked:** against the exact step for Gaussian Fisher matrices in $(\mu, \sigma)$ and $(\mu, \log\sigma)$, full
# 3 × 3, 4 × 4 and 6 × 6 Fisher matrices with damping 0, 0.01 and 5; and the invariance that makes it *natural*:
# with a small step, the natural steps in $(\mu, \sigma)$ and in $(\mu, \log\sigma)$ move $(\mu, \sigma)$ the same way.

# %%
def natural_gradient_step(grad, F, lr, damping=0.0):
    ### BEGIN SOLUTION
    # Hint: a linear solve with F + damping * I, like the Newton step.
    A = F + damping * torch.eye(F.shape[0], dtype=F.dtype)
    return -lr * torch.linalg.solve(A, grad)
    ### END SOLUTION


# %%
check("optimization.natural_gradient_step", natural_gradient_step)

# %% [markdown]
# ## Exercise 8: how a weight step moves the features (manifold lens, I1)
#
# For a linear layer $Y = XW$ with inputs `X` (b, d_in) and `dLdY` $= \partial L/\partial Y$ (b, d_out), an SGD
# step $W \leftarrow W - \eta X^\top \partial L/\partial Y$ changes the outputs by
# $\Delta Y = -\eta\,XX^\top\,\partial L/\partial Y$. `feature_update(X, dLdY, eta) -> Tensor (b, d_out)` returns it.
#
# **Checked:** against the exact value for batches of 1, 5, 6 (with a square X) and 12; and against
# $X(W - \eta X^\top G) - XW$ for a random W. Return a torch tensor.

# %%
def feature_update(X, dLdY, eta):
    ### BEGIN SOLUTION
    # Hint: the Gram matrix of the batch is X X^T (b, b), not X^T X.
    return -eta * (X @ X.T) @ dLdY
    ### END SOLUTION


# %%
check("optimization.feature_update", feature_update)

# %% [markdown]
# ## Exercise 9: is the parameter step the feature steepest descent? (manifold lens, I1)
#
# `update_alignment(X, dLdY) -> float` returns the cosine between the feature update $-XX^\top G$ (any $\eta > 0$)
# and the feature steepest direction $-G$, both seen as vectors of $b \cdot d_{out}$ numbers (Frobenius inner
# product): $\cos = \langle XX^\top G, G\rangle_F / (\|XX^\top G\|_F\,\|G\|_F)$.
#
# **Checked:** a Gaussian X, $XX^\top = 9I$ (cosine 1), a Gram matrix with condition number 1000, a batch of one
# (cosine 1), and $b > d_{in}$. Return a Python float.

# %%
def update_alignment(X, dLdY):
    ### BEGIN SOLUTION
    # Hint: (A * B).sum() is the Frobenius inner product; .item() turns a 0-d tensor into a float.
    dY = X @ (X.T @ dLdY)
    return ((dY * dLdY).sum() / (dY.norm() * dLdY.norm())).item()
    ### END SOLUTION


# %%
check("optimization.update_alignment", update_alignment)

# %% [markdown]
# ## Exercise 10: msign by Newton–Schulz (manifold lens, I4)
#
# `msign_newton_schulz(M, steps) -> Tensor` (same shape as M) approximates $\mathrm{msign}(M) = UV^\top$ (for the
# SVD $M = U\Sigma V^\top$) with matrix products only: start from $X_0 = M/\|M\|_F$ (Frobenius norm, so every singular
# value lies in (0, 1]) and repeat `steps` times the cubic iteration $X \leftarrow \tfrac32 X - \tfrac12 XX^\top X$.
#
# **Checked:** against the exact iteration (tolerance $10^{-6}$, $10^{-9}$ for a 3-step case) on a seeded 32 × 32
# Gaussian, wide, tall and one-row matrices, and entries of size 1000; and orthogonal equivariance,
# $\mathrm{msign}(QMR) = Q\,\mathrm{msign}(M)\,R$ for orthogonal Q, R.

# %%
def msign_newton_schulz(M, steps):
    ### BEGIN SOLUTION
    # Hint: torch.linalg.matrix_norm(M) is the Frobenius norm; keep X X^T X in that order (shapes m x n).
    X = M / torch.linalg.matrix_norm(M)
    for _ in range(steps):
        X = 1.5 * X - 0.5 * X @ X.T @ X
    return X
    ### END SOLUTION


# %%
check("optimization.msign_newton_schulz", msign_newton_schulz)

# %% [markdown]
# ## Where next
#
# Compare your answers with the reference implementations in `manifold_course/optim/` (`critical_points.py`,
# `hessian.py`, `second_order.py`, `natural_gradient.py`, `isotropy.py`, `msign.py`), and with the lecture's
# experiments: your `top_hessian_eigenvalue` is what measured the edge of stability, your `msign_newton_schulz` is
# the cubic half of Muon's optimiser. `manifold-course progress` shows which exercises you have passed.

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
# # Volume 0, Chapter 3: The deep waters of optimisation (sections 0.11-0.15)
#
# Training a network means walking downhill on a loss surface $L(\theta)$ over millions of parameters
# $\theta$. This chapter looks at the *shape* of that surface and at the walkers:
#
# | section | question | what you will measure |
# |---|---|---|
# | 0.11 | minima or saddles? | gradient descent stalling on a saddle and escaping with noise; how rare minima are among random critical points |
# | 0.12 | what does curvature buy? | the exact Hessian of a 121-parameter network; Hessian-vector products; Newton, BFGS, Adam, GD on curved valleys |
# | 0.13 | is SGD noise a feature? | noise choosing a wide basin; the edge of stability; sharpness after small- and large-batch training |
# | 0.14 | what does the spectrum look like? | Hessian eigenvalues before and during training |
# | 0.15 | which "steepest" descent? | natural gradient on a Gaussian, in two coordinate systems |
# | lens | why isotropic features? | parameter steps seen from the features; whitening; Muon's matrix sign by Newton–Schulz |
#
# **Prerequisites.** Gradients and the chain rule, eigenvalues of symmetric matrices, PyTorch autograd
# (`torch.autograd.grad`), the Gaussian KL of Chapter 2.
#
# **Time.** About 90 minutes to read and run; the notebook executes in about 30 s on a 2-core CPU.
# The exercises notebook (see the end) takes another 1–2 hours.

# %%
from manifold_course import seed_everything
from manifold_course.seeding import manual_seed, torch_generator

rng = seed_everything(0)

import copy
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from ipywidgets import FloatSlider, interact
from torch import nn

from manifold_course import data
from manifold_course.optim import critical_points as cp
from manifold_course.optim import hessian as hs
from manifold_course.optim import isotropy as iso
from manifold_course.optim import msign as ms
from manifold_course.optim import natural_gradient as ng
from manifold_course.optim import second_order as so
from manifold_course.plotting import figure, label
from manifold_course.probability.fisher import fisher_gaussian, kl_gaussians_1d

F64 = torch.float64

# %% [markdown]
# ## 0.11 Local minima versus saddle points
#
# A **critical point** $\theta^*$ has zero gradient, $\nabla L(\theta^*) = 0$. What kind of point it is depends on
# the **Hessian** $H = \nabla^2 L(\theta^*)$, the matrix of second derivatives $H_{ij} = \partial^2 L/\partial\theta_i\partial\theta_j$.
# Near $\theta^*$, $L(\theta^* + \Delta) \approx L(\theta^*) + \tfrac12 \Delta^\top H \Delta$, so along an eigenvector
# of $H$ with eigenvalue $\lambda$ the loss curves up ($\lambda>0$) or down ($\lambda<0$):
#
# - all $\lambda_i > 0$: a strict **minimum**; all $\lambda_i < 0$: a strict **maximum**;
# - both signs: a **saddle**; its **index** is the fraction of negative eigenvalues;
# - some $\lambda_i = 0$ and no sign change: **degenerate** — the second-order test cannot decide.
#
# Two saddles of the plane: $f(x,y) = x^2 - y^2$ (Hessian diag(2, −2)) and the *monkey saddle*
# $g(x, y) = x^3 - 3xy^2$, with three valleys and a Hessian that vanishes at the origin.

# %%
H_quad = np.array([[2.0, 0.0], [0.0, -2.0]])   # Hessian of x^2 - y^2 (constant)
H_monkey = np.zeros((2, 2))                      # Hessian of x^3 - 3xy^2 at the origin
kinds = cp.classify_critical_point(H_quad), cp.classify_critical_point(H_monkey)
print("x^2 - y^2 at 0:", kinds[0], "| monkey saddle at 0:", kinds[1])
assert kinds == ("saddle", "degenerate")

# %% [markdown]
# **Gradient descent on the stable manifold.** Start $x^2 - y^2$ at $(1, 0)$: the gradient $(2x, -2y)$ has no
# $y$-component, so $y$ stays exactly 0 and GD slides into the saddle, where the gradient vanishes and every
# convergence test says "done". The set of starts that end on the saddle (here the line $y = 0$) is the
# saddle's *stable manifold*; it has measure zero, and a perturbation of $10^{-6}$ is enough to leave it.

# %%
lr = 0.1
stuck = cp.gd_trajectory(cp.quadratic_saddle_grad, np.array([1.0, 0.0]), lr, 300)
free = cp.gd_trajectory(cp.quadratic_saddle_grad, np.array([1.0, 1e-6]), lr, 90)
g_end = np.linalg.norm(cp.quadratic_saddle_grad(stuck[-1]))
print(f"start (1, 0):    after 300 steps |x| = {np.linalg.norm(stuck[-1]):.1e}, |grad| = {g_end:.1e}")
print(f"start (1, 1e-6): after 90 steps  x = {free[-1].round(2)}, f = {cp.quadratic_saddle(free[-1]):.1f}")
assert np.linalg.norm(stuck[-1]) < 1e-20 and g_end < 1e-20     # "converged"... to a saddle
assert cp.quadratic_saddle(free[-1]) < -1.0                     # the perturbed run went downhill

fig, axes = figure(2, width=4.4)
xs = np.linspace(-1.5, 1.5, 201)
P = np.stack(np.meshgrid(xs, xs), axis=-1)                       # (201, 201, 2) grid of points
for ax, f, name in ((axes[0], cp.quadratic_saddle, "$x^2 - y^2$"), (axes[1], cp.monkey_saddle, "monkey $x^3 - 3xy^2$")):
    ax.contour(xs, xs, f(P), levels=21, cmap="RdBu_r")
    label(ax, f"{name}: level sets", "x", "y")
axes[0].plot(*stuck.T, "k-", lw=5, alpha=0.4, label="start (1, 0): stalls at 0")
axes[0].plot(*free[free[:, 1] < 1.5].T, "g.-", ms=3, label="start (1, 1e-6): escapes")
axes[0].set_ylim(-1.5, 1.5)
axes[0].legend(loc="lower left", fontsize=8)
plt.tight_layout()

# %% [markdown]
# **How long does escaping take?** Add Gaussian noise of size $\varepsilon$ at every step (perturbed GD,
# $x \leftarrow x - \eta\nabla f(x) + \varepsilon\xi$). Near $x^2 - y^2$ the unstable coordinate grows by a factor
# $(1 + 2\eta)$ per step, so it reaches radius 1 after about $\log(1/\varepsilon)/\log(1 + 2\eta)$ steps:
# every factor 1000 less noise costs the same number of extra steps, $\log 1000/\log 1.2 \approx 38$.
# The monkey saddle is degenerate: with no negative curvature to amplify the noise, escape is a slow random walk.

# %%
noises = [1e-12, 1e-9, 1e-6, 1e-3]
quad_steps = [cp.escape_steps(cp.quadratic_saddle_grad, np.array([1.0, 0.0]), lr, e, max_steps=5000) for e in noises]
monkey_steps = {e: cp.escape_steps(cp.monkey_saddle_grad, np.zeros(2), lr, e, max_steps=60_000) for e in (1e-6, 1e-3)}
per_1000 = math.log(1000) / math.log(1 + 2 * lr)
print("noise      :", noises)
print("x^2 - y^2  :", quad_steps, f"(predicted drop per factor 1000: {per_1000:.1f} steps)")
print("monkey     :", monkey_steps)
assert quad_steps[0] < 5000                                      # every noise level escapes
assert all(a > b for a, b in zip(quad_steps, quad_steps[1:]))    # fewer steps with more noise
assert all(abs((a - b) - per_1000) < 0.15 * per_1000 for a, b in zip(quad_steps, quad_steps[1:]))
assert abs(per_1000 - 37.9) < 0.05
assert all(monkey_steps[e] > 3 * quad_steps[noises.index(e)] for e in monkey_steps)   # 5x to 30x slower at 1e-3 (40 seeds)

# %% [markdown]
# **Are high-dimensional critical points mostly saddles?** The seed's heuristic: if each of the $d$ eigenvalue
# signs were a fair coin, a critical point would be a minimum with probability $2^{-d}$ (0.25 in 2-D,
# $\approx 0$ for $10^9$ parameters). A cleaner model is a random symmetric matrix from the
# **Gaussian orthogonal ensemble** (GOE): $H = (A + A^\top)/2$ with i.i.d. Gaussian $A$. Its eigenvalues repel,
# so "all positive" is much rarer than independent coins: the probability decays like $e^{-\theta d^2}$ with
# $\theta = \ln 3/4$ (Dean & Majumdar 2006, arXiv:cond-mat/0609651). For $d = 2$ it is exactly
# $(2-\sqrt2)/4 \approx 0.146$.

# %%
dims = np.arange(1, 6)
frac_pd = np.array([cp.frac_positive_definite_goe(int(d), n=100_000, seed=int(d)) for d in dims])
for d, f in zip(dims, frac_pd):
    print(f"d={d}: GOE fraction positive definite {f:.2e}   coin-flip 2^-d = {2.0**-d:.2e}")
assert abs(frac_pd[1] - (2 - math.sqrt(2)) / 4) < 0.005         # exact value at d = 2 ...
assert abs((2 - math.sqrt(2)) / 4 - 0.146) < 0.001               # ... which is 0.146
assert all(frac_pd[1:] < 2.0 ** -dims[1:])                        # below the heuristic from d = 2 on
assert all(a > b for a, b in zip(frac_pd, frac_pd[1:]))           # and falling with d
assert frac_pd[-1] < 2.0**-5 / 20                                 # 20x below 2^-5 already at d = 5

fig, ax = figure()
ax.semilogy(dims, 2.0**-dims, "o--", label="$2^{-d}$ (independent coins)")
ax.semilogy(dims, np.maximum(frac_pd, 1e-6), "s-", label="GOE, Monte Carlo ($10^5$ matrices)")
label(ax, "How often is a random critical point a minimum?", "dimension d", "fraction with all eigenvalues > 0")
ax.legend();

# %% [markdown]
# > **Careful.** The $2^{-d}$ count is a heuristic that treats eigenvalue signs as independent coins; real
# > Hessians are neither coins nor GOE matrices. In real networks the index of a critical point is tied to its
# > loss (high-loss critical points are saddles, low-loss ones are nearly minima: Dauphin et al. 2014,
# > arXiv:1406.2572), and many low-loss minima exist. Nor does a saddle make "the model think it reached the
# > bottom and stop": gradient descent from a random start escapes strict saddles almost surely (Lee et al. 2016,
# > arXiv:1602.04915), and with noise in a number of steps that grows only like $\log(1/\varepsilon)$ — as measured
# > above — though long plateaus near degenerate saddles can slow training. (The seed's "trillions of parameters"
# > for GPT-4 is not confirmed by OpenAI.)

# %% [markdown]
# ## 0.12 Second-order optimisation: the Hessian
#
# The second-order Taylor model $L(\theta + \Delta) \approx L + g^\top \Delta + \tfrac12 \Delta^\top H \Delta$
# (with $g = \nabla L$) is minimised by the **Newton step** $\Delta = -H^{-1} g$. To use it we need $H$ — or at
# least products $Hv$.
#
# **The seed's network.** An MLP $10 \to 10\ (\tanh) \to 1$ on 32 random inputs and targets with the mean
# squared error: $10\cdot10 + 10 + 10\cdot1 + 1 = 121$ parameters, so $H$ is $121 \times 121$. Row $i$ of $H$ is the
# gradient of the $i$-th gradient entry: 121 backward passes through a graph built with `create_graph=True`
# (`hessian.full_hessian`). A **Hessian-vector product** needs only two:
# $Hv = \nabla_\theta\big(\nabla_\theta L \cdot v\big)$ (Pearlmutter 1994; `hessian.hvp`).

# %%
manual_seed(0)
mlp = nn.Sequential(nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 1)).double()
X_seed, y_seed = torch.randn(32, 10, dtype=F64), torch.randn(32, 1, dtype=F64)
loss_fn, params = hs.model_loss_closure(mlp, nn.MSELoss(), (X_seed, y_seed))
P_mlp = hs.num_params(params)

t0 = time.perf_counter()
H = hs.full_hessian(loss_fn, params)                               # (121, 121)
t_full = time.perf_counter() - t0
v = torch.randn(P_mlp, dtype=F64)
t0 = time.perf_counter()
Hv = hs.hvp(loss_fn, params, v)                                    # (121,), never forms H
t_hvp = time.perf_counter() - t0
print(f"P = {P_mlp}; full Hessian {tuple(H.shape)} in {t_full * 1e3:.0f} ms, one HVP in {t_hvp * 1e3:.1f} ms")
print(f"max |H - H^T| = {(H - H.T).abs().max():.1e};  max |hvp(v) - H v| = {(Hv - H @ v).abs().max():.1e}")
assert P_mlp == 121 and H.shape == (121, 121)
assert (H - H.T).abs().max() < 1e-12                               # second derivatives commute
assert (Hv - H @ v).abs().max() < 1e-12

# %% [markdown]
# **Top eigenvalues without the matrix.** Power iteration repeats $v \leftarrow Hv/\|Hv\|$ and reads the Rayleigh
# quotient $\lambda = v^\top H v$; it converges to the eigenvalue of largest magnitude at the rate
# $(|\lambda_2|/|\lambda_1|)^{2k}$. Lanczos (here ARPACK through `scipy.sparse.linalg.eigsh`, given only
# $v \mapsto Hv$) finds several extreme eigenvalues at once. Both are checked against `torch.linalg.eigh` of the
# full matrix.

# %%
eigs = torch.linalg.eigvalsh(H)
dominant = float(eigs[eigs.abs().argmax()])
lam_power = hs.top_hessian_eigenvalue(loss_fn, params, iters=300)
top5 = hs.lanczos_top_k(loss_fn, params, k=5)
print(f"eigh: top eigenvalue {float(eigs[-1]):.6f}, bottom {float(eigs[0]):.6f}")
print(f"power iteration: {lam_power:.6f};  Lanczos top 5: {np.round(top5, 6)}")
assert abs(lam_power - dominant) < 1e-6 * abs(dominant) and dominant == float(eigs[-1])
assert np.allclose(top5, eigs[-5:].numpy(), rtol=1e-8)

# %% [markdown]
# **Why not always use $H$?** Memory grows like $P^2$ and a solve like $P^3$. For GPT-3's $P = 1.75 \times 10^{11}$
# parameters the Hessian has $P^2 \approx 3 \times 10^{22}$ entries: about $6 \times 10^{22}$ bytes in fp16, some
# 61 zettabytes, or $6 \times 10^{7}$ petabytes. An HVP needs only a few vectors of size $P$. Move the slider to see the two.

# %%
def hessian_memory(log10_params=math.log10(175e9)):
    P = 10**log10_params
    print(f"P = {P:.3g} parameters: full Hessian in fp16 = {P**2 * 2:.3g} bytes; "
          f"one HVP (about 4 fp16 vectors of size P) = {4 * P * 2:.3g} bytes")
    return P**2 * 2


gpt3_bytes = hessian_memory()
assert abs(gpt3_bytes / 6e22 - 1) < 0.03                       # 175e9^2 * 2 = 6.125e22 bytes
assert abs(175e9**2 / 3e22 - 1) < 0.03                           # entries
assert abs(gpt3_bytes / 1e21 - 61) < 0.5 and abs(gpt3_bytes / 1e15 / 6e7 - 1) < 0.03   # zettabytes, petabytes


def slide_hessian_memory(log10_params=math.log10(175e9)):
    hessian_memory(log10_params)  # returns nothing: interact would print the returned bytes under the line


interact(slide_hessian_memory, log10_params=FloatSlider(value=math.log10(175e9), min=2, max=12, step=0.1,
                                                        style={"description_width": "initial"}));

# %% [markdown]
# **A race on curved valleys.** Five walkers on two valleys, each stopping when $f - f^* < 10^{-10}$:
#
# - an ill-conditioned quadratic $f = \tfrac12 x^\top A x$ with eigenvalues 1 and $\kappa = 100$;
# - the Rosenbrock banana $f = (1-x)^2 + 100(y - x^2)^2$ from $(-1.2, 1)$.
#
# Gradient descent (GD; on the quadratic its step 0.0199 sits just below the stability limit $2/\lambda_{\max} = 0.02$),
# heavy-ball momentum,
# Adam, Newton (`newton_step`, with a backtracking safeguard), and **BFGS**, which builds $H^{-1}$ from gradient
# differences $s = x_{k+1} - x_k$, $y = g_{k+1} - g_k$:
# $H^{-1}_{k+1} = (I - \rho s y^\top) H^{-1}_k (I - \rho y s^\top) + \rho s s^\top$, $\rho = 1/(y^\top s)$ — the
# unique symmetric update closest to $H^{-1}_k$ that satisfies the secant condition $H^{-1}_{k+1} y = s$.

# %%
quad, rosen = so.quadratic_valley(100.0), so.rosenbrock()
x_quad, x_rosen = torch.tensor([10.0, 1.0], dtype=F64), torch.tensor([-1.2, 1.0], dtype=F64)
configs = {
    quad.name: {"GD": {"method": "gd", "lr": 0.0199}, "momentum": {"method": "momentum", "lr": 0.01, "beta": 0.81},
                "Adam": {"method": "adam", "lr": 0.1}, "Newton": {"method": "newton"}, "BFGS": {"method": "bfgs"}},
    rosen.name: {"GD": {"method": "gd", "lr": 1e-3}, "momentum": {"method": "momentum", "lr": 1e-4, "beta": 0.9},
                 "Adam": {"method": "adam", "lr": 0.02}, "Newton": {"method": "newton"}, "BFGS": {"method": "bfgs"}},
}
race = {prob.name: so.compare_optimizers(prob, x0, configs[prob.name], max_steps=10_000)
        for prob, x0 in ((quad, x_quad), (rosen, x_rosen))}
for name, res in race.items():
    print(f"{name:22s}", {k: (r["steps"] if r["steps"] else "> 10000") for k, r in res.items()})
q, r = race[quad.name], race[rosen.name]
assert abs(2 / float(torch.linalg.eigvalsh(quad.hess(x_quad)).max()) - 0.02) < 1e-12   # GD's stability limit
assert q["Newton"]["steps"] == 1                                  # exact on a quadratic
assert q["BFGS"]["steps"] <= 6 and q["GD"]["steps"] > 1000 and q["momentum"]["steps"] < q["GD"]["steps"] / 5
assert r["Newton"]["steps"] <= 25 and r["BFGS"]["steps"] <= 50
assert r["GD"]["steps"] is None and r["momentum"]["steps"] is None  # not within 10 000 steps

# %%
fig, axes = figure(2, width=4.6)
for ax, prob, lim in ((axes[0], quad, (-11, 11, -3, 3)), (axes[1], rosen, (-1.5, 1.5, -0.5, 1.5))):
    gx, gy = np.meshgrid(np.linspace(lim[0], lim[1], 200), np.linspace(lim[2], lim[3], 200))
    grid = torch.as_tensor(np.stack([gx, gy]), dtype=F64)             # (2, 200, 200)
    ax.contour(gx, gy, np.log10(prob.f(grid).numpy() + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
    for k, res in race[prob.name].items():
        path = res["path"].numpy()
        ax.plot(path[:400, 0], path[:400, 1], ".-", ms=2, lw=1, label=k)
    label(ax, f"{prob.name}: first 400 steps", "x", "y")
axes[0].legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# **Adam.** Adam (Kingma & Ba 2014, arXiv:1412.6980) keeps running means of the gradient and of its square,
# $m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t$, $v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2$, corrects their bias towards
# the zero start, $\hat m_t = m_t/(1-\beta_1^t)$, $\hat v_t = v_t/(1-\beta_2^t)$, and steps
# $\theta \leftarrow \theta - \eta\,\hat m_t/(\sqrt{\hat v_t} + \epsilon)$. The pure function `second_order.adam_step`
# reproduces `torch.optim.Adam` to rounding:

# %%
manual_seed(1)
w_torch = torch.randn(6, dtype=F64, requires_grad=True)
opt = torch.optim.Adam([w_torch], lr=0.05, betas=(0.9, 0.999), eps=1e-8)
A6 = torch.diag(torch.linspace(1, 50, 6, dtype=F64))
w_mine, state = [w_torch.detach().clone()], so.adam_init([w_torch])
for _ in range(10):
    opt.zero_grad()
    (0.5 * w_torch @ A6 @ w_torch).backward()
    opt.step()
    w_mine, state = so.adam_step(w_mine, [A6 @ w_mine[0]], state, lr=0.05)
adam_gap = float((w_mine[0] - w_torch.detach()).abs().max())
print(f"max difference to torch.optim.Adam after 10 steps: {adam_gap:.1e}")
assert adam_gap < 1e-12

# %% [markdown]
# **Is Adam a diagonal Newton method?** Adam divides each coordinate by $\sqrt{\hat v}$, the root mean square of
# its recent gradients. That is a per-coordinate *scale*, not curvature: it is blind to the sign of $H$, and it can
# only help along the coordinate axes. Rotate the same $\kappa = 100$ valley by 45°: Newton does not care (it sees
# the whole matrix), Adam does.

# %%
rot = so.quadratic_valley(100.0, angle=math.pi / 4)
adam_axis = so.run_optimizer(quad, x_quad, "adam", lr=0.1, max_steps=10_000)["steps"]
adam_rot = so.run_optimizer(rot, x_quad, "adam", lr=0.1, max_steps=10_000)["steps"]
newton_rot = so.run_optimizer(rot, x_quad, "newton")["steps"]
print(f"Adam: {adam_axis} steps on the axis-aligned valley, {adam_rot} on the rotated one; Newton: {newton_rot}")
assert adam_rot > 3 * adam_axis and newton_rot == 1

# %% [markdown]
# > **Careful.** The seed calls Adam "essentially a diagonal Hessian approximation". Adam divides by the root of
# > a running mean of *squared gradients* — related to the diagonal of the empirical Fisher, not to curvature —
# > so it ignores the sign of curvature, and a large gradient is not a large second derivative. The measurement
# > above shows its dependence on the coordinate axes. Also: the seed says GPT-3's Hessian needs "petabytes";
# > the computed figure is about $6\times10^{22}$ bytes, tens of millions of petabytes — yet Hessian-vector
# > products stay as cheap as two gradients.

# %% [markdown]
# ## 0.13 SGD: optimiser and implicit regulariser
#
# A minibatch of $B$ examples gives a noisy gradient, $\theta_{t+1} = \theta_t - \eta(\nabla L(\theta_t) + \epsilon_t)$
# with $\mathrm{Cov}(\epsilon_t) \approx \Sigma/B$: the noise scale grows like $\eta/B$. The story in the seed: noise
# kicks parameters out of narrow ("sharp") wells and leaves them in wide ("flat") basins, which generalise better.
# Two parts of it can be measured cleanly; the last part is debated.
#
# **Noise prefers wide basins.** A 1-D double well with a sharp minimum (curvature 8) and a flat one
# (curvature 0.5) of equal depth: we start 4000 runs uniformly on $[-3, 4]$ and run noisy GD
# $x \leftarrow x - \eta f'(x) + s\sqrt{\eta}\,\xi$ for 1000 steps. Without noise every run stays in the basin it
# starts in, so the fraction in the wide basin is the share of starts right of the barrier at $-0.5$, $9/14 \approx 0.643$,
# up to the sampling error of 4000 runs (standard deviation $\sqrt{p(1-p)/4000} \approx 0.008$; the cell allows 4 of them).

# %%
noise_levels = [0.0, 0.5, 0.6, 0.7, 1.0, 2.0]
wide = [cp.wide_basin_fraction(s, n_runs=4000, seed=0) for s in noise_levels]
for s, w in zip(noise_levels, wide):
    print(f"noise {s:.1f}: fraction ending in the wide basin {w:.3f}")
assert 2 * cp.NARROW[1] == 8 and 2 * cp.WIDE[1] == 0.5            # curvatures of the two minima
assert abs(cp.basin_boundary_fraction() - 9 / 14) < 1e-12        # starts right of the barrier at -0.5
p_right = cp.basin_boundary_fraction()
assert abs(wide[0] - p_right) < 4 * math.sqrt(p_right * (1 - p_right) / 4000)   # no noise: GD keeps its starting basin
assert all(a < b for a, b in zip(wide[:4], wide[1:4]))           # grows with noise ...
assert wide[3] - wide[0] > 0.15
assert wide[5] < wide[3]                                          # ... until runs spill over the barrier

fig, axes = figure(2, width=4.2)
xs = np.linspace(-3, 4, 400)
axes[0].plot(xs, cp.double_well(xs))
axes[0].axvline(cp.double_well_barrier(), color="grey", ls=":")
label(axes[0], "sharp (left) and flat (right) minimum", "x", "f(x)")
axes[1].plot(noise_levels, wide, "o-")
label(axes[1], "noisy GD: where do runs end?", "noise s", "fraction in the wide basin")
plt.tight_layout()

# %% [markdown]
# **The edge of stability (Part 2, L2b).** On a quadratic, GD with step $\eta$ diverges once the sharpness
# $\lambda_{\max}(H)$ exceeds $2/\eta$. On a network, full-batch GD pushes the sharpness *up* ("progressive
# sharpening") until it reaches $2/\eta$ and then hovers there while the loss keeps falling, non-monotonically
# (Cohen et al. 2021, arXiv:2103.00065). We train a $64 \to 32\ (\tanh) \to 10$ MLP on 500 digits with the
# squared error to one-hot targets, measuring $\lambda_{\max}$ by power iteration every 50 steps.
#
# What the cell asserts, for both learning rates, was measured in 37 runs (seed offsets 9206, 9300-9316 and 9805,
# one learning rate at 9316): the sharpness starts below $2/\eta$, at 0.52 to 0.80 of it in 35 runs (at offset 9805 the
# same initial network started at 0.79 of it for $\eta = 0.13$ and at 0.91 for $\eta = 0.15$, so the cell asserts
# only "below"), climbs to it (its highest value was at least 0.99 of $2/\eta$ in every run), and its mean over the
# last 500 steps stayed within 2 % of $2/\eta$ in 36 of the 37 runs. In the other (offset 9206, $\eta = 0.13$) it
# overshot to $1.05 \times 2/\eta$, fell back and settled at $0.94 \times 2/\eta$: near the edge, not always on it.
# So the cell asserts a peak at $2/\eta$ (above 0.97 of it) and an end within 10 % below it and 6 % above.

# %%
Xd, yd = data.digits()
tr, te = data.train_test_split_indices(len(Xd), 0.2, seed=0)
X_tr, y_tr, X_te, y_te = Xd[tr], yd[tr], Xd[te], yd[te]
X_eos, T_eos = X_tr[:500], nn.functional.one_hot(y_tr[:500], 10).float()


def sharpness_run(lr, steps=1500, every=50):
    manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    lf, ps = hs.model_loss_closure(net, lambda out, t: 0.5 * ((out - t) ** 2).sum(1).mean(), (X_eos, T_eos))
    opt, trace = torch.optim.SGD(ps, lr=lr), []
    for step in range(steps + 1):
        if step % every == 0:
            trace.append((step, float(lf().detach()), hs.top_hessian_eigenvalue(lf, ps, iters=20, tol=1e-3)))
        opt.zero_grad()
        lf().backward()
        opt.step()
    return np.array(trace)                                        # (steps/every + 1, 3): step, loss, sharpness


eos = {lr: sharpness_run(lr) for lr in (0.13, 0.15)}
for lr, tr_ in eos.items():
    late, peak = tr_[-10:, 2].mean(), tr_[:, 2].max()
    print(f"lr {lr}: 2/lr = {2 / lr:.2f}; sharpness at start {tr_[0, 2]:.2f}, highest {peak:.2f}, mean of the last 500 "
          f"steps {late:.2f}")
    assert tr_[0, 2] < 2 / lr                          # starts below 2/lr: 0.52-0.79 (lr 0.13), 0.60-0.91 (lr 0.15)
    assert peak > 0.97 * (2 / lr)                       # ... rises to it (at least 0.99 of it in 37 runs) ...
    assert 0.9 * (2 / lr) < late < 1.06 * (2 / lr)      # ... and stays near it: 0.99-1.02 in 36 runs of 37, 0.94 in one

fig, axes = figure(2, width=4.4)
for lr, tr_ in eos.items():
    axes[0].plot(tr_[:, 0], tr_[:, 2], label=f"lr {lr}")
    axes[0].axhline(2 / lr, ls=":", color=axes[0].lines[-1].get_color())
    axes[1].plot(tr_[:, 0], tr_[:, 1], label=f"lr {lr}")
label(axes[0], "sharpness rises to 2/lr (dotted)", "step", "top Hessian eigenvalue")
label(axes[1], "training loss", "step", "squared error")
axes[0].legend()
plt.tight_layout()

# %% [markdown]
# **Small versus large batches.** Now the debated part. The same kind of MLP (ReLU this time, cross-entropy, all
# 1438 training digits), trained for 1500 steps with batch 16, and with the full batch at the same learning rate
# (and at a 5× larger one). For each run: the sharpness on the training set, the test accuracy and the training
# loss, for two seeds.

# %%
def train_digits(batch, lr, steps=1500, seed=0):
    manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    opt, gen, n = torch.optim.SGD(net.parameters(), lr=lr), torch_generator(seed), len(X_tr)
    perm, pos = torch.randperm(n, generator=gen), 0
    for _ in range(steps):
        if pos + batch > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx, pos = perm[pos:pos + batch], pos + batch
        opt.zero_grad()
        nn.functional.cross_entropy(net(X_tr[idx]), y_tr[idx]).backward()
        opt.step()
    return net


def sharpness_and_accuracy(net):
    lf, ps = hs.model_loss_closure(net, nn.functional.cross_entropy, (X_tr, y_tr))
    with torch.no_grad():
        acc = (net(X_te).argmax(1) == y_te).float().mean().item()
    return hs.top_hessian_eigenvalue(lf, ps, iters=100, tol=1e-6), acc, float(lf().detach())


runs = {}
for seed in (0, 1):
    for name, batch, lr_ in (("B=16, lr 0.1", 16, 0.1), ("full, lr 0.1", len(X_tr), 0.1), ("full, lr 0.5", len(X_tr), 0.5)):
        runs[name, seed] = train_digits(batch, lr_, seed=seed)
assert len(X_tr) == 1438
stats = {k: sharpness_and_accuracy(net) for k, net in runs.items()}
for (name, seed), (lam, acc, loss) in stats.items():
    print(f"{name:13s} seed {seed}: sharpness {lam:5.2f}   test accuracy {acc:.3f}   train loss {loss:.3f}")
for seed in (0, 1):
    small, full, big = stats["B=16, lr 0.1", seed], stats["full, lr 0.1", seed], stats["full, lr 0.5", seed]
    assert 0.5 < small[0] / full[0] < 2               # batch size: less than 2x either way (0.75 to 1.64 over 86 runs)
    assert abs(small[1] - full[1]) < 0.04             # no accuracy gain (at most 2.2 points apart over 86 runs)
    assert big[0] < 0.85 * min(small[0], full[0])     # a 5x larger step: much flatter (0.46 to 0.76 times) ...
    assert big[2] < full[2] / 3                       # ... and trained further (5 to 7 times lower loss)

# %% [markdown]
# **Sharpness depends on the coordinates.** A ReLU network computes the same function if the first layer is
# multiplied by $\alpha > 0$ and the second divided by $\alpha$ ($\mathrm{relu}(\alpha z) = \alpha\,\mathrm{relu}(z)$).
# Same predictions, same loss — but not the same Hessian (Dinh et al. 2017):

# %%
net = runs["B=16, lr 0.1", 0]
scaled = copy.deepcopy(net)
with torch.no_grad():
    scaled[0].weight.mul_(5.0), scaled[0].bias.mul_(5.0), scaled[2].weight.div_(5.0)
    same = torch.allclose(net(X_te), scaled(X_te), atol=1e-4)
lam_a, acc_a, _ = sharpness_and_accuracy(net)
lam_b, acc_b, _ = sharpness_and_accuracy(scaled)
print(f"alpha = 5: same outputs {same}; sharpness {lam_a:.2f} -> {lam_b:.2f}; accuracy {acc_a:.3f} -> {acc_b:.3f}")
assert same and acc_a == acc_b and lam_b > 5 * lam_a

# %% [markdown]
# > **Careful.** "Small batches find flat minima and generalise better; large batches generalise worse" is a
# > debated hypothesis, not a law. Keskar et al. (2017, arXiv:1609.04836) reported sharper minima and a
# > generalisation gap for large batches; Goyal et al. (2017, arXiv:1706.02677) trained ImageNet with batches of 8k
# > without a gap by scaling the learning rate with warm-up; and Dinh et al. (2017, arXiv:1703.04933) showed that
# > sharpness can be changed at will by a reparameterisation that leaves the function unchanged — measured just
# > above. Here, at the same step size, small batches ended flatter than full batches in most runs but not in all:
# > in 74 of the 86 runs we tried (43 seed offsets times the cell's two seeds) by up to a quarter, in the other 12
# > sharper, up to 1.64 times (seed offset 9603, where an earlier bound of 1.6 failed); their test accuracies were at
# > most 2.2 points apart (8 of the 359 test digits). At this scale the direction of the batch-size effect is not
# > reliable; the cell asserts only that it is small (less than a factor of 2 either way, less than 4 points). A five
# > times larger full-batch step ended much flatter (0.46 to 0.76 times the sharpness of either lr-0.1 run), but it
# > also reached a 5 to 7 times lower training loss, and the curvature of the cross-entropy shrinks as the predictions
# > grow confident, so that comparison mixes two effects. Report such measurements, not the slogan.

# %% [markdown]
# ## 0.14 Hands-on: the Hessian eigenvalue spectrum
#
# The seed computes the $121 \times 121$ Hessian of its MLP once, at initialisation, and claims that early in
# training there are many negative eigenvalues (saddle region) and after convergence positive ones dominate — but
# its code never trains. We train it (full-batch GD, $\eta = 0.1$) and record the spectrum along the way.
# `spectrum_summary` counts an eigenvalue as negative if $\lambda < -10^{-3}$ and as "bulk" if $|\lambda| \le 10^{-3}$.

# %%
def spectrum_during_training(n_points, checkpoints, lr=0.1, tol=1e-3):
    manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 1)).double()
    X, y = torch.randn(n_points, 10, dtype=F64), torch.randn(n_points, 1, dtype=F64)
    lf, ps = hs.model_loss_closure(net, nn.MSELoss(), (X, y))
    opt, out = torch.optim.SGD(ps, lr=lr), {}
    for step in range(max(checkpoints) + 1):
        if step in checkpoints:
            e = torch.linalg.eigvalsh(hs.full_hessian(lf, ps))
            out[step] = {"eigs": e.numpy(), "loss": float(lf().detach()), **hs.spectrum_summary(e, tol)}
        opt.zero_grad()
        lf().backward()
        opt.step()
    return out


checkpoints = [0, 10, 30, 100, 300, 1000, 3000, 5000]
spec = spectrum_during_training(32, checkpoints)
for s in checkpoints:
    r = spec[s]
    print(f"step {s:5d}: loss {r['loss']:.1e}  lam_max {r['lam_max']:6.3f}  lam_min {r['lam_min']:8.4f}  "
          f"negative {r['neg_frac']:.2f}  bulk {r['bulk_frac']:.2f}")

# %% [markdown]
# What happened? 32 targets and 121 parameters: the network *interpolates* (loss $\to 0$). For the mean squared
# error $H = \tfrac{2}{N} J^\top J + \tfrac{2}{N}\sum_n r_n \nabla^2 f_n$, with $J$ the $N \times P$ Jacobian of the outputs
# and $r_n$ the residuals. At zero loss the second term vanishes: $H = \tfrac2N J^\top J$ is positive semi-definite
# with rank at most $N = 32$, so at least $121 - 32 = 89$ eigenvalues are zero — a bulk of $89/121 = 0.74$.
#
# That count is a formula; the rest varies with the draw of the network and the data. Over 20 seeds: at
# initialisation 37 % to 55 % of the eigenvalues are negative (the residual term, of either sign, dominates the
# directions the rank-32 first term misses) and at most 10 of the 121 lie in the bulk; after 5000 steps the loss is
# between $10^{-30}$ and $10^{-13}$ and $\lambda_{\max}$ has grown 2.2 to 4.1 times. The cell asserts looser
# bounds than these ranges, not one draw's values.

# %%
first, last = spec[0], spec[5000]
assert last["loss"] < 1e-8                                          # interpolation (loss 1e-30 to 1e-13 over 20 seeds)
assert first["neg_frac"] > 0.3 and last["neg_frac"] == 0.0          # the seed's claim holds here ...
assert last["bulk_frac"] >= 89 / 121 - 1e-9 and first["bulk_frac"] < 0.2   # at init at most 10 of 121 in the bulk
assert last["lam_max"] > 1.5 * first["lam_max"]                     # the top eigenvalue grows (2.2x to 4.1x)
assert abs(89 / 121 - 0.74) < 0.005

fig, axes = figure(4, width=3.3, height=2.8)
for ax, s in zip(axes, (0, 100, 1000, 5000)):
    ax.hist(spec[s]["eigs"], bins=40, color="C0")
    ax.set_yscale("log")
    label(ax, f"step {s}", "eigenvalue", "count")
plt.tight_layout()
fig, ax = figure()
steps_axis = np.array(checkpoints) + 1
ax.semilogx(steps_axis, [spec[s]["neg_frac"] for s in checkpoints], "o-", label="fraction negative")
ax.semilogx(steps_axis, [spec[s]["bulk_frac"] for s in checkpoints], "s-", label="fraction |lambda| <= 1e-3")
ax2 = ax.twinx()
ax2.semilogx(steps_axis, [spec[s]["lam_max"] for s in checkpoints], "k^--", label="lambda_max")
ax2.set_ylabel("lambda_max")
label(ax, "Spectrum of the seed's MLP during GD", "step + 1", "fraction of the 121 eigenvalues")
ax.legend(loc="center left", fontsize=8);

# %% [markdown]
# The seed's picture holds in this interpolating set-up, for a reason it does not give. With 256 points the same
# network *cannot* interpolate: the loss stays near 0.2 (0.18 to 0.27 over 20 seeds), so the residual term no longer
# vanishes and nothing but reaching a minimum makes $H$ semi-definite. After the same 5000 steps the negatives have
# shrunk from about half of the spectrum to at most 3 of the 121 eigenvalues, all tiny (never more than 0.2 % of
# $\lambda_{\max}$ in size). Whether any remain depends on the draw: in 18 of the 20 seeds we tried the smallest
# eigenvalue is still negative (GD is creeping along nearly flat directions), in 2 GD has settled in a minimum where
# all are positive.

# %%
spec_256 = spectrum_during_training(256, [0, 5000])
r0, r1 = spec_256[0], spec_256[5000]
print(f"N = 256: loss {r0['loss']:.3f} -> {r1['loss']:.3f}; negative fraction {r0['neg_frac']:.3f} -> {r1['neg_frac']:.3f}; "
      f"lam_min {r1['lam_min']:.4f} vs lam_max {r1['lam_max']:.2f}")
assert r1["loss"] > 0.1                                              # no interpolation (0.18 to 0.27 over 20 seeds)
assert r1["neg_frac"] < 0.1 < 0.3 < r0["neg_frac"]                   # from about half negative to a few (<= 3 of 121)
assert abs(r1["lam_min"]) < 0.01 * r1["lam_max"]                     # ... and those are small (< 0.2 % of lam_max)

# %% [markdown]
# > **Careful.** The seed's code never trains, so its claim (many negative eigenvalues early, mostly positive after
# > convergence) is not shown there. Measured spectra of trained networks have a large bulk near zero plus a few
# > large outliers, and small negative eigenvalues often persist (Sagun et al. 2017, arXiv:1706.04454; Ghorbani et
# > al. 2019, arXiv:1901.10159). Above, the negatives vanished for certain only because the network fitted 32
# > points exactly.
#
# **Manifold lens: symmetries make flat directions (Part 2, F9a).** Many of the zero eigenvalues are not accidents.
# A two-layer *linear* network $x \mapsto W_2 W_1 x$ with hidden width $h$ computes the same function for
# $(G W_1, W_2 G^{-1})$, any invertible $h \times h$ matrix $G$: an $h^2$-dimensional family of equivalent minima.
# Each such direction is flat, so the Hessian at a minimum has $h^2$ zero eigenvalues. (ReLU networks have one
# rescaling symmetry per hidden unit, the one used in 0.13.)

# %%
d_in, h, d_out = 5, 3, 4
X_lin = torch.randn(50, d_in, dtype=F64)
Y_lin = X_lin @ torch.randn(d_in, d_out, dtype=F64) + 0.1 * torch.randn(50, d_out, dtype=F64)
W1, W2 = (w.requires_grad_(True) for w in cp.linear_net_minimum(X_lin, Y_lin, h))
lin_loss = lambda: ((X_lin @ W1.T @ W2.T - Y_lin) ** 2).mean()  # noqa: E731
e_lin = torch.linalg.eigvalsh(hs.full_hessian(lin_loss, [W1, W2]))
zero_modes = int((e_lin.abs() < 1e-8 * e_lin.abs().max()).sum())
print(f"{e_lin.numel()} parameters; gradient norm {hs.flat_grad(lin_loss, [W1, W2]).norm():.1e}; "
      f"zero eigenvalues: {zero_modes} (h^2 = {h * h}); smallest eigenvalue {float(e_lin.min()):.1e}")
assert zero_modes == h * h and float(e_lin.min()) > -1e-10

# %% [markdown]
# ## 0.15 Extension: the natural gradient
#
# "Steepest" needs a notion of distance. Gradient descent measures a step $\delta$ by its Euclidean length in
# parameters, but equal steps can change the *distribution* very differently: moving $\sigma$ by 0.1 matters far
# more when $\sigma = 0.2$ than when $\sigma = 5$. The distance natural to distributions is the KL divergence, and
# locally $\mathrm{KL}(p_\theta \| p_{\theta+\delta}) \approx \tfrac12 \delta^\top F(\theta) \delta$, where
# $F = \mathbb E[\nabla\log p_\theta\,\nabla\log p_\theta^\top]$ is the **Fisher information**, the metric of the
# statistical manifold. Steepest descent under a KL budget is the **natural gradient** step
# $\Delta\theta = -\eta F^{-1}\nabla L$ (Amari 1998). For $\mathcal N(\mu, \sigma^2)$:
# $F = \mathrm{diag}(1/\sigma^2, 2/\sigma^2)$ in $(\mu, \sigma)$ and $\mathrm{diag}(1/\sigma^2, 2)$ in $(\mu, \log\sigma)$
# (`probability.fisher.fisher_gaussian`). First, the quadratic approximation of the KL:

# %%
kl_small = kl_gaussians_1d(0.0, 0.2, 0.0, 0.3)                    # sigma 0.2 -> 0.3
kl_large = kl_gaussians_1d(0.0, 5.0, 0.0, 5.1)                    # sigma 5.0 -> 5.1
print(f"KL for the same step 0.1 in sigma: from 0.2 {kl_small:.3f}, from 5 {kl_large:.5f}")
assert kl_small > 100 * kl_large
F_sigma, F_log = fisher_gaussian(3.0, 0.5, "sigma"), fisher_gaussian(3.0, 0.5, "logsigma")
print("Fisher at sigma = 0.5 in (mu, sigma):", F_sigma.diagonal().tolist(), " in (mu, log sigma):", F_log.diagonal().tolist())
assert torch.allclose(F_sigma.diagonal(), torch.tensor([4.0, 8.0], dtype=F64))
assert torch.allclose(F_log.diagonal(), torch.tensor([4.0, 2.0], dtype=F64))
for param in ("sigma", "logsigma"):
    errs = [ng.kl_quadratic_rel_error(1.0, 0.5, torch.tensor([d, -d]), param) for d in (1e-1, 1e-2, 1e-3)]
    print(f"({param}) relative error of delta^T F delta / 2 for |delta| ~ 1e-1, 1e-2, 1e-3:", np.round(errs, 5))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.005          # error shrinks linearly with |delta|

# %% [markdown]
# **Fitting a Gaussian.** 400 samples from $\mathcal N(3, 0.5^2)$, a bad start $\mu = 0$, $\sigma = 5$, and four
# walkers minimising the mean negative log-likelihood: GD and natural GD, each in $(\mu, \sigma)$ and in
# $(\mu, \log\sigma)$ coordinates. First with a small step, to compare their *paths* in distribution space
# $(\mu, \sigma)$.

# %%
manual_seed(0)
sample = 3.0 + 0.5 * torch.randn(400, dtype=F64)
paths = {(nat, param): ng.fit_gaussian(sample, 0.0, 5.0, param, natural=nat, lr=0.05, steps=300)
         for nat in (False, True) for param in ("sigma", "logsigma")}
gap_gd = float((paths[False, "sigma"]["mu_sigma"] - paths[False, "logsigma"]["mu_sigma"]).abs().max())
gap_ngd = float((paths[True, "sigma"]["mu_sigma"] - paths[True, "logsigma"]["mu_sigma"]).abs().max())
print(f"largest distance between the two coordinate systems' paths: GD {gap_gd:.3f}, natural GD {gap_ngd:.3f}")
assert gap_ngd < 0.05 and gap_gd > 1.0

fig, ax = figure(width=5, height=3.6)
for (nat, param), r in paths.items():
    mu_s = r["mu_sigma"].numpy()
    ax.plot(mu_s[:, 0], mu_s[:, 1], "-" if nat else "--", label=f"{'natural GD' if nat else 'GD'} in {param}")
ax.plot([float(sample.mean())], [float(sample.std(unbiased=False))], "k*", ms=12, label="maximum likelihood")
label(ax, "Paths in distribution space (lr 0.05)", "mu", "sigma")
ax.legend(fontsize=8);

# %% [markdown]
# Then speed: for each walker, the number of steps until $\mathrm{KL}(\text{MLE fit}\,\|\,\text{current}) < 10^{-6}$,
# over a sweep of learning rates (— means not within 300 steps, or diverged). The natural gradient has the right
# units built in ($F^{-1}$ turns a gradient into a parameter change), so the step $\eta = 1$ just works.

# %%
lrs = [0.01, 0.03, 0.1, 0.3, 1.0]
speed = {}
for nat in (False, True):
    for param in ("sigma", "logsigma"):
        speed[nat, param] = [ng.steps_to_kl(ng.fit_gaussian(sample, 0.0, 5.0, param, nat, lr=a, steps=300)["kl"], 1e-6)
                             for a in lrs]
        print(f"{'natural GD' if nat else 'GD':10s} in {param:8s}:", [s if s is not None else "—" for s in speed[nat, param]])
best = {k: min(s for s in v if s is not None) for k, v in speed.items()}
best_ngd = max(best[True, "sigma"], best[True, "logsigma"])
best_gd = min(best[False, "sigma"], best[False, "logsigma"])
print(f"fewest steps: natural GD {best_ngd}, GD {best_gd}")
assert best_ngd <= 10 and best_gd >= 3 * best_ngd
assert abs(speed[True, "sigma"][-1] - speed[True, "logsigma"][-1]) <= 2   # at lr 1: within two steps

# %% [markdown]
# The two natural-gradient paths agree because $F$ transforms like a metric, $F' = J^\top F J$, which makes
# $F^{-1}\nabla L$ the same *direction in distribution space* in every coordinate system — to first order: at
# $\eta = 1$ the two still differ by a step or two. K-FAC (Martens & Grosse 2015, arXiv:1503.05671) approximates $F$
# for networks by Kronecker factors per layer.
#
# > **Careful.** The seed calls the natural gradient "the theoretical basis of PPO". TRPO (Schulman et al. 2015,
# > arXiv:1502.05477) is the natural-gradient / trust-region method: it bounds the KL between old and new policy
# > and uses Fisher-vector products. PPO (Schulman et al. 2017, arXiv:1707.06347) is a first-order method with a
# > clipped surrogate objective, *inspired* by TRPO; it computes no Fisher matrix.

# %% [markdown]
# ## Manifold lens: why isotropic features? (Part 2, I1 and I4)
#
# Su Jianlin's post "Why we prefer isotropy" (2026, prompted by arXiv:2512.22247) asks whose steepest descent a
# gradient step is. For a linear layer $Y = XW$ with inputs $X$ ($b \times d_{in}$, $b$ rows = batch) and
# $G = \partial L/\partial Y$, the weight gradient is $X^\top G$, and the step $W \leftarrow W - \eta X^\top G$ moves
# the features by
#
# $$\Delta Y = X(W - \eta X^\top G) - XW = -\eta\, X X^\top G .$$
#
# The steepest direction *for the features* would be $-G$. The Gram matrix $XX^\top$ ($b \times b$) tilts the update
# unless $XX^\top \propto I$ — isotropic inputs, which needs $b \le d_{in}$ and orthogonal rows of equal norm.

# %%
X_iso, W_iso, G_iso = torch.randn(8, 20, dtype=F64), torch.randn(20, 5, dtype=F64), torch.randn(8, 5, dtype=F64)
direct = X_iso @ (W_iso - 0.1 * X_iso.T @ G_iso) - X_iso @ W_iso
identity_err = float((direct - iso.feature_update(X_iso, G_iso, 0.1)).abs().max())
print(f"max |X(W - eta X^T G) - XW - (-eta X X^T G)| = {identity_err:.1e}")
assert identity_err < 1e-12
X_std = torch.randn(16, 256, dtype=F64)                            # standardised inputs, d_in = 256
gram_diag = float(torch.diagonal(X_std @ X_std.T).mean())
print(f"standardised inputs: mean diagonal of X X^T = {gram_diag:.0f} (d_in = 256, sqrt(d_in) = 16)")
assert abs(gram_diag / 256 - 1) < 4 * math.sqrt(2 / (16 * 256))   # a mean of 16 chi-square(256) / 256: sd 0.022

# %% [markdown]
# How far from $-G$ does the update point? Inputs with a Gram matrix of condition number
# $\kappa \in \{1, 10, 100, 1000\}$ (32 rows, 64 features), random $G$, and the cosine between $\Delta Y$ and $-G$
# (`update_alignment`). **Whitening** $X \mapsto XA$ with $A = (X^\top X)^{-1/2}$ (`isotropy.whiten`) makes the rows
# orthonormal, $XX^\top = I$, and the parameter step becomes the feature steepest descent. We also run GD on the
# least-squares problem $\min_W \|XW - T\|^2$ and count steps to cut the loss by $10^6$.

# %%
def gd_steps_least_squares(X, T, tol=1e-6, max_steps=50_000):
    W, L0 = torch.zeros(X.shape[1], T.shape[1], dtype=F64), float((T**2).sum())   # loss at W = 0
    eta = 1.0 / float(torch.linalg.eigvalsh(X @ X.T).max())       # the largest stable-and-safe step
    for t in range(1, max_steps + 1):
        W = W - eta * X.T @ (X @ W - T)
        if float(((X @ W - T) ** 2).sum()) < tol * L0:
            return t
    return max_steps


G32, T32 = torch.randn(32, 10, dtype=F64), torch.randn(32, 10, dtype=F64)
kappas, cos_raw, cos_white, steps_raw = [1, 10, 100, 1000], [], [], []
for k in kappas:
    Xk = iso.inputs_with_condition(32, 64, k, seed=1)
    cos_raw.append(iso.update_alignment(Xk, G32))
    cos_white.append(iso.update_alignment(iso.whiten(Xk), G32))
    steps_raw.append(gd_steps_least_squares(Xk, T32))
steps_white = gd_steps_least_squares(iso.whiten(iso.inputs_with_condition(32, 64, 1000, seed=1)), T32)
for k, c, cw, s in zip(kappas, cos_raw, cos_white, steps_raw):
    print(f"kappa {k:5d}: cos(dY, -G) = {c:.3f}, whitened {cw:.3f};  GD steps on least squares {s}")
print("whitened inputs: GD steps", steps_white)
assert abs(cos_raw[0] - 1) < 1e-12 and all(a > b for a, b in zip(cos_raw, cos_raw[1:]))
assert all(abs(c - 1) < 1e-12 for c in cos_white)
assert all(a < b for a, b in zip(steps_raw, steps_raw[1:])) and steps_white == 1

# %% [markdown]
# **Muon and the matrix sign (I4).** Muon (K. Jordan et al. 2024; Liu et al. 2025, arXiv:2502.16982) updates a
# weight matrix by $W \leftarrow W - \eta\,\mathrm{msign}(\partial L/\partial W)$, where for $M = U\Sigma V^\top$,
# $\mathrm{msign}(M) = M(M^\top M)^{-1/2} = UV^\top$: every singular value set to 1 — the steepest direction under the
# spectral norm (Bernstein & Newhouse 2024, arXiv:2409.20325). An SVD is slow on accelerators, so Muon uses a
# **Newton–Schulz** iteration made of matrix products only. Start from $X_0 = M/\|M\|_F$ (singular values in (0, 1]);
# each step applies an odd polynomial to every singular value at once:
#
# - cubic: $X \leftarrow \tfrac32 X - \tfrac12 XX^\top X$, i.e. $\sigma \mapsto \tfrac32\sigma - \tfrac12\sigma^3$, which converges to 1;
# - Muon's quintic: $X \leftarrow aX + b(XX^\top)X + c(XX^\top)^2X$ with $(a, b, c) = (3.4445, -4.7750, 2.0315)$:
#   faster from small $\sigma$, but it does not converge — it leaves the singular values in a band around 1.

# %%
M32 = torch.randn(32, 32, generator=torch_generator(0), dtype=F64)
exact = ms.msign_svd(M32)
ns_err = {k: float((ms.msign_newton_schulz(M32, k, "cubic") - exact).abs().max()) for k in (5, 10, 20, 30, 40)}
print("cubic NS, max error vs SVD after k steps:", {k: f"{e:.1e}" for k, e in ns_err.items()})
assert ns_err[30] < 1e-6 and ns_err[5] > 1e-2

bands = []
for k in (1, 10, 100):                                            # inputs with condition number <= 100
    U, _ = torch.linalg.qr(torch.randn(64, 48, dtype=F64))
    V, _ = torch.linalg.qr(torch.randn(48, 48, dtype=F64))
    sv = torch.linalg.svdvals(ms.msign_newton_schulz(U @ torch.diag(torch.logspace(0, math.log10(k), 48, dtype=F64)) @ V.T, 5))
    bands.append((float(sv.min()), float(sv.max())))
print("quintic NS, 5 steps, singular values in:", [tuple(round(x, 3) for x in b) for b in bands])
assert all(0.6 < lo and hi < 1.25 for lo, hi in bands)

Q6, _ = torch.linalg.qr(torch.randn(32, 32, dtype=F64))
R6, _ = torch.linalg.qr(torch.randn(32, 32, dtype=F64))
equiv = float((ms.msign_newton_schulz(Q6 @ M32 @ R6, 5) - Q6 @ ms.msign_newton_schulz(M32, 5) @ R6).abs().max())
print(f"orthogonal equivariance msign(QMR) = Q msign(M) R: max error {equiv:.1e}")
assert equiv < 1e-10

s_grid = np.linspace(1e-3, 1, 300)
fig, ax = figure(width=5, height=3.4)
for name, (a, b, c) in (("cubic", ms.CUBIC), ("quintic", ms.QUINTIC)):
    y = s_grid.copy()
    for _ in range(5):
        y = a * y + b * y**3 + c * y**5
    ax.plot(s_grid, y, label=f"{name}, 5 steps")
ax.axhline(1, color="grey", ls=":")
label(ax, "Newton-Schulz acts on each singular value", "singular value of M / ||M||_F", "after 5 steps")
ax.legend();

# %% [markdown]
# Timing on this CPU (median of 7 runs, float32): on a GPU the products run on tensor cores and Newton–Schulz is
# the practical choice; on a CPU the two are comparable — the numbers below are whatever this machine measures.

# %%
from manifold_course.timing import median_ms


for n in (64, 256):
    A32 = torch.randn(n, n)
    t_svd, t_ns = median_ms(ms.msign_svd, A32), median_ms(ms.msign_newton_schulz, A32)
    print(f"{n}x{n}: SVD {t_svd:.2f} ms, quintic Newton-Schulz (5 steps) {t_ns:.2f} ms")

# %% [markdown]
# **Muon in feature space.** With whitened inputs ($XX^\top = I$), a Muon step on $W$ moves the features by
# $\Delta Y = -\eta X\,\mathrm{msign}(X^\top G) = -\eta\,\mathrm{msign}(G)$: spectral-norm steepest descent in parameters
# *is* spectral-norm steepest descent in features. SignSGD ($W \leftarrow W - \eta\,\mathrm{sign}(\partial L/\partial W)$,
# steepest descent under the max-norm) has no such property: $-\eta X\,\mathrm{sign}(X^\top G) \neq -\eta\,\mathrm{sign}(G)$.

# %%
rows = []
for k in (1, 10, 100, 1000):
    Xk = iso.inputs_with_condition(32, 64, k, seed=2)
    for name, Xin in (("raw", Xk), ("whitened", iso.whiten(Xk))):
        rows.append((k, name, iso.cosine(iso.muon_feature_update(Xin, G32, 1.0), -ms.msign_svd(G32)),
                     iso.cosine(iso.signsgd_feature_update(Xin, G32, 1.0), -torch.sign(G32))))
for k, name, c_muon, c_sign in rows:
    print(f"kappa {k:5d} {name:9s}: cos(Muon dY, -msign(G)) = {c_muon:.3f}   cos(SignSGD dY, -sign(G)) = {c_sign:.3f}")
assert all(abs(c_muon - 1) < 1e-10 for _, name, c_muon, _ in rows if name == "whitened")
assert all(c_sign < 0.9 for *_, c_sign in rows)
assert rows[-2][2] < rows[0][2]                                  # raw inputs: Muon's alignment falls with kappa

# %% [markdown]
# Finally, `msign.Muon` in use: a $64 \to 64 \to 64 \to 10$ ReLU MLP on digits, Muon on the two hidden weight matrices
# (Adam on biases and the output layer), against SGD with momentum and Adam, one seed, 300 steps of batch 64. One seed
# on one small task cannot rank optimisers; this only shows the optimiser works.

# %%
def train_with(kind, lr, steps=300, seed=0):
    manual_seed(seed)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    hidden = [net[0].weight, net[2].weight]
    rest = [p for p in net.parameters() if all(p is not w for w in hidden)]
    opts = {"Muon": lambda: [ms.Muon(hidden, lr=lr), torch.optim.Adam(rest, lr=3e-3)],
            "Adam": lambda: [torch.optim.Adam(net.parameters(), lr=lr)],
            "SGD+momentum": lambda: [torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)]}[kind]()
    gen, reached = torch_generator(seed), None
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(X_tr), (64,), generator=gen)
        for o in opts:
            o.zero_grad()
        nn.functional.cross_entropy(net(X_tr[idx]), y_tr[idx]).backward()
        for o in opts:
            o.step()
        if reached is None and step % 10 == 0:
            with torch.no_grad():
                reached = step if (net(X_tr).argmax(1) == y_tr).float().mean() >= 0.95 else None
    with torch.no_grad():
        return reached, (net(X_te).argmax(1) == y_te).float().mean().item()


opt_runs = {kind: train_with(kind, lr) for kind, lr in (("SGD+momentum", 0.1), ("Adam", 1e-2), ("Muon", 0.03))}
for kind, (reached, acc) in opt_runs.items():
    print(f"{kind:13s}: 95 % train accuracy after {reached} steps; test accuracy {acc:.3f}")
assert opt_runs["Muon"][0] is not None and opt_runs["Muon"][1] > 0.9

# %% [markdown]
# > **Careful.** The post's "this may be one reason Muon works well; SignSGD lacks the property" is explicitly a
# > hypothesis: the identity above is exact algebra for $XX^\top = I$, but it does not show that this is why Muon trains
# > well. Real inputs have $b > d_{in}$ and are not white, so $XX^\top$ is at best close to a projection; normalisation
# > layers are cheap stand-ins (Volume 1.8 measures how much of the gap they close). The post's "standardised $X$ gives
# > $XX^\top \approx \sqrt{d_{in}}\,I$" should read $\approx d_{in} I$ on the diagonal.
#
# Other manifold-thread experiments placed in this chapter are measured later, where the models are bigger:
# the multifractal loss profile and anomalous diffusion of parameters (L2a, L2c) in 1.10, and training trajectories
# of many networks on one low-dimensional manifold in prediction space (T1, Mao et al. 2024, arXiv:2305.01604) in 2.5
# and the capstone.

# %% [markdown]
# ## Summary
#
# - A critical point is a minimum, maximum, saddle or degenerate according to the signs of its Hessian eigenvalues.
#   Gradient descent can stall exactly on a saddle's stable manifold, but noise of size $\varepsilon$ frees it in
#   $O(\log 1/\varepsilon)$ steps; degenerate saddles are slower. Random symmetric matrices are positive definite far
#   less often than $2^{-d}$.
# - The Hessian of a small network is computable (P backward passes); Hessian-vector products cost two, and power
#   iteration or Lanczos on HVPs give its extreme eigenvalues. A GPT-3-sized Hessian would need about $6\times10^{22}$ bytes.
# - Newton solves a quadratic in one step and BFGS in a few; GD pays for the condition number; Adam rescales
#   coordinates, it does not use curvature.
# - Noise moves runs into wider basins; full-batch GD drives the sharpness to $2/\eta$; the small-batch-flat-minimum
#   story is a debated hypothesis, and sharpness itself depends on the parameterisation.
# - Hessian spectra have a bulk at zero (interpolation, symmetries) and a few outliers; negatives are forced to
#   vanish only when the model fits its data exactly (otherwise a few small ones usually linger during training).
# - The natural gradient $F^{-1}\nabla L$ follows the same path whatever the coordinates and takes the step size 1.
# - A gradient step moves features by $-\eta XX^\top G$; whitening makes it feature-space steepest descent, and with
#   whitened inputs Muon's msign step does the same for the spectral norm.
#
# **Exercises.** Open `exercises/v0_roots/03_optimization.ipynb` (`manifold-course lab` copies it to your `my_work/`
# folder): classify critical points, write `hvp`, `newton_step`, `bfgs_inverse_update`, `adam_step`,
# `top_hessian_eigenvalue`, `natural_gradient_step`, `feature_update`, `update_alignment` and
# `msign_newton_schulz`; every cell checks your answer.
#
# **Further reading.**
# - Y. Dauphin et al., "Identifying and attacking the saddle point problem in high-dimensional non-convex
#   optimization", NeurIPS 2014, arXiv:1406.2572.
# - J. D. Lee, M. Simchowitz, M. I. Jordan, B. Recht, "Gradient Descent Converges to Minimizers", COLT 2016,
#   arXiv:1602.04915; C. Jin et al., "How to Escape Saddle Points Efficiently", ICML 2017, arXiv:1703.00887.
# - D. S. Dean, S. N. Majumdar, "Large deviations of extreme eigenvalues of random matrices", PRL 2006,
#   arXiv:cond-mat/0609651.
# - B. A. Pearlmutter, "Fast Exact Multiplication by the Hessian", Neural Computation 1994; Z. Yao et al.,
#   "PyHessian", 2019, arXiv:1912.07145.
# - J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006 (Newton, BFGS).
# - D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, arXiv:1412.6980.
# - N. S. Keskar et al., "On Large-Batch Training for Deep Learning: Generalization Gap and Sharp Minima", ICLR 2017,
#   arXiv:1609.04836; L. Dinh et al., "Sharp Minima Can Generalize For Deep Nets", ICML 2017, arXiv:1703.04933;
#   P. Goyal et al., "Accurate, Large Minibatch SGD", 2017, arXiv:1706.02677.
# - J. Cohen et al., "Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability", ICLR 2021,
#   arXiv:2103.00065; A. Ly, P. Gong, "Optimization on multifractal loss landscapes ...", Nature Communications 2025.
# - L. Sagun et al., "Empirical Analysis of the Hessian of Over-Parametrized Neural Networks", 2017, arXiv:1706.04454.
# - S. Amari, "Natural Gradient Works Efficiently in Learning", Neural Computation 1998; J. Martens, R. Grosse, K-FAC,
#   ICML 2015, arXiv:1503.05671; J. Schulman et al., TRPO, arXiv:1502.05477, and PPO, arXiv:1707.06347.
# - Su Jianlin, "Why do we prefer isotropy? An understanding based on steepest descent", kexue.fm/archives/11549, 2026;
#   J. Bernstein, L. Newhouse, "Old Optimizer, New Norm: An Anthology", 2024, arXiv:2409.20325; K. Jordan et al.,
#   "Muon: An optimizer for hidden layers in neural networks", 2024 (blog post); J. Liu et al., "Muon is Scalable for
#   LLM Training", 2025, arXiv:2502.16982.

# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Volume 3, Chapter 1 exercises: Diffusion, flows and guidance (sections 3.1-3.4)
#
# Sixteen functions: the schedules and the forward process, the exact score of Gaussian data, the DDPM and DDIM
# steps, a DDIM sampler, Heun's method, the four pieces of flow matching, classifier-free guidance, and latent
# diffusion's two numbers and its sampling pipeline. Write the body of each function, run its cell, then the `check(...)` cell below it:
# a green block means every case passed; a red one names the first case that failed and what differs. The lecture
# `chapters/v3_generative/01_diffusion_and_flows.ipynb` derives everything used here.
#
# **Conventions** (the lecture's). $T$ steps indexed $t=0,\dots,T-1$; `betas[t]` $=\beta_t$; `alpha_bar[t]`
# $=\bar\alpha_t=\prod_{s\le t}(1-\beta_s)$; $x_t=\sqrt{\bar\alpha_t}x_0+\sqrt{1-\bar\alpha_t}\varepsilon$. Step $t=0$
# is the last reverse step, and "$t=-1$" means the clean data ($\bar\alpha_{-1}=1$). Flow matching uses continuous
# $t\in[0,1]$ with $t=0$ the data and $t=1$ the noise. Tensors in, tensors out, with the dtype of the inputs; any
# randomness (`eps`, `z`) is passed in, so every answer is exact. Batches are the first axis; a per-row time `t` is
# a tensor of shape `(N,)`.

# %%
import math

import torch

from manifold_course.grading import check

# %% [markdown]
# ## 1. Noise schedules
#
# `beta_schedule(T, kind) -> tensor (T,) float64`:
# - `"linear"`: `T` equally spaced values from $10^{-4}\cdot\frac{1000}{T}$ to $0.02\cdot\frac{1000}{T}$ (Ho et al.'s
#   schedule for $T=1000$, scaled so that any $T$ ends near pure noise);
# - `"cosine"` (Nichol & Dhariwal 2021): $f(s)=\cos^2\!\big(\frac{s/T+0.008}{1.008}\cdot\frac\pi2\big)$ for
#   $s=0,\dots,T$; $\bar\alpha(s)=f(s)/f(0)$; $\beta_t=1-\bar\alpha(t+1)/\bar\alpha(t)$, clipped at 0.999.
#
# **Checked:** to $10^{-9}$ relative, float64, for $T$ = 1000, 200, 7 and a random $T$, both kinds.

# %%
def beta_schedule(T, kind="linear"):
    ### BEGIN SOLUTION
    if kind == "linear":
        scale = 1000.0 / T
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    s = 0.008
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    ab = f / f[0]
    return (1 - ab[1:] / ab[:-1]).clamp(max=0.999)
    ### END SOLUTION


# %%
check("diffusion.beta_schedule", beta_schedule)

# %% [markdown]
# ## 2. The signal kept after t steps
#
# `alpha_bar(betas) -> tensor`: $\bar\alpha_t=\prod_{s\le t}(1-\beta_s)$ for every $t$, same shape and dtype as
# `betas`. **Checked:** one step, three steps by hand, the linear schedule and random ones (float64 and float32).

# %%
def alpha_bar(betas):
    ### BEGIN SOLUTION
    return torch.cumprod(1 - betas, dim=0)
    ### END SOLUTION


# %%
check("diffusion.alpha_bar", alpha_bar)

# %% [markdown]
# ## 3. The forward process in one jump
#
# `q_sample(x0, t, eps, alpha_bar) -> tensor like x0`: $x_t=\sqrt{\bar\alpha_t}\,x_0+\sqrt{1-\bar\alpha_t}\,\varepsilon$.
# `t` is either one step for the whole batch (an `int`) or one per row (a tensor of shape `(N,)`); `x0` and `eps`
# have shape `(N, ...)` (vectors or images). Return the dtype of `x0`.
#
# **Checked:** $t=0$, $t=T-1$, an int $t$, a $t$ per row, float32 images `(N, 1, 8, 8)` and a batch of 1.

# %%
def q_sample(x0, t, eps, alpha_bar):
    ### BEGIN SOLUTION
    # Hint: index alpha_bar with t, then reshape a per-row (N,) result to (N, 1, 1, ...) to broadcast.
    ab = alpha_bar[torch.as_tensor(t)].to(x0.dtype)
    if ab.dim() == 1:
        ab = ab.reshape(-1, *([1] * (x0.dim() - 1)))
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    ### END SOLUTION


# %%
check("diffusion.q_sample", q_sample)

# %% [markdown]
# ## 4. The exact score of noised Gaussian data
#
# If $x_0\sim\mathcal N(\mu,\Sigma)$, then $x_t\sim\mathcal N\big(\sqrt{\bar\alpha_t}\mu,\ \bar\alpha_t\Sigma+(1-\bar\alpha_t)I\big)$,
# and the score of a Gaussian $\mathcal N(m, C)$ is $\nabla_x\log p(x)=-C^{-1}(x-m)$.
#
# `gaussian_data_score(x, mu, Sigma, alpha_bar_t) -> tensor (N, D)` for points `x` `(N, D)`, mean `mu` `(D,)`,
# covariance `Sigma` `(D, D)` and the float `alpha_bar_t` $=\bar\alpha_t$ (1 for the data itself). This is the
# oracle a sampler can be tested with: the exact noise prediction is $-\sqrt{1-\bar\alpha_t}$ times it.
#
# **Checked:** $\bar\alpha=1$ (the data's score), $\bar\alpha=0.3$, the score 0 at the mean, and random Gaussians in
# 1 to 6 dimensions.

# %%
def gaussian_data_score(x, mu, Sigma, alpha_bar_t):
    ### BEGIN SOLUTION
    # Hint: solve a linear system rather than inverting C.
    D = mu.shape[0]
    C = alpha_bar_t * Sigma + (1 - alpha_bar_t) * torch.eye(D, dtype=Sigma.dtype)
    m = math.sqrt(alpha_bar_t) * mu
    return -torch.linalg.solve(C, (x - m).T).T
    ### END SOLUTION


# %%
check("diffusion.gaussian_data_score", gaussian_data_score)

# %% [markdown]
# ## 5. One DDPM step
#
# `ddpm_step(x_t, t, eps_hat, betas, z) -> x_{t-1}` (Ho et al. 2020, Algorithm 2):
#
# $$x_{t-1}=\frac{1}{\sqrt{\alpha_t}}\Big(x_t-\frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,\hat\varepsilon\Big)+\sigma_t z,
# \qquad \sigma_t^2=\tilde\beta_t=\frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\,\beta_t,$$
#
# with $\alpha_t=1-\beta_t$, $\bar\alpha$ computed from `betas`, and **no noise at $t=0$** (return the mean). `t` is
# an int; `z` is standard normal noise of the shape of `x_t`.
#
# **Checked:** $t=T-1$, the middle, $t=1$, $t=0$, random $T$ and $t$ on both schedules, float32 images.

# %%
def ddpm_step(x_t, t, eps_hat, betas, z):
    ### BEGIN SOLUTION
    ab = torch.cumprod(1 - betas, dim=0)
    beta = float(betas[t])
    mean = (x_t - beta / math.sqrt(1 - float(ab[t])) * eps_hat) / math.sqrt(1 - beta)
    if t == 0:
        return mean
    var = (1 - float(ab[t - 1])) / (1 - float(ab[t])) * beta
    return mean + math.sqrt(var) * z
    ### END SOLUTION


# %%
check("diffusion.ddpm_step", ddpm_step)

# %% [markdown]
# ## 6. One DDIM step
#
# `ddim_step(x_t, t, t_prev, eps_hat, alpha_bar, eta, z) -> x_{t_prev}` for `t_prev < t` (`t_prev = -1`: to the
# data, $\bar\alpha_{-1}=1$) (Song, Meng & Ermon 2020):
#
# $$\hat x_0=\frac{x_t-\sqrt{1-\bar\alpha_t}\,\hat\varepsilon}{\sqrt{\bar\alpha_t}},\quad
# x_{t'}=\sqrt{\bar\alpha_{t'}}\,\hat x_0+\sqrt{1-\bar\alpha_{t'}-\sigma^2}\,\hat\varepsilon+\sigma z,\quad
# \sigma=\eta\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}.$$
#
# **Checked:** $\eta=0$, $\eta=1$ with $t'=t-1$ (DDPM's variance), $\eta=0.5$ with a stride, $t'=-1$, images.

# %%
def ddim_step(x_t, t, t_prev, eps_hat, alpha_bar, eta, z):
    ### BEGIN SOLUTION
    ab_t = float(alpha_bar[t])
    ab_p = float(alpha_bar[t_prev]) if t_prev >= 0 else 1.0
    sigma = eta * math.sqrt((1 - ab_p) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_p)
    x0_hat = (x_t - math.sqrt(1 - ab_t) * eps_hat) / math.sqrt(ab_t)
    return math.sqrt(ab_p) * x0_hat + math.sqrt(max(1 - ab_p - sigma**2, 0.0)) * eps_hat + sigma * z
    ### END SOLUTION


# %%
check("diffusion.ddim_step", ddim_step)

# %% [markdown]
# ## 7. A DDIM sampler
#
# `ddim_sample(eps_fn, x_T, timesteps, alpha_bar) -> x_0`: deterministic DDIM ($\eta=0$) along the decreasing list
# `timesteps` (for example 10 of $0..T-1$, starting at $T-1$), then one last step from the smallest of them to the
# data ($t'=-1$). `eps_fn(x, t)` is the noise network: call it with the current `x` and the current step `t` (an
# int) once per step.
#
# **Checked:** with the exact noise prediction of random Gaussian mixtures in 1 to 3 dimensions as `eps_fn`, over
# 1 to 10 steps and an uneven list `[70, 40, 10]`; the steps at which you call `eps_fn` are compared too.

# %%
def ddim_sample(eps_fn, x_T, timesteps, alpha_bar):
    ### BEGIN SOLUTION
    ts = [int(t) for t in timesteps]
    x = x_T
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        eps = eps_fn(x, t)
        ab_t = float(alpha_bar[t])
        ab_p = float(alpha_bar[t_prev]) if t_prev >= 0 else 1.0
        x0_hat = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        x = math.sqrt(ab_p) * x0_hat + math.sqrt(1 - ab_p) * eps
    return x
    ### END SOLUTION


# %%
check("diffusion.ddim_sample", ddim_sample)

# %% [markdown]
# ## 8. Heun's method
#
# `heun_step(f, x, t, dt) -> x_next` for the ODE $dx/dt=f(x,t)$: Euler predicts
# $\tilde x=x+\Delta t\,f(x,t)$, and the step uses the average of the two slopes,
# $x_{next}=x+\frac{\Delta t}{2}\big(f(x,t)+f(\tilde x,t+\Delta t)\big)$ (Karras et al. 2022 sample diffusion models
# with it). `t` and `dt` are floats; `dt` may be negative (integrating backwards in time).
#
# **Checked:** $dx/dt=-x$ forwards and backwards, $dx/dt=Ax$, $dx/dt=\cos t-x$ (so the second slope must be taken
# at $t+\Delta t$), and $dx/dt=-x^3+pt$.

# %%
def heun_step(f, x, t, dt):
    ### BEGIN SOLUTION
    k1 = f(x, t)
    k2 = f(x + dt * k1, t + dt)
    return x + 0.5 * dt * (k1 + k2)
    ### END SOLUTION


# %%
check("diffusion.heun_step", heun_step)

# %% [markdown]
# ## 9. A point on a flow-matching line
#
# `fm_pair(x0, x1, t) -> (x_t, u)`: the point $x_t=(1-t)x_0+tx_1$ of the line from the data point `x0` to the noise
# `x1`, and the line's velocity $u=dx_t/dt=x_1-x_0$ (which does not depend on $t$). `t` is a float or one value per
# row (shape `(N,)`).
#
# **Checked:** $t=0$ and $t=1$ (the two ends), a float $t$, a $t$ per row, float32 images.

# %%
def fm_pair(x0, x1, t):
    ### BEGIN SOLUTION
    t = torch.as_tensor(t, dtype=x0.dtype)
    if t.dim() == 1:
        t = t.reshape(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * x1, x1 - x0
    ### END SOLUTION


# %%
check("diffusion.fm_pair", fm_pair)

# %% [markdown]
# ## 10. The flow-matching loss
#
# `fm_loss(v_fn, x0, x1, t) -> scalar tensor`: $\frac1N\sum_i\|v(x_{t_i},t_i)-(x_{1,i}-x_{0,i})\|^2$, the squared
# error **summed over the coordinates** of each example and **averaged over the batch**. `t` has shape `(N,)`; call
# `v_fn(x_t, t)` once with the whole batch. (Use your `fm_pair`'s formula.)
#
# **Checked:** zero for the exact velocity of a single pair; $v=0$ (the mean squared length of $x_1-x_0$); $v=Ax$;
# a time-dependent $v$; a batch of 1.

# %%
def fm_loss(v_fn, x0, x1, t):
    ### BEGIN SOLUTION
    tc = t.reshape(-1, *([1] * (x0.dim() - 1))).to(x0.dtype)
    xt, u = (1 - tc) * x0 + tc * x1, x1 - x0
    return ((v_fn(xt, t) - u) ** 2).flatten(1).sum(1).mean()
    ### END SOLUTION


# %%
check("diffusion.fm_loss", fm_loss)

# %% [markdown]
# ## 11. Sampling a flow with Euler steps
#
# `euler_sample(v_fn, x1, n_steps) -> x_0`: integrate $dx/dt=v(x,t)$ from $t=1$ (the noise `x1`) down to $t=0$ in
# `n_steps` equal steps $\Delta t=1/n$: step $i=0,\dots,n-1$ starts at $t_i=1-i\Delta t$ and does
# $x\leftarrow x-\Delta t\,v(x,t_i)$. Call `v_fn(x, t)` with `t` a tensor of shape `(N,)` filled with $t_i$.
#
# **Checked:** a constant velocity (integrated exactly by one step: the straight path of flow matching), $v=Ax$ with
# 1 and 4 steps, a time-dependent $v$, and $v=-x^3+pt$ with 10 steps.

# %%
def euler_sample(v_fn, x1, n_steps):
    ### BEGIN SOLUTION
    x, dt = x1, 1.0 / n_steps
    for i in range(n_steps):
        t = torch.full((x.shape[0],), 1.0 - i * dt, dtype=x.dtype)
        x = x - dt * v_fn(x, t)
    return x
    ### END SOLUTION


# %%
check("diffusion.euler_sample", euler_sample)

# %% [markdown]
# ## 12. How straight are a flow's paths?
#
# `straightness(v_fn, x1, n_steps) -> float`: follow the Euler path of exercise 11 from each noise point `x1` to its
# end $\hat x_0$, remembering the velocity $v_i$ used at every step, and return
#
# $$S=\Delta t\sum_{i=0}^{n-1}\frac1N\sum_{\text{rows}}\big\|v_i-(x_1-\hat x_0)\big\|^2,$$
#
# the squared distance of each step's velocity to the path's chord, summed over coordinates, averaged over the batch,
# integrated over time (Liu, Gong & Liu 2022). $S=0$ exactly when every path is a straight line travelled at constant
# speed; rectified flow drives it down. Return a Python float.
#
# **Checked:** a constant velocity ($S=0$), one step ($S=0$: one step is its own chord), $v=Ax$ with 8 steps, a
# time-dependent $v$, and $v=-x^3+pt$ with 10 steps.

# %%
def straightness(v_fn, x1, n_steps):
    ### BEGIN SOLUTION
    vs, x, dt = [], x1, 1.0 / n_steps
    for i in range(n_steps):
        v = v_fn(x, torch.full((x.shape[0],), 1.0 - i * dt, dtype=x.dtype))
        vs.append(v)
        x = x - dt * v
    chord = x1 - x
    return float(sum(((v - chord) ** 2).flatten(1).sum(1).mean() for v in vs) * dt)
    ### END SOLUTION


# %%
check("diffusion.straightness", straightness)

# %% [markdown]
# ## 13. Classifier-free guidance
#
# `cfg_eps(eps_uncond, eps_cond, w) -> tensor`: $\hat\varepsilon=\varepsilon_\varnothing+w\,(\varepsilon_c-\varepsilon_\varnothing)$,
# so that $w=0$ is unconditional and $w=1$ conditional (the lecture's and Stable Diffusion's convention; Ho &
# Salimans' $w'$ is $w-1$). **Checked:** $w$ = 0, 1, 7.5 and a random $w$ on float32 images.

# %%
def cfg_eps(eps_uncond, eps_cond, w):
    ### BEGIN SOLUTION
    return eps_uncond + w * (eps_cond - eps_uncond)
    ### END SOLUTION


# %%
check("diffusion.cfg_eps", cfg_eps)

# %% [markdown]
# ## 14. Latent compression
#
# `compression_ratio(H, W, C, f, c_latent) -> float`: how many times fewer numbers a latent of `c_latent` channels
# at $1/f$ of the resolution holds than an $H\times W\times C$ image: $\frac{HWC}{c\,(H/f)(W/f)}$.
# **Checked:** 48 for Stable Diffusion v1 (512×512×3, $f=8$, 4 channels), and four other settings, one of them not a
# whole number.

# %%
def compression_ratio(H, W, C, f, c_latent):
    ### BEGIN SOLUTION
    return (H * W * C) / (c_latent * (H // f) * (W // f))
    ### END SOLUTION


# %%
check("diffusion.compression_ratio", compression_ratio)

# %% [markdown]
# ## 15. The latent scale factor
#
# `latent_scale_factor(z) -> float`: the number $s$ that gives the latents `z` unit standard deviation,
# $s=1/\mathrm{std}(z)$, with torch's `z.std()` over all elements (Stable Diffusion's 0.18215 is such a number,
# computed once on its training latents). Return a Python float. **Checked:** latents with standard deviation 5 and
# 0.2, images of latents, and latents with unequal channels and a non-zero mean (one factor for all).

# %%
def latent_scale_factor(z):
    ### BEGIN SOLUTION
    return 1.0 / float(z.std())
    ### END SOLUTION


# %%
check("diffusion.latent_scale_factor", latent_scale_factor)

# %% [markdown]
# ## 16. Latent diffusion's sampling pipeline
#
# `latent_ddim_sample(eps_fn, decode, z_T, timesteps, alpha_bar, scale) -> images`: the network `eps_fn` was
# trained on *scaled* latents $s\,z$ (exercise 15's factor, `scale`), so run your DDIM sampler (exercise 7) from the
# latent noise `z_T` along `timesteps`, **divide by the scale**, and only then `decode` (a function from latents to
# images). Forgetting the division is a classic bug: the decoder then sees latents $s$ times too large (or small).
#
# **Checked:** with the exact noise prediction of random latent Gaussian mixtures and a decoder
# $\tanh(zW^\top+b)$, in 2 to 4 latent dimensions, scales 0.25, 1 and 2, 1 to 6 steps.

# %%
def latent_ddim_sample(eps_fn, decode, z_T, timesteps, alpha_bar, scale):
    ### BEGIN SOLUTION
    z = z_T
    ts = [int(t) for t in timesteps]
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        eps = eps_fn(z, t)
        ab_t = float(alpha_bar[t])
        ab_p = float(alpha_bar[t_prev]) if t_prev >= 0 else 1.0
        z = math.sqrt(ab_p) * (z - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t) + math.sqrt(1 - ab_p) * eps
    return decode(z / scale)
    ### END SOLUTION


# %%
check("diffusion.latent_ddim_sample", latent_ddim_sample)

# %% [markdown]
# ## Going further
#
# - Run `ddim_sample` with the exact noise of a Gaussian (your `gaussian_data_score` times $-\sqrt{1-\bar\alpha_t}$)
#   and 10, 20, 40 steps: the covariance error halves with each doubling (the lecture's first-order result).
# - With `heun_step`, integrate $dx/dt=-x$ from 0 to 1 in 8, 16 and 32 steps: the error falls about 4 times per
#   doubling.

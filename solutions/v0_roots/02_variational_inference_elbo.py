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
# # Volume 0, Chapter 2 exercises: Variational inference and the ELBO (sections 0.5-0.10)
#
# Ten functions, from a warm-up to the loss of a VAE. Each exercise states its inputs, outputs and what the check
# verifies; write the body of the function, run the cell, then run the `check(...)` cell below it. A green block
# means every case passed; a red one names the first case that failed and what differs. The lecture notebook
# `chapters/v0_roots/02_variational_inference_elbo.ipynb` derives everything used here.
#
# Conventions: natural logarithms (nats); a Gaussian $q=\mathcal N(\mu,\mathrm{diag}\,\sigma^2)$ is given by its mean
# `mu` and log-variance `logvar` $=\log\sigma^2$, so $\sigma = e^{\frac12\,\mathrm{logvar}}$; "numpy" exercises take and
# return numpy arrays / Python floats, "torch" exercises take and return tensors (keep them differentiable).

# %%
import math

import numpy as np
import torch
import torch.nn.functional as F

from manifold_course.grading import check

# %% [markdown]
# ## 1. KL divergence between two categorical distributions (numpy)
#
# `kl_categorical(p, q) -> float`: $\mathrm{KL}(p\|q)=\sum_i p_i\log(p_i/q_i)$ for probability vectors `p`, `q` of
# the same length.
# - Terms with $p_i=0$ contribute 0 (the limit of $t\log t$), even when $q_i=0$ too.
# - If some $q_i=0$ while $p_i>0$, return `math.inf`.
#
# Checked: random pairs of 2, 3, 7 and 10 categories, $p=q$ (KL = 0), zeros in $p$, in $q$, and in both, and an
# extreme $q_i=10^{-300}$. Returns a Python float.

# %%
def kl_categorical(p, q):
    ### BEGIN SOLUTION
    # Hint: select the entries with p > 0 first; then check q on those entries.
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    mask = p > 0
    if np.any(q[mask] == 0):
        return math.inf
    return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))))
    ### END SOLUTION


# %%
check("elbo.kl_categorical", kl_categorical)

# %% [markdown]
# ## 2. KL of a diagonal Gaussian to the standard normal (torch)
#
# `kl_std_normal(mu, logvar) -> tensor of shape (B,)`: for `mu`, `logvar` of shape `(B, k)`,
#
# $$\mathrm{KL}\big(\mathcal N(\mu,\mathrm{diag}\,\sigma^2)\,\|\,\mathcal N(0,I)\big)=\tfrac12\sum_{j=1}^k\big(\mu_j^2+\sigma_j^2-1-\log\sigma_j^2\big),$$
#
# summed over the latent dimensions, one value per row. Checked: the values 0 at $(0,0)$ and 0.5 at $(1,0)$;
# batches of 1 to 13 rows, 1 to 64 dimensions, float32 and float64 (keep the input dtype); `logvar` = ±12; and the
# gradients with respect to `mu` and `logvar` (so stay in torch).

# %%
def kl_std_normal(mu, logvar):
    ### BEGIN SOLUTION
    # Hint: sigma^2 = exp(logvar); sum over the last axis only.
    return 0.5 * torch.sum(mu * mu + torch.exp(logvar) - 1.0 - logvar, dim=-1)
    ### END SOLUTION


# %%
check("elbo.kl_std_normal", kl_std_normal)

# %% [markdown]
# ## 3. KL between two full-covariance Gaussians (numpy)
#
# `kl_full_gaussians(mu0, S0, mu1, S1) -> float`: for means of shape `(k,)` and symmetric positive-definite
# covariances of shape `(k, k)`,
#
# $$\mathrm{KL}(\mathcal N(\mu_0,\Sigma_0)\|\mathcal N(\mu_1,\Sigma_1))=\tfrac12\Big[\operatorname{tr}(\Sigma_1^{-1}\Sigma_0)+(\mu_1-\mu_0)^\top\Sigma_1^{-1}(\mu_1-\mu_0)-k+\ln\det\Sigma_1-\ln\det\Sigma_0\Big].$$
#
# Checked: identical Gaussians (0), $k=1$, diagonal covariances (must equal the diagonal formula), and random
# $k=2,5,7$ with condition numbers up to $10^3$ (relative tolerance $10^{-7}$: prefer `np.linalg.solve` and
# `np.linalg.slogdet` to explicit inverses and `det`).

# %%
def kl_full_gaussians(mu0, S0, mu1, S1):
    ### BEGIN SOLUTION
    # Hint: np.linalg.solve(S1, S0) is S1^{-1} S0 without forming the inverse.
    k = len(mu0)
    diff = mu1 - mu0
    trace_term = np.trace(np.linalg.solve(S1, S0))
    mahalanobis = diff @ np.linalg.solve(S1, diff)
    logdet0 = np.linalg.slogdet(S0)[1]
    logdet1 = np.linalg.slogdet(S1)[1]
    return float(0.5 * (trace_term + mahalanobis - k + logdet1 - logdet0))
    ### END SOLUTION


# %%
check("elbo.kl_full_gaussians", kl_full_gaussians)

# %% [markdown]
# ## 4. Exact log evidence of the linear-Gaussian model (numpy)
#
# Model: $z\sim\mathcal N(0,I_k)$, $x=Wz+b+\sigma\varepsilon$ with $\varepsilon\sim\mathcal N(0,I_D)$. Then
# $p(x)=\mathcal N(x;\,b,\,C)$ with $C=WW^\top+\sigma^2I_D$, and
#
# $$\log p(x) = -\tfrac12\Big[D\log 2\pi+\log\det C+(x-b)^\top C^{-1}(x-b)\Big].$$
#
# `log_evidence_linear_gaussian(x, W, b, sigma) -> float` with `x` `(D,)`, `W` `(D, k)`, `b` `(D,)`, `sigma` a
# positive float. Checked against the reference (equal to `scipy.stats.multivariate_normal(b, C).logpdf(x)`) for
# $D\in\{1,\dots,12\}$, $k$ smaller and larger than $D$, $\sigma$ from 0.05 to 2, and an $x$ far from the data.

# %%
def log_evidence_linear_gaussian(x, W, b, sigma):
    ### BEGIN SOLUTION
    # Hint: C = W W^T + sigma^2 I; a Cholesky factor C = L L^T gives both log det C and C^{-1}(x - b).
    D = x.shape[0]
    C = W @ W.T + sigma**2 * np.eye(D)
    L = np.linalg.cholesky(C)
    r = np.linalg.solve(L, x - b)
    logdet = 2.0 * np.sum(np.log(np.diag(L)))
    return float(-0.5 * (D * np.log(2 * np.pi) + logdet + r @ r))
    ### END SOLUTION


# %%
check("elbo.log_evidence_linear_gaussian", log_evidence_linear_gaussian)

# %% [markdown]
# ## 5. The reparameterization trick (torch)
#
# `reparameterize(mu, logvar, eps) -> z` with $z=\mu+\sigma\odot\epsilon$, $\sigma=e^{\frac12\,\mathrm{logvar}}$; all three
# inputs have the same shape `(B, k)` and `eps` is the standard-normal noise to use (do not draw your own, so
# the result is deterministic given `eps`).
#
# Checked: values for several shapes and both float dtypes, `logvar` = −20 and 6, and that gradients flow:
# $\partial z/\partial\mu=1$ and $\partial z/\partial\,\mathrm{logvar}=\tfrac12\sigma\epsilon$.

# %%
def reparameterize(mu, logvar, eps):
    ### BEGIN SOLUTION
    # Hint: the standard deviation is exp(0.5 * logvar), not exp(logvar).
    std = torch.exp(0.5 * logvar)
    return mu + std * eps
    ### END SOLUTION


# %%
check("elbo.reparameterize", reparameterize)

# %% [markdown]
# ## 6. Monte-Carlo ELBO from given noise (numpy)
#
# `elbo_mc(x, mu, logvar, log_lik_fn, eps) -> float`: the variational distribution is
# $q=\mathcal N(\mu,\mathrm{diag}\,\sigma^2)$ with `mu`, `logvar` of shape `(k,)`; `eps` `(n, k)` holds $n$ standard-normal
# draws; `log_lik_fn(x, z)` takes `z` of shape `(n, k)` and returns $\log p(x|z_i)$ for each row, shape `(n,)`. The
# prior is $\mathcal N(0, I)$. Return
#
# $$\widehat{\mathrm{ELBO}}=\frac1n\sum_{i=1}^n\log p(x|z_i)\;-\;\mathrm{KL}\big(q\,\|\,\mathcal N(0,I)\big),\qquad z_i=\mu+\sigma\odot\epsilon_i,$$
#
# with the KL in closed form. (The all-Monte-Carlo estimator $\frac1n\sum_i[\log p(x|z_i)+\log p(z_i)-\log q(z_i)]$
# is also accepted.) Checked exactly for the given `eps`, with $n$ = 1, 7, 100, 500; one case puts $q$ at the exact
# posterior, where the estimate is close to $\log p(x)$.

# %%
def elbo_mc(x, mu, logvar, log_lik_fn, eps):
    ### BEGIN SOLUTION
    # Hint: z = mu + exp(0.5 * logvar) * eps broadcasts (k,) against (n, k).
    z = mu + np.exp(0.5 * logvar) * eps
    expected_log_lik = np.mean(log_lik_fn(x, z))
    kl_to_prior = 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar)
    return float(expected_log_lik - kl_to_prior)
    ### END SOLUTION


# %%
check("elbo.elbo_mc", elbo_mc)

# %% [markdown]
# ## 7. The ELBO gap in closed form (numpy)
#
# In the linear-Gaussian model of exercise 4, with a diagonal $q=\mathcal N(\mu,\mathrm{diag}\,\sigma_q^2)$, every term of
# the ELBO has a closed form:
#
# $$\mathbb E_q[\log p(x|z)] = \log\mathcal N(x;\,W\mu+b,\,\sigma^2 I)\;-\;\frac{1}{2\sigma^2}\sum_j\|W_{:,j}\|^2\,\sigma_{q,j}^2,
#   \qquad \mathrm{ELBO}=\mathbb E_q[\log p(x|z)]-\mathrm{KL}(q\|\mathcal N(0,I)).$$
#
# `elbo_gap(x, mu, logvar, W, b, sigma) -> float` returns $\log p(x)-\mathrm{ELBO}(q)$. By the identity of the lecture it
# equals $\mathrm{KL}(q\,\|\,p(z|x))\ge0$, and the check compares with that. Checked: several $(D, k)$, $q$ at the exact
# posterior (gap 0, to $10^{-8}$), $q$ equal to the prior.

# %%
def elbo_gap(x, mu, logvar, W, b, sigma):
    ### BEGIN SOLUTION
    # Hint: the second term of E_q[log p(x|z)] is the price of q's spread: E||W (z - mu)||^2 = sum_j ||W_j||^2 var_j.
    D = x.shape[0]
    C = W @ W.T + sigma**2 * np.eye(D)
    r = x - b
    log_px = -0.5 * (D * np.log(2 * np.pi) + np.linalg.slogdet(C)[1] + r @ np.linalg.solve(C, r))
    var_q = np.exp(logvar)
    resid = x - W @ mu - b
    expected_log_lik = (-0.5 * (D * np.log(2 * np.pi * sigma**2) + resid @ resid / sigma**2)
                        - np.sum(np.sum(W**2, axis=0) * var_q) / (2 * sigma**2))
    kl_to_prior = 0.5 * np.sum(mu**2 + var_q - 1.0 - logvar)
    return float(log_px - (expected_log_lik - kl_to_prior))
    ### END SOLUTION


# %%
check("elbo.elbo_gap", elbo_gap)

# %% [markdown]
# ## 8. The E-step of EM for a 1-D Gaussian mixture (numpy)
#
# `gmm_e_step(x, weights, means, variances) -> resp` with `x` `(N,)`, and `weights`, `means`, `variances` `(K,)`.
# The responsibilities are the posterior probabilities of the components,
#
# $$r_{nc}=\frac{\pi_c\,\mathcal N(x_n;\mu_c,\sigma_c^2)}{\sum_{c'}\pi_{c'}\,\mathcal N(x_n;\mu_{c'},\sigma_{c'}^2)},$$
#
# an `(N, K)` float64 array whose rows sum to 1. Checked: 1 to 50 points and 1 to 5 components, components with
# equal means and different variances, and points 1000 away from every mean — where $e^{-10^6}$ underflows to 0 and
# a direct formula returns 0/0. Work with log-densities and subtract each row's maximum before exponentiating.

# %%
def gmm_e_step(x, weights, means, variances):
    ### BEGIN SOLUTION
    # Hint: a[n, c] = log pi_c - 0.5 log(2 pi var_c) - (x_n - mu_c)^2 / (2 var_c); then a softmax over c.
    a = (np.log(weights)[None, :] - 0.5 * np.log(2 * np.pi * variances)[None, :]
         - 0.5 * (x[:, None] - means[None, :]) ** 2 / variances[None, :])
    a = a - a.max(axis=1, keepdims=True)
    r = np.exp(a)
    return r / r.sum(axis=1, keepdims=True)
    ### END SOLUTION


# %%
check("elbo.gmm_e_step", gmm_e_step)

# %% [markdown]
# ## 9. The VAE loss (torch)
#
# `vae_loss(x, decoder_out, mu, logvar, likelihood="bernoulli", beta=1.0) -> (total, recon, kl)` for a batch:
# `x` and `decoder_out` `(B, D)`, `mu` and `logvar` `(B, k)`. Each output is a 0-dim tensor, **summed over pixels
# (or latent dimensions) and averaged over the batch**:
# - `likelihood="bernoulli"`: `decoder_out` are logits $\ell$; recon $=\sum_j -[x_j\log\mathrm{sigmoid}(\ell_j)+(1-x_j)\log(1-\mathrm{sigmoid}(\ell_j))]$.
#   Compute it from the logits (`F.binary_cross_entropy_with_logits`): logits of ±60 must not give `log(0)`.
# - `likelihood="gaussian"`: `decoder_out` is the mean $\hat x$; recon $=\tfrac12\|x-\hat x\|^2$ (unit variance, constant dropped).
# - kl $=\mathrm{KL}(q(z|x)\|\mathcal N(0,I))$ per example (as in exercise 2), then averaged; total = recon + beta · kl.
#
# Checked: batches of 1 to 32, both likelihoods, beta = 0, 1, 4.5, extreme logits, and the default arguments.

# %%
def vae_loss(x, decoder_out, mu, logvar, likelihood="bernoulli", beta=1.0):
    ### BEGIN SOLUTION
    # Hint: reduction="none" keeps the per-pixel terms; sum over dim -1, then mean over the batch.
    if likelihood == "bernoulli":
        recon_per_example = F.binary_cross_entropy_with_logits(decoder_out, x, reduction="none").sum(dim=-1)
    elif likelihood == "gaussian":
        recon_per_example = 0.5 * ((x - decoder_out) ** 2).sum(dim=-1)
    else:
        raise ValueError(likelihood)
    kl_per_example = 0.5 * (mu**2 + logvar.exp() - 1.0 - logvar).sum(dim=-1)
    recon, kl = recon_per_example.mean(), kl_per_example.mean()
    return recon + beta * kl, recon, kl
    ### END SOLUTION


# %%
check("elbo.vae_loss", vae_loss)

# %% [markdown]
# ## 10. Mutual information of a joint table (numpy)
#
# `mutual_information(pxy) -> float` in nats, for a joint probability table `pxy` of shape `(n_x, n_y)` that sums
# to 1:
#
# $$I(X;Y)=\sum_{x,y}p(x,y)\log\frac{p(x,y)}{p(x)\,p(y)},\qquad p(x)=\sum_y p(x,y),\quad p(y)=\sum_x p(x,y),$$
#
# with $0\log0=0$. Checked: random tables of several shapes (not all square), independent $X$ and $Y$ (0), $Y$ a
# bijection of $X$ ($\log 5$), a single row (0), a table with zeros, and symmetry $I(X;Y)=I(Y;X)$.

# %%
def mutual_information(pxy):
    ### BEGIN SOLUTION
    # Hint: keep the marginals as a column (n_x, 1) and a row (1, n_y) so their product broadcasts to (n_x, n_y).
    px = pxy.sum(axis=1, keepdims=True)
    py = pxy.sum(axis=0, keepdims=True)
    nz = pxy > 0
    return float(np.sum(pxy[nz] * np.log(pxy[nz] / (px * py)[nz])))
    ### END SOLUTION


# %%
check("elbo.mutual_information", mutual_information)

# %% [markdown]
# ## Where next
#
# - Use your `kl_std_normal` and `reparameterize` to write a VAE training step by hand and compare it with
#   `manifold_course.generative.vae.train_vae`.
# - Chapter 3 (`03_optimization`) returns to the Fisher metric of this chapter and uses the natural gradient as an
#   optimiser.

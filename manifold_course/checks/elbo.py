"""Checks for Volume 0, chapter 2: variational inference and the ELBO (sections 0.5-0.10).

Every case is drawn at grading time from the seeded generator. Monte-Carlo exercises receive their noise
(``eps``) as an argument, so they are judged exactly, never against one random draw of the grader's own.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from manifold_course.generative.vae import vae_loss
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import compare
from manifold_course.grading.probes import gradient_judge, input_gradients
from manifold_course.probability import elbo, gmm_em, information, kl, linear_gaussian

CHAPTER = "v0_roots/02_variational_inference_elbo"


# ---------------------------------------------------------------- random inputs

def _simplex(rng: np.random.Generator, n: int, alpha: float = 1.0) -> np.ndarray:
    return rng.dirichlet(np.full(n, alpha))


def _spd(rng: np.random.Generator, k: int, cond: float = 10.0) -> np.ndarray:
    """A random symmetric positive-definite k x k matrix with condition number ``cond``."""
    Q, _ = np.linalg.qr(rng.standard_normal((k, k)))
    eig = np.geomspace(1.0, cond, k) * rng.uniform(0.5, 2.0)
    return (Q * eig) @ Q.T


def _linear_gaussian(rng: np.random.Generator, D: int, k: int, sigma: float, orthogonal: bool = False):
    """(x, W, b, sigma) with x drawn from the model x = W z + b + sigma * noise."""
    if orthogonal and k <= D:
        Q, _ = np.linalg.qr(rng.standard_normal((D, k)))
        W = Q * rng.uniform(0.5, 2.0, size=k)                 # orthogonal columns: diagonal exact posterior
    else:
        W = rng.standard_normal((D, k))
    b = rng.standard_normal(D)
    x = W @ rng.standard_normal(k) + b + sigma * rng.standard_normal(D)
    return x, W, b, sigma


def _make_log_lik(W: np.ndarray, b: np.ndarray, sigma: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def log_lik_fn(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """log N(x; W z + b, sigma^2 I) for each row of z (n, k): returns (n,)."""
        return linear_gaussian.log_likelihood_linear_gaussian(x, z, W, b, sigma)

    return log_lik_fn


# ---------------------------------------------------------------- 1. categorical KL

def _kl_categorical_cases(rng: np.random.Generator):
    for n in (2, 3, 7, 10):
        yield Case((_simplex(rng, n), _simplex(rng, n)), label=f"{n} categories")
    p = _simplex(rng, 5)
    yield Case((p, p.copy()), label="p == q: KL is 0", atol=1e-12)
    p = np.array([0.5, 0.0, 0.3, 0.2])
    yield Case((p, _simplex(rng, 4)), label="p has a zero: 0 log 0 = 0")
    q = np.array([0.6, 0.4, 0.0])
    yield Case((_simplex(rng, 3), q), label="q is zero where p > 0: KL = +inf")
    yield Case((np.array([0.7, 0.3, 0.0]), np.array([0.2, 0.8, 0.0])), label="zero in both p and q")
    yield Case((np.array([1.0 - 1e-12, 1e-12]), np.array([1e-300, 1.0 - 1e-300])), label="extreme q = 1e-300",
               rtol=1e-9)


# ---------------------------------------------------------------- 2. KL to the standard normal

def _kl_std_normal_cases(rng: np.random.Generator):
    yield Case((torch.zeros(1, 1), torch.zeros(1, 1)), label="mu = 0, logvar = 0: KL is 0")
    yield Case((torch.ones(1, 1), torch.zeros(1, 1)), label="mu = 1, logvar = 0: KL is 0.5")
    for B, k, dtype in ((1, 3, torch.float32), (5, 2, torch.float64), (13, 7, torch.float32), (3, 64, torch.float64)):
        mu = torch.as_tensor(rng.standard_normal((B, k)), dtype=dtype)
        logvar = torch.as_tensor(rng.uniform(-3, 3, (B, k)), dtype=dtype)
        yield Case((mu, logvar), label=f"batch {B}, {k} latent dims, {dtype}")
    logvar = torch.tensor([[-12.0, 12.0, 0.0]])
    yield Case((torch.zeros(1, 3), logvar), label="extreme logvar = -12 and +12", rtol=1e-5)


# ---------------------------------------------------------------- 3. KL between full Gaussians

def _kl_full_cases(rng: np.random.Generator):
    mu, S = rng.standard_normal(3), _spd(rng, 3)
    yield Case((mu, S, mu.copy(), S.copy()), label="identical Gaussians: KL is 0", atol=1e-10)
    yield Case((np.array([0.3]), np.array([[0.5]]), np.array([-1.0]), np.array([[2.0]])), label="k = 1")
    d0, d1 = rng.uniform(0.2, 3, 4), rng.uniform(0.2, 3, 4)
    yield Case((rng.standard_normal(4), np.diag(d0), rng.standard_normal(4), np.diag(d1)),
               label="diagonal covariances: the diagonal formula")
    for k, cond in ((2, 3.0), (5, 30.0), (7, 1e3)):
        yield Case((rng.standard_normal(k), _spd(rng, k, cond), rng.standard_normal(k), _spd(rng, k, cond)),
                   label=f"k = {k}, condition number {cond:g}")


# ---------------------------------------------------------------- 4. exact log evidence

def _log_evidence_cases(rng: np.random.Generator):
    for D, k, sigma in ((1, 1, 0.5), (3, 2, 1.0), (7, 3, 0.3), (5, 1, 2.0), (2, 5, 0.7), (12, 4, 0.05)):
        yield Case(_linear_gaussian(rng, D, k, sigma), label=f"D = {D}, k = {k}, sigma = {sigma}")
    x, W, b, sigma = _linear_gaussian(rng, 4, 2, 0.5)
    yield Case((x + 30.0, W, b, sigma), label="x far from the model's mass")


# ---------------------------------------------------------------- 5. reparameterization

def _reparam_cases(rng: np.random.Generator):
    for B, k, dtype in ((1, 1, torch.float32), (4, 2, torch.float64), (9, 3, torch.float32), (2, 5, torch.float64)):
        mu = torch.as_tensor(rng.standard_normal((B, k)), dtype=dtype)
        logvar = torch.as_tensor(rng.uniform(-2, 2, (B, k)), dtype=dtype)
        eps = torch.as_tensor(rng.standard_normal((B, k)), dtype=dtype)
        yield Case((mu, logvar, eps), label=f"batch {B}, {k} latent dims, {dtype}")
    yield Case((torch.tensor([[1.5, -2.0]]), torch.tensor([[-20.0, 6.0]]), torch.tensor([[3.0, -1.0]])),
               label="extreme logvar = -20 and 6")


# ---------------------------------------------------------------- 6. Monte-Carlo ELBO

def _elbo_mc_cases(rng: np.random.Generator):
    for D, k, n, sigma in ((3, 1, 1, 0.5), (5, 2, 7, 1.0), (6, 3, 100, 0.4)):
        x, W, b, sigma = _linear_gaussian(rng, D, k, sigma)
        mu, logvar = rng.standard_normal(k), rng.uniform(-2, 1, k)
        yield Case((x, mu, logvar, _make_log_lik(W, b, sigma), rng.standard_normal((n, k))),
                   label=f"D = {D}, k = {k}, n = {n} samples")
    x, W, b, sigma = _linear_gaussian(rng, 5, 2, 0.5, orthogonal=True)
    m, S = linear_gaussian.posterior_linear_gaussian(x, W, b, sigma)
    yield Case((x, m, np.log(np.diag(S)), _make_log_lik(W, b, sigma), rng.standard_normal((500, 2))),
               label="q = exact posterior: the estimate is close to log p(x)")


def _elbo_mc_judge(got: Any, expected: float, case: Case) -> str | None:
    """Accept the estimator with the closed-form KL (the reference) or the all-Monte-Carlo one."""
    first = compare(got, expected, rtol=1e-7, atol=1e-7)
    if first is None:
        return None
    x, mu, logvar, log_lik_fn, eps = case.args
    z = mu + np.exp(0.5 * logvar) * eps
    log_prior = -0.5 * (z**2 + np.log(2 * np.pi)).sum(-1)
    log_q = -0.5 * (eps**2 + logvar + np.log(2 * np.pi)).sum(-1)
    all_mc = float(np.mean(log_lik_fn(x, z) + log_prior - log_q))
    if compare(got, all_mc, rtol=1e-7, atol=1e-7) is None:
        return None
    return first + "; the estimate is the mean of log p(x|z_i) over the samples minus the closed-form KL(q || N(0, I))"


# ---------------------------------------------------------------- 7. ELBO gap

def _elbo_gap_cases(rng: np.random.Generator):
    for D, k, sigma in ((1, 1, 0.5), (4, 2, 1.0), (7, 3, 0.3), (3, 5, 0.8)):
        x, W, b, sigma = _linear_gaussian(rng, D, k, sigma)
        yield Case((x, rng.standard_normal(k), rng.uniform(-3, 1, k), W, b, sigma), label=f"D = {D}, k = {k}")
    x, W, b, sigma = _linear_gaussian(rng, 6, 3, 0.5, orthogonal=True)
    m, S = linear_gaussian.posterior_linear_gaussian(x, W, b, sigma)
    yield Case((x, m, np.log(np.diag(S)), W, b, sigma), label="q = exact posterior: the gap is 0", atol=1e-8)
    x, W, b, sigma = _linear_gaussian(rng, 4, 2, 0.5)
    yield Case((x, np.zeros(2), np.zeros(2), W, b, sigma), label="q = the prior N(0, I)")


# ---------------------------------------------------------------- 8. GMM E-step

def _gmm_e_step_reference(x: np.ndarray, weights: np.ndarray, means: np.ndarray, variances: np.ndarray) -> np.ndarray:
    params = gmm_em.GMMParams(np.asarray(weights, float), np.asarray(means, float)[:, None],
                              np.asarray(variances, float)[:, None, None])
    return gmm_em.e_step(np.asarray(x, float)[:, None], params)[0]


def _gmm_cases(rng: np.random.Generator):
    for N, K in ((1, 2), (7, 3), (50, 5), (6, 1)):
        x = rng.normal(0, 3, N)
        yield Case((x, _simplex(rng, K) * 0.9 + 0.1 / K, rng.normal(0, 3, K), rng.uniform(0.2, 4.0, K)),
                   label=f"{N} points, {K} components")
    x = np.array([-1000.0, 0.0, 1000.0])
    yield Case((x, np.array([0.3, 0.7]), np.array([-1.0, 2.0]), np.array([0.5, 0.1])),
               label="points 1000 away: exp underflows unless you work in logs")
    yield Case((np.array([0.0, 0.5]), np.array([0.5, 0.5]), np.array([0.0, 0.0]), np.array([0.1, 10.0])),
               label="same means, different variances")


# ---------------------------------------------------------------- 9. VAE loss

def _vae_loss_cases(rng: np.random.Generator):
    for B, D, k, lik, beta in ((1, 64, 2, "bernoulli", 1.0), (7, 5, 3, "gaussian", 1.0),
                               (32, 64, 2, "bernoulli", 0.0), (9, 13, 2, "gaussian", 4.5)):
        x = torch.as_tensor(rng.uniform(0, 1, (B, D)), dtype=torch.float32)
        out = torch.as_tensor(rng.normal(0, 2, (B, D)), dtype=torch.float32)
        mu = torch.as_tensor(rng.standard_normal((B, k)), dtype=torch.float32)
        logvar = torch.as_tensor(rng.uniform(-3, 1, (B, k)), dtype=torch.float32)
        yield Case((x, out, mu, logvar), {"likelihood": lik, "beta": beta}, label=f"batch {B}, D = {D}, {lik}, beta = {beta}")
    x = torch.tensor([[0.0, 1.0, 0.25, 1.0]])
    logits = torch.tensor([[60.0, -60.0, 0.0, 30.0]])
    yield Case((x, logits, torch.zeros(1, 2), torch.zeros(1, 2)), {"likelihood": "bernoulli", "beta": 1.0},
               label="extreme logits +-60: use the logits directly, not sigmoid then log")
    x = torch.as_tensor(rng.uniform(0, 1, (3, 6)), dtype=torch.float32)
    yield Case((x, torch.zeros(3, 6), torch.zeros(3, 2), torch.zeros(3, 2)), label="default arguments (bernoulli, beta = 1)")


# ---------------------------------------------------------------- 10. mutual information

def _mi_cases(rng: np.random.Generator):
    for shape in ((2, 2), (3, 5), (8, 2), (7, 3)):
        yield Case((rng.dirichlet(np.ones(shape[0] * shape[1])).reshape(shape),), label=f"random {shape[0]}x{shape[1]} table")
    yield Case((np.outer(_simplex(rng, 3), _simplex(rng, 4)),), label="independent X and Y: I = 0", atol=1e-12)
    yield Case((np.eye(5)[rng.permutation(5)] / 5,), label="Y a bijection of X: I = H(X) = log 5")
    yield Case((_simplex(rng, 4)[None, :],), label="a single x value: I = 0", atol=1e-12)
    table = np.array([[0.25, 0.0, 0.1], [0.0, 0.4, 0.0], [0.05, 0.0, 0.2]])
    yield Case((table,), label="a table with zeros: 0 log 0 = 0")


def _mi_symmetric(fn: Callable[..., Any]) -> str | None:
    pxy = np.random.default_rng(7).dirichlet(np.ones(12)).reshape(3, 4)
    a, b = fn(pxy), fn(pxy.T.copy())
    if not np.isclose(float(a), float(b), rtol=1e-9, atol=1e-12):
        return f"I(X;Y) must equal I(Y;X): got {float(a):.6g} for the table and {float(b):.6g} for its transpose"
    return None


EXERCISES = [
    Exercise("elbo.kl_categorical", "KL divergence between two categorical distributions",
             cases=_kl_categorical_cases, reference=kl.kl_categorical, rtol=1e-8, atol=1e-10),
    Exercise("elbo.kl_std_normal", "Closed-form KL of a diagonal Gaussian to N(0, I)",
             cases=_kl_std_normal_cases, reference=kl.kl_std_normal,       # a VAE trains through it: gradients too
             adapter=input_gradients({0: "mu", 1: "logvar"}), judge=gradient_judge(1e-5, 1e-6)),
    Exercise("elbo.kl_full_gaussians", "KL between two full-covariance Gaussians",
             cases=_kl_full_cases, reference=kl.kl_full_gaussians, rtol=1e-7, atol=1e-9),
    Exercise("elbo.log_evidence_linear_gaussian", "Exact log evidence of the linear-Gaussian model",
             cases=_log_evidence_cases, reference=linear_gaussian.log_evidence_linear_gaussian, rtol=1e-8, atol=1e-8),
    Exercise("elbo.reparameterize", "The reparameterization trick",
             cases=_reparam_cases, reference=elbo.reparameterize,          # z must carry the gradient to mu, logvar
             adapter=input_gradients({0: "mu", 1: "logvar"}), judge=gradient_judge(1e-6, 1e-7)),
    Exercise("elbo.elbo_mc", "Monte-Carlo ELBO from given noise",
             cases=_elbo_mc_cases, reference=elbo.elbo_mc, judge=_elbo_mc_judge),
    Exercise("elbo.elbo_gap", "The ELBO gap in closed form",
             cases=_elbo_gap_cases, reference=elbo.elbo_gap, rtol=1e-7, atol=1e-8),
    Exercise("elbo.gmm_e_step", "E-step of EM for a 1-D Gaussian mixture",
             cases=_gmm_cases, reference=_gmm_e_step_reference, rtol=1e-7, atol=1e-10),
    Exercise("elbo.vae_loss", "The VAE loss: reconstruction + beta * KL",
             cases=_vae_loss_cases, reference=vae_loss, rtol=1e-5, atol=1e-5),
    Exercise("elbo.mutual_information", "Mutual information of a joint table",
             cases=_mi_cases, reference=information.mutual_information, properties=[_mi_symmetric],
             rtol=1e-8, atol=1e-10),
]

import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy.stats import multivariate_normal
from torch.distributions import Normal, kl_divergence
from torch.testing import assert_close

from manifold_course.generative.vae import VAE, TrainConfig, VAEConfig, aggregate_posterior_kl, train_vae, vae_loss
from manifold_course.grading import run_exercise
from manifold_course.grading.registry import get_exercise
from manifold_course.probability import elbo, fisher, gmm_em, information, kl, linear_gaussian


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _model(rng, D, k, sigma, orthogonal=False):
    if orthogonal:
        Q, _ = np.linalg.qr(rng.standard_normal((D, k)))
        W = Q * rng.uniform(0.5, 2.0, k)
    else:
        W = rng.standard_normal((D, k))
    b = rng.standard_normal(D)
    x = W @ rng.standard_normal(k) + b + sigma * rng.standard_normal(D)
    return x, W, b


# ---- kl.py

def test_kl_categorical_known_values():
    assert kl.kl_categorical([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert math.isclose(kl.kl_categorical([1.0, 0.0], [0.5, 0.5]), math.log(2))
    assert kl.kl_categorical([0.5, 0.5], [1.0, 0.0]) == math.inf


def test_kl_categorical_is_asymmetric_and_nonnegative(rng):
    for n in (2, 3, 7):
        p, q = rng.dirichlet(np.ones(n)), rng.dirichlet(np.ones(n))
        assert kl.kl_categorical(p, q) > 0
        assert not math.isclose(kl.kl_categorical(p, q), kl.kl_categorical(q, p))


@pytest.mark.parametrize("B,k", [(1, 1), (5, 2), (13, 7)])
def test_kl_std_normal_matches_torch_distributions(B, k):
    g = torch.Generator().manual_seed(B * k)
    mu, logvar = torch.randn(B, k, generator=g), torch.randn(B, k, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)
    assert_close(kl.kl_std_normal(mu, logvar), expected)


def test_kl_std_normal_seed_values():
    assert float(kl.kl_std_normal(torch.zeros(1, 1), torch.zeros(1, 1))) == 0.0
    assert math.isclose(float(kl.kl_std_normal(torch.ones(1, 1), torch.zeros(1, 1))), 0.5)


def test_kl_diag_gaussians_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mq, lq, mp, lp = (torch.randn(4, 3, generator=g) for _ in range(4))
    expected = kl_divergence(Normal(mq, (0.5 * lq).exp()), Normal(mp, (0.5 * lp).exp())).sum(-1)
    assert_close(kl.kl_diag_gaussians(mq, lq, mp, lp), expected)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_kl_full_gaussians_reduces_to_diagonal_formula(rng, k):
    m0, m1 = rng.standard_normal(k), rng.standard_normal(k)
    l0, l1 = rng.uniform(-1, 1, k), rng.uniform(-1, 1, k)
    full = kl.kl_full_gaussians(m0, np.diag(np.exp(l0)), m1, np.diag(np.exp(l1)))
    diag = kl.kl_diag_gaussians(*(torch.as_tensor(a) for a in (m0, l0, m1, l1)))
    assert math.isclose(full, float(diag), rel_tol=1e-10)


def test_kl_full_gaussians_agrees_with_monte_carlo(rng):
    k = 3
    A = rng.standard_normal((k, k))
    S0, S1 = A @ A.T + np.eye(k), np.eye(k) * 2.0
    m0, m1 = rng.standard_normal(k), np.zeros(k)
    z = rng.multivariate_normal(m0, S0, size=200_000)
    est, se = kl.kl_monte_carlo(z, multivariate_normal(m0, S0).logpdf, multivariate_normal(m1, S1).logpdf)
    assert abs(est - kl.kl_full_gaussians(m0, S0, m1, S1)) < 4 * se


def test_kl_mc_std_normal_is_unbiased():
    mu, logvar = np.array([0.5, -1.0]), np.array([0.3, -0.7])
    exact = float(kl.kl_std_normal(torch.as_tensor(mu), torch.as_tensor(logvar)))
    ests = np.array([kl.kl_mc_std_normal(mu, logvar, 200, s)[0] for s in range(50)])
    assert abs(ests.mean() - exact) < 3 * ests.std(ddof=1) / np.sqrt(50)


def test_fit_gaussian_kl_forward_covers_and_reverse_seeks_a_mode():
    grid = np.linspace(-12, 12, 3001)
    logp = np.logaddexp(np.log(0.4) - 0.5 * (grid + 3.5) ** 2, np.log(0.6) - 0.5 * (grid - 3.5) ** 2)
    mu_f, sd_f = kl.fit_gaussian_kl(logp, grid, "forward")
    mu_r, sd_r = kl.fit_gaussian_kl(logp, grid, "reverse")
    assert abs(mu_f - 0.2 * 3.5) < 0.01 and sd_f > 3.0          # mixture mean 0.6 * 3.5 - 0.4 * 3.5
    assert abs(mu_r - 3.5) < 0.1 and abs(sd_r - 1.0) < 0.1       # the heavier mode


def test_reverse_kl_prefers_a_broad_fit_when_modes_overlap():
    grid = np.linspace(-12, 12, 3001)
    logp = np.logaddexp(np.log(0.5) - 0.5 * (grid + 2.0) ** 2, np.log(0.5) - 0.5 * (grid - 2.0) ** 2)
    mu_r, sd_r = kl.fit_gaussian_kl(logp, grid, "reverse")
    assert abs(mu_r) < 1e-3 and sd_r > 1.5


# ---- linear_gaussian.py

@pytest.mark.parametrize("D,k", [(1, 1), (3, 2), (7, 3), (2, 5)])
def test_log_evidence_matches_scipy(rng, D, k):
    x, W, b = _model(rng, D, k, 0.5)
    expected = multivariate_normal(b, W @ W.T + 0.25 * np.eye(D)).logpdf(x)
    assert math.isclose(linear_gaussian.log_evidence_linear_gaussian(x, W, b, 0.5), expected, rel_tol=1e-10)


def test_posterior_is_bayes_rule(rng):
    x, W, b = _model(rng, 5, 2, 0.7)
    m, S = linear_gaussian.posterior_linear_gaussian(x, W, b, 0.7)
    assert_allclose(S, S.T)
    assert np.all(np.linalg.eigvalsh(S) > 0)
    z = rng.standard_normal((4, 2))
    log_post = multivariate_normal(m, S).logpdf(z)
    bayes = (linear_gaussian.log_likelihood_linear_gaussian(x, z, W, b, 0.7) + multivariate_normal(np.zeros(2)).logpdf(z)
             - linear_gaussian.log_evidence_linear_gaussian(x, W, b, 0.7))
    assert_allclose(log_post, bayes, rtol=1e-10)


def test_expected_log_likelihood_matches_monte_carlo(rng):
    x, W, b = _model(rng, 4, 2, 0.5)
    mu, logvar = np.array([0.3, -0.2]), np.array([-1.0, 0.5])
    z = mu + np.exp(0.5 * logvar) * rng.standard_normal((400_000, 2))
    mc = linear_gaussian.log_likelihood_linear_gaussian(x, z, W, b, 0.5)
    exact = linear_gaussian.expected_log_likelihood_linear_gaussian(x, mu, logvar, W, b, 0.5)
    assert abs(mc.mean() - exact) < 4 * mc.std() / np.sqrt(len(mc))


# ---- elbo.py

def test_elbo_gap_equals_kl_to_posterior(rng):
    x, W, b = _model(rng, 6, 3, 0.4)
    m, S = linear_gaussian.posterior_linear_gaussian(x, W, b, 0.4)
    for _ in range(5):
        mu, logvar = rng.standard_normal(3), rng.uniform(-3, 1, 3)
        gap = elbo.elbo_gap(x, mu, logvar, W, b, 0.4)
        assert math.isclose(gap, kl.kl_full_gaussians(mu, np.diag(np.exp(logvar)), m, S), rel_tol=1e-9, abs_tol=1e-10)


def test_elbo_touches_log_evidence_at_diagonal_exact_posterior(rng):
    x, W, b = _model(rng, 6, 3, 0.4, orthogonal=True)
    m, S = linear_gaussian.posterior_linear_gaussian(x, W, b, 0.4)
    assert_allclose(S, np.diag(np.diag(S)), atol=1e-12)
    assert abs(elbo.elbo_gap(x, m, np.log(np.diag(S)), W, b, 0.4)) < 1e-10


def test_best_diagonal_gap_is_positive_for_correlated_posterior(rng):
    x, W, b = _model(rng, 6, 3, 0.4)
    m, S = linear_gaussian.posterior_linear_gaussian(x, W, b, 0.4)
    gap = elbo.best_diagonal_gap(S)
    assert gap > 0
    assert math.isclose(gap, elbo.elbo_gap(x, m, -np.log(np.diag(np.linalg.inv(S))), W, b, 0.4), rel_tol=1e-8)


def test_elbo_mc_is_unbiased_for_the_exact_elbo(rng):
    x, W, b = _model(rng, 5, 2, 0.5)
    mu, logvar = np.array([0.2, -0.4]), np.array([-1.0, -0.5])
    f = lambda x_, z: linear_gaussian.log_likelihood_linear_gaussian(x_, z, W, b, 0.5)
    ests = np.array([elbo.elbo_mc(x, mu, logvar, f, rng.standard_normal((100, 2))) for _ in range(200)])
    exact = elbo.elbo_linear_gaussian(x, mu, logvar, W, b, 0.5)
    assert abs(ests.mean() - exact) < 4 * ests.std(ddof=1) / np.sqrt(len(ests))


def test_mc_log_evidence_converges_and_importance_sampling_is_exact(rng):
    x, W, b = _model(rng, 5, 2, 1.0)
    exact = linear_gaussian.log_evidence_linear_gaussian(x, W, b, 1.0)
    f = lambda x_, z: linear_gaussian.log_likelihood_linear_gaussian(x_, z, W, b, 1.0)
    naive = elbo.mc_log_evidence(x, f, lambda n, r: r.standard_normal((n, 2)), 100_000, 0)
    assert abs(naive - exact) < 0.05
    m, S = linear_gaussian.posterior_linear_gaussian(x, W, b, 1.0)
    assert abs(elbo.importance_log_evidence(x, f, m, S, 10, 0) - exact) < 1e-10


def test_log_mean_exp_does_not_overflow():
    assert math.isclose(elbo.log_mean_exp(np.array([1000.0, 1000.0])), 1000.0)
    assert math.isclose(elbo.log_mean_exp(np.array([-1000.0, -1000.0 + math.log(3)])), -1000.0 + math.log(2))


def test_reparameterize_gradients():
    mu = torch.tensor([0.5, -1.0], requires_grad=True)
    logvar = torch.tensor([0.2, -0.4], requires_grad=True)
    eps = torch.tensor([1.5, -0.5])
    elbo.reparameterize(mu, logvar, eps).sum().backward()
    assert_close(mu.grad, torch.ones(2))
    assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_reparam_and_score_function_gradients_agree_in_mean_and_reparam_has_lower_variance():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.tensor([0.5, -0.3], dtype=torch.float64), torch.tensor([-1.0, 0.2], dtype=torch.float64)
    target = torch.tensor([1.0, 2.0], dtype=torch.float64)
    f = lambda z: -0.5 * ((z - target) ** 2).sum(-1)
    eps = torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    r = elbo.reparam_grad_samples(f, mu, logvar, eps)
    s = elbo.score_function_grad_samples(f, mu, logvar, eps, baseline=True)
    exact = torch.cat([target - mu, -0.5 * logvar.exp()])                 # d/dtheta of -0.5 E||z - t||^2
    assert_close(r.mean(0), exact, atol=0.02, rtol=0)
    assert_close(s.mean(0), exact, atol=0.05, rtol=0)
    assert r.var(0).sum() * 5 < s.var(0).sum()


# ---- gmm_em.py

@pytest.mark.parametrize("D,K", [(1, 3), (2, 2)])
def test_em_elbo_never_decreases_and_matches_loglik_after_e_step(rng, D, K):
    X = np.concatenate([rng.normal(c, 0.7, (150, D)) for c in (-3.0, 0.0, 3.0)[:K]] + [rng.normal(5, 1, (7, D))])
    params, trace, loglik = gmm_em.em_gmm(X, K, iters=30, seed=1)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[:-1]))
    assert np.all(np.diff(loglik) >= -1e-9 * np.abs(loglik[:-1]))
    assert math.isclose(trace[-2], loglik[-2], rel_tol=1e-12)  # after an E-step the bound is tight
    resp, ll = gmm_em.e_step(X, params)
    assert math.isclose(gmm_em.gmm_elbo(X, resp, params), ll, rel_tol=1e-12)


def test_e_step_matches_sklearn_predict_proba(rng):
    from sklearn.mixture import GaussianMixture

    X = np.concatenate([rng.normal(-2, 1, (100, 2)), rng.normal(2, 0.5, (60, 2))])
    gm = GaussianMixture(2, random_state=0).fit(X)
    params = gmm_em.GMMParams(gm.weights_, gm.means_, gm.covariances_)
    assert_allclose(gmm_em.e_step(X, params)[0], gm.predict_proba(X), atol=1e-8)


# ---- information.py

def test_entropy_and_mutual_information_known_values(rng):
    assert math.isclose(information.entropy(np.full(8, 1 / 8)), math.log(8))
    assert abs(information.mutual_information(np.outer(rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(4))))) < 1e-12
    assert math.isclose(information.mutual_information(np.eye(5)[rng.permutation(5)] / 5), math.log(5))


def test_mutual_information_equals_entropy_difference(rng):
    pxy = rng.dirichlet(np.ones(15)).reshape(3, 5)
    h_y_given_x = information.entropy(pxy) - information.entropy(pxy.sum(1))
    assert math.isclose(information.mutual_information(pxy), information.entropy(pxy.sum(0)) - h_y_given_x, rel_tol=1e-10)


def _ib_table():
    p_y1 = np.array([0.05, 0.15, 0.3, 0.45, 0.55, 0.7, 0.85, 0.95])
    return np.stack([(1 - p_y1) / 8, p_y1 / 8], axis=1)


@pytest.mark.parametrize("beta", [0.5, 5.0, 50.0])
def test_ib_objective_never_increases_and_respects_bounds(beta):
    pxy = _ib_table()
    pzx, trace = information.ib_solve(pxy, 4, beta, iters=200, seed=0)
    assert_allclose(pzx.sum(1), 1.0)
    assert np.all(np.diff(trace) <= 1e-10)
    i_xz, i_zy, _ = information.ib_objective(pxy, pzx, beta)
    assert i_zy <= information.mutual_information(pxy) + 1e-12
    assert i_xz <= information.entropy(pxy.sum(1)) + 1e-12


def test_ib_curve_is_nondecreasing_in_beta():
    i_xz, i_zy = information.ib_curve(_ib_table(), np.geomspace(0.5, 100, 25), 8, iters=150)
    assert np.all(np.diff(i_zy) >= -1e-6)


def test_prequential_code_beats_uniform_code():
    from manifold_course.data import digits

    X, y = digits()
    X, y = X.numpy()[:600], y.numpy()[:600]
    bits = information.prequential_code_length(X, y, [20, 50, 100, 200, 400, 600], 10)
    assert bits.sum() < 0.5 * 600 * math.log2(10)


# ---- fisher.py

@pytest.mark.parametrize("param", ["sigma", "logsigma"])
def test_fisher_monte_carlo_matches_closed_form(param):
    F = fisher.fisher_gaussian(0.3, 0.7, param)
    Fmc = fisher.fisher_gaussian_mc(0.3, 0.7, param, n=400_000, seed=0)
    assert_allclose(torch.diag(Fmc).numpy(), torch.diag(F).numpy(), rtol=0.03)


@pytest.mark.parametrize("param", ["sigma", "logsigma"])
def test_score_has_zero_mean_and_fisher_as_covariance(param):
    x = 0.3 + 0.7 * torch.randn(400_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = fisher.score_gaussian(x, 0.3, 0.7, param)
    assert_allclose(s.mean(0).numpy(), [0.0, 0.0], atol=0.01)
    assert_allclose(torch.cov(s.T).numpy(), fisher.fisher_gaussian(0.3, 0.7, param).numpy(), rtol=0.03, atol=0.02)


@pytest.mark.parametrize("mu,sigma", [(0.0, 0.3), (2.0, 1.6)])
def test_fisher_ellipse_is_the_small_kl_ball(mu, sigma):
    pts = fisher.fisher_ellipse(mu, sigma, 1e-4, n=50)
    F = fisher.fisher_gaussian(mu, sigma)
    d = pts - torch.tensor([mu, sigma], dtype=torch.float64)
    assert_allclose(0.5 * torch.einsum("ni,ij,nj->n", d, F, d).numpy(), 1e-4, rtol=1e-10)
    exact = np.array([fisher.kl_gaussians_1d(mu, sigma, float(a), float(b)) for a, b in pts])
    assert np.abs(exact / 1e-4 - 1).max() < 0.02


def test_fisher_gaussian_keeps_its_public_signature():
    assert_allclose(fisher.fisher_gaussian(0.0, 2.0).numpy(), np.diag([0.25, 0.5]))
    assert math.isclose(fisher.kl_gaussians_1d(0.0, 1.0, 1.0, 1.0), 0.5)


# ---- vae.py

def test_vae_loss_bernoulli_matches_manual_formula():
    x = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    mu, logvar = torch.randn(3, 2), torch.randn(3, 2)
    total, recon, kl_term = vae_loss(x, logits, mu, logvar, "bernoulli", beta=2.0)
    p = torch.sigmoid(logits)
    manual = -(x * p.log() + (1 - x) * (1 - p).log()).sum(-1).mean()
    assert_close(recon, manual)
    assert_close(total, recon + 2.0 * kl_term)


def test_vae_forward_shapes():
    model = VAE(VAEConfig(in_dim=10, hidden=16, latent=3))
    out, mu, logvar = model(torch.rand(7, 10))
    assert out.shape == (7, 10) and mu.shape == (7, 3) and logvar.shape == (7, 3)


def test_vae_training_pulls_aggregate_posterior_to_prior():
    g = torch.Generator().manual_seed(0)
    X = (torch.rand(256, 16, generator=g) < torch.rand(1, 16, generator=g)).float()
    cfg = VAEConfig(in_dim=16, hidden=32, latent=2)
    vae, hist = train_vae(X, cfg, TrainConfig(epochs=40, beta=1.0))
    ae, _ = train_vae(X, cfg, TrainConfig(epochs=40, beta=0.0))
    assert hist[-1] < hist[0]
    assert aggregate_posterior_kl(vae, X) < aggregate_posterior_kl(ae, X)


# ---- checks

def test_elbo_mc_check_accepts_the_all_monte_carlo_estimator():
    def elbo_all_mc(x, mu, logvar, log_lik_fn, eps):
        z = mu + np.exp(0.5 * logvar) * eps
        log_prior = -0.5 * (z**2 + np.log(2 * np.pi)).sum(-1)
        log_q = -0.5 * (eps**2 + logvar + np.log(2 * np.pi)).sum(-1)
        return float(np.mean(log_lik_fn(x, z) + log_prior - log_q))

    assert run_exercise(get_exercise("elbo.elbo_mc"), elbo_all_mc).passed

"""The Gaussian-mixture oracles of Volume 3 (manifold_course.generative.mixtures): scores, noised marginals, the
flow-matching velocity and the sample distances, each checked against an independent computation."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from manifold_course.generative.mixtures import (GaussianMixture, eight_gaussians, energy_distance, sliced_wasserstein,
                                                 wasserstein_1d)


def _mixture(seed: int, K: int = 3, D: int = 2) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(K, D, D, generator=g, dtype=torch.float64)
    covs = A @ A.transpose(1, 2) * 0.3 + 0.05 * torch.eye(D, dtype=torch.float64)
    w = torch.rand(K, generator=g, dtype=torch.float64) + 0.2
    return GaussianMixture(w / w.sum(), 2 * torch.randn(K, D, generator=g, dtype=torch.float64), covs)


@pytest.mark.parametrize("seed", [0, 1])
def test_score_is_the_gradient_of_log_prob(seed):
    gm = _mixture(seed, K=4, D=3)
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64).requires_grad_(True)
    (grad,) = torch.autograd.grad(gm.log_prob(x).sum(), x)
    torch.testing.assert_close(gm.score(x.detach()), grad, rtol=1e-9, atol=1e-10)


def test_log_prob_of_one_component_is_the_gaussian_density():
    mean, cov = torch.tensor([[0.5, -1.0]], dtype=torch.float64), torch.tensor([[[2.0, 0.3], [0.3, 0.5]]], dtype=torch.float64)
    gm = GaussianMixture(torch.ones(1, dtype=torch.float64), mean, cov)
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    want = torch.distributions.MultivariateNormal(mean[0], cov[0]).log_prob(x)
    torch.testing.assert_close(gm.log_prob(x), want)


def test_the_noised_marginal_matches_noising_samples():
    """x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps by Monte Carlo against the closed-form mixture's mean and covariance."""
    gm, ab, n = _mixture(3), 0.4, 200_000
    g = torch.Generator().manual_seed(4)
    xt = math.sqrt(ab) * gm.sample(n, g) + math.sqrt(1 - ab) * torch.randn(n, 2, generator=g, dtype=torch.float64)
    pt = gm.noised(ab)
    se = (pt.cov().diagonal() / n).sqrt()                                 # standard error of the sample mean
    assert ((xt.mean(0) - pt.mean()).abs() < 6 * se).all()
    torch.testing.assert_close(torch.cov(xt.T), pt.cov(), rtol=0.03, atol=0.03)
    assert energy_distance(xt[:2000], pt.sample(2000, g)) < 0.02


def test_eps_oracle_is_the_posterior_mean_of_the_noise():
    """For one Gaussian the posterior mean of eps given x_t is linear and known: compare."""
    mu, s2, ab = torch.tensor([[1.0, -2.0]], dtype=torch.float64), 0.25, 0.3
    gm = GaussianMixture(torch.ones(1, dtype=torch.float64), mu, s2 * torch.eye(2, dtype=torch.float64)[None])
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    var = ab * s2 + (1 - ab)
    want = math.sqrt(1 - ab) * (x - math.sqrt(ab) * mu) / var            # Cov(eps, x_t) / Var(x_t) (x_t - E x_t)
    torch.testing.assert_close(gm.eps_oracle(x, ab), want)


def test_fm_velocity_at_the_ends_and_its_flow_transports_noise_to_the_data():
    gm = eight_gaussians()
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(gm.fm_velocity(x, 1.0), x - gm.mean())    # at noise: E[x_1 - x_0 | x_1] = x_1 - E x_0
    torch.testing.assert_close(gm.fm_velocity(x, 0.0), -x)               # at data: E[x_1] - x_0 = -x_0
    # Heun integration of dx/dt = v from t = 1 (N(0, I)) to t = 0 lands on the mixture
    g = torch.Generator().manual_seed(5)
    z = torch.randn(1500, 2, generator=g, dtype=torch.float64)
    ts = torch.linspace(1.0, 1e-4, 201, dtype=torch.float64)
    for t0, t1 in zip(ts[:-1].tolist(), ts[1:].tolist()):
        dt = t1 - t0
        v0 = gm.fm_velocity(z, t0)
        z_pred = z + dt * v0
        z = z + dt * 0.5 * (v0 + gm.fm_velocity(z_pred, t1))
    transported = energy_distance(z, gm.sample(1500, g))
    untouched = energy_distance(torch.randn(1500, 2, generator=g, dtype=torch.float64), gm.sample(1500, g))
    assert transported < 0.02 and untouched > 0.15          # the noise itself is far from the data (about 0.23)


def test_distances_agree_with_scipy_and_separate_laws():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 500), rng.normal(0.7, 1.5, 500)
    assert wasserstein_1d(torch.as_tensor(a), torch.as_tensor(b)) == pytest.approx(wasserstein_distance(a, b), rel=1e-12)
    g = torch.Generator().manual_seed(0)
    x, y = torch.as_tensor(a)[:, None], torch.as_tensor(b)[:, None]
    assert sliced_wasserstein(x, y, 3, g) == pytest.approx(wasserstein_distance(a, b), rel=1e-12)  # one dimension: exact
    # the energy distance in 1-D is twice the integral of the squared CDF difference
    grid = np.linspace(-8, 8, 40_001)
    cdf = lambda s: np.searchsorted(np.sort(s), grid, side="right") / len(s)
    integral = 2 * np.sum((cdf(a) - cdf(b)) ** 2) * (grid[1] - grid[0])
    n = len(a)   # the within-sample means run over distinct pairs, the identity holds for all pairs: correct for it
    within = (np.abs(a[:, None] - a).sum() + np.abs(b[:, None] - b).sum()) / (n**2 * (n - 1))
    assert energy_distance(x, y) == pytest.approx(integral - within, rel=1e-3)
    assert energy_distance(x, x + 0.0) < 0.01 and wasserstein_1d(x, x) == 0.0


def test_bad_mixtures_are_refused_with_a_message():
    with pytest.raises(ValueError, match="sum to 1"):
        GaussianMixture(torch.tensor([0.5, 0.6]), torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2))
    with pytest.raises(ValueError, match="need weights"):
        GaussianMixture(torch.tensor([1.0]), torch.zeros(2), torch.eye(2))

"""The diffusion and flow-matching references of Volume 3 (generative.diffusion, generative.flow_matching), checked
with the exact oracles of a Gaussian mixture: what the chapter's exercises will be graded against."""

import math

import pytest
import torch

from manifold_course.generative import diffusion as D
from manifold_course.generative import flow_matching as FM
from manifold_course.generative.mixtures import GaussianMixture, eight_gaussians, energy_distance


@pytest.mark.parametrize("T", [1000, 200, 100])
def test_schedules_decrease_to_noise(T):
    for kind in ("linear", "cosine"):
        ab = D.alpha_bar(D.beta_schedule(T, kind))
        assert ab.shape == (T,) and (ab.diff() < 0).all() and 0.9 < float(ab[0]) < 1
        assert float(ab[-1]) < (0.01 if kind == "linear" else 1e-4)
    with pytest.raises(ValueError, match="unknown schedule"):
        D.beta_schedule(10, "quadratic")


def test_q_sample_agrees_with_iterating_the_one_step_process():
    betas, n, t = D.beta_schedule(100), 100_000, 37
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((n, 1), 2.0, dtype=torch.float64)
    x = x0.clone()
    for s in range(t + 1):
        x = (1 - betas[s]).sqrt() * x + betas[s].sqrt() * torch.randn(n, 1, generator=g, dtype=torch.float64)
    jump = D.q_sample(x0, t, torch.randn(n, 1, generator=g, dtype=torch.float64), D.alpha_bar(betas))
    ab = float(D.alpha_bar(betas)[t])
    for s in (x, jump):
        assert abs(float(s.mean()) - 2 * math.sqrt(ab)) < 5 * math.sqrt((1 - ab) / n)
        assert abs(float(s.var()) - (1 - ab)) < 0.02 * (1 - ab)
    per_row = D.q_sample(x0[:3], torch.tensor([0, 50, 99]), torch.zeros(3, 1, dtype=torch.float64), D.alpha_bar(betas))
    torch.testing.assert_close(per_row[:, 0], 2 * D.alpha_bar(betas)[[0, 50, 99]].sqrt())


def test_ddpm_with_the_exact_noise_reproduces_the_data():
    gm, T, n = eight_gaussians(), 200, 2000
    betas = D.beta_schedule(T)
    ab = D.alpha_bar(betas)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    for t in reversed(range(T)):
        x = D.ddpm_step(x, t, gm.eps_oracle(x, float(ab[t])), betas, torch.randn(n, 2, generator=g, dtype=torch.float64))
    torch.testing.assert_close(x.mean(0), gm.mean(), atol=0.1, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), gm.cov(), rtol=0.05, atol=0.05)
    assert energy_distance(x, gm.sample(n, g)) < 0.02


def test_ddim_eta_one_is_the_ddpm_posterior_and_ten_deterministic_steps_reach_gaussian_data():
    betas = D.beta_schedule(100)
    ab = D.alpha_bar(betas)
    x, eps, z = (torch.randn(4, 2, generator=torch.Generator().manual_seed(k), dtype=torch.float64) for k in (2, 3, 4))
    for t in (99, 40, 1):
        with_noise = D.ddim_step(x, t, t - 1, eps, ab, 1.0, z)
        without = D.ddim_step(x, t, t - 1, eps, ab, 1.0, torch.zeros_like(z))
        sigma2 = float(((with_noise - without) / z).pow(2).mean())
        assert sigma2 == pytest.approx(float(D.posterior_variance(betas)[t]), rel=1e-9)
    assert torch.equal(D.ddim_step(x, 50, 30, eps, ab, 0.0, z), D.ddim_step(x, 50, 30, eps, ab, 0.0, 5 * z))
    # Deterministic DDIM with the exact noise on Gaussian data: the mean comes out right at any step count, the
    # covariance with a first-order error (about halved when the steps double). SYLLABUS 3.2's "within 5 % in 10
    # steps" does not hold: 10 steps leave about 25 % (cosine schedule; 40 % linear), 50 cosine steps about 5 %.
    mu, cov = torch.tensor([[1.0, -0.5]], dtype=torch.float64), torch.tensor([[[0.5, 0.2], [0.2, 0.3]]], dtype=torch.float64)
    gauss = GaussianMixture(torch.ones(1, dtype=torch.float64), mu, cov)
    xT = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    abc = D.alpha_bar(D.beta_schedule(100, "cosine"))
    errs = []
    for n in (10, 20, 50):
        ts = torch.linspace(99, 0, n).round().long().tolist()
        out = D.ddim_sample(lambda x_, t: gauss.eps_oracle(x_, float(abc[t])), xT, ts, abc)
        torch.testing.assert_close(out.mean(0), mu[0], atol=0.02, rtol=0)
        errs.append(float(((torch.cov(out.T) - cov[0]).abs() / cov[0]).max()))
    assert 1.6 < errs[0] / errs[1] < 2.4 and errs[2] < 0.07, errs


def test_heun_is_second_order():
    f = lambda x, t: -x                                              # noqa: E731 - dx/dt = -x, x(1) = e^-1
    errs = []
    for n in (10, 20, 40):
        x = torch.tensor([1.0], dtype=torch.float64)
        for i in range(n):
            x = D.heun_step(f, x, i / n, 1 / n)
        errs.append(abs(float(x) - math.exp(-1)))
    assert 3.6 < errs[0] / errs[1] < 4.4 and 3.6 < errs[1] / errs[2] < 4.4


def test_flow_matching_pieces():
    g = torch.Generator().manual_seed(6)
    x0, x1 = (torch.randn(8, 2, generator=g, dtype=torch.float64) for _ in range(2))
    t = torch.rand(8, generator=g, dtype=torch.float64)
    xt, u = FM.fm_pair(x0, x1, t)
    torch.testing.assert_close(FM.fm_pair(x0, x1, 0.0)[0], x0)
    torch.testing.assert_close(FM.fm_pair(x0, x1, 1.0)[0], x1)
    torch.testing.assert_close(u, FM.fm_pair(x0, x1, 0.3)[1])                         # u does not depend on t
    one = lambda x, tt: x1[:1] - x0[:1]                                               # noqa: E731 - the exact velocity of one pair
    assert float(FM.fm_loss(one, x0[:1], x1[:1], t[:1])) == 0.0
    c = torch.tensor([[0.5, -2.0]], dtype=torch.float64)
    const = lambda x, tt: c.expand_as(x)                                              # noqa: E731
    torch.testing.assert_close(FM.euler_sample(const, x1, 1), x1 - c)                 # a constant field: one step is exact
    assert FM.straightness(const, x1, 4) == pytest.approx(0.0, abs=1e-20)
    gm = eight_gaussians()
    curved = FM.straightness(lambda x, tt: gm.fm_velocity(x, float(tt[0])), x1, 20)
    assert curved > 0.1                                                               # the marginal flow bends


def test_latent_numbers():
    assert D.compression_ratio(512, 512, 3, 8, 4) == 48.0
    z = 3.0 * torch.randn(1000, 4, generator=torch.Generator().manual_seed(7))
    assert float((z * D.latent_scale_factor(z)).std()) == pytest.approx(1.0, rel=1e-6)

# REINFORCE, Gaussian policies, linear CKA and the F21 sequence policy (manifold_course.rl.policy_gradient).
import math

import numpy as np
import pytest
import torch

from manifold_course.geometry.similarity import linear_cka
from manifold_course.rl import policy_gradient as pg


def test_reinforce_gradient_is_the_estimator_and_the_baseline_gets_none():
    logp = torch.tensor([-0.5, -1.0, -2.0], requires_grad=True)
    G, b = torch.tensor([3.0, 1.0, -1.0]), torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    pg.reinforce_loss(logp, G, b).backward()
    assert torch.allclose(logp.grad, -(G - 1.0) / 3)
    assert b.grad is None or torch.all(b.grad == 0)


def test_gaussian_logprob_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    a, mu, log_std = torch.randn(7, 3, generator=g), torch.randn(7, 3, generator=g), 0.3 * torch.randn(3, generator=g)
    want = torch.distributions.Normal(mu, log_std.exp()).log_prob(a).sum(-1)
    assert torch.allclose(pg.gaussian_logprob(a, mu, log_std), want, atol=1e-6)


def test_linear_cka_invariances():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(50, 6, generator=g)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    assert linear_cka(X, X) == pytest.approx(1.0)
    assert linear_cka(X, 3.0 * X @ Q + 2.0) == pytest.approx(1.0)          # rotation, scale, shift
    assert linear_cka(X, torch.randn(50, 6, generator=g)) < 0.5


@pytest.mark.parametrize("baseline", [None, 12.0])
def test_bandit_estimates_are_unbiased(baseline):
    logits, means = torch.tensor([0.2, -0.3, 0.5, 0.0]), torch.tensor([10.0, 11.0, 12.0, 13.0])
    grads = pg.bandit_gradient_samples(logits, means, 1.0, 32, 4000, baseline, seed=3)
    exact = pg.bandit_gradient_exact(logits, means)
    se = grads.std(0) / math.sqrt(len(grads))
    assert torch.all((grads.mean(0) - exact).abs() < 5 * se)


def test_a_baseline_lowers_the_variance():
    logits, means = torch.zeros(3), torch.tensor([20.0, 21.0, 22.0])
    v_none = pg.bandit_gradient_samples(logits, means, 1.0, 16, 2000, None, seed=0).var(0).sum()
    v_base = pg.bandit_gradient_samples(logits, means, 1.0, 16, 2000, 21.0, seed=0).var(0).sum()
    assert v_base < 0.05 * v_none


def test_sequence_policy_is_normalised_and_sft_then_reinforce_move_it():
    every = pg.all_sequences(3, 4)
    assert every.shape == (81, 4)
    m = pg.sequence_policy(3, 4, 16, seed=0)
    assert float(m.log_prob(every).detach().exp().sum()) == pytest.approx(1.0, abs=1e-5)
    ref = m.log_prob(every).detach()
    reward = lambda x: (x == 2).all(-1)
    before = pg.sequence_stats(m, ref, every, reward)
    assert before["kl"] == pytest.approx(0.0, abs=1e-9)
    pg.fit_mle(m, every[every[:, 0] == 2], 60, lr=1e-2, batch=32)
    pg.fit_reinforce(m, reward, 40, lr=1e-2, batch=64)
    after = pg.sequence_stats(m, ref, every, reward)
    assert after["success"] > 5 * before["success"] and after["kl"] > 0.1 and after["entropy"] < before["entropy"]

# PPO (manifold_course.rl.ppo): the clipped loss and its gradient, KL estimators, and the trainer on CartPole-v1.
import math

import numpy as np
import pytest
import torch

from manifold_course.probability import preferences
from manifold_course.rl import ppo


def test_one_implementation_shared_with_volume_2():
    assert preferences.ppo_clip_objective is ppo.ppo_clip_objective


def test_clipped_samples_on_the_improving_side_have_zero_gradient():
    old = torch.zeros(4)
    new = torch.tensor([0.5, 0.5, -0.5, -0.5], requires_grad=True)      # ratios e^0.5 > 1.2, e^-0.5 < 0.8
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    ppo.ppo_clip_loss(new, old, adv, 0.2).backward()
    assert new.grad[0] == 0 and new.grad[3] == 0                          # already improved past the clip
    assert new.grad[1] != 0 and new.grad[2] != 0                          # made worse: the unclipped term acts


def test_kl_estimators_unbiased_and_k3_nonnegative():
    g = torch.Generator().manual_seed(0)
    lo, ln = torch.log_softmax(torch.randn(6, generator=g), -1), torch.log_softmax(torch.randn(6, generator=g), -1)
    exact = float((lo.exp() * (lo - ln)).sum())
    a = torch.multinomial(lo.exp(), 400_000, replacement=True, generator=g)
    for kind in ("k1", "k3"):
        assert float(ppo.approx_kl(lo[a], ln[a], kind)) == pytest.approx(exact, rel=0.05)
    assert torch.all(torch.expm1(ln[a] - lo[a]) - (ln[a] - lo[a]) >= 0)
    with pytest.raises(ValueError):
        ppo.approx_kl(lo, ln, "k2")


def test_clip_fraction_entropy_and_normalisation():
    assert ppo.clip_fraction(torch.tensor([0.5, 1.0, 1.1, 1.5]), 0.2) == 0.5
    assert torch.allclose(ppo.categorical_entropy(torch.zeros(2, 5)), torch.full((2,), math.log(5)))
    assert float(ppo.categorical_entropy(torch.tensor([0.0, -float("inf")]))) == 0.0
    z = ppo.normalize_advantages(torch.tensor([1.0, 2.0, 6.0]))
    assert abs(float(z.mean())) < 1e-6 and float(z.std()) == pytest.approx(1.0, abs=1e-6)


def test_trainer_is_reproducible_and_logs():
    cfg = ppo.PPOConfig(total_steps=1024, eval_every=0, eval_episodes=2)
    a, b = ppo.train_ppo(cfg, seed=5), ppo.train_ppo(cfg, seed=5)
    assert len(a.history) == 2 and a.history[-1]["steps"] == 1024
    assert {"greedy", "train_return", "approx_kl_k1", "approx_kl_k3", "clip_frac", "entropy"} <= set(a.history[0])
    assert [h["greedy"] for h in a.history[1:]] == [h["greedy"] for h in b.history[1:]]
    assert np.isnan(a.history[0]["greedy"])


def test_ppo_solves_cartpole_within_a_generous_budget():
    res = ppo.train_ppo(ppo.PPOConfig(target=475.0, total_steps=60_000), seed=0)
    assert res.steps_to_target is not None and res.history[-1]["greedy"] >= 475.0

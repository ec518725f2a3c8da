"""World models and curiosity (Volume 5, sections 5.13-5.14)."""

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from manifold_course import seed_everything
from manifold_course.rl import curiosity
from manifold_course.rl import world_model as wm
from manifold_course.seeding import numpy_rng, torch_generator


def test_symlog_symexp_are_an_odd_inverse_pair():
    x = torch.tensor([-1e6, -3.0, -1e-8, 0.0, 1e-8, 2.5, 1e6], dtype=torch.float64)
    assert torch.allclose(wm.symexp(wm.symlog(x)), x, rtol=1e-12, atol=0)
    assert torch.equal(wm.symlog(-x), -wm.symlog(x))
    assert torch.allclose(wm.symlog(x[2:5]), x[2:5], atol=1e-15)


def test_kl_balance_values_and_stop_gradients():
    g = torch_generator(0)
    post = (2 * torch.randn(4, 3, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    prior = (2 * torch.randn(4, 3, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    kl = wm.categorical_kl(post, prior)
    assert torch.all(kl >= 0)
    loss = wm.kl_balance(post, prior, 0.5, 0.1, 0.0)
    assert loss.item() == pytest.approx(0.6 * kl.mean().item(), rel=1e-12)
    # only the dyn term reaches the prior, only the rep term the posterior
    gp_dyn = torch.autograd.grad(wm.kl_balance(post, prior, 1.0, 0.0, 0.0), [post, prior], allow_unused=True)
    assert gp_dyn[0] is None or torch.all(gp_dyn[0] == 0)
    gp_rep = torch.autograd.grad(wm.kl_balance(post, prior, 0.0, 1.0, 0.0), [post, prior], allow_unused=True)
    assert gp_rep[1] is None or torch.all(gp_rep[1] == 0)
    # under the free bits: constant floor, no gradient
    z = torch.zeros(2, 3, 4, dtype=torch.float64, requires_grad=True)
    floor = wm.kl_balance(z, z.detach() + 0.0, 0.5, 0.1, 1.0)
    assert floor.item() == pytest.approx(0.6)
    assert torch.all(torch.autograd.grad(floor, z)[0] == 0)


def test_imagine_shapes_and_identity():
    z0 = torch.randn(3, 4, generator=torch_generator(1))
    states, actions = wm.imagine(lambda z, a: z, lambda z: torch.zeros(z.shape[0], 2), z0, 5)
    assert states.shape == (3, 6, 4) and actions.shape == (3, 5, 2)
    assert torch.equal(states, z0[:, None].expand(3, 6, 4))


def test_dynamics_model_learns_a_linear_system_and_mpc_prefers_reward():
    seed_everything(0)
    g = torch_generator(2)
    s = torch.randn(512, 2, generator=g)
    a = torch.rand(512, 1, generator=g) * 2 - 1
    s2 = s + 0.1 * torch.cat([s[:, 1:], a], 1)
    m = wm.DynamicsModel(2, 1, hidden=32)
    losses = wm.fit_dynamics(m, s, a, s2, steps=300, seed=0)
    assert losses[-1] < 0.05 * losses[0]
    # reward = the second coordinate: the best first action is the largest
    u = wm.random_shooting(m, lambda z, a: z[:, 1], torch.zeros(2), 3, 64, -1.0, 1.0, torch_generator(3))
    assert u > 0.5


def test_running_mean_std_merges_exactly():
    rng = numpy_rng(0)
    data = rng.normal(3.0, 2.0, (100, 2))
    rms = curiosity.RunningMeanStd((2,))
    for chunk in np.split(data, [1, 30, 31, 77]):
        rms.update(chunk)
    assert rms.count == 100
    assert np.allclose(rms.mean, data.mean(0)) and np.allclose(rms.var, data.var(0))


def test_coverage_and_entropy():
    assert curiosity.state_coverage(np.array([[0, 2], [1, 0]])) == 0.5
    assert curiosity.visitation_entropy(np.ones(9)) == pytest.approx(1.0)
    assert curiosity.visitation_entropy(np.array([5, 0, 0])) == 0.0


def test_rnd_reward_is_lower_on_trained_states():
    rnd = curiosity.RND(8, seed=0, lr=1e-2)
    states = torch.eye(8)
    rnd.update(states[:4], steps=200)
    r = rnd.intrinsic(states)
    assert r[:4].mean() < 0.2 * r[4:].mean()


def test_open_grid_is_a_valid_sparse_reward_env():
    env = curiosity.open_grid(5, 30)
    check_env(env.unwrapped, skip_render_check=True)
    res = curiosity.explore(5, 300, True, seed=0)
    assert res["visits"].shape == (5, 5) and 0 < res["coverage"][-1] <= 1

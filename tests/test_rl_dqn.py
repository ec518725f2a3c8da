# DQN's pieces (manifold_course.rl.dqn): the FIFO replay buffer, the targets (terminated vs truncated), the Polyak
# update, the stacked networks, and a tiny run of the trainer on CartPole-v1.
import numpy as np
import pytest
import torch

from manifold_course.rl import dqn


def test_replay_buffer_is_a_fifo_ring():
    buf = dqn.ReplayBuffer(3)
    with pytest.raises(ValueError):
        buf.sample(1, np.random.default_rng(0))
    for i in range(5):
        buf.push(np.full(2, i, dtype=np.float32), i % 2, float(i), np.full(2, i + 1, dtype=np.float32), i == 4)
    assert len(buf) == 3
    obs, act, rew, nxt, term = buf.sample(300, np.random.default_rng(0))
    assert obs.shape == (300, 2) and act.shape == (300,) and nxt.shape == (300, 2) and term.dtype == bool
    assert set(rew.tolist()) == {2.0, 3.0, 4.0}                       # the oldest two were overwritten
    assert np.all(obs[:, 0] == rew) and np.all(term == (rew == 4))
    with pytest.raises(ValueError):
        dqn.ReplayBuffer(0)


def test_targets_mask_terminations_only():
    y = dqn.dqn_targets(torch.tensor([1.0, 2.0]), torch.tensor([False, True]), torch.tensor([[3.0, 5.0], [7.0, 9.0]]), 0.5)
    assert torch.allclose(y, torch.tensor([3.5, 2.0]))


def test_soft_update():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b0 = [p.detach().clone() for p in b.parameters()]
    a0 = [p.detach().clone() for p in a.parameters()]
    dqn.soft_update(a, b, 0.0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), a0))
    dqn.soft_update(a, b, 0.25)
    assert all(torch.allclose(p, 0.25 * q + 0.75 * r) for p, q, r in zip(a.parameters(), b0, a0))
    dqn.soft_update(a, b, 1.0)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b0))
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), b0))  # the online net never moves


def test_stacked_models_are_independent():
    gens = [torch.Generator().manual_seed(s) for s in (0, 1, 0)]
    net = dqn.StackedMLP(gens, (4, 8, 8, 2))
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(9))
    out = net(x)
    assert out.shape == (3, 5, 2)
    assert torch.allclose(net(x[[0, 0, 0]])[0], net(x[[0, 0, 0]])[2])    # same seed, same initial network
    x2 = x.clone()
    x2[1] += 1.0
    assert torch.equal(net(x2)[0], out[0])                                # model 0 does not see model 1's inputs


def test_tiny_training_run_is_deterministic_and_shaped():
    cfg = dqn.DQNConfig(steps=400, n_envs=2, hidden=16, learning_starts=100, eval_every=200, eval_episodes=2,
                        buffer_size=400)
    variants = [dqn.Variant("full"), dqn.Variant("bare", replay=False, target_network=False)]
    a = dqn.train_dqn(cfg, variants, [0, 1])
    b = dqn.train_dqn(cfg, variants, [0, 1])
    assert a.eval_returns.shape == (2, 2, 2) and list(a.eval_steps) == [200, 400]
    assert np.array_equal(a.eval_returns, b.eval_returns)
    assert a.updates == 400 // 2 - 100 // 2 + 1
    assert np.all(a.eval_returns >= 8) and np.all(a.eval_returns <= 500)  # CartPole episodes last 8 to 500 steps
    assert all(len(r) > 0 for per in a.train_returns for r in per)

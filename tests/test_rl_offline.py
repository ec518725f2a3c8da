"""Offline RL, the Decision Transformer and imitation (Volume 5, sections 5.10-5.12)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from manifold_course import seed_everything
from manifold_course.seeding import torch_generator
from manifold_course.nn.attention import attention_mask
from manifold_course.rl import decision_transformer as dt
from manifold_course.rl import imitation, mdp, offline


def test_cql_penalty_is_nonnegative_and_zero_for_one_action():
    g = torch_generator(0)
    q = torch.randn(20, 4, generator=g, dtype=torch.float64)
    a = torch.randint(0, 4, (20,), generator=g)
    assert offline.cql_penalty(q, a) >= 0
    assert offline.cql_penalty(q[:, :1], torch.zeros(20, dtype=torch.long)) == 0


def _toy_dataset():
    # two states, two actions; action 1 is never logged; state 1 is terminal-bound
    return {"s": np.array([0, 0, 1]), "a": np.array([0, 0, 0]), "r": np.array([0.0, 0.0, 1.0]),
            "s2": np.array([1, 1, 1]), "done": np.array([0, 0, 1])}


def test_naive_iteration_solves_the_logged_bellman_equation():
    Q = offline.offline_q_iteration(_toy_dataset(), 2, 2, 0.9, 0.0, n_iters=400, q_init=0.0)
    assert Q[1, 0] == pytest.approx(1.0, abs=1e-8)
    assert Q[0, 0] == pytest.approx(0.9, abs=1e-8)
    assert np.all(Q[:, 1] == 0.0)                        # never logged: untouched


def test_cql_keeps_unseen_actions_below_the_naive_values():
    data = _toy_dataset()
    naive = offline.offline_q_iteration(data, 2, 2, 0.9, 0.0)
    cql = offline.offline_q_iteration(data, 2, 2, 0.9, 1.0)
    assert np.all(cql[:, 1] < naive[:, 1])
    assert np.all(cql.argmax(1) == 0)


def test_collect_dataset_only_logs_behaviour_actions():
    env = gym.make("FrozenLake-v1")
    beh = np.zeros((16, 4))
    beh[:, 2] = 1.0
    data = offline.collect_dataset(env, beh, 5, seed=0)
    assert set(data["a"].tolist()) == {2} and len(data["s"]) == len(data["done"])


def test_returns_to_go_and_update():
    r = np.array([1.0, -2.0, 3.0])
    rtg = dt.returns_to_go(r)
    assert rtg.tolist() == [2.0, 1.0, 3.0]
    assert dt.update_rtg(rtg[0], r[0]) == rtg[1]


def test_interleave_layout_and_causality():
    rtg = torch.tensor([[5.0, 4.0, 3.0]])
    states = torch.arange(6.0).reshape(1, 3, 2)
    actions = torch.eye(3)[None]
    tok, ts, mask = dt.interleave_dt(rtg, states, actions)
    assert tok.shape == (1, 9, 4 + 2 + 3)
    assert tok[0, 3, 3] == 4.0 and tok[0, 4, 4:6].tolist() == [2.0, 3.0] and tok[0, 5, 6:].tolist() == [0, 1, 0]
    assert ts[0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert torch.equal(mask, attention_mask(9, 9))


def test_decision_transformer_prediction_ignores_the_action_it_predicts():
    seed_everything(0)
    m = dt.DecisionTransformer(3, 2, max_timestep=8, d_model=16, n_heads=2)
    rtg, states = torch.randn(1, 4), torch.randn(1, 4, 3)
    a1 = torch.tensor([[0, 1, 0, 1]])
    a2 = a1.clone()
    a2[0, 2:] = 1 - a2[0, 2:]                            # change a_2 and a_3
    out1, out2 = m(rtg, states, a1), m(rtg, states, a2)
    assert torch.allclose(out1[:, :3], out2[:, :3])      # predictions of a_0..a_2 do not see a_2 or later
    assert not torch.allclose(out1[:, 3], out2[:, 3])


def test_train_dt_lowers_the_loss():
    seed_everything(0)
    m = dt.DecisionTransformer(2, 2, max_timestep=4, d_model=16, n_heads=2)
    states = torch.eye(2)[torch.tensor([[0, 1, 0, 1]] * 8)]
    actions = torch.tensor([[0, 1, 0, 1]] * 8)
    losses = dt.train_dt(m, torch.zeros(8, 4), states, actions, torch.full((8,), 4), steps=60, batch_size=8, context=4)
    assert losses[-1] < 0.3 * losses[0]


def test_compounding_error_matches_its_expectation_and_is_superlinear():
    e = [imitation.expected_compounding_error(0.01, T) for T in (10, 20)]
    assert e[1] > 3.5 * e[0]
    assert imitation.compounding_error(0.01, 20, 50_000, seed=1) == pytest.approx(e[1], rel=0.05)
    assert imitation.expected_compounding_error(0.0, 30) == 0.0
    assert imitation.expected_compounding_error(1.0, 30) == 30.0


def test_gail_reward_conventions():
    x = torch.linspace(-5, 5, 11, dtype=torch.float64)
    ld, nl, lg = (imitation.gail_reward(x, c) for c in ("log_d", "neg_log_one_minus_d", "logit"))
    assert torch.all(ld < 0) and torch.all(nl > 0) and torch.allclose(lg, ld + nl)


def test_bc_copies_demonstrated_states_and_gail_lite_matches_an_expert_with_ample_data():
    env = gym.make("CliffWalking-v1", is_slippery=True)
    m = mdp.from_gymnasium(env)
    v, pi, _ = mdp.value_iteration(m, 0.95)
    demos = imitation.demonstrations(env, pi, 30, seed=0)
    bc = imitation.behaviour_cloning(demos, 48, 4)
    for s, a in demos[0]:
        assert bc[s, a] > 0
    start = np.zeros(48)
    start[36] = 1
    g = imitation.gail_lite(m, demos, start, 0.95)
    assert mdp.evaluate_policy_linear(m, g, 0.95)[36] > v[36] - 1.0
    rho = imitation.occupancy(m, pi, start, 0.95)
    assert rho.min() >= 0


def test_gusty_cliff_interpolates_between_gymnasiums_two_cliffwalkings():
    import gymnasium as gym

    for gust, kwargs in ((0.0, {}), (2 / 3, {"is_slippery": True})):
        ours = mdp.from_gymnasium(imitation.GustyCliffWalking(gust))
        theirs = mdp.from_gymnasium(gym.make("CliffWalking-v1", **kwargs))
        assert np.allclose(ours.P, theirs.P) and np.allclose(ours.R, theirs.R)
    env = imitation.GustyCliffWalking(0.05)
    assert np.isclose(sum(p for p, *_ in env.P[25][1]), 1.0)
    assert max(p for p, *_ in env.P[25][1]) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="probability"):
        imitation.GustyCliffWalking(1.5)


def test_return_to_demonstrations_on_a_deterministic_cliff():
    env = imitation.GustyCliffWalking(0.0)
    P = env.unwrapped.P
    right = np.zeros((48, 4))
    right[:, 1] = 1.0
    steps, fall = imitation.return_to_demonstrations(P, right, demonstrated={35})   # the end of the middle row
    assert steps[35] == 0 and fall[35] == 0
    assert steps[24] == pytest.approx(11) and fall[24] == 0      # walks right along row 2
    assert fall[36] == 1 and steps[36] == pytest.approx(1)       # the first step right is the cliff
    up = np.zeros((48, 4))
    up[:, 0] = 1.0
    steps, fall = imitation.return_to_demonstrations(P, up, demonstrated={0})
    assert steps[24] == pytest.approx(2)                        # up twice, 24 -> 12 -> 0
    assert np.isinf(steps[1]) and fall[1] == 0                  # pushing against the top wall forever

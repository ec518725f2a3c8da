# Dynamic programming on Gymnasium's toy-text environments (manifold_course.rl.mdp): the arrays built from
# env.unwrapped.P, the two policy evaluations, the contraction, value iteration against known optima.
import gymnasium as gym
import numpy as np
import pytest

from manifold_course.rl import mdp as M


@pytest.fixture(scope="module", params=[True, False], ids=["slippery", "not slippery"])
def lake(request):
    env = gym.make("FrozenLake-v1", is_slippery=request.param)
    return M.from_gymnasium(env), request.param


@pytest.fixture(scope="module")
def cliff():
    return M.from_gymnasium(gym.make("CliffWalking-v1"))


def test_arrays_are_a_sub_stochastic_kernel(lake):
    mdp, _ = lake
    assert mdp.P.shape == (16, 4, 16) and mdp.R.shape == (16, 4)
    rows = mdp.P.sum(axis=2)
    assert np.all(rows <= 1 + 1e-12) and np.all(mdp.P >= 0)
    assert np.allclose(rows[5], 0) and np.allclose(rows[15], 0)          # a hole and the goal end the episode
    assert mdp.R.max() <= 1 and mdp.R.min() == 0                          # reward 1 only on reaching the goal


def test_linear_and_iterative_evaluation_agree_and_contract(lake):
    mdp, _ = lake
    gamma = 0.9
    pi = np.full((16, 4), 0.25)                                           # the uniform random policy
    v_lin = M.evaluate_policy_linear(mdp, pi, gamma)
    v_it, changes = M.evaluate_policy_iterative(mdp, pi, gamma, tol=1e-12)
    assert np.max(np.abs(v_lin - v_it)) < 1e-8
    ratios = np.array(changes[1:]) / np.array(changes[:-1])
    assert np.all(ratios <= gamma + 1e-9)                                 # a gamma-contraction in the sup norm


def test_value_iteration_is_optimal(lake):
    mdp, slippery = lake
    gamma = 0.99
    v, pi, changes = M.value_iteration(mdp, gamma)
    assert np.allclose(M.evaluate_policy_linear(mdp, pi, gamma), v, atol=1e-8)   # the greedy policy achieves v*
    q = M.q_from_v(mdp, v, gamma)
    rng = np.random.default_rng(0)
    for _ in range(20):                                                   # no other policy beats it anywhere
        other = rng.dirichlet(np.ones(4), size=16)
        assert np.all(M.evaluate_policy_linear(mdp, other, gamma) <= v + 1e-9)
    assert np.allclose(v, q.max(axis=1), atol=1e-8)                       # the Bellman optimality equation
    if not slippery:                                                      # 6 steps to the goal: gamma^5
        assert v[0] == pytest.approx(gamma**5, abs=1e-9)
    else:
        assert 0.4 < v[0] < 0.7                                           # the slippery lake's start value at 0.99


def test_cliff_walking_optimal_path(cliff):
    v, pi, _ = M.value_iteration(cliff, gamma=1.0, tol=1e-12)
    assert v[36] == pytest.approx(-13.0)                                  # up, 11 steps right, down: 13 steps
    s, path = 36, [36]
    for _ in range(20):
        a = int(pi[s].argmax())
        s = int(np.argmax(cliff.P[s, a])) if cliff.P[s, a].sum() > 0 else 47
        path.append(s)
        if s == 47:
            break
    assert path[-1] == 47 and len(path) == 14 and all(p // 12 == 2 for p in path[1:-1])   # along row 2, by the cliff


def test_discounted_return():
    assert M.discounted_return([1, 1, 1], 0.5) == pytest.approx(1.75)
    assert M.discounted_return([], 0.9) == 0.0
    assert M.discounted_return([0, 0, 10], 0.9) == pytest.approx(8.1)


def test_greedy_ties_go_to_the_lowest_action():
    q = np.array([[1.0, 1.0 + 1e-12, 0.0], [0.0, 2.0, 2.0]])
    assert np.array_equal(M.greedy_policy(q), np.array([[1.0, 0, 0], [0, 1.0, 0]]))


def test_from_table_adds_repeated_outcomes_and_drops_terminal_ones():
    table = [[[(0.5, 1, 1.0, False), (0.25, 1, 0.0, False), (0.25, 0, 4.0, True)]], [[(1.0, 1, 0.0, True)]]]
    m = M.from_table(table)
    assert np.allclose(m.P[0, 0], [0.0, 0.75]) and np.allclose(m.P[1, 0], 0.0)
    assert np.allclose(m.R[:, 0], [1.5, 0.0])

# Tabular TD control (manifold_course.rl.tabular) on CliffWalking: Sutton & Barto's Example 6.6, in every seed tried.
import gymnasium as gym
import numpy as np
import pytest

from manifold_course.rl import tabular as T


@pytest.mark.parametrize("seed", [0, 1])
def test_q_learning_walks_the_edge_and_sarsa_takes_the_safe_path(seed):
    env = gym.make("CliffWalking-v1")
    q = T.td_control(env, "q_learning", 500, seed=seed)
    s = T.td_control(env, "sarsa", 500, seed=seed)
    q_path, s_path = T.greedy_path(env, q.Q), T.greedy_path(env, s.Q)
    assert q_path[-1] == 47 and len(q_path) - 1 == 13                     # optimal: up, 11 right, down
    assert all(p // 12 == 2 for p in q_path[1:-1])                       # right along the cliff's edge
    assert s_path[-1] == 47 and len(s_path) - 1 > 13                     # longer ...
    assert min(p // 12 for p in s_path) <= 1                             # ... keeping away from the edge
    assert np.mean(s.returns[-100:]) > np.mean(q.returns[-100:])          # and safer while exploring


def test_epsilon_greedy():
    rng = np.random.default_rng(0)
    q = np.array([0.0, 2.0, 2.0, -1.0])
    greedy = [T.epsilon_greedy(q, 0.0, rng) for _ in range(200)]
    assert set(greedy) == {1, 2}                                          # ties broken at random
    explore = [T.epsilon_greedy(q, 1.0, rng) for _ in range(400)]
    assert set(explore) == {0, 1, 2, 3}


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="q_learning"):
        T.td_control(gym.make("CliffWalking-v1"), "expected_sarsa", 1)

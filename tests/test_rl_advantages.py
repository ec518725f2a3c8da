# Returns and GAE (manifold_course.rl.advantages): the lambda = 0 and lambda = 1 limits, episode boundaries.
import numpy as np
import pytest

from manifold_course.rl import advantages as A


def _rollout(seed=0, T=50):
    rng = np.random.default_rng(seed)
    return rng.normal(size=T), rng.normal(size=T), rng.random(T) < 0.1, float(rng.normal())


def test_rewards_to_go_by_hand():
    assert np.allclose(A.rewards_to_go([1, 1, 1], [0, 0, 0], 0.5), [1.75, 1.5, 1.0])
    assert np.allclose(A.rewards_to_go([1, 1, 1], [0, 1, 0], 0.5), [1.5, 1.0, 1.0])      # the episode ends at step 1
    assert np.allclose(A.rewards_to_go([1.0], [0], 0.9, last_value=10.0), [10.0])        # bootstrapped tail


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_zero_is_the_td_error_and_lambda_one_the_return_minus_value(seed):
    r, v, d, last = _rollout(seed)
    gamma = 0.97
    v_next = np.append(v[1:], last)
    td = r + gamma * (1 - d) * v_next - v
    assert np.allclose(A.gae(r, v, d, gamma, 0.0, last), td, atol=1e-12)
    assert np.allclose(A.gae(r, v, d, gamma, 1.0, last), A.rewards_to_go(r, d, gamma, last) - v, atol=1e-10)


def test_gae_is_a_discounted_sum_of_td_errors():
    r, v, d, last = _rollout(3, T=12)
    d[:] = False
    gamma, lam = 0.9, 0.8
    td = r + gamma * np.append(v[1:], last) - v
    want = [sum((gamma * lam) ** k * td[t + k] for k in range(12 - t)) for t in range(12)]
    assert np.allclose(A.gae(r, v, d, gamma, lam, last), want, atol=1e-12)


def test_td_errors_cut_at_episode_ends_and_bootstrap_the_tail():
    r, v, d = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.25, 4.0]), np.array([0.0, 1.0, 0.0])
    want = [1.0 + 0.9 * 0.25 - 0.5, 2.0 - 0.25, 3.0 + 0.9 * 10.0 - 4.0]
    assert np.allclose(A.td_errors(r, v, d, 0.9, last_value=10.0), want)


@pytest.mark.parametrize("seed", [0, 1])
def test_vector_rollouts_are_independent_columns(seed):
    rng = np.random.default_rng(seed)
    T, N = 20, 3
    r, v, d, last = rng.normal(size=(T, N)), rng.normal(size=(T, N)), rng.random((T, N)) < 0.2, rng.normal(size=N)
    adv, ret = A.gae_and_returns(r, v, d, 0.99, 0.95, last)
    for n in range(N):
        assert np.allclose(adv[:, n], A.gae(r[:, n], v[:, n], d[:, n], 0.99, 0.95, last[n]))
        assert np.allclose(A.rewards_to_go(r, d, 0.9, last)[:, n], A.rewards_to_go(r[:, n], d[:, n], 0.9, last[n]))
        assert np.allclose(A.td_errors(r, v, d, 0.9, last)[:, n], A.td_errors(r[:, n], v[:, n], d[:, n], 0.9, last[n]))
    assert np.allclose(ret, adv + v)

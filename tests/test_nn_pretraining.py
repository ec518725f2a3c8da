import math

import numpy as np
import pytest
import torch

from manifold_course.geometry import trajectories as tj
from manifold_course.nn import long_context as lc
from manifold_course.nn import moe
from manifold_course.optim import scaling


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------- scaling laws


@pytest.mark.parametrize("a, alpha", [(12.0, 0.3), (400.0, 0.076), (2.0, 1.2)])
def test_fit_power_law_recovers_exact_laws(a, alpha):
    N = np.geomspace(1e3, 1e9, 7)
    a_hat, alpha_hat = scaling.fit_power_law(N, scaling.power_law(N, a, alpha))
    assert a_hat == pytest.approx(a, rel=1e-9) and alpha_hat == pytest.approx(alpha, rel=1e-9)


def test_fit_power_law_with_offset_recovers_three_parameters():
    N = np.geomspace(1e3, 1e7, 9)
    a, alpha, c = scaling.fit_power_law(N, scaling.power_law(N, 30.0, 0.4, 1.7), with_offset=True)
    assert alpha == pytest.approx(0.4, rel=1e-3) and c == pytest.approx(1.7, rel=1e-3) and a == pytest.approx(30, rel=1e-2)


def test_fit_power_law_equals_scipy_linregress_in_log_space():
    from scipy.stats import linregress

    rng = np.random.default_rng(0)
    N = rng.uniform(1e3, 1e6, 11)
    L = 5 * N**-0.2 * np.exp(0.1 * rng.standard_normal(11))
    res = linregress(np.log(N), np.log(L))
    a, alpha = scaling.fit_power_law(N, L)
    assert alpha == pytest.approx(-res.slope) and a == pytest.approx(math.exp(res.intercept))


def test_training_flops_is_six_n_d():
    assert scaling.training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)


@pytest.mark.parametrize("C", [1e19, 1e21, 5.76e23, 1e26])
@pytest.mark.parametrize("fit", [scaling.CHINCHILLA, scaling.BESIROGLU])
def test_chinchilla_optimum_spends_the_budget_and_minimises_the_loss(C, fit):
    N, D = scaling.chinchilla_optimal(C, fit["A"], fit["B"], fit["E"], fit["alpha"], fit["beta"])
    assert 6 * N * D == pytest.approx(C, rel=1e-9)
    Ns = N * np.geomspace(0.5, 2, 41)
    losses = scaling.chinchilla_loss(Ns, C / (6 * Ns), **fit)
    assert np.argmin(losses) == 20


def test_chinchilla_tokens_per_parameter_published_vs_replication():
    assert 45 < scaling.tokens_per_parameter(1e21, scaling.CHINCHILLA) < 55
    assert 110 < scaling.tokens_per_parameter(1e25, scaling.CHINCHILLA) < 130
    assert 15 < scaling.tokens_per_parameter(1e23, scaling.BESIROGLU) < 25


def test_fit_chinchilla_recovers_a_synthetic_surface():
    N, D = np.meshgrid(np.geomspace(1e3, 1e6, 5), np.geomspace(1e4, 1e7, 5))
    true = {"E": 1.2, "A": 20.0, "B": 80.0, "alpha": 0.35, "beta": 0.3}
    fit = scaling.fit_chinchilla(N.ravel(), D.ravel(), scaling.chinchilla_loss(N.ravel(), D.ravel(), **true))
    for k, v in true.items():
        assert fit[k] == pytest.approx(v, rel=2e-2)


# ---------------------------------------------------------------- mixture of experts


@pytest.mark.parametrize("T, E, k", [(5, 8, 2), (1, 3, 1), (7, 7, 7), (13, 6, 3)])
def test_top_k_gating_weights_are_the_renormalised_softmax(gen, T, E, k):
    logits = torch.randn(T, E, generator=gen)
    w, idx = moe.top_k_gating(logits, k)
    p = torch.softmax(logits, -1).gather(-1, idx)
    torch.testing.assert_close(w, p / p.sum(-1, keepdim=True))
    assert torch.all(logits.gather(-1, idx)[:, :-1] >= logits.gather(-1, idx)[:, 1:])


def test_load_balancing_loss_is_one_at_balance_and_larger_when_skewed(gen):
    E = 6
    uni = torch.full((12, E), 1 / E)
    assert float(moe.load_balancing_loss(uni, torch.arange(12) % E, E)) == pytest.approx(1.0)
    two = torch.stack([torch.arange(12) % E, (torch.arange(12) + 1) % E], 1)
    assert float(moe.load_balancing_loss(uni, two, E)) == pytest.approx(1.0)
    logits = torch.randn(50, E, generator=gen) + torch.tensor([4.0] + [0.0] * (E - 1))
    assert float(moe.load_balancing_loss(torch.softmax(logits, -1), logits.argmax(-1), E)) > 2


def test_moe_with_all_experts_equals_the_dense_softmax_mixture(gen):
    torch.manual_seed(0)
    layer = moe.MoE(moe.MoEConfig(d_in=5, d_out=3, d_hidden=7, n_experts=4, k=4))
    x = torch.randn(9, 5, generator=gen)
    y, info = layer(x)
    probs = torch.softmax(layer.router(x), -1)                                    # (T, E)
    dense = sum(probs[:, e:e + 1] * layer.experts[e](x) for e in range(4))
    torch.testing.assert_close(y, dense)
    assert int(info["counts"].sum()) == 9 * 4


def test_moe_shared_expert_and_active_parameters():
    cfg = moe.MoEConfig(d_in=4, d_out=2, d_hidden=8, n_experts=6, k=2, n_shared=1)
    layer = moe.MoE(cfg)
    per_expert = (4 * 8 + 8) + (8 * 2 + 2)
    assert layer.active_params() == 6 * 4 + 3 * per_expert
    y, _ = layer(torch.randn(3, 4))
    assert y.shape == (3, 2)


def test_usage_entropy_is_one_when_even_and_zero_when_collapsed():
    assert moe.usage_entropy(np.full(8, 1 / 8)) == pytest.approx(1.0)
    assert moe.usage_entropy(np.eye(8)[0]) == pytest.approx(0.0)
    assert moe.expert_usage(torch.tensor([0, 0, 1, 3]), 4).tolist() == [0.5, 0.25, 0.0, 0.25]


def test_balancing_loss_evens_out_expert_usage():
    X, y, _ = moe.clustered_regression(1500, seed=1)
    y = y / y.std()
    usage = {}
    for aux in (0.0, 0.1):
        torch.manual_seed(0)
        layer = moe.MoE(moe.MoEConfig(d_in=8, d_out=1, d_hidden=8, n_experts=8, k=1))
        moe.train_moe(layer, X, y, steps=150, aux_weight=aux)
        with torch.no_grad():
            usage[aux] = moe.usage_entropy(moe.expert_usage(layer(X)[1]["indices"], 8))
    assert usage[0.1] > usage[0.0]


# ---------------------------------------------------------------- long context


@pytest.mark.parametrize("d", [4, 16, 64, 128])
@pytest.mark.parametrize("s", [2.0, 8.0])
def test_ntk_keeps_the_fastest_frequency_and_divides_the_slowest_by_s(d, s):
    f0, f = lc.rope_inv_freq(d, 1e4, s, "none"), lc.rope_inv_freq(d, 1e4, s, "ntk")
    assert float(f[0]) == pytest.approx(1.0) and float(f0[-1] / f[-1]) == pytest.approx(s)
    torch.testing.assert_close(lc.rope_inv_freq(d, 1e4, s, "pi"), f0 / s)


def test_rope_inv_freq_rejects_unknown_methods():
    with pytest.raises(ValueError, match="method"):
        lc.rope_inv_freq(8, method="yarn")


@pytest.mark.parametrize("T, w", [(1, 1), (6, 3), (9, 20), (17, 5)])
def test_sliding_window_mask_is_a_causal_band_and_pairs_count_it(T, w):
    m = lc.sliding_window_mask(T, w)
    i, j = np.indices((T, T))
    assert np.array_equal(m.numpy(), (i - j >= 0) & (i - j < w))
    assert lc.attention_pairs(T, w) == int(m.sum()) and lc.attention_pairs(T) == T * (T + 1) // 2


def test_with_positions_copies_the_weights_of_a_gpt():
    from manifold_course.nn.gpt import GPT, GPTConfig

    torch.manual_seed(0)
    g = GPT(GPTConfig(vocab_size=11, block_size=8, d_model=16, n_layers=1, n_heads=2)).eval()
    same = lc.with_positions(g, rope_scale=1.0)
    x = torch.randint(11, (2, 8))
    torch.testing.assert_close(same(x), g(x))
    assert not torch.allclose(lc.with_positions(g, rope_scale=4.0)(x), g(x))


# ---------------------------------------------------------------- trajectories


def test_straight_path_has_zero_angles_and_unit_ratio():
    v = torch.randn(10, dtype=torch.float64)
    path = torch.arange(6, dtype=torch.float64)[:, None] * v
    assert torch.allclose(tj.turning_angles(path), torch.zeros(4, dtype=torch.float64), atol=1e-6)
    assert float(tj.length_to_chord(path)) == pytest.approx(1.0)


def test_staircase_turns_by_right_angles():
    stairs = torch.tensor([[0.0, 0], [1, 0], [1, 1], [2, 1]])
    torch.testing.assert_close(tj.turning_angles(stairs), torch.full((2,), math.pi / 2))
    assert float(tj.length_to_chord(stairs)) == pytest.approx(3 / math.sqrt(5))


def test_random_walk_null_keeps_step_norms_and_turns_by_about_a_right_angle(gen):
    paths = torch.randn(200, 5, 64, generator=gen).cumsum(1)
    walk = tj.random_walk_like(paths, seed=1)
    torch.testing.assert_close(tj.trajectory_steps(walk).norm(dim=-1), tj.trajectory_steps(paths).norm(dim=-1))
    assert abs(float(tj.turning_angles(walk).mean()) - math.pi / 2) < 0.05


def test_layer_intrinsic_dims_finds_a_plane_inside_a_wide_space(gen):
    basis = torch.randn(2, 30, generator=gen)
    hidden = [(torch.rand(1, 500, 2, generator=gen) @ basis) for _ in range(2)]
    ids, prs = tj.layer_intrinsic_dims(hidden, n_points=400)
    assert all(1.6 < v < 2.4 for v in ids) and all(v < 2.01 for v in prs)

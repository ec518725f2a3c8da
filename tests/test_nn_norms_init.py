import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from torch import nn

from manifold_course.nn import init, norms
from manifold_course.nn.mlp import MLPConfig, deep_mlp
from manifold_course.optim import landscape


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------- norms


@pytest.mark.parametrize("B, D", [(2, 1), (7, 5), (64, 33), (3, 128)])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_batch_norm_train_matches_torch_including_running_stats(gen, B, D, momentum):
    bn = nn.BatchNorm1d(D, momentum=momentum, eps=1e-3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.randn(D, generator=gen))
        bn.bias.copy_(torch.randn(D, generator=gen))
        bn.running_mean.copy_(torch.randn(D, generator=gen))
        bn.running_var.copy_(torch.rand(D, generator=gen) + 0.5)
    x = torch.randn(B, D, generator=gen, dtype=torch.float64) * 3 + 1
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    y, m, v = norms.batch_norm_train(x, bn.weight, bn.bias, rm, rv, momentum, 1e-3)
    torch.testing.assert_close(y, bn(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m, bn.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(v, bn.running_var, rtol=1e-12, atol=1e-12)
    assert torch.equal(rm, bn.running_mean) is False or momentum == 0    # inputs were not updated in place


def test_batch_norm_module_tracks_torch_over_steps_then_evaluates_the_same(gen):
    ours, ref = norms.BatchNorm1d(6, momentum=0.3), nn.BatchNorm1d(6, momentum=0.3)
    for _ in range(5):
        x = torch.randn(9, 6, generator=gen) * 2 - 1
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours.eval(), ref.eval()
    x1 = torch.randn(1, 6, generator=gen)
    torch.testing.assert_close(ours(x1), ref(x1))


def test_batch_norm_train_needs_two_samples():
    with pytest.raises(ValueError, match="B >= 2"):
        norms.batch_norm_train(torch.randn(1, 3), torch.ones(3), torch.zeros(3), torch.zeros(3), torch.ones(3))


def test_batch_norm_running_variance_is_unbiased(gen):
    x = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    _, _, v = norms.batch_norm_train(x, torch.ones(3), torch.zeros(3), torch.zeros(3), torch.zeros(3), 1.0)
    torch.testing.assert_close(v, x.var(0))                             # momentum 1: exactly the unbiased variance


@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 7), (1, 1), (4, 3)])
def test_layer_norm_matches_torch(gen, shape):
    x = torch.randn(shape, generator=gen) * 4 + 2
    g, b = torch.randn(shape[-1], generator=gen), torch.randn(shape[-1], generator=gen)
    torch.testing.assert_close(norms.layer_norm(x, g, b, 1e-5), F.layer_norm(x, shape[-1:], g, b, 1e-5))
    ln = nn.LayerNorm(shape[-1])
    ours = norms.LayerNorm(shape[-1])
    ours.load_state_dict(ln.state_dict())
    torch.testing.assert_close(ours(x), ln(x))


@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 7), (1, 13), (4, 1)])
def test_rms_norm_matches_torch(gen, shape):
    x = torch.randn(shape, generator=gen) * 3
    w = torch.randn(shape[-1], generator=gen)
    ref = nn.RMSNorm(shape[-1], eps=1e-6)
    with torch.no_grad():
        ref.weight.copy_(w)
    torch.testing.assert_close(norms.rms_norm(x, w, 1e-6), ref(x))
    ours = norms.RMSNorm(shape[-1], eps=1e-6)
    ours.load_state_dict(ref.state_dict())
    torch.testing.assert_close(ours(x), ref(x))


def test_layer_norm_is_invariant_to_shift_and_scale_of_each_row(gen):
    x = torch.randn(6, 32, generator=gen, dtype=torch.float64)
    a = torch.rand(6, 1, generator=gen, dtype=torch.float64) * 10 + 0.1
    c = torch.randn(6, 1, generator=gen, dtype=torch.float64) * 5
    g, b = torch.ones(32, dtype=torch.float64), torch.zeros(32, dtype=torch.float64)
    torch.testing.assert_close(norms.layer_norm(a * x + c, g, b, 0.0), norms.layer_norm(x, g, b, 0.0))


def test_rms_norm_is_invariant_to_scale_but_not_to_shift(gen):
    x = torch.randn(6, 32, generator=gen, dtype=torch.float64)
    w = torch.ones(32, dtype=torch.float64)
    torch.testing.assert_close(norms.rms_norm(7.5 * x, w, 0.0), norms.rms_norm(x, w, 0.0))
    assert (norms.rms_norm(x + 3.0, w, 0.0) - norms.rms_norm(x, w, 0.0)).abs().max() > 0.1


def test_rms_norm_puts_rows_on_the_sphere_of_radius_sqrt_d(gen):
    y = norms.rms_norm(torch.randn(10, 50, generator=gen, dtype=torch.float64), torch.ones(50, dtype=torch.float64), 0.0)
    torch.testing.assert_close(y.norm(dim=1), torch.full((10,), math.sqrt(50), dtype=torch.float64))


@pytest.mark.parametrize("B", [4, 16, 64])
def test_batch_stat_noise_follows_one_over_sqrt_batch(gen, B):
    x = torch.randn(20000, 8, generator=gen, dtype=torch.float64) * 3 + 2
    mean_noise, std_noise = norms.batch_stat_noise(x, B, n_batches=2000)
    assert abs(mean_noise * math.sqrt(B) - 1) < 0.1
    assert abs(std_noise * math.sqrt(2 * B) - 1) < 0.25                  # 1 / sqrt(2B) holds for large B


# ---------------------------------------------------------------- init


@pytest.mark.parametrize("shape, fan_in, fan_out", [((30, 70), 70, 30), ((16, 3, 5, 5), 75, 400), ((8, 4, 3), 12, 24)])
def test_fans_count_the_receptive_field(shape, fan_in, fan_out):
    assert init.fans(shape) == (fan_in, fan_out)
    assert nn.init._calculate_fan_in_and_fan_out(torch.empty(shape)) == (fan_in, fan_out)


@pytest.mark.parametrize("shape", [(512, 512), (300, 700), (64, 3, 5, 5)])
def test_initialisers_have_the_documented_variance(shape):
    fan_in, fan_out = init.fans(shape)
    targets = {init.kaiming_normal: 2 / fan_in, init.xavier_uniform: 2 / (fan_in + fan_out),
               init.xavier_normal: 2 / (fan_in + fan_out), init.pytorch_default: 1 / (3 * fan_in),
               init.standard_normal: 1.0}
    N = math.prod(shape)
    for fn, target in targets.items():
        var = float(fn(shape, 1).double().var())
        assert abs(var / target - 1) < 6 * math.sqrt(2 / N) + 0.01, fn.__name__


def test_pytorch_default_is_the_bound_nn_linear_uses_and_not_he_init():
    torch.manual_seed(0)
    lin = nn.Linear(700, 300).requires_grad_(False)
    ours = init.pytorch_default((300, 700), 0)
    bound = 1 / math.sqrt(700)
    assert float(lin.weight.abs().max()) <= bound and float(ours.abs().max()) <= bound
    assert float(ours.abs().max()) > 0.99 * bound
    assert abs(float(lin.weight.var()) / float(ours.var()) - 1) < 0.02
    assert abs(float(ours.var()) * 700 - 1 / 3) < 0.01                    # six times smaller than He's 2 / fan_in


def test_kaiming_uniform_matches_torch_bound():
    w = torch.empty(200, 90)
    nn.init.kaiming_uniform_(w, a=0.3)
    ours = init.kaiming_uniform((200, 90), 0, a=0.3)
    assert abs(float(w.abs().max()) / float(ours.abs().max()) - 1) < 0.01


def test_initialisers_are_gaussian_or_uniform_as_named():
    k = init.kaiming_normal((400, 400), 0).double().reshape(-1).numpy()
    u = init.xavier_uniform((400, 400), 0).double().reshape(-1).numpy()
    assert stats.kstest(k / k.std(), "norm").statistic < 0.01
    b = math.sqrt(6 / 800)
    assert stats.kstest(u, "uniform", args=(-b, 2 * b)).statistic < 0.01


def test_initialisers_are_deterministic_under_a_seed():
    for fn in (init.kaiming_normal, init.xavier_uniform, init.orthogonal, init.pytorch_default):
        assert torch.equal(fn((5, 7), 3), fn((5, 7), 3))
        assert not torch.equal(fn((5, 7), 3), fn((5, 7), 4))


@pytest.mark.parametrize("shape", [(8, 8), (5, 9), (9, 5), (6, 2, 3)])
def test_orthogonal_has_orthonormal_rows_or_columns(shape):
    W = init.orthogonal(shape, 0, gain=2.0).double().reshape(shape[0], -1)
    small = min(W.shape)
    G = W @ W.T if W.shape[0] == small else W.T @ W
    torch.testing.assert_close(G, 4.0 * torch.eye(small, dtype=torch.float64), atol=1e-5, rtol=0)


def test_relu_kaiming_keeps_the_signal_xavier_collapses_standard_explodes():
    kaiming = init.activation_std_profile(50, 512, "kaiming", "relu", seed=0)
    assert all(0.5 < s / kaiming[0] < 2 for s in kaiming)
    xavier = init.activation_std_profile(50, 256, "xavier", "relu", seed=0)
    assert xavier[-1] / xavier[0] < 1e-3
    standard = init.activation_std_profile(50, 256, "standard", "relu", seed=0)
    assert not math.isfinite(standard[-1]) or standard[-1] > 1e6


def test_first_layer_std_matches_the_relu_formula():
    # z ~ N(0, 2): std(ReLU(z)) = sqrt(2 (1/2 - 1/(2 pi))) = sqrt(1 - 1/pi)
    s = init.activation_std_profile(1, 1024, "kaiming", "relu", seed=1, batch=512)[0]
    assert abs(s - math.sqrt(1 - 1 / math.pi)) < 0.02


def test_gradient_profile_is_exactly_preserved_by_orthogonal_linear_layers():
    g = init.gradient_std_profile(20, 64, "orthogonal", "linear", seed=0)
    assert max(g) / min(g) < 1.0001
    assert init.gradient_std_profile(30, 128, "xavier", "relu", seed=0)[0] < 1e-3


def test_jacobian_of_a_linear_net_is_the_product_of_its_weights():
    net = init.deep_net(4, 6, "xavier", "linear", seed=2).double()
    P = torch.eye(6, dtype=torch.float64)
    for m in net:
        if isinstance(m, nn.Linear):
            P = m.weight.detach() @ P
    s = init.jacobian_singular_values(net, torch.randn(6, dtype=torch.float64))
    torch.testing.assert_close(s, torch.linalg.svdvals(P))
    assert torch.all(s[:-1] >= s[1:])


def test_deep_orthogonal_linear_net_is_an_isometry_and_gaussian_is_not():
    x = torch.randn(32, dtype=torch.float64)
    s_orth = init.jacobian_singular_values(init.deep_net(32, 32, "orthogonal", "linear", seed=0).double(), x)
    s_gauss = init.jacobian_singular_values(init.deep_net(32, 32, "xavier", "linear", seed=0).double(), x)
    torch.testing.assert_close(s_orth, torch.ones(32, dtype=torch.float64), rtol=0, atol=1e-5)   # float32 weights
    assert init.singular_value_spread(s_orth) < 1e-6 and init.singular_value_spread(s_gauss) > 1.0


def test_jacobian_works_on_batchnorm_models_in_eval_mode():
    m = deep_mlp(MLPConfig(d_in=5, width=8, depth=2, n_out=3, norm="batch"), seed=0).eval()
    assert init.jacobian_singular_values(m, torch.randn(5)).shape == (3,)


def test_constant_init_keeps_hidden_units_identical_during_training():
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    init.constant_init_(net, 0.1)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    X, y = torch.randn(40, 6), torch.randint(0, 3, (40,))
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(net(X), y).backward()
        opt.step()
    assert init.unit_symmetry_gap(net[0].weight.detach()) < 1e-6     # identical up to float round-off
    assert float(net[0].weight.detach().std()) > 0                      # the weights did move, all together


def test_init_linear_leaves_the_global_generator_alone():
    lin = nn.Linear(4, 4)
    state = torch.random.get_rng_state()
    init.init_linear_(lin, "kaiming", seed=0)
    init.deep_net(3, 4, "xavier", "tanh", seed=0)
    assert torch.equal(state, torch.random.get_rng_state())


# ---------------------------------------------------------------- landscape


def _small_model(seed=0, norm=None, residual=False):
    return deep_mlp(MLPConfig(d_in=6, width=8, depth=3, n_out=4, norm=norm, residual=residual), seed=seed).eval()


def test_filter_normalize_matches_filter_norms_and_zeros_one_dimensional_tensors():
    m = _small_model(norm="batch")
    params = [p.detach() for p in m.parameters()]
    gen = torch.Generator().manual_seed(1)
    raw = [torch.randn(p.shape, generator=gen) for p in params]
    before = [r.clone() for r in raw]
    d = landscape.filter_normalize(raw, params)
    for di, p, r, b in zip(d, params, raw, before):
        assert torch.equal(r, b)
        if p.dim() == 1:
            assert torch.count_nonzero(di) == 0
        else:
            torch.testing.assert_close(di.norm(dim=1), p.norm(dim=1))
            cos = F.cosine_similarity(di, r, dim=1)                        # same directions, new lengths
            torch.testing.assert_close(cos, torch.ones_like(cos))


def test_filter_normalize_treats_each_conv_output_channel_as_a_filter():
    p = torch.randn(5, 3, 3, 3)
    d = landscape.filter_normalize([torch.randn(5, 3, 3, 3)], [p])[0]
    torch.testing.assert_close(d.reshape(5, -1).norm(dim=1), p.reshape(5, -1).norm(dim=1))


def test_loss_surface_centre_is_the_loss_and_parameters_are_restored_bit_for_bit():
    m = _small_model(residual=True).double()
    X, y = torch.randn(30, 6, dtype=torch.float64), torch.randint(0, 4, (30,))
    state = {k: v.clone() for k, v in m.state_dict().items()}
    params = list(m.parameters())
    d1, d2 = landscape.random_direction(params, 1), landscape.random_direction(params, 2)
    grid = landscape.loss_surface_2d(m, F.cross_entropy, X, y, d1, d2, [-0.5, 0.0, 0.5], [-1.0, 0.0, 1.0, 2.0])
    assert grid.shape == (3, 4) and grid.dtype == torch.float64
    assert float(grid[1, 1]) == pytest.approx(F.cross_entropy(m(X), y).item(), rel=1e-12)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items())
    line = landscape.loss_along_line(m, F.cross_entropy, X, y, d1, [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(line, grid[:, 1].numpy(), rtol=1e-12)


def test_loss_surface_restores_parameters_when_the_loss_raises():
    m = _small_model()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    params = list(m.parameters())

    def bad_loss(out, y):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        landscape.loss_surface_2d(m, bad_loss, torch.randn(3, 6), torch.zeros(3, dtype=torch.long),
                                  landscape.random_direction(params, 0), landscape.random_direction(params, 1), [1.0], [1.0])
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items())


def test_slice_hessian_is_exact_on_quadratics_and_finds_saddles():
    a = np.linspace(-1, 1, 11)
    A, B = np.meshgrid(a, a, indexing="ij")
    bowl = 3 * A**2 + A * B + B**2
    lo, hi = landscape.slice_hessian_eigenvalues(bowl, a, a)
    exact = np.linalg.eigvalsh([[6, 1], [1, 2]])
    np.testing.assert_allclose(lo, exact[0], atol=1e-9)
    np.testing.assert_allclose(hi, exact[1], atol=1e-9)
    assert landscape.nonconvex_fraction(bowl, a, a) == 0.0
    assert landscape.nonconvex_fraction(A**2 - B**2, a, a) == 1.0


def test_total_and_excess_variation_of_simple_surfaces():
    a = np.linspace(-1, 1, 5)
    A, B = np.meshgrid(a, a, indexing="ij")
    assert landscape.total_variation(2 * A) == pytest.approx(0.5)      # steps of 1 along alpha, 0 along beta
    assert landscape.excess_variation(A**2 + B**2) == pytest.approx(1.0)
    assert landscape.excess_variation(np.cos(6 * A) + B**2) > 1.5


def test_cliff_ratio_tells_a_bowl_from_a_plateau_with_a_cliff_at_any_scale():
    a = np.linspace(-1, 1, 21)
    A, B = np.meshgrid(a, a, indexing="ij")
    bowl = A**2 + B**2
    cliff = 0.01 * bowl + 100.0 * np.maximum(bowl - 1, 0)             # a flat floor walled in beyond radius 1
    assert landscape.cliff_ratio(bowl) < 3
    assert landscape.cliff_ratio(cliff) > 100
    assert landscape.cliff_ratio(1e4 * cliff) == pytest.approx(landscape.cliff_ratio(cliff))


def test_lesion_of_no_block_is_the_intact_accuracy_and_the_model_is_untouched():
    m = _small_model(residual=True)
    X = torch.randn(50, 6)
    y = m(X).argmax(1).detach()
    state = {k: v.clone() for k, v in m.state_dict().items()}
    assert landscape.lesion_accuracy(m, -1, X, y) == 1.0                 # index -1 matches no block
    acc = landscape.lesion_accuracy(m, 1, X, y)
    h = m.blocks[2](m.blocks[0](m.stem(X)))
    assert acc == float((m.head(h).argmax(1) == y).double().mean())
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in state.items())


@pytest.mark.parametrize("n", [0, 1, 7, 54, 333])
def test_path_lengths_are_binomial(n):
    p = landscape.path_length_distribution(n)
    np.testing.assert_allclose(p, stats.binom.pmf(np.arange(n + 1), n, 0.5), rtol=1e-9, atol=1e-300)
    assert p.sum() == pytest.approx(1.0)


def test_path_lengths_do_not_overflow_for_long_nets():
    p = landscape.path_length_distribution(1100)
    assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0) and p[0] == 0.0
    assert (np.arange(1101) * p).sum() == pytest.approx(550.0)


def test_structure_functions_separate_smooth_and_brownian_profiles():
    qs, lags = [1, 2, 3], [1, 2, 4, 8]
    smooth = landscape.structure_function_exponents(np.linspace(-1, 1, 2001) ** 2, qs, lags)
    brown = landscape.structure_function_exponents(np.cumsum(np.random.default_rng(0).standard_normal(20000)), qs, lags)
    np.testing.assert_allclose(smooth, qs, atol=0.05)
    np.testing.assert_allclose(brown, np.array(qs) / 2, atol=0.08)

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from numpy.testing import assert_allclose

from manifold_course.data import digits
from manifold_course.nn import approximation, convnext, equivariance, residual
from manifold_course.nn.mlp import MLPConfig, deep_mlp

# ---------------------------------------------------------------- approximation


def test_bump_tends_to_the_indicator():
    x = torch.tensor([-0.5, 0.2, 0.5, 0.8, 1.5], dtype=torch.float64)
    assert_allclose(approximation.bump(x, 0.0, 1.0, 1e4).numpy(), [0, 1, 1, 1, 0], atol=1e-12)


@pytest.mark.parametrize("n", [1, 3, 10, 37])
def test_bump_approximation_error_below_lipschitz_bound(n):
    f_hat = approximation.bump_approximation(torch.sin, 0.0, math.pi, n, 1e5)
    assert approximation.sup_error(torch.sin, f_hat, 0.0, math.pi) <= math.pi / n + 1e-3


def test_bump_approximation_keeps_shape_and_dtype():
    f_hat = approximation.bump_approximation(torch.cos, -1.0, 2.0, 5, 30.0)
    x = torch.linspace(-1, 2, 7, dtype=torch.float32)
    assert f_hat(x).shape == (7,) and f_hat(x).dtype == torch.float32


@pytest.mark.parametrize("n", [2, 3, 9, 50])
def test_relu_interpolant_passes_through_knots_with_n_minus_one_units(n):
    gen = torch.Generator().manual_seed(n)
    xs = torch.sort(torch.rand(n, generator=gen, dtype=torch.float64) * 10).values
    ys = torch.randn(n, generator=gen, dtype=torch.float64)
    net = approximation.relu_interpolant(xs, ys)
    assert net[0].out_features == n - 1
    t = torch.linspace(float(xs[0]), float(xs[-1]), 500, dtype=torch.float64)
    with torch.no_grad():
        assert_allclose(net(xs[:, None])[:, 0].numpy(), ys.numpy(), atol=1e-10)
        assert_allclose(net(t[:, None])[:, 0].numpy(), np.interp(t.numpy(), xs.numpy(), ys.numpy()), atol=1e-10)


@pytest.mark.parametrize("sizes", [[3], [64, 10], [7, 13, 5, 3], [1, 100, 1]])
def test_mlp_param_count_matches_torch(sizes):
    net = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
    assert approximation.mlp_param_count(sizes) == sum(p.numel() for p in net.parameters())


def test_fully_connected_megapixel_layer_needs_a_billion_weights():
    assert approximation.mlp_param_count([10**6, 1000]) == 10**9 + 1000


@pytest.mark.parametrize("H, W, C_in, C_out, k", [(8, 8, 1, 4, 3), (5, 7, 3, 2, 5), (6, 6, 2, 2, 1)])
def test_conv_vs_dense_params_match_torch_layers(H, W, C_in, C_out, k):
    conv, dense = approximation.conv_vs_dense_params(H, W, C_in, C_out, k)
    assert conv == sum(p.numel() for p in nn.Conv2d(C_in, C_out, k).parameters())
    assert dense == sum(p.numel() for p in nn.Linear(H * W * C_in, H * W * C_out).parameters())


def test_least_squares_fit_error_shrinks_quadratically_for_smooth_target():
    f = lambda x: x**3 - 0.5 * x
    errs = [approximation.sup_error(f, approximation.least_squares_relu_fit(f, w)) for w in (16, 32, 64)]
    assert 3.0 < errs[0] / errs[1] < 5.0 and 3.0 < errs[1] / errs[2] < 5.0


def test_no_continuous_fit_beats_half_the_jump_of_a_step():
    f = lambda x: (x > 0.1).double()
    assert approximation.sup_error(f, approximation.least_squares_relu_fit(f, 128)) >= 0.5


def test_fit_one_hidden_layer_learns_a_line():
    x = torch.linspace(-1, 1, 50, dtype=torch.float64)
    f_hat = approximation.fit_one_hidden_layer(x, 2 * x - 1, width=8, steps=800)
    assert float((f_hat(x) - (2 * x - 1)).abs().max()) < 0.05


@pytest.mark.parametrize("depth", [1, 2, 5, 8])
def test_tent_map_net_has_two_to_the_depth_pieces(depth):
    x = torch.linspace(0, 1, 40001, dtype=torch.float64) * (1 - 2e-6) + math.pi * 1e-7
    assert approximation.count_pieces_1d(approximation.tent_map_net(depth), x) == 2**depth


def test_nearest_point_on_curve_is_exact_for_points_on_the_curve():
    curve = torch.stack([torch.linspace(0, 1, 11), torch.linspace(0, 1, 11) ** 2], dim=1)
    assert torch.equal(approximation.nearest_point_on_curve(curve[[3, 7]] + 1e-4, curve), curve[[3, 7]])


# ---------------------------------------------------------------- equivariance


def test_circular_conv_matches_torch_circular_padding():
    x, w = torch.randn(2, 3, 13), torch.randn(4, 3, 5)
    ref = nn.Conv1d(3, 4, 5, padding=2, padding_mode="circular", bias=False)
    with torch.no_grad():
        ref.weight.copy_(w)
        torch.testing.assert_close(equivariance.circular_conv1d(x, w), ref(x))


@pytest.mark.parametrize("T, K, s", [(16, 3, 1), (13, 4, 5), (7, 7, 2)])
def test_circular_conv_is_shift_equivariant(T, K, s):
    x, w = torch.randn(2, 3, T), torch.randn(4, 3, K)
    sh = lambda z: equivariance.shift(z, s)
    assert equivariance.equivariance_error(lambda z: equivariance.circular_conv1d(z, w), sh, sh, x) < 1e-6


def test_global_pooling_makes_conv_features_invariant_but_flattening_does_not():
    x, w = torch.randn(3, 2, 11), torch.randn(5, 2, 3)
    feat = lambda z: equivariance.circular_conv1d(z, w).relu()
    sh, ident = lambda z: equivariance.shift(z, 2), lambda y: y
    assert equivariance.equivariance_error(lambda z: feat(z).mean(-1), sh, ident, x) < 1e-6
    assert equivariance.equivariance_error(lambda z: feat(z).flatten(1), sh, ident, x) > 0.1


def test_self_attention_matches_torch_sdpa():
    X, Wq, Wk, Wv = torch.randn(2, 9, 6), torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 5)
    ref = F.scaled_dot_product_attention(X @ Wq, X @ Wk, X @ Wv)
    torch.testing.assert_close(equivariance.self_attention(X, Wq, Wk, Wv), ref, rtol=1e-5, atol=1e-5)


def test_attention_is_permutation_equivariant_only_without_positions():
    T, D = 9, 6
    X, W = torch.randn(T, D, dtype=torch.float64), torch.randn(3, D, D, dtype=torch.float64)
    perm = torch.randperm(T)
    P = equivariance.permute_rows(perm)
    pe = equivariance.sinusoidal_positions(T, D)
    plain = equivariance.equivariance_error(lambda z: equivariance.self_attention(z, *W), P, P, X)
    with_pe = equivariance.equivariance_error(lambda z: equivariance.self_attention(z, *W, pe=pe), P, P, X)
    assert plain < 1e-12 and with_pe > 1e-2


@pytest.mark.parametrize("D", [4, 7])
def test_sinusoidal_positions_known_values(D):
    pe = equivariance.sinusoidal_positions(5, D)
    assert pe.shape == (5, D)
    assert_allclose(pe[:, 0].numpy(), np.sin(np.arange(5)), atol=1e-12)
    assert_allclose(pe[:, 1].numpy(), np.cos(np.arange(5)), atol=1e-12)
    assert_allclose(pe[0, 1::2].numpy(), 1.0)


def test_rnn_influence_is_causal_and_decays_with_lag():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 12, batch_first=True)
    G = equivariance.rnn_influence(rnn, torch.randn(20, 3))
    assert G.shape == (20, 20) and float(G.triu(1).abs().max()) == 0.0
    lag = equivariance.influence_by_lag(G)
    assert float(lag[15]) < 1e-2 * float(lag[0])


def test_hidden_unit_permutation_and_rescaling_are_exact_symmetries_rotation_is_not():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    X = torch.randn(50, 5)
    Q, _ = torch.linalg.qr(torch.randn(8, 8))
    assert equivariance.relative_change(net, equivariance.permute_hidden(net, torch.randperm(8)), X) < 1e-6
    assert equivariance.relative_change(net, equivariance.rescale_hidden(net, torch.rand(8) + 0.1), X) < 1e-5
    assert equivariance.relative_change(net, equivariance.rotate_hidden(net, Q), X) > 0.05


# ---------------------------------------------------------------- residual


@pytest.mark.parametrize("C", [1, 3, 8])
def test_resblock_shape_and_param_count(C):
    block = residual.ResBlock(C)
    assert block(torch.randn(2, C, 5, 7)).shape == (2, C, 5, 7)
    assert sum(p.numel() for p in block.parameters()) == residual.resblock_param_count(C)


def test_resblock_with_zero_convs_in_eval_is_relu_of_input():
    block = residual.ResBlock(4).eval()
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv2.weight.zero_()
    x = torch.randn(3, 4, 6, 6)
    torch.testing.assert_close(block(x), torch.relu(x))


def test_grad_norms_per_layer_match_backward_and_ignore_stale_grads():
    model = deep_mlp(MLPConfig(depth=3, width=10), seed=0)
    x, y = torch.randn(8, 64), torch.randint(0, 10, (8,))
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    got = residual.grad_norms_per_layer(model, x, y)
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    want = [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, nn.Linear)]
    assert_allclose(got, want, rtol=1e-6)


def test_plain_tanh_gradients_vanish_residual_ones_do_not():
    X, y = digits()
    plain = residual.grad_norms_per_layer(deep_mlp(MLPConfig(depth=32, activation="tanh"), seed=0), X[:64], y[:64])
    res = residual.grad_norms_per_layer(deep_mlp(MLPConfig(depth=32, activation="tanh", residual=True), seed=0), X[:64], y[:64])
    assert plain[1] / plain[-2] < 0.1 and 0.3 <= res[1] / res[-2] <= 3


def test_jacobian_singular_values_of_linear_map_are_its_singular_values():
    A = torch.randn(5, 4, dtype=torch.float64)
    sv = residual.jacobian_singular_values(lambda h: A @ h, torch.randn(4, dtype=torch.float64))
    torch.testing.assert_close(sv, torch.linalg.svdvals(A))


def test_orthogonal_init_gives_an_isometric_linear_stack():
    model = residual.orthogonal_(deep_mlp(MLPConfig(depth=10, width=12, activation="identity"), seed=0).double())
    sv = residual.jacobian_singular_values(residual.blocks_map(model), torch.randn(12, dtype=torch.float64))
    assert_allclose(sv.numpy(), 1.0, atol=1e-10)


@pytest.mark.parametrize("n", [2, 4, 7])
def test_sinkhorn_is_doubly_stochastic_and_products_have_unit_spectral_norm(n):
    gen = torch.Generator().manual_seed(n)
    mats = torch.stack([residual.sinkhorn(torch.randn(n, n, generator=gen, dtype=torch.float64), iters=200)
                        for _ in range(20)])
    assert_allclose(mats.sum(-1).numpy(), 1.0, atol=1e-8)
    assert_allclose(mats.sum(-2).numpy(), 1.0, atol=1e-12)
    assert (mats > 0).all()
    assert_allclose(residual.product_spectral_norms(mats).numpy(), 1.0, atol=1e-6)


def test_fixed_point_solve_contraction_converges_within_banach_bound():
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(10, 10, generator=gen, dtype=torch.float64)
    W = 0.8 * W / torch.linalg.matrix_norm(W, ord=2)
    g = residual.implicit_tanh_layer(W, torch.randn(10, 3, generator=gen, dtype=torch.float64),
                                     torch.randn(3, generator=gen, dtype=torch.float64))
    z0 = torch.zeros(10, dtype=torch.float64)
    z_star, n_iter, res = residual.fixed_point_solve(g, z0, tol=1e-12)
    assert float((g(z_star) - z_star).norm()) < 1e-11
    assert n_iter <= math.ceil(math.log(1e-12 * 0.2 / res[0]) / math.log(0.8)) + 1


# ---------------------------------------------------------------- convnext


@pytest.mark.parametrize("C", [1, 5, 16])
def test_convnext_block_shape_param_count_and_residual(C):
    block = convnext.ConvNeXtBlock(C)
    x = torch.randn(2, C, 6, 9)
    assert block(x).shape == x.shape
    assert sum(p.numel() for p in block.parameters()) == convnext.convnext_block_param_count(C)
    with torch.no_grad():
        block.pwconv2.weight.zero_()
        block.pwconv2.bias.zero_()
    torch.testing.assert_close(block(x), x)


def test_depthwise_conv_has_c_k_squared_weights():
    assert nn.Conv2d(8, 8, 7, groups=8, bias=False).weight.numel() == 8 * 49


@pytest.mark.parametrize("B, C, H, W, p", [(2, 3, 8, 8, 2), (1, 2, 6, 9, 3), (3, 1, 4, 4, 4), (1, 5, 3, 2, 1)])
def test_patchify_matches_unfold_and_round_trips(B, C, H, W, p):
    x = torch.randn(B, C, H, W)
    tokens = convnext.patchify(x, p)
    assert tokens.shape == (B, H * W // p**2, C * p * p)
    assert torch.equal(tokens, F.unfold(x, p, stride=p).transpose(1, 2))
    assert torch.equal(convnext.unpatchify(tokens, p, H, W), x)
    assert torch.equal(F.fold(tokens.transpose(1, 2), (H, W), p, stride=p), x)


@pytest.mark.parametrize("layers, r", [([], 1), ([(3, 1)] * 3, 7), ([(7, 2), (3, 2)], 11), ([(4, 4), (7, 1)], 28),
                                       ([(3, 1), (3, 1), (2, 2)] * 2, 16)])
def test_receptive_field_known_stacks(layers, r):
    assert convnext.receptive_field(layers) == r


def test_receptive_field_matches_gradient_support():
    convs = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2), nn.Conv2d(1, 1, 5, stride=1), nn.Conv2d(1, 1, 3, stride=2))
    x = torch.randn(1, 1, 41, 41, requires_grad=True)
    convs(x)[0, 0, 0, 0].backward()
    support = int((x.grad[0, 0].abs().sum(0) > 0).sum())
    assert support == convnext.receptive_field([(3, 2), (5, 1), (3, 2)])


@pytest.mark.parametrize("C, depth", [(8, 1), (16, 2)])
def test_tiny_classifier_param_counts_match_closed_forms(C, depth):
    res, cnx = convnext.TinyResNet(C, depth), convnext.TinyConvNeXt(C, depth, patch=2)
    assert sum(p.numel() for p in res.parameters()) == convnext.tiny_resnet_param_count(C, depth)
    assert sum(p.numel() for p in cnx.parameters()) == convnext.tiny_convnext_param_count(C, depth, 2)
    x = torch.randn(3, 1, 8, 8)
    assert res(x).shape == (3, 10) and cnx(x).shape == (3, 10)


def test_conv_flops_of_a_single_conv():
    conv = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1))
    assert convnext.conv_flops(conv, torch.randn(4, 2, 5, 6)) == 3 * 5 * 6 * 2 * 9

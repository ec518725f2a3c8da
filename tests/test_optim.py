import math

import numpy as np
import pytest
import torch
from torch import nn

from manifold_course.optim import critical_points, hessian, isotropy, msign, natural_gradient, second_order
from manifold_course.probability.fisher import fisher_gaussian

F64 = torch.float64


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _mlp_closure(n=32, d_in=10, h=10, seed=0, dtype=F64):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d_in, h), nn.Tanh(), nn.Linear(h, 1)).to(dtype)
    X, y = torch.randn(n, d_in, dtype=dtype), torch.randn(n, 1, dtype=dtype)
    return hessian.model_loss_closure(model, nn.MSELoss(), (X, y))


def _quadratic_closure(A, shapes, seed=0):
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(*s, generator=gen, dtype=F64).requires_grad_(True) for s in shapes]
    A = torch.as_tensor(A, dtype=F64)

    def loss():
        th = torch.cat([p.reshape(-1) for p in params])
        return 0.5 * th @ A @ th

    return loss, params


# ---------------------------------------------------------------- critical points


@pytest.mark.parametrize("eigs, expected", [
    ([2.0, -2.0], "saddle"), ([1.0, 3.0, 0.5], "min"), ([-1.0, -0.2], "max"), ([0.0, 0.0], "degenerate"),
    ([1.0, 0.0, -1.0], "saddle"), ([1.0, 2.0, 0.0], "degenerate"), ([-1.0, 0.0], "degenerate"), ([5.0], "min"),
])
def test_classify_critical_point_uses_eigenvalue_signs(rng, eigs, expected):
    Q, _ = np.linalg.qr(rng.standard_normal((len(eigs), len(eigs))))
    H = Q @ np.diag(eigs) @ Q.T
    assert critical_points.classify_critical_point(H, tol=1e-8) == expected


def test_classify_critical_point_respects_tolerance():
    H = np.diag([1.0, 1e-10])
    assert critical_points.classify_critical_point(H, tol=1e-8) == "degenerate"
    assert critical_points.classify_critical_point(H, tol=1e-12) == "min"


def test_saddle_index_counts_negative_fraction():
    assert critical_points.saddle_index(np.diag([1.0, -1.0, -2.0, 3.0])) == 0.5


def test_saddle_hessians_match_classification():
    H_quad = np.array([[2.0, 0.0], [0.0, -2.0]])
    assert critical_points.classify_critical_point(H_quad) == "saddle"
    g = critical_points.monkey_saddle_grad(np.zeros(2))
    assert np.allclose(g, 0.0)


def test_gd_on_stable_manifold_stalls_at_saddle():
    path = critical_points.gd_trajectory(critical_points.quadratic_saddle_grad, np.array([1.0, 0.0]), 0.1, 300)
    assert path.shape == (301, 2)
    assert np.linalg.norm(path[-1]) < 1e-20
    assert critical_points.escape_steps(critical_points.quadratic_saddle_grad, np.array([1.0, 0.0]), 0.1, 0.0,
                                        max_steps=2000) == 2000


def test_escape_steps_shrink_as_noise_grows():
    steps = [critical_points.escape_steps(critical_points.quadratic_saddle_grad, np.array([1.0, 0.0]), 0.1, eps,
                                          max_steps=5000) for eps in (1e-12, 1e-9, 1e-6, 1e-3)]
    assert all(a > b for a, b in zip(steps, steps[1:]))
    predicted = math.log(1 / 1e-9) / math.log(1.2)
    assert abs(steps[1] - predicted) < 0.15 * predicted


def test_goe_fraction_matches_exact_d2_and_beats_coin_flip():
    f2 = critical_points.frac_positive_definite_goe(2, 100_000, seed=1)
    assert abs(f2 - (2 - math.sqrt(2)) / 4) < 0.005
    assert abs(critical_points.frac_positive_definite_goe(1, 50_000, seed=2) - 0.5) < 0.01
    f4 = critical_points.frac_positive_definite_goe(4, 100_000, seed=3)
    assert f4 < 2.0**-4 / 5


def test_goe_matrices_are_symmetric(rng):
    H = critical_points.goe_matrices(5, 3, rng)
    assert H.shape == (3, 5, 5)
    np.testing.assert_allclose(H, np.swapaxes(H, -1, -2))


def test_wide_basin_fraction_grows_with_moderate_noise():
    fr = [critical_points.wide_basin_fraction(s, n_runs=2000, seed=0) for s in (0.0, 0.5, 0.7)]
    assert fr[0] < fr[1] < fr[2]
    assert abs(fr[0] - critical_points.basin_boundary_fraction()) < 0.03


def test_linear_net_minimum_has_h_squared_zero_modes():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(40, 5, generator=gen, dtype=F64)
    Y = X @ torch.randn(5, 4, generator=gen, dtype=F64) + 0.1 * torch.randn(40, 4, generator=gen, dtype=F64)
    W1, W2 = critical_points.linear_net_minimum(X, Y, h=3)
    W1.requires_grad_(True)
    W2.requires_grad_(True)
    loss = lambda: ((X @ W1.T @ W2.T - Y) ** 2).mean()  # noqa: E731
    assert hessian.flat_grad(loss, [W1, W2]).norm() < 1e-10
    e = torch.linalg.eigvalsh(hessian.full_hessian(loss, [W1, W2]))
    assert int((e.abs() < 1e-8 * e.abs().max()).sum()) == 9
    assert float(e.min()) > -1e-10


# ---------------------------------------------------------------- Hessian tools


def test_full_hessian_of_seed_mlp_is_symmetric_121x121():
    loss, params = _mlp_closure()
    H = hessian.full_hessian(loss, params)
    assert H.shape == (121, 121)
    torch.testing.assert_close(H, H.T, rtol=0, atol=1e-12)


def test_full_hessian_matches_torch_func_hessian():
    loss, params = _quadratic_closure(np.diag([1.0, 2.0, 3.0, 4.0, 5.0]), [(2,), (3,)])
    torch.testing.assert_close(hessian.full_hessian(loss, params), torch.diag(torch.arange(1.0, 6.0, dtype=F64)))
    f = lambda x: (x.sin() * x.roll(1)).sum() ** 2  # noqa: E731
    x = torch.randn(7, dtype=F64, requires_grad=True)
    torch.testing.assert_close(hessian.full_hessian(lambda: f(x), [x]), torch.func.hessian(f)(x.detach()))


@pytest.mark.parametrize("n, h", [(32, 10), (1, 5), (7, 3)])
def test_hvp_equals_full_hessian_times_v(n, h):
    loss, params = _mlp_closure(n=n, h=h, seed=n)
    H = hessian.full_hessian(loss, params)
    v = torch.randn(H.shape[0], dtype=F64)
    torch.testing.assert_close(hessian.hvp(loss, params, v), H @ v, rtol=1e-10, atol=1e-12)


def test_hvp_keeps_float32():
    loss, params = _mlp_closure(dtype=torch.float32)
    out = hessian.hvp(loss, params, torch.randn(121))
    assert out.dtype == torch.float32 and out.shape == (121,)


def test_hvp_of_linear_loss_is_zero():
    w = torch.randn(4, dtype=F64, requires_grad=True)
    torch.testing.assert_close(hessian.hvp(lambda: (3 * w).sum(), [w], torch.ones(4, dtype=F64)),
                               torch.zeros(4, dtype=F64))


def test_power_iteration_finds_dominant_eigenvalue_with_sign():
    Q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((5, 5)))
    A = Q @ np.diag([-5.0, 3.0, 1.0, 0.5, 2.0]) @ Q.T
    loss, params = _quadratic_closure(A, [(5,)])
    assert abs(hessian.top_hessian_eigenvalue(loss, params, iters=200) + 5.0) < 1e-6


def test_power_iteration_and_lanczos_agree_with_eigh_on_seed_mlp():
    loss, params = _mlp_closure()
    e = torch.linalg.eigvalsh(hessian.full_hessian(loss, params)).numpy()
    dominant = e[np.argmax(np.abs(e))]
    assert abs(hessian.top_hessian_eigenvalue(loss, params, iters=300) - dominant) < 1e-6 * abs(dominant)
    np.testing.assert_allclose(hessian.lanczos_top_k(loss, params, k=5), e[-5:], rtol=1e-8)
    np.testing.assert_allclose(hessian.lanczos_top_k(loss, params, k=3, which="SA"), e[:3], rtol=1e-8)


def test_spectrum_summary_counts():
    s = hessian.spectrum_summary(torch.tensor([-1.0, -1e-6, 0.0, 2e-6, 3.0]), tol=1e-4)
    assert s == {"lam_max": 3.0, "lam_min": -1.0, "neg_frac": 0.2, "bulk_frac": 0.6}


# ---------------------------------------------------------------- second-order steps


def test_newton_step_solves_quadratic_in_one_step(rng):
    A = torch.as_tensor(np.cov(rng.standard_normal((9, 40))) + np.eye(9), dtype=F64)
    b, x = torch.randn(9, dtype=F64), torch.randn(9, dtype=F64)
    torch.testing.assert_close(x + second_order.newton_step(A @ x - b, A), torch.linalg.solve(A, b))


def test_newton_step_large_damping_is_scaled_gradient():
    g, H = torch.tensor([1.0, -2.0], dtype=F64), torch.diag(torch.tensor([1.0, 100.0], dtype=F64))
    torch.testing.assert_close(second_order.newton_step(g, H, damping=1e8), -g / 1e8, rtol=1e-5, atol=0)


@pytest.mark.parametrize("P", [1, 2, 5, 13])
def test_bfgs_update_secant_symmetry_positive_definite(rng, P):
    M = rng.standard_normal((P, P))
    A = torch.as_tensor(M @ M.T + P * np.eye(P), dtype=F64)
    s = torch.as_tensor(rng.standard_normal(P), dtype=F64)
    y = A @ s
    Hn = second_order.bfgs_inverse_update(torch.eye(P, dtype=F64), s, y)
    torch.testing.assert_close(Hn @ y, s)
    torch.testing.assert_close(Hn, Hn.T)
    assert float(torch.linalg.eigvalsh(Hn).min()) > 0


def test_adam_step_matches_torch_optim_adam_for_10_steps():
    torch.manual_seed(0)
    p1 = torch.randn(4, 3, dtype=F64, requires_grad=True)
    p2 = torch.randn(5, dtype=F64, requires_grad=True)
    opt = torch.optim.Adam([p1, p2], lr=0.03, betas=(0.8, 0.99), eps=1e-6)
    mine = [p1.detach().clone(), p2.detach().clone()]
    state = second_order.adam_init(mine)
    loss = lambda a, b: (a.sin() ** 2).sum() + (b**4).sum() + a.sum() * b.sum()  # noqa: E731
    for _ in range(10):
        opt.zero_grad()
        loss(p1, p2).backward()
        opt.step()
        a, b = (t.clone().requires_grad_(True) for t in mine)
        grads = list(torch.autograd.grad(loss(a, b), [a, b]))
        mine, state = second_order.adam_step(mine, grads, state, lr=0.03, betas=(0.8, 0.99), eps=1e-6)
    assert state["step"] == 10
    torch.testing.assert_close(mine[0], p1.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(mine[1], p2.detach(), rtol=0, atol=1e-12)


def test_adam_step_does_not_mutate_inputs():
    p, g = [torch.ones(3, dtype=F64)], [torch.full((3,), 2.0, dtype=F64)]
    state = second_order.adam_init(p)
    second_order.adam_step(p, g, state, lr=0.1)
    assert state["step"] == 0 and float(state["m"][0].abs().sum()) == 0.0 and float(p[0].sum()) == 3.0


def test_optimizer_race_on_quadratic_valley():
    prob, x0 = second_order.quadratic_valley(100.0), torch.tensor([10.0, 1.0], dtype=F64)
    res = second_order.compare_optimizers(prob, x0, {"gd": {"method": "gd", "lr": 0.0199},
                                                     "newton": {"method": "newton"},
                                                     "bfgs": {"method": "bfgs"}}, max_steps=5000)
    assert res["newton"]["steps"] == 1
    assert res["bfgs"]["steps"] <= 6
    assert res["gd"]["steps"] > 500


def test_rosenbrock_gradient_and_hessian_match_autograd():
    prob = second_order.rosenbrock()
    x = torch.tensor([-1.2, 1.0], dtype=F64, requires_grad=True)
    torch.testing.assert_close(prob.grad(x.detach()), torch.autograd.grad(prob.f(x), x)[0])
    torch.testing.assert_close(prob.hess(x.detach()), torch.func.hessian(prob.f)(x.detach()))


# ---------------------------------------------------------------- natural gradient


def test_natural_gradient_step_solves_with_fisher():
    F = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64)
    g = torch.tensor([1.0, -1.0], dtype=F64)
    torch.testing.assert_close(F @ natural_gradient.natural_gradient_step(g, F, lr=0.5), -0.5 * g)


def test_natural_gradient_is_parameterisation_invariant_to_first_order():
    mu, sigma, lr = 0.3, 0.7, 1e-5
    g_s = torch.tensor([0.8, -1.3], dtype=F64)
    d_s = natural_gradient.natural_gradient_step(g_s, fisher_gaussian(mu, sigma, "sigma"), lr)
    d_l = natural_gradient.natural_gradient_step(g_s * torch.tensor([1.0, sigma], dtype=F64),
                                                 fisher_gaussian(mu, sigma, "logsigma"), lr)
    torch.testing.assert_close(d_s, d_l * torch.tensor([1.0, sigma], dtype=F64))


def test_gaussian_nll_gradient_is_analytic():
    data = torch.tensor([1.0, 2.0, 4.0], dtype=F64)
    th = torch.tensor([1.5, 2.0], dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(natural_gradient.gaussian_nll(th, data, "sigma"), th)
    S = float(((data - 1.5) ** 2).mean())
    torch.testing.assert_close(g, torch.tensor([(1.5 - 7 / 3) / 4, 1 / 2 - S / 8], dtype=F64))


def test_natural_gd_converges_fast_in_both_parameterisations():
    data = 3.0 + 0.5 * torch.randn(400, generator=torch.Generator().manual_seed(0), dtype=F64)
    for param in ("sigma", "logsigma"):
        r = natural_gradient.fit_gaussian(data, 0.0, 5.0, param, natural=True, lr=1.0, steps=30)
        assert natural_gradient.steps_to_kl(r["kl"], 1e-6) <= 10
    gd = natural_gradient.fit_gaussian(data, 0.0, 5.0, "sigma", natural=False, lr=0.1, steps=30)
    assert natural_gradient.steps_to_kl(gd["kl"], 1e-6) is None


def test_kl_quadratic_error_vanishes_with_small_steps():
    errs = [natural_gradient.kl_quadratic_rel_error(1.0, 0.5, torch.tensor([d, d])) for d in (1e-1, 1e-2, 1e-3)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-2


# ---------------------------------------------------------------- msign and Muon


@pytest.mark.parametrize("shape", [(32, 32), (5, 9), (12, 7), (1, 4)])
def test_msign_svd_is_orthogonal_polar_factor(shape):
    M = torch.randn(*shape, dtype=F64)
    O = msign.msign_svd(M)
    k = min(shape)
    torch.testing.assert_close(torch.linalg.svdvals(O), torch.ones(k, dtype=F64))
    sym = O.T @ M                                                # polar decomposition: O^T M = V S V^T
    torch.testing.assert_close(sym, sym.T)


def test_cubic_newton_schulz_converges_on_seeded_gaussian():
    M = torch.randn(32, 32, generator=torch.Generator().manual_seed(0), dtype=F64)
    err = (msign.msign_newton_schulz(M, 30, "cubic") - msign.msign_svd(M)).abs().max()
    assert float(err) < 1e-6


@pytest.mark.parametrize("shape", [(5, 9), (12, 7), (48, 64)])
def test_quintic_newton_schulz_band(shape):
    gen = torch.Generator().manual_seed(1)
    U, _ = torch.linalg.qr(torch.randn(shape[0], min(shape), generator=gen, dtype=F64))
    V, _ = torch.linalg.qr(torch.randn(shape[1], min(shape), generator=gen, dtype=F64))
    M = U @ torch.diag(torch.logspace(0, 2, min(shape), dtype=F64)) @ V.T
    sv = torch.linalg.svdvals(msign.msign_newton_schulz(M, 5, "quintic"))
    assert 0.6 < float(sv.min()) and float(sv.max()) < 1.25


def test_newton_schulz_is_orthogonally_equivariant():
    gen = torch.Generator().manual_seed(2)
    M = torch.randn(6, 9, generator=gen, dtype=F64)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=F64))
    R, _ = torch.linalg.qr(torch.randn(9, 9, generator=gen, dtype=F64))
    for coeffs in ("cubic", "quintic"):
        torch.testing.assert_close(msign.msign_newton_schulz(Q @ M @ R, 5, coeffs),
                                   Q @ msign.msign_newton_schulz(M, 5, coeffs) @ R)


def test_muon_step_has_unit_singular_values_and_rejects_vectors():
    W = torch.zeros(6, 4, dtype=F64, requires_grad=True)
    opt = msign.Muon([W], lr=1.0, momentum=0.0, nesterov=False, ns_steps=5)
    W.grad = torch.randn(6, 4, dtype=F64)
    opt.step()
    sv = torch.linalg.svdvals(W.detach()) / math.sqrt(6 / 4)
    assert 0.6 < float(sv.min()) and float(sv.max()) < 1.25
    with pytest.raises(ValueError, match="2-D"):
        msign.Muon([torch.zeros(3, requires_grad=True)])


def test_muon_decreases_a_matrix_regression_loss():
    gen = torch.Generator().manual_seed(0)
    X, T = torch.randn(64, 8, generator=gen), torch.randn(64, 5, generator=gen)
    W = torch.zeros(8, 5, requires_grad=True)
    opt = msign.Muon([W], lr=0.05)
    first = None
    for _ in range(50):
        opt.zero_grad()
        loss = ((X @ W - T) ** 2).mean()
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(((X @ W - T) ** 2).mean().detach()) < 0.9 * first


# ---------------------------------------------------------------- isotropy


def test_feature_update_is_the_change_of_outputs(rng):
    X, W, G = (torch.as_tensor(rng.standard_normal(s), dtype=F64) for s in ((7, 5), (5, 3), (7, 3)))
    torch.testing.assert_close(isotropy.feature_update(X, G, 0.3), X @ (W - 0.3 * X.T @ G) - X @ W)


def test_update_alignment_is_one_for_isotropic_and_falls_with_condition_number(rng):
    G = torch.as_tensor(rng.standard_normal((16, 4)), dtype=F64)
    cos = [isotropy.update_alignment(isotropy.inputs_with_condition(16, 24, k, seed=0), G) for k in (1, 10, 100, 1000)]
    assert abs(cos[0] - 1.0) < 1e-12
    assert all(a > b for a, b in zip(cos, cos[1:]))


def test_inputs_with_condition_has_exact_gram_condition_number():
    X = isotropy.inputs_with_condition(10, 17, 250.0, seed=3)
    e = torch.linalg.eigvalsh(X @ X.T)
    assert abs(float(e.max() / e.min()) - 250.0) < 1e-6


@pytest.mark.parametrize("b, d", [(6, 10), (10, 4), (5, 5)])
def test_whiten_makes_rows_or_columns_orthonormal(b, d):
    X = torch.randn(b, d, dtype=F64)
    Z = isotropy.whiten(X)
    k = min(b, d)
    gram = Z @ Z.T if b <= d else Z.T @ Z
    torch.testing.assert_close(gram, torch.eye(k, dtype=F64))
    P = Z @ Z.T                                                  # symmetric, idempotent, trace = rank
    torch.testing.assert_close(P @ P, P)
    assert abs(float(P.trace()) - k) < 1e-10


def test_whitened_inputs_make_muon_feature_update_msign_of_gradient():
    X = isotropy.whiten(isotropy.inputs_with_condition(8, 20, 100.0, seed=1))
    G = torch.randn(8, 3, dtype=F64)
    torch.testing.assert_close(isotropy.muon_feature_update(X, G, 1.0), -msign.msign_svd(G))
    assert isotropy.cosine(isotropy.signsgd_feature_update(X, G, 1.0), -torch.sign(G)) < 0.99

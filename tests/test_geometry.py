import math

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from scipy import integrate, stats
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

from manifold_course import data
from manifold_course.geometry import concentration, gram, layer_geometry, separability, topology, volumes
from manifold_course.geometry import intrinsic_dimension as idim

# ---------------------------------------------------------------- volumes


def test_ball_cube_ratio_known_values():
    assert volumes.ball_cube_volume_ratio(1) == pytest.approx(1.0, rel=1e-12)
    assert volumes.ball_cube_volume_ratio(2) == pytest.approx(math.pi / 4, rel=1e-12)
    assert volumes.ball_cube_volume_ratio(3) == pytest.approx(math.pi / 6, rel=1e-12)
    assert volumes.ball_cube_volume_ratio(10) == pytest.approx(2.49e-3, rel=1e-2)
    assert volumes.ball_cube_volume_ratio(30) == pytest.approx(2.04e-14, rel=1e-2)


@pytest.mark.parametrize("d", [1, 2, 5, 17, 64, 100, 150])
def test_ball_cube_ratio_matches_direct_formula_where_it_does_not_overflow(d):
    direct = math.pi ** (d / 2) / (2**d * math.gamma(d / 2 + 1))
    assert volumes.ball_cube_volume_ratio(d) == pytest.approx(direct, rel=1e-10)


@pytest.mark.parametrize("d", [300, 1000, 10000])
def test_ball_cube_ratio_does_not_overflow_in_huge_dimension(d):
    value = volumes.ball_cube_volume_ratio(d)
    assert math.isfinite(value) and 0.0 <= value < 1e-200


def test_ball_cube_ratio_strictly_decreases():
    values = [volumes.ball_cube_volume_ratio(d) for d in range(1, 60)]
    assert all(b < a for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("r", [0.3, 1.0, 2.5])
def test_ball_volume_in_two_and_three_dimensions(r):
    assert volumes.ball_volume(2, r) == pytest.approx(math.pi * r**2, rel=1e-12)
    assert volumes.ball_volume(3, r) == pytest.approx(4 / 3 * math.pi * r**3, rel=1e-12)


def test_ball_volume_rejects_bad_arguments():
    with pytest.raises(ValueError, match="radius"):
        volumes.log_ball_volume(3, -1.0)
    with pytest.raises(ValueError, match="dimension"):
        volumes.ball_cube_volume_ratio(0)


def test_shell_fraction_known_values():
    assert volumes.shell_fraction(1, 0.1) == pytest.approx(0.1)
    assert volumes.shell_fraction(100, 0.01) == pytest.approx(1 - 0.99**100)
    assert volumes.shell_fraction(5, 0.0) == 0.0 and volumes.shell_fraction(5, 1.0) == 1.0


@pytest.mark.parametrize("d", [1, 3, 7, 50])
def test_uniform_ball_samples_have_the_uniform_radius_law(d):
    X = volumes.sample_uniform_ball(5000, d, seed=d)
    assert X.shape == (5000, d) and X.dtype == torch.float32
    r = X.double().norm(dim=1)
    assert float(r.max()) <= 1.0 + 1e-6
    assert stats.kstest((r**d).numpy(), "uniform").pvalue > 1e-3
    assert float(X.double().mean(0).norm()) < 5 * math.sqrt(d / ((d + 2) * 5000))


def test_uniform_ball_is_seeded():
    assert torch.equal(volumes.sample_uniform_ball(10, 4, seed=1), volumes.sample_uniform_ball(10, 4, seed=1))
    assert not torch.equal(volumes.sample_uniform_ball(10, 4, seed=1), volumes.sample_uniform_ball(10, 4, seed=2))


def test_shell_fraction_mc_matches_formula():
    X = volumes.sample_uniform_ball(20000, 40, seed=0)
    assert volumes.shell_fraction_mc(X, 0.05) == pytest.approx(volumes.shell_fraction(40, 0.05), abs=0.02)


# ---------------------------------------------------------------- concentration


@pytest.mark.parametrize("d", [1, 2, 3, 17, 100, 1000])
def test_expected_gaussian_norm_matches_scipy_chi(d):
    assert concentration.expected_gaussian_norm(d) == pytest.approx(stats.chi(d).mean(), rel=1e-10)
    assert concentration.gaussian_norm_std(d) == pytest.approx(stats.chi(d).std(), rel=1e-6)


def test_expected_gaussian_norm_is_close_to_sqrt_d_minus_half():
    for d in (20, 100, 10000):
        assert concentration.expected_gaussian_norm(d) == pytest.approx(math.sqrt(d - 0.5), rel=1e-3)
    assert concentration.gaussian_norm_std(10**6) == pytest.approx(1 / math.sqrt(2), abs=1e-3)


@pytest.mark.parametrize("d", [2, 50, 301])
def test_gaussian_norm_stats_within_monte_carlo_error(d):
    mean, std = concentration.gaussian_norm_stats(20000, d, seed=3)
    assert isinstance(mean, float) and isinstance(std, float)
    sigma = concentration.gaussian_norm_std(d)
    assert abs(mean - concentration.expected_gaussian_norm(d)) < 5 * sigma / math.sqrt(20000)
    assert abs(std - sigma) < 6 * sigma / math.sqrt(20000)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n,d", [(1, 1), (1, 7), (13, 3), (100, 257)])
def test_rowwise_cosine_matches_torch(n, d, dtype):
    gen = torch.Generator().manual_seed(n * d)
    A, B = torch.randn(n, d, generator=gen, dtype=dtype), torch.randn(n, d, generator=gen, dtype=dtype)
    got = concentration.rowwise_cosine(A, B)
    assert got.dtype == dtype and got.shape == (n,)
    torch.testing.assert_close(got, torch.nn.functional.cosine_similarity(A, B, dim=1))


def test_rowwise_cosine_is_scale_invariant_and_bounded():
    A, B = torch.randn(50, 9, dtype=torch.float64), torch.randn(50, 9, dtype=torch.float64)
    s = torch.rand(50, 1, dtype=torch.float64) * 100 + 1e-3
    torch.testing.assert_close(concentration.rowwise_cosine(A * s, B), concentration.rowwise_cosine(A, B))
    assert float(concentration.rowwise_cosine(A, -3 * A).max()) == pytest.approx(-1.0)


def test_cosine_is_uniform_in_three_dimensions():
    for tol in (0.05, 0.1, 0.5):
        assert concentration.prob_near_orthogonal(3, tol) == pytest.approx(tol, abs=1e-12)
    assert concentration.cosine_density(np.array([-0.9, 0.0, 0.7]), 3) == pytest.approx([0.5, 0.5, 0.5])


@pytest.mark.parametrize("d", [2, 3, 10, 100])
def test_cosine_density_integrates_to_one(d):
    total, _ = integrate.quad(lambda t: concentration.cosine_density(t, d), -1, 1, limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("d", [3, 10, 100, 1000])
def test_random_cosines_have_variance_one_over_d(d):
    c = concentration.random_cosines(10000, d, seed=d)
    assert float(c.mean()) == pytest.approx(0.0, abs=5 / math.sqrt(10000 * d))
    assert float(c.var()) * d == pytest.approx(1.0, rel=0.06)


def test_near_orthogonal_fraction_matches_the_beta_law():
    for d, tol in ((3, 0.1), (20, 0.2), (300, 0.05)):
        p = concentration.prob_near_orthogonal(d, tol)
        assert concentration.frac_near_orthogonal(d, 20000, tol, seed=1) == pytest.approx(p, abs=5 * math.sqrt(p * (1 - p) / 20000) + 1e-4)


def test_tail_probability_survives_cancellation():
    tail = concentration.prob_cosine_exceeds(10000, 0.1)
    assert 0 < tail < 1e-20
    with pytest.raises(ValueError):
        concentration.prob_near_orthogonal(1, 0.1)


def test_max_coherence_decreases_with_dimension_and_tracks_the_union_bound():
    values = [concentration.max_coherence(100, d, seed=0) for d in (32, 128, 512, 2048)]
    assert all(b < a for a, b in zip(values, values[1:]))
    for d, v in zip((32, 128, 512, 2048), values):
        assert 0.6 < v / concentration.coherence_scale(100, d) < 1.1


# ---------------------------------------------------------------- gram (I2)


def test_gram_deviation_is_zero_for_orthonormal_rows():
    Q, _ = torch.linalg.qr(torch.randn(40, 40, dtype=torch.float64))
    assert gram.gram_deviation(Q[:17]) == pytest.approx(0.0, abs=1e-12)


def test_gram_deviation_equals_the_spectral_norm():
    X = torch.randn(23, 31, dtype=torch.float64) / math.sqrt(31)
    expected = np.linalg.norm((X @ X.T - torch.eye(23, dtype=torch.float64)).numpy(), ord=2)
    assert gram.gram_deviation(X) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0])
def test_gaussian_batch_follows_the_marchenko_pastur_edge(ratio):
    d = 200
    X = gram.gaussian_batch(int(ratio * d), d, seed=0)
    assert gram.gram_deviation(X) == pytest.approx(gram.marchenko_pastur_edge(int(ratio * d), d), rel=0.1)


@pytest.mark.parametrize("b,d", [(10, 30), (30, 30), (45, 30), (200, 7)])
def test_polar_factor_is_the_best_possible_batch(b, d):
    X = gram.gaussian_batch(b, d, seed=1)
    best = gram.gram_deviation(gram.closest_orthonormal(X))
    assert best == pytest.approx(0.0 if b <= d else 1.0, abs=1e-9)
    if b > d:
        assert gram.gram_deviation(X) >= 1.0 - 1e-12


# ---------------------------------------------------------------- intrinsic dimension


@pytest.mark.parametrize("k", [1, 2, 5])
def test_twonn_recovers_the_dimension_of_a_linear_subspace(k):
    X = data.linear_subspace(2000, k, 50, seed=k)
    assert idim.twonn_id(X) == pytest.approx(k, rel=0.15)


def test_twonn_finds_two_dimensions_on_the_swiss_roll():
    X, _ = data.swiss_roll(2000, seed=1)
    assert idim.twonn_id(X) == pytest.approx(2.0, abs=0.3)


def test_twonn_accepts_torch_and_numpy_alike():
    X = data.linear_subspace(500, 3, 20, seed=0)
    assert idim.twonn_id(torch.from_numpy(X)) == pytest.approx(idim.twonn_id(X), rel=1e-12)
    assert idim.twonn_id(torch.from_numpy(X).float()) == pytest.approx(idim.twonn_id(X), rel=1e-3)


def test_twonn_is_invariant_to_rotation_scaling_and_translation():
    X = data.linear_subspace(600, 4, 30, seed=2)
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((30, 30)))
    assert idim.twonn_id(0.01 * X @ Q - 5.0) == pytest.approx(idim.twonn_id(X), rel=1e-8)


def test_twonn_tree_and_dense_neighbour_searches_agree():
    X = data.linear_subspace(700, 3, 12, seed=4)                       # k-d tree path (D <= 16)
    padded = np.hstack([X, np.zeros((700, 8))])                        # dense path (D = 20), same distances
    assert idim.twonn_id(padded) == pytest.approx(idim.twonn_id(X), rel=1e-9)


def test_twonn_ignores_duplicate_points():
    X = data.linear_subspace(500, 2, 10, seed=5)
    assert math.isfinite(idim.twonn_id(np.vstack([X, X[:20]])))


def test_pca_explained_variance_matches_scikit_learn():
    from sklearn.decomposition import PCA

    X = np.random.default_rng(0).standard_normal((200, 9)) * np.arange(1, 10) + 7.0
    assert_allclose(idim.pca_explained_variance(X), PCA().fit(X).explained_variance_ratio_, rtol=1e-10)


def test_pca_dim_counts_components():
    X = np.random.default_rng(1).standard_normal((500, 6)) * [10, 10, 10, 0.01, 0.01, 0.01] + 100.0
    assert idim.pca_dim(X, 0.99) == 3
    assert idim.pca_dim(torch.from_numpy(X), 0.5) == 2
    swiss, _ = data.swiss_roll(1000, seed=0)
    assert idim.pca_dim(swiss, 0.95) == 3
    with pytest.raises(ValueError):
        idim.pca_dim(X, 1.0)


def test_participation_ratio_and_effective_rank_extremes():
    rng = np.random.default_rng(2)
    line = np.outer(rng.standard_normal(300), rng.standard_normal(8))
    assert idim.participation_ratio(line) == pytest.approx(1.0, rel=1e-6)
    assert idim.effective_rank(line) == pytest.approx(1.0, rel=1e-3)
    iso = rng.standard_normal((20000, 8))
    assert idim.participation_ratio(iso) == pytest.approx(8.0, rel=0.02)
    assert idim.effective_rank(iso) == pytest.approx(8.0, rel=0.02)


# ---------------------------------------------------------------- topology


@pytest.mark.parametrize("n", [2, 3, 17, 100])
def test_h0_persistence_equals_ripser_h0(n):
    X = np.random.default_rng(n).standard_normal((n, 3))
    h0 = topology.persistence(X, maxdim=0)[0]
    finite = np.sort(h0[np.isfinite(h0[:, 1]), 1])
    assert_allclose(topology.h0_persistence(X), finite, rtol=1e-6)     # ripser works in float32


@pytest.mark.parametrize("n", [5, 64, 129])
def test_h0_persistence_equals_scipy_minimum_spanning_tree(n):
    X = np.random.default_rng(n).standard_normal((n, 4))
    mst = np.sort(minimum_spanning_tree(squareform(pdist(X))).data)
    got = topology.h0_persistence(X)
    assert got.dtype == np.float64 and got.shape == (n - 1,)
    assert_allclose(got, mst, rtol=1e-12)


def test_h0_persistence_of_one_point_is_empty():
    assert topology.h0_persistence(np.zeros((1, 3))).shape == (0,)


def test_circle_has_one_loop_and_blob_has_none():
    circle, blob = data.noisy_circle(150, noise=0.05, seed=1), data.gaussian_blob(150, seed=1)
    assert topology.has_loop(circle, 0.5) and not topology.has_loop(blob, 0.5)
    assert topology.count_long_bars(topology.persistence(circle)[1], 0.5) == 1


def test_torus_has_two_long_loops():
    dgm = topology.persistence(data.torus(2000, seed=0), maxdim=1, n_perm=300)[1]
    assert topology.count_long_bars(dgm, 0.6) == 2


def test_lifetimes_ignore_the_infinite_bar():
    dgm = np.array([[0.0, 0.5], [0.0, 2.0], [0.0, np.inf]])
    assert_allclose(topology.lifetimes(dgm), [0.5, 2.0])
    assert topology.max_persistence(dgm) == 2.0
    assert topology.max_persistence(np.zeros((0, 2))) == 0.0


# ---------------------------------------------------------------- separability


def test_cover_count_small_cases():
    assert separability.cover_count(1, 1) == 2
    assert separability.cover_count(3, 2) == 6          # 3 points on a plane through 0: 6 of 8 labelings
    assert separability.cover_count(4, 1) == 2          # one dimension: only all-plus / all-minus by sign of w


@pytest.mark.parametrize("d", [1, 2, 7, 50])
def test_cover_probability_is_one_half_at_twice_the_dimension(d):
    assert separability.cover_separable_probability(2 * d, d) == 0.5
    assert separability.cover_separable_probability(d, d) == 1.0


@pytest.mark.parametrize("N,d", [(10, 3), (37, 20), (200, 90), (1500, 700)])
def test_cover_probability_matches_the_binomial_cdf(N, d):
    assert separability.cover_separable_probability(N, d) == pytest.approx(stats.binom.cdf(d - 1, N - 1, 0.5), rel=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lift_paraboloid_appends_the_squared_norm(dtype):
    X = torch.randn(11, 5, dtype=dtype)
    Z = separability.lift_paraboloid(X)
    assert Z.shape == (11, 6) and Z.dtype == dtype
    torch.testing.assert_close(Z[:, :5], X)
    torch.testing.assert_close(Z[:, 5], (X**2).sum(1))


def test_lift_makes_circles_separable():
    X, y = data.circles(300, noise=0.05, seed=2)
    assert not separability.is_linearly_separable(X, y, through_origin=False)
    assert separability.is_linearly_separable(separability.lift_paraboloid(torch.from_numpy(X)).numpy(), y, through_origin=False)
    assert separability.logistic_accuracy(separability.lift_paraboloid(torch.from_numpy(X)), y) >= 0.99


def test_linear_separability_of_and_and_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    assert separability.is_linearly_separable(X, np.array([0, 0, 0, 1]), through_origin=False)
    assert not separability.is_linearly_separable(X, np.array([0, 1, 1, 0]), through_origin=False)


def test_random_labelings_follow_cover_formula():
    assert separability.separable_fraction_mc(8, 4, 300, seed=0) == pytest.approx(
        separability.cover_separable_probability(8, 4), abs=0.1)


def test_random_relu_features_shape_and_sign():
    F = separability.random_relu_features(torch.randn(9, 2), 33, seed=0)
    assert F.shape == (9, 33) and float(F.min()) >= 0.0


# ---------------------------------------------------------------- layer geometry


@pytest.mark.parametrize("h", [1, 3, 8])
def test_one_layer_regions_respect_the_line_arrangement_bound(h):
    g = torch.linspace(-4, 4, 120)
    grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), -1).reshape(-1, 2)
    net = layer_geometry.relu_mlp([2, h], 1, seed=h)
    assert 1 <= layer_geometry.count_linear_regions(net, grid) <= layer_geometry.max_regions_one_layer_2d(h)


def test_representations_have_one_cloud_per_layer():
    net = layer_geometry.relu_mlp([5, 7, 3], 2, seed=0)
    reps = layer_geometry.representations(net, torch.randn(4, 5))
    assert [tuple(r.shape) for r in reps] == [(4, 5), (4, 7), (4, 3), (4, 2)]
    assert layer_geometry.activation_patterns(net, torch.randn(4, 5)).shape == (4, 10)


def test_train_classifier_fits_a_separable_problem():
    X = torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).float()
    net = layer_geometry.relu_mlp([2, 8], 1, seed=0)
    losses = layer_geometry.train_classifier(net, X, y, steps=60, lr=0.05, batch=100, seed=0)
    assert losses[-1] < losses[0] and layer_geometry.accuracy(net, X, y) > 0.95

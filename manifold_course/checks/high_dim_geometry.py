"""Checks for chapter v0_roots/01_high_dimensional_geometry (Volume 0, sections 0.1-0.4).

Cases are drawn at grading time from the seeded generator. Monte-Carlo exercises are judged against the exact
law (with a tolerance of several standard errors), never against the reference's own random draw.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from manifold_course import data
from manifold_course.geometry import concentration, intrinsic_dimension, separability, topology, volumes
from manifold_course.grading import Case, Exercise
from manifold_course.grading.compare import float_problem as _float_problem

CHAPTER = "v0_roots/01_high_dimensional_geometry"


# ---------------------------------------------------------------- 0.1 volumes and norms


def _ratio_cases(rng):
    yield Case((1,), label="d=1: the ball is the whole segment")
    yield Case((2,), label="d=2: pi/4")
    yield Case((3,), label="d=3: pi/6")
    for d in rng.choice(np.arange(4, 60), size=3, replace=False):
        yield Case((int(d),), label=f"d={d}")
    yield Case((30,), label="d=30: about 2e-14")
    yield Case((300,), label="d=300: about 3e-279, tiny but not zero (2**d * gamma overflows)")
    yield Case((1000,), label="d=1000: no overflow (work in logs with math.lgamma)")


def _ratio_decreasing(fn) -> str | None:
    values = [fn(d) for d in range(1, 41)]
    for d, (a, b) in enumerate(zip(values, values[1:]), start=1):
        if not b < a:
            return f"the ratio should decrease strictly with d, but ratio({d + 1}) = {b:.6g} >= ratio({d}) = {a:.6g}"
    return None


def _norm_stats_cases(rng):
    yield Case((20000, 2, int(rng.integers(1_000_000))), label="d=2: Rayleigh norms, mean sqrt(pi/2)")
    for d in (20, int(rng.integers(51, 120)), 200):
        yield Case((20000, d, int(rng.integers(1_000_000))), label=f"n=20000, d={d}")
    yield Case((5000, 1, int(rng.integers(1_000_000))), label="d=1: half-normal |x|")


def _judge_norm_stats(got, expected, case) -> str | None:
    n, d, _ = case.args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"return a tuple (mean, std) of two floats, got {type(got).__name__}"
    for x, name in zip(got, ("mean", "std")):
        problem = _float_problem(x, name)
        if problem:
            return problem
    mean, std = float(got[0]), float(got[1])
    mu, sigma = concentration.expected_gaussian_norm(d), concentration.gaussian_norm_std(d)
    tol_mean = 5.0 * sigma / math.sqrt(n)          # five standard errors of a sample mean
    tol_std = 6.0 * sigma / math.sqrt(n)           # generous: the chi law is skewed for small d
    if abs(mean - mu) > tol_mean:
        return (f"mean norm {mean:.5g} is too far from E||x|| = {mu:.5g} (about sqrt(d - 1/2) = {math.sqrt(d - 0.5):.5g}); "
                "did you take the norm of each row (dim=1), draw standard normals, and keep the square root?")
    if abs(std - sigma) > tol_std:
        return (f"std of the norms {std:.5g} is too far from {sigma:.5g} (tends to 1/sqrt(2)); "
                "take the standard deviation of the n norms, not of the coordinates")
    return None


def _norm_stats_seeded(fn) -> str | None:
    a, b = fn(2000, 10, 7), fn(2000, 10, 7)
    if tuple(map(float, a)) != tuple(map(float, b)):
        return "the same seed must give the same result: build your generator from `seed`"
    if tuple(map(float, fn(2000, 10, 8))) == tuple(map(float, a)):
        return "different seeds gave identical results: use `seed` to seed your generator"
    return None


def _ball_cases(rng):
    yield Case((4000, 2, int(rng.integers(1_000_000))), label="d=2: the disc")
    yield Case((4000, 1, int(rng.integers(1_000_000))), label="d=1: the segment [-1, 1]")
    for d in (int(rng.integers(5, 12)), int(rng.integers(20, 60))):
        yield Case((4000, d, int(rng.integers(1_000_000))), label=f"n=4000, d={d}")
    yield Case((1, 7, int(rng.integers(1_000_000))), label="a single point (n=1)")


def _judge_ball(got, expected, case) -> str | None:
    n, d, _ = case.args
    if not isinstance(got, torch.Tensor):
        return f"return a torch.Tensor of shape ({n}, {d}), got {type(got).__name__}"
    if tuple(got.shape) != (n, d):
        return f"the output has shape {tuple(got.shape)}, expected ({n}, {d})"
    if not got.is_floating_point():
        return f"the output should be a floating-point tensor, got {got.dtype}"
    X = got.detach().double()
    if not torch.isfinite(X).all():
        return "the output contains NaN or inf"
    r = X.norm(dim=1)
    if float(r.max()) > 1.0 + 1e-5:
        return f"a point has norm {float(r.max()):.4g} > 1: every point must lie inside the unit ball"
    if n < 100:
        return None
    # Uniform in the ball  <=>  ||x||^d ~ U(0, 1) and the direction is uniform (mean 0).
    ks = stats.kstest((r ** d).numpy(), "uniform").statistic
    if ks > 2.0 / math.sqrt(n):
        return (f"the radii are not those of a uniform ball: ||x||^d should be uniform on [0, 1] (KS distance {ks:.3f}); "
                "a uniform point has P(||x|| <= r) = r^d, so draw the radius as U**(1/d)")
    # n (d+2) ||mean||^2 is about chi-square with d degrees of freedom when E[x] = 0 (Var x_i = 1/(d+2)).
    z = n * (d + 2) * float((X.mean(dim=0) ** 2).sum())
    if z > d + 8.0 * math.sqrt(2.0 * d) + 10.0:
        return "the points are not centred at 0: directions must be uniform (normalise standard Gaussian vectors)"
    return None


def _ball_seeded(fn) -> str | None:
    if not torch.equal(fn(50, 4, 3), fn(50, 4, 3)):
        return "the same seed must give the same points: build your generator from `seed`"
    return None


# ---------------------------------------------------------------- 0.2 angles


def _cosine_cases(rng):
    for n, d in ((37, 3), (100, 512), (1, 5), (8, 1)):
        A = torch.from_numpy(rng.standard_normal((n, d))).float()
        B = torch.from_numpy(rng.standard_normal((n, d))).float()
        yield Case((A, B), label=f"float32, n={n}, d={d}")
    A = torch.from_numpy(rng.standard_normal((20, 33)) * 1e3)
    B = torch.from_numpy(rng.standard_normal((20, 33)) * 1e-3)
    yield Case((A, B), label="float64, rows of very different sizes")
    A = torch.from_numpy(rng.standard_normal((5, 7)))
    yield Case((A, -2.5 * A), label="float64, B = -2.5 A: every cosine is -1")


def _cosine_scale_invariant(fn) -> str | None:
    gen = torch.Generator().manual_seed(11)
    A = torch.randn(16, 9, generator=gen, dtype=torch.float64)
    B = torch.randn(16, 9, generator=gen, dtype=torch.float64)
    s = torch.rand(16, 1, generator=gen, dtype=torch.float64) * 10 + 0.1
    a, b = fn(A, B), fn(A * s, B)
    if not torch.allclose(a, b, rtol=1e-9, atol=1e-12):
        return "rescaling a row of A by a positive number changed its cosine: divide by both norms"
    if float(a.abs().max()) > 1.0 + 1e-9:
        return "a cosine lies outside [-1, 1]"
    return None


def _near_orth_cases(rng):
    yield Case((3, 20000, 0.1, int(rng.integers(1_000_000))), label="d=3: the cosine is uniform, P = 0.1 exactly")
    yield Case((2, 20000, 0.3, int(rng.integers(1_000_000))), label="d=2: arcsine law")
    yield Case((int(rng.integers(20, 60)), 10000, 0.1, int(rng.integers(1_000_000))), label="moderate d")
    yield Case((500, 2000, 0.05, int(rng.integers(1_000_000))), label="d=500, tol=0.05")


def _judge_near_orth(got, expected, case) -> str | None:
    d, n_pairs, tol, _ = case.args
    problem = _float_problem(got)
    if problem:
        return problem
    p = concentration.prob_near_orthogonal(d, tol)
    slack = 5.0 * math.sqrt(p * (1 - p) / n_pairs) + 1.0 / n_pairs
    if abs(float(got) - p) > slack:
        return (f"got {float(got):.4f}, the Beta law gives P(|cos| < {tol}) = {p:.4f} at d={d} ({n_pairs} pairs, "
                f"tolerance {slack:.4f}); use |cos| (both signs), cosines of independent pairs, and a fraction, not a count")
    return None


# ---------------------------------------------------------------- 0.3 intrinsic dimension


def _twonn_cases(rng):
    for k in (2, 5):
        X = data.linear_subspace(700, k, 50, seed=int(rng.integers(1_000_000)))
        yield Case((X,), label=f"700 points on a {k}-dim linear subspace of R^50 (numpy)")
    X, _ = data.swiss_roll(800, seed=int(rng.integers(1_000_000)))
    yield Case((X,), label="swiss roll: a 2-D sheet rolled up in R^3")
    X = torch.from_numpy(data.linear_subspace(600, 3, 7, seed=int(rng.integers(1_000_000)))).float()
    yield Case((X,), label="a torch float32 tensor: 600 points, k=3 in R^7")
    X = data.linear_subspace(500, 4, 10, seed=int(rng.integers(1_000_000)))
    yield Case((X,), {"discard_fraction": 0.2}, label="discard_fraction=0.2")


def _judge_twonn(got, expected, case) -> str | None:
    problem = _float_problem(got)
    if problem:
        return problem
    if abs(float(got) - expected) > 0.06 * expected:
        return (f"estimate {float(got):.3f}, expected about {expected:.3f} (within 6 %); check: distances (not squared), "
                "mu = r2/r1 from the two nearest *other* points, F_i = i/N on the sorted mu, drop the largest fraction")
    return None


def _twonn_invariant(fn) -> str | None:
    X = data.linear_subspace(400, 3, 12, seed=5)
    Q, _ = np.linalg.qr(np.random.default_rng(6).standard_normal((12, 12)))
    a, b = float(fn(X)), float(fn(3.7 * X @ Q + 2.0))
    if abs(a - b) > 1e-6 * abs(a):
        return f"rotating, scaling and shifting the data changed the estimate ({a:.6g} -> {b:.6g}); it should not"
    return None


def _pca_cases(rng):
    for D, frac in ((10, 0.9), (17, 0.95), (33, 0.5)):
        scales = np.sort(rng.uniform(0.05, 3.0, size=D))[::-1]
        X = rng.standard_normal((300, D)) * scales + rng.uniform(5, 20, size=D)   # big offset: centre first!
        yield Case((X, frac), label=f"anisotropic Gaussian with an offset, D={D}, frac={frac}")
    X, _ = data.swiss_roll(800, seed=int(rng.integers(1_000_000)))
    yield Case((X, 0.95), label="swiss roll: 3 components for 95 %")
    yield Case((torch.from_numpy(rng.standard_normal((60, 5)) * [5, 1, 1, 0.1, 0.1]), 0.8), label="a torch tensor")
    yield Case((rng.standard_normal((40, 1)), 0.99), label="one feature")


# ---------------------------------------------------------------- 0.4 topology and separability


def _cover_cases(rng):
    yield Case((1, 1), label="N=1, d=1")
    yield Case((5, 8), label="N <= d: every labeling is separable")
    yield Case((20, 10), label="N = 2d: exactly 1/2")
    for _ in range(3):
        d = int(rng.integers(2, 40))
        yield Case((int(rng.integers(d + 1, 4 * d)), d), label="random N > d")
    yield Case((1500, 700), label="N=1500: no overflow (exact integers, or logs)", atol=0.0)


def _cover_monotone(fn) -> str | None:
    values = [float(fn(N, 6)) for N in range(1, 40)]
    if any(b > a + 1e-15 for a, b in zip(values, values[1:])):
        return "P_sep(N, d) should not increase with N (more points, fewer separable labelings)"
    return None


def _lift_cases(rng):
    X, _ = data.circles(200, seed=int(rng.integers(1_000_000)))
    yield Case((torch.from_numpy(X).float(),), label="make_circles, float32")
    yield Case((torch.from_numpy(rng.standard_normal((7, 2))),), label="float64, 7 points")
    yield Case((torch.from_numpy(rng.standard_normal((1, 2))).float(),), label="a single point")
    yield Case((torch.from_numpy(rng.standard_normal((9, 5))).float(),), label="(9, 5) -> (9, 6): any D")


def _lift_separates(fn) -> str | None:
    X, y = data.circles(400, noise=0.05, seed=3)
    acc = separability.logistic_accuracy(fn(torch.from_numpy(X).float()), y)
    if acc < 0.99:
        return f"logistic regression on your lifted circles reaches only {acc:.3f} accuracy (the lift should make it >= 0.99)"
    return None


def _h0_cases(rng):
    yield Case((rng.standard_normal((37, 2)),), label="37 points in the plane")
    yield Case((rng.standard_normal((2, 3)),), label="two points: one death, their distance")
    yield Case((rng.standard_normal((1, 4)),), label="one point: no finite death (empty array)")
    two = np.vstack([rng.standard_normal((25, 2)) * 0.3, rng.standard_normal((25, 2)) * 0.3 + [6.0, 0.0]])
    yield Case((two,), label="two clusters: one long bar")
    yield Case((rng.standard_normal((90, 5)),), label="90 points in R^5 (nearest-neighbour distances are not enough)")


EXERCISES = [
    Exercise("high_dim_geometry.ball_cube_volume_ratio", "Ball-in-cube volume ratio",
             cases=_ratio_cases, reference=volumes.ball_cube_volume_ratio, rtol=1e-9, atol=1e-300,
             properties=[_ratio_decreasing]),
    Exercise("high_dim_geometry.gaussian_norm_stats", "Gaussian norms concentrate near sqrt(d)",
             cases=_norm_stats_cases, judge=_judge_norm_stats, properties=[_norm_stats_seeded],
             known_good=concentration.gaussian_norm_stats),
    Exercise("high_dim_geometry.sample_uniform_ball", "Uniform points in the unit ball",
             cases=_ball_cases, judge=_judge_ball, properties=[_ball_seeded],
             known_good=volumes.sample_uniform_ball),
    Exercise("high_dim_geometry.rowwise_cosine", "Row-wise cosine similarity",
             cases=_cosine_cases, reference=concentration.rowwise_cosine, rtol=1e-5, atol=1e-6,
             properties=[_cosine_scale_invariant]),
    Exercise("high_dim_geometry.frac_near_orthogonal", "How often are random vectors nearly orthogonal?",
             cases=_near_orth_cases, judge=_judge_near_orth,
             known_good=concentration.frac_near_orthogonal),
    Exercise("high_dim_geometry.twonn_id", "TwoNN intrinsic dimension",
             cases=_twonn_cases, reference=intrinsic_dimension.twonn_id, judge=_judge_twonn,
             properties=[_twonn_invariant]),
    Exercise("high_dim_geometry.pca_dim", "PCA dimension for a share of the variance",
             cases=_pca_cases, reference=intrinsic_dimension.pca_dim),
    Exercise("high_dim_geometry.cover_separable_probability", "Cover's function counting",
             cases=_cover_cases, reference=separability.cover_separable_probability, rtol=1e-9, atol=1e-12,
             properties=[_cover_monotone]),
    Exercise("high_dim_geometry.lift_paraboloid", "The paraboloid lift",
             cases=_lift_cases, reference=separability.lift_paraboloid, rtol=1e-5, atol=1e-6,
             properties=[_lift_separates]),
    Exercise("high_dim_geometry.h0_persistence", "H0 persistence by minimum spanning tree",
             cases=_h0_cases, reference=topology.h0_persistence, rtol=1e-9, atol=1e-12),
]

import math

import numpy as np
import pytest
import torch

from manifold_course.systems import precision, roofline, simt


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------- simt


@pytest.mark.parametrize("grid, block", [(1, 1), (4, 32), (3, 100), ((3, 2), (5, 3)), ((2, 7), (4, 4)), ((1, 5), (33, 1))])
def test_global_ids_cover_every_index_once(grid, block):
    ids = simt.global_ids(grid, block)
    assert ids.dtype == np.int64
    assert np.array_equal(np.sort(ids.ravel()), np.arange(ids.size))


def test_global_ids_1d_is_block_times_dim_plus_thread():
    ids = simt.global_ids(5, 48)
    b, t = np.meshgrid(np.arange(5), np.arange(48), indexing="ij")
    assert np.array_equal(ids, b * 48 + t)


def test_global_ids_2d_follow_row_major_layout():
    ids = simt.global_ids((2, 2), (3, 2))                          # a 4 x 6 global array
    assert ids[0].tolist() == [0, 1, 2, 6, 7, 8]                   # block (0, 0): rows 0-1, columns 0-2
    assert ids[1].tolist() == [3, 4, 5, 9, 10, 11]                 # block (1, 0): columns 3-5


@pytest.mark.parametrize("n", [1, 31, 32, 33, 100, 1024])
def test_warps_per_block_is_ceiling(n):
    assert simt.warps_per_block(n) == math.ceil(n / 32)


def test_warp_cost_uniform_and_divergent():
    assert simt.warp_cost(np.ones(32, bool), 3, 5) == 3
    assert simt.warp_cost(np.zeros(32, bool), 3, 5) == 5
    assert simt.warp_cost(np.arange(32) == 7, 3, 5) == 8
    assert simt.warp_cost(np.arange(70) < 32, 3, 5) == 3 + 5 + 5   # warps: all if, all else, 6-lane partial else


@pytest.mark.parametrize("n", [1, 32, 45, 200])
def test_simt_branch_matches_numpy_and_warp_cost(rng, n):
    x = rng.standard_normal(n)
    then_ops, else_ops = [lambda v: v * 2, lambda v: v + 1], [lambda v: -v]
    y, trace = simt.simt_branch(x, lambda v: v > 0, then_ops, else_ops)
    np.testing.assert_allclose(y, np.where(x > 0, 2 * x + 1, -x))
    assert trace.slots == simt.warp_cost(x > 0, 2, 1) + math.ceil(n / 32)   # + one slot per warp for the condition
    assert 0 < trace.utilisation <= 1


def test_simt_branch_uniform_warps_are_fully_used():
    x = np.concatenate([np.ones(32), -np.ones(32)])
    _, trace = simt.simt_branch(x, lambda v: v > 0, [lambda v: v * 2], [lambda v: -v])
    assert trace.utilisation == 1.0 and trace.slots == 4


@pytest.mark.parametrize("args, expected", [((256, 32, 0), 1.0), ((256, 64, 0), 0.5), ((256, 32, 48 * 1024), 0.375),
                                            ((97, 40, 0), 0.75), ((32, 16, 0), 0.5), ((1024, 65, 0), 0.0),
                                            ((2048, 16, 0), 0.0)])
def test_occupancy_known_values(args, expected):
    assert simt.occupancy(*args) == pytest.approx(expected)


def test_occupancy_h100_has_more_shared_memory():
    assert simt.occupancy(128, 32, 100 * 1024, simt.H100_SM) > simt.occupancy(128, 32, 100 * 1024, simt.A100_SM)


@pytest.mark.parametrize("n_warps", [1, 3, 8, 15, 21, 32])
def test_scheduler_simulation_matches_littles_law(n_warps):
    sim = simt.simulate_scheduler(n_warps, 20, 400, n_cycles=3000)
    assert abs(sim - simt.latency_hiding_utilisation(n_warps, 20, 400)) < 0.02


# ---------------------------------------------------------------- roofline


def test_vector_add_fp32_intensity_is_one_twelfth():
    assert roofline.arithmetic_intensity("vector_add", (1000,), 4) == pytest.approx(1 / 12)


@pytest.mark.parametrize("n", [7, 64, 1000])
def test_square_matmul_intensity_closed_form(n):
    assert roofline.arithmetic_intensity("matmul", (n, n, n), 2) == pytest.approx(2 * n / 6)


def test_softmax_and_layer_norm_intensities():
    assert roofline.arithmetic_intensity("softmax", (10, 300), 4) == pytest.approx(5 / 8)
    assert roofline.arithmetic_intensity("layer_norm", (1, 10), 2) == pytest.approx(70 / 80)
    with pytest.raises(ValueError, match="unknown op"):
        roofline.arithmetic_intensity("conv", (3,), 4)


def test_roofline_is_piecewise_and_continuous_at_the_ridge():
    P, BW = 1e14, 1e12
    ridge = roofline.ridge_point(P, BW)
    assert roofline.roofline(ridge / 2, P, BW) == pytest.approx(P / 2)
    assert roofline.roofline(ridge, P, BW) == pytest.approx(P)
    assert roofline.roofline(10 * ridge, P, BW) == P
    np.testing.assert_allclose(roofline.roofline(np.array([0.0, ridge, 1e9]), P, BW), [0.0, P, P])


@pytest.mark.parametrize("M, N, K, tile", [(37, 41, 29, 1), (37, 41, 29, 4), (37, 41, 29, 16), (8, 8, 8, 64), (1, 50, 3, 7)])
def test_tiled_matmul_counts_match_formula_and_product(rng, M, N, K, tile):
    A, B = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    C, moved = roofline.tiled_matmul_numpy(A, B, tile)
    np.testing.assert_allclose(C, A @ B, atol=1e-12)
    assert moved == roofline.tiled_matmul_traffic(M, N, K, tile, 8)


def test_tiled_traffic_is_naive_at_tile_one_and_falls_like_one_over_tile():
    assert roofline.tiled_matmul_traffic(64, 64, 64, 1, 4) == 4 * (2 * 64**3 + 64**2)
    t8, t16 = (roofline.tiled_matmul_traffic(512, 512, 512, t, 4) for t in (8, 16))
    assert 1.9 < t8 / t16 < 2.0


def test_flash_attention_moves_fewer_bytes_and_scales_like_n_squared_d_squared_over_m():
    N, d, M = 4096, 64, 100 * 1024
    assert roofline.flash_attention_hbm_bytes(N, d, M) < roofline.standard_attention_hbm_bytes(N, d)
    ratio = roofline.flash_attention_hbm_bytes(2 * N, d, M) / roofline.flash_attention_hbm_bytes(N, d, M)
    assert 3.8 < ratio < 4.2                                       # quadratic in N
    assert roofline.flash_attention_hbm_bytes(N, d, 4 * M) < roofline.flash_attention_hbm_bytes(N, d, M) / 3


def test_gpu_table_ridge_points_and_lanes():
    h = roofline.GPUS["H100 SXM"]
    assert 290 < roofline.ridge_point(h.tensor_fp16_flops, h.hbm_bandwidth) < 300
    for g in roofline.GPUS.values():
        assert g.fp32_lanes % g.n_sm == 0


def test_cpu_measurements_are_positive_and_vector_add_is_memory_bound():
    v = roofline.measure_vector_add(n=1 << 20, repeats=3)
    m = roofline.measure_matmul(n=256, repeats=3)
    assert v.bytes_per_s > 0 and m.flops_per_s > 0
    assert v.flops_per_s < m.flops_per_s


# ---------------------------------------------------------------- precision


def test_formats_match_ieee():
    t = precision.format_table()
    assert t["fp16"]["max"] == 65504 and t["fp16"]["eps"] == 2.0**-10
    assert t["bf16"]["eps"] == 2.0**-7 and t["bf16"]["max"] > 3e38


def test_mixed_precision_dot_float64_is_exact_and_fp32_beats_fp16(rng):
    a, b = torch.as_tensor(rng.random(4096)), torch.as_tensor(rng.random(4096))
    exact = float(a.half().double() @ b.half().double())
    assert precision.mixed_precision_dot(a, b, torch.float64, torch.float64) == pytest.approx(float(a @ b), rel=1e-12)
    e32 = abs(precision.mixed_precision_dot(a, b, torch.float16, torch.float32) - exact)
    e16 = abs(precision.mixed_precision_dot(a, b, torch.float16, torch.float16) - exact)
    assert e32 < 1e-3 and e16 > 1000 * e32


def test_mixed_precision_dot_sequential_fp16_matches_a_loop(rng):
    a, b = torch.as_tensor(rng.standard_normal(300)), torch.as_tensor(rng.standard_normal(300))
    s = np.float16(0)
    for x, y in zip(a.half().tolist(), b.half().tolist()):
        s = np.float16(s + np.float16(x * y))
    assert precision.mixed_precision_dot(a, b, torch.float16, torch.float16) == float(s)


@pytest.mark.parametrize("shape", [(16, 8, 16), (33, 17, 20), (1, 5, 3)])
def test_tensor_core_matmul_equals_fp32_matmul_of_rounded_inputs(rng, shape):
    M, N, K = shape
    A, B = torch.as_tensor(rng.standard_normal((M, K)), dtype=torch.float32), torch.as_tensor(rng.standard_normal((K, N)), dtype=torch.float32)
    D, n_mma = precision.tensor_core_matmul(A, B)
    torch.testing.assert_close(D, A.half().float() @ B.half().float(), rtol=1e-5, atol=1e-5)
    assert n_mma == math.ceil(M / 16) * math.ceil(N / 8) * math.ceil(K / 16)


def test_loss_scaler_matches_torch_amp_update_scale(rng):
    ours = precision.DynamicLossScaler(2.0**10, growth_interval=3)
    scale, tracker = torch.tensor([2.0**10]), torch.tensor([0], dtype=torch.int32)
    for inf in rng.random(200) < 0.2:
        applied = ours.update(bool(inf))
        torch._amp_update_scale_(scale, tracker, torch.tensor([float(inf)]), 2.0, 0.5, 3)
        assert applied == (not inf)
        assert ours.scale == float(scale) and ours.clean_steps == int(tracker)


def test_loss_scaler_state_machine_cases():
    s = precision.DynamicLossScaler(8.0, growth_interval=2)
    assert s.update(True) is False and s.scale == 4.0
    assert s.update(False) and s.scale == 4.0
    assert s.update(False) and s.scale == 8.0                      # two clean steps in a row: doubled
    s.update(False)
    s.update(True)                                                 # overflow resets the count
    s.update(False)
    assert s.scale == 4.0
    assert precision.DynamicLossScaler.found_inf([torch.tensor([1.0, float("inf")])])


def test_loss_scaling_rescues_fp16_underflow():
    g = torch.full((1000,), 1e-8)
    assert precision.fp16_flush_fraction(g, 1.0)["zero"] == 1.0
    scaled = precision.fp16_flush_fraction(g, 2.0**16)
    assert scaled["zero"] == 0.0 and scaled["median_rel_error"] < 1e-3


def test_autocast_bf16_trains_a_small_mlp():
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(256, 8, generator=gen)
    y = (X[:, 0] > 0).long()
    model, losses = precision.train_mlp(X, y, steps=60, autocast_dtype=torch.bfloat16)
    assert losses[-1] < 0.5 * losses[0]

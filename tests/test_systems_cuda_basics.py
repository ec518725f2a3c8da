import math

import numpy as np
import pytest

from manifold_course.systems import cuda_basics as cb
from manifold_course.systems import roofline


@pytest.mark.parametrize("n,t,blocks", [(1, 256, 1), (256, 256, 1), (257, 256, 2), (100_000, 256, 391), (1000, 96, 11)])
def test_launch_config_covers_with_less_than_one_block_of_slack(n, t, blocks):
    got, threads = cb.launch_config(n, t)
    assert (got, threads) == (blocks, t)
    assert got * t >= n > (got - 1) * t


def test_grid_stride_owner_spreads_elements_evenly():
    counts = np.bincount(cb.grid_stride_owner(200, 2, 32))
    assert counts.sum() == 200 and counts.min() == 3 and counts.max() == 4


@pytest.mark.parametrize("stride,expected", [(1, 4), (2, 8), (4, 16), (8, 32), (32, 32), (64, 32)])
def test_warp_transactions_of_strided_fp32_loads(stride, expected):
    assert cb.warp_transactions(cb.warp_addresses(stride)) == expected


def test_warp_transactions_misaligned_broadcast_and_lines():
    assert cb.warp_transactions(cb.warp_addresses(1, base=4)) == 5
    assert cb.warp_transactions(np.zeros(32, dtype=np.int64)) == 1
    assert cb.warp_transactions(cb.warp_addresses(1), sector_bytes=128) == 1


@pytest.mark.parametrize("M,N,K,tile", [(64, 64, 64, 16), (19, 21, 23, 16), (1, 7, 9, 4), (128, 64, 32, 8)])
def test_tiled_reads_match_traffic_model_and_naive_at_tile_one(M, N, K, tile):
    assert cb.tiled_matmul_global_reads(M, N, K, 1) == 2 * M * N * K
    assert 4 * (cb.tiled_matmul_global_reads(M, N, K, tile) + M * N) == roofline.tiled_matmul_traffic(M, N, K, tile, 4)


def test_tiled_reads_count_in_bounds_loads_of_the_kernel():
    M, N, K, T = 5, 7, 6, 4
    loads = 0
    for by in range(math.ceil(M / T)):
        for bx in range(math.ceil(N / T)):
            for ty in range(T):
                for tx in range(T):
                    row, col = by * T + ty, bx * T + tx
                    for k0 in range(0, K, T):
                        loads += (row < M and k0 + tx < K) + (k0 + ty < K and col < N)
    assert cb.tiled_matmul_global_reads(M, N, K, T) == loads
    assert cb.global_reads_per_thread(1024, 16) == 128


@pytest.mark.parametrize("n,blocks,threads", [(1, 1, 32), (100, 4, 32), (33, 2, 32)])
def test_vector_add_matches_numpy_with_overhanging_grid(n, blocks, threads):
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(cb.vector_add(a, b, blocks, threads), a + b)


@pytest.mark.parametrize("n,blocks", [(200, 2), (10, 2), (37, 1)])
def test_scale_grid_stride_covers_every_element(n, blocks):
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    np.testing.assert_allclose(cb.scale_grid_stride(x, -1.5, blocks, 32), -1.5 * x, rtol=1e-6)


@pytest.mark.parametrize("shape,block", [((13, 21), (8, 4)), ((5, 40), (16, 2)), ((1, 1), (4, 4))])
def test_matrix_add_non_multiple_shapes(shape, block):
    rng = np.random.default_rng(2)
    A, B = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(np.float32)
    np.testing.assert_array_equal(cb.matrix_add(A, B, block), A + B)


@pytest.mark.parametrize("n,threads", [(70, 32), (5, 8), (16, 16)])
def test_block_sum_equals_numpy_block_sums(n, threads):
    x = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    expected = [x[i:i + threads].sum() for i in range(0, n, threads)]
    np.testing.assert_allclose(cb.block_sum(x, threads), expected, rtol=1e-5, atol=1e-5)

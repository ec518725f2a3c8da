import math

import pytest
import torch

from manifold_course.systems import triton_lessons as L


@pytest.mark.parametrize("n, expected", [(1, 1), (2, 2), (3, 4), (64, 64), (65, 128), (781, 1024), (4097, 8192)])
def test_next_power_of_2_known_values(n, expected):
    assert L.next_power_of_2(n) == expected


@pytest.mark.parametrize("n", [1, 5, 100, 1000, 12345])
def test_next_power_of_2_matches_triton(n):
    import triton

    assert L.next_power_of_2(n) == triton.next_power_of_2(n)


@pytest.mark.parametrize("C, block", [(1, 1), (10, 3), (33, 8), (100, 64), (17, 17)])
def test_online_softmax_equals_softmax(C, block):
    x = torch.randn(4, C, dtype=torch.float64) * 10
    torch.testing.assert_close(L.online_softmax(x, block), torch.softmax(x, -1))


def test_online_softmax_update_first_block_has_no_nan():
    m, l = L.online_softmax_update(torch.full((2,), -math.inf), torch.zeros(2), torch.tensor([[1.0, 2.0], [0.0, 0.0]]))
    torch.testing.assert_close(m, torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(l, torch.tensor([1.0 + math.exp(-1.0), 2.0]))


def test_online_softmax_update_large_logits_stay_finite():
    m, l = L.online_softmax_update(torch.tensor([500.0]), torch.tensor([1.0]), torch.tensor([[1000.0, 999.0]]))
    assert torch.isfinite(l).all() and m.item() == 1000.0


@pytest.mark.parametrize("num_m, num_n, g", [(9, 9, 3), (5, 3, 2), (7, 4, 3), (3, 5, 8), (6, 6, 1)])
def test_grouped_order_is_a_permutation_of_tiles(num_m, num_n, g):
    tiles = [L.grouped_program_order(p, num_m, num_n, g) for p in range(num_m * num_n)]
    assert sorted(tiles) == [(i, j) for i in range(num_m) for j in range(num_n)]


def test_grouped_order_with_group_one_is_column_major():
    assert [L.grouped_program_order(p, 3, 2, 1) for p in range(6)] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert L.grouped_program_order(1, 9, 9, 3) == (1, 0)


def test_wave_tile_loads_tutorial_numbers():
    assert L.wave_tile_loads(L.row_major_program_order, 9, 9, 3, wave=9, k_tiles=9) == 90
    assert L.wave_tile_loads(L.grouped_program_order, 9, 9, 3, wave=9, k_tiles=9) == 54


def test_softmax_traffic_ratio_tends_to_three():
    t = L.softmax_traffic(4096, 8192)
    assert t["fused"] == 2 * 4096 * 8192
    assert abs(t["unfused"] / t["fused"] - 3.0) < 1e-3


@pytest.mark.parametrize("n", [1, 1000, 1025, 4097])
def test_vector_scale_matches_torch(n):
    x = torch.randn(n)
    torch.testing.assert_close(L.vector_scale(x, -1.5), -1.5 * x)


@pytest.mark.parametrize("R, C, pad", [(1, 1, 0), (4, 10, 3), (3, 33, 5), (2, 100, 1)])
def test_row_softmax_on_padded_views(R, C, pad):
    x, _ = L.guarded(torch.randn(R, C) * 30, row_pad=pad)
    torch.testing.assert_close(L.row_softmax(x), torch.softmax(x, -1))


@pytest.mark.parametrize("R, C, pad", [(1, 1, 0), (4, 10, 3), (3, 37, 5)])
def test_rms_norm_matches_torch(R, C, pad):
    x, _ = L.guarded(torch.randn(R, C), row_pad=pad)
    w = torch.randn(C)
    torch.testing.assert_close(L.rms_norm(x, w, 1e-6), torch.nn.functional.rms_norm(x, (C,), w, 1e-6))


def test_out_argument_keeps_guards_intact():
    x, _ = L.guarded(torch.randn(3, 21), row_pad=4)
    out, buf = L.guarded(torch.zeros(3, 21), row_pad=9, fill=-7.0)
    assert L.row_softmax(x, out=out) is out
    assert L.outside_view_changed(out, buf, fill=-7.0) == 0
    torch.testing.assert_close(out, torch.softmax(x, -1))


def test_outside_view_changed_counts_escaped_writes():
    out, buf = L.guarded(torch.zeros(10), guard=16, fill=-7.0)
    buf[16 + 10] = 1.0
    buf[0] = 2.0
    assert L.outside_view_changed(out, buf, fill=-7.0) == 2

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from manifold_course.systems import distributed as dd


@pytest.mark.parametrize("n,size", [(2, 8), (3, 10), (4, 7), (5, 23), (5, 3)])
def test_ring_allreduce_sim_gives_every_rank_the_sum(n, size):
    xs = [torch.randn(size, dtype=torch.float64) for _ in range(n)]
    before = [x.clone() for x in xs]
    out = dd.ring_allreduce_sim(xs)
    total = torch.stack(xs).sum(0)
    for o in out:
        torch.testing.assert_close(o, total)
    assert all(torch.equal(a, b) for a, b in zip(xs, before))


@pytest.mark.parametrize("n,size", [(2, 9), (3, 10), (5, 23)])
def test_reduce_scatter_sim_gives_rank_r_chunk_r(n, size):
    xs = [torch.randn(size, dtype=torch.float64) for _ in range(n)]
    chunks = torch.tensor_split(torch.stack(xs).sum(0), n)
    for r, c in enumerate(dd.reduce_scatter_sim(xs)):
        torch.testing.assert_close(c, chunks[r])


def test_allreduce_bytes_known_values():
    assert dd.allreduce_bytes(1000, 2) == 1000.0
    assert dd.allreduce_bytes(1000, 1) == 0.0
    assert dd.allreduce_bytes(800, 4) == 1200.0


@pytest.mark.parametrize("widths", [(3, 5), (2, 2, 2), (7,)])
def test_tensor_parallel_mlp_equals_unsharded(widths):
    x = torch.randn(4, 6, dtype=torch.float64)
    a = [torch.randn(6, w, dtype=torch.float64) for w in widths]
    b = [torch.randn(w, 5, dtype=torch.float64) for w in widths]
    full = F.gelu(x @ torch.cat(a, 1)) @ torch.cat(b, 0)
    torch.testing.assert_close(dd.tensor_parallel_mlp(x, a, b), full)


def test_row_parallel_adds_bias_once():
    xs, bs, bias = [torch.randn(2, 3), torch.randn(2, 4)], [torch.randn(3, 5), torch.randn(4, 5)], torch.randn(5)
    want = torch.cat(xs, 1) @ torch.cat(bs, 0) + bias
    torch.testing.assert_close(dd.row_parallel_forward(xs, bs, bias), want)


@pytest.mark.parametrize("p,m", [(1, 4), (2, 1), (4, 4), (3, 7), (5, 16)])
def test_gpipe_schedule_bubble_equals_formula(p, m):
    table = dd.gpipe_schedule(p, m)
    assert table.shape == (p, 2 * (m + p - 1))
    assert dd.schedule_bubble(table) == pytest.approx(dd.pipeline_bubble(p, m), abs=1e-12)
    assert sorted(table[table != 0].tolist()) == sorted([j for j in range(1, m + 1)] * p + [-j for j in range(1, m + 1)] * p)


def test_zero_memory_matches_the_paper_table():
    gb = [dd.zero_memory_per_rank(7.5e9, 64, s) / 1e9 for s in range(4)]
    np.testing.assert_allclose(gb, [120.0, 31.4, 16.6, 1.9], atol=0.06)
    assert all(dd.zero_memory_per_rank(1e6, 1, s) == 16e6 for s in range(4))
    with pytest.raises(ValueError):
        dd.zero_memory_per_rank(1e6, 2, 4)


def test_launch_reports_a_failing_rank():
    with pytest.raises(RuntimeError, match="boom"):
        dd.launch(dd.demo_worker_fail, 2, timeout=60)


def test_two_gloo_processes_match_ddp_allreduce_and_unsharded_layers():
    r0, r1 = dd.launch(dd.demo_worker, 2, timeout=90)
    torch.testing.assert_close(r0["dp_scratch"], r0["dp_ddp"], rtol=0, atol=1e-6)
    torch.testing.assert_close(r0["dp_scratch"], r0["dp_single"], rtol=0, atol=1e-5)
    torch.testing.assert_close(r1["dp_scratch"], r0["dp_scratch"], rtol=0, atol=0)
    assert r0["ring_err"] < 1e-6 and r1["ring_err"] < 1e-6
    assert r0["ring_bytes_sent"] == pytest.approx(dd.allreduce_bytes(r0["ring_bytes"], 2), rel=0.01)
    assert r0["tp_err"] < 1e-4 and r0["tp_allreduces"] == 1
    for r in (r0, r1):
        assert 0.45 < r["state_bytes_zero1"] / r["state_bytes_adam"] < 0.55
        assert 0.45 < r["state_bytes_fsdp2"] / r["state_bytes_adam"] < 0.55

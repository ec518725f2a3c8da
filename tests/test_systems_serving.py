from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from manifold_course.nn.attention import cache_nbytes, kv_cache_bytes, scaled_dot_product_attention
from manifold_course.nn.gpt import GPT, GPTConfig
from manifold_course.systems import batching, paged_kv, quantize


@pytest.mark.parametrize("shape", [(5,), (3, 7), (2, 3, 5)])
def test_absmax_int8_error_at_most_half_a_step(shape):
    x = torch.randn(*shape)
    q, s = quantize.quantize_absmax_int8(x)
    assert q.dtype == torch.int8 and int(q.abs().max()) == 127
    assert float((quantize.dequantize(q, s) - x).abs().max()) <= float(s) / 2 + 1e-7


def test_zero_point_is_exact_at_zero_and_beats_absmax_on_relu_tensors():
    x = torch.relu(torch.randn(1000))
    q, s, z = quantize.quantize_zero_point(x, 8)
    assert int(q.min()) >= 0 and int(q.max()) <= 255
    assert float(quantize.dequantize(torch.tensor([int(z)]), s, z)) == 0.0
    qa, sa = quantize.quantize_absmax_int8(x)
    assert quantize.mse(quantize.dequantize(q, s, z), x) < quantize.mse(quantize.dequantize(qa, sa), x)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_zero_point_matches_torch_quantize_per_tensor():
    x = torch.randn(50) * 2 + 0.5
    q, s, z = quantize.quantize_zero_point(x, 8)
    tq = torch.quantize_per_tensor(x, float(s), int(z), torch.quint8)
    assert torch.equal(tq.int_repr().to(torch.int32), q)


@pytest.mark.parametrize("bits", [4, 8])
def test_per_channel_beats_per_tensor_with_unequal_rows(bits):
    w = torch.randn(16, 33) * torch.logspace(-2, 1, 16)[:, None]
    qc, sc = quantize.per_channel_quantize(w, bits)
    qt, st = quantize.per_tensor_quantize(w, bits)
    assert sc.shape == (16, 1)
    assert quantize.mse(qc.float() * sc, w) < quantize.mse(qt.float() * st, w)


def test_ternary_codes_and_scale():
    w = torch.randn(20, 30)
    q, g = quantize.ternary_quantize(w)
    assert set(q.unique().tolist()) <= {-1, 0, 1}
    assert math.isclose(float(g), float(w.abs().mean()), rel_tol=1e-6)


def test_ste_gradient_is_identity_inside_range_only():
    x = torch.tensor([-3.0, -0.3, 0.0, 0.26, 3.0], requires_grad=True)
    y = quantize.ste_fake_quant(x, 0.25, bits=4)                  # range +-1.75
    torch.testing.assert_close(y.detach(), torch.tensor([-1.75, -0.25, 0.0, 0.25, 1.75]))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0]))


def test_quant_linear_forward_uses_quantized_weights_and_trains():
    layer = quantize.QuantLinear(7, 5, bits=2)
    x = torch.randn(3, 7)
    q, s = quantize.per_channel_quantize(layer.weight.detach(), 2)
    torch.testing.assert_close(layer(x), x @ (q.float() * s).T + layer.bias)
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("bits", [3, 4])
def test_gptq_beats_round_to_nearest_on_correlated_inputs(bits):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(500, 12, generator=g) @ torch.randn(12, 40, generator=g)       # low-rank, correlated inputs
    W = torch.randn(17, 40, generator=g)
    rtn, gq = quantize.rtn_quantize(W, bits), quantize.gptq_quantize(W, X[:400], bits)
    assert quantize.output_error(W, gq, X[400:]) < quantize.output_error(W, rtn, X[400:])


def test_gptq_keeps_the_round_to_nearest_grid():
    g = torch.Generator().manual_seed(1)
    X, W = torch.randn(200, 9, generator=g), torch.randn(5, 9, generator=g)
    gq = quantize.gptq_quantize(W, X, 3)
    s, z, qmax = quantize._row_grid(W, 3)
    codes = gq / s + z
    torch.testing.assert_close(codes, codes.round(), atol=1e-4, rtol=0)


def test_awq_helps_with_outlier_input_channels():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(600, 32, generator=g)
    X[:, :2] *= 40
    W = torch.randn(24, 32, generator=g)
    W[:, :2] /= 40
    w_awq, alpha = quantize.awq_quantize(W, X[:400], 3)
    assert alpha > 0
    assert quantize.output_error(W, w_awq, X[400:]) < quantize.output_error(W, quantize.rtn_quantize(W, 3), X[400:])


def test_kv_bytes_per_token_llama2_7b():
    assert paged_kv.kv_bytes_per_token(32, 32, 128, 2) == 524288


def test_kv_cache_bytes_match_the_small_gpt_cache():
    cfg = GPTConfig(vocab_size=11, d_model=24, n_layers=3, n_heads=6, n_kv_heads=2)
    cache: list = []
    GPT(cfg)(torch.randint(0, 11, (2, 13)), kv_cache=cache)
    assert cache_nbytes(cache) == kv_cache_bytes(3, 2, 4, 13, 2, 4)


@pytest.mark.parametrize("block_size,seq_len", [(4, 10), (3, 9), (1, 5), (16, 1)])
def test_gather_through_block_table_equals_contiguous_cache(block_size, seq_len):
    k = torch.randn(seq_len, 2, 3)
    nb = math.ceil(seq_len / block_size)
    table = torch.randperm(nb + 3)[:nb].tolist()
    pool = torch.zeros(nb + 3, block_size, 2, 3)
    for t in range(seq_len):
        pool[table[t // block_size], t % block_size] = k[t]
    torch.testing.assert_close(paged_kv.gather_kv(pool, table, seq_len), k, rtol=0, atol=0)


def test_paged_attention_equals_dense_attention():
    T, H, d, b = 11, 2, 4, 4
    k, v, q = torch.randn(T, H, d), torch.randn(T, H, d), torch.randn(H, d)
    alloc = paged_kv.BlockAllocator(8, b)
    table = alloc.allocate("s", T)
    kp, vp = torch.zeros(8, b, H, d), torch.zeros(8, b, H, d)
    for t in range(T):
        kp[table[t // b], t % b], vp[table[t // b], t % b] = k[t], v[t]
    dense = scaled_dot_product_attention(q[:, None], k.transpose(0, 1), v.transpose(0, 1))[:, 0]
    torch.testing.assert_close(paged_kv.paged_attention(q, kp, vp, table, T), dense)


def test_allocator_fork_copy_on_write_and_refcounts():
    a = paged_kv.BlockAllocator(6, 4)
    a.allocate("p", 6)                                            # 2 blocks, last half full
    a.fork("p", "c")
    assert a.num_free_blocks() == 4
    block, slot = a.append("c")                                   # writes into the shared block: copy first
    assert slot == 2 and block not in a.block_table("p") and len(a.copies) == 1
    a.free("p")
    assert a.num_free_blocks() == 4                               # the shared first block is still held by c
    a.free("c")
    assert a.num_free_blocks() == 6


def test_allocator_refuses_without_changing_state():
    a = paged_kv.BlockAllocator(3, 2)
    a.allocate(0, 5)
    with pytest.raises(MemoryError):
        a.allocate(1, 3)
    assert a.num_free_blocks() == 0 and 1 not in a.tables


def test_paged_waste_below_one_block_and_below_contiguous():
    lengths = np.random.default_rng(0).integers(1, 512, 300)
    f = paged_kv.fragmentation(lengths, 512, 16)
    assert f["paged_waste"] < f["contiguous_waste"]
    assert f["paged_waste_per_seq"] < 16
    sim = paged_kv.simulate_paged_workload(100, 128, 8, 60, seed=1)
    assert sim["max_waste_per_seq"] <= 7 and sim["mean_utilisation"] > 0.8


def test_continuous_batching_has_higher_throughput_than_static():
    w = batching.make_workload(n=200, rate=8.0, seed=3)
    st, co = batching.simulate(w, 8, "static"), batching.simulate(w, 8, "continuous")
    assert co["throughput"] > st["throughput"] and co["mean_latency"] < st["mean_latency"]


@pytest.mark.parametrize("a,k", [(0.0, 3), (0.5, 1), (0.8, 4), (1.0, 5)])
def test_speculative_model_known_points_and_monte_carlo(a, k):
    expected = k + 1 if a == 1 else sum(a ** i for i in range(k + 1))
    assert math.isclose(batching.tokens_per_target_call(a, k), expected, rel_tol=1e-12)
    assert abs(batching.simulate_tokens_per_call(a, k, rounds=40000) - expected) < 0.05
    assert math.isclose(batching.speculative_speedup(a, k, 0.0), expected, rel_tol=1e-12)

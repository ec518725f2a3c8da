import math

import pytest
import torch
from torch import nn

from manifold_course.nn import decoding, lora, quantization
from manifold_course.probability import preferences as prefs

F64 = torch.float64


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------- LoRA


@pytest.mark.parametrize("d_in, d_out, r", [(16, 12, 4), (7, 5, 1), (33, 9, 3)])
def test_lora_starts_at_base_and_merges_exactly(d_in, d_out, r, gen):
    base = nn.Linear(d_in, d_out).double()
    layer = lora.LoRALinear(base, r, alpha=2 * r, generator=gen)
    x = torch.randn(4, d_in, dtype=F64, generator=gen)
    torch.testing.assert_close(layer(x), base(x))
    with torch.no_grad():
        layer.lora_B.normal_(generator=gen)
    w0 = base.weight.detach().clone()
    y = layer(x)
    layer.merge()
    torch.testing.assert_close(layer(x), y, rtol=1e-12, atol=1e-12)
    layer.unmerge()
    torch.testing.assert_close(base.weight.detach(), w0, rtol=0, atol=1e-14)


def test_lora_only_adapters_train_and_count_matches_formula(gen):
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    lora.apply_lora(model, r=2, alpha=4.0)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {"0.lora_A", "0.lora_B", "2.lora_A", "2.lora_B"}
    assert lora.count_params(model, trainable_only=True) == lora.lora_param_count(10, 20, 2) + lora.lora_param_count(20, 3, 2)


def test_lora_param_count_seed_example():
    assert 4096 * 4096 == 16_777_216 and lora.lora_param_count(4096, 4096, 8) == 65_536


# ---------------------------------------------------------------- quantisation


def test_nf4_levels_match_published_table():
    v = quantization.nf4_levels(F64)
    torch.testing.assert_close(v, torch.tensor(quantization.NF4_PUBLISHED, dtype=F64), rtol=0, atol=1e-6)
    assert (v == 0).sum() == 1 and v[0] == -1 and v[-1] == 1


@pytest.mark.parametrize("shape, block", [((4, 64), 64), ((3, 50), 64), ((100,), 17), ((7, 9), 8)])
def test_nf4_roundtrip_error_is_below_half_the_largest_gap(shape, block, gen):
    w = torch.randn(*shape, generator=gen)
    codes, s = quantization.nf4_quantize(w, block=block)
    w_hat = quantization.nf4_dequantize(codes, s, w.shape)
    gap = float(quantization.nf4_levels().diff().max())
    assert w_hat.shape == w.shape
    assert float((w - w_hat).abs().max()) <= gap / 2 * float(s.max()) + 1e-6


def test_nf4_beats_int4_on_gaussian_weights(gen):
    w = torch.randn(256, 256, generator=gen)
    assert quantization.quantization_error(w, "nf4") < quantization.quantization_error(w, "int4")


def test_all_zero_block_quantises_to_zero():
    codes, s = quantization.nf4_quantize(torch.zeros(2, 8), block=8)
    assert torch.all(s == 0) and torch.all(quantization.nf4_dequantize(codes, s, (2, 8)) == 0)
    c8, s8 = quantization.absmax_quantize(torch.zeros(5), bits=8, block=4)
    assert torch.all(quantization.absmax_dequantize(c8, s8, (5,)) == 0)


def test_double_quantisation_overhead():
    assert quantization.scale_overhead_bits(64) == 0.5
    assert abs(quantization.scale_overhead_bits(64, double_quant=True) - 0.127) < 1e-3


# ---------------------------------------------------------------- preferences


def test_bradley_terry_loss_is_stable_and_equals_log2_at_ties():
    assert abs(float(prefs.bradley_terry_loss(torch.zeros(3), torch.zeros(3))) - math.log(2)) < 1e-7
    assert float(prefs.bradley_terry_loss(torch.tensor([-500.0]), torch.tensor([500.0]))) == pytest.approx(1000.0)


@pytest.mark.parametrize("beta", [0.1, 1.0, 10.0])
def test_optimal_policy_beats_random_policies(beta, gen):
    ref = torch.softmax(torch.randn(7, dtype=F64, generator=gen), -1)
    r = torch.randn(7, dtype=F64, generator=gen)
    star = prefs.optimal_kl_policy(ref, r, beta)
    best = prefs.kl_objective(star, ref, r, beta)
    Z = (ref * torch.exp(r / beta)).sum()
    torch.testing.assert_close(best, beta * torch.log(Z))
    for _ in range(50):
        pi = torch.softmax(torch.randn(7, dtype=F64, generator=gen), -1)
        assert prefs.kl_objective(pi, ref, r, beta) <= best + 1e-12


def test_dpo_loss_is_log2_when_policy_is_reference():
    lp = torch.tensor([-3.0, -7.0])
    assert float(prefs.dpo_loss(lp, lp, lp, lp, 0.1)) == pytest.approx(math.log(2))


def test_dpo_and_ppo_reach_the_kl_optimum(gen):
    K, beta = 6, 0.5
    r = torch.randn(K, dtype=F64, generator=gen)
    ref = torch.softmax(torch.randn(K, dtype=F64, generator=gen), -1)
    chosen, rejected = prefs.sample_preferences(r, 3000, gen)
    r_hat = prefs.fit_bradley_terry(chosen, rejected, K)
    assert torch.corrcoef(torch.stack([r_hat, r]))[0, 1] > 0.98
    star = prefs.optimal_kl_policy(ref, r_hat, beta)
    assert float(prefs.kl(prefs.train_dpo(ref, chosen, rejected, beta), star)) < 1e-6
    pi_ppo, _ = prefs.ppo_bandit(ref, r_hat, beta, iterations=100)
    assert float(prefs.kl(pi_ppo, star)) < 5e-3


def test_ppo_objective_is_mean_advantage_at_ratio_one():
    lp, A = torch.tensor([-1.0, -2.0]), torch.tensor([0.5, -1.5])
    assert float(prefs.ppo_clip_objective(lp, lp, A)) == pytest.approx(-0.5)


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("V", [1, 5, 50])
def test_top_p_keeps_smallest_set_reaching_p(V, gen):
    logits = torch.randn(3, V, generator=gen) * 2
    for p in (1e-6, 0.3, 0.9):
        out = decoding.top_p_filter(logits, p)
        kept = torch.isfinite(out)
        probs = torch.softmax(logits, -1)
        assert torch.all((probs * kept).sum(-1) >= p - 1e-6)
        # dropping the least probable kept token would fall below p
        least = torch.where(kept, probs, torch.full_like(probs, 2.0)).min(-1).values
        assert torch.all((probs * kept).sum(-1) - least < p + 1e-6) or V == 1


def test_top_k_keeps_k_tokens(gen):
    logits = torch.randn(4, 11, generator=gen)
    assert torch.all(torch.isfinite(decoding.top_k_filter(logits, 3)).sum(-1) == 3)


@pytest.mark.parametrize("V", [2, 7, 30])
def test_speculative_round_reproduces_the_target(V, gen):
    p = torch.softmax(torch.randn(V, dtype=F64, generator=gen), -1)
    q = torch.softmax(torch.randn(V, dtype=F64, generator=gen), -1)
    torch.testing.assert_close(decoding.speculative_output_distribution(p, q), p)
    assert float(decoding.acceptance_rate(p, q)) == pytest.approx(1 - 0.5 * float((p - q).abs().sum()))


def test_speculative_sample_monte_carlo_matches_target(gen):
    p = torch.tensor([0.1, 0.5, 0.15, 0.25], dtype=F64)
    q = torch.tensor([0.4, 0.1, 0.3, 0.2], dtype=F64)
    counts = torch.zeros(4, dtype=F64)
    n = 20000
    xs = torch.multinomial(q, n, replacement=True, generator=gen)
    us = torch.rand(n, 2, dtype=F64, generator=gen)
    for x, (u, u2) in zip(xs.tolist(), us.tolist()):
        counts[decoding.speculative_sample(p, q, x, u, u2)] += 1
    assert float((counts / n - p).abs().max()) < 0.015


def test_expected_tokens_per_round():
    assert decoding.expected_tokens_per_round(0.0, 4) == 1.0
    assert decoding.expected_tokens_per_round(1.0, 4) == 5.0
    assert decoding.expected_tokens_per_round(0.5, 2) == pytest.approx(1.75)

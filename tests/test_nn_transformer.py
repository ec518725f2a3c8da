import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from manifold_course.nn import attention, feedforward, positions
from manifold_course.nn.gpt import GPT, GPTConfig, PreNormBlock, evaluate_loss, train_gpt


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


# ---------------------------------------------------------------- attention


@pytest.mark.parametrize("T", [1, 2, 7, 16, 33])
@pytest.mark.parametrize("d", [4, 5])
def test_causal_attention_matches_torch_sdpa(gen, T, d):
    q, k, v = (torch.randn(2, 3, T, d, generator=gen) for _ in range(3))
    assert_close(attention.causal_attention(q, k, v), F.scaled_dot_product_attention(q, k, v, is_causal=True))


def test_attention_mask_with_offset_and_window():
    m = attention.attention_mask(2, 5, window=2)
    want = torch.tensor([[False, False, True, True, False], [False, False, False, True, True]])
    assert torch.equal(m, want)


def test_sliding_window_matches_sdpa_with_explicit_mask(gen):
    q, k, v = (torch.randn(1, 2, 9, 4, generator=gen) for _ in range(3))
    mask = attention.attention_mask(9, 9, window=3)
    got = attention.scaled_dot_product_attention(q, k, v, mask=mask)
    assert_close(got, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_attention_weights_rows_sum_to_one(gen):
    q, k, v = (torch.randn(2, 6, 3, generator=gen) for _ in range(3))
    _, w = attention.scaled_dot_product_attention(q, k, v, mask=attention.attention_mask(6, 6), return_weights=True)
    assert_close(w.sum(-1), torch.ones(2, 6))
    assert (w.triu(1) == 0).all()


def test_repeat_kv_maps_query_head_to_kv_head_by_integer_division(gen):
    x = torch.randn(2, 3, 4, 5, generator=gen)
    y = attention.repeat_kv(x, 4)
    assert y.shape == (2, 12, 4, 5)
    for h in range(12):
        assert torch.equal(y[:, h], x[:, h // 4])


def test_kv_cache_bytes_llama2_7b_is_2_gib_at_4096_tokens():
    assert attention.kv_cache_bytes(32, 32, 128, 4096, 1, 2) == 2 * 1024**3
    assert attention.kv_cache_bytes(80, 8, 128, 4096, 1, 2) == 1280 * 1024**2


def test_kv_cache_append_does_not_modify_inputs(gen):
    ck, cv = torch.randn(1, 2, 3, 4, generator=gen), torch.randn(1, 2, 3, 4, generator=gen)
    kn, vn = torch.randn(1, 2, 1, 4, generator=gen), torch.randn(1, 2, 1, 4, generator=gen)
    ck0 = ck.clone()
    k, v = attention.kv_cache_append(ck, cv, kn, vn)
    assert k.shape == (1, 2, 4, 4) and torch.equal(k[:, :, :3], ck0) and torch.equal(v[:, :, 3:], vn)
    assert torch.equal(ck, ck0)


# ---------------------------------------------------------------- positions


def test_sinusoidal_known_values():
    pe = positions.sinusoidal_embedding(3, 4)
    assert_close(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert_close(pe[2, 0], torch.tensor(math.sin(2.0)))
    assert_close(pe[2, 3], torch.tensor(math.cos(2.0 / 100.0)))


@pytest.mark.parametrize("d", [2, 6, 16])
def test_rope_preserves_norm_and_scores_depend_on_offset_only(gen, d):
    q, k = torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(d, generator=gen, dtype=torch.float64)
    rot = lambda x, p: positions.rope_rotate(x[None], torch.tensor([p]))[0]  # noqa: E731
    assert_close(rot(q, 37).norm(), q.norm())
    s = [float(rot(q, m) @ rot(k, m - 5)) for m in (5, 11, 300)]
    assert max(s) - min(s) < 1e-10


def test_rope_score_equals_real_part_of_complex_formula(gen):
    q, k = torch.randn(8, generator=gen, dtype=torch.float64), torch.randn(8, generator=gen, dtype=torch.float64)
    rq = positions.rope_rotate(q[None], torch.tensor([12]))[0]
    rk = positions.rope_rotate(k[None], torch.tensor([3]))[0]
    assert_close(rq @ rk, positions.rope_score_complex(q, k, 12, 3))


def test_rope_position_interpolation_divides_positions(gen):
    x = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    p = torch.tensor([0, 4, 8, 12])
    assert_close(positions.rope_rotate(x, p, scale=4.0), positions.rope_rotate(x, p // 4))


def test_alibi_slopes_known_values():
    assert_close(positions.alibi_slopes(8), torch.tensor([2.0 ** -k for k in range(1, 9)]))
    assert_close(positions.alibi_slopes(6), torch.tensor([2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]).float())


def test_alibi_bias_is_minus_slope_times_distance():
    b = positions.alibi_bias(2, 4)
    assert b.shape == (2, 4, 4)
    assert_close(b[0, 3, 1], torch.tensor(-2 * 2.0**-4))
    assert (b.diagonal(dim1=1, dim2=2) == 0).all()


# ---------------------------------------------------------------- feed-forward


@pytest.mark.parametrize("D", [64, 96, 100])
def test_swiglu_and_gelu_have_nearly_equal_parameter_counts(D):
    n_gelu = sum(p.numel() for p in feedforward.GeluMLP(D).parameters())
    n_swiglu = sum(p.numel() for p in feedforward.SwiGLU(D).parameters())
    assert abs(n_swiglu / n_gelu - 1) < 0.02


def test_swiglu_hidden_rounds_up_to_multiple():
    assert feedforward.swiglu_hidden(4096, 256) == 11008                    # LLaMA-7B
    assert feedforward.swiglu_hidden(64) == 171


def test_gelu_mlp_uses_torch_gelu(gen):
    m = feedforward.GeluMLP(5, 7)
    x = torch.randn(3, 5, generator=gen)
    assert_close(m(x), F.gelu(x @ m.w1.weight.T) @ m.w2.weight.T)


# ---------------------------------------------------------------- GPT


def small(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=23, block_size=12, d_model=16, n_layers=2, n_heads=4, **kw))


def test_gpt_shapes_and_hidden_states():
    m = small()
    idx = torch.randint(23, (3, 7))
    logits, hidden = m(idx, return_hidden=True)
    assert logits.shape == (3, 7, 23)
    assert len(hidden) == 3 and all(h.shape == (3, 7, 16) for h in hidden)
    assert m.num_params() == sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("pos", ["rope", "learned", "sinusoidal", "alibi", "none"])
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_kv_cache_logits_equal_full_forward(pos, norm):
    m = small(pos=pos, norm=norm).eval()
    idx = torch.randint(23, (2, 11))
    full = m(idx)
    cache: list = []
    parts = [m(idx[:, :4], kv_cache=cache), m(idx[:, 4:5], kv_cache=cache, start_pos=4),
             m(idx[:, 5:], kv_cache=cache, start_pos=5)]
    assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)
    assert len(cache) == 2 and cache[0][0].shape == (2, 4, 11, 4)


@pytest.mark.parametrize("n_kv_heads", [1, 2, 4])
def test_gqa_cache_holds_n_kv_heads_and_matches_full_forward(n_kv_heads):
    m = small(n_kv_heads=n_kv_heads, window=5).eval()
    idx = torch.randint(23, (1, 9))
    cache: list = []
    out = torch.cat([m(idx[:, :6], kv_cache=cache), m(idx[:, 6:], kv_cache=cache, start_pos=6)], dim=1)
    assert_close(out, m(idx), rtol=1e-5, atol=1e-5)
    assert cache[0][0].shape[1] == n_kv_heads
    assert attention.cache_nbytes(cache) == attention.kv_cache_bytes(2, n_kv_heads, 4, 9, 1, 4)


@pytest.mark.parametrize("pos", ["rope", "learned", "alibi"])
def test_generate_with_and_without_cache_gives_same_greedy_tokens(pos):
    m = small(pos=pos)
    prompt = torch.randint(23, (2, 3))
    a = m.generate(prompt, 20, temperature=0, use_cache=True)
    b = m.generate(prompt, 20, temperature=0, use_cache=False)
    c = m.generate(prompt, 20, top_k=1, use_cache=True)
    assert a.shape == (2, 23) and torch.equal(a, b) and torch.equal(a, c)
    assert torch.equal(a[:, :3], prompt)


def test_generate_sampling_is_reproducible_with_generator():
    m = small()
    prompt = torch.zeros(1, 1, dtype=torch.int64)
    a = m.generate(prompt, 8, top_p=0.9, generator=torch.Generator().manual_seed(1))
    b = m.generate(prompt, 8, top_p=0.9, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_learned_positions_refuse_positions_beyond_block_size():
    m = small(pos="learned")
    with pytest.raises(ValueError, match="block_size"):
        m(torch.zeros(1, 13, dtype=torch.int64))


def test_tied_weights_share_the_embedding():
    m = small()
    assert m.lm_head.weight is m.tok_emb.weight
    assert small(tie_weights=False).num_params() == m.num_params() + 23 * 16


def test_train_gpt_lowers_loss_and_evaluate_loss_accepts_longer_blocks():
    torch.manual_seed(0)
    ids = torch.arange(2000) % 7                                            # a periodic sequence: easy to learn
    m = GPT(GPTConfig(vocab_size=7, block_size=16, d_model=16, n_layers=1, n_heads=2))
    before = evaluate_loss(m, ids, n_batches=2, batch_size=8)
    losses = train_gpt(m, ids, steps=60, batch_size=8, lr=1e-2)
    assert len(losses) == 60
    assert evaluate_loss(m, ids, n_batches=2, batch_size=8) < 0.3 * before
    assert math.isfinite(evaluate_loss(m, ids, n_batches=2, batch_size=8, block_size=40))


def test_prenorm_block_equals_gpt_block_in_prenorm_mode(gen):
    b = PreNormBlock(16, 4)
    x = torch.randn(2, 5, 16, generator=gen)
    want = x + b.attn(b.norm1(x), torch.arange(5))[0]
    want = want + b.mlp(b.norm2(want))
    assert_close(b(x), want)


def test_gpt_reads_input_embeddings_in_place_of_ids():
    from manifold_course.nn.gpt import GPT, GPTConfig

    for pos in ("rope", "learned", "sinusoidal"):
        torch.manual_seed(0)
        m = GPT(GPTConfig(vocab_size=11, block_size=8, d_model=16, n_layers=2, n_heads=2, pos=pos)).eval()
        ids = torch.randint(0, 11, (2, 6))
        assert torch.allclose(m(None, inputs_embeds=m.tok_emb(ids)), m(ids), atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        m(ids, inputs_embeds=m.tok_emb(ids))
    with pytest.raises(ValueError, match="not both"):
        m(None)

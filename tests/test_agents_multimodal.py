# Mini-CLIP, DrLIM and the LLaVA pieces (Volume 4, sections 4.1-4.2).
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from manifold_course.agents import clip, llava
from manifold_course.nn.gpt import GPT, GPTConfig
from manifold_course.seeding import torch_generator


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch_generator(seed), dtype=torch.float64)


def test_clip_loss_is_symmetric_in_its_two_inputs_and_zero_for_one_pair():
    a, b = _randn(7, 5), _randn(7, 5, seed=1)
    assert torch.allclose(clip.clip_loss(a, b, 3.0), clip.clip_loss(b, a, 3.0))
    assert clip.clip_loss(a[:1], b[:1], 3.0).item() == 0.0


def test_clip_loss_of_aligned_orthogonal_pairs_vanishes_with_a_large_scale():
    E = torch.eye(6, dtype=torch.float64)
    assert clip.clip_loss(E, 2 * E, 100.0).item() < 1e-30
    assert clip.clip_loss(E, E, 1.0).item() > 1.0


def test_zero_shot_predict_ignores_norms():
    img, cls = _randn(20, 4), _randn(5, 4, seed=1)
    scale = torch.rand(5, 1, generator=torch_generator(2), dtype=torch.float64) * 100
    assert torch.equal(clip.zero_shot_predict(img, cls), clip.zero_shot_predict(3 * img, cls * scale))


def test_recall_at_k_of_the_identity_is_one_and_grows_with_k():
    assert clip.recall_at_k(torch.eye(8), 1) == 1.0
    sim = _randn(30, 30)
    vals = [clip.recall_at_k(sim, k) for k in (1, 5, 10, 30)]
    assert vals == sorted(vals) and vals[-1] == 1.0


def test_modality_gap_is_zero_for_identical_directions_and_two_for_opposite_ones():
    a = _randn(10, 3)
    assert clip.modality_gap(a, 5 * a) == pytest.approx(0.0, abs=1e-12)
    e = torch.tensor([[1.0, 0.0]])
    assert clip.modality_gap(e, -e) == pytest.approx(2.0)


def test_drlim_loss_pulls_neighbours_and_pushes_others_to_the_margin():
    z1 = torch.zeros(2, 2)
    z2 = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    assert clip.drlim_loss(z1, z2, torch.tensor([True, True]), 1.0).item() == pytest.approx((12.5 + 0.125) / 2)
    assert clip.drlim_loss(z1, z2, torch.tensor([False, False]), 1.0).item() == pytest.approx(0.5 * 0.25 / 2)


def test_patchify_keeps_every_pixel_in_row_major_patches():
    x = torch.arange(64.0).reshape(1, 64)
    p = clip.patchify(x)
    assert p.shape == (1, 16, 4) and p[0, 0].tolist() == [0, 1, 8, 9] and p[0, 15].tolist() == [54, 55, 62, 63]


def test_held_out_template_words_are_unknown_to_the_tokenizer():
    tok = clip.WordTokenizer.for_digits()
    assert tok.encode("someone wrote a seven") == [1, 1, tok.index["a"], tok.index["seven"]]
    assert tok.batch(["a", "the digit 7"]).tolist() == [[tok.index["a"], 0, 0], tok.encode("the digit 7")]


def test_cyclic_neighbours_wrap_around():
    nb = clip.cyclic_neighbours(6, 1)
    assert nb[0, 5] and nb[0, 1] and not nb[0, 0] and not nb[0, 2] and (nb == nb.T).all()


def test_rotated_copies_of_zero_degrees_is_the_upsampled_image():
    img = np.random.default_rng(0).random(64)
    R = clip.rotated_copies(img, [0, 90])
    assert R.shape == (2, 256) and R.min() >= 0
    assert np.allclose(R[0].reshape(16, 16)[::2, ::2][:4, :4], img.reshape(8, 8)[:4, :4], atol=0.6)


def test_projector_parameter_counts_match_the_closed_forms():
    for kind in ("linear", "mlp2"):
        m = llava.Projector(kind, 7, 5)
        assert sum(p.numel() for p in m.parameters()) == llava.projector_params(kind, 7, 5)
        assert m(torch.zeros(2, 3, 7)).shape == (2, 3, 5)
    with pytest.raises(ValueError):
        llava.Projector("mlp3", 2, 2)


def test_llama_count_matches_the_published_7b_figure():
    assert llava.llama_params(32000, 4096, 32, 11008) == 6_738_415_616
    assert llava.llava_trainable_params(1, "linear", 1024, 32000, 4096, 32, 11008) == 4_198_400
    with pytest.raises(ValueError):
        llava.llava_trainable_params(3, "linear", 1, 1, 1, 1, 1)


def test_build_multimodal_batch_masks_image_positions_and_padding():
    emb = torch.nn.Embedding(9, 3)
    inputs, mask, labels = llava.build_multimodal_batch(torch.ones(1, 2, 3), torch.tensor([[4, 5, 0]]), emb)
    assert torch.equal(inputs[0, :2], torch.ones(2, 3)) and torch.equal(inputs[0, 2:], emb(torch.tensor([4, 5, 0])))
    assert mask.tolist() == [[1, 1, 1, 1, 0]] and labels.tolist() == [[-100, -100, 4, 5, -100]]


def test_qformer_output_length_is_the_number_of_queries_and_order_free():
    W = (_randn(4, 3), _randn(6, 3, seed=1), _randn(6, 3, seed=2))
    q = _randn(5, 4, seed=3)
    for n in (1, 7, 300):
        assert llava.qformer(_randn(2, n, 6, seed=n), q, W).shape == (2, 5, 3)
    Z = _randn(2, 9, 6, seed=4)
    assert torch.allclose(llava.qformer(Z, q, W), llava.qformer(Z.flip(1), q, W))


def test_qformer_of_one_patch_returns_its_value_for_every_query():
    W = (_randn(4, 3), _randn(6, 3, seed=1), _randn(6, 3, seed=2))
    Z = _randn(2, 1, 6, seed=5)
    out = llava.qformer(Z, _randn(5, 4, seed=3), W)
    assert torch.allclose(out, (Z @ W[2]).expand(2, 5, 3))


def test_lm_forward_from_embeddings_equals_the_forward_from_ids():
    lm = GPT(GPTConfig(vocab_size=11, block_size=8, d_model=16, n_layers=2, n_heads=2))
    ids = torch.randint(0, 11, (2, 6), generator=torch_generator(0))
    assert torch.allclose(llava.lm_logits_from_embeddings(lm, lm.tok_emb(ids)), lm(ids), atol=1e-6)


def test_connector_training_leaves_the_frozen_lm_unchanged():
    tok = llava.lm_tokenizer()
    lm = llava.freeze(GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, d_model=16, n_layers=1, n_heads=2)))
    before = [p.clone() for p in lm.parameters()]
    proj = llava.Projector("linear", 4, 16)
    w0 = proj.net[0].weight.clone()
    llava.train_connector(proj, lm, torch.randn(20, 1, 4), torch.arange(20) % 10, tok, steps=3, batch_size=8)
    assert all(torch.equal(a, b) for a, b in zip(before, lm.parameters()))
    assert not torch.equal(w0, proj.net[0].weight) and llava.trainable(lm) == 0


def test_caption_documents_put_the_numeral_after_the_number_word():
    for doc in llava.caption_documents(20, seed=0):
        words = doc.split()
        assert words[0] == "<bos>" and words[-1] == "<eos>"
        assert words[2] == str(clip.DIGIT_WORDS.index(words[1]))

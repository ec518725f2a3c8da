import numpy as np
import pytest
import torch

from manifold_course import data, seed_everything


def test_digits_are_scaled_and_typed():
    X, y = data.digits()
    assert X.shape == (1797, 64) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert float(X.min()) == 0.0 and float(X.max()) == 1.0 and set(y.tolist()) == set(range(10))


def test_split_is_disjoint_and_complete():
    tr, te = data.train_test_split_indices(101, 0.2, seed=3)
    assert len(te) == 20 and len(tr) == 81 and set(tr) | set(te) == set(range(101)) and not set(tr) & set(te)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_linear_subspace_has_rank_k(k):
    X = data.linear_subspace(200, k, 13, seed=1)
    assert X.shape == (200, 13) and np.linalg.matrix_rank(X) == k


def test_circle_and_torus_lie_on_their_shapes():
    c = data.noisy_circle(300, radius=2.0, noise=0.0)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 2.0)
    t = data.torus(300, R=2.0, r=0.5)
    rho = np.hypot(t[:, 0], t[:, 1])
    np.testing.assert_allclose((rho - 2.0) ** 2 + t[:, 2] ** 2, 0.25, atol=1e-12)


def test_generators_are_seeded():
    assert np.array_equal(data.gaussian_blob(5, seed=4), data.gaussian_blob(5, seed=4))
    assert not np.array_equal(data.gaussian_blob(5, seed=4), data.gaussian_blob(5, seed=5))


def test_seed_everything_makes_torch_repeatable():
    seed_everything(7)
    a = torch.randn(3)
    seed_everything(7)
    assert torch.equal(a, torch.randn(3))


def test_stdlib_corpus_is_offline_text_of_the_requested_size():
    text = data.stdlib_corpus(200_000)
    assert len(text) == 200_000 and "def " in text and "import" in text


def test_char_tokenizer_round_trip_and_unknown_character():
    tok = data.CharTokenizer.from_text("hello world")
    ids = tok.encode("low")
    assert ids.dtype == torch.int64 and tok.decode(ids) == "low" and tok.vocab_size == 8
    with pytest.raises(KeyError, match="'z'"):
        tok.encode("z")


def test_lm_batch_targets_are_inputs_shifted_by_one():
    ids = torch.arange(100)
    x, y = data.lm_batch(ids, block=7, batch=5, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 7) and torch.equal(y, x + 1)

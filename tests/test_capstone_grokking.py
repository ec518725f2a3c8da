import numpy as np
import pytest
import torch

from manifold_course import lens
from manifold_course.capstone import grokking as G
from manifold_course.seeding import numpy_rng, torch_generator
from manifold_course.systems.quantize import per_channel_quantize

SMALL = G.GrokConfig(p=7, frac=0.5, d_model=8, n_layers=1, n_heads=2, eval_every=5)


def test_split_is_a_partition_of_all_pairs():
    d = G.modular_addition_split(11, 0.3, seed=2)
    assert len(d.x_train) == round(0.3 * 121) and len(d.x_train) + len(d.x_test) == 121
    codes = torch.cat([d.x_train, d.x_test])[:, :2] @ torch.tensor([11, 1])
    assert sorted(codes.tolist()) == list(range(121))
    assert (d.x_train[:, 2] == 11).all() and torch.equal(d.y_test, (d.x_test[:, 0] + d.x_test[:, 1]) % 11)


def test_split_depends_on_the_seed_only():
    a, b, c = (G.modular_addition_split(13, 0.5, s) for s in (0, 0, 1))
    assert torch.equal(a.x_train, b.x_train) and not torch.equal(a.x_train, c.x_train)


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="frac"):
        G.modular_addition_split(7, 1.0)


def test_model_has_the_task_vocabulary_and_an_untied_head():
    m = G.make_model(SMALL, seed=0)
    assert m.tok_emb.weight.shape == (8, 8) and m.lm_head.weight is not m.tok_emb.weight
    assert G.answer_logits(m, G.modular_inputs(7)[0], 7).shape == (49, 7)


def test_muon_gets_the_block_matrices_only():
    m = G.make_model(SMALL, seed=0)
    hidden, rest = G.split_parameters(m)
    assert all(p.ndim == 2 for p in hidden) and len(hidden) == 7            # wq wk wv wo, gate up down
    ids = {id(p) for p in rest}
    assert id(m.tok_emb.weight) in ids and id(m.lm_head.weight) in ids
    assert len(hidden) + len(rest) == len(list(m.parameters()))


@pytest.mark.parametrize("opt", ["adamw", "muon"])
def test_training_records_curves_and_lowers_the_loss(opt):
    d = G.modular_addition_split(7, 0.5, seed=0)
    m = G.make_model(SMALL, seed=0)
    c = G.train_grokking(m, d, opt, SMALL, steps=20, keep=(10,))
    assert c.steps == [0, 5, 10, 15, 20] and len(c.train_acc) == len(c.test_loss) == 5
    assert c.train_loss[-1] < c.train_loss[0] and set(c.checkpoints) == {10}


def test_training_rejects_an_unknown_optimizer():
    with pytest.raises(ValueError, match="adamw"):
        G.train_grokking(G.make_model(SMALL), G.modular_addition_split(7, 0.5), "sgd", SMALL, steps=1)


def test_grokking_step_waits_for_the_last_dip():
    steps = [0, 10, 20, 30, 40]
    assert G.grokking_step([0.1, 0.95, 0.5, 0.92, 0.99], steps, 0.9) == 30
    assert G.grokking_step([0.1, 0.95, 0.5, 0.92, 0.8], steps, 0.9) is None
    assert G.grokking_step([0.9] * 5, steps, 0.9) == 0
    assert G.memorisation_step([0.5, 1.0, 1.0, 1.0, 1.0], steps) == 10


def test_fourier_finds_a_planted_circle():
    p, rng = 29, numpy_rng(0)
    a = np.arange(p)[:, None]
    E = 2 * np.cos(2 * np.pi * 4 * a / p) * rng.standard_normal(6) + 0.5 * np.sin(2 * np.pi * 11 * a / p) * \
        rng.standard_normal(6) + 5.0
    assert G.fourier_key_frequencies(E, 2) == [4, 11]
    assert G.fourier_concentration(E, 2) == pytest.approx(1.0, abs=1e-9)
    assert G.fourier_power(torch.tensor(E)).shape == (15,)


def test_the_clearest_key_loop_finds_a_circle_in_a_weaker_plane():
    p, rng = 23, numpy_rng(0)
    a = np.arange(p)[:, None]
    line = 3.0 * np.cos(2 * np.pi * 3 * a / p) * np.ones((1, 2))         # frequency 3, strongest: a segment, no loop
    circle = np.hstack([np.cos(2 * np.pi * 5 * a / p), np.sin(2 * np.pi * 5 * a / p)])   # frequency 5: a circle
    E = np.hstack([line, circle]) + 0.02 * rng.standard_normal((p, 4))
    strongest = G.fourier_key_frequencies(E, 1)[0]
    assert strongest != 5 and 5 in G.fourier_key_frequencies(E, 3)
    assert G.key_plane_loop(E, 5) > 0.8 and G.key_plane_loop(E) < 0.5  # the circle is not in the strongest plane
    assert G.clearest_key_loop(E) == pytest.approx(G.key_plane_loop(E, 5))
    assert G.clearest_key_loop(E, ks=[strongest]) == pytest.approx(G.key_plane_loop(E))


def test_parallelogram_score_extremes():
    assert G.parallelogram_score(np.ones((5, 3))) == 1.0
    p = 9
    line = np.arange(p)[:, None] * np.ones((1, 2))
    # a + b = c + d without wrap-around is exact on a line; pairs that wrap differ by p in the sum
    assert 0 < G.parallelogram_score(line, 0.01) < 1


def test_local_lipschitz_is_bounded_by_the_spectral_norm():
    A = torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    est = lens.local_lipschitz(lambda x: x @ A.T, torch.zeros(3, 2, dtype=torch.float64), 1e-2, 200,
                               generator=torch_generator(0))
    assert est.shape == (3,) and (est <= 2 + 1e-9).all() and (est >= 1.9).all()


def test_int4_matches_volume_6():
    w = torch.randn(5, 12, generator=torch_generator(1))
    q, s = per_channel_quantize(w, 4)
    assert torch.equal(G.quantize_int4_per_channel(w), q.float() * s)
    assert (q.abs() <= 7).all()


def test_quantized_copy_leaves_the_model_alone():
    m = G.make_model(SMALL, seed=0)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    qm = G.quantize_model_int4(m)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    w = qm.blocks[0].attn.wq.weight
    assert len(torch.unique(w[0])) <= 15 and torch.equal(qm.blocks[0].norm1.weight, m.blocks[0].norm1.weight)


def test_capstone_report_has_every_key():
    d = G.modular_addition_split(7, 0.5, seed=0)
    r = G.capstone_report(G.make_model(SMALL, seed=0), d)
    assert set(r) == {"acc", "id_per_layer", "h1_max_persistence", "lipschitz", "acc_int4"}
    assert len(r["id_per_layer"]) == 2 and 0 <= r["acc"] <= 1 and r["lipschitz"] > 0

"""The manifold lens (manifold_course.lens): each measurement on clouds whose answer is known, and the hooks'
hygiene (nothing left on the model)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from manifold_course import lens
from manifold_course.nn.gpt import GPT, GPTConfig
from manifold_course.seeding import numpy_rng, torch_generator


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))


def _no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_capture_shapes_and_hygiene():
    m = _mlp().train()
    x = torch.randn(50, 6, generator=torch_generator(1))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    acts = lens.capture(m, x, ["input", "1", "4"])
    assert [tuple(a.shape) for a in acts.values()] == [(50, 6), (50, 32), (50, 3)]
    assert torch.equal(acts["input"], x) and torch.allclose(acts["4"], m(x).detach())
    assert (acts["1"] >= 0).all()
    assert _no_hooks(m) and m.training
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_capture_sequence_model_tuple_outputs_and_select():
    g = GPT(GPTConfig(vocab_size=11, block_size=6, d_model=16, n_layers=2, n_heads=2))
    ids = torch.randint(0, 11, (4, 6), generator=torch_generator(0))
    acts = lens.capture(g, ids, ["tok_emb", "blocks.1"])          # a block returns (x, cache): x is taken
    assert acts["blocks.1"].shape == (24, 16)
    _, hidden = g(ids, return_hidden=True)
    assert torch.allclose(acts["blocks.1"], hidden[2].reshape(-1, 16))
    last = lens.capture(g, ids, ["blocks.1"], select=lambda name, t: t[:, -1])
    assert torch.allclose(last["blocks.1"], hidden[2][:, -1])
    assert _no_hooks(g)


def test_capture_bad_names_and_hooks_removed_on_error():
    m = _mlp()
    with pytest.raises(KeyError, match="no module named"):
        lens.capture(m, torch.zeros(2, 6), ["nope"])

    def boom(model, x):
        raise RuntimeError("learner's forward failed")
    with pytest.raises(RuntimeError, match="learner"):
        lens.capture(m, torch.zeros(2, 6), ["1"], forward=boom)
    assert _no_hooks(m)


def test_intrinsic_dimension_of_a_plane_and_duplicates():
    rng = numpy_rng(0)
    Z = rng.normal(size=(800, 2))
    Q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    X = Z @ Q[:2]                                                  # a 2-D plane in 10-D
    d = lens.intrinsic_dimension(X)
    assert abs(d["twonn"] - 2) < 0.3 and d["pca95"] == 2 and 1.5 < d["participation_ratio"] <= 2.0 + 1e-9
    tokens = np.repeat(rng.normal(size=(12, 5)), 20, axis=0)         # 12 distinct points, each seen 20 times
    assert np.isfinite(lens.intrinsic_dimension(tokens)["twonn"])
    dead = lens.intrinsic_dimension(np.zeros((30, 4)))
    assert math.isnan(dead["twonn"]) and dead["pca95"] == 0


def test_loops_circle_against_blob():
    t = np.linspace(0, 2 * np.pi, 150, endpoint=False)
    circle = np.c_[np.cos(t), np.sin(t), 0.02 * numpy_rng(1).normal(size=150)]
    blob = numpy_rng(2).normal(size=(150, 3))
    c, b = lens.loops(circle, n_points=100), lens.loops(blob, n_points=100)
    assert c["h1_rel"] > 0.8 and b["h1_rel"] < 0.3
    assert c["h1"].shape[1] == 2 and len(c["h0"]) == 100          # farthest-point subsample of 100 points


def test_coverage():
    A = torch.tensor([[1.0, 0.0, 2.0, -1.0], [3.0, 0.0, 0.0, -2.0]])
    cov = lens.coverage(A)
    assert cov["dead_fraction"] == 0.5 and cov["coverage"] == 0.5
    even = lens.coverage(torch.ones(5, 8))
    assert even["dead_fraction"] == 0 and abs(even["entropy"] - 1) < 1e-12
    one = torch.zeros(5, 8)
    one[:, 3] = 1
    assert lens.coverage(one)["entropy"] == 0 and lens.coverage(one)["dead_fraction"] == 7 / 8
    assert lens.coverage(torch.zeros(3, 4))["entropy"] == 0


def test_isotropy_line_against_gaussian():
    rng = numpy_rng(3)
    line = rng.normal(size=(200, 1)) * rng.normal(size=(1, 20))
    iso = lens.isotropy(line)
    assert abs(iso["mean_abs_cos"] - 1) < 1e-9 and abs(iso["top_pc_fraction"] - 1) < 1e-9
    g = lens.isotropy(rng.normal(size=(300, 200)))
    assert g["mean_abs_cos"] < 0.1 and g["top_pc_fraction"] < 0.05 and g["effective_rank"] > 100


def test_local_lipschitz_linear_map():
    A = torch.randn(4, 6, dtype=torch.float64, generator=torch_generator(4))
    x = torch.randn(8, 6, dtype=torch.float64, generator=torch_generator(5))
    L = lens.local_lipschitz(lambda z: z @ A.T, x, n_dirs=300)
    top = torch.linalg.matrix_norm(A, 2).item()
    assert L.shape == (8,) and (L <= top + 1e-9).all() and (L > 0.8 * top).all()
    assert torch.allclose(lens.local_lipschitz(lambda z: 3 * z, x), torch.full((8,), 3.0, dtype=torch.float64))
    with pytest.raises(TypeError, match="float"):
        lens.local_lipschitz(lambda z: z, torch.arange(4)[:, None])


def test_look_mlp_and_report():
    m = _mlp()
    x = torch.randn(120, 6, generator=torch_generator(6))
    r = lens.look(m, x, ["input", "1", "4"], n_points=60, title="toy")
    assert r.layers == ["input", "1", "4"] and set(r.rows[0]) == set(lens.COLUMNS)
    assert abs(r.row("input")["lipschitz"] - 1) < 1e-4              # the perturbation itself: ||delta|| / eps = 1
    assert r.row("1")["dead_fraction"] == lens.coverage(lens.capture(m, x, ["1"])["1"])["dead_fraction"]
    assert "toy" in repr(r) and "<table>" in r._repr_html_() and r.to_dict()["rows"][2]["layer"] == "4"
    fig = r.plot()
    assert len(fig.axes) == 6
    assert _no_hooks(m)
    with pytest.raises(TypeError, match="tok_emb"):
        lens.look(m, torch.zeros(3, 6, dtype=torch.long), ["1"])


def test_look_gpt_perturbs_the_embedding():
    g = GPT(GPTConfig(vocab_size=13, block_size=5, d_model=16, n_layers=2, n_heads=2))
    ids = torch.randint(0, 13, (10, 5), generator=torch_generator(7))
    r = lens.look(g, ids, ["tok_emb", "blocks.0", "blocks.1"], perturb="blocks.0", n_points=40)
    assert r.row("tok_emb")["lipschitz"] == 0.0                      # upstream of the perturbation: unchanged
    assert abs(r.row("blocks.0")["lipschitz"] - 1) < 1e-4            # the perturbed output itself
    assert r.row("blocks.1")["lipschitz"] > 0
    assert _no_hooks(g)


def test_bhattacharyya_and_inpca():
    P = np.array([[0.5, 0.5], [1.0, 0.0]])
    Q = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert lens.bhattacharyya(P, P) == pytest.approx(0.0, abs=1e-12)
    assert lens.bhattacharyya(P, Q) == pytest.approx(-np.log(np.sqrt(0.5)) / 2)
    assert lens.bhattacharyya(P, Q) == pytest.approx(lens.bhattacharyya(Q, P))
    with pytest.raises(ValueError, match="same shape"):
        lens.bhattacharyya(P, np.ones((3, 2)) / 2)
    pts = numpy_rng(8).normal(size=(7, 2))                         # classical MDS: squared distances -> the points
    D = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    lam, coords = lens.inpca(D)
    assert np.allclose(lam[2:], 0, atol=1e-9) and (lam[:2] > 0).all()
    assert np.allclose(((coords[:, None, :2] - coords[None, :, :2]) ** 2).sum(-1), D)


def test_prediction_trajectories():
    rng = numpy_rng(9)
    labels = rng.integers(0, 3, size=20)
    truth = np.eye(3)[labels]
    runs = {f"run{s}": [(1 - a) / 3 + a * truth for a in np.linspace(0, 0.9, 6)] for s in range(2)}
    out = lens.prediction_trajectories(runs, labels=labels)
    assert set(out["coords"]) == {"run0", "run1", "truth", "ignorance"}
    assert out["coords"]["run0"].shape == (6, 3) and out["distances"].shape == (14, 14)
    assert out["explained"][0] > 0.9 and abs(out["explained"].sum() - 1) < 1e-9   # one path: one dominant axis


def test_the_shared_svd_matches_geometry():
    from manifold_course.geometry.intrinsic_dimension import effective_rank, participation_ratio, pca_dim

    X = numpy_rng(10).normal(size=(300, 12)) @ numpy_rng(11).normal(size=(12, 12))
    d, iso = lens.intrinsic_dimension(X), lens.isotropy(X)
    assert d["pca95"] == pca_dim(X, 0.95) and d["participation_ratio"] == pytest.approx(participation_ratio(X))
    assert iso["effective_rank"] == pytest.approx(effective_rank(X))

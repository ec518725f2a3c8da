import numpy as np
import pytest
import torch

from manifold_course import lens
from manifold_course.capstone import zoo


@pytest.fixture(scope="module")
def mlp():
    return zoo.digits_mlp(seed=0, steps=60)


def test_specimen_unpacks_to_model_inputs_layers_options(mlp):
    model, inputs, layers, options = mlp
    assert isinstance(model, torch.nn.Module) and inputs.shape == (449, 64)
    assert layers[0] == "input" and layers[-1] == "head" and options == {"perturb": "input"}


def test_digits_mlp_learns_and_lens_sees_every_layer(mlp):
    assert mlp.score["test_accuracy"] > 0.8
    rep = mlp.look(topology=False)
    assert rep.layers == list(mlp.layers)
    assert rep.row("head")["dim"] == 10 and rep.row("input")["lipschitz"] == pytest.approx(1.0, rel=1e-4)


def test_look_leaves_no_hooks_and_keeps_training_flag(mlp):
    mlp.model.train()
    mlp.look(topology=False, perturb=None)
    assert mlp.model.training
    assert all(not m._forward_hooks for m in mlp.model.modules())


def test_random_labels_are_a_permutation():
    y = torch.arange(20) % 10
    assert sorted(zoo._shuffled(y, 0).tolist()) == sorted(y.tolist())
    assert not torch.equal(zoo._shuffled(y, 0), y)


def test_cnn_and_denoiser_layers_capture():
    cnn = zoo.digits_cnn(seed=0, steps=5)
    clouds = lens.capture(cnn.model, cnn.inputs[:7], list(cnn.layers))
    assert [c.shape for c in clouds.values()] == [(7, 64), (7, 512), (7, 1024), (7, 256), (7, 10)]
    den = zoo.circle_denoiser(seed=0, steps=5)
    clouds = lens.capture(den.model, den.inputs, list(den.layers), forward=den.look_kwargs["forward"])
    assert clouds["body"].shape == (400, 2) and clouds["body.0"].shape == (400, 64)
    assert den.extra["betas"].shape == (100,)


def test_gpt_residual_stream_is_one_point_per_position():
    g = zoo.char_gpt(seed=0, steps=3, n_probe=4, block=8)
    clouds = lens.capture(g.model, g.inputs, list(g.layers))
    assert all(c.shape == (32, 64) for c in clouds.values())
    assert g.look_kwargs["perturb"] == "tok_emb"


def test_policy_states_and_random_baseline():
    actor = torch.nn.Sequential(torch.nn.Linear(4, 2))
    states, ret = zoo.policy_states(actor, n=30, seed=0)
    assert states.shape == (30, 4) and ret > 0
    assert 8 < zoo.random_policy_return(episodes=5, seed=0) < 60


def test_checkpoints_start_near_uniform_and_are_probabilities():
    ck, labels = zoo.digits_checkpoints(seed=0, steps=10, n_checkpoints=3, n_probe=20)
    assert len(ck) == 3 and labels.shape == (20,)
    assert all(np.allclose(P.sum(1), 1.0) for P in ck)
    assert lens.bhattacharyya(ck[0], np.full((20, 10), 0.1)) < lens.bhattacharyya(ck[-1], np.full((20, 10), 0.1))


@pytest.mark.parametrize("ids, rel, expected", [([8.8, 12.0, 10.0, 5.0], 0.1, True), ([8.8, 7.0, 5.0], 0.1, False),
                                               ([3.0, 4.0, 9.0], 0.1, False), ([5.0, 5.5, 5.0], 0.1, True),
                                               ([5.0, 5.4, 5.0], 0.1, False), ([1.0, float("nan"), 0.5], 0.1, False),
                                               ([1.0, 3.0], 0.1, False)])
def test_hunchback_definition(ids, rel, expected):
    assert zoo.hunchback(ids, rel) is expected


def test_top_explained_uses_absolute_values():
    assert zoo.top_explained([4.0, -3.0, 2.0, 1.0], 2) == pytest.approx(0.7)
    assert zoo.top_explained([0.0, 0.0], 1) == 0.0


def test_ddpm_samples_shape():
    den = zoo.circle_denoiser(seed=0, steps=5)
    x = zoo.ddpm_samples(den.model, den.extra["betas"], n=11, seed=0)
    assert x.shape == (11, 2) and torch.isfinite(x).all()

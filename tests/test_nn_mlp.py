import pytest
import torch

from manifold_course.data import digits
from manifold_course.nn.mlp import MLPConfig, TrainConfig, accuracy, deep_mlp, train_classifier


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("norm", [None, "batch", "layer", "rms"])
def test_shapes_and_hidden_states(residual, norm):
    cfg = MLPConfig(d_in=5, width=7, depth=3, n_out=4, residual=residual, norm=norm)
    model = deep_mlp(cfg)
    logits, hidden = model(torch.randn(6, 5), return_hidden=True)
    assert logits.shape == (6, 4) and len(hidden) == 4 and all(h.shape == (6, 7) for h in hidden)


def test_residual_block_adds_the_identity():
    model = deep_mlp(MLPConfig(d_in=3, width=4, depth=1, residual=True, activation="identity"))
    block = model.blocks[0]
    with torch.no_grad():
        block.linear.weight.zero_()
        block.linear.bias.zero_()
    h = torch.randn(2, 4)
    assert torch.equal(block(h), h)


def test_seeded_init_and_callers_random_stream_untouched():
    torch.manual_seed(1)
    expected = torch.rand(1)
    torch.manual_seed(1)
    a = deep_mlp(MLPConfig(), seed=3)
    after = torch.rand(1)
    b = deep_mlp(MLPConfig(), seed=3)
    assert torch.equal(after, expected)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_training_reduces_loss_and_learns_digits():
    X, y = digits()
    model = deep_mlp(MLPConfig(depth=2, width=32))
    losses = train_classifier(model, X[:1000], y[:1000], TrainConfig(steps=200, lr=3e-3))
    assert losses[-1] < 0.5 * losses[0]
    assert accuracy(model, X[1000:], y[1000:]) > 0.85


def test_unknown_optimizer_is_rejected():
    with pytest.raises(ValueError, match="adam"):
        train_classifier(deep_mlp(), torch.randn(4, 64), torch.zeros(4, dtype=torch.long), TrainConfig(optimizer="lbfgs"))

import math

import pytest
import torch

from manifold_course.generative import control, dit, video
from manifold_course.generative.denoiser import TimeMLP
from manifold_course.seeding import manual_seed, torch_generator


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch_generator(seed), dtype=dtype)


def test_zero_conv_outputs_zero_and_its_weight_gets_the_outer_product_gradient():
    zc = control.ZeroConv1x1(3, 5)
    x, g = _randn(2, 3, 4, 6, seed=1), _randn(2, 5, 4, 6, seed=2)
    y = zc(x)
    assert y.shape == (2, 5, 4, 6) and torch.all(y == 0)
    (y * g).sum().backward()
    torch.testing.assert_close(zc.weight.grad[:, :, 0, 0], torch.einsum("bohw,bihw->oi", g, x))
    torch.testing.assert_close(zc.bias.grad, g.sum((0, 2, 3)))


def test_zero_linear_starts_at_zero():
    lin = control.ZeroLinear(4, 3)
    assert torch.all(lin(_randn(5, 4)) == 0) and lin.weight.requires_grad


def _controlled(c_dim=8):
    manual_seed(0)
    base = TimeMLP(2, hidden=16, depth=2, t_dim=8)
    return base, control.ControlledModel(base, c_dim)


def test_controlled_model_equals_base_at_init_and_freezes_only_the_base():
    base, cm = _controlled()
    x, t, c = _randn(7, 2, seed=3), torch.rand(7, generator=torch_generator(4)), _randn(7, 8, seed=5)
    assert torch.equal(cm(x, t, c), base(x, t))
    assert all(not p.requires_grad for p in cm.base.parameters())
    trainable = {n.split(".")[0] for n, p in cm.named_parameters() if p.requires_grad}
    assert trainable == {"copy", "zero_in", "zero_out"}


def test_only_the_output_join_gets_a_gradient_on_the_first_step_then_all_do():
    base, cm = _controlled()
    x, t, c = _randn(9, 2, seed=6), torch.rand(9, generator=torch_generator(7)), _randn(9, 8, seed=8)
    cm(x, t, c).pow(2).sum().backward()
    assert cm.zero_out.weight.grad.abs().sum() > 0
    assert cm.zero_in.weight.grad.abs().sum() == 0 and all(p.grad.abs().sum() == 0 for p in cm.copy.parameters())
    with torch.no_grad():                                     # one plain SGD step (no torch.optim: faster import)
        for p in cm.parameters():
            if p.grad is not None:
                p -= 0.1 * p.grad
                p.grad = None
    cm(x, t, c).pow(2).sum().backward()
    assert cm.zero_in.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in base.parameters())


def test_decoupled_attention_with_zero_lambda_is_text_attention_and_is_affine_in_lambda():
    q, kt, vt, ki, vi = (_randn(2, n, 6, seed=s) for s, n in ((1, 5), (2, 7), (3, 7), (4, 3), (5, 3)))
    text = torch.nn.functional.scaled_dot_product_attention(q, kt, vt)
    torch.testing.assert_close(control.decoupled_cross_attention(q, kt, vt, ki, vi, 0.0), text)
    a, b = (control.decoupled_cross_attention(q, kt, vt, ki, vi, lam) for lam in (1.0, 3.0))
    torch.testing.assert_close((b - text) / 3, a - text)


@pytest.mark.parametrize("shape,p", [((2, 3, 8, 8), 2), ((1, 1, 6, 9), 3), ((3, 2, 5, 5), 5), ((1, 4, 4, 4), 1)])
def test_patchify_round_trips_and_orders_patches_row_major(shape, p):
    x = _randn(*shape)
    tok = dit.patchify(x, p)
    C, H, W = shape[1:]
    assert tok.shape == (shape[0], (H // p) * (W // p), p * p * C)
    assert torch.equal(dit.unpatchify(tok, (C, H, W), p), x)
    if W // p > 1:   # token 1 is the patch in grid row 0, column 1, numbers ordered (row, column, channel)
        assert torch.equal(tok[0, 1], x[0, :, :p, p:2 * p].permute(1, 2, 0).reshape(-1))


def test_patchify_refuses_a_patch_that_does_not_divide():
    with pytest.raises(ValueError, match="divide"):
        dit.patchify(_randn(1, 1, 7, 8), 2)


@pytest.mark.parametrize("shape,patch", [((2, 8, 1, 16, 16), (2, 4, 4)), ((1, 6, 3, 6, 9), (3, 2, 3)),
                                         ((2, 5, 2, 4, 4), (1, 4, 1))])
def test_spacetime_patchify_round_trips_and_counts_tokens(shape, patch):
    v = _randn(*shape, dtype=torch.float64)
    T, C, H, W = shape[1:]
    pt, ph, pw = patch
    tok = dit.spacetime_patchify(v, *patch)
    N = dit.spacetime_token_count(T, H, W, pt, ph, pw)
    assert N == (T // pt) * (H // ph) * (W // pw) and isinstance(N, int)
    assert tok.shape == (shape[0], N, pt * ph * pw * C)
    assert torch.equal(dit.spacetime_unpatchify(tok, (T, C, H, W), *patch), v)
    # with pt = 1 a spacetime token is an image patch of one frame
    if pt == 1 and ph == pw:
        assert torch.equal(tok[:, : N // T], dit.patchify(v[:, 0], ph))


def test_spacetime_token_order_puts_time_blocks_outermost():
    v = _randn(1, 4, 1, 4, 4)
    tok = dit.spacetime_patchify(v, 2, 2, 2)                  # 2 time blocks x 2 x 2 spatial blocks
    assert torch.equal(tok[0, 4], v[0, 2:4, 0, 0:2, 0:2].reshape(-1))
    assert torch.equal(tok[0, 1], v[0, 0:2, 0, 0:2, 2:4].reshape(-1))


@pytest.mark.parametrize("d,heads", [(16, 4), (24, 3), (8, 1)])
def test_adaln_zero_block_is_the_identity_at_init_for_any_conditioning(d, heads):
    block = dit.AdaLNZeroBlock(d, heads)
    x = _randn(2, 5, d)
    for scale in (0.0, 1.0, 1e3):
        assert torch.equal(block(x, scale * _randn(2, d, seed=9)), x)


def test_tiny_dit_outputs_zero_at_init_and_keeps_the_input_shape():
    manual_seed(0)
    model = dit.TinyDiT(image_shape=(1, 8, 8), patch=2, d=32, depth=1)
    x = _randn(3, 64)
    out = model(x, torch.tensor([0.1, 0.5, 0.9]))
    assert out.shape == x.shape and torch.all(out == 0)
    out.sum().backward()
    assert model.out.weight.grad.abs().sum() > 0


def test_moving_squares_have_one_square_per_frame_and_frame_difference_follows_the_formula():
    clips, vel = video.moving_squares(40, T=6, H=12, W=10, size=3, generator=torch_generator(3))
    assert clips.shape == (40, 6, 1, 12, 10)
    assert torch.all(clips.sum((2, 3, 4)) == 9)
    want = torch.tensor([video.square_difference_formula(3, int(a), int(b), 12, 10) for a, b in vel])
    torch.testing.assert_close(video.frame_difference(clips), want)
    assert video.frame_difference(clips[:, :1].expand_as(clips)).abs().max() == 0


def test_frame_difference_is_the_mean_absolute_step():
    v = _randn(2, 3, 2, 2, 2, dtype=torch.float64)
    want = torch.stack([(v[:, 1] - v[:, 0]).abs().flatten(1).mean(1), (v[:, 2] - v[:, 1]).abs().flatten(1).mean(1)], 1)
    torch.testing.assert_close(video.frame_difference(v), want.mean(1))
    assert math.isclose(video.square_difference_formula(4, 0, 0, 16, 16), 0.0)

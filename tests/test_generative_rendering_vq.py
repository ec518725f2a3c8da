# Unit tests of manifold_course.generative.{cross_attention, rendering, vq} (Volume 3, chapter 3).
import math

import pytest
import torch

from manifold_course.generative import cross_attention as ca
from manifold_course.generative import mixtures, rendering, vq
from manifold_course.seeding import torch_generator

F64 = torch.float64


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch_generator(seed), dtype=F64)


# ---------------------------------------------------------------- cross-attention


def test_cross_attention_rows_sum_to_one_and_padding_gets_zero():
    x, ctx = _randn(2, 6, 5, seed=1), _randn(2, 4, 3, seed=2)
    Wq, Wk, Wv = _randn(5, 8, seed=3), _randn(3, 8, seed=4), _randn(3, 7, seed=5)
    mask = torch.tensor([[True, True, False, False], [True, True, True, True]])
    out, attn = ca.cross_attention(x, ctx, Wq, Wk, Wv, mask)
    assert out.shape == (2, 6, 7) and attn.shape == (2, 6, 4)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 6, dtype=F64))
    assert torch.all(attn[0, :, 2:] == 0)
    # the masked prompt gives the same result as the prompt cut to its real tokens
    out0, attn0 = ca.cross_attention(x[:1], ctx[:1, :2], Wq, Wk, Wv)
    assert torch.allclose(out[:1], out0) and torch.allclose(attn[:1, :, :2], attn0)
    # by hand
    s = (x[1] @ Wq) @ (ctx[1] @ Wk).T / math.sqrt(8)
    assert torch.allclose(out[1], torch.softmax(s, -1) @ (ctx[1] @ Wv))


def test_token_maps_are_the_transposed_columns():
    attn = torch.softmax(_randn(3, 12, 5), -1)
    maps = ca.token_attention_maps(attn, 3, 4)
    assert maps.shape == (3, 5, 3, 4)
    assert torch.equal(maps[1, 2, 2, 1], attn[1, 2 * 4 + 1, 2])
    with pytest.raises(ValueError):
        ca.token_attention_maps(attn, 4, 4)


def test_a_key_aligned_with_every_query_dominates():
    layout = torch.zeros(4, 4, 2)
    layout[:2, :, 0] = 1.0
    layout[2:, :, 1] = 1.0
    concepts = torch.eye(2, dtype=F64) * 4
    x = ca.concept_grid(layout, concepts)[None]
    maps = ca.token_attention_maps(ca.cross_attention(x, concepts[None], torch.eye(2, dtype=F64),
                                                      torch.eye(2, dtype=F64), torch.eye(2, dtype=F64))[1], 4, 4)
    assert torch.all(maps[0, 0, :2] > 0.9) and torch.all(maps[0, 1, 2:] > 0.9)


# ---------------------------------------------------------------- volume rendering


def test_volume_render_weights_and_opaque_first_sample():
    sig, col, d = _randn(5, 7).abs() * 3, torch.rand(5, 7, 3, generator=torch_generator(1), dtype=F64), torch.full((5, 7), 0.1, dtype=F64)
    rgb, w = rendering.volume_render(sig, col, d)
    T = rendering.transmittance(sig, d)
    assert torch.all(w >= 0) and torch.all(w.sum(-1) <= 1 + 1e-12)
    assert torch.allclose(w.sum(-1), 1 - T[:, -1] * torch.exp(-sig[:, -1] * d[:, -1]))
    assert torch.all(T[:, 0] == 1)
    sig[:, 0] = 1e6
    rgb, w = rendering.volume_render(sig, col, d)
    assert torch.allclose(rgb, col[:, 0]) and torch.all(w[:, 1:] == 0)


def test_constant_density_weights_are_geometric():
    sig, d = torch.full((10,), 2.0, dtype=F64), torch.full((10,), 0.1, dtype=F64)
    _, w = rendering.volume_render(sig, torch.ones(10, 1, dtype=F64), d)
    a = 1 - math.exp(-0.2)
    assert torch.allclose(w, a * (1 - a) ** torch.arange(10, dtype=F64))


def test_rays_and_disc_scene():
    pts, d = rendering.ray_samples(torch.tensor([0.0, math.pi / 2]), 5, 8)
    assert pts.shape == (2, 5, 8, 2) and d.shape == (2, 5, 8)
    assert torch.allclose(pts[0, 2, :, 1], torch.zeros(8), atol=1e-6)            # the middle ray of angle 0 is y = 0
    assert torch.all(pts[0, 2, 1:, 0] > pts[0, 2, :-1, 0])                        # travelling along +x
    sig, col = rendering.disc_scene(pts, [[0.0, 0.0]], [0.3], [20.0], [[1.0, 0.0, 0.0]])
    assert sig[0, 2, 4] > 19 and sig[0, 0, 0] < 1e-3 and torch.allclose(col[0, 2, 4], torch.tensor([1.0, 0, 0]))


# ---------------------------------------------------------------- splatting


def test_an_isotropic_splat_is_radially_symmetric_and_compositing_is_ordered():
    grid = rendering.pixel_grid(9, 9)
    img = rendering.splat_2d(torch.tensor([[0.5, 0.5]], dtype=F64), 0.02 * torch.eye(2, dtype=F64)[None],
                             torch.tensor([[1.0]], dtype=F64), torch.tensor([0.8], dtype=F64), grid).reshape(9, 9)
    assert torch.allclose(img, img.T) and torch.allclose(img, img.flip(0)) and abs(float(img[4, 4]) - 0.8) < 1e-12
    # an opaque front splat hides the one behind it; swapping the order shows the other colour
    means, covs = torch.tensor([[0.5, 0.5], [0.5, 0.5]], dtype=F64), 0.05 * torch.eye(2, dtype=F64).expand(2, 2, 2)
    colors, op = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=F64), torch.tensor([1.0, 1.0], dtype=F64)
    centre = torch.tensor([[0.5, 0.5]], dtype=F64)
    assert torch.allclose(rendering.splat_2d(means, covs, colors, op, centre), colors[:1])
    assert torch.allclose(rendering.splat_2d(means, covs, colors.flip(0), op, centre), colors[1:])


def test_splats_fit_an_image():
    img = torch.zeros(6, 6, dtype=F64)
    img[1:5, 2:4] = 1.0
    _, losses = rendering.fit_splats(img, n=6, steps=60)
    assert losses[-1] < 0.3 * losses[0]


# ---------------------------------------------------------------- SDS


def test_sds_grad_is_zero_on_average_at_the_mode_of_a_gaussian():
    gm = mixtures.GaussianMixture.isotropic(torch.ones(1, dtype=F64), torch.tensor([[1.0, -2.0]], dtype=F64), 0.5)
    x = gm.means.expand(20000, 2)
    eps = _randn(20000, 2, seed=3)
    g = rendering.sds_grad(gm.eps_oracle, x, 0.7, eps, 1.0)
    assert g.mean(0).abs().max() < 0.02
    # away from the mode the mean points away from it (descending it moves x towards the mode)
    g_off = rendering.sds_grad(gm.eps_oracle, x + 1.0, 0.7, eps, 1.0).mean(0)
    assert torch.all(g_off > 0.1)
    # by hand: x_t = sqrt(ab) x + sqrt(1 - ab) eps, w (eps_hat - eps)
    xt = math.sqrt(0.7) * x[:3] + math.sqrt(0.3) * eps[:3]
    assert torch.allclose(rendering.sds_grad(gm.eps_oracle, x[:3], 0.7, eps[:3], 2.0), 2 * (gm.eps_oracle(xt, 0.7) - eps[:3]))


def test_sds_points_move_to_modes():
    gm = mixtures.eight_gaussians()
    x0 = 6 * torch.rand(64, 2, generator=torch_generator(0), dtype=F64) - 3
    xf, snaps = rendering.sds_points(gm.eps_oracle, x0, steps=200, record_every=50)
    assert len(snaps) == 4 and gm.log_prob(xf).mean() > gm.log_prob(x0).mean() + 5


# ---------------------------------------------------------------- VQ


def test_vector_quantize_nearest_and_straight_through():
    z, cb = _randn(3, 5, 4, seed=1), _randn(7, 4, seed=2)
    zq, idx = vq.vector_quantize(z.requires_grad_(True), cb.requires_grad_(True))
    assert idx.shape == (3, 5) and idx.dtype == torch.int64
    assert torch.equal(idx, torch.cdist(z.reshape(-1, 4), cb).argmin(-1).reshape(3, 5))
    assert torch.allclose(zq, cb[idx])
    up = _randn(3, 5, 4, seed=3)
    gz, gc = torch.autograd.grad((zq * up).sum(), [z, cb], allow_unused=True)
    assert torch.equal(gz, up) and (gc is None or torch.all(gc == 0))


def test_vq_losses_send_gradients_to_the_right_tensors():
    z, e = _randn(6, 3, seed=1).requires_grad_(True), _randn(6, 3, seed=2).requires_grad_(True)
    cb, cm = vq.vq_losses(z, e, 0.25)
    assert torch.allclose(cm, 0.25 * cb)
    gz, ge = torch.autograd.grad(cb, [z, e], allow_unused=True)
    assert (gz is None or torch.all(gz == 0)) and torch.allclose(ge, 2 * (e - z) / e.numel())
    gz, ge = torch.autograd.grad(cm, [z, e], allow_unused=True)
    assert (ge is None or torch.all(ge == 0)) and torch.allclose(gz, 0.5 * (z - e) / z.numel())


def test_perplexity_dead_codes_and_revival():
    assert abs(vq.codebook_perplexity(torch.arange(12) % 6, 8) - 6) < 1e-12
    assert vq.codebook_perplexity(torch.zeros(9, dtype=torch.long), 8) == 1.0
    idx = torch.tensor([0, 0, 2, 2])
    assert vq.dead_codes(idx, 4).tolist() == [False, True, False, True]
    cb = torch.zeros(4, 2, dtype=F64)
    z = torch.tensor([[0.1, 0.0], [3.0, 0.0], [0.0, 0.2], [0.0, -2.0]], dtype=F64)
    new = vq.revive_dead_codes(cb, z, idx)
    assert torch.equal(new[1], z[1]) and torch.equal(new[3], z[3]) and torch.equal(new[[0, 2]], cb[[0, 2]])
    assert torch.all(cb == 0)                                                      # not modified in place


def test_vqvae_trains_and_revival_removes_dead_codes():
    X = torch.rand(64, 64, generator=torch_generator(0))
    cfg = vq.VQConfig(hidden=32, n_codes=16, init_scale=1.0)
    _, plain = vq.train_vqvae(X, cfg, steps=40, batch=32)
    model, hist = vq.train_vqvae(X, cfg, steps=40, batch=32, revive_every=10)
    assert hist["revived"] and hist["revived"][0] > 0 and len(plain["recon"]) == 40
    assert model.reconstruct(X).shape == (64, 64) and model.indices(X).shape == (64, 4)

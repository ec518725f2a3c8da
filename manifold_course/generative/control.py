r"""Controllable generation: ControlNet's zero-initialised joins and IP-Adapter's decoupled cross-attention.

**ControlNet** (L. Zhang, A. Rao, M. Agrawala, "Adding Conditional Control to Text-to-Image Diffusion Models", 2023,
arXiv:2302.05543) keeps a trained network $F(\cdot;\Theta)$ *locked*, makes a *trainable copy* $F(\cdot;\Theta_c)$, and
joins the copy to the base through two layers $\mathcal Z$ whose weights and biases start at zero:

$$y_c = F(x;\Theta) + \mathcal Z\big(F(x + \mathcal Z(c;\Theta_{z1});\Theta_c);\Theta_{z2}\big).$$

With $\mathcal Z \equiv 0$ at initialisation, $y_c = F(x;\Theta)$ exactly: training starts from the base model and
the control fades in. Zero weights are not stuck: for $\mathcal Z(h) = Wh + b$,
$\partial L/\partial W = (\partial L/\partial \mathcal Z)\,h^\top \ne 0$ whenever the layer's input $h$ is not zero.
(In the paper the copy is the U-Net's encoder and the joins are 1x1 convolutions into the decoder's skip connections;
on the course's toy MLP denoiser the copy is the MLP's trunk, fed the control at its first hidden layer, and the
join is at its output.)

**IP-Adapter** (H. Ye, J. Zhang, S. Liu, X. Han, W. Yang, "IP-Adapter: Text Compatible Image Prompt Adapter for
Text-to-Image Diffusion Models", 2023, arXiv:2308.06721) adds an image prompt to a text-conditioned model by a
second cross-attention that shares the queries but has its own keys and values:

$$\mathrm{Attn}(Q, K_t, V_t) + \lambda\,\mathrm{Attn}(Q, K_i, V_i),\qquad
\mathrm{Attn}(Q,K,V) = \mathrm{softmax}\big(QK^\top/\sqrt d\big)V .$$
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .denoiser import TimeMLP


class ZeroLinear(nn.Linear):
    """``nn.Linear`` whose weight and bias start at zero: output 0 at initialisation, gradients still flow."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__(d_in, d_out)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


class ZeroConv1x1(nn.Conv2d):
    r"""ControlNet's "zero convolution": a 1x1 ``nn.Conv2d`` (``c_in`` -> ``c_out`` channels, input (B, c_in, H, W))
    with weight and bias initialised to zero. A 1x1 convolution is a linear map applied at every pixel."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, kernel_size=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


class ControlledModel(nn.Module):
    r"""A locked :class:`~manifold_course.generative.denoiser.TimeMLP` plus a trainable copy of its trunk, joined by
    zero layers, as ControlNet joins a copied U-Net block to the locked one.

    The block $F$ of the equation is the MLP's trunk ``base.body``, and its input "feature map" is the first hidden
    layer $h = \mathrm{inp}(x) + \mathrm{temb}(t)$ (in the paper, too, $x$ is a block's input features, not the image):
    ``forward(x, t, c)`` returns $F(h) + \mathcal Z_{out}(F_{copy}(h + \mathcal Z_{in}(c)))$, with control ``c`` of
    shape ``(B, c_dim)``. Parameters: ``base.*`` (frozen), ``copy.*`` (a deep copy of ``base.body``, trainable),
    ``zero_in`` (c_dim -> hidden) and ``zero_out`` (dim -> dim), trainable and zero at the start.
    """

    def __init__(self, base: TimeMLP, c_dim: int):
        super().__init__()
        self.base = base
        self.copy = copy.deepcopy(base.body)                  # Theta_c starts at Theta
        for p in self.base.parameters():
            p.requires_grad_(False)                           # Theta is locked
        for p in self.copy.parameters():
            p.requires_grad_(True)
        self.zero_in = ZeroLinear(c_dim, base.inp.out_features)   # Z(c; Theta_z1), into the hidden features
        self.zero_out = ZeroLinear(base.dim, base.dim)            # Z(.; Theta_z2), onto the output

    def features(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The base's first hidden layer inp(x) + temb(emb(t * time_scale)), (B, hidden): the trunk's input."""
        return self.base.features(x, t)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.features(x, t)                               # (B, hidden), computed by the locked base
        return self.base.body(h) + self.zero_out(self.copy(h + self.zero_in(c)))   # y_c


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r"""Unmasked cross-attention $\mathrm{softmax}(qk^\top/\sqrt d)\,v$: q (..., Tq, d), k (..., Tk, d),
    v (..., Tk, d_v) -> (..., Tq, d_v)."""
    return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def decoupled_cross_attention(q: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor, k_i: torch.Tensor,
                              v_i: torch.Tensor, lam: float) -> torch.Tensor:
    r"""IP-Adapter's decoupled cross-attention $\mathrm{Attn}(Q,K_t,V_t) + \lambda\,\mathrm{Attn}(Q,K_i,V_i)$.

    ``q`` (..., Tq, d) from the image features; ``k_t, v_t`` (..., Tt, d) from the text tokens; ``k_i, v_i``
    (..., Ti, d) from the image-prompt tokens (their own projections, the only new weights). Two separate
    softmaxes: the image tokens do not compete with the text tokens for attention weight. ``lam = 0`` gives the
    text-only model back exactly.
    """
    return attention(q, k_t, v_t) + lam * attention(q, k_i, v_i)

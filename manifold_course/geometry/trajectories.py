r"""Residual-stream trajectories: the path a token's representation takes through the layers.

A Transformer with residual connections writes $h_{l+1} = h_l + \Delta_l$ for each layer $l = 0..L-1$, so every token
traces a polygonal path $h_0, h_1, \dots, h_L$ in $\mathbb R^D$ (the "residual stream"). Two simple shape statistics
(used for the "curved spacetime" reading of Di Sipio, Diaz-Rodriguez & Serrano 2025, arXiv:2511.03060):

- **turning angles** between successive updates, $\phi_l = \arccos\frac{\langle\Delta_l,\Delta_{l+1}\rangle}
  {\|\Delta_l\|\,\|\Delta_{l+1}\|}\in[0,\pi]$: 0 for a straight path, $\pi/2$ for orthogonal updates (what independent
  random steps in high dimension give), $\pi$ for an update that undoes the previous one;
- **length-to-chord ratio** $\sum_l\|\Delta_l\| / \|h_L - h_0\| \ge 1$: 1 for a straight path, $\approx\sqrt L$ for a
  random walk of $L$ equal orthogonal steps.

The per-layer **intrinsic dimension** of the cloud of token states (TwoNN, Facco et al. 2017, arXiv:1803.06992;
``geometry.intrinsic_dimension``) asks how many directions of the $D$ available each layer actually uses
(Ansuini et al. 2019, arXiv:1905.12784 measured a rise-then-fall profile in image classifiers).
"""

from __future__ import annotations

import numpy as np
import torch

from manifold_course.geometry.intrinsic_dimension import participation_ratio, twonn_id
from manifold_course.seeding import numpy_rng, torch_generator


def trajectory_steps(traj: torch.Tensor) -> torch.Tensor:
    r"""Updates $\Delta_l = h_{l+1} - h_l$: (..., L+1, D) -> (..., L, D)."""
    return traj[..., 1:, :] - traj[..., :-1, :]


def turning_angles(traj: torch.Tensor) -> torch.Tensor:
    r"""Angles (radians, in $[0, \pi]$) between successive updates of paths (..., L+1, D) -> (..., L-1)."""
    steps = trajectory_steps(traj)                                          # (..., L, D)
    a, b = steps[..., :-1, :], steps[..., 1:, :]                            # (..., L-1, D) each
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))               # cos phi_l
    return torch.arccos(cos.clamp(-1.0, 1.0))                               # clamp: rounding can give 1 + 1e-16


def length_to_chord(traj: torch.Tensor) -> torch.Tensor:
    r"""$\sum_l\|\Delta_l\| / \|h_L - h_0\|$ of paths (..., L+1, D) -> (...,); 1 for a straight path."""
    length = trajectory_steps(traj).norm(dim=-1).sum(-1)                    # (...,)
    chord = (traj[..., -1, :] - traj[..., 0, :]).norm(dim=-1)               # (...,)
    return length / chord


def hidden_to_trajectories(hidden: list[torch.Tensor]) -> torch.Tensor:
    """GPT(..., return_hidden=True) gives L+1 tensors (B, T, D); stack them as paths (B*T, L+1, D)."""
    H = torch.stack([h.detach() for h in hidden], dim=2)                    # (B, T, L+1, D)
    return H.reshape(-1, H.shape[2], H.shape[3])                            # (B*T, L+1, D)


def random_walk_like(traj: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Null model: paths with the same start and the same step norms as ``traj`` but isotropic random directions."""
    g = torch_generator(seed)
    steps = trajectory_steps(traj)                                          # (..., L, D)
    z = torch.randn(steps.shape, generator=g, dtype=steps.dtype)
    z = z / z.norm(dim=-1, keepdim=True) * steps.norm(dim=-1, keepdim=True)  # same lengths, random directions
    return torch.cat([traj[..., :1, :], traj[..., :1, :] + z.cumsum(dim=-2)], dim=-2)


def layer_intrinsic_dims(hidden: list[torch.Tensor], n_points: int = 1000, seed: int = 0) -> tuple[list[float], list[float]]:
    """TwoNN ID and participation ratio of the token states at every layer (the same n_points tokens throughout)."""
    flat = [h.detach().reshape(-1, h.shape[-1]) for h in hidden]            # (B*T, D) each
    rng = numpy_rng(seed)
    pick = rng.choice(len(flat[0]), size=min(n_points, len(flat[0])), replace=False)
    ids = [twonn_id(f[pick]) for f in flat]
    prs = [participation_ratio(f[pick]) for f in flat]
    return ids, prs

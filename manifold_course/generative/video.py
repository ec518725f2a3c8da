r"""Synthetic videos for Volume 3's video section: moving squares, and a temporal-consistency metric.

A clip is a (T, C, H, W) tensor; a batch of clips is (B, T, C, H, W). Each clip shows one white square of side
$s$ on a black background moving with a constant integer velocity $(v_y, v_x)$ pixels per frame; it wraps around
the borders (a torus), so every frame holds exactly $s^2$ white pixels and consecutive frames differ in exactly
$2\big(s^2 - (s-|v_y|)(s-|v_x|)\big)$ pixels when $|v_y|, |v_x| \le s$.

The frame-to-frame difference $\frac{1}{T-1}\sum_t \mathrm{mean}|x_{t+1} - x_t|$ is the simplest temporal
consistency metric for generated video: low for smooth motion, high for flicker (a model that draws every frame
independently). It rewards a static clip most, so it is read together with a per-frame quality measure.
"""

from __future__ import annotations

import torch


def moving_squares(n: int, T: int = 8, H: int = 16, W: int = 16, size: int = 4, max_speed: int = 2,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` clips (n, T, 1, H, W) of a square of side ``size`` moving at a random constant velocity with
    components in ``-max_speed .. max_speed`` (wrapping around the borders); returns (videos, velocities (n, 2))."""
    start = torch.stack([torch.randint(0, H, (n,), generator=generator),
                         torch.randint(0, W, (n,), generator=generator)], 1)               # (n, 2): row, column
    vel = torch.randint(-max_speed, max_speed + 1, (n, 2), generator=generator)            # (n, 2): v_y, v_x
    t = torch.arange(T)
    rows = (start[:, None, 0, None] + vel[:, None, 0, None] * t[None, :, None] + torch.arange(size)) % H   # (n, T, s)
    cols = (start[:, None, 1, None] + vel[:, None, 1, None] * t[None, :, None] + torch.arange(size)) % W   # (n, T, s)
    on_r = torch.zeros(n, T, H, dtype=torch.bool).scatter_(2, rows, True)                  # (n, T, H)
    on_c = torch.zeros(n, T, W, dtype=torch.bool).scatter_(2, cols, True)                  # (n, T, W)
    video = (on_r[..., :, None] & on_c[..., None, :]).float()                               # (n, T, H, W)
    return video[:, :, None], vel


def frame_difference(video: torch.Tensor) -> torch.Tensor:
    r"""Temporal consistency of clips (B, T, C, H, W) -> (B,): $\frac{1}{T-1}\sum_{t=1}^{T-1}
    \mathrm{mean}_{c,h,w}|x_{t+1} - x_t|$, the mean absolute change between consecutive frames."""
    return (video[:, 1:] - video[:, :-1]).abs().flatten(2).mean(-1).mean(-1)


def square_difference_formula(size: int, vy: int, vx: int, H: int, W: int) -> float:
    r"""The frame difference of a wrapped moving square: $2(s^2 - (s-|v_y|)(s-|v_x|))/(HW)$ for $|v| \le s$."""
    overlap = max(size - abs(vy), 0) * max(size - abs(vx), 0)
    return 2 * (size * size - overlap) / (H * W)


def independent_frames(videos: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Clips whose frame t is frame t of a randomly chosen clip: every frame looks right, but consecutive frames
    come from different clips, which is what an image model applied frame by frame, with fresh noise, produces."""
    B, T = videos.shape[:2]
    pick = torch.randint(0, B, (B, T), generator=generator)                                 # (B, T): source clip
    return videos[pick, torch.arange(T)[None, :]]

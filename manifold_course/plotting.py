"""Small matplotlib helpers shared by the chapters (titles, labels and units always set)."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np


def figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2, **kw):
    """A figure with ``nrows x ncols`` axes sized for a notebook; returns ``(fig, axes)``."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, (axes[0, 0] if nrows == ncols == 1 else axes.ravel())


def label(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def image_grid(images: np.ndarray, nrow: int, title: str = "", side: int = 8, ax=None):
    """Tile (n, side*side) grey images into one picture, ``nrow`` per row."""
    images = np.asarray(images).reshape(-1, side, side)
    n = images.shape[0]
    ncol = int(np.ceil(n / nrow))
    canvas = np.zeros((ncol * (side + 1), nrow * (side + 1)))  # 0 is the white background of gray_r
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        canvas[r * (side + 1): r * (side + 1) + side, c * (side + 1): c * (side + 1) + side] = img
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * nrow + 1, 0.45 * ncol + 1))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=max(1.0, float(images.max())))
    ax.set_title(title)
    ax.axis("off")
    return ax


def barcode(diagram: np.ndarray, ax, title: str, color: str = "C0") -> None:
    """Persistence barcode: one horizontal bar per (birth, death) pair; infinite deaths drawn to the edge."""
    finite = diagram[np.isfinite(diagram[:, 1])] if len(diagram) else diagram
    top = float(finite[:, 1].max()) * 1.1 if len(finite) else 1.0
    for i, (b, d) in enumerate(sorted(diagram.tolist(), key=lambda bd: bd[0] - bd[1])):
        ax.plot([b, d if np.isfinite(d) else top], [i, i], color=color, lw=2)
    label(ax, title, "filtration scale epsilon (distance)", "feature")


def semilogy_curves(ax, xs: Sequence[float], curves: dict[str, Sequence[float]], title: str, xlabel: str, ylabel: str) -> None:
    for name, ys in curves.items():
        ax.semilogy(xs, ys, label=name)
    label(ax, title, xlabel, ylabel)
    ax.legend()

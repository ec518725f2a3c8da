"""Offline data: everything here is made in code or ships inside an installed package.

Nothing is downloaded. Shapes: ``N`` points, ``D`` ambient dimension.
"""

from __future__ import annotations

import numpy as np
import torch
from manifold_course.seeding import course_seed, numpy_rng


def digits(scaled: bool = True, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 handwritten digits as ``(X, y)``: X is (1797, 64), y is (1797,) int64.

    Pixels are 0..16 in the original; ``scaled=True`` divides by 16 so they lie in [0, 1].
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = bunch.data / 16.0 if scaled else bunch.data
    return torch.as_tensor(X, dtype=dtype), torch.as_tensor(bunch.target, dtype=torch.int64)


def train_test_split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into (train, test) index arrays."""
    perm = numpy_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return perm[n_test:], perm[:n_test]


def swiss_roll(n: int = 2000, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points on scikit-learn's swiss roll, a 2-D sheet rolled up in 3-D: (X (N, 3), position along the roll (N,))."""
    from sklearn.datasets import make_swiss_roll

    return make_swiss_roll(n_samples=n, noise=noise, random_state=course_seed(seed))


def linear_subspace(n: int, k: int, ambient: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """``n`` Gaussian points on a random ``k``-dimensional linear subspace of R^ambient (plus optional noise)."""
    rng = numpy_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((ambient, k)))  # (ambient, k), orthonormal columns
    X = rng.standard_normal((n, k)) @ basis.T                      # (n, ambient)
    return X + noise * rng.standard_normal(X.shape)


def noisy_circle(n: int = 200, radius: float = 1.0, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """``n`` points near a circle in the plane: (N, 2). One loop: Betti numbers b0 = 1, b1 = 1."""
    rng = numpy_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    X = radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    return X + noise * rng.standard_normal(X.shape)


def torus(n: int = 400, R: float = 2.0, r: float = 0.8, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """``n`` points on a torus in R^3 (tube radius r around a circle of radius R): (N, 3). b1 = 2."""
    rng = numpy_rng(seed)
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    X = np.stack([(R + r * np.cos(v)) * np.cos(u), (R + r * np.cos(v)) * np.sin(u), r * np.sin(v)], axis=1)
    return X + noise * rng.standard_normal(X.shape)


def gaussian_blob(n: int = 200, dim: int = 2, seed: int = 0) -> np.ndarray:
    """``n`` standard Gaussian points in R^dim: (N, dim). No loops: b1 = 0."""
    return numpy_rng(seed).standard_normal((n, dim))


def circles(n: int = 400, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two concentric circles: (X (N, 2), labels (N,)). Not linearly separable in 2-D."""
    from sklearn.datasets import make_circles

    return make_circles(n_samples=n, noise=noise, factor=factor, random_state=course_seed(seed))


def moons(n: int = 400, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two interleaving half-moons: (X (N, 2), labels (N,))."""
    from sklearn.datasets import make_moons

    return make_moons(n_samples=n, noise=noise, random_state=course_seed(seed))


# ---------------------------------------------------------------- text: the Python standard library's own source

STDLIB_MODULES = (
    "abc", "argparse", "bisect", "calendar", "collections/__init__", "contextlib", "copy", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "enum", "fractions", "functools", "heapq", "inspect", "json/__init__",
    "json/decoder", "json/encoder", "logging/__init__", "pathlib", "pprint", "queue", "random", "shutil",
    "statistics", "string", "textwrap", "threading", "tokenize", "typing", "uuid", "zipfile",
)


def stdlib_corpus(max_chars: int = 1_000_000, modules: tuple[str, ...] = STDLIB_MODULES) -> str:
    """Source text of a fixed list of standard-library modules, concatenated (about 1 MB; on every machine).

    The files are read from ``sysconfig.get_paths()["stdlib"]``; a module missing on some Python version is
    skipped. Slightly different Python versions give slightly different text, so chapters assert ranges,
    not exact losses.
    """
    import sysconfig
    from pathlib import Path

    root = Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for name in modules:
        path = root / f"{name}.py"
        if path.exists():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    text = "\n".join(parts)
    if not text:
        raise FileNotFoundError(f"no standard-library sources under {root}")
    return text[:max_chars]


class CharTokenizer:
    """Characters <-> integer ids. ``vocab`` is the sorted set of characters of the text it was built from."""

    def __init__(self, vocab: str):
        self.vocab = vocab
        self.stoi = {c: i for i, c in enumerate(vocab)}

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> torch.Tensor:
        """(len(text),) int64 ids; a character outside the vocabulary raises KeyError naming it."""
        try:
            return torch.tensor([self.stoi[c] for c in text], dtype=torch.int64)
        except KeyError as exc:
            raise KeyError(f"character {exc.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


def lm_batch(ids: torch.Tensor, block: int, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of next-token pairs: x (batch, block) and y = x shifted by one, both int64."""
    starts = torch.randint(len(ids) - block - 1, (batch,), generator=generator)
    x = torch.stack([ids[s: s + block] for s in starts.tolist()])          # (B, T)
    y = torch.stack([ids[s + 1: s + block + 1] for s in starts.tolist()])  # (B, T)
    return x, y

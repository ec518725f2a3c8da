"""Every random number the course draws comes through here, so one knob can move all of them.

A chapter seeds itself once (``rng = seed_everything(0)``) and makes every other generator with
:func:`torch_generator`, :func:`numpy_rng` or :func:`manual_seed`. Reference trainers in the package do the
same. The environment variable ``MANIFOLD_COURSE_SEED_OFFSET`` (an integer, default 0) moves every one of
those seeds to another, unrelated stream: with offset 0 a seed ``s`` is used as it is; with offset ``k != 0``
it becomes a 32-bit number hashed from ``(s, k)`` by NumPy's ``SeedSequence``, so that seeds 0, 1, 2 of one
chapter stay three independent streams (``s + k`` would make offset 1's seed 0 equal offset 0's seed 1).

``./course test --robust`` runs every chapter under offsets 1, 2 and 3: a claim a chapter asserts must hold
for any draw, not for one. Grading is the exception: :func:`grading_seeds` suspends the offset while
``check()`` runs, because a learner's function receives its seed as an argument and seeds its own
generator with it, and the reference it is compared with must draw the same numbers.
"""

from __future__ import annotations

import contextlib
import os
import random
from typing import Iterator

import numpy as np

OFFSET_VAR = "MANIFOLD_COURSE_SEED_OFFSET"
THREADS_VAR = "MANIFOLD_COURSE_THREADS"

_suspended = 0          # > 0 while grading_seeds() is active


def seed_offset() -> int:
    """The integer in ``$MANIFOLD_COURSE_SEED_OFFSET`` (0 if unset or empty; 0 while grading)."""
    if _suspended:
        return 0
    raw = os.environ.get(OFFSET_VAR, "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{OFFSET_VAR} must be an integer such as 0 or 3, not {raw!r}") from None


def course_seed(seed: int) -> int:
    """The seed to use for ``seed`` under the current offset (``seed`` itself when the offset is 0)."""
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seeds are non-negative integers, got {seed}")
    offset = seed_offset()
    if offset == 0:
        return seed
    # SeedSequence hashes its entropy words; a negative offset is folded into the non-negative range.
    state = np.random.SeedSequence([seed, offset % 2**63, int(offset < 0)]).generate_state(1, np.uint32)
    return int(state[0])


def torch_generator(seed: int, device: str | object = "cpu"):
    """A fresh ``torch.Generator`` on ``device`` seeded with ``course_seed(seed)``.

    On the ``meta`` device (shapes and dtypes only, no numbers: used to validate benchmark declarations
    without computing them) there is nothing to draw, and the answer is ``None``, which every torch
    factory function accepts as ``generator=``."""
    import torch

    if torch.device(device).type == "meta":
        return None
    return torch.Generator(device=device).manual_seed(course_seed(seed))


def numpy_rng(seed: int) -> np.random.Generator:
    """A fresh NumPy ``Generator`` seeded with ``course_seed(seed)``."""
    return np.random.default_rng(course_seed(seed))


def manual_seed(seed: int) -> None:
    """Seed PyTorch's global generator (weight initialisation of ``nn`` modules) with ``course_seed(seed)``."""
    import torch

    torch.manual_seed(course_seed(seed))


@contextlib.contextmanager
def grading_seeds() -> Iterator[None]:
    """Suspend the offset: seeds mean exactly what they say inside (used by ``check()``)."""
    global _suspended
    _suspended += 1
    try:
        yield
    finally:
        _suspended -= 1


def seed_everything(seed: int = 0, threads: int | None = None) -> np.random.Generator:
    """Seed Python's, NumPy's and PyTorch's generators and return a fresh NumPy Generator.

    Every seed goes through :func:`course_seed`, so ``$MANIFOLD_COURSE_SEED_OFFSET`` moves it.
    ``threads`` caps PyTorch's intra-op threads. By default ``$MANIFOLD_COURSE_THREADS``, else 1:
    the course's models are tiny, and for tiny tensors one thread is fastest (measured on a 2-core
    machine: extra threads cost synchronisation, and on busy cores small operations ran 10-100x
    slower). Set ``MANIFOLD_COURSE_THREADS`` higher to scale a demo up; pass ``0`` to leave the
    setting alone.
    """
    import torch

    if threads is None:
        raw = os.environ.get(THREADS_VAR, "1").strip() or "1"
        try:
            threads = int(raw)
        except ValueError:
            raise ValueError(f"{THREADS_VAR} must be a whole number of threads such as 1 or 2, not {raw!r}") from None

    s = course_seed(seed)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    os.environ.setdefault("PYTHONHASHSEED", str(s))
    if threads > 0:
        torch.set_num_threads(threads)
    return np.random.default_rng(s)

"""One call that makes a notebook reproducible on the CPU."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int = 0, threads: int | None = None) -> np.random.Generator:
    """Seed Python's, NumPy's and PyTorch's generators and return a fresh NumPy Generator.

    ``threads`` caps PyTorch's intra-op threads. By default ``$MANIFOLD_COURSE_THREADS``, else 1:
    the course's models are tiny, and for tiny tensors one thread is fastest (measured on a 2-core
    machine: extra threads cost synchronisation, and on busy cores small operations ran 10-100x
    slower). Set ``MANIFOLD_COURSE_THREADS`` higher to scale a demo up; pass ``0`` to leave the
    setting alone.
    """
    import torch

    if threads is None:
        threads = int(os.environ.get("MANIFOLD_COURSE_THREADS", "1"))

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if threads > 0:
        torch.set_num_threads(threads)
    return np.random.default_rng(seed)

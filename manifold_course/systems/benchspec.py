"""How a kernel module declares what ``manifold-course bench`` measures.

Each module in ``kernels/`` that has a GPU benchmark defines ``BENCH = [BenchSpec(...), ...]``; the bench
harness (:mod:`manifold_course.systems.bench`) finds them, times ``kernel`` and ``reference`` on the same
inputs on the same GPU, and reports time, GB/s or TFLOP/s, percent of the device's peak and the ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch


@dataclass(frozen=True)
class BenchSpec:
    name: str                                                  # e.g. "softmax"
    kernel: Callable[..., Any]                                 # the launcher, same signature as reference
    reference: Callable[..., Any]                              # the PyTorch counterpart
    make_inputs: Callable[[Any, torch.dtype, str], tuple]      # (size, dtype, device) -> args
    sizes: Sequence[Any]                                       # problem sizes, e.g. [(4096, 1024), (4096, 8192)]
    dtypes: Sequence[torch.dtype] = (torch.float16, torch.float32)
    bytes_moved: Callable[[Any, torch.dtype], float] | None = None   # minimal HBM traffic: memory-bound kernels
    flops: Callable[[Any], float] | None = None                      # useful FLOPs: compute-bound kernels
    bound: str = "memory"                                      # "memory" (report GB/s) or "compute" (TFLOP/s)

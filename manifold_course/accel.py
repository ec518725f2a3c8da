"""GPU or CPU mode for kernels, chosen once, before triton or numba.cuda is imported.

On a machine with a CUDA GPU, Triton and Numba-CUDA kernels run natively. Without one, the
Triton interpreter (``TRITON_INTERPRET=1``) and the Numba CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)
run the same kernels on the CPU. A variable the user already set is respected.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    gpu: bool
    device_name: str
    triton_interpret: bool
    numba_cudasim: bool

    def describe(self) -> str:
        if self.gpu:
            return f"GPU mode on {self.device_name}: kernels run natively"
        return ("CPU mode: Triton kernels run under the Triton interpreter (TRITON_INTERPRET=1), "
                "Numba-CUDA kernels under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")


def select_mode() -> Mode:
    """Set the interpreter/simulator variables when there is no GPU; return the mode in force."""
    import torch

    gpu = bool(torch.cuda.is_available())
    name = torch.cuda.get_device_name(0) if gpu else "CPU"
    if not gpu:
        late = [m for m in ("triton", "numba.cuda") if m in sys.modules]
        if late and not os.environ.get("TRITON_INTERPRET"):
            import warnings

            warnings.warn(f"{late} were imported before the kernel mode was chosen; restart the kernel "
                          "and import manifold_course.kernels first", stacklevel=2)
        os.environ.setdefault("TRITON_INTERPRET", "1")
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
    return Mode(
        gpu=gpu,
        device_name=name,
        triton_interpret=os.environ.get("TRITON_INTERPRET") == "1",
        numba_cudasim=os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
    )

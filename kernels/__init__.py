"""GPU kernels (Triton, Numba-CUDA, CUDA C), installed as ``manifold_course.kernels``.

Importing this package chooses GPU or CPU mode once (see :mod:`manifold_course.accel`) before any
kernel module imports triton or numba.cuda. Each kernel module holds one kernel and one launcher
with the signature of its reference in ``manifold_course``. Volume 6 fills this package.
"""

from manifold_course.accel import select_mode

MODE = select_mode()

# A kernel module with a GPU benchmark defines BENCH = [manifold_course.systems.benchspec.BenchSpec(...)];
# `manifold-course bench` (manifold_course.systems.bench) finds them by importing every module here.

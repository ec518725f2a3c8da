"""Launch sizes shared by the row-wise Triton kernels (softmax, RMSNorm, LayerNorm)."""

from __future__ import annotations

from manifold_course.kernels import MODE  # chooses GPU or interpreter mode before triton is imported

import triton


def row_block_config(n_rows: int, n_cols: int) -> tuple[int, int, int]:
    """``(rows per program, padded row width, num_warps)`` for a kernel that holds whole rows in registers.

    One row per program and more warps for wider rows on a GPU (16 warps = 512 threads hold a 32768-wide row
    as 64 registers each); several rows per program when rows are narrow, so that each program still holds
    ~4K elements. Under the interpreter, about 2^16 elements per program: there the cost is per program.
    """
    block_c = triton.next_power_of_2(n_cols)
    target = (1 << 16) if MODE.triton_interpret else 4096           # elements per program
    block_r = max(1, min(target // block_c, triton.next_power_of_2(n_rows)))
    if MODE.triton_interpret:
        return block_r, block_c, 1
    return block_r, block_c, 4 if block_c <= 2048 else 8 if block_c <= 8192 else 16

"""Compare a learner's output with the reference's and say, in one line, what differs.

Every message names the thing to fix: a numpy array where a tensor was expected, a wrong shape,
a wrong dtype, NaNs, or the largest error and where it occurs.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch


def _kind(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return "torch.Tensor"
    if isinstance(x, np.ndarray):
        return "numpy.ndarray"
    return type(x).__name__


def _is_real(x: Any) -> bool:
    return isinstance(x, (numbers.Real, np.floating, np.integer)) and not isinstance(x, (bool, np.bool_))


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def float_problem(x: Any, where: str = "the output") -> str | None:
    """None when ``x`` is a finite real number (Python or NumPy scalar), else what to fix.

    For judges that check a float answer by a property rather than against one expected value.
    """
    if isinstance(x, torch.Tensor):
        return f"{where} should be a Python float, got a torch.Tensor (use .item())"
    if isinstance(x, np.ndarray):
        return f"{where} should be a Python float, got a numpy.ndarray of shape {x.shape} (use float(...))"
    if not _is_real(x):
        return f"{where} should be a float, got {_kind(x)} {x!r:.60}"
    if not math.isfinite(float(x)):
        return f"{where} is {float(x)}: look for a division by zero, a log of 0, or an overflow"
    return None


def compare(got: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6, where: str = "the output") -> str | None:
    """Return None when ``got`` matches ``expected``, else a message saying what to fix."""
    if isinstance(expected, torch.Tensor):
        return _compare_tensor(got, expected, rtol, atol, where)
    if isinstance(expected, np.ndarray):
        return _compare_ndarray(got, expected, rtol, atol, where)
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            return f"{where} should be a bool, got {_kind(got)}"
        return None if bool(got) == bool(expected) else f"{where}: expected {bool(expected)}, got {bool(got)}"
    if isinstance(expected, (numbers.Integral, np.integer)):
        if isinstance(got, torch.Tensor):
            return f"{where} should be a Python int, got a torch.Tensor (use .item())"
        if isinstance(got, np.ndarray):
            return f"{where} should be a Python int, got a numpy.ndarray (use int(...))"
        if not isinstance(got, (numbers.Integral, np.integer)) or isinstance(got, (bool, np.bool_)):
            return f"{where} should be an int, got {_kind(got)} {got!r}"
        return None if int(got) == int(expected) else f"{where}: expected {int(expected)}, got {int(got)}"
    if _is_real(expected):
        return _compare_float(got, float(expected), rtol, atol, where)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return f"{where} should be a {type(expected).__name__} of {len(expected)} items, got {_kind(got)}"
        if len(got) != len(expected):
            return f"{where} should have {len(expected)} items, got {len(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare(g, e, rtol, atol, f"{where}[{i}]")
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{where} should be a dict with keys {sorted(expected)}, got {_kind(got)}"
        missing = [k for k in expected if k not in got]
        if missing:
            return f"{where} is missing the key(s) {missing}"
        for k in expected:
            msg = compare(got[k], expected[k], rtol, atol, f"{where}[{k!r}]")
            if msg:
                return msg
        return None
    if expected is None:
        return None if got is None else f"{where} should be None, got {_kind(got)}"
    if got != expected:
        return f"{where}: expected {expected!r}, got {got!r}"
    return None


def _compare_float(got: Any, expected: float, rtol: float, atol: float, where: str) -> str | None:
    if isinstance(got, (torch.Tensor, np.ndarray)) or not _is_real(got):
        return float_problem(got, where)
    g = float(got)
    if math.isnan(g) and not math.isnan(expected):
        return f"{where} is NaN (expected {_fmt(expected)}): look for 0/0, log of a negative number or inf - inf"
    if math.isinf(g) and not math.isinf(expected):
        return f"{where} is {g} (expected {_fmt(expected)}): look for an overflow, e.g. a huge power or exp; work in logs"
    if math.isnan(expected) and math.isnan(g):
        return None
    if math.isinf(expected):
        return None if g == expected else f"{where}: expected {expected}, got {_fmt(g)}"
    if abs(g - expected) <= atol + rtol * abs(expected):
        return None
    return f"{where}: expected {_fmt(expected)}, got {_fmt(g)} (error {_fmt(abs(g - expected))}, tolerance {_fmt(atol + rtol * abs(expected))})"


def _compare_tensor(got: Any, expected: torch.Tensor, rtol: float, atol: float, where: str) -> str | None:
    if isinstance(got, np.ndarray):
        return f"{where} should be a torch.Tensor, got a numpy.ndarray (use torch operations, or torch.from_numpy)"
    if not isinstance(got, torch.Tensor):
        return f"{where} should be a torch.Tensor of shape {tuple(expected.shape)}, got {_kind(got)}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{where} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if got.dtype != expected.dtype:
        return f"{where} has dtype {got.dtype}, expected {expected.dtype}"
    return _compare_values(got.detach().cpu().numpy(), expected.detach().cpu().numpy(), rtol, atol, where)


def _compare_ndarray(got: Any, expected: np.ndarray, rtol: float, atol: float, where: str) -> str | None:
    if isinstance(got, torch.Tensor):
        return f"{where} should be a numpy.ndarray, got a torch.Tensor (use .detach().cpu().numpy())"
    if not isinstance(got, np.ndarray):
        return f"{where} should be a numpy.ndarray of shape {expected.shape}, got {_kind(got)}"
    if got.shape != expected.shape:
        return f"{where} has shape {got.shape}, expected {expected.shape}"
    same_kind = (got.dtype == expected.dtype) or (
        np.issubdtype(got.dtype, np.integer) and np.issubdtype(expected.dtype, np.integer)
    )
    if not same_kind:
        return f"{where} has dtype {got.dtype}, expected {expected.dtype}"
    return _compare_values(got, expected, rtol, atol, where)


def _compare_values(g: np.ndarray, e: np.ndarray, rtol: float, atol: float, where: str) -> str | None:
    if g.dtype == bool or e.dtype == bool or np.issubdtype(e.dtype, np.integer):
        bad = g != e
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return f"{where} differs at index {idx}: expected {e[idx].item()!r}, got {g[idx].item()!r} ({int(bad.sum())} of {e.size} entries differ)"
        return None
    g64, e64 = g.astype(np.float64), e.astype(np.float64)
    nan_bad = np.isnan(g64) & ~np.isnan(e64)
    if nan_bad.any():
        idx = tuple(int(i) for i in np.argwhere(nan_bad)[0])
        return f"{where} contains NaN ({int(nan_bad.sum())} entries, first at {idx}) where the reference is finite"
    inf_bad = np.isinf(g64) & ~np.isinf(e64)
    if inf_bad.any():
        idx = tuple(int(i) for i in np.argwhere(inf_bad)[0])
        return f"{where} contains inf ({int(inf_bad.sum())} entries, first at {idx}) where the reference is finite: an overflow?"
    ok = np.isclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True)
    if ok.all():
        return None
    err = np.where(ok, 0.0, np.abs(g64 - e64))
    err = np.nan_to_num(err, nan=np.inf)
    idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    idx = tuple(int(i) for i in idx)
    return (
        f"{where} differs from the reference in {int((~ok).sum())} of {e.size} entries; "
        f"largest error {_fmt(float(err[idx]))} at index {idx}: expected {_fmt(float(e64[idx]))}, got {_fmt(float(g64[idx]))}"
    )

"""Plain data across the sandbox wall: what a grading child may send back to the grader.

A child runs learner code, so nothing it sends may carry behaviour: no pickles, no subclasses, no objects
with a custom ``__eq__``. :func:`encode` turns a value into JSON-safe data, accepting only exact
``torch.Tensor`` (dense, any device, detached and copied), exact ``numpy.ndarray`` (no object dtype), NumPy
scalars, ``bool``/``int``/``float``/``complex``/``str``/``None`` and exact ``list``/``tuple``/``dict`` of those;
anything else becomes an :class:`Unplain` marker that names its type. :func:`decode` builds fresh objects
of exactly those types on the grader's side.

:func:`call_key` is a digest of a call's arguments: the grader replays a learner's recorded answers by
matching the calls its own checks make against the calls the child recorded.
"""

from __future__ import annotations

import base64
import hashlib
import math
from typing import Any

import numpy as np
import torch

MAX_ITEMS = 100_000          # elements of one container
MAX_BYTES = 256 * 2 ** 20     # bytes of one tensor or array


class Unplain:
    """Stands for a returned value that could not cross the wall (a subclass, an object with behaviour)."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"

    __str__ = __repr__


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def encode(x: Any, depth: int = 0) -> Any:
    """``x`` as JSON-safe plain data (see the module docstring)."""
    if depth > 20:
        return {"unplain": "a structure nested more than 20 levels deep"}
    t = type(x)
    if x is None or t in (bool, str):
        return x if t is not str or len(x) <= MAX_ITEMS else {"unplain": "a string longer than 100000 characters"}
    if t is int:
        return x if abs(x) < 2 ** 63 else {"int": str(x)}
    if t is float:
        return x if math.isfinite(x) else {"float": repr(x)}
    if t is complex:
        return {"complex": [repr(x.real), repr(x.imag)]}
    if t is torch.Tensor:
        if x.layout != torch.strided or x.is_quantized:
            return {"unplain": f"a {x.layout} torch.Tensor (return a dense tensor)"}
        y = x.detach().to("cpu").contiguous().clone()
        if y.dtype == torch.bfloat16 or str(y.dtype).startswith("torch.float8"):
            raw, np_dtype = y.reshape(-1).view(torch.uint8 if y.element_size() == 1 else torch.int16).numpy(), None
        else:
            raw, np_dtype = y.numpy(), True
        if raw.nbytes > MAX_BYTES:
            return {"unplain": f"a tensor of {raw.nbytes} bytes (over the limit)"}
        return {"tensor": str(y.dtype).removeprefix("torch."), "shape": list(y.shape), "requires_grad": bool(x.requires_grad),
                "device": str(x.device.type), "data": _b64(np.ascontiguousarray(raw).tobytes()), "bits": np_dtype is None}
    if t is np.ndarray:
        if x.dtype.hasobject or x.dtype.fields is not None:
            return {"unplain": f"a numpy.ndarray of dtype {x.dtype}"}
        if x.nbytes > MAX_BYTES:
            return {"unplain": f"an array of {x.nbytes} bytes (over the limit)"}
        return {"ndarray": x.dtype.str, "shape": list(x.shape), "data": _b64(np.ascontiguousarray(x).tobytes())}
    if isinstance(x, np.generic) and t.__module__ == "numpy" and not x.dtype.hasobject:
        return {"npscalar": x.dtype.str, "data": _b64(np.asarray(x).tobytes())}
    if t in (list, tuple):
        if len(x) > MAX_ITEMS:
            return {"unplain": f"a {t.__name__} of {len(x)} items (over the limit)"}
        return {t.__name__: [encode(v, depth + 1) for v in x]}
    if t is dict:
        if len(x) > MAX_ITEMS:
            return {"unplain": f"a dict of {len(x)} items (over the limit)"}
        items = []
        for k, v in x.items():
            if type(k) not in (str, int, bool, float) and k is not None and type(k) is not tuple:
                return {"unplain": f"a dict with a {type(k).__name__} key"}
            items.append([encode(k, depth + 1), encode(v, depth + 1)])
        return {"dict": items}
    base = next((b.__name__ for b in t.__mro__[1:] if b in (torch.Tensor, np.ndarray, float, int, str, list, tuple, dict)),
                None)
    what = f"a {t.__module__}.{t.__qualname__}" + (f" (a subclass of {base}: return a plain {base})" if base else "")
    return {"unplain": what}


def decode(d: Any) -> Any:
    """Fresh plain objects from :func:`encode`'s output."""
    if d is None or type(d) in (bool, int, float, str):
        return d
    if type(d) is list:
        raise ValueError("malformed wire data")
    if type(d) is not dict or len(d) == 0:
        raise ValueError("malformed wire data")
    if "tensor" in d:
        dtype = getattr(torch, d["tensor"])
        if not isinstance(dtype, torch.dtype):
            raise ValueError("malformed tensor dtype")
        raw = base64.b64decode(d["data"])
        if d.get("bits"):
            store = torch.uint8 if torch.empty((), dtype=dtype).element_size() == 1 else torch.int16
            t = torch.frombuffer(bytearray(raw), dtype=store).view(dtype) if raw else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        t = t.reshape(d["shape"]).clone()
        if d.get("requires_grad") and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(True)
        return t
    if "ndarray" in d:
        a = np.frombuffer(base64.b64decode(d["data"]), dtype=np.dtype(d["ndarray"]))
        if a.dtype.hasobject:
            raise ValueError("malformed array dtype")
        return a.reshape(d["shape"]).copy()
    if "npscalar" in d:
        dt = np.dtype(d["npscalar"])
        if dt.hasobject:
            raise ValueError("malformed scalar dtype")
        return np.frombuffer(base64.b64decode(d["data"]), dtype=dt)[0]
    if "list" in d:
        return [decode(v) for v in d["list"]]
    if "tuple" in d:
        return tuple(decode(v) for v in d["tuple"])
    if "dict" in d:
        return {_key(decode(k)): decode(v) for k, v in d["dict"]}
    if "int" in d:
        return int(d["int"])
    if "float" in d:
        return float(d["float"])
    if "complex" in d:
        return complex(float(d["complex"][0]), float(d["complex"][1]))
    if "unplain" in d:
        return Unplain(str(d["unplain"])[:200])
    raise ValueError("malformed wire data")


def _key(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def _digest(h: "hashlib._Hash", x: Any, depth: int = 0) -> None:
    if depth > 20:
        h.update(b"deep")
        return
    if isinstance(x, torch.nn.Module):
        h.update(f"module:{type(x).__qualname__}".encode())
        for k, v in x.state_dict().items():
            h.update(k.encode())
            _digest(h, v, depth + 1)
        return
    if isinstance(x, torch.Tensor):
        y = x.detach().to("cpu").contiguous()
        h.update(f"tensor:{y.dtype}:{tuple(y.shape)}:{x.requires_grad}".encode())
        h.update(y.reshape(-1).view(torch.uint8).numpy().tobytes() if y.numel() else b"")
        return
    if isinstance(x, np.ndarray):
        h.update(f"array:{x.dtype.str}:{x.shape}".encode())
        if not x.dtype.hasobject:
            h.update(np.ascontiguousarray(x).tobytes())
        return
    if isinstance(x, (list, tuple)):
        h.update(f"{type(x).__name__}:{len(x)}".encode())
        for v in x:
            _digest(h, v, depth + 1)
        return
    if isinstance(x, dict):
        h.update(f"dict:{len(x)}".encode())
        for k in sorted(x, key=repr):
            h.update(repr(k).encode())
            _digest(h, x[k], depth + 1)
        return
    if isinstance(x, torch.Generator):
        h.update(b"torch.Generator:" + x.get_state().numpy().tobytes())
        return
    if isinstance(x, np.random.Generator):
        h.update(f"numpy.Generator:{x.bit_generator.state!r}".encode())
        return
    if callable(x):
        h.update(f"callable:{getattr(x, '__module__', '')}.{getattr(x, '__qualname__', type(x).__qualname__)}".encode())
        return
    h.update(f"{type(x).__name__}:{x!r}".encode())


def call_key(args: tuple, kwargs: dict) -> str:
    """A digest of a call's arguments, the same in the child and in the grader for the same inputs."""
    h = hashlib.sha256()
    _digest(h, tuple(args))
    _digest(h, dict(kwargs))
    return h.hexdigest()

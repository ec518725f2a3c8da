"""Wall-clock timing for the demos that compare two implementations on this machine."""

from __future__ import annotations

import statistics
import timeit
from typing import Any, Callable


def median_ms(fn: Callable[..., Any], *args: Any, repeats: int = 7) -> float:
    """Median time of one call ``fn(*args)`` in milliseconds, over ``repeats`` calls after one warm-up call."""
    fn(*args)
    return 1e3 * statistics.median(timeit.repeat(lambda: fn(*args), number=1, repeat=repeats))

"""Pause Python's cyclic garbage collector while building large object graphs.

Loading a 10,000-node model creates hundreds of thousands of small objects that are all
kept; each generation-0 collection then walks them for nothing. Pausing collection for
the duration of a load or a prediction cut their time by about a third on a
10,000-node model (benchmarks/bench_predict.py). Reference counting still frees
everything that is not part of a cycle, and the previous collector state is restored.

>>> import gc
>>> with paused():
...     gc.isenabled()
False
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block; restore its previous state after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()

"""Plain-text tables for the CLI (stable output: golden files and pipes stay readable).

>>> print(format_table(["op", "count"], [["Conv", 3], ["Relu", 12]]))
op    count
----  -----
Conv      3
Relu     12
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    return str(v)


def _is_number(v: Any) -> bool:
    """Numbers (and None, shown as ``-``) are right-aligned."""
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool))


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [bool(rows) and all(_is_number(r[i]) for r in rows) for i in range(len(header))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        pairs = enumerate(zip(values, widths, strict=True))
        parts = [v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in pairs]
        return "  ".join(parts).rstrip()

    out = [line(list(header)), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def human(n: float | None, unit: str = "") -> str:
    """A number with a metric prefix: ``human(3.2e9, "FLOP")`` -> ``'3.20 GFLOP'``."""
    if n is None:
        return "unknown"
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()

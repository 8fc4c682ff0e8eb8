"""Arguments and output helpers shared by several subcommands."""

from __future__ import annotations

import sys
from typing import Any

from fusionlab.io import dumps_json, write_atomic


def emit_json(data: Any, dest: str | None, *, protect: tuple[str, ...] = ()) -> None:
    """Write JSON to ``dest`` (whole or not at all), or to stdout when dest is ``-`` or None."""
    text = dumps_json(data)
    if dest in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomic(dest, text, protect=protect)

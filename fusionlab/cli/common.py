"""Arguments and output helpers shared by several subcommands."""

from __future__ import annotations

import json
import sys
from typing import Any

from fusionlab.io import write_atomic


def emit_json(data: Any, dest: str | None, *, protect: tuple[str, ...] = ()) -> None:
    """Write JSON to ``dest`` (whole or not at all), or to stdout when dest is ``-`` or None."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if dest in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomic(dest, text, protect=protect)

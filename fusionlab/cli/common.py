"""Arguments and output helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fusionlab.io import write_atomic


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """MODEL (an ONNX file) and ``--batch N``."""
    parser.add_argument("model", metavar="MODEL", help="ONNX model file")
    parser.add_argument(
        "--batch", type=positive_int, default=None, metavar="N",
        help="fix a symbolic or dynamic batch dimension to N before shape inference",
    )


def emit_json(data: Any, dest: str | None, *, protect: tuple[str, ...] = ()) -> None:
    """Write JSON to ``dest`` (whole or not at all), or to stdout when dest is ``-`` or None."""
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if dest in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomic(dest, text, protect=protect)

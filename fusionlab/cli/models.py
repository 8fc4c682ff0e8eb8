"""``fusionlab models``: list the model zoo, export a model to an ONNX file.

``fusionlab models list [--json]`` prints each model's name and one-line description;
``fusionlab models export NAME -o FILE.onnx [--batch N]`` builds the model (random weights
from a fixed seed, so the file is the same every time) and writes it whole or not at all.
``inception-chain-<blocks>`` builds a synthetic chain of any length (20 nodes a block).
"""

from __future__ import annotations

import argparse
from typing import Any

from fusionlab import zoo
from fusionlab.cli.args import positive_int
from fusionlab.cli.common import emit_json
from fusionlab.errors import FusionlabError
from fusionlab.table import format_table


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="list the model zoo or export one of its models as ONNX")
    actions = p.add_subparsers(dest="models_action", metavar="ACTION")
    ls = actions.add_parser("list", help="names and one-line descriptions of the zoo's models")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(run=run_list)
    ex = actions.add_parser(
        "export", help="build a zoo model and write it to an ONNX file",
        description="Build a zoo model (deterministic: the same bytes every time) and write it. "
                    "inception-chain-<blocks> takes any number of blocks.",
    )
    ex.add_argument("name", metavar="NAME", help="model name (see 'fusionlab models list')")
    ex.add_argument("-o", "--output", required=True, metavar="FILE", help="ONNX file to write")
    ex.add_argument(
        "--batch", type=positive_int, default=None, metavar="N",
        help="fixed batch size (default: a symbolic batch dimension)",
    )
    ex.set_defaults(run=run_export)
    p.set_defaults(run=_no_action)


def _no_action(args: argparse.Namespace) -> int:
    """``fusionlab models`` without an action: a one-line usage error (exit code 2)."""
    raise FusionlabError("models needs an action: list or export (see fusionlab models --help)")


def run_list(args: argparse.Namespace) -> int:
    rows = [[name, zoo.describe(name)] for name in zoo.names()]
    if args.json:
        emit_json([{"name": n, "description": d} for n, d in rows], None)
    else:
        print(format_table(["model", "description"], rows))
    return 0


OTHER_FORMATS = {".json": "JSON", ".toml": "TOML", ".txt": "text", ".log": "text", ".svg": "SVG",
                 ".png": "PNG", ".pdf": "PDF", ".dot": "Graphviz dot"}
"""File suffixes of formats other than ONNX that fusionlab reads or writes: an ONNX model
written under one of them is a mistake the user would only find later (campaign seed 23:
``-o out.json`` wrote protobuf into a file every JSON reader then refused)."""


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    suffix = Path(args.output).suffix.lower()
    if suffix in OTHER_FORMATS:
        raise FusionlabError(
            f"{args.output}: models export writes an ONNX model, not {OTHER_FORMATS[suffix]}: "
            "give a file name ending in .onnx"
        )
    path = zoo.export(args.name, args.output, batch=args.batch)
    print(f"wrote {path} ({args.name}, batch {args.batch if args.batch else 'symbolic'})")
    return 0

"""``fusionlab figures [--out docs/figures] [--format png,svg]``: regenerate the doc figures.

Writes every figure of :data:`fusionlab.render.figures.FIGURES` as ``<name>.dot`` and in each
format asked for. The DOT files are the same bytes on every run. Without Graphviz's
``dot`` only the DOT files are written, with a warning that says how to install it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "figures", help="regenerate the documentation figures (Inception stages, plans)",
        description="Draw every documentation figure from the model zoo: the four Inception "
                    "(3a) stages of the classic target (original, vertical fusion, horizontal "
                    "merge, concat elimination), GoogLeNet for trt10 and ResNet-18 for trt8. "
                    "Each figure is written as NAME.dot and in every --format.",
    )
    p.add_argument("--out", default="docs/figures", metavar="DIR",
                   help="folder to write into, created if needed (default docs/figures)")
    p.add_argument("--format", default="png,svg", metavar="FMT[,FMT]",
                   help="image formats besides .dot: png, svg, pdf (default png,svg)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fusionlab.render.figures import FIGURES, parse_formats, write_figures
    from fusionlab.render.graphviz import INSTALL_HINT

    formats = parse_formats(args.format)
    written, drawn = write_figures(args.out, formats)
    for path in written:
        print(f"wrote {path}")
    if formats and not drawn:
        print(f"fusionlab: warning: wrote the .dot files only: {INSTALL_HINT}", file=sys.stderr)
    print(f"{len(FIGURES)} figures in {args.out}")
    return 0

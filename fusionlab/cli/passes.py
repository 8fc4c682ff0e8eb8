"""``fusionlab passes``: the fusion rules, their conditions and sources, and the targets."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fusionlab.fusion.differences import differences_markdown
from fusionlab.fusion.passes import PASSES
from fusionlab.fusion.rules_doc import passes_markdown
from fusionlab.fusion.targets import TARGETS
from fusionlab.table import format_table


def register(sub: Any) -> None:
    p = sub.add_parser("passes", help="list the fusion rules and the targets that use them")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="print docs/fusion-rules.md (the generated reference)",
    )
    p.add_argument(
        "--differences",
        action="store_true",
        help="print docs/target-differences.md (where trt8, trt10, trt11 and precisions differ)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(passes_markdown())
        return 0
    if args.differences:
        sys.stdout.write(differences_markdown())
        return 0
    rows = [
        [name, ", ".join(t.name for t in TARGETS.values() if name in t.passes), len(m.RULE.conditions)]
        for name, m in PASSES.items()
    ]
    print(format_table(["rule", "targets", "conditions"], rows))
    print()
    print(
        format_table(
            ["target", "TensorRT", "description"],
            [[t.name, t.versions, t.description] for t in TARGETS.values()],
        )
    )
    return 0

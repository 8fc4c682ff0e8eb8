"""``fusionlab check MODEL --expect FILE.toml``: fail CI when an expected fusion is lost.

Exit codes: 0 every expectation holds, 1 some fail, 2 an invalid file or model.
"""

from __future__ import annotations

import argparse
from typing import Any

from fusionlab.api import load, predict
from fusionlab.cli.args import add_actual_args, add_model_args, add_target_args, read_actual
from fusionlab.compare.expect import check, load_expectations, report


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="check fusion expectations (TOML) against the prediction or a real engine")
    add_model_args(p)
    p.add_argument("--expect", required=True, metavar="FILE.toml", help="the expectations")
    add_actual_args(p, required=False)
    add_target_args(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    expectations = load_expectations(args.expect)
    g = load(args.model, batch=args.batch)
    if args.layer_info or args.engine or args.build:
        plan, _ = read_actual(args, g)
        against = f"the engine ({plan.source})"
    else:
        if args.profile:
            from fusionlab.errors import FusionlabError

            raise FusionlabError("--profile needs --layer-info or --engine")
        target = args.target
        plan = predict(g, target, precision=args.precision).plan
        against = f"the prediction (target {target}, {args.precision})"
    results = check(expectations, plan, known_nodes=g.order)
    print(f"{args.expect}: checked against {against}")
    print(report(results))
    return 0 if all(r.ok for r in results) else 1

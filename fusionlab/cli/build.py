"""``fusionlab build MODEL``: build a TensorRT engine from an ONNX model, as trtexec does.

Needs TensorRT (``pip install 'fusionlab[tensorrt]'``) or TensorRT-RTX. Reading the built
engine's layers (``--export-layer-info``) needs a GPU that TensorRT supports, except with
TensorRT-RTX: its build log lists the layers (:mod:`fusionlab.backends.rtx`), so no GPU is
needed (the engine inspector is used where the runtime works).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fusionlab.cli.args import add_build_args, build_options, input_files
from fusionlab.io import dumps_json, write_atomic


def register(sub: Any) -> None:
    p = sub.add_parser("build", help="build a TensorRT engine from an ONNX model (needs TensorRT)")
    add_build_args(p)
    p.add_argument("--save-engine", metavar="F", help="write the engine (and F.fusionlab.json)")
    p.add_argument(
        "--export-layer-info",
        metavar="F",
        help="write the engine's layers as the engine inspector's JSON "
        "(trtexec --exportLayerInfo); needs a GPU, except with TensorRT-RTX (read from its build log)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=run)


def _shapes_text(shapes: dict[str, tuple[int, ...]]) -> str:
    return ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in shapes.items())


def run(args: argparse.Namespace) -> int:
    from fusionlab.backends.tensorrt import (
        build_engine,
        engine_plan,
        layer_information,
        load_backend,
        mib,
        save_engine,
        seconds,
    )

    backend = load_backend(args.backend, "fusionlab build")
    options = build_options(args)
    protect = tuple(input_files(args))
    info: str | None = None
    source = None
    if args.export_layer_info and backend.caps.flavor == "rtx":
        from dataclasses import replace

        from fusionlab.backends.rtx import build_actual

        # no GPU needed: the layers come from the build log (a subprocess: RTX can crash)
        built = build_actual(args.model, options=replace(options, progress=None), backend="rtx",
                             progress=options.progress is not None, keep_engine=True)
        assert built.engine is not None
        engine, info, source = built.engine, built.layer_info_json(), built.source
        layers: int | None = len(built.plan.layers)
    else:
        engine = build_engine(args.model, options, backend)
    saved = None
    if args.save_engine:
        saved = save_engine(engine, args.save_engine, protect=protect)
    if args.export_layer_info:
        if info is None:
            info = layer_information(engine.data, backend)
            source = f"{backend.label} engine inspector"
            layers = len(engine_plan(info, None, source).layers)
        write_atomic(
            args.export_layer_info, info, protect=(*protect, *([str(saved)] if saved else []))
        )
    else:
        layers = None
    if args.json:
        data = {
            "model": args.model,
            "backend": engine.backend,
            "precision": engine.precision,
            "how": engine.how,
            "input_shapes": {k: list(v) for k, v in engine.input_shapes.items()},
            "build_s": engine.build_s,
            "engine_bytes": len(engine.data),
            "sha256": engine.sha256,
            "engine": str(saved) if saved else None,
            "layer_info": args.export_layer_info,
            "layers": layers,
            "layers_from": source,
        }
        sys.stdout.write(dumps_json(data))
        return 0
    how = f" ({engine.how})" if engine.how else ""
    print(f"built {args.model} with {engine.backend}: {engine.precision}{how}")
    print(f"inputs  {_shapes_text(dict(engine.input_shapes))}")
    size, took = mib(len(engine.data)), seconds(engine.build_s or 0.0)
    print(f"engine  {size} in {took}, sha256 {engine.sha256[:16]}")
    if saved:
        print(f"saved   {saved} (record {saved}.fusionlab.json)")
    if layers is not None:
        print(f"layers  {layers} (from the {source}), written to {args.export_layer_info}")
    if not saved and not args.export_layer_info:
        print("(engine not kept: use --save-engine F)")
    return 0

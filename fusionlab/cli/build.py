"""``fusionlab build MODEL``: build a TensorRT engine from an ONNX model, as trtexec does.

Needs TensorRT (``pip install 'fusionlab[tensorrt]'``) or TensorRT-RTX; reading the built
engine's layers (``--export-layer-info``) also needs a GPU that TensorRT supports.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fusionlab.cli.common import positive_int
from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic


def shapes_arg(text: str) -> dict[str, tuple[int, ...]]:
    """argparse type for ``--shapes NAME:NxCxHxW,...``."""
    from fusionlab.backends.tensorrt import parse_shapes

    try:
        return parse_shapes(text)
    except FusionlabError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--shapes: ")) from None


def add_build_args(p: argparse.ArgumentParser, model_help: str = "ONNX model file") -> None:
    """MODEL and the build options shared by ``build`` and ``profile``."""
    from fusionlab.backends.tensorrt import BACKENDS

    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="tensorrt, rtx (TensorRT-RTX), or auto: tensorrt if installed, else rtx (default)",
    )
    precision = p.add_mutually_exclusive_group()
    helps = {
        "fp16": "fp16 (TensorRT 10: builder flag; TensorRT 11, RTX: the ONNX model is converted)",
        "bf16": "bf16 (as --fp16)",
        "int8": "INT8 (TensorRT 10: calibration unless the model has Q/DQ nodes; "
        "TensorRT 11, RTX: a Q/DQ model only)",
    }
    for name, text in helps.items():
        precision.add_argument(
            f"--{name}", dest="precision", action="store_const", const=name, help=text
        )
    p.set_defaults(precision="fp32")
    p.add_argument(
        "--calib-data",
        metavar="F.npz",
        help="INT8 calibration inputs, one array per input name (TensorRT 10; default random)",
    )
    shapes = p.add_mutually_exclusive_group()
    shapes.add_argument(
        "--shapes",
        type=shapes_arg,
        default={},
        metavar="NAME:NxCxHxW,...",
        help="input shapes for dynamic inputs, as trtexec --shapes",
    )
    shapes.add_argument(
        "--batch",
        type=positive_int,
        default=None,
        metavar="N",
        help="batch size for inputs whose only dynamic dimension is the first",
    )
    p.add_argument("--workspace", type=positive_int, metavar="MiB", help="workspace memory limit")
    p.add_argument(
        "--opt-level",
        type=int,
        choices=range(6),
        metavar="0-5",
        help="builder optimization level (TensorRT's default is 3)",
    )
    p.add_argument(
        "--timing-cache", metavar="F", help="read (if present) and update a timing cache"
    )
    p.add_argument("--no-progress", action="store_true", help="draw no progress bar while building")


def build_options(args: argparse.Namespace) -> Any:
    """The :class:`~fusionlab.backends.tensorrt.BuildOptions` the arguments ask for."""
    from fusionlab.backends.tensorrt import BuildOptions

    if args.calib_data and args.precision != "int8":
        raise FusionlabError("--calib-data needs --int8")
    return BuildOptions(
        precision=args.precision,
        shapes=args.shapes,
        batch=args.batch,
        workspace_mib=args.workspace,
        opt_level=args.opt_level,
        timing_cache=args.timing_cache,
        calib_data=args.calib_data,
        progress=None if args.no_progress else sys.stderr,
    )


def register(sub: Any) -> None:
    p = sub.add_parser("build", help="build a TensorRT engine from an ONNX model (needs TensorRT)")
    add_build_args(p)
    p.add_argument("--save-engine", metavar="F", help="write the engine (and F.fusionlab.json)")
    p.add_argument(
        "--export-layer-info",
        metavar="F",
        help="write the engine's layers as the engine inspector's JSON "
        "(trtexec --exportLayerInfo); needs a GPU",
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
    engine = build_engine(args.model, options, backend)
    protect = (args.model,)
    saved = None
    if args.save_engine:
        saved = save_engine(engine, args.save_engine, protect=protect)
    layers = None
    if args.export_layer_info:
        info = layer_information(engine.data, backend)
        write_atomic(
            args.export_layer_info, info, protect=(*protect, *([str(saved)] if saved else []))
        )
        layers = len(engine_plan(info, None, f"{backend.label} live").layers)
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
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return 0
    how = f" ({engine.how})" if engine.how else ""
    print(f"built {args.model} with {engine.backend}: {engine.precision}{how}")
    print(f"inputs  {_shapes_text(dict(engine.input_shapes))}")
    size, took = mib(len(engine.data)), seconds(engine.build_s or 0.0)
    print(f"engine  {size} in {took}, sha256 {engine.sha256[:16]}")
    if saved:
        print(f"saved   {saved} (record {saved}.fusionlab.json)")
    if layers is not None:
        print(f"layers  {layers}, written to {args.export_layer_info}")
    if not saved and not args.export_layer_info:
        print("(engine not kept: use --save-engine F)")
    return 0

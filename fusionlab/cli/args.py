"""Argument groups that several subcommands share, and what each group means.

One function adds a group to a parser (``add_*_args``); where a group needs interpreting
(a device to price layers on, build options, where the engine's layers come from), the
function that does it sits beside it. Commands import from here, never from each other.
Heavy modules are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from fusionlab.errors import FusionlabError

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph
    from fusionlab.plan import Plan


MAX_COUNT = 1 << 31
"""The largest batch, count or size an argument may give (ONNX and TensorRT dimensions are
at most int32 in practice; a larger one would overflow protobuf's int64 fields)."""


INPUT_ARGS = ("model", "layer_info", "profile", "engine", "efficiency", "expect", "plan", "plan_file",
              "calib_data")
"""Arguments that name the user's input files (argparse ``dest`` names)."""


def input_files(args: argparse.Namespace) -> list[str]:
    """Every input file the command line names: no output may be written over one."""
    return [str(v) for name in INPUT_ARGS if isinstance(v := getattr(args, name, None), str) and v]


def positive_int(text: str) -> int:
    """argparse type: an integer from 1 to :data:`MAX_COUNT`."""
    try:
        value = int(text) if len(text) <= 40 else None
    except ValueError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text[:40]!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_COUNT}, got {text[:40]}")
    return value


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """MODEL (an ONNX file) and ``--batch N``."""
    parser.add_argument("model", metavar="MODEL", help="ONNX model file")
    parser.add_argument(
        "--batch", type=positive_int, default=None, metavar="N",
        help="fix a symbolic or dynamic batch dimension to N before shape inference",
    )


def add_target_args(
    p: argparse.ArgumentParser, *, precision_default: str | None = "fp32", builds: bool = False
) -> None:
    """``--target`` and ``--precision`` (``precision_default`` None: the caller decides).

    ``builds``: the command takes ``--build BACKEND``, so ``--target`` defaults to None and
    :func:`chosen_target` picks the target that models the builder.
    """
    from fusionlab.dtypes import PRECISIONS
    from fusionlab.fusion.targets import DEFAULT, TARGETS

    p.add_argument(
        "--target",
        default=None if builds else DEFAULT,
        choices=list(TARGETS),
        help=f"TensorRT ruleset (default {DEFAULT}"
        + ("; with --build, the one that models the builder: rtx for TensorRT-RTX, "
           "trt10/trt11 by TensorRT version)" if builds else ")"),
    )
    p.add_argument(
        "--precision",
        default=precision_default,
        choices=list(PRECISIONS),
        help=f"build precision (default {precision_default or 'that of the engine'})",
    )


def add_device_args(p: argparse.ArgumentParser) -> None:
    """``--device NAME``, ``--efficiency FILE`` and ``--no-tf32`` (used by ``predict``)."""
    from fusionlab.cost.devices import DEVICES

    p.add_argument("--device", metavar="NAME",
                   help="predict each layer's time on this GPU, e.g. a100-80gb-pcie "
                        f"(known: {', '.join(DEVICES)})")
    p.add_argument("--efficiency", metavar="FILE",
                   help="efficiency factors written by 'fusionlab calibrate -o' (with --device)")
    p.add_argument("--no-tf32", action="store_true",
                   help="fp32 convolutions on FP32 CUDA cores, not TF32 tensor cores "
                        "(TensorRT allows TF32 by default)")


def device_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`fusionlab.api.predict`'s keywords for ``--device``/``--efficiency``/``--no-tf32``."""
    if args.device is None and args.efficiency is not None:
        raise FusionlabError("--efficiency needs --device NAME")
    return {"device": args.device, "efficiency": args.efficiency, "tf32": not args.no_tf32}


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
        # a progress bar only on a terminal: in logs and pipes it would be lines before an error
        progress=sys.stderr if not args.no_progress and sys.stderr.isatty() else None,
    )


def add_actual_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    """``--layer-info F [--profile F] | --engine E | --build BACKEND`` (:func:`read_actual`)."""
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--layer-info", metavar="F", help="engine layer information JSON (trtexec --exportLayerInfo)")
    group.add_argument("--engine", metavar="E", help="a serialized TensorRT engine (needs the tensorrt extra)")
    p.add_argument("--profile", metavar="F", help="per-layer profile JSON (trtexec --exportProfile)")
    group.add_argument(
        "--build", metavar="BACKEND", choices=("rtx", "tensorrt", "auto"),
        help="build MODEL now and read the engine's layers: rtx (TensorRT-RTX, no GPU needed: "
             "its build log), tensorrt (needs a GPU), auto (tensorrt if installed, else rtx)",
    )


def read_actual(args: argparse.Namespace, graph: Graph) -> tuple[Plan, str | None]:
    """The actual plan ``--layer-info``/``--profile``/``--engine``/``--build`` name, and the
    target that models its builder where known (``--build``, or a layer file fusionlab wrote
    from a build; else None).

    A build draws its progress bar on a terminal only, and runs in a subprocess
    (:func:`fusionlab.backends.rtx.build_actual`).
    """
    from fusionlab.backends.actual import actual_plan

    backend = getattr(args, "build", None)
    if not backend:
        plan = actual_plan(graph, layer_info=getattr(args, "layer_info", None),
                           profile=getattr(args, "profile", None), engine=getattr(args, "engine", None))
        return plan, plan.target  # a layer file fusionlab wrote from a build names its target
    if getattr(args, "profile", None):
        raise FusionlabError("--profile needs --layer-info or --engine (a build with --build is not timed)")
    from fusionlab.backends.rtx import build_actual
    from fusionlab.fusion.targets import target_for_backend

    built = build_actual(args.model, batch=args.batch, backend=backend, graph=graph,
                         progress=sys.stderr.isatty())
    return built.plan, target_for_backend(built.flavor, built.version)


def chosen_target(args: argparse.Namespace, modelled: str | None) -> str:
    """``--target``, else the target that models the builder (``--build``, or named by the
    layer file), else the default."""
    from fusionlab.fusion.targets import DEFAULT

    return str(args.target or modelled or DEFAULT)

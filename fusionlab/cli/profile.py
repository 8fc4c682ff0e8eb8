"""``fusionlab profile MODEL|ENGINE``: time an engine on the GPU, as trtexec does.

An ONNX model is built first (with ``build``'s options); an engine file is loaded, with a
warning when fusionlab did not build it (engine files can carry plugin code). Prints
trtexec's performance summary and its ``--dumpProfile`` per-layer table.
"""

from __future__ import annotations

import argparse
from typing import Any

from fusionlab.cli.args import add_build_args, build_options, input_files, positive_int
from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic

BUILD_ONLY = ("precision", "calib_data", "workspace", "opt_level", "timing_cache")


def non_negative(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "profile", help="time an engine (or an ONNX model, built first) on the GPU, as trtexec"
    )
    add_build_args(p, model_help="ONNX model (built first) or serialized TensorRT engine")
    p.add_argument(
        "--iterations",
        type=positive_int,
        default=10,
        metavar="N",
        help="time at least N queries (default 10)",
    )
    p.add_argument(
        "--warmup",
        type=non_negative,
        default=200.0,
        metavar="MS",
        help="warm up for MS milliseconds first (default 200)",
    )
    p.add_argument(
        "--duration",
        type=non_negative,
        default=3.0,
        metavar="S",
        help="time queries for at least S seconds (default 3)",
    )
    p.add_argument("--cuda-graph", action="store_true", help="launch each query as a CUDA graph")
    p.add_argument("--pycuda", action="store_true", help="use pycuda instead of cuda-python")
    p.add_argument(
        "--export-profile", metavar="F", help="per-layer times (trtexec --exportProfile)"
    )
    p.add_argument("--export-times", metavar="F", help="every timed query (trtexec --exportTimes)")
    p.add_argument(
        "--export-layer-info", metavar="F", help="the engine's layers (trtexec --exportLayerInfo)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from fusionlab.backends.tensorrt import (
        ProfileOptions,
        build_engine,
        is_onnx_file,
        load_backend,
        profile_engine,
        read_engine_file,
    )
    from fusionlab.formats.trtexec import (
        format_profile_table,
        format_summary,
        profile_to_json,
        times_to_json,
    )

    backend = load_backend(args.backend, "fusionlab profile")
    if is_onnx_file(args.model):
        data = build_engine(args.model, build_options(args), backend).data
    else:
        given = [
            "--" + (args.precision if name == "precision" else name.replace("_", "-"))
            for name in BUILD_ONLY
            if getattr(args, name) not in (None, "fp32")
        ]
        if given:
            raise FusionlabError(f"{given[0]} applies to building; {args.model} is an engine")
        data = read_engine_file(args.model)
    options = ProfileOptions(
        iterations=args.iterations,
        warmup_ms=args.warmup,
        duration_s=args.duration,
        cuda_graph=args.cuda_graph,
        pycuda=args.pycuda,
        shapes=args.shapes,
        batch=args.batch,
    )
    result = profile_engine(data, backend, options)
    profile = result.profile
    protect = tuple(input_files(args))
    if args.export_profile:
        write_atomic(args.export_profile, profile_to_json(profile), protect=protect)
    if args.export_times:
        write_atomic(args.export_times, times_to_json(result.queries), protect=protect)
    if args.export_layer_info:
        write_atomic(args.export_layer_info, result.layer_info, protect=protect)
    trace = result.queries
    seconds = (trace[-1].end_d2h_ms - trace[0].start_h2d_ms) / 1000.0
    print(f"=== {args.model} on {profile.device} with {backend.label} ===")
    print(f"Warmup completed {result.warmup_queries} queries over {args.warmup:g} ms")
    print(f"Timing trace has {len(trace)} queries over {seconds:.6g} s")
    print()
    print(format_summary(profile), end="")
    print(format_profile_table(profile), end="")
    return 0

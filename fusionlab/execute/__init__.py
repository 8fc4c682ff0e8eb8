"""fusionlab's reference executor: run an ONNX graph with PyTorch/cuDNN kernels and time it.

Two realisations of one graph:

- **unfused** — one PyTorch call per ONNX node (``torch.convolution``, ``F.batch_norm``,
  ``torch.relu``, ``torch.cat`` ...), in graph order;
- **fused** — one step per layer of a plan (predicted by :func:`fusionlab.fusion.predictor.predict`
  or read from a plan JSON), realised the way the plan says: BatchNorm folded into the
  convolution's weights, cuDNN's fused convolution + bias + ReLU (+ residual Add) kernels,
  horizontally merged convolutions as one convolution whose outputs are channel views,
  eliminated Concats as one buffer that producers write into, point-wise chains as one
  generated kernel (:mod:`fusionlab.execute.fused` says which path each layer takes and
  when it falls back).

Both use channels-last memory, cuDNN autotuning (``cudnn.benchmark``) and, at fp32, IEEE
float32 arithmetic (TF32 off, so that the fp32 check can hold to 1e-4). :func:`execute`
checks the fused execution against the unfused one on random inputs
(:mod:`fusionlab.execute.check`), then times the chosen one per layer and end to end in
separate runs (:mod:`fusionlab.execute.timing`), and returns a
:class:`~fusionlab.plan.profile.Profile` with the plan's layer names, which
:func:`fusionlab.formats.trtexec.profile_to_json` writes as trtexec's ``--exportProfile``.

PyTorch is optional (the ``torch`` extra) and imported only here, inside the functions:

>>> from fusionlab.execute import TOLERANCES
>>> TOLERANCES["fp16"]
0.01
"""

from __future__ import annotations

import contextlib
import logging
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fusionlab.errors import FusionlabError, missing_extra
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan
from fusionlab.plan.profile import Latency, LayerTime, Profile

if TYPE_CHECKING:
    from fusionlab.execute.check import CheckResult
    from fusionlab.execute.program import Program, Tensors

log = logging.getLogger(__name__)

TOLERANCES = {"fp32": 1e-4, "fp16": 1e-2}
"""Largest relative error between the fused and unfused executions, per precision."""
PRECISIONS = tuple(TOLERANCES)
DEVICES = ("cuda", "cpu")

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "TOLERANCES",
    "ExecuteOptions",
    "Execution",
    "LayerResult",
    "Programs",
    "build",
    "execute",
    "require_torch",
]


def require_torch(what: str = "fusionlab execute") -> Any:
    """The torch module, or a :class:`FusionlabError` naming the extra to install."""
    try:
        import torch
    except ImportError:
        raise missing_extra("torch", "torch", what) from None
    return torch


@dataclass(frozen=True)
class ExecuteOptions:
    """How to run and time (the options of ``fusionlab execute``)."""

    device: str = "cuda"
    precision: str = "fp32"
    iterations: int = 100
    warmup: int = 10
    cuda_graph: bool = False
    seed: int = 0
    compile_pointwise: bool = True
    """Point-wise chains as one ``torch.compile``-generated kernel (CUDA only)."""
    tactics: bool = True
    """Per-layer tactic selection among cuDNN, cuBLAS and Triton realisations, timed when the
    program is prepared (CUDA with Triton only); off: the PyTorch/cuDNN realisations alone."""
    check: bool = True
    count_kernels: bool = False
    """Count each layer's GPU kernels with ``torch.profiler`` (CUDA only)."""


@dataclass(frozen=True)
class LayerResult:
    """One timed layer (or ONNX node, unfused): how it ran and its statistics."""

    name: str
    path: str
    stats: Latency
    total_ms: float
    kernels: int | None = None


@dataclass(frozen=True)
class Execution:
    """What :func:`execute` measured."""

    label: str
    profile: Profile
    layers: tuple[LayerResult, ...]
    check: CheckResult | None = None
    kernels: int | None = None
    """GPU kernels (with memcpy/memset) of one eager inference, when counted."""
    method: dict[str, str] = field(default_factory=dict)


@dataclass
class Programs:
    """Both realisations of a graph, built once, plus the random inputs they share."""

    unfused: Program
    fused: Program | None
    feeds: Tensors
    device_name: str


@contextlib.contextmanager
def backend_settings(precision: str) -> Iterator[None]:
    """cuDNN autotuning on; at fp32, IEEE float32 convolutions and matmuls (no TF32).

    The previous settings come back afterwards.
    """
    import torch

    cudnn: Any = torch.backends.cudnn
    matmul: Any = torch.backends.cuda.matmul
    conv: Any = getattr(cudnn, "conv", None)
    # torch 2.9+ sets TF32 per operator (fp32_precision); mixing it with the legacy
    # allow_tf32 flags is an error there, so use the new API wherever it exists
    new_api = conv is not None and hasattr(conv, "fp32_precision")
    saved_bench = cudnn.benchmark
    saved: tuple[Any, Any] = (
        (conv.fp32_precision, matmul.fp32_precision) if new_api
        else (cudnn.allow_tf32, matmul.allow_tf32)
    )
    cudnn.benchmark = True
    if precision == "fp32":
        if new_api:
            conv.fp32_precision = "ieee"
            matmul.fp32_precision = "ieee"
        else:
            cudnn.allow_tf32 = False
            matmul.allow_tf32 = False
    try:
        yield
    finally:
        cudnn.benchmark = saved_bench
        if new_api:
            conv.fp32_precision, matmul.fp32_precision = saved
        else:
            cudnn.allow_tf32, matmul.allow_tf32 = saved


def _device(torch: Any, name: str) -> tuple[Any, str]:
    if name not in DEVICES:
        raise FusionlabError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise FusionlabError(
                "no CUDA device is available to PyTorch (run with --device cpu, or install a "
                "CUDA build of torch)"
            )
        return torch.device("cuda"), str(torch.cuda.get_device_name())
    return torch.device("cpu"), f"CPU ({platform.processor() or platform.machine()})"


def build(
    graph: Graph,
    plan: Plan | None,
    *,
    device: str = "cuda",
    precision: str = "fp32",
    seed: int = 0,
    compile_pointwise: bool = True,
    tactics: bool = True,
) -> Programs:
    """Build the unfused program and (given a plan) the fused one, plus random inputs."""
    torch = require_torch()
    from fusionlab.execute.fused import fused_program
    from fusionlab.execute.program import DTYPES, make_env, random_inputs, unfused_program

    if precision not in DTYPES:
        raise FusionlabError(
            f"the executor runs {', '.join(DTYPES)}, not {precision!r}"
        )
    dev, device_name = _device(torch, device)
    dtype = DTYPES[precision]
    env, folded = make_env(graph, dev, dtype)
    unfused = unfused_program(graph, env, folded)
    fused = (fused_program(graph, plan, env, folded, compile_pointwise=compile_pointwise,
                           tactics=tactics)
             if plan is not None else None)
    feeds = random_inputs(graph, dev, dtype, seed)
    return Programs(unfused, fused, feeds, device_name)


def _method(torch: Any, program: Program, options: ExecuteOptions, graph: Graph,
            layer_timer: str, e2e_timer: str) -> dict[str, str]:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "tool": "fusionlab execute (PyTorch reference executor)",
        "program": program.label,
        "precision": options.precision,
        "batch": str(graph.batch) if graph.batch is not None else "as in the model",
        "per-layer timing": f"{layer_timer}; {options.iterations} iterations after "
                            f"{options.warmup} warm-up, a run of its own",
        "end-to-end timing": f"{e2e_timer}; {options.iterations} iterations after "
                             f"{options.warmup} warm-up",
        "cuda graph": "yes" if options.cuda_graph and program.device.type == "cuda" else "no",
        "memory format": "channels_last",
        "tf32": "off" if options.precision == "fp32" else "n/a",
        "cudnn.benchmark": "on",
        "tactics": ("timed per layer (cuDNN / cuBLAS / Triton), fastest kept"
                    if options.tactics and program.device.type == "cuda" else "off"),
        "torch": str(torch.__version__),
        "cudnn": str(cudnn) if cudnn else "none",
    }


def execute(
    graph: Graph,
    plan: Plan | None,
    options: ExecuteOptions,
    *,
    unfused: bool = False,
    programs: Programs | None = None,
) -> Execution:
    """Check, then time the fused (``plan``) or the unfused execution of ``graph``.

    The check (fused against unfused, same random inputs) runs first unless
    ``options.check`` is off or there is no plan; a mismatch is a :class:`FusionlabError`
    naming the worst layer. Timing: per layer, then end to end, in separate runs.
    """
    torch = require_torch()
    from fusionlab.execute.check import compare, require_match
    from fusionlab.execute.timing import count_kernels, step_stats, time_end_to_end, time_layers

    if options.iterations < 1:
        raise FusionlabError("--iterations must be at least 1")
    if options.warmup < 0:
        raise FusionlabError("--warmup must not be negative")
    if plan is None and not unfused:
        raise FusionlabError("running the fused execution needs a plan")
    with backend_settings(options.precision):
        progs = programs or build(graph, plan, device=options.device,
                                  precision=options.precision, seed=options.seed,
                                  compile_pointwise=options.compile_pointwise,
                                  tactics=options.tactics)
        program = progs.unfused if unfused else progs.fused
        assert program is not None
        for p in (progs.unfused, progs.fused):
            if p is not None:
                p.prepare(progs.feeds)
        result = None
        if options.check and progs.fused is not None:
            result = compare(progs.fused, progs.unfused, progs.feeds, options.precision)
            log.info("%s", result.describe())
            require_match(result)
        cuda = program.device.type == "cuda"
        kernels = (count_kernels(program, progs.feeds)
                   if options.count_kernels and cuda else None)
        per_layer = time_layers(program, progs.feeds, options.iterations, options.warmup,
                                cuda_graph=options.cuda_graph and cuda)
        e2e = time_end_to_end(program, progs.feeds, options.iterations, options.warmup,
                              cuda_graph=options.cuda_graph and cuda)
        method = _method(torch, program, options, graph, per_layer.timer, e2e.timer)
    layers: list[LayerResult] = []
    records: list[LayerTime] = []
    for i, step in enumerate(program.steps):
        times = per_layer.times_ms[i]
        stats = step_stats(times)
        layers.append(LayerResult(step.name, step.path, stats, sum(times),
                                  kernels.per_step[i] if kernels is not None else None))
        records.append(LayerTime(step.name, sum(times), stats.mean_ms, stats.median_ms))
    profile = Profile(
        layers=tuple(records),
        runs=options.iterations,
        summary=e2e.summary,
        method=method,
        device=progs.device_name,
        source=f"fusionlab execute, {program.label}",
    )
    return Execution(program.label, profile, tuple(layers), result,
                     kernels.total if kernels is not None else None, method)

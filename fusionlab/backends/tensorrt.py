"""The live TensorRT backend: build engines from ONNX, read their layers, time them.

TensorRT is imported only by :func:`load_backend`, which picks NVIDIA TensorRT
(``tensorrt``, 10.x or 11.x) or TensorRT for RTX (``tensorrt_rtx``); every other function
takes the :class:`Backend` it returned. What differs between those versions lives in
:class:`Capabilities` and nowhere else:

- TensorRT 10 builds weakly typed networks with precision builder flags (``FP16``,
  ``BF16``, ``INT8``) and calibrates INT8 with an ``IInt8EntropyCalibrator2``;
- TensorRT 11 removed those flags and the calibrator: networks are strongly typed
  ("Removed Python APIs and Replacements", TensorRT 11.x migration guide), so fp16/bf16
  come from converting the ONNX model (:mod:`fusionlab.backends.tensorrt_precision`)
  and INT8 from an explicitly quantized (Q/DQ) model;
- TensorRT-RTX never had them (its ``BuilderFlag`` has no ``FP16``): as TensorRT 11.

The build follows trtexec: an optimization profile from ``--shapes``/``--batch`` for
dynamic inputs, workspace limit, builder optimization level, timing cache, detailed
profiling verbosity (always, so the engine inspector names the ONNX nodes of each layer),
a progress bar through ``IProgressMonitor``. Profiling follows trtexec too: end-to-end
queries timed with CUDA events (H2D, GPU compute, D2H) and host clocks (enqueue), then a
separate run with an ``IProfiler`` for per-layer times; the statistics are trtexec's
(:func:`fusionlab.plan.profile.summarize_times`).

An engine file is code (it can carry plugins): :func:`save_engine` writes a sidecar
``ENGINE.fusionlab.json`` with the engine's sha256, and :func:`provenance_warning` says
when an engine to be loaded has no sidecar or a different hash.

>>> caps = capabilities("tensorrt", "10.13.0.35")
>>> (caps.has_precision_flags, caps.strongly_typed_only)
(True, False)
>>> capabilities("tensorrt", "11.0.0").strongly_typed_only
True
"""

from __future__ import annotations

import functools
import gc
import hashlib
import importlib
import json
import logging
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ParamSpec, TextIO, TypeVar

import numpy as np
from packaging.version import InvalidVersion, Version

from fusionlab.dtypes import by_trt, check_precision
from fusionlab.errors import FusionlabError, missing_extra
from fusionlab.gcpause import paused
from fusionlab.io import write_atomic

P = ParamSpec("P")
R = TypeVar("R")

if TYPE_CHECKING:
    import tensorrt

    from fusionlab.backends.tensorrt_cuda import CudaRuntime, IOBuffer
    from fusionlab.ir.graph import Graph
    from fusionlab.plan import Plan
    from fusionlab.plan.profile import InferenceTrace, LayerTime, Profile

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "rtx")
RTX_MODULES = ("tensorrt_rtx", "tensorrt_rtx_bindings")
"""TensorRT-RTX's module: ``tensorrt_rtx`` (its meta package), or the bindings wheel alone."""
SIDECAR_SUFFIX = ".fusionlab.json"
ENGINE_SCHEMA = "fusionlab.engine/1"
TRT11 = Version("11")
TRT10 = Version("10")
RTX_NO_TIMING_CACHE = Version("1.2")


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class Capabilities:
    """What one TensorRT flavour and version can do; the only place versions are compared."""

    flavor: str
    """``tensorrt`` (NVIDIA TensorRT) or ``rtx`` (TensorRT for RTX)."""
    version: Version

    @property
    def has_precision_flags(self) -> bool:
        """``BuilderFlag.FP16``/``BF16``/``INT8`` exist (TensorRT < 11; never in RTX)."""
        return self.flavor == "tensorrt" and self.version < TRT11

    @property
    def has_int8_calibrator(self) -> bool:
        """``IBuilderConfig.int8_calibrator`` exists (removed in TensorRT 11, absent in RTX)."""
        return self.flavor == "tensorrt" and self.version < TRT11

    @property
    def strongly_typed_only(self) -> bool:
        """Reduced precision only through the model's own types (TensorRT 11, RTX)."""
        return not self.has_precision_flags

    @property
    def has_progress_monitor(self) -> bool:
        """``IProgressMonitor`` exists (added in TensorRT 10.0; present in RTX)."""
        return self.flavor == "rtx" or self.version >= TRT10

    @property
    def has_timing_cache(self) -> bool:
        """Timing caches do something (TensorRT-RTX 1.2 made them deprecated no-ops)."""
        return self.flavor == "tensorrt" or self.version < RTX_NO_TIMING_CACHE

    @property
    def inspector_io_key(self) -> str:
        """The inspector JSON's list of engine I/O (TensorRT 11 renamed ``Bindings``)."""
        return "I/O Tensors" if self.flavor == "tensorrt" and self.version >= TRT11 else "Bindings"

    @property
    def label(self) -> str:
        """``TensorRT 10.13.0.35`` or ``TensorRT-RTX 1.7.1.116``."""
        return f"{'TensorRT' if self.flavor == 'tensorrt' else 'TensorRT-RTX'} {self.version}"


def capabilities(flavor: str, version: str) -> Capabilities:
    """The capabilities of ``flavor`` (``tensorrt``/``rtx``) at ``version``.

    >>> capabilities("rtx", "1.7.1.116").has_precision_flags
    False
    >>> [capabilities("tensorrt", v).inspector_io_key for v in ("10.0.1", "11.1")]
    ['Bindings', 'I/O Tensors']
    """
    if flavor not in ("tensorrt", "rtx"):
        raise FusionlabError(f"unknown TensorRT flavour {flavor!r}")
    try:
        return Capabilities(flavor, Version(version))
    except InvalidVersion:
        raise FusionlabError(f"cannot read the TensorRT version {version!r}") from None


@dataclass(frozen=True)
class Backend:
    """An imported TensorRT module and its capabilities."""

    caps: Capabilities
    module: ModuleType = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return self.caps.label


def _import_first(names: tuple[str, ...]) -> ModuleType | None:
    """The first of ``names`` that imports; None when none is installed.

    A module that is installed but fails to load (a missing shared library) is logged.
    """
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            if getattr(exc, "name", None) != name:
                log.info("%s is installed but does not import: %s", name, exc)
        except OSError as exc:
            log.info("%s is installed but does not load: %s", name, exc)
    return None


def load_backend(choice: str = "auto", what: str = "building TensorRT engines") -> Backend:
    """Import TensorRT: ``tensorrt``, ``rtx`` or ``auto`` (tensorrt if importable, else RTX).

    Raises the one-line :func:`missing_extra` error when the module is not installed, and
    a :class:`FusionlabError` for a TensorRT older than 10.
    """
    if choice not in BACKENDS:
        raise FusionlabError(f"unknown backend {choice!r}; expected one of {', '.join(BACKENDS)}")
    module = _import_first(("tensorrt",)) if choice in ("auto", "tensorrt") else None
    flavor = "tensorrt"
    if module is None:
        if choice == "tensorrt":
            raise missing_extra("tensorrt", "tensorrt", what)
        module, flavor = _import_first(RTX_MODULES), "rtx"
    if module is None:
        if choice == "rtx":
            raise missing_extra("tensorrt_rtx", "rtx", what)
        raise missing_extra("tensorrt", "tensorrt", what)
    caps = capabilities(flavor, str(getattr(module, "__version__", "0")))
    if flavor == "tensorrt" and caps.version < TRT10:
        raise FusionlabError(f"fusionlab needs TensorRT 10 or newer; this is {caps.label}")
    return Backend(caps, module)


# --------------------------------------------------------------------------- TensorRT callbacks


class _Log:
    """TensorRT's messages, forwarded to :mod:`logging`; errors are kept for error lines."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def last_error(self, default: str) -> str:
        return self.errors[-1].splitlines()[0] if self.errors else default


MessageSink = Callable[[str, str], None]
"""Receives every TensorRT message as ``(severity, text)``, e.g. ``("Severity.VERBOSE", ...)``."""


def _make_logger(backend: Backend, keep: MessageSink | None = None) -> tuple[tensorrt.ILogger, _Log]:
    """A logger that forwards TensorRT's messages to :mod:`logging`; ``keep`` also receives
    every message, VERBOSE ones included (TensorRT-RTX prints the engine's layers there)."""
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = backend.module
    sink = _Log()
    levels = trt.ILogger.Severity
    errors = (levels.INTERNAL_ERROR, levels.ERROR)
    verbose = log.isEnabledFor(logging.DEBUG)

    class Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: tensorrt.ILogger.Severity, msg: str) -> None:
            if keep is not None:
                keep(str(severity), msg)
            if severity in errors:
                sink.errors.append(msg)
                log.info("TensorRT error: %s", msg)
            elif severity == levels.WARNING:
                log.info("TensorRT: %s", msg)
            elif severity == levels.INFO or verbose:
                log.debug("TensorRT: %s", msg)

    logger = Logger()
    if keep is not None and hasattr(logger, "min_severity"):
        logger.min_severity = levels.VERBOSE
    return logger, sink


def render_progress(phases: list[tuple[str, int, int]], width: int = 100) -> str:
    """One status line for nested build phases ``(name, steps done, steps)``, outermost first.

    >>> render_progress([("Building engine", 2, 4), ("Timing tactics", 1, 3)], width=80)
    'building [#####     ] 2/4 Building engine > Timing tactics 1/3'
    """
    if not phases:
        return ""
    name, done, total = phases[0]
    filled = min(10, int(10 * done / total)) if total > 0 else 0
    line = f"building [{'#' * filled}{' ' * (10 - filled)}] {done}/{total} {name}"
    for inner, d, t in phases[1:]:
        line += f" > {inner} {d}/{t}"
    return line if len(line) <= width else line[: width - 3] + "..."


def _make_progress_monitor(backend: Backend, stream: TextIO) -> tensorrt.IProgressMonitor:
    """An ``IProgressMonitor`` drawing the build's phases on ``stream`` (thread-safe).

    On a terminal one line is redrawn in place; elsewhere each outermost phase is written
    once, when it starts.
    """
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = backend.module
    lock = threading.Lock()
    tty = stream.isatty()

    class ProgressBar(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.phases: dict[str, list[int]] = {}
            self.drawn = 0

        def _draw(self) -> None:
            if not tty:
                return
            line = render_progress([(k, v[0], v[1]) for k, v in self.phases.items()])
            stream.write("\r" + line.ljust(self.drawn) + ("" if line else "\r"))
            stream.flush()
            self.drawn = len(line)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with lock:
                self.phases[phase_name] = [0, num_steps]
                if not tty and parent_phase is None:
                    stream.write(f"building: {phase_name}\n")
                self._draw()

        def step_complete(self, phase_name: str, step: int) -> bool:
            with lock:
                if phase_name in self.phases:
                    self.phases[phase_name][0] = step + 1
                    self._draw()
            return True

        def phase_finish(self, phase_name: str) -> None:
            with lock:
                self.phases.pop(phase_name, None)
                self._draw()

    return ProgressBar()


# --------------------------------------------------------------------------- shapes


def parse_shapes(text: str) -> dict[str, tuple[int, ...]]:
    """``--shapes`` as trtexec writes it: ``NAME:NxCxHxW,...`` (names may hold ``:``).

    >>> parse_shapes("input.1:8x3x224x224,mask:8x1")
    {'input.1': (8, 3, 224, 224), 'mask': (8, 1)}
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        name, sep, dims = item.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d < 1 for d in shape):
            raise FusionlabError(
                f"--shapes: expected NAME:NxCxHxW with positive sizes, got {item!r}"
            )
        if name in shapes:
            raise FusionlabError(f"--shapes: {name!r} given twice")
        shapes[name] = shape
    if not shapes:
        raise FusionlabError("--shapes: no shape given")
    return shapes


def dims_of(dims: tensorrt.Dims) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple (``-1`` for a dynamic dimension)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


def resolve_shape(
    name: str, dims: tuple[int, ...], shapes: Mapping[str, tuple[int, ...]], batch: int | None
) -> tuple[int, ...]:
    """The shape to build or run input ``name`` at; ``-1`` marks a dynamic dimension.

    >>> resolve_shape("x", (-1, 3, 8, 8), {}, 4)
    (4, 3, 8, 8)
    >>> resolve_shape("x", (2, 3), {"x": (2, 3)}, None)
    (2, 3)
    """
    if name in shapes:
        shape = tuple(shapes[name])
        if len(shape) != len(dims) or any(
            d >= 0 and d != s for d, s in zip(dims, shape, strict=False)
        ):
            raise FusionlabError(
                f"--shapes: input {name!r} has shape {list(dims)}, got {list(shape)}"
            )
        return shape
    if batch is not None and dims:
        if dims[0] >= 0 and dims[0] != batch:
            raise FusionlabError(
                f"input {name!r} has a fixed batch of {dims[0]}; "
                f"--batch {batch} applies only to a dynamic batch"
            )
        dims = (batch, *dims[1:])
    if any(d < 0 for d in dims):
        raise FusionlabError(
            f"input {name!r} has dynamic dimensions {list(dims)}: "
            f"give its shape with --shapes {name}:"
            + "x".join(str(d) if d >= 0 else "N" for d in dims)
            + (" (or --batch N)" if dims and dims[0] < 0 and all(d >= 0 for d in dims[1:]) else "")
        )
    return dims


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class BuildOptions:
    """What to build, as trtexec's build options."""

    precision: str = "fp32"
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    batch: int | None = None
    workspace_mib: int | None = None
    opt_level: int | None = None
    timing_cache: str | None = None
    """Read if it exists, written (whole) after the build."""
    calib_data: str | None = None
    """``.npz`` of calibration inputs (TensorRT 10 INT8 without Q/DQ); random data if None."""
    calib_batches: int = 4
    progress: TextIO | None = None
    """Where to draw the build's progress bar; None draws none."""
    messages: MessageSink | None = field(default=None, compare=False)
    """Receives every message of the build, VERBOSE ones included (and then asks for them
    all: ``ProfilingVerbosity.DETAILED`` is always set)."""


@dataclass(frozen=True)
class Engine:
    """A serialized engine and how it was built."""

    data: bytes = field(repr=False)
    backend: str
    """``TensorRT 10.13.0.35``, ``TensorRT-RTX 1.7.1.116``."""
    precision: str
    model: str | None = None
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    build_s: float | None = None
    how: str = ""
    """How the precision was obtained (builder flag, ONNX conversion, Q/DQ, calibration)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _precision_plan(caps: Capabilities, precision: str, qdq: bool) -> str:
    """How ``precision`` is obtained on this TensorRT: flag, convert, qdq, calibrate or none.

    >>> _precision_plan(capabilities("tensorrt", "10.8"), "fp16", False)
    'flag'
    >>> _precision_plan(capabilities("tensorrt", "11.0"), "bf16", False)
    'convert'
    >>> _precision_plan(capabilities("tensorrt", "10.8"), "int8", False)
    'calibrate'
    """
    check_precision(precision)
    if precision == "fp32":
        return "none"
    if precision in ("fp16", "bf16"):
        return "flag" if caps.has_precision_flags else "convert"
    if qdq:
        return "qdq"
    if caps.has_int8_calibrator:
        return "calibrate"
    raise FusionlabError(
        f"--int8 on {caps.label} needs an explicitly quantized model "
        "(QuantizeLinear/DequantizeLinear "
        "nodes, e.g. from NVIDIA ModelOpt): strongly typed TensorRT has no INT8 calibration"
    )


def _read_onnx(path: Path) -> Graph:
    from fusionlab.ir.graph import load

    return load(path)


def outside_gc(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with Python's cyclic collector paused, then collect.

    TensorRT calls back into Python (logger, progress monitor, profiler) while it holds
    its own locks. A collection that runs inside such a callback can destroy a TensorRT
    object left in a reference cycle by an earlier call, and its destructor waits for the
    lock the caller holds: a deadlock (seen with TensorRT-RTX 1.7: a Builder freed by the
    collector inside the logger callback of ``createInferBuilder``). So no collection runs
    during these calls, and leftovers are collected right after, outside TensorRT.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with paused():
                return fn(*args, **kwargs)
        finally:
            gc.collect()

    return wrapper


@outside_gc
def build_engine(model: str | os.PathLike[str], options: BuildOptions, backend: Backend) -> Engine:
    """Parse an ONNX file and build a serialized engine, the way the live backend always does.

    Raises :class:`FusionlabError` for a bad model, a parser error, an impossible
    precision or shape request, or a failed build (with TensorRT's last error).
    """
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = backend.module
    from fusionlab.backends.tensorrt_precision import QDQ_OPS

    path = Path(model)
    graph = _read_onnx(path)
    qdq = any(n.op in QDQ_OPS for n in graph.nodes())
    how = _precision_plan(backend.caps, options.precision, qdq)
    if options.opt_level is not None and not 0 <= options.opt_level <= 5:
        raise FusionlabError(f"--opt-level must be 0 to 5, got {options.opt_level}")
    if options.workspace_mib is not None and options.workspace_mib < 1:
        raise FusionlabError(f"--workspace must be at least 1 MiB, got {options.workspace_mib}")

    logger, sink = _make_logger(backend, options.messages)
    builder = trt.Builder(logger)
    flags = 0
    if backend.caps.strongly_typed_only or how == "convert":
        # kept in TensorRT 11 for compatibility, ignored there (every network is strongly typed)
        strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        flags = 0 if strongly_typed is None else 1 << int(strongly_typed)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if how == "convert":
        parsed = parser.parse(_converted_bytes(path, options.precision), str(path))
    else:
        parsed = parser.parse_from_file(str(path))
    if not parsed:
        errors = [str(parser.get_error(i)).strip() for i in range(parser.num_errors)]
        first = errors[0].splitlines()[0] if errors else sink.last_error("no details")
        raise FusionlabError(f"{path}: TensorRT's ONNX parser failed: {first}")

    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if options.workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    if options.opt_level is not None:
        config.builder_optimization_level = options.opt_level
    if how == "flag":
        config.set_flag(
            trt.BuilderFlag.FP16 if options.precision == "fp16" else trt.BuilderFlag.BF16
        )
    elif how in ("qdq", "calibrate") and backend.caps.has_precision_flags:
        config.set_flag(trt.BuilderFlag.INT8)

    input_shapes, profile = _optimization_profile(builder, network, options)
    if profile is not None:
        config.add_optimization_profile(profile)
    timing_cache = options.timing_cache
    if timing_cache is not None and not backend.caps.has_timing_cache:
        log.warning("%s ignores timing caches: %s not used", backend.label, timing_cache)
        timing_cache = None
    cache = _load_timing_cache(config, timing_cache)
    monitor = None  # referenced here: it must outlive the build
    if options.progress is not None and backend.caps.has_progress_monitor:
        monitor = _make_progress_monitor(backend, options.progress)
        config.progress_monitor = monitor

    with _calibration(backend, config, network, input_shapes, profile, options, how):
        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        build_s = time.perf_counter() - start
    if serialized is None:
        raise FusionlabError(
            f"{path}: TensorRT could not build an engine: {sink.last_error('see --verbose')}"
        )
    if cache is not None and timing_cache is not None:
        write_atomic(timing_cache, bytes(config.get_timing_cache().serialize()), protect=[path])
    notes = {
        "none": "",
        "flag": f"{options.precision} builder flag",
        "convert": f"ONNX converted to {options.precision} (strongly typed)",
        "qdq": "explicit quantization (Q/DQ)",
        "calibrate": "INT8 calibration (" + (options.calib_data or "random data") + ")",
    }
    return Engine(
        data=bytes(serialized),
        backend=backend.label,
        precision=options.precision,
        model=str(path),
        input_shapes=input_shapes,
        build_s=build_s,
        how=notes[how],
    )


def _converted_bytes(path: Path, precision: str) -> bytes:
    import onnx

    from fusionlab.backends.tensorrt_precision import convert_float_model

    model = onnx.load(str(path), load_external_data=True)
    converted = convert_float_model(model, precision)
    if converted.ByteSize() >= 2**31:
        raise FusionlabError(
            f"{path}: the {precision} model is over 2 GB, too large to pass to TensorRT"
        )
    return bytes(converted.SerializeToString())


def _optimization_profile(
    builder: tensorrt.Builder, network: tensorrt.INetworkDefinition, options: BuildOptions
) -> tuple[dict[str, tuple[int, ...]], tensorrt.IOptimizationProfile | None]:
    """Input name -> shape to build at, and a profile (min = opt = max) for dynamic inputs."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    names = {t.name for t in inputs}
    unknown = sorted(set(options.shapes) - names)
    if unknown:
        raise FusionlabError(
            f"--shapes: no input named {unknown[0]!r}; inputs: {', '.join(sorted(names))}"
        )
    shapes: dict[str, tuple[int, ...]] = {}
    profile = None
    for tensor in inputs:
        dims = dims_of(tensor.shape)
        shape = resolve_shape(tensor.name, dims, options.shapes, options.batch)
        shapes[tensor.name] = shape
        if any(d < 0 for d in dims):
            if tensor.is_shape_tensor:
                raise FusionlabError(
                    f"input {tensor.name!r} is a shape tensor; fusionlab cannot set its values"
                )
            if profile is None:
                profile = builder.create_optimization_profile()
            profile.set_shape(tensor.name, shape, shape, shape)
    return shapes, profile


def _load_timing_cache(
    config: tensorrt.IBuilderConfig, path: str | None
) -> tensorrt.ITimingCache | None:
    if path is None:
        return None
    data = b""
    if Path(path).is_file():
        data = Path(path).read_bytes()
        log.info("reading timing cache %s (%d bytes)", path, len(data))
    cache = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, False):
        raise FusionlabError(f"{path}: TensorRT could not use this timing cache")
    return cache


@contextmanager
def _calibration(
    backend: Backend,
    config: tensorrt.IBuilderConfig,
    network: tensorrt.INetworkDefinition,
    shapes: Mapping[str, tuple[int, ...]],
    profile: tensorrt.IOptimizationProfile | None,
    options: BuildOptions,
    how: str,
) -> Iterator[None]:
    """TensorRT 10's INT8 calibration, fed from ``--calib-data`` or random data; needs a GPU."""
    if how != "calibrate":
        yield
        return
    from fusionlab.backends.tensorrt_cuda import open_cuda

    batches = _calibration_batches(network, shapes, options)
    cuda = open_cuda()
    try:
        calibrator = _make_calibrator(backend, cuda, batches)
        config.int8_calibrator = calibrator
        if profile is not None:
            config.set_calibration_profile(profile)
        yield
    finally:
        cuda.close()


def _calibration_batches(
    network: tensorrt.INetworkDefinition,
    shapes: Mapping[str, tuple[int, ...]],
    options: BuildOptions,
) -> list[dict[str, np.ndarray]]:
    """Calibration inputs: consecutive slices of the ``.npz`` arrays, or random values."""
    from fusionlab.backends.tensorrt_cuda import FILLABLE

    dtypes: dict[str, str] = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        dtype = _numpy_dtype(tensor.dtype.name)
        if dtype not in FILLABLE or dtype == "bfloat16":
            raise FusionlabError(
                f"cannot calibrate input {tensor.name!r} of type {tensor.dtype.name}"
            )
        dtypes[tensor.name] = dtype
    if options.calib_data is None:
        log.warning(
            "INT8 calibration on random data: the engine's layers and timings are meaningful, "
            "its accuracy is not (give real inputs with --calib-data F.npz)"
        )
        rng = np.random.default_rng(0)
        return [
            {n: rng.uniform(-1, 1, shapes[n]).astype(dtypes[n]) for n in shapes}
            for _ in range(options.calib_batches)
        ]
    try:
        with np.load(options.calib_data) as npz:
            arrays = {k: np.asarray(npz[k]) for k in npz.files}
    except (OSError, ValueError) as exc:
        raise FusionlabError(
            f"{options.calib_data}: cannot read calibration data ({exc})"
        ) from None
    if len(shapes) == 1 and len(arrays) == 1:
        arrays = {next(iter(shapes)): next(iter(arrays.values()))}
    missing = sorted(set(shapes) - set(arrays))
    if missing:
        raise FusionlabError(f"{options.calib_data}: no array for input {missing[0]!r}")
    counts = []
    for name, shape in shapes.items():
        a = arrays[name]
        if a.ndim != len(shape) or tuple(a.shape[1:]) != tuple(shape[1:]):
            raise FusionlabError(
                f"{options.calib_data}: array {name!r} has shape {list(a.shape)}; "
                "expected [samples, " + ", ".join(str(d) for d in shape[1:]) + "]"
            )
        counts.append(a.shape[0] // shape[0])
    n = min(counts)
    if n < 1:
        raise FusionlabError(f"{options.calib_data}: fewer samples than one batch")
    return [
        {
            name: arrays[name][b * s[0] : (b + 1) * s[0]].astype(dtypes[name])
            for name, s in shapes.items()
        }
        for b in range(n)
    ]


def _make_calibrator(
    backend: Backend, cuda: CudaRuntime, batches: list[dict[str, np.ndarray]]
) -> tensorrt.IInt8EntropyCalibrator2:
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = backend.module
    stream = cuda.create_stream()
    first = batches[0]
    device = {name: cuda.malloc(a.nbytes) for name, a in first.items()}
    host = {name: cuda.host_buffer(a.nbytes) for name, a in first.items()}

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0

        def get_batch_size(self) -> int:
            return 1  # explicit-batch networks: the batch is part of the input shapes

        def get_batch(self, names: list[str]) -> list[int]:
            if self.index >= len(batches):
                return []  # no more batches
            batch = batches[self.index]
            self.index += 1
            for name in names:
                host[name][:] = np.frombuffer(np.ascontiguousarray(batch[name]).tobytes(), np.uint8)
                cuda.copy_to_device(device[name], host[name], stream)
            cuda.synchronize(stream)
            return [device[name] for name in names]

        # TensorRT's documentation: return None when there is no cache to read.
        def read_calibration_cache(self) -> bytes | None:
            return None

        def write_calibration_cache(self, cache: Any) -> None:
            log.debug("INT8 calibration cache of %d bytes not kept", len(bytes(cache)))

    return Calibrator()


# --------------------------------------------------------------------------- engine files


def sidecar_path(engine_path: str | os.PathLike[str]) -> Path:
    """``ENGINE.fusionlab.json`` next to ``ENGINE``.

    >>> sidecar_path("out/model.engine").as_posix()
    'out/model.engine.fusionlab.json'
    """
    return Path(str(engine_path) + SIDECAR_SUFFIX)


def save_engine(
    engine: Engine, path: str | os.PathLike[str], *, protect: tuple[str, ...] = ()
) -> Path:
    """Write the engine and its sidecar (sha256 and build facts), each whole or not at all."""
    target = write_atomic(path, engine.data, protect=protect)
    meta = {
        "schema": ENGINE_SCHEMA,
        "sha256": engine.sha256,
        "bytes": len(engine.data),
        "backend": engine.backend,
        "precision": engine.precision,
        "how": engine.how,
        "model": engine.model,
        "input_shapes": {k: list(v) for k, v in engine.input_shapes.items()},
        "build_s": engine.build_s,
    }
    write_atomic(sidecar_path(target), json.dumps(meta, indent=2) + "\n", protect=protect)
    return target


def provenance_warning(path: str | os.PathLike[str], data: bytes) -> str | None:
    """Why loading this engine file deserves a warning, or None when fusionlab built it.

    An engine can carry plugin code; fusionlab trusts the engines it wrote itself, which
    it recognizes by the sha256 in the sidecar ``ENGINE.fusionlab.json``.
    """
    side = sidecar_path(path)
    risk = "an engine can run code (plugins): load only engines you trust"
    if not side.is_file():
        return f"{path}: not built by fusionlab (no {side.name}); {risk}"
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{path}: {side.name} is unreadable; {risk}"
    if not isinstance(meta, dict) or meta.get("schema") != ENGINE_SCHEMA:
        return f"{path}: {side.name} is not a fusionlab engine record; {risk}"
    if meta.get("sha256") != hashlib.sha256(data).hexdigest():
        return (
            f"{path}: the engine changed since fusionlab built it "
            f"(sha256 differs from {side.name}); {risk}"
        )
    return None


def read_engine_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of an engine file, warning (logging) when fusionlab did not build it."""
    p = Path(path)
    if not p.is_file():
        raise FusionlabError(f"{p}: no such file")
    data = p.read_bytes()
    warning = provenance_warning(p, data)
    if warning:
        log.warning("%s", warning)
    return data


def is_onnx_file(path: str | os.PathLike[str]) -> bool:
    """True for an ONNX model, False for a serialized engine (by suffix, else by content)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".onnx":
        return True
    if suffix in (".engine", ".plan", ".trt"):
        return False
    if not p.is_file():
        raise FusionlabError(f"{p}: no such file")
    import onnx

    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception:  # protobuf raises several types for bytes that are no model
        return False
    return model.HasField("graph") and len(model.graph.node) > 0


# --------------------------------------------------------------------------- runtime


class LoadedEngine:
    """A deserialized engine with the runtime and logger that must outlive it."""

    def __init__(self, backend: Backend, data: bytes) -> None:
        if TYPE_CHECKING:
            import tensorrt as trt
        else:
            trt = backend.module
        self.backend = backend
        self.logger, self.sink = _make_logger(backend)
        self.runtime = trt.Runtime(self.logger)
        engine = self.runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise FusionlabError(
                f"{backend.label} could not load the engine: "
                f"{self.sink.last_error('see --verbose')}"
            )
        self.engine: tensorrt.ICudaEngine = engine

    def io_names(self) -> list[str]:
        return [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]

    def layer_information(self, context: tensorrt.IExecutionContext | None = None) -> str:
        """The engine inspector's JSON (as ``trtexec --exportLayerInfo``)."""
        if TYPE_CHECKING:
            import tensorrt as trt
        else:
            trt = self.backend.module
        inspector = self.engine.create_engine_inspector()
        if inspector is None:
            raise FusionlabError(f"{self.backend.label}: no engine inspector for this engine")
        if context is not None:
            inspector.execution_context = context
        return str(inspector.get_engine_information(trt.LayerInformationFormat.JSON))


@outside_gc
def layer_information(data: bytes, backend: Backend) -> str:
    """The inspector JSON of a serialized engine (deserializing needs a supported GPU)."""
    from fusionlab.backends.tensorrt_cuda import open_cuda

    cuda = open_cuda()
    try:
        return LoadedEngine(backend, data).layer_information()
    finally:
        cuda.close()


def engine_plan(layer_info_json: str, graph: Graph | None, source: str) -> Plan:
    """The actual plan read from inspector JSON (through the trtexec reader)."""
    from dataclasses import replace

    from fusionlab.formats.trtexec import read_layer_info

    plan = read_layer_info(layer_info_json, graph)
    return replace(plan, source=source)


def _numpy_dtype(trt_name: str) -> str:
    """TensorRT ``DataType`` name -> the numpy dtype name fusionlab's buffers use.

    >>> _numpy_dtype("HALF"), _numpy_dtype("FP8")
    ('float16', 'float8_e4m3fn')
    """
    known = by_trt(trt_name)
    return known.numpy if known is not None else trt_name.lower()


@dataclass(frozen=True)
class ProfileOptions:
    """How to time an engine, as trtexec's inference options."""

    iterations: int = 10
    """At least this many timed queries (and at least ``duration_s``)."""
    warmup_ms: float = 200.0
    duration_s: float = 3.0
    cuda_graph: bool = False
    pycuda: bool = False
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    batch: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class ProfileRun:
    """One profiling session: the profile, each timed query, and the engine's layers."""

    profile: Profile
    queries: tuple[InferenceTrace, ...]
    layer_info: str
    warmup_queries: int


class _Session:
    """An execution context with bound buffers, a stream, and an enqueue function."""

    def __init__(self, loaded: LoadedEngine, cuda: CudaRuntime, options: ProfileOptions) -> None:
        from fusionlab.backends.tensorrt_cuda import allocate, fill_random

        if TYPE_CHECKING:
            import tensorrt as trt
        else:
            trt = loaded.backend.module
        engine = loaded.engine
        self.cuda, self.loaded, self.options = cuda, loaded, options
        context = engine.create_execution_context()
        if context is None:
            raise FusionlabError(
                f"could not create an execution context: {loaded.sink.last_error('no details')}"
            )
        self.context: tensorrt.IExecutionContext = context
        names = loaded.io_names()
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        unknown = sorted(set(options.shapes) - set(inputs))
        if unknown:
            raise FusionlabError(
                f"--shapes: the engine has no input {unknown[0]!r}; inputs: {', '.join(inputs)}"
            )
        for name in inputs:
            dims = dims_of(engine.get_tensor_shape(name))
            if any(d < 0 for d in dims) and name not in options.shapes and options.batch is None:
                opt = engine.get_tensor_profile_shape(name, 0)[1]
                shape = dims_of(opt)
                log.info(
                    "input %s: dynamic, running at the profile's optimum %s", name, list(shape)
                )
            else:
                shape = resolve_shape(name, dims, options.shapes, options.batch)
            if not context.set_input_shape(name, shape):
                raise FusionlabError(
                    f"input {name!r}: the engine does not accept shape {list(shape)}"
                )
        rng = np.random.default_rng(options.seed)
        self.buffers: list[IOBuffer] = []
        for name in names:
            shape = dims_of(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise FusionlabError(
                    f"output {name!r} has a data-dependent shape; fusionlab cannot time it"
                )
            buffer = allocate(
                cuda, name, shape, _numpy_dtype(engine.get_tensor_dtype(name).name), name in inputs
            )
            if buffer.is_input:
                fill_random(buffer, rng)
            if not context.set_tensor_address(name, buffer.device):
                raise FusionlabError(f"could not bind tensor {name!r}")
            self.buffers.append(buffer)
        self.stream = cuda.create_stream()
        self.handle = cuda.stream_handle(self.stream)
        self.graph: Any = None
        self.keep: list[Any] = []
        self.enqueue()  # the first enqueue does shape-dependent setup, before any capture
        cuda.synchronize(self.stream)

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.handle):
            raise FusionlabError(
                f"TensorRT could not run the engine: {self.loaded.sink.last_error('no details')}"
            )

    def capture(self) -> None:
        """Capture one enqueue as a CUDA graph; later enqueues launch it."""
        self.cuda.begin_capture(self.stream)
        try:
            self._execute()
        finally:
            self.graph = self.cuda.end_capture(self.stream)

    def enqueue(self) -> None:
        if self.graph is not None:
            self.cuda.launch(self.graph, self.stream)
        else:
            self._execute()

    def h2d(self) -> None:
        for b in self.buffers:
            if b.is_input:
                self.cuda.copy_to_device(b.device, b.host, self.stream)

    def d2h(self) -> None:
        for b in self.buffers:
            if not b.is_input:
                self.cuda.copy_to_host(b.host, b.device, self.stream)


def _until(options: ProfileOptions) -> Callable[[int, float], bool]:
    """Whether to stop after ``count`` queries and ``elapsed_s`` seconds (trtexec's rule)."""
    return lambda count, elapsed_s: count >= options.iterations and elapsed_s >= options.duration_s


def _time_queries(session: _Session, options: ProfileOptions) -> tuple[list[InferenceTrace], int]:
    """Warm up for ``warmup_ms``, then time queries: (one trace per query, warm-up count).

    As trtexec's trace: GPU stamps from CUDA events on the stream, relative to an event
    recorded when timing starts; enqueue stamps from the host clock, relative to the moment
    that event completed. One query is in flight at a time.
    """
    from fusionlab.plan.profile import InferenceTrace

    cuda, stream = session.cuda, session.stream
    warmups = 0
    start = time.perf_counter()
    while (time.perf_counter() - start) * 1000.0 < options.warmup_ms:
        session.h2d()
        session.enqueue()
        session.d2h()
        cuda.synchronize(stream)
        warmups += 1
    ref, e0, e1, e2, e3 = (cuda.create_event() for _ in range(5))
    cuda.record(ref, stream)
    cuda.synchronize_event(ref)
    host0 = time.perf_counter()
    done = _until(options)
    queries: list[InferenceTrace] = []
    while not done(len(queries), time.perf_counter() - host0):
        cuda.record(e0, stream)
        session.h2d()
        cuda.record(e1, stream)
        enq0 = time.perf_counter()
        session.enqueue()
        enq1 = time.perf_counter()
        cuda.record(e2, stream)
        session.d2h()
        cuda.record(e3, stream)
        cuda.synchronize_event(e3)
        queries.append(
            InferenceTrace(
                start_enq_ms=(enq0 - host0) * 1000.0,
                end_enq_ms=(enq1 - host0) * 1000.0,
                start_h2d_ms=cuda.elapsed_ms(ref, e0),
                end_h2d_ms=cuda.elapsed_ms(ref, e1),
                start_compute_ms=cuda.elapsed_ms(ref, e1),
                end_compute_ms=cuda.elapsed_ms(ref, e2),
                start_d2h_ms=cuda.elapsed_ms(ref, e2),
                end_d2h_ms=cuda.elapsed_ms(ref, e3),
            )
        )
    return queries, warmups


def _make_profiler(backend: Backend, times: LayerTimes) -> tensorrt.IProfiler:
    if TYPE_CHECKING:
        import tensorrt as trt
    else:
        trt = backend.module

    class Profiler(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            times.add(layer_name, ms)

    return Profiler()


class LayerTimes:
    """Per-layer times that TensorRT's profiler reports, over several runs.

    :meth:`start_run` before each profiled run, :meth:`add` for each report; each layer's
    total, mean per run, median and share of the summed times, as ``--exportProfile``.

    >>> t = LayerTimes()
    >>> t.start_run(); t.add("Conv_0 + Relu_1", 3.0); t.add("Gemm_2", 1.0)
    >>> t.start_run(); t.add("Conv_0 + Relu_1", 5.0); t.add("Gemm_2", 1.0)
    >>> [(x.name, x.time_ms, x.average_ms, x.median_ms, x.percentage) for x in t.layers()]
    [('Conv_0 + Relu_1', 8.0, 4.0, 4.0, 80.0), ('Gemm_2', 2.0, 1.0, 1.0, 20.0)]
    """

    def __init__(self) -> None:
        self._times: dict[str, list[float]] = {}
        self.runs = 0

    def start_run(self) -> None:
        self.runs += 1

    def add(self, layer: str, ms: float) -> None:
        self._times.setdefault(layer, []).append(float(ms))

    def layers(self) -> tuple[LayerTime, ...]:
        from fusionlab.plan.profile import LayerTime

        if not self.runs:
            return ()
        total = sum(sum(v) for v in self._times.values())
        return tuple(
            LayerTime(
                name=name,
                time_ms=sum(values),
                average_ms=sum(values) / self.runs,
                median_ms=float(statistics.median(values)),
                percentage=100.0 * sum(values) / total if total > 0 else 0.0,
            )
            for name, values in self._times.items()
        )


def _profile_layers(session: _Session, options: ProfileOptions) -> LayerTimes:
    """A separate run with an ``IProfiler``: per-layer times over the same iterations/duration.

    As trtexec: the profiler is attached, ``enqueue_emits_profile`` is off, and
    ``report_to_profiler()`` collects each run's layer times (also after a CUDA graph
    launch, when the graph was captured with the profiler attached).
    """
    times = LayerTimes()
    profiler = _make_profiler(session.loaded.backend, times)
    context = session.context
    context.profiler = profiler
    session.keep.append(profiler)  # TensorRT holds no Python reference to it
    context.enqueue_emits_profile = False
    if options.cuda_graph:
        session.capture()
    done = _until(options)
    start = time.perf_counter()
    while not done(times.runs, time.perf_counter() - start):
        times.start_run()
        session.enqueue()
        session.cuda.synchronize(session.stream)
        if not context.report_to_profiler():
            raise FusionlabError("TensorRT did not report layer times (report_to_profiler failed)")
    return times


@outside_gc
def profile_engine(data: bytes, backend: Backend, options: ProfileOptions) -> ProfileRun:
    """Time a serialized engine on the GPU, as trtexec does; needs a GPU TensorRT supports."""
    from fusionlab.backends.tensorrt_cuda import open_cuda
    from fusionlab.plan.profile import Profile, summarize_times

    if options.iterations < 1 or options.warmup_ms < 0 or options.duration_s < 0:
        raise FusionlabError(
            "--iterations must be at least 1, --warmup and --duration not negative"
        )
    cuda = open_cuda(pycuda=options.pycuda)
    try:
        device = cuda.device_name()
        loaded = LoadedEngine(backend, data)
        session = _Session(loaded, cuda, options)
        if options.cuda_graph:
            session.capture()
        queries, warmups = _time_queries(session, options)
        session.graph = None
        times = _profile_layers(session, options)
        info = loaded.layer_information(session.context)
        method = {
            "tool": f"fusionlab {backend.label}",
            "buffers": cuda.kind,
            "iterations": str(len(queries)),
            "warmup_ms": f"{options.warmup_ms:g}",
            "duration_s": f"{options.duration_s:g}",
            "cuda_graph": "yes" if options.cuda_graph else "no",
            "layer_profile": f"separate run of {times.runs} queries",
        }
        profile = Profile(
            layers=times.layers(),
            runs=times.runs,
            summary=summarize_times(queries),
            method=method,
            device=device,
            source=f"{backend.label} live",
        )
        del session, loaded
        return ProfileRun(profile, tuple(queries), info, warmups)
    finally:
        cuda.close()


def mib(nbytes: int) -> str:
    """``12.3 MiB``.

    >>> mib(3 << 20)
    '3.0 MiB'
    """
    return f"{nbytes / 2**20:.1f} MiB" if nbytes >= 2**16 else f"{nbytes / 1024:.1f} KiB"


def seconds(s: float) -> str:
    """``1.23 s``.

    >>> seconds(0.5)
    '0.50 s'
    """
    return f"{s:.2f} s" if math.isfinite(s) else "?"

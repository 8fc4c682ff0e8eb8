"""The real engine's layers from TensorRT-RTX, on any machine: build, then read its log.

TensorRT-RTX builds engines on the CPU; running them (and so the engine inspector) needs a
supported GPU. Its builder prints the engine's layers anyway (:mod:`fusionlab.formats.rtx_log`),
so :func:`build_actual` gives the actual plan of a model without a GPU: it builds in a
subprocess (:mod:`fusionlab.backends.rtx_worker`: TensorRT-RTX 1.7 segfaults on some
graphs, and a crash must be an error naming the model, not the end of the caller),
captures every builder message, and reads the layers from them. Where the runtime works (a
supported GPU, found by trying to deserialize the engine), the engine inspector's JSON
is read instead, and ``source`` says which was used.

The contract other code relies on: ``build_actual(model, *, batch=None) -> RtxBuild`` with
``.plan`` (the actual :class:`~fusionlab.plan.Plan`), ``.layer_info`` (engine layer JSON,
TensorRT 11.x layout), ``.builder`` (``TensorRT-RTX 1.7.1.116``) and ``.source``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fusionlab.errors import FusionlabError, missing_extra
from fusionlab.io import dumps_json, parse_json, read_text

if TYPE_CHECKING:
    from fusionlab.backends.tensorrt import BuildOptions, Engine
    from fusionlab.formats.rtx_log import BuildLog
    from fusionlab.ir.graph import Graph
    from fusionlab.plan import Plan

log = logging.getLogger(__name__)

INSPECTOR_SUFFIX = "engine inspector"
"""``Plan.source`` of a plan read through the engine inspector: ``"<builder> engine inspector"``."""
DEFAULT_TIMEOUT_S = 1800.0
_MODULES = {"rtx": ("tensorrt_rtx", "tensorrt_rtx_bindings"), "tensorrt": ("tensorrt",)}


@dataclass(frozen=True)
class RtxBuild:
    """One build's actual layers and where they were read from."""

    plan: Plan
    """The actual plan (one layer per engine kernel; ``signal``/``wait`` as ``Sync`` layers)."""
    layer_info: dict[str, Any] = field(repr=False)
    """Engine layer information JSON (TensorRT 11.x layout) that reads back to :attr:`plan`."""
    builder: str
    """``TensorRT-RTX 1.7.1.116`` (or ``TensorRT 10.13.0.35`` for ``backend="tensorrt"``)."""
    source: str
    """``"<builder> build log"`` or ``"<builder> engine inspector"`` (:attr:`plan`'s source)."""
    model: str
    build_s: float | None = None
    precision: str = "fp32"
    log: BuildLog | None = field(default=None, repr=False, compare=False)
    """Everything the build log said (passes, memory, I/O tensors)."""
    flavor: str = "rtx"
    """``rtx`` (TensorRT-RTX) or ``tensorrt``."""
    version: str = ""
    """The builder's version, e.g. ``1.7.1.116``."""
    engine: Engine | None = field(default=None, repr=False, compare=False)
    """The serialized engine, when asked for (``keep_engine``)."""

    def layer_info_json(self) -> str:
        """:attr:`layer_info` as strict JSON text."""
        return dumps_json(self.layer_info, indent=1)


def _require(backend: str) -> None:
    """The one-line missing-extra error before any process is started."""
    names = _MODULES["rtx"] + _MODULES["tensorrt"] if backend == "auto" else _MODULES.get(backend)
    if names is None:
        raise FusionlabError(f"unknown backend {backend!r}; expected auto, tensorrt or rtx")
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                return
        except (ImportError, ValueError):
            continue
    extra = "rtx" if backend in ("rtx", "auto") else "tensorrt"
    raise missing_extra(names[0], extra, "building an engine to read its layers")


def _messages(path: Path) -> list[tuple[str, str]]:
    """The worker's messages; a line cut short by a crash is dropped."""
    out: list[tuple[str, str]] = []
    if not path.exists():
        return out
    for line in read_text(path).splitlines():
        try:
            severity, text = json.loads(line)
        except (ValueError, TypeError):
            continue
        if isinstance(severity, str) and isinstance(text, str):
            out.append((severity, text))
    return out


def _crash(rc: int) -> str:
    try:
        return f"crashed ({signal.Signals(-rc).name})"
    except ValueError:
        return f"crashed (signal {-rc})"


def build_actual(
    model: str | os.PathLike[str],
    *,
    batch: int | None = None,
    options: BuildOptions | None = None,
    backend: str = "rtx",
    graph: Graph | None = None,
    progress: bool = False,
    inspect: bool = True,
    keep_engine: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> RtxBuild:
    """Build ``model`` and read the real engine's layers (see the module docstring).

    ``batch`` fixes a dynamic batch (as ``--batch``); ``options`` gives the other build
    options (precision, shapes, workspace, optimization level; its callbacks are ignored);
    ``backend``: ``rtx`` (default), ``tensorrt`` or ``auto`` (tensorrt if installed, else
    rtx); ``graph``: the loaded model, else it is loaded with ``batch``; ``progress`` draws
    the builder's progress bar on stderr; ``inspect`` tries the engine inspector first;
    ``keep_engine`` returns the serialized engine too (:attr:`RtxBuild.engine`).
    TensorRT (not RTX) needs the inspector, so a GPU. Raises :class:`FusionlabError` naming
    the model for a bad model, a failed or crashed build, or a missing extra.
    """
    from fusionlab.backends.tensorrt import BuildOptions

    path = Path(model)
    _require(backend)
    if graph is None:
        from fusionlab.ir.graph import load

        graph = load(path, batch=batch)
    opts = options or BuildOptions()
    if batch is not None:
        opts = replace(opts, batch=batch)
    with tempfile.TemporaryDirectory(prefix="fusionlab-build-") as tmp:
        folder = Path(tmp)
        request = {
            "model": str(path),  # the worker runs in this folder: its errors name the model as given
            "backend": backend,
            "precision": opts.precision,
            "shapes": {k: list(v) for k, v in opts.shapes.items()},
            "batch": opts.batch,
            "workspace_mib": opts.workspace_mib,
            "opt_level": opts.opt_level,
            "timing_cache": opts.timing_cache,
            "calib_data": opts.calib_data,
            "calib_batches": opts.calib_batches,
            "progress": progress,
            "inspect": inspect,
            "messages": str(folder / "messages.jsonl"),
            "result": str(folder / "result.json"),
            "inspector": str(folder / "inspector.json"),
            "engine": str(folder / "engine.bin") if keep_engine else None,
        }
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        rc, stderr = _run_worker(folder, progress, timeout_s, path)
        result_file = folder / "result.json"
        result = parse_json(read_text(result_file), str(result_file)) if result_file.exists() else {}
        messages = _messages(folder / "messages.jsonl")
        inspector = read_text(result["inspector"]) if result.get("inspector") else None
        engine_file = folder / "engine.bin"
        data = engine_file.read_bytes() if keep_engine and engine_file.exists() else None
    builder = str(result.get("builder") or f"TensorRT-{backend}")
    if not result.get("built"):
        if result.get("error"):
            raise FusionlabError(str(result["error"]))
        last = messages[-1][1].splitlines()[0][:100] if messages and messages[-1][1] else "none"
        how = _crash(rc) if rc < 0 else f"failed (exit code {rc}{': ' + stderr if stderr else ''})"
        raise FusionlabError(f"{path}: {builder} {how} while building the engine (last message: {last!r})")
    if rc != 0:
        log.warning("%s: the build worker ended with code %s after the build; its log is used", path, rc)
    built = _read(path, graph, builder, result, messages, inspector)
    if data is None:
        return built
    from fusionlab.backends.tensorrt import Engine

    shapes = result.get("input_shapes")
    engine = Engine(
        data=data, backend=builder, precision=built.precision, model=str(path),
        input_shapes={str(k): tuple(v) for k, v in shapes.items()} if isinstance(shapes, dict) else {},
        build_s=built.build_s, how=str(result.get("how", "")),
    )
    return replace(built, engine=engine)


def _run_worker(folder: Path, progress: bool, timeout_s: float, model: Path) -> tuple[int, str]:
    """Run the worker; (exit code, the last line it wrote on stderr when not drawing progress)."""
    import fusionlab

    env = dict(os.environ)
    root = str(Path(fusionlab.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    err_path = folder / "stderr.txt"
    with open(err_path, "wb") as err:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "fusionlab.backends.rtx_worker", str(folder / "request.json")],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=None if progress else err,
                env=env,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise FusionlabError(f"{model}: the engine build took longer than {timeout_s:.0f} s") from None
    lines = err_path.read_bytes().decode("utf-8", "replace").strip().splitlines()
    return proc.returncode, lines[-1][:200] if lines else ""


def _read(
    path: Path,
    graph: Graph,
    builder: str,
    result: dict[str, Any],
    messages: list[tuple[str, str]],
    inspector: str | None,
) -> RtxBuild:
    from fusionlab.formats import rtx_log
    from fusionlab.formats.layer_info import EXTRAS_KEY, KERNEL_LAYERS_KEY, plan_extras, read_layer_info
    from fusionlab.fusion.targets import target_for_backend

    build_log = rtx_log.parse_messages(messages)
    build_s = result.get("build_s")
    common: dict[str, Any] = {
        "builder": builder, "model": str(path), "log": build_log,
        "build_s": float(build_s) if isinstance(build_s, (int, float)) else None,
        "precision": str(result.get("precision", "fp32")),
        "flavor": str(result.get("flavor", "rtx")), "version": str(result.get("version", "")),
    }
    # the plan names the target that models its builder, and so does the layer file written
    # from it: `diff --layer-info F` then defaults to that target, as `diff --build` does
    modelled = target_for_backend(common["flavor"], common["version"])
    if inspector is not None:
        source = f"{builder} {INSPECTOR_SUFFIX}"
        flavor_rtx = result.get("flavor") == "rtx"
        plan = read_layer_info(inspector, graph, group_myelin=not flavor_rtx)
        plan = replace(plan, source=source, target=modelled)
        doc = parse_json(inspector, f"{builder} engine inspector")
        extras = plan_extras(plan, nodes=True)
        extras[KERNEL_LAYERS_KEY] = flavor_rtx
        extras["builder"] = builder
        doc[EXTRAS_KEY] = extras
        return RtxBuild(plan=plan, layer_info=doc, source=source, **common)
    if result.get("flavor") != "rtx":
        raise FusionlabError(
            f"{path}: reading the layers of a {builder} engine needs the engine inspector, and so "
            f"a GPU that TensorRT supports ({result.get('inspector_error', 'not tried')}); "
            "TensorRT-RTX (--backend rtx) lists them without one"
        )
    plan = replace(rtx_log.to_plan(build_log, graph, builder=builder, what=str(path)), target=modelled)
    doc = rtx_log.layer_info(build_log, graph, builder=builder, what=str(path), plan=plan)
    return RtxBuild(plan=plan, layer_info=doc, source=plan.source, **common)

"""Where the "actual" plan comes from: trtexec/inspector JSON files, or an engine file."""

from __future__ import annotations

from pathlib import Path

from fusionlab.errors import FusionlabError
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan


def actual_plan(
    graph: Graph,
    *,
    layer_info: str | None = None,
    profile: str | None = None,
    engine: str | None = None,
) -> Plan:
    """The engine's real plan, with measured times joined by layer name when a profile is given."""
    from fusionlab.formats.rtx_log import read_engine_layers
    from fusionlab.formats.trtexec import join_profile, read_profile

    if profile and not (layer_info or engine):
        raise FusionlabError("--profile needs --layer-info or --engine")
    if engine is not None:
        plan = _engine_plan(Path(engine), graph)
    elif layer_info is not None:
        plan = read_engine_layers(layer_info, graph)  # or a saved TensorRT-RTX build log
    else:
        raise FusionlabError("give --layer-info F or --engine E")
    if profile:
        plan = join_profile(plan, read_profile(profile))
    return plan


def _engine_plan(path: Path, graph: Graph) -> Plan:
    """Deserialize an engine with TensorRT and read its layers through the engine inspector."""
    from fusionlab.backends import tensorrt as trt_backend

    backend = trt_backend.load_backend("auto", what="reading an engine file")
    data = trt_backend.read_engine_file(path)  # warns when fusionlab did not build it
    info = trt_backend.layer_information(data, backend)
    return trt_backend.engine_plan(info, graph, source=f"{backend.label} engine")

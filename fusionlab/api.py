"""fusionlab's Python API: the functions the command line is built on.

Load a model, predict TensorRT's layers, read what an engine really did, compare the two
and draw either::

    import fusionlab

    graph = fusionlab.load("resnet18.onnx", batch=32)
    prediction = fusionlab.predict(graph, "trt8", precision="fp16")
    engine = fusionlab.read_engine("engine.graph.json", graph=graph, profile="engine.profile.json")
    d = fusionlab.diff(prediction, engine)
    print(d.metrics.exact_match_rate)
    fusionlab.draw(d, "diff.svg")

Every function raises :class:`~fusionlab.errors.FusionlabError` for bad input, with one
line that names the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fusionlab.compare.diff import Diff, compare
from fusionlab.fusion.predictor import Prediction
from fusionlab.fusion.targets import DEFAULT, Target
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

__all__ = ["diff", "draw", "load", "predict", "read_engine", "read_plan", "to_dot"]


def load(model: str | os.PathLike[str] | Any, *, batch: int | None = None) -> Graph:
    """An ONNX model (a path or an ``onnx.ModelProto``) as fusionlab's graph; ``batch`` fixes
    a symbolic batch dimension before shape inference."""
    from fusionlab.ir.graph import load as load_graph

    return load_graph(model, batch)


def predict(
    graph: Graph,
    target: str | Target = DEFAULT,
    *,
    precision: str = "fp32",
    device: str | None = None,
    efficiency: str | os.PathLike[str] | None = None,
    tf32: bool = True,
) -> Prediction:
    """Predict the engine ``target`` builds from ``graph`` at ``precision``.

    With ``device`` (e.g. ``"a100-80gb-pcie"``; see ``fusionlab calibrate --help`` for the
    table), every layer of ``prediction.plan`` carries a predicted ``time_ms``;
    ``efficiency`` is a file ``fusionlab calibrate -o`` wrote.
    """
    from dataclasses import replace

    from fusionlab.fusion.predictor import predict as run_prediction

    prediction = run_prediction(graph, target, precision)
    if device is None:
        if efficiency is not None:
            from fusionlab.errors import FusionlabError

            raise FusionlabError("an efficiency file needs a device to price layers on")
        return prediction
    from fusionlab.cost import model as cost

    factors = cost.read_efficiency(efficiency) if efficiency is not None else None
    timed = cost.estimate(graph, prediction.plan, device, precision, factors, tf32=tf32)
    return replace(prediction, timed=timed)


def read_engine(
    layer_info: str | os.PathLike[str],
    *,
    graph: Graph | None = None,
    profile: str | os.PathLike[str] | None = None,
) -> Plan:
    """The engine's real plan from its layer information (``trtexec --exportLayerInfo``,
    the engine inspector, or a TensorRT-RTX build log), with measured times joined by
    layer name when a ``profile`` (``--exportProfile``) is given. With ``graph``, layer
    names resolve to the model's nodes and every node no layer computes is eliminated."""
    from fusionlab.formats.rtx_log import read_engine_layers
    from fusionlab.formats.trtexec import join_profile, read_profile

    plan = read_engine_layers(Path(layer_info), graph)
    return join_profile(plan, read_profile(Path(profile))) if profile is not None else plan


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """A plan fusionlab wrote (``predict --json``, ``import -o``): ``fusionlab.plan/2`` or /1."""
    from fusionlab.errors import FusionlabError
    from fusionlab.io import read_text
    from fusionlab.plan.serialize import plan_from_json

    where = Path(path)
    text = read_text(where)
    try:
        return plan_from_json(text)
    except FusionlabError as exc:
        raise FusionlabError(f"{where}: {exc}") from None


def diff(predicted: Prediction | Plan, actual: Plan) -> Diff:
    """Compare a prediction (or any plan) with the engine's plan of the same model.

    Given a :class:`~fusionlab.fusion.predictor.Prediction`, findings name the rule that
    should have fused a group and the condition that turned it down.
    """
    if isinstance(predicted, Prediction):
        return compare(predicted.plan, actual, rejections=predicted.rejections,
                       target_passes=predicted.target.passes, graph=predicted.graph)
    return compare(predicted, actual)


def to_dot(
    subject: Graph | Plan | Prediction | Diff,
    *,
    graph: Graph | None = None,
    stage: str | None = None,
    **options: Any,
) -> str:
    """DOT text of a graph, a plan, a prediction (its final plan, or ``stage``) or a diff.

    ``graph`` gives a plan's ops and shapes (a prediction and a diff of a prediction know
    theirs); ``options`` are those of :func:`fusionlab.render.dot.plan_to_dot` (``focus``,
    ``radius``, ``match``, ``members``, ``title``, ``legend``, ``rankdir``).
    """
    from fusionlab.render import dot

    if isinstance(subject, Graph):
        return dot.graph_to_dot(subject, **options)
    if isinstance(subject, Prediction):
        names = [s.name for s in subject.stages]
        index = len(names) - 1 if stage is None else _stage_index(names, stage)
        if index == 0:
            return dot.graph_to_dot(subject.graph, **options)
        title, subtitle = dot.stage_title(subject, index, final=stage is None)
        plan = subject.plan if stage is None else subject.stages[index].plan
        return dot.plan_to_dot(plan, subject.graph, **{"title": title, "subtitle": subtitle, **options})
    if isinstance(subject, Diff):
        return dot.diff_to_dot(graph or subject.graph, subject, **options)
    return dot.plan_to_dot(subject, graph, **options)


def _stage_index(names: list[str], stage: str) -> int:
    if stage not in names:
        from fusionlab.errors import FusionlabError

        raise FusionlabError(f"unknown stage {stage!r} (stages: {', '.join(names)})")
    return names.index(stage)


def draw(
    subject: Graph | Plan | Prediction | Diff,
    path: str | os.PathLike[str],
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
    **options: Any,
) -> Path:
    """Draw ``subject`` (see :func:`to_dot`) into ``path``: ``.svg``, ``.png``, ``.pdf``
    (these need Graphviz's ``dot``) or ``.dot``. Written whole or not at all; ``protect``
    lists files the output must not overwrite (the inputs)."""
    from fusionlab.render.graphviz import render_file

    return render_file(to_dot(subject, **options), path, protect=protect)

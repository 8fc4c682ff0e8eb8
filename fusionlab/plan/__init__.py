"""Engine plans: predicted or actual, as ordered layers over ONNX nodes.

A :class:`Plan` groups ONNX node names into :class:`Layer` values and names the nodes
that disappear (``eliminated``). Layers the engine adds itself (reformats, copies) have
no nodes. A plan serializes to fusionlab's versioned JSON (schema ``fusionlab.plan/1``).

>>> conv = Layer("Conv_0 + Relu_1", "Convolution", ("Conv_0", "Relu_1"), "fuse_conv_activation")
>>> p = Plan(layers=(conv,),
...          eliminated={"Flatten_2": "absorbed into the following fully connected layer"})
>>> p.layer_of("Relu_1").name
'Conv_0 + Relu_1'
>>> plan_from_json(plan_to_json(p)) == p
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from fusionlab.errors import FusionlabError

SCHEMA = "fusionlab.plan/1"
PLAN_KEYS = ("schema", "source", "target", "precision", "batch", "model", "layers", "eliminated")
LAYER_KEYS = ("name", "kind", "nodes", "absorbed", "rule", "inputs", "outputs", "time_ms")


@dataclass(frozen=True)
class Layer:
    """One engine layer."""

    name: str
    """TensorRT-style name: node names joined by ``" + "``, merged siblings by ``" || "``."""
    kind: str
    """What the layer does (``Convolution``, ``Pooling``, ``PointWise``, ``Copy`` ...), or
    TensorRT's ``LayerType`` for an actual engine layer."""
    nodes: tuple[str, ...] = ()
    """Every ONNX node the layer computes, in order (folded nodes included)."""
    rule: str = ""
    """The rule (pass name) that formed it; ``"unfused"`` for a layer of one node."""
    absorbed: tuple[str, ...] = ()
    """Nodes folded away into it (e.g. BatchNormalization folded into a convolution)."""
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    time_ms: float | None = None

    @property
    def inserted(self) -> bool:
        """True for a layer the engine added that computes no ONNX node (copy, reformat)."""
        return not self.nodes


@dataclass(frozen=True)
class Plan:
    """An ordered list of layers plus the nodes that were removed, with why."""

    layers: tuple[Layer, ...]
    eliminated: Mapping[str, str] = field(default_factory=dict)
    source: str = "predicted"
    target: str | None = None
    precision: str = "fp32"
    batch: int | None = None
    model: str | None = None

    def layer_of(self, node: str) -> Layer | None:
        """The layer that computes ``node``, or None (eliminated or unknown)."""
        for layer in self.layers:
            if node in layer.nodes:
                return layer
        return None

    def node_to_layer(self) -> dict[str, int]:
        """ONNX node name -> index of the layer that computes it."""
        return {n: i for i, layer in enumerate(self.layers) for n in layer.nodes}

    @property
    def covered(self) -> frozenset[str]:
        """All ONNX nodes computed by some layer."""
        return frozenset(n for layer in self.layers for n in layer.nodes)

    def with_layers(self, layers: Iterable[Layer]) -> Plan:
        """A copy with other layers (same eliminated nodes and metadata)."""
        return replace(self, layers=tuple(layers))


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    """A layer as plain JSON-ready data, keys in ``LAYER_KEYS`` order."""
    return {
        "name": layer.name,
        "kind": layer.kind,
        "nodes": list(layer.nodes),
        "absorbed": list(layer.absorbed),
        "rule": layer.rule,
        "inputs": list(layer.inputs),
        "outputs": list(layer.outputs),
        "time_ms": layer.time_ms,
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """A plan as plain JSON-ready data with exactly the keys of ``PLAN_KEYS``."""
    return {
        "schema": SCHEMA,
        "source": plan.source,
        "target": plan.target,
        "precision": plan.precision,
        "batch": plan.batch,
        "model": plan.model,
        "layers": [layer_to_dict(layer) for layer in plan.layers],
        "eliminated": dict(plan.eliminated),
    }


def plan_to_json(plan: Plan) -> str:
    """Canonical JSON text of a plan (stable key order, two-space indent, final newline)."""
    return json.dumps(plan_to_dict(plan), indent=2, ensure_ascii=False) + "\n"


def _strs(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FusionlabError(f"plan JSON: {what} must be a list of strings")
    return tuple(value)


def _str(value: Any, what: str, default: str | None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str):
        raise FusionlabError(f"plan JSON: {what} must be a string")
    return value


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FusionlabError(f"plan JSON: {what} must be a number")
    return float(value)


def plan_from_dict(data: Any) -> Plan:
    """Read a ``fusionlab.plan/1`` document; raises FusionlabError when it is not one.

    >>> plan_from_dict({"schema": "fusionlab.plan/9", "layers": [], "eliminated": {}})
    Traceback (most recent call last):
    ...
    fusionlab.errors.FusionlabError: plan JSON: expected schema 'fusionlab.plan/1', \
got 'fusionlab.plan/9'
    """
    if not isinstance(data, dict):
        raise FusionlabError(f"plan JSON: expected an object with schema {SCHEMA!r}")
    if data.get("schema") != SCHEMA:
        raise FusionlabError(
            f"plan JSON: expected schema {SCHEMA!r}, got {data.get('schema')!r}"
        )
    if not isinstance(data.get("layers"), list) or not isinstance(data.get("eliminated"), dict):
        raise FusionlabError("plan JSON: 'layers' must be a list and 'eliminated' an object")
    layers = []
    for i, raw in enumerate(data["layers"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise FusionlabError(f"plan JSON: layer {i} has no name")
        layers.append(
            Layer(
                name=raw["name"],
                kind=_str(raw.get("kind"), f"layer {i} kind", "") or "",
                nodes=_strs(raw.get("nodes", []), f"layer {i} nodes"),
                rule=_str(raw.get("rule"), f"layer {i} rule", "") or "",
                absorbed=_strs(raw.get("absorbed", []), f"layer {i} absorbed"),
                inputs=_strs(raw.get("inputs", []), f"layer {i} inputs"),
                outputs=_strs(raw.get("outputs", []), f"layer {i} outputs"),
                time_ms=_number(raw.get("time_ms"), f"layer {i} time_ms"),
            )
        )
    eliminated = data["eliminated"]
    if not all(isinstance(v, str) for v in eliminated.values()):
        raise FusionlabError("plan JSON: 'eliminated' must map node names to reasons (strings)")
    batch = data.get("batch")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)):
        raise FusionlabError("plan JSON: batch must be a whole number or null")
    return Plan(
        layers=tuple(layers),
        eliminated=dict(eliminated),
        source=_str(data.get("source"), "source", "") or "",
        target=_str(data.get("target"), "target", None),
        precision=_str(data.get("precision"), "precision", "fp32") or "fp32",
        batch=batch,
        model=_str(data.get("model"), "model", None),
    )


def plan_from_json(text: str) -> Plan:
    """Parse :func:`plan_to_json` output."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FusionlabError(
            f"plan JSON: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    return plan_from_dict(data)

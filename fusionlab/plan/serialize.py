"""fusionlab's plan JSON: written as ``fusionlab.plan/2``, read as version 2 or 1.

Version 2 keeps the structure in fields: each layer's ``kind`` (fusionlab's vocabulary),
``engine_type`` (TensorRT's ``LayerType``, actual layers), ``branches`` (a horizontal
merge's former layers) and each eliminated node's ``how`` beside its ``reason``.
Version 1 files (fusionlab 0.1) had a reason string per eliminated node and TensorRT's
layer type as ``kind``; they are read with the layers they had (see :func:`_v1_how`).

>>> from fusionlab.plan import Elimination, How, Kind, Layer, Plan
>>> p = Plan((Layer("a || b", Kind.CONVOLUTION, ("a", "b"), "merge_siblings",
...                 branches=(("a",), ("b",))),),
...          eliminated={"c": Elimination(How.CONCAT, "producers write into its output")})
>>> plan_from_json(plan_to_json(p)) == p
True
"""

from __future__ import annotations

from typing import Any

from fusionlab.errors import FusionlabError
from fusionlab.io import dumps_json, parse_json
from fusionlab.plan import BRANCH_SEP, Elimination, How, Layer, Plan
from fusionlab.plan.kinds import Kind, kind_named, kind_of_engine_type

SCHEMA = "fusionlab.plan/2"
READABLE = ("fusionlab.plan/2", "fusionlab.plan/1")
PLAN_KEYS = ("schema", "source", "target", "precision", "batch", "model", "layers", "eliminated")
LAYER_KEYS = (
    "name", "kind", "engine_type", "nodes", "branches", "absorbed", "rule", "inputs", "outputs",
    "time_ms",
)
OPTIONAL_LAYER_KEYS = ("stream", "shared")
"""Written after ``LAYER_KEYS`` only when known or not empty: an actual layer's engine
``stream``; ``shared``, the nodes another layer owns and this one computes too."""


def layer_to_dict(layer: Layer) -> dict[str, Any]:
    """A layer as plain JSON-ready data, keys in ``LAYER_KEYS`` order (then
    ``OPTIONAL_LAYER_KEYS`` that are known)."""
    out: dict[str, Any] = {
        "name": layer.name,
        "kind": layer.kind.value,
        "engine_type": layer.engine_type,
        "nodes": list(layer.nodes),
        "branches": [list(b) for b in layer.branches],
        "absorbed": list(layer.absorbed),
        "rule": layer.rule,
        "inputs": list(layer.inputs),
        "outputs": list(layer.outputs),
        "time_ms": layer.time_ms,
    }
    if layer.stream is not None:
        out["stream"] = layer.stream
    if layer.shared:
        out["shared"] = list(layer.shared)
    return out


def eliminations_to_dict(plan: Plan) -> dict[str, Any]:
    """A plan's eliminated nodes as JSON-ready data (``{node: {"how", "reason"}}``, and
    ``same_as`` for a duplicate)."""
    return {
        node: {"how": e.how.value, "reason": e.reason, **({"same_as": e.same_as} if e.same_as else {})}
        for node, e in plan.eliminated.items()
    }


def schema_version(schema: Any) -> int | None:
    """2 or 1 for a plan schema fusionlab reads, None for anything else."""
    return {SCHEMA: 2, READABLE[1]: 1}.get(schema) if isinstance(schema, str) else None


def plan_header(plan: Plan) -> dict[str, Any]:
    """The schema and a plan's own fields (not its layers): the head of every plan document
    fusionlab writes (plan JSON, the ``"fusionlab"`` object of a layer file)."""
    return {
        "schema": SCHEMA,
        "source": plan.source,
        "target": plan.target,
        "precision": plan.precision,
        "batch": plan.batch,
        "model": plan.model,
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """A plan as plain JSON-ready data with exactly the keys of ``PLAN_KEYS``."""
    return {
        **plan_header(plan),
        "layers": [layer_to_dict(layer) for layer in plan.layers],
        "eliminated": eliminations_to_dict(plan),
    }


def plan_to_json(plan: Plan) -> str:
    """Canonical JSON text of a plan (stable key order, two-space indent, final newline)."""
    return dumps_json(plan_to_dict(plan))


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


_V1_HOW: tuple[tuple[str, How], ...] = (
    ("concat elimination", How.CONCAT),
    ("constant-folded", How.CONSTANT),
    ("constant folded", How.CONSTANT),
    ("absorbed into", How.ABSORBED),
    ("named by no engine layer (a layout change", How.ABSORBED),
    ("named by no engine layer", How.UNNAMED),
)


def _v1_how(node: str, reason: str) -> How:
    """The kind of a version-1 elimination, from the reason text fusionlab 0.1 wrote.

    Version 1 kept only prose; its writer used a fixed set of phrases (the passes' and the
    engine reader's), so reading it back is a lookup of those phrases, done here once, for
    that old format only. Anything else: an identity at inference (``noop``).
    """
    for prefix, how in _V1_HOW:
        if reason.startswith(prefix):
            return how
    return How.NOOP if "identity" in reason else How.UNNAMED


def _kind(raw: Any, i: int, version: int, actual: bool) -> tuple[Kind, str | None]:
    """A layer's kind and engine type (version 1 wrote an engine layer's TensorRT type as
    its ``kind``: for a plan that is not a prediction, that text is the engine type)."""
    text = _str(raw.get("kind"), f"layer {i} kind", "") or ""
    if version == 1 and actual:
        return kind_of_engine_type(text or None), text or None
    engine_type = _str(raw.get("engine_type"), f"layer {i} engine_type", None)
    kind = kind_named(text) if text else Kind.UNKNOWN
    if kind is not None:
        return kind, engine_type
    if version == 2:
        raise FusionlabError(f"plan JSON: layer {i} has an unknown kind {text!r}")
    return kind_of_engine_type(text), text


def _v1_branches(name: str, nodes: tuple[str, ...], rule: str) -> tuple[tuple[str, ...], ...]:
    """A version-1 merged layer's branches, from its TensorRT-style name (the only place a
    version-1 file kept them): each node goes to the first part of the name that holds it."""
    parts = name.split(BRANCH_SEP)
    if rule != "merge_siblings" or len(parts) < 2:
        return ()
    groups: list[list[str]] = [[] for _ in parts]
    for n in nodes:
        where = next((k for k, part in enumerate(parts) if n in part), 0)
        groups[where].append(n)
    return tuple(tuple(g) for g in groups if g)


def _branches(raw: Any, i: int) -> tuple[tuple[str, ...], ...]:
    value = raw.get("branches", [])
    if not isinstance(value, list):
        raise FusionlabError(f"plan JSON: layer {i} branches must be a list of lists of strings")
    return tuple(_strs(b, f"layer {i} branches") for b in value)


def eliminations_from(data: Any, version: int) -> dict[str, Elimination]:
    """The ``eliminated`` object of a plan document of ``version`` 1 or 2."""
    out: dict[str, Elimination] = {}
    for node, value in data.items():
        if version == 1:
            if not isinstance(value, str):
                raise FusionlabError("plan JSON: 'eliminated' must map node names to reasons (strings)")
            out[node] = Elimination(_v1_how(node, value), value)
            continue
        if not isinstance(value, dict) or not isinstance(value.get("how"), str):
            raise FusionlabError(f"plan JSON: eliminated node {node!r} needs a 'how'")
        try:
            how = How(value["how"])
        except ValueError:
            known = ", ".join(h.value for h in How)
            raise FusionlabError(
                f"plan JSON: eliminated node {node!r}: unknown how {value['how']!r} (known: {known})"
            ) from None
        same_as = value.get("same_as")
        if same_as is not None and not isinstance(same_as, str):
            raise FusionlabError(f"plan JSON: eliminated node {node!r}: 'same_as' must be a node name")
        out[node] = Elimination(
            how, _str(value.get("reason"), f"reason of {node!r}", "") or "", same_as or None
        )
    return out


def _stream(value: Any, i: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FusionlabError(f"plan JSON: layer {i} stream must be a whole number or null")
    return value


def plan_from_dict(data: Any) -> Plan:
    """Read a ``fusionlab.plan/2`` (or ``/1``) document; raises FusionlabError otherwise.

    >>> plan_from_dict({"schema": "fusionlab.plan/9", "layers": [], "eliminated": {}})
    Traceback (most recent call last):
    ...
    fusionlab.errors.FusionlabError: plan JSON: expected schema 'fusionlab.plan/2' \
(or fusionlab.plan/1), got 'fusionlab.plan/9'
    """
    if not isinstance(data, dict):
        raise FusionlabError(f"plan JSON: expected an object with schema {SCHEMA!r}")
    schema = data.get("schema")
    version = schema_version(schema)
    if version is None:
        raise FusionlabError(
            f"plan JSON: expected schema {SCHEMA!r} (or {READABLE[1]}), got {schema!r}"
        )
    if not isinstance(data.get("layers"), list) or not isinstance(data.get("eliminated"), dict):
        raise FusionlabError("plan JSON: 'layers' must be a list and 'eliminated' an object")
    actual = data.get("source", "predicted") != "predicted"
    layers = []
    for i, raw in enumerate(data["layers"]):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise FusionlabError(f"plan JSON: layer {i} has no name")
        kind, engine_type = _kind(raw, i, version, actual)
        nodes = _strs(raw.get("nodes", []), f"layer {i} nodes")
        rule = _str(raw.get("rule"), f"layer {i} rule", "") or ""
        layers.append(
            Layer(
                name=raw["name"],
                kind=kind,
                nodes=nodes,
                rule=rule,
                absorbed=_strs(raw.get("absorbed", []), f"layer {i} absorbed"),
                inputs=_strs(raw.get("inputs", []), f"layer {i} inputs"),
                outputs=_strs(raw.get("outputs", []), f"layer {i} outputs"),
                time_ms=_number(raw.get("time_ms"), f"layer {i} time_ms"),
                branches=_branches(raw, i) if version == 2 else _v1_branches(raw["name"], nodes, rule),
                engine_type=engine_type,
                shared=_strs(raw.get("shared", []), f"layer {i} shared"),
                stream=_stream(raw.get("stream"), i),
            )
        )
    batch = data.get("batch")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int)):
        raise FusionlabError("plan JSON: batch must be a whole number or null")
    return Plan(
        layers=tuple(layers),
        eliminated=eliminations_from(data["eliminated"], version),
        source=_str(data.get("source"), "source", "") or "",
        target=_str(data.get("target"), "target", None),
        precision=_str(data.get("precision"), "precision", "fp32") or "fp32",
        batch=batch,
        model=_str(data.get("model"), "model", None),
    )


def plan_from_json(text: str) -> Plan:
    """Parse :func:`plan_to_json` output (or a version-1 file)."""
    return plan_from_dict(parse_json(text, "plan JSON"))

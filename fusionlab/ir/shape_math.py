"""Shape arithmetic with static shapes: the values of ``Shape -> Gather -> Div -> ...`` chains,
and the shapes they make known.

Exporters write shape-dependent code as nodes: PyTorch's legacy exporter turns
``x.chunk(2, dim=1)`` into ``Shape -> Gather(1) -> Add -> Div(2) -> Mul`` computing the bounds
of two ``Slice`` nodes, a channel shuffle into ``Shape -> Gather -> Div -> Unsqueeze ->
Concat`` computing its ``Reshape`` shapes, attention into the same for its head split.
ONNX's shape inference propagates values through a few of these ops (``data_prop``) but
not through ``Div``, ``Mod``, ``Where`` ..., so every shape after such a chain stays unknown
(and with it every FLOP count). With the input shapes fixed the chain computes constants,
as TensorRT's builder finds when it folds shape computations at build time.

:func:`propagate` walks the nodes once, in topological order. A node whose inputs are all
known values (initializers, Constant nodes, the ``Shape`` or ``Size`` of a tensor of known
shape, earlier results) is evaluated with ONNX's own reference implementation
(:class:`onnx.reference.ReferenceEvaluator`: no arithmetic of fusionlab's); a node whose
output shapes ONNX's inference left open is inferred again with ONNX's per-node inference
(:func:`onnx.shape_inference.infer_node_outputs`), now with the values of its inputs. One
pass reaches a chain of any length.

>>> import numpy as np
>>> from onnx import TensorProto, helper
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4, 4])
>>> nodes = [helper.make_node("Shape", ["x"], ["s"]),
...          helper.make_node("Gather", ["s", "one"], ["c"], axis=0),
...          helper.make_node("Div", ["c", "two"], ["half"]),
...          helper.make_node("Unsqueeze", ["half", "zero"], ["h1"]),
...          helper.make_node("Concat", ["n1", "two1", "h1", "m1"], ["shape"], axis=0),
...          helper.make_node("Reshape", ["x", "shape"], ["y"])]
>>> ints = lambda name, dims, vals: helper.make_tensor(name, TensorProto.INT64, dims, vals)
>>> inits = [ints("one", [], [1]), ints("two", [], [2]), ints("zero", [1], [0]),
...          ints("n1", [1], [1]), ints("two1", [1], [2]), ints("m1", [1], [-1])]
>>> g = helper.make_graph(nodes, "g", [x], [], inits)
>>> types, values = propagate(g, {"x": x.type}, opset=13)
>>> int(values["half"]), [d.dim_value for d in types["y"].tensor_type.shape.dim]
(3, [1, 2, 3, 16])
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

log = logging.getLogger(__name__)

SHAPE_OPS = frozenset({
    "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Add", "Sub", "Mul", "Div", "Mod",
    "Cast", "Reshape", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Where",
    "Not", "And", "Or", "Identity", "Floor", "Ceil", "Max", "Min", "Neg", "Abs", "Constant",
    "ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin", "Sqrt", "Pow", "Range",
    "ConstantOfShape", "Expand", "Tile", "Transpose", "Flatten", "Sign", "Round",
})
"""Ops evaluated when all their inputs are known: the arithmetic exporters write for shapes."""
GROWING = frozenset({"ConstantOfShape", "Expand", "Tile", "Range"})
"""Ops whose output can be much larger than their inputs: evaluated only when the output is
known to be small."""
LIMIT = 4096
"""Values up to this many elements are computed and kept (shape tensors, axes, bounds)."""


def static_dims(t: onnx.TypeProto | None) -> tuple[int, ...] | None:
    """The dimensions of a tensor type when every one is a known number, else None."""
    if t is None or not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in t.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(int(d.dim_value))
    return tuple(dims)


class _Evaluators:
    """One reference evaluator per distinct node signature (op, attributes, arity), reused."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.cache: dict[bytes, Any] = {}

    def run(self, node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        from onnx.reference import ReferenceEvaluator

        key = node.op_type.encode() + b"|" + b"".join(a.SerializeToString() for a in node.attribute) \
            + b"|" + bytes(int(v is not None) for v in inputs) + bytes([len(node.output)])
        evaluator = self.cache.get(key)
        names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
        if evaluator is None:
            proto = helper.make_node(node.op_type, names, [f"o{k}" for k in range(len(node.output))])
            proto.attribute.extend(node.attribute)
            graph = helper.make_graph(
                [proto], "one",
                [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in names if n],
                [helper.make_empty_tensor_value_info(f"o{k}") for k in range(len(node.output))],
            )
            model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
            evaluator = self.cache[key] = ReferenceEvaluator(model)
        feeds = {n: v for n, v in zip(names, inputs, strict=True) if n and v is not None}
        with np.errstate(all="ignore"):
            return [np.asarray(r) for r in evaluator.run(None, feeds)]


def _shape_value(node: onnx.NodeProto, dims: tuple[int, ...]) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(math.prod(dims), dtype=np.int64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    full = np.array(dims, dtype=np.int64)
    return full[int(attrs.get("start", 0)):int(attrs.get("end", len(dims)))]


def _small_enough(node: onnx.NodeProto, types: Mapping[str, onnx.TypeProto],
                  values: Mapping[str, np.ndarray]) -> bool:
    if any(values[t].size > LIMIT for t in node.input if t):
        return False
    if node.op_type not in GROWING:
        return True
    if node.op_type == "ConstantOfShape" and node.input and node.input[0]:
        return int(np.prod(values[node.input[0]])) <= LIMIT
    out = static_dims(types.get(node.output[0])) if node.output else None
    return out is not None and math.prod(out) <= LIMIT


def _type_of(value: np.ndarray) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape))


def propagate(
    graph: onnx.GraphProto, types: Mapping[str, onnx.TypeProto], *, opset: int
) -> tuple[dict[str, onnx.TypeProto], dict[str, np.ndarray]]:
    """Types (``types`` from ONNX's inference, completed) and the values of shape arithmetic,
    after one pass over ``graph``'s nodes (topologically sorted, default-domain ``opset``).

    Returns (tensor -> type, tensor -> value for every computed value of at most
    :data:`LIMIT` elements). Nodes whose evaluation or inference fails keep what ONNX
    inferred: a hostile graph never stops the load.
    """
    out_types = dict(types)
    values: dict[str, np.ndarray] = {}
    for init in graph.initializer:
        out_types.setdefault(init.name, helper.make_tensor_type_proto(init.data_type, list(init.dims)))
        if math.prod(init.dims) <= LIMIT and init.data_location != onnx.TensorProto.EXTERNAL:
            values[init.name] = numpy_helper.to_array(init)
    evaluators = _Evaluators(opset)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type in ("If", "Loop", "Scan"):
            continue
        outs = [o for o in node.output if o]
        if not outs:
            continue
        if node.op_type in ("Shape", "Size") and node.input:
            dims = static_dims(out_types.get(node.input[0]))
            if dims is not None:
                values[outs[0]] = _shape_value(node, dims)
                out_types[outs[0]] = _type_of(values[outs[0]])
            continue
        if (node.op_type in SHAPE_OPS and all(not t or t in values for t in node.input)
                and _small_enough(node, out_types, values)):
            try:
                results = evaluators.run(node, [values[t] if t else None for t in node.input])
            except Exception as exc:  # a hostile chain: leave it to shape inference
                log.debug("%s not evaluated: %s: %s", node.name or node.op_type, type(exc).__name__, exc)
            else:
                for name, value in zip(node.output, results, strict=False):
                    if name and value.size <= LIMIT and value.dtype != object:
                        values[name] = value
                        out_types[name] = _type_of(value)
                continue
        if all(static_dims(out_types.get(o)) is not None for o in outs):
            continue
        _infer_node(node, out_types, values, opset)
    return out_types, values


def _infer_node(node: onnx.NodeProto, types: dict[str, onnx.TypeProto],
                values: Mapping[str, np.ndarray], opset: int) -> None:
    """Infer ``node``'s output types again, with the values now known of its inputs."""
    present = [t for t in node.input if t]
    if not all(t in types for t in present):
        return
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, node.domain)
        data = {t: numpy_helper.from_array(np.ascontiguousarray(values[t]), t) for t in present if t in values}
        inferred = onnx.shape_inference.infer_node_outputs(
            schema, node, {t: types[t] for t in present}, data, opset_imports=[helper.make_opsetid("", opset)]
        )
    except Exception as exc:  # unknown op, inconsistent shapes: keep what ONNX inferred
        log.debug("%s not inferred again: %s: %s", node.name or node.op_type, type(exc).__name__, exc)
        return
    for name, t in inferred.items():
        if static_dims(t) is not None or name not in types:
            types[name] = t

"""Reduced precision for strongly typed TensorRT: convert an ONNX model to fp16 or bf16.

TensorRT 11 (and TensorRT-RTX) build strongly typed networks only: the builder flags
``FP16``/``BF16``/``INT8`` of TensorRT 10 are gone, and a tensor's type is the type the
ONNX model gives it ("Removed Python APIs and Replacements", TensorRT 11 migration guide:
``BuilderFlag.FP16`` -> "Strong typing with ModelOpt AutoCast"). :func:`convert_float_model`
is fusionlab's small stand-in for that conversion, written with onnx and numpy only:

Before::

    x (fp32) -> Conv(W fp32) -> Relu -> y (fp32)

After (``fp16``)::

    x (fp32) -> Cast(to fp16) -> Conv(W fp16) -> Relu -> Cast(to fp32) -> y (fp32)

Conditions:

1. every float32 initializer, ``Constant`` and float-typed attribute (``Cast.to``,
   ``ConstantOfShape.value``, ``dtype`` of random/eye ops) becomes fp16/bf16, values
   clipped to the fp16 range first (no overflow to infinity);
2. graph inputs and outputs stay float32: a ``Cast`` follows each input and precedes each
   output, so callers feed and read fp32 as before;
3. inputs that ONNX allows only as float32 (``Resize`` scales, ``Upsample`` scales) and ops
   in :data:`FP32_OPS` (or outside the standard domain) stay float32, with ``Cast`` nodes
   around them;
4. models with control flow (``If``/``Loop``/``Scan`` subgraphs) are refused: their bodies
   are not converted.

INT8 has no such conversion: a strongly typed network takes INT8 only from explicit
quantization (``QuantizeLinear``/``DequantizeLinear`` nodes, see :func:`has_qdq`).

>>> import numpy as np
>>> from onnx import TensorProto, helper, numpy_helper
>>> w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
>>> g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
>>> m = convert_float_model(helper.make_model(g), "fp16")
>>> [n.op_type for n in m.graph.node]
['Cast', 'MatMul', 'Cast']
>>> TensorProto.DataType.Name(m.graph.initializer[0].data_type)
'FLOAT16'
>>> TensorProto.DataType.Name(m.graph.output[0].type.tensor_type.elem_type)
'FLOAT'
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fusionlab.dtypes import REDUCED_FLOATS, by_word, check_precision
from fusionlab.errors import FusionlabError

log = logging.getLogger(__name__)

FP32_ONLY_INPUTS: Mapping[str, frozenset[int]] = {
    "Resize": frozenset({2}),  # scales: tensor(float) only (ONNX Resize-11..19)
    "Upsample": frozenset({1}),  # scales: tensor(float) only
}
"""Op -> input positions that ONNX types as float32 only."""

FP32_OPS = frozenset({"Range", "NonMaxSuppression", "RoiAlign", "RandomNormal", "RandomUniform"})
"""Ops kept in float32 (no fp16 type in their ONNX schema, or index/box arithmetic)."""

FP16_MAX = 65504.0
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_DTYPE_ATTR_OPS = frozenset({"EyeLike", "RandomNormalLike", "RandomUniformLike"})


def has_qdq(model: onnx.ModelProto) -> bool:
    """True when the model is explicitly quantized (has Q/DQ nodes).

    >>> from onnx import helper
    >>> relu = helper.make_node("Relu", ["x"], ["y"])
    >>> has_qdq(helper.make_model(helper.make_graph([relu], "g", [], [])))
    False
    """
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """float32 values -> bfloat16 bit patterns (uint16), rounded to nearest even.

    >>> [hex(int(b)) for b in to_bfloat16_bits(np.array([1.0, -2.0, 1.00390625], np.float32))]
    ['0x3f80', '0xc000', '0x3f80']
    """
    f = np.ascontiguousarray(values, dtype=np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    rounded[np.isnan(f)] = 0x7FC0
    return rounded


def from_bfloat16_bits(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32 values.

    >>> from_bfloat16_bits(np.array([0x3F80, 0xC000], np.uint16)).tolist()
    [1.0, -2.0]
    """
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def _half_tensor(array: np.ndarray, name: str, elem: int) -> TensorProto:
    a = np.asarray(array, dtype=np.float32)
    if elem == TensorProto.FLOAT16:
        clipped = np.clip(a, -FP16_MAX, FP16_MAX)
        if np.any(clipped != a) and not np.all(np.isnan(a[clipped != a])):
            log.debug("%s: values outside the fp16 range were clipped", name)
        return numpy_helper.from_array(clipped.astype(np.float16), name)
    bits = to_bfloat16_bits(a)
    return helper.make_tensor(name, TensorProto.BFLOAT16, list(a.shape), bits.tobytes(), raw=True)


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> ONNX element type, from shape inference and the graph's own records."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as exc:  # onnx raises several types
        log.warning("shape inference failed before the precision conversion (%s)", exc)
        inferred = model
    g = inferred.graph
    types: dict[str, int] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in g.initializer:
        types[init.name] = init.data_type
    for n in g.node:
        if n.op_type == "Constant" and n.output:
            for a in n.attribute:
                if a.name == "value":
                    types[n.output[0]] = a.t.data_type
                elif a.name in ("value_float", "value_floats"):
                    types[n.output[0]] = TensorProto.FLOAT
    return types


def _has_subgraphs(nodes: Iterable[onnx.NodeProto]) -> bool:
    return any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for n in nodes
        for a in n.attribute
    )


def _keeps_fp32(node: onnx.NodeProto) -> bool:
    return node.domain not in ("", "ai.onnx") or node.op_type in FP32_OPS


def _convert_attributes(node: onnx.NodeProto, elem: int) -> None:
    """Turn the float32 type or value attributes of a converted node into ``elem``."""
    if node.op_type == "ConstantOfShape" and not any(a.name == "value" for a in node.attribute):
        zero = _half_tensor(np.zeros(1, np.float32), "", elem)  # the default value is float32 0
        node.attribute.append(helper.make_attribute("value", zero))
        return
    for i, a in enumerate(node.attribute):
        if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
            a.i = elem
        elif node.op_type in ("Constant", "ConstantOfShape") and a.name == "value":
            if a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(_half_tensor(numpy_helper.to_array(a.t), a.t.name, elem))
        elif node.op_type == "Constant" and a.name in ("value_float", "value_floats"):
            values = np.array(a.f if a.name == "value_float" else list(a.floats), np.float32)
            del node.attribute[i]
            node.attribute.append(helper.make_attribute("value", _half_tensor(values, "", elem)))
            return
        elif node.op_type in _DTYPE_ATTR_OPS and a.name == "dtype" and a.i == TensorProto.FLOAT:
            a.i = elem


def convert_float_model(model: onnx.ModelProto, precision: str) -> onnx.ModelProto:
    """A copy of ``model`` whose float32 weights and computation are fp16 or bf16.

    ``precision`` is ``"fp16"`` or ``"bf16"``. Graph inputs and outputs keep float32, with
    ``Cast`` nodes at the boundary. The model's arrays must be loaded (``onnx.load`` with
    external data). Raises :class:`FusionlabError` for an unknown precision or a model
    with subgraphs.
    """
    elem = by_word(check_precision(precision, REDUCED_FLOATS)).onnx
    if _has_subgraphs(model.graph.node):
        raise FusionlabError(
            f"converting a model with control flow (If/Loop/Scan) to {precision} is not supported"
        )
    FLOAT = TensorProto.FLOAT
    types = _elem_types(model)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    nodes = list(g.node)
    graph_inputs = {vi.name for vi in g.input}
    graph_outputs = [vi.name for vi in g.output]
    inits = {t.name: t for t in g.initializer}

    def is_float(t: str) -> bool:
        return bool(t) and types.get(t) == FLOAT

    def wants(node: onnx.NodeProto, slot: int) -> int:
        if _keeps_fp32(node) or slot in FP32_ONLY_INPUTS.get(node.op_type, ()):
            return FLOAT
        return elem

    # What each float32 tensor is produced as, and under which name.
    produced: dict[str, int] = {}
    for n in nodes:
        for t in n.output:
            if is_float(t):
                produced[t] = FLOAT if _keeps_fp32(n) else elem
    for t in graph_inputs:
        if is_float(t) and t not in inits:
            produced[t] = FLOAT
    for name, init in inits.items():
        if init.data_type != FLOAT:
            continue
        needs = {wants(n, i) for n in nodes for i, t in enumerate(n.input) if t == name}
        if name in graph_outputs:
            needs.add(FLOAT)
        produced[name] = elem if needs == {elem} else FLOAT
        if produced[name] == elem:
            init.CopyFrom(_half_tensor(numpy_helper.to_array(init), name, elem))
            for vi in g.input:  # old exporters list initializers as graph inputs too
                if vi.name == name:
                    vi.type.tensor_type.elem_type = elem

    used_names = {t for n in nodes for t in (*n.input, *n.output)} | graph_inputs | set(inits)
    used_names |= {n.name for n in nodes}

    def fresh(base: str) -> str:
        name = base
        while name in used_names:
            name += "_"
        used_names.add(name)
        return name

    suffix = precision
    renamed = {
        t: fresh(f"{t}_{suffix}")
        for t in graph_outputs
        if produced.get(t) == elem and t not in graph_inputs
    }
    versions: dict[tuple[str, int], str] = {(t, d): renamed.get(t, t) for t, d in produced.items()}

    new_nodes: list[onnx.NodeProto] = []

    def version(t: str, dtype: int) -> str:
        key = (t, dtype)
        if key not in versions:
            src = versions[(t, produced[t])]
            tag = "fp32" if dtype == FLOAT else suffix
            dst = fresh(f"{t}_{tag}")
            new_nodes.append(
                helper.make_node("Cast", [src], [dst], name=fresh(f"{t}_cast_{tag}"), to=dtype)
            )
            versions[key] = dst
        return versions[key]

    for t in (vi.name for vi in g.input):  # cast graph inputs up front, in input order
        readers = [wants(n, i) for n in nodes for i, x in enumerate(n.input) if x == t]
        if t in produced and t not in inits and elem in readers:
            version(t, elem)

    for n in nodes:
        for i, t in enumerate(n.input):
            if t in produced:
                n.input[i] = version(t, wants(n, i))
        for i, t in enumerate(n.output):
            if t in renamed:
                n.output[i] = renamed[t]
        if not _keeps_fp32(n):
            _convert_attributes(n, elem)
        new_nodes.append(n)

    for t in graph_outputs:
        if t in renamed:
            new_nodes.append(
                helper.make_node("Cast", [renamed[t]], [t], name=fresh(f"{t}_cast_fp32"), to=FLOAT)
            )
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]
    try:
        return onnx.shape_inference.infer_shapes(out, strict_mode=False)
    except Exception as exc:  # onnx raises several types
        log.warning("shape inference failed after the precision conversion (%s)", exc)
        return out

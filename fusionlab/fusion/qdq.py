"""Explicit quantization (Q/DQ) facts shared by the Q/DQ passes, the cost model and the
INT8 findings of ``predict --explain`` and ``diff``.

A QuantizeLinear (Q) turns float data into INT8, a DequantizeLinear (DQ) turns it back;
TensorRT fuses them into the layers around them (:mod:`fusionlab.fusion.passes.fuse_qdq_conv`,
:mod:`~fusionlab.fusion.passes.propagate_qdq`) and runs what is left as Reformat layers
(:mod:`~fusionlab.fusion.passes.quantize_reformat`). This module answers, for a plan:
which tensors hold INT8 data, which layers do INT8 math, and where INT8 turns back into
float (:func:`hazards`: each with the rule and the condition that kept it apart).

>>> from onnx import helper, TensorProto, numpy_helper
>>> import numpy as np
>>> from fusionlab.ir.graph import load
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
>>> s = numpy_helper.from_array(np.array(0.1, np.float32), "s")
>>> g = load(helper.make_model(helper.make_graph(
...     [helper.make_node("QuantizeLinear", ["x", "s"], ["q"], name="q"),
...      helper.make_node("DequantizeLinear", ["q", "s"], ["y"], name="dq")], "g", [x], [y], [s])))
>>> has_qdq(g), sorted(int8_tensors(g)), float(scale_of(g, g.node("q"))[0])
(True, ['q'], 0.10000000149011612)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fusionlab.errors import FusionlabError
from fusionlab.ir import ops
from fusionlab.plan import Kind, Layer, Plan

if TYPE_CHECKING:
    import numpy as np

    from fusionlab.fusion.passes.kit import Rejection
    from fusionlab.ir.graph import Graph, Node

Q, DQ = "QuantizeLinear", "DequantizeLinear"
QDQ_OPS = frozenset({Q, DQ})
WEIGHTED = ops.CONV | ops.GEMM
"""Ops that take quantized weights: ``[DQ(x), DQ(w)] > op > Q`` becomes one INT8 layer."""


NOT_IMPLICIT = "explicit INT8 (Q/DQ nodes), not implicit (calibrated) INT8"
"""Why an implicit-INT8 rule (fuse_conv_pool, fuse_depthwise_separable) rejects a Q/DQ
network: records/trex-resnet18-a100-qat keeps ``Conv_9`` and ``MaxPool_12`` apart."""


def has_qdq(graph: Graph) -> bool:
    """True for an explicitly quantized model (any QuantizeLinear or DequantizeLinear)."""
    return bool(graph.names_with_ops(QDQ_OPS))


def const_value(graph: Graph, tensor: str) -> np.ndarray | None:
    """The value of a constant tensor (an initializer or a Constant node's output), or None."""
    import numpy as np

    if not tensor:
        return None
    if tensor in graph.weights:
        try:
            return graph.array(tensor)
        except FusionlabError:  # a detached model: the value is unknown
            return None
    producer = graph.producer.get(tensor)
    if producer is None:
        return None
    node = graph.node(producer)
    if node.op != "Constant":
        return None
    value = node.attrs.get("value")
    if value is None or isinstance(value, str):  # a large tensor is kept as a description
        return None
    return np.asarray(value)


def scale_of(graph: Graph, node: Node) -> np.ndarray | None:
    """A Q/DQ node's scale, flattened (None when it is not a constant)."""
    import numpy as np

    value = const_value(graph, node.inputs[1]) if len(node.inputs) > 1 else None
    return None if value is None else np.asarray(value, dtype=np.float64).reshape(-1)


def zero_point_of(graph: Graph, node: Node) -> np.ndarray | None:
    """A Q/DQ node's zero point, flattened (zero when omitted; None when not a constant)."""
    import numpy as np

    if len(node.inputs) < 3 or not node.inputs[2]:
        return np.zeros(1)
    value = const_value(graph, node.inputs[2])
    return None if value is None else np.asarray(value, dtype=np.float64).reshape(-1)


def same_quantization(graph: Graph, a: Node, b: Node) -> bool:
    """True when two Q/DQ nodes use equal scales, zero points and axis (all constants)."""
    import numpy as np

    sa, sb = scale_of(graph, a), scale_of(graph, b)
    za, zb = zero_point_of(graph, a), zero_point_of(graph, b)
    if sa is None or sb is None or za is None or zb is None:
        return False
    axis_a = a.attrs.get("axis", 1) if sa.size > 1 else None
    axis_b = b.attrs.get("axis", 1) if sb.size > 1 else None
    return (
        sa.shape == sb.shape and bool(np.array_equal(sa, sb))
        and za.shape == zb.shape and bool(np.array_equal(za, zb)) and axis_a == axis_b
    )


def int8_tensors(graph: Graph) -> frozenset[str]:
    """Tensors that hold quantized data: outputs of QuantizeLinear nodes (the inputs of the
    DequantizeLinear nodes)."""
    return frozenset(
        t for n in graph.order if graph.node(n).op == Q for t in graph.node(n).outputs if t
    )


def dequantized(graph: Graph, tensor: str) -> bool:
    """True when ``tensor`` is a DequantizeLinear's output: the layer that reads it reads the
    INT8 data and applies the scale itself."""
    producer = graph.producer.get(tensor)
    return producer is not None and graph.node(producer).op == DQ


def int8_math(graph: Graph, layer: Layer) -> bool:
    """True for a layer that computes in INT8: a weighted op whose data input is dequantized
    and whose weights are quantized, or a quantizable op between DQ and Q in the layer."""
    nodes = set(layer.nodes)
    for name in layer.nodes:
        node = graph.node(name)
        if node.op in WEIGHTED and len(node.inputs) > 1:
            if dequantized(graph, node.inputs[0]) and dequantized(graph, node.inputs[1]):
                return True
        elif node.op not in QDQ_OPS and node.inputs:
            ins = [t for t in node.inputs if t and t not in graph.weights]
            outs = [c for t in node.outputs for c in graph.consumers.get(t, ())]
            if (
                ins and all(dequantized(graph, t) and graph.producer[t] in nodes for t in ins)
                and outs and all(graph.node(c).op == Q and c in nodes for c in outs)
            ):
                return True
    return False


def is_qdq_reformat(graph: Graph | None, layer: Layer) -> bool:
    """True for a layer that only quantizes or dequantizes (TensorRT's Reformat with Origin
    QDQ): its nodes are Q/DQ nodes."""
    if not layer.nodes or graph is None:
        return False
    return all(n in graph and graph.node(n).op in QDQ_OPS for n in layer.nodes) and (
        layer.kind in (Kind.REFORMAT, Kind.QUANTIZE, Kind.DEQUANTIZE, Kind.UNKNOWN, Kind.OTHER)
    )


# ---------------------------------------------------------------------------------------
# INT8 hazards: where a Q/DQ network leaves INT8


@dataclass(frozen=True)
class Hazard:
    """One place where explicit quantization does not give an all-INT8 path."""

    kind: str
    """``reformat`` (a Q or DQ runs as a layer of its own between float and INT8 layers),
    ``unfused-pair`` (a Q reformat straight into a DQ reformat: quantizes and dequantizes,
    nothing INT8 in between), or ``float`` (a layer runs or writes float because a Q/DQ is
    missing on one of its inputs)."""
    layer: str
    nodes: tuple[str, ...]
    text: str
    rule: str | None = None
    condition: int | None = None
    cause: str = ""
    help: str = ""
    related: tuple[str, ...] = ()
    """The nodes of the rejection that explains it (the op left in float, the producer)."""


FLOAT_CONDITIONS: Mapping[str, frozenset[int]] = {
    "fuse_qdq_conv": frozenset({2, 4}),
}
"""Rejections that mean "a layer runs or writes float because a Q/DQ is missing on an input"
(the weighted op's data input, a fused residual Add's other operand)."""

_HELP = {
    ("fuse_qdq_conv", 2): (
        "put a QuantizeLinear/DequantizeLinear pair on this input too (quantize the input of "
        "every weighted op: TensorRT's Q/DQ placement recommendation)"
    ),
    ("fuse_qdq_conv", 4): (
        "quantize the residual input as well (a Q/DQ pair on the Add's other operand: "
        "pytorch-quantization's quantize_residual, TensorRT Model Optimizer): the "
        "convolution then writes INT8 and the trailing QuantizeLinear fuses into it"
    ),
    ("fuse_qdq_conv", 5): (
        "the tensor is also read in float: quantize that reader's input too with the same "
        "scale (one quantizer per tensor), so every reader takes INT8"
    ),
    ("propagate_qdq", 2): (
        "place the Q/DQ pair before this op (or quantize the producer's output) so that it "
        "runs in INT8 between a DQ and a Q"
    ),
    ("propagate_qdq", 3): "end the op with a QuantizeLinear so that its output stays INT8",
}
_DEFAULT_HELP = (
    "place Q/DQ pairs so that every quantized tensor runs from an INT8 producer to an INT8 "
    "consumer (TensorRT's Q/DQ placement recommendations)"
)


def _neighbours(plan: Plan, graph: Graph, layer: Layer) -> tuple[list[Layer], list[Layer]]:
    """The layers that write what ``layer`` reads and read what it writes, looking through
    nodes in no layer (eliminated, or named by no engine layer)."""
    owner = plan.node_to_layer()
    mine = set(layer.nodes)

    def walk(start: Iterable[str], up: bool) -> list[Layer]:
        found: dict[int, Layer] = {}
        seen: set[str] = set()
        todo = list(start)
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            seen.add(n)
            if n in owner and n not in mine:
                found[owner[n]] = plan.layers[owner[n]]
                continue
            if n in owner and n not in start:
                continue
            node = graph.node(n)
            if up:
                todo.extend(graph.producer[t] for t in node.inputs if t in graph.producer)
            else:
                todo.extend(c for t in node.outputs for c in graph.consumers.get(t, ()))
        return [found[i] for i in sorted(found)]

    nodes = list(layer.nodes)
    return walk(nodes, True), walk(nodes, False)


def _precision_word(graph: Graph, layer: Layer) -> str:
    ops_ = [graph.node(n).op for n in layer.nodes]
    if int8_math(graph, layer):
        return "INT8" if ops_ and ops_[-1] == Q else "INT8, float output"
    if ops_ and ops_[-1] == Q:
        return "INT8 out"
    if ops_ and ops_[0] == DQ:
        return "INT8 in"
    return "float"


def _rejection_for(
    rejections: Sequence[Rejection], node: str, rules: Iterable[str]
) -> Rejection | None:
    wanted = set(rules)
    for r in rejections:
        if r.rule in wanted and node in r.nodes:
            return r
    return None


def hazards(graph: Graph, plan: Plan, rejections: Sequence[Rejection] = ()) -> list[Hazard]:
    """The INT8 hazards of ``plan`` (a predicted or an actual plan of ``graph``), in plan
    order, each named with the rule and the failed condition where ``rejections`` (the
    prediction's) say why."""
    if not has_qdq(graph):
        return []
    out: list[Hazard] = []
    owner = plan.node_to_layer()
    for layer in plan.layers:
        if not is_qdq_reformat(graph, layer):
            continue
        node = graph.node(layer.nodes[0])
        before, after = _neighbours(plan, graph, layer)
        src = ", ".join(repr(b.name) for b in before) or f"the network input {node.inputs[0]!r}"
        dst = ", ".join(repr(a.name) for a in after) or "the network output"
        quantize = node.op == Q
        what = "quantize (float -> INT8)" if quantize else "dequantize (INT8 -> float)"
        pair_dq = [a for a in after if is_qdq_reformat(graph, a) and graph.node(a.nodes[0]).op == DQ]
        if quantize and pair_dq and len(after) == len(pair_dq):
            readers = _neighbours(plan, graph, pair_dq[0])[1]
            weighted = any(graph.node(n).op in WEIGHTED for a in readers for n in a.nodes)
            out.append(Hazard(
                "unfused-pair", layer.name, layer.nodes,
                f"unfused Q/DQ pair: {layer.name!r} quantizes and {pair_dq[0].name!r} dequantizes "
                f"again; no layer between {src} and "
                f"{', '.join(repr(a.name) for a in readers) or 'the output'} runs in INT8",
                "fuse_qdq_conv" if weighted else "propagate_qdq",
                None,
                "the DequantizeLinear feeds no layer that can take INT8 input (a weighted op with "
                "quantized weights, or a quantizable op ending in a QuantizeLinear)",
                "remove the pair (it only adds quantization noise and two reformats) or quantize "
                "the consumer properly",
                tuple(pair_dq[0].nodes),
            ))
            continue
        rejection = _rejection_for(rejections, layer.nodes[0], ("fuse_qdq_conv", "propagate_qdq"))
        if rejection is not None:
            cause = (
                f"rule {rejection.rule!r} did not fuse it: condition {rejection.condition} "
                f"({rejection.text}) failed{' — ' + rejection.detail if rejection.detail else ''}"
            )
            help_ = _HELP.get((rejection.rule, rejection.condition), _DEFAULT_HELP)
            rule, cond = rejection.rule, rejection.condition
            related = rejection.nodes
        elif quantize and not before:
            cause = "it quantizes the network input, which the engine receives in float"
            help_ = ("build with an INT8 network input (trtexec --inputIOFormats=int8:chw4 or "
                     "similar) and feed quantized data, or accept the one reformat")
            rule, cond = None, None
        else:
            cause = "no fusion rule took it" if rejections else "the engine runs it as a reformat"
            help_ = _DEFAULT_HELP
            rule, cond = None, None
        if rejection is None:
            related = ()
        words = {b.name: _precision_word(graph, b) for b in (*before, *after)}
        out.append(Hazard(
            "reformat", layer.name, layer.nodes,
            f"{layer.name!r} runs as a separate {what} reformat between {src} "
            f"({', '.join(sorted({words[b.name] for b in before})) or 'input'}) and {dst} "
            f"({', '.join(sorted({words[a.name] for a in after})) or 'output'})",
            rule, cond, cause, help_, tuple(related),
        ))
    seen = set()
    reported = {n for h in out for n in h.nodes}
    for r in rejections:
        if r.condition not in FLOAT_CONDITIONS.get(r.rule, ()):
            continue
        if any(n in reported for n in r.nodes if graph.node(n).op in QDQ_OPS):
            continue  # already said: the reformat it leaves names this rejection
        index = next((owner[n] for n in r.nodes if n in owner and graph.node(n).op in WEIGHTED), None)
        if index is None or index in seen:
            continue
        seen.add(index)
        layer = plan.layers[index]
        what = "runs in float" if r.condition == 2 else "writes float"
        out.append(Hazard(
            "float", layer.name, layer.nodes,
            f"{layer.name!r} {what}: a Q/DQ is missing on one of its inputs",
            r.rule, r.condition,
            f"rule {r.rule!r}: condition {r.condition} ({r.text}) failed"
            f"{' — ' + r.detail if r.detail else ''}",
            _HELP.get((r.rule, r.condition), _DEFAULT_HELP),
            r.nodes,
        ))
    return out

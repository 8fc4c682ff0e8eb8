"""propagate_qdq: ops that commute with quantization run in INT8 between a DQ and a Q.

Before::

    ... -> DQ -> MaxPool -> Q -> ...           a -> DQ ─┐
                                               b -> DQ ─┴ Concat -> Q -> DQ -> Conv
    GlobalAveragePool -> Flatten -> Q -> DQ -> Gemm
After::

    ... -> [DQ + MaxPool + Q] -> ...           (one INT8 pooling layer, named MaxPool)
    a, b -> Concat -> DQ -> Conv               (equal scales: the DQ-Q pairs cancel and the
                                                Concat is left to concat elimination, INT8)
    GlobalAveragePool -> Q -> DQ -> Gemm       (Flatten absorbed: the Q moves before it)

TensorRT moves DequantizeLinear nodes forward and QuantizeLinear nodes backward through
ops that commute with quantization, so that such an op between a DQ and a Q runs on INT8
data (``DQ > Node > Q`` becomes a quantized node). An op whose input is float stays float
and the QuantizeLinear after it stays a quantize reformat; the DequantizeLinear before an
op with no QuantizeLinear after it stays a dequantize reformat. Which ops run in INT8 and
through which the DQ-Q pairs cancel are the target's Q/DQ table (``Target.qdq``).

What no rule fused is left as TensorRT leaves it: a QuantizeLinear or DequantizeLinear alone
becomes a Reformat layer named after its node (``QuantizeLinear_2``: the engine's Reformat
layers whose ``Origin`` is ``QDQ``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, alone
from fusionlab.fusion.qdq import DQ, Q, same_quantization
from fusionlab.plan import How, Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="propagate_qdq",
    conditions=(
        "the op commutes with quantization or has an INT8 kernel (the target's quantizable ops)",
        "every data input is written by a DequantizeLinear that the op alone reads",
        "its output is read by one QuantizeLinear alone and is not a graph output",
        "for an op through which DQ-Q pairs cancel (Concat): every input's DequantizeLinear has the "
        "QuantizeLinear's scale and zero point",
        "a Flatten/Reshape/Squeeze is read by one QuantizeLinear whose DequantizeLinear a fully "
        "connected layer alone reads as its data input (the Q moves before it and the layer reads "
        "its input directly)",
    ),
    source=(
        "TensorRT 8.x Developer Guide §7.4.3 (Q/DQ propagation: 'TensorRT propagates Q nodes "
        "backward and DQ nodes forward'; an op commutes with quantization if Q(Op(x)) == Op(Q(x)); "
        "MaxPool is the worked example) and §13.2.4.4 'Q/DQ Fusion' (DequantizeLinear > Node > "
        "QuantizeLinear fuses into a quantized node; Figure 1: 'A quantizable AveragePool layer is "
        "fused with a DQ layer and a Q layer'; Figure 8: an element-wise addition fused with its input "
        "DQs and output Q), read in HeKun-NVIDIA/TensorRT-Developer_Guide_in_Chinese (commits "
        "f376ea59, eda42f30) and https://cnblogs.com/wujianming-110117/p/15681448.html; "
        "NVIDIA/Model-Optimizer a2fbac7b modelopt/onnx/quantization/graph_utils.py "
        "get_concat_eliminated_tensors ('In TRT, q4 will be propagated forward concat ... If they are "
        "the same, then the dq-q pairs can be eliminated in TRT'); records/trex-resnet18-a100-qat "
        "(TensorRT 8: MaxPool_12 and GlobalAveragePool_246 have float inputs and run in float, the "
        "QuantizeLinear after each stays a QDQ reformat; Flatten_247 between the pooling and "
        "QuantizeLinear_250 is named by no layer); /work/scratch records trex-resnet50-tf-rtx3090/qat "
        "(Pad and MaxPool between Q/DQ run on INT8 tensors)"
    ),
    joins=(Join(frozenset({Q, DQ}), frozenset({
        "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Pad", "Concat", "Add",
        "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Resize",
    })),),
    eliminates=frozenset({Q, DQ}),
)
__doc__ = RULE.document(__doc__)


def _alone_of(work: Work, node: str | None, op: str) -> int | None:
    if node is None or node not in work.owner or work.graph.node(node).op != op:
        return None
    index = work.owner[node]
    return index if work.layer(index).nodes == (node,) else None


def _writer(work: Work, tensor: str) -> str | None:
    node = work.graph.producer.get(work.resolve(tensor))
    return None if node is None or node in work.eliminated else node


def _sole_reader(work: Work, tensor: str) -> str | None:
    readers = work.consumers(tensor)
    if len(readers) != 1 or work.is_graph_output(tensor):
        return None
    return readers[0]


def _absorb_layout(graph: Graph, work: Work, ctx: Context, reject: object) -> None:
    """Condition 5: a layout op between a float layer and a Q/DQ read by a fully connected layer."""
    assert ctx.target.qdq is not None
    for name, node, _ in alone(work, ctx.target.flatten_ops):
        if not node.outputs or name in work.eliminated:
            continue
        q = _sole_reader(work, node.outputs[0])
        if q is None or _alone_of(work, q, Q) is None:
            continue
        dq = _sole_reader(work, graph.node(q).outputs[0])
        dq_out = graph.node(dq).outputs[0] if dq is not None and graph.node(dq).op == DQ else None
        fc = _sole_reader(work, dq_out) if dq_out is not None else None
        if (
            fc is None
            or dq_out is None
            or graph.node(fc).op not in ctx.target.fc_ops
            or work.resolve(graph.node(fc).inputs[0]) != work.resolve(dq_out)
        ):
            reject(5, [name, q], "not read by a fully connected layer through the Q/DQ")  # type: ignore[operator]
            continue
        work.eliminate(name, How.ABSORBED, f"absorbed into {fc} ({q} moves before it: "
                       "the fully connected layer reads its input directly)")


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    rules = ctx.target.qdq
    if rules is None:
        return plan
    work = Work(graph, plan)
    record = ctx.rejector(RULE)

    def reject(condition: int, nodes: list[str], detail: str = "") -> None:
        record(condition, sorted(dict.fromkeys(nodes), key=graph.position.__getitem__), detail)

    _absorb_layout(graph, work, ctx, reject)
    for name, node, mine in alone(work):
        if node.op in (Q, DQ) or node.op in rules.weighted:
            continue
        data = [t for t in node.inputs if t and not work.is_const(t)]
        if not data or not node.outputs:
            continue
        writers = [_writer(work, t) for t in data]
        dqs = [w for w in writers if w is not None and graph.node(w).op == DQ]
        readers = work.consumers(node.outputs[0])
        q = next((r for r in readers if _alone_of(work, r, Q) is not None), None)
        if not dqs and q is None:
            continue  # nothing quantized around it
        if node.op not in rules.quantizable and node.op not in rules.cancel_through:
            reject(1, [*dqs, name, *([q] if q else [])], f"{node.op} runs in float on target {ctx.target.name}")
            continue
        dq_layers = [_alone_of(work, w, DQ) for w in dqs]
        if len(dqs) != len(data) or any(
            i is None or not work.outputs_consumed_only_by(i, mine) for i in dq_layers
        ):
            float_in = [t for t, w in zip(data, writers, strict=True) if w not in dqs]
            detail = (f"input {float_in[0]} is float (written by {_writer(work, float_in[0]) or 'the network input'})"
                      if float_in else "a DequantizeLinear is read by another layer too")
            reject(2, [*dqs, name, *([q] if q else [])], f"{detail}: {name} runs in float")
            continue
        if q is None or len(readers) != 1 or work.is_graph_output(node.outputs[0]):
            detail = ("its output is not quantized" if q is None else
                      f"{node.outputs[0]} is also read by {', '.join(r for r in readers if r != q) or 'the output'}")
            reject(3, [*dqs, name, *([q] if q else [])],
                   f"{detail}: {name} runs in float and its DequantizeLinear stays a dequantize reformat")
            continue
        q_node = graph.node(q)
        if node.op in rules.cancel_through:
            if all(same_quantization(graph, graph.node(w), q_node) for w in dqs):
                for w in dqs:
                    work.eliminate(w, How.CANCELLED, f"cancels with {q} (equal scale) through {name}")
                work.eliminate(q, How.CANCELLED, f"cancels with the DequantizeLinear of {name}'s inputs")
                continue
            if node.op not in rules.quantizable:
                reject(4, [*dqs, name, q], "scales differ: the DQ-Q pairs requantize")
                continue
        for i in dq_layers:
            assert i is not None
            work.merge(mine, i, rule=RULE.name)
        q_layer = _alone_of(work, q, Q)
        assert q_layer is not None
        merged = work.merge(mine, q_layer, rule=RULE.name)
        nodes = tuple(sorted(merged.nodes, key=graph.position.__getitem__))
        work.relabel(mine, nodes=nodes, name=name)
    for _, _, index in alone(work, {Q, DQ}):
        work.relabel(index, kind=Kind.REFORMAT)  # what is left: a quantize/dequantize reformat
    return work.finish()

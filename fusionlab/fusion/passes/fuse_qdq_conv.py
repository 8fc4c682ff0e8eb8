"""fuse_qdq_conv: [DQ(x), DQ(w)] -> weighted op (+ BN, Add, activation) -> Q is one INT8 layer.

Before::

    x ─> Q_2 ─> DQ_5 ──────────────┐
    conv1.weight ─> [Q_7 + DQ_8] ──Conv_9 ─> BN ─> Add ─> Relu ─> Q_27 ─> DQ_30 ─> ...
    r ─> Q ─> DQ ──────────────────────────────┘
After::

    Q_2 ─> [conv1.weight + QuantizeLinear_7 + Conv_9 + Add + Relu] ─> DQ_30 ...
           reads INT8 x (DQ_5 fused) and the INT8 residual (its DQ fused), INT8 weights
           (absorbed), writes INT8 (Q_27 fused)

The convolution (or fully connected layer, or MatMul) layer the float rules formed takes
the DequantizeLinear of its data input, its quantized weights (``quantize_weights``), the
DequantizeLinear of a fused residual Add's other operand, and the QuantizeLinear that reads
its output. Without INT8 on both the data input and the weights the layer runs in float
(its weights are fake-quantized constants); with a float residual it writes float (the
residual's precision decides the fused output's), so the QuantizeLinear after it stays a
reformat. The layer is named as TensorRT names it: weights, their QuantizeLinear and the
op, then the residual Add and what follows it (``conv1.weight + QuantizeLinear_7 + Conv_9``,
``... + Conv_34 + Add_36 + Relu_37``).

A DequantizeLinear read by several INT8 layers is fused into the first (the others read its
INT8 input as well); one also read by a float layer stays a dequantize reformat for it.
Which ops take quantized weights is the target's Q/DQ table (``Target.qdq.weighted``).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.fusion.passes.partition_myelin import region_name
from fusionlab.fusion.qdq import DQ, QDQ_OPS, Q
from fusionlab.plan import FUSED_SEP, Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="fuse_qdq_conv",
    conditions=(
        "its weights are quantized: a QuantizeLinear/DequantizeLinear pair of a constant "
        "(quantize_weights) is its second input",
        "its data input is dequantized INT8: written by a DequantizeLinear",
        "that DequantizeLinear is read by INT8 weighted layers only, and joining it creates no cycle",
        "a fused residual Add's other operand is dequantized INT8 (a float residual makes the fused "
        "output float)",
        "the layer's output is read by one QuantizeLinear alone and is not a graph output",
    ),
    source=(
        "TensorRT 8.x Developer Guide §13.2.4.4 'Q/DQ Fusion': 'Fuse Q/DQ with weighted node "
        "(Conv, FC, Deconv)': [DequantizeLinear (Activations), DequantizeLinear (weights)] > Node > "
        "QuantizeLinear fuses into a quantized node; §7.4.4: element-wise addition fused after a "
        "weighted layer, the precision of its other input decides the fused output (Figure 6: "
        "'The precision of xf1 is floating-point, so the output of the fused convolution is limited "
        "to floating-point, and the trailing Q-layer cannot be fused with the convolution'; Figure 7: "
        "'When xf1 is quantized to INT8, the output of the fused convolution is also INT8, and the "
        "trailing Q-layer is fused with the convolution'); Figure 5 (BatchNorm and ReLU fused with "
        "the INT8 convolution) — guide text read in HeKun-NVIDIA/TensorRT-Developer_Guide_in_Chinese "
        "(commits f376ea59, eda42f30), English captions at https://cnblogs.com/wujianming-110117/p/"
        "15681448.html; records/trex-resnet18-a100-qat (TensorRT 8, A100: every convolution INT8 with "
        "its input DQ and weights fused, residual Adds fused with an FP16 residual and FP16 output, "
        "the QuantizeLinear fused only after block-internal convolutions); "
        "records in /work/scratch: trex-resnet50-tf-rtx3090/qat (quantized residuals: INT8 output "
        "and no reformat after residual layers)"
    ),
    joins=(Join(frozenset({Q, DQ}), frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})),),
)
__doc__ = RULE.document(__doc__)


def reaches(work: Work, start: int, goal: int) -> bool:
    """True when layer ``goal`` reads (directly or not) something layer ``start`` writes."""
    seen = {start}
    todo = deque([start])
    while todo:
        i = todo.popleft()
        for t in work.external_outputs(i):
            for c in work.consumers(t):
                j = work.owner.get(c)
                if j is None or j in seen:
                    continue
                if j == goal:
                    return True
                seen.add(j)
                todo.append(j)
    return False


def _core(work: Work, index: int, weighted: frozenset[str]) -> str | None:
    layer = work.layer(index)
    if layer.merged or not layer.nodes:
        return None
    ops = work.ops_of(index)
    start = 1 if ops[0] == "Pad" else 0
    if len(ops) <= start or ops[start] not in weighted:
        return None
    return layer.nodes[start]


def _alone_node(work: Work, name: str | None, op: str) -> int | None:
    """The layer of ``name`` when it is an ``op`` node alone in its layer."""
    if name is None or name not in work.owner or work.graph.node(name).op != op:
        return None
    index = work.owner[name]
    return index if work.layer(index).nodes == (name,) else None


def _producer(work: Work, tensor: str) -> str | None:
    node = work.graph.producer.get(work.resolve(tensor))
    return None if node is None or node in work.eliminated else node


def _name(graph: Graph, nodes: list[str], core: str, weights: str | None) -> str:
    ops = [graph.node(n).op for n in nodes]
    head = [n for n in nodes[: nodes.index(core) + 1] if graph.node(n).op not in QDQ_OPS]
    tail: list[str] = []
    if "Add" in ops[nodes.index(core):]:
        first_add = nodes.index(core) + ops[nodes.index(core):].index("Add")
        tail = [n for n in nodes[first_add:] if graph.node(n).op not in QDQ_OPS]
    if weights is None:
        return FUSED_SEP.join(n for n in nodes if graph.node(n).op not in QDQ_OPS)
    return FUSED_SEP.join([weights, *head, *tail])


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    if ctx.target.qdq is None:
        return plan
    work = Work(graph, plan)
    record = ctx.rejector(RULE)

    def reject(condition: int, nodes: list[str], detail: str = "") -> None:
        record(condition, sorted(dict.fromkeys(nodes), key=graph.position.__getitem__), detail)

    weighted = ctx.target.qdq.weighted
    position = graph.position
    candidates = sorted(
        (i for i in work.live() if _core(work, i, weighted) is not None),
        key=lambda i: position[work.layer(i).nodes[0]],
    )
    for index in candidates:
        core = _core(work, index, weighted)
        assert core is not None
        node = graph.node(core)
        data = node.inputs[0]
        weight_src = work.producer_layer(node.inputs[1]) if len(node.inputs) > 1 else None
        quantized_weights = weight_src is not None and work.layer(weight_src).rule == "quantize_weights"
        dq = _producer(work, data)
        dq = dq if dq is not None and graph.node(dq).op == DQ else None
        if not quantized_weights and dq is None:
            continue  # a float layer of a float part of the network
        weights_name: str | None = None
        absorbed: list[str] = []
        if quantized_weights:
            assert weight_src is not None
            weights_name = work.layer(weight_src).name
            absorbed = list(work.layer(weight_src).nodes)
            work.merge(index, weight_src, rule=RULE.name)
        members = list(work.layer(index).nodes)
        if not quantized_weights:
            reject(1, [*([dq] if dq else []), *members], "the layer runs in float; its "
                   "DequantizeLinear stays a dequantize reformat")
            continue
        if dq is None:
            writer = _producer(work, data)
            reject(2, members, f"input {data} is float (written by {writer or 'the network input'}): "
                   "the layer runs in float with fake-quantized weights")
            _finish(work, index, core, weights_name, absorbed)
            continue
        dq_layer = _alone_node(work, dq, DQ)
        if dq_layer is not None:
            reader_layers = {work.owner.get(c) for c in work.consumers(graph.node(dq).outputs[0])}
            others = reader_layers - {index}
            if work.is_graph_output(graph.node(dq).outputs[0]) or None in others or any(
                o is not None and _core(work, o, weighted) is None for o in others
            ):
                reject(3, [dq, *members], "it is read by a float layer too: it stays a dequantize reformat")
            elif any(o is not None and reaches(work, o, index) for o in others):
                reject(3, [dq, *members], "another reader feeds this layer: that reader takes it")
            else:
                work.merge(index, dq_layer, rule=RULE.name)
        residual_float: str | None = None
        layer_nodes = work.layer(index).nodes
        adds = [n for n in layer_nodes if graph.node(n).op == "Add"]
        if adds:
            add = graph.node(adds[0])
            inside = {t for n in layer_nodes for t in graph.node(n).outputs}
            other = next((t for t in add.inputs if t and work.resolve(t) not in inside
                          and not work.is_const(t)), None)
            if other is not None:
                rdq = _producer(work, other)
                if rdq is not None and graph.node(rdq).op == DQ:
                    rdq_layer = _alone_node(work, rdq, DQ)
                    if rdq_layer is not None and work.outputs_consumed_only_by(rdq_layer, index):
                        work.merge(index, rdq_layer, rule=RULE.name)
                else:
                    residual_float = f"the residual {other} is float (written by {rdq or 'the network input'})"
        outs = work.external_outputs(index)
        readers = work.consumers(outs[0]) if len(outs) == 1 else []
        quantizers = [r for r in readers if graph.node(r).op == Q and _alone_node(work, r, Q) is not None]
        members = list(work.layer(index).nodes)
        if quantizers:
            q = quantizers[0]
            if residual_float is not None:
                reject(4, [*members, q], f"{residual_float}; {q} stays a quantize reformat")
            elif len(readers) != 1 or work.is_graph_output(outs[0]):
                rest = [r for r in readers if r != q]
                reject(5, [*members, q], f"{outs[0]} is also read by {', '.join(rest) or 'the output'}"
                       f"; {q} stays a quantize reformat")
            else:
                q_layer = _alone_node(work, q, Q)
                assert q_layer is not None
                work.merge(index, q_layer, rule=RULE.name)
        _finish(work, index, core, weights_name, absorbed)
    return work.finish()


def _finish(work: Work, index: int, core: str, weights: str | None, absorbed: list[str]) -> None:
    """Order the layer's nodes as the graph does and name it as TensorRT does."""
    graph = work.graph
    layer = work.layer(index)
    nodes = sorted(layer.nodes, key=graph.position.__getitem__)
    myelin = layer.kind is Kind.MYELIN  # a Myelin region (trt10/trt11 FC) keeps its region name
    work.relabel(
        index,
        nodes=tuple(nodes),
        name=region_name(tuple(nodes)) if myelin else _name(graph, nodes, core, weights),
        rule=RULE.name,
        absorbed=tuple(dict.fromkeys((*layer.absorbed, *absorbed))),
    )

"""merge_siblings: sibling convolutions that read the same tensor merge into one wide layer.

Before::

            ┌─> [Conv 1x1 + BN + Relu] (64)
    x ──────┼─> [Conv 1x1 + BN + Relu] (96)
            └─> [Conv 1x1 + BN + Relu] (16)
After::

    x ──> [A + ... || B + ... || C + ...]  one convolution with 64+96+16 output channels;
          each member's output is a channel slice of the wide result

The merged layer keeps each former layer as one of its ``branches``. Which kernel sizes
merge is the target's fact (``Target.horizontal_kernels``: 1x1 only for ``classic``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, conv_tail
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="merge_siblings",
    conditions=(
        "two or more convolution layers read the same tensor as their only data input",
        "identical kernel, stride, padding, dilation and groups, of a size the target merges",
        "the same fused epilogue (same ops after the convolution with equal attributes) and no "
        "fused residual Add",
    ),
    source=(
        "NVIDIA's TensorRT 3 material on GoogLeNet (horizontal layer fusion: 'layers that take the "
        "same source tensor and apply the same operations with similar parameters' are combined "
        "into one larger layer, the Inception 3a figure); NVIDIA/TensorRT#2525 ('||' marks a "
        "horizontal fusion, TensorRT 8.x)"
    ),
    joins=(Join(frozenset({"Conv"}), frozenset({"Conv"}), siblings=True),),
)
__doc__ = RULE.document(__doc__)


def _signature(graph: Graph, work: Work, index: int) -> tuple[Any, ...] | None:
    """What must be equal for two convolution layers to merge (None: not a plain conv)."""
    layer = work.layer(index)
    ops = work.ops_of(index)
    if ops[0] != "Conv":
        return None
    conv = graph.node(layer.nodes[0])
    w = graph.tensors.get(conv.inputs[1]) if len(conv.inputs) > 1 else None
    kernel = tuple(conv.attrs.get("kernel_shape", ())) or (
        tuple(w.shape[2:]) if w and w.shape else ()
    )
    rank = len(kernel)
    geometry = (
        kernel,
        tuple(conv.attrs.get("strides", (1,) * rank)),
        tuple(conv.attrs.get("pads", (0,) * 2 * rank)),
        tuple(conv.attrs.get("dilations", (1,) * rank)),
        int(conv.attrs.get("group", 1)),
        str(conv.attrs.get("auto_pad", "NOTSET")),
    )
    epilogue = tuple(
        (graph.node(n).op, tuple(sorted((k, repr(v)) for k, v in graph.node(n).attrs.items())))
        for n in layer.nodes[1:]
        if graph.node(n).op != "BatchNormalization"
    )
    return geometry, epilogue


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    groups: dict[str, list[int]] = defaultdict(list)
    for index in work.live():
        tail = conv_tail(work.ops_of(index))
        if tail is None or work.ops_of(index)[0] != "Conv" or work.layer(index).merged:
            continue
        inputs = work.external_inputs(index)
        if len(inputs) != 1:
            continue  # a fused residual reads a second tensor: condition 3, reported below
        groups[inputs[0]].append(index)
    for tensor, members in groups.items():
        if len(members) < 2:
            continue
        heads = {i: work.layer(i).nodes[0] for i in members}
        by_signature: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for index in members:
            sig = _signature(graph, work, index)
            if sig is not None:
                by_signature[sig].append(index)
        for sig, same in by_signature.items():
            kernel = sig[0][0]
            names = [n for i in same for n in work.layer(i).nodes]
            if len(same) < 2:
                others = [heads[i] for i in members if i not in same]
                reject(2,
                    [heads[same[0]], *others],
                    f"no sibling of {tensor} with the same geometry and epilogue",
                )
                continue
            if ctx.target.horizontal_kernels == "1x1" and any(k != 1 for k in kernel):
                reject(2,
                    names,
                    f"kernel {'x'.join(map(str, kernel))}: target merges 1x1 only",
                )
                continue
            first = same[0]
            for other in same[1:]:
                work.merge(first, other, rule=RULE.name, horizontal=True)
    return work.finish()

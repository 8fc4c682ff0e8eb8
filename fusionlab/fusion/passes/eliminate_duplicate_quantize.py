"""eliminate_duplicate_quantize: two QuantizeLinear of one tensor with one scale are one.

Before::

    inputs.8 ─┬─> QuantizeLinear_65 -> DequantizeLinear_68 -> Conv_72       (block conv1)
              └─> QuantizeLinear_88 -> DequantizeLinear_91 -> Conv_95       (downsample)
After::

    inputs.8 ──> QuantizeLinear_65 ─┬─> DequantizeLinear_68 -> Conv_72
                                    └─> DequantizeLinear_91 -> Conv_95     (QuantizeLinear_88 gone)

The duplicate is eliminated (``How.DUPLICATE``, ``same_as`` the kept one): its readers read
the kept QuantizeLinear's INT8 output, so one quantization (and at most one reformat)
serves both. Quantizers of the same tensor with different scales stay two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Rule, alone
from fusionlab.fusion.qdq import Q, same_quantization
from fusionlab.plan import How, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

RULE = Rule(
    name="eliminate_duplicate_quantize",
    conditions=(
        "an earlier QuantizeLinear, still computed, reads the same tensor",
        "both use equal constant scales, zero points and axis",
        "its output is not a graph output",
    ),
    source=(
        "records/trex-resnet18-a100-qat (TensorRT 8, A100): each ResNet-18 downsample convolution "
        "has its own input quantizer on the block input, with the same scale as the block's first "
        "convolution; the engine's downsample layer reads that first QuantizeLinear's output "
        "(onnx::DequantizeLinear_198 of QuantizeLinear_65) and no layer computes QuantizeLinear_88; "
        "8.x guide §13.2.4.4 'Erase redundant Q/DQ nodes'; §7.4.5 (Q/DQ rewrites only when the "
        "compared scales are equal)"
    ),
    eliminates=frozenset({Q}),
)
__doc__ = RULE.document(__doc__)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    if ctx.target.qdq is None or not ctx.target.qdq.merge_duplicates:
        return plan
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    kept: dict[str, list[str]] = {}
    """Resolved input tensor -> QuantizeLinear nodes kept for it, in order."""
    for name, node, _ in alone(work, {Q}):
        if not node.inputs or work.is_const(node.inputs[0]):
            continue
        source = work.resolve(node.inputs[0])
        earlier = kept.setdefault(source, [])
        twin = next((k for k in earlier if same_quantization(graph, graph.node(k), node)), None)
        if twin is None:
            if earlier:
                reject(2, [earlier[0], name], f"two quantizations of {source} with different scales")
            earlier.append(name)
            continue
        if any(work.is_graph_output(t) for t in node.outputs if t):
            reject(3, [twin, name])
            earlier.append(name)
            continue
        work.eliminate(
            name, How.DUPLICATE,
            f"the same quantization of {source} as {twin} (equal scale and zero point): computed once",
            same_as=twin,
        )
    return work.finish()

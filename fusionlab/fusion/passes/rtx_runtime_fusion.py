"""rtx_runtime_fusion: a convolution and its pointwise epilogue are one JIT-fused kernel (R5).

Before::

    x -> Conv -> BatchNormalization -> LeakyRelu -> Conv2
After::

    x -> [Conv + BatchNormalization + LeakyRelu] -> Conv2     (``runtime_fusion __myl_CorrMulAdd...``)

Otherwise the convolution is a ``correlation`` kernel of its own and the epilogue a kgen
(``rtx_pointwise``), which also lists the convolution when its bias moves
(``rtx_share_bias``).

Live builds (TensorRT-RTX 1.7.1.116): ``cbr_then_conv`` (fused) vs ``cbr_single_out``,
``cbr_mid_output`` (split); ``cbr_then_maxpool``, ``cbr_then_avgpool``, ``gappool_bn_avg_out``,
``dag_1_3``, ``cat_BRR_conv`` vs ``cat_BRR_out``, ``cbr_then_gap``, ``fork_F7``,
``gappool_bn_gap_out``; ``fork_F2``, ``fork_F3``, ``fork_F11`` (one sink) vs ``fork_F9``;
``act_Selu_bn_conv``, ``act_PRelu_bn_conv``; ``misc_rf_graph_input_operand`` vs
``misc_rf_stem_operand``; R5e ``misc_two_bn_add_out`` vs ``misc_two_bn_add_conv``, ``dag_1_79``;
condition 8 ``se_block`` (``Conv + Sigmoid`` CASK, the scale Mul a kgen), efficientnet-b0,
mobilenetv3-large, regnet-y-400mf (fusionlab's zoo, built live).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_runtime_fusion",
    conditions=(
        "no tensor of the epilogue is a graph output",
        "every reader outside the epilogue is a convolution, a non-global pooling, a CASK "
        "convolution's residual Add, or a concat not in a graph output's buffer",
        "the epilogue has one sink (a chain; side exits to convolutions are fine)",
        "no select-based op (Selu, Softplus, PRelu) and no Softmax",
        "no operand is read straight from a network input",
        "the epilogue's result is not read only by pointwise ops that stay a kgen (R5e: then it joins that kgen)",
        "the epilogue is not computed by a Concat + pool kernel (rtx_concat_pool)",
        "every epilogue tensor has the convolution output's shape (no broadcast to a larger tensor, "
        "e.g. a squeeze-excitation scale Mul)",
        "no data-movement or normalization op (Transpose, Reshape, Split, LayerNormalization, ...) in "
        "the epilogue (R18a)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: cbr_then_conv, cbr_single_out, cbr_mid_output, cbr_then_maxpool, "
        "cbr_then_gap, fork_F2, fork_F3, fork_F9, fork_F11, act_Selu_bn_conv, misc_rf_graph_input_operand, "
        "misc_two_bn_add_out, misc_two_bn_add_conv, cat_BRR_conv, cat_BRR_out"
    ),
    joins=(Join(rtx_kit.CONV_OPS, rtx_kit.POINTWISE),),
)
__doc__ = RULE.document(__doc__)


def fusable_parts(
    s: rtx_kit.RtxState, heads: list[Node], parts: dict[str, list[Node]], region: set[str]
) -> dict[str, bool]:
    """For each head convolution of a pointwise region: does its part runtime-fuse?"""
    ok: dict[str, bool] = {}
    for h in heads:
        part = parts[h.name]
        failed = _failed(s, part, region, h) if part else 0
        if part and h.name in s.int8_pc:  # R14c: a per-channel int8 convolution never runtime-fuses
            s.reject("rtx_qdq", 3, [h.name, *(n.name for n in part)], "per-channel int8: no runtime fusion")
            ok[h.name] = False
            continue
        if not failed and any(n.outputs[0] in s.absorbed for n in part):
            failed = 7
        ok[h.name] = bool(part) and not failed
        if part and failed:
            s.reject(RULE.name, failed, [h.name, *(n.name for n in part)])
    part_of = {n.name: o for o in parts for n in parts[o]}
    changed = True
    while changed:  # R5e
        changed = False
        for h in heads:
            if not ok[h.name]:
                continue
            for n in parts[h.name]:
                outside = [c for c in s.consumers(n.outputs[0])
                           if c.name not in part_of or part_of[c.name] != h.name]
                if outside and all(c.name in region and (c.name not in part_of or not ok[part_of[c.name]])
                                   for c in outside):
                    ok[h.name] = False
                    s.reject(RULE.name, 6, [h.name, *(m.name for m in parts[h.name])])
                    changed = True
                    break
    return ok


def _failed(s: rtx_kit.RtxState, part: list[Node], region: set[str], head: Node | None = None) -> int:
    """The number of the first condition (1-5, 8) the epilogue ``part`` of ``head`` fails, or 0."""
    names = {n.name for n in part}
    if any(n.op in rtx_kit.NO_RUNTIME_FUSION for n in part):
        return 4
    if any(n.op in rtx_kit.MOVE_OPS or s.is_norm(n) for n in part):
        return 9
    if head is not None:
        shape = s.shape(head.outputs[0])
        if shape is not None and any(s.shape(n.outputs[0]) not in (None, shape) for n in part):
            return 8
    if any(t in s.graph_inputs for n in part for t in s.dyn_inputs(n)):
        return 5
    sinks = 0
    for n in part:
        t = n.outputs[0]
        if s.is_output(t):
            return 1
        cons = s.consumers(t)
        if not any(c.name in names for c in cons):
            sinks += 1
        for c in cons:
            if c.name in names or c.name in region:
                continue
            if not _fusable_consumer(s, c):
                return 2
    return 0 if sinks == 1 else 3


def _fusable_consumer(s: rtx_kit.RtxState, c: Node) -> bool:
    if c.op in rtx_kit.CONV_OPS or (c.op in rtx_kit.POOL_OPS and not s.is_global_pool(c)):
        return True
    if c.op in ("Split", "Slice", "Resize"):
        return True  # R20f: a kernel of its own (yolov8n: CorrSilu read by the neck's Resize)
    if c.name in s.cask_member:
        return True  # read by a CASK convolution kernel (its residual Add)
    if c.op == "Concat":
        if s.cmode.get(c.name, "inplace") in ("copy", "gap", "copy_kgen", "pw", "mover"):
            return True
        return not _in_output_buffer(s, c)
    return False


def _in_output_buffer(s: rtx_kit.RtxState, c: Node) -> bool:
    """An in-place concat whose buffer is (part of) a graph output (R6d, ``catnest_*``)."""
    if s.is_output(c.outputs[0]):
        return True
    return any(x.op == "Concat" and s.cmode.get(x.name, "inplace") == "inplace" and _in_output_buffer(s, x)
               for x in s.consumers(c.outputs[0]))


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the runtime fusions (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)

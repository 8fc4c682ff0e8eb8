"""rtx_concat_pool: a Concat read by a GlobalAveragePool is one kgen with it (R8).

Before::

    conv1 -> bn1 -> relu1 --\\
                             Concat -> GlobalAveragePool -> y
    conv2 ------------------/
After::

    [conv1], [conv2], [Concat + GlobalAveragePool + bn1 + relu1]   (``ConcMean``)

R8a: which convolution epilogues the kernel computes itself (those convolutions become
plain ``correlation`` kernels). Inputs are K (written as is: a CASK convolution, a
pooling), B (an epilogue with a BatchNormalization or two nodes or more) or L (a one-node
epilogue); only epilogues read by nothing but the concat qualify. One K: all epilogues;
no K: the B ones if there are at least as many B as L; two K or more: none. R8b: a
whole-map AveragePool behind the concat joins the kernel only if something is absorbed
(else it stays a CASK ``avgpool`` and the concat is in place). R8c: if the pool instead
does a following Gemm's reshape and nothing is absorbed, the concat is a copy.

Live builds (TensorRT-RTX 1.7.1.116): ``catx_<inputs>_gap`` for BR, RB, BP, PB, BBR, BRB,
RBB, BBBR, LR, AR, HR, LLR, bR, Rb, bbR, ER (absorbed); BRR, RBR, RRB, BRRR, RRRB, BBRR,
BBBRRR, BBBBRR, BPP, PPB, LRR (none); BB, BBB, bb, bbb, EE, QQ, BL, LB, AB, HB (the B ones);
LL, LLL, HH, AA, LLB (none); ``cat_*_gap``, the ``_dup0`` variants; googlenet
(``pool5/7x7_s1`` joins), googlenet-caffe (it does not); ``dag_1_16``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_concat_pool",
    conditions=(
        "the concat is read by a global (or whole-map) average pool alone and is not a graph output",
        "an input epilogue is read by the concat alone and the input classes allow it: one K input "
        "takes all epilogues; no K takes the B ones when #B >= #L; two K or more take none",
        rtx_kit.CONVEX,
    ),
    source="TensorRT-RTX 1.7.1.116 live builds: catx_*_gap, cat_*_gap, googlenet, googlenet-caffe, dag_1_16",
    joins=(
        Join(frozenset({"Concat"}), frozenset({"GlobalAveragePool", "AveragePool"})),
        Join(frozenset({"Concat"}), rtx_kit.POINTWISE),
    ),
)
__doc__ = RULE.document(__doc__)


def absorbs(s: rtx_kit.RtxState, classes: list[str], excl: list[str]) -> list[str]:
    """R8a: the epilogue outputs (among ``excl``) that the Concat + pool kernel computes."""
    nk, nb, nl = classes.count("K"), classes.count("B"), classes.count("L")
    if nk == 1:
        return list(excl)
    if nk == 0 and nb >= nl:
        return [x for x in excl if s.input_class(x) == "B"]
    if excl:
        s.reject(RULE.name, 2, [s.producer[x].name for x in excl if x in s.producer],
                 f"inputs {''.join(classes)}: the epilogues stay with their convolutions")
    return []


def gap_fc_first(s: rtx_kit.RtxState, gap: Node) -> bool:
    """R8c: the pool does the reshape of the one Gemm after it."""
    fc = [c for c in s.consumers(gap.outputs[0]) if c.op == "Gemm"]
    return len(fc) == 1 and rtx_kit.gap_takes_fc(s, gap, fc[0])


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the Concat + pool kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)

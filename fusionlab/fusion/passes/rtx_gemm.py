"""rtx_gemm: a Gemm is one GEMM kernel or kgen reductions, with its epilogue (R10, R11).

Before::

    GlobalAveragePool -> Flatten -> Gemm(K=64, N=10) -> Relu -> y
After::

    [GlobalAveragePool], [Gemm] (``ReshMulSum``), [Gemm + Relu] (``Add``: bias and act)

R10a (measured for one row, M = 1): a GEMM kernel (``runtime_fusion FcAdd`` with a bias,
``gemm`` without) iff (K >= 128 and N >= 768) or (K >= 384 and N >= 512); otherwise kgen
reductions: ``ReshMulSum [fc]`` + ``Add [fc]`` for K < 512, one ``ReshMulSumAdd [fc]`` for
K >= 512. More rows (16 and 64 seen): a GEMM kernel. R10b: a GlobalAveragePool -> Flatten
-> reduction Gemm: the pool kernel also does the Gemm's reshape (``MeanResh [gap fc]``)
when the pooled map has C*H*W > 16384 (a boundary not fully pinned down: ``gapfc_c64_hw17``,
``gapfc_c256_hw9``, ``gapfc_c512_hw7`` do not). R11: the GEMM regime fuses the bias and any
pointwise chain, a graph output too; the reduction regime puts bias + act in the ``Add``
kgen (K < 512) or all in one kernel (K >= 512). Softmax never fuses into the GEMM; the
bias moves to the softmax kernel (``rtx_share_bias``). Sibling MatMuls on one input (M = 64)
merge into one ``gemm`` (the attention q/k/v projections: not modelled here).
R21a: a GEMM-regime Gemm whose epilogue feeds only a reduction-regime Gemm is a bare ``gemm
[fc1]``; its bias and activation run in that Gemm's first kernel ``AddReluReshMulSum(Add) [fc1
relu1 fc2]`` (mlp21_{3136,1024}_1024_*); a reduction Gemm that is a graph output still moves its
bias into its reader's kgen (mnist-cookbook ``[node_linear_1 node_softmax]``). R21b: a Softmax
read by an ArgMax: the division runs with the ArgMax, ``AddMaxrSubExpSum [fc sm]`` +
``DivMaxr [sm am]`` (mlp21_*_argmax, mnist-cookbook).

Live builds (TensorRT-RTX 1.7.1.116): ``gemmgrid_*``, ``fc_*``, ``fc_gemm_m16_256x256_relu``,
``fc_matmul_3d_tokens``, ``fc_gemm_64x10_gelu``; ``gapfc_c24_hw32``, ``gapfc_c32_hw23``,
``gapfc_c64_hw18``, ``gapfc_c72_hw16``, ``gapfc_c128_hw12`` vs ``gapfc_c16_hw32``,
``gapfc_c32_hw22``, ``gapfc_c64_hw16``, ``gapfc_c128_hw11``; googlenet-caffe
(``loss3/classifier``, ``prob``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_gemm",
    conditions=(
        "the Gemm is in the GEMM regime ((K >= 128 and N >= 768) or (K >= 384 and N >= 512), or more "
        "than one row), or K >= 512 (one reduction kernel): else its epilogue is a kgen of its own",
        "no Softmax nor select-based op in the epilogue",
        "for the pool to take the Gemm's reshape: a reduction-regime Gemm, alone after a "
        "GlobalAveragePool of C*H*W > 16384",
        "the GEMM-regime Gemm's epilogue is not read by a reduction-regime Gemm alone (else that Gemm's "
        "first kernel computes it, R21a)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: gemmgrid_*, fc_*, gapfc_*, fc_gemm_m16_256x256_relu, "
        "fc_matmul_3d_tokens, googlenet-caffe"
    ),
    joins=(
        Join(frozenset({"Gemm", "MatMul"}), rtx_kit.POINTWISE),
        Join(frozenset({"GlobalAveragePool"}), frozenset({"Gemm"})),
    ),
)
__doc__ = RULE.document(__doc__)


def linear_k(s: rtx_kit.RtxState, n: Node) -> int:
    shp = s.shape(n.inputs[0])
    if not shp:
        return 0
    return shp[-1] if not n.attrs.get("transA") else shp[0]


def _has_bias(n: Node) -> bool:
    return n.op == "Gemm" and len(n.inputs) > 2 and bool(n.inputs[2])


def linear_epilogue(s: rtx_kit.RtxState, h: Node, part: list[Node]) -> list[str]:
    """R11: the pointwise ops after a Gemm/MatMul; returns what goes to the region's kgen
    (nothing when they fuse into the GEMM kernel; the Gemm itself last when its bias moves)."""
    names = [n.name for n in part]
    if not part:
        gemm(s, h)
        return []
    from fusionlab.fusion.passes import rtx_layout

    nxt = _reduction_reader(s, h, part)
    if nxt is not None:  # R21a: bare ``gemm [fc1]``; the epilogue runs in nxt's first kernel
        s.emit([h.name], rtx_kit.UNFUSED)
        s.gemm_prologue.setdefault(nxt.name, []).extend([h.name, *names])
        s.done.update(names)
        s.reject(RULE.name, 4, [h.name, *names, nxt.name], f"computed by {nxt.name}'s first kernel")
        return []
    stop = rtx_layout.gemm_epilogue_stop(s, h, part)
    if stop is not None:  # R18b: fused up to the first movement or normalization op
        fused, rest, link = stop
        s.emit([h.name, *(n.name for n in fused)], RULE.name if fused else rtx_kit.UNFUSED,
               kind=Kind.FUSED if fused else None)
        return [n.name for n in rest] + ([link] if link else [])
    blocked = any(n.op in rtx_kit.NO_RUNTIME_FUSION for n in part)
    regime = rtx_kit.gemm_regime(s, h)
    if not blocked and (regime == "fc" or linear_k(s, h) >= 512):
        s.emit([h.name, *names], RULE.name, kind=Kind.FUSED)  # FcAdd...: a runtime fusion
        return []
    s.reject(RULE.name, 2 if blocked else 1, [h.name, *names], f"{regime} regime, K = {linear_k(s, h)}")
    s.emit([h.name], rtx_kit.UNFUSED)
    return names + ([h.name] if _has_bias(h) else [])


def _reduction_reader(s: rtx_kit.RtxState, h: Node, part: list[Node]) -> Node | None:
    if rtx_kit.gemm_regime(s, h) != "fc" or h.op != "Gemm":
        return None
    pset = {n.name for n in part}
    sinks = [n for n in part if not any(c.name in pset for c in s.consumers(n.outputs[0]))]
    if len(sinks) != 1 or s.is_output(sinks[0].outputs[0]):
        return None
    cons = s.consumers(sinks[0].outputs[0])
    if len(cons) == 1 and cons[0].op == "Gemm" and rtx_kit.gemm_regime(s, cons[0]) == "reduce":
        return cons[0]
    return None


def settle(s: rtx_kit.RtxState) -> None:
    """R21a: the reduction Gemm's first kernel lists the Gemm before it and its epilogue."""
    for fc, pro in s.gemm_prologue.items():
        for gi, grp in enumerate(s.groups):
            if grp.nodes and grp.nodes[0] == fc:
                new = [x for x in pro if x not in grp.nodes]
                grp.nodes = grp.nodes + tuple(new)
                grp.kind = Kind.POINTWISE
                if grp.rule == rtx_kit.UNFUSED:
                    grp.rule = RULE.name
                for x in new:
                    s.group_of.setdefault(x, gi)
                break


def gemm(s: rtx_kit.RtxState, n: Node, rule: str = rtx_kit.UNFUSED) -> None:
    """A Gemm with nothing fused after it: one kernel, or two in the reduction regime with a
    bias and K < 512 (``ReshMulSum`` + ``Add``, both naming the Gemm). ``rule``: of the first
    (``rtx_gemm`` when another kernel already owns the Gemm)."""
    s.emit([n.name], rule)
    if _has_bias(n) and rtx_kit.gemm_regime(s, n) == "reduce" and linear_k(s, n) < 512:
        s.emit([n.name], RULE.name)


def decide(s: rtx_kit.RtxState) -> None:
    """The Gemms, pools, LRNs and convolutions no earlier rule placed."""
    from fusionlab.fusion.passes import rtx_conv_activation, rtx_lrn

    for n in s.nodes:
        if n.name in s.done or n.name in s.dead:
            continue
        if n.op in ("Gemm", "MatMul"):
            gemm(s, n)
        elif n.op in ("ArgMax", "ArgMin") and (src := s.source(n.inputs[0])) is not None and src.op == "Softmax":
            s.emit([src.name, n.name], RULE.name)  # R21b: the softmax's division runs with the ArgMax
        elif (s.is_global_pool(n) and (src := s.source(n.inputs[0])) is not None and src.op == "Conv"
              and rtx_conv_activation.grouped(s, src) and len(src.inputs) > 2 and bool(src.inputs[2])):
            # R16: the pool kernel adds a grouped convolution's bias (``AddMoveMean [gc gap]``;
            # grp16t_g{2,4,8}_none_gap, se13_grp_*)
            s.emit([n.name, src.name], RULE.name, kind=s.kind_of([n.name]))
        elif s.is_global_pool(n):
            fc = [c for c in s.consumers(n.outputs[0]) if c.op == "Gemm"]
            if len(fc) == 1 and rtx_kit.gap_takes_fc(s, n, fc[0]):
                s.emit([n.name, fc[0].name], RULE.name, kind=s.kind_of([n.name]))
                gemm(s, fc[0], RULE.name)
            else:
                if len(fc) == 1:
                    s.reject(RULE.name, 3, [n.name, fc[0].name])
                s.emit([n.name], rtx_kit.UNFUSED)
        elif n.op == "LRN":
            rtx_lrn.decide(s, n)
        elif n.op in rtx_kit.CONV_OPS or n.op in rtx_kit.POOL_OPS:
            s.emit([n.name], rtx_kit.UNFUSED)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the Gemm kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)

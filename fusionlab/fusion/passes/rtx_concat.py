"""rtx_concat: a Concat is written in place by its producers, or copied by a kernel (R6, R7).

Before::

    conv1 -> relu1 --\\                    x (network input) --\\
                      Concat -> conv3                          Concat -> y
    conv2 -> relu2 --/                    conv -> relu -------/
After::

    [conv1 + relu1], [conv2 + relu2]      [conv + relu], [Concat]  (``runtime_function __myl_Conc``)
    (Concat in no kernel: producers write their slice)

A copy kernel is made when (R6a) an input is a network input, a tensor occurs twice among
all concat inputs, an input is itself a graph output, or every input is a runtime fusion
whose epilogue has a BatchNormalization followed by an activation (googlenet's
``inception_3a/output``). A copy concat feeding a copy concat that is a kgen (a graph
output, or reading a network input) is the same kernel (R6b); a concat read only by such
a kgen joins it (R6c). A concat read by one pointwise op alone is done inside that op's
kgen (R7, ``rtx_pointwise``). A Concat + GlobalAveragePool is ``rtx_concat_pool``'s.

Live builds (TensorRT-RTX 1.7.1.116): ``catcopy_in_R``, ``catcopy_in_R_pool``,
``catcopy_R_in_out``, ``catcopy_twice``, ``catcopy_two_cats``, ``misc_concat_input_is_output``,
``cat_BBB_conv``, ``catx_BB_conv``, ``catx_SS_conv``, ``catx_BS_conv``, ``catx_EE_conv``,
googlenet; in place: ``cat_BRR_conv``, ``catx_BL_conv``, ``catx_BH_conv``, ``cat_bbb_conv``,
``catx_QQ_conv``, ``catx_LL_conv``, ``catcopy_stemcat``, ``catcopy_nested``,
``catcopy_nested_used``; chains: ``dag_1_48``, ``dag_1_0``, ``dag_1_6``, ``dag_1_74``;
R7: ``catcopy_cat_to_pw``, ``catcopy_cat_to_pw_B``, ``catcopy_cat_to_conv_and_pw``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_concat_pool as rtx_concat_pool
import fusionlab.fusion.passes.rtx_kit as rtx_kit
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import How, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_concat",
    conditions=(
        "no input is a network input, none occurs twice among all concat inputs, none is a graph "
        "output, and not every input is a BatchNormalization + activation epilogue (else a copy kernel)",
        "the concat is not read by a copy concat that is a kgen (else it joins that kernel)",
        "no input is a Split's or Resize's output (else a kgen recomputing that op does the concat, R20g, "
        "with the Resize input's epilogue read by nothing else, R20h) nor sliced inside a movement kgen "
        "(else a copy, R20e)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: catcopy_*, cat_*_conv, catx_*_conv, "
        "misc_concat_input_is_output, googlenet, dag_1_48, dag_1_0, dag_1_6, dag_1_74"
    ),
    joins=(Join(frozenset({"Concat"}), frozenset({"Concat"}), first_only=True, second_only=True),),
    eliminates=frozenset({"Concat"}),
)
__doc__ = RULE.document(__doc__)


def bn_act(s: rtx_kit.RtxState, t: str) -> bool:
    """``t`` ends a conv epilogue that holds a BatchNormalization followed by an activation."""
    epi = s.epilogue_of(s.res(t))
    if not epi:
        return False
    epi = sorted(epi, key=lambda n: n.index)
    ops = [n.op for n in epi]
    if "BatchNormalization" not in ops:
        return False
    i = ops.index("BatchNormalization")
    return any(s.is_act(n) for n in epi[i + 1 :])


def decide(s: rtx_kit.RtxState) -> None:
    """What each Concat becomes: ``copy``, ``copy_kgen``, ``gap``, ``pw`` or ``inplace``."""
    uses: dict[str, int] = {}
    concats = [n for n in s.nodes if n.op == "Concat" and n.name not in s.dead and n.name not in s.folded
               and not s.is_wire(n)]
    for c in concats:
        for t in s.dyn_inputs(c):
            uses[t] = uses.get(t, 0) + 1
    for c in concats:
        ins = s.dyn_inputs(c)
        t = c.outputs[0]
        out = s.is_output(t)
        cons = s.consumers(t)
        classes = [s.input_class(x) for x in ins]
        copy = ("I" in classes or any(uses[x] > 1 for x in ins)
                or any(s.is_output(x) for x in ins) or all(bn_act(s, x) for x in ins))
        gap = len(cons) == 1 and not out and s.is_global_pool(cons[0], pooling_too=True)
        excl = [x for x, k in zip(ins, classes, strict=True)
                if k in "BL" and [q.name for q in s.consumers(x)] == [c.name] and not s.is_output(x)]
        absorb: list[str] = []
        # R7b, R20e: a pointwise op or a movement op reading the concat alone does it in its kgen
        # (shufflenetv2 ``ConcReshTranReshSlicSlic``; shuf20_split, shuf20_slice)
        pw_next = len(cons) == 1 and not out and s.is_region_op(cons[0]) and cons[0].name not in s.done
        if copy and pw_next:
            mode = "pw"
        elif copy and not gap:
            mode = "copy_kgen" if out else "copy"
            if mode == "copy_kgen":
                absorb = excl
        elif gap:
            absorb = rtx_concat_pool.absorbs(s, classes, excl)
            if copy:
                mode = "copy_kgen"
            elif absorb:
                mode = "gap"
            elif rtx_concat_pool.gap_fc_first(s, cons[0]):
                mode = "copy"  # R8c: the pool goes with the Gemm; the concat is copied
            elif not s.is_global_pool(cons[0]):
                mode = "inplace"  # R8b: a whole-map AveragePool stays a CASK pooling
            else:
                mode = "gap"
        elif pw_next:
            mode = "pw"
        else:
            mode = "inplace"
        if mode == "inplace" and not copy:
            s.reject(RULE.name, 1, [c.name], "written in place by its producers")
        mode = _movers(s, c, ins, mode, absorb)
        s.cmode[c.name] = mode
        for x in absorb:
            s.absorbed[x] = c.name
        if mode in ("copy_kgen", "gap"):
            members = [c.name] + ([cons[0].name] if gap else [])
            s.cbin[c.name] = s.new_bin(members, rtx_concat_pool.RULE.name if gap else RULE.name)
        elif mode == "pw":
            s.cjoin[cons[0].name] = c.name
    for c in reversed(concats):  # R6c
        cons = s.consumers(c.outputs[0])
        if (s.cmode[c.name] in ("inplace", "copy") and len(cons) == 1 and cons[0].op == "Concat"
                and s.cmode.get(cons[0].name) == "copy_kgen" and not s.is_output(c.outputs[0])):
            outer = cons[0]
            s.cmode[c.name] = "copy_kgen"
            s.cbin[c.name] = s.cbin[outer.name]
            s.add_to_bin(s.cbin[c.name], [c.name])
            s.reject(RULE.name, 2, [c.name, outer.name], "joins the output copy kernel")
            for x in s.dyn_inputs(c):
                if (s.input_class(x) in "BL" and not s.is_output(x)
                        and [q.name for q in s.consumers(x)] == [c.name]):
                    s.absorbed[x] = c.name
    for c in concats:  # R6b
        if s.cmode.get(c.name) not in ("copy", "copy_kgen"):
            continue
        if not (s.cmode[c.name] == "copy_kgen" or any(x in s.graph_inputs for x in s.dyn_inputs(c))):
            continue
        for x in s.dyn_inputs(c):
            p = s.producer.get(x)
            if p is None or p.op != "Concat" or s.cmode.get(p.name) not in ("copy", "copy_kgen"):
                continue
            s.cunion[s.cfind(p.name)] = s.cfind(c.name)


def inside_movement(s: rtx_kit.RtxState, p: Node) -> bool:
    """``p`` (a movement op) reads another movement op or a Concat: it runs inside that kgen."""
    for t in s.dyn_inputs(p):
        q = s.producer.get(t)
        if q is not None and (q.op in rtx_kit.MOVE_OPS or q.op == "Concat"):
            return True
    return False


def _movers(s: rtx_kit.RtxState, c: Node, ins: list[str], mode: str, absorb: list[str]) -> str:
    """R20e/g/h: the concats of Split / Resize outputs and of inputs sliced in movement kgens."""
    movers = [p for x in ins if (p := s.producer.get(x)) is not None and p.op in ("Split", "Resize")
              and p.name not in s.done and not inside_movement(s, p)]
    if mode == "inplace" and any((p := s.producer.get(x)) is not None and p.op in rtx_kit.MOVE_OPS
                                 and inside_movement(s, p) for x in ins):
        s.reject(RULE.name, 3, [c.name], "an input sliced inside a movement kgen: copied")
        mode = "copy"  # shuf20_*: ``runtime_function Conc [cat2]``
    if mode not in ("inplace", "copy") or not movers:
        return mode
    # R20g: ``SlicConc [Split Concat]`` (yolov8n C2f; mover20_c2f_*), ``ResiConc [Resize Concat]``
    names = list(dict.fromkeys(p.name for p in movers))
    s.reject(RULE.name, 3, [*names, c.name], "done by a kgen that recomputes the Split/Resize")
    s.cbin[c.name] = s.new_bin([*names, c.name], RULE.name)
    s.recomputing.add(s.cbin[c.name])
    for mv in movers:
        if any(q.name != c.name for o in mv.outputs for q in s.consumers(o)):
            s.emit([mv.name], rtx_kit.UNFUSED)  # its own ``Slic`` kernel for the other readers
    for x in ins:  # R20h: the Resize input's epilogue read by nothing else (mover20_upcat_silu)
        p = s.producer.get(x)
        if p is None or p.op != "Resize" or p.name not in names:
            continue
        src = s.res(p.inputs[0])
        if [q.name for q in s.consumers(src)] != [p.name] or [q.name for q in s.consumers(x)] != [c.name]:
            continue
        if s.input_class(src) in "BL" and not s.is_output(src):
            absorb.append(src)
    return "mover"


def emit_copies(s: rtx_kit.RtxState) -> None:
    """Record the copy kernels (chains of copies as one), and the in-place concats."""
    chains: dict[str, list[str]] = {}
    for name, mode in s.cmode.items():
        if mode in ("copy", "copy_kgen"):
            chains.setdefault(s.cfind(name), []).append(name)
        elif mode == "inplace":
            s.eliminate(name, RULE.name, How.CONCAT, "its producers write their slice of its output")
        s.done.add(name)
        if mode == "mover":
            continue
    for names in chains.values():
        bins = list(dict.fromkeys(s.cbin[n] for n in names if n in s.cbin))
        if bins:
            b = bins[0]
            for n in names:
                if n not in s.bins[b]:
                    s.bins[b].append(n)
            for other in bins[1:]:
                s.bins[b].extend(m for m in s.bins[other] if m not in s.bins[b])
                s.bins[other] = []
        else:
            s.emit(names, RULE.name)


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Eliminate the in-place concats, form the copy kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)

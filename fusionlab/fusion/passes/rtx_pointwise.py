"""rtx_pointwise: connected pointwise ops are one generated kernel (``kgen``) (R3, R4, R7, R9).

Before::

    conv1 -> bn1 -> relu1 -> y1 -> sigmoid -> y2       (y1 and y2 graph outputs)
After::

    [conv1], [bn1 + relu1 + sigmoid]        (one kgen across the output and the fork)

Each connected set of free pointwise ops (BatchNormalization, activations, binary
element-wise ops, Softmax) is one kgen, crossing graph outputs and forks, unless
``rtx_runtime_fusion`` carves a convolution's epilogue out of it. R4: each node of the set
belongs to the convolution(s) whose output reaches it; a node fed by two (a residual Add
of two BN branches) goes to the one whose contribution nothing else reads, else to the one
whose branch starts *first* in the ONNX order. R7: a Concat read by one pointwise op alone
is done in that op's kgen. R9: a GlobalAveragePool/GlobalMaxPool reading the kgen's
output joins it (``Mean``/``Maxr`` reductions); MaxPool/AveragePool stay CASK kernels and
never take an activation. A kgen is convex: the nodes a path through another kernel comes
back to (a squeeze-excitation's scale Mul, which waits for the gate computed from the
kgen's own GlobalAveragePool) are a kgen of their own; where the path goes through other
kgens only (an output Concat's copy kernel that reads the region and feeds it), those kgens
join it instead (R15b, :func:`fusionlab.fusion.passes.rtx_kit`'s ``_merge_kgens``).

Live builds (TensorRT-RTX 1.7.1.116): ``dag_1_1``; R4 mobilenetv2
(``features.3.conv.3`` + ``features.3.add``), ``resorder_bn_a_*``, ``resorder_bn_s_a_b``,
``res_proj_bn``, ``res_proj_bn_proj_first``, ``siblings_1x1_bn_x2_add``; R7
``catcopy_cat_to_pw``, ``dag_1_145``; R9 ``pool_max_then_relu``, ``cbr_then_gap``, ``fork_F7``,
``se_block``, ``pool_gap_out``, ``pool_gmp_out``, ``gappool_*_avg_*``; convex split: ``se_block``,
efficientnet-b0 (fusionlab's zoo, built live).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import fusionlab.fusion.passes.rtx_gemm as rtx_gemm
import fusionlab.fusion.passes.rtx_kit as rtx_kit
import fusionlab.fusion.passes.rtx_layout as rtx_layout
import fusionlab.fusion.passes.rtx_qdq as rtx_qdq
import fusionlab.fusion.passes.rtx_runtime_fusion as rtx_runtime_fusion
import fusionlab.fusion.passes.rtx_share_bias as rtx_share_bias
from fusionlab.fusion.passes.kit import Context, Join, Rule
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph, Node

RULE = Rule(
    name="rtx_pointwise",
    conditions=(
        "the ops are pointwise and connected, none placed by an earlier rule",
        "a node fed by two convolution epilogues goes to the one nothing else reads, else to the "
        "branch that starts first",
        "a global pool reading a HardSwish joins its kgen only when the map has at most 16,384 elements "
        "or at most 7x7 positions (R13b: else the pool is a kgen of its own)",
        rtx_kit.CONVEX,
    ),
    source=(
        "TensorRT-RTX 1.7.1.116 live builds: dag_1_1, mobilenetv2, resorder_bn_*, res_proj_bn*, "
        "siblings_1x1_bn_x2_add, catcopy_cat_to_pw, cbr_then_gap, fork_F7, se_block, pool_max_then_relu, "
        "concat_kgen_cycle (tests/fusion/test_rtx_rules.py)"
    ),
    joins=(
        Join(rtx_kit.POINTWISE, rtx_kit.POINTWISE, first_only=True, second_only=True),
        Join(rtx_kit.POINTWISE, rtx_kit.GLOBAL_POOLS, second_only=True),
        Join(frozenset({"Concat"}), rtx_kit.POINTWISE, first_only=True),
    ),
)
__doc__ = RULE.document(__doc__)


def decide(s: rtx_kit.RtxState) -> None:
    """Find the pointwise regions and split each among the convolutions that feed it."""
    free = [n for n in s.nodes if n.name not in s.done and n.name not in s.dead and s.is_region_op(n)]
    free_names = {n.name for n in free}
    seen: set[str] = set()
    for n in free:
        if n.name in seen:
            continue
        region: list[Node] = [n]
        seen.add(n.name)
        stack = [n]
        while stack:
            cur = stack.pop()
            nbrs = [c for o in cur.outputs for c in s.consumers(o)
                    if (cur.name, c.name) not in s.cut and not _split_cut(s, cur, c)]
            nbrs += [p for i in s.dyn_inputs(cur) if (p := s.producer.get(i))
                     and (p.name, cur.name) not in s.cut and not _split_cut(s, p, cur)]
            nbrs += rtx_qdq.hoist_links(s, cur)
            nbrs += _concat_bridges(s, cur)
            for m in nbrs:
                if m.name in free_names and m.name not in seen:
                    seen.add(m.name)
                    region.append(m)
                    stack.append(m)
        region.sort(key=lambda x: x.index)
        _region(s, region)


def _split_cut(s: rtx_kit.RtxState, p: Node, c: Node) -> bool:
    """R20f: a Split/Slice/Resize reading a pointwise op is a kernel of its own (and lets that op's
    convolution epilogue runtime-fuse: split_bn_relu_two_convs, yolov8n C2f); after a movement op
    or a GEMM epilogue it joins that kgen (shufflenetv2; attn20_split)."""
    if c.op not in ("Split", "Slice", "Resize") or not s.is_pw(p):
        return False
    x: Node | None = p
    for _ in range(16):
        if x is None or not s.is_pw(x):
            break
        x = next((q for t in s.dyn_inputs(x) if (q := s.source(t)) is not None), None)
    return not (x is not None and s.is_linear(x))


def _concat_bridges(s: rtx_kit.RtxState, cur: Node) -> list[Node]:
    """R20d: a Concat done in its pointwise reader's kgen (R7) joins the kgen of the movement ops
    producing its inputs too (vit-s16 ``TranConcAdd... [/Transpose /Concat_2 /encoder/Add ln_1]``)."""
    out: list[Node] = []
    for c in (c for o in cur.outputs for c in s.consumers(o)):
        if c.op == "Concat" and s.cmode.get(c.name) == "pw" and not rtx_layout.is_nhwc_flatten(s, cur):
            out.extend(s.by_name[k] for k, v in s.cjoin.items() if v == c.name)
    if cur.name in s.cjoin:
        cat = s.by_name[s.cjoin[cur.name]]
        for t in s.dyn_inputs(cat):
            p = s.producer.get(t)
            if p is not None and p.op in rtx_kit.MOVE_OPS and not rtx_layout.is_nhwc_flatten(s, p):
                out.append(p)
    return out


def _region(s: rtx_kit.RtxState, region: list[Node]) -> None:
    region = rtx_layout.norm_transposes(s, region)
    if not region:
        return
    for n in list(region):  # R1b: a convolution's native activation feeding this region
        for t in s.dyn_inputs(n):
            p = s.producer.get(t)
            if p is not None and p.name in s.soft.values() and p not in region:
                region.append(p)
    region.sort(key=lambda x: x.index)
    names = {n.name for n in region}
    heads: list[Node] = []
    for n in region:
        for t in s.dyn_inputs(n):
            p = s.producer.get(t)
            if (p is not None and (p.op in rtx_kit.CONV_OPS or s.is_linear(p)) and p.name not in s.done
                    # R21a: a reduction Gemm's bias moves to its reader's kgen, a graph output too
                    and (not s.is_output(t) or (s.is_linear(p) and rtx_kit.gemm_regime(s, p) == "reduce"))
                    and all(c.name in names for c in s.consumers(t))
                    and p not in heads):
                heads.append(p)
    owner = _owners(s, region, heads)
    parts: dict[str, list[Node]] = {h.name: [] for h in heads}
    orphans: list[Node] = []
    for n in region:
        o = owner.get(n.name)
        (parts[o] if o is not None else orphans).append(n)
    kgen: list[str] = [n.name for n in orphans]
    added: dict[str, str] = {}
    target_bin: int | None = None
    ok = rtx_runtime_fusion.fusable_parts(s, heads, parts, names)
    for h in heads:
        part = parts[h.name]
        if s.is_linear(h):
            moved = rtx_gemm.linear_epilogue(s, h, part)
            kgen.extend(moved)
            if moved and moved[-1] == h.name:
                added[h.name] = rtx_share_bias.RULE.name
            continue
        absorbed_by = {s.absorbed[n.outputs[0]] for n in part if n.outputs[0] in s.absorbed}
        if absorbed_by:
            b = s.cbin[next(iter(absorbed_by))]
            act = s.soft.get(h.name)
            if act is not None:  # conv + native act stays CASK; the rest is absorbed
                s.emit([h.name, act], "rtx_conv_activation")
                s.add_to_bin(b, [n.name for n in part if n.name != act])
            else:
                s.emit([h.name], rtx_kit.UNFUSED)
                s.add_to_bin(b, [n.name for n in part])
                if rtx_share_bias.affine_entry(s, h):
                    s.add_to_bin(b, [h.name], added_by=rtx_share_bias.RULE.name)
            target_bin = b
            continue
        if ok[h.name]:
            s.emit([h.name, *(n.name for n in part)], rtx_runtime_fusion.RULE.name, kind=Kind.FUSED)
            s.rf.add(h.name)
            continue
        act = s.soft.get(h.name)
        if act is not None:
            s.emit([h.name, act], "rtx_conv_activation")
            s.cask_member[act] = h.name
            kgen.extend(n.name for n in part if n.name != act)
            continue
        s.emit([h.name], rtx_kit.UNFUSED)
        kgen.extend(n.name for n in part)
        if rtx_share_bias.affine_entry(s, h):
            kgen.append(h.name)
            added[h.name] = rtx_share_bias.RULE.name
    for n in orphans:
        if n.outputs[0] in s.absorbed:
            target_bin = s.cbin[s.absorbed[n.outputs[0]]]
    if not kgen:
        return
    order = {n.name: n.index for n in region}
    members = sorted((k for k in kgen if k in order), key=order.__getitem__)
    members += [k for k in kgen if k not in order]
    if target_bin is not None:
        b = target_bin
        s.add_to_bin(b, rtx_layout.drop_views(s, [m for m in members if m not in added]))
        bins = [b]
    else:
        bins = []
        pieces = rtx_layout.split_ln(s, convex_pieces(s, [m for m in members if m not in added]))
        for piece in rtx_layout.split_odd_transpose(s, pieces):
            piece = rtx_layout.drop_views(s, piece)
            if piece:
                joined = [s.cjoin[m] for m in piece if m in s.cjoin]
                bins.append(s.new_bin(joined + piece, RULE.name))
        if not bins:
            return
        b = bins[0]
    for m in members:
        if m in added:  # into the kgen of the node it feeds
            feeds = {c.name for c in s.consumers(s.by_name[m].outputs[0])}
            into = next((x for x in bins if feeds & set(s.bins[x])), b)
            s.add_to_bin(into, [m], added_by=added[m])
    for b in bins:
        for m in list(s.bins[b]):  # R9: a global pool reading the kernel's output joins it
            if m not in s.by_name:
                continue
            for c in s.consumers(s.by_name[m].outputs[0]):
                if s.is_global_pool(c) and c.name not in s.done:
                    if _hswish_gap_apart(s, s.by_name[m], c):
                        s.reject(RULE.name, 3, [m, c.name], "a HardSwish map of more than 16,384 elements and 7x7")
                        continue
                    s.add_to_bin(b, [c.name])


def _hswish_gap_apart(s: rtx_kit.RtxState, act: Node, pool: Node) -> bool:
    """R13b: a GlobalAveragePool reading a HardSwish (the op, or x*HardSigmoid(x)) is a kgen of
    its own (``MulAddMinMaxMulTran`` + ``Mean``) when the map has more than 16,384 elements and
    more than 7x7 positions. Micro se13_dw_hswish_hsig_c{C}_hw{HW}: apart for (96..672,14),
    (84,14) = 16,464, (288,8), (480,{8,10,12,28}), (32,{28,56}); together for (32..80,14)
    (80: 15,680), (240,8) = 15,360, every 7x7 up to (2048,7); SiLU always together
    (se13_dw_silu_hsig_c480_hw14); mobilenetv3-large blocks 11 and 12."""
    hs = act.op == "HardSwish"
    if act.op == "Mul":
        ins = s.dyn_inputs(act)
        hs = any((p := s.producer.get(t)) is not None and p.op == "HardSigmoid" and s.res(p.inputs[0]) in ins
                 for t in ins)
    shp = s.shape(act.outputs[0])
    if not hs or not shp or len(shp) != 4:
        return False
    return shp[1] * shp[2] * shp[3] > 16384 and shp[2] * shp[3] > 49


def _owners(s: rtx_kit.RtxState, region: list[Node], heads: list[Node]) -> dict[str, str | None]:
    """R4: each region node belongs to the head convolution whose epilogue computes it."""
    names = {n.name for n in region}
    head_of_tensor = {h.outputs[0]: h.name for h in heads}
    owner: dict[str, str | None] = {}
    for n in sorted(region, key=lambda x: x.index):
        srcs: dict[str, str] = {}
        for t in s.dyn_inputs(n):
            if t in head_of_tensor:
                srcs.setdefault(head_of_tensor[t], t)
            else:
                p = s.producer.get(t)
                o = owner.get(p.name) if p is not None and p.name in names else None
                if o:
                    srcs.setdefault(o, t)
        if not srcs:
            owner[n.name] = None
        elif len(srcs) == 1:
            owner[n.name] = next(iter(srcs))
        else:
            owner[n.name] = _merge_owner(s, n, srcs)
    return owner


def _merge_owner(s: rtx_kit.RtxState, n: Node, srcs: dict[str, str]) -> str:
    only = [o for o, t in srcs.items() if not s.is_output(t) and [c.name for c in s.consumers(t)] == [n.name]]
    pool = only or list(srcs)
    if len(pool) == 1:
        return pool[0]

    def start(o: str) -> int:
        return min(s.branch_start(s.by_name[o], s.by_name[q]) for q in pool if q != o)

    winner = min(pool, key=start)
    for o in pool:
        if o != winner:
            s.reject(RULE.name, 2, [o, n.name], f"{n.name} goes with {winner}'s epilogue")
    return winner


def _topo(s: rtx_kit.RtxState) -> dict[str, int]:
    """Live nodes' positions in a topological order of the resolved (R0b-aliased) graph."""
    if s.topo_pos is not None:
        return s.topo_pos
    live = [n for n in s.nodes if n.name not in s.dead]
    deps = {n.name: {p.name for t in s.dyn_inputs(n) if (p := s.producer.get(t)) is not None
                     and p.name not in s.dead} for n in live}
    out: list[str] = []
    placed: set[str] = set()
    pending = live
    while pending:
        rest = []
        for n in pending:
            if deps[n.name] <= placed:
                out.append(n.name)
                placed.add(n.name)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            out.extend(n.name for n in rest)
            break
        pending = rest
    pos = {name: i for i, name in enumerate(out)}
    s.topo_pos = pos
    return pos


def convex_pieces(s: rtx_kit.RtxState, members: list[str]) -> list[list[str]]:
    """R15: a kgen cannot hold two nodes when one depends on the other through a node outside
    it. Members are levelled by the number of outside kernels on their longest path from
    another member; each level's connected parts are one kgen (resnet18-qat: each block's
    BN/Add/ReLU/Q is its own kgen; convnext-t: each block's residual Add; micro ``cvx_*``)."""
    shared_dq = [m for m in members if rtx_qdq.recomputed_dq(s, m)]
    if shared_dq:  # R14a: a DQ listed by an int8 kernel too is recomputed: it joins its reader's piece
        parts = convex_pieces(s, [m for m in members if m not in shared_dq])
        for dq in shared_dq:
            readers = {c.name for c in s.consumers(s.by_name[dq].outputs[0])}
            next((pc for pc in parts if readers & set(pc)), parts[0]).append(dq)
        return parts
    mem = [m for m in members if m in s.by_name]
    if len(mem) < 2:
        return [members]
    transparent = {s.cjoin[m] for m in mem if m in s.cjoin} - set(mem)
    mset = set(mem) | transparent
    pos = _topo(s)
    order = sorted(pos, key=pos.__getitem__)
    lo = min(pos[m] for m in mem if m in pos) if any(m in pos for m in mem) else 0
    hi = max((pos[m] for m in mem if m in pos), default=0)
    d: dict[str, int] = {}
    val: dict[str, int] = {}
    for name in order[lo:hi + 1]:
        n = s.by_name[name]
        best = -1 if name not in mset else 0
        for t in s.dyn_inputs(n):
            p = s.producer.get(t)
            if p is None or (name in s.hoist and name in mset):
                continue
            if p.name in mset:
                best = max(best, d.get(p.name, 0))
            elif p.name in val and val[p.name] >= 0:
                best = max(best, val[p.name] + (1 if name in mset else 0))
        hs = s.hoist.get(name)
        if hs is not None and name in mset:
            hp = s.producer.get(hs)
            if hp is not None and hp.name in d:
                best = max(best, d[hp.name])
        if name in mset:
            d[name] = best
        else:
            val[name] = best
    levels: dict[int, list[str]] = {}
    for m in mem:
        levels.setdefault(d.get(m, 0), []).append(m)
    if len(levels) == 1:
        return [members]
    pieces: list[list[str]] = []
    for lv in sorted(levels):
        group = set(levels[lv])
        comp: dict[str, int] = {}
        for m in levels[lv]:
            if m in comp:
                continue
            k = len(pieces)
            pieces.append([])
            stack = [m]
            comp[m] = k
            while stack:
                x = stack.pop()
                pieces[k].append(x)
                nx = s.by_name[x]
                nb = [c.name for o in nx.outputs for c in s.consumers(o)]
                nb += [p.name for t in s.dyn_inputs(nx) if (p := s.producer.get(t))]
                nb += [h.name for h in rtx_qdq.hoist_links(s, nx)]
                nb += [h.name for h in _concat_bridges(s, nx)]
                for y in nb:
                    if y in group and y not in comp:
                        comp[y] = k
                        stack.append(y)
    rank = {m: i for i, m in enumerate(members)}
    pieces = [sorted(pc, key=rank.__getitem__) for pc in pieces]
    pieces[0].extend(x for x in members if x not in s.by_name)
    s.reject(RULE.name, len(RULE.conditions), members, f"not convex: {len(pieces)} kgens")
    return pieces


def softmax_output_tail(s: rtx_kit.RtxState) -> None:
    """R22: a Softmax that is a graph output gets one more kernel listing only it (``Move [sm]`` /
    ``Div [sm]``) when its axis is not the last or its tensor is an NHWC image (sm22_dfl_tr_sig,
    sm22_dfl_notr_sig, sm22_dfl_tr_nosig; micro softmax_out_image, axis 1 and -1); over the last axis
    of a row-major tensor it does not (prototype micro softmax_alone)."""
    for n in s.nodes:
        if n.op != "Softmax" or n.name in s.dead or not s.is_output(n.outputs[0]):
            continue
        shp = s.shape(n.outputs[0])
        if not shp:
            continue
        axis = int(n.attrs.get("axis", -1) or 0) % len(shp)
        if axis != len(shp) - 1 or rtx_layout.is_image(s, s.res(n.inputs[0])):
            s.groups.append(rtx_kit.Group(RULE.name, Kind.POINTWISE, (n.name,)))


def emit_kgens(s: rtx_kit.RtxState) -> None:
    """Record every kgen (the regions' and the concat kernels'); a kgen whose nodes are not
    convex leaves the nodes a path through other kernels comes back to for a kgen of their
    own (a squeeze-excitation's scale Mul after its GlobalAveragePool: ``se_block``)."""
    for b, members in enumerate(s.bins):
        rule = s.bin_rule[b]
        while members:
            later = set() if b in s.recomputing else _reentered(s, members)
            kept = [m for m in members if m not in later]
            if later and kept:
                s.reject(RULE.name, len(RULE.conditions), members,
                         f"{', '.join(later)} wait for other kernels: a kgen of their own")
            group = kept or members
            s.emit(group, rule, added_by={m: r for m, r in s.bin_added[b].items() if m in group})
            members = [m for m in members if m in later] if kept else []
            rule = RULE.name


def _reentered(s: rtx_kit.RtxState, members: list[str]) -> set[str]:
    """Members reached from a member through a node outside (not a wire), and the members they
    feed: they wait for that node."""
    inside = set(members)
    found: set[str] = set()
    seen: set[tuple[str, bool]] = set()
    stack = [(c.name, s.is_wire(c)) for m in members for o in s.by_name[m].outputs
             for c in s.readers.get(o, []) if c.name not in inside and c.name not in s.folded
             and not (c.name in s.int8 and rtx_qdq.recomputed_dq(s, m))]  # R14a: recomputed
    while stack:
        name, wire_only = stack.pop()
        if (name, wire_only) in seen:
            continue
        seen.add((name, wire_only))
        node = s.by_name[name]
        for o in node.outputs:
            for c in s.readers.get(o, []):
                if c.name in s.folded or (c.name in s.hoist and node.op in ("MaxPool", "GlobalAveragePool")):
                    continue  # R19a: shape arithmetic; R14b: the Q is computed before the pool, from its input
                if c.name in inside:
                    if not wire_only:
                        found.add(c.name)
                else:
                    stack.append((c.name, wire_only and s.is_wire(c)))
    todo = list(found)  # and what they feed inside: it waits too
    while todo:
        for o in s.by_name[todo.pop()].outputs:
            hoisted = [s.by_name[q] for q, t in s.hoist.items() if t == o]
            for c in [*s.readers.get(o, []), *hoisted]:
                if c.name in inside and c.name not in found:
                    found.add(c.name)
                    todo.append(c.name)
    return found


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """Form the kgen kernels (decided by :func:`rtx_kit.analyse`)."""
    return rtx_kit.apply(RULE, graph, plan, ctx)

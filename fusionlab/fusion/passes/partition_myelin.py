"""partition_myelin: sub-graphs TensorRT hands to its Myelin compiler become one layer each.

Before::

    x -> Conv -> Relu -> MaxPool -> Reshape -> Gemm -> Relu -> Gemm -> Softmax -> ArgMax
After::

    x -> Conv -> Relu -> MaxPool -> [{ForeignNode[Reshape...ArgMax]}]     (trt10, trt11)
         (the convolution, its activation and the pooling are left to the CASK passes)

TensorRT runs this partition before its classic fusions ("After Myelin optimization" comes
before "ConvReluFusion" in the 10.16 verbose log of records/cookbook-mnist-trt10.16-h100, and
in 7.x/8.x logs, NVIDIA/TensorRT#1389), so this pass runs before the CASK passes, which
leave Myelin layers alone. Regions grow in topological order: a node that Myelin takes
joins the region of the nodes it reads where that keeps the region convex (no path
leaves it and comes back, so the fused graph stays acyclic); a region with no trigger is
dissolved again. Which patterns trigger a region and which ops a region takes in are the
target's facts (``Target.myelin``, :mod:`fusionlab.fusion.myelin`): trt8 attention and
normalization chains; trt10/trt11 also every fully connected layer. The layer is named as
TensorRT names it, ``{ForeignNode[first...last]}`` (``{ForeignNode[x]}`` for one node), from
the first and last ONNX node of the region; TensorRT's own names can start or end at layers
its parser made (``gemm1.weight``, ``ONNXTRT_castHelper_9``), which no prediction can name.
The targets model the default builder optimization level (at level 5 TensorRT 10.16 may run
convolutions in Myelin too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from fusionlab.fusion.myelin import ATTENTION, LAYERNORM, WEIGHTED_MATMUL, MyelinRules
from fusionlab.fusion.partition import Work
from fusionlab.fusion.passes.kit import Context, Join, Rule, alone
from fusionlab.ir import ops
from fusionlab.plan import Kind, Plan

if TYPE_CHECKING:
    from fusionlab.ir.graph import Graph

MYELIN_OPS = frozenset(
    ops.POINTWISE | ops.GEMM | ops.DATA_MOVEMENT | ops.REDUCE
    | {"LayerNormalization", "Concat", "ArgMax", "ArgMin", "TopK", "Cast"}
) - {"Pad", "Constant"}
"""The ops any target's regions may hold (what ``diff`` blames a missed region on)."""

RULE = Rule(
    name="partition_myelin",
    conditions=(
        "the region holds a trigger of the target: a MatMul of two activations (attention), a "
        "LayerNormalization or its reduction chain (ReduceMean -> Sub), or, where fully connected "
        "layers are Myelin's, a Gemm or a MatMul with a constant operand",
        "every node is an op Myelin takes on this target (not a convolution, pooling, "
        "BatchNormalization, Resize or Pad, nor a ReduceMean over H and W, which becomes pooling)",
        "a point-wise node fed by a convolution whose output only point-wise nodes read stays "
        "with the convolution (its CASK epilogue)",
        "the region stays convex: no path leaves it and comes back (the fused graph stays acyclic)",
    ),
    source=(
        "NVIDIA/TensorRT#1782, #2323 (maintainer: Myelin takes sub-graphs of specific patterns, "
        "e.g. multi-head attention, point-wise ops); region names {ForeignNode[a...b]}: #1917, "
        "#2308 (8.x), #4397 (10.10); records/cookbook-mnist-trt10.16-h100 (TensorRT 10.16: a Gemm "
        "head with its Relu, Softmax and ArgMax is one region, convolutions and pooling stay CASK; "
        "the partition runs before the CASK fusions)"
    ),
    joins=(Join(MYELIN_OPS, MYELIN_OPS),),
)
__doc__ = RULE.document(__doc__)

_CASK_HEADS = frozenset({"Conv", "ConvTranspose", "BatchNormalization"})
"""Producers whose point-wise readers are CASK epilogues (condition 3)."""


def region_name(nodes: tuple[str, ...]) -> str:
    """TensorRT's name for a Myelin region from its first and last node.

    >>> region_name(("a", "b", "c")), region_name(("a",))
    ('{ForeignNode[a...c]}', '{ForeignNode[a]}')
    """
    inside = nodes[0] if len(nodes) == 1 else f"{nodes[0]}...{nodes[-1]}"
    return f"{{ForeignNode[{inside}]}}"


def _ints(graph: Graph, tensor: str) -> list[int] | None:
    value = graph.values.get(tensor)
    if value is None and tensor in graph.weights:
        value = graph.array(tensor)
    return None if value is None else [int(v) for v in value.ravel()]


def _spatial_mean(graph: Graph, name: str) -> bool:
    """A ReduceMean over H and W of a 4-D tensor: TensorRT makes it a Pooling layer."""
    node = graph.node(name)
    if node.op != "ReduceMean":
        return False
    src = graph.tensors.get(node.inputs[0])
    rank = len(src.shape) if src is not None and src.shape is not None else None
    axes = node.attrs.get("axes")
    if axes is None and len(node.inputs) > 1 and node.inputs[1]:
        axes = _ints(graph, node.inputs[1])
    if rank != 4 or not axes:
        return False
    return {int(a) % 4 for a in axes} == {2, 3}


TRIGGER_OPS = frozenset({"MatMul", "Gemm", "Einsum", "LayerNormalization", "ReduceMean"})
"""The ops that can be a trigger (:meth:`_Partition.trigger`): a graph with none of them
forms no region and has no region to explain, whatever grows."""


class _Partition:
    """The greedy region growth of one run (see the module docstring)."""

    def __init__(self, graph: Graph, work: Work, rules: MyelinRules) -> None:
        self.graph, self.work, self.rules = graph, work, rules
        self.position = graph.position
        self.alone = {name for name, _, _ in alone(work)}
        self.region: dict[str, int] = {}
        self.members: dict[int, list[str]] = {}
        self.frontier: dict[int, set[str]] = {}
        """Region -> processed nodes outside it that read it."""
        self.refused: dict[int, list[tuple[int, str]]] = {}
        """Region -> (condition, node) for readers or writers it could not take in."""
        self._succ: dict[str, list[str]] = {}
        self._next = 0

    # -- what a node is ----------------------------------------------------------------

    def producers(self, name: str) -> list[str]:
        out: list[str] = []
        for t in self.work.data_inputs(name):
            p = self.graph.producer.get(t)
            if p is not None and p in self.work.owner and p not in out:
                out.append(p)
        return out

    def successors(self, name: str) -> list[str]:
        found = self._succ.get(name)
        if found is None:
            found = list(dict.fromkeys(
                c for t in self.graph.node(name).outputs if t for c in self.work.consumers(t)
                if c in self.work.owner))
            self._succ[name] = found
        return found

    def refusal(self, name: str) -> int:
        """0 when Myelin takes the node, else the condition (2 or 3) that keeps it out."""
        node = self.graph.node(name)
        if name not in self.alone or node.opaque or node.op not in self.rules.absorbs:
            return 2
        if _spatial_mean(self.graph, name):
            return 2
        if node.op in ops.POINTWISE:
            for t in self.work.data_inputs(name):
                p = self.graph.producer.get(t)
                if p is None or self.graph.node(p).op not in _CASK_HEADS:
                    continue
                if all(self.graph.node(c).op in ops.POINTWISE for c in self.work.consumers(t)):
                    return 3
        return 0

    def trigger(self, name: str) -> str | None:
        """The trigger the node is, if any (whether the target uses it is checked later)."""
        node, data = self.graph.node(name), self.work.data_inputs(name)
        if node.op in ("MatMul", "Gemm", "Einsum"):
            if len(data) >= 2:
                return ATTENTION
            return WEIGHTED_MATMUL if len(data) == 1 else None
        if node.op == "LayerNormalization":
            return LAYERNORM
        if node.op == "ReduceMean" and data:
            x = data[0]
            for c in self.work.consumers(node.outputs[0]):
                sub = self.graph.node(c)
                if sub.op == "Sub" and [self.work.resolve(t) for t in sub.inputs[:1]] == [x]:
                    return LAYERNORM
        return None

    # -- growing -----------------------------------------------------------------------

    def convex(self, joined: Iterable[int], name: str, preds: list[str]) -> bool:
        """True when ``name`` and the regions ``joined`` make a convex region."""
        joined = set(joined)
        writers = set(preds)
        region = self.region

        def inside(n: str) -> bool:
            return region.get(n) in joined

        limit = self.position[name]
        stack = [n for r in joined for n in self.frontier[r] if not inside(n)]
        seen = set(stack)
        while stack:
            n = stack.pop()
            if inside(n) or n in writers:
                return False
            for c in self.successors(n):
                if c not in seen and self.position[c] < limit:
                    seen.add(c)
                    stack.append(c)
        return True

    def join(self, joined: list[int], name: str) -> int:
        first = joined[0]
        for r in joined[1:]:
            for m in self.members.pop(r):
                self.region[m] = first
                self.members[first].append(m)
            self.frontier[first] |= self.frontier.pop(r)
            self.refused.setdefault(first, []).extend(self.refused.pop(r, []))
        self.members[first].append(name)
        self.region[name] = first
        self.frontier[first] = {n for n in self.frontier[first] if self.region.get(n) != first}
        return first

    def grow(self) -> None:
        for name in self.graph.order:
            if name not in self.work.owner:
                continue  # eliminated (constant-folded, a no-op)
            preds = self.producers(name)
            touching = list(dict.fromkeys(self.region[p] for p in preds if p in self.region))
            why = self.refusal(name)
            home: int | None = None
            if why == 0:
                if touching and self.convex(touching, name, preds):
                    home = self.join(touching, name)
                else:
                    for r in sorted(touching, key=lambda r: -len(self.members[r])):
                        if self.convex([r], name, preds):
                            home = self.join([r], name)
                            break
                if home is None:
                    home, self._next = self._next, self._next + 1
                    self.members[home], self.frontier[home] = [name], set()
                    self.region[name] = home
            for r in touching:
                if r in self.members and r != self.region.get(name):
                    self.frontier[r].add(name)
                    self.refused.setdefault(r, []).append((why or 4, name))
            for p in preds:
                if home is not None and self.region.get(p) != home:
                    self.refused.setdefault(home, []).append((self.refusal(p) or 4, p))


def run(graph: Graph, plan: Plan, ctx: Context) -> Plan:
    rules = ctx.target.myelin
    if rules is None or not graph.names_with_ops(TRIGGER_OPS):
        return plan
    work = Work(graph, plan)
    reject = ctx.rejector(RULE)
    part = _Partition(graph, work, rules)
    part.grow()
    position = graph.position
    for r, members in sorted(part.members.items(), key=lambda kv: position[kv[1][0]]):
        nodes = tuple(sorted(members, key=position.__getitem__))
        found = {part.trigger(n) for n in nodes} - {None}
        if not found & rules.triggers:
            if any(graph.node(n).op in ops.GEMM for n in nodes):
                reject(1, nodes, f"{', '.join(sorted(str(f) for f in found))}: not a Myelin "
                                 f"trigger on target {ctx.target.name}")
            continue
        name = region_name(nodes)
        for condition, node in dict.fromkeys(part.refused.get(r, [])):
            if node not in nodes and condition in (2, 3, 4):
                reject(condition, [node], f"{node} stays outside {name}")
        work.merge_group(list(dict.fromkeys(work.owner[n] for n in nodes)), rule=RULE.name,
                         kind=Kind.MYELIN, name=region_name)
    return work.finish()

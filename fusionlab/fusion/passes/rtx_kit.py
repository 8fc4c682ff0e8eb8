"""What the TensorRT-RTX rules (the ``rtx_*`` passes) share: one view of the graph, one
decision state, and the pass that applies a rule's decisions.

TensorRT-RTX 1.7 hands the whole network to Myelin, whose kernels are not independent
local rewrites: whether a convolution keeps its activation depends on the epilogue after
it (R1b), concats are classified before epilogues and decide where the epilogues go (R6,
R8), and a pointwise region is split among the convolutions that feed it (R4). So the
rules decide together, once per graph, in the builder's order (:func:`analyse`): each
``rtx_<what>`` module holds its rule's decision code (functions over one
:class:`RtxState`) and its ``RULE``; the state records every kernel (a :class:`Group`,
tagged with the rule that formed it) and every rejection (with the failed condition).
Each pass then *applies* the groups its rule formed to the plan (:func:`apply`), so
``--stages`` shows the kernels appearing rule by rule, and ``diff`` finds the rejections.

A node may be in several kernels (a convolution whose bias moves into the next kgen; the
three kernels of an LRN): the first kernel that lists it owns it, the others list it in
``Layer.shared``.

Each pass's docstring names the live micro-builds that show its rule (TensorRT-RTX
1.7.1.116 on its CPU builder); ``tests/fusion/test_rtx_rules.py`` builds small ones again.
New rules go into a new ``rtx_<what>.py`` with its ``decide`` step called from
:func:`analyse`; shared predicates belong here.

>>> from fusionlab.ir.graph import load
>>> from onnx import helper, TensorProto, numpy_helper
>>> import numpy as np
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
>>> w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
>>> g = load(helper.make_model(helper.make_graph(
...     [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
...      helper.make_node("Relu", ["c"], ["y"], name="relu")], "g", [x], [y], [w])))
>>> [(grp.rule, grp.nodes) for grp in analyse(g).groups]
[('rtx_conv_activation', ('conv', 'relu'))]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fusionlab.plan import FUSED_SEP, Elimination, How, Kind, Layer, Plan
from fusionlab.plan.kinds import kind_of_op

if TYPE_CHECKING:
    from fusionlab.fusion.partition import Work
    from fusionlab.fusion.passes.kit import Context, Reject, Rule
    from fusionlab.fusion.targets import Target
    from fusionlab.ir.graph import Graph, Node

UNFUSED = "unfused"
CONVEX = "the kernel's nodes are convex: forming it leaves the fused graph acyclic"
"""The last condition of every RTX rule (a kernel the rules got wrong can cross another)."""

WIRES = frozenset({"Dropout", "Identity", "Flatten"})
"""Ops that never show in any kernel's Metadata (removed or absorbed as views)."""
CONV_OPS = frozenset({"Conv", "ConvTranspose"})
POOL_OPS = frozenset({"MaxPool", "AveragePool"})
GLOBAL_POOLS = frozenset({"GlobalAveragePool", "GlobalMaxPool"})
NATIVE_ACTS = frozenset({"Relu", "Sigmoid", "Tanh", "Clip"})
"""Activations a CASK convolution applies itself (Clip only as Clip(0, 6)), when no target
says otherwise (``Target.conv_activations`` of ``rtx``)."""
UNARY_PW = frozenset({
    "Relu", "Sigmoid", "Tanh", "LeakyRelu", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu",
    "Softplus", "Abs", "Exp", "Log", "Neg", "Sqrt", "Reciprocal", "Erf", "Floor", "Ceil",
    "BatchNormalization", "Cast", "Softsign", "Celu", "ThresholdedRelu", "Mish", "Gelu",
    "Softmax", "QuantizeLinear", "DequantizeLinear",
})
BINARY_PW = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu", "Where"})
POINTWISE = UNARY_PW | BINARY_PW
"""Ops Myelin puts into generated (``kgen``) kernels."""
NOT_IN_METADATA = frozenset({"Elu"})
"""Ops TensorRT-RTX 1.7 leaves out of every kernel's Metadata (``act_Elu_*``)."""
AFFINE_HEAD = frozenset({"BatchNormalization", "HardSigmoid"})
MOVE_OPS = frozenset({"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Gather", "Split", "Slice", "Resize"})
"""Data-movement ops Myelin computes inside the kgen of the region they touch (R18a)."""
VIEW_OPS = frozenset({"Reshape", "Squeeze", "Unsqueeze"})
NORM_OPS = frozenset({"LayerNormalization"})
NO_RUNTIME_FUSION = frozenset({"Selu", "Softplus", "PRelu", "Softmax"})
"""Pointwise ops that never join a convolution's runtime fusion (select-based ``Sele``; Softmax)."""


@dataclass
class Group:
    """One predicted RTX kernel: its nodes, the rule that formed it, its kind."""

    rule: str
    kind: Kind
    nodes: tuple[str, ...]
    added_by: dict[str, str] = field(default_factory=dict)
    """Node -> the rule that added it to this kernel later (R3b: a bias moved into a kgen)."""


@dataclass(frozen=True)
class Decision:
    """A candidate a rule turned down: (rule, condition number, nodes, detail)."""

    rule: str
    condition: int
    nodes: tuple[str, ...]
    detail: str = ""


class RtxState:
    """The graph as TensorRT-RTX's rules see it, plus the decisions taken so far.

    Wires (Dropout, Identity, Flatten) and duplicates merged by R0 are looked through:
    :meth:`res` gives the tensor that really holds the data, :meth:`consumers` the live
    readers. ``done`` holds the nodes already placed; ``emit`` records a kernel.
    """

    def __init__(self, graph: Graph, target: Target | None = None) -> None:
        self.graph = graph
        self.native = target.activations_for("fp32") if target is not None else NATIVE_ACTS
        """Activations a CASK convolution applies itself (the target's, strongly typed: one set)."""
        self.nodes: list[Node] = sorted(graph.nodes(), key=lambda n: n.index)
        self.by_name: dict[str, Node] = {n.name: n for n in self.nodes}
        self.producer: dict[str, Node] = {t: self.by_name[p] for t, p in graph.producer.items()}
        self.readers: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in dict.fromkeys(n.inputs):
                if i:
                    self.readers.setdefault(i, []).append(n)
        self.consts: set[str] = set(graph.weights) | {
            o for n in self.nodes if n.op == "Constant" for o in n.outputs
        }
        self.graph_inputs = {t.name for t in graph.inputs} - set(graph.weights)
        self.graph_outputs = set(graph.output_names)
        self.groups: list[Group] = []
        self.group_of: dict[str, int] = {}
        """Node -> index of the first kernel that lists it (its owner)."""
        self.done: set[str] = set()
        self.dead: dict[str, str] = {}
        """Node -> why R0 removed it."""
        self.alias: dict[str, str] = {}
        """Tensor -> the tensor it duplicates (R0b); written through :meth:`add_alias`."""
        self._resolved: dict[str, str] = {}
        """What :meth:`res` found, per tensor walked (forgotten when an alias is added)."""
        self.eliminated: dict[str, tuple[str, Elimination]] = {}
        """Node -> (rule, how) for nodes in no kernel."""
        self.decisions: list[Decision] = []
        self.cask: dict[str, list[str]] = {}
        """Convolution -> its CASK kernel so far (conv [+ add] [+ act]) (R1, R2)."""
        self.cask_member: dict[str, str] = {}
        self.soft: dict[str, str] = {}
        """Convolution -> the native activation it keeps unless it runtime-fuses (R1b)."""
        self.rf: set[str] = set()
        self.cmode: dict[str, str] = {}
        """Concat -> inplace | copy | copy_kgen | gap | pw (R6-R8)."""
        self.absorbed: dict[str, str] = {}
        """Concat input tensor -> the concat whose kernel computes its epilogue (R8a)."""
        self.cbin: dict[str, int] = {}
        self.cjoin: dict[str, str] = {}
        self.cunion: dict[str, str] = {}
        self.bins: list[list[str]] = []
        self.bin_rule: list[str] = []
        self.bin_added: list[dict[str, str]] = []
        self.bin_of: dict[str, int] = {}
        self.int8: set[str] = set()
        """Convolutions and Gemms reading a DequantizeLinear activation (R14a)."""
        self.int8_pc: set[str] = set()
        """... of those, the ones with per-channel weight scales (R14c)."""
        self.qextra: dict[str, list[str]] = {}
        """Int8 convolution/Gemm -> its DQ and weight-Q nodes (R14a)."""
        self.topo_pos: dict[str, int] | None = None
        """Live nodes' positions in a topological order of the resolved graph (R15; computed once)."""
        self.gemm_prologue: dict[str, list[str]] = {}
        """Reduction-regime Gemm -> the Gemm and epilogue its first kernel computes (R21a)."""
        self.recomputing: set[int] = set()
        """Bins that recompute a Split/Resize they list (R20g): a path back into them is no cycle."""
        self.folded: set[str] = set()
        """Nodes of shape arithmetic, folded (R19a)."""
        self.folded_t: set[str] = set()
        self.fold_attach: dict[str, list[str]] = {}
        """Node -> the float folded nodes its kernels list (R19b)."""
        self.kextra: dict[str, list[str]] = {}
        """Convolution -> nodes its kernel lists too (R18c: the Transpose before it)."""
        self.ln_split: set[str] = set()
        """Transposes that split their LayerNorm kgen in two (R18c)."""
        self.cut: set[tuple[str, str]] = set()
        """Edges (producer, reader) a pointwise region does not follow (R14b)."""
        self.hoist: dict[str, str] = {}
        """QuantizeLinear -> the tensor before the pool it reads, which it is computed from (R14b)."""

    # -- the graph, looked through wires and duplicates ----------------------------------

    def op(self, name: str) -> str:
        return self.by_name[name].op

    def is_wire(self, n: Node) -> bool:
        """A node no kernel computes: Dropout, Identity, Flatten, a Concat of one input."""
        if n.op == "Concat":
            return len([i for i in n.inputs if i]) == 1
        return n.op in WIRES and bool(n.inputs)

    def is_const(self, t: str) -> bool:
        return t in self.consts

    def const_value(self, t: str) -> float | None:
        """The value of a scalar constant tensor, or None."""
        if t in self.graph.weights:
            try:
                arr = self.graph.array(t)
            except Exception:
                return None
            return float(arr.reshape(-1)[0]) if arr.size == 1 else None
        p = self.producer.get(t)
        if p is not None and p.op == "Constant":
            v: Any = p.attrs.get("value")
            while isinstance(v, list | tuple) and len(v) == 1:
                v = v[0]
            return float(v) if isinstance(v, int | float) else None
        return None

    def const_key(self, t: str) -> object:
        """A hashable key of a constant tensor's value (an initializer or a Constant node's)."""
        if t in self.graph.weights:
            try:
                a = self.graph.array(t)
            except Exception:
                return t
            return (str(a.dtype), a.shape, a.tobytes())
        p = self.producer.get(t)
        if p is not None and p.op == "Constant":
            return repr(p.attrs.get("value"))
        return t

    def const_size(self, t: str) -> int:
        """The number of elements of a constant tensor (1 when unknown)."""
        if t in self.graph.weights:
            try:
                return int(self.graph.array(t).size)
            except Exception:
                return 1
        p = self.producer.get(t)
        v: Any = p.attrs.get("value") if p is not None and p.op == "Constant" else None
        return len(v) if isinstance(v, list | tuple) else 1

    def dyn_inputs(self, n: Node) -> list[str]:
        return [self.res(i) for i in n.inputs if i and not self.is_const(i)]

    def add_alias(self, duplicate: str, original: str) -> None:
        """Record that tensor ``duplicate`` holds the same data as ``original`` (R0b)."""
        self.alias[duplicate] = original
        self._resolved.clear()

    def res(self, t: str) -> str:
        """The tensor that really holds ``t``'s data (through wires and R0b duplicates).

        Every tensor walked on the way is remembered with the answer: a chain of 30,000
        Identity nodes is walked once, not once per lookup (campaign seed 24: a 30,000-node
        chain took over 60 s, quadratic).
        """
        resolved = self._resolved
        walked: list[str] = []
        while True:
            known = resolved.get(t)
            if known is not None:
                t = known
                break
            walked.append(t)
            if t in self.alias:
                t = self.alias[t]
                continue
            p = self.producer.get(t)
            if p is not None and self.is_wire(p):
                t = p.inputs[0]
                continue
            break
        for w in walked:
            resolved[w] = t
        return t

    def is_pw(self, n: Node) -> bool:
        return n.op in POINTWISE

    def is_region_op(self, n: Node) -> bool:
        """A member of the pointwise region it touches (R18a): a pointwise op, a data-movement
        op (a Gather by a constant index; not a Transpose that moves no data, R18d), a
        LayerNormalization, a ReduceMean over the last axis."""
        if self.is_pw(n):
            return True
        if n.op in MOVE_OPS:
            if n.op == "Gather" and not (len(n.inputs) > 1 and self.is_const(n.inputs[1])):
                return False
            return not self.is_shape_only(n)
        if n.op in NORM_OPS:
            return True
        if n.op == "ReduceMean":
            shp = self.shape(self.res(n.inputs[0]))
            ax: Any = n.attrs.get("axes")
            if ax is None and len(n.inputs) > 1 and n.inputs[1] in self.graph.weights:
                ax = [int(a) for a in self.graph.array(n.inputs[1]).reshape(-1)]
            if shp and ax is not None:
                return [int(a) % len(shp) for a in ax] == [len(shp) - 1]
        return False

    def is_norm(self, n: Node) -> bool:
        return n.op in NORM_OPS or (n.op == "ReduceMean" and self.is_region_op(n))

    def is_shape_only(self, n: Node) -> bool:
        """R18d: a Transpose that moves no data (its non-1 dims keep their order) read only by
        GEMMs runs in no kernel (convnext-t ``classifier.0/Transpose_1``)."""
        if n.op != "Transpose":
            return False
        shp = self.shape(self.res(n.inputs[0]))
        perm = n.attrs.get("perm")
        if not shp or perm is None:
            return False
        kept = [p for p in perm if shp[p] != 1]
        if kept != sorted(kept):
            return False
        cons = [c for c in self.consumers(n.outputs[0]) if c.op != "Shape"]
        return bool(cons) and all(c.op in ("Gemm", "MatMul") for c in cons)

    def source(self, t: str) -> Node | None:
        return self.producer.get(self.res(t))

    def is_act(self, n: Node) -> bool:
        return self.is_pw(n) and n.op not in {"BatchNormalization", "Add", "Sub", "Mul", "Div"}

    def is_native_act(self, n: Node) -> bool:
        if n.op not in self.native:
            return False
        if n.op == "Clip":
            lo, hi = self.clip_bounds(n)
            return lo == 0.0 and hi == 6.0
        return True

    def clip_bounds(self, n: Node) -> tuple[float | None, float | None]:
        vals: list[float | None] = [self.const_value(i) if i else None for i in n.inputs[1:3]]
        while len(vals) < 2:
            vals.append(None)
        if "min" in n.attrs:
            vals[0] = float(n.attrs["min"])
        if "max" in n.attrs:
            vals[1] = float(n.attrs["max"])
        return vals[0], vals[1]

    def consumers(self, t: str) -> list[Node]:
        """Live readers of ``t``, looking through wires and duplicates."""
        out: list[Node] = []
        for c in self.readers.get(t, []):
            if c.name in self.dead or c.name in self.folded:
                continue
            if self.is_wire(c):
                out.extend(self.consumers(c.outputs[0]))
            else:
                out.append(c)
        for dup, orig in self.alias.items():
            if orig == t:
                out.extend(self.consumers(dup))
        return list({c.name: c for c in out}.values())

    def single_consumer(self, t: str) -> Node | None:
        cons = self.consumers(t)
        return cons[0] if len(cons) == 1 else None

    def is_output(self, t: str) -> bool:
        if t in self.graph_outputs:
            return True
        if any(self.is_wire(c) and self.is_output(c.outputs[0]) for c in self.readers.get(t, [])):
            return True
        return any(orig == t and self.is_output(dup) for dup, orig in self.alias.items())

    def shape(self, t: str) -> tuple[int, ...] | None:
        tensor = self.graph.tensors.get(t)
        if tensor is None or tensor.shape is None or not all(isinstance(d, int) for d in tensor.shape):
            return None
        return tuple(d for d in tensor.shape if isinstance(d, int))

    def ancestors(self, n: Node) -> set[str]:
        out: set[str] = set()
        stack = [n]
        while stack:
            cur = stack.pop()
            for i in self.dyn_inputs(cur):
                p = self.producer.get(i)
                if p is not None and p.name not in out:
                    out.add(p.name)
                    stack.append(p)
        return out

    def branch_start(self, head: Node, other: Node) -> int:
        """Smallest ONNX index among ``head`` and its ancestors that are not ``other``'s."""
        own = (self.ancestors(head) - self.ancestors(other)) | {head.name}
        return min(self.by_name[x].index for x in own)

    def is_global_pool(self, n: Node, pooling_too: bool = False) -> bool:
        """GlobalAveragePool/GlobalMaxPool (kgen reductions); with ``pooling_too`` also an
        AveragePool/MaxPool whose window is the whole map."""
        if n.op in GLOBAL_POOLS:
            return True
        if pooling_too and n.op in POOL_OPS:
            shp = self.shape(self.res(n.inputs[0]))
            k = n.attrs.get("kernel_shape")
            pads = n.attrs.get("pads") or [0, 0, 0, 0]
            if shp and k and len(shp) == 4 and list(k) == list(shp[2:]) and not any(pads):
                return True
        return False

    def is_linear(self, n: Node) -> bool:
        """Gemm, or MatMul by a constant matrix."""
        return n.op == "Gemm" or (n.op == "MatMul" and len(n.inputs) > 1 and n.inputs[1] in self.consts)

    def epilogue_of(self, t: str) -> list[Node] | None:
        """The free pointwise nodes computing ``t`` back to a bare conv, or None."""
        nodes: list[Node] = []
        stack = [t]
        reached_conv = False
        seen: set[str] = set()
        while stack:
            x = stack.pop()
            p = self.producer.get(x)
            if p is None or p.name in seen:
                continue
            if p.op in CONV_OPS and p.name not in self.done:
                reached_conv = True
                continue
            if not self.is_pw(p) or p.name in self.done:
                return nodes if reached_conv else None
            seen.add(p.name)
            nodes.append(p)
            stack.extend(self.dyn_inputs(p))
        return nodes if reached_conv else None

    def input_class(self, t: str) -> str:
        """'I' graph input, 'K' written by a kernel as is, 'B' / 'L' a conv's pointwise
        epilogue (B: holds a BatchNormalization or two nodes or more; L: one node)."""
        t = self.res(t)
        p = self.producer.get(t)
        if p is None:
            return "I" if t in self.graph_inputs else "K"
        if not self.is_pw(p) or p.name in self.done:
            return "K"
        epi = self.epilogue_of(t)
        if epi is None:
            return "B"
        if any(n.op == "BatchNormalization" for n in epi) or len(epi) >= 2:
            return "B"
        return "L"

    def in_cask(self, name: str) -> bool:
        return any(name in grp[1:] for grp in self.cask.values())

    # -- decisions ---------------------------------------------------------------------

    def emit(self, names: Sequence[str], rule: str, kind: Kind | None = None,
             added_by: dict[str, str] | None = None) -> int:
        """Record a kernel of ``names`` (less the ops no Metadata names) formed by ``rule``."""
        self.done.update(names)
        kept = tuple(dict.fromkeys(x for x in names if self.op(x) not in NOT_IN_METADATA))
        if kept:
            self.groups.append(Group(rule, kind or self.kind_of(kept), kept, dict(added_by or {})))
            for n in kept:
                self.group_of.setdefault(n, len(self.groups) - 1)
        return len(self.groups) - 1

    def kind_of(self, names: Sequence[str]) -> Kind:
        """The kind of a kernel of ``names``: its library kernel's (a convolution is a CASK
        ``correlation``, a pooling ``maxpool``/``avgpool``), a lone Concat's copy
        (``runtime_function``), else a generated kernel (``kgen``: point-wise; reductions).
        Runtime fusions (``runtime_fusion``) are :attr:`Kind.FUSED`, given by their rules."""
        head = self.by_name[names[0]]
        if head.op in CONV_OPS or self.is_linear(head) or head.op in POOL_OPS or head.op == "LRN":
            return kind_of_op(head.op)
        if head.op == "Concat" and len(names) == 1:
            return Kind.CONCATENATION
        if all(self.op(n) in GLOBAL_POOLS for n in names):
            return Kind.REDUCE
        return Kind.POINTWISE  # a Myelin-generated (kgen) kernel

    def reject(self, rule: str, condition: int, nodes: Iterable[str], detail: str = "") -> None:
        self.decisions.append(Decision(rule, condition, tuple(dict.fromkeys(nodes)), detail))

    def eliminate(self, node: str, rule: str, how: How, reason: str) -> None:
        self.eliminated.setdefault(node, (rule, Elimination(how, reason)))
        self.done.add(node)

    def new_bin(self, members: Sequence[str], rule: str) -> int:
        self.bins.append(list(members))
        self.bin_rule.append(rule)
        self.bin_added.append({})
        for m in members:
            self.bin_of[m] = len(self.bins) - 1
        self.done.update(members)
        return len(self.bins) - 1

    def add_to_bin(self, b: int, members: Sequence[str], added_by: str | None = None) -> None:
        for m in members:
            if added_by is not None and m not in self.bins[b]:
                self.bin_added[b][m] = added_by
        self.bins[b].extend(members)
        for m in members:
            self.bin_of.setdefault(m, b)
        self.done.update(members)

    def cfind(self, name: str) -> str:
        while self.cunion.get(name, name) != name:
            name = self.cunion[name]
        return name


_MEMO: list[tuple[Graph, Target | None, RtxState]] = []


def analyse(graph: Graph, target: Target | None = None) -> RtxState:
    """Run every RTX rule's decisions over ``graph`` with ``target``'s tables, in the builder's
    order (memoized for the last few graphs, by identity: every ``rtx_*`` pass of one
    prediction reads the same one)."""
    for known, known_target, state in _MEMO:
        if known is graph and known_target is target:
            return state
    from fusionlab.fusion.passes import (  # the rules import this kit: imported here
        rtx_concat,
        rtx_conv_activation,
        rtx_conv_add,
        rtx_eliminate,
        rtx_fold,
        rtx_gemm,
        rtx_layout,
        rtx_pointwise,
        rtx_qdq,
    )

    s = RtxState(graph, target)
    rtx_eliminate.decide(s)
    rtx_layout.decide(s)
    rtx_fold.matmul_scalars(s)
    rtx_layout.absorbed_operands(s)
    rtx_qdq.decide(s)
    rtx_conv_activation.decide(s)
    rtx_conv_add.decide(s)
    rtx_conv_activation.settle(s)
    rtx_concat.decide(s)
    rtx_pointwise.decide(s)
    rtx_concat.emit_copies(s)
    rtx_qdq.own_hoisted(s)
    rtx_pointwise.emit_kgens(s)
    rtx_gemm.decide(s)
    rtx_pointwise.softmax_output_tail(s)
    rtx_gemm.settle(s)
    rtx_qdq.settle(s)
    rtx_layout.settle(s)
    rtx_fold.settle(s)
    for n in s.nodes:  # anything no rule placed is a kernel of its own
        if n.name not in s.done and n.name not in s.dead:
            s.emit([n.name], UNFUSED)
    for n in s.nodes:
        if n.name not in s.group_of and n.name not in s.eliminated:
            s.eliminate(n.name, "rtx_eliminate", How.ABSORBED, _why_absent(s, n))
    _MEMO.append((graph, target, s))
    del _MEMO[:-4]
    return s


def _why_absent(s: RtxState, n: Node) -> str:
    if n.name in s.dead:
        return s.dead[n.name]
    if n.op in NOT_IN_METADATA:
        return f"TensorRT-RTX 1.7 names no {n.op} in any kernel's Metadata"
    return "in no TensorRT-RTX kernel"


def apply(rule: Rule, graph: Graph, plan: Plan, ctx: Context) -> Plan:
    """The pass of ``rule``: form the kernels it decided (owned nodes merged into one layer,
    nodes other kernels own listed as shared), eliminate the nodes it removed, and record its
    rejections in ``ctx``."""

    from fusionlab.fusion.partition import CycleError

    runs_rtx = rule.name in ctx.target.passes  # a target of RTX rules gives its tables
    s = analyse(graph, ctx.target if runs_rtx else None)
    reject = ctx.rejector(rule)
    for d in s.decisions:
        if d.rule == rule.name:
            reject(d.condition, d.nodes, d.detail)
    try:
        return _apply(s, rule, graph, plan, None)
    except CycleError:  # a kernel the rules got wrong is not convex: form the others only
        return _apply(s, rule, graph, plan, reject)


def _apply(s: RtxState, rule: Rule, graph: Graph, plan: Plan, careful: Reject | None) -> Plan:
    """Form ``rule``'s kernels; with ``careful`` (a reject function) check each kernel first
    and leave out, rejected on the last condition, one that would make the fused graph cyclic."""
    from fusionlab.fusion.partition import Work

    work = Work(graph, plan)
    for node, (by, elimination) in s.eliminated.items():
        if by == rule.name and node in work.owner and work.layer(work.owner[node]).nodes == (node,):
            work.eliminate(node, elimination.how, elimination.reason)
    for gi, grp in enumerate(s.groups):
        if grp.rule == rule.name:
            between = set() if careful is None else _between(work, [n for n in _owned(s, gi, grp) if n in work.owner])
            if between and not _kgens(work, grp, between):
                assert careful is not None
                careful(len(rule.conditions), grp.nodes, "the kernel would not be convex")
                continue
            _form(work, s, gi, grp)
            if between:  # kgens that would wait for each other are one kgen
                _merge_kgens(work, s, gi, grp, between)
        late = [n for n, by in grp.added_by.items() if by == rule.name]
        if late:
            index = _layer_of_group(work, s, gi, grp)
            if index is not None:
                work.share(index, [n for n in late if n in work.owner and work.owner[n] != index])
    return work.finish()


def _between(work: Work, owned: Sequence[str]) -> set[int]:
    """The layers on a path that leaves one of the layers of ``owned`` and comes back into
    another: merging those layers alone would put a cycle into the fused graph (empty: it
    would not). The walk is over layers: a path that enters a layer at one node may leave it
    from any other (a Concat kernel ``concat3 + concat4`` entered at concat4, left at concat3);
    a path through eliminated nodes only (folded shape arithmetic) is no layer."""
    graph = work.graph
    owner = work.owner
    members = {owner[n] for n in owned}
    if len(members) < 2:
        return set()

    def reach(step: Callable[[str], Iterable[str]]) -> set[int]:
        found: set[int] = set()
        seen: set[str] = set()
        stack = [v for i in members for n in work.layer(i).owned for v in step(n)]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            index = owner.get(v)
            if index in members:
                continue
            if index is None:  # eliminated: the path goes on through it
                stack.extend(step(v))
            elif index not in found:
                found.add(index)
                stack.extend(w for n in work.layer(index).owned for w in step(n))
        return found

    return reach(graph.successors) & reach(graph.predecessors)


def _kgens(work: Work, grp: Group, between: set[int]) -> bool:
    """Whether ``grp`` and the layers ``between`` its parts are all generated kernels (kgen)."""
    return grp.kind is Kind.POINTWISE and all(
        work.layer(i).kind is Kind.POINTWISE and not work.layer(i).inserted for i in between)


def _merge_kgens(work: Work, s: RtxState, gi: int, grp: Group, between: set[int]) -> None:
    """R15b: a kgen whose nodes a path through other kgens connects takes those kgens in: Myelin
    generates one kernel where two would each wait for the other. Live build (TensorRT-RTX
    1.7.1.116), tests/fusion/test_predict_properties.py's ``concat3 + concat4`` net: the output
    Concat's copy kernel and the pointwise region it reads and feeds are one kgen
    (``__myl_ConcReluAddAddReluConc``: relu2, relu5, concat4, add9, add11, concat3)."""
    into = work.owner[next(n for n in _owned(s, gi, grp) if n in work.owner)]
    position = work.graph.position
    indices = sorted({into, *between}, key=lambda i: min(position[n] for n in work.layer(i).owned))
    work.merge_group(indices, rule=grp.rule, kind=grp.kind, name=FUSED_SEP.join)


def _owned(s: RtxState, gi: int, grp: Group) -> list[str]:
    return [n for n in grp.nodes if s.group_of.get(n) == gi]


def _layer_of_group(work: Work, s: RtxState, gi: int, grp: Group) -> int | None:
    owned = [n for n in _owned(s, gi, grp) if n in work.owner]
    if owned:
        index = work.owner[owned[0]]
        return index if work.layer(index).rule == grp.rule else None  # None: not formed
    for i in work.live():
        layer = work.layer(i)
        if layer.rule == grp.rule and not layer.owned and set(layer.nodes) <= set(grp.nodes):
            return i
    return None


def _form(work: Work, s: RtxState, gi: int, grp: Group) -> None:
    owned = [n for n in _owned(s, gi, grp) if n in work.owner]
    shared = [n for n in grp.nodes if n not in owned and n not in grp.added_by and n in work.owner]
    name = FUSED_SEP.join(grp.nodes)
    if not owned:  # one more kernel of nodes others own (an LRN's second and third kernels)
        if not shared:
            return
        anchor = work.owner[shared[-1]]
        base = work.layer(anchor)
        work.insert_after(anchor, Layer(name, grp.kind, tuple(shared), grp.rule, inputs=base.inputs,
                                        outputs=base.outputs, shared=tuple(shared)))
        return
    position = work.graph.position
    indices = sorted(dict.fromkeys(work.owner[n] for n in owned),
                     key=lambda i: min(position[n] for n in work.layer(i).owned))
    if len(indices) > 1:
        index = indices[0]
        work.merge_group(indices, rule=grp.rule, kind=grp.kind, name=lambda _: name)
    else:
        index = indices[0]
        if grp.rule != UNFUSED or work.layer(index).kind is not grp.kind:
            work.relabel(index, rule=grp.rule, kind=grp.kind, name=name)
    if shared:
        work.share(index, shared)


def gemm_regime(s: RtxState, n: Node) -> str:
    """R10a: ``"fc"`` (one GEMM kernel) or ``"reduce"`` (kgen multiply + reduce kernels)."""
    shp = s.shape(n.inputs[0])
    w = s.shape(n.inputs[1]) if len(n.inputs) > 1 else None
    if not shp or not w:
        return "fc"
    rows = math.prod(shp[:-1] if not n.attrs.get("transA") else shp[1:])
    if rows > 1:
        return "fc"  # seen for M = 16 and 64 rows: GEMM kernels
    k = shp[-1] if not n.attrs.get("transA") else shp[0]
    nout = w[0] if n.attrs.get("transB") else w[-1]
    if (k >= 128 and nout >= 768) or (k >= 384 and nout >= 512):
        return "fc"
    return "reduce"


def gap_takes_fc(s: RtxState, gap: Node, fc: Node) -> bool:
    """R10b: a lone GlobalAveragePool kernel also does the Gemm's reshape (``MeanResh``)
    when the Gemm is a reduction and the pooled map is large (C*H*W > 16384)."""
    shp = s.shape(s.res(gap.inputs[0]))
    big = shp is not None and len(shp) == 4 and shp[1] * shp[2] * shp[3] > 16384
    return (gap.op == "GlobalAveragePool" and big and gemm_regime(s, fc) == "reduce"
            and len(s.consumers(gap.outputs[0])) == 1)

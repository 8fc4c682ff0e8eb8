"""The plan algebra: a plan is a partition of a graph's nodes into layers.

Passes never edit the ONNX graph. They read a :class:`Work` (the current partition with
indexes) and merge layers, eliminate nodes or insert copy layers; :meth:`Work.finish`
turns the result back into a :class:`~fusionlab.plan.Plan` with each layer's external
inputs and outputs and the layers in topological order. The fused graph is the quotient
graph of the partition (:func:`quotient`), which must stay acyclic.

>>> from fusionlab.ir.graph import load
>>> from onnx import helper, TensorProto
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
>>> g = load(helper.make_model(helper.make_graph(
...     [helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])],
...     "g", [x], [y])))
>>> w = Work(g, initial_plan(g))
>>> w.merge(w.owner["Sigmoid_0"], w.owner["Mul_1"], rule="fuse_pointwise", kind="PointWise").name
'Sigmoid_0 + Mul_1'
>>> [l.nodes for l in w.finish().layers]
[('Sigmoid_0', 'Mul_1')]
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fusionlab.plan import FUSED_SEP, Elimination, How, Kind, Layer, Plan, join_branches
from fusionlab.plan.kinds import kind_of_op

if TYPE_CHECKING:  # networkx and the IR (onnx) stay unimported until a pass runs: `fusionlab passes` lists rules
    import networkx as nx

    from fusionlab.ir.graph import Graph

UNFUSED = "unfused"
"""Rule name of a layer that holds one node no rule fused."""

PASS_THROUGH_OPS = frozenset({"Dropout", "Identity", "Flatten", "Reshape", "Squeeze", "Unsqueeze"})
"""Ops whose elimination makes their output an alias of their first input."""

def initial_plan(graph: Graph, *, target: str | None = None, precision: str = "fp32") -> Plan:
    """The unfused plan: one layer per ONNX node, in topological order.

    Each layer's ``inputs`` are its node's data inputs (no weights) and its ``outputs`` the
    tensors another node reads or that are graph outputs, as :meth:`Work.finish` computes them.
    """
    weights, outs, readers = graph.weight_names, graph.output_names, graph.consumers
    kinds: dict[str, Kind] = {}
    layers = []
    for n in graph.nodes():
        kind = kinds.get(n.op)
        if kind is None:
            kind = kinds[n.op] = kind_of_op(n.op)
        ins = [t for t in n.inputs if t and t not in weights]
        layers.append(Layer(
            n.name,
            kind,
            (n.name,),
            UNFUSED,
            inputs=tuple(dict.fromkeys(ins)) if len(ins) > 1 else tuple(ins),
            outputs=tuple(t for t in n.outputs if t and (t in outs or t in readers)),
        ))
    return Plan(
        layers=tuple(layers),
        eliminated={},
        source="predicted",
        target=target,
        precision=precision,
        batch=graph.batch,
        model=graph.name,
    )


class Work:
    """A mutable working copy of a plan that one pass edits, then finishes with :meth:`finish`.

    Indexes kept up to date: ``owner`` (node -> layer index). Eliminated pass-through
    nodes (Dropout, Identity, absorbed Flatten ...) make their output an alias of their
    input, so later passes see the data flow around them.
    """

    def __init__(self, graph: Graph, plan: Plan) -> None:
        self.graph = graph
        self._nodes = graph.node_map
        self._op = graph.op_of
        self.plan = plan
        self.layers: list[Layer | None] = list(plan.layers)
        self.owner: dict[str, int] = dict(_owners(plan))
        self.eliminated: dict[str, Elimination] = dict(plan.eliminated)
        self.inserted_after: dict[int, list[Layer]] = {}
        self._changed: set[int] = set()
        """Layers whose nodes or neighbourhood changed: their tensors are computed again."""
        self._edited = False
        self._outputs: frozenset[str] | None = None
        self._data_inputs: dict[str, list[str]] = {}
        self._alias: dict[str, str] = {}
        self._twins: dict[str, list[str]] = {}
        """Tensor -> outputs of eliminated duplicates that alias it (their readers read it)."""
        self._shortcut: dict[str, str] = {}
        """Tensor -> a tensor further along its alias chain (a cache; chains only grow)."""
        self._consts: set[str] = set(graph.weight_names)
        if self.eliminated:
            for name in graph.order:
                if name in self.eliminated:
                    self._note_eliminated(name)

    # -- reading ---------------------------------------------------------------------

    def layer(self, index: int) -> Layer:
        """The live layer at ``index`` (never a merged-away one)."""
        layer = self.layers[index]
        assert layer is not None, f"layer {index} was merged away"
        return layer

    def live(self) -> list[int]:
        """Indexes of live layers, in current order."""
        return [i for i, layer in enumerate(self.layers) if layer is not None]

    def resolve(self, tensor: str) -> str:
        """The tensor that really holds ``tensor``'s data once pass-through nodes are gone.

        Chains of aliases are compressed as they are walked (a chain of a thousand Identity
        nodes is walked once, not once per lookup).
        """
        alias = self._alias
        if tensor not in alias:
            return tensor
        shortcut, chain = self._shortcut, []
        while tensor in alias:
            chain.append(tensor)
            tensor = shortcut.get(tensor) or alias[tensor]  # a jump further down the chain
        for t in chain:
            shortcut[t] = tensor
        return tensor

    def is_const(self, tensor: str) -> bool:
        """True for initializers and outputs of constant-folded nodes."""
        return self.resolve(tensor) in self._consts

    def consumers(self, tensor: str) -> list[str]:
        """Live (not eliminated) nodes that read ``tensor``, looking through aliases."""
        readers = self.graph.consumers.get(tensor, ())
        if tensor not in self._twins and self.eliminated.keys().isdisjoint(readers):
            return list(readers)  # the common case: no alias, no eliminated reader
        out: list[str] = []
        stack = [tensor]
        while stack:
            t = stack.pop()
            stack.extend(self._twins.get(t, ()))
            for c in self.graph.consumers.get(t, ()):
                if c in self.eliminated:
                    node = self._nodes[c]
                    if node.outputs and self._alias.get(node.outputs[0]) == t:
                        stack.append(node.outputs[0])
                    else:
                        out.append(c)  # e.g. an eliminated Concat: still reads the tensor
                else:
                    out.append(c)
        return out

    def is_graph_output(self, tensor: str) -> bool:
        """True when ``tensor`` (or an alias of it) is a graph output."""
        if self._outputs is None:
            outs = self.graph.output_names
            self._outputs = frozenset(outs) | {self.resolve(o) for o in outs}
        return tensor in self._outputs

    def producer_layer(self, tensor: str) -> int | None:
        """Index of the layer whose node writes ``tensor`` (after aliases), if any."""
        node = self.graph.producer.get(self.resolve(tensor))
        if node is None or node in self.eliminated:
            return None
        return self.owner.get(node)

    def data_inputs(self, node: str) -> list[str]:
        """A node's inputs that carry data (not weights, constants or empty), resolved."""
        found = self._data_inputs.get(node)
        if found is None:
            resolve, consts = self.resolve, self._consts  # is_const, each input resolved once
            ins = self._nodes[node].inputs
            if self._alias:
                found = [r for t in ins if t and (r := resolve(t)) not in consts]
            else:
                found = [t for t in ins if t and t not in consts]
            self._data_inputs[node] = found
        return found

    def sole_consumer_layer(self, tensor: str) -> int | None:
        """The one layer that reads ``tensor``, or None if several or none do, or it is an output."""
        if self.is_graph_output(tensor):
            return None
        layers = {self.owner.get(c, -1) for c in self.consumers(tensor)}
        if len(layers) != 1:
            return None
        (only,) = layers
        return only if only >= 0 else None

    def outputs_consumed_only_by(self, src: int, dst: int) -> bool:
        """True when everything layer ``src`` writes is read by layer ``dst`` alone.

        Merging ``src`` into ``dst`` under this condition can never create a cycle: any
        path from src to dst would have to leave src through a tensor another layer reads.
        """
        owned = self.layer(src).owned
        inside, owner, nodes = set(owned), self.owner, self._nodes
        for n in owned:
            for t in nodes[n].outputs:
                if not t:
                    continue
                if self.is_graph_output(t):
                    return False
                readers = self.consumers(t)
                # an external output (read outside src) must be read by dst alone
                if any(c not in inside for c in readers) and any(owner.get(c) != dst for c in readers):
                    return False
        return True

    def external_outputs(self, index: int) -> list[str]:
        """Tensors a layer's nodes write that a node outside the layer reads, or graph outputs."""
        layer = self.layer(index)
        owned = layer.owned
        inside = set(owned)
        nodes = self._nodes
        outs: list[str] = []
        for n in owned:
            for t in nodes[n].outputs:
                if not t:
                    continue
                if self.is_graph_output(t) or any(c not in inside for c in self.consumers(t)):
                    outs.append(t)
        return outs

    def external_inputs(self, index: int) -> list[str]:
        """Data tensors a layer's nodes read that no node of the layer writes (resolved)."""
        layer = self.layer(index)
        owned = layer.owned
        nodes = self._nodes
        produced = {t for n in owned for t in nodes[n].outputs}
        seen: list[str] = []
        for n in owned:
            for t in self.data_inputs(n):
                if t not in produced and t not in seen:
                    seen.append(t)
        return seen

    def head_op(self, index: int) -> str:
        """Op of the layer's first node."""
        return self._op[self.layer(index).nodes[0]]

    def ops_of(self, index: int) -> list[str]:
        """Ops of the layer's nodes, in order."""
        op = self._op
        return [op[n] for n in self.layer(index).nodes]

    # -- editing ---------------------------------------------------------------------

    def merge(
        self,
        into: int,
        other: int,
        *,
        rule: str,
        kind: Kind | None = None,
        absorbed: Iterable[str] = (),
        name: str | None = None,
        horizontal: bool = False,
    ) -> Layer:
        """Merge layer ``other`` into layer ``into`` (its nodes appended after ``into``'s).

        ``horizontal``: ``other`` is a sibling that becomes one more branch of ``into`` (a
        horizontal merge), not a layer fused after it. The merged layer's tensors follow
        from the two layers' own: what one wrote and only the other read is now internal.
        """
        a, b = self.layer(into), self.layer(other)
        for n in b.nodes:
            self.owner[n] = into
        written = {*a.outputs, *b.outputs}
        inputs = tuple(dict.fromkeys(t for t in (*a.inputs, *b.inputs) if t not in written))
        outputs = tuple(
            t for t in dict.fromkeys((*a.outputs, *b.outputs))
            if self.is_graph_output(t) or any(self.owner.get(c) != into for c in self.consumers(t))
        )
        if horizontal:
            branches = (a.branches or (a.nodes,)) + (b.branches or (b.nodes,))
            default_name = join_branches((a.name, b.name))
        else:
            branches = a.branches + b.branches
            default_name = f"{a.name}{FUSED_SEP}{b.name}"
        merged = Layer(
            name=name or default_name,
            kind=kind or a.kind,
            nodes=a.nodes + b.nodes,
            rule=rule,
            absorbed=a.absorbed + b.absorbed + tuple(absorbed),
            inputs=inputs,
            outputs=outputs,
            branches=branches,
        )
        self.layers[into] = merged
        self.layers[other] = None
        self._edited = True
        if other in self.inserted_after:
            self.inserted_after.setdefault(into, []).extend(self.inserted_after.pop(other))
        return merged

    def merge_group(
        self, indices: Sequence[int], *, rule: str, kind: Kind, name: Callable[[tuple[str, ...]], str]
    ) -> Layer:
        """Merge every layer of ``indices`` into the first, at once (the nodes in graph
        order); ``name`` names the result from its nodes. Equivalent to merging them one by
        one, but computes the group's tensors once (a chain of a thousand point-wise nodes
        is one step, not a thousand)."""
        into = indices[0]
        members = [self.layer(i) for i in indices]
        position = self.graph.position
        nodes = tuple(sorted((n for m in members for n in m.nodes), key=position.__getitem__))
        for i in indices[1:]:
            for n in self.layer(i).nodes:
                self.owner[n] = into
        written = {t for m in members for t in m.outputs}
        inputs = tuple(dict.fromkeys(t for m in members for t in m.inputs if t not in written))
        outputs = tuple(
            t for t in dict.fromkeys(t for m in members for t in m.outputs)
            if self.is_graph_output(t) or any(self.owner.get(c) != into for c in self.consumers(t))
        )
        merged = Layer(
            name=name(nodes), kind=kind, nodes=nodes, rule=rule,
            absorbed=tuple(a for m in members for a in m.absorbed),
            inputs=inputs, outputs=outputs, branches=tuple(b for m in members for b in m.branches),
        )
        self.layers[into] = merged
        for i in indices[1:]:
            self.layers[i] = None
            if i in self.inserted_after:
                self.inserted_after.setdefault(into, []).extend(self.inserted_after.pop(i))
        self._edited = True
        return merged

    def relabel(self, index: int, **changes: object) -> Layer:
        """Replace fields of a live layer (its name, kind, rule, or the order of its nodes).

        The set of nodes must stay the same, so the layer's tensors stay right.
        """
        old = self.layer(index)
        layer = replace(old, **changes)  # type: ignore[arg-type]
        assert set(layer.nodes) == set(old.nodes), "relabel must not change a layer's nodes"
        self.layers[index] = layer
        self._edited = True
        return layer

    def eliminate(self, node: str, how: How, reason: str, *, same_as: str | None = None) -> None:
        """Remove a node that is alone in its layer; record how and why.

        ``same_as``: the node is a duplicate of that (live, earlier) node, whose outputs its
        readers now read (:attr:`~fusionlab.plan.How.DUPLICATE`).
        """
        index = self.owner.pop(node)
        layer = self.layer(index)
        self._edited = True
        assert layer.nodes == (node,), f"eliminate {node}: not alone in {layer.name}"
        self.layers[index] = None
        self.eliminated[node] = Elimination(how, reason, same_as)
        if not self._note_eliminated(node):
            return  # no other layer reads or writes anything new
        n = self.graph.node(node)
        for t in n.outputs:
            for c in self.consumers(t):
                if c in self.owner:
                    self._changed.add(self.owner[c])
        for t in n.inputs:
            p = self.producer_layer(t) if t else None
            if p is not None:
                self._changed.add(p)
        if same_as is not None and same_as in self.owner:
            self._changed.add(self.owner[same_as])  # its outputs have more readers now

    def share(self, index: int, nodes: Iterable[str]) -> Layer:
        """Let layer ``index`` compute ``nodes`` too, which other layers own (they join its
        ``nodes`` and ``shared``; ownership, and so the fused graph, does not change)."""
        old = self.layer(index)
        extra = tuple(n for n in dict.fromkeys(nodes) if n not in old.nodes)
        assert all(n in self.owner for n in extra), f"share {extra}: a node no layer owns"
        layer = replace(old, nodes=old.nodes + extra, shared=old.shared + extra)
        self.layers[index] = layer
        self._edited = True
        return layer

    def insert_after(self, index: int, layer: Layer) -> None:
        """Add an engine-made layer (no ONNX nodes) right after layer ``index``."""
        self.inserted_after.setdefault(index, []).append(layer)
        self._edited = True

    def _note_eliminated(self, name: str) -> bool:
        """Record what an eliminated node leaves behind; True when the data flow changed
        (its output became a constant or an alias of its input)."""
        node = self.graph.node(name)
        data = [t for t in node.inputs if t and t not in self._consts]
        twin = self.eliminated[name].same_as
        if twin is not None:  # a duplicate: its outputs are the twin's
            for mine, theirs in zip(node.outputs, self.graph.node(twin).outputs, strict=False):
                if mine and theirs:
                    self._alias[mine] = theirs
                    self._twins.setdefault(theirs, []).append(mine)
        elif node.op in ("Constant", "Shape") or not data:  # an eliminated Shape was of a static tensor
            self._consts.update(t for t in node.outputs if t)
        elif node.outputs and (
            node.op in PASS_THROUGH_OPS
            or (node.op == "Concat" and len(data) == 1)
            or self.eliminated[name].how is How.CANCELLED  # a Q/DQ that cancelled out
        ):
            self._alias[node.outputs[0]] = data[0]  # a Concat of one input is an identity too
        else:
            return False  # e.g. a Concat whose producers write into its output
        self._outputs = None  # aliases and constants changed: forget what was derived from them
        self._data_inputs.clear()
        return True

    # -- finishing -------------------------------------------------------------------

    def finish(self) -> Plan:
        """The plan: live layers with fresh inputs/outputs, in topological order.

        A pass that changed nothing gets its input plan back, unchanged.
        """
        if not self._edited:
            return self.plan
        for i in sorted(self._changed):
            if self.layers[i] is None or self.layer(i).inserted:
                continue  # merged away, or an engine-made layer that keeps its tensors
            self.layers[i] = replace(
                self.layer(i),
                inputs=tuple(self.external_inputs(i)),
                outputs=tuple(self.external_outputs(i)),
            )
        layers: list[Layer] = []
        for i in self.live():
            layers.append(self.layer(i))
            layers.extend(self.inserted_after.get(i, ()))
        for i, extra in self.inserted_after.items():
            if self.layers[i] is None:
                layers.extend(extra)  # its layer was eliminated: keep the insert anyway
        return sort_plan(self.graph, replace(self.plan, layers=tuple(layers), eliminated=dict(self.eliminated)))


_OWNER_MEMO: list[tuple[Plan, dict[str, int]]] = []
"""``node_to_layer`` of the last two plans asked about, kept with the plans: a pass that
changes nothing hands its plan to the next one, whose :class:`Work` would map it again."""


def _owners(plan: Plan) -> dict[str, int]:
    """``plan.node_to_layer()``, computed once per plan; read-only (copy it to edit)."""
    for known, owner in _OWNER_MEMO:
        if known is plan:
            return owner
    owner = plan.node_to_layer()
    _OWNER_MEMO.append((plan, owner))
    del _OWNER_MEMO[:-2]  # the plan a pass finished (sorted) and the next pass's start: often one
    return owner


_SORTED: list[tuple[Plan, Graph]] = []
"""The last plan :func:`sort_plan` produced, with its graph (kept, so that object identity
stays meaningful): its layers are in topological order by construction, and the pass
manager's check after the pass need not compute its quotient edges again."""


def layer_edges(graph: Graph, plan: Plan) -> dict[int, set[int]]:
    """The quotient graph as adjacency sets: layer index -> indexes of layers that read it.

    An eliminated node stands for the layers that feed it (an eliminated Concat's output
    is written by the producers of its parts); an inserted layer (a copy) reads the
    tensors in its ``inputs`` and feeds the readers of its ``outputs``.
    """
    owner = _owners(plan)
    stands_for: dict[str, set[int]] = {}
    eliminated = plan.eliminated
    position = graph.position
    # topological: an eliminated node's feeders are known first
    for name in sorted(eliminated, key=lambda n: position.get(n, -1)) if eliminated else ():
        feeders: set[int] = set()
        twin = eliminated[name].same_as
        if twin is not None:  # a duplicate stands for the layer of the node it duplicates
            feeders = {owner[twin]} if twin in owner else set(stands_for.get(twin, ()))
            stands_for[name] = feeders
            continue
        for p in graph.predecessors(name):
            if p in owner:
                feeders.add(owner[p])
            else:
                feeders |= stands_for.get(p, set())
        stands_for[name] = feeders
    succ: dict[int, set[int]] = defaultdict(set)
    get = owner.get
    for u, v in graph.edge_list:
        b = get(v)
        if b is None:
            continue  # an eliminated reader: its own readers link to what it stands for
        a = get(u)
        if a is not None:
            if a != b:
                succ[a].add(b)
            continue
        for src in stands_for.get(u, ()):
            if src != b:
                succ[src].add(b)
    for i, layer in enumerate(plan.layers):
        if not layer.inserted:
            continue
        for t in layer.inputs:
            writer = graph.producer.get(t)
            if writer is not None:
                for src in (owner[writer],) if writer in owner else stands_for.get(writer, ()):
                    succ[src].add(i)
        for t in layer.outputs:
            for c in graph.consumers.get(t, ()):
                if c in owner:
                    succ[i].add(owner[c])
    return succ


def is_topological(graph: Graph, plan: Plan) -> bool:
    """True when every layer comes after the layers it reads (so the plan is acyclic)."""
    if any(known is plan and g is graph for known, g in _SORTED):
        return True
    return all(a < b for a, bs in layer_edges(graph, plan).items() for b in bs)


def quotient(graph: Graph, plan: Plan) -> nx.DiGraph:
    """The fused graph: one node per layer index, an edge where a layer reads another's data."""
    import networkx as nx

    q: nx.DiGraph = nx.DiGraph()
    q.add_nodes_from(range(len(plan.layers)))
    q.add_edges_from((a, b) for a, bs in layer_edges(graph, plan).items() for b in bs)
    return q


class CycleError(ValueError):
    """The quotient graph of a plan has a cycle (a fusion that cannot be executed)."""


def _ordered(succ: Mapping[int, set[int]], count: int, key: Callable[[int], Any]) -> list[int]:
    """Kahn's topological sort of layers ``0 .. count-1``, always taking the ready layer
    with the smallest key."""
    indegree = [0] * count
    for bs in succ.values():
        for b in bs:
            indegree[b] += 1
    ready = [(key(i), i) for i in range(count) if indegree[i] == 0]
    heapq.heapify(ready)
    out: list[int] = []
    empty: set[int] = set()
    while ready:
        _, i = heapq.heappop(ready)
        out.append(i)
        for b in succ.get(i, empty):
            indegree[b] -= 1
            if indegree[b] == 0:
                heapq.heappush(ready, (key(b), b))
    if len(out) != count:
        raise CycleError("the fused graph has a cycle")
    return out


def topological_layers(graph: Graph, plan: Plan) -> tuple[Layer, ...]:
    """The plan's layers in a topological order of the quotient graph, ties by ONNX order.

    A layer's key is the file position of its first node; an inserted layer (a copy) sits
    right after the latest layer it reads from. The order depends only on the partition,
    not on the order of ``plan.layers``. Raises :class:`CycleError` for a cyclic plan.
    """
    return tuple(plan.layers[i] for i in _topological(graph, plan))


def sort_plan(graph: Graph, plan: Plan) -> Plan:
    """``plan`` with its layers in topological order (see :func:`topological_layers`)."""
    order = _topological(graph, plan)
    result = replace(plan, layers=tuple(plan.layers[i] for i in order))
    _SORTED.append((result, graph))
    del _SORTED[:-1]  # the check after the pass asks for the plan just finished, no other
    return result


def _topological(graph: Graph, plan: Plan) -> list[int]:
    position = graph.position
    layers = plan.layers
    succ = layer_edges(graph, plan)
    count = len(layers)
    keys = [0.0] * count
    known = [True] * count
    inserted: list[int] = []
    for i, layer in enumerate(layers):
        if not layer.nodes:
            inserted.append(i)
            known[i] = False
            continue
        nodes = layer.owned or layer.nodes
        keys[i] = float(position[nodes[0]] if len(nodes) == 1 else min(map(position.__getitem__, nodes)))
    if inserted:
        targets = set(inserted)
        preds: dict[int, list[int]] = {}
        for a, bs in succ.items():
            for b in bs & targets:
                preds.setdefault(b, []).append(a)
        for i in inserted:
            before = [keys[p] for p in preds.get(i, ()) if known[p]]
            keys[i] = (max(before) if before else -1.0) + 0.5
            known[i] = True

    def key(i: int) -> tuple[float, str, tuple[str, ...]]:
        return keys[i], layers[i].name, layers[i].outputs

    # Kahn's sort taking the smallest key first gives the layers sorted by key whenever
    # that order is topological: a pass that merges neighbours mostly keeps it so. Keys
    # all different (the usual case: a node belongs to one layer) compare as numbers.
    distinct = len(set(keys)) == count
    by_key = sorted(range(count), key=keys.__getitem__ if distinct else key)
    rank = [0] * count
    for r, i in enumerate(by_key):
        rank[i] = r
    if all(rank[a] < rank[b] for a, bs in succ.items() for b in bs):
        return by_key
    return _ordered(succ, count, key)

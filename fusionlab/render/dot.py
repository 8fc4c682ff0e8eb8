"""Drawings as DOT text: the ONNX graph, a plan, the plan after each pass.

Pure functions: they build Graphviz DOT source and run nothing (running ``dot`` is
:func:`fusionlab.render.graphviz.render_file`'s job). The same input always gives the
same bytes — ids are positions (``n<k>`` is the k-th ONNX node in topological order,
``L<i>`` the i-th layer), everything is emitted in graph or plan order, and colours come
from a fixed table or a SHA-256 of the name, never from Python's ``hash``.

What the drawings show:

* :func:`graph_to_dot` — one box per ONNX node, coloured by op family
  (:func:`fusionlab.ir.ops.family`), edges labelled with tensor shapes, graph inputs at the
  top and outputs at the bottom.
* :func:`plan_to_dot` — one cluster per layer (its member nodes inside; nodes folded into
  the layer dashed), labelled with kind, rule, time (when known) and name; sibling
  branches of a horizontally merged layer (``A || B``) in dotted sub-clusters; engine-made
  layers (copies, reformats) as boxes of their own; eliminated nodes grey and dashed;
  a Concat removed by concat elimination drawn as the one output buffer its producers
  write their channel slices into. Edges inside a layer carry no shape: that tensor never
  leaves the layer. ``members=False`` draws one box per layer instead (large models).
  ``marks`` colour layers by a status (a diff's matched / split / merged / missing /
  inserted, :data:`MARK_COLOURS`) with a legend.
* :func:`stage_dots` — one drawing per stage of a :class:`~fusionlab.fusion.predictor.Prediction`.

Large graphs: ``focus=NODE, radius=K`` keeps what lies within K edges of NODE (a node or
layer name); ``match=REGEX`` keeps the layers (or nodes) whose name matches, plus their
direct neighbours in grey.

Labels are escaped for DOT (quotes, backslashes, line breaks, control characters) and
capped at :data:`LABEL_LIMIT` characters with an ellipsis, far below Graphviz's limit of
16,384 characters for a quoted string.

>>> print(dot_string('say "hi"\\\\'))
"say \\"hi\\"\\\\"
>>> len(clean("x" * 20_000))
200
>>> stable_colour("Convolution") == stable_colour("Convolution")
True
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fusionlab.errors import FusionlabError
from fusionlab.ir import ops
from fusionlab.plan import BRANCH_SEP, FUSED_SEP, How, Kind, Layer, Plan, join_branches

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from fusionlab.compare.diff import Diff
    from fusionlab.fusion.predictor import Prediction
    from fusionlab.ir.graph import Graph
    from fusionlab.ir.tensors import Dim

LABEL_LIMIT = 200
"""Characters a label shows at most (an ellipsis marks the cut)."""
TOOLTIP_LIMIT = 1000
"""Characters a tooltip (the full name, shown on hover in SVG) keeps at most."""
CONTEXT_LIMIT = 60
"""Characters the label of a greyed neighbour (``match``) shows."""
WRAP = 44
"""Layer names are broken into lines of about this many characters, at ``+`` and ``||``."""

FONT = "Helvetica,Arial,sans-serif"

FAMILY_COLOURS: Mapping[str, str] = {
    "conv": "#9ecae1",
    "gemm": "#6baed6",
    "norm": "#cbc9e2",
    "activation": "#a1d99b",
    "pool": "#fdd0a2",
    "concat": "#fc9272",
    "pointwise": "#c7e9c0",
    "reduce": "#fdae6b",
    "shuffle": "#d9d9d9",
    "control": "#bcbddc",
    "myelin": "#fbb4ae",
}
"""Fill colour of each op family (and of a Myelin region drawn as one box); any other family
gets :func:`stable_colour`."""

FAMILY_NAMES: Mapping[str, str] = {
    "conv": "convolution",
    "gemm": "matrix multiply",
    "norm": "normalization",
    "activation": "activation",
    "pool": "pooling",
    "concat": "concatenation",
    "pointwise": "point-wise",
    "reduce": "reduction",
    "shuffle": "shape / data movement",
    "control": "control flow",
    "myelin": "Myelin region (one layer; --expand draws its ops)",
    "other": "other",
}

MARK_COLOURS: Mapping[str, str] = {
    "matched": "#1a9850",
    "split": "#f46d43",
    "merged": "#4575b4",
    "mismatched": "#e7298a",
    "inserted": "#984ea3",
    "extra": "#e6ab02",
    "missing": "#d73027",
}
"""Border colour by status, for drawings of a diff (``plan_to_dot(marks=..., node_marks=...)``):
an engine layer that matches the prediction, is part of a predicted layer that the
engine split, merges several predicted layers, groups nodes differently, was inserted by
the engine, computes nodes the prediction eliminated (extra); an eliminated node that
the prediction computes (missing)."""

ELIMINATED_COLOUR = "#9e9e9e"
COPY_COLOUR = "#fff2ae"
BUFFER_COLOUR = "#fde0dd"
CLUSTER_FILL = "#f7f7f7"
CONTEXT_COLOUR = "#bdbdbd"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SEPARATORS = re.compile("(" + "|".join(re.escape(s) for s in (FUSED_SEP, BRANCH_SEP)) + ")")


# -- text ----------------------------------------------------------------------------


def cap(text: str, limit: int = LABEL_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut.

    >>> cap("abcdef", 4)
    'abc…'
    """
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def clean(text: str, limit: int = LABEL_LIMIT) -> str:
    r"""Display text: tabs as spaces, CR/CRLF as line breaks, other control characters
    written out (``\x01``), capped at ``limit`` characters.

    >>> clean("a\tb\x01")
    'a b\\x01'
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return cap(text, limit)


def dot_string(text: str, limit: int = LABEL_LIMIT) -> str:
    r"""A DOT double-quoted string that Graphviz shows as ``text`` (cleaned and capped).

    Backslashes and quotes are escaped, so ``\N`` or ``\l`` in a name stay literal;
    line breaks become Graphviz's centred ``\n``.

    >>> dot_string('a"b\nc')
    '"a\\"b\\nc"'
    """
    shown = clean(text, limit)
    body = shown.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def html_text(text: str, limit: int = LABEL_LIMIT) -> str:
    """Text for a Graphviz HTML-like label (cleaned, capped, entities escaped, ``<BR/>``).

    >>> html_text("a<b & c>\\nd")
    'a&lt;b &amp; c&gt;<BR/>d'
    """
    shown = clean(text, limit)
    out = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = out.replace('"', "&quot;")
    return out.replace("\n", "<BR/>")


def wrap_name(name: str, width: int = WRAP, limit: int = LABEL_LIMIT) -> str:
    """A layer name broken into lines after its separators (FUSED_SEP, BRANCH_SEP), capped first.

    >>> print(wrap_name("conv_a + bn_a + relu_a || conv_b + bn_b", width=16))
    conv_a + bn_a +
    relu_a || conv_b +
    bn_b
    """
    parts = _SEPARATORS.split(cap(name, limit))
    lines: list[str] = []
    line = ""
    for part in parts:
        if not part:
            continue
        if _SEPARATORS.fullmatch(part):
            line += part.rstrip()
            if len(line) >= width:
                lines.append(line)
                line = ""
            else:
                line += " "
            continue
        while len(part) > width * 3 // 2:  # one long node name: hard breaks
            room = max(width - len(line), width // 2)
            if line:
                lines.append(line.rstrip())
                line = ""
            lines.append(part[:room])
            part = part[room:]
        if line and len(line) + len(part) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)


def shape_text(shape: Sequence[Dim] | None, dtype: str | None = None) -> str:
    """A tensor shape as ``1x64x28x28`` (``?`` for unknown), the dtype added unless float32.

    >>> shape_text((1, 64, 28, 28)), shape_text(("N", None), "int64"), shape_text(None)
    ('1x64x28x28', 'Nx? int64', '?')
    """
    text = "?" if shape is None else "x".join("?" if d is None else str(d) for d in shape)
    if shape is not None and not shape:
        text = "scalar"
    if dtype is not None and dtype != "float32":
        text += f" {dtype}"
    return text


# -- colours -------------------------------------------------------------------------


def stable_colour(key: str, lightness: float = 0.82, saturation: float = 0.55) -> str:
    """A colour for ``key`` from its SHA-256 (the same on every run and machine).

    >>> stable_colour("Copy")
    '#eab8db'
    """
    import colorsys

    digest = hashlib.sha256(key.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536.0
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def family_colour(family: str) -> str:
    """Fill colour of an op family (:data:`FAMILY_COLOURS`, else :func:`stable_colour`).

    >>> family_colour("conv"), family_colour("other") == stable_colour("other")
    ('#9ecae1', True)
    """
    return FAMILY_COLOURS.get(family) or stable_colour(family)


# -- the scene: what is drawn, before it becomes DOT ---------------------------------


@dataclass
class _Unit:
    """One selectable thing: an ONNX node (graph drawing), a layer, or an eliminated node."""

    key: str
    """DOT id when the unit is drawn as one node; ``cluster_<key>`` when expanded."""
    name: str
    role: str
    """``node``, ``layer``, ``inserted``, ``eliminated``, ``buffer``, ``input``, ``output``."""
    layer: Layer | None = None
    index: int | None = None
    """Layer index in the plan."""
    members: tuple[str, ...] = ()
    """ONNX node names drawn inside (expanded layer)."""
    terminal: bool = False


@dataclass(frozen=True)
class _Edge:
    src: str
    src_id: str
    dst: str
    dst_id: str
    label: str = ""
    internal: bool = False
    style: str = ""
    weight: int = 1


@dataclass
class _Scene:
    graph: Graph | None
    plan: Plan | None = None
    units: dict[str, _Unit] = field(default_factory=dict)
    edges: list[_Edge] = field(default_factory=list)
    node_ids: dict[str, str] = field(default_factory=dict)
    """ONNX node name -> DOT id of the node when its unit is expanded."""
    unit_of: dict[str, str] = field(default_factory=dict)
    """ONNX node name -> key of the unit that holds it."""

    def add(self, unit: _Unit) -> None:
        self.units[unit.key] = unit

    def edge(self, edge: _Edge) -> None:
        """Add ``edge`` unless an end is missing, or is a node drawn inside an opened unit
        that has no box of its own there (a folded node hidden in an expanded region: its
        id is the closed region's, which is not drawn, so the edge would make a stray box)."""
        if edge.src not in self.units or edge.dst not in self.units:
            return
        if any(end == end_id and self.units[end].members and self.units[end].role == "layer"
               for end, end_id in ((edge.src, edge.src_id), (edge.dst, edge.dst_id))):
            return
        self.edges.append(edge)

    def adjacency(self) -> dict[str, set[str]]:
        """Undirected neighbours between non-terminal units."""
        adj: dict[str, set[str]] = {k: set() for k, u in self.units.items() if not u.terminal}
        for e in self.edges:
            if e.src != e.dst and e.src in adj and e.dst in adj:
                adj[e.src].add(e.dst)
                adj[e.dst].add(e.src)
        return adj


def _node_id(graph: Graph, position: Mapping[str, int], name: str) -> str:
    return f"n{position[name]}"


def _terminals(scene: _Scene, graph: Graph) -> None:
    """Graph inputs (edges to their readers) and outputs (edges from their writers)."""
    for j, t in enumerate(graph.inputs):
        scene.add(_Unit(f"in{j}", t.name, "input", terminal=True))
        for c in graph.consumers.get(t.name, ()):
            if c in scene.unit_of:
                # heavier: the readers of an input sit right below it (branches at the top)
                scene.edge(_Edge(f"in{j}", f"in{j}", scene.unit_of[c], scene.node_ids[c],
                                 shape_text(t.shape, t.dtype), weight=3))
    inputs = {t.name for t in graph.inputs}
    for j, t in enumerate(graph.outputs):
        if t.name in inputs:
            continue
        scene.add(_Unit(f"out{j}", t.name, "output", terminal=True))
        p = graph.producer.get(t.name)
        if p is not None and p in scene.unit_of:
            scene.edge(_Edge(scene.unit_of[p], scene.node_ids[p], f"out{j}", f"out{j}",
                             shape_text(graph.tensors[t.name].shape, graph.tensors[t.name].dtype)))


def _graph_scene(graph: Graph) -> _Scene:
    scene = _Scene(graph)
    position = {n: i for i, n in enumerate(graph.order)}
    for name in graph.order:
        key = _node_id(graph, position, name)
        scene.add(_Unit(key, name, "node", members=(name,)))
        scene.node_ids[name] = key
        scene.unit_of[name] = key
    for u in graph.order:
        for v in sorted(graph.nx.successors(u), key=position.__getitem__):
            data = graph.nx.edges[u, v]
            scene.edge(_Edge(scene.unit_of[u], scene.node_ids[u], scene.unit_of[v],
                             scene.node_ids[v], shape_text(data["shape"], data["dtype"])))
    _terminals(scene, graph)
    return scene


def _is_buffer(graph: Graph, plan: Plan, name: str) -> bool:
    """An eliminated Concat whose producers write into its output (concat elimination)."""
    gone = plan.eliminated.get(name)
    return graph.node(name).op == "Concat" and gone is not None and gone.how is How.CONCAT


def _concat_axis(graph: Graph, name: str) -> int:
    node = graph.node(name)
    out = graph.tensors.get(node.outputs[0]) if node.outputs else None
    axis = int(node.attrs.get("axis", 1))
    if axis < 0 and out is not None and out.shape is not None:
        axis += len(out.shape)
    return axis


def _slices(graph: Graph, name: str) -> list[tuple[str, str]]:
    """(input tensor, ``"ch 0-63"``) for each input of a Concat, in order."""
    node = graph.node(name)
    axis = _concat_axis(graph, name)
    where = "ch" if axis == 1 else f"axis {axis}:"
    out: list[tuple[str, str]] = []
    start: int | None = 0
    for t in node.inputs:
        if not t:
            continue
        tensor = graph.tensors.get(t)
        size = None
        if tensor is not None and tensor.shape is not None and 0 <= axis < len(tensor.shape):
            dim = tensor.shape[axis]
            size = dim if isinstance(dim, int) else None
        if start is not None and size is not None:
            out.append((t, f"{where} {start}-{start + size - 1}"))
            start += size
        else:
            out.append((t, t))
            start = None
    return out


def expanded_regions(plan: Plan, expand: Iterable[str]) -> set[int]:
    """Indexes of the Myelin layers ``expand`` names (by layer name or by one of its nodes).

    >>> r = Layer("{ForeignNode[a...b]}", Kind.MYELIN, ("a", "b"))
    >>> expanded_regions(Plan((r,)), ["b"]), expanded_regions(Plan((r,)), [r.name])
    ({0}, {0})
    >>> expanded_regions(Plan((r,)), ["c"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    fusionlab.errors.FusionlabError: --expand: no Myelin region named 'c' or holding ... {ForeignNode[a...b]})
    """
    wanted = list(expand)
    regions = {i: layer for i, layer in enumerate(plan.layers) if layer.kind is Kind.MYELIN}
    found: set[int] = set()
    for item in wanted:
        hits = {i for i, layer in regions.items() if item == layer.name or item in layer.nodes}
        if not hits:
            names = ", ".join(cap(layer.name, 80) for layer in list(regions.values())[:5]) or "none"
            raise FusionlabError(f"--expand: no Myelin region named {item!r} or holding a node of "
                                 f"that name (regions: {names})")
        found |= hits
    return found


def regions_in(plan: Plan, expand: Iterable[str]) -> list[str]:
    """The items of ``expand`` that name a Myelin region of ``plan`` (a stage before the
    Myelin partition has none)."""
    return [item for item in expand
            if any(layer.kind is Kind.MYELIN and (item == layer.name or item in layer.nodes)
                   for layer in plan.layers)]


def _plan_scene(plan: Plan, graph: Graph | None, members: bool,
                expand: Iterable[str] = ()) -> _Scene:
    scene = _Scene(graph, plan)
    known = set(graph.order) if graph is not None else set()
    position = {n: i for i, n in enumerate(graph.order)} if graph is not None else {}
    opened = expanded_regions(plan, expand)
    for i, layer in enumerate(plan.layers):
        if layer.kind is Kind.SYNC:
            continue  # stream synchronisation (TensorRT-RTX's signal/wait): no data flows
        key = f"L{i}"
        inside_too = members and (layer.kind is not Kind.MYELIN or i in opened)  # a region: one box
        inside = tuple(n for n in layer.nodes if n in known) if inside_too else ()
        role = "inserted" if layer.inserted else "layer"
        scene.add(_Unit(key, layer.name, role, layer=layer, index=i, members=inside))
        for n in layer.nodes:
            if n in known and n not in scene.unit_of:
                scene.unit_of[n] = key
                scene.node_ids[n] = f"n{position[n]}" if inside_too else key
    if graph is None:
        _tensor_edges(scene, plan)
        return scene
    hidden = _hidden_in_boxes(plan, graph, scene)
    for name in graph.order:
        if name in scene.unit_of:
            continue
        if name in hidden:
            scene.unit_of[name] = scene.node_ids[name] = hidden[name]
            continue
        key = f"n{position[name]}"
        role = "buffer" if _is_buffer(graph, plan, name) else "eliminated"
        scene.add(_Unit(key, name, role, members=(name,)))
        scene.unit_of[name] = key
        scene.node_ids[name] = key
    # copies that feed a buffer: (input tensor, buffer node) -> copy layer key
    copies: dict[tuple[str, str], str] = {}
    slot_of: dict[str, dict[str, list[int]]] = {}
    for unit in scene.units.values():
        if unit.role == "buffer":
            slots: dict[str, list[int]] = {}
            for s, (t, _) in enumerate(_slices(graph, unit.name)):
                slots.setdefault(t, []).append(s)
            slot_of[unit.name] = slots
    buffers_by_output = {graph.node(b).outputs[0]: b for b in slot_of}
    for i, layer in enumerate(plan.layers):
        if not layer.inserted:
            continue
        for out in layer.outputs:
            b = buffers_by_output.get(out)
            if b is not None:
                for t in layer.inputs:
                    copies[(t, b)] = f"L{i}"
    for u in graph.order:
        if u in hidden:
            continue  # drawn inside the layer it feeds: no edge of its own
        for v in sorted(graph.nx.successors(u), key=position.__getitem__):
            data = graph.nx.edges[u, v]
            su, sv = scene.unit_of[u], scene.unit_of[v]
            label = "" if su == sv else shape_text(data["shape"], data["dtype"])
            if v in slot_of:
                for tensor in data["tensors"]:
                    for s in slot_of[v].get(tensor.name, ()):
                        port = f"{scene.node_ids[v]}:p{s}:n"
                        copy = copies.get((tensor.name, v))
                        text = shape_text(tensor.shape, tensor.dtype)
                        if copy is None:
                            scene.edge(_Edge(su, scene.node_ids[u], sv, port, text))
                        else:
                            scene.edge(_Edge(su, scene.node_ids[u], copy, copy, text))
                            scene.edge(_Edge(copy, copy, sv, port, "copy"))
                continue
            style = "dashed" if scene.units[su].role == "eliminated" or \
                scene.units[sv].role == "eliminated" else ""
            scene.edge(_Edge(su, scene.node_ids[u], sv, scene.node_ids[v], label,
                             internal=su == sv, style=style))
    routed = set(copies.values())
    for i, layer in enumerate(plan.layers):
        key = f"L{i}"
        if not layer.inserted or key in routed:
            continue
        for t in layer.inputs:
            p = graph.producer.get(t)
            if p is not None:
                scene.edge(_Edge(scene.unit_of[p], scene.node_ids[p], key, key, _tensor_label(graph, t)))
        for t in layer.outputs:
            for c in graph.consumers.get(t, ()):
                scene.edge(_Edge(key, key, scene.unit_of[c], scene.node_ids[c], _tensor_label(graph, t)))
    _tensor_edges(scene, plan)
    _terminals(scene, graph)
    return scene


def _hidden_in_boxes(plan: Plan, graph: Graph, scene: _Scene) -> dict[str, str]:
    """Constant-folded nodes that only feed one layer drawn as a single box, or one Myelin
    region: drawn inside it (hidden), not as boxes of their own. A transformer's region reads
    hundreds of folded Constant and shape nodes; as separate boxes they would bury it."""
    hidden: dict[str, str] = {}
    for name in reversed(graph.order):
        gone = plan.eliminated.get(name)
        if gone is None or gone.how is not How.CONSTANT:
            continue
        homes = set()
        for t in graph.node(name).outputs:
            for c in graph.consumers.get(t, ()):
                homes.add(hidden.get(c) or scene.unit_of.get(c))
        if len(homes) == 1:
            (home,) = homes
            unit = scene.units.get(home) if home is not None else None
            if unit is not None and unit.role == "layer" and unit.layer is not None \
                    and (not unit.members or unit.layer.kind is Kind.MYELIN):
                hidden[name] = unit.key
    return hidden


def _tensor_label(graph: Graph | None, tensor: str) -> str:
    if graph is not None and tensor in graph.tensors:
        t = graph.tensors[tensor]
        return shape_text(t.shape, t.dtype)
    return tensor


def _tensor_edges(scene: _Scene, plan: Plan) -> None:
    """Edges between layers by tensor name, where no node-level edge joins them already.

    This is how layers whose nodes the graph does not know (an engine's own tensors, a
    plan drawn without its model) are connected.
    """
    joined = {(e.src, e.dst) for e in scene.edges}
    graph = scene.graph

    def known(layer: Layer) -> bool:
        return graph is not None and any(n in graph for n in layer.nodes)

    writers: dict[str, list[int]] = {}
    for i, layer in enumerate(plan.layers):
        for t in layer.outputs:
            writers.setdefault(t, []).append(i)
    for j, layer in enumerate(plan.layers):
        for t in layer.inputs:
            for i in writers.get(t, ()):
                a, b = f"L{i}", f"L{j}"
                if i == j or (a, b) in joined or (known(plan.layers[i]) and known(layer)):
                    continue  # two layers of known nodes: the node-level edges say it all
                joined.add((a, b))
                src = scene.units[a].members[-1] if scene.units[a].members else None
                dst = scene.units[b].members[0] if scene.units[b].members else None
                scene.edge(_Edge(a, scene.node_ids.get(src, a) if src else a,
                                 b, scene.node_ids.get(dst, b) if dst else b,
                                 _tensor_label(graph, t)))


# -- selection -----------------------------------------------------------------------


def _start_unit(scene: _Scene, focus: str) -> str:
    if focus in scene.unit_of:
        return scene.unit_of[focus]
    for key, unit in scene.units.items():
        if not unit.terminal and unit.name == focus:
            return key
    raise FusionlabError(f"--focus: no node or layer named {focus!r}")


def _select(
    scene: _Scene, focus: str | None, radius: int, match: str | None
) -> tuple[set[str], set[str]]:
    """(units drawn in full, units drawn as greyed context)."""
    if radius < 0:
        raise FusionlabError(f"--radius must be 0 or more, got {radius}")
    adj = scene.adjacency()
    chosen = set(adj)
    if focus is not None:
        start = _start_unit(scene, focus)
        chosen = {start}
        frontier = deque([(start, 0)])
        while frontier:
            key, dist = frontier.popleft()
            if dist == radius:
                continue
            for other in sorted(adj[key]):
                if other not in chosen:
                    chosen.add(other)
                    frontier.append((other, dist + 1))
    context: set[str] = set()
    if match is not None:
        try:
            pattern = re.compile(match)
        except re.error as exc:
            raise FusionlabError(f"--match: not a valid regular expression {match!r}: {exc}") from None
        hits = {k for k in chosen if pattern.search(scene.units[k].name)}
        if not hits:
            raise FusionlabError(f"--match: no layer or node name matches {match!r}")
        context = {o for k in hits for o in adj[k]} - hits
        chosen = hits
    full = set(chosen)
    for key, unit in scene.units.items():
        if unit.terminal and any(
            (e.src == key and e.dst in full) or (e.dst == key and e.src in full)
            for e in scene.edges
        ):
            full.add(key)
    return full, context


# -- DOT -----------------------------------------------------------------------------


def _kernel(graph: Graph, name: str) -> str:
    node = graph.node(name)
    kernel = node.attrs.get("kernel_shape")
    text = ""
    if isinstance(kernel, list | tuple) and kernel:
        text = " " + "x".join(str(k) for k in kernel)
    strides = node.attrs.get("strides")
    if isinstance(strides, list | tuple) and any(s != 1 for s in strides):
        text += " /" + "x".join(str(s) for s in dict.fromkeys(strides))
    return text


def _node_line(graph: Graph | None, name: str, node_id: str, *, folded: bool = False,
               indent: str = "  ") -> str:
    if graph is None or name not in graph:
        return f"{indent}{node_id} [label={dot_string(name)}];"
    op = graph.node(name).op
    fam = ops.family(op)
    label = f"{op}{_kernel(graph, name)}\n{name}"
    style = ""
    if folded:
        label += "\n(folded in)"
        style = ', style="rounded,filled,dashed"'
    return (f"{indent}{node_id} [label={dot_string(label)}, fillcolor=\"{family_colour(fam)}\""
            f"{style}, tooltip={dot_string(name, TOOLTIP_LIMIT)}];")


def _layer_header(layer: Layer) -> str:
    bits = [layer.kind or "layer"]
    if layer.rule:
        bits.append(layer.rule)
    if layer.time_ms is not None:
        bits.append(f"{layer.time_ms:.4f} ms")
    return " · ".join(bits)


def _cluster_label(layer: Layer, branches: int = 1) -> str:
    width = WRAP * min(max(branches, 1), 3)
    return (f"<<B>{html_text(_layer_header(layer))}</B><BR/>"
            f"<FONT POINT-SIZE=\"9\">{html_text(wrap_name(layer.name, width))}</FONT>>")


def _branches(layer: Layer) -> list[tuple[str, ...]] | None:
    """The sibling branches of a horizontally merged layer (None for any other layer)."""
    return list(layer.branches) if layer.branches else None


def _ops_summary(graph: Graph | None, layer: Layer) -> str:
    """The layer's ops: ``Conv+BatchNormalization+Relu``, ``3 × Conv+Relu`` for equal
    merged branches, branches joined by ``||`` otherwise."""
    if graph is None:
        return ""
    if layer.kind is Kind.MYELIN:
        counts: dict[str, int] = {}
        for n in layer.nodes:
            if n in graph:
                op = graph.node(n).op
                counts[op] = counts.get(op, 0) + 1
        order = ["gemm", "norm", "reduce", "conv", "activation", "pointwise", "pool", "concat"]
        top = sorted(counts.items(), key=lambda kv: (
            order.index(ops.family(kv[0])) if ops.family(kv[0]) in order else len(order),
            -kv[1], kv[0]))
        text = ", ".join(f"{c} {op}" for op, c in top[:4]) + (", ..." if len(top) > 4 else "")
        return cap(f"{len(layer.nodes)} nodes: {text}", 80)
    groups = _branches(layer) or [layer.nodes]
    texts = ["+".join(graph.node(n).op for n in g if n in graph) for g in groups]
    texts = [t for t in texts if t]
    if len(texts) > 1 and len(set(texts)) == 1:
        return cap(f"{len(texts)} × {texts[0]}", 80)
    return cap(join_branches(texts), 80)


COMPACT_NAME_LIMIT = 120
"""A layer drawn as one box shows this much of its name (the tooltip has all of it)."""


def _compact_label(graph: Graph | None, layer: Layer) -> str:
    lines = [f"<B>{html_text(_layer_header(layer))}</B>"]
    summary = _ops_summary(graph, layer)
    if summary:
        lines.append(html_text(summary))
    lines.append(f"<FONT POINT-SIZE=\"8\">"
                 f"{html_text(wrap_name(layer.name, WRAP, COMPACT_NAME_LIMIT))}</FONT>")
    return "<" + "<BR/>".join(lines) + ">"


def _unit_lines(scene: _Scene, unit: _Unit, *, context: bool, marks: Mapping[str, str],
                mark_colours: Mapping[str, str]) -> list[str]:
    graph = scene.graph
    tip = dot_string(unit.name, TOOLTIP_LIMIT)
    if context:
        return [f"  {unit.key} [label={dot_string(unit.name, CONTEXT_LIMIT)}, "
                f"fillcolor=\"#f0f0f0\", color=\"{CONTEXT_COLOUR}\", fontcolor=\"#757575\", "
                f"tooltip={tip}];"]
    if unit.role == "input":
        t = graph.tensors[unit.name] if graph is not None else None
        shown = f"input {unit.name}" + (f"\n{shape_text(t.shape, t.dtype)}" if t else "")
        return [f"  {unit.key} [label={dot_string(shown)}, shape=oval, fillcolor=\"white\", "
                f"style=filled, tooltip={tip}];"]
    if unit.role == "output":
        t = graph.tensors[unit.name] if graph is not None else None
        shown = f"output {unit.name}" + (f"\n{shape_text(t.shape, t.dtype)}" if t else "")
        return [f"  {unit.key} [label={dot_string(shown)}, shape=oval, fillcolor=\"white\", "
                f"style=filled, tooltip={tip}];"]
    if unit.role == "node":
        return [_node_line(graph, unit.name, unit.key)]
    if unit.role == "eliminated":
        op = graph.node(unit.name).op if graph is not None else "?"
        reason = ""
        if scene.plan is not None:
            gone = scene.plan.eliminated.get(unit.name)
            reason = str(gone) if gone is not None else "not in the plan"
        label = f"{op}\n{unit.name}\neliminated: {cap(reason, CONTEXT_LIMIT)}"
        colour, width = ELIMINATED_COLOUR, ""
        if unit.key in marks:
            colour = mark_colours.get(marks[unit.key], stable_colour(marks[unit.key], 0.4))
            width = ", penwidth=3"
        return [f"  {unit.key} [label={dot_string(label)}, fillcolor=\"white\", "
                f"color=\"{colour}\"{width}, fontcolor=\"#616161\", "
                f"style=\"rounded,dashed\", tooltip={tip}];"]
    if unit.role == "buffer":
        assert graph is not None
        return [_buffer_line(scene, unit)]
    layer = unit.layer
    assert layer is not None and unit.index is not None
    mark = marks.get(unit.key)
    border = ""
    if mark is not None:
        border = f", color=\"{mark_colours.get(mark, stable_colour(mark, 0.4))}\", penwidth=3"
    if unit.role == "inserted":
        label = f"<<B>{html_text(_layer_header(layer))}</B><BR/>{html_text(wrap_name(layer.name))}>"
        return [f"  {unit.key} [label={label}, shape=box, style=\"filled,dashed\", "
                f"fillcolor=\"{COPY_COLOUR}\"{border}, tooltip={tip}];"]
    if not unit.members:
        return [f"  {unit.key} [label={_compact_label(graph, layer)}, "
                f"fillcolor=\"{_layer_fill(graph, layer)}\"{border}, tooltip={tip}];"]
    branches = _branches(layer)
    lines = [f"  subgraph cluster_{unit.key} {{",
             f"    label={_cluster_label(layer, len(branches) if branches else 1)};",
             f"    tooltip={tip};",
             f"    style=\"rounded,filled\"; fillcolor=\"{CLUSTER_FILL}\"; "
             f"color=\"{_layer_border(graph, layer)}\"; penwidth=1.5;"]
    if mark is not None:
        lines.append(f"    color=\"{mark_colours.get(mark, stable_colour(mark, 0.4))}\"; "
                     "penwidth=3;")
    absorbed = set(layer.absorbed)
    groups = branches if branches is not None else [unit.members]
    for b, group in enumerate(groups):
        indent = "    "
        if branches is not None:
            lines.append(f"    subgraph cluster_{unit.key}_{b} {{ label=\"\"; style=\"rounded,dotted\"; "
                         f"color=\"#737373\"; fillcolor=\"{CLUSTER_FILL}\";")
            indent = "      "
        for n in group:
            if n in scene.node_ids and n in unit.members:
                lines.append(_node_line(graph, n, scene.node_ids[n], folded=n in absorbed,
                                        indent=indent))
        if branches is not None:
            lines.append("    }")
    lines.append("  }")
    return lines


def _layer_family(graph: Graph | None, layer: Layer) -> str:
    if layer.kind is Kind.MYELIN:
        return "myelin"
    if graph is not None:
        for n in layer.nodes:
            if n in graph:
                return str(ops.family(graph.node(n).op))
    return str(layer.kind)


def _layer_fill(graph: Graph | None, layer: Layer) -> str:
    return family_colour(_layer_family(graph, layer))


def _layer_border(graph: Graph | None, layer: Layer) -> str:
    return stable_colour(_layer_family(graph, layer), lightness=0.35, saturation=0.45)


def _buffer_line(scene: _Scene, unit: _Unit) -> str:
    graph = scene.graph
    assert graph is not None
    node = graph.node(unit.name)
    out = graph.tensors.get(node.outputs[0]) if node.outputs else None
    shape = shape_text(out.shape, out.dtype) if out is not None else "?"
    slices = _slices(graph, unit.name)
    head = (f"<B>{html_text(node.outputs[0] if node.outputs else unit.name)}</B> {html_text(shape)}"
            f"<BR/><FONT POINT-SIZE=\"9\">one buffer: the {html_text(node.op)} "
            f"{html_text(unit.name)} is gone, its inputs are written into their slices</FONT>")
    cells = "".join(f"<TD PORT=\"p{s}\" BGCOLOR=\"white\">{html_text(text, CONTEXT_LIMIT)}</TD>"
                    for s, (_, text) in enumerate(slices))
    label = (f"<<TABLE BORDER=\"0\" CELLBORDER=\"1\" CELLSPACING=\"0\" CELLPADDING=\"4\">"
             f"<TR>{cells or '<TD></TD>'}</TR>"
             f"<TR><TD COLSPAN=\"{max(len(slices), 1)}\">{head}</TD></TR></TABLE>>")
    return (f"  {unit.key} [label={label}, shape=plain, style=filled, "
            f"fillcolor=\"{BUFFER_COLOUR}\", tooltip={dot_string(unit.name, TOOLTIP_LIMIT)}];")


def _legend(scene: _Scene, drawn: Iterable[str], context: set[str],
            marks: Mapping[str, str], mark_colours: Mapping[str, str]) -> list[str]:
    """Legend entries (HTML table cells) for what the drawing shows, in a fixed order."""
    graph = scene.graph
    families: set[str] = set()
    roles: set[str] = set()
    folded = False
    used_marks: set[str] = set()
    for key in drawn:
        unit = scene.units[key]
        if key not in context:
            roles.add(unit.role)
        if graph is not None and key not in context and unit.role in ("node", "layer"):
            for n in unit.members or ((unit.name,) if unit.role == "node" else ()):
                if n in graph:
                    families.add(ops.family(graph.node(n).op))
            if unit.layer is not None:
                if set(unit.layer.absorbed) & set(unit.members):
                    folded = True
                if not unit.members and not unit.layer.inserted:
                    families.add(_layer_family(graph, unit.layer))
        if key in marks and key not in context:
            used_marks.add(marks[key])
    items: list[str] = []
    order = list(FAMILY_NAMES)
    for fam in sorted(families, key=lambda f: (order.index(f) if f in order else len(order), f)):
        items.append(_legend_item(family_colour(fam), FAMILY_NAMES.get(fam, fam)))
    if any(scene.units[k].members and scene.units[k].role == "layer" and k not in context
           for k in drawn):
        items.append(_legend_item(CLUSTER_FILL, "box around ops: one engine layer"))
    if folded:
        items.append(_legend_item("white", "dashed: folded into the layer", dashed=True))
    if "inserted" in roles:
        items.append(_legend_item(COPY_COLOUR, "layer the engine adds (copy)"))
    if "buffer" in roles:
        items.append(_legend_item(BUFFER_COLOUR, "one shared output buffer"))
    if "eliminated" in roles:
        items.append(_legend_item("white", "eliminated node", dashed=True))
    if context:
        items.append(_legend_item("#f0f0f0", "neighbour (not matched)"))
    for mark in sorted(used_marks, key=lambda m: (list(mark_colours).index(m)
                                                  if m in mark_colours else len(mark_colours), m)):
        items.append(_legend_item("white", mark,
                                  border=mark_colours.get(mark, stable_colour(mark, 0.4))))
    return items


def _legend_item(fill: str, text: str, *, dashed: bool = False, border: str = "#737373") -> str:
    style = " STYLE=\"DASHED\"" if dashed else ""
    return (f"<TD BGCOLOR=\"{fill}\" BORDER=\"1\" COLOR=\"{border}\"{style} WIDTH=\"18\" "
            "HEIGHT=\"12\" FIXEDSIZE=\"TRUE\"></TD>"
            f"<TD ALIGN=\"LEFT\"><FONT POINT-SIZE=\"9\">{html_text(text)}</FONT></TD>")


LEGEND_COLUMNS = 5


def _title(title: str | None, subtitle: str | None, legend: Sequence[str]) -> list[str]:
    """The graph label: title, subtitle and legend, as one HTML table at the top."""
    rows = []
    if title:
        rows.append(f"<TR><TD><FONT POINT-SIZE=\"18\"><B>{html_text(title)}</B></FONT></TD></TR>")
    if subtitle:
        rows.append(f"<TR><TD><FONT POINT-SIZE=\"11\">{html_text(subtitle)}</FONT></TD></TR>")
    if legend:
        for i in range(0, len(legend), LEGEND_COLUMNS):  # one table a row: no shared columns
            chunk = "".join(legend[i:i + LEGEND_COLUMNS])
            rows.append("<TR><TD><TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"3\" "
                        f"CELLPADDING=\"1\"><TR>{chunk}</TR></TABLE></TD></TR>")
    if not rows:
        return []
    table = ("<TABLE BORDER=\"0\" CELLBORDER=\"0\" CELLSPACING=\"2\" CELLPADDING=\"1\">"
             + "".join(rows) + "</TABLE>")
    return [f"  label=<{table}>;", "  labelloc=t;"]


def _emit(scene: _Scene, *, title: str | None, subtitle: str | None, focus: str | None,
          radius: int, match: str | None, legend: bool, marks: Mapping[str, str],
          mark_colours: Mapping[str, str], rankdir: str) -> str:
    full, context = _select(scene, focus, radius, match)
    drawn = [k for k in scene.units if k in full or k in context]
    lines = [
        "digraph fusionlab {",
        f"  graph [rankdir={rankdir}, fontname=\"{FONT}\", fontsize=11, nodesep=0.25, "
        "ranksep=0.35, outputorder=edgesfirst, ordering=out, pad=0.3];",
        f"  node [shape=box, style=\"rounded,filled\", fontname=\"{FONT}\", fontsize=10, "
        "fillcolor=\"white\", margin=\"0.08,0.04\"];",
        f"  edge [fontname=\"{FONT}\", fontsize=8, color=\"#4d4d4d\", fontcolor=\"#4d4d4d\", "
        "arrowsize=0.6];",
    ]
    items = _legend(scene, drawn, context, marks, mark_colours) if legend else []
    lines.extend(_title(title, subtitle, items))
    spine = _spine(scene, full, context)
    for key in drawn:
        for line in _unit_lines(scene, scene.units[key], context=key in context, marks=marks,
                                mark_colours=mark_colours):
            head = line.lstrip().split(" ", 1)[0]
            if head in spine and " [" in line and " -> " not in line:
                line = line.replace(" [", " [group=spine, ", 1)
            lines.append(line)
    inputs = [k for k in drawn if scene.units[k].role == "input"]
    outputs = [k for k in drawn if scene.units[k].role == "output"]
    if inputs:
        lines.append(f"  {{ rank=source; {' '.join(inputs)} }}")
    if outputs:
        lines.append(f"  {{ rank=sink; {' '.join(outputs)} }}")
    seen: set[tuple[str, str]] = set()
    shown = full | context
    for e in scene.edges:
        if e.src not in shown or e.dst not in shown:
            continue
        if e.src in context and e.dst in context:
            continue
        src = _endpoint(scene, e.src, e.src_id, context)
        dst = _endpoint(scene, e.dst, e.dst_id, context)
        if src.split(":")[0] == dst.split(":")[0]:
            continue  # inside a layer drawn as one box
        if (src, dst) in seen:
            continue
        seen.add((src, dst))
        attrs = []
        if e.label and not e.internal:
            attrs.append(f"label={dot_string(e.label, CONTEXT_LIMIT)}")
        if e.internal:
            attrs.append("color=\"#969696\"")
        if e.style:
            attrs.append(f"style={e.style}")
        if e.weight != 1:
            attrs.append(f"weight={e.weight}")
        if e.src in context or e.dst in context:
            attrs.append(f"color=\"{CONTEXT_COLOUR}\"")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {src} -> {dst}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _endpoint(scene: _Scene, key: str, node_id: str, context: set[str]) -> str:
    """The DOT id an edge attaches to: the node inside an expanded unit, else the unit."""
    return key if key in context or not _expanded(scene, key) else node_id


def _spine(scene: _Scene, full: set[str], context: set[str]) -> set[str]:
    """DOT ids kept in one vertical line (Graphviz ``group``): each shared output buffer,
    the copies into it and what they copy from. Without this, a chain of Inception
    blocks drawn one box per layer drifts sideways block after block."""
    if any(u.members and u.role == "layer" for u in scene.units.values()):
        return set()  # with clusters, groups upset Graphviz's ranking: only for one-box layers
    copies = {e.src for e in scene.edges
              if scene.units[e.dst].role == "buffer" and scene.units[e.src].role == "inserted"}
    ids: set[str] = set()
    for e in scene.edges:
        if e.dst in copies and e.dst in full and e.src in full:
            ids.add(_endpoint(scene, e.src, e.src_id, context).split(":")[0])
            ids.add(e.dst)
        if scene.units[e.dst].role == "buffer" and e.src in copies and e.dst in full:
            ids.add(e.dst)
    return ids


def _expanded(scene: _Scene, key: str) -> bool:
    unit = scene.units[key]
    return unit.role in ("node", "eliminated", "buffer") or bool(unit.members)


# -- public builders -----------------------------------------------------------------


def graph_to_dot(
    graph: Graph,
    *,
    title: str | None = None,
    subtitle: str | None = None,
    focus: str | None = None,
    radius: int = 1,
    match: str | None = None,
    legend: bool = True,
    rankdir: str = "TB",
) -> str:
    """The ONNX graph as DOT: nodes coloured by op family, edges labelled with shapes.

    >>> from fusionlab.ir.graph import load
    >>> from onnx import helper, TensorProto
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    >>> g = load(helper.make_model(helper.make_graph(
    ...     [helper.make_node("Relu", ["x"], ["y"], name="relu")], "g", [x], [y])))
    >>> text = graph_to_dot(g, legend=False)
    >>> 'n0 [label="Relu\\\\nrelu"' in text, "in0 -> n0" in text, "n0 -> out0" in text
    (True, True, True)
    """
    scene = _graph_scene(graph)
    return _emit(scene, title=title, subtitle=subtitle, focus=focus, radius=radius, match=match,
                 legend=legend, marks={}, mark_colours=MARK_COLOURS, rankdir=rankdir)


def plan_to_dot(
    plan: Plan,
    graph: Graph | None = None,
    *,
    title: str | None = None,
    subtitle: str | None = None,
    focus: str | None = None,
    radius: int = 1,
    match: str | None = None,
    members: bool = True,
    marks: Mapping[int, str] | None = None,
    node_marks: Mapping[str, str] | None = None,
    mark_colours: Mapping[str, str] = MARK_COLOURS,
    legend: bool = True,
    rankdir: str = "TB",
    expand: Iterable[str] = (),
) -> str:
    """A plan as DOT: one cluster per layer (``members=False``: one box per layer).

    A Myelin region (``{ForeignNode[...]}``) is one box, its op counts in the label, unless
    ``expand`` names it (its layer name, or one of its nodes): then it is a cluster of its
    ops like any layer. Constant-folded nodes that feed only a layer drawn as one box are
    drawn inside it.

    ``graph`` supplies the member ops, shapes and node-level edges; without it (or for
    nodes it does not know) layers are joined by the tensor names in their inputs and
    outputs. ``marks`` maps a layer index to a status (e.g. ``"split"``) that colours its
    border (:data:`MARK_COLOURS`) and appears in the legend; ``node_marks`` does the same
    for eliminated nodes, by name.

    >>> a = Layer("conv + relu", "Convolution", ("conv", "relu"), "fuse_conv_activation",
    ...           inputs=("x",), outputs=("t",))
    >>> b = Layer("pool", "Pooling", ("pool",), "unfused", inputs=("t",), outputs=("y",))
    >>> text = plan_to_dot(Plan((a, b)), legend=False)
    >>> "L0 -> L1" in text
    True
    """
    scene = _plan_scene(plan, graph, members, expand)
    keyed = {f"L{i}": mark for i, mark in (marks or {}).items()}
    for node, mark in (node_marks or {}).items():
        key = scene.unit_of.get(node)
        if key is not None and scene.units[key].role in ("eliminated", "buffer"):
            keyed[key] = mark
    return _emit(scene, title=title, subtitle=subtitle, focus=focus, radius=radius, match=match,
                 legend=legend, marks=keyed, mark_colours=mark_colours, rankdir=rankdir)


def stage_title(prediction: Prediction, index: int, *, final: bool = False) -> tuple[str, str]:
    """(title, subtitle) of stage ``index``: what it is, the counts, what its pass did.

    ``final`` titles the stage as the predicted plan (no word about its last pass).
    """
    graph = prediction.graph
    stage = prediction.stages[index]
    target = prediction.target
    where = f"{graph.name} · target {target.name} ({target.versions}) · {prediction.precision}"
    if index == 0:
        return (f"{graph.name}: the ONNX graph ({_count(len(graph), 'node')})",
                f"{where} · before any fusion: one layer per node")
    plan = stage.plan
    before = prediction.stages[index - 1].plan
    gone = len(plan.eliminated) - len(before.eliminated)
    inserted = sum(1 for layer in plan.layers if layer.inserted)
    counts = f"{len(graph)} ONNX nodes → {_count(len(plan.layers), 'layer')}"
    if inserted:
        counts += f" ({inserted} inserted)"
    if final:
        eliminated = len(plan.eliminated)
        return (f"{graph.name}: the predicted plan, {_count(len(plan.layers), 'layer')}",
                f"{where} · {counts}, {_count(eliminated, 'node')} eliminated")
    title = f"{graph.name} after {stage.name}: {_count(len(plan.layers), 'layer')}"
    return (title, f"{where} · {counts} · {stage.name} formed "
                   f"{_count(len(stage.formed), 'layer')}, eliminated {_count(gone, 'node')}")


def _count(n: int, word: str) -> str:
    """``1 layer``, ``2 layers``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def stage_dots(
    prediction: Prediction,
    *,
    titles: Mapping[str, str] | None = None,
    focus: str | None = None,
    radius: int = 1,
    match: str | None = None,
    members: bool = True,
    expand: Iterable[str] = (),
) -> tuple[tuple[str, str], ...]:
    """(stage name, DOT) for every stage: ``original`` is the ONNX graph, then one plan
    per pass of the target. ``titles`` overrides the title of the stages it names;
    ``expand`` opens the Myelin regions it names in the stages that have them."""
    expand = list(expand)
    out: list[tuple[str, str]] = []
    for i, stage in enumerate(prediction.stages):
        title, subtitle = stage_title(prediction, i)
        if titles and stage.name in titles:
            title = titles[stage.name]
        if i == 0:
            dot = graph_to_dot(prediction.graph, title=title, subtitle=subtitle, focus=focus,
                               radius=radius, match=match)
        else:
            dot = plan_to_dot(stage.plan, prediction.graph, title=title, subtitle=subtitle,
                              focus=focus, radius=radius, match=match, members=members,
                              expand=regions_in(stage.plan, expand))
        out.append((stage.name, dot))
    return tuple(out)


def diff_marks(diff: Diff) -> tuple[dict[int, str], dict[str, str]]:
    """Statuses of a diff's actual plan: (layer index -> status, eliminated node -> status).

    An engine layer gets its component's status (``matched``, ``split``, ``merged``,
    ``mismatched``), ``inserted`` (no ONNX node, not predicted), ``matched`` (an inserted
    layer the prediction also has), or ``extra`` (it computes nodes the prediction
    eliminated). A node the engine eliminated but the prediction computes is ``missing``.
    """
    status_of: dict[str, str] = {}
    for m in diff.matches:
        for name in m.actual:
            status_of.setdefault(name, m.status)
    inserted, expected = set(diff.inserted), set(diff.expected_inserted)
    marks: dict[int, str] = {}
    for i, layer in enumerate(diff.actual.layers):
        if layer.name in status_of and layer.nodes:
            marks[i] = status_of[layer.name]
        elif layer.inserted:
            marks[i] = "matched" if layer.name in expected and layer.name not in inserted \
                else "inserted"
        else:
            marks[i] = "extra"
    node_marks = {node: "missing" for node, predicted, actual in diff.eliminated_disagreements
                  if predicted is None and actual is not None}
    return marks, node_marks


def diff_to_dot(
    graph: Graph | None,
    diff: Diff,
    *,
    title: str | None = None,
    focus: str | None = None,
    radius: int = 1,
    match: str | None = None,
    members: bool = True,
    expand: Iterable[str] = (),
) -> str:
    """The engine's (actual) plan, each layer's border coloured by how it compares with
    the prediction (:func:`diff_marks`, :data:`MARK_COLOURS`), with a legend."""
    marks, node_marks = diff_marks(diff)
    actual = diff.actual
    name = graph.name if graph is not None else (actual.model or "model")
    counts = [f"{diff.metrics.exact_matches} of {diff.metrics.engine_layers} engine layers as predicted"]
    for status in ("split", "merged", "mismatched"):
        n = len(diff.by_status(status))
        if n:
            counts.append(f"{n} {status}")
    syncs = {layer.name for layer in actual.layers if layer.kind is Kind.SYNC}
    inserted = [name for name in diff.inserted if name not in syncs]
    if inserted:
        counts.append(f"{len(inserted)} inserted")
    if syncs:
        counts.append(f"{len(syncs)} stream syncs (not drawn)")
    subtitle = f"{actual.source or 'actual'} vs predicted ({diff.predicted.target or 'target'}) · " \
        + " · ".join(counts)
    return plan_to_dot(actual, graph, title=title or f"{name}: the engine's layers vs the prediction",
                       subtitle=subtitle, focus=focus, radius=radius, match=match, members=members,
                       marks=marks, node_marks=node_marks, expand=expand)


def write_figure(
    dot: str, path: str | os.PathLike[str], *, protect: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Write ``dot`` to ``path`` as its extension asks (.svg, .png, .pdf need Graphviz).

    A convenience that hands over to :func:`fusionlab.render.graphviz.render_file`, the one
    function that runs ``dot``; this module itself never does.
    """
    from fusionlab.render.graphviz import render_file

    return render_file(dot, path, protect=protect)

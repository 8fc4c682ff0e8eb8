"""The ONNX graph as fusionlab sees it: a read-only networkx DiGraph with shapes and costs.

One networkx node per ONNX node, keyed by a unique name (unnamed nodes become
``<OpType>_<index>``); the node attribute ``node`` holds a :class:`Node` and ``op`` its
op type. An edge ``a -> b`` means b reads at least one tensor that a writes; its
attribute ``tensors`` holds those :class:`Tensor` values (``tensor`` is the first).
Initializers are :class:`Weight` values (shape and dtype; arrays are read on demand).

>>> import onnx
>>> from onnx import helper, TensorProto
>>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
>>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
>>> m = helper.make_model(helper.make_graph(
...     [helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Sigmoid", ["t"], ["y"])],
...     "g", [x], [y]))
>>> g = load(m, batch=8)
>>> g.order
('Relu_0', 'Sigmoid_1')
>>> g.tensors["t"].shape
(8, 4)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import onnx
from onnx import numpy_helper

from fusionlab.flops import Cost, node_cost
from fusionlab.errors import FusionlabError

log = logging.getLogger(__name__)

Dim = int | str | None
"""One dimension: a number, a symbolic name, or unknown."""

OPAQUE_OPS = frozenset({"If", "Loop", "Scan"})


@dataclass(frozen=True)
class Tensor:
    """A tensor: its name, shape (None when unknown) and dtype name (e.g. ``float32``)."""

    name: str
    shape: tuple[Dim, ...] | None
    dtype: str | None

    @property
    def numel(self) -> int | None:
        """Number of elements, or None when a dimension is not a known number."""
        if self.shape is None or not all(isinstance(d, int) for d in self.shape):
            return None
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int | None:
        """Size in bytes, or None when the shape or dtype is unknown."""
        n = self.numel
        if n is None or self.dtype is None:
            return None
        return n * dtype_size(self.dtype)


@dataclass(frozen=True)
class Weight(Tensor):
    """An initializer: shape and dtype now, the array on demand (:meth:`Graph.array`)."""

    external: str | None = None
    """Path of the external data file relative to the model's folder, if any."""


@dataclass(frozen=True)
class Node:
    """One ONNX node, with the costs fusionlab computed for it."""

    name: str
    op: str
    index: int
    """Position in the ONNX file's node list."""
    attrs: Mapping[str, Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    weights: tuple[str, ...]
    """The inputs that are initializers."""
    cost: Cost
    domain: str = ""

    @property
    def opaque(self) -> bool:
        """True for control flow (If/Loop/Scan), whose bodies fusionlab does not look into."""
        return self.op in OPAQUE_OPS


@dataclass(frozen=True)
class Graph:
    """A loaded ONNX model: read-only networkx graph plus tensor tables.

    Build it with :func:`load`; never mutate it.
    """

    name: str
    nx: nx.DiGraph
    order: tuple[str, ...]
    """Node names in topological order (the ONNX file's order where it is sorted)."""
    tensors: Mapping[str, Tensor]
    weights: Mapping[str, Weight]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    producer: Mapping[str, str]
    """Tensor name -> name of the node that writes it."""
    consumers: Mapping[str, tuple[str, ...]]
    """Tensor name -> names of the nodes that read it, in topological order."""
    batch: int | None
    opset: int
    path: Path | None = None
    model: onnx.ModelProto | None = field(default=None, repr=False, compare=False)

    def node(self, name: str) -> Node:
        """The :class:`Node` called ``name``."""
        try:
            node: Node = self.nx.nodes[name]["node"]
        except KeyError:
            raise FusionlabError(f"{self.name}: no node named {name!r}") from None
        return node

    def nodes(self) -> Iterator[Node]:
        """All nodes in topological order."""
        for name in self.order:
            yield self.node(name)

    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, name: object) -> bool:
        return name in self.nx

    @property
    def output_names(self) -> frozenset[str]:
        """Names of the graph's output tensors."""
        return frozenset(t.name for t in self.outputs)

    def array(self, weight: str) -> np.ndarray:
        """The array of an initializer, read now (external data only from the model's folder)."""
        if self.model is None:
            raise FusionlabError(f"{self.name}: the model is no longer attached; reload it")
        for init in self.model.graph.initializer:
            if init.name == weight:
                base = str(self.path.parent) if self.path is not None else ""
                return np.asarray(numpy_helper.to_array(init, base_dir=base))
        raise FusionlabError(f"{self.name}: no initializer named {weight!r}")


def dtype_size(dtype: str) -> int:
    """Bytes per element of a numpy dtype name.

    >>> dtype_size("float16")
    2
    """
    if dtype in ("bool", "int4", "uint4", "float4e2m1"):
        return 1
    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:
        return 1  # float8 variants and other one-byte formats numpy does not name


def _dtype_name(elem_type: int) -> str | None:
    if elem_type == onnx.TensorProto.UNDEFINED:
        return None
    try:
        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))
    except (KeyError, TypeError, ValueError):
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()


def _tensor_of(vi: onnx.ValueInfoProto) -> Tensor:
    t = vi.type.tensor_type
    shape: tuple[Dim, ...] | None = None
    if t.HasField("shape"):
        dims: list[Dim] = []
        for d in t.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        shape = tuple(dims)
    return Tensor(vi.name, shape, _dtype_name(t.elem_type))


def _read_model(source: str | os.PathLike[str] | onnx.ModelProto) -> tuple[onnx.ModelProto, Path | None]:
    if isinstance(source, onnx.ModelProto):
        return source, None
    path = Path(source)
    if not path.exists():
        raise FusionlabError(f"{path}: no such file")
    if path.is_dir():
        raise FusionlabError(f"{path}: is a folder, not an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types for bad bytes
        raise FusionlabError(f"{path}: not a valid ONNX file ({type(exc).__name__})") from exc
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise FusionlabError(f"{path}: not an ONNX model (no graph found)")
    return model, path


def _check_external_data(model: onnx.ModelProto, path: Path | None) -> None:
    """Every external-data file must exist inside the model's own folder."""
    folder = (path.parent if path is not None else Path.cwd()).resolve()
    where = str(path) if path is not None else "model"
    for init in model.graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in init.external_data if e.key == "location"), None)
        if location is None:
            raise FusionlabError(f"{where}: initializer {init.name!r} has external data without a location")
        target = (folder / location).resolve()
        if not target.is_relative_to(folder):
            raise FusionlabError(
                f"{where}: external data {location!r} of {init.name!r} lies outside the model's folder"
            )
        if not target.is_file():
            raise FusionlabError(f"{where}: missing external data file {location!r} for {init.name!r}")


def _fix_batch(model: onnx.ModelProto, batch: int, where: str) -> onnx.ModelProto:
    """A copy of ``model`` whose graph inputs have leading dimension ``batch``."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    inits = {i.name for i in fixed.graph.initializer}
    for vi in fixed.graph.input:
        if vi.name in inits or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            continue
        lead = dims[0]
        if lead.HasField("dim_value") and lead.dim_value != batch:
            raise FusionlabError(
                f"{where}: input {vi.name!r} has a fixed batch of {lead.dim_value}; "
                f"--batch {batch} applies only to a symbolic or dynamic batch dimension"
            )
        lead.Clear()
        lead.dim_value = batch
    # Shapes inferred earlier for a symbolic batch would disagree: infer them again.
    del fixed.graph.value_info[:]
    for vi in fixed.graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
    return fixed


def _infer_shapes(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception as exc:  # onnx raises InferenceError and others
        log.warning("%s: shape inference failed (%s); shapes may be unknown", where, exc)
        return model


def _unique_names(nodes: list[onnx.NodeProto]) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for i, n in enumerate(nodes):
        name = n.name or f"{n.op_type}_{i}"
        if name in seen:
            name = f"{name}_{i}"
        while name in seen:
            name += "_"
        seen.add(name)
        names.append(name)
    return names


def _tensors_of(tensors: Mapping[str, Tensor], names: Any) -> list[Tensor | None]:
    """The tensors named, None for an empty (omitted optional) name."""
    return [tensors.get(t, Tensor(t, None, None)) if t else None for t in names]


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            out[a.name] = "<subgraph>"
            continue
        value = onnx.helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif isinstance(value, list):
            value = tuple(v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value)
        elif isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value).tolist() if not value.data_location else "<tensor>"
        out[a.name] = value
    return out


def load(
    source: str | os.PathLike[str] | onnx.ModelProto,
    batch: int | None = None,
    *,
    name: str | None = None,
) -> Graph:
    """Load an ONNX file or ModelProto into a :class:`Graph`.

    ``batch`` fixes a symbolic or dynamic leading dimension of every graph input before
    ONNX shape inference. Raises :class:`FusionlabError` for a missing, invalid or
    truncated file, a dangling input, a cycle or missing external data.
    """
    model, path = _read_model(source)
    where = str(path) if path is not None else (name or model.graph.name or "model")
    if batch is not None and batch < 1:
        raise FusionlabError(f"--batch must be at least 1, got {batch}")
    _check_external_data(model, path)
    if batch is not None:
        model = _fix_batch(model, batch, where)
    model = _infer_shapes(model, where)
    g = model.graph

    tensors: dict[str, Tensor] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        tensors[vi.name] = _tensor_of(vi)
    weights: dict[str, Weight] = {}
    for init in g.initializer:
        location = next((e.value for e in init.external_data if e.key == "location"), None)
        w = Weight(init.name, tuple(int(d) for d in init.dims), _dtype_name(init.data_type), location)
        weights[init.name] = w
        tensors[init.name] = w
    for n in g.node:
        if n.op_type == "Constant":
            for out in n.output:
                if out not in tensors or tensors[out].shape is None:
                    tensors[out] = Tensor(out, None, None)

    names = _unique_names(list(g.node))
    graph_inputs = tuple(tensors[vi.name] for vi in g.input if vi.name not in weights)
    graph_outputs = tuple(tensors[vi.name] for vi in g.output)

    producer: dict[str, str] = {}
    for nm, n in zip(names, g.node, strict=True):
        for out in n.output:
            if not out:
                continue
            if out in producer:
                raise FusionlabError(f"{where}: tensor {out!r} is written by both {producer[out]!r} and {nm!r}")
            producer[out] = nm
    available = set(producer) | set(weights) | {t.name for t in graph_inputs}

    dg: nx.DiGraph = nx.DiGraph()
    consumers: dict[str, list[str]] = {}
    for index, (nm, n) in enumerate(zip(names, g.node, strict=True)):
        ins = tuple(n.input)
        for t in ins:
            if t and t not in available:
                raise FusionlabError(f"{where}: node {nm!r} reads {t!r}, which no node, input or initializer provides")
        attrs = _attrs(n)
        node = Node(
            name=nm,
            op=n.op_type,
            index=index,
            attrs=attrs,
            inputs=ins,
            outputs=tuple(n.output),
            weights=tuple(t for t in ins if t in weights),
            cost=node_cost(n.op_type, attrs, _tensors_of(tensors, ins), _tensors_of(tensors, n.output)),
            domain=n.domain,
        )
        dg.add_node(nm, node=node, op=n.op_type)
    for nm, n in zip(names, g.node, strict=True):
        for t in n.input:
            if not t:
                continue
            consumers.setdefault(t, []).append(nm)
            src = producer.get(t)
            if src is None:
                continue
            tensor = tensors.get(t, Tensor(t, None, None))
            if dg.has_edge(src, nm):
                data = dg.edges[src, nm]
                if all(x.name != t for x in data["tensors"]):
                    data["tensors"] = (*data["tensors"], tensor)
            else:
                dg.add_edge(src, nm, tensor=t, shape=tensor.shape, dtype=tensor.dtype, tensors=(tensor,))
    for t in graph_outputs:
        if t.name not in available:
            raise FusionlabError(f"{where}: graph output {t.name!r} is not produced by any node")

    if not nx.is_directed_acyclic_graph(dg):
        cycle = nx.find_cycle(dg)
        raise FusionlabError(f"{where}: the graph has a cycle through {' -> '.join(a for a, _ in cycle)}")
    index_of = {nm: i for i, nm in enumerate(names)}
    if all(index_of[a] < index_of[b] for a, b in dg.edges):
        order = tuple(names)
    else:
        order = tuple(nx.lexicographical_topological_sort(dg, key=lambda v: index_of[v]))
    position = {nm: i for i, nm in enumerate(order)}
    frozen_consumers = {t: tuple(sorted(set(c), key=position.__getitem__)) for t, c in consumers.items()}

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return Graph(
        name=name or (path.stem if path is not None else (model.graph.name or "model")),
        nx=nx.freeze(dg),
        order=order,
        tensors=tensors,
        weights=weights,
        inputs=graph_inputs,
        outputs=graph_outputs,
        producer=producer,
        consumers=frozen_consumers,
        batch=batch,
        opset=int(opset),
        path=path,
        model=model,
    )

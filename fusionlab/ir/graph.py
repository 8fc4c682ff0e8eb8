"""The ONNX graph as fusionlab sees it: nodes, tensors and edges with shapes and costs.

One :class:`Node` per ONNX node, keyed by a unique name (unnamed nodes become
``<OpType>_<index>``). An edge ``a -> b`` means b reads at least one tensor that a
writes (:attr:`Graph.edge_tensors`, :meth:`Graph.predecessors`, :meth:`Graph.successors`).
:attr:`Graph.nx` is the same graph as a read-only networkx DiGraph, built the first time
it is asked for (drawing, diff): the node attribute ``node`` holds the :class:`Node` and
``op`` its op type; an edge's attributes ``tensor``, ``shape`` and ``dtype`` describe the
first tensor between the two nodes and ``tensors`` holds all of them as :class:`Tensor`
values. A prediction never builds it, nor imports networkx (about 0.1 s of start-up and,
at 10,000 nodes, 0.1 s more to build and freeze: ``benchmarks/bench_predict.py``).
Initializers are :class:`Weight` values (shape and dtype; arrays are read on demand by
:meth:`Graph.array`). Everything is read-only: the networkx graph is frozen and the
mappings raise ``TypeError`` when written to.

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
>>> g.nx.edges["Relu_0", "Sigmoid_1"]["shape"]
(8, 4)
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import numpy as np
import onnx
from onnx import numpy_helper

from fusionlab.errors import FusionlabError
from fusionlab.gcpause import paused
from fusionlab.ir.flops import Cost, node_cost
from fusionlab.ir.shape_math import propagate
from fusionlab.ir.tensors import Dim, Tensor, Weight

if TYPE_CHECKING:
    import networkx as nx  # type: ignore[import-untyped,unused-ignore]

log = logging.getLogger(__name__)

OPAQUE_OPS = frozenset({"If", "Loop", "Scan"})

MAX_ATTR_TENSOR_ELEMENTS = 4096
"""Tensor attributes (e.g. a Constant's ``value``) up to this size are kept as nested lists;
larger ones are summarized as ``"<tensor DTYPE SHAPE>"`` so loading stays cheap."""

_K = TypeVar("_K")
_V = TypeVar("_V")


READ_ONLY = "fusionlab graphs are read-only"
"""What every write to a graph's tables says (TypeError)."""


class _FrozenDict(dict[_K, _V]):
    """A dict that refuses writes (``TypeError``); copies (``dict(d)``, ``d.copy()``) are plain.

    >>> d = _FrozenDict({"a": 1})
    >>> d["a"] = 2
    Traceback (most recent call last):
    ...
    TypeError: fusionlab graphs are read-only
    """

    def _refuse(self) -> NoReturn:
        raise TypeError(READ_ONLY)

    def __setitem__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def __delitem__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def __ior__(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[misc]
        self._refuse()

    def clear(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def pop(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def popitem(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def setdefault(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._refuse()

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (dict(self),))


class _ReadOnlyMapping(Mapping[_K, _V]):
    """A read-only mapping whose values are made when first looked up (writes: TypeError)."""

    def __setitem__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(READ_ONLY)

    __delitem__ = pop = popitem = setdefault = update = clear = __setitem__


class _Initializers(_ReadOnlyMapping[str, Weight]):
    """The model's initializers as :class:`Weight` values by name, each made the first time
    it is looked up: a prediction asks about few of them (at 10,000 nodes, 15,000
    initializers: 0.04 s of load saved, benchmarks/bench_predict.py)."""

    def __init__(self, protos: dict[str, onnx.TensorProto]) -> None:
        self._protos = protos
        self._made: dict[str, Weight] = {}

    def __getitem__(self, name: str) -> Weight:
        w = self._made.get(name)
        if w is None:
            init = self._protos[name]
            location = next((e.value for e in init.external_data if e.key == "location"), None) \
                if init.data_location == onnx.TensorProto.EXTERNAL else None
            w = self._made[name] = Weight(init.name, tuple(init.dims), _dtype_name(init.data_type), location)
        return w

    def __contains__(self, name: object) -> bool:
        return name in self._protos

    def __iter__(self) -> Iterator[str]:
        return iter(self._protos)

    def __len__(self) -> int:
        return len(self._protos)

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self._protos,))


class _Tensors(_ReadOnlyMapping[str, Tensor]):
    """Every tensor by name: the initializers (:class:`_Initializers`) over the others."""

    def __init__(self, others: dict[str, Tensor], weights: _Initializers) -> None:
        self._others, self._weights = others, weights

    def __getitem__(self, name: str) -> Tensor:
        if name in self._weights:
            return self._weights[name]
        return self._others[name]

    def __contains__(self, name: object) -> bool:
        return name in self._weights or name in self._others

    def __iter__(self) -> Iterator[str]:
        weights = self._weights
        yield from (n for n in self._others if n not in weights)
        yield from weights

    def __len__(self) -> int:
        return len(self._weights) + sum(1 for n in self._others if n not in self._weights)

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self._others, self._weights))


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
    domain: str = ""
    implicit_inputs: tuple[str, ...] = ()
    """Outer-scope tensors that the subgraphs of an If/Loop/Scan read (sorted); the
    graph has edges for them too."""
    folded: bool = False
    """Every output is a value the static shapes determine (shape arithmetic)."""
    tensors: Mapping[str, Tensor] = field(default_factory=dict, repr=False, compare=False)
    """The graph's tensor table, from which :attr:`cost` is computed."""

    @functools.cached_property
    def cost(self) -> Cost:
        """FLOPs and bytes of the node (:func:`~fusionlab.ir.flops.node_cost`), computed the
        first time they are asked for: a prediction never asks (10,000 nodes: 0.06 s saved)."""
        if self.folded:
            return FOLDED
        return node_cost(self.op, self.attrs, _tensors_of(self.tensors, self.inputs),
                         _tensors_of(self.tensors, self.outputs))

    @property
    def opaque(self) -> bool:
        """True for control flow (If/Loop/Scan), whose bodies fusionlab does not look into."""
        return self.op in OPAQUE_OPS


@dataclass(frozen=True)
class Graph:
    """A loaded ONNX model: its nodes, their edges, and tensor tables.

    Build it with :func:`load`; it cannot be mutated.
    """

    name: str
    node_map: Mapping[str, Node]
    """Node name -> :class:`Node`."""
    edge_tensors: Mapping[tuple[str, str], tuple[str, ...]]
    """(writer, reader) node pairs -> the tensors between them, in the reader's input order."""
    order: tuple[str, ...]
    """Node names in topological order (the ONNX file's order where it is sorted)."""
    tensors: Mapping[str, Tensor]
    """Every tensor of the top-level graph, by name (shape None where not inferred)."""
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
    values: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    """Small tensors whose value the static shapes determine (the results of shape
    arithmetic, :mod:`fusionlab.ir.shape_math`), by name."""

    @functools.cached_property
    def position(self) -> dict[str, int]:
        """Node name -> its place in :attr:`order`, computed once."""
        return {name: i for i, name in enumerate(self.order)}

    @functools.cached_property
    def edge_list(self) -> list[tuple[str, str]]:
        """All (writer, reader) node pairs, computed once."""
        return list(self.edge_tensors)

    @functools.cached_property
    def _adjacency(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        pred: dict[str, list[str]] = {}
        succ: dict[str, list[str]] = {}
        for u, v in self.edge_tensors:
            succ.setdefault(u, []).append(v)
            pred.setdefault(v, []).append(u)
        return pred, succ

    def predecessors(self, name: str) -> Iterable[str]:
        """Nodes that write a tensor ``name`` reads (in the order of its inputs)."""
        return self._adjacency[0].get(name, ())

    def successors(self, name: str) -> Iterable[str]:
        """Nodes that read a tensor ``name`` writes (in file order)."""
        return self._adjacency[1].get(name, ())

    @functools.cached_property
    def nx(self) -> nx.DiGraph[str]:
        """The graph as a frozen networkx DiGraph (see the module docstring), built once."""
        import networkx as nx

        dg: nx.DiGraph[str] = nx.DiGraph()
        dg.add_nodes_from((name, {"node": node, "op": node.op}) for name, node in self.node_map.items())
        tensors = self.tensors
        dg.add_edges_from(
            (src, dst, {"tensor": ts[0], "shape": tensors[ts[0]].shape, "dtype": tensors[ts[0]].dtype,
                        "tensors": tuple(tensors[t] for t in ts)})
            for (src, dst), ts in self.edge_tensors.items()
        )
        return _freeze(dg)

    def node(self, name: str) -> Node:
        """The :class:`Node` called ``name``."""
        try:
            return self.node_map[name]
        except KeyError:
            raise FusionlabError(f"{self.name}: no node named {name!r}") from None

    @functools.cached_property
    def weight_names(self) -> frozenset[str]:
        """Names of the initializers, computed once (membership tests for every pass)."""
        return frozenset(self.weights)

    @functools.cached_property
    def op_of(self) -> dict[str, str]:
        """Node name -> op type (what passes ask most often), computed once."""
        return {name: node.op for name, node in self.node_map.items()}

    def names_with_ops(self, ops: Collection[str]) -> tuple[str, ...]:
        """Names of the nodes whose op is one of ``ops``, in topological order (computed
        once per set of ops: passes ask for the same few sets on every run)."""
        key = ops if isinstance(ops, frozenset) else frozenset(ops)
        found = self._names_with_ops.get(key)
        if found is None:
            by_op = self._names_by_op
            lists = [by_op[op] for op in key if op in by_op]
            if len(lists) == 1:
                found = tuple(lists[0])
            else:
                position = self.position
                found = tuple(sorted((n for names in lists for n in names), key=position.__getitem__))
            self._names_with_ops[key] = found
        return found

    @functools.cached_property
    def _names_by_op(self) -> dict[str, list[str]]:
        """Op type -> the names of its nodes, in topological order (one walk of the graph)."""
        op_of = self.op_of
        by_op: dict[str, list[str]] = {}
        for n in self.order:
            by_op.setdefault(op_of[n], []).append(n)
        return by_op

    @functools.cached_property
    def _names_with_ops(self) -> dict[frozenset[str], tuple[str, ...]]:
        return {}

    def nodes(self) -> Iterator[Node]:
        """All nodes in topological order."""
        node_map = self.node_map
        for name in self.order:
            yield node_map[name]

    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, name: object) -> bool:
        return name in self.node_map

    @functools.cached_property
    def output_names(self) -> frozenset[str]:
        """Names of the graph's output tensors."""
        return frozenset(t.name for t in self.outputs)

    def array(self, weight: str) -> np.ndarray:
        """The array of an initializer, read now (external data only from the model's folder)."""
        where = str(self.path) if self.path is not None else self.name
        if self.model is None:
            raise FusionlabError(f"{where}: the model is no longer attached; reload it")
        for init in self.model.graph.initializer:
            if init.name == weight:
                if init.data_location == onnx.TensorProto.EXTERNAL:
                    _check_external_data([init], self.path)
                base = str(self.path.parent) if self.path is not None else ""
                try:
                    return np.asarray(numpy_helper.to_array(init, base_dir=base))
                except (OSError, ValueError, TypeError) as exc:
                    raise FusionlabError(
                        f"{where}: cannot read initializer {weight!r}: {exc}"
                    ) from exc
        raise FusionlabError(f"{where}: no initializer named {weight!r}")


@functools.lru_cache(maxsize=64)
def _dtype_name(elem_type: int) -> str | None:
    if elem_type == onnx.TensorProto.UNDEFINED:
        return None
    try:
        return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)))
    except (KeyError, TypeError, ValueError):
        pass
    try:
        return str(onnx.TensorProto.DataType.Name(elem_type)).lower()
    except ValueError:  # an element type the ONNX standard does not define
        return f"unknown-{elem_type}"


def _tensor_of(vi: onnx.ValueInfoProto) -> Tensor:
    t = vi.type.tensor_type
    shape: tuple[Dim, ...] | None = None
    if t.HasField("shape"):
        dims: list[Dim] = []
        for d in t.shape.dim:
            v = d.dim_value  # most dimensions are numbers: one read, then the rare cases
            if v:
                dims.append(v)
            elif d.dim_param:
                dims.append(d.dim_param)
            else:
                dims.append(0 if d.HasField("dim_value") else None)
        shape = tuple(dims)
    return Tensor(vi.name, shape, _dtype_name(t.elem_type))


def _read_model(
    source: str | os.PathLike[str] | onnx.ModelProto,
) -> tuple[onnx.ModelProto, Path | None]:
    if isinstance(source, onnx.ModelProto):
        return source, None
    path = Path(source)
    if not path.exists():
        raise FusionlabError(f"{path}: no such file")
    if path.is_dir():
        raise FusionlabError(f"{path}: is a folder, not an ONNX file")
    if path.stat().st_size == 0:
        raise FusionlabError(f"{path}: is empty, not an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise FusionlabError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    except Exception as exc:  # protobuf raises several types for bad bytes
        raise FusionlabError(
            f"{path}: not a valid ONNX file (truncated or not ONNX: {type(exc).__name__})"
        ) from exc
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise FusionlabError(f"{path}: not an ONNX model (no graph found)")
    return model, path


def _check_external_data(
    initializers: Iterable[onnx.TensorProto], path: Path | None
) -> None:
    """Every external-data file must exist inside the model's own folder."""
    folder = (path.parent if path is not None else Path.cwd()).resolve()
    where = str(path) if path is not None else "model"
    for init in initializers:
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in init.external_data if e.key == "location"), None)
        if not location:
            raise FusionlabError(
                f"{where}: initializer {init.name!r} has external data without a location"
            )
        try:
            target = (folder / location).resolve()
        except (OSError, ValueError):  # a NUL byte, a name too long, a loop of links
            raise FusionlabError(
                f"{where}: external data location {location[:60]!r} of {init.name!r} is not a file name"
            ) from None
        if not target.is_relative_to(folder):
            raise FusionlabError(
                f"{where}: external data {location!r} of {init.name!r} lies outside "
                "the model's folder"
            )
        try:
            present = target.is_file()
        except (OSError, ValueError):
            present = False
        if not present:
            raise FusionlabError(
                f"{where}: missing external data file {location[:60]!r} for {init.name!r}"
            )


def _fix_batch(model: onnx.ModelProto, batch: int, where: str, *, copy: bool = True) -> onnx.ModelProto:
    """A copy of ``model`` (``copy=False``: ``model`` itself, for a model read from a file
    here, which no one else holds) whose graph inputs have leading dimension ``batch``.

    Inputs with a symbolic or unknown leading dimension get ``batch``. An input whose
    leading dimension is a different number is an error when no input has a symbolic
    one (a fixed-batch model); beside symbolic inputs it is left as it is (an auxiliary
    input such as ``im_info[1,3]``).
    """
    if copy:
        fixed = onnx.ModelProto()
        fixed.CopyFrom(model)  # the weights too: a 100,000-node model's 80 MB, 0.3 s
    else:
        fixed = model
    inits = {i.name for i in fixed.graph.initializer}
    leads = [
        (vi.name, vi.type.tensor_type.shape.dim[0])
        for vi in fixed.graph.input
        if vi.name not in inits
        and vi.type.HasField("tensor_type")
        and vi.type.tensor_type.HasField("shape")
        and vi.type.tensor_type.shape.dim
    ]
    dynamic = [lead for _, lead in leads if not lead.HasField("dim_value")]
    if not dynamic:
        for name, lead in leads:
            if lead.dim_value != batch:
                raise FusionlabError(
                    f"{where}: input {name!r} has a fixed batch of {lead.dim_value}; "
                    f"--batch {batch} applies only to a symbolic or dynamic batch dimension"
                )
    for lead in dynamic:
        lead.Clear()
        lead.dim_value = batch
    # Shapes inferred earlier for a symbolic batch would disagree: infer them again.
    del fixed.graph.value_info[:]
    for vi in fixed.graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
    return fixed


FOLDED = Cost(0, 0, 0, "computes a constant from the static shapes (folded at build time)")
"""The cost of a node whose every output the static shapes determine (shape arithmetic)."""

SMALL_INITIALIZER = 64
"""Initializers up to this many elements keep their data for shape inference (shape
tensors, axes); larger ones (weights) are described by shape and type only."""


def _inferred_infos(
    model: onnx.ModelProto, nodes: Iterable[onnx.NodeProto], where: str, opset: int,
    shape_math: bool = True,
) -> tuple[list[onnx.ValueInfoProto], dict[str, np.ndarray]]:
    """Value infos of the graph's inputs, intermediates and outputs after ONNX shape
    inference, and the values of the shape arithmetic the static shapes determine.

    Inference runs on a skeleton of the model: ``nodes`` (in topological order) and every
    initializer larger than :data:`SMALL_INITIALIZER` elements replaced by a typed input,
    so the weights are neither serialized nor parsed again (for a 100 MB model most of
    the time shape inference took). Where the model computes shapes with nodes (``Shape``
    or ``Size`` present), one more pass evaluates that arithmetic and infers the shapes it
    determines (:mod:`fusionlab.ir.shape_math`; ``shape_math=False``: the caller knows there
    is none). The user's model is not touched.
    """
    g = model.graph
    skeleton = onnx.ModelProto(ir_version=model.ir_version)
    skeleton.opset_import.extend(model.opset_import)
    sk = skeleton.graph
    sk.node.extend(nodes)
    sk.input.extend(g.input)
    sk.output.extend(g.output)
    sk.value_info.extend(g.value_info)
    declared = {vi.name for vi in g.input}
    for init in g.initializer:
        if math.prod(init.dims) <= SMALL_INITIALIZER and init.data_location != onnx.TensorProto.EXTERNAL:
            sk.initializer.append(init)
        elif init.name not in declared:
            _add_typed_input(sk, init)
    sk.sparse_initializer.extend(g.sparse_initializer)
    shape_math = shape_math and any(n.op_type in ("Shape", "Size") for n in sk.node)
    if shape_math:
        inferred = _infer(skeleton, where)
    else:
        # the skeleton (a copy of every node) is not needed after inference: pass its bytes
        # and free it first, so it and onnx's own copies are never alive together (the peak
        # memory of a 100,000-node model)
        data = skeleton.SerializeToString()
        del skeleton, sk
        inferred = _infer(data, where)
    infos = [*g.input, *inferred.value_info, *inferred.output]
    if not shape_math:
        return infos, {}
    types = {vi.name: vi.type for vi in (*sk.input, *infos)}
    types, values = propagate(sk, types, opset=opset)
    return [onnx.helper.make_value_info(name, t) for name, t in types.items()], values


def _add_typed_input(graph: onnx.GraphProto, init: onnx.TensorProto) -> None:
    """Declare ``init`` as a typed input of ``graph``: what ``onnx.helper.make_tensor_value_info``
    builds, less its checks. (A function of its own: a reference to a sub-message left in a
    local would keep the whole skeleton's arena alive through shape inference.)"""
    vi = graph.input.add()
    vi.name = init.name
    tt = vi.type.tensor_type
    tt.elem_type = init.data_type
    tt.shape.SetInParent()  # a scalar has a shape of no dimensions, not an unknown one
    dims = tt.shape.dim
    for d in init.dims:
        dims.add().dim_value = d


def _infer(skeleton: onnx.ModelProto | bytes, where: str) -> onnx.GraphProto:
    try:
        return onnx.shape_inference.infer_shapes(skeleton, strict_mode=False, data_prop=True).graph
    except Exception as exc:  # onnx raises InferenceError and others
        log.warning("%s: shape inference failed (%s); shapes may be unknown", where, exc)
        if isinstance(skeleton, bytes):
            return onnx.load_from_string(skeleton).graph
        return skeleton.graph


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


def _subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    out: list[onnx.GraphProto] = []
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            out.append(a.g)
        elif a.type == onnx.AttributeProto.GRAPHS:
            out.extend(a.graphs)
    return out


def _outer_reads(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads that it does not define itself: its outer-scope inputs."""
    defined = {vi.name for vi in graph.input} | {i.name for i in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    reads = {vi.name for vi in graph.output}
    for n in graph.node:
        defined.update(o for o in n.output if o)
        reads.update(t for t in n.input if t)
        for sub in _subgraphs(n):
            reads |= _outer_reads(sub)
    return reads - defined


_GRAPH_ATTRS: dict[tuple[str, int], bool] = {}


def _may_have_subgraphs(op: str, domain: str, opset: int, node: onnx.NodeProto) -> bool:
    """Whether ``node`` can hold subgraphs: a standard op whose schema declares a graph
    attribute (If, Loop, Scan ...; :func:`_attrs` refuses one on any other standard op), or
    any node of another domain that has one."""
    if domain not in ("", "ai.onnx"):
        return bool(_subgraphs(node))
    key = (op, opset)
    found = _GRAPH_ATTRS.get(key)
    if found is None:
        types = _schema_types(op, "", opset)
        found = _GRAPH_ATTRS[key] = types is None or any(t in (_GRAPH, _GRAPHS) for t in types.values())
    return found and bool(_subgraphs(node))


def _implicit_inputs(node: onnx.NodeProto) -> tuple[str, ...]:
    """Outer-scope tensors read by the subgraphs of a control-flow node."""
    reads: set[str] = set()
    for sub in _subgraphs(node):
        reads |= _outer_reads(sub)
    return tuple(sorted(reads - set(node.input)))


def _tensors_of(tensors: Mapping[str, Tensor], names: Iterable[str]) -> list[Tensor | None]:
    """The tensors named, None for an empty (omitted optional) name."""
    return [(tensors[t] if t in tensors else Tensor(t, None, None)) if t else None for t in names]


def _tensor_attr(t: onnx.TensorProto) -> Any:
    n = math.prod(t.dims)
    if t.data_location == onnx.TensorProto.EXTERNAL or n > MAX_ATTR_TENSOR_ELEMENTS:
        return f"<tensor {_dtype_name(t.data_type)} {list(t.dims)}>"
    try:
        return numpy_helper.to_array(t).tolist()
    except Exception:  # a malformed tensor attribute (wrong data length, odd type): keep a summary
        return f"<tensor {_dtype_name(t.data_type)} {list(t.dims)}, unreadable>"


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, onnx.TensorProto):
        return _tensor_attr(value)
    if isinstance(value, list | tuple):
        return tuple(_attr_value(v) for v in value)
    if isinstance(value, int | float | str):
        return value
    return f"<{type(value).__name__}>"  # sparse tensors, type protos


_A = onnx.AttributeProto
_INT, _INTS, _FLOAT, _FLOATS, _STRING, _GRAPH, _GRAPHS = (
    int(k) for k in (_A.INT, _A.INTS, _A.FLOAT, _A.FLOATS, _A.STRING, _A.GRAPH, _A.GRAPHS))


_SCHEMA_TYPES: dict[tuple[str, str, int], Mapping[str, int] | None] = {}


def _schema_types(op: str, domain: str, opset: int) -> Mapping[str, int] | None:
    """Attribute name -> ``AttributeProto`` type that ONNX's schema of ``op`` declares at
    ``opset`` (None for an op ONNX does not define: a custom domain or an unknown op)."""
    key = (op, domain, opset)
    if key not in _SCHEMA_TYPES:
        try:
            schema = onnx.defs.get_schema(op, max(opset, 1), domain)
        except onnx.defs.SchemaError:
            _SCHEMA_TYPES[key] = None
        else:
            _SCHEMA_TYPES[key] = {name: int(a.type)  # type: ignore[call-overload]  # pybind enum
                                  for name, a in schema.attributes.items()}
    return _SCHEMA_TYPES[key]


SUBGRAPH = "<subgraph>"
"""The value :func:`_attrs` gives a graph-valued attribute (the body of an If, Loop, Scan)."""


_IGNORED: set[tuple[str, str, str]] = set()


def _ignored(where: str, op: str, key: str, opset: int) -> None:
    """Log, once per model, op and name, an attribute ONNX's schema does not declare."""
    if (where, op, key) not in _IGNORED:
        _IGNORED.add((where, op, key))
        log.warning("%s: attribute %r of %s is not one ONNX's %s takes at opset %d: ignored",
                    where, key, op, op, opset)


def _attrs(node: onnx.NodeProto, opset: int = 0, where: str = "model") -> dict[str, Any]:
    """A node's attributes as Python values (a graph-valued one is :data:`SUBGRAPH`). An
    attribute of a standard op whose type is not the one ONNX's schema declares (a text
    ``group`` on a Conv) is a FusionlabError naming the model: every pass may then read an
    attribute as its schema says. One the schema does not declare at the model's opset (a
    ``max`` on an opset-13 Clip, campaign seed 24) is left out, with a warning."""
    attributes = node.attribute
    if not attributes:
        return {}
    out: dict[str, Any] = {}
    domain = node.domain
    types = _schema_types(node.op_type, domain, opset) if domain in ("", "ai.onnx") else None
    for a in attributes:
        kind, key = a.type, a.name
        if types is not None:
            want = types.get(key)
            if want is None:
                if opset > 0:  # not an attribute of this op at this opset: TensorRT's parser
                    _ignored(where, node.op_type, key, opset)  # never reads it, nor does a pass
                    continue
            elif want != kind:
                name = _A.AttributeType.Name
                raise FusionlabError(
                    f"{where}: node {node.name or node.op_type!r} ({node.op_type}): attribute {key!r} is "
                    f"{name(kind) if kind in _A.AttributeType.values() else kind}, where ONNX's "
                    f"{node.op_type} takes {name(want)}"
                )
        # the common kinds read directly (this runs for every attribute of every node)
        if kind == _INT:
            out[key] = a.i
        elif kind == _INTS:
            out[key] = tuple(a.ints)
        elif kind == _FLOAT:
            out[key] = a.f
        elif kind == _FLOATS:
            out[key] = tuple(a.floats)
        elif kind == _STRING:
            out[key] = a.s.decode("utf-8", "replace")
        elif kind in (_GRAPH, _GRAPHS):
            out[key] = SUBGRAPH
        else:
            out[key] = _attr_value(onnx.helper.get_attribute_value(a))
    return out


def _freeze(dg: nx.DiGraph[str]) -> nx.DiGraph[str]:
    """Freeze the structure (networkx) and every node and edge attribute dict."""
    import networkx as nx

    raw: Any = dg  # networkx's own storage: node dicts, and edge dicts shared by succ/pred
    nodes = raw._node
    for n in list(nodes):
        nodes[n] = _FrozenDict(nodes[n])
    for u, nbrs in raw._succ.items():
        for v in list(nbrs):
            frozen = _FrozenDict(nbrs[v])
            nbrs[v] = frozen
            raw._pred[v][u] = frozen
    result: nx.DiGraph[str] = nx.freeze(dg)
    return result


Edges = dict[tuple[str, str], list[str]]
"""(writer, reader) -> the tensors between them, in the reader's input order."""


def _topological_order(
    names: list[str], nodes: list[onnx.NodeProto], g: onnx.GraphProto, where: str,
    implicit: list[tuple[str, ...]], initializers: Collection[str],
) -> tuple[tuple[str, ...], dict[str, str], Edges]:
    """Check the structure; return the order, the producers and the node-to-node edges
    with their tensors (``implicit``: each node's implicit inputs).

    Raises FusionlabError for a tensor written twice, a dangling input or output, or a
    cycle. The order is the file's where the file is sorted, else the topological order
    closest to it.
    """
    producer: dict[str, str] = {}
    for nm, n in zip(names, nodes, strict=True):
        for out in n.output:
            if not out:
                continue
            if out in producer:
                raise FusionlabError(
                    f"{where}: tensor {out!r} is written by both {producer[out]!r} and {nm!r}"
                )
            producer[out] = nm
    available = set(producer) | set(initializers) | {vi.name for vi in g.input}
    available |= {s.values.name for s in g.sparse_initializer}
    edges: Edges = {}
    for nm, n, imp in zip(names, nodes, implicit, strict=True):
        for t in (*n.input, *imp):
            if not t:
                continue
            if t not in available:
                raise FusionlabError(
                    f"{where}: node {nm!r} reads {t!r}, which no node, input or "
                    "initializer provides"
                )
            src = producer.get(t)
            if src is not None:
                between = edges.setdefault((src, nm), [])
                if t not in between:
                    between.append(t)
    for vi in g.output:
        if vi.name not in available:
            raise FusionlabError(
                f"{where}: graph output {vi.name!r} is not produced by any node"
            )
    index_of = {nm: i for i, nm in enumerate(names)}
    if all(index_of[a] < index_of[b] for a, b in edges):
        return tuple(names), producer, edges  # sorted, hence acyclic
    import networkx as nx

    dg: nx.DiGraph[str] = nx.DiGraph()
    dg.add_nodes_from(names)
    dg.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(dg):
        cycle = nx.find_cycle(dg)
        path = " -> ".join([*(a for a, _ in cycle), cycle[0][0]])
        raise FusionlabError(f"{where}: the graph has a cycle: {path}")
    order = tuple(nx.lexicographical_topological_sort(dg, key=index_of.__getitem__))
    return order, producer, edges


def load(
    source: str | os.PathLike[str] | onnx.ModelProto,
    batch: int | None = None,
    *,
    name: str | None = None,
) -> Graph:
    """Load an ONNX file or ModelProto into a :class:`Graph`.

    ``batch`` fixes a symbolic or dynamic leading dimension of every graph input before
    ONNX shape inference. Raises :class:`FusionlabError` for a missing, invalid or
    truncated file, a dangling input, a cycle, missing external data or external data
    outside the model's folder. A node list that is not topologically sorted is sorted
    (for shape inference and :attr:`Graph.order`); node indices stay the file's.
    """
    with paused():
        return _load(source, batch, name)


def _load(source: str | os.PathLike[str] | onnx.ModelProto, batch: int | None, name: str | None) -> Graph:
    model, path = _read_model(source)
    where = str(path) if path is not None else (name or model.graph.name or "model")
    if batch is not None and batch < 1:
        raise FusionlabError(f"--batch must be at least 1, got {batch}")
    _check_external_data(model.graph.initializer, path)
    if batch is not None:
        model = _fix_batch(model, batch, where, copy=path is None)  # a file's model is ours alone
    file_nodes = list(model.graph.node)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    names = _unique_names(file_nodes)
    # Only what the structure check needs is read before shape inference, the moment of
    # peak memory: each node's attributes and tensor names are read after it (at 100,000
    # nodes they are ~100 MB of Python objects).
    no_reads: tuple[str, ...] = ()
    implicit: list[tuple[str, ...]] = []
    shape_math = False
    for n in file_nodes:
        op = n.op_type
        shape_math = shape_math or op in ("Shape", "Size")
        implicit.append(_implicit_inputs(n) if _may_have_subgraphs(op, n.domain, opset, n) else no_reads)
    initializers = {init.name: init for init in model.graph.initializer}
    order, producer, edges = _topological_order(names, file_nodes, model.graph, where, implicit,
                                                initializers)

    if order != tuple(names):
        # ONNX shape inference walks the node list once, in order: give it sorted nodes;
        # Node.index still points into the file's order.
        position = {nm: i for i, nm in enumerate(names)}
        infos, values = _inferred_infos(model, (file_nodes[position[nm]] for nm in order), where, opset,
                                        shape_math)
    else:
        infos, values = _inferred_infos(model, file_nodes, where, opset, shape_math)
    g = model.graph
    nodes = file_nodes

    # a value info keeps the whole inferred model alive (one protobuf arena; for a
    # 100,000-node model ~500 MB): none is left referenced while the IR is built (the peak)
    tensors: dict[str, Tensor] = {vi.name: _tensor_of(vi) for vi in infos}
    del infos
    weights = _Initializers(initializers)
    io = [(tuple(n.input), tuple(n.output)) for n in nodes]  # protobuf fields, read once
    for ins, outs in io:
        for t in (*ins, *outs):
            if t and t not in tensors and t not in initializers:
                tensors[t] = Tensor(t, None, None)

    all_tensors = _Tensors(tensors, weights)
    graph_inputs = tuple(tensors[vi.name] for vi in g.input if vi.name not in initializers)
    graph_outputs = tuple(all_tensors[vi.name] for vi in g.output)

    node_map: dict[str, Node] = {}
    for index, (nm, n) in enumerate(zip(names, nodes, strict=True)):
        ins, outs = io[index]
        attrs = _attrs(n, opset, where)
        if not implicit[index] and SUBGRAPH in attrs.values() and not _may_have_subgraphs(
                n.op_type, n.domain, opset, n):
            raise FusionlabError(
                f"{where}: node {nm!r} ({n.op_type}) has a graph attribute, which ONNX's {n.op_type} "
                "does not take")
        node_map[nm] = Node(
            name=nm,
            op=n.op_type,
            index=index,
            attrs=_FrozenDict(attrs),
            inputs=ins,
            outputs=outs,
            weights=tuple(t for t in ins if t in initializers),
            domain=n.domain,
            implicit_inputs=implicit[index],
            folded=bool(values) and bool(outs) and all(o in values for o in outs if o),
            tensors=all_tensors,
        )
    position = {nm: i for i, nm in enumerate(order)}
    consumers: dict[str, set[str]] = {}
    for nm, (ins, _), imp in zip(names, io, implicit, strict=True):
        for t in (*ins, *imp):
            if t:
                consumers.setdefault(t, set()).add(nm)
    del io
    frozen_consumers = {
        t: tuple(sorted(c, key=position.__getitem__)) for t, c in consumers.items()
    }
    del consumers

    return Graph(
        name=name or (path.stem if path is not None else (model.graph.name or "model")),
        node_map=_FrozenDict(node_map),
        edge_tensors=_FrozenDict({pair: tuple(ts) for pair, ts in edges.items()}),
        order=order,
        tensors=all_tensors,
        weights=weights,
        inputs=graph_inputs,
        outputs=graph_outputs,
        producer=_FrozenDict(producer),
        consumers=_FrozenDict(frozen_consumers),
        batch=batch,
        opset=int(opset),
        path=path,
        model=model,
        values=_FrozenDict(values),
    )

"""Engine layer information JSON (``IEngineInspector`` / ``trtexec --exportLayerInfo``).

Reads TensorRT 8.x-10.x documents (``{"Layers": [...], "Bindings": [...]}``, layers as
objects with ``Format/Datatype`` tensor fields, or as plain names with the default
``kLAYER_NAMES_ONLY`` profiling verbosity) and 11.x documents (``I/O Tensors`` objects,
separate ``Format`` and ``DataType`` fields) into an actual :class:`~fusionlab.plan.Plan`,
and writes a plan back in the same format. No TensorRT is imported.

Each layer's ONNX nodes come from its ``Metadata`` (``[ONNX Layer: X]`` items, TensorRT
8.6+) when present, else from its name (``+`` vertical, ``||`` horizontal, ``PWN(...)``,
``{ForeignNode[a...b]}``); with a graph, from the ONNX tensors it reads and writes as well.

>>> doc = '{"Layers": ["Conv_0 + Relu_1", "Reformatting CopyNode for Output Tensor 0 to Conv_0"]}'
>>> plan = read_layer_info(doc)
>>> [layer.nodes for layer in plan.layers]
[('Conv_0', 'Relu_1'), ()]
>>> read_layer_info(layer_info_to_json(plan)) == plan
True
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from fusionlab.dtypes import MOST_REDUCED_FIRST, by_numpy, find, word_in_text
from fusionlab.errors import FusionlabError
from fusionlab.formats.common import (
    Source,
    fix_separators,
    load_json,
    normalize_layer_names,
    read_source,
)
from fusionlab.io import dumps_json
from fusionlab.ir.graph import Graph
from fusionlab.plan import BRANCH_SEP, FUSED_SEP, Elimination, How, Kind, Layer, Plan
from fusionlab.plan.kinds import kind_named, kind_of_engine_type
from fusionlab.plan.serialize import eliminations_from, eliminations_to_dict, plan_header, schema_version

log = logging.getLogger(__name__)

SOURCE = "trtexec json"
"""``Plan.source`` of a plan read from engine layer information."""

EXTRAS_KEY = "fusionlab"
"""Top-level key under which :func:`layer_info_to_json` keeps what TensorRT's format cannot
hold (rules, absorbed nodes, eliminated nodes, times); tools that read the file (TREx)
look only at ``Layers`` and ``Bindings`` and ignore it."""

_METADATA_ITEM = re.compile(r"\[ONNX Layer: (.*?)\](?=\s*(?:\[ONNX Layer: |$))", re.S)
_PWN = re.compile(r"PWN\((.*)\)", re.S)
_FOREIGN = re.compile(r"\{ForeignNode\[(.*)\]\}", re.S)
_REFORMATTER = re.compile(r" (?:input|output) reformatter \d+$")
_TRT_MADE_TOKEN = re.compile(
    r"\(Unnamed Layer\* ?\d+\).*|__myl_.*"
    r"|(?:reshape|squeeze|unsqueeze|transpose|shuffle)_(?:before|after)_.*"
)
@dataclass(frozen=True)
class TensorInfo:
    """One tensor of an engine layer as the inspector describes it."""

    name: str
    dims: tuple[int, ...] | None = None
    dtype: str | None = None
    """Precision word (``fp32``, ``fp16``, ``int8`` ...) read from the format/data type."""
    format: str | None = None
    """TensorRT's format text, e.g. ``Channel major FP16 format where channel % 8 == 0``."""
    location: str | None = None


@dataclass(frozen=True)
class EngineLayer:
    """One layer of the inspector's JSON after the normalizations below."""

    name: str
    layer_type: str | None
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    metadata: tuple[str, ...] = ()
    """ONNX node names from ``Metadata`` (empty when absent)."""
    raw: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class IOTensor:
    """An engine input or output (``Bindings`` name, or 11.x ``I/O Tensors`` object)."""

    name: str
    mode: str | None = None
    """``Input``/``Output`` (11.x) or None (8.x-10.x ``Bindings`` do not say)."""
    dims: tuple[int, ...] | None = None
    dtype: str | None = None


@dataclass(frozen=True)
class EngineInfo:
    """The whole document: layers, engine inputs/outputs, and fusionlab's own extras."""

    layers: tuple[EngineLayer, ...]
    io: tuple[IOTensor, ...] = ()
    extras: Mapping[str, Any] | None = None
    names_only: bool = False
    kernel_layers: bool = False
    """The layers are kernels as TensorRT-RTX lists them (:mod:`fusionlab.formats.rtx_log`):
    never grouped into Myelin regions, their ONNX nodes from ``Metadata`` only (a kernel's
    name is Myelin's, e.g. ``conv1_U0_myl0_3``, never a list of nodes)."""


# ---------------------------------------------------------------------------------------
# Normalizers: one small function per quirk, each naming the TensorRT version that needs it.


def _layers_as_objects(layers: list[Any], where: str) -> tuple[list[dict[str, Any]], bool]:
    """Plain-name layers become ``{"Name": ...}`` objects.

    With the default profiling verbosity (``kLAYER_NAMES_ONLY``, TensorRT 8.2+) the
    inspector writes each layer as a string (TensorRT docs, ``EngineInspector``;
    NVIDIA/TensorRT#4020); with ``kDETAILED`` as an object.
    """
    out: list[dict[str, Any]] = []
    names_only = bool(layers) and all(isinstance(x, str) for x in layers)
    for i, x in enumerate(layers):
        if isinstance(x, str):
            out.append({"Name": x})
        elif isinstance(x, dict) and isinstance(x.get("Name"), str):
            out.append(x)
        else:
            raise FusionlabError(f"{where}: layer {i} has no name")
    return out, names_only


SYNC_LAYER_TYPES = frozenset({"signal", "wait"})
"""``LayerType`` of cross-stream synchronization: an event recorded on one stream, waited
for on another. TensorRT 10 engines built with auxiliary streams list them (TREx drops them,
``__remove_signal_wait``), TensorRT-RTX lists them between its kernels. They are kept as
layers of kind :attr:`~fusionlab.plan.kinds.Kind.SYNC` that compute no ONNX node
(inserted), so a reader can tell them from the kernels the engine inserted."""


def metadata_nodes(metadata: Any) -> tuple[str, ...]:
    """ONNX node names in a layer's ``Metadata``.

    TensorRT 8.6 added ``Metadata``: ``[ONNX Layer: X]`` items separated by ``\\x1E``, and in
    10.x also ``\\x1F`` or nothing (TREx ``fix_metadata``/``fix_unicode``; NVIDIA/TensorRT#2779).

    >>> metadata_nodes("[ONNX Layer: Conv_0]\\x1e[ONNX Layer: Relu_1]\\x1f[ONNX Layer: Add_2]")
    ('Conv_0', 'Relu_1', 'Add_2')
    """
    if not isinstance(metadata, str):
        return ()
    out: list[str] = []
    for part in re.split(r"[\x1e\x1f]", metadata):
        for name in _METADATA_ITEM.findall(part.strip()):
            if name and name not in out:
                out.append(name)
    return tuple(out)


def _dims(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, list) and all(type(d) is int for d in value):
        return tuple(value)
    return None


def _tensor_info(raw: Any, where: str, layer: str) -> TensorInfo:
    """A layer's input or output tensor.

    TensorRT 8.x-10.x write one ``Format/Datatype`` text; 11.x splits it into ``Format`` and
    ``DataType`` (NVIDIA, "Migrating IEngineInspector Usage from TensorRT 10.x to 11.x").
    ``Location`` is optional (absent before 8.4).
    """
    if isinstance(raw, str):  # tolerate a bare tensor name
        return TensorInfo(raw)
    if not isinstance(raw, dict) or not isinstance(raw.get("Name"), str):
        raise FusionlabError(f"{where}: layer {layer!r} has a tensor without a name")
    fmt = raw.get("Format/Datatype", raw.get("Format/DataType", raw.get("Format")))
    dtype = word_in_text(raw.get("DataType", raw.get("Datatype"))) or word_in_text(fmt)
    location = raw.get("Location")
    return TensorInfo(
        name=raw["Name"],
        dims=_dims(raw.get("Dimensions")),
        dtype=dtype,
        format=fmt if isinstance(fmt, str) else None,
        location=location if isinstance(location, str) else None,
    )


def _io_tensors(doc: Mapping[str, Any], where: str) -> tuple[IOTensor, ...]:
    """Engine inputs and outputs.

    TensorRT 8.x-10.x: ``Bindings``, a list of names (absent in early 8.x, TREx
    ``read_graph_file``). TensorRT 11.x replaced it by ``I/O Tensors``, objects with
    ``Name``, ``IOMode``, ``DataType``, ``Dimensions``, ``Location``, ``IsShapeInferenceIO``
    and ``ProfileInfo`` (NVIDIA's 10.x-to-11.x IEngineInspector migration page).
    """
    out: list[IOTensor] = []
    objects = doc.get("I/O Tensors")
    if isinstance(objects, list):
        for raw in objects:
            if not isinstance(raw, dict) or not isinstance(raw.get("Name"), str):
                raise FusionlabError(f"{where}: an 'I/O Tensors' entry has no name")
            dims = _dims(raw.get("Dimensions"))
            profiles = raw.get("ProfileInfo")
            dynamic = dims is None or any(d < 0 for d in dims)
            if dynamic and isinstance(profiles, list) and profiles:
                opt = profiles[0].get("OptShape") if isinstance(profiles[0], dict) else None
                dims = _dims(opt) or dims
            mode = raw.get("IOMode")
            out.append(IOTensor(raw["Name"], mode if isinstance(mode, str) else None, dims,
                                word_in_text(raw.get("DataType"))))
        return tuple(out)
    bindings = doc.get("Bindings", [])
    if not isinstance(bindings, list):
        raise FusionlabError(f"{where}: 'Bindings' must be a list")
    for b in bindings:
        if isinstance(b, str):
            out.append(IOTensor(fix_separators(b)))
        elif isinstance(b, dict) and isinstance(b.get("Name"), str):
            out.append(IOTensor(b["Name"]))
    return tuple(out)


KERNEL_LAYERS_KEY = "kernel_layers"
"""Key of the extras (:data:`EXTRAS_KEY`) that marks a file whose layers are TensorRT-RTX
kernels (:attr:`EngineInfo.kernel_layers`)."""


def parse_engine_info(text_or_path: Source, *, group_myelin: bool | None = None) -> EngineInfo:
    """The inspector's JSON as :class:`EngineInfo` (every normalization applied).

    ``group_myelin``: the kernels of one Myelin region (TensorRT 9.2+ detailed layer
    information) become one layer, as TensorRT runs them (:func:`group_myelin_kernels`);
    False keeps each kernel a layer (TensorRT-RTX, whose kernels are its layers). None
    (default): grouped unless the file's extras say its layers are TensorRT-RTX kernels
    (:data:`KERNEL_LAYERS_KEY`, written by :mod:`fusionlab.formats.rtx_log`).
    """
    text, where = read_source(text_or_path)
    doc = load_json(text, where)
    if not isinstance(doc, dict) or "Layers" not in doc:
        raise FusionlabError(
            f"{where}: not engine layer information (expected a JSON object with 'Layers', "
            "as written by trtexec --exportLayerInfo)"
        )
    if not isinstance(doc["Layers"], list):
        raise FusionlabError(f"{where}: 'Layers' must be a list")
    raw_layers, names_only = _layers_as_objects(doc["Layers"], where)
    names = normalize_layer_names(x["Name"] for x in raw_layers)
    layers: list[EngineLayer] = []
    for raw, name in zip(raw_layers, names, strict=True):
        if name is None:
            continue
        ins, outs = raw.get("Inputs", []), raw.get("Outputs", [])
        if not isinstance(ins, list) or not isinstance(outs, list):
            raise FusionlabError(f"{where}: layer {name!r}: 'Inputs' and 'Outputs' must be lists")
        layer_type = raw.get("LayerType")
        layers.append(
            EngineLayer(
                name=name,
                layer_type=layer_type if isinstance(layer_type, str) else None,
                inputs=tuple(_tensor_info(t, where, name) for t in ins),
                outputs=tuple(_tensor_info(t, where, name) for t in outs),
                metadata=metadata_nodes(raw.get("Metadata")),
                raw=raw,
            )
        )
    extras = doc.get(EXTRAS_KEY)
    extras = extras if isinstance(extras, dict) and schema_version(extras.get("schema")) else None
    kernel_layers = bool(extras and extras.get(KERNEL_LAYERS_KEY) is True)
    if group_myelin is None:
        group_myelin = not kernel_layers
    io = _io_tensors(doc, where)
    return EngineInfo(
        layers=group_myelin_kernels(layers, io) if group_myelin else tuple(layers),
        io=io,
        extras=extras,
        names_only=names_only,
        kernel_layers=kernel_layers,
    )


MYELIN = "Myelin"
"""``LayerType`` of a Myelin region read back as one layer (TensorRT's own word for it in
names-only and older detailed output, NVIDIA/TensorRT#3665 and the TensorRT 9.2 log of the
evidence report)."""
_MYELIN_KERNEL = re.compile(r"_myl(\d+)_\d+$")


def group_myelin_kernels(layers: Sequence[EngineLayer], io: Sequence[IOTensor] = ()) -> tuple[EngineLayer, ...]:
    """The kernels of each Myelin region as one layer of ``LayerType`` :data:`MYELIN`.

    With ``--profilingVerbosity=detailed`` TensorRT 9.2+ lists a region kernel by kernel
    (LayerType ``gemm``, ``kgen``, ``fusion``, ``shape_call``), each named ``<x>_myl<N>_<k>``,
    the ONNX nodes only in ``Metadata`` (NVIDIA/TensorRT#3665, #4397; the TensorRT 10.16
    cookbook record); with names only, the same region is one ``{ForeignNode[a...b]}``
    layer. Kernels sharing ``N`` are one region: its inputs are the tensors its kernels read
    and none of them writes, its outputs those another layer reads or the engine returns,
    its nodes the union of the kernels' ``Metadata``, its name ``{ForeignNode[first...last]}``
    of those nodes (TensorRT's own name for it is not in the file), its ``raw`` the kernels'
    names under ``"Kernels"``.

    >>> ks = [EngineLayer("node_linear_myl4_0", "gemm", (TensorInfo("p"),), (TensorInfo("t_myl4"),),
    ...                   ("node_linear", "node_relu")),
    ...       EngineLayer("__myl_MulSum_myl4_1", "kgen", (TensorInfo("t_myl4"),), (TensorInfo("y"),),
    ...                   ("node_linear_1",))]
    >>> (r,) = group_myelin_kernels(ks, [IOTensor("y")])
    >>> r.name, r.layer_type, [t.name for t in r.inputs], [t.name for t in r.outputs]
    ('{ForeignNode[node_linear...node_linear_1]}', 'Myelin', ['p'], ['y'])
    >>> r.metadata
    ('node_linear', 'node_relu', 'node_linear_1')
    """
    groups: dict[str, list[int]] = {}
    for i, x in enumerate(layers):
        m = _MYELIN_KERNEL.search(x.name)
        if m is not None:
            groups.setdefault(m.group(1), []).append(i)
    if not groups:
        return tuple(layers)
    returned = {t.name for t in io}
    out: list[EngineLayer] = []
    for i, x in enumerate(layers):
        m = _MYELIN_KERNEL.search(x.name)
        if m is None:
            out.append(x)
            continue
        members = groups[m.group(1)]
        if members[0] != i:
            continue
        kernels = [layers[j] for j in members]
        mine = set(members)
        produced = {t.name for k in kernels for t in k.outputs}
        read_elsewhere = {t.name for j, other in enumerate(layers) if j not in mine for t in other.inputs}
        inputs = list({t.name: t for k in kernels for t in k.inputs if t.name not in produced}.values())
        outputs = list({t.name: t for k in kernels for t in k.outputs
                        if t.name in read_elsewhere or t.name in returned}.values())
        nodes = tuple(dict.fromkeys(n for k in kernels for n in k.metadata))
        inside = (nodes[0] if len(nodes) == 1 else f"{nodes[0]}...{nodes[-1]}") if nodes else x.name
        name = f"{{ForeignNode[{inside}]}}"
        raw = {"Name": name, "LayerType": MYELIN, "Kernels": [k.name for k in kernels]}
        out.append(EngineLayer(name, MYELIN, tuple(inputs), tuple(outputs), nodes, raw))
    return tuple(out)


# ---------------------------------------------------------------------------------------
# Layer names -> ONNX nodes


def is_reformat(name: str, layer_type: str | None = None) -> bool:
    """A format conversion TensorRT inserted: the same tensor in another layout.

    ``Reformatting CopyNode for ...`` (TensorRT 8+), ``X input/output reformatter N``
    (TensorRT 7), or ``LayerType`` ``Reformat``.

    >>> is_reformat("conv1 input reformatter 0"), is_reformat("Conv_0")
    (True, False)
    """
    return (
        name.startswith("Reformatting CopyNode for ")
        or bool(_REFORMATTER.search(name))
        or layer_type == "Reformat"
    )


def is_inserted(name: str, layer_type: str | None = None) -> bool:
    """A layer TensorRT added that computes no ONNX node.

    Reformats (:func:`is_reformat`), ``X copy`` (a copy made where a producer could not
    write into a concatenation), and layers of type ``NoOp`` such as ``reshape_after_X``
    around fully connected layers (the recorded TensorRT 8 engines in records/, e.g.
    trex-resnet18-a100),
    and stream synchronization (``signal``/``wait``, :data:`SYNC_LAYER_TYPES`).
    """
    return (
        is_reformat(name, layer_type)
        or name.endswith(" copy")
        or layer_type == "NoOp"
        or layer_type in SYNC_LAYER_TYPES
    )


def _split_top(s: str, seps: Sequence[str]) -> list[str] | None:
    """Split at separators outside brackets; None when brackets do not balance."""
    parts: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0:
            sep = next((x for x in seps if s.startswith(x, i)), None)
            if sep is not None:
                parts.append(s[start:i])
                i += len(sep)
                start = i
                continue
        i += 1
    if depth != 0:
        return None
    parts.append(s[start:])
    return parts


def split_layer_name(name: str) -> list[str | tuple[str, str]]:
    """The name tokens of a layer: node names, and ``(first, last)`` for a ForeignNode range.

    :data:`~fusionlab.plan.FUSED_SEP` joins vertically fused nodes,
    :data:`~fusionlab.plan.BRANCH_SEP` horizontally merged ones, ``PWN(a, b)``
    (possibly nested) wraps fused point-wise nodes (TensorRT 8+), and ``{ForeignNode[a...b]}``
    names a Myelin-compiled range from node ``a`` to node ``b`` (TensorRT 8.5+).

    >>> split_layer_name("PWN(PWN(Sigmoid_3, Mul_4), Add_5) + Conv_1 || Conv_2")
    ['Sigmoid_3', 'Mul_4', 'Add_5', 'Conv_1', 'Conv_2']
    >>> split_layer_name("{ForeignNode[Conv_0...Relu_9]}")
    [('Conv_0', 'Relu_9')]
    """
    out: list[str | tuple[str, str]] = []

    def walk(s: str, seps: Sequence[str]) -> None:
        parts = _split_top(s, seps)
        if parts is None:
            parts = re.split("|".join(re.escape(x) for x in _NAME_SEPS), s)
        for part in (p.strip() for p in parts):
            if not part:
                continue
            if m := _PWN.fullmatch(part):
                walk(m.group(1), (*_NAME_SEPS, ", "))
            elif m := _FOREIGN.fullmatch(part):
                first, dots, last = m.group(1).partition("...")
                out.append((first.strip(), (last if dots else first).strip()))
            else:
                out.append(part)

    walk(name, _NAME_SEPS)
    return out


def split_branches(name: str) -> list[str]:
    """A layer name split into its horizontally merged parts (one part when not merged).

    >>> split_branches("Conv_1 + Relu_2 || Conv_3 + Relu_4"), split_branches("PWN(a, b)")
    (['Conv_1 + Relu_2', 'Conv_3 + Relu_4'], ['PWN(a, b)'])
    """
    parts = _split_top(name, (BRANCH_SEP,))
    return parts if parts is not None and len(parts) > 1 else [name]


_NAME_SEPS = (FUSED_SEP, BRANCH_SEP)


def _is_trt_made(token: str) -> bool:
    """Names TensorRT makes itself: ``(Unnamed Layer* 12) [Shuffle]``, ``__myl_...``
    (Myelin, TensorRT 8.6+), ``reshape_after_X`` around fully connected layers."""
    return bool(_TRT_MADE_TOKEN.fullmatch(token))


class _Names:
    """Resolves name tokens to ONNX nodes, against a graph when there is one."""

    def __init__(self, graph: Graph | None) -> None:
        self.graph = graph
        self.position = {n: i for i, n in enumerate(graph.order)} if graph is not None else {}

    def is_node(self, token: str) -> bool:
        return token in self.position if self.graph is not None else not _is_trt_made(token)

    def from_tokens(self, tokens: Iterable[str | tuple[str, str]]) -> list[str]:
        out: list[str] = []
        for t in tokens:
            if isinstance(t, tuple):
                first, last = t
                if self.graph is not None and first in self.position and last in self.position:
                    lo, hi = sorted((self.position[first], self.position[last]))
                    out.extend(self.graph.order[lo : hi + 1])
                else:
                    out.extend(x for x in (first, last) if self.is_node(x))
            elif self.is_node(t):
                out.append(t)
        return list(dict.fromkeys(out))

    def ordered(self, nodes: Iterable[str]) -> tuple[str, ...]:
        unique = list(dict.fromkeys(nodes))
        if self.graph is None:
            return tuple(unique)
        return tuple(sorted(unique, key=self.position.__getitem__))


def _tensor_aliases(layers: Sequence[EngineLayer], graph: Graph) -> dict[str, str]:
    """Engine tensor -> the ONNX tensor it holds in another layout.

    A reformat (:func:`is_reformat`) with one input and one output copies a tensor; where
    one end of a chain of reformats is an ONNX tensor (``input.8``), the other end
    (``Reformatted Output Tensor 0 to MaxPool_2``) is that tensor too.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for layer in layers:
        one_to_one = len(layer.inputs) == 1 and len(layer.outputs) == 1
        if one_to_one and is_reformat(layer.name, layer.layer_type):
            a, b = find(layer.inputs[0].name), find(layer.outputs[0].name)
            if a != b:
                parent[a] = b
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    aliases: dict[str, str] = {}
    for root, members in groups.items():
        names = [*members, root]
        onnx_names = [m for m in names if m in graph.tensors or m in graph.producer]
        if len(onnx_names) == 1:
            aliases.update({m: onnx_names[0] for m in names if m != onnx_names[0]})
    return aliases


def _known_tensors(graph: Graph) -> frozenset[str]:
    """Tensors of the graph: node outputs, graph inputs and initializers."""
    return frozenset(graph.producer) | {t.name for t in graph.inputs} | frozenset(graph.weights)


def _tensor_region(
    inputs: Sequence[str], outputs: Sequence[str], graph: Graph, known: frozenset[str]
) -> set[str] | None:
    """The ONNX nodes between a layer's input and output tensors, or None if unknown.

    A layer that reads ONNX tensors ``inputs`` and writes ONNX tensors ``outputs`` computes
    every node needed for the outputs that does not lie before an input. None when a tensor
    is not an ONNX tensor or the walk back from the outputs escapes past the inputs (then
    the layer's tensors do not delimit what it computes).
    """
    if not outputs or any(t not in known for t in (*inputs, *outputs)):
        return None
    stop = set(inputs)
    region: set[str] = set()
    todo = [graph.producer[t] for t in outputs if t in graph.producer and t not in stop]
    if len(todo) != len([t for t in outputs if t not in stop]):
        return None  # an output that no node writes (a graph input) is not computed here
    while todo:
        name = todo.pop()
        if name in region:
            continue
        region.add(name)
        node = graph.node(name)
        for t in node.inputs:
            if not t or t in stop or t in graph.weights:
                continue
            src = graph.producer.get(t)
            if src is None:
                return None  # reached a graph input the layer does not read
            if graph.node(src).op == "Constant":
                continue  # constants fold into the layers that read them
            todo.append(src)
    return region


# ---------------------------------------------------------------------------------------
# EngineInfo -> Plan


def _plan_precision(layers: Sequence[EngineLayer], inserted: Sequence[bool]) -> str:
    """The most reduced activation precision among the computing layers' tensors."""
    computing = [x for x, ins in zip(layers, inserted, strict=True) if not ins] or list(layers)
    words = {t.dtype for x in computing for t in (*x.inputs, *x.outputs) if t.dtype}
    for word in MOST_REDUCED_FIRST:
        if word in words:
            return word
    return "fp32" if "fp32" in words else "unknown"


def _plan_batch(info: EngineInfo) -> int | None:
    """Leading dimension of the engine's first input (from its layer tensors or I/O objects)."""
    produced = {t.name for x in info.layers for t in x.outputs}
    inputs = [io for io in info.io if io.mode in (None, "Input") and io.name not in produced]
    dims_of = {t.name: t.dims for x in info.layers for t in x.inputs if t.dims}
    for io in inputs:
        dims = io.dims if io.dims else dims_of.get(io.name)
        if dims and dims[0] > 0:
            return dims[0]
    return None


_UNNAMED = "named by no engine layer"
_LAYOUT_OPS = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout"})
"""Ops that move no data: inside a layer's tensors but named by no layer, they count as
eliminated (the TREx ResNet-18 records in records/: a Flatten/Squeeze before a fully
connected layer is named by no layer), not as nodes the layer computes."""
_FOLDED = "constant folded into the layers that read it"


def _graph_batch(graph: Graph | None) -> int | None:
    """The batch the graph was loaded with, else its first input's fixed leading dimension."""
    if graph is None:
        return None
    if graph.batch is not None:
        return graph.batch
    for t in graph.inputs:
        if t.shape and isinstance(t.shape[0], int) and t.shape[0] > 0:
            return t.shape[0]
    return None


def _model_name(graph: Graph | None) -> str | None:
    if graph is None:
        return None
    return str(graph.path) if graph.path is not None else graph.name


def _kind(layer: EngineLayer) -> Kind:
    """fusionlab's kind for an engine layer: from its ``LayerType``, else (names-only files)
    from the names TensorRT gives the layers it inserts."""
    if layer.layer_type:
        return kind_of_engine_type(layer.layer_type)
    if is_reformat(layer.name):
        return Kind.REFORMAT
    if layer.name.endswith(" copy"):
        return Kind.COPY
    if _FOREIGN.fullmatch(layer.name):
        return Kind.MYELIN  # names-only files: '{ForeignNode[a...b]}' is a Myelin region
    return Kind.UNKNOWN


def _stream_of(layer: EngineLayer) -> int | None:
    """``StreamId`` of a detailed layer (TensorRT 10+, TensorRT-RTX), else None."""
    value = layer.raw.get("StreamId") if layer.raw else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _region_name(layer: EngineLayer, nodes: Sequence[str]) -> str:
    """A region grouped from kernels (:func:`group_myelin_kernels`) is named after its first
    and last ONNX node in graph order; every other layer keeps its engine name."""
    if not (layer.raw and "Kernels" in layer.raw and nodes):
        return layer.name
    inside = nodes[0] if len(nodes) == 1 else f"{nodes[0]}...{nodes[-1]}"
    return f"{{ForeignNode[{inside}]}}"


def _branches(name: str, nodes: Sequence[str], names: _Names) -> tuple[tuple[str, ...], ...]:
    """The merged branches an engine layer's name spells out (``A + B || C + D``)."""
    parts = split_branches(name)
    if len(parts) < 2:
        return ()
    mine = set(nodes)
    groups = [tuple(n for n in names.from_tokens(split_layer_name(part)) if n in mine) for part in parts]
    return tuple(g for g in groups if g) if sum(1 for g in groups if g) > 1 else ()


def engine_info_to_plan(
    info: EngineInfo, graph: Graph | None = None, *, precision: str | None = None
) -> Plan:
    """Build the actual plan (see :func:`read_layer_info`)."""
    names = _Names(graph)
    named: list[list[str]] = []
    inserted: list[bool] = []
    for x in info.layers:
        tokens = split_layer_name(x.name)
        if x.metadata:
            nodes = [n for n in x.metadata if graph is None or n in names.position]
        else:
            nodes = [] if info.kernel_layers else names.from_tokens(tokens)
        ins = is_inserted(x.name, x.layer_type)
        if ins and graph is not None and not is_reformat(x.name) and not x.name.endswith(" copy"):
            # A NoOp layer named after ONNX nodes runs those nodes as no-ops.
            onnx = [isinstance(t, str) and t in names.position for t in tokens]
            ins = not (onnx and all(onnx))
        inserted.append(ins)
        named.append([] if ins else nodes)

    absorbed_by: dict[str, str] = {}
    if graph is not None and not info.extras:  # fusionlab's own files list every node
        claimed = {n for nodes in named for n in nodes}
        aliases = _tensor_aliases(info.layers, graph)
        known = _known_tensors(graph)
        for i, x in enumerate(info.layers):
            if inserted[i]:
                continue
            ins_t = [aliases.get(t.name, t.name) for t in x.inputs]
            outs_t = [aliases.get(t.name, t.name) for t in x.outputs]
            region = _tensor_region(ins_t, outs_t, graph, known)
            if region is None:
                continue
            myelin = _kind(x) is Kind.MYELIN  # a region computes its layout ops too
            extra = sorted(n for n in region - claimed
                           if myelin or graph.node(n).op not in _LAYOUT_OPS)
            absorbed_by.update((n, x.name) for n in region - claimed if n not in extra)
            if extra:
                log.debug("layer %r also computes %s (from its tensors)", x.name, extra)
                named[i].extend(extra)
                claimed.update(extra)

    layers = tuple(
        Layer(
            name=_region_name(x, names.ordered(nodes)),
            kind=_kind(x),
            nodes=names.ordered(nodes),
            inputs=tuple(t.name for t in x.inputs),
            outputs=tuple(t.name for t in x.outputs),
            branches=_branches(x.name, nodes, names),
            engine_type=x.layer_type,
            stream=_stream_of(x),
        )
        for x, nodes in zip(info.layers, named, strict=True)
    )
    eliminated: dict[str, Elimination] = {}
    if graph is not None:
        covered = {n for layer in layers for n in layer.nodes}
        for n in graph.order:
            if n in covered:
                continue
            if graph.node(n).op == "Constant":
                eliminated[n] = Elimination(How.CONSTANT, _FOLDED)
            elif n in absorbed_by:
                eliminated[n] = Elimination(
                    How.ABSORBED, f"{_UNNAMED} (a layout change inside layer {absorbed_by[n]!r})"
                )
            else:
                eliminated[n] = Elimination(How.UNNAMED, _UNNAMED)
    plan = Plan(
        layers=layers,
        eliminated=eliminated,
        source=SOURCE,
        target=None,
        precision=precision or _plan_precision(info.layers, inserted),
        batch=_plan_batch(info) or _graph_batch(graph),
        model=_model_name(graph),
    )
    return _apply_extras(plan, info.extras) if info.extras else plan


def _apply_extras(plan: Plan, extras: Mapping[str, Any]) -> Plan:
    """Restore what :func:`layer_info_to_json` kept beside TensorRT's own fields."""
    rows = extras.get("layers")
    if not isinstance(rows, list) or len(rows) != len(plan.layers):
        log.warning("ignoring the fusionlab extras of a layer file: they do not match its layers")
        return plan
    layers = []
    for layer, row in zip(plan.layers, rows, strict=True):
        if not isinstance(row, dict):
            return plan
        time_ms = row.get("time_ms")
        kind = row.get("kind")
        stream = row.get("stream", layer.stream)
        branches = row.get("branches")
        nodes = row.get("nodes")
        layers.append(
            replace(
                layer,
                nodes=() if row.get("inserted") else tuple(str(n) for n in nodes)
                if isinstance(nodes, list) else layer.nodes,
                rule=str(row.get("rule", "")),
                absorbed=tuple(str(a) for a in row.get("absorbed", [])),
                time_ms=float(time_ms) if isinstance(time_ms, (int, float)) else None,
                kind=kind_named(kind) or layer.kind,
                engine_type=row["engine_type"] if isinstance(row.get("engine_type"), str)
                else (layer.engine_type if kind is None else None),
                branches=tuple(tuple(str(n) for n in b) for b in branches if isinstance(b, list))
                if isinstance(branches, list) else layer.branches,
                stream=stream if isinstance(stream, int) and not isinstance(stream, bool) else layer.stream,
            )
        )
    version = schema_version(extras.get("schema")) or 2
    eliminated = extras.get("eliminated")
    batch, target, model = extras.get("batch"), extras.get("target"), extras.get("model")
    return replace(
        plan,
        layers=tuple(layers),
        eliminated=(
            eliminations_from(eliminated, version) if isinstance(eliminated, dict) else plan.eliminated
        ),
        source=str(extras.get("source", plan.source)),
        target=target if isinstance(target, str) else None,
        precision=str(extras.get("precision", plan.precision)),
        batch=batch if isinstance(batch, int) and not isinstance(batch, bool) else None,
        model=model if isinstance(model, str) else None,
    )


def read_layer_info(
    text_or_path: Source,
    graph: Graph | None = None,
    *,
    precision: str | None = None,
    group_myelin: bool | None = None,
) -> Plan:
    """An actual plan from engine layer information JSON (TensorRT 8.x-11.x).

    - ``source`` is ``"trtexec json"``, ``target`` None; ``precision`` the most reduced
      activation type of the computing layers (``unknown`` for names-only files unless
      given); ``batch`` the leading dimension of the engine input (else the graph's).
    - Each layer's nodes: from ``Metadata`` when present, else from its name; tokens that
      are not ONNX nodes (of ``graph``, when given) are dropped. With a graph, a layer whose
      input and output tensors are ONNX tensors (seen through reformats) also gets the
      nodes between them that no other layer names (names can omit fused nodes, as in the
      TREx records in records/), except data-free layout ops (Flatten, Reshape, ...).
    - Inserted layers (reformats, copies, ``NoOp`` shuffles) keep their place with no
      nodes; with a graph, a ``NoOp`` layer named after ONNX nodes computes them.
    - With a graph, every node no layer computes is eliminated ("named by no engine layer").
    - A file written by :func:`layer_info_to_json` with its extras reads back as written.
    - The kernels of a Myelin region (``<x>_myl<N>_<k>``, detailed output of TensorRT 9.2+)
      are one layer of kind ``Myelin`` (``group_myelin=False`` keeps them apart, as
      TensorRT-RTX's kernels need; files written from its build log say so themselves,
      :mod:`fusionlab.formats.rtx_log`); ``signal``/``wait`` layers are kept as inserted
      layers of kind ``Sync``; a Myelin region computes the layout ops between its
      tensors too (``node_view`` in the cookbook record's region).

    Raises :class:`FusionlabError` naming the file when it is not such a document.
    """
    return engine_info_to_plan(parse_engine_info(text_or_path, group_myelin=group_myelin), graph,
                               precision=precision)


# ---------------------------------------------------------------------------------------
# Plan -> layer information JSON


def _word_of(tensor: str, graph: Graph | None, precision: str) -> str:
    t = graph.tensors.get(tensor) if graph is not None else None
    known = by_numpy(t.dtype or "") if t is not None else None
    if known is None or known.word == "fp32":  # activations run at the plan's precision
        return precision
    return known.word


def _format_of(word: str) -> str:
    known = find(word)
    return known.format if known is not None else "Unknown format"


def _inspector_word(word: str) -> str:
    known = find(word)
    return known.inspector if known is not None else "None"


def _shape_of(tensor: str, graph: Graph | None) -> list[int]:
    t = graph.tensors.get(tensor) if graph is not None else None
    if t is None or t.shape is None or not all(isinstance(d, int) for d in t.shape):
        return []
    return [int(d) for d in t.shape if isinstance(d, int)]


def _tensor_json(name: str, graph: Graph | None, precision: str, style: str) -> dict[str, Any]:
    word = _word_of(name, graph, precision)
    out: dict[str, Any] = {"Name": name, "Location": "Device", "Dimensions": _shape_of(name, graph)}
    if style == "11":
        out["Format"] = _format_of(word)
        out["DataType"] = _inspector_word(word)
    else:
        out["Format/Datatype"] = _format_of(word)
    return out


def _bindings(plan: Plan, graph: Graph | None) -> tuple[list[str], list[str]]:
    if graph is not None:
        return [t.name for t in graph.inputs], [t.name for t in graph.outputs]
    produced = [t for layer in plan.layers for t in layer.outputs]
    read = [t for layer in plan.layers for t in layer.inputs]
    inputs = [t for t in dict.fromkeys(read) if t not in set(produced)]
    outputs = [t for t in dict.fromkeys(produced) if t not in set(read)]
    return inputs, outputs


def layer_info_to_json(
    plan: Plan,
    graph: Graph | None = None,
    *,
    names_only: bool = False,
    style: Literal["10", "11"] = "10",
    extras: bool = True,
) -> str:
    """A plan as engine layer information JSON, as ``IEngineInspector`` writes it.

    TensorRT 10 style by default: ``{"Layers": [...], "Bindings": [...]}`` with each layer's
    ``Name``, ``LayerType`` (the layer's kind), ``Inputs``/``Outputs`` (``Name``,
    ``Location``, ``Dimensions``, ``Format/Datatype``; shapes and types from ``graph`` when
    given) and ``Metadata`` (``[ONNX Layer: X]`` items joined by ``\\x1E``). ``style="11"``
    writes 11.x's ``I/O Tensors`` and separate ``Format``/``DataType`` fields;
    ``names_only`` writes the layer names alone (``kLAYER_NAMES_ONLY`` verbosity).
    With ``extras`` (default), a ``"fusionlab"`` object keeps what the format cannot
    (rules, absorbed and eliminated nodes, times, source), so :func:`read_layer_info` gives
    back the same plan.
    """
    doc: dict[str, Any] = {}
    if names_only:
        doc["Layers"] = [layer.name for layer in plan.layers]
    else:
        doc["Layers"] = [
            {
                "Name": layer.name,
                "LayerType": layer.engine_type or layer.kind.value,
                "Inputs": [_tensor_json(t, graph, plan.precision, style) for t in layer.inputs],
                "Outputs": [_tensor_json(t, graph, plan.precision, style) for t in layer.outputs],
                "Metadata": "\x1e".join(f"[ONNX Layer: {n}]" for n in layer.nodes),
            }
            for layer in plan.layers
        ]
    inputs, outputs = _bindings(plan, graph)
    if style == "11":
        doc["I/O Tensors"] = [
            {
                "Name": t,
                "IOMode": mode,
                "DataType": _inspector_word(_word_of(t, graph, plan.precision)),
                "Dimensions": _shape_of(t, graph),
                "Location": "Device",
                "IsShapeInferenceIO": False,
            }
            for ts, mode in ((inputs, "Input"), (outputs, "Output"))
            for t in ts
        ]
    else:
        doc["Bindings"] = [*inputs, *outputs]
    if extras:
        doc[EXTRAS_KEY] = plan_extras(plan)
    return dumps_json(doc, indent=1)


def plan_extras(plan: Plan, *, nodes: bool = False) -> dict[str, Any]:
    """The ``"fusionlab"`` object of :func:`layer_info_to_json`: what TensorRT's format cannot
    hold (source, rules, absorbed and eliminated nodes, times, kinds). ``nodes`` also keeps
    each layer's nodes, for files whose ``Metadata`` cannot be read back exactly (names
    holding its separators, TensorRT-RTX)."""
    rows = []
    for layer in plan.layers:
        row: dict[str, Any] = {
            "inserted": layer.inserted, "rule": layer.rule, "absorbed": list(layer.absorbed),
            "time_ms": layer.time_ms, "kind": layer.kind.value, "engine_type": layer.engine_type,
            "branches": [list(b) for b in layer.branches],
        }
        if nodes:
            row["nodes"] = list(layer.nodes)
        if layer.stream is not None:
            row["stream"] = layer.stream
        rows.append(row)
    return {**plan_header(plan), "eliminated": eliminations_to_dict(plan), "layers": rows}

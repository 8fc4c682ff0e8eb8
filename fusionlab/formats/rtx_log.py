"""TensorRT-RTX's build log: the engine's real layers, read without running the engine.

TensorRT-RTX builds on the CPU, but its runtime (hence the engine inspector) needs a
supported GPU. Its builder tells the same story: with an ``ILogger`` that keeps VERBOSE
messages and ``ProfilingVerbosity.DETAILED``, one build message lists every engine layer::

    Layers:
    Name: <n>, LayerType: <t>, Inputs: [ { Name: <n>, Dimensions: [..], Strides: [..],
    StrideOrder: [..], Datatype: <d>, Format: <f> }, ...], Constants: [...], Outputs: [...],
    TacticName: <t>, StreamId: <i>, [EventId: <i>, ]Metadata: [ONNX Layer: a]<US>[ONNX Layer: b]
    Name: ...

    I/O Tensors:
     Name: <n>, IOMode: Input, DataType: Float, Dimensions: [..], Location: Device,
     IsShapeInferenceIO: false, ProfileInfo: [ { MinShape: [..], ..., Format: ... }]

    Engine Metadata:
     Multi-Device: Disabled

(one engine layer per line; ``<US>`` is the ASCII unit separator ``\\x1f``), plus
``Original: N layers`` / ``After <pass>: N layers`` lines, one line per pre-engine layer
with its memory (``Layer: <n> Host Persistent: N bytes Device Persistent: N bytes
Scratch Memory: N bytes``), memory totals, and the ONNX parser's ``Parsing node: <n> [<op>]``
(TensorRT-RTX 1.7.1.116; the prototype and its 1,200 builds: ../scratch/rtx/REPORT.md §1).

Names are the user's: ONNX node and tensor names may hold commas, brackets, braces,
quotes, newlines, even the separators of this format. The parser therefore never splits
on a separator alone: every occurrence of a separator is a *candidate* boundary, and it
keeps a segmentation in which every piece matches the full grammar of its record
(shortest pieces first; for Metadata, pieces that are known ONNX node names first, from
the ``Parsing node`` messages). Only a name that holds a *complete, valid* record of the
format (``x, LayerType: kgen, Inputs: [], ... Metadata: \\nName: y``) can still be read
wrongly: that ambiguity is in the format itself. A node name holding ``\\x1f`` is mangled by
TensorRT-RTX itself.

Metadata quirks kept as they are: entries in no meaningful order, duplicates, a trailing
free tag (``__gemm_from_conv1x1``), one ONNX node carried by several kernels (a conv whose
bias moves into the next pointwise kernel, LRN's three kernels, one ``Slic`` kernel per
Split output). ``signal``/``wait`` layers order the engine's streams and compute nothing.

:func:`parse_messages` reads the messages a logger received, :func:`parse_dump` /
:func:`read_dump` the ``===== Severity.LEVEL`` text format (:func:`dump_text` writes it);
:func:`layer_info` turns a :class:`BuildLog` into the engine inspector's JSON in TensorRT
11.x's layout, :func:`to_plan` into the actual plan that JSON reads back to.

>>> log = parse_messages(["Original: 2 layers", "Layers:\\nName: conv_myl0_0, LayerType: "
...     "correlation, Inputs: [], Constants: [], Outputs: [], TacticName: __myelin_CASK_STUB, "
...     "StreamId: 0, Metadata: [ONNX Layer: conv]\\x1f[ONNX Layer: relu]\\x1f[ONNX Layer: conv]"])
>>> (layer,) = log.layers
>>> layer.layer_type, layer.onnx_nodes, log.original_layers
('correlation', ('conv', 'relu'), 2)
>>> plan = to_plan(log, builder="TensorRT-RTX 1.7.1.116")
>>> plan.source, plan.layers[0].kind.value, plan.layers[0].nodes
('TensorRT-RTX 1.7.1.116 build log', 'Convolution', ('conv', 'relu'))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from fusionlab.dtypes import word_in_text
from fusionlab.errors import FusionlabError
from fusionlab.formats.common import Source, normalize_layer_names
from fusionlab.formats.layer_info import (
    EXTRAS_KEY,
    KERNEL_LAYERS_KEY,
    SYNC_LAYER_TYPES,
    EngineInfo,
    TensorInfo,
    engine_info_to_plan,
    plan_extras,
)
from fusionlab.formats.layer_info import EngineLayer as InspectorLayer
from fusionlab.formats.layer_info import IOTensor as InspectorIO
from fusionlab.io import dumps_json, read_text
from fusionlab.ir.graph import Graph
from fusionlab.plan import Plan

__all__ = [
    "BuildLog",
    "EngineLayer",
    "IOTensor",
    "LayerMemory",
    "Message",
    "ParsedNode",
    "PassCount",
    "TensorDesc",
    "dump_text",
    "layer_info",
    "layer_info_json",
    "parse_dump",
    "parse_layers",
    "parse_messages",
    "read_dump",
    "source_of",
    "split_dump",
    "to_plan",
]

ONNX_LAYER_KEY = "ONNX Layer"
SOURCE_SUFFIX = "build log"
"""``Plan.source`` of a plan read from a build log: ``"<builder> build log"``."""


class _GrammarError(ValueError):
    """A message that should follow the ``Layers:`` grammar does not."""


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TensorDesc:
    """One tensor of an engine layer (input, output or constant)."""

    name: str
    dims: tuple[int, ...]
    strides: tuple[int, ...]
    stride_order: tuple[int, ...]
    dtype: str
    """As printed: ``Float``, ``Half``, ``Int8``, ``Int32``, ``BFloat16``..."""
    format: str
    """As printed, e.g. ``(NHWC) Channel major format``, ``(Linear) Row major linear format``."""


@dataclass(frozen=True)
class LayerMemory:
    """Memory of one layer as the builder prints it (for TensorRT-RTX the pre-engine layers,
    e.g. the one ``{ForeignNode[...]}`` Myelin compiles; rarely a kernel's own name)."""

    name: str
    host_persistent: int
    device_persistent: int
    scratch: int


@dataclass(frozen=True)
class EngineLayer:
    """One layer (kernel) of the built engine, in engine order."""

    index: int
    name: str
    layer_type: str
    """``kgen``, ``correlation``, ``runtime_fusion``, ``runtime_function``, ``maxpool``,
    ``avgpool``, ``gemm``, ``deconv``, ``signal``, ``wait``..."""
    inputs: tuple[TensorDesc, ...]
    constants: tuple[TensorDesc, ...]
    outputs: tuple[TensorDesc, ...]
    tactic: str
    stream_id: int
    event_id: int | None
    metadata: tuple[tuple[str, str], ...]
    """Every ``[Key: value]`` entry of the Metadata field, in order, duplicates kept."""
    metadata_suffix: str = ""
    """Free text after the last Metadata entry (seen: ``__gemm_from_conv1x1``)."""
    memory: LayerMemory | None = None
    """The memory line of the same name, when the builder printed one."""

    @property
    def onnx_nodes(self) -> tuple[str, ...]:
        """ONNX node names from Metadata (``ONNX Layer`` entries), in order, deduplicated
        within this layer (another layer may carry the same node)."""
        seen: dict[str, None] = {}
        for key, value in self.metadata:
            if key == ONNX_LAYER_KEY:
                seen.setdefault(value, None)
        return tuple(seen)

    @property
    def is_sync(self) -> bool:
        """A stream-ordering layer (``signal``/``wait``): no kernel, no data."""
        return self.layer_type in SYNC_LAYER_TYPES

    @property
    def is_inserted(self) -> bool:
        """A kernel with no ONNX node in its Metadata: added by the builder (layout moves)."""
        return not self.is_sync and not self.onnx_nodes

    @property
    def metadata_text(self) -> str:
        """The Metadata field as TensorRT-RTX printed it."""
        return "\x1f".join(f"[{k}: {v}]" for k, v in self.metadata) + self.metadata_suffix


@dataclass(frozen=True)
class PassCount:
    """``Original: N layers`` or ``After <name>: N layers``, in order."""

    name: str
    layers: int


@dataclass(frozen=True)
class IOTensor:
    """One engine input or output from the ``I/O Tensors:`` block."""

    name: str
    io_mode: str
    dtype: str
    dims: tuple[int, ...]
    location: str
    is_shape_inference_io: bool
    min_shape: tuple[int, ...] | None
    opt_shape: tuple[int, ...] | None
    max_shape: tuple[int, ...] | None
    format: str | None
    profile_info: str
    """The ProfileInfo field as printed."""


@dataclass(frozen=True)
class ParsedNode:
    """One ``Parsing node: <name> [<op>]`` message of the ONNX parser."""

    name: str
    op: str


@dataclass
class BuildLog:
    """Everything :func:`parse_messages` understood of one build."""

    layers: list[EngineLayer] = field(default_factory=list)
    original_layers: int | None = None
    """Network layers before optimization (``Original: N layers``)."""
    passes: list[PassCount] = field(default_factory=list)
    """``Original`` and every ``After <pass>`` line, in order."""
    io_tensors: list[IOTensor] = field(default_factory=list)
    memory: list[LayerMemory] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    """``Total Host Persistent Memory`` etc., in bytes, by the printed name."""
    parsed_nodes: list[ParsedNode] = field(default_factory=list)
    layers_found: bool = False
    """Whether a ``Layers:`` message was seen at all (needs DETAILED verbosity)."""
    warnings: list[str] = field(default_factory=list)

    @property
    def sync_layers(self) -> list[EngineLayer]:
        """``signal``/``wait`` layers."""
        return [layer for layer in self.layers if layer.is_sync]

    @property
    def inserted_layers(self) -> list[EngineLayer]:
        """Kernels with no ONNX node (layout moves the builder added)."""
        return [layer for layer in self.layers if layer.is_inserted]

    @property
    def compute_layers(self) -> list[EngineLayer]:
        """Kernels that carry at least one ONNX node."""
        return [layer for layer in self.layers if not layer.is_sync and layer.onnx_nodes]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (dataclasses as dicts, tuples as lists)."""
        d = asdict(self)
        for layer, out in zip(self.layers, d["layers"], strict=True):
            out["onnx_nodes"] = list(layer.onnx_nodes)
        return d


Message = tuple[str, str]
"""``(severity, text)``; severity as the bindings print it, e.g. ``Severity.VERBOSE``."""


# ----------------------------------------------------------------------------- dump format

_HEADER = re.compile(r"^===== Severity\.([A-Z_]+)$", re.M)


def split_dump(text: str) -> list[Message]:
    """Split the ``===== Severity.LEVEL`` text format into ``(severity, message)`` pairs.

    Each header line starts a message; the message is everything up to the newline before
    the next header (or the end). A message that itself held such a header line would be
    split there; TensorRT never prints one.

    >>> split_dump("===== Severity.INFO\\nhello\\n===== Severity.VERBOSE\\na\\nb\\n")
    [('Severity.INFO', 'hello'), ('Severity.VERBOSE', 'a\\nb')]
    """
    heads = list(_HEADER.finditer(text))
    out: list[Message] = []
    for i, h in enumerate(heads):
        start = h.end() + 1
        end = heads[i + 1].start() - 1 if i + 1 < len(heads) else len(text)
        body = text[start:end] if start <= end else ""
        if i + 1 == len(heads) and body.endswith("\n"):
            body = body[:-1]
        out.append((f"Severity.{h.group(1)}", body))
    return out


def dump_text(messages: Iterable[Message]) -> str:
    """Messages in the text format :func:`split_dump` reads.

    >>> split_dump(dump_text([("Severity.INFO", "a\\nb")]))
    [('Severity.INFO', 'a\\nb')]
    """
    return "".join(f"===== Severity.{s.split('.')[-1]}\n{m}\n" for s, m in messages)


# ----------------------------------------------------------------------------- grammar

_INTS = r"\[(?:-?\d+(?:,-?\d+)*)?\]"
_TENSOR = (
    r"\{ Name: .*?, Dimensions: " + _INTS + r", Strides: " + _INTS + r", StrideOrder: " + _INTS
    + r", Datatype: \w+, Format: [^{}]*? \}"
)
_TLIST = r"\[(?: " + _TENSOR + r"(?:, " + _TENSOR + r")*)?\]"
_ENTRY = r"\[[^:\x1f]*?: .*?\]"
_SUFFIX = r"[^\s\x1f\[\]]*"
_META = r"(?:" + _ENTRY + r"(?:\x1f" + _ENTRY + r")*)?" + _SUFFIX
_LAYER_RE = re.compile(
    r"Name: (?P<name>.*?), LayerType: (?P<type>\w+), "
    r"Inputs: (?P<inputs>" + _TLIST + r"), Constants: (?P<constants>" + _TLIST + r"), "
    r"Outputs: (?P<outputs>" + _TLIST + r"), TacticName: (?P<tactic>[^\s,\[\]{}]*), "
    r"StreamId: (?P<stream>-?\d+)(?:, EventId: (?P<event>-?\d+))?, "
    r"Metadata: (?P<meta>" + _META + r")",
    re.S,
)
_SUFFIX_RE = re.compile(_SUFFIX)
_TENSOR_RE = re.compile(
    r"\{ Name: (?P<name>.*?), Dimensions: (?P<dims>" + _INTS + r"), Strides: (?P<strides>"
    + _INTS + r"), StrideOrder: (?P<order>" + _INTS + r"), Datatype: (?P<dtype>\w+), "
    r"Format: (?P<format>[^{}]*?) \}",
    re.S,
)
_IO_RE = re.compile(
    r" Name: (?P<name>.*?), IOMode: (?P<mode>\w+), DataType: (?P<dtype>\w+), "
    r"Dimensions: (?P<dims>" + _INTS + r"), Location: (?P<loc>.*?), "
    r"IsShapeInferenceIO: (?P<shape_io>true|false), ProfileInfo: (?P<profile>\[.*\])",
    re.S,
)
_PROFILE_RE = re.compile(
    r"\[ \{ (?:MinShape: (?P<min>" + _INTS + r"), OptShape: (?P<opt>" + _INTS
    + r"), MaxShape: (?P<max>" + _INTS + r"), )?Format: (?P<format>.*) \}\]",
    re.S,
)
_MEMORY_RE = re.compile(
    r"Layer: (?P<name>.*) Host Persistent: (?P<host>\d+) bytes "
    r"Device Persistent: (?P<device>\d+) bytes Scratch Memory: (?P<scratch>\d+) bytes",
    re.S,
)
_PASS_RE = re.compile(r"(?:(?P<orig>Original)|After (?P<name>.+)): (?P<n>\d+) layers", re.S)
_TOTAL_RE = re.compile(r"(?P<name>Total [A-Za-z ]+?|Max Scratch Memory): (?P<n>\d+) bytes")
_PARSING_RE = re.compile(r"Parsing node: (?P<name>.*) \[(?P<op>[^\[\]]*)\]", re.S)

_T = TypeVar("_T")


def _ints(text: str) -> tuple[int, ...]:
    inner = text[1:-1]
    return tuple(int(x) for x in inner.split(",")) if inner else ()


def _cut_points(text: str, separator: str) -> list[int]:
    """Start of every occurrence of ``separator`` (overlapping ones included)."""
    out: list[int] = []
    i = text.find(separator)
    while i >= 0:
        out.append(i)
        i = text.find(separator, i + 1)
    return out


def _segment(
    text: str,
    separator: str,
    piece: Callable[[str], _T | None],
    weight: Callable[[_T], int] | None = None,
) -> list[_T] | None:
    """Split ``text`` at some occurrences of ``separator`` so that every piece parses.

    ``piece`` returns the parsed value or None. Every occurrence of ``separator`` is a
    candidate cut. Without ``weight``, the segmentation found first by a depth-first search
    that tries the shortest piece first is returned (memoizing dead ends, so at worst
    O(candidates^2) piece checks; ordinary text, where every candidate is a real cut, takes
    one check per piece). With ``weight``, the segmentation with the largest total weight
    of its pieces wins (ties: shortest earlier pieces). None when no segmentation parses.
    """
    n = len(text)
    sep = len(separator)
    cuts = _cut_points(text, separator)
    # fast path: every occurrence is a real cut
    naive = text.split(separator) if cuts else [text]
    if weight is None and len(naive) == len(cuts) + 1:
        values = [piece(p) for p in naive]
        if all(v is not None for v in values):
            return values  # type: ignore[return-value]
    ends = [*cuts, n]
    if weight is None:
        return _segment_dfs(text, sep, ends, piece)
    # bottom-up over candidate piece starts, last first
    starts = [0, *[c + sep for c in cuts]]
    best: dict[int, tuple[int, list[_T]]] = {}
    for s in sorted(set(starts), reverse=True):
        chosen: tuple[int, list[_T]] | None = None
        for e in ends:
            if e < s:
                continue
            v = piece(text[s:e])
            if v is None:
                continue
            if e == n:
                rest: tuple[int, list[_T]] | None = (0, [])
            else:
                rest = best.get(e + sep)
            if rest is None:
                continue
            score = rest[0] + weight(v)
            if chosen is None or score > chosen[0]:
                chosen = (score, [v, *rest[1]])
        if chosen is not None:
            best[s] = chosen
    found = best.get(0)
    return None if found is None else found[1]


def _segment_dfs(
    text: str, sep: int, ends: list[int], piece: Callable[[str], _T | None]
) -> list[_T] | None:
    """Depth-first, shortest piece first, with an explicit stack (no recursion limit)."""
    n = len(text)
    dead: set[int] = set()  # piece starts from which no full parse exists
    # frame: (start, index into ends of the next end to try, value of the chosen piece)
    stack: list[tuple[int, int, _T | None]] = []
    start, k = 0, 0
    while True:
        while k < len(ends) and ends[k] < start:
            k += 1
        advanced = False
        while k < len(ends):
            e = ends[k]
            k += 1
            if e != n and e + sep in dead:
                continue
            v = piece(text[start:e])
            if v is None:
                continue
            stack.append((start, k, v))
            if e == n:
                return [value for _, _, value in stack]  # type: ignore[misc]
            start, k = e + sep, 0
            advanced = True
            break
        if advanced:
            continue
        dead.add(start)
        if not stack:
            return None
        start, k, _ = stack.pop()


def _tensor(text: str) -> TensorDesc | None:
    m = _TENSOR_RE.fullmatch(text)
    if m is None:
        return None
    return TensorDesc(
        name=m["name"],
        dims=_ints(m["dims"]),
        strides=_ints(m["strides"]),
        stride_order=_ints(m["order"]),
        dtype=m["dtype"],
        format=m["format"],
    )


def _tensor_list(text: str) -> tuple[TensorDesc, ...] | None:
    if text == "[]":
        return ()
    if not (text.startswith("[ ") and text.endswith("]")):
        return None
    got = _segment(text[2:-1], ", ", _tensor)
    return None if got is None else tuple(got)


def _entry(piece: str) -> tuple[str, str] | None:
    """``[key: value]``; the key holds no colon, the value anything."""
    if len(piece) < 4 or piece[0] != "[" or piece[-1] != "]":
        return None
    colon = piece.find(": ")
    if colon < 0 or ":" in piece[1:colon]:
        return None
    return piece[1:colon], piece[colon + 2 : -1]


def _metadata(
    text: str, known: frozenset[str]
) -> tuple[tuple[tuple[str, str], ...], str] | None:
    """Metadata entries joined by ``\x1f``, then an optional free-text suffix.

    TensorRT-RTX sometimes appends a tag after the last entry (seen:
    ``[ONNX Layer: Conv_54]\x1f[ONNX Layer: Relu_55]__gemm_from_conv1x1``). The suffix
    holds no newline and no ``\x1f``. Where the split is ambiguous (``[K: a]b]``), known
    node names decide, then the reading without suffix wins.
    """
    if text == "" or (not text.startswith("[") and _SUFFIX_RE.fullmatch(text)):
        return (), text
    # candidate ends of the entry list: the whole text, or just after any "]" that is
    # followed by suffix text (no newline, no unit separator)
    candidates: list[tuple[str, str]] = [(text, "")]
    for i in range(len(text) - 1, -1, -1):
        if text[i] == "]":
            suffix = text[i + 1 :]
            if not _SUFFIX_RE.fullmatch(suffix):
                break
            if suffix:
                candidates.append((text[: i + 1], suffix))
    if not text.startswith("["):
        candidates.append(("", text))

    def known_length(e: tuple[str, str]) -> int:
        return len(e[1]) + 1 if e[0] == ONNX_LAYER_KEY and e[1] in known else 0

    best: tuple[int, tuple[tuple[str, str], ...], str] | None = None
    for body, suffix in candidates:
        if known:
            naive = [_entry(p) for p in body.split("\x1f")]
            if all(e is not None and known_length(e) for e in naive):
                got: list[tuple[str, str]] | None = naive  # type: ignore[assignment]
            else:
                got = _segment(body, "\x1f", _entry, weight=known_length)
        else:
            got = _segment(body, "\x1f", _entry)
        if got is None:
            continue
        score = sum(known_length(e) for e in got)
        if best is None or score > best[0]:
            best = (score, tuple(got), suffix)
        if not known:
            break  # the first parseable candidate: the longest entry list
    return None if best is None else (best[1], best[2])


def _layer(text: str, index: int, known: frozenset[str]) -> EngineLayer | None:
    m = _LAYER_RE.fullmatch(text)
    if m is None:
        return None
    inputs = _tensor_list(m["inputs"])
    constants = _tensor_list(m["constants"])
    outputs = _tensor_list(m["outputs"])
    parsed_meta = _metadata(m["meta"], known)
    if inputs is None or constants is None or outputs is None or parsed_meta is None:
        return None
    meta, suffix = parsed_meta
    return EngineLayer(
        index=index,
        name=m["name"],
        layer_type=m["type"],
        inputs=inputs,
        constants=constants,
        outputs=outputs,
        tactic=m["tactic"],
        stream_id=int(m["stream"]),
        event_id=None if m["event"] is None else int(m["event"]),
        metadata=meta,
        metadata_suffix=suffix,
    )


def _io_tensor(text: str) -> IOTensor | None:
    m = _IO_RE.fullmatch(text)
    if m is None:
        return None
    p = _PROFILE_RE.fullmatch(m["profile"])
    return IOTensor(
        name=m["name"],
        io_mode=m["mode"],
        dtype=m["dtype"],
        dims=_ints(m["dims"]),
        location=m["loc"],
        is_shape_inference_io=m["shape_io"] == "true",
        min_shape=_ints(p["min"]) if p and p["min"] else None,
        opt_shape=_ints(p["opt"]) if p and p["opt"] else None,
        max_shape=_ints(p["max"]) if p and p["max"] else None,
        format=p["format"] if p else None,
        profile_info=m["profile"],
    )


def _layer_list(text: str, known: frozenset[str]) -> list[EngineLayer] | None:
    """The layer lines between ``Layers:\\n`` and the blank line that ends them."""
    if text == "":
        return []
    head = "Name: "
    if not text.startswith(head):
        return None
    got = _segment(text[len(head) :], "\nName: ", lambda t: _layer(head + t, 0, known))
    if got is None:
        return None
    return [replace(layer, index=i) for i, layer in enumerate(got)]


def parse_layers(message: str, known_nodes: Iterable[str] = ()) -> tuple[
    list[EngineLayer], list[IOTensor]
]:
    """Parse the ``Layers:`` message: engine layers and I/O tensors.

    ``known_nodes`` (ONNX node names) only break ties in Metadata that the format leaves
    ambiguous. Raises :class:`_GrammarError` when the message does not follow the grammar.
    """
    if not message.startswith("Layers:\n") and message != "Layers:":
        raise _GrammarError("not a Layers: message")
    known = frozenset(known_nodes)
    body = message[len("Layers:\n") :]
    # the Engine Metadata block holds no user names: its last occurrence is the real one
    em = body.rfind("\n\nEngine Metadata:\n")
    if em >= 0:
        body = body[:em]
    io_marker = "\n\nI/O Tensors:\n"
    starts = [m.start() for m in re.finditer(re.escape(io_marker), body)]
    candidates: list[tuple[str, str | None]] = [
        (body[:s], body[s + len(io_marker) :]) for s in starts
    ]
    candidates.append((body.rstrip("\n") if not starts else body, None))
    for layers_text, io_text in candidates:
        layers = _layer_list(layers_text, known)
        if layers is None:
            continue
        io: list[IOTensor] = []
        if io_text is not None:
            io_got = _segment(io_text.rstrip("\n"), "\n", _io_tensor) if io_text.strip() else []
            if io_got is None:
                continue
            io = io_got
        return layers, io
    raise _GrammarError("Layers: message does not follow the expected grammar")


# ----------------------------------------------------------------------------- messages


def parse_messages(messages: Iterable[str | Message]) -> BuildLog:
    """Parse a build's messages (strings or ``(severity, text)`` pairs) into a BuildLog."""
    log = BuildLog()
    layers_msgs: list[str] = []
    for item in messages:
        text = item if isinstance(item, str) else item[1]
        if text.startswith("Layers:"):
            layers_msgs.append(text)
            continue
        if text.startswith("Parsing node: "):
            m = _PARSING_RE.fullmatch(text)
            if m:
                log.parsed_nodes.append(ParsedNode(m["name"], m["op"]))
            continue
        m = _PASS_RE.fullmatch(text)
        if m:
            name = "Original" if m["orig"] else m["name"]
            log.passes.append(PassCount(name, int(m["n"])))
            if m["orig"] and log.original_layers is None:
                log.original_layers = int(m["n"])
            continue
        if text.startswith("Layer: "):
            m = _MEMORY_RE.fullmatch(text)
            if m:
                log.memory.append(
                    LayerMemory(m["name"], int(m["host"]), int(m["device"]), int(m["scratch"]))
                )
            continue
        m = _TOTAL_RE.fullmatch(text)
        if m:
            log.totals[m["name"]] = int(m["n"])
    known = frozenset(n.name for n in log.parsed_nodes)
    memory = {mem.name: mem for mem in log.memory}
    for text in layers_msgs:
        log.layers_found = True
        try:
            layers, io = parse_layers(text, known)
        except _GrammarError as e:
            log.warnings.append(f"{e}: {text[:200]!r}")
            continue
        base = len(log.layers)
        for layer in layers:
            log.layers.append(replace(layer, index=base + layer.index, memory=memory.get(layer.name)))
        log.io_tensors.extend(io)
    return log


def parse_dump(text: str) -> BuildLog:
    """Parse the ``===== Severity.LEVEL`` text format (see :func:`split_dump`)."""
    return parse_messages(split_dump(text))


def read_dump(path: Source) -> BuildLog:
    """Parse a dump file (bounded, UTF-8; no newline translation: names may hold ``\\r``)."""
    return parse_dump(read_text(path))


# ----------------------------------------------------------------------------- conversion


def source_of(builder: str) -> str:
    """``Plan.source`` of a plan read from ``builder``'s build log.

    >>> source_of("TensorRT-RTX 1.7.1.116")
    'TensorRT-RTX 1.7.1.116 build log'
    """
    return f"{builder} {SOURCE_SUFFIX}"


def _tensor_json(t: TensorDesc) -> dict[str, Any]:
    """A layer tensor as TensorRT 11's inspector writes it (``Format`` and ``DataType`` apart),
    with TensorRT-RTX's strides beside them."""
    return {
        "Name": t.name,
        "Location": "Device",
        "Dimensions": list(t.dims),
        "Format": t.format,
        "DataType": t.dtype,
        "Strides": list(t.strides),
        "StrideOrder": list(t.stride_order),
    }


def _memory_json(memory: LayerMemory) -> dict[str, Any]:
    return {
        "Name": memory.name,
        "HostPersistent": memory.host_persistent,
        "DevicePersistent": memory.device_persistent,
        "Scratch": memory.scratch,
    }


def _io_json(t: IOTensor) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": t.name,
        "IOMode": t.io_mode,
        "DataType": t.dtype,
        "Dimensions": list(t.dims),
        "Location": t.location,
        "IsShapeInferenceIO": t.is_shape_inference_io,
    }
    profile: dict[str, Any] = {}
    if t.min_shape is not None:
        profile.update(MinShape=list(t.min_shape), OptShape=list(t.opt_shape or ()),
                       MaxShape=list(t.max_shape or ()))
    if t.format is not None:
        profile["Format"] = t.format
    out["ProfileInfo"] = [profile] if profile else []
    return out


def _layer_json(layer: EngineLayer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": layer.name,
        "LayerType": layer.layer_type,
        "Inputs": [_tensor_json(t) for t in layer.inputs],
        "Outputs": [_tensor_json(t) for t in layer.outputs],
        "Constants": [_tensor_json(t) for t in layer.constants],
        "TacticName": layer.tactic,
        "StreamId": layer.stream_id,
        "Metadata": layer.metadata_text,
    }
    if layer.event_id is not None:
        out["EventId"] = layer.event_id
    if layer.memory is not None:
        out["Memory"] = _memory_json(layer.memory)
    return out


def _check(log: BuildLog, what: str) -> None:
    if not log.layers_found:
        raise FusionlabError(
            f"{what}: the build log has no 'Layers:' message (it needs VERBOSE messages and "
            "ProfilingVerbosity.DETAILED)"
        )
    if log.warnings:
        raise FusionlabError(f"{what}: cannot read the build log's layers ({log.warnings[0][:120]})")


def _engine_info(log: BuildLog) -> EngineInfo:
    """The log's layers as :class:`~fusionlab.formats.layer_info.EngineInfo`, exactly: nodes
    from the parsed Metadata, names normalized as the inspector reader keys them."""
    layers: list[InspectorLayer] = []
    for layer, name in zip(log.layers, normalize_layer_names(x.name for x in log.layers), strict=True):
        if name is None:
            continue
        layers.append(
            InspectorLayer(
                name=name,
                layer_type=layer.layer_type,
                inputs=tuple(_tensor_info(t) for t in layer.inputs),
                outputs=tuple(_tensor_info(t) for t in layer.outputs),
                metadata=layer.onnx_nodes,
                raw=_layer_json(layer),
            )
        )
    io = tuple(InspectorIO(t.name, t.io_mode, t.opt_shape or t.dims, word_in_text(t.dtype))
               for t in log.io_tensors)
    return EngineInfo(layers=tuple(layers), io=io, kernel_layers=True)


def _tensor_info(t: TensorDesc) -> TensorInfo:
    return TensorInfo(t.name, t.dims, word_in_text(t.dtype), t.format, "Device")


def to_plan(log: BuildLog, graph: Graph | None = None, *, builder: str, what: str = "build") -> Plan:
    """The actual plan of a build: the plan :func:`layer_info`'s JSON reads back to.

    One layer per engine kernel, in engine order (never grouped into Myelin regions):
    ``engine_type`` is TensorRT-RTX's ``LayerType``, ``kind`` follows from it
    (:func:`~fusionlab.plan.kinds.kind_of_engine_type`), ``nodes`` are the ONNX nodes of
    its Metadata (of ``graph`` only, when given; a node carried by several kernels is in
    each of them). ``signal``/``wait`` layers stay, of kind ``Sync``, with no nodes, as do
    the layout kernels the builder inserted. ``source`` is ``"<builder> build log"``.
    Raises :class:`FusionlabError` (naming ``what``) when the log holds no layer list.
    """
    _check(log, what)
    plan = engine_info_to_plan(_engine_info(log), graph)
    return replace(plan, source=source_of(builder))


def layer_info(
    log: BuildLog, graph: Graph | None = None, *, builder: str, what: str = "build", plan: Plan | None = None
) -> dict[str, Any]:
    """The build's layers as engine layer information JSON, in TensorRT 11.x's layout.

    ``Layers`` (every kernel, sync layers included: ``Name``, ``LayerType``, ``Inputs`` and
    ``Outputs`` with ``Format`` and ``DataType`` apart, ``TacticName``, ``StreamId``,
    ``EventId``, ``Metadata`` as printed, TensorRT-RTX's strides and constants beside them),
    ``I/O Tensors``, and ``fusionlab``: the plan's extras (source, builder, nodes of each
    layer, eliminated nodes), the passes, the memory lines and totals.
    :func:`~fusionlab.formats.layer_info.read_layer_info` reads it back to :func:`to_plan`'s
    plan (``plan``: that plan, when the caller has it already).
    """
    if plan is None:
        plan = to_plan(log, graph, builder=builder, what=what)
    extras = plan_extras(plan, nodes=True)
    extras[KERNEL_LAYERS_KEY] = True
    extras["builder"] = builder
    extras["original_layers"] = log.original_layers
    extras["passes"] = [{"name": p.name, "layers": p.layers} for p in log.passes]
    extras["memory"] = [_memory_json(m) for m in log.memory]
    extras["memory_totals"] = dict(log.totals)
    return {
        "Layers": [_layer_json(layer) for layer in log.layers],
        "I/O Tensors": [_io_json(t) for t in log.io_tensors],
        EXTRAS_KEY: extras,
    }


def layer_info_json(
    log: BuildLog, graph: Graph | None = None, *, builder: str, what: str = "build", plan: Plan | None = None
) -> str:
    """:func:`layer_info` as strict JSON text (one space indent, as the other writers)."""
    return dumps_json(layer_info(log, graph, builder=builder, what=what, plan=plan), indent=1)


UNKNOWN_BUILDER = "TensorRT-RTX"
"""The builder named for a saved build log: the log does not print its version."""


def is_build_log(text: str) -> bool:
    """Whether ``text`` is a build log in the dump format (:func:`dump_text`).

    >>> is_build_log("===== Severity.INFO\\nhello\\n"), is_build_log('{"Layers": []}')
    (True, False)
    """
    return text.startswith("===== Severity.")


def read_engine_layers(source: Source, graph: Graph | None = None) -> Plan:
    """The actual plan from engine layer information JSON (any TensorRT, through
    :func:`~fusionlab.formats.layer_info.read_layer_info`) or from a saved TensorRT-RTX
    build log (the dump format; its builder named :data:`UNKNOWN_BUILDER`)."""
    from fusionlab.formats.common import read_source
    from fusionlab.formats.layer_info import read_layer_info

    text, where = read_source(source)
    if is_build_log(text):
        return to_plan(parse_dump(text), graph, builder=UNKNOWN_BUILDER, what=where)
    return read_layer_info(source, graph)

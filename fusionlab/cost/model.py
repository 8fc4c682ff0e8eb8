"""Per-layer time from FLOPs and bytes: a roofline over the device table, with efficiency factors.

For one layer on one device (:mod:`fusionlab.cost.devices`)::

    time = max(compute_ms / eff_compute, memory_ms / eff_memory) + overhead
    compute_ms = sum over the layer's nodes of flops / peak     (peak of that node's math)
    memory_ms  = bytes / bandwidth

``bytes`` is what the layer moves to and from DRAM: its *external* inputs and outputs
(tensors that fused nodes pass to each other stay on chip) plus its nodes' weights, at the
precision's element size (fp32 4 bytes, fp16/bf16 2, int8 1), not the ONNX dtype (integer
tensors such as indices keep theirs). That is where fusion saves time: a Conv + Add + ReLU
layer writes one tensor where three layers would write and read three.

Which peak a node gets:

- Conv, ConvTranspose, Gemm and MatMul run on tensor cores at the precision's rate; an fp32
  engine uses TF32 where the GPU has it and TF32 is allowed (``tf32``, default True, as
  TensorRT builds by default on Ampere and later). Tensor-core kernels work on channel
  counts padded to a multiple of 4 (TF32), 8 (FP16/BF16) or 16 (INT8) [1]: a layer with C
  input channels costs ``ceil(C/a)*a / C`` times its FLOPs (likewise for output channels).
  With fewer channels per group than that multiple (the RGB first layer, depthwise
  convolutions) the node runs on CUDA cores instead.
- Everything else runs on CUDA cores: the FP32 rate (fp32, int8) or the non-tensor FP16
  rate (fp16, bf16).

Copies and reformats are pure memory; layers TensorRT marks ``NoOp`` take no time.

**Explicit quantization (Q/DQ models).** The precision does not hold for every layer: a
layer is INT8 where its Q/DQ nodes say (:mod:`fusionlab.fusion.qdq`). A weighted node whose
data input and weights are dequantized runs at the INT8 tensor-core rate, with INT8
weights (1 byte: a QuantizeLinear of the layer quantizes them at build time); INT8 tensors
(QuantizeLinear outputs, and the output of a DequantizeLinear no layer computes, which its
readers read as INT8, :func:`int8_activations`) move 1 byte per element, the other tensors
the float precision's (a Q/DQ reformat that dequantizes writes float): an ``int8`` build
of a Q/DQ model runs its float layers at FP16 (TensorRT's ``FP32+FP16+INT8`` build,
records/trex-resnet18-a100-qat), an ``fp32``/``fp16`` one at that precision. INT8
convolutions with fewer input channels per group than the INT8 tensor-core multiple (the RGB
first layer) still run on tensor cores, their channels padded to 4: TensorRT gives them a
four-wide vectorized INT8 input (``CHW4``, the record's first convolution) where FP16/TF32
fall back to CUDA cores. Q/DQ reformat layers are pure memory, class ``copy``.

Efficiency factors are per layer class (:data:`CLASSES`). The defaults
(:data:`DEFAULT_EFFICIENCY`) come from general, public knowledge about what kernels
achieve, and were *not* fitted to any recorded engine:

- conv: about half of the dense tensor-core peak. cuDNN/TensorRT convolutions reach
  50-70 % on large layers and less on small ones; NVIDIA's MLPerf Inference ResNet-50
  results on A100 amount to roughly half of the dense INT8 peak for the whole network.
- memory: streaming kernels (copies, point-wise) reach 80-90 % of DRAM bandwidth
  (STREAM/BabelStream-style measurements on HBM GPUs); convolutions and pooling, whose
  access pattern is less regular, 70 %.
- overhead: 3 microseconds per layer, the order of a kernel launch plus the ramp-up and
  tail of a short kernel.

``fusionlab calibrate`` fits them to a measured profile (:func:`fit`): least squares on
the logarithm of per-layer times, no scipy.

[1] NVIDIA Deep Learning Performance, Matrix Multiplication Background User's Guide,
"Tensor Core Requirements",
https://docs.nvidia.com/deeplearning/performance/dl-performance-matrix-multiplication/index.html#requirements-tc

>>> roofline_ms(compute_ms=0.10, memory_ms=0.02, eff_compute=0.5, eff_memory=0.8,
...             overhead_ms=0.003)
0.203
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from fusionlab.cost.devices import Device, get
from fusionlab.dtypes import check_precision, element_bytes, find, itemsize, word_in_text
from fusionlab.errors import FusionlabError
from fusionlab.fusion import qdq
from fusionlab.io import dumps_json, parse_json, read_text
from fusionlab.ir import ops
from fusionlab.ir.graph import Graph, Node
from fusionlab.plan import Kind, Layer, Plan
from fusionlab.plan.kinds import kind_of_engine_type

if TYPE_CHECKING:
    from fusionlab.formats.layer_info import EngineInfo, EngineLayer
    from fusionlab.plan.profile import Profile

log = logging.getLogger(__name__)

SCHEMA = "fusionlab.efficiency/1"
"""Schema name of an efficiency file (:func:`efficiency_to_json`)."""

CLASSES = ("conv", "pooling", "pointwise", "copy", "other")
"""Layer classes that carry their own efficiency factors (:func:`layer_class`)."""

COST_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8", "fp8")
"""Engine precisions the cost model prices (``tf32``: fp32 storage, TF32 tensor-core math)."""

TENSOR_CORE_ALIGN: Mapping[str, int] = {"tf32": 4, "fp16_tensor": 8, "bf16_tensor": 8,
                                         "int8_tensor": 16}
"""Channel multiple each tensor-core math needs (NVIDIA, "Tensor Core Requirements")."""

TENSOR_OPS = ops.CONV | ops.GEMM
POINTWISE_OPS = ops.POINTWISE | {"BatchNormalization"}
COPY_OPS = ops.DATA_MOVEMENT | {"Concat"} | qdq.QDQ_OPS
"""Ops that only move or convert data (a layer of them alone is class ``copy``: a Q/DQ
reformat converts float and INT8 at memory speed)."""
INT8_SMALL_CHANNELS = 4
"""Channel multiple of an INT8 convolution with fewer input channels than the INT8
tensor-core multiple: TensorRT reads it in CHW4 (four-wide vectorized INT8,
records/trex-resnet18-a100-qat's first convolution) and still uses tensor cores."""


@dataclass(frozen=True)
class ClassEfficiency:
    """Achieved fractions of peak math and of DRAM bandwidth for one layer class."""

    compute: float
    memory: float


@dataclass(frozen=True)
class Efficiency:
    """Efficiency factors per layer class plus the fixed per-layer overhead."""

    classes: Mapping[str, ClassEfficiency]
    overhead_ms: float = 0.003
    device: str | None = None
    """The device they were fitted on (None for the defaults)."""
    precision: str | None = None
    note: str = ""

    def of(self, cls: str) -> ClassEfficiency:
        """The factors of class ``cls`` (the defaults' for a class this one lacks)."""
        found = self.classes.get(cls)
        if found is not None:
            return found
        return DEFAULT_EFFICIENCY.classes.get(cls, DEFAULT_EFFICIENCY.classes["other"])


DEFAULT_EFFICIENCY = Efficiency(
    classes={
        "conv": ClassEfficiency(compute=0.5, memory=0.7),
        "pooling": ClassEfficiency(compute=0.5, memory=0.7),
        "pointwise": ClassEfficiency(compute=0.5, memory=0.8),
        "copy": ClassEfficiency(compute=1.0, memory=0.8),
        "other": ClassEfficiency(compute=0.3, memory=0.6),
    },
    overhead_ms=0.003,
    note="defaults from general knowledge (see fusionlab.cost.model); not fitted to any record",
)


# ---------------------------------------------------------------------------------------
# Small pure functions


def compute_ms(flops: float, tflops: float) -> float:
    """Milliseconds to do ``flops`` at ``tflops`` (10^12 per second), at full efficiency.

    >>> compute_ms(2e9, 100.0)
    0.02
    """
    return flops / (tflops * 1e9)


def transfer_ms(nbytes: float, gbs: float) -> float:
    """Milliseconds to move ``nbytes`` at ``gbs`` GB/s (10^9 bytes per second).

    >>> transfer_ms(2e6, 2000.0)
    0.001
    """
    return nbytes / (gbs * 1e6)


def roofline_ms(
    compute_ms: float, memory_ms: float, eff_compute: float, eff_memory: float,
    overhead_ms: float,
) -> float:
    """Roofline time of one layer: the slower of math and memory, plus a fixed overhead.

    >>> roofline_ms(0.0, 0.08, 0.5, 0.8, 0.0)  # a copy: memory only
    0.1
    """
    return round(max(compute_ms / eff_compute, memory_ms / eff_memory) + overhead_ms, 12)


def padded(channels: int, multiple: int) -> int:
    """``channels`` rounded up to a multiple of ``multiple``.

    >>> padded(3, 4), padded(64, 8), padded(1000, 16)
    (4, 64, 1008)
    """
    return -(-channels // multiple) * multiple


def tensor_core_flops(flops: float, reduce: int, out: int, multiple: int) -> float | None:
    """FLOPs a tensor-core kernel spends on a convolution or GEMM once channels are padded.

    ``reduce`` is the reduction channel count (input channels per group, GEMM K) and ``out``
    the output channel count (per group, GEMM N). None when ``reduce < multiple``: such a
    layer (an RGB first layer, a depthwise convolution) runs on CUDA cores.

    >>> tensor_core_flops(1000.0, 12, 64, 8)  # 12 channels padded to 16
    1333.3333333333333
    >>> tensor_core_flops(1000.0, 3, 64, 4) is None
    True
    """
    if reduce < multiple:
        return None
    return flops * padded(reduce, multiple) / reduce * padded(out, multiple) / out


def math_field(precision: str, tensor: bool, device: Device, tf32: bool = True) -> str:
    """The device figure (a :data:`fusionlab.cost.devices.FIELDS` name) a node's math runs at.

    >>> from fusionlab.cost.devices import get
    >>> math_field("fp32", True, get("a100")), math_field("fp32", True, get("t4"))
    ('tf32', 'fp32')
    >>> math_field("fp16", False, get("a100")), math_field("int8", True, get("a100"))
    ('fp16', 'int8_tensor')
    """
    check_precision(precision, COST_PRECISIONS)
    if not tensor:
        return "fp16" if precision in ("fp16", "bf16") else "fp32"
    if precision in ("fp32", "tf32"):
        use_tf32 = (precision == "tf32" or tf32) and device.tf32.value is not None
        return "tf32" if use_tf32 else "fp32"
    if precision == "bf16":
        if device.bf16_tensor.value is None:
            raise FusionlabError(f"--precision bf16: the {device.title} (--device {device.name}) has no "
                                 "BF16 math (needs compute capability 8.0+)")
        return "bf16_tensor"
    if precision == "int8":
        return "int8_tensor"
    return "fp16_tensor"  # fp16, fp8 (no fp8 column: FP16 rate, conservative)


_KIND_CLASSES: Mapping[Kind, str] = {
    **dict.fromkeys((Kind.CONVOLUTION, Kind.DECONVOLUTION, Kind.FULLY_CONNECTED, Kind.MATRIX_MULTIPLY), "conv"),
    Kind.POOLING: "pooling",
    **dict.fromkeys((Kind.POINTWISE, Kind.ELEMENTWISE, Kind.ACTIVATION, Kind.SCALE, Kind.UNARY), "pointwise"),
    **dict.fromkeys(
        (Kind.COPY, Kind.REFORMAT, Kind.NOOP, Kind.SHUFFLE, Kind.CONCATENATION, Kind.SLICE, Kind.PADDING,
         Kind.UNKNOWN),
        "copy",
    ),
}
"""A layer without ONNX nodes (an engine layer read without the model): its kind's class."""


def layer_class(ops_: Sequence[str], kind: Kind = Kind.UNKNOWN) -> str:
    """The efficiency class of a layer from its ONNX ops (or, without nodes, its kind).

    >>> layer_class(["Conv", "Add", "Relu"]), layer_class(["MaxPool"])
    ('conv', 'pooling')
    >>> layer_class(["Sigmoid", "Mul"])
    'pointwise'
    >>> layer_class([], Kind.COPY), layer_class(["Softmax"]), layer_class([], Kind.CONVOLUTION)
    ('copy', 'other', 'conv')
    """
    if ops_:
        present = set(ops_)
        if present & TENSOR_OPS:
            return "conv"
        if present & ops.POOLING:
            return "pooling"
        if present <= COPY_OPS:
            return "copy"
        if present <= POINTWISE_OPS | COPY_OPS:
            return "pointwise"
        return "other"
    return _KIND_CLASSES.get(kind, "other")


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (as Spearman's rho needs).

    >>> ranks([10.0, 30.0, 20.0, 30.0]).tolist()
    [1.0, 3.5, 2.0, 3.5]
    """
    a = np.asarray(values, dtype=float)
    order = np.argsort(a, kind="mergesort")
    r = np.empty(len(a), dtype=float)
    r[order] = np.arange(1, len(a) + 1, dtype=float)
    uniq, inverse = np.unique(a, return_inverse=True)
    if len(uniq) < len(a):
        sums = np.bincount(inverse, weights=r)
        counts = np.bincount(inverse)
        r = (sums / counts)[inverse]
    return r


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation (Pearson on average ranks); nan when a side is constant.

    >>> spearman([1, 2, 3, 4], [10, 20, 30, 40]), spearman([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    """
    if len(a) != len(b):
        raise ValueError("spearman: sequences of different lengths")
    if len(a) < 2:
        return math.nan
    ra, rb = ranks(a), ranks(b)
    if np.all(ra == ra[0]) or np.all(rb == rb[0]):
        return math.nan
    return float(round(np.corrcoef(ra, rb)[0, 1], 12))


@dataclass(frozen=True)
class Metrics:
    """How predicted per-layer times compare with measured ones."""

    layers: int
    predicted_ms: float
    """Sum of the predicted times of the compared layers."""
    measured_ms: float
    total_error_pct: float
    """(predicted - measured) / measured of the sums, in percent."""
    median_abs_error_pct: float
    """Median over layers of |predicted - measured| / measured, in percent."""
    spearman: float
    rms_log_error: float
    """Root mean square of ln(predicted / measured): what :func:`fit` minimizes."""


def metrics(predicted: Sequence[float], measured: Sequence[float]) -> Metrics:
    """Compare per-layer times (only pairs whose measured time is positive count).

    >>> m = metrics([1.0, 2.0, 4.0], [1.0, 2.5, 3.0])
    >>> round(m.total_error_pct, 1), round(m.median_abs_error_pct, 1), m.spearman
    (7.7, 20.0, 1.0)
    """
    pairs = [(p, m) for p, m in zip(predicted, measured, strict=True) if m > 0 and p > 0]
    if not pairs:
        raise FusionlabError("no layer has both a predicted and a positive measured time")
    p = np.array([x for x, _ in pairs])
    m = np.array([y for _, y in pairs])
    return Metrics(
        layers=len(pairs),
        predicted_ms=float(p.sum()),
        measured_ms=float(m.sum()),
        total_error_pct=float((p.sum() - m.sum()) / m.sum() * 100.0),
        median_abs_error_pct=float(np.median(np.abs(p - m) / m) * 100.0),
        spearman=spearman(p.tolist(), m.tolist()),
        rms_log_error=float(np.sqrt(np.mean(np.log(p / m) ** 2))),
    )


# ---------------------------------------------------------------------------------------
# Layer costs


@dataclass(frozen=True)
class LayerCost:
    """What one layer computes and moves on one device, before efficiency factors."""

    name: str
    cls: str
    flops: float
    """FLOPs as :mod:`fusionlab.ir.flops` counts them (no channel padding)."""
    nbytes: float
    """Bytes moved: external inputs and outputs plus weights."""
    compute_ms: float
    """Sum over nodes of (padded) FLOPs / peak of that node's math, at efficiency 1."""
    memory_ms: float
    """nbytes / bandwidth at efficiency 1."""
    math: str = ""
    """The device figures the math ran at, ``+``-joined (``tf32+fp32``)."""
    noop: bool = False
    """A layer TensorRT runs as a no-op (``NoOp``): zero time."""
    note: str = ""

    def time_ms(self, efficiency: Efficiency = DEFAULT_EFFICIENCY) -> float:
        """Predicted milliseconds with ``efficiency``.

        >>> LayerCost("c", "copy", 0.0, 8e6, 0.0, 0.004).time_ms()
        0.008
        """
        if self.noop:
            return 0.0
        e = efficiency.of(self.cls)
        return roofline_ms(self.compute_ms, self.memory_ms, e.compute, e.memory,
                           efficiency.overhead_ms)


def _is_float(dtype: str | None) -> bool:
    return dtype is None or dtype.startswith(("float", "bfloat"))


def _tensor_bytes(
    graph: Graph | None, name: str, elem: int, override: Mapping[str, int] | None
) -> int | None:
    if override is not None and name in override:
        return override[name]
    if graph is None:
        return None
    t = graph.tensors.get(name)
    if t is None or t.numel is None:
        return None
    return t.numel * (elem if _is_float(t.dtype) else itemsize(t.dtype or "float32"))


def _int_dims(shape: Sequence[Any] | None) -> tuple[int, ...] | None:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(int(d) for d in shape)


def gemm_channels(graph: Graph, node: Node) -> tuple[int, int] | None:
    """(reduction channels per group, output channels per group) of a tensor-core node.

    Conv W is (K, C/g, ...); ConvTranspose W is (C, K/g, ...); Gemm/MatMul reduce over K
    of A (M x K) and B (K x N).
    """
    def dims(i: int) -> tuple[int, ...] | None:
        if len(node.inputs) <= i or not node.inputs[i]:
            return None
        t = graph.tensors.get(node.inputs[i])
        return None if t is None else _int_dims(t.shape)

    w = dims(1)
    if w is None or len(w) < 2:
        return None
    group = int(node.attrs.get("group", 1) or 1)
    if node.op == "Conv":
        return w[1], max(1, w[0] // group)
    if node.op == "ConvTranspose":
        return max(1, w[0] // group), w[1]
    if node.op == "Gemm":
        k = w[1] if node.attrs.get("transB", 0) else w[0]
        n = w[0] if node.attrs.get("transB", 0) else w[1]
        return k, n
    return w[-2], w[-1]  # MatMul


def _node_compute(
    flops: float, channels: tuple[int, int] | None, tensor: bool, precision: str,
    device: Device, tf32: bool, *, chw4: bool = False,
) -> tuple[float, str]:
    """(milliseconds at efficiency 1, device figure) of one node's math.

    ``chw4``: an INT8 convolution of one group, whose few input channels TensorRT pads to
    :data:`INT8_SMALL_CHANNELS` and runs on tensor cores all the same.
    """
    fieldname = math_field(precision, tensor, device, tf32)
    if tensor and fieldname in TENSOR_CORE_ALIGN and channels is not None:
        multiple = TENSOR_CORE_ALIGN[fieldname]
        if chw4 and fieldname == "int8_tensor" and channels[0] < multiple:
            work: float | None = flops * padded(channels[0], INT8_SMALL_CHANNELS) / channels[0] * (
                padded(channels[1], multiple) / channels[1])
        else:
            work = tensor_core_flops(flops, channels[0], channels[1], multiple)
        if work is None:
            fieldname = math_field(precision, False, device, tf32)
        else:
            flops = work
    peak = device.figure(fieldname).value
    assert peak is not None, fieldname  # math_field only returns figures the device has
    return compute_ms(flops, peak), fieldname


def _join(fields_: Iterable[str]) -> str:
    return "+".join(dict.fromkeys(fields_))


def layer_cost(
    graph: Graph | None,
    layer: Layer,
    device: Device,
    precision: str,
    *,
    tf32: bool = True,
    tensor_bytes: Mapping[str, int] | None = None,
    explicit: bool | None = None,
    int8: Collection[str] | None = None,
) -> LayerCost:
    """The cost of one layer of a plan over ``graph`` (see the module docstring).

    ``tensor_bytes`` gives the size of tensors the graph does not know (an engine's own
    tensors, e.g. ``Reformatted Input Tensor 0 to X``) or overrides it. ``explicit``: the
    graph has Q/DQ nodes (None: look), so each layer's precision is its own. ``int8``: the
    activation tensors that hold INT8 data (:func:`int8_activations`; None: the
    QuantizeLinear outputs).
    """
    check_precision(precision, COST_PRECISIONS)
    if explicit is None:
        explicit = graph is not None and qdq.has_qdq(graph)
    float_precision = explicit_float_precision(precision) if explicit else precision
    elem = element_bytes(float_precision)
    nodes = [graph.node(n) for n in layer.nodes] if graph is not None else []
    noop = layer.kind is Kind.NOOP
    cls = layer_class([n.op for n in nodes], layer.kind)
    notes: list[str] = []

    weights = {w for n in nodes for w in n.weights}
    int8_data: Collection[str] = ()
    if explicit and graph is not None:
        # and the weights a QuantizeLinear of the layer turns into INT8 at build time
        int8_data = {*(qdq.int8_tensors(graph) if int8 is None else int8),
                     *(n.inputs[0] for n in nodes if n.op == qdq.Q and n.inputs[0] in weights)}
    external = [t for t in dict.fromkeys((*layer.inputs, *layer.outputs))
                if t and t not in weights and (graph is None or t not in graph.weights)]
    nbytes = 0
    unknown = []
    for t in (*external, *sorted(weights)):
        size = _tensor_bytes(graph, t, 1 if t in int8_data else elem, tensor_bytes)
        if size is None:
            unknown.append(t)
        else:
            nbytes += size
    if unknown:
        notes.append(f"size unknown for {len(unknown)} tensor(s), e.g. {unknown[0]!r}")

    flops_total = 0.0
    ms = 0.0
    used: list[str] = []
    for n in nodes:
        if cls == "copy":  # a copy or a Q/DQ reformat: memory only
            break
        if n.cost.flops is None:
            notes.append(f"FLOPs unknown for {n.name} ({n.op})")
            continue
        if n.cost.flops == 0:
            continue
        tensor = n.op in TENSOR_OPS
        channels = gemm_channels(graph, n) if tensor and graph is not None else None
        node_precision = precision
        if explicit and graph is not None:
            int8_node = tensor and len(n.inputs) > 1 and all(
                qdq.dequantized(graph, t) for t in n.inputs[:2])
            node_precision = "int8" if int8_node else float_precision
        chw4 = n.op == "Conv" and int(n.attrs.get("group", 1) or 1) == 1
        node_ms, used_field = _node_compute(float(n.cost.flops), channels, tensor, node_precision,
                                            device, tf32, chw4=chw4)
        flops_total += n.cost.flops
        ms += node_ms
        used.append(used_field)
    bw = device.bandwidth.value
    assert bw is not None
    return LayerCost(
        name=layer.name,
        cls=cls,
        flops=flops_total,
        nbytes=float(nbytes),
        compute_ms=ms,
        memory_ms=transfer_ms(nbytes, bw),
        math=_join(used),
        noop=noop,
        note="; ".join(notes),
    )


def _device(device: str | Device) -> Device:
    return get(device) if isinstance(device, str) else device


def _tf32(tf32: bool | None) -> bool:
    return True if tf32 is None else tf32


def layer_costs(
    graph: Graph | None,
    plan: Plan,
    device: str | Device,
    precision: str | None = None,
    *,
    tf32: bool | None = None,
    tensor_bytes: Mapping[str, int] | None = None,
) -> tuple[LayerCost, ...]:
    """:func:`layer_cost` of every layer of ``plan`` (precision: the plan's by default)."""
    dev = _device(device)
    prec = precision or plan.precision
    explicit = graph is not None and qdq.has_qdq(graph)
    int8 = int8_activations(graph, plan) if graph is not None and explicit else None
    return tuple(
        layer_cost(graph, layer, dev, prec, tf32=_tf32(tf32), tensor_bytes=tensor_bytes,
                   explicit=explicit, int8=int8)
        for layer in plan.layers
    )


def int8_activations(graph: Graph, plan: Plan) -> frozenset[str]:
    """The activation tensors of ``plan`` that hold INT8 data: QuantizeLinear outputs, and
    the outputs of DequantizeLinear nodes no layer computes (eliminated: their readers read
    the INT8 data and apply the scale themselves). A DequantizeLinear computed by a layer of
    its own (a Q/DQ reformat) writes float.

    >>> from fusionlab.ir.graph import load
    >>> from fusionlab.fusion.partition import initial_plan
    >>> from onnx import helper, TensorProto
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    >>> s = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    >>> g = load(helper.make_model(helper.make_graph(
    ...     [helper.make_node("QuantizeLinear", ["x", "s"], ["q"], name="q"),
    ...      helper.make_node("DequantizeLinear", ["q", "s"], ["y"], name="dq")],
    ...     "g", [x], [y], [s])))
    >>> plan = initial_plan(g)
    >>> sorted(int8_activations(g, plan))
    ['q']
    >>> sorted(int8_activations(g, plan.with_layers(plan.layers[:1])))  # dq eliminated
    ['q', 'y']
    """
    computed = {n for layer in plan.layers for n in layer.nodes}
    return qdq.int8_tensors(graph) | frozenset(
        t for name in graph.order if graph.node(name).op == qdq.DQ and name not in computed
        for t in graph.node(name).outputs if t
    )


def explicit_float_precision(precision: str) -> str:
    """What the float layers of an explicitly quantized (Q/DQ) model run at, for a build at
    ``precision``: ``int8`` is TensorRT's ``FP32+FP16+INT8`` build (FP16), any other the
    precision itself.

    >>> explicit_float_precision("int8"), explicit_float_precision("fp32")
    ('fp16', 'fp32')
    """
    return "fp16" if precision == "int8" else precision


def estimate(
    graph: Graph,
    plan: Plan,
    device: str | Device,
    precision: str | None = None,
    efficiency: Efficiency | None = None,
    *,
    tf32: bool | None = None,
    tensor_bytes: Mapping[str, int] | None = None,
) -> Plan:
    """``plan`` with every layer's ``time_ms`` predicted on ``device``.

    ``precision`` defaults to the plan's; ``efficiency`` to :data:`DEFAULT_EFFICIENCY`;
    ``tf32`` (fp32 convolutions on TF32 tensor cores) to True, as TensorRT allows TF32 by
    default on GPUs that have it.

    >>> from fusionlab.ir.graph import load
    >>> from fusionlab.fusion.predictor import predict
    >>> from onnx import helper, TensorProto, numpy_helper
    >>> import numpy as np
    >>> x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64, 56, 56])
    >>> y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    >>> w = numpy_helper.from_array(np.ones((64, 64, 3, 3), np.float32), "w")
    >>> g = load(helper.make_model(helper.make_graph(
    ...     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
    ...      helper.make_node("Relu", ["c"], ["y"], name="relu")], "g", [x], [y], [w])))
    >>> plan = estimate(g, predict(g, "trt10", "fp16").plan, "a100-80gb-pcie")

    1.85 GFLOP at 312 TFLOPS x 0.5 (11.9 us) outweighs 6.5 MB at 1935 GB/s x 0.7 (4.8 us);
    plus 3 us:

    >>> [(layer.name, round(layer.time_ms, 4)) for layer in plan.layers]
    [('conv + relu', 0.0149)]
    """
    eff = efficiency or DEFAULT_EFFICIENCY
    prec = precision or plan.precision
    dev = _device(device)
    if eff.device is not None and eff.device != dev.name:
        log.warning("efficiency factors fitted on %s are applied to %s", eff.device, dev.name)
    costs = layer_costs(graph, plan, dev, prec, tf32=tf32, tensor_bytes=tensor_bytes)
    for c in costs:
        if c.note:
            log.info("%s: %s", c.name, c.note)
    return plan.with_layers(
        replace(layer, time_ms=c.time_ms(eff)) for layer, c in zip(plan.layers, costs, strict=True)
    )


# ---------------------------------------------------------------------------------------
# Engine layers without the ONNX model


def _engine_elem(dtype: str | None) -> int:
    """Bytes per element of an engine tensor's data type word (4 when unknown)."""
    known = find(dtype or "")
    return known.itemsize if known is not None else 4


def engine_tensor_bytes(info: EngineInfo) -> dict[str, int]:
    """Tensor name -> bytes, from the dimensions and data types an engine's layers list."""
    out: dict[str, int] = {}
    for layer in info.layers:
        for t in (*layer.inputs, *layer.outputs):
            if t.dims is not None and all(d >= 0 for d in t.dims):
                out[t.name] = math.prod(t.dims) * _engine_elem(t.dtype)
    return out


def _raw_int(raw: Mapping[str, Any], key: str, default: int) -> int:
    """A whole-number field of an engine layer (``Groups``, ``OutMaps``); ``default`` when it
    is missing or not a sensible whole number (the inspector writes JSON integers)."""
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        return default
    return value


def _raw_ints(raw: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = raw.get(key)
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return tuple(value)
    return ()


def engine_layer_cost(
    layer: EngineLayer, device: Device, precision: str, *, tf32: bool = True
) -> LayerCost:
    """The cost of one engine layer from the inspector's own fields (no ONNX model).

    Convolutions (``ParameterType`` Convolution, also fully connected layers built as
    1x1 convolutions): ``2 * C/groups * prod(Kernel)`` per output element, plus one with a
    bias; pooling: ``prod(WindowSize)`` per output element; point-wise layers: one per
    output element; reformats, shuffles and no-ops: none. Bytes: every input and output at
    its own data type.
    """
    raw = layer.raw or {}
    param = raw.get("ParameterType")
    kind = kind_of_engine_type(param if isinstance(param, str) and param else layer.layer_type)
    cls = layer_class([], kind)
    noop = kind is Kind.NOOP
    outs = [t for t in layer.outputs if t.dims is not None]
    out_numel = sum(math.prod(t.dims) for t in outs if t.dims is not None)
    prec = next((t.dtype for t in layer.inputs if t.dtype in COST_PRECISIONS), None) or precision
    flops = 0.0
    ms = 0.0
    math_used = ""
    if cls == "conv" and "Kernel" in raw:
        x = layer.inputs[0].dims if layer.inputs else None
        groups = _raw_int(raw, "Groups", 1)
        c_in = x[1] if x is not None and len(x) > 1 else 0
        k_out = _raw_int(raw, "OutMaps", 0)
        per = 2 * (c_in // groups) * math.prod(_raw_ints(raw, "Kernel") or (1,))
        flops = float(out_numel * per + (out_numel if raw.get("HasBias") else 0))
        channels = (c_in // groups, max(1, k_out // groups)) if c_in and k_out else None
        ms, math_used = _node_compute(flops, channels, True, prec, device, tf32)
    elif cls == "pooling":
        window = _raw_ints(raw, "WindowSize")
        x = layer.inputs[0].dims if layer.inputs else None
        if window:
            flops = float(out_numel * math.prod(window))
        elif x is not None:
            flops = float(math.prod(x))
        ms, math_used = _node_compute(flops, None, False, prec, device, tf32)
    elif cls in ("pointwise", "other"):
        flops = float(out_numel)
        ms, math_used = _node_compute(flops, None, False, prec, device, tf32)
    sizes = engine_tensor_bytes_of(layer)
    bw = device.bandwidth.value
    assert bw is not None
    return LayerCost(layer.name, cls, flops, float(sizes), ms, transfer_ms(sizes, bw),
                     math_used, noop)


def engine_tensor_bytes_of(layer: EngineLayer) -> int:
    """Bytes of one engine layer's inputs and outputs (weights excluded: the JSON lists
    only their count, added by :func:`engine_costs`)."""
    total = 0
    for t in dict.fromkeys((*layer.inputs, *layer.outputs)):
        if t.dims is not None and all(d >= 0 for d in t.dims):
            total += math.prod(t.dims) * _engine_elem(t.dtype)
    return total


def _weight_bytes(raw: Mapping[str, Any], precision: str) -> int:
    total = 0
    for key in ("Weights", "Bias"):
        w = raw.get(key)
        if isinstance(w, dict) and isinstance(w.get("Count"), int):
            word = word_in_text(w.get("Type")) or precision
            total += int(w["Count"]) * _engine_elem(word)
    return total


def engine_costs(
    info: EngineInfo, device: str | Device, precision: str, *, tf32: bool | None = None
) -> tuple[LayerCost, ...]:
    """:func:`engine_layer_cost` of every layer, weights (``Weights``/``Bias`` counts) added."""
    dev = _device(device)
    bw = dev.bandwidth.value
    assert bw is not None
    out = []
    for layer in info.layers:
        c = engine_layer_cost(layer, dev, precision, tf32=_tf32(tf32))
        extra = _weight_bytes(layer.raw or {}, precision)
        if extra:
            nbytes = c.nbytes + extra
            c = replace(c, nbytes=nbytes, memory_ms=transfer_ms(nbytes, bw))
        out.append(c)
    return tuple(out)


# ---------------------------------------------------------------------------------------
# Joining with a measured profile, fitting


@dataclass(frozen=True)
class Sample:
    """One layer with its cost and its measured time."""

    cost: LayerCost
    measured_ms: float


def join(
    costs: Sequence[LayerCost], profile: Profile
) -> tuple[tuple[Sample, ...], tuple[str, ...]]:
    """Layers with a positive measured time (joined by name), and the names left out.

    Left out: layers the profile does not time, layers timed at zero (TensorRT's no-ops),
    no-op layers, and layers with no work to scale (zero FLOPs and zero bytes, e.g. a
    layer whose tensors' shapes the layer file does not give: no factor can fit them).
    """
    times = profile.by_name()
    samples: list[Sample] = []
    left: list[str] = []
    for c in costs:
        t = times.get(c.name)
        if t is None or t.average_ms <= 0 or c.noop or (c.compute_ms <= 0 and c.memory_ms <= 0):
            left.append(c.name)
        else:
            samples.append(Sample(c, t.average_ms))
    return tuple(samples), tuple(left)


def evaluate(samples: Sequence[Sample], efficiency: Efficiency) -> Metrics:
    """:func:`metrics` of the samples' predicted times with ``efficiency``."""
    return metrics([s.cost.time_ms(efficiency) for s in samples],
                   [s.measured_ms for s in samples])


def _log_mean(values: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def _fit_class(
    samples: Sequence[Sample], overhead: float, start: ClassEfficiency, iterations: int = 50
) -> ClassEfficiency:
    """Alternating least squares in log space for one class at a fixed overhead.

    Each layer is compute- or memory-bound under the current factors; each factor is then
    the one that makes its layers' roofline times match ``measured - overhead`` on average
    in log space (closed form: a geometric mean). Repeat until the split stops changing.
    """
    ec, em = start.compute, start.memory
    previous: tuple[bool, ...] | None = None
    for _ in range(iterations):
        bound = tuple(s.cost.compute_ms / ec >= s.cost.memory_ms / em for s in samples)
        if bound == previous:
            break
        previous = bound
        comp = [(s.cost.compute_ms, s.measured_ms - overhead) for s, b in zip(samples, bound,
                                                                               strict=True)
                if b and s.cost.compute_ms > 0]
        mem = [(s.cost.memory_ms, s.measured_ms - overhead) for s, b in zip(samples, bound,
                                                                            strict=True)
               if not b and s.cost.memory_ms > 0]
        if comp:
            ec = min(_log_mean([c / r for c, r in comp]), MAX_FACTOR)
        if mem:
            em = min(_log_mean([m / r for m, r in mem]), MAX_FACTOR)
    return ClassEfficiency(compute=ec, memory=em)


def _loss(samples: Sequence[Sample], eff: Efficiency) -> float:
    return float(sum(math.log(s.cost.time_ms(eff) / s.measured_ms) ** 2 for s in samples))


def fit(
    samples: Sequence[Sample],
    start: Efficiency = DEFAULT_EFFICIENCY,
    *,
    device: str | None = None,
    precision: str | None = None,
    overheads: Sequence[float] | None = None,
) -> Efficiency:
    """Efficiency factors that minimize the squared log error of per-layer times.

    Per class a compute and a memory factor (:func:`_fit_class`); one overhead for all
    layers, chosen from ``overheads`` (milliseconds; default 0 to 10 microseconds, below
    the shortest measured layer) by the same loss. Classes with no sample keep ``start``'s
    factors. Factors above 1 mean the layer ran faster than the roofline allows (data
    served from the L2 cache, or an over-counted cost): they are kept, and logged.
    """
    if not samples:
        raise FusionlabError("nothing to fit: no layer has a positive measured time")
    shortest = min(s.measured_ms for s in samples)
    grid = overheads if overheads is not None else [i * 0.0005 for i in range(21)]
    grid = [o for o in grid if o < 0.9 * shortest] or [0.0]
    by_class: dict[str, list[Sample]] = {}
    for s in samples:
        by_class.setdefault(s.cost.cls, []).append(s)
    best: tuple[float, Efficiency] | None = None
    for overhead in grid:
        classes = dict(start.classes)
        for cls, members in by_class.items():
            classes[cls] = _fit_class(members, overhead, start.of(cls))
        eff = Efficiency(classes, overhead, device, precision,
                         note=f"fitted on {len(samples)} layers")
        loss = _loss(samples, eff)
        if best is None or loss < best[0] - 1e-12:
            best = (loss, eff)
    assert best is not None
    for cls, e in best[1].classes.items():
        if cls in by_class and (e.compute > 1 or e.memory > 1):
            log.info("class %s: fitted factors above 1 (compute %.2f, memory %.2f)",
                     cls, e.compute, e.memory)
    return best[1]


# ---------------------------------------------------------------------------------------
# Efficiency files


def efficiency_to_dict(
    efficiency: Efficiency, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An efficiency as JSON-ready data (schema :data:`SCHEMA`); ``extra`` goes under ``fit``."""
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "device": efficiency.device,
        "precision": efficiency.precision,
        "overhead_us": round(efficiency.overhead_ms * 1000.0, 6),
        "classes": {
            cls: {"compute": round(e.compute, 6), "memory": round(e.memory, 6)}
            for cls, e in efficiency.classes.items()
        },
        "note": efficiency.note,
    }
    if extra:
        data["fit"] = dict(extra)
    return data


def efficiency_to_json(efficiency: Efficiency, extra: Mapping[str, Any] | None = None) -> str:
    """Canonical JSON text of :func:`efficiency_to_dict`.

    >>> efficiency_from_json(efficiency_to_json(DEFAULT_EFFICIENCY)) == DEFAULT_EFFICIENCY
    True
    """
    return dumps_json(efficiency_to_dict(efficiency, extra))


MAX_FACTOR = 1000.0
"""The largest efficiency factor read or fitted. A factor is a fraction of the roofline
peak; fitted factors above 1 happen (data served from L2, an over-counted cost) but a
layer 1,000 times faster than its roofline is a wrong cost, not an efficiency."""


def _positive(value: Any, what: str, where: str) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 < value <= MAX_FACTOR):
        raise FusionlabError(
            f"{where}: {what} must be a number above 0 and at most {MAX_FACTOR:g}, got {value!r}"
        )
    return float(value)


def efficiency_from_json(text: str, where: str = "efficiency JSON") -> Efficiency:
    """Read :func:`efficiency_to_json` output; FusionlabError when it is not one."""
    data = parse_json(text, where)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise FusionlabError(f"{where}: not an efficiency file (expected schema {SCHEMA!r})")
    raw_classes = data.get("classes")
    if not isinstance(raw_classes, dict):
        raise FusionlabError(f"{where}: 'classes' must be an object")
    classes: dict[str, ClassEfficiency] = {}
    for cls, e in raw_classes.items():
        if not isinstance(e, dict):
            raise FusionlabError(f"{where}: class {cls!r} must be an object")
        classes[str(cls)] = ClassEfficiency(
            _positive(e.get("compute"), f"{cls}.compute", where),
            _positive(e.get("memory"), f"{cls}.memory", where),
        )
    overhead = data.get("overhead_us", 0.0)
    if isinstance(overhead, bool) or not isinstance(overhead, int | float) or overhead < 0:
        raise FusionlabError(f"{where}: overhead_us must be a number >= 0")
    device, precision, note = data.get("device"), data.get("precision"), data.get("note", "")
    return Efficiency(
        classes=classes,
        overhead_ms=float(overhead) / 1000.0,
        device=device if isinstance(device, str) else None,
        precision=precision if isinstance(precision, str) else None,
        note=note if isinstance(note, str) else "",
    )


def read_efficiency(path: str | os.PathLike[str]) -> Efficiency:
    """An efficiency file from disk (FusionlabError naming it when it cannot be read)."""
    return efficiency_from_json(read_text(path), str(path))


# ---------------------------------------------------------------------------------------
# Predicted plan vs a measured profile


@dataclass(frozen=True)
class Comparison:
    """A plan with predicted times next to a measured per-layer profile."""

    matched: tuple[tuple[str, float, float], ...]
    """(layer, predicted ms, measured ms) for layers both sides name, in plan order."""
    predicted_only: tuple[str, ...]
    """Predicted layers the profile does not time."""
    engine_only: tuple[tuple[str, float], ...] = field(default=())
    """(layer, measured ms) the plan has no prediction for (reformats, no-ops ...)."""
    predicted_total_ms: float = 0.0
    """Sum of every predicted layer's time."""

    @property
    def metrics(self) -> Metrics:
        """:func:`metrics` over the matched layers with a positive measured time."""
        return metrics([p for _, p, _ in self.matched], [m for _, _, m in self.matched])

    @property
    def engine_only_ms(self) -> float:
        """Measured time of the layers the plan does not predict."""
        return sum(t for _, t in self.engine_only)

    def total_error_pct(self, latency_ms: float) -> float:
        """(predicted total - latency) / latency, in percent."""
        return (self.predicted_total_ms - latency_ms) / latency_ms * 100.0


def compare(plan: Plan, profile: Profile) -> Comparison:
    """Join a plan whose layers carry ``time_ms`` with a profile, by layer name."""
    times = profile.by_name()
    names = {layer.name for layer in plan.layers}
    matched = tuple(
        (layer.name, float(layer.time_ms), times[layer.name].average_ms)
        for layer in plan.layers
        if layer.name in times and layer.time_ms is not None
    )
    return Comparison(
        matched=matched,
        predicted_only=tuple(layer.name for layer in plan.layers if layer.name not in times),
        engine_only=tuple((t.name, t.average_ms) for t in profile.layers if t.name not in names),
        predicted_total_ms=sum(layer.time_ms or 0.0 for layer in plan.layers),
    )

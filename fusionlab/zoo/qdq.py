"""Quantized (Q/DQ) models as NVIDIA's quantization tools export them: ``resnet18-qat`` and
``mobilenetv2-qdq``.

Both are explicit-precision int8 networks: every quantized tensor passes through a
``QuantizeLinear`` -> ``DequantizeLinear`` pair with zero point 0 (symmetric int8), scales
per tensor for activations and per output channel (``axis=0``) for weights, and the float
weights stay initializers that feed their own Q/DQ pair, so TensorRT folds the pair into an
int8 weight.

resnet18-qat
------------
torchvision's ResNet-18 fine-tuned with NVIDIA's pytorch-quantization toolkit
(``quant_nn.QuantConv2d`` / ``QuantLinear``, ``TensorQuantizer.use_fb_fake_quant = True``)
and exported by the TREx example (``examples/pytorch/resnet``: ``resnet-qat.onnx``, legacy
TorchScript exporter, ``opset_version=13``, ``input_names=["input.1"]``, dynamic batch
``batch_size``); every name matches the TensorRT engine record
``trex-resnet18-a100-qat``. What that export contains, and so what this builder writes:

- Each ``QuantConv2d`` quantizes its input and its weight; ``QuantLinear`` (``fc``) too.
  Residual Adds, the max pooling and the global average pooling are not quantized
  (``quantize=True`` alone; the example's ``quantize_residual`` variant is another file).
  The downsample convolution has its own input quantizer, on the same tensor as the
  block's first convolution (with the same scale: the example's quantizers are not
  calibrated, so each scale is the amax of the tensor it reads over 127).
- BatchNormalization stays a node (the exporter folds BN only into a Conv whose weight is
  an initializer; here it is a DequantizeLinear output).
- An activation quantizer (``fake_quantize_per_tensor_affine``, whose symbolic in that
  exporter took the scale and zero point as Python values) is six nodes: ``Constant``
  (scale, float32 scalar), ``Constant`` (zero point, int8 0), ``QuantizeLinear``, two
  more ``Constant`` nodes with the same values, ``DequantizeLinear`` — every tensor
  argument of an exported node became a Constant of its own.
- A weight quantizer (``fake_quantize_per_channel_affine``) is three nodes: ``Constant``
  (the per-channel scales, read by both Q and DQ), ``QuantizeLinear(axis=0)`` of the
  float weight initializer (``conv1.weight``), ``DequantizeLinear(axis=0)``. Its zero
  point went through a ``Cast`` to int8 that constant folding replaced by an initializer
  (``onnx::QuantizeLinear_423`` ...), so those two values leave gaps in the numbering.
- Nodes are ``<OpType>_<index>`` in export order (``Constant_0``, ..., ``QuantizeLinear_2``,
  ..., ``QuantizeLinear_7``, ``DequantizeLinear_8``, ``Conv_9``, ``BatchNormalization_10``,
  ``Relu_11``, ``MaxPool_12``, ..., ``Gemm_257``: 258 nodes).
- Tensor names: values a traced Python variable named ``input`` or ``inputs`` held are
  ``input.<k>`` / ``inputs.<k>`` (``inputs`` is ``TensorQuantizer.forward``'s argument);
  others are ``onnx::<first consumer's op>_<value id>``, the output plain ``422``. Value
  ids count the graph inputs (``input.1`` and the 122 ``state_dict`` entries) first, then
  one per value in export order: 6 per activation quantizer, 5 per weight quantizer
  (scale, the folded zero point and its Cast, Q, DQ), 1 per other node.

mobilenetv2-qdq
---------------
The zoo's ``mobilenetv2`` with Q/DQ placed as TensorRT's guide ("Q/DQ layer placement
recommendations", explicit quantization) and NVIDIA's tools place it: a Q/DQ pair on the
input and on the weight of every Conv and of the Gemm, and on the identity (skip) input
of every residual Add, so that TensorRT can fuse the Add into the preceding convolution
with an int8 input on both sides (pytorch-quantization's ``quantize_residual``, TREx's
``resnet-qat-residual``; TensorRT Model Optimizer quantizes the same inputs). Activations
per tensor, weights per output channel (``axis=0``; ``axis=0`` of the Gemm's ``[1000,
1280]`` weight, ``transB=1``, is its output channel too), zero points 0. Node names are
the float model's module paths with the quantizer's name: ``features.2.conv.0.0`` reads
``features.2.conv.0.0/input_quantizer/DequantizeLinear`` and
``features.2.conv.0.0/weight_quantizer/DequantizeLinear``; a residual Add
``features.3.add`` reads ``features.3/residual_quantizer/DequantizeLinear``. Scales and
zero points are initializers (``<quantizer>/scale``, ``<quantizer>/zero_point``).

>>> m = resnet18_qat(batch=1)
>>> [n.name for n in m.graph.node][:4]
['Constant_0', 'Constant_1', 'QuantizeLinear_2', 'Constant_3']
>>> list(m.graph.node[7].input)
['conv1.weight', 'onnx::QuantizeLinear_129', 'onnx::QuantizeLinear_423']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fusionlab.zoo._builder import OPSET, PRODUCER, Builder
from fusionlab.zoo.catalog import CATALOG
from fusionlab.zoo.mobilenet import CONFIG as MOBILENET_CONFIG

INT8_BOUND = 127
"""Symmetric int8: scale = amax / 127, zero point 0 (pytorch-quantization's full range
[-128, 127] with ``narrow_range`` off)."""

SEED_RESNET18_QAT, SEED_MOBILENETV2_QDQ = 1813, 2213
RESNET_BATCH = "batch_size"
RESNET_INPUT = "input.1"
RESIDUAL_GAIN = 0.2


# ------------------------------------------------------------------ resnet18-qat
@dataclass
class _Value:
    """A value of the emulated export: its id and, for a traced variable, its name."""

    id: int
    name: str | None = None


@dataclass
class _Node:
    op: str
    inputs: list[_Value | str]
    """Values, or initializer names (weights, folded zero points)."""
    output: _Value
    attrs: dict[str, Any] = field(default_factory=dict)
    value: np.ndarray | None = None
    """A Constant's tensor."""


class _LegacyExport:
    """Emulates the TorchScript exporter's numbering: node indices and value ids in order."""

    def __init__(self, first_id: int) -> None:
        self.next_id = first_id
        self.nodes: list[_Node] = []
        self.folded: list[tuple[_Value, np.ndarray]] = []
        """Zero points that constant folding made initializers (ids after every value)."""

    def value(self, name: str | None = None) -> _Value:
        v = _Value(self.next_id, name)
        self.next_id += 1
        return v

    def node(self, op: str, inputs: list[_Value | str], name: str | None = None,
             value: np.ndarray | None = None, **attrs: Any) -> _Value:
        out = self.value(name)
        self.nodes.append(_Node(op, inputs, out, attrs, value))
        return out

    def constant(self, array: np.ndarray) -> _Value:
        return self.node("Constant", [], value=array)

    def quantize_activation(self, x: _Value | str, amax: float) -> _Value:
        """``fake_quantize_per_tensor_affine``: Constant x2, Q, Constant x2, DQ (6 ids)."""
        scale = np.array(amax / INT8_BOUND, dtype=np.float32)
        zero = np.array(0, dtype=np.int8)
        q = self.node("QuantizeLinear", [x, self.constant(scale), self.constant(zero)])
        return self.node("DequantizeLinear", [q, self.constant(scale), self.constant(zero)])

    def quantize_weight(self, weight: str, w: np.ndarray) -> _Value:
        """``fake_quantize_per_channel_affine`` on axis 0: scale Constant, Q, DQ (5 ids)."""
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = self.constant((amax / INT8_BOUND).astype(np.float32))
        self.next_id += 2  # the int32 zero point and its Cast to int8, folded away
        zero = _Value(-1)  # its id comes after every other value (see finish)
        self.folded.append((zero, np.zeros(w.shape[0], dtype=np.int8)))
        q = self.node("QuantizeLinear", [weight, scale, zero], axis=0)
        return self.node("DequantizeLinear", [q, scale, zero], axis=0)

    def finish(self) -> None:
        for zero, _ in self.folded:
            zero.id = self.next_id
            self.next_id += 1


def _resnet18_qat_graph(seed: int) -> tuple[_LegacyExport, list[onnx.TensorProto]]:
    """The export of TREx's QAT ResNet-18, node by node, with seeded weights."""
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    # state_dict: per conv its weight, per BN weight, bias, running mean/var and
    # num_batches_tracked (graph inputs: ids 1..122; the input is id 0).
    ex = _LegacyExport(first_id=1 + 6 * 20 + 2)
    traced = iter(["input", *(f"input.{k}" for k in range(3, 400, 4))])
    block_out = iter(f"inputs.{k}" for k in range(4, 400, 4))

    def activation_amax() -> float:
        return float(rng.uniform(3.0, 8.0))

    def conv(prefix: str, x: _Value | str, cin: int, cout: int, k: int, stride: int,
             amax: float, gain: float = 1.0) -> _Value:
        dq = ex.quantize_activation(x, amax)
        w = rng.standard_normal((cout, cin, k, k), dtype=np.float32)
        w *= np.float32(gain * np.sqrt(2.0 / (cin * k * k)))
        inits.append(numpy_helper.from_array(w, f"{prefix}.weight"))
        wq = ex.quantize_weight(f"{prefix}.weight", w)
        pad = (k - 1) // 2
        return ex.node("Conv", [dq, wq], next(traced), dilations=[1, 1], group=1,
                       kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])

    def bn(prefix: str, x: _Value, c: int, named: bool) -> _Value:
        scale = 1.0 + rng.standard_normal(c, dtype=np.float32) * np.float32(0.1)
        shift = rng.standard_normal(c, dtype=np.float32) * np.float32(0.1)
        mean = rng.standard_normal(c, dtype=np.float32) * np.float32(0.1)
        var = rng.uniform(0.5, 1.5, size=c).astype(np.float32)
        names = [f"{prefix}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
        inits.extend(numpy_helper.from_array(a, n) for a, n in zip((scale, shift, mean, var),
                                                                    names, strict=True))
        return ex.node("BatchNormalization", [x, *names], next(traced) if named else None,
                       epsilon=1e-5, momentum=0.9)

    x = conv("conv1", RESNET_INPUT, 3, 64, 7, 2, amax=4.8)
    x = ex.node("Relu", [bn("bn1", x, 64, named=True)])
    x = ex.node("MaxPool", [x], "inputs", ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                strides=[2, 2])
    cin = 64
    for stage in range(4):
        cout = 64 * 2**stage
        for i in range(2):
            p = f"layer{stage + 1}.{i}"
            stride = 2 if stage > 0 and i == 0 else 1
            amax_x = activation_amax()
            y = conv(f"{p}.conv1", x, cin, cout, 3, stride, amax_x)
            y = ex.node("Relu", [bn(f"{p}.bn1", y, cout, named=True)])
            y = conv(f"{p}.conv2", y, cout, cout, 3, 1, activation_amax(), RESIDUAL_GAIN)
            y = bn(f"{p}.bn2", y, cout, named=False)
            identity: _Value = x
            if stride != 1 or cin != cout:
                identity = conv(f"{p}.downsample.0", x, cin, cout, 1, stride, amax_x)
                identity = bn(f"{p}.downsample.1", identity, cout, named=False)
            y = ex.node("Add", [y, identity])
            last = stage == 3 and i == 1
            x = ex.node("Relu", [y], next(traced) if last else next(block_out))
            cin = cout
    x = ex.node("GlobalAveragePool", [x])
    x = ex.node("Flatten", [x], next(block_out), axis=1)
    dq = ex.quantize_activation(x, activation_amax())
    fc_w = rng.standard_normal((1000, 512), dtype=np.float32) * np.float32(0.01)
    inits += [numpy_helper.from_array(fc_w, "fc.weight"),
              numpy_helper.from_array(np.zeros(1000, dtype=np.float32), "fc.bias")]
    wq = ex.quantize_weight("fc.weight", fc_w)
    ex.node("Gemm", [dq, wq, "fc.bias"], alpha=1.0, beta=1.0, transB=1)
    ex.finish()
    return ex, inits


def resnet18_qat(batch: int | None = None) -> onnx.ModelProto:
    """The QAT ResNet-18 of TREx's example as the legacy exporter writes it (258 nodes)."""
    ex, inits = _resnet18_qat_graph(SEED_RESNET18_QAT)
    consumer: dict[int, str] = {}
    for n in ex.nodes:
        for v in n.inputs:
            if isinstance(v, _Value):
                consumer.setdefault(v.id, n.op)

    def name(v: _Value | str) -> str:
        if isinstance(v, str):
            return v
        if v.name is not None:
            return v.name
        return f"onnx::{consumer[v.id]}_{v.id}" if v.id in consumer else str(v.id)

    nodes = []
    for i, n in enumerate(ex.nodes):
        attrs = dict(n.attrs)
        if n.value is not None:
            attrs["value"] = numpy_helper.from_array(n.value)
        nodes.append(helper.make_node(n.op, [name(v) for v in n.inputs], [name(n.output)],
                                      name=f"{n.op}_{i}", **attrs))
    inits += [numpy_helper.from_array(a, name(v)) for v, a in ex.folded]
    dim: int | str = RESNET_BATCH if batch is None else batch
    graph = helper.make_graph(
        nodes, "torch_jit",
        [helper.make_tensor_value_info(RESNET_INPUT, TensorProto.FLOAT, [dim, 3, 224, 224])],
        [helper.make_tensor_value_info(name(ex.nodes[-1].output), TensorProto.FLOAT,
                                       [dim, 1000])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    return helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                             ir_version=helper.find_min_ir_version_for(opsets),
                             doc_string=DESCRIPTIONS["resnet18-qat"])


# ------------------------------------------------------------------ mobilenetv2-qdq
def _amax(b: Builder) -> float:
    return float(b.rng.uniform(3.0, 8.0))


def _conv_qdq(b: Builder, prefix: str, x: str, cin: int, cout: int, k: int, stride: int,
              group: int, amax: float) -> str:
    """Conv with Q/DQ on its input (per tensor) and weight (per channel), then BN."""
    xq = b.qdq(f"{prefix}/input_quantizer", x, amax / INT8_BOUND)
    w = b.he((cout, cin // group, k, k), cin // group * k * k)
    wq = b.qdq_weight(f"{prefix}/weight_quantizer", b.weight(f"{prefix}.weight", w), w)
    pad = (k - 1) // 2
    return b.node("Conv", prefix, [xq, wq], dilations=[1, 1], group=group, kernel_shape=[k, k],
                  pads=[pad] * 4, strides=[stride, stride])


def _conv_bn(b: Builder, prefix: str, x: str, cin: int, cout: int, k: int, stride: int,
             group: int, relu6: bool) -> str:
    y = _conv_qdq(b, f"{prefix}.0", x, cin, cout, k, stride, group, _amax(b))
    y = b.bn(f"{prefix}.1", y, cout)
    if not relu6:
        return y
    bounds = [b.scalar("relu6.min", 0.0), b.scalar("relu6.max", 6.0)]
    return b.node("Clip", f"{prefix}.2", [y, *bounds])


def mobilenetv2_qdq(batch: int | None = None) -> onnx.ModelProto:
    """MobileNetV2 with int8 Q/DQ on every Conv/Gemm input and weight and residual input."""
    b = Builder("mobilenetv2-qdq", SEED_MOBILENETV2_QDQ, batch)
    x = b.input("input", 3, 224, 224)
    x = _conv_bn(b, "features.0", x, 3, 32, 3, 2, 1, relu6=True)
    cin, index = 32, 1
    for t, c, n, s in MOBILENET_CONFIG:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            prefix = f"features.{index}.conv"
            y, j = x, 0
            if t != 1:
                y = _conv_bn(b, f"{prefix}.0", y, cin, hidden, 1, 1, 1, relu6=True)
                j = 1
            y = _conv_bn(b, f"{prefix}.{j}", y, hidden, hidden, 3, stride, hidden, relu6=True)
            y = _conv_qdq(b, f"{prefix}.{j + 1}", y, hidden, c, 1, 1, 1, _amax(b))
            y = b.bn(f"{prefix}.{j + 2}", y, c)
            if stride == 1 and cin == c:
                skip = b.qdq(f"features.{index}/residual_quantizer", x, _amax(b) / INT8_BOUND)
                y = b.node("Add", f"features.{index}.add", [skip, y])
            x, cin, index = y, c, index + 1
    x = _conv_bn(b, f"features.{index}", x, cin, 1280, 1, 1, 1, relu6=True)
    x = b.node("GlobalAveragePool", "avgpool", [x])
    x = b.node("Flatten", "flatten", [x], axis=1)
    xq = b.qdq("classifier.1/input_quantizer", x, _amax(b) / INT8_BOUND)
    w = b.small((1000, 1280), 0.01)
    wq = b.qdq_weight("classifier.1/weight_quantizer", b.weight("classifier.1.weight", w), w)
    bias = b.weight("classifier.1.bias", np.zeros(1000, dtype=np.float32))
    x = b.node("Gemm", "classifier.1", [xq, wq, bias], alpha=1.0, beta=1.0, transB=1)
    return b.model([(x, (1000,))], doc=DESCRIPTIONS["mobilenetv2-qdq"])


# the lines live in fusionlab.zoo.catalog, which `fusionlab models list` reads without importing onnx
DESCRIPTIONS = {name: CATALOG[name] for name in ("resnet18-qat", "mobilenetv2-qdq")}

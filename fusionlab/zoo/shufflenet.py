"""ShuffleNetV2 x1.0 (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design", 2018) as torchvision defines it (``torchvision.models.
shufflenet_v2_x1_0``), written twice: as the dynamo exporter writes it (``shufflenetv2``)
and as the TorchScript exporter does (``shufflenetv2-legacy``). Same network, same
FLOPs; only the export differs, which is the point: the legacy export computes its
channel split and shuffle shapes at run time.

A block with stride 1 splits its input in two (``x.chunk(2, dim=1)``), runs a 1x1, 3x3
depthwise, 1x1 branch on the second half and concatenates; a stride-2 block runs two
branches on the whole input. Each block ends with ``channel_shuffle(out, 2)``:
``view(n, 2, c // 2, h, w)``, ``transpose(1, 2)``, ``view(n, c, h, w)``. BatchNorm is
folded into every convolution by both exporters.

``shufflenetv2``: ``torch.onnx.export(model.eval(), x, f, dynamo=True, opset_version=18,
input_names=["input"], output_names=["output"], dynamic_shapes=({0:
torch.export.Dim("batch_size")},))`` (torch 2.13, onnxscript 0.7.2; opset 18 because the
exporter's opset-17 conversion leaves Split's ``num_outputs``, an invalid model). The
split is one ``Split(num_outputs=2)``; the shuffle's shapes are constants
(``Reshape(x, val_837)`` with ``[-1, 2, 58, 28, 28]``, ``allowzero=1``); the head is
``ReduceMean`` over ``[2, 3]`` and ``Gemm``. Names: see
:class:`~fusionlab.zoo._builder.DynamoBuilder`; the numbered ones follow the exporter's
counters, calibrated on that torch version (:data:`DYNAMO_COUNTERS`).

``shufflenetv2-legacy``: ``torch.onnx.export(..., dynamo=False, opset_version=13,
dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}})`` (opset 17
writes the same graph, with Reshape's ``allowzero=0`` spelled out). ``chunk`` becomes
``Shape -> Gather(1) -> Add(1) -> Div(2) -> Mul(1)`` and ``Mul(2)`` giving the bounds of
two ``Slice`` nodes; the shuffle reads all four dimensions (``Shape -> Gather``),
computes ``Div(c, 2) -> Cast -> Cast``, ``Unsqueeze``-s the scalars and ``Concat``-s
them into the two ``Reshape`` shapes. Names: see :class:`~fusionlab.zoo._builder.TorchScriptBuilder`.

>>> [len(m.graph.node) for m in (shufflenetv2(1), shufflenetv2_legacy(1))]
[173, 902]
"""

from __future__ import annotations

import numpy as np
import onnx

from fusionlab.zoo._builder import DynamoBuilder, TorchScriptBuilder
from fusionlab.zoo.catalog import CATALOG

REPEATS = (4, 8, 4)
CHANNELS = (24, 116, 232, 464, 1024)
"""Blocks per stage and output channels of conv1, stage2-4, conv5 (x1.0)."""
SEED_SHUFFLENETV2 = 1807
RESIDUAL_GAIN = 0.5

DYNAMO_COUNTERS = {"conv": 1057, "split": 839, "split_s1": 13, "split_s2": 15, "mean": 836,
                   "reshape": 837}
"""The dynamo exporter's numbers (torch 2.13, onnxscript 0.7.2). The optimizer's rewrites
count on from 1057: a fused Conv takes one number (its name) and the next; a Reshape
three, the middle one its name. The translation counts 839 before the first block, 15
for a stride-2 block and 13 for a stride-1 block, whose ``Split`` takes the count as it
starts (``node_Split_854`` in ``stage2.1``). The mean's axes are ``val_836``; the k-th
Reshape's shape is ``val_<837 + k>``, equal shapes sharing the first one's name."""


def _blocks() -> list[tuple[str, int, int, int]]:
    """Every block: module path, in channels, out channels, stride."""
    out = []
    cin = CHANNELS[0]
    for s, (n, cout) in enumerate(zip(REPEATS, CHANNELS[1:4], strict=True)):
        for i in range(n):
            out.append((f"stage{s + 2}.{i}", cin if i == 0 else cout, cout, 2 if i == 0 else 1))
        cin = cout
    return out


def _state_dict_size() -> int:
    """torchvision's ``state_dict`` entries: 6 per conv + BN (5 convs in a stride-2 block,
    3 in a stride-1 one, conv1, conv5), 2 for ``fc``."""
    convs = 2 + sum(5 if stride == 2 else 3 for *_, stride in _blocks())
    return 6 * convs + 2


# ---------------------------------------------------------------------- TorchScript
def _conv(b: TorchScriptBuilder, module: str, x: str, cin: int, cout: int, k: int,
          stride: int = 1, gain: float = 1.0) -> str:
    """A conv with BN folded in; the 3x3 ones are depthwise, except the stem's."""
    group = cin if k == 3 and module != "conv1.0" else 1
    return b.folded_conv(module, x, cin, cout, k, stride=stride, group=group, gain=gain)


def _chunk(b: TorchScriptBuilder, m: str, x: str) -> tuple[str, str]:
    """``x.chunk(2, dim=1)``: the split point computed from ``Shape`` at run time."""
    shape = b.emit("Shape", m, [x])
    dim = b.constant(m, [1])
    c = b.emit("Gather", m, [shape, dim], axis=0)
    zero = b.constant(m, [0])
    size = b.emit("Add", m, [c, b.constant(m, [1])])  # (c + chunks - 1) // chunks
    size = b.emit("Div", m, [size, b.constant(m, [2])])
    mid = b.emit("Mul", m, [size, b.constant(m, [1])])
    first = b.emit("Slice", m, [x, zero, mid, dim])
    end = b.emit("Mul", m, [size, b.constant(m, [2])])
    return first, b.emit("Slice", m, [x, mid, end, dim])


def _shuffle_legacy(b: TorchScriptBuilder, m: str, x: str) -> str:
    """``channel_shuffle(x, 2)`` with every shape read from ``x`` at run time."""
    n, c, h, w = (b.emit("Gather", m, [b.emit("Shape", m, [x]), b.constant(m, i)], axis=0)
                  for i in range(4))
    per_group = b.emit("Div", m, [c, b.constant(m, 2)])
    per_group = b.emit("Cast", m, [b.emit("Cast", m, [per_group], to=7)], to=7)
    dims = [b.unsqueeze(m, n), b.constant(m, [2])]
    b.skip()  # the groups literal, made 1-D by folding
    dims += [b.unsqueeze(m, d) for d in (per_group, h, w)]
    y = b.emit("Reshape", m, [x, b.emit("Concat", m, dims, axis=0)])
    y = b.emit("Transpose", m, [y], perm=[0, 2, 1, 3, 4])
    shape = b.emit("Concat", m, [b.unsqueeze(m, d) for d in (n, c, h, w)], axis=0)
    return b.emit("Reshape", m, [y, shape])


def _block_legacy(b: TorchScriptBuilder, m: str, x: str, cin: int, cout: int,
                  stride: int) -> str:
    half = cout // 2
    if stride == 1:
        keep, x2 = _chunk(b, m, x)
    else:
        y1 = _conv(b, f"{m}.branch1.0", x, cin, cin, 3, stride)
        y1 = _conv(b, f"{m}.branch1.2", y1, cin, half, 1)
        keep, x2 = b.emit("Relu", f"{m}.branch1.4", [y1]), x
    y = _conv(b, f"{m}.branch2.0", x2, cin if stride == 2 else half, half, 1)
    y = b.emit("Relu", f"{m}.branch2.2", [y])
    y = _conv(b, f"{m}.branch2.3", y, half, half, 3, stride)
    y = _conv(b, f"{m}.branch2.5", y, half, half, 1, gain=RESIDUAL_GAIN if stride == 1 else 1.0)
    y = b.emit("Relu", f"{m}.branch2.7", [y])
    return _shuffle_legacy(b, m, b.emit("Concat", m, [keep, y], axis=1))


def shufflenetv2_legacy(batch: int | None = None) -> onnx.ModelProto:
    """ShuffleNetV2 x1.0 as the TorchScript exporter writes it (opset 13): 902 nodes."""
    # One value more than the rule (state_dict + 1): the export numbers one extra value
    # before the first shuffle (found by comparing with torch 2.13's export).
    b = TorchScriptBuilder("shufflenetv2-legacy", SEED_SHUFFLENETV2, batch, opset=13,
                           first_id=_state_dict_size() + 2)
    x = b.input("input", 3, 224, 224)
    x = b.emit("Relu", "conv1.2", [_conv(b, "conv1.0", x, 3, CHANNELS[0], 3, 2)])
    x = b.emit("MaxPool", "maxpool", [x], ceil_mode=0, dilations=[1, 1], kernel_shape=[3, 3],
               pads=[1, 1, 1, 1], strides=[2, 2])
    for m, cin, cout, stride in _blocks():
        x = _block_legacy(b, m, x, cin, cout, stride)
    x = b.emit("Relu", "conv5.2", [_conv(b, "conv5.0", x, CHANNELS[3], CHANNELS[4], 1)])
    x = b.emit("ReduceMean", "", [x], axes=[2, 3], keepdims=0)
    x = b.fc("fc", x, CHANNELS[4], 1000)
    return b.model([(x, (1000,))], doc=DESCRIPTIONS["shufflenetv2-legacy"])


# ---------------------------------------------------------------------- dynamo
class _Dynamo:
    """The dynamo export's counters and shared constants while building."""

    def __init__(self, b: DynamoBuilder) -> None:
        self.b = b
        self.rewrite = DYNAMO_COUNTERS["conv"]
        self.split = DYNAMO_COUNTERS["split"]
        self.reshapes = 0
        self.shapes: dict[tuple[int, ...], str] = {}
        self.biases: list[tuple[str, np.ndarray]] = []
        self.constants: list[tuple[str, np.ndarray]] = []

    def conv(self, module: str, x: str, cin: int, cout: int, k: int, stride: int = 1,
             gain: float = 1.0) -> str:
        """Conv with BatchNorm fused in by the optimizer (``<module>.weight_bias``)."""
        b = self.b
        group = cin if k == 3 and module != "conv1.0" else 1
        w = b.he((cout, cin // group, k, k), cin // group * k * k) * np.float32(gain)
        self.biases.append((f"{module}.weight_bias", b.small((cout,), 0.1)))
        out = b.fx("getitem", 3)  # the BatchNorm's three outputs
        pad = (k - 1) // 2
        b.emit_named("Conv", f"node_Conv_{self.rewrite}",
                     [x, b.param(f"{module}.weight", w), self.biases[-1][0]], [out],
                     auto_pad="NOTSET", dilations=[1, 1], group=group, kernel_shape=[k, k],
                     pads=[pad] * 4, strides=[stride, stride])
        self.rewrite += 2
        return out

    def op(self, op: str, fx: str, inputs: list[str], **attrs: object) -> str:
        name = self.b.fx(fx)
        return self.b.emit_named(op, f"node_{name}", inputs, [name], **attrs)

    def reshape(self, x: str, shape: tuple[int, ...]) -> str:
        if shape not in self.shapes:
            self.shapes[shape] = f"val_{DYNAMO_COUNTERS['reshape'] + self.reshapes}"
            self.constants.append((self.shapes[shape], np.array(shape, dtype=np.int64)))
        self.reshapes += 1
        out = self.b.fx("view")
        self.b.emit_named("Reshape", f"node_Reshape_{self.rewrite + 1}",
                          [x, self.shapes[shape]], [out], allowzero=1)
        self.rewrite += 3
        return out

    def block(self, m: str, x: str, cin: int, cout: int, stride: int, size: int) -> str:
        b = self.b
        half = cout // 2
        if stride == 1:
            split = b.fx("split")
            b.fx("getitem", 2)
            keep, x2 = (f"{split}_split_{i}" for i in range(2))
            b.emit_named("Split", f"node_Split_{self.split}", [x], [keep, x2], axis=1,
                         num_outputs=2)
            self.split += DYNAMO_COUNTERS["split_s1"]
        else:
            y1 = self.conv(f"{m}.branch1.0", x, cin, cin, 3, stride)
            y1 = self.conv(f"{m}.branch1.2", y1, cin, half, 1)
            keep, x2 = self.op("Relu", "relu", [y1]), x
            self.split += DYNAMO_COUNTERS["split_s2"]
        y = self.conv(f"{m}.branch2.0", x2, cin if stride == 2 else half, half, 1)
        y = self.op("Relu", "relu", [y])
        y = self.conv(f"{m}.branch2.3", y, half, half, 3, stride)
        y = self.conv(f"{m}.branch2.5", y, half, half, 1,
                      gain=RESIDUAL_GAIN if stride == 1 else 1.0)
        y = self.op("Relu", "relu", [y])
        y = self.op("Concat", "cat", [keep, y], axis=1)
        y = self.reshape(y, (-1, 2, half, size, size))
        y = self.op("Transpose", "transpose", [y], perm=[0, 2, 1, 3, 4])
        return self.reshape(y, (-1, cout, size, size))


def shufflenetv2(batch: int | None = None) -> onnx.ModelProto:
    """ShuffleNetV2 x1.0 as the dynamo exporter writes it (opset 18): 173 nodes."""
    b = DynamoBuilder("shufflenetv2", SEED_SHUFFLENETV2, batch, opset=18)
    d = _Dynamo(b)
    x = b.input("input", 3, 224, 224)
    x = d.op("Relu", "relu", [d.conv("conv1.0", x, 3, CHANNELS[0], 3, 2)])
    x = d.op("MaxPool", "max_pool2d", [x], auto_pad="NOTSET", ceil_mode=0, dilations=[1, 1],
             kernel_shape=[3, 3], pads=[1, 1, 1, 1], storage_order=0, strides=[2, 2])
    size = 56
    for m, cin, cout, stride in _blocks():
        size //= stride
        x = d.block(m, x, cin, cout, stride, size)
    x = d.op("Relu", "relu", [d.conv("conv5.0", x, CHANNELS[3], CHANNELS[4], 1)])
    axes = f"val_{DYNAMO_COUNTERS['mean']}"
    x = d.op("ReduceMean", "mean", [x, axes], keepdims=0, noop_with_empty_axes=0)
    w = b.param("fc.weight", b.small((1000, CHANNELS[4]), 0.01))
    bias = b.param("fc.bias", b.small((1000,), 0.01))
    b.emit_named("Gemm", "node_linear", [x, w, bias], ["output"], alpha=1.0, beta=1.0, transA=0,
                 transB=1)
    # the exporter's initializer order: weights, the mean's axes, fused biases, shapes
    b.param(axes, np.array([2, 3], dtype=np.int64))
    for name, array in [*d.biases, *d.constants]:
        b.param(name, array)
    return b.model([("output", (1000,))], doc=DESCRIPTIONS["shufflenetv2"])


# the lines live in fusionlab.zoo.catalog, which `fusionlab models list` reads without importing onnx
DESCRIPTIONS = {name: CATALOG[name] for name in ("shufflenetv2", "shufflenetv2-legacy")}

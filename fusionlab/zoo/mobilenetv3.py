"""MobileNetV3-Large (Howard et al., "Searching for MobileNetV3", 2019) as torchvision
defines it (``torchvision.models.mobilenet_v3_large``) and as PyTorch's TorchScript ONNX
exporter writes it (``torch.onnx.export(model.eval(), x, f, dynamo=False,
opset_version=17, input_names=["input"], output_names=["output"], dynamic_axes=
{"input": {0: "batch_size"}, "output": {0: "batch_size"}})``, checked against torch 2.13).

What the export writes, and this module reproduces:

- Every BatchNorm is folded into its convolution (``onnx::Conv_<id>`` weight and bias).
- ``nn.Hardswish`` is one ``HardSwish`` node from opset 14; at opset 13 (the
  ``-opset13`` variant) it is ``HardSigmoid(alpha=1/6)`` + ``Mul(x, hardsigmoid)``.
- Squeeze-excitation: ``GlobalAveragePool`` -> ``Conv 1x1`` (``fc1``) -> ``Relu`` ->
  ``Conv 1x1`` (``fc2``) -> ``HardSigmoid(alpha=1/6)`` -> ``Mul(scale, x)``.
- Residual blocks add their input (``Add(block, x)``); the head is GlobalAveragePool,
  Flatten, ``Gemm`` 960 -> 1280, HardSwish, ``Gemm`` 1280 -> 1000 (dropout vanishes).
- Node names are scope paths (``/features/features.4/block/block.2/fc1/Conv``), tensors
  ``<node>_output_0``; see :class:`~fusionlab.zoo._builder.TorchScriptBuilder`.

>>> [len(m.graph.node) for m in (mobilenetv3_large(1), mobilenetv3_large_opset13(1))]
[140, 161]
"""

from __future__ import annotations

import numpy as np
import onnx

from fusionlab.zoo._builder import TorchScriptBuilder, make_divisible
from fusionlab.zoo.catalog import CATALOG

CONFIG: tuple[tuple[int, int, int, int, bool, bool, int], ...] = (
    (16, 3, 16, 16, False, False, 1),
    (16, 3, 64, 24, False, False, 2),
    (24, 3, 72, 24, False, False, 1),
    (24, 5, 72, 40, True, False, 2),
    (40, 5, 120, 40, True, False, 1),
    (40, 5, 120, 40, True, False, 1),
    (40, 3, 240, 80, False, True, 2),
    (80, 3, 200, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 184, 80, False, True, 1),
    (80, 3, 480, 112, True, True, 1),
    (112, 3, 672, 112, True, True, 1),
    (112, 5, 672, 160, True, True, 2),
    (160, 5, 960, 160, True, True, 1),
    (160, 5, 960, 160, True, True, 1),
)
"""Inverted residual blocks: in channels, kernel, expanded channels, out channels,
squeeze-excitation, hard-swish (else ReLU), stride (the paper's Table 1; torchvision's
``_mobilenet_v3_conf``)."""

SEED_MOBILENETV3 = 1905
RESIDUAL_GAIN = 0.3
HARD_SIGMOID_ALPHA = float(np.float32(1 / 6))


def _hardswish(b: TorchScriptBuilder, module: str, x: str) -> str:
    if b.opset >= 14:
        return b.emit("HardSwish", module, [x])
    return b.emit("Mul", module, [x, b.emit("HardSigmoid", module, [x], alpha=HARD_SIGMOID_ALPHA)])


def _conv_bn_act(b: TorchScriptBuilder, module: str, x: str, cin: int, cout: int, k: int,
                 stride: int = 1, group: int = 1, act: str | None = "RE",
                 gain: float = 1.0) -> str:
    """torchvision's ``Conv2dNormActivation`` (conv ``.0``, BN ``.1`` folded, act ``.2``)."""
    y = b.folded_conv(f"{module}.0", x, cin, cout, k, stride=stride, group=group, gain=gain)
    if act == "HS":
        return _hardswish(b, f"{module}.2", y)
    if act == "RE":
        return b.emit("Relu", f"{module}.2", [y])
    return y


def _squeeze_excitation(b: TorchScriptBuilder, module: str, x: str, c: int) -> str:
    squeeze = make_divisible(c // 4, 8)
    s = b.emit("GlobalAveragePool", f"{module}.avgpool", [x])
    s = b.named_conv(f"{module}.fc1", s, c, squeeze, 1)
    s = b.emit("Relu", f"{module}.activation", [s])
    s = b.named_conv(f"{module}.fc2", s, squeeze, c, 1)
    s = b.emit("HardSigmoid", f"{module}.scale_activation", [s], alpha=HARD_SIGMOID_ALPHA)
    return b.emit("Mul", module, [s, x])


def _block(b: TorchScriptBuilder, module: str, x: str, cin: int, k: int, hidden: int, cout: int,
           se: bool, hs: bool, stride: int) -> str:
    residual = stride == 1 and cin == cout
    act = "HS" if hs else "RE"
    y, j = x, 0
    if hidden != cin:
        y = _conv_bn_act(b, f"{module}.block.0", y, cin, hidden, 1, act=act)
        j = 1
    y = _conv_bn_act(b, f"{module}.block.{j}", y, hidden, hidden, k, stride, hidden, act)
    if se:
        j += 1
        y = _squeeze_excitation(b, f"{module}.block.{j}", y, hidden)
    y = _conv_bn_act(b, f"{module}.block.{j + 1}", y, hidden, cout, 1, act=None,
                     gain=RESIDUAL_GAIN if residual else 1.0)
    return b.emit("Add", module, [y, x]) if residual else y


def _state_dict_size() -> int:
    """torchvision's ``state_dict`` entries: 6 per conv + BN, 4 per SE, 4 for the head."""
    conv_bn = 2 + sum(3 if hidden != cin else 2 for cin, _, hidden, *_ in CONFIG)
    se = sum(c[4] for c in CONFIG)
    return 6 * conv_bn + 4 * se + 4


def _mobilenetv3(name: str, opset: int, batch: int | None, doc: str) -> onnx.ModelProto:
    b = TorchScriptBuilder(name, SEED_MOBILENETV3, batch, opset=opset,
                           first_id=_state_dict_size() + 1)
    x = b.input("input", 3, 224, 224)
    x = _conv_bn_act(b, "features.0", x, 3, 16, 3, 2, act="HS")
    for i, cfg in enumerate(CONFIG, start=1):
        x = _block(b, f"features.{i}", x, *cfg)
    x = _conv_bn_act(b, f"features.{len(CONFIG) + 1}", x, 160, 960, 1, act="HS")
    x = b.emit("GlobalAveragePool", "avgpool", [x])
    x = b.emit("Flatten", "", [x], axis=1)
    x = b.fc("classifier.0", x, 960, 1280, scale=0.05)
    x = _hardswish(b, "classifier.1", x)
    x = b.fc("classifier.3", x, 1280, 1000)
    return b.model([(x, (1000,))], doc=doc)


def mobilenetv3_large(batch: int | None = None) -> onnx.ModelProto:
    """MobileNetV3-Large (224x224, 1000 classes) at opset 17: 140 nodes, 5.5 M parameters."""
    return _mobilenetv3("mobilenetv3-large", 17, batch, DESCRIPTIONS["mobilenetv3-large"])


def mobilenetv3_large_opset13(batch: int | None = None) -> onnx.ModelProto:
    """MobileNetV3-Large at opset 13 (hard-swish as HardSigmoid + Mul): 161 nodes."""
    return _mobilenetv3("mobilenetv3-large-opset13", 13, batch,
                        DESCRIPTIONS["mobilenetv3-large-opset13"])


# the lines live in fusionlab.zoo.catalog, which `fusionlab models list` reads without importing onnx
DESCRIPTIONS = {name: CATALOG[name] for name in ("mobilenetv3-large", "mobilenetv3-large-opset13")}

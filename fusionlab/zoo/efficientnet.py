"""EfficientNet-B0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks", 2019) as torchvision defines it (``torchvision.models.efficientnet_b0``)
and as PyTorch's TorchScript ONNX exporter writes it (``torch.onnx.export(model.eval(), x,
f, dynamo=False, opset_version=13, input_names=["input"], output_names=["output"],
dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}})``, checked
against torch 2.13).

What the export writes, and this module reproduces:

- Every BatchNorm is folded into its convolution (constant folding is on by default):
  ``Conv(x, onnx::Conv_<id>, onnx::Conv_<id+1>)``, no BatchNormalization node.
- SiLU is ``Sigmoid`` + ``Mul(x, sigmoid)``; stochastic depth and dropout vanish (eval).
- Squeeze-excitation: ``GlobalAveragePool`` -> ``Conv 1x1`` (``fc1``, bias) -> SiLU ->
  ``Conv 1x1`` (``fc2``) -> ``Sigmoid`` -> ``Mul(scale, x)``; the SE convolutions keep
  their ``state_dict`` names.
- A block whose stride is 1 and whose channels agree adds its input: ``Add(block, x)``.
- Head: ``/avgpool/GlobalAveragePool`` -> ``/Flatten`` -> ``/classifier/classifier.1/Gemm``.
- Node names are scope paths (``/features/features.1/features.1.0/block/block.0/block.0.0/Conv``),
  tensors ``<node>_output_0``; see :class:`~fusionlab.zoo._builder.TorchScriptBuilder`.

>>> m = efficientnet_b0(batch=1)
>>> len(m.graph.node), m.graph.node[3].name
(239, '/features/features.1/features.1.0/block/block.0/block.0.0/Conv')
"""

from __future__ import annotations

import onnx

from fusionlab.zoo._builder import TorchScriptBuilder
from fusionlab.zoo.catalog import CATALOG

CONFIG: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)

"""MBConv stages of B0: expand ratio, kernel, first stride, in and out channels, layers
(torchvision's ``_efficientnet_conf``; the paper's Table 1)."""

SEED_EFFICIENTNET_B0 = 2019
RESIDUAL_GAIN = 0.3
"""Scale of a residual block's projection weights (keeps random activations bounded)."""


def _silu(b: TorchScriptBuilder, module: str, x: str) -> str:
    return b.emit("Mul", module, [x, b.emit("Sigmoid", module, [x])])


def _conv_bn_silu(b: TorchScriptBuilder, module: str, x: str, cin: int, cout: int, k: int,
                  stride: int = 1, group: int = 1, act: bool = True, gain: float = 1.0) -> str:
    """torchvision's ``Conv2dNormActivation`` (conv ``.0``, BN ``.1`` folded, SiLU ``.2``)."""
    y = b.folded_conv(f"{module}.0", x, cin, cout, k, stride=stride, group=group, gain=gain)
    return _silu(b, f"{module}.2", y) if act else y


def _squeeze_excitation(b: TorchScriptBuilder, module: str, x: str, c: int, squeeze: int) -> str:
    s = b.emit("GlobalAveragePool", f"{module}.avgpool", [x])
    s = b.named_conv(f"{module}.fc1", s, c, squeeze, 1)
    s = _silu(b, f"{module}.activation", s)
    s = b.named_conv(f"{module}.fc2", s, squeeze, c, 1)
    s = b.emit("Sigmoid", f"{module}.scale_activation", [s])
    return b.emit("Mul", module, [s, x])


def _mbconv(b: TorchScriptBuilder, module: str, x: str, expand: int, k: int, stride: int,
            cin: int, cout: int) -> str:
    residual = stride == 1 and cin == cout
    hidden = cin * expand
    y, j = x, 0
    if hidden != cin:
        y = _conv_bn_silu(b, f"{module}.block.0", y, cin, hidden, 1)
        j = 1
    y = _conv_bn_silu(b, f"{module}.block.{j}", y, hidden, hidden, k, stride, group=hidden)
    y = _squeeze_excitation(b, f"{module}.block.{j + 1}", y, hidden, max(1, cin // 4))
    y = _conv_bn_silu(b, f"{module}.block.{j + 2}", y, hidden, cout, 1, act=False,
                      gain=RESIDUAL_GAIN if residual else 1.0)
    return b.emit("Add", module, [y, x]) if residual else y


def _state_dict_size() -> int:
    """Entries of torchvision's ``state_dict``: 6 per conv + BN, 4 per SE, 2 for the head."""
    conv_bn = 2  # stem and head convolutions
    blocks = 0
    for expand, _, _, _, _, layers in CONFIG:
        blocks += layers
        conv_bn += layers * (3 if expand != 1 else 2)
    return 6 * conv_bn + 4 * blocks + 2


def efficientnet_b0(batch: int | None = None) -> onnx.ModelProto:
    """EfficientNet-B0 (224x224, 1000 classes), 239 nodes, 5.3 M parameters."""
    b = TorchScriptBuilder("efficientnet-b0", SEED_EFFICIENTNET_B0, batch, opset=13,
                           first_id=_state_dict_size() + 1)
    x = b.input("input", 3, 224, 224)
    x = _conv_bn_silu(b, "features.0", x, 3, 32, 3, 2)
    for s, (expand, k, stride, cin, cout, layers) in enumerate(CONFIG, start=1):
        for i in range(layers):
            x = _mbconv(b, f"features.{s}.{i}", x, expand, k, stride if i == 0 else 1,
                        cin if i == 0 else cout, cout)
    x = _conv_bn_silu(b, f"features.{len(CONFIG) + 1}", x, CONFIG[-1][4], 1280, 1)
    x = b.emit("GlobalAveragePool", "avgpool", [x])
    x = b.emit("Flatten", "", [x], axis=1)
    x = b.fc("classifier.1", x, 1280, 1000)
    return b.model([(x, (1000,))], doc=DESCRIPTION)


DESCRIPTION = CATALOG["efficientnet-b0"]

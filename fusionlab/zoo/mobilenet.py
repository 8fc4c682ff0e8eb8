"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
2018), laid out like torchvision's ``mobilenet_v2`` in eval mode.

Every convolution is followed by BatchNormalization; ReLU6 is ``Clip(min=0, max=6)`` with
the bounds as inputs (opset 11 and newer). Depthwise convolutions have ``group`` equal to
their channels; a block whose stride is 1 and whose input and output channels agree adds
its input back (``Add(x, block(x))``, torchvision's order). Node names are torchvision's
module paths (``features.2.conv.1.0`` is block 2's depthwise convolution) and every
node's output tensor is named after the node.

>>> m = mobilenetv2(batch=1)
>>> sum(n.op_type == "Add" for n in m.graph.node), sum(n.op_type == "Clip" for n in m.graph.node)
(10, 35)
"""

from __future__ import annotations

import onnx

from fusionlab.zoo._builder import Builder
from fusionlab.zoo.catalog import CATALOG

CONFIG: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

"""Inverted residual stages: expansion t, output channels c, repeats n, first stride s
(the paper's Table 2)."""

SEED_MOBILENETV2 = 2018


def _conv_bn_relu6(b: Builder, prefix: str, x: str, cin: int, cout: int, k: int, stride: int,
                   group: int) -> str:
    y = b.conv(f"{prefix}.0", x, cin, cout, k, stride=stride, pad=(k - 1) // 2, group=group)
    y = b.bn(f"{prefix}.1", y, cout)
    bounds = [b.scalar("relu6.min", 0.0), b.scalar("relu6.max", 6.0)]
    return b.node("Clip", f"{prefix}.2", [y, *bounds])


def mobilenetv2(batch: int | None = None) -> onnx.ModelProto:
    """MobileNetV2 (width 1.0, 224x224, 1000 classes)."""
    b = Builder("mobilenetv2", SEED_MOBILENETV2, batch)
    x = b.input("input", 3, 224, 224)
    x = _conv_bn_relu6(b, "features.0", x, 3, 32, 3, 2, 1)
    cin, index = 32, 1
    for t, c, n, s in CONFIG:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            prefix = f"features.{index}.conv"
            y, j = x, 0
            if t != 1:
                y = _conv_bn_relu6(b, f"{prefix}.0", y, cin, hidden, 1, 1, 1)
                j = 1
            y = _conv_bn_relu6(b, f"{prefix}.{j}", y, hidden, hidden, 3, stride, hidden)
            y = b.conv(f"{prefix}.{j + 1}", y, hidden, c, 1)  # linear bottleneck: no ReLU6
            y = b.bn(f"{prefix}.{j + 2}", y, c)
            if stride == 1 and cin == c:
                y = b.node("Add", f"features.{index}.add", [x, y])
            x, cin, index = y, c, index + 1
    x = _conv_bn_relu6(b, f"features.{index}", x, cin, 1280, 1, 1, 1)
    x = b.node("GlobalAveragePool", "avgpool", [x])
    x = b.node("Flatten", "flatten", [x], axis=1)
    x = b.gemm("classifier.1", x, 1280, 1000)
    return b.model([(x, (1000,))], doc=DESCRIPTION)


DESCRIPTION = CATALOG["mobilenetv2"]

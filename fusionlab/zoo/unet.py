"""U-Net (Ronneberger et al., "U-Net: Convolutional Networks for Biomedical Image
Segmentation", 2015) in the layout of the widely used PyTorch implementation
milesial/Pytorch-UNet (``UNet(n_channels=3, n_classes=2, bilinear=False)``), as PyTorch's
TorchScript ONNX exporter writes it in eval mode, without PyTorch.

The network: an encoder of ``DoubleConv`` blocks (3x3 Conv + BatchNorm + ReLU, twice;
64, 128, 256, 512, 1024 channels) joined by 2x2 max poolings; a decoder of 2x2 stride-2
``ConvTranspose`` upsamplings (halving the channels), each concatenated with the encoder
block of the same resolution (``cat([skip, up], 1)``) and followed by a ``DoubleConv``;
a 1x1 Conv to the 2 classes. Input ``input`` [N, 3, 256, 256], output ``output``
[N, 2, 256, 256] (logits). 31,037,698 parameters.

What the export does (checked node for node against ``torch.onnx.export(model, x,
opset_version=13, dynamo=False, input_names=["input"], output_names=["output"],
dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}})`` with torch 2.13
in ``tests/zoo/test_qdq_and_detectors.py``):

- BatchNorm is folded into the convolutions (eval mode): Conv with a bias, no BN node;
  the folded weights are ``onnx::Conv_187``, ``onnx::Conv_188``, ... (value ids: the
  input and the 118 ``state_dict`` entries, one id per traced node output, a Conv and its
  BN two; then three per folded convolution: output, weight, bias). Parameters that
  were not folded keep their names (``up1.up.weight``, ``outc.bias``) and come first.
- Node names are module scopes: ``/inc/double_conv/double_conv.0/Conv``,
  ``/inc/double_conv/double_conv.2/Relu``, ``/down1/maxpool_conv/maxpool_conv.0/MaxPool``,
  ``/up1/up/ConvTranspose``, ``/up1/Concat``, ``/outc/Conv``; outputs
  ``<node>_output_0``, the last one ``output``.

One departure from milesial's code: its ``Up.forward`` pads the upsampled map to the
skip connection's size with ``F.pad`` computed from traced ``x.size()`` values. For
inputs divisible by 16 the pad is zero, but the exporter still writes it as about 60
shape-computation nodes (Shape, Gather, Sub, Div, Cast, ConstantOfShape, Reshape, Slice,
Transpose, Pad) per decoder stage. This model leaves that no-op pad out, as U-Nets
written for fixed sizes do.

>>> m = unet(batch=1)
>>> [n.name for n in m.graph.node][24:26]
['/up1/up/ConvTranspose', '/up1/Concat']
"""

from __future__ import annotations

import numpy as np
import onnx

from fusionlab.zoo._builder import Builder
from fusionlab.zoo.catalog import CATALOG

SEED_UNET = 2015
SIZE = 256
CLASSES = 2
ENCODER = (64, 128, 256, 512, 1024)
BATCH_NAME = "batch_size"

_STATE_DICT = 18 * (1 + 5) + 4 * 2 + 2
"""Conv weights and BN (weight, bias, running mean/var, num_batches_tracked) of the 18
DoubleConv convolutions, the 4 ConvTranspose weights and biases, outc's weight and bias."""
_TRACED = 18 * 2 + 18 + 4 + 4 + 4 + 1
"""Traced node outputs: Conv+BN (two each), ReLU, MaxPool, ConvTranspose, Concat, outc."""
FOLD_BASE = 1 + _STATE_DICT + _TRACED
"""The first value id of the BN folding pass (186)."""


class _Net:
    def __init__(self, b: Builder) -> None:
        self.b = b
        self.folded = 0
        self.weights: list[tuple[str, np.ndarray]] = []
        """Folded conv weights and biases, written after the other initializers."""

    def conv_relu(self, scope: str, x: str, cin: int, cout: int, index: int) -> str:
        """``<scope>.<index>`` Conv (BN folded in: ``onnx::Conv_<id>`` weight and bias) and
        ``<scope>.<index + 2>`` ReLU (the BN between them is ``<scope>.<index + 1>``)."""
        base = FOLD_BASE + 3 * self.folded
        self.folded += 1
        w_name, b_name = f"onnx::Conv_{base + 1}", f"onnx::Conv_{base + 2}"
        self.weights += [(w_name, self.b.he((cout, cin, 3, 3), cin * 9)),
                         (b_name, self.b.small((cout,), 0.1))]
        conv = f"{scope}.{index}/Conv"
        y = self.b.node("Conv", conv, [x, w_name, b_name], f"{conv}_output_0", dilations=[1, 1],
                        group=1, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
        relu = f"{scope}.{index + 2}/Relu"
        return self.b.node("Relu", relu, [y], f"{relu}_output_0")

    def double_conv(self, scope: str, x: str, cin: int, cout: int) -> str:
        s = f"{scope}/double_conv/double_conv"
        return self.conv_relu(s, self.conv_relu(s, x, cin, cout, 0), cout, cout, 3)


def unet(batch: int | None = None) -> onnx.ModelProto:
    """U-Net (milesial layout, ConvTranspose upsampling), 3 -> 2 channels, 256x256."""
    b = Builder("main_graph", SEED_UNET, batch, batch_name=BATCH_NAME)
    net = _Net(b)
    x = b.input("input", 3, SIZE, SIZE)
    skips = [net.double_conv("/inc", x, 3, ENCODER[0])]
    for i in range(1, len(ENCODER)):
        scope = f"/down{i}/maxpool_conv/maxpool_conv"
        pool = f"{scope}.0/MaxPool"
        y = b.node("MaxPool", pool, [skips[-1]], f"{pool}_output_0", ceil_mode=0,
                   dilations=[1, 1], kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
        skips.append(net.double_conv(f"{scope}.1", y, ENCODER[i - 1], ENCODER[i]))
    x = skips.pop()
    for i, cin in enumerate(reversed(ENCODER[1:]), start=1):
        up = f"/up{i}/up/ConvTranspose"
        w = b.weight(f"up{i}.up.weight", b.he((cin, cin // 2, 2, 2), cin))
        bias = b.weight(f"up{i}.up.bias", b.small((cin // 2,), 0.1))
        y = b.node("ConvTranspose", up, [x, w, bias], f"{up}_output_0", dilations=[1, 1], group=1,
                   kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
        y = b.node("Concat", f"/up{i}/Concat", [skips.pop(), y], f"/up{i}/Concat_output_0",
                   axis=1)
        x = net.double_conv(f"/up{i}/conv", y, cin, cin // 2)
    w = b.weight("outc.weight", b.he((CLASSES, ENCODER[0], 1, 1), ENCODER[0]))
    bias = b.weight("outc.bias", np.zeros(CLASSES, dtype=np.float32))
    out = b.node("Conv", "/outc/Conv", [x, w, bias], "output", dilations=[1, 1], group=1,
                 kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1])
    for name, array in net.weights:
        b.weight(name, array)
    return b.model([(out, (CLASSES, SIZE, SIZE))], doc=DESCRIPTION)


DESCRIPTION = CATALOG["unet"]

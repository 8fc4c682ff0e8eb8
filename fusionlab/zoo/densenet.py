"""DenseNet-121 (Huang et al., "Densely Connected Convolutional Networks", 2017) as
torchvision defines it (``torchvision.models.densenet121``) and as PyTorch's TorchScript
ONNX exporter writes it (``torch.onnx.export(model.eval(), x, f, dynamo=False,
opset_version=13, input_names=["input"], output_names=["output"], dynamic_axes=
{"input": {0: "batch_size"}, "output": {0: "batch_size"}})``, checked against torch 2.13).

What the export writes, and this module reproduces:

- Pre-activation dense layers: ``Concat`` of every earlier feature map (the first layer's
  Concat has a single input), ``BatchNormalization`` (``norm1``: it follows a Concat, so
  it cannot be folded and keeps its ``state_dict`` weights), ``Relu``, 1x1 ``Conv``
  (``conv1``, with ``norm2`` folded in: ``onnx::Conv_<id>``), ``Relu``, 3x3 ``Conv``
  (``conv2``, no bias) giving 32 new channels.
- Each dense block ends with the Concat of its input and all new features; transitions
  are BatchNormalization, Relu, 1x1 Conv (halving the channels), 2x2 ``AveragePool``.
- ``features.norm5`` (BatchNormalization), then the functional ``/Relu``,
  ``/GlobalAveragePool``, ``/Flatten``, ``/classifier/Gemm``.
- Node names are scope paths (``/features/denseblock1/denselayer2/norm1/BatchNormalization``),
  tensors ``<node>_output_0``; see :class:`~fusionlab.zoo._builder.TorchScriptBuilder`.

>>> m = densenet121(batch=1)
>>> len(m.graph.node), sum(n.op_type == "BatchNormalization" for n in m.graph.node)
(372, 62)
"""

from __future__ import annotations

import onnx

from fusionlab.zoo._builder import TorchScriptBuilder
from fusionlab.zoo.catalog import CATALOG

BLOCKS = (6, 12, 24, 16)
"""Dense layers per block of DenseNet-121."""
GROWTH, BN_SIZE, INIT_FEATURES = 32, 4, 64
SEED_DENSENET121 = 1608


def _state_dict_size() -> int:
    """torchvision's ``state_dict`` entries: a conv has one, a BatchNorm five."""
    layers = sum(BLOCKS)
    return 6 + 12 * layers + 6 * (len(BLOCKS) - 1) + 5 + 2


def densenet121(batch: int | None = None) -> onnx.ModelProto:
    """DenseNet-121 (growth 32, 224x224, 1000 classes): 372 nodes, 8.0 M parameters."""
    b = TorchScriptBuilder("densenet121", SEED_DENSENET121, batch, opset=13,
                           first_id=_state_dict_size() + 1)
    x = b.input("input", 3, 224, 224)
    x = b.folded_conv("features.conv0", x, 3, INIT_FEATURES, 7, stride=2)
    x = b.emit("Relu", "features.relu0", [x])
    x = b.emit("MaxPool", "features.pool0", [x], ceil_mode=0, dilations=[1, 1],
               kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    c = INIT_FEATURES
    for i, layers in enumerate(BLOCKS, start=1):
        block = f"features.denseblock{i}"
        features = [x]
        for j in range(1, layers + 1):
            m = f"{block}.denselayer{j}"
            cin = c + (j - 1) * GROWTH
            y = b.emit("Concat", m, features, axis=1)
            y = b.batch_norm(f"{m}.norm1", y, cin)
            y = b.emit("Relu", f"{m}.relu1", [y])
            y = b.folded_conv(f"{m}.conv1", y, cin, BN_SIZE * GROWTH, 1)
            y = b.emit("Relu", f"{m}.relu2", [y])
            features.append(b.named_conv(f"{m}.conv2", y, BN_SIZE * GROWTH, GROWTH, 3, bias=False))
        x = b.emit("Concat", block, features, axis=1)
        c += layers * GROWTH
        if i < len(BLOCKS):
            t = f"features.transition{i}"
            x = b.batch_norm(f"{t}.norm", x, c)
            x = b.emit("Relu", f"{t}.relu", [x])
            x = b.named_conv(f"{t}.conv", x, c, c // 2, 1, bias=False)
            x = b.emit("AveragePool", f"{t}.pool", [x], ceil_mode=0, count_include_pad=1,
                       kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
            c //= 2
    x = b.batch_norm("features.norm5", x, c)
    x = b.emit("Relu", "", [x])
    x = b.emit("GlobalAveragePool", "", [x])
    x = b.emit("Flatten", "", [x], axis=1)
    x = b.fc("classifier", x, c, 1000)
    return b.model([(x, (1000,))], doc=DESCRIPTION)


DESCRIPTION = CATALOG["densenet121"]

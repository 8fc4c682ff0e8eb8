"""ConvNeXt-T (Liu et al., "A ConvNet for the 2020s", 2022) as torchvision defines it
(``torchvision.models.convnext_tiny``) and as PyTorch's TorchScript ONNX exporter writes
it (``torch.onnx.export(model.eval(), x, f, dynamo=False, opset_version=17,
input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "batch_size"},
"output": {0: "batch_size"}})``, checked against torch 2.13).

What the export writes, and this module reproduces:

- Stem: ``Conv`` 4x4 stride 4 (bias), then ``LayerNorm2d``: ``Transpose`` to channels-last,
  ``LayerNormalization`` over the channels (opset 17; at opset 13, the ``-opset13``
  variant, ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add), ``Transpose`` back.
- Block: 7x7 depthwise ``Conv`` (bias), ``Transpose`` (``Permute``), LayerNorm, Linear as
  ``MatMul`` with the transposed weight (``onnx::MatMul_<id>``, created by the export) +
  ``Add(bias, ·)``, exact GELU as ``Div(√2)``, ``Erf``, ``Add(1)``, ``Mul``, ``Mul(0.5)``
  (the ``Gelu`` op is opset 20; the TorchScript exporter stops at 17), Linear,
  ``Transpose``, layer scale ``Mul(layer_scale, ·)``, residual ``Add``.
- Downsampling between stages: LayerNorm2d and a 2x2 stride-2 ``Conv``; the head is
  ``GlobalAveragePool``, LayerNorm2d, ``Flatten``, ``Gemm``.
- Node names are scope paths (``/features/features.1/features.1.0/block/block.3/MatMul``),
  tensors ``<node>_output_0``; see :class:`~fusionlab.zoo._builder.TorchScriptBuilder`.

28.6 M parameters (115 MB): generated on demand, never committed.

>>> [len(m.graph.node) for m in (convnext_tiny(1), convnext_tiny_opset13(1))]
[346, 576]
"""

from __future__ import annotations

import numpy as np
import onnx

from fusionlab.zoo._builder import TorchScriptBuilder
from fusionlab.zoo.catalog import CATALOG

STAGES: tuple[tuple[int, int], ...] = ((96, 3), (192, 3), (384, 9), (768, 3))
"""Channels and blocks per stage of ConvNeXt-T."""
LN_EPS = 1e-6
SEED_CONVNEXT_T = 2201


def _layer_norm_2d(b: TorchScriptBuilder, module: str, x: str, c: int) -> str:
    """torchvision's ``LayerNorm2d``: LayerNorm over the channels of an NCHW tensor."""
    y = b.emit("Transpose", module, [x], perm=[0, 2, 3, 1])
    y = b.layer_norm(module, y, c, LN_EPS)
    return b.emit("Transpose", module, [y], perm=[0, 3, 1, 2])


def _block(b: TorchScriptBuilder, module: str, x: str, dim: int) -> str:
    """``CNBlock``: dwconv 7x7, LayerNorm, Linear 4x, GELU, Linear, layer scale, residual."""
    scale = b.param(f"{module}.layer_scale", b.small((dim, 1, 1), 0.1))  # state_dict order
    m = f"{module}.block"
    y = b.named_conv(f"{m}.0", x, dim, dim, 7, group=dim)
    y = b.emit("Transpose", f"{m}.1", [y], perm=[0, 2, 3, 1])
    y = b.layer_norm(f"{m}.2", y, dim, LN_EPS)
    y = b.linear(f"{m}.3", y, dim, 4 * dim)
    y = b.gelu(f"{m}.4", y)
    y = b.linear(f"{m}.5", y, 4 * dim, dim)
    y = b.emit("Transpose", f"{m}.6", [y], perm=[0, 3, 1, 2])
    y = b.emit("Mul", module, [scale, y])
    return b.emit("Add", module, [y, x])


def _state_dict_size() -> int:
    """torchvision's ``state_dict`` entries: stem 4, 9 per block, 4 per downsampling, head 4."""
    return 4 + 9 * sum(n for _, n in STAGES) + 4 * (len(STAGES) - 1) + 4


def _convnext(name: str, opset: int, batch: int | None, doc: str) -> onnx.ModelProto:
    b = TorchScriptBuilder(name, SEED_CONVNEXT_T, batch, opset=opset,
                           first_id=_state_dict_size() + 1)
    x = b.input("input", 3, 224, 224)
    c = STAGES[0][0]
    x = b.named_conv("features.0.0", x, 3, c, 4, stride=4, pad=0)
    x = _layer_norm_2d(b, "features.0.1", x, c)
    index = 1
    for s, (c, blocks) in enumerate(STAGES):
        for i in range(blocks):
            x = _block(b, f"features.{index}.{i}", x, c)
        index += 1
        if s + 1 < len(STAGES):
            x = _layer_norm_2d(b, f"features.{index}.0", x, c)
            x = b.named_conv(f"features.{index}.1", x, c, STAGES[s + 1][0], 2, stride=2, pad=0)
            index += 1
    x = b.emit("GlobalAveragePool", "avgpool", [x])
    x = _layer_norm_2d(b, "classifier.0", x, c)
    x = b.emit("Flatten", "classifier.1", [x], axis=1)
    x = b.fc("classifier.2", x, c, 1000, scale=float(np.sqrt(1.0 / c)))
    return b.model([(x, (1000,))], doc=doc)


def convnext_tiny(batch: int | None = None) -> onnx.ModelProto:
    """ConvNeXt-T (224x224, 1000 classes) at opset 17: 346 nodes, 28.6 M parameters."""
    return _convnext("convnext-t", 17, batch, DESCRIPTIONS["convnext-t"])


def convnext_tiny_opset13(batch: int | None = None) -> onnx.ModelProto:
    """ConvNeXt-T at opset 13, LayerNorm decomposed into nine ops: 576 nodes."""
    return _convnext("convnext-t-opset13", 13, batch, DESCRIPTIONS["convnext-t-opset13"])


# the lines live in fusionlab.zoo.catalog, which `fusionlab models list` reads without importing onnx
DESCRIPTIONS = {name: CATALOG[name] for name in ("convnext-t", "convnext-t-opset13")}

"""RegNetY-400MF (Radosavovic et al., "Designing Network Design Spaces", 2020) as
torchvision defines it (``torchvision.models.regnet_y_400mf``) and as PyTorch's
TorchScript ONNX exporter writes it (``torch.onnx.export(model.eval(), x, f,
dynamo=False, opset_version=13, input_names=["input"], output_names=["output"],
dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}})``, checked
against torch 2.13).

What the export writes, and this module reproduces:

- Stem: Conv 3x3 stride 2 (BN folded, ``onnx::Conv_<id>``) + ``Relu``.
- Each ``ResBottleneckBlock``: a 1x1 projection of the input where the width or stride
  changes (``proj``, run first), then ``f``: Conv 1x1 + Relu (``a``), grouped Conv 3x3
  (group width 8) + Relu (``b``), squeeze-excitation (``se``: ``GlobalAveragePool``,
  Conv 1x1 ``fc1``, Relu, Conv 1x1 ``fc2``, ``Sigmoid``, ``Mul(scale, x)``), Conv 1x1
  (``c``); ``Add(proj or x, f)`` and ``Relu``.
- Head: ``/avgpool/GlobalAveragePool``, ``/Flatten``, ``/fc/Gemm``.
- Node names are scope paths (``/trunk_output/block2/block2-0/f/b/b.0/Conv``), tensors
  ``<node>_output_0``; see :class:`~fusionlab.zoo._builder.TorchScriptBuilder`.

>>> len(regnet_y_400mf(batch=1).graph.node)
217
"""

from __future__ import annotations

import onnx

from fusionlab.zoo._builder import TorchScriptBuilder
from fusionlab.zoo.catalog import CATALOG

STAGES: tuple[tuple[int, int], ...] = ((48, 1), (104, 3), (208, 6), (440, 6))
"""Width and depth of each stage: torchvision's ``BlockParams.from_init_params(depth=16,
w_0=48, w_a=27.89, w_m=2.09, group_width=8, se_ratio=0.25)``, worked out."""
STEM, GROUP_WIDTH, SE_RATIO = 32, 8, 0.25
SEED_REGNET_Y_400MF = 2003
RESIDUAL_GAIN = 0.3


def _block(b: TorchScriptBuilder, m: str, x: str, cin: int, cout: int, stride: int) -> str:
    shortcut = x
    if cin != cout or stride != 1:
        shortcut = b.folded_conv(f"{m}.proj.0", x, cin, cout, 1, stride=stride)
    y = b.emit("Relu", f"{m}.f.a.2", [b.folded_conv(f"{m}.f.a.0", x, cin, cout, 1)])
    y = b.folded_conv(f"{m}.f.b.0", y, cout, cout, 3, stride=stride, group=cout // GROUP_WIDTH)
    y = b.emit("Relu", f"{m}.f.b.2", [y])
    se = f"{m}.f.se"
    s = b.emit("GlobalAveragePool", f"{se}.avgpool", [y])
    squeeze = round(SE_RATIO * cin)
    s = b.emit("Relu", f"{se}.activation", [b.named_conv(f"{se}.fc1", s, cout, squeeze, 1)])
    s = b.emit("Sigmoid", f"{se}.scale_activation", [b.named_conv(f"{se}.fc2", s, squeeze, cout, 1)])
    y = b.emit("Mul", se, [s, y])
    y = b.folded_conv(f"{m}.f.c.0", y, cout, cout, 1, gain=RESIDUAL_GAIN)
    return b.emit("Relu", f"{m}.activation", [b.emit("Add", m, [shortcut, y])])


def _state_dict_size() -> int:
    """torchvision's ``state_dict`` entries: 6 per conv + BN, 4 per SE, 2 for ``fc``."""
    blocks = sum(depth for _, depth in STAGES)
    return 6 + blocks * (3 * 6 + 4) + len(STAGES) * 6 + 2


def regnet_y_400mf(batch: int | None = None) -> onnx.ModelProto:
    """RegNetY-400MF (224x224, 1000 classes): 217 nodes, 4.3 M parameters."""
    b = TorchScriptBuilder("regnet-y-400mf", SEED_REGNET_Y_400MF, batch, opset=13,
                           first_id=_state_dict_size() + 1)
    x = b.input("input", 3, 224, 224)
    x = b.emit("Relu", "stem.2", [b.folded_conv("stem.0", x, 3, STEM, 3, stride=2)])
    cin = STEM
    for i, (cout, depth) in enumerate(STAGES, start=1):
        for j in range(depth):
            x = _block(b, f"trunk_output.block{i}.block{i}-{j}", x, cin, cout, 2 if j == 0 else 1)
            cin = cout
    x = b.emit("GlobalAveragePool", "avgpool", [x])
    x = b.emit("Flatten", "", [x], axis=1)
    x = b.fc("fc", x, cin, 1000)
    return b.model([(x, (1000,))], doc=DESCRIPTION)


DESCRIPTION = CATALOG["regnet-y-400mf"]

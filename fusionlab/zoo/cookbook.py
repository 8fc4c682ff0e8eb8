"""The MNIST network of NVIDIA's TensorRT Cookbook, as the dynamo exporter writes it.

``Net`` in NVIDIA/trt-samples-for-hackathon-cn, ``cookbook/00-Data/get-model-part1.py``:
Conv2d(1->32, 5x5, pad 2) -> ReLU -> MaxPool 2x2 -> Conv2d(32->64, 5x5, pad 2) -> ReLU ->
MaxPool 2x2 -> reshape to [N, 3136] -> Linear(3136->1024) -> ReLU -> Linear(1024->10) = ``y``;
softmax(dim=1) -> argmax(dim=1) = ``z`` (int64). The cookbook exports it with
``torch.onnx.export(model, x, f, input_names=["x"], output_names=["y", "z"],
opset_version=18, dynamo=True, dynamic_shapes={"x": {0: torch.export.Dim("nBS")}},
do_constant_folding=True)``; TensorRT 10.16.1 built that file on an H100 and the
Cookbook published the engine's layer information (records/cookbook-mnist-trt10.16-h100):
this model has the same node names (``node_conv2d``, ``node_relu``, ``node_max_pool2d``,
..., ``node_view``, ``node_linear``, ``node_relu_2``, ``node_linear_1``, ``node_softmax``,
``node_argmax``), tensors and initializers (``conv1.weight`` ... ``gemm2.bias``, the
reshape's ``val_5``), checked against torch 2.13's export of the same module. Weights are
random (the cookbook's are trained); fusion does not depend on them.

>>> m = mnist_cookbook(1)
>>> [n.name for n in m.graph.node][-3:], [o.name for o in m.graph.output]
(['node_linear_1', 'node_softmax', 'node_argmax'], ['y', 'z'])
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from fusionlab.zoo._builder import DynamoBuilder
from fusionlab.zoo.catalog import CATALOG

SEED = 1016
BATCH_NAME = "nBS"
"""The cookbook's symbolic batch (``torch.export.Dim("nBS")``)."""

DESCRIPTION = CATALOG["mnist-cookbook"]


def mnist_cookbook(batch: int | None = None) -> onnx.ModelProto:
    """``Net`` of the TensorRT Cookbook as ``torch.onnx.export(..., dynamo=True)`` writes it."""
    b = DynamoBuilder("mnist-cookbook", SEED, batch, opset=18, batch_name=BATCH_NAME)
    x = b.input("x", 1, 28, 28)
    conv: dict[str, object] = {"auto_pad": "NOTSET", "dilations": [1, 1], "group": 1,
                               "kernel_shape": [5, 5], "pads": [2, 2, 2, 2], "strides": [1, 1]}
    pool: dict[str, object] = {"auto_pad": "NOTSET", "ceil_mode": 0, "dilations": [1, 1],
                               "kernel_shape": [2, 2], "pads": [0, 0, 0, 0], "storage_order": 0,
                               "strides": [2, 2]}
    gemm: dict[str, object] = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}
    for i, (cin, cout) in enumerate(((1, 32), (32, 64)), 1):
        w = b.param(f"conv{i}.weight", b.he((cout, cin, 5, 5), cin * 25))
        bias = b.param(f"conv{i}.bias", b.small((cout,), 0.1))
        name = b.fx("conv2d")
        x = b.emit_named("Conv", f"node_{name}", [x, w, bias], [name], **conv)
        name = b.fx("relu")
        x = b.emit_named("Relu", f"node_{name}", [x], [name])
        name = b.fx("max_pool2d")
        x = b.emit_named("MaxPool", f"node_{name}", [x], [name], **pool)
    params = []
    for i, (cin, cout) in enumerate(((64 * 7 * 7, 1024), (1024, 10)), 1):
        params.append((b.param(f"gemm{i}.weight", b.small((cout, cin), float(np.sqrt(1.0 / cin)))),
                       b.param(f"gemm{i}.bias", b.small((cout,), 0.01))))
    shape = b.param("val_5", np.array([-1, 64 * 7 * 7], dtype=np.int64))
    x = b.emit_named("Reshape", "node_view", [x, shape], ["view"], allowzero=1)
    x = b.emit_named("Gemm", "node_linear", [x, *params[0]], ["linear"], **gemm)
    x = b.emit_named("Relu", "node_relu_2", [x], ["relu_2"])
    y = b.emit_named("Gemm", "node_linear_1", [x, *params[1]], ["y"], **gemm)
    s = b.emit_named("Softmax", "node_softmax", [y], ["softmax"], axis=1)
    b.emit_named("ArgMax", "node_argmax", [s], ["z"], axis=1, keepdims=0, select_last_index=0)
    model = b.model([("y", (10,)), ("z", ())], doc=DESCRIPTION)
    model.graph.output[1].type.tensor_type.elem_type = TensorProto.INT64
    return model

"""torchvision's ResNet-18 and ResNet-50 as PyTorch's legacy TorchScript ONNX exporter
writes them (torch 1.13, ``opset_version=13``, eval mode), without PyTorch.

What the exporter does, and what this module reproduces:

- BatchNorm is folded into the preceding convolution (a Conv with a bias; no BN node).
- Nodes are named ``<OpType>_<index>`` in export order (``Conv_0``, ``Relu_1``,
  ``MaxPool_2``, ...). In a block with a downsample branch the order is conv1, relu,
  conv2 (conv3 for a bottleneck), the downsample conv, ``Add(main, downsample)``, relu.
- The head is ``GlobalAveragePool`` -> ``Flatten`` -> ``Gemm`` (``fc.weight``, ``fc.bias``,
  ``transB=1``).
- The input is ``input.1`` with a dynamic batch named ``batch_size`` (TREx's example
  exported with ``input_names=["input.1"]``, ``dynamic_axes={"input.1": {0: "batch_size"}}``).
- Tensor names follow the exporter: values that a Python variable called ``input`` held
  while tracing are ``input.<k>``; the others are numbered with TorchScript's value ids
  and prefixed with the op type of their first consumer (``onnx::MaxPool_125``); the graph
  output is just its number (``191`` for ResNet-18). Value ids are counted before BN
  folding: the graph inputs (the input and all ``state_dict`` entries) come first, then one
  id per node output (a conv and its BN count two); the folding pass then adds, for each
  convolution in order, a new output (when the BN output had no name), weight and bias
  (``onnx::Conv_193``, ``onnx::Conv_194`` for ResNet-18's first one).

Checked against: the TensorRT engine records in ``records/trex-resnet18-a100``
(every layer and tensor name there), a published ncnn conversion of a torch 1.13
``resnet18`` export (every node and tensor name), and published ResNet-50 names (``Relu_1``
-> ``onnx::MaxPool_323``, ``input.36``, ``onnx::Add_508``, ``input.408``, ``Gemm_121``).

>>> m = resnet18(batch=1)
>>> [n.name for n in m.graph.node][:8]
['Conv_0', 'Relu_1', 'MaxPool_2', 'Conv_3', 'Relu_4', 'Conv_5', 'Add_6', 'Relu_7']
>>> list(m.graph.node[5].input), list(m.graph.node[5].output)
(['onnx::Conv_129', 'onnx::Conv_199', 'onnx::Conv_200'], ['onnx::Add_198'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fusionlab.zoo._builder import OPSET, PRODUCER
from fusionlab.zoo.catalog import CATALOG

BATCH_NAME = "batch_size"
"""The dynamic batch dimension's name in TREx's ResNet export."""

INPUT = "input.1"
SEED_RESNET18, SEED_RESNET50 = 18, 50
RESIDUAL_GAIN = 0.2


@dataclass
class _Op:
    """One node of the traced graph (before BN folding, which keeps the node order)."""

    op: str
    inputs: list[int]
    """Producing op indices; -1 is the graph input."""
    attrs: dict[str, Any] = field(default_factory=dict)
    conv: tuple[int, int, int, int, int] | None = None
    """For a Conv: in channels, out channels, kernel, stride, pad."""
    named: int | None = None
    """``k`` when the exporter names the output ``input.<k>``."""
    gain: float = 1.0
    """Scale of a Conv's random weights (small on a residual branch's last conv, as a
    small folded BN scale would make it, so activations stay bounded through the blocks)."""


def _trace(bottleneck: bool, layers: tuple[int, ...]) -> list[_Op]:
    """The exported node sequence of a torchvision ResNet, with the ``input.<k>`` names.

    ``k`` advances as the tracer hands out the name ``input``: 8 per conv/BN/ReLU unit of
    a block's main path (the BN output, which becomes the folded Conv's output, is named),
    4 for the block's last conv, 4 for a downsample conv, 4 for the Add whose ReLU output
    is named (ResNet-18: input.16, input.24, ..., input.148; ResNet-50: ..., input.408).
    """
    ops: list[_Op] = []

    def add(op: _Op) -> int:
        ops.append(op)
        return len(ops) - 1

    def conv(x: int, cin: int, cout: int, k: int, stride: int, named: int | None = None,
             gain: float = 1.0) -> int:
        pad = (k - 1) // 2
        attrs = {"dilations": [1, 1], "group": 1, "kernel_shape": [k, k], "pads": [pad] * 4,
                 "strides": [stride, stride]}
        return add(_Op("Conv", [x], attrs, (cin, cout, k, stride, pad), named, gain))

    def relu(x: int, named: int | None = None) -> int:
        return add(_Op("Relu", [x], named=named))

    x = relu(conv(-1, 3, 64, 7, 2, named=4))
    x = add(_Op("MaxPool", [x], {"ceil_mode": 0, "kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                 "strides": [2, 2]}, named=8))
    k, cin = 8, 64
    expansion = 4 if bottleneck else 1
    for stage, blocks in enumerate(layers):
        width = 64 * 2**stage
        cout = width * expansion
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            k += 8
            if bottleneck:  # torchvision v1.5: the stride is on the 3x3 convolution
                y = relu(conv(x, cin, width, 1, 1, named=k))
                k += 8
                y = relu(conv(y, width, width, 3, stride, named=k))
                k += 4
                y = conv(y, width, cout, 1, 1, gain=RESIDUAL_GAIN)
            else:
                y = relu(conv(x, cin, width, 3, stride, named=k))
                k += 4
                y = conv(y, width, cout, 3, 1, gain=RESIDUAL_GAIN)
            identity = x
            if stride != 1 or cin != cout:
                k += 4
                identity = conv(x, cin, cout, 1, stride)
            y = add(_Op("Add", [y, identity]))
            k += 4
            x = relu(y, named=k)
            cin = cout
    x = add(_Op("GlobalAveragePool", [x]))
    x = add(_Op("Flatten", [x], {"axis": 1}))
    add(_Op("Gemm", [x], {"alpha": 1.0, "beta": 1.0, "transB": 1}))
    return ops


def _export(bottleneck: bool, layers: tuple[int, ...], seed: int, batch: int | None,
            doc: str) -> onnx.ModelProto:
    ops = _trace(bottleneck, layers)
    n_conv = sum(op.op == "Conv" for op in ops)
    # TorchScript value ids: the input and the state_dict (conv weight; BN weight, bias,
    # running mean, running var, num_batches_tracked; fc weight and bias), then node outputs.
    next_id = 1 + 6 * n_conv + 2
    prefold: list[int] = []
    for op in ops:
        next_id += 2 if op.op == "Conv" else 1
        prefold.append(next_id - 1)  # a Conv's value is its BN's output
    fold_base = next_id  # the folding pass creates new values after all traced ones

    consumer: dict[int, str] = {}
    for op in ops:
        for i in op.inputs:
            consumer.setdefault(i, op.op)

    def tensor(i: int, number: int) -> str:
        if i == -1:
            return INPUT
        if ops[i].named is not None:
            return f"input.{ops[i].named}"
        return f"onnx::{consumer[i]}_{number}" if i in consumer else str(number)

    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    conv_inits: list[onnx.TensorProto] = []
    outputs: list[str] = []
    conv_index = 0
    for i, op in enumerate(ops):
        ins = [outputs[j] if j >= 0 else INPUT for j in op.inputs]
        if op.conv is not None:
            base = fold_base + 3 * conv_index
            conv_index += 1
            out = tensor(i, base)
            cin, cout, k, _, _ = op.conv
            w_name, b_name = f"onnx::Conv_{base + 1}", f"onnx::Conv_{base + 2}"
            w = rng.standard_normal((cout, cin, k, k), dtype=np.float32)
            w *= np.float32(op.gain * np.sqrt(2.0 / (cin * k * k)))
            bias = rng.standard_normal(cout, dtype=np.float32) * np.float32(0.1)
            conv_inits += [numpy_helper.from_array(w, w_name),
                           numpy_helper.from_array(bias, b_name)]
            ins += [w_name, b_name]
        else:
            out = tensor(i, prefold[i])
        if op.op == "Gemm":
            ins += ["fc.weight", "fc.bias"]
        outputs.append(out)
        nodes.append(helper.make_node(op.op, ins, [out], name=f"{op.op}_{i}", **op.attrs))

    classes, features = 1000, 512 * (4 if bottleneck else 1)
    fc_w = rng.standard_normal((classes, features), dtype=np.float32) * np.float32(0.01)
    fc_b = np.zeros(classes, dtype=np.float32)
    inits = [numpy_helper.from_array(fc_w, "fc.weight"), numpy_helper.from_array(fc_b, "fc.bias"),
             *conv_inits]
    dim: int | str = BATCH_NAME if batch is None else batch
    graph = helper.make_graph(
        nodes, "torch_jit",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [dim, 3, 224, 224])],
        [helper.make_tensor_value_info(outputs[-1], TensorProto.FLOAT, [dim, classes])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", OPSET)]
    return helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                             ir_version=helper.find_min_ir_version_for(opsets), doc_string=doc)


def resnet18(batch: int | None = None) -> onnx.ModelProto:
    """torchvision ResNet-18 (BasicBlock, layers 2-2-2-2) as the legacy exporter writes it."""
    return _export(False, (2, 2, 2, 2), SEED_RESNET18, batch, DESCRIPTIONS["resnet18"])


def resnet50(batch: int | None = None) -> onnx.ModelProto:
    """torchvision ResNet-50 (Bottleneck v1.5, layers 3-4-6-3) as the legacy exporter writes it."""
    return _export(True, (3, 4, 6, 3), SEED_RESNET50, batch, DESCRIPTIONS["resnet50"])


# the lines live in fusionlab.zoo.catalog, which `fusionlab models list` reads without importing onnx
DESCRIPTIONS = {name: CATALOG[name] for name in ("resnet18", "resnet50")}

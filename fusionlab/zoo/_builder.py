"""A small helper that the zoo's model builders share: nodes, seeded weights, the model.

Every builder makes its graph the same way, so every model is deterministic (a fixed seed
per model, weights drawn in a fixed order) and serializes to the same bytes each time.

>>> b = Builder("tiny", seed=0)
>>> x = b.input("x", 8, 4, 4)
>>> y = b.conv("conv", x, 8, 16, 3, pad=1)
>>> y = b.bn("conv/bn", y, 16)
>>> y = b.node("Relu", "relu", [y])
>>> m = b.model([(y, (16, 4, 4))], doc="a test")
>>> [n.op_type for n in m.graph.node]
['Conv', 'BatchNormalization', 'Relu']
>>> m.graph.output[0].type.tensor_type.shape.dim[0].dim_param
'N'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
"""The opset of every zoo model (the resnets' exporter wrote 13 too)."""

PRODUCER = "fusionlab.zoo"


class Builder:
    """Collects nodes and initializers of one model; draws weights from one seeded generator.

    ``batch`` None gives a symbolic leading dimension named ``batch_name``.
    """

    def __init__(self, name: str, seed: int, batch: int | None = None,
                 batch_name: str = "N") -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.batch: int | str = batch if batch is not None else batch_name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self._shared: dict[str, str] = {}

    # ------------------------------------------------------------------ values
    def input(self, name: str, *dims: int) -> str:
        """Declare a float32 graph input of shape ``[batch, *dims]``; returns its name."""
        shape = [self.batch, *dims]
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add an initializer; returns its name."""
        self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def scalar(self, name: str, value: float) -> str:
        """A float32 scalar initializer shared by every node that asks for ``name``."""
        if name not in self._shared:
            self._shared[name] = self.weight(name, np.array(value, dtype=np.float32))
        return self._shared[name]

    def he(self, shape: Sequence[int], fan_in: int) -> np.ndarray:
        """He-normal weights (std ``sqrt(2 / fan_in)``), float32."""
        std = np.float32(np.sqrt(2.0 / fan_in))
        return self.rng.standard_normal(tuple(shape), dtype=np.float32) * std

    def small(self, shape: Sequence[int], scale: float = 0.01) -> np.ndarray:
        """Small normal values (biases, shifts), float32."""
        return self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(scale)

    # ------------------------------------------------------------------ nodes
    def node(self, op: str, name: str, inputs: Sequence[str], output: str | None = None,
             **attrs: Any) -> str:
        """Append a node; its output tensor is named ``output`` (default: the node's name)."""
        out = name if output is None else output
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def conv(self, name: str, x: str, cin: int, cout: int, k: int, *, stride: int = 1, pad: int = 0,
             group: int = 1, bias: bool = False, output: str | None = None) -> str:
        """A 2-D convolution with He-normal weights named ``<name>.weight`` (and ``.bias``)."""
        w = self.weight(f"{name}.weight", self.he((cout, cin // group, k, k), cin // group * k * k))
        ins = [x, w]
        if bias:
            ins.append(self.weight(f"{name}.bias", self.small((cout,), 0.1)))
        return self.node("Conv", name, ins, output, dilations=[1, 1], group=group,
                         kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])

    def bn(self, name: str, x: str, c: int, eps: float = 1e-5, output: str | None = None) -> str:
        """BatchNormalization (inference form) with plausible statistics (variance > 0)."""
        scale = 1.0 + self.small((c,), 0.1)
        shift = self.small((c,), 0.1)
        mean = self.small((c,), 0.1)
        var = self.rng.uniform(0.5, 1.5, size=c).astype(np.float32)
        ins = [x] + [self.weight(f"{name}.{p}", a) for p, a in
                     (("scale", scale), ("bias", shift), ("mean", mean), ("var", var))]
        return self.node("BatchNormalization", name, ins, output, epsilon=eps, momentum=0.9)

    def maxpool(self, name: str, x: str, k: int, stride: int, pad: int = 0, ceil: bool = False,
                output: str | None = None) -> str:
        """MaxPool; ``ceil`` rounds the output size up (Caffe's and torchvision's ceil mode)."""
        return self.node("MaxPool", name, [x], output, ceil_mode=int(ceil), kernel_shape=[k, k],
                         pads=[pad] * 4, strides=[stride, stride])

    def gemm(self, name: str, x: str, cin: int, cout: int, output: str | None = None) -> str:
        """A fully connected layer: Gemm with ``transB=1`` (weight ``[cout, cin]``)."""
        w = self.weight(f"{name}.weight", self.small((cout, cin), 0.01))
        b = self.weight(f"{name}.bias", np.zeros(cout, dtype=np.float32))
        return self.node("Gemm", name, [x, w, b], output, alpha=1.0, beta=1.0, transB=1)

    def qdq(self, name: str, x: str, scale: float | np.ndarray, axis: int | None = None) -> str:
        """A symmetric int8 ``QuantizeLinear`` -> ``DequantizeLinear`` pair on ``x``.

        The nodes are ``<name>/QuantizeLinear`` and ``<name>/DequantizeLinear``; the scale
        (a scalar, or one per channel along ``axis``) and the zero point (0, int8) are the
        initializers ``<name>/scale`` and ``<name>/zero_point``. Returns the DQ output.
        """
        s = np.asarray(scale, dtype=np.float32)
        scale_name = self.weight(f"{name}/scale", s)
        zero = self.weight(f"{name}/zero_point", np.zeros(s.shape, dtype=np.int8))
        attrs: dict[str, Any] = {} if axis is None else {"axis": axis}
        q = self.node("QuantizeLinear", f"{name}/QuantizeLinear", [x, scale_name, zero], None,
                      **attrs)
        return self.node("DequantizeLinear", f"{name}/DequantizeLinear", [q, scale_name, zero],
                         None, **attrs)

    def qdq_weight(self, name: str, weight: str, w: np.ndarray) -> str:
        """:meth:`qdq` on a weight initializer, per output channel (``axis=0``), each channel's
        scale its largest magnitude over 127 (max calibration, symmetric int8)."""
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        return self.qdq(name, weight, (amax / 127.0).astype(np.float32), axis=0)

    # ------------------------------------------------------------------ model
    def model(self, outputs: Sequence[tuple[str, Sequence[int]]], *, doc: str,
              graph_name: str | None = None, producer: str = PRODUCER) -> onnx.ModelProto:
        """The finished model: opset 13, the lowest IR version that carries it (7).

        ``outputs`` lists ``(tensor, dims)``; the batch dimension is prepended to ``dims``.
        """
        outs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [self.batch, *dims])
                for name, dims in outputs]
        graph = helper.make_graph(self.nodes, graph_name or self.name, self.inputs, outs,
                                  initializer=self.initializers)
        opsets = [helper.make_opsetid("", OPSET)]
        model = helper.make_model(graph, opset_imports=opsets, producer_name=producer,
                                  ir_version=helper.find_min_ir_version_for(opsets), doc_string=doc)
        return model

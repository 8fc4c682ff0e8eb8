"""A tiny builder for test graphs: ``Net().conv("c1", "x").relu("r1", "c1")...``.

Every op takes the node's name first; the output tensor has the node's name, so the
ASCII sketches above tests read as the code does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fusionlab.ir.graph import Graph, load


class Net:
    """Builds an NCHW float model; ``channels`` tracks each tensor's channel count."""

    def __init__(self, channels: int = 8, size: int = 8, batch: int = 1, seed: int = 0) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.channels = {"x": channels}
        self.size = size
        self.batch = batch
        self.rng = np.random.default_rng(seed)
        self.extra_outputs: list[str] = []

    def _w(self, name: str, shape: Sequence[int]) -> str:
        self.inits.append(
            numpy_helper.from_array(self.rng.standard_normal(shape).astype(np.float32), name)
        )
        return name

    def add_node(
        self, op: str, name: str, inputs: Sequence[str], channels: int, **attrs: Any
    ) -> Net:
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        self.channels[name] = channels
        return self

    def conv(
        self, name: str, src: str, out: int | None = None, k: int = 1, group: int = 1, **attrs: Any
    ) -> Net:
        cin = self.channels[src]
        out = out or cin
        w = self._w(f"{name}.w", [out, cin // group, k, k])
        b = self._w(f"{name}.b", [out])
        pads = attrs.pop("pads", [k // 2] * 4)
        return self.add_node(
            "Conv", name, [src, w, b], out, kernel_shape=[k, k], pads=pads, group=group, **attrs
        )

    def bn(self, name: str, src: str) -> Net:
        c = self.channels[src]
        ins = [src, self._w(f"{name}.s", [c]), self._w(f"{name}.b", [c]), self._w(f"{name}.m", [c])]
        self.inits.append(numpy_helper.from_array(np.ones(c, np.float32), f"{name}.v"))
        return self.add_node("BatchNormalization", name, [*ins, f"{name}.v"], c)

    def op(self, op: str, name: str, *srcs: str, **attrs: Any) -> Net:
        return self.add_node(op, name, list(srcs), self.channels[srcs[0]], **attrs)

    def relu(self, name: str, src: str) -> Net:
        return self.op("Relu", name, src)

    def add(self, name: str, a: str, b: str) -> Net:
        return self.op("Add", name, a, b)

    def concat(self, name: str, *srcs: str) -> Net:
        return self.add_node(
            "Concat", name, list(srcs), sum(self.channels[s] for s in srcs), axis=1
        )

    def maxpool(self, name: str, src: str, k: int = 3) -> Net:
        return self.add_node(
            "MaxPool",
            name,
            [src],
            self.channels[src],
            kernel_shape=[k, k],
            pads=[k // 2] * 4,
            strides=[1, 1],
        )

    # -- explicit quantization (Q/DQ) ------------------------------------------------

    def _scale(self, name: str, scale: float) -> tuple[str, str]:
        self.inits.append(numpy_helper.from_array(np.array(scale, np.float32), f"{name}.scale"))
        self.inits.append(numpy_helper.from_array(np.array(0, np.int8), f"{name}.zp"))
        return f"{name}.scale", f"{name}.zp"

    def q(self, name: str, src: str, scale: float = 0.05) -> Net:
        """QuantizeLinear of ``src`` (per-tensor scale, zero point 0)."""
        s, z = self._scale(name, scale)
        return self.add_node("QuantizeLinear", name, [src, s, z], self.channels.get(src, 0))

    def dq(self, name: str, src: str, scale: float = 0.05) -> Net:
        """DequantizeLinear of ``src``."""
        s, z = self._scale(name, scale)
        return self.add_node("DequantizeLinear", name, [src, s, z], self.channels.get(src, 0))

    def qdq(self, prefix: str, src: str, scale: float = 0.05) -> Net:
        """A Q/DQ pair on ``src``: nodes ``{prefix}.q`` and ``{prefix}.dq`` (the latter's
        output is the dequantized tensor)."""
        return self.q(f"{prefix}.q", src, scale).dq(f"{prefix}.dq", f"{prefix}.q", scale)

    def qconv(
        self, name: str, src: str, out: int | None = None, k: int = 1, *, dq_input: bool = True,
        scale: float = 0.05,
    ) -> Net:
        """A convolution with Q/DQ on its weights (``{name}.wq``, ``{name}.wdq``) and, with
        ``dq_input``, a Q/DQ pair on its input (``{name}.in.q``, ``{name}.in.dq``)."""
        cin = self.channels[src]
        out = out or cin
        w = self._w(f"{name}.w", [out, cin, k, k])
        self.channels[w] = out
        self.q(f"{name}.wq", w, 0.01).dq(f"{name}.wdq", f"{name}.wq", 0.01)
        x = src
        if dq_input:
            self.qdq(f"{name}.in", src, scale)
            x = f"{name}.in.dq"
        return self.add_node(
            "Conv", name, [x, f"{name}.wdq"], out, kernel_shape=[k, k], pads=[k // 2] * 4
        )

    def output(self, *names: str) -> Net:
        self.extra_outputs.extend(names)
        return self

    def model(self) -> onnx.ModelProto:
        produced = {n.output[0] for n in self.nodes}
        consumed = {i for n in self.nodes for i in n.input}
        outs = [n for n in (n.output[0] for n in self.nodes) if n not in consumed] + [
            o for o in self.extra_outputs if o in produced
        ]
        x = helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, [self.batch, self.channels["x"], self.size, self.size]
        )
        ys = [
            helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in dict.fromkeys(outs)
        ]
        g = helper.make_graph(self.nodes, "net", [x], ys, self.inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])

    def graph(self) -> Graph:
        return load(self.model())

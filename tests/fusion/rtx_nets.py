"""Small CNNs for the ``rtx`` tests, and live TensorRT-RTX builds of them.

:class:`CNN` builds NCHW float models (shapes tracked, so pooling and Gemm heads are
right); :func:`random_dag` is the random CNN DAG generator the RTX rules were measured on
(Conv 1x1/3x3 stride 1/2, BatchNormalization 60 %, an activation 80 % — Relu 70 %, else
LeakyRelu, Sigmoid, Tanh, Clip(0, 6), HardSigmoid, HardSwish, SiLU —, residual Adds with
identity or projection shortcuts, Concat of 2-3, Max/AveragePool, GlobalAveragePool +
Flatten + Gemm heads, extra graph outputs). :func:`engine_plan` builds a model with
TensorRT-RTX (skipping when TensorRT-RTX is absent); :func:`kernels` reads a plan's layers as a multiset of node sets.
"""

from __future__ import annotations

import importlib.util
import random
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionlab.plan import Plan


class CNN:
    """An NCHW float model under construction; each method adds one node named ``name``."""

    def __init__(self, shape: Sequence[int] = (1, 16, 16, 16), seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.shapes: dict[str, tuple[int, ...]] = {"x": tuple(shape)}
        self.outputs: list[str] = []
        self.input = "x"

    def _init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def _weight(self, name: str, shape: Sequence[int]) -> str:
        return self._init(name, (self.rng.standard_normal(shape) * 0.1).astype(np.float32))

    def node(self, op: str, inputs: Sequence[str], name: str, shape: Sequence[int], **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        self.shapes[name] = tuple(shape)
        return name

    def conv(self, x: str, cout: int, k: int = 1, stride: int = 1, name: str = "conv", bias: bool = True,
             group: int = 1) -> str:
        n, c, h, w = self.shapes[x]
        pad = k // 2
        ins = [x, self._weight(f"{name}.w", (cout, c // group, k, k))]
        if bias:
            ins.append(self._weight(f"{name}.b", (cout,)))
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        return self.node("Conv", ins, name, (n, cout, ho, wo), kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, group=group)

    def bn(self, x: str, name: str) -> str:
        c = self.shapes[x][1]
        r = self.rng
        ins = [x, self._init(f"{name}.s", (1 + 0.1 * r.standard_normal(c)).astype(np.float32)),
               self._init(f"{name}.b", (0.1 * r.standard_normal(c)).astype(np.float32)),
               self._init(f"{name}.m", (0.1 * r.standard_normal(c)).astype(np.float32)),
               self._init(f"{name}.v", (1 + 0.1 * r.random(c)).astype(np.float32))]
        return self.node("BatchNormalization", ins, name, self.shapes[x], epsilon=1e-5)

    def unary(self, op: str, x: str, name: str, **attrs: object) -> str:
        return self.node(op, [x], name, self.shapes[x], **attrs)

    def act(self, kind: str, x: str, name: str) -> str:
        """An activation: an ONNX op, ``Clip`` (0, 6) or ``SiLU`` (Sigmoid + Mul)."""
        if kind == "Clip":
            lo = self._init(f"{name}.min", np.array(0.0, np.float32))
            hi = self._init(f"{name}.max", np.array(6.0, np.float32))
            return self.node("Clip", [x, lo, hi], name, self.shapes[x])
        if kind == "SiLU":
            s = self.unary("Sigmoid", x, f"{name}_sig")
            return self.node("Mul", [x, s], name, self.shapes[x])
        if kind == "LeakyRelu":
            return self.unary("LeakyRelu", x, name, alpha=0.1)
        return self.unary(kind, x, name)

    def add(self, a: str, b: str, name: str) -> str:
        return self.node("Add", [a, b], name, self.shapes[a])

    def concat(self, xs: Sequence[str], name: str) -> str:
        shape = list(self.shapes[xs[0]])
        shape[1] = sum(self.shapes[x][1] for x in xs)
        return self.node("Concat", list(xs), name, shape, axis=1)

    def pool(self, op: str, x: str, k: int, stride: int, pad: int, name: str) -> str:
        n, c, h, w = self.shapes[x]
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        return self.node(op, [x], name, (n, c, ho, wo), kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4)

    def gap(self, x: str, name: str) -> str:
        n, c, _, _ = self.shapes[x]
        return self.node("GlobalAveragePool", [x], name, (n, c, 1, 1))

    def flatten(self, x: str, name: str) -> str:
        s = self.shapes[x]
        return self.node("Flatten", [x], name, (s[0], int(np.prod(s[1:]))), axis=1)

    def gemm(self, x: str, nout: int, name: str) -> str:
        m, k = self.shapes[x]
        ins = [x, self._weight(f"{name}.w", (nout, k)), self._weight(f"{name}.b", (nout,))]
        return self.node("Gemm", ins, name, (m, nout), transB=1)

    def lrn(self, x: str, name: str, size: int = 5) -> str:
        return self.node("LRN", [x], name, self.shapes[x], size=size, alpha=1e-4, beta=0.75, bias=1.0)

    def transpose(self, x: str, perm: Sequence[int], name: str) -> str:
        return self.node("Transpose", [x], name, [self.shapes[x][p] for p in perm], perm=list(perm))

    def split(self, x: str, sizes: Sequence[int], names: Sequence[str], name: str) -> list[str]:
        """A Split along the channels into ``names``."""
        sizes_t = self._init(f"{name}.sizes", np.array(sizes, np.int64))
        self.nodes.append(helper.make_node("Split", [x, sizes_t], list(names), name=name, axis=1))
        for out, c in zip(names, sizes, strict=True):
            self.shapes[out] = (self.shapes[x][0], c, *self.shapes[x][2:])
        return list(names)

    def qdq(self, x: str, tag: str, scale: float = 0.05) -> str:
        """``x`` -> QuantizeLinear ``<tag>_q`` -> DequantizeLinear ``<tag>_dq`` (int8, per tensor)."""
        sc = self._init(f"{tag}.s", np.array(scale, np.float32))
        zp = self._init(f"{tag}.z", np.array(0, np.int8))
        q = self.node("QuantizeLinear", [x, sc, zp], f"{tag}_q", self.shapes[x])
        return self.node("DequantizeLinear", [q, sc, zp], f"{tag}_dq", self.shapes[x])

    def qconv(self, x: str, cout: int, k: int = 1, name: str = "qconv", bias: bool = True) -> str:
        """An int8 convolution: weights quantized in the graph, per channel (``<name>_wq``, ``<name>_wdq``)."""
        n, c, h, w = self.shapes[x]
        shape = (cout, c, k, k)
        wf = self._weight(f"{name}.wf", shape)
        ws = self._init(f"{name}.ws", np.full(cout, 0.01, np.float32))
        wz = self._init(f"{name}.wz", np.zeros(cout, np.int8))
        wq = self.node("QuantizeLinear", [wf, ws, wz], f"{name}_wq", shape, axis=0)
        wd = self.node("DequantizeLinear", [wq, ws, wz], f"{name}_wdq", shape, axis=0)
        ins = [x, wd] + ([self._weight(f"{name}.b", (cout,))] if bias else [])
        return self.node("Conv", ins, name, (n, cout, h, w), kernel_shape=[k, k], pads=[k // 2] * 4)

    def output(self, *names: str) -> CNN:
        self.outputs.extend(n for n in names if n not in self.outputs)
        return self

    def model(self) -> onnx.ModelProto:
        """The model; with no :meth:`output` call, every tensor no node reads is an output."""
        read = {i for n in self.nodes for i in n.input}
        outs = self.outputs or [n.output[0] for n in self.nodes if n.output[0] not in read]
        ys = [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(self.shapes[o])) for o in outs]
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(self.shapes["x"]))
        m = helper.make_model(helper.make_graph(self.nodes, "rtx", [x], ys, self.inits),
                              opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


OTHER_ACTS = ("LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "SiLU")


def random_dag(seed: int) -> onnx.ModelProto:
    """A random small CNN DAG (deterministic for ``seed``)."""
    r = random.Random(seed)
    channels, size = r.choice([3, 8, 16]), r.choice([16, 32])
    n = CNN((1, channels, size, size), seed=seed)
    live = [n.input]
    count = 0

    def nm(op: str) -> str:
        nonlocal count
        count += 1
        return f"{op}{count}"

    def pick() -> str:  # favour recent tensors
        return live[len(live) - 1 - min(int(r.expovariate(0.8)), len(live) - 1)]

    def act_kind() -> str:
        return "Relu" if r.random() < 0.7 else r.choice(OTHER_ACTS)

    def conv_unit(x: str, cout: int | None = None, stride: int = 1) -> str:
        y = n.conv(x, cout or r.choice([8, 16, 24, 32, 48, 64]), r.choice([1, 3, 3]), stride, nm("conv"))
        if r.random() < 0.6:
            y = n.bn(y, nm("bn"))
        if r.random() < 0.8:
            y = n.act(act_kind(), y, nm("act"))
        return y

    for _ in range(r.randint(4, 12)):
        x = pick()
        s = n.shapes[x]
        roll = r.random()
        if roll < 0.40:
            live.append(conv_unit(x, stride=2 if s[2] >= 16 and r.random() < 0.15 else 1))
        elif roll < 0.55:  # residual block, identity or projection shortcut
            y = conv_unit(x, cout=s[1])
            if r.random() < 0.5:
                y = n.conv(y, s[1], 3, name=nm("conv"))
                if r.random() < 0.6:
                    y = n.bn(y, nm("bn"))
            other = x
            if r.random() < 0.3:
                other = n.conv(x, s[1], 1, name=nm("conv"))
                if r.random() < 0.6:
                    other = n.bn(other, nm("bn"))
            a, b = (y, other) if r.random() < 0.5 else (other, y)
            z = n.add(a, b, nm("add"))
            live.append(n.act(act_kind(), z, nm("act")) if r.random() < 0.7 else z)
        elif roll < 0.70:
            same = [t for t in live if n.shapes[t][2:] == s[2:] and t != x]
            ins = [x, *r.sample(same, min(len(same), r.randint(1, 2)))]
            if len(ins) == 1:
                ins.append(conv_unit(x))
            if r.random() < 0.5:  # fresh producers for the concat
                ins = [conv_unit(x) for _ in range(r.randint(2, 3))]
            live.append(n.concat(ins, nm("concat")))
        elif roll < 0.82:
            if r.random() < 0.5 or s[2] < 4:
                live.append(n.pool("MaxPool", x, 3, 1, 1, nm("maxpool")))
            elif r.random() < 0.5:
                live.append(n.pool("MaxPool", x, 2, 2, 0, nm("maxpool")))
            else:
                k = 2 if r.random() < 0.5 else 3
                live.append(n.pool("AveragePool", x, k, 2, 0 if r.random() < 0.5 else 1, nm("avgpool")))
        elif roll < 0.90:
            live.append(n.act(act_kind(), x, nm("act")))
        else:
            y = conv_unit(x)
            if n.shapes[x] != n.shapes[y]:
                x = n.conv(x, n.shapes[y][1], 1, s[2] // n.shapes[y][2], nm("conv"))
            live.append(n.add(x, y, nm("add")))
    last = live[-1]
    outs = [last]
    if r.random() < 0.5:
        f = n.flatten(n.gap(last, nm("gap")), nm("flatten"))
        outs = [n.gemm(f, r.choice([10, 10, 100, 1000]), nm("gemm"))]
    read = {i for nd in n.nodes for i in nd.input}
    outs += [t for t in live if t not in read and t not in outs and t != n.input]
    if r.random() < 0.2:
        extra = [t for t in live if t not in outs and t != n.input]
        if extra:
            outs.append(r.choice(extra))
    return n.output(*outs).model()


def kernels(plan: Plan) -> Counter[frozenset[str]]:
    """A plan's layers that compute ONNX nodes, as a multiset of node sets."""
    return Counter(frozenset(layer.nodes) for layer in plan.layers if layer.nodes)


def engine_plan(model: onnx.ModelProto) -> Plan:
    """The actual plan of ``model`` built by TensorRT-RTX at batch 1
    (``fusionlab.backends.rtx.build_actual``); skips where TensorRT-RTX is not installed."""
    if not any(importlib.util.find_spec(m) for m in ("tensorrt_rtx", "tensorrt_rtx_bindings")):
        pytest.skip("TensorRT-RTX is not installed (the `rtx` extra)")
    from fusionlab.backends.rtx import build_actual

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx.save(model, path)
        return build_actual(path, batch=1).plan

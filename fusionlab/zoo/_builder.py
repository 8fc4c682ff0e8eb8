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


# ---------------------------------------------------------------------- exporter-style names
EXPORT_BATCH = "batch_size"
"""The symbolic batch of the exporter-style models: PyTorch's tutorial export,
``dynamic_axes={"input": {0: "batch_size"}, "output": {0: "batch_size"}}``."""


def module_scope(module: str) -> str:
    """The scope prefix the TorchScript exporter gives nodes run inside module ``module``.

    Each level of the module path is named after its attribute, with the numeric indices
    of containers kept on the name they index (torch's ``_unqualified_variable_name``):

    >>> module_scope("features.1.0.block.0.0")
    '/features/features.1/features.1.0/block/block.0/block.0.0'
    >>> module_scope("encoder.layers.encoder_layer_0.ln_1"), module_scope("")
    ('/encoder/layers/encoder_layer_0/ln_1', '')
    """
    if not module:
        return ""
    atoms = module.split(".")
    parts = []
    start = 0
    for i, atom in enumerate(atoms):
        if not atom.isnumeric():
            start = i
        parts.append(".".join(atoms[start:i + 1]))
    return "".join(f"/{p}" for p in parts)


class TorchScriptBuilder(Builder):
    """A builder that names everything as ``torch.onnx.export(..., dynamo=False)`` does.

    Checked against torch 2.13 (the rules date from torch 1.13):

    - A node run inside module ``m`` is ``<module_scope(m)>/<OpType>``, with ``_1``, ``_2``
      ... for later nodes of the same type in the same scope; its outputs are
      ``<node>_output_<i>``. The graph output is renamed to ``output`` (``output_names``).
    - Weights keep their ``state_dict`` names, except those the export creates: a
      convolution with its BatchNorm folded in gets ``onnx::Conv_<id>`` weight and bias, a
      Linear on 3-D input a transposed ``onnx::MatMul_<id>`` weight.
    - ``<id>`` numbers are TorchScript value ids: the input and every ``state_dict`` entry
      first (BatchNorm's ``num_batches_tracked`` included), then one per node output in
      export order (a folded BatchNorm still counts its output; :meth:`skip` adds values
      the exporter creates and drops); weights created after tracing (folding,
      transposing) number on from the last traced value.
    - A few nodes made by late passes have no scope: ``<OpType>_<n>`` where ``n`` is the
      node's position in the file plus the number of Constant nodes, outputs
      ``onnx::<ConsumerOp>_<id>`` (:meth:`loose_constant`).

    ``first_id`` is the id of the first node output: the ``state_dict`` size + 1 (the input
    and the ``state_dict`` entries are numbered from 0).
    """

    def __init__(self, name: str, seed: int, batch: int | None, *, opset: int, first_id: int,
                 batch_name: str = EXPORT_BATCH) -> None:
        super().__init__(name, seed, batch, batch_name)
        self.opset = opset
        self.next_id = first_id
        self._counts: dict[tuple[str, str], int] = {}
        self._params: list[onnx.TensorProto] = []
        self._created: list[onnx.TensorProto] = []
        self._pending: list[tuple[str, np.ndarray, int]] = []
        """Created weights: consumer op, array, ids skipped before this one's id."""
        self._loose: set[str] = set()

    # ------------------------------------------------------------------ ids and names
    def skip(self, values: int = 1) -> None:
        """Count ``values`` TorchScript values that the export creates and later drops."""
        self.next_id += values

    def _name(self, op: str, module: str) -> str:
        scope = module_scope(module)
        k = self._counts.get((scope, op), 0)
        self._counts[(scope, op)] = k + 1
        return f"{scope}/{op}" + (f"_{k}" if k else "")

    def emit(self, op: str, module: str, inputs: Sequence[str], *, outputs: int = 1,
             **attrs: Any) -> str:
        """A node in ``module``'s scope; returns its first output (``<name>_output_0``)."""
        name = self._name(op, module)
        outs = [f"{name}_output_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=name, **attrs))
        self.next_id += outputs
        return outs[0]

    def constant(self, module: str, value: Any, dtype: type = np.int64) -> str:
        """A Constant node in ``module``'s scope (a Python number or list of numbers)."""
        array: np.ndarray = np.array(value, dtype=dtype)
        return self.emit("Constant", module, [], value=numpy_helper.from_array(array, ""))

    def loose_constant(self, consumer: str, value: Any, dtype: type = np.int64) -> str:
        """An unscoped Constant (``Constant_<n>`` -> ``onnx::<consumer>_<id>``), as the
        exporter makes the axes of an opset-13 Unsqueeze."""
        out = f"onnx::{consumer}_{self.next_id}"
        array: np.ndarray = np.array(value, dtype=dtype)
        self.nodes.append(helper.make_node("Constant", [], [out], name=out,
                                           value=numpy_helper.from_array(array, "")))
        self._loose.add(out)
        self.next_id += 1
        return out

    def unsqueeze(self, module: str, x: str) -> str:
        """``Unsqueeze(x, axes=[0])`` of a shape scalar (the axes an input from opset 13 on),
        with the unscoped axes Constant the export makes for a shape list."""
        return self.emit("Unsqueeze", module, [x, self.loose_constant("Unsqueeze", [0])])

    # ------------------------------------------------------------------ weights
    def param(self, name: str, array: np.ndarray) -> str:
        """A weight that keeps its ``state_dict`` name."""
        self._params.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def created(self, consumer: str, array: np.ndarray, skip: int = 0) -> str:
        """A weight the export creates after tracing (``onnx::<consumer>_<id>``); ids are
        handed out in :meth:`model` in the order of creation, ``skip`` values before it."""
        name = f"@{len(self._pending)}"
        self._pending.append((consumer, np.asarray(array, order="C"), skip))
        return name

    # ------------------------------------------------------------------ layers
    def folded_conv(self, module: str, x: str, cin: int, cout: int, k: int, *, stride: int = 1,
                    pad: int | None = None, group: int = 1, gain: float = 1.0) -> str:
        """Conv + BatchNorm folded by the export (``onnx::Conv_<id>`` weight and bias);
        ``module`` is the convolution's module path."""
        pad = (k - 1) // 2 if pad is None else pad
        w = self.he((cout, cin // group, k, k), cin // group * k * k) * np.float32(gain)
        b = self.small((cout,), 0.1)
        # ids after tracing: the folded conv's new output, its weight, its bias
        ins = [x, self.created("Conv", w, skip=1), self.created("Conv", b)]
        out = self.emit("Conv", module, ins, dilations=[1, 1], group=group, kernel_shape=[k, k],
                        pads=[pad] * 4, strides=[stride, stride])
        self.next_id += 1  # the BatchNorm's output, folded away
        return out

    def named_conv(self, module: str, x: str, cin: int, cout: int, k: int, *, stride: int = 1,
                   pad: int | None = None, group: int = 1, bias: bool = True,
                   gain: float = 1.0) -> str:
        """A convolution with its ``state_dict`` weights (``<module>.weight``, ``.bias``)."""
        pad = (k - 1) // 2 if pad is None else pad
        w = self.he((cout, cin // group, k, k), cin // group * k * k) * np.float32(gain)
        ins = [x, self.param(f"{module}.weight", w)]
        if bias:
            ins.append(self.param(f"{module}.bias", self.small((cout,), 0.1)))
        return self.emit("Conv", module, ins, dilations=[1, 1], group=group, kernel_shape=[k, k],
                         pads=[pad] * 4, strides=[stride, stride])

    def batch_norm(self, module: str, x: str, c: int, eps: float = 1e-5) -> str:
        """BatchNormalization with ``state_dict`` weights (a BN the export cannot fold)."""
        ins = [x, self.param(f"{module}.weight", 1.0 + self.small((c,), 0.1)),
               self.param(f"{module}.bias", self.small((c,), 0.1)),
               self.param(f"{module}.running_mean", self.small((c,), 0.1)),
               self.param(f"{module}.running_var",
                          self.rng.uniform(0.5, 1.5, size=c).astype(np.float32))]
        attrs: dict[str, Any] = {"epsilon": eps, "momentum": 0.9}
        if self.opset >= 14:
            attrs["training_mode"] = 0
        return self.emit("BatchNormalization", module, ins, **attrs)

    def fc(self, module: str, x: str, cin: int, cout: int, scale: float = 0.01) -> str:
        """``nn.Linear`` on 2-D input: Gemm with the ``state_dict`` weight, ``transB=1``."""
        w = self.param(f"{module}.weight", self.small((cout, cin), scale))
        b = self.param(f"{module}.bias", self.small((cout,), 0.01))
        return self.emit("Gemm", module, [x, w, b], alpha=1.0, beta=1.0, transB=1)

    def linear(self, module: str, x: str, cin: int, cout: int, *, bias_param: str | None = None,
               scale: float | None = None, created_skip: int = 0) -> str:
        """``nn.Linear`` on 3-D or 4-D input: MatMul with the transposed weight (created by
        the export, ``created_skip`` ids after the previous one) + ``Add(bias, ·)``."""
        std = np.float32(np.sqrt(1.0 / cin)) if scale is None else np.float32(scale)
        w = self.rng.standard_normal((cin, cout), dtype=np.float32) * std
        bias = self.param(bias_param or f"{module}.bias", self.small((cout,), 0.01))
        self.skip()  # the traced weight.t(), folded into the created weight
        y = self.emit("MatMul", module, [x, self.created("MatMul", w, created_skip)])
        return self.emit("Add", module, [bias, y])

    def gelu(self, module: str, x: str) -> str:
        """``nn.GELU()`` (exact): ``x * (erf(x / sqrt 2) + 1) * 0.5`` with scalar Constants."""
        y = self.emit("Div", module, [x, self.constant(module, np.sqrt(2.0), np.float32)])
        y = self.emit("Erf", module, [y])
        y = self.emit("Add", module, [y, self.constant(module, 1.0, np.float32)])
        y = self.emit("Mul", module, [x, y])
        return self.emit("Mul", module, [y, self.constant(module, 0.5, np.float32)])

    def layer_norm(self, module: str, x: str, c: int, eps: float = 1e-6, *,
                   params: str | None = None) -> str:
        """LayerNorm over the last axis: one LayerNormalization from opset 17, else the
        opset-13 decomposition (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add).
        ``params`` names the module holding the weights (default ``module``)."""
        p = params or module
        w = self.param(f"{p}.weight", 1.0 + self.small((c,), 0.1))
        b = self.param(f"{p}.bias", self.small((c,), 0.1))
        if self.opset >= 17:
            return self.emit("LayerNormalization", module, [x, w, b], axis=-1, epsilon=eps)
        mean = self.emit("ReduceMean", module, [x], axes=[-1])
        d = self.emit("Sub", module, [x, mean])
        sq = self.emit("Pow", module, [d, self.constant(module, 2.0, np.float32)])
        var = self.emit("ReduceMean", module, [sq], axes=[-1])
        var = self.emit("Add", module, [var, self.constant(module, eps, np.float32)])
        y = self.emit("Div", module, [d, self.emit("Sqrt", module, [var])])
        y = self.emit("Mul", module, [y, w])
        return self.emit("Add", module, [y, b])

    # ------------------------------------------------------------------ model
    def model(self, outputs: Sequence[tuple[str, Sequence[int]]], *, doc: str,
              graph_name: str | None = "main_graph", producer: str = PRODUCER,
              created_gap: int = 0) -> onnx.ModelProto:
        """The finished model at :attr:`opset`, as the exporter lays it out.

        The single output is renamed ``output``; created weights get ids from the last
        traced value on (``created_gap`` more values in between); initializers are the
        ``state_dict`` ones in order, then the created ones; loose nodes are numbered.
        """
        ((last, dims),) = outputs
        rename = {last: "output"}
        next_id = self.next_id + created_gap
        for i, (consumer, array, skip) in enumerate(self._pending):
            next_id += skip
            rename[f"@{i}"] = f"onnx::{consumer}_{next_id}"
            self._created.append(numpy_helper.from_array(array, rename[f"@{i}"]))
            next_id += 1
        n_const = sum(n.op_type == "Constant" for n in self.nodes)
        for pos, n in enumerate(self.nodes):
            for j, t in enumerate(n.input):
                if t in rename:
                    n.input[j] = rename[t]
            for j, t in enumerate(n.output):
                if t in rename:
                    n.output[j] = rename[t]
            if n.name in self._loose:
                n.name = f"{n.op_type}_{pos + n_const}"
        out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [self.batch, *dims])
        graph = helper.make_graph(self.nodes, graph_name or self.name, self.inputs, [out],
                                  initializer=[*self._params, *self._created])
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name=producer,
                                 ir_version=helper.find_min_ir_version_for(opsets), doc_string=doc)


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: ``v`` rounded to a multiple of ``divisor``, never
    more than 10 % below ``v``.

    >>> make_divisible(240 // 4), make_divisible(72 // 4), make_divisible(10)
    (64, 24, 16)
    """
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


DYNAMO_IR_VERSION = 10
"""The IR version the dynamo exporter writes (torch 2.13)."""


class DynamoBuilder(Builder):
    """A builder that names things as ``torch.onnx.export(..., dynamo=True)`` does (torch
    2.13 with onnxscript 0.7; opset 18 is the lowest it writes correctly).

    Nodes translated one-to-one from an FX node are ``node_<fx name>`` with the FX name as
    their output (``node_relu_3`` -> ``relu_3``); FX names count per base name (``relu``,
    ``relu_1``, ...). Nodes that the exporter's optimizer rewrote are ``node_<OpType>_<n>``
    with a counter the caller keeps. Weights keep their ``state_dict`` names (a conv with
    BatchNorm fused in adds ``<conv>.weight_bias``); constants are ``val_<n>``. The
    exporter also writes value_info and per-node metadata (scopes, stack traces); those
    are left out.
    """

    def __init__(self, name: str, seed: int, batch: int | None, *, opset: int = 18,
                 batch_name: str = EXPORT_BATCH) -> None:
        super().__init__(name, seed, batch, batch_name)
        self.opset = opset
        self._fx: dict[str, int] = {}
        self.params: list[onnx.TensorProto] = []
        """Initializers in file order (the caller appends them in the exporter's order)."""

    def fx(self, base: str, count: int = 1) -> str:
        """The next FX name for ``base`` (``relu``, ``relu_1``, ...); ``count`` names are
        used up (a BatchNorm's three ``getitem`` outputs)."""
        k = self._fx.get(base, 0)
        self._fx[base] = k + count
        return base if k == 0 else f"{base}_{k}"

    def emit_named(self, op: str, name: str, inputs: Sequence[str], outputs: Sequence[str],
                   **attrs: Any) -> str:
        """A node with an explicit name and outputs; returns the first output."""
        self.nodes.append(helper.make_node(op, list(inputs), list(outputs), name=name, **attrs))
        return outputs[0]

    def param(self, name: str, array: np.ndarray) -> str:
        """An initializer, appended in call order."""
        self.params.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def model(self, outputs: Sequence[tuple[str, Sequence[int]]], *, doc: str,
              graph_name: str | None = "main_graph", producer: str = PRODUCER) -> onnx.ModelProto:
        """The finished model at :attr:`opset`, IR version 10 as the exporter writes, with
        the initializers in :attr:`params` order."""
        outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [self.batch, *d])
                for n, d in outputs]
        graph = helper.make_graph(self.nodes, graph_name or self.name, self.inputs, outs,
                                  initializer=self.params)
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name=producer,
                                 ir_version=DYNAMO_IR_VERSION, doc_string=doc)

"""Small ONNX models built in code for the executor's tests (an ASCII sketch above each)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _w(rng: np.random.Generator, name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _bn(rng: np.random.Generator, prefix: str, c: int) -> list[onnx.TensorProto]:
    return [
        numpy_helper.from_array((1 + 0.1 * rng.standard_normal(c)).astype(np.float32), f"{prefix}.s"),
        numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), f"{prefix}.b"),
        numpy_helper.from_array((0.1 * rng.standard_normal(c)).astype(np.float32), f"{prefix}.m"),
        numpy_helper.from_array((1 + 0.1 * rng.random(c)).astype(np.float32), f"{prefix}.v"),
    ]


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto], inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "test", inputs, outputs, initializer=inits)
    # IR version 8 (ONNX 1.10+): loadable by older onnxruntime builds too, such as the GPU machine's
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)


def pointwise_model() -> onnx.ModelProto:
    """Pad folding, a BN + Clip epilogue, a PWN chain, LeakyRelu, Tanh, a pooled head::

        x -> Pad(0) -> Conv -> BN -> Clip(0, 6) -> c
        c -> Sigmoid -> s;  Mul(c, s) -> Add(·, bias) -> m          (SiLU + bias: PWN)
        m -> Conv -> LeakyRelu -> Tanh -> AveragePool -> Flatten -> Gemm -> BN -> Softmax -> y
    """
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], name="pad", mode="constant"),
        helper.make_node("Conv", ["p", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "bn1.s", "bn1.b", "bn1.m", "bn1.v"], ["n1"],
                         name="bn1"),
        helper.make_node("Clip", ["n1", "lo", "hi"], ["c"], name="relu6"),
        helper.make_node("Sigmoid", ["c"], ["s"], name="sig"),
        helper.make_node("Mul", ["c", "s"], ["silu"], name="mul"),
        helper.make_node("Add", ["silu", "bias"], ["m"], name="addbias"),
        helper.make_node("Conv", ["m", "w2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
        helper.make_node("LeakyRelu", ["c2"], ["l"], name="leaky", alpha=0.1),
        helper.make_node("Tanh", ["l"], ["t"], name="tanh"),
        helper.make_node("AveragePool", ["t"], ["a"], name="avg", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["a"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], name="fc", transB=1),
        helper.make_node("BatchNormalization", ["g", "bn2.s", "bn2.b", "bn2.m", "bn2.v"], ["gn"],
                         name="bn2"),
        helper.make_node("Softmax", ["gn"], ["y"], name="softmax", axis=1),
    ]
    inits = [
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"),
        _w(rng, "w1", 8, 3, 3, 3), _w(rng, "b1", 8), *_bn(rng, "bn1", 8),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
        _w(rng, "bias", 1, 8, 1, 1), _w(rng, "w2", 6, 8, 1, 1),
        _w(rng, "fw", 5, 6 * 4 * 4), _w(rng, "fb", 5), *_bn(rng, "bn2", 5),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _model(nodes, [x], [y], inits)


def concat_model() -> onnx.ModelProto:
    """Concat elimination with a graph input, nested Concats, Identity and Dropout::

        x -> Conv a -> Relu ─┐
        x ───────────────────┼─ Concat (inner) ─┐
        x -> Conv b ─────────┘                  ├─ Concat (outer) -> Identity -> Dropout -> MaxPool -> y
        x -> Conv c -> Sigmoid ─────────────────┘
    """
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["ca"], name="conva", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["ca"], ["ra"], name="relua"),
        helper.make_node("Conv", ["x", "wb", "bb"], ["cb"], name="convb", kernel_shape=[1, 1]),
        helper.make_node("Concat", ["ra", "x", "cb"], ["inner"], name="cat_inner", axis=1),
        helper.make_node("Conv", ["x", "wc"], ["cc"], name="convc", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["cc"], ["sc"], name="sigc"),
        helper.make_node("Concat", ["inner", "sc"], ["outer"], name="cat_outer", axis=1),
        helper.make_node("Identity", ["outer"], ["ident"], name="ident"),
        helper.make_node("Dropout", ["ident"], ["drop"], name="drop"),
        helper.make_node("MaxPool", ["drop"], ["y"], name="pool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[0, 0, 1, 1]),
    ]
    inits = [_w(rng, "wa", 4, 3, 3, 3), _w(rng, "wb", 5, 3, 1, 1), _w(rng, "bb", 5),
             _w(rng, "wc", 2, 3, 3, 3)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _model(nodes, [x], [y], inits)


def reshape_model() -> onnx.ModelProto:
    """Constant folding (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), MatMul, Softmax::

        x[N,4,3] -> Reshape([N, 12]) -> MatMul(w) -> Relu -> Softmax -> y
    """
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="cat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="reshape"),
        helper.make_node("MatMul", ["r", "w"], ["mm"], name="matmul"),
        helper.make_node("Relu", ["mm"], ["rl"], name="relu"),
        helper.make_node("Softmax", ["rl"], ["y"], name="softmax"),
    ]
    inits = [
        numpy_helper.from_array(np.array(0, np.int64), "zero"),
        numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
        _w(rng, "w", 12, 7),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _model(nodes, [x], [y], inits)


def unsupported_model() -> onnx.ModelProto:
    """``x -> Erf -> y``: an op the executor does not run."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return _model([helper.make_node("Erf", ["x"], ["y"], name="erf")], [x], [y], [])

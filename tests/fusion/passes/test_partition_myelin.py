"""partition_myelin: one graph per trigger where a region forms (per target), one graph per
condition where a node stays out of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fusionlab.fusion.passes.partition_myelin import region_name
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Kind
from tests.fusion.passes.conftest import failed, final, groups, run_pass
from tests.fusion.passes.netbuilder import Net


class Seq:
    """A token-sequence model ``x [1, 4, 8]`` (batch, tokens, channels); every node's output
    is named after the node."""

    def __init__(self, shape: Sequence[int] = (1, 4, 8)) -> None:
        self.shape = list(shape)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(0)

    def const(self, name: str, array: Any) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op: str, name: str, *inputs: str, **attrs: Any) -> Seq:
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return self

    def linear(self, name: str, src: str, cin: int = 8, cout: int = 8) -> Seq:
        """MatMul with a constant weight + bias Add (``nn.Linear`` on 3-D input)."""
        w = self.const(f"{name}.w", self.rng.standard_normal((cin, cout)).astype(np.float32))
        b = self.const(f"{name}.b", np.zeros(cout, np.float32))
        return self.op("MatMul", name, src, w).op("Add", f"{name}/bias", name, b)

    def layernorm(self, name: str, src: str, c: int = 8) -> Seq:
        w = self.const(f"{name}.w", np.ones(c, np.float32))
        b = self.const(f"{name}.b", np.zeros(c, np.float32))
        return self.op("LayerNormalization", name, src, w, b, axis=-1)

    def graph(self, *outputs: str) -> Graph:
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None)
                for o in (outputs or (self.nodes[-1].output[0],))]
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, self.shape)
        g = helper.make_graph(self.nodes, "seq", [x], outs, self.inits)
        return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _head(net: Net) -> Net:
    """A classifier head like the TensorRT Cookbook's MNIST network (its 10.16 record:
    records/cookbook-mnist-trt10.16-h100): conv -> relu -> pool -> reshape -> gemm -> relu ->
    gemm -> softmax -> argmax."""
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    w1 = numpy_helper.from_array(np.ones((16, 8 * 4 * 4), np.float32), "w1")
    w2 = numpy_helper.from_array(np.ones((10, 16), np.float32), "w2")
    net.inits += [shape, w1, w2]
    net.conv("conv", "x").relu("relu", "conv").add_node(
        "MaxPool", "pool", ["relu"], 8, kernel_shape=[2, 2], strides=[2, 2])
    net.add_node("Reshape", "reshape", ["pool", "shape"], 1)
    net.add_node("Gemm", "gemm1", ["reshape", "w1"], 16, transB=1).relu("relu2", "gemm1")
    net.add_node("Gemm", "gemm2", ["relu2", "w2"], 10, transB=1)
    net.add_node("Softmax", "softmax", ["gemm2"], 10, axis=1)
    return net.add_node("ArgMax", "argmax", ["softmax"], 1, axis=1, keepdims=0)


HEAD = frozenset({"reshape", "gemm1", "relu2", "gemm2", "softmax", "argmax"})


# -- fires ------------------------------------------------------------------------------


def test_trt10_gemm_head_is_one_region() -> None:
    #   conv -> relu -> pool -> [reshape -> gemm -> relu -> gemm -> softmax -> argmax]
    g = _head(Net()).graph()
    plan, _ = run_pass("partition_myelin", g, target="trt10")
    (region,) = [layer for layer in plan.layers if layer.kind is Kind.MYELIN]
    assert frozenset(region.nodes) == HEAD
    assert region.name == "{ForeignNode[reshape...argmax]}" and region.rule == "partition_myelin"
    # the CASK passes then fuse the convolution and leave the region alone
    assert groups(final(g, "trt10")) == {frozenset({"conv", "relu"}), frozenset({"pool"}), HEAD}


def test_trt11_as_trt10() -> None:
    g = _head(Net()).graph()
    assert groups(final(g, "trt11")) == groups(final(g, "trt10"))


def test_trt8_attention_is_one_region() -> None:
    #   x -> transpose ─┐
    #   x ───────────── matmul(x, xᵀ) -> softmax -> matmul(·, x)
    s = Seq().op("Transpose", "kt", "x", perm=[0, 2, 1]).op("MatMul", "qk", "x", "kt")
    g = s.op("Softmax", "p", "qk", axis=-1).op("MatMul", "pv", "p", "x").graph()
    plan, _ = run_pass("partition_myelin", g, target="trt8")
    assert groups(plan) == {frozenset({"kt", "qk", "p", "pv"})}
    assert plan.layers[0].kind is Kind.MYELIN


def test_trt8_layernorm_takes_in_the_linear_layers_around_it() -> None:
    #   x -> [layernorm -> matmul(W) + b -> relu -> matmul(W) + b]
    s = Seq().layernorm("ln", "x").linear("fc1", "ln").op("Relu", "act", "fc1/bias")
    g = s.linear("fc2", "act").graph()
    plan, _ = run_pass("partition_myelin", g, target="trt8")
    assert groups(plan) == {frozenset({"ln", "fc1", "fc1/bias", "act", "fc2", "fc2/bias"})}


def test_decomposed_layernorm_is_a_trigger() -> None:
    #   x -> ReduceMean ─> Sub(x, mean) -> Pow -> ReduceMean -> Add(eps) -> Sqrt -> Div
    s = Seq()
    two, eps = s.const("two", np.float32(2.0)), s.const("eps", np.float32(1e-6))
    s.op("ReduceMean", "mean", "x", axes=[-1]).op("Sub", "d", "x", "mean")
    s.op("Pow", "sq", "d", two).op("ReduceMean", "var", "sq", axes=[-1]).op("Add", "v", "var", eps)
    g = s.op("Sqrt", "std", "v").op("Div", "y", "d", "std").graph()
    plan, _ = run_pass("partition_myelin", g, target="trt8")
    assert groups(plan) == {frozenset({"mean", "d", "sq", "var", "v", "std", "y"})}


def test_one_node_region_is_named_after_it() -> None:
    assert region_name(("node_linear",)) == "{ForeignNode[node_linear]}"
    g = Seq().linear("fc", "x").graph()
    plan, _ = run_pass("partition_myelin", g, target="trt10")
    assert plan.layers[0].name == "{ForeignNode[fc...fc/bias]}"


# -- does not fire ------------------------------------------------------------------------


def test_condition1_trt8_keeps_a_fully_connected_head_cask() -> None:
    #   trt8: a Gemm on its own is a CASK convolution (records/trex-resnet18-a100 Gemm_48)
    g = _head(Net()).graph()
    plan, ctx = run_pass("partition_myelin", g, target="trt8")
    assert not any(layer.kind is Kind.MYELIN for layer in plan.layers)
    assert failed(ctx) == {1}
    assert frozenset({"gemm1", "relu2"}) in groups(final(g, "trt8"))


def test_condition1_point_wise_alone_is_no_region() -> None:
    #   x -> sigmoid -> mul(x, ·) : point-wise ops alone never start a region
    g = Seq().op("Sigmoid", "s", "x").op("Mul", "m", "x", "s").graph()
    plan, ctx = run_pass("partition_myelin", g, target="trt10")
    assert plan.layers == run_pass("fold_constants", g)[0].layers
    assert failed(ctx) == set()


def test_condition2_convolution_and_spatial_mean_stay_cask() -> None:
    #   x -> conv -> relu -> ReduceMean(H, W) -> [gemm]   (the mean becomes pooling)
    net = Net()
    net.inits.append(numpy_helper.from_array(np.ones((4, 8), np.float32), "w"))
    net.conv("conv", "x").relu("relu", "conv")
    net.add_node("ReduceMean", "mean", ["relu"], 8, axes=[2, 3], keepdims=0)
    g = net.add_node("Gemm", "fc", ["mean", "w"], 4, transB=1).graph()
    plan, ctx = run_pass("partition_myelin", g, target="trt10")
    assert frozenset({"fc"}) in groups(plan) and plan.layer_of("fc").kind is Kind.MYELIN  # type: ignore[union-attr]
    assert plan.layer_of("mean").kind is not Kind.MYELIN  # type: ignore[union-attr]
    assert 2 in failed(ctx)


def test_condition3_a_convolutions_point_wise_epilogue_stays_with_it() -> None:
    #   x -> conv -> sigmoid -> [layernorm]   the sigmoid is the conv's epilogue
    net = Net()
    net.conv("conv", "x").op("Sigmoid", "sig", "conv")
    net.inits += [numpy_helper.from_array(np.ones(8, np.float32), n) for n in ("g", "b")]
    g = net.add_node("LayerNormalization", "ln", ["sig", "g", "b"], 8, axis=-1).graph()
    plan, ctx = run_pass("partition_myelin", g, target="trt8")
    assert frozenset({"ln"}) in groups(plan) and plan.layer_of("ln").kind is Kind.MYELIN  # type: ignore[union-attr]
    assert failed(ctx) == {3}
    assert frozenset({"conv", "sig"}) in groups(final(g, "trt8", "fp16"))


def test_condition4_a_region_stays_convex() -> None:
    #   x -> [ln] ─> conv -> transpose ─┐
    #          └──────────────────── add      the add cannot join ln: ln -> conv -> add
    net = Net()
    net.inits += [numpy_helper.from_array(np.ones(8, np.float32), n) for n in ("g", "b")]
    net.add_node("LayerNormalization", "ln", ["x", "g", "b"], 8, axis=-1)
    net.conv("conv", "ln").op("Transpose", "t", "conv", perm=[0, 1, 2, 3])
    g = net.add("add", "ln", "t").graph()
    plan, ctx = run_pass("partition_myelin", g, target="trt8")
    assert frozenset({"ln"}) in groups(plan)
    assert plan.layer_of("add").kind is not Kind.MYELIN  # type: ignore[union-attr]
    assert 4 in failed(ctx)


def test_classic_has_no_myelin() -> None:
    g = _head(Net()).graph()
    plan, ctx = run_pass("partition_myelin", g, target="classic")
    assert not any(layer.kind is Kind.MYELIN for layer in plan.layers) and not ctx.rejections

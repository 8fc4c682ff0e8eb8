"""fuse_conv_pool, fuse_shuffles, fuse_softmax_topk, fuse_matmul_bias: one graph where each
fires, one graph per condition where it must not."""

from __future__ import annotations

import numpy as np
import pytest

from fusionlab.fusion import qdq
from fusionlab.fusion.passes.fuse_shuffles import _of_layer
from tests.fusion.passes.conftest import failed, final, groups, run_pass
from tests.fusion.passes.netbuilder import Net
from tests.fusion.passes.test_partition_myelin import Seq


def _cbr_pool(net: Net | None = None) -> Net:
    #   x -> conv -> bn -> relu -> maxpool
    return (net or Net()).conv("conv", "x").bn("bn", "conv").relu("relu", "bn").maxpool("pool", "relu")


def _until(name: str, g, target: str = "trt10", precision: str = "fp32"):  # type: ignore[no-untyped-def]
    """The plan just before pass ``name`` of ``target``."""
    from fusionlab.fusion.predictor import predict

    p = predict(g, target, precision)
    names = [s.name for s in p.stages]
    return p.stages[names.index(name) - 1].plan


# -- fuse_conv_pool -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["trt8", "trt10"])
def test_conv_pool_fuses_at_int8(target: str) -> None:
    g = _cbr_pool().graph()
    plan = final(g, target, "int8")
    assert frozenset({"conv", "bn", "relu", "pool"}) in groups(plan)
    assert plan.layer_of("pool").name == "conv + bn + relu + pool"  # type: ignore[union-attr]


def test_conv_pool_condition1_pool_after_pool() -> None:
    g = Net().maxpool("p1", "x").maxpool("pool", "p1").graph()
    _, ctx = run_pass("fuse_conv_pool", g, target="trt8", precision="int8")
    assert failed(ctx) == {1}


def test_conv_pool_condition2_conv_output_read_twice() -> None:
    g = _cbr_pool(Net()).relu("other", "relu").graph()
    plan, ctx = run_pass("fuse_conv_pool", g, target="trt8", precision="int8",
                         plan=_until("fuse_conv_pool", g, "trt8", "int8"))
    assert frozenset({"pool"}) in groups(plan) and failed(ctx) == {2}


@pytest.mark.parametrize(("target", "precision"), [("trt10", "fp32"), ("trt10", "fp16")])
def test_conv_pool_condition3_not_at_this_precision(target: str, precision: str) -> None:
    #   fp32: the cookbook's TensorRT 10.16 record keeps them apart
    g = _cbr_pool().graph()
    plan, ctx = run_pass("fuse_conv_pool", g, target=target, precision=precision,
                         plan=_until("fuse_conv_pool", g, target, precision))
    assert frozenset({"pool"}) in groups(plan) and failed(ctx) == {3}


@pytest.mark.parametrize("target", ["trt8", "trt10", "trt11"])
def test_conv_pool_condition3_explicit_int8(target: str) -> None:
    """x -> q -> dq -> conv (Q/DQ weights) -> relu -> maxpool: Q/DQ INT8 is explicit, the rule
    is implicit INT8's (the QAT record keeps Conv_9 and MaxPool_12 apart; trt11 has no
    implicit INT8 at all)."""
    g = Net().qconv("conv", "x").relu("relu", "conv").maxpool("pool", "relu").graph()
    plan, ctx = run_pass("fuse_conv_pool", g, target=target, precision="int8",
                         plan=_until("fuse_conv_pool", g, target, "int8"))
    assert frozenset({"pool"}) in groups(plan) and failed(ctx) == {3}
    assert ctx.rejections[0].detail == qdq.NOT_IMPLICIT
    assert frozenset({"pool"}) in groups(final(g, target, "int8"))


# -- fuse_shuffles ------------------------------------------------------------------------


def _channel_shuffle() -> Seq:
    #   x [1,8,4,4] -> reshape [1,2,4,4,4] -> transpose(0,2,1,3,4) -> reshape [1,8,4,4] -> relu
    s = Seq((1, 8, 4, 4))
    s.op("Reshape", "r1", "x", s.const("s5", np.array([1, 2, 4, 4, 4], np.int64)))
    s.op("Transpose", "t", "r1", perm=[0, 2, 1, 3, 4])
    return s.op("Reshape", "r2", "t", s.const("s4", np.array([1, 8, 4, 4], np.int64)))


def test_shuffles_reshape_and_transpose_are_one_shuffle() -> None:
    g = _channel_shuffle().op("Relu", "relu", "r2").graph()
    plan, ctx = run_pass("fuse_shuffles", g)
    assert groups(plan) == {frozenset({"r1", "t"}), frozenset({"r2"}), frozenset({"relu"})}
    assert plan.layer_of("t").kind == "Shuffle" and failed(ctx) == {3}  # type: ignore[union-attr]


def test_shuffles_transposes_that_cancel_let_two_reshapes_fuse() -> None:
    s = Seq((1, 8, 4, 4))
    s.op("Reshape", "r1", "x", s.const("s", np.array([1, 8, 16], np.int64)))
    s.op("Transpose", "t1", "r1", perm=[0, 2, 1]).op("Transpose", "t2", "t1", perm=[0, 2, 1])
    g = s.op("Reshape", "r2", "t2", s.const("s4", np.array([1, 8, 4, 4], np.int64))).graph()
    plan, _ = run_pass("fuse_shuffles", g)
    assert groups(plan) == {frozenset({"r1", "t1", "t2", "r2"})}
    assert _of_layer(g, ["r1", "t1", "t2", "r2"]) == (None, True, None)


def test_shuffles_condition1_a_shuffle_then_compute() -> None:
    g = Seq().op("Transpose", "t", "x", perm=[0, 2, 1]).op("Relu", "relu", "t").graph()
    plan, ctx = run_pass("fuse_shuffles", g)
    assert len(plan.layers) == 2 and failed(ctx) == set()


def test_shuffles_condition2_output_read_twice() -> None:
    s = Seq().op("Transpose", "t", "x", perm=[0, 2, 1]).op("Transpose", "t2", "t", perm=[0, 2, 1])
    g = s.op("Relu", "relu", "t").graph("t2", "relu")
    plan, ctx = run_pass("fuse_shuffles", g)
    assert frozenset({"t"}) in groups(plan) and failed(ctx) == {2}


def test_shuffles_condition3_two_reshapes_around_a_transpose() -> None:
    g = _channel_shuffle().graph()
    _, ctx = run_pass("fuse_shuffles", g)
    assert failed(ctx) == {3}


# -- fuse_softmax_topk ----------------------------------------------------------------------


def _softmax_argmax(argmax_axis: int = 1) -> Seq:
    s = Seq((1, 10))
    return s.op("Softmax", "sm", "x", axis=1).op("ArgMax", "am", "sm", axis=argmax_axis, keepdims=0)


def test_softmax_argmax_is_one_layer() -> None:
    g = _softmax_argmax().graph()
    plan, _ = run_pass("fuse_softmax_topk", g, target="trt8")
    assert groups(plan) == {frozenset({"sm", "am"})} and plan.layers[0].kind == "SoftMax"


def test_softmax_log_is_one_layer() -> None:
    g = Seq((1, 10)).op("Softmax", "sm", "x", axis=1).op("Log", "log", "sm").graph()
    plan, _ = run_pass("fuse_softmax_topk", g, target="trt8")
    assert groups(plan) == {frozenset({"sm", "log"})}


def test_softmax_topk_condition1_argmax_of_no_softmax() -> None:
    g = Seq((1, 10)).op("Relu", "r", "x").op("ArgMax", "am", "r", axis=1, keepdims=0).graph()
    _, ctx = run_pass("fuse_softmax_topk", g, target="trt8")
    assert failed(ctx) == {1}


def test_softmax_topk_condition2_softmax_is_an_output() -> None:
    g = _softmax_argmax().graph("sm", "am")
    plan, ctx = run_pass("fuse_softmax_topk", g, target="trt8")
    assert len(plan.layers) == 2 and failed(ctx) == {2}


def test_softmax_topk_condition3_other_axis() -> None:
    s = Seq((1, 4, 10)).op("Softmax", "sm", "x", axis=2)
    g = s.op("ArgMax", "am", "sm", axis=1, keepdims=0).graph()
    _, ctx = run_pass("fuse_softmax_topk", g, target="trt8")
    assert failed(ctx) == {3}


def test_trt10_puts_softmax_argmax_in_the_region_instead() -> None:
    """After a Gemm on trt10 the Myelin region takes both (the cookbook record)."""
    s = Seq((1, 8))
    s.op("Gemm", "fc", "x", s.const("w", np.ones((10, 8), np.float32)), transB=1)
    g = s.op("Softmax", "sm", "fc", axis=1).op("ArgMax", "am", "sm", axis=1, keepdims=0).graph()
    assert groups(final(g, "trt10")) == {frozenset({"fc", "sm", "am"})}
    assert groups(final(g, "trt8")) == {frozenset({"fc"}), frozenset({"sm", "am"})}


# -- fuse_matmul_bias -----------------------------------------------------------------------


def test_matmul_bias_is_one_fully_connected_layer_on_trt8() -> None:
    g = Seq().linear("fc", "x").op("Relu", "act", "fc/bias").graph()
    plan = final(g, "trt8")
    assert groups(plan) == {frozenset({"fc", "fc/bias", "act"})}  # + the activation, as a conv
    assert plan.layers[0].kind == "FullyConnected"


def test_matmul_bias_condition1_matmul_of_two_activations() -> None:
    s = Seq().op("Transpose", "t", "x", perm=[0, 2, 1]).op("MatMul", "mm", "x", "t")
    g = s.op("Add", "add", "mm", s.const("b", np.zeros(4, np.float32))).graph()
    plan, ctx = run_pass("fuse_matmul_bias", g, target="trt8")
    assert frozenset({"add"}) in groups(plan) and failed(ctx) == set()


def test_matmul_bias_condition2_matmul_output_read_twice() -> None:
    s = Seq().linear("fc", "x")
    g = s.op("Relu", "r", "fc").graph("fc/bias", "r")
    plan, ctx = run_pass("fuse_matmul_bias", g, target="trt8")
    assert frozenset({"fc/bias"}) in groups(plan) and failed(ctx) == {2}


def test_matmul_bias_condition3_not_a_bias() -> None:
    #   the constant varies along the token axis too: an element-wise add, not a bias
    s = Seq()
    s.op("MatMul", "fc", "x", s.const("w", np.ones((8, 8), np.float32)))
    g = s.op("Add", "add", "fc", s.const("b", np.ones((4, 8), np.float32))).graph()
    _, ctx = run_pass("fuse_matmul_bias", g, target="trt8")
    assert failed(ctx) == {3}



# -- fuse_depthwise_separable ---------------------------------------------------------------


def _dw_pw(net: Net | None = None) -> Net:
    #   x -> [dw 3x3 + relu] -> [conv 1x1 + relu]
    net = net or Net()
    return net.conv("dw", "x", k=3, group=8).relu("r1", "dw").conv("pw", "r1", out=16).relu("r2", "pw")


@pytest.mark.parametrize("target", ["trt8", "trt10"])
def test_depthwise_separable_at_int8(target: str) -> None:
    plan = final(_dw_pw().graph(), target, "int8")
    assert groups(plan) == {frozenset({"dw", "r1", "pw", "r2"})}


def test_depthwise_separable_condition1_projection_without_activation() -> None:
    #   MobileNetV2's linear bottleneck: dw + relu6 -> 1x1 (no activation): no DepSepConvolution
    g = Net().conv("dw", "x", k=3, group=8).relu("r1", "dw").conv("pw", "r1", out=16).graph()
    plan = final(g, "trt8", "int8")
    assert frozenset({"pw"}) in groups(plan)


def test_depthwise_separable_condition2_depthwise_output_read_twice() -> None:
    g = _dw_pw().relu("r3", "r1").graph()
    plan = final(g, "trt8", "int8")
    assert frozenset({"pw", "r2"}) in groups(plan)
    _, ctx = run_pass("fuse_depthwise_separable", g, target="trt8", precision="int8",
                      plan=_until("fuse_depthwise_separable", g, "trt8", "int8"))
    assert failed(ctx) == {2}


@pytest.mark.parametrize(("target", "precision"), [("trt8", "fp16"), ("trt10", "fp32")])
def test_depthwise_separable_condition3_not_at_this_precision(target: str, precision: str) -> None:
    g = _dw_pw().graph()
    plan, ctx = run_pass("fuse_depthwise_separable", g, target=target, precision=precision,
                         plan=_until("fuse_depthwise_separable", g, target, precision))
    assert frozenset({"pw", "r2"}) in groups(plan) and failed(ctx) == {3}


@pytest.mark.parametrize("target", ["trt8", "trt10", "trt11"])
def test_depthwise_separable_condition3_explicit_int8(target: str) -> None:
    """x -> in.q -> in.dq -> [dw 3x3 + relu] -> [conv 1x1 + relu]: a Q/DQ network's INT8 is
    explicit, the rule implicit INT8's (trt11 has no other)."""
    net = Net().qdq("in", "x").conv("dw", "in.dq", k=3, group=8).relu("r1", "dw")
    g = net.conv("pw", "r1", out=16).relu("r2", "pw").graph()
    _, ctx = run_pass("fuse_depthwise_separable", g, target=target, precision="int8",
                      plan=_until("fuse_depthwise_separable", g, target, "int8"))
    assert failed(ctx) == {3} and ctx.rejections[0].detail == qdq.NOT_IMPLICIT

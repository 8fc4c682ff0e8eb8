"""Vertical rules: fuse_conv_activation, fuse_conv_add, fuse_scale_activation, fold_pad.

Each rule: one graph where it fires, one graph per condition where it must not.
"""

import numpy as np
from onnx import numpy_helper

from fusionlab.fusion.partition import initial_plan
from tests.fusion.passes.conftest import failed, groups, run_pass
from tests.fusion.passes.netbuilder import Net


def _after_bn(g):  # type: ignore[no-untyped-def]
    return run_pass("fold_batchnorm", g)[0]


# -- fuse_conv_activation -------------------------------------------------------------


def test_conv_bn_relu_is_one_layer() -> None:
    #   x -> conv -> bn -> relu        =>  [conv + bn + relu]
    g = Net().conv("conv", "x").bn("bn", "conv").relu("relu", "bn").graph()
    plan, _ = run_pass("fuse_conv_activation", g, plan=_after_bn(g))
    assert plan.layers[0].name == "conv + bn + relu"
    assert groups(plan) == {frozenset({"conv", "bn", "relu"})}


def test_activation_condition1_after_pool() -> None:
    #   x -> pool -> relu : pooling does not take an activation
    g = Net().maxpool("pool", "x").relu("relu", "pool").graph()
    plan, ctx = run_pass("fuse_conv_activation", g)
    assert len(plan.layers) == 2 and failed(ctx) == {1}


def test_activation_condition2_conv_output_shared() -> None:
    #   x -> conv -> relu
    #          └──> sig
    g = Net().conv("conv", "x").relu("relu", "conv").op("Sigmoid", "sig", "conv").graph()
    plan, ctx = run_pass("fuse_conv_activation", g)
    assert len(plan.layers) == 3 and failed(ctx) == {2}


def test_activation_condition3_not_fused_at_this_precision() -> None:
    #   x -> conv -> leaky : LeakyRelu fuses at fp16 only on modern targets
    g = Net().conv("conv", "x").op("LeakyRelu", "leaky", "conv", alpha=0.1).graph()
    plan32, ctx = run_pass("fuse_conv_activation", g, precision="fp32")
    assert len(plan32.layers) == 2 and failed(ctx) == {3}
    plan16, _ = run_pass("fuse_conv_activation", g, precision="fp16")
    assert groups(plan16) == {frozenset({"conv", "leaky"})}


def test_activation_classic_fuses_relu_only() -> None:
    g = Net().conv("conv", "x").op("Clip", "clip", "conv", min=0.0, max=6.0).graph()
    _, ctx = run_pass("fuse_conv_activation", g, target="classic")
    assert failed(ctx) == {3}


# -- fuse_conv_add ----------------------------------------------------------------------


def test_residual_add_joins_conv() -> None:
    #   x -> c1 -> r1 -> c2 -> add -> relu
    #   x ───────────────────┘
    g = (
        Net()
        .conv("c1", "x")
        .relu("r1", "c1")
        .conv("c2", "r1")
        .add("add", "c2", "x")
        .relu("relu", "add")
        .graph()
    )
    plan, _ = run_pass("fuse_conv_add", g)
    assert frozenset({"c2", "add"}) in groups(plan)
    plan2, _ = run_pass("fuse_conv_activation", g, plan=plan)
    assert frozenset({"c2", "add", "relu"}) in groups(plan2)
    assert plan2.layer_of("add").name == "c2 + add + relu"  # type: ignore[union-attr]


def test_residual_both_convs_second_operand_wins() -> None:
    #   x -> a -> ra -> b ─┐          (b: the main branch, first operand)
    #   x -> d ────────────add        (d: the downsample, second operand) => [d + add]
    g = (
        Net()
        .conv("a", "x")
        .relu("ra", "a")
        .conv("b", "ra")
        .conv("d", "x")
        .add("add", "b", "d")
        .graph()
    )
    plan, _ = run_pass("fuse_conv_add", g)
    assert frozenset({"d", "add"}) in groups(plan) and frozenset({"b"}) in groups(plan)


def test_residual_condition1_broadcast() -> None:
    #   add(conv, bias[1,C,1,1]) : a broadcast add of a constant is not a residual
    n = Net().conv("conv", "x")
    n.inits.append(numpy_helper.from_array(np.ones((1, 8, 1, 1), np.float32), "bias"))
    n.add_node("Add", "add", ["conv", "bias"], 8)
    plan, ctx = run_pass("fuse_conv_add", n.graph())
    assert len(plan.layers) == 2 and failed(ctx) == {1}


def test_residual_condition2_no_conv_operand() -> None:
    g = Net().maxpool("p", "x").add("add", "p", "x").graph()
    plan, ctx = run_pass("fuse_conv_add", g)
    assert len(plan.layers) == 2 and failed(ctx) == {2}


def test_residual_condition3_conv_output_read_elsewhere() -> None:
    g = Net().conv("c", "x").add("add", "c", "x").relu("r", "c").graph()
    plan, ctx = run_pass("fuse_conv_add", g)
    assert frozenset({"c", "add"}) not in groups(plan) and 3 in failed(ctx)


# -- fuse_scale_activation --------------------------------------------------------------


def test_scale_activation() -> None:
    #   x -> pool -> bn -> relu   => pool, [bn + relu]
    g = Net().maxpool("p", "x").bn("bn", "p").relu("relu", "bn").graph()
    plan, _ = run_pass("fuse_scale_activation", g, plan=_after_bn(g))
    assert groups(plan) == {frozenset({"p"}), frozenset({"bn", "relu"})}


def test_scale_activation_condition2_shared() -> None:
    g = Net().maxpool("p", "x").bn("bn", "p").relu("relu", "bn").op("Sigmoid", "s", "bn").graph()
    plan, ctx = run_pass("fuse_scale_activation", g, plan=_after_bn(g))
    assert frozenset({"bn", "relu"}) not in groups(plan) and failed(ctx) == {2}


def test_scale_activation_condition3_unsupported() -> None:
    g = Net().maxpool("p", "x").bn("bn", "p").op("Softplus", "sp", "bn").graph()
    plan, ctx = run_pass("fuse_scale_activation", g, plan=_after_bn(g))
    assert failed(ctx) == {3} and frozenset({"bn"}) in groups(plan)


# -- fold_pad ----------------------------------------------------------------------------


def _pad(n: Net, name: str, src: str, pads: list[int], mode: str = "constant") -> Net:
    n.inits.append(numpy_helper.from_array(np.array(pads, np.int64), f"{name}.pads"))
    return n.add_node("Pad", name, [src, f"{name}.pads"], n.channels[src], mode=mode)


def test_pad_folds_into_conv() -> None:
    #   x -> pad -> conv  => [pad + conv]
    n = _pad(Net(), "pad", "x", [0, 0, 1, 1, 0, 0, 1, 1]).conv(
        "conv", "pad", k=3, pads=[0, 0, 0, 0]
    )
    plan, _ = run_pass("fold_pad", n.graph())
    assert plan.layers[0].name == "pad + conv" and plan.layers[0].kind == "Convolution"


def test_pad_condition1_before_pooling() -> None:
    n = _pad(Net(), "pad", "x", [0, 0, 1, 1, 0, 0, 1, 1]).maxpool("pool", "pad")
    plan, ctx = run_pass("fold_pad", n.graph())
    assert len(plan.layers) == 2 and failed(ctx) == {1}


def test_pad_condition2_reflect() -> None:
    n = _pad(Net(), "pad", "x", [0, 0, 1, 1, 0, 0, 1, 1], mode="reflect").conv(
        "conv", "pad", k=3, pads=[0] * 4
    )
    _, ctx = run_pass("fold_pad", n.graph())
    assert failed(ctx) == {2}


def test_pad_condition3_negative_or_channel() -> None:
    n = _pad(Net(), "pad", "x", [0, 1, 0, 0, 0, 1, 0, 0]).conv("conv", "pad")
    _, ctx = run_pass("fold_pad", n.graph())
    assert failed(ctx) == {3}
    n = _pad(Net(size=10), "pad", "x", [0, 0, -1, -1, 0, 0, -1, -1]).conv("conv", "pad")
    _, ctx = run_pass("fold_pad", n.graph())
    assert failed(ctx) == {3}


def test_pad_condition4_graph_output() -> None:
    n = (
        _pad(Net(), "pad", "x", [0, 0, 1, 1, 0, 0, 1, 1])
        .conv("conv", "pad", k=3, pads=[0] * 4)
        .output("pad")
    )
    _, ctx = run_pass("fold_pad", n.graph())
    assert failed(ctx) == {4}


def test_unfused_plan_is_identity_for_vertical_rules_on_pool_chain() -> None:
    g = Net().maxpool("p1", "x").maxpool("p2", "p1").graph()
    for rule in ("fuse_conv_activation", "fuse_conv_add", "fold_pad", "fold_batchnorm"):
        plan, _ = run_pass(rule, g)
        assert [layer.nodes for layer in plan.layers] == [
            layer.nodes for layer in initial_plan(g).layers
        ]


def test_scale_activation_condition1_not_after_a_scale() -> None:
    #   x -> pool -> relu : no Scale layer before the activation
    g = Net().maxpool("p", "x").relu("relu", "p").graph()
    plan, _ = run_pass("fuse_scale_activation", g)
    assert groups(plan) == {frozenset({"p"}), frozenset({"relu"})}

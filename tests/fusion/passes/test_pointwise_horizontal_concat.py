"""fuse_pointwise, fuse_conv_pointwise, merge_siblings, eliminate_concat, eliminate_noops,
fold_constants: one graph where each fires, one per condition where it must not."""

import numpy as np
from onnx import helper, numpy_helper

from tests.fusion.passes.conftest import failed, final, groups, run_pass
from tests.fusion.passes.netbuilder import Net


def _pwn(g, precision="fp32", target="trt10"):  # type: ignore[no-untyped-def]
    plan, _ = run_pass("fuse_pointwise", g, target=target, precision=precision)
    return run_pass("fuse_conv_pointwise", g, plan=plan, target=target, precision=precision)


# -- fuse_pointwise --------------------------------------------------------------------


def test_silu_chain_is_one_pwn() -> None:
    #   x -> pool -> sig ─┐
    #          └─────────mul -> tanh
    g = (
        Net()
        .maxpool("p", "x")
        .op("Sigmoid", "sig", "p")
        .op("Mul", "mul", "p", "sig")
        .op("Tanh", "t", "mul")
        .graph()
    )
    plan, _ = run_pass("fuse_pointwise", g)
    assert frozenset({"sig", "mul", "t"}) in groups(plan)
    assert plan.layer_of("mul").name == "PWN(sig, mul, t)"  # type: ignore[union-attr]


def test_pointwise_condition1_classic_has_no_pwn() -> None:
    g = Net().maxpool("p", "x").op("Sigmoid", "sig", "p").op("Tanh", "t", "sig").graph()
    plan, _ = run_pass("fuse_pointwise", g, target="classic")
    assert len(plan.layers) == 3


def test_pointwise_condition2_intermediate_read_elsewhere() -> None:
    #   p -> sig -> tanh
    #         └──> pool2
    g = (
        Net()
        .maxpool("p", "x")
        .op("Sigmoid", "sig", "p")
        .op("Tanh", "t", "sig")
        .maxpool("p2", "sig")
        .graph()
    )
    plan, ctx = run_pass("fuse_pointwise", g)
    assert frozenset({"sig", "t"}) not in groups(plan) and failed(ctx) == {2}


# -- fuse_conv_pointwise ---------------------------------------------------------------


def test_conv_silu_fp16() -> None:
    #   x -> conv -> sig ─┐
    #          └─────────mul      fp16: [conv + PWN(sig, mul)]
    g = Net().conv("c", "x").op("Sigmoid", "sig", "c").op("Mul", "mul", "c", "sig").graph()
    plan, _ = _pwn(g, "fp16")
    assert groups(plan) == {frozenset({"c", "sig", "mul"})}
    assert plan.layers[0].name == "c + PWN(sig, mul)"


def test_conv_pointwise_condition3_fp32() -> None:
    g = Net().conv("c", "x").op("Sigmoid", "sig", "c").op("Mul", "mul", "c", "sig").graph()
    plan, ctx = _pwn(g, "fp32")
    assert len(plan.layers) == 2 and failed(ctx) == {3}


def test_conv_pointwise_condition1_two_inputs() -> None:
    #   PWN reads the conv and another tensor x: not an epilogue of the conv alone
    g = Net().conv("c", "x").op("Sigmoid", "sig", "c").op("Mul", "mul", "sig", "x").graph()
    plan, ctx = _pwn(g, "fp16")
    assert frozenset({"c"}) in groups(plan) and 1 in failed(ctx)


def test_conv_pointwise_condition2_conv_output_shared() -> None:
    g = (
        Net()
        .conv("c", "x")
        .op("Sigmoid", "sig", "c")
        .op("Mul", "mul", "c", "sig")
        .maxpool("p", "c")
        .graph()
    )
    plan, ctx = _pwn(g, "fp16")
    assert frozenset({"c"}) in groups(plan) and 2 in failed(ctx)


# -- merge_siblings ------------------------------------------------------------------------


def _three_1x1(k3: int = 1) -> Net:
    #        ┌─> a(1x1) -> ra
    #   x ───┼─> b(1x1) -> rb
    #        └─> c(k3)  -> rc
    n = Net()
    n.conv("a", "x", 4).relu("ra", "a").conv("b", "x", 6).relu("rb", "b").conv(
        "c", "x", 2, k=k3
    ).relu("rc", "c")
    return n


def test_siblings_merge_classic() -> None:
    plan = final(_three_1x1().graph(), "classic")
    assert groups(plan) == {frozenset({"a", "ra", "b", "rb", "c", "rc"})}
    assert plan.layers[0].name == "a + ra || b + rb || c + rc"


def test_siblings_condition1_different_inputs() -> None:
    g = Net().conv("a", "x").relu("ra", "a").conv("b", "ra").relu("rb", "b").graph()
    assert len(final(g, "classic").layers) == 2


def test_siblings_condition2_geometry() -> None:
    plan = final(_three_1x1(k3=3).graph(), "classic")
    assert frozenset({"c", "rc"}) in groups(plan)
    assert frozenset({"a", "ra", "b", "rb"}) in groups(plan)


def test_siblings_condition2_classic_merges_1x1_only() -> None:
    n = Net().conv("a", "x", k=3).relu("ra", "a").conv("b", "x", k=3).relu("rb", "b")
    assert len(final(n.graph(), "classic").layers) == 2
    assert len(final(n.graph(), "trt10").layers) == 1


def test_siblings_condition3_epilogue_differs() -> None:
    n = Net().conv("a", "x").relu("ra", "a").conv("b", "x").op("Sigmoid", "sb", "b")
    plan = final(n.graph(), "classic")
    assert frozenset({"a", "ra"}) in groups(plan) and frozenset({"b"}) in groups(plan)


def test_siblings_condition3_fused_residual() -> None:
    #   x -> a -> ra ; x -> b -> add(b, x): b carries a residual, it does not merge
    n = Net().conv("a", "x").relu("ra", "a").conv("b", "x").add("add", "b", "x").relu("rb", "add")
    plan = final(n.graph(), "trt10")
    assert frozenset({"b", "add", "rb"}) in groups(plan) and frozenset({"a", "ra"}) in groups(plan)


# -- eliminate_concat ------------------------------------------------------------------------


def test_concat_eliminated_without_copies() -> None:
    #   x -> a -> ra ─┐
    #   x -> p ───────concat
    g = Net().conv("a", "x").relu("ra", "a").maxpool("p", "x").concat("cat", "ra", "p").graph()
    plan, ctx = run_pass("eliminate_concat", g)
    assert "cat" in plan.eliminated and not any(layer.inserted for layer in plan.layers)
    assert ctx.rejections == []


def test_concat_condition1_axis() -> None:
    n = Net().conv("a", "x").conv("b", "x")
    n.add_node("Concat", "cat", ["a", "b"], 8, axis=3)
    plan, ctx = run_pass("eliminate_concat", n.graph())
    assert "cat" not in plan.eliminated and failed(ctx) == {1}


def test_concat_condition2_graph_input_is_copied() -> None:
    g = Net().conv("a", "x").concat("cat", "a", "x").graph()
    plan, ctx = run_pass("eliminate_concat", g)
    assert [layer.name for layer in plan.layers if layer.inserted] == ["x copy"]
    assert failed(ctx) == {2}


def test_concat_condition3_input_read_elsewhere_is_copied() -> None:
    g = Net().conv("a", "x").conv("b", "x").concat("cat", "a", "b").relu("r", "a").graph()
    plan, ctx = run_pass("eliminate_concat", g)
    assert "cat" in plan.eliminated and [layer.name for layer in plan.layers if layer.inserted] == [
        "a copy"
    ]
    assert failed(ctx) == {3}


def test_concat_condition4_merged_producer_is_copied() -> None:
    #   classic: [a || b] feeds the concat and b feeds conv d: a's slice must be copied
    n = (
        Net()
        .conv("a", "x")
        .relu("ra", "a")
        .conv("b", "x")
        .relu("rb", "b")
        .conv("d", "rb", k=3)
        .relu("rd", "d")
    )
    g = n.concat("cat", "ra", "rd").graph()
    plan = final(g, "classic")
    assert [layer.name for layer in plan.layers if layer.inserted] == ["ra copy"]


def test_concat_condition5_repeated_input() -> None:
    g = Net().conv("a", "x").concat("cat", "a", "a").graph()
    plan, ctx = run_pass("eliminate_concat", g)
    assert [layer.name for layer in plan.layers if layer.inserted] == ["a copy"]
    assert failed(ctx) == {5}


# -- eliminate_noops and fold_constants -------------------------------------------------------


def test_dropout_identity_removed_and_fusion_sees_through() -> None:
    #   x -> conv -> dropout -> identity -> relu   => [conv + relu]
    g = Net().conv("c", "x").op("Dropout", "d", "c").op("Identity", "i", "d").relu("r", "i").graph()
    plan = final(g, "trt10")
    assert set(plan.eliminated) == {"d", "i"} and groups(plan) == {frozenset({"c", "r"})}


def test_flatten_before_gemm_absorbed_not_before_relu() -> None:
    n = Net(size=1).conv("c", "x")
    n.add_node("Flatten", "f", ["c"], 8, axis=1)
    n.inits.append(numpy_helper.from_array(np.ones((3, 8), np.float32), "fc.w"))
    n.add_node("Gemm", "fc", ["f", "fc.w"], 3, transB=1)
    plan, _ = run_pass("eliminate_noops", n.graph(), target="trt8")  # a CASK FC reads it directly
    assert "f" in plan.eliminated
    # trt10/trt11: the Gemm is a Myelin op (no CASK FC layer), its region computes the Flatten
    plan10 = final(n.graph(), "trt10")
    assert "f" not in plan10.eliminated and frozenset({"f", "fc"}) in groups(plan10)
    n2 = Net(size=1).conv("c", "x")
    n2.add_node("Flatten", "f", ["c"], 8, axis=1)
    n2.relu("r", "f")
    plan2, ctx = run_pass("eliminate_noops", n2.graph())
    assert "f" not in plan2.eliminated and failed(ctx) == {1}


def test_noop_condition2_graph_output() -> None:
    g = Net().conv("c", "x").op("Identity", "i", "c").output("i").graph()
    plan, ctx = run_pass("eliminate_noops", g)
    assert "i" not in plan.eliminated and failed(ctx) == {2}


def _with_constant_k() -> Net:
    """A net whose Constant node ``k`` holds a [1, 8, 1, 1] tensor of ones."""
    n = Net()
    value = numpy_helper.from_array(np.ones((1, 8, 1, 1), np.float32))
    n.nodes.append(helper.make_node("Constant", [], ["k"], name="k", value=value))
    n.channels["k"] = 8
    return n


def test_constants_folded() -> None:
    #   Constant k -> mul(x, k): k disappears, mul stays
    n = _with_constant_k()
    n.op("Mul", "mul", "x", "k")
    plan, _ = run_pass("fold_constants", n.graph())
    assert "k" in plan.eliminated and groups(plan) == {frozenset({"mul"})}


def test_constant_condition2_graph_output() -> None:
    n = _with_constant_k()
    n.op("Mul", "mul", "x", "k").output("k")
    plan, ctx = run_pass("fold_constants", n.graph())
    assert "k" not in plan.eliminated and failed(ctx) == {2}


def test_shape_computation_folds_to_a_fixpoint() -> None:
    #   x -> Shape -> Gather(0) -> Unsqueeze -> Concat(·, [-1]) -> Reshape(pool, ·) -> relu
    #   (the Flatten that older PyTorch exporters write): everything but pool, reshape, relu folds
    n = Net(size=2).maxpool("p", "x")
    n.inits += [numpy_helper.from_array(np.array(0, np.int64), "zero"),
                numpy_helper.from_array(np.array([0], np.int64), "axes"),
                numpy_helper.from_array(np.array([-1], np.int64), "minus1")]
    n.nodes += [helper.make_node("Shape", ["p"], ["shape"], name="shape"),
                helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather", axis=0),
                helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
                helper.make_node("Concat", ["n1", "minus1"], ["target"], name="cat", axis=0),
                helper.make_node("Reshape", ["p", "target"], ["flat"], name="reshape")]
    n.channels.update({"flat": 8})
    n.relu("relu", "flat")
    plan = final(n.graph(), "trt10")
    assert set(plan.eliminated) >= {"shape", "gather", "unsqueeze", "cat"}
    assert not any(layer.inserted for layer in plan.layers)
    assert groups(plan) == {frozenset({"p"}), frozenset({"reshape"}), frozenset({"relu"})}

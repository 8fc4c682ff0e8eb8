"""Shape arithmetic with static shapes (fusionlab.ir.shape_math): exporters' Shape -> Gather ->
Div chains become constants, the shapes after them known, and no such node is a layer."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from fusionlab import zoo
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import load
from fusionlab.plan import How

SHAPE_MATH = {"Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Add", "Sub", "Mul", "Div",
              "Mod", "Cast", "ConstantOfShape", "Range", "Equal", "Where", "Constant"}


def chunk_model() -> helper.ModelProto:
    """
    x [1,8,4,4] ── Shape ─ Gather(1) ─ Add(1) ─ Div(2) ─┬─ Mul(1) ─┐ (legacy export of x.chunk(2, dim=1))
      │                                                 └─ Mul(2) ─┤
      └──────────────────────────── Slice(x, start, end, axes=[1]) ┴─ Relu ─ y
    """
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "one"], ["c"], axis=0, name="gather"),
        helper.make_node("Add", ["c", "one"], ["c1"], name="add"),
        helper.make_node("Div", ["c1", "two"], ["half"], name="div"),
        helper.make_node("Mul", ["half", "one"], ["start"], name="mul1"),
        helper.make_node("Mul", ["half", "two"], ["end"], name="mul2"),
        helper.make_node("Unsqueeze", ["start", "zero"], ["start1"], name="unsq1"),
        helper.make_node("Unsqueeze", ["end", "zero"], ["end1"], name="unsq2"),
        helper.make_node("Slice", ["x", "start1", "end1", "axis1"], ["sl"], name="slice"),
        helper.make_node("Relu", ["sl"], ["y"], name="relu"),
    ]
    inits = [helper.make_tensor("one", TensorProto.INT64, [], [1]),
             helper.make_tensor("two", TensorProto.INT64, [], [2]),
             helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
             helper.make_tensor("axis1", TensorProto.INT64, [1], [1])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    return helper.make_model(helper.make_graph(nodes, "chunk", [x], [y], inits),
                             opset_imports=[helper.make_opsetid("", 13)])


def test_chunk_bounds_are_computed_and_the_slice_shape_known() -> None:
    g = load(chunk_model(), batch=2)
    assert int(g.values["half"]) == 4 and g.values["end1"].tolist() == [8]
    assert g.tensors["sl"].shape == (2, 4, 4, 4) and g.tensors["y"].shape == (2, 4, 4, 4)
    assert g.node("relu").cost.flops == 2 * 4 * 4 * 4
    assert g.node("div").cost.flops == 0  # folded at build time
    plan = predict(g, "trt10").plan
    assert [layer.nodes for layer in plan.layers] == [("slice",), ("relu",)]
    assert {plan.eliminated[n].how for n in ("shape", "gather", "div", "unsq2")} == {How.CONSTANT}


def test_a_symbolic_batch_keeps_the_chain_as_it_is() -> None:
    g = load(chunk_model())  # batch N unknown: nothing to fold, nothing invented
    shape = g.tensors["sl"].shape
    assert "half" not in g.values
    assert shape is None or not all(isinstance(d, int) for d in shape)


@pytest.mark.parametrize(("legacy", "dynamo"), [("shufflenetv2-legacy", "shufflenetv2")])
def test_legacy_and_dynamo_exports_count_the_same_flops(legacy: str, dynamo: str) -> None:
    a, b = load(zoo.build(legacy), batch=1), load(zoo.build(dynamo), batch=1)
    fa = sum(n.cost.flops or 0 for n in a.nodes())
    fb = sum(n.cost.flops or 0 for n in b.nodes())
    assert all(n.cost.flops is not None for n in a.nodes())
    assert fa == pytest.approx(fb, rel=0.01)


@pytest.mark.parametrize("name", ["shufflenetv2-legacy", "vit-s16", "yolov8n"])
@pytest.mark.parametrize("target", ["trt8", "trt10", "trt11"])
def test_no_layer_computes_shape_arithmetic(name: str, target: str) -> None:
    g = load(zoo.build(name), batch=1)
    plan = predict(g, target).plan
    for layer in plan.layers:
        assert not any(g.node(n).op in ("Shape", "Size") for n in layer.nodes), layer.name
        shape_only = [n for n in layer.nodes if g.node(n).op in SHAPE_MATH
                      and all(o in g.values for o in g.node(n).outputs if o)]
        assert not shape_only, (layer.name, shape_only)


def test_hostile_shape_arithmetic_does_not_stop_the_load() -> None:
    """A Div by zero and a huge ConstantOfShape: the load goes on, nothing huge is computed."""
    big = helper.make_tensor("big", TensorProto.INT64, [1], [10**9])
    zero = helper.make_tensor("z", TensorProto.INT64, [], [0])
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Div", ["s", "z"], ["q"]),
             helper.make_node("ConstantOfShape", ["big"], ["huge"]),
             helper.make_node("Relu", ["x"], ["y"])]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "huge")]
    g = load(helper.make_model(helper.make_graph(nodes, "h", [x], outs, [big, zero]),
                               opset_imports=[helper.make_opsetid("", 13)]))
    assert "huge" not in g.values
    assert all(v.size <= 4096 for v in g.values.values())
    assert isinstance(g.values.get("q", np.zeros(1)), np.ndarray)

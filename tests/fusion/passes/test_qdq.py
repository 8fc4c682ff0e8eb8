"""The Q/DQ passes: quantize_weights, eliminate_duplicate_quantize, fuse_qdq_conv,
propagate_qdq — one graph where each fires and one per condition where it must not.

Graphs run through the whole target (``final``/``predict``) where a pass needs the float
passes before it; the rejections then come from the prediction's stages.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionlab.fusion import qdq
from fusionlab.fusion.partition import initial_plan
from fusionlab.fusion.predictor import Prediction, predict
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import How, Kind, Plan
from tests.fusion.passes.conftest import failed, groups, run_pass
from tests.fusion.passes.netbuilder import Net


def _failed(p: Prediction, rule: str) -> set[int]:
    return {r.condition for r in p.rejections if r.rule == rule}


def _layer(plan: Plan, node: str):  # type: ignore[no-untyped-def]
    layer = plan.layer_of(node)
    assert layer is not None, node
    return layer


# ------------------------------------------------------------------ quantize_weights


def test_quantize_weights_pairs_the_weight_qdq() -> None:
    #   c.w -> c.wq -> c.wdq ─┐
    #   x ─> c.in.q -> c.in.dq ─ c
    g = Net().qconv("c", "x").graph()
    plan, ctx = run_pass("quantize_weights", g)
    pair = _layer(plan, "c.wq")
    assert set(pair.nodes) == {"c.wq", "c.wdq"} and pair.kind is Kind.CONSTANT
    assert pair.name == "c.w + c.wq" and pair.rule == "quantize_weights"
    assert not ctx.rejections


def test_quantize_weights_condition1_scale_computed_at_run_time() -> None:
    #   c.w -> Q(scale = Identity(s)) -> DQ -> c
    n = Net().qconv("c", "x")
    q = next(x for x in n.nodes if x.name == "c.wq")
    n.nodes.insert(0, helper.make_node("Identity", ["c.wq.scale"], ["s_run"], name="s_id"))
    q.input[1] = "s_run"
    plan, ctx = run_pass("quantize_weights", n.graph())
    assert _layer(plan, "c.wq").nodes == ("c.wq",)
    assert failed(ctx) == {1}


def test_quantize_weights_condition2_two_dequantizers() -> None:
    #   c.w -> c.wq ─┬─> c.wdq -> c
    #                └─> dq2 -> conv d
    n = Net().qconv("c", "x").dq("dq2", "c.wq", 0.01)
    n.add_node("Conv", "d", ["c.in.dq", "dq2"], 8, kernel_shape=[1, 1])
    plan, ctx = run_pass("quantize_weights", n.graph())
    assert _layer(plan, "c.wq").nodes == ("c.wq",)
    assert failed(ctx) == {2}


def test_quantize_weights_condition3_not_read_as_weights() -> None:
    #   b -> bq -> bdq ─┐
    #   x ───────────── Add      (a quantized constant added to the data: left to folding)
    n = Net()
    n.inits.append(numpy_helper.from_array(np.ones((1, 8, 8, 8), np.float32), "b"))
    n.q("bq", "b").dq("bdq", "bq")
    n.add_node("Add", "add", ["x", "bdq"], 8)
    _, ctx = run_pass("quantize_weights", n.graph())
    assert failed(ctx) == {3}
    final = predict(n.graph(), "trt8").plan
    assert final.eliminated["bq"].how is How.CONSTANT


# ------------------------------------------------------ eliminate_duplicate_quantize


def _two_quantizers(scale_b: float) -> Net:
    #   x -> r ─┬─> a.in.q -> a.in.dq -> a
    #           └─> b.in.q -> b.in.dq -> b
    return Net().relu("r", "x").qconv("a", "r").qconv("b", "r", scale=scale_b)


def test_duplicate_quantize_is_computed_once() -> None:
    g = _two_quantizers(0.05).graph()
    p = predict(g, "trt8", "int8")
    gone = p.plan.eliminated["b.in.q"]
    assert gone.how is How.DUPLICATE and gone.same_as == "a.in.q"
    reformat = _layer(p.plan, "a.in.q")
    assert reformat.kind is Kind.REFORMAT and reformat.name == "a.in.q"
    b = _layer(p.plan, "b")  # reads a.in.q's INT8 output and dequantizes it itself
    assert "b.in.dq" in b.nodes and "a.in.q" in b.inputs
    assert "b.in.q" not in {n for layer in p.plan.layers for n in layer.nodes}


def test_duplicate_quantize_condition1_one_quantizer_is_kept() -> None:
    g = Net().relu("r", "x").qconv("a", "r").graph()
    p = predict(g, "trt8", "int8")
    assert "a.in.q" not in p.plan.eliminated
    assert not _failed(p, "eliminate_duplicate_quantize")


def test_duplicate_quantize_condition2_different_scales() -> None:
    p = predict(_two_quantizers(0.07).graph(), "trt8", "int8")
    assert "b.in.q" not in p.plan.eliminated
    assert _failed(p, "eliminate_duplicate_quantize") == {2}


def test_duplicate_quantize_condition3_graph_output() -> None:
    n = _two_quantizers(0.05)
    m = n.model()
    m.graph.output.append(helper.make_tensor_value_info("b.in.q", TensorProto.INT8, None))
    p = predict(load(m), "trt8", "int8")
    assert "b.in.q" not in p.plan.eliminated
    assert _failed(p, "eliminate_duplicate_quantize") == {3}


# ------------------------------------------------------------------ fuse_qdq_conv


def _chain() -> Net:
    #   x -> a.in.q -> a.in.dq -> a (+ a.wq/a.wdq) -> ra -> b.in.q -> b.in.dq -> b -> rb
    return Net().qconv("a", "x").relu("ra", "a").qconv("b", "ra").relu("rb", "b")


def test_fuse_qdq_conv_fires() -> None:
    p = predict(_chain().graph(), "trt8", "int8")
    a = _layer(p.plan, "a")
    assert set(a.nodes) == {"a.in.dq", "a.wq", "a.wdq", "a", "ra", "b.in.q"}
    assert a.name == "a.w + a.wq + a" and a.rule == "fuse_qdq_conv"
    assert set(a.absorbed) >= {"a.wq", "a.wdq"} and a.kind is Kind.CONVOLUTION
    assert set(_layer(p.plan, "b").nodes) == {"b.in.dq", "b.wq", "b.wdq", "b", "rb"}
    assert _layer(p.plan, "a.in.q").kind is Kind.REFORMAT  # the network input's quantizer
    assert qdq.int8_math(p.graph, a) and qdq.int8_math(p.graph, _layer(p.plan, "b"))
    assert not _failed(p, "fuse_qdq_conv")


def test_fuse_qdq_conv_condition1_float_weights() -> None:
    #   x -> q -> dq -> c (float weights)
    n = Net().qdq("in", "x").conv("c", "in.dq")
    p = predict(n.graph(), "trt8", "int8")
    assert _failed(p, "fuse_qdq_conv") == {1}
    assert _layer(p.plan, "in.dq").kind is Kind.REFORMAT
    assert not qdq.int8_math(p.graph, _layer(p.plan, "c"))


def test_fuse_qdq_conv_condition2_input_not_dequantized() -> None:
    #   x -> r -> c (quantized weights, float input)   a layer that runs in float
    g = Net().relu("r", "x").qconv("c", "r", dq_input=False).graph()
    p = predict(g, "trt8", "int8")
    assert _failed(p, "fuse_qdq_conv") == {2}
    c = _layer(p.plan, "c")
    assert {"c.wq", "c.wdq"} <= set(c.nodes) and not qdq.int8_math(p.graph, c)
    (hazard,) = p.int8_hazards()
    assert (hazard.kind, hazard.rule, hazard.condition) == ("float", "fuse_qdq_conv", 2)
    assert "runs in float" in hazard.text


def test_fuse_qdq_conv_condition3_dequantizer_also_read_in_float() -> None:
    #   x -> q -> dq ─┬─> c
    #                 └─> sig (float)
    n = Net().qconv("c", "x").op("Sigmoid", "sig", "c.in.dq").add("sum", "c", "sig")
    p = predict(n.graph(), "trt8", "int8")
    assert 3 in _failed(p, "fuse_qdq_conv")
    assert _layer(p.plan, "c.in.dq").kind is Kind.REFORMAT
    assert qdq.int8_math(p.graph, _layer(p.plan, "c"))  # still reads the INT8 data


def _residual(quantized: bool) -> Net:
    #   x -> rx ─┬────────────────── (res.q -> res.dq)? ─┐
    #            └─> c.in.q -> c.in.dq -> c ──────────── add -> relu -> o.q -> o.dq -> d
    n = Net().relu("rx", "x").qconv("c", "rx")
    other = "rx"
    if quantized:
        n.qdq("res", "rx")
        other = "res.dq"
    return n.add("add", "c", other).relu("relu", "add").qconv("d", "relu")


def test_fuse_qdq_conv_quantized_residual_writes_int8() -> None:
    p = predict(_residual(True).graph(), "trt8", "int8")
    c = _layer(p.plan, "c")
    assert {"res.dq", "add", "relu", "d.in.q"} <= set(c.nodes)
    assert c.name == "c.w + c.wq + c + add + relu"
    assert not _failed(p, "fuse_qdq_conv")


def test_fuse_qdq_conv_condition4_missing_dq_on_the_residual() -> None:
    p = predict(_residual(False).graph(), "trt8", "int8")
    assert _failed(p, "fuse_qdq_conv") == {4}
    assert _layer(p.plan, "d.in.q").kind is Kind.REFORMAT
    hazard = next(h for h in p.int8_hazards() if "d.in.q" in h.nodes)
    assert (hazard.kind, hazard.rule, hazard.condition) == ("reformat", "fuse_qdq_conv", 4)
    assert "residual" in hazard.help
    lines = "\n".join(p.explain("d.in.q"))
    assert "condition 4 failed" in lines and "INT8 [reformat]" in lines


def test_fuse_qdq_conv_condition5_output_also_read_in_float() -> None:
    #   ... c -> r ─┬─> d.in.q -> d.in.dq -> d
    #               └─> sig (float)
    n = Net().qconv("c", "x").relu("r", "c").qconv("d", "r").op("Sigmoid", "sig", "r")
    p = predict(n.graph(), "trt8", "int8")
    assert _failed(p, "fuse_qdq_conv") == {5}
    assert _layer(p.plan, "d.in.q").kind is Kind.REFORMAT


def test_int8_convolutions_do_not_merge_horizontally() -> None:
    # NVIDIA/TensorRT#1602: parallel Q/DQ convolutions are not merged (float ones are)
    n = Net().relu("r", "x").qconv("a", "r").qconv("b", "r")
    p = predict(n.graph(), "trt8", "int8")
    assert not any(layer.merged for layer in p.plan.layers)
    floats = predict(Net().relu("r", "x").conv("a", "r").conv("b", "r").graph(), "trt8").plan
    assert any(layer.merged for layer in floats.layers)


# ------------------------------------------------------------------ propagate_qdq


def test_propagate_qdq_pool_runs_in_int8() -> None:
    #   ... c -> r -> p.q -> p.dq -> pool -> o.q -> (o.dq -> d)
    n = Net().qconv("c", "x").relu("r", "c").qdq("p", "r").maxpool("pool", "p.dq")
    n.qconv("d", "pool")
    p = predict(n.graph(), "trt8", "int8")
    pool = _layer(p.plan, "pool")
    assert set(pool.nodes) == {"p.dq", "pool", "d.in.q"} and pool.name == "pool"
    assert pool.kind is Kind.POOLING and qdq.int8_math(p.graph, pool)
    assert "p.q" in _layer(p.plan, "c").nodes  # the conv writes INT8


def test_propagate_qdq_condition1_no_int8_kernel() -> None:
    n = Net().qdq("a", "x").op("Softmax", "sm", "a.dq").qconv("d", "sm")
    p = predict(n.graph(), "trt8", "int8")
    assert 1 in _failed(p, "propagate_qdq")
    assert _layer(p.plan, "sm").nodes == ("sm",)


def test_propagate_qdq_condition2_float_input() -> None:
    #   x -> r -> pool -> d.in.q -> d.in.dq -> d        (the record's MaxPool_12)
    n = Net().relu("r", "x").maxpool("pool", "r").qconv("d", "pool")
    p = predict(n.graph(), "trt8", "int8")
    assert _failed(p, "propagate_qdq") == {2}
    hazard = next(h for h in p.int8_hazards() if "d.in.q" in h.nodes)
    assert (hazard.rule, hazard.condition) == ("propagate_qdq", 2)
    assert "pool" in hazard.related


def test_propagate_qdq_condition3_output_not_quantized() -> None:
    n = Net().qdq("a", "x").maxpool("pool", "a.dq").relu("r", "pool")
    p = predict(n.graph(), "trt8", "int8")
    assert _failed(p, "propagate_qdq") == {3}
    assert _layer(p.plan, "a.dq").kind is Kind.REFORMAT


def _concat(scale_b: float) -> Net:
    #   a -> qa -> dqa ─┐
    #   b -> qb -> dqb ─┴ cat -> qc -> dqc -> d
    n = Net().qconv("a", "x").qconv("b", "x")
    n.qdq("pa", "a", 0.05).qdq("pb", "b", scale_b).concat("cat", "pa.dq", "pb.dq")
    return n.qconv("d", "cat", scale=0.05)


def test_propagate_qdq_concat_pairs_cancel() -> None:
    p = predict(_concat(0.05).graph(), "trt8", "int8")
    for node in ("pa.dq", "pb.dq", "d.in.q"):
        assert p.plan.eliminated[node].how is How.CANCELLED
    assert p.plan.eliminated["cat"].how is How.CONCAT  # the convolutions write INT8 slices
    assert "pa.q" in _layer(p.plan, "a").nodes and "pb.q" in _layer(p.plan, "b").nodes


def test_propagate_qdq_condition4_concat_scales_differ() -> None:
    p = predict(_concat(0.09).graph(), "trt8", "int8")
    assert _failed(p, "propagate_qdq") == {4}
    assert "cat" not in p.plan.eliminated or p.plan.eliminated["cat"].how is How.CONCAT


def _head(fc: bool) -> onnx.ModelProto:
    #   x -> c -> gap -> flat -> q -> dq -> Gemm (quantized weights) | Relu
    n = Net().qconv("c", "x").relu("r", "c").add_node(
        "GlobalAveragePool", "gap", ["r"], 8).add_node("Flatten", "flat", ["gap"], 8)
    n.qdq("h", "flat")
    if fc:
        n.inits.append(numpy_helper.from_array(np.ones((4, 8), np.float32), "fc.w"))
        n.q("fc.wq", "fc.w", 0.01).dq("fc.wdq", "fc.wq", 0.01)
        n.add_node("Gemm", "fc", ["h.dq", "fc.wdq"], 4, transB=1)
    else:
        n.relu("out", "h.dq")
    return n.model()


def test_propagate_qdq_flatten_before_fully_connected_is_absorbed() -> None:
    p = predict(load(_head(True)), "trt8", "int8")
    assert p.plan.eliminated["flat"].how is How.ABSORBED
    fc = _layer(p.plan, "fc")
    assert {"h.dq", "fc.wq", "fc.wdq", "fc"} == set(fc.nodes) and qdq.int8_math(p.graph, fc)
    assert _layer(p.plan, "h.q").kind is Kind.REFORMAT


def test_propagate_qdq_condition5_flatten_not_read_by_fully_connected() -> None:
    p = predict(load(_head(False)), "trt8", "int8")
    assert 5 in _failed(p, "propagate_qdq")
    assert "flat" not in p.plan.eliminated


# ------------------------------------------------------------------ hazards, precision


def test_unfused_qdq_pair_is_a_hazard() -> None:
    #   x -> r -> q -> dq -> sig      (nothing INT8 reads the pair)
    n = Net().relu("r", "x").qdq("p", "r").op("Sigmoid", "sig", "p.dq")
    p = predict(n.graph(), "trt8", "int8")
    assert _layer(p.plan, "p.q").kind is Kind.REFORMAT and _layer(p.plan, "p.dq").kind is Kind.REFORMAT
    (hazard,) = [h for h in p.int8_hazards() if h.kind == "unfused-pair"]
    assert hazard.nodes == ("p.q",) and "p.dq" in hazard.text


def test_float_models_have_no_int8_hazards() -> None:
    p = predict(Net().conv("c", "x").relu("r", "c").graph(), "trt8", "int8")
    assert p.int8_hazards() == [] and not qdq.has_qdq(p.graph)


@pytest.mark.parametrize("target", ["trt8", "trt10", "trt11"])
def test_qdq_rules_are_the_same_for_trt8_trt10_trt11(target: str) -> None:
    # the evidence shows no change in Q/DQ propagation or fusion between the versions
    g = _residual(False).graph()
    assert groups(predict(g, target, "int8").plan) == groups(predict(g, "trt8", "int8").plan)


def test_qdq_rules_run_at_every_precision() -> None:
    g = _chain().graph()
    assert groups(predict(g, "trt8", "fp32").plan) == groups(predict(g, "trt8", "int8").plan)


def test_trt11_has_no_implicit_int8() -> None:
    from fusionlab.errors import FusionlabError

    g = Net().conv("c", "x").graph()
    predict(g, "trt10", "int8")  # calibrated INT8: still there in 10.x
    with pytest.raises(FusionlabError, match="only from Q/DQ"):
        predict(g, "trt11", "int8")
    predict(_chain().graph(), "trt11", "int8")


def test_classic_has_no_qdq_rules() -> None:
    g = _chain().graph()
    plan = predict(g, "classic").plan
    assert all(layer.nodes != ("a.in.dq",) or layer.kind is Kind.DEQUANTIZE for layer in plan.layers)
    assert len(plan.layers) > len(predict(g, "trt8").plan.layers)


def test_graph_without_qdq_is_unchanged_by_the_qdq_passes() -> None:
    g: Graph = Net().conv("c", "x").relu("r", "c").graph()
    for name in ("quantize_weights", "eliminate_duplicate_quantize", "fuse_qdq_conv", "propagate_qdq"):
        plan, ctx = run_pass(name, g)
        assert plan == initial_plan(g, target=None) or groups(plan) == groups(initial_plan(g))
        assert not ctx.rejections

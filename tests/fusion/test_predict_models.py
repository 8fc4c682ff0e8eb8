"""The predictor on real models: the zoo's networks and TensorRT's recorded engines."""

from __future__ import annotations

import onnx
import pytest
from onnx import helper

from fusionlab import zoo
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import Graph, load
from tests.fusion.passes.conftest import groups
from tests.records import RESNET18 as RECORDS


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    return load(zoo.build("resnet18"), batch=32)


@pytest.fixture(scope="module")
def inception3a() -> Graph:
    return load(zoo.build("inception3a"), batch=1)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_resnet18_trt8_matches_recorded_engine(resnet18: Graph, precision: str) -> None:
    from fusionlab.formats.trtexec import read_layer_info

    actual = read_layer_info(RECORDS / precision / "engine.graph.json", graph=resnet18)
    engine = [frozenset(layer.nodes) for layer in actual.layers if layer.nodes]
    assert len(engine) == 23
    predicted = predict(resnet18, "trt8", precision).plan
    matched = [s for s in engine if s in groups(predicted)]
    assert len(matched) == 23, (
        f"unmatched engine layers: {[sorted(s) for s in engine if s not in matched]}"
    )
    assert len(groups(predicted)) == 23
    assert "Flatten_47" in predicted.eliminated and "Flatten_47" in actual.eliminated
    assert frozenset({"Conv_16", "Add_17", "Relu_18"}) in groups(predicted)
    assert frozenset({"Conv_15"}) in groups(predicted)


def _layer_with(plan_groups: set[frozenset[str]], node: str) -> frozenset[str]:
    return next(g for g in plan_groups if node in g)


def test_inception3a_classic(inception3a: Graph) -> None:
    plan = predict(inception3a, "classic").plan
    got = groups(plan)
    p = "inception_3a/"
    merged = _layer_with(got, p + "1x1")
    assert {p + "1x1", p + "3x3_reduce", p + "5x5_reduce"} <= merged
    assert {p + "relu_1x1", p + "relu_3x3_reduce", p + "relu_5x5_reduce"} <= merged
    assert {p + "3x3", p + "3x3/bn", p + "relu_3x3"} == _layer_with(got, p + "3x3")
    assert {p + "5x5", p + "5x5/bn", p + "relu_5x5"} == _layer_with(got, p + "5x5")
    assert {p + "pool"} == _layer_with(got, p + "pool")
    assert {p + "pool_proj", p + "pool_proj/bn", p + "relu_pool_proj"} == _layer_with(
        got, p + "pool_proj"
    )
    assert p + "output" in plan.eliminated
    copies = [layer for layer in plan.layers if layer.inserted]
    assert [c.name for c in copies] == [p + "relu_1x1 copy"] and copies[0].kind == "Copy"
    assert len(plan.layers) == 6


def test_inception3a_trt10_merges_siblings_as_trt8_engines_do(inception3a: Graph) -> None:
    # TensorRT 8.5 merged inception_5b's 1x1 || 3x3_reduce || 5x5_reduce (targets.HORIZONTAL_8)
    plan = predict(inception3a, "trt10").plan
    assert any(" || " in layer.name for layer in plan.layers)
    assert "inception_3a/output" in plan.eliminated


def _with_output(model: onnx.ModelProto, tensor: str) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.output.append(helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    return m


def test_graph_output_breaks_fusion_through_it() -> None:
    model = zoo.build("resnet18")
    conv5_out = next(n.output[0] for n in model.graph.node if n.name == "Conv_5")
    conv0_out = next(n.output[0] for n in model.graph.node if n.name == "Conv_0")
    plain = groups(predict(load(model, batch=1), "trt8").plan)
    assert frozenset({"Conv_5", "Add_6", "Relu_7"}) in plain
    assert frozenset({"Conv_0", "Relu_1"}) in plain
    cut = groups(
        predict(load(_with_output(_with_output(model, conv5_out), conv0_out), batch=1), "trt8").plan
    )
    assert frozenset({"Conv_5"}) in cut and frozenset({"Conv_0"}) in cut
    assert frozenset({"Relu_1"}) in cut


def test_inception3a_graph_output_copy() -> None:
    # an inception branch whose tensor is also a graph output cannot be written in place
    model = zoo.build("inception3a")
    relu = next(n.output[0] for n in model.graph.node if n.name == "inception_3a/relu_3x3")
    plan = predict(load(_with_output(model, relu), batch=1), "classic").plan
    assert f"{relu} copy" in [layer.name for layer in plan.layers if layer.inserted]


@pytest.mark.parametrize("name", ["googlenet", "googlenet-caffe", "resnet50", "mobilenetv2"])
def test_zoo_models_predict_cleanly(name: str) -> None:
    g = load(zoo.build(name), batch=1)
    for target in ("classic", "trt8", "trt10", "trt11"):
        plan = predict(g, target).plan
        assert len(plan.layers) < len(g)


def test_mobilenetv2_clip_fuses_on_trt10_not_classic() -> None:
    g = load(zoo.build("mobilenetv2"), batch=1)
    clips = [n.name for n in g.nodes() if n.op == "Clip"]
    modern = predict(g, "trt10").plan
    assert all(len(modern.layer_of(c).nodes) > 1 for c in clips)  # type: ignore[union-attr]
    classic = predict(g, "classic").plan
    assert all(classic.layer_of(c).nodes == (c,) for c in clips)  # type: ignore[union-attr]

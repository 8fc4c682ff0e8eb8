"""The Python API (fusionlab.api, importable from ``fusionlab``): one test per function, on
real models and the recorded TensorRT 8 engine of ResNet-18 (records/trex-resnet18-a100)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fusionlab
from fusionlab import zoo
from fusionlab.plan.serialize import plan_to_json
from tests.records import RESNET18 as RECORDS

LAYERS = RECORDS / "fp16" / "engine.graph.json"
PROFILE = RECORDS / "fp16" / "engine.profile.json"


@pytest.fixture(scope="module")
def resnet18() -> fusionlab.Graph:
    return fusionlab.load(zoo.build("resnet18"), batch=32)


def test_load_file_and_batch(tmp_path: Path) -> None:
    path = tmp_path / "inception3a.onnx"
    zoo.export("inception3a", path)
    graph = fusionlab.load(path, batch=4)
    assert graph.batch == 4 and len(graph) == 20
    assert graph.tensors["data"].shape == (4, 192, 28, 28)
    with pytest.raises(fusionlab.FusionlabError, match=r"no-such\.onnx"):
        fusionlab.load(tmp_path / "no-such.onnx")


def test_predict_plan_and_device(resnet18: fusionlab.Graph) -> None:
    prediction = fusionlab.predict(resnet18, "trt8", precision="fp16")
    assert isinstance(prediction, fusionlab.Prediction)
    assert prediction.plan.layers[0].name == "Conv_0 + Relu_1" and len(prediction.plan.layers) == 23
    assert all(layer.time_ms is None for layer in prediction.plan.layers)
    timed = fusionlab.predict(resnet18, "trt8", precision="fp16", device="a100-80gb-pcie")
    assert [x.nodes for x in timed.plan.layers] == [x.nodes for x in prediction.plan.layers]
    assert all(layer.time_ms is not None and layer.time_ms > 0 for layer in timed.plan.layers)
    with pytest.raises(fusionlab.FusionlabError, match="unknown target"):
        fusionlab.predict(resnet18, "trt99")
    with pytest.raises(fusionlab.FusionlabError, match="needs a device"):
        fusionlab.predict(resnet18, efficiency="factors.json")


def test_read_engine_with_profile(resnet18: fusionlab.Graph) -> None:
    engine = fusionlab.read_engine(LAYERS, graph=resnet18, profile=PROFILE)
    assert len(engine.layers) == 36 and engine.precision == "fp16"
    assert sum(layer.time_ms or 0.0 for layer in engine.layers) == pytest.approx(1.016832, abs=1e-6)
    assert engine.layers[1].engine_type == "CaskConvolution"
    assert engine.layers[1].kind is fusionlab.Kind.CONVOLUTION
    assert engine.eliminated["Flatten_47"].how is fusionlab.How.UNNAMED
    bare = fusionlab.read_engine(LAYERS)
    assert [x.name for x in bare.layers] == [x.name for x in engine.layers] and not bare.eliminated


def test_read_plan_names_the_file(tmp_path: Path, resnet18: fusionlab.Graph) -> None:
    plan = fusionlab.predict(resnet18, "trt10").plan
    path = tmp_path / "plan.json"
    path.write_text(plan_to_json(plan))
    assert fusionlab.read_plan(path) == plan
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "fusionlab.plan/2", "layers": [{"name": "a", "time_ms": "x"}],
                               "eliminated": {}}))
    with pytest.raises(fusionlab.FusionlabError, match=r"bad\.json: plan JSON: layer 0 time_ms must be a number"):
        fusionlab.read_plan(bad)


def test_diff_of_a_prediction_and_of_a_plan(resnet18: fusionlab.Graph) -> None:
    engine = fusionlab.read_engine(LAYERS, graph=resnet18, profile=PROFILE)
    prediction = fusionlab.predict(resnet18, "trt8", precision="fp16")
    d = fusionlab.diff(prediction, engine)
    assert isinstance(d, fusionlab.Diff)
    assert d.metrics.exact_match_rate == 1.0 and d.metrics.engine_layers == 23
    assert d.graph is resnet18 and d.totals["actual_ms"] == pytest.approx(1.016832, abs=1e-6)
    # classic has no residual-Add rule: the engine fused more, blamed on that rule
    classic = fusionlab.diff(fusionlab.predict(resnet18, "classic"), engine)
    assert classic.metrics.exact_match_rate < 1.0
    assert {f.rule for f in classic.findings if f.status == "merged"} == {"fuse_conv_add"}
    assert fusionlab.diff(prediction.plan, engine).metrics == d.metrics


def test_to_dot_of_each_subject(resnet18: fusionlab.Graph) -> None:
    prediction = fusionlab.predict(resnet18, "trt8")
    engine = fusionlab.read_engine(LAYERS, graph=resnet18)
    assert "Conv_0" in fusionlab.to_dot(resnet18, legend=False)
    final = fusionlab.to_dot(prediction)
    assert final.startswith("digraph fusionlab {") and "Conv_0 + Relu_1" in final
    staged = fusionlab.to_dot(prediction, stage="original")
    assert staged == fusionlab.to_dot(resnet18)
    assert "Conv_0 + Relu_1" in fusionlab.to_dot(prediction.plan, graph=resnet18)
    assert "as predicted" in fusionlab.to_dot(fusionlab.diff(prediction, engine))
    with pytest.raises(fusionlab.FusionlabError, match="unknown stage 'nope'"):
        fusionlab.to_dot(prediction, stage="nope")


def test_draw_writes_the_file_whole(tmp_path: Path, resnet18: fusionlab.Graph) -> None:
    prediction = fusionlab.predict(resnet18, "trt8")
    out = fusionlab.draw(prediction, tmp_path / "plan.dot")
    assert out.read_text() == fusionlab.to_dot(prediction)
    with pytest.raises(fusionlab.FusionlabError):
        fusionlab.draw(prediction, tmp_path / "plan.txt")  # no such format
    assert not (tmp_path / "plan.txt").exists()

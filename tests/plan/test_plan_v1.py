"""Plan JSON written by fusionlab 0.1 (``fusionlab.plan/1``) reads with the same layers.

The files in data/ were written by the previous release (commit 9af25ac) itself:
``fusionlab predict ... --json`` (inception3a, classic; GoogLeNet, trt10 fp16) and
``fusionlab import`` of the recorded TensorRT 8 ResNet-18 engine with its profile.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import load
from fusionlab.plan import How, Kind
from fusionlab.plan.serialize import plan_from_json

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["inception3a-classic", "googlenet-trt10-fp16"])
def test_predicted_v1_plans_read_with_the_layers_they_hold(name: str) -> None:
    text = (DATA / f"{name}.plan1.json").read_text()
    raw = json.loads(text)
    old = plan_from_json(text)
    assert [(x.name, x.kind.value, list(x.nodes), x.rule, list(x.absorbed), x.time_ms) for x in old.layers] == \
        [(r["name"], r["kind"], r["nodes"], r["rule"], r["absorbed"], r["time_ms"]) for r in raw["layers"]]
    assert {n: str(e) for n, e in old.eliminated.items()} == raw["eliminated"]


def test_v1_classic_plan_is_todays_classic_prediction() -> None:
    """The classic target's rules did not change: the old file is today's prediction."""
    old = plan_from_json((DATA / "inception3a-classic.plan1.json").read_text())
    now = predict(load(zoo.build("inception3a", batch=1)), "classic").plan
    assert [(x.name, x.nodes, x.rule, x.kind, x.absorbed, x.branches) for x in old.layers] == \
        [(x.name, x.nodes, x.rule, x.kind, x.absorbed, x.branches) for x in now.layers]
    assert {n: e.how for n, e in old.eliminated.items()} == {n: e.how for n, e in now.eliminated.items()}


def test_v1_merged_layer_gets_its_branches() -> None:
    old = plan_from_json((DATA / "inception3a-classic.plan1.json").read_text())
    merged = [x for x in old.layers if x.rule == "merge_siblings"]
    assert len(merged) == 1
    assert [b[0] for b in merged[0].branches] == [
        "inception_3a/1x1", "inception_3a/3x3_reduce", "inception_3a/5x5_reduce"]
    assert old.eliminated["inception_3a/output"].how is How.CONCAT


def test_v1_engine_plan_keeps_layer_types_as_engine_types() -> None:
    raw = json.loads((DATA / "resnet18-a100-fp16-engine.plan1.json").read_text())
    old = plan_from_json(json.dumps(raw))
    assert len(old.layers) == len(raw["layers"]) == 36
    for layer, row in zip(old.layers, raw["layers"], strict=True):
        assert layer.engine_type == row["kind"] and layer.nodes == tuple(row["nodes"])
    kinds = {x.engine_type: x.kind for x in old.layers}
    assert kinds["CaskConvolution"] is Kind.CONVOLUTION and kinds["Reformat"] is Kind.REFORMAT
    assert sum(x.time_ms or 0.0 for x in old.layers) == pytest.approx(1.016832, abs=1e-6)
    assert {e.how for e in old.eliminated.values()} <= {How.CONSTANT, How.ABSORBED, How.UNNAMED}

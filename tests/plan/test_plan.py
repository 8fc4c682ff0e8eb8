"""Plans: layer lookups, the JSON round trip and the rejection of documents of another kind."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from fusionlab.errors import FusionlabError
from fusionlab.plan import Elimination, How, Kind, Layer, Plan
from fusionlab.plan.serialize import (
    LAYER_KEYS,
    PLAN_KEYS,
    SCHEMA,
    plan_from_dict,
    plan_from_json,
    plan_to_dict,
    plan_to_json,
)


def sample_plan() -> Plan:
    """
    x ── Conv_0 ── BatchNormalization_1 ── Relu_2 ── Flatten_3 ── Gemm_4 ── y
         └──────── one layer (BN folded) ──────┘      eliminated   └ layer ┘
    plus an engine-inserted reformat layer (no nodes)
    """
    return Plan(
        layers=(
            Layer("Conv_0 + Relu_2", "Convolution", ("Conv_0", "BatchNormalization_1", "Relu_2"),
                  "fuse_conv_activation", absorbed=("BatchNormalization_1",),
                  inputs=("x",), outputs=("relu_out",), time_ms=0.125),
            Layer("Reformatting CopyNode for Input Tensor 0 to Gemm_4", Kind.REFORMAT,
                  engine_type="Reformat"),
            Layer("Gemm_4", "FullyConnected", ("Gemm_4",), "unfused", inputs=("flat",),
                  outputs=("y",)),
        ),
        eliminated={"Flatten_3": Elimination(How.ABSORBED,
                                             "absorbed into the following fully connected layer")},
        source="predicted", target="trt10", precision="fp16", batch=32, model="cnn",
    )


def test_layer_lookups() -> None:
    plan = sample_plan()
    assert plan.layer_of("BatchNormalization_1") is plan.layers[0]
    assert plan.layer_of("Flatten_3") is None
    assert plan.node_to_layer() == {"Conv_0": 0, "BatchNormalization_1": 0, "Relu_2": 0,
                                    "Gemm_4": 2}
    assert plan.covered == frozenset({"Conv_0", "BatchNormalization_1", "Relu_2", "Gemm_4"})
    assert [layer.inserted for layer in plan.layers] == [False, True, False]
    other = plan.with_layers(plan.layers[:1])
    assert len(other.layers) == 1 and other.eliminated == plan.eliminated
    assert other.target == "trt10"


def test_json_round_trip_is_exact_and_canonical() -> None:
    plan = sample_plan()
    text = plan_to_json(plan)
    assert plan_from_json(text) == plan
    assert plan_to_json(plan_from_json(text)) == text  # stable text: golden files don't churn
    data = json.loads(text)
    assert tuple(data) == PLAN_KEYS
    assert data["schema"] == SCHEMA == "fusionlab.plan/2"
    assert all(tuple(layer) == LAYER_KEYS for layer in data["layers"])
    assert data["layers"][0]["time_ms"] == 0.125 and data["layers"][2]["time_ms"] is None
    assert text.endswith("}\n") and text.startswith('{\n  "schema"')


def test_round_trip_of_an_empty_plan_keeps_defaults() -> None:
    plan = Plan(layers=())
    assert plan_from_dict(plan_to_dict(plan)) == plan


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schema": "fusionlab.plan/3", "layers": [], "eliminated": {}},
         "expected schema 'fusionlab.plan/2' (or fusionlab.plan/1), got 'fusionlab.plan/3'"),
        ({"layers": [], "eliminated": {}}, "expected schema 'fusionlab.plan/2' (or fusionlab.plan/1), got None"),
        ({"Layers": [], "Bindings": []}, "expected schema"),  # a TensorRT layer-info file
        ([{"count": 10}], "expected an object"),  # a trtexec profile
        ({"schema": SCHEMA, "layers": {}, "eliminated": {}}, "'layers' must be a list"),
        ({"schema": SCHEMA, "layers": [{"kind": "Pooling"}], "eliminated": {}},
         "layer 0 has no name"),
        ({"schema": SCHEMA, "layers": [{"name": "a", "nodes": "a"}], "eliminated": {}},
         "layer 0 nodes must be a list of strings"),
        ({"schema": SCHEMA, "layers": [{"name": "a", "time_ms": "fast"}], "eliminated": {}},
         "layer 0 time_ms must be a number"),
        ({"schema": SCHEMA, "layers": [], "eliminated": {}, "batch": "32"},
         "batch must be a whole number"),
        ({"schema": SCHEMA, "layers": [], "eliminated": {"a": 1}}, "eliminated node 'a' needs a 'how'"),
        ({"schema": SCHEMA, "layers": [], "eliminated": {"a": {"how": "vanished"}}},
         "eliminated node 'a': unknown how 'vanished'"),
        ({"schema": "fusionlab.plan/1", "layers": [], "eliminated": {"a": 1}}, "'eliminated' must map"),
        ({"schema": SCHEMA, "layers": [{"name": "a", "kind": "Cask"}], "eliminated": {}},
         "layer 0 has an unknown kind 'Cask'"),
        ({"schema": SCHEMA, "layers": [{"name": "a", "kind": "Pooling", "branches": "a"}], "eliminated": {}},
         "layer 0 branches must be a list of lists of strings"),
        ({"schema": SCHEMA, "layers": [], "eliminated": {}, "target": 10},
         "target must be a string"),
    ],
)
def test_documents_of_another_kind_are_rejected(doc: Any, message: str) -> None:
    with pytest.raises(FusionlabError, match=re.escape(message)):
        plan_from_json(json.dumps(doc))


def test_text_that_is_not_json_is_rejected() -> None:
    with pytest.raises(FusionlabError, match=r"plan JSON: not valid JSON \(.* at line 1\)"):
        plan_from_json("{not json")


def test_branches_and_engine_types_round_trip() -> None:
    """
    x ─┬─ a ─┐
       └─ b ─┴─ one merged layer "a || b"; its branches are fields, not parsed from the name
    """
    merged = Layer("a || b", Kind.CONVOLUTION, ("a", "b"), "merge_siblings", branches=(("a",), ("b",)))
    engine = Layer("a || b", Kind.CONVOLUTION, ("a", "b"), branches=(("a",), ("b",)),
                   engine_type="CaskConvolution")
    for layer in (merged, engine):
        back = plan_from_json(plan_to_json(Plan((layer,))))
        assert back.layers[0] == layer and back.layers[0].merged


def test_layer_kind_accepts_its_value_and_rejects_other_words() -> None:
    assert Layer("p", "Pooling").kind is Kind.POOLING
    with pytest.raises(ValueError):
        Layer("p", "CaskPooling")  # an engine type is not a kind: pass engine_type=


def test_shared_nodes_round_trip_and_ownership() -> None:
    from fusionlab.plan.serialize import plan_from_json, plan_to_json

    kgen = Layer("bn + conv", Kind.POINTWISE, ("bn", "conv"), "rtx_pointwise", shared=("conv",))
    plan = Plan((Layer("conv", Kind.CONVOLUTION, ("conv",), "unfused"), kgen))
    assert plan_from_json(plan_to_json(plan)) == plan
    assert plan.node_to_layer() == {"conv": 0, "bn": 1}
    assert plan.node_to_layers() == {"conv": (0, 1), "bn": (1,)}
    assert plan.layer_of("conv").name == "conv" and kgen.owned == ("bn",)
    assert "shared" not in plan_to_json(Plan((Layer("conv", Kind.CONVOLUTION, ("conv",)),)))

"""Write in trtexec's formats, read back, get the same data.

Plans and profiles come from the recorded engines (records) and from fusionlab's
own predictor; the writers' output must also keep the shape that tools reading trtexec
files expect (TREx reads ``Layers``/``Bindings`` and each tensor's ``Name``,
``Dimensions`` and ``Format/Datatype``).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from fusionlab import zoo
from fusionlab.formats.trtexec import (
    format_profile_table,
    format_summary,
    join_profile,
    layer_info_to_json,
    parse_profile_table,
    profile_to_json,
    read_layer_info,
    read_profile,
    read_summary,
    read_times,
    read_trex_metadata,
    times_to_json,
)
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Elimination, How, Layer, Plan
from fusionlab.plan.profile import InferenceTrace, LayerTime, Profile, summarize_times
from tests.records import RESNET18 as RECORDS


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    return load(zoo.build("resnet18", batch=32))


def actual(precision: str, graph: Graph | None = None) -> Plan:
    plan = read_layer_info(RECORDS / precision / "engine.graph.json", graph)
    return join_profile(plan, read_profile(RECORDS / precision / "engine.profile.json"))


# ---------------------------------------------------------------------------------------
# Layer information


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_actual_plan_round_trip(precision: str, resnet18: Graph) -> None:
    plan = actual(precision, resnet18)
    assert read_layer_info(layer_info_to_json(plan, resnet18), resnet18) == plan


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_trtexec_fields_alone_carry_the_plan(precision: str, resnet18: Graph) -> None:
    """Without fusionlab's extras, TensorRT's own fields give back names, kinds, nodes,
    tensors, precision, batch and (with the graph) the eliminated nodes; times live in
    the profile."""
    plan = actual(precision, resnet18)
    text = layer_info_to_json(plan, resnet18, extras=False)
    assert "fusionlab" not in json.loads(text)
    back = read_layer_info(text, resnet18)
    assert back == plan.with_layers(replace(layer, time_ms=None) for layer in plan.layers)


def test_written_file_has_the_shape_trex_reads(resnet18: Graph) -> None:
    doc = json.loads(layer_info_to_json(actual("fp16", resnet18), resnet18))
    assert doc["Bindings"] == ["input.1", "191"]
    conv = next(x for x in doc["Layers"] if x["Name"] == "Conv_0 + Relu_1")
    assert conv["LayerType"] == "CaskConvolution"
    assert conv["Metadata"] == "[ONNX Layer: Conv_0]\x1e[ONNX Layer: Relu_1]"
    assert conv["Outputs"][0] == {
        "Name": "onnx::MaxPool_125", "Location": "Device", "Dimensions": [32, 64, 112, 112],
        "Format/Datatype": "Row major linear FP16 format",
    }
    for layer in doc["Layers"]:
        for t in (*layer["Inputs"], *layer["Outputs"]):
            assert {"Name", "Dimensions", "Format/Datatype"} <= set(t)


def test_trt11_style_round_trip(resnet18: Graph) -> None:
    plan = actual("fp32", resnet18)
    text = layer_info_to_json(plan, resnet18, style="11", extras=False)
    doc = json.loads(text)
    assert "Bindings" not in doc
    assert [(t["Name"], t["IOMode"], t["DataType"]) for t in doc["I/O Tensors"]] == [
        ("input.1", "Input", "Float"), ("191", "Output", "Float")
    ]
    assert read_layer_info(text, resnet18) == plan.with_layers(
        replace(layer, time_ms=None) for layer in plan.layers
    )


def test_names_only_round_trip() -> None:
    plan = read_layer_info(RECORDS / "fp32" / "engine.graph.json")
    back = read_layer_info(layer_info_to_json(plan, names_only=True, extras=False))
    assert [x.name for x in back.layers] == [x.name for x in plan.layers]
    assert [x.nodes for x in back.layers] == [x.nodes for x in plan.layers]


def test_predicted_plan_round_trip(resnet18: Graph) -> None:
    """A plan of fusionlab's own (rules, absorbed nodes, eliminated reasons) survives."""
    plan = Plan(
        layers=(
            Layer("Conv_0 + Relu_1", "Convolution", ("Conv_0", "Relu_1"), "fuse_conv_activation"),
            Layer("MaxPool_2", "Pooling", ("MaxPool_2",), "unfused", time_ms=0.25),
            Layer("MaxPool_2 copy", "Copy"),
            Layer("Gemm_48", "FullyConnected", ("Gemm_48",), "unfused", absorbed=("Flatten_47",),
                  inputs=("onnx::Flatten_189",), outputs=("191",)),
        ),
        eliminated={"Flatten_47": Elimination(How.ABSORBED, "absorbed into the following fully connected layer")},
        source="predicted",
        target="trt10",
        precision="fp16",
        batch=32,
        model="resnet18",
    )
    assert read_layer_info(layer_info_to_json(plan)) == plan
    assert read_layer_info(layer_info_to_json(plan, resnet18), resnet18) == plan


def test_predictor_output_round_trip(resnet18: Graph) -> None:
    from fusionlab.fusion.predictor import predict

    plan = predict(resnet18, "trt10", "fp32").plan
    assert read_layer_info(layer_info_to_json(plan, resnet18), resnet18) == plan


# ---------------------------------------------------------------------------------------
# Profiles


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_profile_json_round_trip(precision: str) -> None:
    profile = read_profile(RECORDS / precision / "engine.profile.json")
    text = profile_to_json(profile)
    assert read_profile(text) == profile
    # same text layout as trtexec's exporter, number for number
    original = (RECORDS / precision / "engine.profile.json").read_text()
    assert text.splitlines()[:3] == original.splitlines()[:3]


def test_profile_json_escapes_names_and_keeps_four_key_records() -> None:
    profile = Profile(
        layers=(LayerTime('Conv "a" \\ b', 0.75, 0.25, None, None), LayerTime("x", 0.25, 0.125)),
        runs=3,
        source="trtexec --exportProfile",
    )
    text = profile_to_json(profile)
    records = json.loads(text)  # valid JSON, unlike trtexec's own for such names
    assert "medianMs" not in records[1]
    assert records[1]["percentage"] == 75.0
    back = read_profile(text)
    assert [t.name for t in back.layers] == ['Conv "a" \\ b', "x"]
    assert back.runs == 3
    assert back.layers[0].median_ms is None


@pytest.mark.parametrize("layout", ["new", "old"])
def test_profile_table_round_trip(layout: str) -> None:
    profile = read_profile(RECORDS / "fp16" / "engine.profile.json")
    exact = parse_profile_table(format_profile_table(profile, layout=layout, exact=True))
    assert exact is not None
    assert exact.layers == profile.layers and exact.runs == profile.runs
    rounded = parse_profile_table(format_profile_table(profile, layout=layout))
    assert rounded is not None
    assert [t.name for t in rounded.layers] == [t.name for t in profile.layers]
    for a, b in zip(rounded.layers, profile.layers, strict=True):
        assert a.average_ms == pytest.approx(b.average_ms, abs=5e-5)


def test_old_table_without_medians_has_three_columns() -> None:
    profile = Profile(layers=(LayerTime("conv1 + relu1", 217.14, 0.44, None, 6.9),), runs=490)
    text = format_profile_table(profile, layout="old")
    assert "Median" not in text
    back = parse_profile_table(text)
    assert back is not None and back.layers == profile.layers and back.runs == 490


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_summary_round_trip(precision: str) -> None:
    profile = read_trex_metadata(RECORDS / precision / "engine.profile.metadata.json")
    text = format_summary(profile)
    assert text.startswith("=== Performance summary ===\nThroughput: ")
    assert read_summary(text) == profile.summary


def test_summary_round_trip_exact() -> None:
    traces = [
        InferenceTrace(0.0, 0.0, 0.0, 1.0 / 3, 1.0 / 3, 1.0 / 3, -1.0, -0.9),
        InferenceTrace(1.0, 1.0, 1.0, 1.5, 1.5, 1.5, 0.0, 0.2),
        InferenceTrace(2.0, 2.0, 2.0, 2.25, 2.25, 2.25, 1.0, 1.05),
    ]
    summary = summarize_times(traces)
    assert read_summary(format_summary(summary, exact=True)) == summary
    assert read_summary(format_summary(summary)) != summary  # six digits lose 1/3


def test_times_round_trip() -> None:
    traces = (
        InferenceTrace(0.0, 0.0, 0.0, 1.0 / 3, 1.0 / 3, 1.0 / 3, -1.0, -0.9),
        InferenceTrace(1.0, 1.125, 1.125, 2.0, 2.0, 2.5),
    )
    text = times_to_json(traces)
    assert read_times(text) == traces
    first = json.loads(text)[0]
    assert first["latencyMs"] == pytest.approx(1.0 / 3)
    assert list(first)[:2] == ["startEnqMs", "endEnqMs"]

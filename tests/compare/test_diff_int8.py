"""diff of explicitly quantized (Q/DQ) models: the TensorRT 8 QAT record, and the INT8
findings on crafted cases (a missing DQ on a residual input, an unfused Q/DQ pair, a layer
in float, a reformat the engine did not need)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fusionlab import zoo
from fusionlab.api import diff
from fusionlab.compare.diff import Diff, compare, diff_to_dict
from fusionlab.formats.trtexec import join_profile, read_layer_info, read_profile
from fusionlab.fusion.predictor import Prediction, predict
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Plan
from tests.fusion.passes.netbuilder import Net
from tests.records import RESNET18_QAT

QDQ_REFORMATS = [
    "QuantizeLinear_2", "QuantizeLinear_15", "QuantizeLinear_40", "QuantizeLinear_65",
    "QuantizeLinear_101", "QuantizeLinear_126", "QuantizeLinear_162", "QuantizeLinear_187",
    "QuantizeLinear_223", "QuantizeLinear_250",
]


@pytest.fixture(scope="module")
def resnet18_qat() -> Graph:
    return load(zoo.build("resnet18-qat"), batch=32)


@pytest.fixture(scope="module")
def record(resnet18_qat: Graph) -> Plan:
    return join_profile(
        read_layer_info(RESNET18_QAT / "engine.graph.json", graph=resnet18_qat),
        read_profile(RESNET18_QAT / "engine.profile.json"),
    )


@pytest.mark.parametrize("target", ["trt8", "trt10", "trt11"])
def test_resnet18_qat_matches_every_engine_layer(
    resnet18_qat: Graph, record: Plan, target: str
) -> None:
    d = diff(predict(resnet18_qat, target, "int8"), record)
    assert (d.metrics.exact_matches, d.metrics.engine_layers) == (33, 33)
    assert [m.status for m in d.matches] == ["matched"] * 33
    assert d.metrics.pair_precision == d.metrics.pair_recall == 1.0
    # trt10/trt11: a Gemm is Myelin's and no CASK fully connected layer absorbs the Flatten
    # (Target.fc_ops empty); this TensorRT 8 engine's FC absorbed it
    assert [n for n, _, _ in d.eliminated_disagreements] == (
        [] if target == "trt8" else ["Flatten_247"])
    assert d.inserted == (
        "Reformatting CopyNode for Output Tensor 0 to MaxPool_12",
        "Reformatting CopyNode for Input Tensor 0 to GlobalAveragePool_246",
        d.inserted[2],  # the NoOp reformat before the fully connected layer
        "copied_squeeze_after_(Unnamed Layer* 307) [ElementWise]",
    )
    assert d.int8 is not None
    assert list(d.int8.engine_reformats) == QDQ_REFORMATS
    assert d.int8.matched_reformats == d.int8.engine_reformats == d.int8.predicted_reformats
    assert d.int8.int8_layers == 21  # 20 convolutions and the fully connected layer
    # the engine's names omit the downsample's weight DQ and BN, the fc's DQs: not misses
    assert {"DequantizeLinear_94", "BatchNormalization_96", "DequantizeLinear_253"} <= set(
        d.unnamed_inside
    )
    assert diff_to_dict(d)["int8"]["matched_reformats"] == QDQ_REFORMATS


def test_resnet18_qat_int8_findings_name_rule_and_condition(
    resnet18_qat: Graph, record: Plan
) -> None:
    d = diff(predict(resnet18_qat, "trt8", "int8"), record)
    reformats = {f.hazard.split("'")[1]: f for f in d.findings if f.status == "int8-reformat"}
    assert sorted(reformats) == sorted(QDQ_REFORMATS)
    # a residual layer with a float residual writes float: its Q stays a reformat
    for q in ("QuantizeLinear_40", "QuantizeLinear_65", "QuantizeLinear_101", "QuantizeLinear_223"):
        assert (reformats[q].rule, reformats[q].condition) == ("fuse_qdq_conv", 4)
    # pooling with a float input runs in float: the Q after it stays a reformat
    for q in ("QuantizeLinear_15", "QuantizeLinear_250"):
        assert (reformats[q].rule, reformats[q].condition) == ("propagate_qdq", 2)
    assert reformats["QuantizeLinear_2"].rule is None
    assert "network input" in reformats["QuantizeLinear_2"].likely_cause
    assert not [f for f in d.findings if not f.status.startswith("int8-")]


def _pair(net: Net, target: str = "trt8") -> tuple[Prediction, Plan]:
    p = predict(net.graph(), target, "int8")
    return p, replace(p.plan, source="trtexec json", target=None)


def _residual_net() -> Net:
    #   x -> rx ─┬────────────────────────────┐
    #            └─> q -> dq -> c (Q/DQ weights) ─ add -> relu -> d.in.q -> d.in.dq -> d
    return (Net().relu("rx", "x").qconv("c", "rx").add("add", "c", "rx").relu("relu", "add")
            .qconv("d", "relu"))


def test_finding_missing_dq_on_a_residual_input() -> None:
    prediction, engine = _pair(_residual_net())
    d = diff(prediction, engine)
    (finding,) = [f for f in d.findings if f.status == "int8-reformat" and "'d.in.q'" in f.hazard]
    assert (finding.rule, finding.condition) == ("fuse_qdq_conv", 4)
    assert "the residual rx is float" in finding.likely_cause
    assert "quantize the residual" in finding.help
    assert d.metrics.exact_match_rate == 1.0


def test_finding_engine_fused_what_the_prediction_left_a_reformat() -> None:
    # an engine that fused d.in.q into the residual layer anyway (a newer TensorRT, say)
    prediction, engine = _pair(_residual_net())
    c = engine.layer_of("c")
    q = engine.layer_of("d.in.q")
    assert c is not None and q is not None
    fused = replace(c, nodes=(*c.nodes, "d.in.q"), name=c.name)
    engine = engine.with_layers(fused if layer is c else layer for layer in engine.layers
                                if layer is not q)
    d: Diff = diff(prediction, engine)
    merged = next(f for f in d.findings if f.status == "merged")
    assert (merged.rule, merged.condition) == ("fuse_qdq_conv", 4)
    extra = next(f for f in d.findings if f.hazard.startswith("predicted, not in the engine"))
    assert (extra.rule, extra.condition) == ("fuse_qdq_conv", 4)


def test_finding_unfused_pair() -> None:
    #   x -> r -> p.q -> p.dq -> sig     (nothing INT8 between them)
    prediction, engine = _pair(Net().relu("r", "x").qdq("p", "r").op("Sigmoid", "sig", "p.dq"))
    d = diff(prediction, engine)
    (finding,) = [f for f in d.findings if f.status == "int8-unfused-pair"]
    assert "'p.q' quantizes and 'p.dq' dequantizes" in finding.hazard
    assert finding.rule == "propagate_qdq"


def test_finding_layer_in_float_because_its_input_has_no_dq() -> None:
    prediction, engine = _pair(Net().relu("r", "x").qconv("c", "r", dq_input=False))
    d = diff(prediction, engine)
    (finding,) = [f for f in d.findings if f.status == "int8-float"]
    assert (finding.rule, finding.condition) == ("fuse_qdq_conv", 2)
    assert "runs in float" in finding.hazard


def test_float_models_get_no_int8_findings() -> None:
    prediction, engine = _pair(Net().conv("c", "x").relu("r", "c"))
    d = compare(prediction.plan, engine, graph=prediction.graph)
    assert d.int8 is None and d.findings == ()

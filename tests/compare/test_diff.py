"""diff: real engines (records) against predictions, and the classification rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fusionlab import zoo
from fusionlab.compare.diff import compare, diff_to_dict
from fusionlab.formats.trtexec import join_profile, read_layer_info, read_profile
from fusionlab.fusion.predictor import predict
from fusionlab.fusion.targets import TARGETS
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Elimination, How, Layer, Plan
from tests.records import RESNET18 as RECORDS


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    return load(zoo.build("resnet18"), batch=32)


def _diff(g: Graph, target: object, precision: str):  # type: ignore[no-untyped-def]
    folder = RECORDS / precision
    actual = join_profile(read_layer_info(folder / "engine.graph.json", graph=g),
                          read_profile(folder / "engine.profile.json"))
    prediction = predict(g, target, precision)  # type: ignore[arg-type]
    return compare(prediction.plan, actual, ops={n.name: n.op for n in g.nodes()},
                   rejections=[r for s in prediction.stages for r in s.rejections],
                   target_passes=prediction.target.passes)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_trt8_matches_every_engine_layer(resnet18: Graph, precision: str) -> None:
    d = _diff(resnet18, "trt8", precision)
    assert (d.metrics.exact_matches, d.metrics.engine_layers) == (23, 23)
    assert d.metrics.pair_precision == d.metrics.pair_recall == 1.0
    assert [m.status for m in d.matches] == ["matched"] * 23
    assert d.findings == () and d.eliminated_disagreements == ()
    assert len(d.inserted) == {"fp32": 9, "fp16": 13}[precision]
    recorded = sum(t.average_ms for t in read_profile(RECORDS / precision / "engine.profile.json").layers)
    assert d.totals["actual_ms"] == pytest.approx(recorded)


def test_target_without_residual_fusion_names_the_rule(resnet18: Graph) -> None:
    trt8 = TARGETS["trt8"]
    wrong = replace(trt8, name="no-residual", passes=tuple(p for p in trt8.passes if p != "fuse_conv_add"))
    d = _diff(resnet18, wrong, "fp32")
    merged = d.by_status("merged")
    assert len(merged) == 8  # the eight residual blocks of ResNet-18
    assert d.metrics.exact_matches == 15 and d.metrics.pair_recall < 0.6 and d.metrics.pair_precision == 1.0
    assert {f.rule for f in d.findings} == {"fuse_conv_add"}
    block = next(m for m in merged if "Conv_16 + Add_17 + Relu_18" in m.actual)
    assert set(block.predicted) == {"Conv_16", "PWN(Add_17, Relu_18)"}
    assert all("does not run rule 'fuse_conv_add'" in f.likely_cause for f in d.findings)


def test_split_names_the_rule_that_formed_the_predicted_layer() -> None:
    # constructed plans: the classification itself, independent of any engine
    predicted = Plan((Layer("c + r", "Convolution", ("c", "r"), "fuse_conv_activation"),
                      Layer("p", "Pooling", ("p",), "unfused")))
    actual = Plan((Layer("c", "Convolution", ("c",), engine_type="CaskConvolution"), Layer("r", "Activation", ("r",)),
                   Layer("p", "Pooling", ("p",), engine_type="CaskPooling"),
                   Layer("Reformatting CopyNode for Input Tensor 0 to p", "Reformat")),
                  source="trtexec json")
    d = compare(predicted, actual)
    assert [m.status for m in d.matches] == ["split", "matched"]
    assert d.findings[0].status == "split" and d.findings[0].rule == "fuse_conv_activation"
    assert d.inserted == ("Reformatting CopyNode for Input Tensor 0 to p",)
    assert (d.metrics.exact_matches, d.metrics.engine_layers) == (1, 3)
    assert d.metrics.pair_precision == 0.0 and d.metrics.pair_recall == 1.0


def test_mismatch_and_eliminated_disagreements() -> None:
    absorbed = Elimination(How.ABSORBED, "absorbed")
    predicted = Plan((Layer("a + b", "PointWise", ("a", "b"), "fuse_pointwise"), Layer("c", "PointWise", ("c",))),
                     eliminated={"f": absorbed})
    actual = Plan((Layer("a", "PointWise", ("a",)), Layer("b + c", "PointWise", ("b", "c")),
                   Layer("f", "Shuffle", ("f",))))
    d = compare(predicted, actual)
    assert [m.status for m in d.matches] == ["mismatched"]
    assert d.eliminated_disagreements == (("f", absorbed, None),)
    assert diff_to_dict(d)["eliminated_disagreements"] == [
        {"node": "f", "predicted": {"how": "absorbed", "reason": "absorbed"}, "actual": None}]
    assert diff_to_dict(d)["schema"] == "fusionlab.diff/2"


def test_layers_sharing_nodes_pair_by_identical_node_sets() -> None:
    # TensorRT-RTX: conv is in its own kernel and in the kgen its bias moved to; an LRN is
    # three kernels, each [lrn]. Identical node sets pair one to one, as a multiset.
    #   x -> conv -> bn -> relu -> lrn
    predicted = Plan((
        Layer("conv", "Convolution", ("conv",), "unfused"),
        Layer("bn + relu + conv", "PointWise", ("bn", "relu", "conv"), "rtx_pointwise", shared=("conv",)),
        Layer("lrn", "LRN", ("lrn",), "unfused"),
        Layer("lrn", "Pooling", ("lrn",), "rtx_lrn", shared=("lrn",)),
        Layer("lrn", "PointWise", ("lrn",), "rtx_lrn", shared=("lrn",)),
    ), target="rtx")
    actual = Plan((
        Layer("conv_myl0_0", "Convolution", ("conv",), engine_type="correlation"),
        Layer("__myl_MulAddRelu_myl0_1", "PointWise", ("conv", "bn", "relu"), engine_type="kgen"),
        Layer("__myl_Mul_myl0_2", "PointWise", ("lrn",), engine_type="kgen"),
        Layer("lrn_pooling_myl0_3", "Pooling", ("lrn",), engine_type="avgpool"),
        Layer("__myl_MulAddPowDiv_myl0_4", "PointWise", ("lrn",), engine_type="kgen"),
        Layer("exit^bb^wait^0", "Sync"),
    ), source="TensorRT-RTX build log")
    d = compare(predicted, actual, target_passes=TARGETS["rtx"].passes)
    assert [m.status for m in d.matches] == ["matched"] * 5
    assert (d.metrics.exact_matches, d.metrics.engine_layers) == (5, 5)
    assert d.metrics.pair_precision == d.metrics.pair_recall == 1.0
    assert d.findings == ()


def test_layers_sharing_nodes_left_over_form_components_over_all_owners() -> None:
    # the engine kept the bias in the conv kernel: predicted kgen [bn relu conv] has no twin;
    # it is a component with the engine's kgen [bn relu] (they share bn and relu)
    predicted = Plan((
        Layer("conv", "Convolution", ("conv",), "unfused"),
        Layer("bn + relu + conv", "PointWise", ("bn", "relu", "conv"), "rtx_pointwise", shared=("conv",)),
    ))
    actual = Plan((
        Layer("conv_myl0_0", "Convolution", ("conv",), engine_type="correlation"),
        Layer("__myl_MulAddRelu_myl0_1", "PointWise", ("bn", "relu"), engine_type="kgen"),
    ), source="TensorRT-RTX build log")
    d = compare(predicted, actual, target_passes=TARGETS["rtx"].passes)
    assert [(m.status, m.predicted, m.actual) for m in d.matches] == [
        ("matched", ("conv",), ("conv_myl0_0",)),
        ("mismatched", ("bn + relu + conv",), ("__myl_MulAddRelu_myl0_1",)),
    ]
    assert (d.metrics.exact_matches, d.metrics.engine_layers) == (1, 2)


def test_rtx_misses_are_blamed_on_rtx_rules() -> None:
    predicted = Plan((Layer("conv", "Convolution", ("conv",), "unfused"),
                      Layer("relu", "PointWise", ("relu",), "rtx_pointwise")), target="rtx")
    actual = Plan((Layer("conv_myl0_0", "Convolution", ("conv", "relu"), engine_type="correlation"),),
                  source="TensorRT-RTX build log")
    d = compare(predicted, actual, ops={"conv": "Conv", "relu": "Relu"}, target_passes=TARGETS["rtx"].passes)
    assert [(f.status, f.rule) for f in d.findings] == [("merged", "rtx_conv_activation")]
    trt = compare(predicted, actual, ops={"conv": "Conv", "relu": "Relu"}, target_passes=TARGETS["trt10"].passes)
    assert [f.rule for f in trt.findings] == ["fuse_conv_activation"]

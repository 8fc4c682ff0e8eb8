"""The cost model: roofline arithmetic on small graphs, and fidelity on the recorded engines.

The record tests are deterministic computations on records (TensorRT 8 ResNet-18
engines at batch 32 on an A100 80GB PCIe): nothing is timed here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from onnx import helper

from fusionlab import zoo
from fusionlab.cost import model as cost
from fusionlab.cost.devices import get
from fusionlab.errors import FusionlabError
from fusionlab.formats.trtexec import (
    engine_info_to_plan,
    parse_engine_info,
    read_layer_info,
    read_profile,
    read_trex_metadata,
)
from fusionlab.fusion.partition import initial_plan
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Layer, Plan
from tests.fusion.passes.netbuilder import Net
from tests.records import RESNET18 as RECORDS

A100 = get("a100-80gb-pcie")


def conv_relu(kit: Any, c_in: int = 64, group: int = 1, relu: bool = True) -> Graph:
    """x[8,C,56,56] ── Conv(W[64,C/g,3,3], pad 1, group g) ── c ── Relu ── y[8,64,56,56]

    (group > 1: C output channels, depthwise; relu False: the Conv writes y.)
    """
    c_out = 64 if group == 1 else c_in
    nodes = [helper.make_node("Conv", ["x", "W"], ["c" if relu else "y"], pads=[1, 1, 1, 1],
                              group=group, name="conv")]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"], name="relu"))
    model = kit.model(nodes, [kit.value("x", [8, c_in, 56, 56])], [kit.value("y", None)],
                      [kit.weight("W", [c_out, c_in // group, 3, 3])])
    return load(model)


def only(plan: Plan) -> Layer:
    assert len(plan.layers) == 1
    return plan.layers[0]


# ---------------------------------------------------------------------------------------
# Pure functions


def test_roofline_is_the_slower_side_plus_overhead() -> None:
    assert cost.roofline_ms(0.1, 0.01, 0.5, 0.8, 0.003) == pytest.approx(0.203)
    assert cost.roofline_ms(0.01, 0.1, 0.5, 0.5, 0.0) == pytest.approx(0.2)


def test_spearman_matches_the_textbook_formula_without_ties() -> None:
    a = [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0]
    b = [2.0, 7.0, 1.0, 8.0, 2.5, 8.5, 3.0, 4.0]
    ra, rb = cost.ranks(a), cost.ranks(b)
    n = len(a)
    textbook = 1 - 6 * float(((ra - rb) ** 2).sum()) / (n * (n * n - 1))
    assert cost.spearman(a, b) == pytest.approx(textbook)


def test_spearman_averages_tied_ranks() -> None:
    assert cost.ranks([2.0, 1.0, 2.0, 2.0]).tolist() == [3.0, 1.0, 3.0, 3.0]
    assert math.isnan(cost.spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def test_metrics_count_only_layers_with_a_measured_time() -> None:
    m = cost.metrics([1.0, 2.0, 5.0], [1.0, 4.0, 0.0])
    assert m.layers == 2 and m.total_error_pct == pytest.approx(-40.0)
    assert m.median_abs_error_pct == pytest.approx(25.0)
    with pytest.raises(FusionlabError):
        cost.metrics([1.0], [0.0])


def test_math_follows_the_precision_and_the_device() -> None:
    assert cost.math_field("fp32", True, A100) == "tf32"
    assert cost.math_field("fp32", True, A100, tf32=False) == "fp32"
    assert cost.math_field("fp32", True, get("v100-sxm2")) == "fp32"  # no TF32 on Volta
    assert cost.math_field("fp16", True, A100) == "fp16_tensor"
    assert cost.math_field("bf16", False, A100) == "fp16"
    assert cost.math_field("int8", True, A100) == "int8_tensor"
    with pytest.raises(FusionlabError, match="no BF16"):
        cost.math_field("bf16", True, get("t4"))


# ---------------------------------------------------------------------------------------
# Layers of small graphs


def test_bytes_are_external_tensors_and_weights_at_the_precision_size(kit: Any) -> None:
    g = conv_relu(kit)
    layer = only(predict(g, "trt10", "fp32").plan)  # conv + relu
    elements = 2 * 8 * 64 * 56 * 56 + 64 * 64 * 9  # x and y, W; c stays on chip
    for precision, size in (("fp32", 4), ("fp16", 2), ("bf16", 2), ("int8", 1)):
        c = cost.layer_cost(g, layer, A100, precision)
        assert c.nbytes == elements * size, precision
        assert c.memory_ms == pytest.approx(elements * size / 1935e9 * 1e3)


def test_fusion_saves_the_intermediate_round_trip(kit: Any) -> None:
    g = conv_relu(kit)
    fused = cost.layer_costs(g, predict(g, "trt10", "fp16").plan, A100)
    unfused = cost.layer_costs(g, initial_plan(g, precision="fp16"), A100)
    intermediate = 8 * 64 * 56 * 56 * 2
    assert sum(c.nbytes for c in unfused) - sum(c.nbytes for c in fused) == 2 * intermediate
    t_fused = sum(c.time_ms() for c in fused)
    t_unfused = sum(c.time_ms() for c in unfused)
    # the Relu layer alone: read and write the intermediate, plus one layer's overhead
    assert t_unfused - t_fused == pytest.approx(2 * intermediate / (1935e9 * 0.8) * 1e3 + 0.003,
                                                rel=0.02)


def test_convolutions_run_on_tensor_cores_with_padded_channels(kit: Any) -> None:
    g = conv_relu(kit, c_in=12, relu=False)
    c = cost.layer_cost(g, only(predict(g, "trt10", "fp16").plan), A100, "fp16")
    flops = g.node("conv").cost.flops
    assert flops is not None and c.math == "fp16_tensor"
    assert c.compute_ms == pytest.approx(flops * 16 / 12 / 312e12 * 1e3)  # 12 -> 16 channels


@pytest.mark.parametrize(("precision", "expected"), [("fp16", "fp16"), ("fp32", "fp32")])
def test_too_few_channels_for_tensor_cores_run_on_cuda_cores(
    kit: Any, precision: str, expected: str
) -> None:
    """An RGB first layer: 3 channels, fewer than TF32's 4 or FP16's 8."""
    g = conv_relu(kit, c_in=3, relu=False)
    c = cost.layer_cost(g, only(predict(g, "trt10", precision).plan), A100, precision)
    assert c.math == expected
    assert c.compute_ms == pytest.approx(c.flops / (A100.figure(expected).value or 0) / 1e9)


def test_depthwise_convolution_runs_on_cuda_cores(kit: Any) -> None:
    g = conv_relu(kit, c_in=32, group=32, relu=False)
    c = cost.layer_cost(g, only(predict(g, "trt10", "fp16").plan), A100, "fp16")
    assert c.math == "fp16" and c.cls == "conv"


def test_fp32_uses_tf32_unless_disallowed(kit: Any) -> None:
    g = conv_relu(kit, relu=False)
    plan = predict(g, "trt10", "fp32").plan
    tf32 = cost.layer_cost(g, only(plan), A100, "fp32")
    fp32 = cost.layer_cost(g, only(plan), A100, "fp32", tf32=False)
    assert (tf32.math, fp32.math) == ("tf32", "fp32")
    assert fp32.compute_ms / tf32.compute_ms == pytest.approx(156.0 / 19.5)


def test_copy_layers_are_pure_memory_and_noops_take_no_time() -> None:
    g = load(zoo.build("inception3a", batch=1))
    plan = predict(g, "classic", "fp32").plan
    copy = next(layer for layer in plan.layers if layer.kind == "Copy")
    c = cost.layer_cost(g, copy, A100, "fp32")
    assert c.cls == "copy" and c.compute_ms == 0.0 and c.nbytes > 0
    assert c.time_ms() == pytest.approx(c.memory_ms / 0.8 + 0.003)
    noop = cost.layer_cost(g, Layer("reshape_after_x", "NoOp", (), inputs=copy.inputs,
                                    outputs=copy.outputs), A100, "fp32")
    assert noop.noop and noop.time_ms() == 0.0


def test_estimate_fills_every_layer_and_uses_the_efficiency(kit: Any) -> None:
    g = load(zoo.build("inception3a", batch=4))
    plan = predict(g, "trt10", "fp16").plan
    timed = cost.estimate(g, plan, "a100-80gb-pcie", "fp16")
    assert all(layer.time_ms is None for layer in plan.layers)
    assert all(layer.time_ms is not None and layer.time_ms > 0 for layer in timed.layers)
    assert [layer.name for layer in timed.layers] == [layer.name for layer in plan.layers]
    slow = cost.Efficiency({k: cost.ClassEfficiency(e.compute / 2, e.memory / 2)
                            for k, e in cost.DEFAULT_EFFICIENCY.classes.items()}, 0.003)
    halved = cost.estimate(g, plan, "a100-80gb-pcie", "fp16", slow)
    for a, b in zip(timed.layers, halved.layers, strict=True):
        assert b.time_ms == pytest.approx(2 * (a.time_ms or 0) - 0.003)


def test_efficiency_files_round_trip_and_reject_nonsense(tmp_path: Path) -> None:
    eff = cost.Efficiency({"conv": cost.ClassEfficiency(0.6, 0.75)}, 0.009, "a100", "fp32")
    path = tmp_path / "eff.json"
    path.write_text(cost.efficiency_to_json(eff, {"layers": 3}))
    assert cost.read_efficiency(path) == eff
    assert cost.read_efficiency(path).of("copy") == cost.DEFAULT_EFFICIENCY.classes["copy"]
    for text, message in (
        ("{", "not valid JSON"),
        ('{"schema": "x"}', "not an efficiency file"),
        ('{"schema": "fusionlab.efficiency/1", "classes": {"conv": {"compute": 0, '
         '"memory": 1}}}', "conv.compute must be a number above 0 and at most 1000"),
    ):
        path.write_text(text)
        with pytest.raises(FusionlabError, match=message):
            cost.read_efficiency(path)
    with pytest.raises(FusionlabError, match="no such file"):
        cost.read_efficiency(tmp_path / "missing.json")


# ---------------------------------------------------------------------------------------
# Explicit quantization (Q/DQ models)

N = 8 * 64 * 56 * 56
"""Elements of one [8,64,56,56] activation."""


def qconv_net(c_in: int = 64) -> Net:
    """x[8,C,56,56] ── c.in.q ── c.in.dq ──┐
                     W ── c.wq ── c.wdq ──┴─ Conv c ── Relu r ── out.q ── out.dq
    """
    net = Net(channels=c_in, size=56, batch=8).qconv("c", "x", 64, k=3).relu("r", "c")
    return net.qdq("out", "r")


def relu_ms(g: Graph) -> float:
    """The fused Relu's math: FP16 on CUDA cores (the float precision of an int8 build)."""
    return (g.node("r").cost.flops or 0) / (A100.figure("fp16").value or 0) / 1e9


def layer_with(plan: Plan, node: str) -> Layer:
    layer = plan.layer_of(node)
    assert layer is not None, node
    return layer


def test_an_int8_convolution_runs_on_int8_tensor_cores_with_int8_tensors() -> None:
    g = qconv_net().graph()
    conv = layer_with(predict(g, "trt8", "int8").plan, "c")
    assert {"c.in.dq", "c.wdq", "c", "r", "out.q"} <= set(conv.nodes)  # one INT8 layer
    c = cost.layer_cost(g, conv, A100, "int8")
    flops = g.node("c").cost.flops
    assert flops is not None and c.math.split("+")[0] == "int8_tensor"
    assert c.compute_ms == pytest.approx(
        flops / (A100.figure("int8_tensor").value or 0) / 1e9 + relu_ms(g))
    # input (c.in.q) and output (out.q) 1 byte, W quantized at build time (1 byte), scales
    assert c.nbytes == pytest.approx(2 * N + 64 * 64 * 9, abs=64)


def test_the_float_layers_of_an_int8_build_run_at_fp16() -> None:
    """``int8`` with Q/DQ is TensorRT's FP32+FP16+INT8 build: its float layers are FP16."""
    g = qconv_net().conv("f", "out.dq", 64, k=3).graph()  # f: a float convolution after it
    f = cost.layer_cost(g, layer_with(predict(g, "trt8", "int8").plan, "f"), A100, "int8")
    assert f.math == "fp16_tensor"
    assert f.nbytes == 2 * N * 2 + (64 * 64 * 9 + 64) * 2


def test_an_int8_first_layer_pads_its_rgb_channels_to_four() -> None:
    """3 input channels: CHW4 INT8 on tensor cores, where FP16 falls back to CUDA cores."""
    g = qconv_net(c_in=3).graph()
    c = cost.layer_cost(g, layer_with(predict(g, "trt8", "int8").plan, "c"), A100, "int8")
    flops = g.node("c").cost.flops
    assert flops is not None and c.math.split("+")[0] == "int8_tensor"
    assert c.compute_ms == pytest.approx(
        flops * 4 / 3 / (A100.figure("int8_tensor").value or 0) / 1e9 + relu_ms(g))


def test_qdq_reformats_are_memory_bound_copies() -> None:
    """A Q no layer absorbs is a Reformat: float in, INT8 out, no math."""
    g = Net(channels=64, size=56, batch=8).q("q", "x").dq("dq", "q").graph()
    c = cost.layer_cost(g, layer_with(initial_plan(g, precision="int8"), "q"), A100, "int8")
    assert c.cls == "copy" and c.compute_ms == 0.0
    assert c.nbytes == N * 2 + N * 1 + 2 + 1  # fp16 in, int8 out, its scale and zero point
    assert c.time_ms() == pytest.approx(c.memory_ms / 0.8 + 0.003)


def test_a_dequantize_layer_writes_float_an_eliminated_one_leaves_int8() -> None:
    """x ── q ── dq ── Relu r: dq as a layer of its own writes float; with no layer computing
    it (eliminated), r reads the INT8 tensor."""
    g = Net(channels=64, size=56, batch=8).q("q", "x").dq("dq", "q").relu("r", "dq").graph()
    plan = initial_plan(g, precision="int8")
    assert cost.layer_costs(g, plan, A100)[-1].nbytes == 2 * N * 2
    without_dq = plan.with_layers(layer for layer in plan.layers if layer.nodes != ("dq",))
    assert cost.layer_costs(g, without_dq, A100)[-1].nbytes == N * 1 + N * 2


def test_a_float_build_of_a_qdq_model_keeps_its_float_precision() -> None:
    g = qconv_net().graph()
    plan = predict(g, "trt8", "fp16").plan
    c = cost.layer_cost(g, layer_with(plan, "c"), A100, "fp16")
    assert c.math.split("+")[0] == "int8_tensor"  # the Q/DQ convolution is INT8 all the same
    q = cost.layer_cost(g, layer_with(plan, "c.in.q"), A100, "fp16")
    assert q.cls == "copy" and q.nbytes == N * (2 + 1) + 2 + 1


# ---------------------------------------------------------------------------------------
# The recorded engines


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    return load(zoo.build("resnet18"), batch=32)


def fidelity(graph: Graph, precision: str) -> tuple[cost.Comparison, float]:
    """Uncalibrated prediction of the recorded engine vs its profile, and its latency."""
    plan = cost.estimate(graph, predict(graph, "trt8", precision).plan, "a100-80gb-pcie",
                         precision)
    folder = RECORDS / precision
    summary = read_trex_metadata(folder / "engine.profile.metadata.json").summary
    assert summary is not None and summary.gpu_compute is not None
    return cost.compare(plan, read_profile(folder / "engine.profile.json")), (
        summary.gpu_compute.median_ms
    )


def samples(graph: Graph | None, precision: str) -> tuple[cost.Sample, ...]:
    """The recorded engine's own layers with their measured times (costs from the model's
    nodes with a graph, else from the inspector's fields)."""
    folder = RECORDS / precision
    info = parse_engine_info(folder / "engine.graph.json")
    if graph is None:
        costs = cost.engine_costs(info, A100, precision)
    else:
        plan = engine_info_to_plan(info, graph, precision=precision)
        costs = cost.layer_costs(graph, plan, A100, precision,
                                 tensor_bytes=cost.engine_tensor_bytes(info))
    found, _ = cost.join(costs, read_profile(folder / "engine.profile.json"))
    return found


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_uncalibrated_fidelity_on_the_records(resnet18: Graph, precision: str) -> None:
    """Issue 6 targets: total within 35 % of the GPU compute median, Spearman >= 0.8.

    Every predicted layer is in the engine under the same name; what the engine has beyond
    them are the layers it inserted (reformats, no-ops): they stay out of the correlation
    and the predicted total has nothing for them (their time is in the latency).
    """
    comparison, latency = fidelity(resnet18, precision)
    assert comparison.predicted_only == ()
    engine = read_layer_info(RECORDS / precision / "engine.graph.json", resnet18)
    inserted = {layer.name for layer in engine.layers if layer.inserted}
    assert {name for name, _ in comparison.engine_only} == inserted
    m = comparison.metrics
    assert m.layers == len(comparison.matched) == 23
    assert abs(comparison.total_error_pct(latency)) <= 35.0
    assert m.spearman >= 0.8


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("with_model", [True, False], ids=["model", "engine-json"])
def test_calibration_reduces_the_error_it_was_fitted_to(
    resnet18: Graph, precision: str, with_model: bool
) -> None:
    found = samples(resnet18 if with_model else None, precision)
    assert len(found) >= 24  # 21 convolutions and FC, 2 poolings, timed reformats
    before = cost.evaluate(found, cost.DEFAULT_EFFICIENCY)
    fitted = cost.fit(found, device="a100-80gb-pcie", precision=precision)
    after = cost.evaluate(found, fitted)
    assert after.rms_log_error < 0.75 * before.rms_log_error
    assert fitted.device == "a100-80gb-pcie" and fitted.precision == precision


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engine_fields_give_the_model_s_convolution_flops(resnet18: Graph,
                                                          precision: str) -> None:
    """Without the ONNX model, a convolution's FLOPs come from Kernel/OutMaps/Groups and
    the tensor dimensions of the inspector's JSON: the same count as the model's node."""
    info = parse_engine_info(RECORDS / precision / "engine.graph.json")
    engine = {c.name: c for c in cost.engine_costs(info, A100, precision)}
    checked = 0
    for name, c in engine.items():
        head = name.split(" + ")[0]
        if c.cls == "conv" and head in resnet18:
            assert c.flops == resnet18.node(head).cost.flops, name
            checked += 1
    assert checked == 21  # 20 convolutions and the fully connected layer

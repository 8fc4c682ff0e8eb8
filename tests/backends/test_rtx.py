"""The actual plan from a live TensorRT-RTX build, read from its build log (no GPU needed).

Marker ``rtx``: skipped, with the reason, where TensorRT-RTX is not installed. Each build
is small (a few seconds): the zoo's inception3a and mnist-cookbook, and a crash.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from onnx import helper

from fusionlab import zoo
from fusionlab.backends.rtx import RtxBuild, build_actual
from fusionlab.errors import FusionlabError
from fusionlab.formats.layer_info import read_layer_info
from fusionlab.ir.graph import load
from fusionlab.plan import Kind
from tests.conftest import OnnxKit


def _rtx_installed() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorrt_rtx", "tensorrt_rtx_bindings"))


needs_rtx = pytest.mark.skipif(not _rtx_installed(), reason="TensorRT-RTX is not installed (the rtx extra)")


@pytest.fixture(scope="module")
def inception3a(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RtxBuild]:
    if not _rtx_installed():
        pytest.skip("TensorRT-RTX is not installed (the rtx extra)")
    path = zoo.export("inception3a", tmp_path_factory.mktemp("zoo") / "inception3a.onnx")
    return path, build_actual(path, batch=1)


@pytest.mark.rtx
@needs_rtx
def test_inception3a_layers_from_the_build_log(inception3a: tuple[Path, RtxBuild]) -> None:
    path, build = inception3a
    assert build.builder.startswith("TensorRT-RTX ") and build.source == f"{build.builder} build log"
    plan = build.plan
    assert plan.source == build.source and plan.batch == 1 and plan.precision == "fp32"
    compute = [layer for layer in plan.layers if layer.nodes]
    assert len(compute) == 8  # ../scratch/rtx/REPORT.md: 8/8 matched by the prototype's rules
    sync = [layer for layer in plan.layers if layer.kind is Kind.SYNC]
    assert sync and all(layer.inserted and layer.engine_type in ("signal", "wait") for layer in sync)
    # every node but none twice in one layer; the concat's pointwise kernel carries 9 nodes
    concat = plan.layer_of("inception_3a/output")
    assert concat is not None and concat.engine_type == "kgen" and len(concat.nodes) == 9
    assert {n for layer in compute for n in layer.nodes} == set(load(path).order)
    assert build.log is not None and build.log.original_layers == 20 and build.log.memory


@pytest.mark.rtx
@needs_rtx
def test_layer_info_reads_back_to_the_same_plan(inception3a: tuple[Path, RtxBuild]) -> None:
    path, build = inception3a
    assert build.layer_info["I/O Tensors"][0]["Name"] == "data"
    assert {"Format", "DataType"} <= set(build.layer_info["Layers"][0]["Inputs"][0])
    text = build.layer_info_json()
    assert read_layer_info(text, load(path, batch=1)) == build.plan
    assert read_layer_info(text) == build.plan


@pytest.mark.rtx
@needs_rtx
def test_a_node_carried_by_several_kernels_stays_in_each(tmp_path: Path) -> None:
    path = zoo.export("mnist-cookbook", tmp_path / "mnist.onnx")
    plan = build_actual(path, batch=1).plan
    carrying = [layer.name for layer in plan.layers if "node_linear_1" in layer.nodes]
    assert len(carrying) == 2  # its Gemm's reduction kernel and the softmax's
    assert all(layer.kind is not Kind.SYNC for layer in plan.layers if layer.nodes)


@pytest.mark.rtx
@needs_rtx
def test_a_builder_crash_is_a_one_line_error(kit: OnnxKit) -> None:
    """Conv-BN chain, Add(t, t), Concat with earlier tensors: TensorRT-RTX 1.7 segfaults
    (../scratch/rtx/dumps/crash); the caller gets an error naming the model."""
    nodes, inits = [], []
    for i, (x, y) in enumerate((("x", "b1"), ("b1", "b2"), ("r2", "b3"))):
        inits += [kit.weight(f"w{i}", [16, 3 if i == 0 else 16, 3, 3]), kit.weight(f"c{i}", [16])]
        inits += [kit.weight(f"{k}{i}", [16]) for k in ("s", "o", "m")]
        inits.append(helper.make_tensor(f"v{i}", 1, [16], [1.0] * 16))
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"c{i}"], [f"t{i}"], name=f"conv{i}", pads=[1] * 4),
                  helper.make_node("BatchNormalization", [f"t{i}", f"s{i}", f"o{i}", f"m{i}", f"v{i}"], [y],
                                   name=f"bn{i}")]
        if i:
            nodes.append(helper.make_node("Relu", [y], [f"r{i + 1}"], name=f"act{i}"))
    nodes += [helper.make_node("Add", ["r3", "r3"], ["a"], name="add"),
              helper.make_node("Concat", ["a", "r2", "b1"], ["y"], name="concat", axis=1)]
    path = kit.save(kit.model(nodes, [kit.value("x", [1, 3, 32, 32])], [kit.value("y", None)], inits))
    try:
        build = build_actual(path)
    except FusionlabError as exc:
        message = str(exc)
    else:  # a later TensorRT-RTX that no longer crashes is fine
        assert not build.builder.endswith(" 1.7.1.116"), "TensorRT-RTX 1.7.1.116 crashed on this graph"
        return
    assert str(path) in message and "\n" not in message
    assert "crashed (SIGSEGV)" in message or "could not build" in message


@pytest.mark.rtx
@needs_rtx
def test_bad_model_is_an_error_before_any_build(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(FusionlabError, match=r"bad\.onnx"):
        build_actual(bad)


def test_missing_rtx_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("tensorrt_rtx", "tensorrt_rtx_bindings"):
        monkeypatch.setitem(sys.modules, name, None)
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        if name.startswith("tensorrt_rtx"):
            return None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(FusionlabError, match=r"fusionlab\[rtx\]"):
        build_actual(tmp_path / "model.onnx")

"""The live TensorRT backend.

- version capabilities and option checks: plain Python, always run;
- parse and build: through the same code path as ``fusionlab build``, with TensorRT-RTX's
  CPU builder (marker ``rtx``; skipped, with the reason, where TensorRT-RTX is missing);
- deserialize, inspect and profile: marker ``tensorrt`` + ``gpu``; they need NVIDIA
  TensorRT and a GPU it supports (TensorRT-RTX's runtime does not take data-centre GPUs),
  and skip with the reason elsewhere.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionlab import zoo
from fusionlab.backends.tensorrt import (
    Backend,
    BuildOptions,
    ProfileOptions,
    _precision_plan,
    build_engine,
    capabilities,
    engine_plan,
    load_backend,
    parse_shapes,
    profile_engine,
    provenance_warning,
    read_engine_file,
    resolve_shape,
    save_engine,
    sidecar_path,
)
from fusionlab.errors import FusionlabError
from fusionlab.ir.graph import load

TENSORRT_MODULES = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")


@pytest.fixture
def no_tensorrt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing any TensorRT module raises ImportError, as on a machine without it."""
    for name in TENSORRT_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture(scope="module")
def rtx() -> Backend:
    try:
        return load_backend("rtx")
    except FusionlabError as exc:
        pytest.skip(f"TensorRT-RTX is not installed ({exc})")


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The zoo's inception3a and resnet18 as files, batch left symbolic."""
    folder = tmp_path_factory.mktemp("zoo")
    return {name: zoo.export(name, folder / f"{name}.onnx") for name in ("inception3a", "resnet18")}


def weight_bytes(path: Path) -> int:
    model = onnx.load(str(path))
    return sum(numpy_helper.to_array(t).nbytes for t in model.graph.initializer)


def qdq_conv(path: Path) -> Path:
    r"""x ── Q ── DQ ──┐
    W ── Q ── DQ ──┴── Conv ── Relu ── y     (explicitly quantized: INT8 from the model)
    """
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array(0.02, np.float32), "xs"),
        numpy_helper.from_array(np.array(0, np.int8), "xz"),
        numpy_helper.from_array(np.array(0.01, np.float32), "ws"),
        numpy_helper.from_array(np.array(0, np.int8), "wz"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"]),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


# ----------------------------------------------------------------- versions and options


def test_capabilities_follow_the_version() -> None:
    trt10, trt11, rtx = (
        capabilities("tensorrt", "10.13.0.35"),
        capabilities("tensorrt", "11.0.0.9"),
        capabilities("rtx", "1.7.1.116"),
    )
    assert (trt10.has_precision_flags, trt10.has_int8_calibrator, trt10.strongly_typed_only) == (
        True,
        True,
        False,
    )
    for caps in (trt11, rtx):
        assert (caps.has_precision_flags, caps.has_int8_calibrator, caps.strongly_typed_only) == (
            False,
            False,
            True,
        )
    assert capabilities("tensorrt", "10.9.1").has_precision_flags  # compared as versions
    assert not capabilities("tensorrt", "8.6.1").has_progress_monitor
    assert rtx.has_progress_monitor and trt10.has_progress_monitor
    assert trt11.inspector_io_key == "I/O Tensors" and trt10.inspector_io_key == "Bindings"
    assert rtx.label == "TensorRT-RTX 1.7.1.116"
    assert trt10.has_timing_cache and trt11.has_timing_cache and not rtx.has_timing_cache
    assert capabilities("rtx", "1.1").has_timing_cache
    with pytest.raises(FusionlabError, match="cannot read the TensorRT version"):
        capabilities("tensorrt", "ten")


def test_how_each_precision_is_obtained() -> None:
    trt10, trt11 = capabilities("tensorrt", "10.13"), capabilities("tensorrt", "11.1")
    assert [_precision_plan(trt10, p, False) for p in ("fp32", "fp16", "bf16", "int8")] == [
        "none",
        "flag",
        "flag",
        "calibrate",
    ]
    assert _precision_plan(trt10, "int8", True) == "qdq"
    assert [_precision_plan(trt11, p, False) for p in ("fp16", "bf16")] == ["convert", "convert"]
    assert _precision_plan(trt11, "int8", True) == "qdq"
    with pytest.raises(FusionlabError, match="explicitly quantized model") as err:
        _precision_plan(trt11, "int8", False)
    assert "\n" not in str(err.value)


def test_missing_tensorrt_names_the_extra(no_tensorrt: None) -> None:
    for choice, extra in (("auto", "tensorrt"), ("tensorrt", "tensorrt"), ("rtx", "rtx")):
        with pytest.raises(FusionlabError) as err:
            load_backend(choice, "fusionlab build")
        assert f"pip install 'fusionlab[{extra}]'" in str(err.value)


def test_shapes() -> None:
    assert parse_shapes("a:1x2, b:c:3X4") == {"a": (1, 2), "b:c": (3, 4)}
    for bad in ("a", "a:1x0", "a:1xq", ":2", "a:1,a:2", ""):
        with pytest.raises(FusionlabError, match="--shapes"):
            parse_shapes(bad)
    assert resolve_shape("x", (-1, 3), {}, 8) == (8, 3)
    with pytest.raises(FusionlabError, match="fixed batch of 2"):
        resolve_shape("x", (2, 3), {}, 8)
    with pytest.raises(FusionlabError, match=r"--shapes x:Nx3xN"):
        resolve_shape("x", (-1, 3, -1), {}, None)
    with pytest.raises(FusionlabError, match="has shape"):
        resolve_shape("x", (-1, 3), {"x": (4, 5)}, None)


# ----------------------------------------------------------------- building (TensorRT-RTX, CPU)


@pytest.mark.rtx
@pytest.mark.parametrize("name", ["inception3a", "resnet18"])
def test_builds_zoo_models(rtx: Backend, zoo_files: dict[str, Path], name: str) -> None:
    engine = build_engine(zoo_files[name], BuildOptions(batch=1), rtx)
    assert engine.backend == rtx.label and engine.precision == "fp32"
    assert next(iter(engine.input_shapes.values()))[0] == 1
    # an fp32 engine carries the model's weights
    assert len(engine.data) > 0.9 * weight_bytes(zoo_files[name])
    assert engine.build_s is not None and engine.build_s > 0


@pytest.mark.rtx
def test_reduced_precision_by_converting_the_model(
    rtx: Backend, zoo_files: dict[str, Path]
) -> None:
    path = zoo_files["inception3a"]
    fp32 = build_engine(path, BuildOptions(batch=1), rtx)
    for precision in ("fp16", "bf16"):
        engine = build_engine(path, BuildOptions(precision=precision, batch=1), rtx)
        assert engine.how == f"ONNX converted to {precision} (strongly typed)"
        assert len(engine.data) < 0.85 * len(fp32.data)  # 2-byte weights


@pytest.mark.rtx
def test_int8_needs_a_qdq_model(rtx: Backend, zoo_files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FusionlabError, match="explicitly quantized model"):
        build_engine(zoo_files["inception3a"], BuildOptions(precision="int8", batch=1), rtx)
    engine = build_engine(
        qdq_conv(tmp_path / "qdq.onnx"), BuildOptions(precision="int8", batch=2), rtx
    )
    assert engine.how == "explicit quantization (Q/DQ)"
    assert engine.input_shapes == {"x": (2, 8, 16, 16)}


@pytest.mark.rtx
def test_dynamic_inputs_need_a_shape(rtx: Backend, zoo_files: dict[str, Path]) -> None:
    path = zoo_files["inception3a"]
    with pytest.raises(FusionlabError, match=re.escape("--shapes data:Nx192x28x28 (or --batch N)")):
        build_engine(path, BuildOptions(), rtx)
    with pytest.raises(FusionlabError, match="no input named 'image'"):
        build_engine(path, BuildOptions(shapes={"image": (1, 3)}), rtx)
    engine = build_engine(
        path, BuildOptions(shapes={"data": (2, 192, 28, 28)}, opt_level=1, workspace_mib=256), rtx
    )
    assert engine.input_shapes == {"data": (2, 192, 28, 28)}


@pytest.mark.rtx
def test_timing_cache_is_not_used_with_rtx(
    rtx: Backend, zoo_files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """TensorRT-RTX 1.2 made timing caches no-ops: fusionlab says so and writes no file."""
    cache = tmp_path / "timing.cache"
    with caplog.at_level(logging.WARNING):
        build_engine(zoo_files["inception3a"], BuildOptions(batch=1, timing_cache=str(cache)), rtx)
    assert "ignores timing caches" in caplog.text
    assert not cache.exists()


@pytest.mark.rtx
def test_progress_bar_shows_the_build_phases(rtx: Backend, zoo_files: dict[str, Path]) -> None:
    stream = io.StringIO()  # not a terminal: one line per outermost phase
    build_engine(zoo_files["inception3a"], BuildOptions(batch=1, progress=stream), rtx)
    lines = stream.getvalue().splitlines()
    assert lines and all(line.startswith("building: ") for line in lines)


@pytest.mark.rtx
def test_parser_errors_are_one_line(rtx: Backend, tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")],
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(FusionlabError, match=r"ONNX parser failed: .*mystery") as err:
        build_engine(path, BuildOptions(), rtx)
    assert "\n" not in str(err.value)


@pytest.mark.rtx
def test_engine_provenance(
    rtx: Backend, zoo_files: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = build_engine(zoo_files["inception3a"], BuildOptions(batch=1), rtx)
    path = save_engine(engine, tmp_path / "i3a.engine")
    assert path.read_bytes() == engine.data
    assert provenance_warning(path, engine.data) is None
    changed = bytearray(engine.data)
    changed[len(changed) // 2] ^= 0xFF
    path.write_bytes(bytes(changed))
    assert "sha256 differs" in (provenance_warning(path, bytes(changed)) or "")
    sidecar_path(path).unlink()
    with caplog.at_level(logging.WARNING):
        assert read_engine_file(path) == bytes(changed)
    assert "not built by fusionlab" in caplog.text and "plugins" in caplog.text


# ----------------------------------------------------------------- running (TensorRT + GPU)


@pytest.fixture(scope="module")
def gpu_tensorrt() -> Backend:
    pytest.importorskip("tensorrt", reason="needs NVIDIA TensorRT (the tensorrt module)")
    from fusionlab.backends.tensorrt_cuda import open_cuda

    try:
        open_cuda().close()
    except FusionlabError as exc:
        pytest.skip(f"needs cuda-python and a GPU TensorRT supports ({exc})")
    return load_backend("tensorrt")


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_profile_times_every_engine_layer(
    gpu_tensorrt: Backend, zoo_files: dict[str, Path], cuda_graph: bool
) -> None:
    path = zoo_files["inception3a"]
    engine = build_engine(path, BuildOptions(batch=1), gpu_tensorrt)
    options = ProfileOptions(iterations=20, warmup_ms=20, duration_s=0.0, cuda_graph=cuda_graph)
    run = profile_engine(engine.data, gpu_tensorrt, options)
    profile = run.profile
    assert len(run.queries) >= 20 and profile.runs >= 20
    assert profile.summary is not None and profile.summary.gpu_compute is not None
    assert 0 < profile.summary.gpu_compute.min_ms <= profile.summary.gpu_compute.max_ms
    # every timed layer is a layer of the engine inspector's JSON, which reads as a plan
    inspected = [layer["Name"] for layer in json.loads(run.layer_info)["Layers"]]
    assert {t.name for t in profile.layers} <= set(inspected)
    plan = engine_plan(run.layer_info, load(path, batch=1), f"{gpu_tensorrt.label} live")
    assert len(plan.layers) == len(inspected) and plan.covered

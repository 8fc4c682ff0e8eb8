"""``fusionlab calibrate`` on the recorded engines, and ``predict --device/--efficiency``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.cli import main
from fusionlab.plan.serialize import plan_from_json
from tests.records import RESNET18 as RECORDS


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m") / "resnet18.onnx"
    zoo.export("resnet18", path)
    return path


def records(precision: str) -> list[str]:
    folder = RECORDS / precision
    return ["--layer-info", str(folder / "engine.graph.json"),
            "--profile", str(folder / "engine.profile.json")]


def one_error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fusionlab: error: "), err
    return lines[0]


def test_calibrate_fits_saves_and_predict_uses_the_factors(
    resnet18: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eff = tmp_path / "eff.json"
    code = main(["calibrate", *records("fp32"), "--device", "NVIDIA A100 80GB PCIe",
                 "--model", str(resnet18), "-o", str(eff)])
    out = capsys.readouterr().out
    assert code == 0
    assert "24 layers timed on a100-80gb-pcie" in out and "TF32 allowed" in out
    assert "before" in out and "after" in out and f"wrote {eff}" in out
    data = json.loads(eff.read_text())
    assert data["schema"] == "fusionlab.efficiency/1" and data["precision"] == "fp32"
    assert set(data["classes"]) == {"conv", "pooling", "pointwise", "copy", "other"}
    assert data["fit"]["after"]["rms_log_error"] < data["fit"]["before"]["rms_log_error"]

    plan_file = tmp_path / "plan.json"
    code = main(["predict", str(resnet18), "--batch", "32", "--target", "trt8",
                 "--precision", "fp16", "--device", "a100-80gb-pcie", "--efficiency", str(eff),
                 "--json", str(plan_file)])
    out = capsys.readouterr().out
    assert code == 0 and " ms" in out.splitlines()[3]  # the table has a time column
    plan = plan_from_json(plan_file.read_text())
    assert all(layer.time_ms is not None and layer.time_ms > 0 for layer in plan.layers)


def test_calibrate_without_the_model_uses_the_engine_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["calibrate", *records("fp16"), "--device", "a100-80gb-pcie"]) == 0
    out = capsys.readouterr().out
    assert "25 layers timed on a100-80gb-pcie" in out and ", fp16;" in out


def test_predict_without_device_has_no_times(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inception3a.onnx"
    zoo.export("inception3a", path, batch=1)
    assert main(["predict", str(path)]) == 0
    header = capsys.readouterr().out.splitlines()[3]
    assert "nodes" in header and " ms" not in header
    assert main(["predict", str(path), "--device", "t4", "--precision", "int8"]) == 0
    assert " ms" in capsys.readouterr().out.splitlines()[3]


def test_predict_efficiency_needs_a_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inception3a.onnx"
    zoo.export("inception3a", path, batch=1)
    line = one_error_line(capsys, main(["predict", str(path), "--efficiency", "eff.json"]))
    assert "--efficiency needs --device" in line
    line = one_error_line(capsys, main(["predict", str(path), "--device", "gtx-9000"]))
    assert "unknown device 'gtx-9000'" in line


def test_calibrate_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_error_line(capsys, main(["calibrate", *records("fp32"), "--device", "nope"]))
    assert "unknown device 'nope'" in line
    metadata = RECORDS / "fp32" / "engine.profile.metadata.json"
    line = one_error_line(capsys, main([
        "calibrate", "--layer-info", str(RECORDS / "fp32" / "engine.graph.json"),
        "--profile", str(metadata), "--device", "a100-80gb-pcie"]))
    assert "has no per-layer times" in line
    profile = tmp_path / "profile.json"
    profile.write_text((RECORDS / "fp32" / "engine.profile.json").read_text())
    line = one_error_line(capsys, main([
        "calibrate", "--layer-info", str(RECORDS / "fp32" / "engine.graph.json"),
        "--profile", str(profile), "--device", "a100-80gb-pcie", "-o", str(profile)]))
    assert "refusing to overwrite an input file" in line
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "fusionlab.efficiency/1", "classes": []}')
    line = one_error_line(capsys, main(["calibrate", *records("fp32"), "--device", "a100",
                                        "--efficiency", str(bad)]))
    assert "'classes' must be an object" in line

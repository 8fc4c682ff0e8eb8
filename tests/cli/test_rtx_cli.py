"""The engine's layers from a TensorRT-RTX build, on a machine without a GPU, from the
command line: ``build --export-layer-info``, ``import``, ``diff --layer-info``, and
``diff``/``check``/``render --build rtx``. Marker ``rtx``; one small model (inception3a).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from fusionlab.cli import main
from fusionlab.fusion.targets import TARGETS, target_for_backend

pytestmark = [
    pytest.mark.rtx,
    pytest.mark.skipif(
        not any(importlib.util.find_spec(m) for m in ("tensorrt_rtx", "tensorrt_rtx_bindings")),
        reason="TensorRT-RTX is not installed (the rtx extra)",
    ),
]

HOLDS = Path(__file__).parent / "data" / "inception3a-holds.toml"


@pytest.fixture(scope="module")
def layers(inception: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``build --export-layer-info`` of inception3a (batch 1) with TensorRT-RTX."""
    path = tmp_path_factory.mktemp("rtx") / "inception3a.layers.json"
    args = ["build", str(inception), "--backend", "rtx", "--no-progress", "--export-layer-info", str(path), "--json"]
    assert main(args) == 0
    return path


def test_build_exports_the_layers_from_the_build_log(layers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(layers.read_text(encoding="utf-8"))
    assert doc["fusionlab"]["builder"].startswith("TensorRT-RTX ")
    assert [t["IOMode"] for t in doc["I/O Tensors"]] == ["Input", "Output"]
    assert any(layer["LayerType"] == "signal" for layer in doc["Layers"])


def test_import_reads_the_file_back(layers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(layers)]) == 0
    out = capsys.readouterr().out
    assert "correlation" in out and "Sync" in out
    assert "16 layers (1 inserted by TensorRT, 7 stream syncs), precision fp32, batch 1" in out


def test_diff_with_the_exported_layers(inception: Path, layers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", str(inception), "--layer-info", str(layers), "--target", "trt10"]) == 0
    first, metrics, counts, *_ = capsys.readouterr().out.splitlines()
    assert first.startswith("inception3a: predicted (target trt10, fp32) vs TensorRT-RTX 1.")
    assert first.endswith(" build log")
    assert metrics.startswith("exact match: ") and "/8 engine layers" in metrics
    assert "(and 7 stream syncs)" in counts


def test_the_exported_layers_name_the_target_that_models_their_builder(
        inception: Path, layers: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --target, a diff against a layer file fusionlab wrote from an RTX build uses the
    rtx target, as `diff --build rtx` does (it defaulted to trt10 before)."""
    assert main(["diff", str(inception), "--layer-info", str(layers)]) == 0
    first, metrics, *_ = capsys.readouterr().out.splitlines()
    assert first.startswith("inception3a: predicted (target rtx, fp32) vs TensorRT-RTX 1.")
    assert metrics.startswith("exact match: 8/8 engine layers")


def test_diff_builds_with_rtx(inception: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "diff.json"
    assert main(["diff", str(inception), "--build", "rtx", "--json", str(out_json)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    target = target_for_backend("rtx", "1.7")
    assert target in TARGETS  # rtx where that target exists, trt11 until then
    assert first.startswith(f"inception3a: predicted (target {target}, fp32) vs TensorRT-RTX ")
    assert json.loads(out_json.read_text())["metrics"]["engine_layers"] == 8


def test_check_and_render_build_with_rtx(inception: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(inception), "--expect", str(HOLDS), "--build", "rtx"]) in (0, 1)
    assert "checked against the engine (TensorRT-RTX " in capsys.readouterr().out
    drawing = tmp_path / "diff.dot"
    assert main(["render", str(inception), "--build", "rtx", "--target", "trt10", "-o", str(drawing)]) == 0
    assert "exact match" in capsys.readouterr().out
    assert "stream syncs (not drawn)" in drawing.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diff", "{bad}", "--build", "rtx"], "bad.onnx"),
        (["diff", "{model}", "--build", "rtx", "--profile", "p.json"], "--profile needs --layer-info"),
        (["render", "{model}", "--build", "rtx", "--stage", "all", "-o", "x.dot"], "no --plan or --stage"),
    ],
)
def test_bad_input_is_one_line(
    inception: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not onnx")
    argv = [a.format(bad=bad, model=inception) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fusionlab: error: ") and message in err[0]

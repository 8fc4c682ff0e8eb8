"""``fusionlab import`` through the CLI entry point (fusionlab.cli.main), on the recorded
engines of records and the zoo's ResNet-18."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.cli import main
from fusionlab.plan import Elimination, How
from fusionlab.plan.serialize import plan_from_json
from tests.records import RESNET18 as RECORDS


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ResNet-18 with the recorded engines' node names, dynamic batch as exported."""
    return zoo.export("resnet18", tmp_path_factory.mktemp("zoo") / "resnet18.onnx")


def test_import_writes_plan(
    tmp_path: Path, resnet18_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan.json"
    code = main([
        "import", str(RECORDS / "fp32" / "engine.graph.json"),
        "--profile", str(RECORDS / "fp32" / "engine.profile.json"),
        "--model", str(resnet18_file), "--batch", "32",
        "-o", str(out),
    ])
    assert code == 0
    assert capsys.readouterr().out == ""
    plan = plan_from_json(out.read_text())
    assert plan.source == "trtexec json"
    assert len(plan.layers) == 32
    assert plan.eliminated == {"Flatten_47": Elimination(How.UNNAMED, "named by no engine layer")}
    assert (plan.precision, plan.batch, plan.model) == ("fp32", 32, str(resnet18_file))
    layer = next(x for x in plan.layers if x.name == "Conv_16 + Add_17 + Relu_18")
    assert layer.nodes == ("Conv_16", "Add_17", "Relu_18")
    assert layer.time_ms == 0.03072
    assert sum(x.time_ms or 0 for x in plan.layers) == pytest.approx(2.123776)


def test_import_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "import", str(RECORDS / "fp16" / "engine.graph.json"),
        "--profile", str(RECORDS / "fp16" / "engine.profile.json"),
    ])
    assert code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["layer", "type", "kind", "nodes", "time", "(ms)"]
    row = next(line for line in lines if line.startswith("Conv_0 + Relu_1 "))
    assert row.split()[-4:] == ["CaskConvolution", "Convolution", "2", "0.1116"]
    assert "36 layers (13 inserted by TensorRT), precision fp16, batch 32" in out


def test_import_with_trex_metadata_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([
        "import", str(RECORDS / "fp32" / "engine.graph.json"),
        "--profile", str(RECORDS / "fp32" / "engine.profile.metadata.json"),
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert "Throughput: 499.294 qps" in out
    assert "median = 1.99072 ms" in out


def test_import_plan_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(RECORDS / "fp32" / "engine.graph.json"), "-o", "-"]) == 0
    plan = plan_from_json(capsys.readouterr().out)
    assert len(plan.layers) == 32


def test_import_bad_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    profile = RECORDS / "fp32" / "engine.profile.json"  # a profile, not layer information
    assert main(["import", str(profile)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"fusionlab: error: {profile}: not engine layer information")


def test_import_broken_profile_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "profile.json"
    bad.write_text('[{"name": "Conv_0", "timeMs": ')
    code = main(["import", str(RECORDS / "fp32" / "engine.graph.json"), "--profile", str(bad)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"fusionlab: error: {bad}: not valid JSON (Expecting value at line 1)"


def test_import_refuses_to_overwrite_its_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer_info = tmp_path / "engine.graph.json"
    original = (RECORDS / "fp32" / "engine.graph.json").read_text()
    layer_info.write_text(original)
    assert main(["import", str(layer_info), "-o", str(layer_info)]) == 2
    assert "refusing to overwrite an input file" in capsys.readouterr().err
    assert layer_info.read_text() == original


def test_import_batch_needs_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", str(RECORDS / "fp32" / "engine.graph.json"), "--batch", "8"]) == 2
    assert "--batch needs --model" in capsys.readouterr().err

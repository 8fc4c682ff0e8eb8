"""``fusionlab check`` and ``fusionlab diff`` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.cli import main
from fusionlab.testing import assert_fusions
from tests.records import RESNET18 as RECORDS

DATA = Path(__file__).parent / "data"


def test_check_holds_exit_0(inception: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(inception), "--expect", str(DATA / "inception3a-holds.toml"), "--target", "classic"]) == 0
    out = capsys.readouterr().out
    assert "5 of 5 expectations hold" in out and "FAIL" not in out


def test_check_fails_exit_1_with_report(inception: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fusionlab", "check", str(inception), "--expect", str(DATA / "inception3a-fails.toml"),
         "--target", "classic"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "FAIL  fused inception_3a/pool + inception_3a/pool_proj" in proc.stdout
    assert "FAIL  separate inception_3a/1x1 | inception_3a/5x5_reduce" in proc.stdout
    assert "FAIL  max_layers 4: 6 layers" in proc.stdout
    assert "0 of 3 expectations hold" in proc.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[fused]\nnodes = [", "invalid TOML"),
        ("[[fused]]\nnodes = ['inception_3a/pool', 'nope']\n", "nodes the model does not have"),
        ("colour = 'blue'\n", "unknown keys"),
        ("[[fused]]\nnodes = ['inception_3a/pool']\n", "at least two nodes"),
        ("max_layers = 0\n", "positive whole number"),
        ("", "no expectations"),
    ],
)
def test_invalid_expectations_exit_2(inception: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     text: str, message: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    assert main(["check", str(inception), "--expect", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_assert_fusions_helper() -> None:
    model = zoo.build("inception3a")
    assert_fusions(model, target="classic", batch=1, eliminated=["inception_3a/output"],
                   fused=[["inception_3a/1x1", "inception_3a/relu_5x5_reduce"]], max_layers=6)
    with pytest.raises(AssertionError, match="FAIL  separate"):
        assert_fusions(model, target="classic", batch=1, separate=[["inception_3a/1x1", "inception_3a/3x3_reduce"]])




def test_diff_cli_on_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "resnet18.onnx"
    zoo.export("resnet18", model)
    out = tmp_path / "diff.json"
    args = ["diff", str(model), "--batch", "32", "--layer-info", str(RECORDS / "fp16" / "engine.graph.json"),
            "--profile", str(RECORDS / "fp16" / "engine.profile.json"), "--target", "trt8", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "predicted (target trt8, fp16)" in text  # the precision comes from the engine
    assert "exact match: 23/23 engine layers (100.0%)" in text
    data = json.loads(out.read_text())
    assert data["metrics"]["exact_matches"] == 23 and data["totals"]["actual_ms"] == pytest.approx(1.016832)


def test_check_against_engine_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "resnet18.onnx"
    zoo.export("resnet18", model)
    expect = tmp_path / "resnet.toml"
    expect.write_text('eliminated = ["Flatten_47"]\n[[fused]]\nnodes = ["Conv_16", "Add_17", "Relu_18"]\n'
                      '[[max_time_ms]]\nlayer = "Conv_0 + Relu_1"\nms = 0.5\n')
    assert main(["check", str(model), "--batch", "32", "--expect", str(expect),
                 "--layer-info", str(RECORDS / "fp32" / "engine.graph.json"),
                 "--profile", str(RECORDS / "fp32" / "engine.profile.json")]) == 1
    out = capsys.readouterr().out
    assert "PASS  fused Conv_16 + Add_17 + Relu_18" in out and "PASS  eliminated Flatten_47" in out
    assert "FAIL  max_time_ms Conv_0 + Relu_1: 0.5222 ms (limit 0.5 ms)" in out


def test_diff_needs_an_engine_side(inception: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["diff", str(inception)])
    assert exc.value.code == 2


def test_engine_without_tensorrt_is_one_line(inception: Path, tmp_path: Path) -> None:
    engine = tmp_path / "x.engine"
    engine.write_bytes(b"not an engine")
    code = (
        "import sys, importlib.abc\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorrt', 'tensorrt_rtx', 'tensorrt_rtx_bindings'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, B())\n"
        "from fusionlab.cli import main\n"
        f"sys.exit(main(['diff', {str(inception)!r}, '--engine', {str(engine)!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "fusionlab[" in lines[0]

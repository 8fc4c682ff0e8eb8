"""``fusionlab models list`` and ``fusionlab models export`` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from fusionlab import zoo
from fusionlab.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_is_a_table_of_names_and_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models", "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["model", "description"]
    rows = lines[2:]
    assert [row.split()[0] for row in rows] == zoo.names()
    for row, name in zip(rows, zoo.names(), strict=True):
        assert row[len(lines[1].split()[0]):].strip() == zoo.describe(name)


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    assert code == 0
    assert json.loads(out) == [{"name": n, "description": zoo.describe(n)} for n in zoo.names()]


def test_export_writes_the_committed_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "block.onnx"
    code, out, err = run(capsys, "models", "export", "inception3a", "-o", str(target))
    assert code == 0 and err == ""
    assert str(target) in out
    assert target.read_bytes() == (ROOT / "models" / "inception3a.onnx").read_bytes()


@pytest.mark.parametrize("name", ["out.json", "OUT.SVG", "model.toml"])
def test_export_refuses_a_name_of_another_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Campaign seed 23: ``-o out.json`` wrote an ONNX model into a file named as JSON."""
    target = tmp_path / name
    code, out, err = run(capsys, "models", "export", "inception-chain-1", "-o", str(target))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(target) in err and "ending in .onnx" in err
    assert not target.exists()


def test_export_with_a_batch_and_a_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "chain.onnx"
    code, _, _ = run(capsys, "models", "export", "inception-chain-4", "-o", str(target),
                     "--batch", "2")
    assert code == 0
    model = onnx.load(str(target))
    assert len(model.graph.node) == 80
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def _one_line_error(code: int, out: str, err: str) -> str:
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "models", "export", "alexnet", "-o", str(tmp_path / "a.onnx"))
    line = _one_line_error(*result)
    assert line.startswith("fusionlab: error: unknown model 'alexnet'; known models: ")
    assert f"known models: {', '.join(zoo.names())} " in line
    assert not (tmp_path / "a.onnx").exists()


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "export", "inception3a"])  # no -o
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["models", "export", "inception3a", "-o", str(tmp_path / "x.onnx"), "--batch", "0"])
    assert exit_info.value.code == 2
    capsys.readouterr()
    code, out, err = run(capsys, "models")
    assert code == 2 and out == "" and err.startswith("fusionlab: error: models needs an action")


def test_installed_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("fusionlab")
    if not script.exists():
        pytest.skip(f"no installed fusionlab script next to {sys.executable} (pip install -e .)")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    ok = subprocess.run([str(script), "models", "export", "inception3a", "-o",
                         str(tmp_path / "m.onnx"), "--batch", "1"],
                        capture_output=True, text=True, timeout=120, env=env)
    assert ok.returncode == 0, ok.stderr
    expected = zoo.build("inception3a", batch=1).SerializeToString()
    assert (tmp_path / "m.onnx").read_bytes() == expected
    bad = subprocess.run(
        [str(script), "models", "export", "nosuchnet", "-o", str(tmp_path / "n.onnx")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    line = _one_line_error(bad.returncode, bad.stdout, bad.stderr)
    assert line.startswith("fusionlab: error: unknown model 'nosuchnet'")

"""User errors end as one line on stderr naming the file and the problem, with exit code 2.

No traceback unless ``--debug``. Most cases call ``fusionlab.cli.main`` in-process; the
subprocess tests run the installed ``fusionlab`` script itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import external_data_helper, helper

from fusionlab.cli import main


def conv_model(kit: Any, batch: int | str = "N") -> onnx.ModelProto:
    """x[B,3,8,8] ── Conv(W[8,3,3,3], pad 1) ── c ── Relu ── y[B,8,8,8]"""
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    return kit.model(nodes, [kit.value("x", [batch, 3, 8, 8])], [kit.value("y", None)],
                     [kit.weight("W", [8, 3, 3, 3])])


def inspect_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``fusionlab inspect ARGS``; check exit code 2 and one stderr line; return it."""
    code = main(["inspect", *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fusionlab: error: ")
    return lines[0]


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.onnx"
    assert inspect_error(capsys, str(path)) == f"fusionlab: error: {path}: no such file"


def test_a_folder_is_not_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = inspect_error(capsys, str(tmp_path))
    assert line == f"fusionlab: error: {tmp_path}: is a folder, not an ONNX file"


@pytest.mark.parametrize(
    "content",
    [b"name,shape\nconv,3x3\n", b'{"graph": "not really"}', b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"],
    ids=["csv", "json", "png"],
)
def test_a_file_that_is_not_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 content: bytes) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    line = inspect_error(capsys, str(path))
    assert line.startswith(f"fusionlab: error: {path}: not a")
    assert "ONNX" in line


def test_an_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert inspect_error(capsys, str(path)).endswith(f"{path}: is empty, not an ONNX file")


def truncated(kit: Any) -> Path:
    """A real model's bytes cut in half."""
    whole = kit.save(conv_model(kit), "whole.onnx").read_bytes()
    path = kit.folder / "truncated.onnx"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def test_a_truncated_file(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = truncated(kit)
    line = inspect_error(capsys, str(path))
    assert line == (f"fusionlab: error: {path}: not a valid ONNX file "
                    "(truncated or not ONNX: DecodeError)")


def test_a_dangling_input(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """x ── Add(x, nowhere) ── y      ('nowhere' is no input, initializer or node output)"""
    model = kit.model([helper.make_node("Add", ["x", "nowhere"], ["y"])],
                      [kit.value("x", [2])], [kit.value("y", [2])])
    path = kit.save(model, "dangling.onnx")
    line = inspect_error(capsys, str(path))
    assert line == (f"fusionlab: error: {path}: node 'Add_0' reads 'nowhere', which no node, "
                    "input or initializer provides")


def test_a_cycle(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """
    x ── Add ── a ── Relu ── b ── Relu ── y
          ↑                  │
          └──────────────────┘
    """
    nodes = [helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["y"])]
    path = kit.save(kit.model(nodes, [kit.value("x", [2])], [kit.value("y", [2])]), "cycle.onnx")
    line = inspect_error(capsys, str(path))
    assert line == f"fusionlab: error: {path}: the graph has a cycle: Add_0 -> Relu_1 -> Add_0"


def external_model(kit: Any, folder: str) -> Path:
    path = kit.folder / folder / "ext.onnx"
    path.parent.mkdir(parents=True)
    onnx.save_model(conv_model(kit), str(path), save_as_external_data=True,
                    location="ext.weights", size_threshold=0)
    return path


def test_missing_external_data(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = external_model(kit, "m")
    (path.parent / "ext.weights").unlink()
    line = inspect_error(capsys, str(path))
    assert line == (f"fusionlab: error: {path}: missing external data file 'ext.weights' "
                    "for 'W'")


@pytest.mark.parametrize("where", ["../secret.bin", "ABSOLUTE"])
def test_external_data_outside_the_models_folder(kit: Any, capsys: pytest.CaptureFixture[str],
                                                 where: str) -> None:
    """m/ext.onnx's weight W points at a file beside the folder, or at an absolute path."""
    secret = kit.folder / "secret.bin"
    secret.write_bytes(bytes(8 * 3 * 3 * 3 * 4))
    location = str(secret) if where == "ABSOLUTE" else where
    model = conv_model(kit)
    weight = model.graph.initializer[0]
    external_data_helper.set_external_data(weight, location=location)
    weight.ClearField("raw_data")
    path = kit.folder / "m" / "ext.onnx"
    path.parent.mkdir()
    path.write_bytes(model.SerializeToString())
    line = inspect_error(capsys, str(path))
    assert line == (f"fusionlab: error: {path}: external data {location!r} of 'W' lies outside "
                    "the model's folder")


def test_fixed_batch_asked_for_another(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = kit.save(conv_model(kit, batch=1), "fixed.onnx")
    line = inspect_error(capsys, str(path), "--batch", "32")
    assert line == (f"fusionlab: error: {path}: input 'x' has a fixed batch of 1; --batch 32 "
                    "applies only to a symbolic or dynamic batch dimension")


def test_bad_batch_argument_is_a_usage_error(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = kit.save(conv_model(kit), "m.onnx")
    with pytest.raises(SystemExit) as exc:
        main(["inspect", str(path), "--batch", "0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "fusionlab: argument --batch: must be at least 1, got 0 (see --help)"]


def test_debug_shows_the_traceback(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = truncated(kit)
    code = main(["--debug", "inspect", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert "DecodeError" in err
    assert err.splitlines()[-1].startswith(f"fusionlab: error: {path}: not a valid ONNX file")


def test_a_bug_is_one_line_with_exit_3_or_its_traceback_under_debug(
    kit: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a user error: an exception the code did not expect (injected here)."""
    import fusionlab.cli.inspect as inspect_cmd

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("division by zero\nin a cost")

    monkeypatch.setattr(inspect_cmd, "summary", broken)  # load is imported inside run (start-up)
    path = str(kit.save(conv_model(kit), "m.onnx"))
    assert main(["inspect", path]) == 3
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "fusionlab: internal error: ZeroDivisionError: division by zero in a cost "
        "(a bug; run again with --debug for the traceback)"]
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "inspect", path])


def fusionlab_command() -> list[str]:
    """The installed console script beside this interpreter (``.venv/bin/fusionlab``)."""
    script = Path(sys.executable).with_name("fusionlab")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fusionlab"]


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([*fusionlab_command(), *args], capture_output=True, text=True,
                          timeout=120, env=env, check=False)


def test_installed_script_prints_one_line_and_exit_code_2(kit: Any) -> None:
    assert Path(sys.executable).with_name("fusionlab").exists(), "pip install -e . first"
    path = truncated(kit)
    done = run_script("inspect", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n")
    assert done.stderr.startswith(f"fusionlab: error: {path}: not a valid ONNX file")
    missing = run_script("inspect", str(kit.folder / "gone.onnx"))
    assert (missing.returncode, missing.stderr) == (
        2, f"fusionlab: error: {kit.folder / 'gone.onnx'}: no such file\n")


def test_installed_script_with_debug_shows_the_traceback(kit: Any) -> None:
    done = run_script("--debug", "inspect", str(truncated(kit)))
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.splitlines()[-1].startswith("fusionlab: error: ")

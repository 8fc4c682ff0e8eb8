"""``fusionlab build`` and ``fusionlab profile`` from the command line.

Without TensorRT both end with one line naming the extra to install (exit 2). With
TensorRT-RTX (CPU builder) ``build`` runs for real; ``profile`` needs NVIDIA TensorRT and a
GPU it supports, and its full test skips with the reason elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.cli import main
from fusionlab.errors import FusionlabError

TENSORRT_MODULES = ("tensorrt", "tensorrt_rtx", "tensorrt_rtx_bindings")


@pytest.fixture(scope="module")
def inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo's inception3a (symbolic batch) as a file."""
    return zoo.export("inception3a", tmp_path_factory.mktemp("zoo") / "inception3a.onnx")


@pytest.fixture
def rtx_installed() -> None:
    from fusionlab.backends.tensorrt import load_backend

    try:
        load_backend("rtx")
    except FusionlabError as exc:
        pytest.skip(f"TensorRT-RTX is not installed ({exc})")


def gpu_present() -> bool:
    from fusionlab.backends.tensorrt_cuda import open_cuda

    try:
        open_cuda().close()
    except FusionlabError:
        return False
    return True


def build_rtx_engine(model: Path, engine: Path) -> None:
    """Build ``model`` at batch 1 with TensorRT-RTX's CPU builder and save it to ``engine``."""
    args = ["build", str(model), "--backend", "rtx", "--batch", "1", "--no-progress", "--save-engine", str(engine)]
    assert main(args) == 0


def one_error_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    """Check exit code 2 and a single ``fusionlab: error:`` line on stderr; return it."""
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if not line.startswith("building: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("fusionlab: error: ") and "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("command", ["build", "profile"])
@pytest.mark.parametrize(("backend", "extra"), [("auto", "tensorrt"), ("rtx", "rtx")])
def test_without_tensorrt_one_line_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    inception: Path,
    command: str,
    backend: str,
    extra: str,
) -> None:
    for name in TENSORRT_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    code = main([command, str(inception), "--batch", "1", "--backend", backend])
    line = one_error_line(capsys, code)
    assert f"pip install 'fusionlab[{extra}]'" in line
    assert f"fusionlab {command}" in line


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str], inception: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["build", str(inception), "--shapes", "data:1xq"])
    assert exit_.value.code == 2
    assert "--shapes" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", str(inception), "--fp16", "--int8"])
    with pytest.raises(SystemExit):
        main(["build", str(inception), "--opt-level", "6"])


@pytest.mark.rtx
def test_build_saves_engine_and_record(
    rtx_installed: None, capsys: pytest.CaptureFixture[str], inception: Path, tmp_path: Path
) -> None:
    engine = tmp_path / "i3a.engine"
    code = main(
        [
            "build",
            str(inception),
            "--backend",
            "rtx",
            "--batch",
            "2",
            "--fp16",
            "--save-engine",
            str(engine),
            "--json",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    summary = json.loads(out)
    assert summary["input_shapes"] == {"data": [2, 192, 28, 28]}
    assert summary["precision"] == "fp16" and "converted" in summary["how"]
    data = engine.read_bytes()
    assert summary["sha256"] == hashlib.sha256(data).hexdigest() and summary["engine_bytes"] == len(
        data
    )
    record = json.loads((tmp_path / "i3a.engine.fusionlab.json").read_text())
    assert record["schema"] == "fusionlab.engine/1" and record["sha256"] == summary["sha256"]


@pytest.mark.rtx
def test_build_text_output_and_refusals(
    rtx_installed: None, capsys: pytest.CaptureFixture[str], inception: Path, tmp_path: Path
) -> None:
    assert main(["build", str(inception), "--backend", "rtx", "--batch", "1", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"built {inception} with TensorRT-RTX")
    assert "engine not kept" in out and err == ""
    line = one_error_line(
        capsys, main(["build", str(inception), "--backend", "rtx", "--int8", "--batch", "1"])
    )
    assert "explicitly quantized model" in line
    line = one_error_line(capsys, main(["build", str(inception), "--backend", "rtx"]))
    assert "--shapes data:Nx192x28x28" in line
    line = one_error_line(
        capsys,
        main(
            [
                "build",
                str(inception),
                "--backend",
                "rtx",
                "--batch",
                "1",
                "--save-engine",
                str(inception),
            ]
        ),
    )
    assert "refusing to overwrite an input file" in line


@pytest.mark.rtx
def test_profile_refuses_build_options_for_an_engine(
    rtx_installed: None, capsys: pytest.CaptureFixture[str], inception: Path, tmp_path: Path
) -> None:
    engine = tmp_path / "i3a.engine"
    build_rtx_engine(inception, engine)
    capsys.readouterr()
    line = one_error_line(capsys, main(["profile", str(engine), "--backend", "rtx", "--fp16"]))
    assert "--fp16 applies to building" in line


@pytest.mark.rtx
def test_profile_without_a_gpu_is_one_line(
    rtx_installed: None,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    inception: Path,
    tmp_path: Path,
) -> None:
    if gpu_present():
        pytest.skip("a CUDA GPU is present: the tensorrt/gpu tests profile for real")
    engine = tmp_path / "foreign.engine"
    build_rtx_engine(inception, engine)
    (tmp_path / "foreign.engine.fusionlab.json").unlink()  # as if someone else built it
    capsys.readouterr()
    line = one_error_line(capsys, main(["profile", str(engine), "--backend", "rtx"]))
    assert "cuda-python" in line or "GPU" in line
    assert "not built by fusionlab" in caplog.text
    # the layers need no GPU with TensorRT-RTX: they come from its build log
    layers = tmp_path / "l.json"
    args = ["build", str(inception), "--backend", "rtx", "--batch", "1", "--no-progress",
            "--export-layer-info", str(layers)]
    assert main(args) == 0
    assert "build log" in capsys.readouterr().out and json.loads(layers.read_text())["Layers"]


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_profile_prints_and_exports_like_trtexec(
    capsys: pytest.CaptureFixture[str], inception: Path, tmp_path: Path
) -> None:
    pytest.importorskip("tensorrt", reason="needs NVIDIA TensorRT (the tensorrt module)")
    if not gpu_present():
        pytest.skip("needs cuda-python and a GPU TensorRT supports")
    from fusionlab.formats.trtexec import read_layer_info, read_profile, read_summary, read_times

    files = {k: tmp_path / f"{k}.json" for k in ("profile", "times", "layers")}
    code = main(
        [
            "profile",
            str(inception),
            "--backend",
            "tensorrt",
            "--batch",
            "1",
            "--fp16",
            "--iterations",
            "50",
            "--duration",
            "0",
            "--warmup",
            "50",
            "--export-profile",
            str(files["profile"]),
            "--export-times",
            str(files["times"]),
            "--export-layer-info",
            str(files["layers"]),
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    assert "=== Performance summary ===" in out and "=== Profile (" in out
    summary = read_summary(out)
    assert summary.gpu_compute is not None and summary.gpu_compute.mean_ms > 0
    profile = read_profile(files["profile"])
    assert profile.runs >= 50 and profile.layers
    assert len(read_times(files["times"])) >= 50
    assert read_layer_info(files["layers"]).layers

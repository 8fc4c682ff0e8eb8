"""``fusionlab render`` and ``fusionlab figures`` through the real entry point."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.cli import main
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import load
from fusionlab.plan.serialize import plan_from_json
from fusionlab.render.figures import FIGURES

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo's inception3a at batch 1, as a file."""
    path = tmp_path_factory.mktemp("render") / "inception3a.onnx"
    zoo.export("inception3a", path, batch=1)
    return path


@pytest.fixture
def no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without Graphviz: ``dot`` is not on PATH."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)


def test_stage_all_writes_one_file_per_stage(model: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "inc.dot"
    assert main(["render", str(model), "--target", "classic", "--stage", "all", "-o", str(out)]) == 0
    stages = [s.name for s in predict(load(model), "classic").stages]
    expected = [tmp_path / f"inc-{i:02d}-{name}.dot" for i, name in enumerate(stages)]
    assert sorted(tmp_path.iterdir()) == sorted(expected)
    assert expected[0].name == "inc-00-original.dot"
    assert "subgraph cluster_" not in expected[0].read_text()
    assert "ch 0-63" in expected[-1].read_text()
    assert capsys.readouterr().out.splitlines() == [f"wrote {p}" for p in expected]


def test_one_stage_and_plan(model: Path, tmp_path: Path) -> None:
    one = tmp_path / "cbr.dot"
    assert main(["render", str(model), "--target", "classic", "--stage", "fuse_conv_activation",
                 "-o", str(one)]) == 0
    assert one.read_text().count("(folded in)") == 6
    default = tmp_path / "plan.dot"
    assert main(["render", str(model), "--target", "classic", "-o", str(default)]) == 0
    assert "inception3a: the predicted plan, 6 layers" in default.read_text()


def test_focus_and_match(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.dot"
    assert main(["render", str(model), "--stage", "original", "--focus", "inception_3a/3x3",
                 "--radius", "1", "-o", str(out)]) == 0
    text = out.read_text()
    assert 'tooltip="inception_3a/3x3/bn"' in text and 'tooltip="inception_3a/pool"' not in text
    assert main(["render", str(model), "--target", "classic", "--match", "pool", "--compact",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert 'tooltip="inception_3a/pool"' in text and "inception_3a/5x5 +" not in text


def test_plan_file_is_drawn_with_its_times(model: Path, tmp_path: Path) -> None:
    plan_json = tmp_path / "plan.json"
    assert main(["predict", str(model), "--target", "classic", "--json", str(plan_json)]) == 0
    out = tmp_path / "p.dot"
    assert main(["render", str(model), "--plan", str(plan_json), "-o", str(out)]) == 0
    plan = plan_from_json(plan_json.read_text())
    assert all(layer.name.replace('"', '\\"')[:100] in out.read_text() for layer in plan.layers)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "nope"], "--stage 'nope': target classic has the stages original"),
        (["--match", "zzz"], "no layer or node name matches 'zzz'"),
        (["--focus", "nope"], "no node or layer named 'nope'"),
        (["--match", "("], "not a valid regular expression"),
    ],
)
def test_user_errors_are_one_line(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], message: str) -> None:
    out = tmp_path / "x.dot"
    assert main(["render", str(model), "--target", "classic", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_unknown_extension(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(model), "-o", str(tmp_path / "x.jpg")]) == 2
    assert "unknown output format '.jpg'" in capsys.readouterr().err


@pytest.mark.usefixtures("no_dot")
@pytest.mark.parametrize("suffix", [".svg", ".png", ".pdf"])
def test_without_dot_images_fail_with_one_line(model: Path, tmp_path: Path, suffix: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"x{suffix}"
    assert main(["render", str(model), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install graphviz" in err[0]
    assert not out.exists()


@pytest.mark.usefixtures("no_dot")
def test_without_dot_dot_output_still_works(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.dot"
    assert main(["render", str(model), "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph fusionlab {")


@pytest.mark.usefixtures("no_dot")
def test_figures_without_dot_write_dot_files(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["figures", "--out", str(tmp_path / "f")]) == 0
    names = sorted(p.name for p in (tmp_path / "f").iterdir())
    assert names == sorted(f"{f.name}.dot" for f in FIGURES)
    err = capsys.readouterr().err
    assert "wrote the .dot files only" in err and "apt-get install graphviz" in err


@needs_dot
def test_svg_output_is_xml_naming_every_layer(model: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.svg"
    assert main(["render", str(model), "--target", "classic", "-o", str(out)]) == 0
    svg = ET.parse(out).getroot()
    titles = {a.get("{http://www.w3.org/1999/xlink}title")
              for a in svg.iter("{http://www.w3.org/2000/svg}a")}
    for layer in predict(load(model), "classic").plan.layers:
        assert layer.name in titles


@needs_dot
def test_figures_twice_give_identical_dot(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["figures", "--out", str(first), "--format", "svg"]) == 0
    assert main(["figures", "--out", str(second), "--format", "svg"]) == 0
    for f in FIGURES:
        assert (first / f"{f.name}.dot").read_bytes() == (second / f"{f.name}.dot").read_bytes()
        assert (first / f"{f.name}.svg").exists()
    assert capsys.readouterr().out.splitlines()[-1] == f"{len(FIGURES)} figures in {second}"


def test_figures_unknown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["figures", "--out", str(tmp_path), "--format", "gif"]) == 2
    assert "unknown format 'gif'" in capsys.readouterr().err

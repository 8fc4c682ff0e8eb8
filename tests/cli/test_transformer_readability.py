"""``predict`` and ``render`` stay readable on a 1,996-node ViT-S/16 (dynamic batch): a
Myelin region is one box unless ``--expand`` names it, constant-folded feeders are drawn inside
the region, eliminated nodes are counted by kind, and huge drawings are refused with a clear
message."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.cli import main
from fusionlab.cli.render import boxes_in
from fusionlab.errors import FusionlabError
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import load
from fusionlab.plan import Kind
from fusionlab.render.dot import plan_to_dot

LN = "/encoder/layers/encoder_layer_0/ln_1/LayerNormalization"


@pytest.fixture(scope="module")
def vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("vit") / "vit.onnx"
    zoo.export("vit-s16", path)  # symbolic batch: 1,996 nodes, shape arithmetic kept
    return path


def test_predict_prints_a_short_table_and_counts_the_eliminated(vit: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    start = time.perf_counter()
    assert main(["predict", str(vit), "--target", "trt10"]) == 0
    assert time.perf_counter() - start < 30
    out = capsys.readouterr().out
    assert "1996 ONNX nodes -> 2 layers" in out
    assert len(out.splitlines()) < 15, out
    assert re.search(r"eliminated \d+ nodes \(--eliminated lists each\):", out)
    assert "{ForeignNode[" in out
    assert main(["predict", str(vit), "--target", "trt10", "--eliminated"]) == 0
    assert len(capsys.readouterr().out.splitlines()) > 700


def test_the_region_is_one_box_and_expands(vit: Path) -> None:
    g = load(vit)
    plan = predict(g, "trt10").plan
    (region,) = [layer for layer in plan.layers if layer.kind is Kind.MYELIN]
    compact = plan_to_dot(plan, g)
    assert boxes_in(compact) < 10  # input, output, the conv, the region (the folded constants inside it)
    assert "subgraph cluster_L1" not in compact and "MatMul" in compact
    opened = plan_to_dot(plan, g, expand=[LN])
    assert "subgraph cluster_L1" in opened and boxes_in(opened) > len(region.nodes)
    assert plan_to_dot(plan, g, expand=[region.name]) == opened
    with pytest.raises(FusionlabError, match="no Myelin region named 'nope'"):
        plan_to_dot(plan, g, expand=["nope"])


def test_render_cli_expand_and_size_guard(vit: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vit.dot"
    assert main(["render", str(vit), "--target", "trt10", "-o", str(out)]) == 0
    assert boxes_in(out.read_text()) < 10
    assert main(["render", str(vit), "--target", "trt10", "--expand", LN, "-o", str(out)]) == 0
    assert boxes_in(out.read_text()) > 1000  # its 1,279 ops; the folded constants stay hidden
    assert main(["render", str(vit), "--target", "trt10", "--stage", "all", "--expand", LN,
                 "-o", str(tmp_path / "all.dot")]) == 0  # stages before the partition have no region
    capsys.readouterr()
    svg = tmp_path / "vit.svg"
    assert main(["render", str(vit), "--target", "trt10", "--stage", "original", "-o", str(svg)]) == 2
    err = capsys.readouterr().err
    assert "more than --max-boxes 1,500" in err and "--focus" in err and len(err.strip().splitlines()) == 1
    assert not svg.exists()
    assert main(["render", str(vit), "--expand", "nope", "-o", str(out)]) == 2
    assert "no Myelin region named 'nope'" in capsys.readouterr().err

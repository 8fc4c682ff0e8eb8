"""``fusionlab predict`` through the real entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fusionlab.cli import main
from fusionlab.plan.serialize import PLAN_KEYS, plan_from_json


def test_table_and_summary(inception: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(inception), "--target", "classic"]) == 0
    out = capsys.readouterr().out
    assert "20 ONNX nodes -> 6 layers (1 eliminated, 1 inserted by the engine)" in out
    assert "inception_3a/relu_1x1 copy" in out and "merge_siblings" in out


def test_json_plan_has_exactly_the_schema_keys(inception: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    assert main(["predict", str(inception), "--target", "classic", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert tuple(data) == PLAN_KEYS
    assert (
        data["schema"] == "fusionlab.plan/2"
        and data["source"] == "predicted"
        and data["target"] == "classic"
    )
    assert set(data["layers"][0]) == {
        "name",
        "kind",
        "engine_type",
        "nodes",
        "branches",
        "absorbed",
        "rule",
        "inputs",
        "outputs",
        "time_ms",
    }
    plan = plan_from_json(out.read_text())
    assert "inception_3a/output" in plan.eliminated
    copy = next(layer for layer in plan.layers if layer.inserted)
    assert copy.nodes == () and copy.kind == "Copy"


def test_stages_and_explain(inception: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = "inception_3a/relu_3x3_reduce"
    assert (
        main(
            [
                "predict",
                str(inception),
                "--target",
                "classic",
                "--stages",
                "--explain",
                node,
                "--explain",
                "inception_3a/pool",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "fold_batchnorm: 14 layers, formed 6" in out
    assert "merge_siblings: 6 layers, formed 1" in out
    assert f"{node}: in layer" in out and "formed by rule 'merge_siblings'" in out
    assert "fuse_conv_activation: formed" in out
    assert (
        "inception_3a/pool: in layer 'inception_3a/pool' (Pooling), formed by rule 'unfused'" in out
    )


def test_explain_names_failed_condition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # LeakyRelu does not fuse into a convolution at fp32: condition 3 of fuse_conv_activation
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    m = helper.make_model(
        helper.make_graph(
            [
                helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                helper.make_node("LeakyRelu", ["c"], ["y"], name="leaky"),
            ],
            "g",
            [x],
            [y],
            [w],
        )
    )
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    assert main(["predict", str(path), "--explain", "leaky"]) == 0
    out = capsys.readouterr().out
    assert "not fuse_conv_activation: conv + leaky: condition 3 failed" in out
    assert main(["predict", str(path), "--precision", "fp16"]) == 0
    assert "conv + leaky" in capsys.readouterr().out


def test_unknown_node_to_explain_is_exit_2(
    inception: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["predict", str(inception), "--explain", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no node named 'nope'" in err[0]


def test_unknown_target_is_usage_error(inception: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fusionlab", "predict", str(inception), "--target", "trt99"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_json_to_stdout(inception: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", str(inception), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == "trt10"

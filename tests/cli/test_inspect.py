"""``fusionlab inspect`` through the real entry point (``fusionlab.cli.main``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from onnx import helper

from fusionlab.cli import main


def inspect_model(kit: Any) -> Path:
    """
    x[N,3,8,8] ── Conv(W[4,3,3,3], B[4], pad 1) ── c ── Relu ── r ── MaxPool(2, stride 2)
      ── p[N,4,4,4] ── Shrink (no cost model) ── s ── Flatten ── f[N,64]
      ── Gemm(fc.w[10,64], fc.b[10], transB) ── y[N,10]
    """
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Shrink", ["p"], ["s"]),
        helper.make_node("Flatten", ["s"], ["f"]),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], transB=1),
    ]
    inits = [kit.weight("W", [4, 3, 3, 3]), kit.weight("B", [4]),
             kit.weight("fc.w", [10, 64]), kit.weight("fc.b", [10])]
    model = kit.model(nodes, [kit.value("x", ["N", 3, 8, 8])], [kit.value("y", ["N", 10])], inits)
    return kit.save(model, "tiny.onnx")


PARAMETERS = 4 * 3 * 3 * 3 + 4 + 10 * 64 + 10  # 762
# at batch 2: Conv 2*4*8*8 = 512 outputs * (2*3*3*3 + 1 bias) = 28160; Relu 512;
# MaxPool 2*4*4*4 = 128 outputs * 2*2 window = 512; Shrink unknown; Flatten 0;
# Gemm 2*(2*10)*64 + 20 bias = 2580
FLOPS_AT_BATCH_2 = 28160 + 512 + 512 + 2580  # 31764


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_text(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = inspect_model(kit)
    code, out, err = run(capsys, "inspect", str(path), "--batch", "2")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "model   tiny  (opset 17, 6 nodes, batch 2)"
    assert lines[1] == "params  762"
    assert lines[2] == "FLOPs   31.76 kFLOP  (FLOPs unknown for: Shrink)"
    assert lines[3] == "input   x  2x3x8x8  float32"
    assert lines[4] == "output  y  2x10  float32"
    # the op histogram: every op once, sorted by count then name
    table = lines[lines.index("op       count"):]
    assert [row.split()[0] for row in table[2:]] == [
        "Conv", "Flatten", "Gemm", "MaxPool", "Relu", "Shrink"]
    assert all(row.split()[1] == "1" for row in table[2:])


def test_summary_json(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", str(inspect_model(kit)), "--batch", "2", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["parameters"] == PARAMETERS
    assert info["flops"] == FLOPS_AT_BATCH_2
    assert info["flops_unknown_ops"] == ["Shrink"]
    assert info["nodes"] == 6 and info["batch"] == 2 and info["opset"] == 17
    assert info["ops"] == {"Conv": 1, "Flatten": 1, "Gemm": 1, "MaxPool": 1, "Relu": 1,
                           "Shrink": 1}
    assert info["inputs"] == [{"name": "x", "shape": [2, 3, 8, 8], "dtype": "float32"}]
    assert info["outputs"] == [{"name": "y", "shape": [2, 10], "dtype": "float32"}]
    assert "node_table" not in info


def test_nodes_json_has_one_record_per_node(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", str(inspect_model(kit)), "--batch", "2", "--json",
                       "--nodes")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["node_table"]}
    assert list(rows) == ["Conv_0", "Relu_1", "MaxPool_2", "Shrink_3", "Flatten_4", "Gemm_5"]
    assert rows["Conv_0"] == {
        "name": "Conv_0", "op": "Conv", "output_shape": [2, 4, 8, 8], "flops": 28160,
        "bytes_read": (2 * 3 * 64 + 108 + 4) * 4, "bytes_written": 512 * 4, "note": "",
    }
    assert rows["Shrink_3"]["flops"] is None
    assert rows["Shrink_3"]["note"] == "FLOPs unknown for Shrink"
    assert rows["Shrink_3"]["bytes_read"] == rows["Shrink_3"]["bytes_written"] == 128 * 4
    assert rows["Flatten_4"]["flops"] == 0


def test_nodes_table_text(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", str(inspect_model(kit)), "--batch", "2", "--nodes")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("node "))
    assert lines[header].split() == ["node", "op", "output", "FLOPs", "bytes", "read", "bytes",
                                     "written", "note"]
    rows = {line.split()[0]: line for line in lines[header + 2:]}
    assert rows["Conv_0"].split()[:4] == ["Conv_0", "Conv", "2x4x8x8", "28,160"]
    assert rows["Shrink_3"].split()[3] == "-"
    assert rows["Shrink_3"].endswith("FLOPs unknown for Shrink")


def test_without_batch_the_symbolic_dimension_shows(kit: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", str(inspect_model(kit)))
    assert code == 0
    assert "batch as in file" in out
    assert "input   x  Nx3x8x8  float32" in out
    info_code, info_out, _ = run(capsys, "inspect", str(inspect_model(kit)), "--json")
    info = json.loads(info_out)
    assert info_code == 0 and info["batch"] is None
    assert info["inputs"][0]["shape"] == ["N", 3, 8, 8]
    # shapes with N have no element count, so only Flatten's 0 is known
    assert info["flops"] == 0
    assert info["flops_unknown_ops"] == ["Conv", "Gemm", "MaxPool", "Relu", "Shrink"]


def test_batch_32(kit: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "inspect", str(inspect_model(kit)), "--batch", "32", "--json")
    info = json.loads(out)
    assert code == 0
    assert info["inputs"][0]["shape"] == [32, 3, 8, 8]
    assert info["outputs"][0]["shape"] == [32, 10]
    assert info["flops"] == 16 * FLOPS_AT_BATCH_2  # every known cost scales with the batch

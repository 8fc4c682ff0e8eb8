"""The TensorRT Cookbook's MNIST network (``mnist-cookbook``): valid, deterministic, runnable,
and node for node what torch's dynamo exporter writes for the cookbook's ``Net`` (the
names the TensorRT 10.16 record in records/cookbook-mnist-trt10.16-h100 uses)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from fusionlab import zoo
from tests.zoo.test_modern import _dims, _layout

COOKBOOK = {"mnist-cookbook"}
"""The models this file covers (``tests/zoo/test_zoo.py`` checks the registry against it)."""
ROOT = Path(__file__).resolve().parents[2]


def test_valid_opset_18_symbolic_batch_two_outputs() -> None:
    model = zoo.build("mnist-cookbook")
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 18)]
    assert [(v.name, _dims(v)) for v in model.graph.input] == [("x", ["nBS", 1, 28, 28])]
    assert [(v.name, _dims(v)) for v in model.graph.output] == [("y", ["nBS", 10]), ("z", ["nBS"])]
    assert model.graph.output[1].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [n.name for n in model.graph.node] == [
        "node_conv2d", "node_relu", "node_max_pool2d", "node_conv2d_1", "node_relu_1",
        "node_max_pool2d_1", "node_view", "node_linear", "node_relu_2", "node_linear_1",
        "node_softmax", "node_argmax"]


def test_deterministic_and_runs_in_onnxruntime() -> None:
    import onnxruntime as ort

    model = zoo.build("mnist-cookbook")
    assert zoo.build("mnist-cookbook").SerializeToString() == model.SerializeToString()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(7).standard_normal((3, 1, 28, 28), dtype=np.float32)
    y, z = session.run(None, {"x": x})
    assert y.shape == (3, 10) and z.shape == (3,) and z.dtype == np.int64
    assert (z == y.argmax(axis=1)).all()


def test_readme_documents_it() -> None:
    readme = (ROOT / "models" / "README.md").read_text(encoding="utf-8")
    assert "fusionlab models export mnist-cookbook " in readme


def _net() -> Any:
    """``Net`` of cookbook/00-Data/get-model-part1.py (NVIDIA/trt-samples-for-hackathon-cn)."""
    import torch
    import torch.nn.functional as F

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 32, (5, 5), padding=(2, 2), bias=True)
            self.conv2 = torch.nn.Conv2d(32, 64, (5, 5), padding=(2, 2), bias=True)
            self.gemm1 = torch.nn.Linear(64 * 7 * 7, 1024, bias=True)
            self.gemm2 = torch.nn.Linear(1024, 10, bias=True)

        def forward(self, x: Any) -> Any:
            x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
            x = F.max_pool2d(F.relu(self.conv2(x)), (2, 2))
            x = x.reshape(-1, 64 * 7 * 7)
            x = F.relu(self.gemm1(x))
            y = self.gemm2(x)
            z = F.softmax(y, dim=1)
            z = torch.argmax(z, dim=1)
            return y, z

    return Net().eval()


def test_node_for_node_what_the_cookbooks_export_writes(tmp_path: Path) -> None:
    """The cookbook's own call (``export_onnx_model``: dynamo, opset 18, ``nBS``)."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript")
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_net(), torch.randn(1, 1, 28, 28), str(path), input_names=["x"],
                          output_names=["y", "z"], do_constant_folding=True, verbose=False,
                          keep_initializers_as_inputs=False, opset_version=18,
                          external_data=False, dynamo=True,
                          dynamic_shapes={"x": {0: torch.export.Dim("nBS")}})
    ours, theirs = _layout(zoo.build("mnist-cookbook"), True), _layout(onnx.load(str(path)), True)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        assert a == b, f"row {i} differs:\n  zoo:  {a}\n  real: {b}"
    assert len(ours) == len(theirs)

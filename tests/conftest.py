"""Fixtures shared by every test folder (keep this small: folders add their own conftest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

Shape = Sequence[int | str | None] | None

REPORTED: list[str] = []
"""Figures tests measured (agreement with a live build ...), printed after the run."""


def report(line: str) -> None:
    """Print ``line`` at the end of the test run (pytest hides a passing test's output)."""
    REPORTED.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORTED:
        terminalreporter.section("measured")
        for line in REPORTED:
            terminalreporter.write_line(line)


class OnnxKit:
    """onnx.helper with test defaults: value infos, seeded weights, models, files.

    ``kit.model([...nodes], [kit.value("x", ["N", 3])], [kit.value("y", None)])``;
    ``kit.save(model)`` writes ``model.onnx`` under the test's own tmp_path.
    """

    OPSET = 17

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._rng = np.random.default_rng(0)

    @staticmethod
    def value(name: str, shape: Shape, dtype: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
        """A graph input/output; ``shape`` None = unknown rank, a str dim = symbolic."""
        return helper.make_tensor_value_info(name, dtype, None if shape is None else list(shape))

    def weight(self, name: str, shape: Sequence[int], dtype: type = np.float32) -> onnx.TensorProto:
        """An initializer filled with seeded random values."""
        array = self._rng.standard_normal(list(shape)).astype(dtype)
        return numpy_helper.from_array(array, name)

    def model(
        self,
        nodes: Sequence[onnx.NodeProto],
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        initializers: Sequence[onnx.TensorProto] = (),
        *,
        opset: int = OPSET,
        name: str = "test",
    ) -> onnx.ModelProto:
        graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs),
                                  initializer=list(initializers))
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])

    def save(self, model: onnx.ModelProto, name: str = "model.onnx") -> Path:
        """Write ``model`` (protobuf) under the test's folder and return the path."""
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save_model(model, str(path))
        return path


@pytest.fixture
def kit(tmp_path: Path) -> OnnxKit:
    """Build ONNX models in code and save them under tmp_path."""
    return OnnxKit(tmp_path)

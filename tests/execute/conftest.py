"""Fixtures for the executor's tests: zoo models as files, once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionlab import zoo


@pytest.fixture(scope="module")
def inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo's inception3a (Conv + BN + Relu branches, a Concat) with a symbolic batch, as a file."""
    path = tmp_path_factory.mktemp("m") / "inception3a.onnx"
    zoo.export("inception3a", path, batch=None)
    return path


@pytest.fixture(scope="module")
def resnet18(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo's resnet18 (residual Add + Relu) with a symbolic batch, as a file."""
    path = tmp_path_factory.mktemp("m") / "resnet18.onnx"
    zoo.export("resnet18", path, batch=None)
    return path

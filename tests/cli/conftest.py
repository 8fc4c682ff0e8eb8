"""Fixtures for CLI tests: zoo models exported to files once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionlab import zoo


@pytest.fixture(scope="module")
def inception(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo's inception3a at batch 1, as a file."""
    path = tmp_path_factory.mktemp("m") / "inception3a.onnx"
    zoo.export("inception3a", path, batch=1)
    return path

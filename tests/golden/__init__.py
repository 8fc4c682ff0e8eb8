"""Golden files: whole outputs (DOT drawings ...) committed and compared byte for byte.

A test calls :func:`assert_golden` with a file name under ``tests/golden/`` and the text
it produced. The files change only on purpose: run the tests with
``FUSIONLAB_UPDATE_GOLDEN=1`` to rewrite them, then review the diff like code::

    FUSIONLAB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/render/test_render.py
    git diff tests/golden
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

FOLDER = Path(__file__).parent
UPDATE_VARIABLE = "FUSIONLAB_UPDATE_GOLDEN"


def updating() -> bool:
    """True when the run was asked to rewrite golden files."""
    return os.environ.get(UPDATE_VARIABLE, "") == "1"


def assert_golden(name: str, text: str) -> None:
    """Fail unless ``tests/golden/<name>`` holds exactly ``text`` (or rewrite it when updating)."""
    path = FOLDER / name
    data = text.encode("utf-8")
    if updating():
        path.write_bytes(data)
        return
    if not path.exists():
        pytest.fail(f"no golden file {path}; create it with {UPDATE_VARIABLE}=1 and review it")
    expected = path.read_bytes()
    if expected == data:
        return
    diff = difflib.unified_diff(
        expected.decode("utf-8", "replace").splitlines(), text.splitlines(),
        f"golden/{name}", "now", lineterm="", n=1,
    )
    shown = "\n".join(list(diff)[:60])
    pytest.fail(f"{name} differs from its golden file (rewrite with {UPDATE_VARIABLE}=1 if "
                f"the change is intended, then review):\n{shown}")

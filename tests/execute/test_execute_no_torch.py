"""``fusionlab execute`` where PyTorch is not installed: one line naming the extra, exit 2."""

from __future__ import annotations

from pathlib import Path

from tests.test_imports import BLOCKER, python


def test_missing_torch_names_the_extra(inception: Path) -> None:
    done = python(BLOCKER + "from fusionlab.cli import main\n"
                  f"raise SystemExit(main(['execute', {str(inception)!r}, '--batch', '1']))\n")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "fusionlab: error: fusionlab execute needs the 'torch' module: "
        "pip install 'fusionlab[torch]'"
    )

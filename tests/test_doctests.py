"""Run the doctest examples of every module under ``fusionlab/``.

Modules whose import needs an optional dependency that is not installed are skipped
with that reason; modules without examples and ``__main__`` modules (importing one starts
the CLI) are left out.
"""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
from types import ModuleType
from typing import Any

import pytest

import fusionlab

OPTIONAL = frozenset({"tensorrt", "tensorrt_rtx", "tensorrt_bindings", "torch", "cuda", "pycuda",
                      "graphviz", "onnxruntime", "hypothesis", "triton"})
"""Top-level modules that fusionlab may need only for some features."""

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(fusionlab.__path__, "fusionlab.")
    if info.name.rsplit(".", 1)[-1] != "__main__"
)


def missing_optional(exc: ModuleNotFoundError) -> str | None:
    """The optional module whose absence caused ``exc``, or None for any other import error."""
    root = (exc.name or "").split(".")[0]
    return root if root in OPTIONAL else None


def run_doctests(module: ModuleType) -> tuple[doctest.TestResults, str]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    report = io.StringIO()
    for test in finder.find(module, module.__name__):
        runner.run(test, out=report.write)
    return runner.summarize(verbose=False), report.getvalue()


def modules_with_examples() -> list[Any]:
    """One parameter per module that has examples; a module that cannot be imported for
    want of an optional dependency is a skip with that reason, for any other reason a
    failure (the test imports it again and shows the error)."""
    params: list[Any] = []
    for name in MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = missing_optional(exc)
            reason = f"{name} needs the optional module {missing!r}, which is not installed"
            marks = [pytest.mark.skip(reason=reason)] if missing else []
            params.append(pytest.param(name, marks=marks))
            continue
        except Exception:
            params.append(pytest.param(name))
            continue
        finder = doctest.DocTestFinder(exclude_empty=True)
        if any(t.examples for t in finder.find(module, name)):
            params.append(pytest.param(name))
    return params


@pytest.mark.parametrize("name", modules_with_examples())
def test_doctests(name: str) -> None:
    module = importlib.import_module(name)
    results, report = run_doctests(module)
    assert results.attempted > 0
    assert results.failed == 0, f"{name}: {results.failed} of {results.attempted} failed\n{report}"


def test_the_foundation_modules_carry_examples() -> None:
    """The runner really finds examples (a broken finder would skip everything)."""
    for name in ("fusionlab.ir.graph", "fusionlab.ir.flops", "fusionlab.plan", "fusionlab.io",
                 "fusionlab.table", "fusionlab.ir.ops", "fusionlab.errors"):
        results, report = run_doctests(importlib.import_module(name))
        assert results.attempted >= 1, name
        assert results.failed == 0, report

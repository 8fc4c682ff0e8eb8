"""fusionlab: predict TensorRT's layer fusions from an ONNX model, check them against the engine.

The Python API (:mod:`fusionlab.api`) is what the command line is built on::

    import fusionlab

    graph = fusionlab.load("model.onnx", batch=1)
    prediction = fusionlab.predict(graph, "trt10")
    engine = fusionlab.read_engine("engine.graph.json", graph=graph)
    print(fusionlab.diff(prediction, engine).metrics.exact_match_rate)

Names are imported on first use, so ``import fusionlab`` (and the command line's start)
loads nothing heavy; optional modules (tensorrt, cuda-python, torch) are imported only by
the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

if TYPE_CHECKING:
    from fusionlab.api import diff, draw, load, predict, read_engine, read_plan, to_dot
    from fusionlab.compare.diff import Diff
    from fusionlab.errors import FusionlabError
    from fusionlab.fusion.predictor import Prediction
    from fusionlab.ir.graph import Graph
    from fusionlab.plan import Elimination, How, Kind, Layer, Plan

_LAZY = {
    "load": "fusionlab.api",
    "predict": "fusionlab.api",
    "read_engine": "fusionlab.api",
    "read_plan": "fusionlab.api",
    "diff": "fusionlab.api",
    "to_dot": "fusionlab.api",
    "draw": "fusionlab.api",
    "Diff": "fusionlab.compare.diff",
    "FusionlabError": "fusionlab.errors",
    "Prediction": "fusionlab.fusion.predictor",
    "Graph": "fusionlab.ir.graph",
    "Elimination": "fusionlab.plan",
    "How": "fusionlab.plan",
    "Kind": "fusionlab.plan",
    "Layer": "fusionlab.plan",
    "Plan": "fusionlab.plan",
}

__all__ = [
    "Diff",
    "Elimination",
    "FusionlabError",
    "Graph",
    "How",
    "Kind",
    "Layer",
    "Plan",
    "Prediction",
    "__version__",
    "diff",
    "draw",
    "load",
    "predict",
    "read_engine",
    "read_plan",
    "to_dot",
]


def __getattr__(name: str) -> Any:
    """The public names, each imported from its module on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fusionlab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

"""fusionlab: predict TensorRT's layer fusions from an ONNX model, check them against the engine.

The Python API mirrors the CLI; heavy optional modules (tensorrt, cuda-python, torch) are
imported only by the functions that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from fusionlab.errors import FusionlabError
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Layer, Plan

__all__ = ["FusionlabError", "Graph", "Layer", "Plan", "__version__", "load"]

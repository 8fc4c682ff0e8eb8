"""A pytest helper for projects that keep their fusion expectations in their own tests.

>>> from fusionlab import zoo
>>> assert_fusions(zoo.build("inception3a"), target="classic", batch=1,
...                fused=[["inception_3a/3x3", "inception_3a/relu_3x3"]],
...                eliminated=["inception_3a/output"])
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import onnx

from fusionlab.compare.expect import Expectations, check, report
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import load


def assert_fusions(
    model: str | os.PathLike[str] | onnx.ModelProto,
    *,
    fused: Sequence[Sequence[str]] = (),
    separate: Sequence[Sequence[str]] = (),
    eliminated: Sequence[str] = (),
    max_layers: int | None = None,
    target: str = "trt10",
    precision: str = "fp32",
    batch: int | None = None,
) -> None:
    """Raise AssertionError (with the full report) unless the predicted plan meets every expectation."""
    g = load(model, batch=batch)
    exp = Expectations(tuple(tuple(f) for f in fused), tuple(tuple(s) for s in separate), tuple(eliminated),
                       max_layers, source="assert_fusions")
    results = check(exp, predict(g, target, precision).plan, known_nodes=g.order)
    if not all(r.ok for r in results):
        raise AssertionError("fusion expectations failed:\n" + report(results))

"""The numerical check: the fused execution computes what the unfused one computes.

Both programs run once on the same seeded random inputs, keeping every tensor. Each
tensor a fused layer writes (with its ONNX name) is compared with the unfused tensor of
that name by the relative error ``||fused - unfused|| / ||unfused||`` (2-norms, in float64).
The worst error must stay under the precision's tolerance (fp32: 1e-4, fp16: 1e-2); a
non-finite value or a shape mismatch counts as an infinite error.

This module imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from fusionlab.errors import FusionlabError
from fusionlab.execute import TOLERANCES
from fusionlab.execute.program import Program, Tensor


@dataclass(frozen=True)
class CheckResult:
    """How far the fused execution is from the unfused one."""

    precision: str
    tolerance: float
    compared: int
    """Tensors compared (every ONNX-named tensor a fused layer writes)."""
    worst_error: float
    worst_tensor: str
    worst_layer: str
    first_over: tuple[str, str, float] | None
    """``(layer, tensor, error)`` of the first layer over the tolerance, in plan order."""
    output_error: float
    """Worst relative error over the graph outputs."""

    @property
    def passed(self) -> bool:
        return self.worst_error < self.tolerance

    def describe(self) -> str:
        """One line for the CLI."""
        verdict = "matches" if self.passed else "DIFFERS from"
        return (
            f"check: fused {verdict} unfused on random inputs: {self.compared} tensors, worst "
            f"relative error {self.worst_error:.2e} at {self.worst_tensor!r} (layer "
            f"{self.worst_layer!r}), outputs {self.output_error:.2e}; limit {self.tolerance:g} "
            f"({self.precision})"
        )


def relative_error(a: Tensor, b: Tensor) -> float:
    """``||a - b|| / ||b||`` in float64; inf for a shape mismatch or a non-finite value.

    >>> relative_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0]))
    0.0
    >>> relative_error(torch.tensor([1.0, float("nan")]), torch.tensor([1.0, 2.0]))
    inf
    """
    if a.shape != b.shape:
        return math.inf
    a64, b64 = a.detach().double(), b.detach().double()
    if not bool(torch.isfinite(a64).all()) or not bool(torch.isfinite(b64).all()):
        return math.inf
    num = float(torch.linalg.vector_norm(a64 - b64))
    den = float(torch.linalg.vector_norm(b64))
    return num / den if den > 0 else num


def compare(
    fused: Program, unfused: Program, feeds: Mapping[str, Tensor], precision: str
) -> CheckResult:
    """Run both programs on ``feeds`` and compare every tensor the fused layers write."""
    tolerance = TOLERANCES[precision]
    ref = unfused.run(feeds, keep=True)
    got = fused.run(feeds, keep=True)
    worst = (-1.0, "", "")
    first: tuple[str, str, float] | None = None
    compared = 0
    for step in fused.steps:
        for t in step.writes:
            if t not in ref or t not in got:
                continue
            err = relative_error(got[t], ref[t])
            compared += 1
            if err > worst[0]:
                worst = (err, t, step.name)
            if first is None and not err < tolerance:
                first = (step.name, t, err)
    outputs = [relative_error(got[t], ref[t]) for t in fused.outputs]
    return CheckResult(
        precision=precision,
        tolerance=tolerance,
        compared=compared,
        worst_error=max(worst[0], 0.0),
        worst_tensor=worst[1],
        worst_layer=worst[2],
        first_over=first,
        output_error=max(outputs, default=0.0),
    )


def require_match(result: CheckResult) -> None:
    """Raise :class:`FusionlabError` naming the worst (and first) layer when the check failed."""
    if result.passed and result.output_error < result.tolerance:
        return
    msg = (
        f"the fused execution does not match the unfused one ({result.precision}, limit "
        f"{result.tolerance:g}): worst relative error {result.worst_error:.3g} at tensor "
        f"{result.worst_tensor!r} of layer {result.worst_layer!r}"
    )
    if result.first_over is not None and result.first_over[0] != result.worst_layer:
        layer, tensor, err = result.first_over
        msg += f"; first over the limit: {tensor!r} of layer {layer!r} ({err:.3g})"
    raise FusionlabError(msg)

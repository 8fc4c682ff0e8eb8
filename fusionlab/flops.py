"""Per-node FLOPs and bytes moved.

Conventions (the unit tests compute the same numbers by hand):

- A multiply-add counts as 2 FLOPs; a bias add, 1 FLOP per output element.
- Point-wise ops count the elementary operations per output element listed in
  ``POINTWISE_FLOPS`` (a transcendental such as ``exp`` counts as one).
- Pooling counts one operation per window element per output; global pooling one per
  input element. Data movement (Reshape, Transpose, Concat, ...) is 0 FLOPs.
- Bytes read are all inputs (activations and weights); bytes written are all outputs.
  A size is None when a shape or dtype is unknown.
- Ops not listed get bytes and ``flops=None`` with a note saying FLOPs are unknown;
  If/Loop/Scan are opaque.

>>> from fusionlab.graph import Tensor
>>> x = Tensor("x", (1, 8, 4, 4), "float32")
>>> node_cost("Relu", {}, [x], [Tensor("y", (1, 8, 4, 4), "float32")]).flops
128
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fusionlab import ops

if TYPE_CHECKING:
    from fusionlab.graph import Tensor


@dataclass(frozen=True)
class Cost:
    """What a node computes and moves. ``flops`` is None when unknown (see ``note``)."""

    flops: int | None
    bytes_read: int | None
    bytes_written: int | None
    note: str = ""

    @property
    def bytes(self) -> int | None:
        """Bytes read plus written, or None when either is unknown."""
        if self.bytes_read is None or self.bytes_written is None:
            return None
        return self.bytes_read + self.bytes_written


POINTWISE_FLOPS: Mapping[str, int] = {
    "Relu": 1, "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Max": 1, "Min": 1, "Neg": 1, "Abs": 1,
    "Clip": 2, "LeakyRelu": 2, "PRelu": 2, "ThresholdedRelu": 1, "Sigmoid": 3, "Tanh": 1,
    "HardSigmoid": 3, "HardSwish": 4, "Elu": 3, "Selu": 4, "Celu": 4, "Softplus": 3,
    "Softsign": 3, "Gelu": 8, "Mish": 5, "Exp": 1, "Log": 1, "Sqrt": 1, "Reciprocal": 1,
    "Pow": 1, "Erf": 1, "Floor": 1, "Ceil": 1, "Round": 1, "Sign": 1, "Sin": 1, "Cos": 1,
    "Mean": 1, "Sum": 1, "Where": 1, "Equal": 1, "Greater": 1, "Less": 1, "And": 1, "Or": 1,
    "Not": 1, "Cast": 0,
}
"""Elementary operations per output element for point-wise ops."""

ZERO_FLOP = ops.DATA_MOVEMENT | {"Concat", "Split"}
SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide


def _numel(t: Tensor | None) -> int | None:
    return None if t is None else t.numel


def _sum_bytes(ts: Sequence[Tensor | None]) -> int | None:
    total = 0
    for t in ts:
        if t is None:
            continue  # an optional input left empty
        b = t.nbytes
        if b is None:
            return None
        total += b
    return total


def _ints(attrs: Mapping[str, Any], key: str) -> tuple[int, ...]:
    value = attrs.get(key, ())
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else ()


def _kernel(attrs: Mapping[str, Any], weight: Tensor | None) -> tuple[int, ...] | None:
    k = _ints(attrs, "kernel_shape")
    if k:
        return k
    if weight is not None and weight.shape is not None and all(isinstance(d, int) for d in weight.shape):
        return tuple(int(d) for d in weight.shape[2:])  # type: ignore[arg-type]
    return None


def _flops(op: str, attrs: Mapping[str, Any], ins: Sequence[Tensor | None], outs: Sequence[Tensor | None]) -> int | None:
    out = _numel(outs[0]) if outs else None
    if op == "Conv":
        w = ins[1] if len(ins) > 1 else None
        k = _kernel(attrs, w)
        if out is None or w is None or w.shape is None or k is None or not isinstance(w.shape[1], int):
            return None
        per_output = 2 * int(w.shape[1]) * math.prod(k)  # C_in / groups * kernel, multiply-add = 2
        bias = out if len(ins) > 2 and ins[2] is not None else 0
        return out * per_output + bias
    if op == "ConvTranspose":
        x, w = (ins[0], ins[1]) if len(ins) > 1 else (None, None)
        xin = _numel(x)
        k = _kernel(attrs, w)
        if xin is None or w is None or w.shape is None or k is None or not isinstance(w.shape[1], int) or out is None:
            return None
        # every input element is multiplied into C_out/groups x kernel outputs
        per_input = 2 * int(w.shape[1]) * math.prod(k)
        bias = out if len(ins) > 2 and ins[2] is not None else 0
        return xin * per_input + bias
    if op in ("Gemm", "MatMul"):
        a = ins[0] if ins else None
        if out is None or a is None or a.shape is None or not a.shape:
            return None
        k_dim = a.shape[0] if op == "Gemm" and attrs.get("transA", 0) else a.shape[-1]
        if not isinstance(k_dim, int):
            return None
        bias = out if op == "Gemm" and len(ins) > 2 and ins[2] is not None else 0
        return 2 * out * k_dim + bias
    if op == "BatchNormalization" or op == "InstanceNormalization":
        return None if out is None else 2 * out  # x * scale + shift once folded
    if op == "LayerNormalization":
        return None if out is None else 8 * out
    if op == "LRN":
        size = int(attrs.get("size", 5))
        # square and sum over `size` channels, then scale, pow and divide
        return None if out is None else out * (2 * size + 3)
    if op in ("MaxPool", "AveragePool", "LpPool"):
        k = _ints(attrs, "kernel_shape")
        return None if out is None or not k else out * math.prod(k)
    if op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"):
        return _numel(ins[0]) if ins else None
    if op in ("Softmax", "LogSoftmax"):
        return None if out is None else SOFTMAX_FLOPS_PER_ELEMENT * out
    if op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"):
        return _numel(ins[0]) if ins else None
    if op in POINTWISE_FLOPS:
        return None if out is None else POINTWISE_FLOPS[op] * out
    if op in ZERO_FLOP:
        return 0
    raise KeyError(op)


def node_cost(
    op: str,
    attrs: Mapping[str, Any],
    inputs: Sequence[Tensor | None],
    outputs: Sequence[Tensor | None],
) -> Cost:
    """FLOPs and bytes of one node from its attributes and its tensors' shapes."""
    read, written = _sum_bytes(inputs), _sum_bytes(outputs)
    if op in ops.OPAQUE:
        return Cost(None, read, written, f"{op} is opaque: its body is not analysed")
    try:
        flops = _flops(op, attrs, inputs, outputs)
    except KeyError:
        return Cost(None, read, written, f"FLOPs unknown for {op}")
    note = "" if flops is not None else "FLOPs unknown: shapes not inferred"
    return Cost(flops, read, written, note)

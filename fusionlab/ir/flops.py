"""Per-node FLOPs and bytes moved.

Conventions (the unit tests compute the same numbers by hand):

- A multiply-add counts as 2 FLOPs; a bias add, 1 FLOP per output element.
- Conv: ``2 * C_in/groups * prod(kernel)`` per output element (+1 with a bias); dilation
  and stride change the output size only. ConvTranspose: ``2 * C_out/groups *
  prod(kernel)`` per *input* element (+1 per output element with a bias).
- Gemm / MatMul: ``2 * K`` per output element (K from ``transA`` for Gemm; batch
  dimensions are in the output count), +1 per output element for a Gemm bias ``C``.
- BatchNormalization / InstanceNormalization: 2 per output element (a scale and a shift
  once folded); LayerNormalization: 8.
- LRN: ``2 * size + 4`` per output element (``size`` squares and adds, then a multiply
  by alpha/size, the bias add, the power and the division).
- Pooling counts one operation per window element per output; global pooling one per
  input element; reductions one per input element. Softmax and LogSoftmax: 5 per
  element (max, subtract, exp, sum, divide).
- Point-wise ops count the elementary operations per output element listed in
  ``POINTWISE_FLOPS`` (a transcendental such as ``exp`` counts as one); the variadic
  Max/Min/Sum/Mean count one per extra input (Mean one more for the division).
- Data movement (Reshape, Flatten, Transpose, Dropout, Identity, Concat, Split, ...) is
  0 FLOPs.
- Bytes read are all inputs (activations and weights); bytes written are all outputs.
  A size is None when a shape or dtype is unknown.
- Ops not listed get bytes and ``flops=None`` with a note saying FLOPs are unknown;
  If/Loop/Scan are opaque.

>>> from fusionlab.ir.tensors import Tensor
>>> x = Tensor("x", (1, 8, 4, 4), "float32")
>>> node_cost("Relu", {}, [x], [Tensor("y", (1, 8, 4, 4), "float32")]).flops
128
>>> node_cost("NonMaxSuppression", {}, [x], [None])
Cost(flops=None, bytes_read=512, bytes_written=0, note='FLOPs unknown for NonMaxSuppression')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fusionlab.ir import ops
from fusionlab.ir.tensors import Tensor


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
    "Not": 1, "Cast": 0, "Mod": 1,
}
"""Elementary operations per output element for point-wise ops (two inputs for binary)."""

VARIADIC = frozenset({"Max", "Min", "Sum", "Mean"})
ZERO_FLOP = ops.DATA_MOVEMENT | {"Concat", "Split", "ConstantOfShape", "Range",
                                 "QuantizeLinear", "DequantizeLinear"}
"""Ops that do no arithmetic worth counting. Quantize/Dequantize are counted as zero: TensorRT
folds them into the weights or fuses them into the INT8 layers around them, and where one
stays it is a reformat whose cost is the bytes it moves (which are counted)."""
RESIZE_FLOPS: Mapping[str, int] = {"nearest": 0, "linear": 7, "cubic": 31}
"""Per output element: nearest copies; (bi)linear blends 4 neighbours (3 lerps, 2 ops
each, plus an index computation); cubic blends 16 neighbours (a rough count)."""
SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide
LRN_EXTRA_FLOPS = 4  # after the size squares and adds: * alpha/size, + bias, pow, divide


class _Unknown:
    """Marks an op the cost model does not know (as opposed to unknown shapes)."""


_UNKNOWN: Final = _Unknown()


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
    return tuple(int(v) for v in value) if isinstance(value, tuple | list) else ()


def _known_shape(t: Tensor | None) -> tuple[int, ...] | None:
    if t is None or t.shape is None:
        return None
    dims = tuple(d for d in t.shape if isinstance(d, int))
    return dims if len(dims) == len(t.shape) else None


def _kernel(attrs: Mapping[str, Any], weight_shape: tuple[int, ...]) -> tuple[int, ...]:
    return _ints(attrs, "kernel_shape") or weight_shape[2:]


def _has(ins: Sequence[Tensor | None], i: int) -> bool:
    return len(ins) > i and ins[i] is not None


def _conv(
    op: str, attrs: Mapping[str, Any], ins: Sequence[Tensor | None], out: int | None
) -> int | None:
    w = _known_shape(ins[1]) if len(ins) > 1 else None
    if out is None or w is None or len(w) < 2:
        return None
    bias = out if _has(ins, 2) else 0
    # Conv W: (C_out, C_in/groups, k...); ConvTranspose W: (C_in, C_out/groups, k...)
    per_element = 2 * w[1] * math.prod(_kernel(attrs, w))
    if op == "Conv":
        return out * per_element + bias
    xin = _numel(ins[0])
    return None if xin is None else xin * per_element + bias


def _gemm(
    op: str, attrs: Mapping[str, Any], ins: Sequence[Tensor | None], out: int | None
) -> int | None:
    a = ins[0] if ins else None
    if out is None or a is None or not a.shape:
        return None
    k_dim = a.shape[0] if op == "Gemm" and attrs.get("transA", 0) else a.shape[-1]
    if not isinstance(k_dim, int):
        return None
    bias = out if op == "Gemm" and _has(ins, 2) else 0
    return 2 * out * k_dim + bias


def _flops(
    op: str, attrs: Mapping[str, Any], ins: Sequence[Tensor | None], outs: Sequence[Tensor | None]
) -> int | _Unknown | None:
    out = _numel(outs[0]) if outs else None
    if op in ("Conv", "ConvTranspose"):
        return _conv(op, attrs, ins, out)
    if op in ("Gemm", "MatMul"):
        return _gemm(op, attrs, ins, out)
    if op in ("BatchNormalization", "InstanceNormalization"):
        return None if out is None else 2 * out  # x * scale + shift once folded
    if op == "LayerNormalization":
        return None if out is None else 8 * out
    if op == "LRN":
        size = int(attrs.get("size", 5))
        return None if out is None else out * (2 * size + LRN_EXTRA_FLOPS)
    if op in ("MaxPool", "AveragePool", "LpPool"):
        k = _ints(attrs, "kernel_shape")
        return None if out is None or not k else out * math.prod(k)
    if op in ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"):
        return _numel(ins[0]) if ins else None
    if op in ("Softmax", "LogSoftmax"):
        return None if out is None else SOFTMAX_FLOPS_PER_ELEMENT * out
    if op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2"):
        return _numel(ins[0]) if ins else None
    if op in VARIADIC:
        if out is None:
            return None
        extra = max(1, sum(1 for t in ins if t is not None) - 1)
        return out * (extra + (1 if op == "Mean" else 0))
    if op in POINTWISE_FLOPS:
        return None if out is None else POINTWISE_FLOPS[op] * out
    if op in ("Resize", "Upsample"):
        mode = str(attrs.get("mode", "nearest"))
        per = RESIZE_FLOPS.get(mode.removeprefix("bi").removeprefix("tri"), 0)
        return None if out is None else per * out
    if op in ZERO_FLOP:
        return 0
    return _UNKNOWN


def node_cost(
    op: str,
    attrs: Mapping[str, Any],
    inputs: Sequence[Tensor | None],
    outputs: Sequence[Tensor | None],
) -> Cost:
    """FLOPs and bytes of one node from its attributes and its tensors' shapes.

    ``inputs``/``outputs`` hold None for an omitted optional tensor.

    >>> from fusionlab.ir.tensors import Tensor
    >>> x, w = Tensor("x", (1, 4, 8, 8), "float32"), Tensor("w", (16, 4, 3, 3), "float32")
    >>> node_cost("Conv", {"pads": (1, 1, 1, 1)}, [x, w], [Tensor("y", (1, 16, 8, 8), "float32")])
    Cost(flops=73728, bytes_read=3328, bytes_written=4096, note='')
    """
    read, written = _sum_bytes(inputs), _sum_bytes(outputs)
    if op in ops.OPAQUE:
        return Cost(None, read, written, f"{op} is opaque: its body is not analysed")
    flops = _flops(op, attrs, inputs, outputs)
    if isinstance(flops, _Unknown):
        return Cost(None, read, written, f"FLOPs unknown for {op}")
    note = "" if flops is not None else "FLOPs unknown: shapes not inferred"
    return Cost(flops, read, written, note)

"""ONNX ops as PyTorch calls: one kernel builder per op, used by both executions.

:func:`make_kernel` turns one ONNX node into a :class:`Kernel`: a callable over the node's
input tensors (in ONNX order; ``None`` for an omitted optional input) that returns its
output tensors. Everything that can be read before running (attributes, constant inputs
such as Clip bounds, Reshape shapes or Pad amounts, static input shapes for ``auto_pad``)
is read once, when the kernel is built. Ops whose last step is a TensorIterator kernel
also get ``into``, which writes the result into a given (possibly strided) tensor — how a
producer writes straight into its channel slice of an eliminated Concat.

This module imports torch; :mod:`fusionlab.execute` imports it only once torch is known to
be there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fusionlab.errors import FusionlabError
from fusionlab.ir.graph import Graph, Node

Tensor = torch.Tensor
KernelFn = Callable[[Sequence[Tensor | None]], list[Tensor]]
IntoFn = Callable[[Sequence[Tensor | None], Tensor], None]

SUPPORTED_OPS = frozenset(
    {
        "Conv", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh",
        "HardSigmoid", "HardSwish", "Add", "Sub", "Mul", "Div", "MaxPool", "AveragePool",
        "GlobalAveragePool", "GlobalMaxPool", "Flatten", "Gemm", "MatMul", "Concat", "LRN",
        "Softmax", "Dropout", "Identity", "Reshape", "Pad", "Squeeze", "Unsqueeze",
        "Transpose", "Constant", "Shape", "Gather", "Cast",
    }
)
"""Ops the executor runs (Constant, Shape, Gather and Cast mostly fold at load)."""

POINTWISE_OPS = frozenset(
    {"Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
     "Add", "Sub", "Mul", "Div"}
)
"""Element-wise ops that a point-wise chain (``PWN``) may hold."""

_ONNX_TO_TORCH_DTYPE: Mapping[int, torch.dtype] = {
    1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32,
    7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16,
}


@dataclass(frozen=True)
class Kernel:
    """One ONNX node as a PyTorch call."""

    node: str
    op: str
    fn: KernelFn
    how: str
    """The PyTorch call, for paths shown to users (``torch.conv2d``, ``F.max_pool2d`` ...)."""
    into: IntoFn | None = None
    """Writes the (single) output into a given tensor, or None when the op cannot."""


@dataclass(frozen=True)
class Env:
    """What a kernel builder may read: the graph, constants, device and compute dtype."""

    graph: Graph
    constants: Mapping[str, Tensor]
    """Constant tensors (initializers and folded nodes) on the device, floats in ``dtype``."""
    values: Mapping[str, np.ndarray]
    """The same constants as numpy arrays in their original dtypes (for shapes, bounds)."""
    device: torch.device
    dtype: torch.dtype

    def value(self, name: str, node: Node, what: str) -> np.ndarray:
        """A constant input's value; a data input where a constant is needed is an error."""
        if name not in self.values:
            raise FusionlabError(
                f"node {node.name!r} ({node.op}): {what} input {name!r} must be a constant "
                "(an initializer or computed from constants)"
            )
        return self.values[name]

    def shape(self, name: str, node: Node) -> tuple[int, ...]:
        """The static shape of a tensor (from ONNX shape inference)."""
        t = self.graph.tensors.get(name)
        if t is None or t.shape is None or not all(isinstance(d, int) for d in t.shape):
            raise FusionlabError(
                f"node {node.name!r} ({node.op}): the shape of {name!r} is not known; "
                "fix the batch size with --batch"
            )
        return tuple(int(d) for d in t.shape)  # type: ignore[arg-type]


def torch_dtype(onnx_type: int) -> torch.dtype:
    """The torch dtype of an ONNX ``TensorProto`` data type number.

    >>> torch_dtype(1), torch_dtype(7)
    (torch.float32, torch.int64)
    """
    try:
        return _ONNX_TO_TORCH_DTYPE[onnx_type]
    except KeyError:
        raise FusionlabError(f"ONNX data type {onnx_type} is not supported") from None


def _ints(v: Any, n: int, default: int) -> list[int]:
    return [int(x) for x in v] if v is not None else [default] * n


def _x(xs: Sequence[Tensor | None], i: int) -> Tensor:
    t = xs[i]
    assert t is not None
    return t


def conv_geometry(
    node: Node, env: Env, weight_shape: Sequence[int]
) -> tuple[list[int], list[int], list[int], list[int], int]:
    """``(stride, pads_begin, pads_end, dilation, groups)`` of a Conv, ``auto_pad`` resolved."""
    k = len(weight_shape) - 2
    a = node.attrs
    stride = _ints(a.get("strides"), k, 1)
    dilation = _ints(a.get("dilations"), k, 1)
    pads = _ints(a.get("pads"), 2 * k, 0)
    auto = a.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        spatial = env.shape(node.inputs[0], node)[2:]
        pads = [0] * (2 * k)
        for i in range(k):
            out = math.ceil(spatial[i] / stride[i])
            total = max((out - 1) * stride[i] + (weight_shape[2 + i] - 1) * dilation[i] + 1
                        - spatial[i], 0)
            small, big = total // 2, total - total // 2
            pads[i], pads[k + i] = (small, big) if auto == "SAME_UPPER" else (big, small)
    elif auto == "VALID":
        pads = [0] * (2 * k)
    return stride, pads[:k], pads[k:], dilation, int(a.get("group", 1))


def torch_pad(begin: Sequence[int], end: Sequence[int]) -> list[int]:
    """ONNX-style begin/end pads of the trailing dims as ``F.pad``'s list (last dim first).

    >>> torch_pad([1, 2], [3, 4])
    [2, 4, 1, 3]
    """
    out: list[int] = []
    for b, e in zip(reversed(begin), reversed(end), strict=True):
        out += [b, e]
    return out


def convolution(
    x: Tensor, w: Tensor, b: Tensor | None, stride: Sequence[int], begin: Sequence[int],
    end: Sequence[int], dilation: Sequence[int], groups: int,
) -> Tensor:
    """A convolution with ONNX padding (asymmetric padding through an explicit ``F.pad``)."""
    if list(begin) != list(end):
        x = F.pad(x, torch_pad(begin, end))
        begin = [0] * len(begin)
    return torch.convolution(
        x, w, b, list(stride), list(begin), list(dilation), False, [0] * len(stride), groups
    )


def _conv(node: Node, env: Env) -> Kernel:
    w = env.constants.get(node.inputs[1])
    if w is None:
        raise FusionlabError(f"node {node.name!r} (Conv): weights must be constant")
    b = env.constants.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    stride, begin, end, dil, groups = conv_geometry(node, env, tuple(w.shape))
    if w.dim() == 4:
        w = w.contiguous(memory_format=torch.channels_last)

    def fn(xs: Sequence[Tensor | None]) -> list[Tensor]:
        return [convolution(_x(xs, 0), w, b, stride, begin, end, dil, groups)]

    return Kernel(node.name, node.op, fn, "torch.convolution")


def _batchnorm(node: Node, env: Env) -> Kernel:
    eps = float(node.attrs.get("epsilon", 1e-5))
    scale, bias, mean, var = (env.constants[t] for t in node.inputs[1:5])

    def fn(xs: Sequence[Tensor | None]) -> list[Tensor]:
        return [F.batch_norm(_x(xs, 0), mean, var, scale, bias, False, 0.0, eps)]

    return Kernel(node.name, node.op, fn, "F.batch_norm (inference)")


def _clip_bounds(node: Node, env: Env) -> tuple[float | None, float | None]:
    if "min" in node.attrs or "max" in node.attrs:  # opset < 11
        return (float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf)))
    lo = hi = None
    if len(node.inputs) > 1 and node.inputs[1]:
        lo = float(env.value(node.inputs[1], node, "min"))
    if len(node.inputs) > 2 and node.inputs[2]:
        hi = float(env.value(node.inputs[2], node, "max"))
    return lo, hi


def clip_bounds(node: Node, env: Env) -> tuple[float | None, float | None]:
    """Clip's ``(min, max)``, None where unbounded."""
    return _clip_bounds(node, env)


def _unary(node: Node, env: Env) -> Kernel:
    op = node.op
    a = node.attrs
    if op == "Relu":
        def relu_into(xs: Sequence[Tensor | None], out: Tensor) -> None:
            torch.clamp_min(_x(xs, 0), 0.0, out=out)

        return Kernel(node.name, op, lambda xs: [torch.relu(_x(xs, 0))], "torch.relu",
                      relu_into)
    if op == "Clip":
        lo, hi = _clip_bounds(node, env)
        def clip_into(xs: Sequence[Tensor | None], out: Tensor) -> None:
            torch.clamp(_x(xs, 0), lo, hi, out=out)

        return Kernel(node.name, op, lambda xs: [torch.clamp(_x(xs, 0), lo, hi)], "torch.clamp",
                      clip_into)
    if op == "LeakyRelu":
        alpha = float(a.get("alpha", 0.01))
        return Kernel(node.name, op, lambda xs: [F.leaky_relu(_x(xs, 0), alpha)],
                      "F.leaky_relu")
    if op == "Sigmoid":
        def sigmoid_into(xs: Sequence[Tensor | None], out: Tensor) -> None:
            torch.sigmoid(_x(xs, 0), out=out)

        return Kernel(node.name, op, lambda xs: [torch.sigmoid(_x(xs, 0))], "torch.sigmoid",
                      sigmoid_into)
    if op == "Tanh":
        def tanh_into(xs: Sequence[Tensor | None], out: Tensor) -> None:
            torch.tanh(_x(xs, 0), out=out)

        return Kernel(node.name, op, lambda xs: [torch.tanh(_x(xs, 0))], "torch.tanh",
                      tanh_into)
    if op == "HardSigmoid":
        alpha, beta = float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))
        return Kernel(node.name, op,
                      lambda xs: [torch.clamp(_x(xs, 0) * alpha + beta, 0.0, 1.0)],
                      "torch.clamp(x * alpha + beta)")
    if op == "HardSwish":
        return Kernel(node.name, op, lambda xs: [F.hardswish(_x(xs, 0))], "F.hardswish")
    raise AssertionError(op)


_BINARY: Mapping[str, Callable[..., Tensor]] = {
    "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div,
}


def _binary(node: Node, env: Env) -> Kernel:
    f = _BINARY[node.op]

    def into(xs: Sequence[Tensor | None], out: Tensor) -> None:
        f(_x(xs, 0), _x(xs, 1), out=out)

    return Kernel(node.name, node.op, lambda xs: [f(_x(xs, 0), _x(xs, 1))],
                  f"torch.{f.__name__}", into)


def _pool(node: Node, env: Env) -> Kernel:
    a = node.attrs
    op = node.op
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        rank = len(env.shape(node.inputs[0], node))
        dims = tuple(range(2, rank))
        if op == "GlobalAveragePool":
            if rank == 4:
                return Kernel(node.name, op, lambda xs: [F.adaptive_avg_pool2d(_x(xs, 0), 1)],
                              "F.adaptive_avg_pool2d")
            return Kernel(node.name, op, lambda xs: [_x(xs, 0).mean(dims, keepdim=True)],
                          "torch.mean")
        return Kernel(node.name, op, lambda xs: [torch.amax(_x(xs, 0), dims, keepdim=True)],
                      "torch.amax")
    kernel = [int(k) for k in a["kernel_shape"]]
    k = len(kernel)
    if k != 2:
        raise FusionlabError(f"node {node.name!r} ({op}): only 2-D pooling is supported")
    stride = _ints(a.get("strides"), k, 1)
    pads = _ints(a.get("pads"), 2 * k, 0)
    ceil = bool(a.get("ceil_mode", 0))
    auto = a.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto not in ("NOTSET", "VALID"):
        raise FusionlabError(f"node {node.name!r} ({op}): auto_pad {auto} is not supported")
    if auto == "VALID":
        pads = [0] * (2 * k)
    begin, end = pads[:k], pads[k:]
    symmetric = begin == end and all(p <= kk // 2 for p, kk in zip(begin, kernel, strict=True))
    if op == "MaxPool":
        dil = _ints(a.get("dilations"), k, 1)
        if len([t for t in node.outputs if t]) > 1:
            raise FusionlabError(f"node {node.name!r} (MaxPool): the Indices output is not supported")
        if symmetric:
            return Kernel(node.name, op,
                          lambda xs: [F.max_pool2d(_x(xs, 0), kernel, stride, begin, dil, ceil)],
                          "F.max_pool2d")
        pad = torch_pad(begin, end)
        return Kernel(node.name, op, lambda xs: [F.max_pool2d(
            F.pad(_x(xs, 0), pad, value=-math.inf), kernel, stride, 0, dil, ceil)],
            "F.pad(-inf) + F.max_pool2d")
    include = bool(a.get("count_include_pad", 0))
    if not symmetric:
        if not include and any(begin + end):
            raise FusionlabError(
                f"node {node.name!r} (AveragePool): asymmetric padding that is not counted "
                "is not supported"
            )
        pad = torch_pad(begin, end)
        return Kernel(node.name, op, lambda xs: [F.avg_pool2d(
            F.pad(_x(xs, 0), pad), kernel, stride, 0, ceil, True)], "F.pad + F.avg_pool2d")
    return Kernel(node.name, op,
                  lambda xs: [F.avg_pool2d(_x(xs, 0), kernel, stride, begin, ceil, include)],
                  "F.avg_pool2d")


def _gemm(node: Node, env: Env) -> Kernel:
    a = node.attrs
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    ta, tb = int(a.get("transA", 0)), int(a.get("transB", 0))
    has_c = len(node.inputs) > 2 and bool(node.inputs[2])
    b_const = env.constants.get(node.inputs[1])
    if b_const is not None and not ta and alpha == 1.0 and beta == 1.0:
        w = b_const if tb else b_const.t().contiguous()
        c = env.constants.get(node.inputs[2]) if has_c else None
        if c is None or c.dim() <= 1:
            return Kernel(node.name, node.op, lambda xs: [F.linear(_x(xs, 0), w, c)],
                          "F.linear")

    def fn(xs: Sequence[Tensor | None]) -> list[Tensor]:
        A, B = _x(xs, 0), _x(xs, 1)
        A = A.t() if ta else A
        B = B.t() if tb else B
        y = A @ B
        if alpha != 1.0:
            y = y * alpha
        if has_c:
            y = y + beta * _x(xs, 2)
        return [y]

    return Kernel(node.name, node.op, fn, "torch.matmul (+ bias)")


def _reshape_like(node: Node, env: Env) -> Kernel:
    op = node.op
    a = node.attrs
    if op == "Flatten":
        axis = int(a.get("axis", 1))

        def flatten(xs: Sequence[Tensor | None]) -> list[Tensor]:
            x = _x(xs, 0)
            ax = axis % x.dim() if x.dim() else 0
            lead = math.prod(x.shape[:ax])
            return [x.reshape(lead, -1)]

        return Kernel(node.name, op, flatten, "Tensor.reshape")
    if op == "Reshape":
        shape = [int(s) for s in env.value(node.inputs[1], node, "shape").ravel()]
        allowzero = int(a.get("allowzero", 0))

        def reshape(xs: Sequence[Tensor | None]) -> list[Tensor]:
            x = _x(xs, 0)
            dims = [x.shape[i] if s == 0 and not allowzero else s for i, s in enumerate(shape)]
            return [x.reshape(dims)]

        return Kernel(node.name, op, reshape, "Tensor.reshape")
    if op in ("Squeeze", "Unsqueeze"):
        if "axes" in a:
            axes = [int(v) for v in a["axes"]]
        elif len(node.inputs) > 1 and node.inputs[1]:
            axes = [int(v) for v in env.value(node.inputs[1], node, "axes").ravel()]
        else:
            axes = []

        def squeeze(xs: Sequence[Tensor | None]) -> list[Tensor]:
            x = _x(xs, 0)
            if op == "Squeeze":
                if not axes:
                    return [x.squeeze()]
                return [x.squeeze(tuple(ax % x.dim() for ax in axes))]
            rank = x.dim() + len(axes)
            for ax in sorted(ax % rank for ax in axes):
                x = x.unsqueeze(ax)
            return [x]

        return Kernel(node.name, op, squeeze, f"Tensor.{op.lower()}")
    if op == "Transpose":
        perm = a.get("perm")
        return Kernel(node.name, op, lambda xs: [
            _x(xs, 0).permute(*(perm if perm is not None else reversed(range(_x(xs, 0).dim()))))
        ], "Tensor.permute")
    raise AssertionError(op)


def _pad(node: Node, env: Env) -> Kernel:
    a = node.attrs
    mode = a.get("mode", "constant")
    if isinstance(mode, bytes):
        mode = mode.decode()
    if "pads" in a:
        pads = [int(v) for v in a["pads"]]
        value = float(a.get("value", 0.0))
    else:
        pads = [int(v) for v in env.value(node.inputs[1], node, "pads").ravel()]
        value = 0.0
        if len(node.inputs) > 2 and node.inputs[2]:
            value = float(env.value(node.inputs[2], node, "constant_value").ravel()[0])
        if len(node.inputs) > 3 and node.inputs[3]:
            raise FusionlabError(f"node {node.name!r} (Pad): the axes input is not supported")
    n = len(pads) // 2
    begin, end = pads[:n], pads[n:]
    while begin and begin[0] == 0 and end[0] == 0:
        begin, end = begin[1:], end[1:]
    pad = torch_pad(begin, end)
    torch_mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(mode)
    if torch_mode is None:
        raise FusionlabError(f"node {node.name!r} (Pad): mode {mode!r} is not supported")
    if torch_mode == "constant":
        return Kernel(node.name, node.op, lambda xs: [F.pad(_x(xs, 0), pad, value=value)],
                      "F.pad")
    return Kernel(node.name, node.op, lambda xs: [F.pad(_x(xs, 0), pad, mode=torch_mode)],
                  f"F.pad({torch_mode})")


def _softmax(node: Node, env: Env, opset: int) -> Kernel:
    axis = int(node.attrs.get("axis", -1 if opset >= 13 else 1))
    if opset >= 13:
        return Kernel(node.name, node.op, lambda xs: [torch.softmax(_x(xs, 0), axis)],
                      "torch.softmax")

    def fn(xs: Sequence[Tensor | None]) -> list[Tensor]:
        x = _x(xs, 0)
        ax = axis % x.dim()
        flat = x.reshape(math.prod(x.shape[:ax]), -1)
        return [torch.softmax(flat, 1).reshape(x.shape)]

    return Kernel(node.name, node.op, fn, "torch.softmax (2-D, opset < 13)")


def _small(node: Node, env: Env) -> Kernel:
    op = node.op
    a = node.attrs
    if op in ("Identity", "Dropout"):
        def alias(xs: Sequence[Tensor | None]) -> list[Tensor]:
            x = _x(xs, 0)
            outs = [x]
            if len([t for t in node.outputs if t]) > 1:
                outs.append(torch.ones_like(x, dtype=torch.bool))
            return outs

        return Kernel(node.name, op, alias, "alias (no kernel)")
    if op == "Concat":
        axis = int(a["axis"])
        return Kernel(node.name, op,
                      lambda xs: [torch.cat([t for t in xs if t is not None], axis)], "torch.cat")
    if op == "LRN":
        size = int(a["size"])
        alpha, beta, bias = (float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)),
                             float(a.get("bias", 1.0)))
        return Kernel(node.name, op,
                      lambda xs: [F.local_response_norm(_x(xs, 0), size, alpha, beta, bias)],
                      "F.local_response_norm")
    if op == "MatMul":
        return Kernel(node.name, op, lambda xs: [torch.matmul(_x(xs, 0), _x(xs, 1))],
                      "torch.matmul")
    if op == "Shape":
        def shape(xs: Sequence[Tensor | None]) -> list[Tensor]:
            return [torch.tensor(list(_x(xs, 0).shape), dtype=torch.int64)]

        return Kernel(node.name, op, shape, "Tensor.shape")
    if op == "Gather":
        axis = int(a.get("axis", 0))

        def gather(xs: Sequence[Tensor | None]) -> list[Tensor]:
            data, idx = _x(xs, 0), _x(xs, 1).long()
            ax = axis % data.dim()
            idx = torch.where(idx < 0, idx + data.shape[ax], idx)
            picked = data.index_select(ax, idx.reshape(-1).to(data.device))
            return [picked.reshape((*data.shape[:ax], *idx.shape, *data.shape[ax + 1:]))]

        return Kernel(node.name, op, gather, "Tensor.index_select")
    if op == "Cast":
        to = torch_dtype(int(a["to"]))

        def cast(xs: Sequence[Tensor | None]) -> list[Tensor]:
            x = _x(xs, 0)
            target = env.dtype if to.is_floating_point and x.is_floating_point() else to
            return [x.to(target)]

        return Kernel(node.name, op, cast, "Tensor.to")
    raise AssertionError(op)


def make_kernel(node: Node, env: Env) -> Kernel:
    """The PyTorch realisation of one ONNX node; an unsupported op is a one-line error."""
    op = node.op
    if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
        raise FusionlabError(
            f"node {node.name!r}: op {op!r} is not supported by the PyTorch executor "
            f"(supported: {', '.join(sorted(SUPPORTED_OPS))})"
        )
    if op == "Conv":
        return _conv(node, env)
    if op == "BatchNormalization":
        return _batchnorm(node, env)
    if op in ("Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish"):
        return _unary(node, env)
    if op in _BINARY:
        return _binary(node, env)
    if op in ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
        return _pool(node, env)
    if op == "Gemm":
        return _gemm(node, env)
    if op in ("Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose"):
        return _reshape_like(node, env)
    if op == "Pad":
        return _pad(node, env)
    if op == "Softmax":
        return _softmax(node, env, env.graph.opset)
    if op == "Constant":
        raise AssertionError("Constant nodes are folded at load")
    return _small(node, env)

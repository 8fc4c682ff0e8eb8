"""One layer-kind vocabulary for every plan, predicted or actual.

A predicted layer's kind follows from the ONNX op at its head (:func:`kind_of_op`); an
engine layer's from TensorRT's ``LayerType`` (or ``ParameterType``), which the plan keeps
beside it as ``engine_type`` (:func:`kind_of_engine_type`). The values are TensorRT's own
layer-type words, so tables and drawings read as TensorRT users expect.

>>> kind_of_op("Conv"), kind_of_op("Relu"), kind_of_op("Add"), kind_of_op("Flatten")
(<Kind.CONVOLUTION: 'Convolution'>, <Kind.ACTIVATION: 'Activation'>, \
<Kind.ELEMENTWISE: 'ElementWise'>, <Kind.SHUFFLE: 'Shuffle'>)
>>> kind_of_engine_type("CaskConvolution").value, kind_of_engine_type("TiledPooling").value
('Convolution', 'Pooling')
>>> kind_of_engine_type("kgen").value, kind_of_engine_type("SomethingNew").value
('PointWise', 'Other')
>>> kind_of_engine_type("correlation").value, kind_of_engine_type("signal").value
('Convolution', 'Sync')
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from fusionlab.ir import ops


class Kind(str, enum.Enum):
    """What a layer does."""

    CONVOLUTION = "Convolution"
    DECONVOLUTION = "Deconvolution"
    FULLY_CONNECTED = "FullyConnected"
    MATRIX_MULTIPLY = "MatrixMultiply"
    POINTWISE = "PointWise"
    """Generated element-wise kernels: ``PWN(...)``, Myelin's ``kgen`` kernels."""
    ACTIVATION = "Activation"
    ELEMENTWISE = "ElementWise"
    UNARY = "Unary"
    SCALE = "Scale"
    NORMALIZATION = "Normalization"
    LRN = "LRN"
    POOLING = "Pooling"
    SOFTMAX = "SoftMax"
    REDUCE = "Reduce"
    CONCATENATION = "Concatenation"
    SHUFFLE = "Shuffle"
    SLICE = "Slice"
    GATHER = "Gather"
    PADDING = "Padding"
    RESIZE = "Resize"
    CAST = "Cast"
    CONSTANT = "Constant"
    SHAPE = "Shape"
    TOPK = "TopK"
    CONDITIONAL = "Conditional"
    LOOP = "Loop"
    QUANTIZE = "Quantize"
    DEQUANTIZE = "Dequantize"
    MYELIN = "Myelin"
    """A region compiled by Myelin as one layer (``{ForeignNode[a...b]}``)."""
    FUSED = "Fused"
    """A library kernel (convolution, GEMM) with a pointwise epilogue generated for it
    (TensorRT-RTX ``runtime_fusion``: ``__myl_CorrAddRelu``, ``__myl_FcMul``...)."""
    SYNC = "Sync"
    """Stream synchronization (``signal``: record an event, ``wait``: wait for it): orders
    the engine's streams, computes nothing, reads and writes no tensor."""
    COPY = "Copy"
    """A copy the engine makes (e.g. into a concatenation's buffer)."""
    REFORMAT = "Reformat"
    """A format or precision conversion the engine inserts."""
    NOOP = "NoOp"
    OTHER = "Other"
    """A layer of a kind this vocabulary does not name (its engine type says more)."""
    UNKNOWN = "Unknown"
    """An engine layer whose file gives no type (names-only layer information)."""

    def __str__(self) -> str:
        return self.value


_OP_KINDS: Mapping[str, Kind] = {
    "Conv": Kind.CONVOLUTION,
    "ConvTranspose": Kind.DECONVOLUTION,
    "Gemm": Kind.FULLY_CONNECTED,
    "MatMul": Kind.MATRIX_MULTIPLY,
    "BatchNormalization": Kind.SCALE,
    "LRN": Kind.LRN,
    "Softmax": Kind.SOFTMAX,
    "LogSoftmax": Kind.SOFTMAX,
    "Concat": Kind.CONCATENATION,
    "Pad": Kind.PADDING,
    "Slice": Kind.SLICE,
    "Split": Kind.SLICE,
    "Gather": Kind.GATHER,
    "Constant": Kind.CONSTANT,
    "Cast": Kind.CAST,
    "Resize": Kind.RESIZE,
    "Upsample": Kind.RESIZE,
    "If": Kind.CONDITIONAL,
    "Loop": Kind.LOOP,
    "Scan": Kind.LOOP,
    "TopK": Kind.TOPK,
    "Shape": Kind.SHAPE,
    "QuantizeLinear": Kind.QUANTIZE,
    "DequantizeLinear": Kind.DEQUANTIZE,
}
_FAMILY_KINDS: Mapping[str, Kind] = {
    "activation": Kind.ACTIVATION,
    "pool": Kind.POOLING,
    "shuffle": Kind.SHUFFLE,
    "reduce": Kind.REDUCE,
    "norm": Kind.NORMALIZATION,
}


def kind_of_op(op: str) -> Kind:
    """The kind of a layer that computes one ONNX ``op`` on its own."""
    found = _OP_KINDS.get(op) or _FAMILY_KINDS.get(ops.family(op))
    if found is not None:
        return found
    if op in ops.BINARY:
        return Kind.ELEMENTWISE
    return Kind.UNARY if op in ops.UNARY else Kind.OTHER


ENGINE_TYPES: Mapping[str, Kind] = {
    # TensorRT 8.x-11.x inspector LayerType / ParameterType words (TREx's layer types;
    # the records in records/), and TensorRT-RTX / Myelin kernel types
    "Convolution": Kind.CONVOLUTION,
    "FlattenConvolution": Kind.CONVOLUTION,
    "GemmConvolution": Kind.CONVOLUTION,
    "Deconvolution": Kind.DECONVOLUTION,
    "DeconvolutionV2": Kind.DECONVOLUTION,
    "FullyConnected": Kind.FULLY_CONNECTED,
    "MatrixMultiply": Kind.MATRIX_MULTIPLY,
    "gemm": Kind.MATRIX_MULTIPLY,
    "PointWise": Kind.POINTWISE,
    "PointWiseV2": Kind.POINTWISE,
    "kgen": Kind.POINTWISE,
    "fusion": Kind.POINTWISE,
    "Activation": Kind.ACTIVATION,
    "ElementWise": Kind.ELEMENTWISE,
    "Unary": Kind.UNARY,
    "Scale": Kind.SCALE,
    "Normalization": Kind.NORMALIZATION,
    "LRN": Kind.LRN,
    "Pooling": Kind.POOLING,
    "Softmax": Kind.SOFTMAX,
    "SoftMax": Kind.SOFTMAX,
    "Reduce": Kind.REDUCE,
    "Concatenation": Kind.CONCATENATION,
    "Shuffle": Kind.SHUFFLE,
    "Slice": Kind.SLICE,
    "Gather": Kind.GATHER,
    "Padding": Kind.PADDING,
    "Resize": Kind.RESIZE,
    "Cast": Kind.CAST,
    "Constant": Kind.CONSTANT,
    "Shape": Kind.SHAPE,
    "shape_call": Kind.SHAPE,
    "TopK": Kind.TOPK,
    "Conditional": Kind.CONDITIONAL,
    "Loop": Kind.LOOP,
    "Quantize": Kind.QUANTIZE,
    "Dequantize": Kind.DEQUANTIZE,
    "Myelin": Kind.MYELIN,
    "Reformat": Kind.REFORMAT,
    "NoOp": Kind.NOOP,
    "Copy": Kind.COPY,
    # TensorRT-RTX 1.7 kernel types (its build log, fusionlab.formats.rtx_log)
    "correlation": Kind.CONVOLUTION,  # a CASK convolution (bias, one activation, one add)
    "deconv": Kind.DECONVOLUTION,
    "runtime_fusion": Kind.FUSED,
    "runtime_function": Kind.CONCATENATION,  # only __myl_Conc (a concat copy) seen
    "maxpool": Kind.POOLING,
    "avgpool": Kind.POOLING,
    "signal": Kind.SYNC,
    "wait": Kind.SYNC,
}
"""TensorRT layer-type words -> fusionlab's kind (after :data:`IMPLEMENTATION_PREFIXES`)."""

IMPLEMENTATION_PREFIXES = ("Cask", "Cudnn", "Cublas", "Cuda", "Tiled")
"""Prefixes naming the library or kernel family that implements a layer
(``CaskConvolution``, ``CudnnPooling``, ``CublasConvolution``, ``CudaSoftMax``,
``TiledPooling``: records/ and TREx's published engines, TensorRT 8-10); the rest of the
word is the layer type."""


def kind_named(text: object) -> Kind | None:
    """The kind whose value is ``text``, or None."""
    try:
        return Kind(text)
    except ValueError:
        return None


def kind_of_engine_type(engine_type: str | None) -> Kind:
    """fusionlab's kind for a TensorRT ``LayerType`` (None: unknown, e.g. names-only files)."""
    if engine_type is None:
        return Kind.UNKNOWN
    found = ENGINE_TYPES.get(engine_type)
    for prefix in IMPLEMENTATION_PREFIXES:
        if found is None and engine_type.startswith(prefix):
            found = ENGINE_TYPES.get(engine_type[len(prefix):])
    return found or Kind.OTHER

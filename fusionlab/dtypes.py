"""One vocabulary for precisions and data types, and every spelling of them fusionlab meets.

fusionlab names a data type by a short *word* (``fp32``, ``fp16``, ``int8`` ...). Each
:class:`DType` row says how the others spell it: numpy's dtype name (the IR's
:class:`~fusionlab.ir.graph.Tensor` dtypes), ONNX's ``TensorProto`` element type, TensorRT's
``DataType`` member and the engine inspector's words (its ``DataType`` field and the
row-major format text fusionlab writes). A *precision* is what a build asks for
(:data:`PRECISIONS`); ``tf32`` is a math mode of fp32 storage, accepted where costs are
computed (:func:`element_bytes`).

>>> by_word("fp16").numpy, by_numpy("float16").word, by_trt("HALF").word
('float16', 'fp16', 'fp16')
>>> word_in_text("Channel major FP16 format where channel % 8 == 0")
'fp16'
>>> element_bytes("tf32"), element_bytes("int8"), itemsize("float8_e4m3fn")
(4, 1, 1)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fusionlab.errors import FusionlabError


@dataclass(frozen=True)
class DType:
    """One data type and its names in numpy, ONNX, TensorRT and the engine inspector."""

    word: str
    """fusionlab's name: ``fp32``, ``fp16``, ``bf16``, ``int8`` ..."""
    numpy: str
    """numpy's dtype name (``float32`` ...); 8- and 4-bit floats by ml_dtypes' names."""
    onnx: int
    """``onnx.TensorProto`` element type (the numbers are fixed by the ONNX standard)."""
    trt: str
    """``tensorrt.DataType`` member name (``FLOAT``, ``HALF`` ...)."""
    inspector: str
    """The inspector's ``DataType`` word (TensorRT 11.x ``Format``/``DataType`` fields)."""
    format: str
    """The row-major format text the inspector writes for this type (8.x-10.x
    ``Format/Datatype``), used by fusionlab's writers."""
    itemsize: int
    """Bytes per element (4-bit types count one byte)."""
    pattern: str
    """Regular expression that finds this type in a format or data-type text."""


DTYPES: tuple[DType, ...] = (
    # word   numpy            onnx trt      inspector   format                                itemsize pattern
    DType("fp32", "float32", 1, "FLOAT", "Float", "Row major linear FP32", 4, r"\bFP32\b|\bFloat\b|\bTF32\b"),
    DType("fp16", "float16", 10, "HALF", "Half", "Row major linear FP16 format", 2, r"\bFP16\b|\bHalf\b"),
    DType("bf16", "bfloat16", 16, "BF16", "BFloat16", "Row major linear BFloat16 format", 2,
          r"\bBF16\b|\bBFloat16\b"),
    DType("fp8", "float8_e4m3fn", 17, "FP8", "FP8", "Row major linear FP8 format", 1, r"\bFP8\b"),
    DType("fp4", "float4_e2m1fn", 23, "FP4", "FP4", "Row major linear FP4 format", 1, r"\bFP4\b"),
    DType("int8", "int8", 3, "INT8", "Int8", "Row major Int8 format", 1, r"\bInt8\b"),
    DType("uint8", "uint8", 2, "UINT8", "UInt8", "Row major linear UInt8 format", 1, r"\bUInt8\b"),
    DType("int4", "int4", 22, "INT4", "Int4", "Row major linear Int4 format", 1, r"\bInt4\b"),
    DType("int32", "int32", 6, "INT32", "Int32", "Row major linear Int32", 4, r"\bInt32\b"),
    DType("int64", "int64", 7, "INT64", "Int64", "Row major linear Int64 format", 8, r"\bInt64\b"),
    DType("bool", "bool", 9, "BOOL", "Bool", "Row major linear BOOL", 1, r"\bBool\b"),
)

PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
"""What a build can ask for (``--precision``); int8 means explicit or calibrated quantization."""

REDUCED_FLOATS: tuple[str, ...] = ("fp16", "bf16")
"""Precisions reached by converting a float32 model (strongly typed builds)."""

MOST_REDUCED_FIRST: tuple[str, ...] = ("fp4", "fp8", "int8", "int4", "fp16", "bf16")
"""The order in which an engine's precision is named from its layers: an engine with any
int8 layer is an int8 engine."""

_BY_WORD: Mapping[str, DType] = {d.word: d for d in DTYPES}
_BY_NUMPY: Mapping[str, DType] = {
    **{d.numpy: d for d in DTYPES},
    "float8": _BY_WORD["fp8"],  # TensorRT's FP8 buffers (fusionlab's own name for them)
    "float8_e5m2": _BY_WORD["fp8"],
    "float4e2m1": _BY_WORD["fp4"],
    "uint4": _BY_WORD["int4"],
}
_BY_TRT: Mapping[str, DType] = {d.trt: d for d in DTYPES}
_TEXT_PATTERNS = tuple((re.compile(d.pattern, re.I), d.word) for d in DTYPES)


def by_word(word: str) -> DType:
    """The data type called ``word``; a FusionlabError lists the known words otherwise."""
    found = find(word)
    if found is None:
        raise FusionlabError(f"unknown data type {word!r} (known: {', '.join(_BY_WORD)})")
    return found


def find(word: str) -> DType | None:
    """The data type called ``word``, or None."""
    return _BY_WORD.get(word)


def by_numpy(name: str) -> DType | None:
    """The data type of a numpy dtype name, or None for one fusionlab has no word for."""
    return _BY_NUMPY.get(name)


def by_trt(name: str) -> DType | None:
    """The data type of a ``tensorrt.DataType`` member name, or None."""
    return _BY_TRT.get(name)


def word_in_text(text: object) -> str | None:
    """The data type a format or data-type text names (``Channel major FP16 format`` -> fp16)."""
    if not isinstance(text, str):
        return None
    for pattern, word in _TEXT_PATTERNS:
        if pattern.search(text):
            return word
    return None


def itemsize(numpy_name: str) -> int:
    """Bytes per element of a numpy dtype name; one byte for small formats numpy lacks.

    >>> itemsize("float16"), itemsize("bfloat16"), itemsize("bool"), itemsize("complex64")
    (2, 2, 1, 8)
    """
    known = _BY_NUMPY.get(numpy_name)
    if known is not None:
        return known.itemsize
    import numpy as np  # only for types outside the table (complex, float64, uint16 ...)

    try:
        return int(np.dtype(numpy_name).itemsize)
    except TypeError:
        return 1


def element_bytes(precision: str) -> int:
    """Bytes per element at an engine precision (``tf32`` stores fp32)."""
    return 4 if precision == "tf32" else by_word(precision).itemsize


def check_precision(precision: str, allowed: Iterable[str] = PRECISIONS) -> str:
    """``precision`` if it is one of ``allowed``; a FusionlabError naming them otherwise."""
    allowed = tuple(allowed)
    if precision not in allowed:
        raise FusionlabError(f"unknown precision {precision!r} (known: {', '.join(allowed)})")
    return precision

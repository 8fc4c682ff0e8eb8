"""Tensors of the IR: a name, a shape (numbers, symbolic names or unknown) and a dtype.

>>> Tensor("x", (2, 3), "float32").nbytes, Tensor("x", ("N", 3), "float32").numel
(24, None)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from fusionlab.dtypes import itemsize

Dim = int | str | None
"""One dimension: a number, a symbolic name, or unknown."""


@dataclass(frozen=True)
class Tensor:
    """A tensor: its name, shape (None when unknown) and dtype name (e.g. ``float32``)."""

    name: str
    shape: tuple[Dim, ...] | None
    dtype: str | None

    @functools.cached_property
    def numel(self) -> int | None:
        """Number of elements, or None when a dimension is not a known number (computed
        when first asked: a model has tens of thousands of tensors, a prediction reads few).

        >>> Tensor("x", (2, 3), "float32").numel, Tensor("x", ("N", 3), "float32").numel
        (6, None)
        """
        if self.shape is not None and all(isinstance(d, int) for d in self.shape):
            return math.prod(self.shape)  # type: ignore[arg-type]
        return None

    @functools.cached_property
    def nbytes(self) -> int | None:
        """Size in bytes, or None when the shape or dtype is unknown."""
        numel = self.numel
        return None if numel is None or self.dtype is None else numel * itemsize(self.dtype)


@dataclass(frozen=True)
class Weight(Tensor):
    """An initializer: shape and dtype now, the array on demand (:meth:`Graph.array`)."""

    external: str | None = None
    """Path of the external data file relative to the model's folder, if any."""

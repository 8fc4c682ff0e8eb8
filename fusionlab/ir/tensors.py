"""Tensors of the IR: a name, a shape (numbers, symbolic names or unknown) and a dtype.

>>> Tensor("x", (2, 3), "float32").nbytes, Tensor("x", ("N", 3), "float32").numel
(24, None)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fusionlab.dtypes import itemsize

Dim = int | str | None
"""One dimension: a number, a symbolic name, or unknown."""


@dataclass(frozen=True)
class Tensor:
    """A tensor: its name, shape (None when unknown) and dtype name (e.g. ``float32``)."""

    name: str
    shape: tuple[Dim, ...] | None
    dtype: str | None
    numel: int | None = field(init=False, repr=False, compare=False)
    """Number of elements, or None when a dimension is not a known number.

    >>> Tensor("x", (2, 3), "float32").numel, Tensor("x", ("N", 3), "float32").numel
    (6, None)
    """
    nbytes: int | None = field(init=False, repr=False, compare=False)
    """Size in bytes, or None when the shape or dtype is unknown."""

    def __post_init__(self) -> None:
        # computed once here: these are read for every node's cost
        numel = None
        if self.shape is not None and all(isinstance(d, int) for d in self.shape):
            numel = math.prod(self.shape)  # type: ignore[arg-type]
        object.__setattr__(self, "numel", numel)
        nbytes = None if numel is None or self.dtype is None else numel * itemsize(self.dtype)
        object.__setattr__(self, "nbytes", nbytes)


@dataclass(frozen=True)
class Weight(Tensor):
    """An initializer: shape and dtype now, the array on demand (:meth:`Graph.array`)."""

    external: str | None = None
    """Path of the external data file relative to the model's folder, if any."""

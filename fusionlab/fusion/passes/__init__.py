"""The fusion passes, one module each; ``PASSES`` is the explicit list, by name.

The module name, the registry key and the rule name users see are the same word.
"""

from __future__ import annotations

from collections.abc import Mapping

from fusionlab.fusion.passes import (
    eliminate_concat,
    eliminate_noops,
    fold_batchnorm,
    fold_constants,
    fold_pad,
    fuse_conv_activation,
    fuse_conv_add,
    fuse_conv_pointwise,
    fuse_pointwise,
    fuse_scale_activation,
    merge_siblings,
)
from fusionlab.fusion.passes.base import Context, PassModule, Rejection

PASSES: Mapping[str, PassModule] = {
    m.NAME: m
    for m in (
        fold_constants,
        eliminate_noops,
        fold_pad,
        fold_batchnorm,
        fuse_conv_add,
        fuse_conv_activation,
        fuse_scale_activation,
        fuse_pointwise,
        fuse_conv_pointwise,
        merge_siblings,
        eliminate_concat,
    )
}

__all__ = ["PASSES", "Context", "PassModule", "Rejection"]

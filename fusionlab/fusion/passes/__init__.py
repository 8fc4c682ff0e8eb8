"""The fusion passes, one module each; ``PASSES`` is the explicit list, by name.

The module name, the registry key and the rule name users see (``RULE.name``) are the same
word. What every pass shares lives in :mod:`fusionlab.fusion.passes.kit`.
"""

from __future__ import annotations

from collections.abc import Mapping

from fusionlab.fusion.passes import (
    eliminate_concat,
    eliminate_duplicate_quantize,
    eliminate_noops,
    fold_batchnorm,
    fold_constants,
    fold_pad,
    fuse_conv_activation,
    fuse_conv_add,
    fuse_conv_pointwise,
    fuse_conv_pool,
    fuse_depthwise_separable,
    fuse_matmul_bias,
    fuse_pointwise,
    fuse_qdq_conv,
    fuse_scale_activation,
    fuse_shuffles,
    fuse_softmax_topk,
    merge_siblings,
    partition_myelin,
    propagate_qdq,
    quantize_weights,
    rtx_concat,
    rtx_concat_pool,
    rtx_conv_activation,
    rtx_conv_add,
    rtx_eliminate,
    rtx_fold,
    rtx_gemm,
    rtx_layout,
    rtx_lrn,
    rtx_pointwise,
    rtx_qdq,
    rtx_runtime_fusion,
    rtx_share_bias,
)
from fusionlab.fusion.passes.kit import Context, PassModule, Rejection, Rule

PASSES: Mapping[str, PassModule] = {
    m.RULE.name: m
    for m in (
        quantize_weights,
        fold_constants,
        partition_myelin,
        eliminate_noops,
        fuse_shuffles,
        fold_pad,
        fold_batchnorm,
        fuse_matmul_bias,
        fuse_conv_add,
        fuse_conv_activation,
        fuse_scale_activation,
        fuse_softmax_topk,
        fuse_pointwise,
        fuse_conv_pointwise,
        fuse_depthwise_separable,
        fuse_conv_pool,
        merge_siblings,
        eliminate_duplicate_quantize,
        fuse_qdq_conv,
        propagate_qdq,
        eliminate_concat,
        rtx_eliminate,
        rtx_conv_activation,
        rtx_conv_add,
        rtx_concat,
        rtx_concat_pool,
        rtx_pointwise,
        rtx_runtime_fusion,
        rtx_share_bias,
        rtx_gemm,
        rtx_fold,
        rtx_qdq,
        rtx_layout,
        rtx_lrn,
    )
}

RULES: Mapping[str, Rule] = {name: m.RULE for name, m in PASSES.items()}
"""Rule name -> its :class:`~fusionlab.fusion.passes.kit.Rule` (conditions, source, joins)."""

__all__ = ["PASSES", "RULES", "Context", "PassModule", "Rejection", "Rule"]

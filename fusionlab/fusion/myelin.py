"""What TensorRT hands to its Myelin compiler, per target, as data.

TensorRT 8.x and later partition a network before the classic (CASK) fusions: some
sub-graphs go to the Myelin compiler and become one engine layer each, named
``{ForeignNode[first...last]}`` after the first and last TensorRT layer of the region
(NVIDIA/TensorRT#1917, #2308, #2576, #4397; the TensorRT 10.16 cookbook record in
``records/cookbook-mnist-trt10.16-h100``). Which ops *start* a region (the triggers) differs
between versions; which ops a region *takes in* and which stay with CASK does not, as far
as the evidence goes. :class:`MyelinRules` holds both; the pass
:mod:`fusionlab.fusion.passes.partition_myelin` reads them, never a version number.

>>> sorted(TRT8.triggers), sorted(TRT10.triggers - TRT8.triggers)
(['attention', 'layernorm'], ['weighted_matmul'])
>>> "Conv" in TRT10.absorbs, "Softmax" in TRT10.absorbs
(False, True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fusionlab.ir import ops

ATTENTION = "attention"
"""A MatMul of two activations (Q·Kᵀ, P·V): multi-head attention."""
LAYERNORM = "layernorm"
"""LayerNormalization, or its decomposition (ReduceMean -> Sub(x, mean) -> ... -> Div)."""
WEIGHTED_MATMUL = "weighted_matmul"
"""A Gemm, or a MatMul with a constant operand: a fully connected layer."""

TRIGGERS = (ATTENTION, LAYERNORM, WEIGHTED_MATMUL)
"""Every trigger name, in the order documents list them."""

# -- evidence (quoted in docs/target-differences.md and fusion-rules.md) --------------------

COOKBOOK = (
    "records/cookbook-mnist-trt10.16-h100 (TensorRT 10.16.1, H100, FP32, default builder "
    "optimization level: the head Reshape -> Gemm -> Relu -> Gemm -> Softmax -> ArgMax is one "
    "region '{ForeignNode[gemm1.weight...ONNXTRT_castHelper_9]}', 'node_conv2d + node_relu' "
    "stays a CaskConvolution and 'node_max_pool2d' a CaskPooling)"
)
TREX8_FC = (
    "records/trex-resnet18-a100 (TensorRT 8.x: 'Gemm_48' is a CaskConvolution with a "
    "'reshape_after_Gemm_48' NoOp); records/trex-resnet50-tf-rtx3090 (TensorRT 8.x, RTX 3090: "
    "'resnet50/predictions/MatMul' a CublasConvolution); TensorRT 8.x Developer "
    "Guide 'FullyConnected' (converted to a convolution, every convolution fusion applies)"
)
FC_DEPRECATED = (
    "TensorRT 8.6 NvInfer.h: addFullyConnected 'Deprecated in TensorRT 8.4. Superseded by "
    "addMatrixMultiply()'; absent from the TensorRT 10.0 headers"
)
ATTENTION_8 = (
    "NVIDIA/TensorRT#2323 (maintainer: 'Myelin only optimizes the sub-graph with specific "
    "parttern(e.g. multi-head attention in Transformer based network ...)'); NVIDIA/TensorRT#1917 "
    "(TensorRT 8.2.4: '{ForeignNode[Unsqueeze_93...Softmax_2088]}'); TensorRT 8.6.0 CHANGELOG "
    "(MultiHeadFlashAttention plugins removed: attention handled natively)"
)
ATTENTION_10 = (
    "TensorRT 10.7/10.10/10.13/10.14 release notes (MHA fusion broadened); NVIDIA/TensorRT#4397 "
    "(TensorRT 10.10, BERT: one region '{ForeignNode[/encoder/Unsqueeze_3 + ...match_model/Squeeze]}', "
    "Q/K/V MatMuls one gemm kernel inside it)"
)
LAYERNORM_8 = (
    "NVIDIA/TensorRT#2308 (TensorRT 8.4.3: '{ForeignNode[ReduceMean_4492...Mul_4557]}', a "
    "normalization reduction chain); TensorRT 8.6 release notes (LayerNormalization at opset 17 "
    "as one op; LayerNorm plugin removed, CHANGELOG 8.6.0). Whether an opset-17 "
    "LayerNormalization alone forms a region in 8.6: no engine listing found (assumed as the chain)"
)
LAYERNORM_10 = (
    "NVIDIA/TensorRT#4397 (TensorRT 10.10: residual Add + LayerNormalization in one Myelin kernel "
    "'__myl_AddCastMeanSubMulMeanAddSqrtDivMulCastMulAdd_myl0_8')"
)
WEIGHTED_10 = (
    f"{COOKBOOK}; NVIDIA/TensorRT#4397 (TensorRT 10.10: MatMul + bias + GELU(erf) in one Myelin "
    f"kernel '__myl_Fc_myl0_69'); {FC_DEPRECATED}"
)
ABSORBS = (
    "NVIDIA/TensorRT#2323 ('... or some point-wise operations'); NVIDIA/TensorRT#4397 (Gather, "
    "Cast, Mean, Sqrt, Div, Erf, Tanh, Transpose, Reshape, Slice kernels inside one region, "
    "10.10); TensorRT 10.16 detailed layer information ('shape_call' kernels: shape arithmetic "
    "runs inside regions); the cookbook record (Softmax, ArgMax, Reshape inside the region)"
)
STAYS_CASK = (
    f"{COOKBOOK}; NVIDIA/TensorRT#2308 and #3143 regions end at convolutions; TensorRT 8.x "
    "Developer Guide 'Reduce' (an average over H,W becomes a Pooling layer; TREx ResNet-50 "
    "'resnet50/avg_pool/Mean' CaskPooling). At --builderOptimizationLevel=5 TensorRT 10.16 may "
    "run convolutions in Myelin too (result-02.log of the cookbook record): not modelled, the "
    "targets model the default level"
)


@dataclass(frozen=True)
class MyelinRules:
    """Which sub-graphs a target's TensorRT compiles with Myelin (at the default builder
    optimization level)."""

    triggers: frozenset[str]
    """Patterns that start a region (:data:`TRIGGERS`)."""
    absorbs: frozenset[str]
    """ONNX ops a region takes in around its triggers."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Fact -> evidence."""


_ABSORBED = frozenset(
    (ops.POINTWISE - ops.ACTIVATIONS)
    | ops.ACTIVATIONS
    | {"Cast", "Where", "Equal", "Greater", "Less", "And", "Or", "Not", "Mod", "Identity", "Dropout"}
    | {"Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
       "ReduceProd", "ReduceL2", "ArgMax", "ArgMin", "TopK"}
    | {"LayerNormalization", "MatMul", "Gemm", "Einsum"}
    | {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Expand", "Concat", "Slice",
       "Split", "Gather", "Tile"}
    | {"Shape", "Size", "ConstantOfShape", "Range"}
)
"""What a region takes in: point-wise and element-wise ops, reductions (softmax, argmax),
matrix products, layout and indexing ops, and shape arithmetic. Not convolutions, pooling,
BatchNormalization, Resize or Pad: those stay with CASK."""

_COMMON_SOURCES = {
    "regions take in point-wise ops, reductions, matrix products, layout ops, shape arithmetic": ABSORBS,
    "convolutions, pooling (and a ReduceMean over H,W) stay CASK at the default optimization level": STAYS_CASK,
    "a region is named {ForeignNode[first...last]}": (
        "NVIDIA/TensorRT#1917, #2308, #2576 (8.x), #4397 (10.10), the cookbook record (10.16): "
        "first and last TensorRT layer of the region"
    ),
}

TRT8 = MyelinRules(
    triggers=frozenset({ATTENTION, LAYERNORM}),
    absorbs=_ABSORBED,
    sources={
        "attention (MatMul of two activations) starts a region": ATTENTION_8,
        "LayerNormalization and its reduction chain start a region": LAYERNORM_8,
        "a Gemm/MatMul with weights alone is a CASK fully connected layer, no region": TREX8_FC,
        **_COMMON_SOURCES,
    },
)
"""TensorRT 8.x: transformer sub-graphs (attention, normalization chains) go to Myelin; a
fully connected layer on its own is a CASK convolution."""

TRT10 = MyelinRules(
    triggers=frozenset({ATTENTION, LAYERNORM, WEIGHTED_MATMUL}),
    absorbs=_ABSORBED,
    sources={
        "attention (MatMul of two activations) starts a region": ATTENTION_10,
        "LayerNormalization and its reduction chain start a region": LAYERNORM_10,
        "a Gemm/MatMul with weights starts a region with its point-wise/softmax consumers": WEIGHTED_10,
        **_COMMON_SOURCES,
    },
)
"""TensorRT 10.x: also every fully connected layer (IFullyConnectedLayer is gone): a Gemm
head and its point-wise, softmax and argmax consumers are one region (cookbook record)."""

TRT11 = MyelinRules(
    triggers=TRT10.triggers,
    absorbs=_ABSORBED,
    sources={
        **TRT10.sources,
        "the trt10 partition, unchanged": (
            "no evidence: no TensorRT 11.x layer JSON of a real model was found "
            "(evidence report, 'Not found'); TensorRT 11.0 release notes list no partition change"
        ),
    },
)
"""TensorRT 11.x: no evidence of a change; the TensorRT 10 rules."""

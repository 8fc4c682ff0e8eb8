"""Targets: what one family of TensorRT versions fuses, kept as data.

A :class:`Target` names the passes it runs (in order: the stage sequence that figures and
``--stages`` show) and the facts in which versions differ — which activations fuse into
a convolution at which precision, whether sibling convolutions merge, whether point-wise
chains fuse. Passes read these fields; nothing else branches on a version.

>>> sorted(TARGETS["trt8"].activations_for("fp32"))
['Clip', 'Relu']
>>> get("nope")
Traceback (most recent call last):
fusionlab.errors.FusionlabError: unknown target 'nope' (known: classic, trt8, trt10, trt11, rtx)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from fusionlab.errors import FusionlabError
from fusionlab.fusion import myelin as _myelin
from fusionlab.fusion.myelin import MyelinRules
from fusionlab.ir import ops


@dataclass(frozen=True)
class QdqRules:
    """What a target does with explicitly quantized (Q/DQ) networks: one table per target."""

    weighted: frozenset[str]
    """Ops that take quantized weights: ``[DQ(x), DQ(w)] > op > Q`` is one INT8 layer."""
    quantizable: frozenset[str]
    """Other ops that run in INT8 between DequantizeLinear and QuantizeLinear nodes."""
    cancel_through: frozenset[str] = frozenset({"Concat"})
    """Ops through which DQ-Q pairs of equal scale cancel (the op then runs on INT8 data)."""
    merge_duplicates: bool = True
    """Two QuantizeLinear of one tensor with equal scale and zero point are computed once."""
    implicit_int8: bool = True
    """``int8`` without Q/DQ nodes means calibrated (implicit) INT8; False: only Q/DQ give
    INT8 (the target rejects ``int8`` for a model without them)."""
    float_precision: str | None = "fp16"
    """What the float layers of an ``int8`` build run at (``FP32+FP16+INT8``); None: at the
    model's own types (strongly typed)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Fact -> where it comes from."""


@dataclass(frozen=True)
class Target:
    """One ruleset describing a family of TensorRT versions."""

    name: str
    versions: str
    description: str
    passes: tuple[str, ...]
    conv_activations: Mapping[str, frozenset[str]]
    """Precision -> activations fused into a preceding convolution (``fp32`` is the default)."""
    activation_producers: frozenset[str] = frozenset({"Conv", "ConvTranspose"})
    """Ops whose layer an activation can join."""
    pointwise_ops: frozenset[str] = frozenset()
    """Ops that point-wise fusion (``PWN``) puts together."""
    conv_pointwise: frozenset[str] = frozenset()
    """Precisions at which a point-wise epilogue joins a convolution."""
    horizontal_kernels: Literal["1x1", "any"] = "1x1"
    batchnorm_producers: frozenset[str] = frozenset({"Conv", "ConvTranspose", "Gemm"})
    """Ops whose layer a following BatchNormalization folds into (else it is a Scale layer)."""
    identity_ops: frozenset[str] = frozenset({"Dropout", "Identity"})
    """Ops the builder removes as identities at inference."""
    flatten_ops: frozenset[str] = frozenset({"Flatten", "Reshape", "Squeeze"})
    """Layout ops absorbed when a fully connected layer alone reads them."""
    fc_ops: frozenset[str] = frozenset({"Gemm"})
    """Fully connected layers: they read a flattened input directly."""
    qdq: QdqRules | None = None
    """The target's Q/DQ rules (None: Q/DQ nodes stay layers of their own)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Fact -> where it comes from (documentation page, release note, recorded engine)."""
    differences: tuple[str, ...] = ()
    """How this target differs from ``classic``, each with its source."""
    myelin: MyelinRules | None = None
    """Which sub-graphs go to TensorRT's Myelin compiler (None: no Myelin partition)."""
    conv_pool: frozenset[str] = frozenset()
    """Precisions at which a pooling layer joins the convolution layer before it."""
    depthwise_separable: frozenset[str] = frozenset()
    """Precisions at which a depthwise convolution and the convolution after it are one layer."""

    def activations_for(self, precision: str) -> frozenset[str]:
        """Activations fused into a convolution at ``precision``."""
        return self.conv_activations.get(precision, self.conv_activations["fp32"])

    @property
    def all_activations(self) -> frozenset[str]:
        """Every activation op this target might fuse at some precision (for candidates)."""
        return ops.ACTIVATIONS

    def conv_pointwise_for(self, precision: str) -> bool:
        """Whether a point-wise epilogue joins a convolution at ``precision``."""
        return precision in self.conv_pointwise


CATALOG = "TensorRT Layer Fusion Catalog, https://docs.nvidia.com/deeplearning/tensorrt/latest/performance/fusion-catalog.html"
GUIDE8 = (
    "TensorRT 8.x Developer Guide, Types of Fusions, "
    "https://docs.nvidia.com/deeplearning/tensorrt/archives/tensorrt-861/developer-guide/index.html#fusion-types"
)
BLOG = (
    "NVIDIA Developer Blog, 'Deploying Deep Neural Networks with NVIDIA TensorRT' (2017), "
    "https://devblogs.nvidia.com/deploying-deep-learning-nvidia-tensorrt/ : GoogLeNet Inception figures "
    "(vertical fusion into CBR, horizontal fusion of the three 1x1 CBRs, concat elimination)"
)
RECORDS = "TensorRT 8.x ResNet-18 engines on an A100 (records/trex-resnet18-a100)"
HORIZONTAL_8 = (
    "NVIDIA/TensorRT#2525 (maintainer: '|| indicates horizontal fusion', TensorRT 8.x); "
    "dusty-nv/jetson-inference#1630 (TensorRT 8.5 merges inception_5b 1x1 || 3x3_reduce || 5x5_reduce); "
    "ultralytics/ultralytics#6471 (TensorRT 8.5.2 merges sibling 3x3 convolutions)"
)
LEAKY = "NVIDIA/TensorRT#2134 (maintainer: Conv+LeakyReLU fuses in FP16 or INT8; other precisions not guaranteed)"
GENERIC = (
    "NVIDIA/TensorRT#2572 (maintainer: generic Conv+activation fusion runs after PointWise fusion, "
    "only on some platforms and precisions); ultralytics/ultralytics#6471 (TensorRT 8.5.2 FP32: Conv and "
    "PWN(Sigmoid, Mul) stay separate)"
)
CONCAT = (
    "TensorRT 2.1 User Guide (merging of concatenation layers by directing layer outputs to their "
    "destination); NVIDIA/TensorRT#3254 (TensorRT 8.x log: 'Generating copy for A to B because input is not movable')"
)
STRONG = "TensorRT 11.0.0 release notes: strongly typed networks are the default, weak typing is no longer supported"
GUIDE8_QDQ = (
    "TensorRT 8.x Developer Guide, 'Explicit Quantization' (§7.4: Q/DQ propagation, Q/DQ "
    "placement, figure captions 1-9) and 'Q/DQ Fusion' (§13.2.4.4), read in the NVIDIA-authored "
    "translation HeKun-NVIDIA/TensorRT-Developer_Guide_in_Chinese (commits f376ea59, eda42f30); "
    "English captions at https://cnblogs.com/wujianming-110117/p/15681448.html"
)
LATEST_QDQ = (
    "TensorRT Developer Guide (10.x), 'Explicit Quantization', https://docs.nvidia.com/deeplearning/"
    "tensorrt/latest/inference-library/quantized-types-explicit-quantization.html ('Use explicit "
    "quantization with Strong Typing. Precision-control build flags are not required'; weights "
    "quantized at build time)"
)
QAT_RECORD = "TensorRT 8.x QAT ResNet-18 engine on an A100 (records/trex-resnet18-a100-qat)"
TF_QAT = (
    "TensorRT 8.x QAT ResNet-50 (TensorFlow) engine on an RTX 3090 (TREx example, "
    "/work/scratch/evidence/records/trex-resnet50-tf-rtx3090/qat)"
)
QDQ_PARALLEL = (
    "NVIDIA/TensorRT#1602 (8.x: 'Parallel Convolution won't merge in tensor merge step while "
    "using QDQ method')"
)
INT8_11 = (
    "TensorRT 10.x-to-11.x C++ API migration table: BuilderFlag::kINT8 and setInt8Calibrator "
    "removed, replaced by 'Explicit quantization with Q/DQ nodes', https://docs.nvidia.com/"
    "deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-c-api-reference.html"
)
NO_QDQ_CHANGE = (
    "no documented change of the Q/DQ propagation or fusion rules between 8.x, 10.x and 11.x "
    "(evidence report, /work/scratch/evidence/REPORT.md §3 and D9): kept equal to trt8"
)

_BASE_ACTIVATIONS = frozenset({"Relu", "Clip"})
_REDUCED_ACTIVATIONS = _BASE_ACTIVATIONS | {"LeakyRelu", "Gelu", "Sigmoid", "Tanh"}
_MODERN_ACTIVATIONS = {
    "fp32": _BASE_ACTIVATIONS,
    "fp16": _REDUCED_ACTIVATIONS,
    "bf16": _REDUCED_ACTIVATIONS,
    "int8": _REDUCED_ACTIVATIONS,
}
_POINTWISE = ops.POINTWISE - {"Cast", "Where", "Equal", "Greater", "Less", "And", "Or", "Not"}

_QDQ_WEIGHTED = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
_QDQ_QUANTIZABLE = frozenset({
    "MaxPool", "GlobalMaxPool", "AveragePool", "GlobalAveragePool", "Pad", "Add",
    "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice",
})
_QDQ_SOURCES_8 = {
    "[DQ(x), DQ(w)] > Conv/ConvTranspose/Gemm/MatMul > Q fuse into one INT8 layer, with the "
    "BN, activation and residual Add fused after it": f"{GUIDE8_QDQ} §13.2.4.4; {QAT_RECORD}",
    "weights' Q/DQ folded: INT8 weights quantized at build time": f"{LATEST_QDQ}; {QAT_RECORD}",
    "a float residual makes the fused output float; the trailing Q stays a reformat": (
        f"{GUIDE8_QDQ} §7.4.4, Figures 6 and 7; {QAT_RECORD} (QuantizeLinear_65 after a residual "
        "layer with an FP16 residual is a reformat, the Q after block-internal convolutions fuses)"
    ),
    "Q/DQ propagated through ops that commute with quantization; DQ > op > Q runs in INT8 "
    "(pooling, padding, shuffles, element-wise Add)": (
        f"{GUIDE8_QDQ} §7.4.3 and §13.2.4.4 (Figures 1, 2, 8); {TF_QAT} (Pad and MaxPool in INT8)"
    ),
    "DQ-Q pairs of equal scale cancel through a Concat": (
        "NVIDIA/Model-Optimizer a2fbac7b modelopt/onnx/quantization/graph_utils.py "
        "get_concat_eliminated_tensors"
    ),
    "duplicate quantizers of one tensor (equal scale) computed once": (
        f"{QAT_RECORD} (downsample convolutions read the block conv1's QuantizeLinear output); "
        f"{GUIDE8_QDQ} §13.2.4.4 'Erase redundant Q/DQ nodes'"
    ),
    "what is left is a Reformat named after its Q node (Origin QDQ)": f"{QAT_RECORD}; {TF_QAT}",
    "INT8 convolutions do not merge horizontally (their weights are a separate input when "
    "merge_siblings runs)": QDQ_PARALLEL,
    "a Q/DQ network needs the INT8 builder flag (fusionlab predicts Q/DQ layers INT8 at any "
    "--precision)": f"{GUIDE8_QDQ} §7.4 ('a Q/DQ network must be built with the INT8 precision flag')",
    "float layers of an int8 build at FP16 (FP32+FP16+INT8)": f"{QAT_RECORD} (build 'FP32+FP16+INT8')",
}
QDQ_TRT8 = QdqRules(
    weighted=_QDQ_WEIGHTED,
    quantizable=_QDQ_QUANTIZABLE,
    sources=_QDQ_SOURCES_8,
)
QDQ_TRT10 = QdqRules(
    weighted=_QDQ_WEIGHTED,
    quantizable=_QDQ_QUANTIZABLE,
    sources={
        **{fact: f"{src}; {NO_QDQ_CHANGE}" for fact, src in _QDQ_SOURCES_8.items()
           if not fact.startswith("a Q/DQ network needs")},
        "explicit quantization with strong typing, no precision flags needed": LATEST_QDQ,
        "calibrated (implicit) INT8 still available, deprecated": (
            "TensorRT C++ API deprecated list: IInt8EntropyCalibrator2 'Deprecated in TensorRT 10.1. "
            "Superseded by explicit quantization.'"
        ),
    },
)
QDQ_TRT11 = QdqRules(
    weighted=_QDQ_WEIGHTED,
    quantizable=_QDQ_QUANTIZABLE,
    implicit_int8=False,
    float_precision=None,
    sources={
        **{fact: f"{src}; {NO_QDQ_CHANGE}" for fact, src in _QDQ_SOURCES_8.items()
           if not fact.startswith(("a Q/DQ network needs", "float layers of an int8"))},
        "INT8 only from Q/DQ nodes (no INT8 flag, no calibrator)": INT8_11,
        "float layers at the model's own types (strongly typed)": STRONG,
    },
)

_MODERN_PASSES = (
    "quantize_weights",
    "fold_constants",
    "partition_myelin",  # TensorRT's Myelin partition runs before the CASK fusions
    "eliminate_noops",
    "fuse_shuffles",
    "fold_pad",
    "fold_batchnorm",
    "fuse_matmul_bias",
    "fuse_conv_add",
    "fuse_conv_activation",
    "fuse_scale_activation",
    "fuse_softmax_topk",
    "fuse_pointwise",
    "fuse_conv_pointwise",
    "fuse_depthwise_separable",
    "fuse_conv_pool",
    "merge_siblings",
    "eliminate_duplicate_quantize",
    "fuse_qdq_conv",
    "propagate_qdq",
    "eliminate_concat",
)
_MODERN_SOURCES = {
    "BatchNorm folded as Convolution + Scale": f"{GUIDE8}: Convolution and Scale; {RECORDS}",
    "Conv + residual Add (+ activation)": f"{GUIDE8}: Convolution and ElementWise (no broadcast); {RECORDS}",
    "Relu and Clip fuse into convolutions at every precision": f"{GUIDE8}: Convolution and ReLU / Clip",
    "LeakyRelu, GELU, Sigmoid, Tanh fuse only at reduced precision": (
        f"{LEAKY}; {GUIDE8}: Convolution and GELU (FP16/INT8)"
    ),
    "PWN point-wise fusion": f"{GUIDE8}: PointWise Fusion; NVIDIA/TensorRT#2525 ('PWN means point-wise node')",
    "point-wise epilogue joins a convolution at reduced precision only": GENERIC,
    "Padding folded into a convolution": f"{GUIDE8}: Padding and Convolution/Deconvolution",
    "Scale + activation": f"{GUIDE8}: Scale and Activation",
    "horizontal merge of same-input convolutions of any kernel size": HORIZONTAL_8,
    "concat elimination with copies": CONCAT,
    "Flatten before Gemm absorbed; Dropout removed": (
        f"{RECORDS} (Flatten_47); onnx-tensorrt importer (Dropout is an identity)"
    ),
}
_MODERN_DIFFERENCES = (
    f"adds Conv + residual Add fusion ({GUIDE8}: Convolution and ElementWise; {RECORDS})",
    f"adds point-wise fusion into PWN(...) layers ({GUIDE8}: PointWise Fusion)",
    f"a point-wise epilogue (e.g. SiLU) joins a convolution only at fp16/bf16/int8 ({GENERIC})",
    f"LeakyRelu, GELU, Sigmoid and Tanh fuse into convolutions only at reduced precision ({LEAKY})",
    f"folds a zero Pad into the next convolution ({GUIDE8}: Padding and Convolution)",
    f"merges sibling convolutions of any kernel size, not only 1x1 ({HORIZONTAL_8})",
)

RTX_BUILDS = (
    "live TensorRT-RTX 1.7.1.116 builds on its CPU builder (micro-networks named in each rtx_* pass; "
    "every fusionlab zoo model: inception3a, googlenet, googlenet-caffe, resnet18, resnet50, mobilenetv2, "
    "mobilenetv2-qdq, resnet18-qat, convnext-t, vit-s16, shufflenetv2, yolov8n, mnist-cookbook, ...; "
    "random CNN DAGs)"
)
RTX_PASSES = (
    "rtx_eliminate",
    "rtx_fold",
    "rtx_layout",
    "rtx_conv_activation",
    "rtx_conv_add",
    "rtx_concat",
    "rtx_concat_pool",
    "rtx_pointwise",
    "rtx_runtime_fusion",
    "rtx_share_bias",
    "rtx_gemm",
    "rtx_qdq",
    "rtx_lrn",
)
"""TensorRT-RTX's rules (fusionlab/fusion/passes/rtx_*.py): they decide together, in the
builder's order (``rtx_kit.analyse``); each pass forms the kernels of its rule."""

_IMPLICIT_INT8 = frozenset({"int8"})
"""Implicit (calibrated) INT8: a builder precision in TensorRT 8 and 10, gone in 11."""


def _modern(
    name: str,
    versions: str,
    description: str,
    *,
    sources: Mapping[str, str] | None = None,
    differences: tuple[str, ...] = (),
    myelin: MyelinRules | None = None,
    fc_ops: frozenset[str] = frozenset({"Gemm"}),
    conv_pool: frozenset[str] = frozenset(),
    depthwise_separable: frozenset[str] = frozenset(),
    qdq: QdqRules | None = None,
) -> Target:
    """A target with the rules of TensorRT 8 and later, plus its own sources and notes."""
    return Target(
        name=name,
        versions=versions,
        description=description,
        passes=_MODERN_PASSES,
        conv_activations=_MODERN_ACTIVATIONS,
        activation_producers=frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"}),
        pointwise_ops=_POINTWISE,
        conv_pointwise=frozenset({"fp16", "bf16", "int8"}),
        horizontal_kernels="any",
        fc_ops=fc_ops,
        sources={**_MODERN_SOURCES, **(sources or {}), **(myelin.sources if myelin else {}),
                 **{f"Q/DQ: {fact}": src for fact, src in (qdq.sources if qdq else {}).items()}},
        differences=(*_MODERN_DIFFERENCES, *differences),
        myelin=myelin,
        conv_pool=conv_pool,
        depthwise_separable=depthwise_separable,
        qdq=qdq,
    )


TARGETS: Mapping[str, Target] = {
    t.name: t
    for t in (
        Target(
            name="classic",
            versions="TensorRT 2-7",
            description="the fusions of NVIDIA's early TensorRT material (GoogLeNet / Inception)",
            passes=(
                "fold_constants",
                "eliminate_noops",
                "fold_batchnorm",
                "fuse_conv_activation",
                "merge_siblings",
                "eliminate_concat",
            ),
            conv_activations={"fp32": frozenset({"Relu"})},
            horizontal_kernels="1x1",
            sources={
                "vertical fusion (CBR)": BLOG,
                "horizontal merge of same-input 1x1 CBRs": BLOG,
                "concat elimination": f"{BLOG}; {CONCAT}",
                "BatchNorm folded as Convolution + Scale": GUIDE8,
            },
        ),
        _modern(
            "trt8",
            "TensorRT 8.x",
            "TensorRT 8: residual add, point-wise (PWN) and horizontal fusion; checked against recorded engines",
            differences=(f"fuses Q/DQ (explicitly quantized) networks into INT8 layers ({GUIDE8_QDQ}; {QAT_RECORD})",),
            # facts in which trt8, trt10 and trt11 differ (docs/target-differences.md):
            myelin=_myelin.TRT8,
            conv_pool=_IMPLICIT_INT8,
            depthwise_separable=_IMPLICIT_INT8,
            qdq=QDQ_TRT8,
        ),
        _modern(
            "trt10",
            "TensorRT 10.x",
            "TensorRT 10 (default): the trt8 CASK rules; fully connected layers go to Myelin",
            sources={"same CASK rules as 8.x": f"{CATALOG} (latest catalog lists the 8.x rules)"},
            differences=("no documented change of the CASK fusions from trt8",
                         f"Q/DQ rules as trt8 ({NO_QDQ_CHANGE})"),
            myelin=_myelin.TRT10,
            fc_ops=frozenset(),  # a Gemm is a Myelin op: no CASK FC absorbs the Flatten
            conv_pool=_IMPLICIT_INT8,
            depthwise_separable=_IMPLICIT_INT8,  # no 10.x evidence: as trt8
            qdq=QDQ_TRT10,
        ),
        _modern(
            "trt11",
            "TensorRT 11.x",
            "TensorRT 11: strongly typed networks only; the trt10 rules",
            sources={
                "strongly typed only: precision comes from the model's types": STRONG,
                "concat elimination still active": "NVIDIA/TensorRT#4854 (TensorRT 11.2: strided concat views)",
            },
            differences=(
                f"precision is the model's own (strongly typed), not a builder flag ({STRONG})",
                "horizontal merging: no 11.x evidence either way; assumed unchanged from 10.x",
                f"INT8 only from Q/DQ nodes: int8 without them is refused ({INT8_11})",
                f"Q/DQ rules as trt8 ({NO_QDQ_CHANGE})",
            ),
            myelin=_myelin.TRT11,
            fc_ops=frozenset(),
            qdq=QDQ_TRT11,
        ),
        Target(
            name="rtx",
            versions="TensorRT-RTX 1.7",
            description=(
                "TensorRT-RTX: the whole network goes to Myelin; its kernels (correlation, "
                "runtime_fusion, kgen, runtime_function, pooling, gemm, deconv), checked live"
            ),
            passes=RTX_PASSES,
            conv_activations={"fp32": frozenset({"Relu", "Sigmoid", "Tanh", "Clip"})},
            activation_producers=frozenset({"Conv", "ConvTranspose"}),
            pointwise_ops=_POINTWISE,
            horizontal_kernels="1x1",
            sources={
                "everything goes to Myelin (one ForeignNode; the Layers message lists its kernels)": RTX_BUILDS,
                "rules R0-R12, one rtx_* pass each, with the micro-builds that show them": RTX_BUILDS,
                "strongly typed: reduced precision only from the model's types": (
                    "TensorRT-RTX documentation, Working with quantized types, "
                    "https://docs.nvidia.com/deeplearning/tensorrt-rtx/latest/inference-library/work-quantized-types.html"
                ),
            },
            differences=(
                "CASK convolutions take only a native activation (Relu, Sigmoid, Tanh, Clip(0, 6)) or a "
                f"residual Add; other epilogues are JIT runtime fusions or generated kgens ({RTX_BUILDS})",
                f"sibling convolutions are never merged; concats are in place or copy kernels ({RTX_BUILDS})",
                f"a node may be in several kernels: a moved bias, an LRN's three kernels ({RTX_BUILDS})",
            ),
        ),
    )
}

DEFAULT = "trt10"


def get(name: str) -> Target:
    """The target called ``name``; a FusionlabError lists the known ones otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise FusionlabError(f"unknown target {name!r} (known: {', '.join(TARGETS)})") from None


def target_for_backend(flavor: str, version: str | None = None) -> str:
    """The target that models what a TensorRT backend builds (``--target``'s default for
    ``--build``): ``rtx`` for TensorRT-RTX (``trt11``, the strongly typed rules, where no
    ``rtx`` target is defined), ``trt11``/``trt10``/``trt8`` for TensorRT by major version.

    >>> target_for_backend("tensorrt", "10.13.0.35"), target_for_backend("tensorrt", "11.0")
    ('trt10', 'trt11')
    >>> target_for_backend("rtx", "1.7.1.116") in ("rtx", "trt11")
    True
    """
    from packaging.version import InvalidVersion, Version

    if flavor == "rtx":
        return "rtx" if "rtx" in TARGETS else "trt11"
    if flavor != "tensorrt":
        raise FusionlabError(f"unknown TensorRT flavour {flavor!r}")
    try:
        major = Version(version or "").major
    except InvalidVersion:
        return DEFAULT
    return "trt11" if major >= 11 else "trt10" if major >= 10 else "trt8" if major >= 8 else "classic"

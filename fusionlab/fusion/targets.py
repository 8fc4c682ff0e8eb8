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

_BASE_ACTIVATIONS = frozenset({"Relu", "Clip"})
_REDUCED_ACTIVATIONS = _BASE_ACTIVATIONS | {"LeakyRelu", "Gelu", "Sigmoid", "Tanh"}
_MODERN_ACTIVATIONS = {
    "fp32": _BASE_ACTIVATIONS,
    "fp16": _REDUCED_ACTIVATIONS,
    "bf16": _REDUCED_ACTIVATIONS,
    "int8": _REDUCED_ACTIVATIONS,
}
_POINTWISE = ops.POINTWISE - {"Cast", "Where", "Equal", "Greater", "Less", "And", "Or", "Not"}

_MODERN_PASSES = (
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
        sources={**_MODERN_SOURCES, **(sources or {}), **(myelin.sources if myelin else {})},
        differences=(*_MODERN_DIFFERENCES, *differences),
        myelin=myelin,
        conv_pool=conv_pool,
        depthwise_separable=depthwise_separable,
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
            # facts in which trt8, trt10 and trt11 differ (docs/target-differences.md):
            myelin=_myelin.TRT8,
            conv_pool=_IMPLICIT_INT8,
            depthwise_separable=_IMPLICIT_INT8,
        ),
        _modern(
            "trt10",
            "TensorRT 10.x",
            "TensorRT 10 (default): the trt8 CASK rules; fully connected layers go to Myelin",
            sources={"same CASK rules as 8.x": f"{CATALOG} (latest catalog lists the 8.x rules)"},
            differences=("no documented change of the CASK fusions from trt8",),
            myelin=_myelin.TRT10,
            fc_ops=frozenset(),  # a Gemm is a Myelin op: no CASK FC absorbs the Flatten
            conv_pool=_IMPLICIT_INT8,
            depthwise_separable=_IMPLICIT_INT8,  # no 10.x evidence: as trt8
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
            ),
            myelin=_myelin.TRT11,
            fc_ops=frozenset(),
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

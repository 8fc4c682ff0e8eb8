"""Where trt8, trt10 and trt11 differ, and where precision matters: docs/target-differences.md.

Generated from the targets' own fields (:mod:`fusionlab.fusion.targets`) by
``fusionlab passes --differences``; a test checks the committed file is current. Every row
is one fact a pass reads, its value per target (and per precision where it depends on
one), and the evidence; a fact no version-specific evidence was found for says so.

>>> rows = target_rows()
>>> [r.fact for r in rows if r.values["trt8"] != r.values["trt10"]][:2]
['Myelin region trigger: a Gemm or a MatMul with weights (fully connected)', \
'a Flatten/Reshape before a Gemm is absorbed by a CASK fully connected layer']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fusionlab.fusion import myelin
from fusionlab.fusion.targets import (
    CONCAT,
    GENERIC,
    GUIDE8,
    GUIDE8_QDQ,
    HORIZONTAL_8,
    INT8_11,
    LEAKY,
    NO_QDQ_CHANGE,
    QAT_RECORD,
    RECORDS,
    STRONG,
    TARGETS,
    Target,
)

MODERN = ("trt8", "trt10", "trt11")
"""The targets compared (``classic`` is the baseline of fusion-rules.md)."""
PRECISIONS = ("fp32", "fp16", "int8")
COOKBOOK = "records/cookbook-mnist-trt10.16-h100"
INT8_4020 = (
    "NVIDIA/TensorRT#4020 (TensorRT 10.1, --int8: 'resnetv15_conv0_fwd + resnetv15_batchnorm0_fwd + "
    "resnetv15_relu0_fwd + resnetv15_pool0_fwd')"
)
NO_IMPLICIT_INT8 = (
    f"{STRONG}; TensorRT 11 removed-API table (BuilderFlag::kINT8 -> 'Explicit quantization with "
    "Q/DQ nodes'): implicit INT8 fusions have no trt11 counterpart except through Q/DQ"
)


@dataclass(frozen=True)
class Fact:
    """One fact a pass reads, as text per target and precision."""

    fact: str
    value: Callable[[Target, str], str]
    source: str
    per_precision: bool = False


@dataclass(frozen=True)
class Row:
    fact: str
    precision: str
    """``any`` for a fact that does not depend on the precision."""
    values: dict[str, str]
    source: str


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _trigger(name: str) -> Callable[[Target, str], str]:
    return lambda t, _: _yes(t.myelin is not None and name in t.myelin.triggers)


def _names(items: frozenset[str]) -> str:
    return ", ".join(sorted(items)) or "none"


FACTS: Sequence[Fact] = (
    Fact("Myelin region trigger: a MatMul of two activations (attention)", _trigger(myelin.ATTENTION),
         f"trt8: {myelin.ATTENTION_8}; trt10: {myelin.ATTENTION_10}; trt11: no evidence, as trt10"),
    Fact("Myelin region trigger: LayerNormalization or its ReduceMean -> Sub chain",
         _trigger(myelin.LAYERNORM),
         f"trt8: {myelin.LAYERNORM_8}; trt10: {myelin.LAYERNORM_10}; trt11: no evidence, as trt10"),
    Fact("Myelin region trigger: a Gemm or a MatMul with weights (fully connected)",
         _trigger(myelin.WEIGHTED_MATMUL),
         f"trt8 no: {myelin.TREX8_FC}; trt10 yes: {myelin.WEIGHTED_10}; trt11: no evidence, as trt10"),
    Fact("a Flatten/Reshape before a Gemm is absorbed by a CASK fully connected layer",
         lambda t, _: _yes("Gemm" in t.fc_ops),
         f"trt8 yes: {RECORDS} (Flatten_47 named by no layer); trt10 no: the Gemm is Myelin's and its "
         f"region computes the reshape ({COOKBOOK}: kernel __myl_Resh of node_view in the FP16 "
         "inspector log, node_view inside the FP32 region); trt11: no evidence, as trt10"),
    Fact("Myelin regions take in point-wise ops, reductions, matrix products, layout ops and shape "
         "arithmetic; convolutions and pooling stay CASK",
         lambda t, _: _yes(t.myelin is not None),
         f"{myelin.ABSORBS}; {myelin.STAYS_CASK}. The same for trt8, trt10 and trt11: no evidence of "
         "a difference"),
    Fact("sibling convolutions of one input merge horizontally (A || B)",
         lambda t, _: "any kernel" if t.horizontal_kernels == "any" else "1x1 only",
         f"trt8: {HORIZONTAL_8}; trt10: the 'tensor merging' pass still runs ({COOKBOOK}: 'After "
         "tensor merging', no siblings in that model), no TensorRT 10/11 CNN listing with '||' "
         "found: assumed unchanged (unverified for 10/11)"),
    Fact("concat elimination and Conv + activation + residual Add",
         lambda t, _: _yes("eliminate_concat" in t.passes and "fuse_conv_add" in t.passes),
         f"{CONCAT}; {RECORDS}; NVIDIA/TensorRT#4854 (TensorRT 11.2.1.2: 'a fused FP16 region of the "
         "form convolution, activation, residual add ... a later concatenation buffer')"),
    Fact("activations fused into a convolution", lambda t, p: _names(t.activations_for(p)),
         f"{GUIDE8}: Convolution and ReLU / Clip (any precision), Convolution and GELU (FP16/INT8); "
         f"{LEAKY}. No version difference documented", per_precision=True),
    Fact("a point-wise epilogue (SiLU, HardSwish as PWN) joins a convolution",
         lambda t, p: _yes(t.conv_pointwise_for(p)),
         f"{GENERIC}. No version difference documented; whether Conv + SiLU fuses at FP32 on "
         "TensorRT 10: no engine listing found", per_precision=True),
    Fact("a pooling layer joins the convolution before it (Convolution and Pooling)",
         lambda t, p: _yes(p in t.conv_pool),
         f"{GUIDE8}: Convolution and Pooling (same precision); {INT8_4020}; {COOKBOOK} (TensorRT "
         f"10.16 FP32: two layers); no FP16 listing either way (left unfused); trt11: "
         f"{NO_IMPLICIT_INT8}", per_precision=True),
    Fact("a depthwise + a 1x1 convolution, each with activation, as one DepSepConvolution",
         lambda t, p: _yes(p in t.depthwise_separable),
         f"{GUIDE8}: Depthwise Separable Convolution (INT8, compute capability 7.2+); trt10: no "
         f"evidence, as trt8; trt11: {NO_IMPLICIT_INT8}", per_precision=True),
    Fact("Q/DQ networks fuse into INT8 layers ([DQ, DQ] > Conv/Gemm/MatMul > Q; Q/DQ propagated "
         "through pooling, padding, shuffles and Add)",
         lambda t, _: _yes(t.qdq is not None and "fuse_qdq_conv" in t.passes),
         f"{GUIDE8_QDQ}; {QAT_RECORD}; trt10, trt11: {NO_QDQ_CHANGE}"),
    Fact("int8 without Q/DQ nodes is calibrated (implicit) INT8",
         lambda t, _: _yes(t.qdq is None or t.qdq.implicit_int8),
         f"trt8, trt10: {GUIDE8_QDQ}; trt11: {INT8_11}"),
    Fact("the float layers of an int8 build of a Q/DQ network run at",
         lambda t, _: "-" if t.qdq is None else t.qdq.float_precision or "the model's own types",
         f"trt8: {QAT_RECORD} (build 'FP32+FP16+INT8'); trt10: as trt8 ({NO_QDQ_CHANGE}); "
         f"trt11: {STRONG}"),
)


def target_rows(targets: Sequence[str] = MODERN) -> list[Row]:
    """Every fact whose value differs between ``targets`` or between precisions."""
    rows: list[Row] = []
    for fact in FACTS:
        for precision in PRECISIONS if fact.per_precision else ("fp32",):
            values = {n: fact.value(TARGETS[n], precision) for n in targets}
            rows.append(Row(fact.fact, precision if fact.per_precision else "any", values, fact.source))
    return rows


def _differs(rows: Sequence[Row], fact: str) -> bool:
    mine = [r for r in rows if r.fact == fact]
    return len({tuple(r.values.values()) for r in mine}) > 1 or any(
        len(set(r.values.values())) > 1 for r in mine)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def differences_markdown() -> str:
    """docs/target-differences.md as text."""
    rows = target_rows()
    out = [
        "# Where trt8, trt10 and trt11 differ",
        "",
        "Generated by `fusionlab passes --differences` from the target tables",
        "(`fusionlab/fusion/targets.py`, `fusionlab/fusion/myelin.py`); do not edit by hand. Each row",
        "is a fact a pass reads; `precision` is `any` where it does not depend on the build's",
        "precision. The targets model the default builder optimization level. Where no evidence",
        "for a version was found, that version keeps its predecessor's value and the source says",
        "\"no evidence\". The rules themselves, their conditions and sources: [fusion-rules.md](fusion-rules.md).",
        "",
        "## Facts that differ between targets or precisions",
        "",
        "| fact | precision | " + " | ".join(f"`{t}`" for t in MODERN) + " | source |",
        "|---|---|" + "---|" * len(MODERN) + "---|",
    ]
    shown: set[str] = set()
    for r in rows:
        if _differs(rows, r.fact):
            source = "(as above)" if r.fact in shown else _cell(r.source)
            shown.add(r.fact)
            out.append(f"| {_cell(r.fact)} | {r.precision} | "
                       + " | ".join(_cell(r.values[t]) for t in MODERN) + f" | {source} |")
    out += [
        "",
        "## Facts the three targets share (no evidence of a version difference)",
        "",
        "| fact | value | source |",
        "|---|---|---|",
    ]
    for r in rows:
        if not _differs(rows, r.fact):
            out.append(f"| {_cell(r.fact)} | {_cell(r.values[MODERN[0]])} | {_cell(r.source)} |")
    shared = [p for p in TARGETS[MODERN[0]].passes if all(p in TARGETS[t].passes for t in MODERN)]
    out += [
        "",
        "Every modern target runs the same passes in the same order: "
        + ", ".join(f"`{p}`" for p in shared) + ".",
        "",
        "## Notes per target",
        "",
    ]
    common = set.intersection(*(set(TARGETS[n].differences) for n in MODERN))
    for name in MODERN:
        t = TARGETS[name]
        out.append(f"- `{name}` ({t.versions}): {t.description}.")
        out += [f"  - {d}" for d in t.differences if d not in common]
    return "\n".join(out).rstrip() + "\n"

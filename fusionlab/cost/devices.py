"""The device table: peak math rates and memory bandwidth of common NVIDIA GPUs, as data.

Every figure is a :class:`Figure` that names its source (a key of :data:`SOURCES`: the
NVIDIA datasheet or whitepaper, with its URL) and, where the number is not printed as is,
how it was derived. Rates are **dense**: NVIDIA's newer datasheets (H100, H200, L4) print
tensor-core figures *with 2:4 structured sparsity*, which doubles them; the table holds
half of those, and the figure's note says so. Sparse figures are never used.

Units: TFLOPS (TOPS for INT8) and GB/s (10^9 bytes per second).

=============  ==============================================================================
field          what it is
=============  ==============================================================================
fp32           FP32 on CUDA cores (non-tensor)
fp16           FP16 on CUDA cores (non-tensor): point-wise and pooling layers at fp16/bf16
tf32           TF32 on tensor cores; None before Ampere (no TF32)
fp16_tensor    FP16 on tensor cores, FP32 accumulate
bf16_tensor    BF16 on tensor cores; None before Ampere (no BF16)
int8_tensor    INT8 on tensor cores (TOPS); V100 has none: DP4A on CUDA cores, see its note
bandwidth      DRAM bandwidth, GB/s
=============  ==============================================================================

>>> d = get("A100 80GB PCIe")
>>> d.name, d.tf32.value, d.bandwidth.value
('a100-80gb-pcie', 156.0, 1935.0)
>>> get("NVIDIA H100 PCIe").fp16_tensor.value  # datasheet: 1,513 TFLOPS with sparsity
756.5
>>> d.citation("bandwidth").split(", https://")[0]
'NVIDIA A100 Tensor Core GPU datasheet'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from fusionlab.errors import FusionlabError

FIELDS = ("fp32", "fp16", "tf32", "fp16_tensor", "bf16_tensor", "int8_tensor", "bandwidth")
"""The figures every device carries (``tf32``/``bf16_tensor`` may be None before Ampere)."""

OPTIONAL_FIELDS = frozenset({"tf32", "bf16_tensor"})
"""Figures that are None on GPUs without that math (compute capability below 8.0)."""

SOURCES: Mapping[str, str] = {
    "a100-datasheet": (
        "NVIDIA A100 Tensor Core GPU datasheet, https://www.nvidia.com/content/dam/en-zz/"
        "Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
    ),
    "ampere-whitepaper": (
        "NVIDIA A100 Tensor Core GPU Architecture whitepaper (Table 1: Peak FP16 non-tensor "
        "78 TFLOPS), https://images.nvidia.com/aem-dam/en-zz/Solutions/data-center/"
        "nvidia-ampere-architecture-whitepaper.pdf"
    ),
    "h100-datasheet": (
        "NVIDIA H100 Tensor Core GPU datasheet, "
        "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet"
    ),
    "hopper-whitepaper": (
        "NVIDIA H100 Tensor Core GPU Architecture whitepaper (Table: H100 SXM5 / PCIe peak "
        "rates, non-tensor FP16), https://resources.nvidia.com/en-us-tensor-core/"
        "gtc22-whitepaper-hopper"
    ),
    "h200-datasheet": (
        "NVIDIA H200 Tensor Core GPU datasheet and product page, "
        "https://www.nvidia.com/en-us/data-center/h200/"
    ),
    "a10-datasheet": (
        "NVIDIA A10 Tensor Core GPU datasheet, https://www.nvidia.com/content/dam/en-zz/"
        "Solutions/Data-Center/a10/pdf/datasheet-new/nvidia-a10-datasheet.pdf"
    ),
    "ga102-whitepaper": (
        "NVIDIA Ampere GA102 GPU Architecture whitepaper (Appendix A, GeForce RTX 3090), "
        "https://www.nvidia.com/content/PDF/nvidia-ampere-ga-102-gpu-architecture-whitepaper-v2.pdf"
    ),
    "l4-datasheet": (
        "NVIDIA L4 Tensor Core GPU datasheet, "
        "https://resources.nvidia.com/en-us-data-center-overview/l4-gpu-datasheet"
    ),
    "ada-whitepaper": (
        "NVIDIA Ada GPU Architecture whitepaper (Appendix A, GeForce RTX 4090), "
        "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf"
    ),
    "t4-datasheet": (
        "NVIDIA T4 Tensor Core GPU datasheet, https://www.nvidia.com/content/dam/en-zz/"
        "Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"
    ),
    "turing-whitepaper": (
        "NVIDIA Turing GPU Architecture whitepaper (Turing SMs run FP16 at twice the FP32 "
        "rate), https://images.nvidia.com/aem-dam/en-zz/Solutions/design-visualization/"
        "technologies/turing-architecture/NVIDIA-Turing-Architecture-Whitepaper.pdf"
    ),
    "v100-datasheet": (
        "NVIDIA Tesla V100 GPU datasheet, https://images.nvidia.com/content/technologies/"
        "volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf"
    ),
    "volta-whitepaper": (
        "NVIDIA Tesla V100 GPU Architecture whitepaper, https://images.nvidia.com/content/"
        "volta-architecture/pdf/volta-architecture-whitepaper.pdf"
    ),
    "cuda-guide": (
        "CUDA C++ Programming Guide, Arithmetic Instructions (results per clock per SM by "
        "compute capability), "
        "https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#arithmetic-instructions"
    ),
    "xavier-blog": (
        "NVIDIA Technical Blog, 'NVIDIA Jetson AGX Xavier Delivers 32 TeraOps for New Era of "
        "AI in Robotics' (512-core Volta GPU at 1377 MHz with 64 tensor cores: 11 TFLOPS FP16, "
        "22 TOPS INT8; 256-bit LPDDR4x, 137 GB/s), "
        "https://developer.nvidia.com/blog/nvidia-jetson-agx-xavier-32-teraops-ai-robotics/"
    ),
    "orin-brief": (
        "NVIDIA Jetson AGX Orin Series Technical Brief (GPU: 2048 CUDA cores, 64 tensor "
        "cores, 5.3 FP32 TFLOPS, 170 sparse INT8 TOPS; 204.8 GB/s), "
        "https://www.nvidia.com/content/dam/en-zz/Solutions/gtcf21/jetson-orin/"
        "nvidia-jetson-agx-orin-technical-brief.pdf"
    ),
}
"""Citation key -> document name and URL."""

SPARSE = "datasheet figure is with sparsity ({}); dense is half"


@dataclass(frozen=True)
class Figure:
    """One number of the table with where it comes from."""

    value: float | None
    source: str
    """A key of :data:`SOURCES`."""
    note: str = ""
    """How the value follows from the source when it is not printed there as is."""


@dataclass(frozen=True)
class Device:
    """One GPU: peak rates (dense TFLOPS/TOPS) and DRAM bandwidth (GB/s), each with a source."""

    name: str
    title: str
    architecture: str
    compute_capability: tuple[int, int]
    fp32: Figure
    fp16: Figure
    tf32: Figure
    fp16_tensor: Figure
    bf16_tensor: Figure
    int8_tensor: Figure
    bandwidth: Figure
    aliases: tuple[str, ...] = ()

    def figure(self, field: str) -> Figure:
        """The :class:`Figure` called ``field`` (one of :data:`FIELDS`)."""
        if field not in FIELDS:
            raise KeyError(field)
        value: Figure = getattr(self, field)
        return value

    def citation(self, field: str) -> str:
        """The source of ``field`` as text (document, URL, and the derivation if any)."""
        fig = self.figure(field)
        text = SOURCES[fig.source]
        return f"{text} ({fig.note})" if fig.note else text


def _f(value: float | None, source: str, note: str = "") -> Figure:
    return Figure(value, source, note)


def _a100(name: str, title: str, bandwidth: float, aliases: tuple[str, ...]) -> Device:
    """The A100 variants share their math (1410 MHz boost on all four) and differ in memory."""
    ds = "a100-datasheet"
    return Device(
        name, title, "Ampere", (8, 0),
        fp32=_f(19.5, ds),
        fp16=_f(78.0, "ampere-whitepaper"),
        tf32=_f(156.0, ds),
        fp16_tensor=_f(312.0, ds),
        bf16_tensor=_f(312.0, ds),
        int8_tensor=_f(624.0, ds),
        bandwidth=_f(bandwidth, ds),
        aliases=aliases,
    )


_DEVICES: tuple[Device, ...] = (
    Device(
        "h100-sxm", "NVIDIA H100 SXM5 80GB", "Hopper", (9, 0),
        fp32=_f(66.9, "hopper-whitepaper", "datasheet rounds it to 67"),
        fp16=_f(133.8, "hopper-whitepaper"),
        tf32=_f(494.7, "hopper-whitepaper", SPARSE.format("989 TFLOPS, h100-datasheet")),
        fp16_tensor=_f(989.4, "hopper-whitepaper", SPARSE.format("1,979 TFLOPS")),
        bf16_tensor=_f(989.4, "hopper-whitepaper", SPARSE.format("1,979 TFLOPS")),
        int8_tensor=_f(1978.9, "hopper-whitepaper", SPARSE.format("3,958 TOPS")),
        bandwidth=_f(3350.0, "h100-datasheet"),
        aliases=("h100", "h100-sxm5", "h100-80gb-hbm3", "h100-sxm5-80gb"),
    ),
    Device(
        "h100-pcie", "NVIDIA H100 PCIe 80GB", "Hopper", (9, 0),
        fp32=_f(51.2, "hopper-whitepaper", "datasheet rounds it to 51"),
        fp16=_f(102.4, "hopper-whitepaper"),
        tf32=_f(378.0, "h100-datasheet", SPARSE.format("756 TFLOPS")),
        fp16_tensor=_f(756.5, "h100-datasheet", SPARSE.format("1,513 TFLOPS")),
        bf16_tensor=_f(756.5, "h100-datasheet", SPARSE.format("1,513 TFLOPS")),
        int8_tensor=_f(1513.0, "h100-datasheet", SPARSE.format("3,026 TOPS")),
        bandwidth=_f(2000.0, "h100-datasheet"),
        aliases=("h100-pcie-80gb",),
    ),
    Device(
        "h200-sxm", "NVIDIA H200 SXM 141GB", "Hopper", (9, 0),
        fp32=_f(67.0, "h200-datasheet"),
        fp16=_f(133.8, "hopper-whitepaper",
                "H200 SXM has the H100 SXM's math: every datasheet rate is the same"),
        tf32=_f(494.5, "h200-datasheet", SPARSE.format("989 TFLOPS")),
        fp16_tensor=_f(989.5, "h200-datasheet", SPARSE.format("1,979 TFLOPS")),
        bf16_tensor=_f(989.5, "h200-datasheet", SPARSE.format("1,979 TFLOPS")),
        int8_tensor=_f(1979.0, "h200-datasheet", SPARSE.format("3,958 TOPS")),
        bandwidth=_f(4800.0, "h200-datasheet"),
        aliases=("h200", "h200-141gb", "h200-sxm-141gb"),
    ),
    Device(
        "h200-nvl", "NVIDIA H200 NVL 141GB", "Hopper", (9, 0),
        fp32=_f(60.0, "h200-datasheet"),
        fp16=_f(120.0, "h200-datasheet",
                "2 x FP32: Hopper runs non-tensor FP16 at twice the FP32 rate "
                "(hopper-whitepaper)"),
        tf32=_f(417.5, "h200-datasheet", SPARSE.format("835 TFLOPS")),
        fp16_tensor=_f(835.5, "h200-datasheet", SPARSE.format("1,671 TFLOPS")),
        bf16_tensor=_f(835.5, "h200-datasheet", SPARSE.format("1,671 TFLOPS")),
        int8_tensor=_f(1670.5, "h200-datasheet", SPARSE.format("3,341 TOPS")),
        bandwidth=_f(4800.0, "h200-datasheet"),
        aliases=(),
    ),
    _a100("a100-40gb-pcie", "NVIDIA A100 40GB PCIe", 1555.0, ("a100-pcie-40gb",)),
    _a100("a100-80gb-pcie", "NVIDIA A100 80GB PCIe", 1935.0, ("a100-pcie-80gb", "a100-pcie")),
    _a100("a100-40gb-sxm", "NVIDIA A100 40GB SXM4", 1555.0,
          ("a100-sxm4-40gb", "a100-sxm-40gb", "a100-40gb")),
    _a100("a100-80gb-sxm", "NVIDIA A100 80GB SXM4", 2039.0,
          ("a100-sxm4-80gb", "a100-sxm-80gb", "a100", "a100-sxm")),
    Device(
        "a10", "NVIDIA A10", "Ampere", (8, 6),
        fp32=_f(31.2, "a10-datasheet"),
        fp16=_f(31.2, "ga102-whitepaper",
                "GA10x runs non-tensor FP16 at the FP32 rate (GA102 whitepaper, Appendix A)"),
        tf32=_f(62.5, "a10-datasheet"),
        fp16_tensor=_f(125.0, "a10-datasheet"),
        bf16_tensor=_f(125.0, "a10-datasheet"),
        int8_tensor=_f(250.0, "a10-datasheet"),
        bandwidth=_f(600.0, "a10-datasheet"),
        aliases=("a10-24gb",),
    ),
    Device(
        "l4", "NVIDIA L4", "Ada Lovelace", (8, 9),
        fp32=_f(30.3, "l4-datasheet"),
        fp16=_f(30.3, "ada-whitepaper",
                "Ada runs non-tensor FP16 at the FP32 rate (Ada whitepaper, Appendix A)"),
        tf32=_f(60.0, "l4-datasheet", SPARSE.format("120 TFLOPS")),
        fp16_tensor=_f(121.0, "l4-datasheet", SPARSE.format("242 TFLOPS")),
        bf16_tensor=_f(121.0, "l4-datasheet", SPARSE.format("242 TFLOPS")),
        int8_tensor=_f(242.5, "l4-datasheet", SPARSE.format("485 TOPS")),
        bandwidth=_f(300.0, "l4-datasheet"),
        aliases=("l4-24gb",),
    ),
    Device(
        "t4", "NVIDIA T4", "Turing", (7, 5),
        fp32=_f(8.1, "t4-datasheet"),
        fp16=_f(16.2, "turing-whitepaper", "2 x the datasheet's FP32 8.1 TFLOPS"),
        tf32=_f(None, "t4-datasheet", "Turing has no TF32: FP32 layers run at the FP32 rate"),
        fp16_tensor=_f(65.0, "t4-datasheet", "'mixed precision (FP16/FP32)'"),
        bf16_tensor=_f(None, "t4-datasheet", "Turing has no BF16"),
        int8_tensor=_f(130.0, "t4-datasheet"),
        bandwidth=_f(320.0, "t4-datasheet", "printed as '320+ GB/s'"),
        aliases=("tesla-t4", "t4-16gb"),
    ),
    Device(
        "v100-sxm2", "NVIDIA Tesla V100 SXM2", "Volta", (7, 0),
        fp32=_f(15.7, "v100-datasheet"),
        fp16=_f(31.4, "cuda-guide",
                "2 x FP32: compute capability 7.0 does 128 FP16 vs 64 FP32 results per clock "
                "per SM"),
        tf32=_f(None, "v100-datasheet", "Volta has no TF32: FP32 layers run at the FP32 rate"),
        fp16_tensor=_f(125.0, "v100-datasheet", "'Tensor Performance'"),
        bf16_tensor=_f(None, "v100-datasheet", "Volta has no BF16"),
        int8_tensor=_f(62.8, "cuda-guide",
                       "no INT8 tensor cores on V100: DP4A (4 int8 multiply-adds per "
                       "instruction) at the FP32 instruction rate = 4 x 15.7 TFLOPS"),
        bandwidth=_f(900.0, "v100-datasheet"),
        aliases=("v100", "tesla-v100-sxm2", "v100-sxm2-16gb", "v100-sxm2-32gb"),
    ),
    Device(
        "v100-pcie", "NVIDIA Tesla V100 PCIe", "Volta", (7, 0),
        fp32=_f(14.0, "v100-datasheet"),
        fp16=_f(28.0, "cuda-guide", "2 x FP32, as for v100-sxm2"),
        tf32=_f(None, "v100-datasheet", "Volta has no TF32: FP32 layers run at the FP32 rate"),
        fp16_tensor=_f(112.0, "v100-datasheet", "'Tensor Performance'"),
        bf16_tensor=_f(None, "v100-datasheet", "Volta has no BF16"),
        int8_tensor=_f(56.0, "cuda-guide", "DP4A: 4 x 14 TFLOPS, as for v100-sxm2"),
        bandwidth=_f(900.0, "v100-datasheet"),
        aliases=("tesla-v100-pcie", "v100-pcie-16gb", "v100-pcie-32gb"),
    ),
    Device(
        "rtx-3090", "NVIDIA GeForce RTX 3090", "Ampere", (8, 6),
        fp32=_f(35.6, "ga102-whitepaper"),
        fp16=_f(35.6, "ga102-whitepaper", "'Peak FP16 TFLOPS (non-Tensor)'"),
        tf32=_f(35.6, "ga102-whitepaper", "sparse 71"),
        fp16_tensor=_f(71.0, "ga102-whitepaper",
                       "with FP32 accumulate (sparse 142); FP16 accumulate runs at 142"),
        bf16_tensor=_f(71.0, "ga102-whitepaper", "sparse 142"),
        int8_tensor=_f(284.0, "ga102-whitepaper", "sparse 568"),
        bandwidth=_f(936.0, "ga102-whitepaper"),
        aliases=("geforce-rtx-3090", "3090"),
    ),
    Device(
        "rtx-4090", "NVIDIA GeForce RTX 4090", "Ada Lovelace", (8, 9),
        fp32=_f(82.6, "ada-whitepaper"),
        fp16=_f(82.6, "ada-whitepaper", "'Peak FP16 TFLOPS (non-Tensor)'"),
        tf32=_f(82.6, "ada-whitepaper", "sparse 165.2"),
        fp16_tensor=_f(165.2, "ada-whitepaper",
                       "with FP32 accumulate (sparse 330.4); FP16 accumulate runs at 330.3"),
        bf16_tensor=_f(165.2, "ada-whitepaper", "sparse 330.4"),
        int8_tensor=_f(660.6, "ada-whitepaper", "sparse 1321.2"),
        bandwidth=_f(1008.0, "ada-whitepaper"),
        aliases=("geforce-rtx-4090", "4090"),
    ),
    Device(
        "jetson-agx-xavier", "NVIDIA Jetson AGX Xavier", "Volta", (7, 2),
        fp32=_f(1.41, "xavier-blog", "512 CUDA cores x 2 FLOPs x 1.377 GHz"),
        fp16=_f(2.82, "xavier-blog", "2 x FP32, as Volta (cuda-guide)"),
        tf32=_f(None, "xavier-blog", "Volta has no TF32: FP32 layers run at the FP32 rate"),
        fp16_tensor=_f(11.0, "xavier-blog",
                       "= 64 tensor cores x 128 FLOPs per clock x 1.377 GHz (11.3)"),
        bf16_tensor=_f(None, "xavier-blog", "Volta has no BF16"),
        int8_tensor=_f(22.0, "xavier-blog",
                       "twice FP16 (Xavier's Volta tensor cores do INT8); GPU only: the module's "
                       "32 TOPS include the DLAs"),
        bandwidth=_f(136.5, "xavier-blog", "256-bit LPDDR4x at 2133 MHz; the blog rounds to 137"),
        aliases=("xavier", "agx-xavier", "jetson-xavier"),
    ),
    Device(
        "jetson-agx-orin", "NVIDIA Jetson AGX Orin 64GB", "Ampere", (8, 7),
        fp32=_f(5.3, "orin-brief"),
        fp16=_f(10.6, "orin-brief", "2 x FP32: Orin's GPU runs non-tensor FP16 at twice FP32"),
        tf32=_f(21.25, "orin-brief",
                "half the FP16 tensor rate, the Ampere ratio (ampere-whitepaper)"),
        fp16_tensor=_f(42.5, "orin-brief",
                       "half the dense INT8 rate, the Ampere ratio (ampere-whitepaper)"),
        bf16_tensor=_f(42.5, "orin-brief", "as FP16"),
        int8_tensor=_f(85.0, "orin-brief",
                       "GPU only; the brief gives 170 sparse TOPS, dense is half; the module's "
                       "275 TOPS include the DLAs"),
        bandwidth=_f(204.8, "orin-brief"),
        aliases=("orin", "agx-orin", "jetson-orin", "jetson-agx-orin-64gb"),
    ),
)

DEVICES: Mapping[str, Device] = {d.name: d for d in _DEVICES}
"""Device name -> :class:`Device`, in table order."""


def _key(text: str) -> str:
    """Normalize a device name: lower case, no 'NVIDIA'/'Tesla'/'GeForce', dashes.

    >>> _key("NVIDIA A100 80GB PCIe"), _key("Tesla_V100-SXM2-16GB")
    ('a100-80gb-pcie', 'v100-sxm2-16gb')
    """
    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    words = [w for w in words if w not in ("nvidia", "tesla", "geforce")]
    return "-".join(words)


def _index() -> dict[str, Device]:
    out: dict[str, Device] = {}
    for d in _DEVICES:
        for key in (d.name, _key(d.title), *d.aliases):
            out.setdefault(_key(key), d)
    return out


_INDEX = _index()


def get(name: str) -> Device:
    """The device called ``name``: its table name, title or an alias, in any case.

    TensorRT's device string (``NVIDIA A100 80GB PCIe``) works too.

    >>> get("a100-80gb-pcie") is get("NVIDIA A100 80GB PCIe")
    True
    >>> get("B9000")
    Traceback (most recent call last):
    ...
    fusionlab.errors.FusionlabError: unknown device 'B9000' (known: h100-sxm, h100-pcie, ...
    """
    device = _INDEX.get(_key(name))
    if device is None:
        raise FusionlabError(f"unknown device {name!r} (known: {', '.join(DEVICES)})")
    return device


def figure_fields() -> tuple[str, ...]:
    """The :class:`Figure` fields of :class:`Device` (the same names as :data:`FIELDS`)."""
    return tuple(f.name for f in fields(Device) if f.type in ("Figure", Figure))

"""The model zoo: deterministic ONNX builders for the networks fusionlab is shown and tested on.

Models are built in code (onnx.helper and numpy; no downloads, no PyTorch) with random
weights drawn from a fixed seed per model, so building twice gives byte-identical files.
``batch=None`` keeps the batch dimension symbolic (``N``; the resnets use the exporter's
``batch_size``). Every model is opset 13 and passes ``onnx.checker`` with ``full_check``.
The exporter-style models (EfficientNet, MobileNetV3, ConvNeXt, ViT, DenseNet, RegNet,
ShuffleNetV2)
are written node for node as ``torch.onnx.export`` writes them, at their export's opset
(13, 17 or 18), with the exporter's ``batch_size``.

The synthetic ``inception-chain-<blocks>`` family accepts up to :data:`CHAIN_MAX` blocks (20 nodes
each); :func:`names` lists ``inception-chain-500`` (10,000 nodes) as its representative.

>>> "inception3a" in names()
True
>>> describe("resnet18")
"torchvision ResNet-18 as PyTorch's legacy ONNX exporter writes it (BN folded, Conv_0 ... Gemm_48)"
>>> len(build("inception-chain-2").graph.node)
40
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic
from fusionlab.zoo.catalog import CATALOG, chain_channels

if TYPE_CHECKING:  # the builder modules import onnx: each is imported when its model is built
    import onnx

log = logging.getLogger(__name__)

__all__ = ["Entry", "build", "describe", "export", "inception_chain", "names"]


@dataclass(frozen=True)
class Entry:
    """A zoo model: its name, one-line description and builder ``(batch) -> ModelProto``."""

    name: str
    description: str
    builder: Callable[[int | None], onnx.ModelProto]


_CHAIN = re.compile(r"inception-chain-([1-9][0-9]*)")
CHAIN_LISTED = 500
"""The chain length that :func:`names` lists (500 blocks, 10,000 nodes)."""
CHAIN_MAX = 20_000
"""The longest chain the zoo builds (400,000 nodes: four times the scale benchmark's)."""

_BUILDERS: dict[str, tuple[str, str]] = {
    "inception3a": ("inception", "inception3a"),
    "googlenet": ("inception", "googlenet"),
    "googlenet-caffe": ("inception", "googlenet_caffe"),
    "resnet18": ("resnet", "resnet18"),
    "resnet50": ("resnet", "resnet50"),
    "mobilenetv2": ("mobilenet", "mobilenetv2"),
    # Q/DQ models and detectors (qdq.py, yolo.py, unet.py)
    "resnet18-qat": ("qdq", "resnet18_qat"),
    "mobilenetv2-qdq": ("qdq", "mobilenetv2_qdq"),
    "yolov8n": ("yolo", "yolov8n"),
    "unet": ("unet", "unet"),
    # exporter-style models: names as torch.onnx.export writes them (zoo-modern)
    "efficientnet-b0": ("efficientnet", "efficientnet_b0"),
    "mobilenetv3-large": ("mobilenetv3", "mobilenetv3_large"),
    "mobilenetv3-large-opset13": ("mobilenetv3", "mobilenetv3_large_opset13"),
    "convnext-t": ("convnext", "convnext_tiny"),
    "convnext-t-opset13": ("convnext", "convnext_tiny_opset13"),
    "vit-s16": ("vit", "vit_s16"),
    "densenet121": ("densenet", "densenet121"),
    "regnet-y-400mf": ("regnet", "regnet_y_400mf"),
    "shufflenetv2": ("shufflenet", "shufflenetv2"),
    "shufflenetv2-legacy": ("shufflenet", "shufflenetv2_legacy"),
    # the network of a published TensorRT 10.16 engine (records/cookbook-mnist-trt10.16-h100)
    "mnist-cookbook": ("cookbook", "mnist_cookbook"),
}
"""Model name -> (module under fusionlab.zoo, builder function); descriptions are in
:data:`fusionlab.zoo.catalog.CATALOG`."""


def _builder(module: str, function: str) -> Callable[[int | None], onnx.ModelProto]:
    """The builder ``fusionlab.zoo.<module>.<function>``, its module imported on first call."""

    def build(batch: int | None) -> onnx.ModelProto:
        built: onnx.ModelProto = getattr(importlib.import_module(f"fusionlab.zoo.{module}"), function)(batch)
        return built

    return build


_MODELS: dict[str, Entry] = {
    name: Entry(name, CATALOG[name], _builder(module, function)) for name, (module, function) in _BUILDERS.items()
}


def inception_chain(blocks: int, width: float = 0.125, batch: int | None = None) -> onnx.ModelProto:
    """``blocks`` Inception blocks in a row (:func:`fusionlab.zoo.inception.inception_chain`)."""
    from fusionlab.zoo.inception import inception_chain as build_chain

    return build_chain(blocks, width=width, batch=batch)


def _chain_entry(blocks: int) -> Entry:
    return Entry(
        f"inception-chain-{blocks}",
        f"synthetic chain of {blocks} Inception blocks ({20 * blocks:,} nodes, "
        f"{chain_channels(0.125)} channels) for benchmarks",
        lambda batch: inception_chain(blocks, batch=batch),
    )


def names() -> list[str]:
    """The zoo's model names, sorted (one ``inception-chain-<blocks>`` stands for the family)."""
    return sorted([*_MODELS, f"inception-chain-{CHAIN_LISTED}"])


def _entry(name: str) -> Entry:
    if name in _MODELS:
        return _MODELS[name]
    match = _CHAIN.fullmatch(name)
    if match:
        digits = match.group(1)
        if len(digits) > len(str(CHAIN_MAX)) or int(digits) > CHAIN_MAX:
            raise FusionlabError(
                f"inception-chain-{digits[:20]}: at most {CHAIN_MAX:,} blocks ({20 * CHAIN_MAX:,} nodes)"
            )
        return _chain_entry(int(digits))
    raise FusionlabError(
        f"unknown model {name[:80]!r}; known models: {', '.join(names())} "
        f"(inception-chain-<blocks> takes 1 to {CHAIN_MAX:,} blocks)"
    )


def describe(name: str) -> str:
    """One line saying what the model ``name`` is."""
    return _entry(name).description


def build(name: str, batch: int | None = None) -> onnx.ModelProto:
    """Build the model ``name``; ``batch`` fixes the batch dimension (None: symbolic)."""
    entry = _entry(name)
    if batch is not None and batch < 1:
        raise FusionlabError(f"batch must be at least 1, got {batch}")
    log.debug("building %s (batch %s)", name, batch if batch is not None else "symbolic")
    return entry.builder(batch)


def export(name: str, path: str | os.PathLike[str], batch: int | None = None) -> Path:
    """Build ``name`` and write it to ``path`` whole or not at all; returns the path."""
    model = build(name, batch)
    data = model.SerializeToString()
    log.info("writing %s (%d nodes, %.1f MB) to %s", name, len(model.graph.node),
             len(data) / 1e6, path)
    return write_atomic(path, data)

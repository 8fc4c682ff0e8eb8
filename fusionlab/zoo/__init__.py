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

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx

from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic
from fusionlab.zoo import (
    convnext,
    cookbook,
    densenet,
    efficientnet,
    inception,
    mobilenet,
    mobilenetv3,
    qdq,
    regnet,
    resnet,
    shufflenet,
    unet,
    vit,
    yolo,
)
from fusionlab.zoo.inception import inception_chain

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

_MODELS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("inception3a", inception.DESCRIPTIONS["inception3a"], inception.inception3a),
        Entry("googlenet", inception.DESCRIPTIONS["googlenet"], inception.googlenet),
        Entry("googlenet-caffe", inception.DESCRIPTIONS["googlenet-caffe"],
              inception.googlenet_caffe),
        Entry("resnet18", resnet.DESCRIPTIONS["resnet18"], resnet.resnet18),
        Entry("resnet50", resnet.DESCRIPTIONS["resnet50"], resnet.resnet50),
        Entry("mobilenetv2", mobilenet.DESCRIPTION, mobilenet.mobilenetv2),
        # Q/DQ models and detectors (qdq.py, yolo.py, unet.py)
        Entry("resnet18-qat", qdq.DESCRIPTIONS["resnet18-qat"], qdq.resnet18_qat),
        Entry("mobilenetv2-qdq", qdq.DESCRIPTIONS["mobilenetv2-qdq"], qdq.mobilenetv2_qdq),
        Entry("yolov8n", yolo.DESCRIPTION, yolo.yolov8n),
        Entry("unet", unet.DESCRIPTION, unet.unet),
        # exporter-style models: names as torch.onnx.export writes them (zoo-modern)
        Entry("efficientnet-b0", efficientnet.DESCRIPTION, efficientnet.efficientnet_b0),
        Entry("mobilenetv3-large", mobilenetv3.DESCRIPTIONS["mobilenetv3-large"],
              mobilenetv3.mobilenetv3_large),
        Entry("mobilenetv3-large-opset13", mobilenetv3.DESCRIPTIONS["mobilenetv3-large-opset13"],
              mobilenetv3.mobilenetv3_large_opset13),
        Entry("convnext-t", convnext.DESCRIPTIONS["convnext-t"], convnext.convnext_tiny),
        Entry("convnext-t-opset13", convnext.DESCRIPTIONS["convnext-t-opset13"],
              convnext.convnext_tiny_opset13),
        Entry("vit-s16", vit.DESCRIPTION, vit.vit_s16),
        Entry("densenet121", densenet.DESCRIPTION, densenet.densenet121),
        Entry("regnet-y-400mf", regnet.DESCRIPTION, regnet.regnet_y_400mf),
        Entry("shufflenetv2", shufflenet.DESCRIPTIONS["shufflenetv2"], shufflenet.shufflenetv2),
        Entry("shufflenetv2-legacy", shufflenet.DESCRIPTIONS["shufflenetv2-legacy"],
              shufflenet.shufflenetv2_legacy),
        # the network of a published TensorRT 10.16 engine (records/cookbook-mnist-trt10.16-h100)
        Entry("mnist-cookbook", cookbook.DESCRIPTION, cookbook.mnist_cookbook),
    )
}


def _chain_entry(blocks: int) -> Entry:
    return Entry(
        f"inception-chain-{blocks}",
        f"synthetic chain of {blocks} Inception blocks ({20 * blocks:,} nodes, "
        f"{inception.chain_channels(0.125)} channels) for benchmarks",
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

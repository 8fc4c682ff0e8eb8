"""Where the recorded TensorRT engines live: ``records/`` at the repository root (a copy of
the records the tests and docs use, with their licence; records/README.md says where each
came from)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "records"
RESNET18 = ROOT / "trex-resnet18-a100"
"""TensorRT 8.x ResNet-18 engines on an A100: ``fp32/`` and ``fp16/``."""
RESNET18_QAT = ROOT / "trex-resnet18-a100-qat"
"""TensorRT 8.x Q/DQ (QAT) ResNet-18 engine on an A100."""
COOKBOOK_MNIST = ROOT / "cookbook-mnist-trt10.16-h100"
"""TensorRT 10.16.1 MNIST engine on an H100 (NVIDIA's TensorRT Cookbook), FP32."""
COOKBOOK_MNIST_LAYERS = COOKBOOK_MNIST / "07-Tool__trtexec__model-trained-exportLayerInfo.log"
"""Its detailed layer information (JSON; Myelin kernels of one region)."""
RESNET50_TF = ROOT / "trex-resnet50-tf-rtx3090"
"""TensorRT 8.x engines of Keras ResNet-50 (tf2onnx) on an RTX 3090: ``fp32/`` and ``fp16/``."""

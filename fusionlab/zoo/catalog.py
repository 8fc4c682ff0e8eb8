"""What each zoo model is, in one line: read by ``fusionlab models list`` without importing
onnx (the builder modules import it; :mod:`fusionlab.zoo` imports one only to build its model).
Each builder module takes its models' lines from here for the ONNX file's ``doc_string``."""

from __future__ import annotations

CATALOG: dict[str, str] = {
    "convnext-t": (
        "ConvNeXt-T (Liu et al. 2022), TorchScript export at opset 17: LayerNormalization, Erf "
        "GELU"
    ),
    "convnext-t-opset13": (
        "ConvNeXt-T, TorchScript export at opset 13: LayerNorm as ReduceMean/Sub/Pow/Sqrt/Div"
    ),
    "mnist-cookbook": (
        "TensorRT Cookbook MNIST CNN (dynamo export, opset 18): node names of the TensorRT 10.16 "
        "record"
    ),
    "densenet121": (
        "DenseNet-121 (Huang et al. 2017), TorchScript export at opset 13: BN-ReLU-Conv, Concat "
        "growth"
    ),
    "efficientnet-b0": (
        "EfficientNet-B0 (Tan & Le 2019), TorchScript export at opset 13: BN folded, SiLU, "
        "squeeze-excitation"
    ),
    "inception3a": "GoogLeNet's Inception (3a) block with BatchNorm, [N,192,28,28] -> 256 channels",
    "googlenet": "GoogLeNet / Inception-v1 (Szegedy et al. 2014) with BatchNorm, 224x224, 1000 classes",
    "googlenet-caffe": (
        "BVLC GoogLeNet as Caffe's deploy.prototxt: ReLU, LRN, Dropout, Softmax; Caffe layer "
        "names"
    ),
    "mobilenetv2": "MobileNetV2 (Sandler et al. 2018): Conv+BN+Clip(0,6), depthwise convs, residual Adds",
    "mobilenetv3-large": (
        "MobileNetV3-Large (Howard et al. 2019), TorchScript export at opset 17: HardSwish, "
        "HardSigmoid SE"
    ),
    "mobilenetv3-large-opset13": (
        "MobileNetV3-Large, TorchScript export at opset 13: hard-swish as HardSigmoid + Mul"
    ),
    "resnet18-qat": (
        "TREx's QAT ResNet-18 (pytorch-quantization Q/DQ, legacy exporter names, QuantizeLinear_2 "
        "... Gemm_257)"
    ),
    "mobilenetv2-qdq": (
        "MobileNetV2 with int8 Q/DQ on every Conv/Gemm input and weight and on the residual "
        "inputs"
    ),
    "regnet-y-400mf": (
        "RegNetY-400MF (Radosavovic et al. 2020), TorchScript export at opset 13: grouped convs, "
        "SE, residual"
    ),
    "resnet18": (
        "torchvision ResNet-18 as PyTorch's legacy ONNX exporter writes it (BN folded, Conv_0 ... "
        "Gemm_48)"
    ),
    "resnet50": (
        "torchvision ResNet-50 as PyTorch's legacy ONNX exporter writes it (BN folded, Conv_0 ... "
        "Gemm_121)"
    ),
    "shufflenetv2": (
        "ShuffleNetV2 x1.0 (Ma et al. 2018), dynamo export at opset 18: Split, constant Reshape "
        "shapes"
    ),
    "shufflenetv2-legacy": (
        "ShuffleNetV2 x1.0, TorchScript export at opset 13: run-time Shape/Gather/Div shape "
        "arithmetic"
    ),
    "unet": (
        "U-Net (milesial/Pytorch-UNet layout): Conv+ReLU (BN folded), MaxPool encoder, "
        "ConvTranspose + Concat decoder"
    ),
    "vit-s16": "ViT-S/16 (torchvision VisionTransformer, 12 layers, 6 heads), TorchScript export at opset 17",
    "yolov8n": (
        "YOLOv8n (ultralytics, 640x640, 80 classes) as exported: Conv+SiLU, C2f with Split, SPPF, "
        "PAN neck, DFL head"
    ),
}
"""One line per model name (the synthetic chain's is written by :mod:`fusionlab.zoo`)."""


def chain_channels(width: float) -> int:
    """Channels in and out of every chain block: ``256 * width`` rounded to a multiple of 16.

    >>> chain_channels(0.125), chain_channels(1.0), chain_channels(0.01)
    (32, 256, 16)
    """
    from fusionlab.errors import FusionlabError

    if not width > 0:
        raise FusionlabError(f"inception chain: width must be positive, got {width}")
    return 16 * max(1, round(16 * width))

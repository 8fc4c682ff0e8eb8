"""The TensorRT 8.x engines of Keras ResNet-50 (records/trex-resnet50-tf-rtx3090), read without
their model (its tf2onnx export is not published): the TensorRT 8 facts the trt8 rules cite."""

from __future__ import annotations

import pytest

from fusionlab.formats.trtexec import read_layer_info
from fusionlab.plan import Kind, Plan
from tests.records import RESNET50_TF


@pytest.fixture(scope="module", params=["fp32", "fp16"])
def plan(request: pytest.FixtureRequest) -> Plan:
    return read_layer_info(RESNET50_TF / request.param / "resnet.onnx.engine.graph.json")


def _named(plan: Plan, name: str):  # type: ignore[no-untyped-def]
    return next(layer for layer in plan.layers if layer.name == name)


def test_the_fully_connected_matmul_is_a_convolution_with_its_bias(plan: Plan) -> None:
    fc = _named(plan, "resnet50/predictions/MatMul")
    assert fc.kind is Kind.CONVOLUTION and fc.engine_type in ("CublasConvolution", "CaskConvolution")
    assert fc.outputs == ("resnet50/predictions/MatMul_out_region",)
    after = _named(plan, "reshape_after_resnet50/predictions/MatMul")
    assert after.inserted  # a NoOp reshape (through a reformat at fp16) ...
    assert after.outputs == ("resnet50/predictions/BiasAdd:0",)  # ... and the bias Add is inside the FC
    assert not any("BiasAdd" in layer.name for layer in plan.layers)


def test_softmax_is_its_own_layer_after_the_fc(plan: Plan) -> None:
    softmax = _named(plan, "resnet50/predictions/Softmax")
    assert softmax.kind is Kind.SOFTMAX and softmax.nodes == ("resnet50/predictions/Softmax",)


def test_the_spatial_mean_is_pooling(plan: Plan) -> None:
    assert _named(plan, "resnet50/avg_pool/Mean").kind is Kind.POOLING


def test_pad_before_max_pooling_stays_a_layer(plan: Plan) -> None:
    assert _named(plan, "resnet50/pool1_pad/Pad").kind is Kind.PADDING


def test_residual_add_and_relu_fuse_into_a_convolution(plan: Plan) -> None:
    name = "resnet50/conv2_block1_0_conv/Conv2D + resnet50/conv2_block1_add/add + resnet50/conv2_block1_out/Relu"
    assert _named(plan, name).kind is Kind.CONVOLUTION

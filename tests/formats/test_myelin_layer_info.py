"""Myelin regions in engine layer information (fusionlab.formats.layer_info).

Real engine: records/cookbook-mnist-trt10.16-h100 (TensorRT 10.16.1, H100, FP32, detailed
verbosity): the head of the MNIST network is one Myelin region, which the JSON lists kernel
by kernel (``node_linear_myl4_0`` gemm, ``__myl_MulSum_myl4_1`` ... kgen), its ONNX nodes only
in ``Metadata``; with names only the same region is ``{ForeignNode[gemm1.weight...
ONNXTRT_castHelper_9]}`` (the record's ProfilingVerbosity log), whose end points are layers
TensorRT's parser made.
"""

from __future__ import annotations

import json

import pytest

from fusionlab import zoo
from fusionlab.formats.trtexec import parse_engine_info, read_layer_info
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Kind
from tests.records import COOKBOOK_MNIST_LAYERS

HEAD = ("node_view", "node_linear", "node_relu_2", "node_linear_1", "node_softmax", "node_argmax")


@pytest.fixture(scope="module")
def mnist() -> Graph:
    return load(zoo.build("mnist-cookbook"), batch=1)


def test_the_kernels_of_one_region_are_one_layer() -> None:
    info = parse_engine_info(COOKBOOK_MNIST_LAYERS)
    assert [x.layer_type for x in info.layers] == [
        "CaskConvolution", "CaskPooling", "CaskConvolution", "CaskPooling", "Myelin"]
    region = info.layers[-1]
    assert region.raw is not None and region.raw["Kernels"] == [
        "node_linear_myl4_0", "__myl_MulSum_myl4_1", "__myl_AddMaxrSubExpSum_myl4_2",
        "__myl_DivMulMaxr_myl4_3", "__myl_CastReshCast_myl4_4"]
    assert [t.name for t in region.inputs] == ["max_pool2d_1"]
    assert [t.name for t in region.outputs] == ["y", "z"]  # the kernels' own tensors stay inside
    assert region.metadata == ("node_linear", "node_relu_2", "node_linear_1", "node_softmax",
                               "node_argmax")


def test_kept_apart_on_request() -> None:
    """TensorRT-RTX's kernels are its layers: its reader keeps them (group_myelin=False)."""
    info = parse_engine_info(COOKBOOK_MNIST_LAYERS, group_myelin=False)
    assert len(info.layers) == 9
    assert [x.layer_type for x in info.layers[4:]] == ["gemm", "kgen", "kgen", "kgen", "kgen"]


def test_against_the_model_the_region_holds_its_reshape(mnist: Graph) -> None:
    plan = read_layer_info(COOKBOOK_MNIST_LAYERS, graph=mnist)
    assert [layer.nodes for layer in plan.layers] == [
        ("node_conv2d", "node_relu"), ("node_max_pool2d",), ("node_conv2d_1", "node_relu_1"),
        ("node_max_pool2d_1",), HEAD]
    region = plan.layers[-1]
    assert region.kind is Kind.MYELIN and region.engine_type == "Myelin"
    assert region.name == "{ForeignNode[node_view...node_argmax]}"
    assert dict(plan.eliminated) == {}  # node_view is computed by the region, not absorbed
    assert plan.precision == "fp32" and plan.batch == 1


def test_names_only_foreign_node_is_a_myelin_layer(mnist: Graph) -> None:
    """The LAYER_NAMES_ONLY form of the same engine (the record's ProfilingVerbosity log):
    the region's name has no ONNX node in it, so without tensors it covers none, but it is a
    Myelin layer."""
    doc = json.dumps({"Layers": [
        "node_conv2d + node_relu", "node_max_pool2d", "node_conv2d_1 + node_relu_1",
        "node_max_pool2d_1", "{ForeignNode[gemm1.weight...ONNXTRT_castHelper_9]}"]})
    plan = read_layer_info(doc, graph=mnist)
    assert plan.layers[-1].kind is Kind.MYELIN
    assert plan.layers[-1].nodes == ()


def test_a_named_range_covers_the_nodes_between(mnist: Graph) -> None:
    doc = json.dumps({"Layers": ["{ForeignNode[node_view...node_argmax]}"]})
    plan = read_layer_info(doc, graph=mnist)
    assert plan.layers[0].kind is Kind.MYELIN and plan.layers[0].nodes == HEAD

"""The resnets carry the names PyTorch's legacy exporter gives them, checked against real data:
the TensorRT engine records of ResNet-18 (records/trex-resnet18-a100) and published
listings of torch 1.13 exports."""

from __future__ import annotations

import json

import onnx
import pytest

from fusionlab import zoo
from tests.records import RESNET18 as RECORDS


@pytest.fixture(scope="module")
def resnet18() -> onnx.ModelProto:
    return zoo.build("resnet18")


@pytest.fixture(scope="module")
def resnet50() -> onnx.ModelProto:
    return zoo.build("resnet50")


def _inserted(layer: dict[str, object]) -> bool:
    """Layers TensorRT inserted itself (format conversions, the reshape after the Gemm)."""
    name = str(layer["Name"])
    return name.startswith("Reformatting CopyNode") or name.startswith("reshape_after_")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_every_engine_layer_names_zoo_nodes(precision: str, resnet18: onnx.ModelProto) -> None:
    path = RECORDS / precision / "engine.graph.json"
    if not path.exists():
        pytest.skip(f"TensorRT records not found at {path}")
    layers = json.loads(path.read_text())["Layers"]
    nodes = {n.name for n in resnet18.graph.node}
    tensors = {t for n in resnet18.graph.node for t in [*n.input, *n.output]}
    named = [part for layer in layers if not _inserted(layer)
             for part in layer["Name"].split(" + ")]
    assert len(named) == len(set(named)) == len(nodes) - 1 == 48  # every node but one ...
    assert set(named) <= nodes
    assert nodes - set(named) == {"Flatten_47"}  # ... which no engine layer names
    engine_tensors = {
        t["Name"] for layer in layers for t in [*layer["Inputs"], *layer["Outputs"]]
        if not t["Name"].startswith("Reformatted") and not t["Name"].endswith("_region")
    }
    assert len(engine_tensors) == 24
    assert engine_tensors <= tensors  # input.1, onnx::MaxPool_125, input.8, ..., 191


def test_downsample_block_in_export_order(resnet18: onnx.ModelProto) -> None:
    by_name = {n.name: n for n in resnet18.graph.node}
    order = [n.name for n in resnet18.graph.node]
    assert order[13:19] == ["Conv_13", "Relu_14", "Conv_15", "Conv_16", "Add_17", "Relu_18"]
    conv2, downsample = by_name["Conv_15"].output[0], by_name["Conv_16"].output[0]
    assert list(by_name["Add_17"].input) == [conv2, downsample]
    assert by_name["Conv_16"].input[0] == by_name["Conv_13"].input[0] == "input.40"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in by_name["Conv_16"].attribute}
    assert attrs["kernel_shape"] == [1, 1] and attrs["strides"] == [2, 2]


# onnx2ncnn's listing of torchvision resnet18 exported by torch.onnx.export (torch 1.13
# defaults): every node's output tensor, in order (the TensorRT records show 23 of them).
RESNET18_OUTPUTS = """
input.4 onnx::MaxPool_125 input.8 input.16 onnx::Conv_129 onnx::Add_198 onnx::Relu_132 input.24
input.32 onnx::Conv_136 onnx::Add_204 onnx::Relu_139 input.40 input.48 onnx::Conv_143
onnx::Add_210 onnx::Add_213 onnx::Relu_148 input.60 input.68 onnx::Conv_152 onnx::Add_219
onnx::Relu_155 input.76 input.84 onnx::Conv_159 onnx::Add_225 onnx::Add_228 onnx::Relu_164
input.96 input.104 onnx::Conv_168 onnx::Add_234 onnx::Relu_171 input.112 input.120
onnx::Conv_175 onnx::Add_240 onnx::Add_243 onnx::Relu_180 input.132 input.140 onnx::Conv_184
onnx::Add_249 onnx::Relu_187 input.148 onnx::Flatten_189 onnx::Gemm_190 191
""".split()  # noqa: SIM905 (the listing's layout)


def test_resnet18_tensor_names_match_the_exporter(resnet18: onnx.ModelProto) -> None:
    assert [n.output[0] for n in resnet18.graph.node] == RESNET18_OUTPUTS
    assert [i.name for i in resnet18.graph.initializer][:4] == [
        "fc.weight", "fc.bias", "onnx::Conv_193", "onnx::Conv_194",
    ]
    (inp,), (out,) = resnet18.graph.input, resnet18.graph.output
    assert inp.name == "input.1" and out.name == "191"
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == [
        "batch_size", 3, 224, 224,
    ]


def test_resnet18_is_the_folded_export(resnet18: onnx.ModelProto) -> None:
    ops = [n.op_type for n in resnet18.graph.node]
    assert "BatchNormalization" not in ops
    assert ops.count("Conv") == 20 and ops.count("Add") == 8 and ops.count("Relu") == 17
    assert ops[-3:] == ["GlobalAveragePool", "Flatten", "Gemm"]
    assert all(len(n.input) == 3 for n in resnet18.graph.node if n.op_type == "Conv")
    assert [n.name for n in resnet18.graph.node] == [f"{op}_{i}" for i, op in enumerate(ops)]


# ResNet-50 names published from a torch 1.13 export (an FPGA network header generated from
# it): conv index -> weight id; relu/add index -> output id; block outputs input.<k>.
RESNET50_WEIGHTS = {0: 497, 3: 500, 7: 506, 8: 509, 30: 539, 59: 578, 80: 605}
RESNET50_OUTPUTS = {
    "Relu_1": "onnx::MaxPool_323", "MaxPool_2": "input.8", "Relu_4": "onnx::Conv_327",
    "Conv_8": "onnx::Add_508", "Add_9": "onnx::Relu_335", "Relu_10": "input.36",
    "Relu_17": "input.60", "Relu_24": "input.84", "Relu_28": "onnx::Conv_362",
    "Conv_30": "onnx::Add_538", "Relu_32": "input.112", "Relu_53": "input.184",
    "Conv_59": "onnx::Add_577", "Relu_61": "input.212", "Relu_79": "onnx::Conv_436",
    "Add_117": "onnx::Relu_491", "Relu_118": "input.408", "Flatten_120": "onnx::Gemm_494",
    "Gemm_121": "495",
}


def test_resnet50_names_match_the_exporter(resnet50: onnx.ModelProto) -> None:
    by_name = {n.name: n for n in resnet50.graph.node}
    assert len(by_name) == 122
    for index, weight in RESNET50_WEIGHTS.items():
        assert by_name[f"Conv_{index}"].input[1] == f"onnx::Conv_{weight}"
    for node, tensor in RESNET50_OUTPUTS.items():
        assert by_name[node].output[0] == tensor, node
    ops = [n.op_type for n in resnet50.graph.node]
    assert ops.count("Conv") == 53 and ops.count("Add") == 16 and "BatchNormalization" not in ops
    # bottleneck v1.5: the stride is on the 3x3 convolution
    strided = [n.name for n in resnet50.graph.node if n.op_type == "Conv"
               and any(a.name == "strides" and list(a.ints) == [2, 2] for a in n.attribute)]
    assert strided == ["Conv_0", "Conv_27", "Conv_30", "Conv_56", "Conv_59", "Conv_99", "Conv_102"]

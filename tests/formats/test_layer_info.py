"""Engine layer information JSON -> actual plans (fusionlab.formats.layer_info).

Real engines: records/trex-resnet18-a100/{fp32,fp16}/engine.graph.json (TensorRT
8.x, A100, batch 32). Small files in data/ re-express parts of those records in the other
formats TensorRT writes:

- ``names_only.layers.json``: the fp32 record's layer names alone, as the inspector writes
  them with the default ``kLAYER_NAMES_ONLY`` profiling verbosity (TensorRT docs,
  ``EngineInspector``; the layout of NVIDIA/TensorRT#4020).
- ``metadata.layers.json``: fp32 layers 0-7 with the ``Metadata`` field of TensorRT 8.6+
  (``[ONNX Layer: X]`` items joined by raw ``\\x1E``, one layer by ``\\x1F``; TREx
  ``fix_unicode``, NVIDIA/TensorRT#2779); layer 4 renamed ``Conv_5`` the way names omit
  fused nodes (records/README.md, "Reading layer names").
- ``trt11.layers.json``: fp16 layers 0-3 and 32-35 in the TensorRT 11.x schema, after
  NVIDIA's "Migrating IEngineInspector Usage from TensorRT 10.x to 11.x" (docs.nvidia.com/
  deeplearning/tensorrt/11.0.0/api/migration/tensorrt-10x-to-11x-IEngineInspector.html):
  ``Bindings`` replaced by ``I/O Tensors`` objects (``Name``, ``IOMode``, ``DataType``,
  ``Dimensions``, ``Location``, ``IsShapeInferenceIO``, ``ProfileInfo`` with
  ``Min/Opt/MaxShape`` and ``Format``) and the ``Format/Datatype`` field split into
  ``Format`` and ``DataType``. The page's excerpt shows the ``I/O Tensors`` objects; the
  split layer fields are written as named there, with the data type left out of ``Format``
  so that the reader must take it from ``DataType``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from onnx import helper

from fusionlab import zoo
from fusionlab.errors import FusionlabError
from fusionlab.formats.trtexec import (
    is_inserted,
    metadata_nodes,
    parse_engine_info,
    read_layer_info,
    split_layer_name,
)
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Elimination, How, Kind
from tests.conftest import OnnxKit
from tests.records import RESNET18 as RECORDS

DATA = Path(__file__).parent / "data"

EXPECTED_FP32_NODES = {
    "Conv_0 + Relu_1": ("Conv_0", "Relu_1"),
    "MaxPool_2": ("MaxPool_2",),
    "Conv_5 + Add_6 + Relu_7": ("Conv_5", "Add_6", "Relu_7"),
    "Conv_15": ("Conv_15",),
    "Conv_16 + Add_17 + Relu_18": ("Conv_16", "Add_17", "Relu_18"),
    "Conv_43 + Add_44 + Relu_45": ("Conv_43", "Add_44", "Relu_45"),
    "GlobalAveragePool_46": ("GlobalAveragePool_46",),
    "Gemm_48": ("Gemm_48",),
}


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    """The zoo's ResNet-18 (legacy-exporter node and tensor names), batch 32 as recorded."""
    return load(zoo.build("resnet18", batch=32))


def record(precision: str, name: str = "engine.graph.json") -> Path:
    return RECORDS / precision / name


# ---------------------------------------------------------------------------------------
# Recorded engines


@pytest.mark.parametrize(("precision", "layers", "inserted"), [("fp32", 32, 9), ("fp16", 36, 13)])
def test_record_layer_counts(precision: str, layers: int, inserted: int) -> None:
    plan = read_layer_info(record(precision))
    assert len(plan.layers) == layers
    assert sum(1 for layer in plan.layers if layer.nodes) == 23
    assert sum(1 for layer in plan.layers if layer.inserted) == inserted
    assert plan.source == "trtexec json"
    assert plan.target is None
    assert plan.precision == precision
    assert plan.batch == 32
    assert plan.eliminated == {}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_record_node_sets(precision: str) -> None:
    plan = read_layer_info(record(precision))
    nodes = {layer.name: layer.nodes for layer in plan.layers}
    for name, expected in EXPECTED_FP32_NODES.items():
        assert nodes[name] == expected
    # every computing layer's nodes are exactly its name's " + " tokens in these engines
    for layer in plan.layers:
        if layer.nodes:
            assert " + ".join(layer.nodes) == layer.name


def test_record_inserted_layers() -> None:
    plan = read_layer_info(record("fp32"))
    inserted = {layer.name: layer.kind for layer in plan.layers if layer.inserted}
    assert inserted == {
        "Reformatting CopyNode for Output Tensor 0 to MaxPool_2": "Reformat",
        "Reformatting CopyNode for Output Tensor 0 to Conv_10 + Add_11 + Relu_12": "NoOp",
        "Reformatting CopyNode for Output Tensor 0 to Conv_21 + Add_22 + Relu_23": "NoOp",
        "Reformatting CopyNode for Input Tensor 0 to Conv_35 + Relu_36": "NoOp",
        "Reformatting CopyNode for Input Tensor 0 to Conv_37": "NoOp",
        "Reformatting CopyNode for Input Tensor 0 to Conv_43 + Add_44 + Relu_45": "NoOp",
        "Reformatting CopyNode for Input Tensor 1 to Conv_43 + Add_44 + Relu_45": "NoOp",
        "Reformatting CopyNode for Input Tensor 0 to reshape_after_Gemm_48": "NoOp",
        "reshape_after_Gemm_48": "NoOp",
    }
    conv = next(layer for layer in plan.layers if layer.name == "Conv_43 + Add_44 + Relu_45")
    assert conv.kind is Kind.CONVOLUTION and conv.engine_type == "CaskConvolution"
    assert conv.inputs == (
        "Reformatted Input Tensor 0 to Conv_43 + Add_44 + Relu_45",
        "Reformatted Input Tensor 1 to Conv_43 + Add_44 + Relu_45",
    )
    assert conv.outputs == ("input.148",)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_record_with_zoo_resnet18_eliminates_flatten(precision: str, resnet18: Graph) -> None:
    plan = read_layer_info(record(precision), resnet18)
    assert plan.eliminated == {"Flatten_47": Elimination(How.UNNAMED, "named by no engine layer")}
    assert len(plan.covered) == len(resnet18) - 1 == 48
    nodes = {layer.name: layer.nodes for layer in plan.layers}
    assert {name: nodes[name] for name in EXPECTED_FP32_NODES} == EXPECTED_FP32_NODES
    assert sum(1 for layer in plan.layers if layer.nodes) == 23


# ---------------------------------------------------------------------------------------
# Names, metadata, inserted layers


def test_split_layer_name_forms() -> None:
    assert split_layer_name("Conv_0 + Relu_1") == ["Conv_0", "Relu_1"]
    assert split_layer_name("a + relu_a || b + relu_b") == ["a", "relu_a", "b", "relu_b"]
    assert split_layer_name("PWN(PWN(Sigmoid_3, Mul_4), Add_5)") == ["Sigmoid_3", "Mul_4", "Add_5"]
    assert split_layer_name("Conv_1 + PWN(Relu_2)") == ["Conv_1", "Relu_2"]
    assert split_layer_name("{ForeignNode[/a/MatMul.../b/Add]}") == [("/a/MatMul", "/b/Add")]
    assert split_layer_name("(Unnamed Layer* 12) [Shuffle]") == ["(Unnamed Layer* 12) [Shuffle]"]
    # unbalanced brackets fall back to splitting on the joiners
    assert split_layer_name("weird) + Relu_1") == ["weird)", "Relu_1"]


def test_metadata_separators() -> None:
    assert metadata_nodes("[ONNX Layer: a]\x1e[ONNX Layer: b]") == ("a", "b")
    mixed = "[ONNX Layer: a]\x1f[ONNX Layer: b]\x1e[ONNX Layer: c]"
    assert metadata_nodes(mixed) == ("a", "b", "c")
    assert metadata_nodes("[ONNX Layer: a][ONNX Layer: b]") == ("a", "b")
    assert metadata_nodes("[ONNX Layer: /model/conv [0]]") == ("/model/conv [0]",)
    assert metadata_nodes(None) == ()


@pytest.mark.parametrize(
    ("name", "layer_type", "expected"),
    [
        ("Reformatting CopyNode for Input Tensor 0 to Conv_5", None, True),
        ("conv1/7x7_s2 + conv1/relu_7x7 input reformatter 0", None, True),
        ("pool2/3x3_s2 output reformatter 0", None, True),
        ("inception_3a/1x1 copy", None, True),
        ("reshape_after_Gemm_48", "NoOp", True),
        ("anything", "Reformat", True),
        ("Conv_0 + Relu_1", "CaskConvolution", False),
        ("Gemm_48", None, False),
    ],
)
def test_inserted_layers(name: str, layer_type: str | None, expected: bool) -> None:
    assert is_inserted(name, layer_type) is expected


def test_names_only_layers() -> None:
    plan = read_layer_info(DATA / "names_only.layers.json")
    assert len(plan.layers) == 32
    assert sum(1 for layer in plan.layers if layer.nodes) == 23
    nodes = {layer.name: layer.nodes for layer in plan.layers}
    assert nodes["Conv_16 + Add_17 + Relu_18"] == ("Conv_16", "Add_17", "Relu_18")
    assert nodes["reshape_after_Gemm_48"] == ()  # TensorRT-made name, no LayerType to go by
    kinds = {layer.name: layer.kind for layer in plan.layers}
    assert kinds["Reformatting CopyNode for Input Tensor 0 to Conv_37"] == "Reformat"
    assert kinds["Conv_15"] == "Unknown"
    assert plan.precision == "unknown"
    assert plan.batch is None
    assert read_layer_info(DATA / "names_only.layers.json", precision="fp32").precision == "fp32"


def test_names_only_with_graph_takes_batch_from_graph(resnet18: Graph) -> None:
    plan = read_layer_info(DATA / "names_only.layers.json", resnet18)
    assert plan.batch == 32
    assert plan.eliminated == {"Flatten_47": Elimination(How.UNNAMED, "named by no engine layer")}


def test_metadata_gives_nodes_that_names_omit() -> None:
    path = DATA / "metadata.layers.json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text())  # raw separators: strict JSON refuses the file
    plan = read_layer_info(path)
    nodes = {layer.name: layer.nodes for layer in plan.layers}
    assert nodes["Conv_5"] == ("Conv_5", "Add_6", "Relu_7")
    assert nodes["Conv_10 + Add_11 + Relu_12"] == ("Conv_10", "Add_11", "Relu_12")
    assert nodes["Reformatting CopyNode for Output Tensor 0 to MaxPool_2"] == ()


def test_tensors_give_nodes_that_names_omit(resnet18: Graph) -> None:
    """Without Metadata, a layer named after its convolution alone still computes the
    Add and ReLU between its ONNX input and output tensors."""
    doc = json.loads(record_text_or_skip("fp32"))
    doc["Layers"][4]["Name"] = "Conv_5"  # was "Conv_5 + Add_6 + Relu_7"
    plan = read_layer_info(json.dumps(doc), resnet18)
    assert plan.layers[4].nodes == ("Conv_5", "Add_6", "Relu_7")
    assert "Add_6" not in plan.eliminated
    # MaxPool_2 writes a reformatted tensor: the reformat after it leads back to input.8
    assert plan.layers[1].nodes == ("MaxPool_2",)
    # without the graph, only the name speaks
    assert read_layer_info(json.dumps(doc)).layers[4].nodes == ("Conv_5",)


def record_text_or_skip(precision: str) -> str:
    if not RECORDS.is_dir():
        pytest.skip(f"recorded engines not found at {RECORDS}")
    return record(precision).read_text()


def test_trt11_schema() -> None:
    info = parse_engine_info(DATA / "trt11.layers.json")
    assert [io.name for io in info.io] == ["input.1", "191"]
    assert [io.mode for io in info.io] == ["Input", "Output"]
    assert info.io[0].dims == (32, 3, 224, 224)  # dynamic batch: the profile's OptShape
    conv = info.layers[1]
    assert conv.inputs[0].dtype == "fp16"  # from DataType: Format no longer names the type
    assert conv.inputs[0].format == "Channel major format where channel % 4 == 0"
    plan = read_layer_info(DATA / "trt11.layers.json")
    assert [layer.nodes for layer in plan.layers] == [
        (), ("Conv_0", "Relu_1"), ("MaxPool_2",), ("Conv_3", "Relu_4"), ("Gemm_48",), (), (), ()
    ]
    assert plan.precision == "fp16"
    assert plan.batch == 32


# ---------------------------------------------------------------------------------------
# Graph-driven resolution on a small model


def head_model(kit: OnnxKit) -> Graph:
    """ResNet-18's head with the recorded node and tensor names.

        input.148 -> GlobalAveragePool_46 -> onnx::Flatten_189 -> Flatten_47
                  -> onnx::Gemm_190 -> Gemm_48 (fc.weight, fc.bias) -> 191
    """
    nodes = [
        helper.make_node("GlobalAveragePool", ["input.148"], ["onnx::Flatten_189"],
                         name="GlobalAveragePool_46"),
        helper.make_node("Flatten", ["onnx::Flatten_189"], ["onnx::Gemm_190"],
                         name="Flatten_47", axis=1),
        helper.make_node("Gemm", ["onnx::Gemm_190", "fc.weight", "fc.bias"], ["191"],
                         name="Gemm_48", transB=1),
    ]
    model = kit.model(
        nodes,
        [kit.value("input.148", [32, 8, 7, 7])],
        [kit.value("191", [32, 10])],
        [kit.weight("fc.weight", [10, 8]), kit.weight("fc.bias", [10])],
    )
    return load(model)


HEAD_LAYERS = {
    "Layers": [
        {"Name": "GlobalAveragePool_46", "LayerType": "CaskPooling",
         "Inputs": [{"Name": "input.148"}], "Outputs": [{"Name": "onnx::Flatten_189"}]},
        {"Name": "Gemm_48", "LayerType": "CaskConvolution",
         "Inputs": [{"Name": "onnx::Flatten_189"}], "Outputs": [{"Name": "Gemm_48_out_region"}]},
        {"Name": "reshape_after_Gemm_48", "LayerType": "NoOp",
         "Inputs": [{"Name": "Gemm_48_out_region"}], "Outputs": [{"Name": "191"}]},
    ],
    "Bindings": ["input.148", "191"],
}


def test_flatten_named_by_no_layer_is_eliminated(kit: OnnxKit) -> None:
    graph = head_model(kit)
    plan = read_layer_info(json.dumps(HEAD_LAYERS), graph)
    assert [layer.nodes for layer in plan.layers] == [("GlobalAveragePool_46",), ("Gemm_48",), ()]
    assert plan.eliminated == {"Flatten_47": Elimination(How.UNNAMED, "named by no engine layer")}
    assert plan.layers[2].inserted and plan.layers[2].kind is Kind.NOOP


def test_noop_layer_named_after_a_node_computes_it(kit: OnnxKit) -> None:
    graph = head_model(kit)
    doc = json.loads(json.dumps(HEAD_LAYERS))
    flatten = {"Name": "Flatten_47", "LayerType": "NoOp",
               "Inputs": [{"Name": "onnx::Flatten_189"}], "Outputs": [{"Name": "onnx::Gemm_190"}]}
    doc["Layers"].insert(1, flatten)
    doc["Layers"][2]["Inputs"] = [{"Name": "onnx::Gemm_190"}]
    plan = read_layer_info(json.dumps(doc), graph)
    assert plan.layers[1].nodes == ("Flatten_47",)
    assert plan.eliminated == {}
    # without a graph the type decides: a NoOp layer is inserted
    assert read_layer_info(json.dumps(doc)).layers[1].nodes == ()


def test_tokens_that_are_not_graph_nodes_are_dropped(kit: OnnxKit) -> None:
    graph = head_model(kit)
    doc = {"Layers": ["GlobalAveragePool_46 + (Unnamed Layer* 3) [Shuffle]",
                      "Gemm_48 + reshape_after_Gemm_48"]}
    plan = read_layer_info(json.dumps(doc), graph)
    assert [layer.nodes for layer in plan.layers] == [("GlobalAveragePool_46",), ("Gemm_48",)]
    # without a graph, TensorRT-made tokens are recognized by their form
    plan = read_layer_info(json.dumps(doc))
    assert [layer.nodes for layer in plan.layers] == [("GlobalAveragePool_46",), ("Gemm_48",)]


def test_foreign_node_expands_through_onnx_order(resnet18: Graph) -> None:
    doc = {"Layers": ["{ForeignNode[Conv_0...MaxPool_2]}", "Conv_3 + Relu_4"]}
    plan = read_layer_info(json.dumps(doc), resnet18)
    assert plan.layers[0].nodes == ("Conv_0", "Relu_1", "MaxPool_2")
    assert read_layer_info(json.dumps(doc)).layers[0].nodes == ("Conv_0", "MaxPool_2")


def test_profile_suffix_duplicates_and_sync_layers() -> None:
    doc = {
        "Layers": [
            {"Name": "Conv_0", "LayerType": "CaskConvolution"},
            {"Name": "stream sync", "LayerType": "signal"},
            {"Name": "Conv_0", "LayerType": "CaskConvolution"},
            {"Name": "Conv_0 [profile 1]", "LayerType": "CaskConvolution"},
        ]
    }
    plan = read_layer_info(json.dumps(doc))
    assert [layer.name for layer in plan.layers] == ["Conv_0", "stream sync", "Conv_0_2"]
    sync = plan.layers[1]  # kept, so drawings and diffs can say "sync"; computes nothing
    assert sync.kind is Kind.SYNC and sync.inserted and sync.engine_type == "signal"


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('[{"count": 1}]', "not engine layer information"),
        ('{"Layers": 3}', "'Layers' must be a list"),
        ('{"Layers": [{"LayerType": "NoOp"}]}', "layer 0 has no name"),
        ('{"Layers": [{"Name": "a", "Inputs": [{"Dimensions": [1]}]}]}', "tensor without a name"),
    ],
)
def test_bad_documents(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(FusionlabError, match=message) as err:
        read_layer_info(path)
    assert str(err.value).startswith(str(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FusionlabError, match="no such file"):
        read_layer_info(tmp_path / "absent.json")


def test_layout_op_inside_a_layer_counts_as_eliminated(kit: OnnxKit) -> None:
    """A fully connected layer that reads the Flatten's input and writes the Gemm's output
    covers the Flatten by its tensors; a Flatten moves no data, so it is reported as
    eliminated (with the layer that spans it), not as a node the layer computes."""
    graph = head_model(kit)
    doc = json.loads(json.dumps(HEAD_LAYERS))
    doc["Layers"][1]["Outputs"] = [{"Name": "191"}]
    del doc["Layers"][2]
    plan = read_layer_info(json.dumps(doc), graph)
    assert plan.layers[1].nodes == ("Gemm_48",)
    assert plan.eliminated == {
        "Flatten_47": Elimination(
            How.ABSORBED, "named by no engine layer (a layout change inside layer 'Gemm_48')")
    }

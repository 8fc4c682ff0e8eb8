"""TensorRT-RTX build logs (:mod:`fusionlab.formats.rtx_log`): the parser, on messages printed
the way TensorRT-RTX 1.7 prints them (with hostile names), on real logs, and the conversion
to layer information JSON and to the actual plan.

Real logs (``data/rtx/``, TensorRT-RTX 1.7.1.116 on a CPU-only machine, in the
``===== Severity.LEVEL`` dump format): the zoo's ``inception3a``; ``cbr_single_out`` (a conv
listed by the ``correlation`` and by the ``kgen`` its bias moved into); ``split_two_convs``
(one ``Slic`` kernel per Split output, each listing the Split); ``lrn_after_conv_relu`` (LRN
as three kernels) and the same model with every node and tensor renamed to hostile names
(``.format``, ``.newline``, ``.unicode``, ``.punct``: node ``i`` is ``<pool[i]>#i``).
"""

from __future__ import annotations

import collections
import random
from pathlib import Path

import pytest

from fusionlab import zoo
from fusionlab.errors import FusionlabError
from fusionlab.formats import rtx_log
from fusionlab.formats.layer_info import read_layer_info
from fusionlab.formats.rtx_log import EngineLayer, IOTensor, TensorDesc
from fusionlab.ir.graph import load
from fusionlab.plan import Kind
from fusionlab.plan.serialize import plan_from_json, plan_to_json

DATA = Path(__file__).parent / "data" / "rtx"
BUILDER = "TensorRT-RTX 1.7.1.116"
REAL = sorted(p for p in DATA.glob("*.log") if p.stem.count(".") == 0)
HOSTILE_LOGS = sorted(p for p in DATA.glob("*.*.log"))


# ---------------------------------------------------------------------------------------
# A printer: messages as TensorRT-RTX 1.7 prints them


def _ints(xs: tuple[int, ...]) -> str:
    return "[" + ",".join(str(x) for x in xs) + "]"


def fmt_tensor(t: TensorDesc) -> str:
    return (f"{{ Name: {t.name}, Dimensions: {_ints(t.dims)}, Strides: {_ints(t.strides)}, "
            f"StrideOrder: {_ints(t.stride_order)}, Datatype: {t.dtype}, Format: {t.format} }}")


def fmt_list(ts: tuple[TensorDesc, ...]) -> str:
    return "[]" if not ts else "[ " + ", ".join(fmt_tensor(t) for t in ts) + "]"


def fmt_layer(layer: EngineLayer) -> str:
    ev = "" if layer.event_id is None else f"EventId: {layer.event_id}, "
    return (f"Name: {layer.name}, LayerType: {layer.layer_type}, Inputs: {fmt_list(layer.inputs)}, "
            f"Constants: {fmt_list(layer.constants)}, Outputs: {fmt_list(layer.outputs)}, "
            f"TacticName: {layer.tactic}, StreamId: {layer.stream_id}, {ev}Metadata: {layer.metadata_text}")


def fmt_message(layers: list[EngineLayer], io: list[IOTensor]) -> str:
    out = "Layers:\n" + "\n".join(fmt_layer(x) for x in layers) + "\n"
    if io:
        out += "\nI/O Tensors:\n"
        for t in io:
            out += (f" Name: {t.name}, IOMode: {t.io_mode}, DataType: {t.dtype}, Dimensions: "
                    f"{_ints(t.dims)}, Location: {t.location}, IsShapeInferenceIO: "
                    f"{'true' if t.is_shape_inference_io else 'false'}, ProfileInfo: {t.profile_info}\n")
        out += "\nEngine Metadata:\n Multi-Device: Disabled"
    return out


HOSTILE = [
    "plain", "a,b", "x[0]", "{k: v}", '"quoted"', "it's", "(p)", "semi;colon", "back\\slash",
    "line\nbreak", "\nName: n", "two\n\nlines", "tab\t", "cr\rlf", "end\n", "ünï名前🙂",
    ", LayerType: kgen", "}, { Name: t", "][ONNX Layer: fake]", ", Metadata: ",
    ", StreamId: 3", "[ONNX Layer: x]", "Dimensions: [1,2]", ", TacticName: z", "]", "[",
    "\n\nI/O Tensors:\n", ", Inputs: [", "]], Constants: [", "a]b", ": ", "",
]
"""Names holding the separators and keywords of the format."""


def rand_tensor(r: random.Random, name: str) -> TensorDesc:
    nd = r.randint(0, 4)
    dims = tuple(r.randint(1, 64) for _ in range(nd))
    return TensorDesc(name, dims, dims, tuple(range(nd)), r.choice(["Float", "Half", "Int8"]),
                      r.choice(["(NHWC) Channel major format", "(Linear) Row major linear format"]))


def rand_layer(r: random.Random, i: int) -> EngineLayer:
    def h() -> str:
        return r.choice(HOSTILE) + r.choice(["", str(r.randint(0, 9))])

    nodes = [(rtx_log.ONNX_LAYER_KEY, h() or "n") for _ in range(r.randint(0, 4))]
    return EngineLayer(
        index=i,
        name=h() + f"_myl0_{i}",
        layer_type=r.choice(["kgen", "correlation", "runtime_fusion", "signal", "gemm"]),
        inputs=tuple(rand_tensor(r, h()) for _ in range(r.randint(0, 3))),
        constants=tuple(rand_tensor(r, h()) for _ in range(r.randint(0, 2))),
        outputs=tuple(rand_tensor(r, h()) for _ in range(r.randint(0, 2))),
        tactic=r.choice(["", "__myelin_CASK_STUB", "__myl_Tran_0xabc"]),
        stream_id=r.randint(0, 3),
        event_id=r.choice([None, r.randint(0, 9)]),
        metadata=tuple(nodes),
        metadata_suffix=r.choice(["", "", "__gemm_from_conv1x1"]) if nodes else "",
    )


# ---------------------------------------------------------------------------------------
# The grammar


def test_split_dump() -> None:
    text = "===== Severity.INFO\nhello\n===== Severity.VERBOSE\na\nb\n===== Severity.VERBOSE\n\n"
    assert rtx_log.split_dump(text) == [
        ("Severity.INFO", "hello"), ("Severity.VERBOSE", "a\nb"), ("Severity.VERBOSE", "")]
    msgs = [("Severity.VERBOSE", "x\r\ny"), ("Severity.INFO", "")]
    assert rtx_log.split_dump(rtx_log.dump_text(msgs)) == msgs


def test_plain_layer() -> None:
    msg = ("Layers:\nName: conv1_U0_myl0_1, LayerType: correlation, Inputs: [ { Name: x, "
           "Dimensions: [1,3,8,8], Strides: [192,64,8,1], StrideOrder: [3,2,1,0], Datatype: "
           "Float, Format: (Linear) Row major linear format }], Constants: [], Outputs: [], "
           "TacticName: __myelin_CASK_STUB, StreamId: 2, EventId: 4, Metadata: "
           "[ONNX Layer: conv1]\x1f[ONNX Layer: relu1]\x1f[ONNX Layer: conv1]\n")
    (layer,), io = rtx_log.parse_layers(msg)
    assert io == []
    assert layer.name == "conv1_U0_myl0_1" and layer.layer_type == "correlation"
    assert layer.inputs[0].dims == (1, 3, 8, 8) and layer.inputs[0].strides == (192, 64, 8, 1)
    assert layer.stream_id == 2 and layer.event_id == 4
    assert layer.onnx_nodes == ("conv1", "relu1")  # in order, once each
    assert len(layer.metadata) == 3  # the duplicate is kept in the raw entries


def test_metadata_suffix() -> None:
    """fp16 1x1 convolutions lowered to GEMM carry a free tag after the last entry."""
    msg = ("Layers:\nName: a, LayerType: runtime_fusion, Inputs: [], Constants: [], "
           "Outputs: [], TacticName: , StreamId: 0, Metadata: [ONNX Layer: Conv_54]\x1f"
           "[ONNX Layer: Relu_55]__gemm_from_conv1x1\nName: b, LayerType: kgen, Inputs: [], "
           "Constants: [], Outputs: [], TacticName: , StreamId: 0, Metadata: \n")
    a, b = rtx_log.parse_layers(msg)[0]
    assert a.onnx_nodes == ("Conv_54", "Relu_55") and a.metadata_suffix == "__gemm_from_conv1x1"
    assert b.name == "b" and b.onnx_nodes == ()


@pytest.mark.parametrize("seed", range(40))
def test_hostile_names_round_trip(seed: int) -> None:
    r = random.Random(seed)
    layers = [rand_layer(r, i) for i in range(r.randint(0, 8))]
    io = [IOTensor(r.choice(HOSTILE) or "in", "Input", "Float", (1, 3), "Device", False,
                   (1, 3), (1, 3), (1, 3), "Row major linear FP32 format (kLINEAR)",
                   "[ { MinShape: [1,3], OptShape: [1,3], MaxShape: [1,3], Format: Row "
                   "major linear FP32 format (kLINEAR) }]")]
    known = [v for layer in layers for _, v in layer.metadata]
    got, got_io = rtx_log.parse_layers(fmt_message(layers, io), known)
    assert got == layers
    assert got_io == io


def test_memory_passes_and_parsed_nodes() -> None:
    msgs = [
        ("Severity.VERBOSE", "Original: 20 layers"),
        ("Severity.VERBOSE", "After dead-layer removal: 20 layers"),
        ("Severity.VERBOSE", "After Myelin optimization: 1 layers"),
        ("Severity.VERBOSE", "Layer: {ForeignNode[a, b...c]} Host Persistent: 80 bytes "
                             "Device Persistent: 0 bytes Scratch Memory: 123 bytes"),
        ("Severity.INFO", "Total Activation Memory: 456 bytes"),
        ("Severity.VERBOSE", "Parsing node: we,ird [Conv]"),
    ]
    log = rtx_log.parse_messages(msgs)
    assert log.original_layers == 20
    assert [p.name for p in log.passes] == ["Original", "dead-layer removal", "Myelin optimization"]
    assert log.memory == [rtx_log.LayerMemory("{ForeignNode[a, b...c]}", 80, 0, 123)]
    assert log.totals == {"Total Activation Memory": 456}
    assert log.parsed_nodes == [rtx_log.ParsedNode("we,ird", "Conv")]
    assert not log.layers_found
    with pytest.raises(FusionlabError, match="no 'Layers:' message"):
        rtx_log.to_plan(log, builder=BUILDER)


def test_unit_separator_in_a_name_is_mangled_by_tensorrt() -> None:
    """A node name holding U+001F (the Metadata separator) is mangled by TensorRT-RTX itself
    (seen: ``[ONNX Layer: a]\\x1fsep#11]`` for a node ``us\\x1fsep#11``): not recoverable."""
    got = rtx_log._metadata("[ONNX Layer: emoji#2]\x1fsep#11]", frozenset({"emoji#2", "us\x1fsep#11"}))
    assert got is not None and got[0] == (("ONNX Layer", "emoji#2]\x1fsep#11"),)


def test_a_layer_record_inside_a_name_is_resolved() -> None:
    fake = ("x\nName: y, LayerType: kgen, Inputs: [], Constants: [], Outputs: [], "
            "TacticName: , StreamId: 0, Metadata: ")
    layer = EngineLayer(0, fake, "kgen", (), (), (), "", 0, None, ())
    assert rtx_log.parse_layers(fmt_message([layer], []))[0] == [layer]


def test_a_name_that_completes_a_layer_is_ambiguous() -> None:
    """The one input the format cannot disambiguate: a name that ends a valid layer record
    and starts another. Both readings parse; the parser takes the shortest pieces."""
    fake = ("x, LayerType: kgen, Inputs: [], Constants: [], Outputs: [], TacticName: , "
            "StreamId: 0, Metadata: \nName: y")
    layer = EngineLayer(0, fake, "kgen", (), (), (), "", 0, None, ())
    assert [x.name for x in rtx_log.parse_layers(fmt_message([layer], []))[0]] == ["x", "y"]


def test_a_broken_layers_message_is_a_warning_then_an_error() -> None:
    log = rtx_log.parse_messages(["Layers:\nName: a, LayerType: kgen, Inputs: [ {"])
    assert log.layers_found and log.warnings and not log.layers
    with pytest.raises(FusionlabError, match="cannot read the build log's layers"):
        rtx_log.to_plan(log, builder=BUILDER, what="m.onnx")


# ---------------------------------------------------------------------------------------
# Real logs


@pytest.mark.parametrize("path", REAL + HOSTILE_LOGS, ids=lambda p: p.name)
def test_real_log(path: Path) -> None:
    log = rtx_log.read_dump(path)
    assert log.layers_found and not log.warnings
    assert log.layers and log.original_layers
    known = {n.name for n in log.parsed_nodes}
    for layer in log.layers:
        assert set(layer.onnx_nodes) <= known, (layer.name, layer.onnx_nodes)
        assert layer.layer_type.isidentifier()
    assert {t.io_mode for t in log.io_tensors} == {"Input", "Output"}


def test_inception3a_facts() -> None:
    log = rtx_log.read_dump(DATA / "inception3a.log")
    assert log.original_layers == 20
    assert len(log.layers) == 16 and len(log.compute_layers) == 8 and len(log.sync_layers) == 7
    assert [x.layer_type for x in log.inserted_layers] == ["kgen"]
    concat = log.compute_layers[-1]
    assert concat.layer_type == "kgen" and "inception_3a/output" in concat.onnx_nodes
    assert len(concat.onnx_nodes) == 9 and len(concat.inputs) == 4
    assert log.io_tensors[0].name == "data" and log.io_tensors[0].opt_shape == (1, 192, 28, 28)
    assert log.memory and log.memory[0].scratch > 0
    assert {x.stream_id for x in log.layers} == {0, 1, 2}  # the main stream and two aux streams


def _grouping(log: rtx_log.BuildLog, rename: dict[str, str]) -> collections.Counter[tuple[str, frozenset[str]]]:
    return collections.Counter((x.layer_type, frozenset(rename.get(n, "?" + n) for n in x.onnx_nodes))
                               for x in log.layers if not x.is_sync)


@pytest.mark.parametrize("path", HOSTILE_LOGS, ids=lambda p: p.name)
def test_hostile_names_read_as_the_plain_build(path: Path) -> None:
    """The same model with hostile node and tensor names: the same kernels over the same
    nodes (node ``i`` of one is node ``i`` of the other, in the parser's message order)."""
    log = rtx_log.read_dump(path)
    plain = rtx_log.read_dump(DATA / f"{path.name.split('.')[0]}.log")
    rename = {h.name: p.name for h, p in zip(log.parsed_nodes, plain.parsed_nodes, strict=True)}
    assert _grouping(log, rename) == _grouping(plain, {n: n for n in rename.values()})
    assert len(log.layers) == len(plain.layers)
    # and the plan reads back through its JSON exactly, names and all
    plan = rtx_log.to_plan(log, builder=BUILDER)
    assert read_layer_info(rtx_log.layer_info_json(log, builder=BUILDER)) == plan
    assert [layer.nodes for layer in plan.layers if layer.nodes] == [
        x.onnx_nodes for x in log.layers if x.onnx_nodes]


# ---------------------------------------------------------------------------------------
# Layer information JSON and the actual plan


def test_inception3a_plan_and_its_json() -> None:
    log = rtx_log.read_dump(DATA / "inception3a.log")
    graph = load(zoo.build("inception3a"), batch=1)
    plan = rtx_log.to_plan(log, graph, builder=BUILDER)
    assert plan.source == "TensorRT-RTX 1.7.1.116 build log" and plan.batch == 1
    assert plan.precision == "fp32" and not plan.eliminated
    assert [layer.engine_type for layer in plan.layers] == [x.layer_type for x in log.layers]
    kinds = collections.Counter(layer.kind for layer in plan.layers)
    assert kinds == {Kind.SYNC: 7, Kind.CONVOLUTION: 4, Kind.FUSED: 2, Kind.POINTWISE: 2, Kind.POOLING: 1}
    assert all(layer.inserted for layer in plan.layers if layer.kind is Kind.SYNC)
    assert [layer.stream for layer in plan.layers] == [x.stream_id for x in log.layers]
    assert {layer.stream for layer in plan.layers} == {0, 1, 2}
    assert plan_from_json(plan_to_json(plan)) == plan
    doc = rtx_log.layer_info(log, graph, builder=BUILDER)
    first = doc["Layers"][0]
    assert first["Inputs"][0]["Format"] == "(Linear) Row major linear format"
    assert first["Inputs"][0]["DataType"] == "Float" and "Format/Datatype" not in first["Inputs"][0]
    assert [t["IOMode"] for t in doc["I/O Tensors"]] == ["Input", "Output"]
    assert doc["I/O Tensors"][0]["ProfileInfo"][0]["OptShape"] == [1, 192, 28, 28]
    assert doc["fusionlab"]["builder"] == BUILDER and doc["fusionlab"]["original_layers"] == 20
    text = rtx_log.layer_info_json(log, graph, builder=BUILDER)
    assert read_layer_info(text, graph) == plan
    assert read_layer_info(text) == plan  # the extras keep what the graph gave
    assert read_layer_info(rtx_log.layer_info_json(log, builder=BUILDER)) == rtx_log.to_plan(log, builder=BUILDER)


def test_a_node_in_several_kernels_stays_in_each() -> None:
    cbr = rtx_log.to_plan(rtx_log.read_dump(DATA / "cbr_single_out.log"), builder=BUILDER)
    assert [layer.nodes for layer in cbr.layers if layer.nodes] == [("conv",), ("bn", "conv", "relu")]
    split = rtx_log.to_plan(rtx_log.read_dump(DATA / "split_two_convs.log"), builder=BUILDER)
    assert [layer.engine_type for layer in split.layers if "split" in layer.nodes] == ["kgen", "kgen"]
    lrn = rtx_log.to_plan(rtx_log.read_dump(DATA / "lrn_after_conv_relu.log"), builder=BUILDER)
    assert sum("lrn" in layer.nodes for layer in lrn.layers) == 3


def test_kernel_names_are_never_read_as_nodes() -> None:
    """A kernel without Metadata (a layout move) computes nothing, whatever its name says."""
    msg = ("Layers:\nName: conv1, LayerType: kgen, Inputs: [], Constants: [], Outputs: [], "
           "TacticName: , StreamId: 0, Metadata: ")
    (layer,) = rtx_log.to_plan(rtx_log.parse_messages([msg]), builder=BUILDER).layers
    assert layer.inserted and layer.kind is Kind.POINTWISE


def test_a_saved_build_log_reads_as_layer_information(tmp_path: Path) -> None:
    import fusionlab

    graph = load(zoo.build("inception3a"), batch=1)
    from_log = rtx_log.read_engine_layers(DATA / "inception3a.log", graph)
    assert from_log.source == "TensorRT-RTX build log"  # a saved log does not say its version
    assert fusionlab.read_engine(DATA / "inception3a.log", graph=graph) == from_log
    doc = tmp_path / "layers.json"
    doc.write_text(rtx_log.layer_info_json(rtx_log.read_dump(DATA / "inception3a.log"), graph,
                                           builder="TensorRT-RTX"), encoding="utf-8")
    assert rtx_log.read_engine_layers(doc, graph) == from_log

"""The graph IR: names, order, edges, shapes at a batch, weights, freezing, opaque nodes."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionlab.errors import FusionlabError
from fusionlab.ir.graph import load
from fusionlab.ir.tensors import Tensor, Weight


def small_cnn(kit: Any, batch: int | str | None = "N") -> onnx.ModelProto:
    """
    x[B,3,8,8] ── Conv(W[4,3,3,3], B[4], pad 1) ── c[B,4,8,8] ── Relu ── r
        ── GlobalAveragePool ── p[B,4,1,1] ── Flatten ── f[B,4]
        ── Gemm(fc.w[10,4], fc.b[10], transB) ── y[B,10]
    """
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], name="fc", transB=1),
    ]
    inits = [kit.weight("W", [4, 3, 3, 3]), kit.weight("B", [4]),
             kit.weight("fc.w", [10, 4]), kit.weight("fc.b", [10])]
    inputs, outputs = [kit.value("x", [batch, 3, 8, 8])], [kit.value("y", [batch, 10])]
    return kit.model(nodes, inputs, outputs, inits)


# ---------------------------------------------------------------- batch and shapes


def test_symbolic_batch_is_fixed_before_shape_inference(kit: Any) -> None:
    g = load(small_cnn(kit, "N"), batch=32)
    assert g.batch == 32
    assert g.inputs == (Tensor("x", (32, 3, 8, 8), "float32"),)
    assert g.outputs == (Tensor("y", (32, 10), "float32"),)
    assert g.tensors["c"].shape == (32, 4, 8, 8)
    assert g.tensors["p"].shape == (32, 4, 1, 1)
    assert g.tensors["f"].shape == (32, 4)
    # Conv: 32*4*8*8 = 8192 outputs, each 2*3*3*3 = 54 FLOPs + 1 bias add
    assert g.node("conv").cost.flops == 8192 * (54 + 1)
    # Gemm: M=32, N=10, K=4 -> 2*32*10*4 + 320 bias adds
    assert g.node("fc").cost.flops == 2 * 32 * 10 * 4 + 320


def test_without_batch_the_symbol_stays_and_flops_are_unknown(kit: Any) -> None:
    g = load(small_cnn(kit, "N"))
    assert g.batch is None
    assert g.tensors["c"].shape == ("N", 4, 8, 8)
    conv = g.node("conv").cost
    assert conv.flops is None and conv.note == "FLOPs unknown: shapes not inferred"


def test_dynamic_batch_without_a_name_is_fixed_too(kit: Any) -> None:
    g = load(small_cnn(kit, None), batch=32)
    assert g.tensors["y"].shape == (32, 10)


def test_fixed_batch_asked_for_another_batch_is_a_clear_error(kit: Any) -> None:
    model = small_cnn(kit, 1)
    with pytest.raises(FusionlabError, match=r"input 'x' has a fixed batch of 1; --batch 32"):
        load(model, batch=32)
    assert load(model, batch=1).tensors["y"].shape == (1, 10)  # the same batch is fine


def test_a_fixed_auxiliary_input_beside_a_symbolic_batch_is_left_alone(kit: Any) -> None:
    """
    x[N,4] ──┐
             ├─ Mul ── y[N,4]
    s[1,4] ──┘   (s: a per-model input, not batched)
    """
    nodes = [helper.make_node("Mul", ["x", "s"], ["y"])]
    model = kit.model(nodes, [kit.value("x", ["N", 4]), kit.value("s", [1, 4])],
                      [kit.value("y", ["N", 4])])
    g = load(model, batch=8)
    assert [t.shape for t in g.inputs] == [(8, 4), (1, 4)]
    assert g.outputs[0].shape == (8, 4)
    assert g.node("Mul_0").cost.flops == 32


def test_load_does_not_change_the_callers_model(kit: Any) -> None:
    model = small_cnn(kit, "N")
    before = model.SerializeToString()
    load(model, batch=4)
    assert model.SerializeToString() == before


def test_batch_below_one_is_refused(kit: Any) -> None:
    with pytest.raises(FusionlabError, match="at least 1"):
        load(small_cnn(kit), batch=0)


# ---------------------------------------------------------------- names and order


def test_unnamed_nodes_are_named_optype_index(kit: Any) -> None:
    """x ── Relu ── a ── Sigmoid(named "act") ── b ── Relu ── y"""
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Sigmoid", ["a"], ["b"], name="act"),
             helper.make_node("Relu", ["b"], ["y"])]
    g = load(kit.model(nodes, [kit.value("x", [2])], [kit.value("y", [2])]))
    assert g.order == ("Relu_0", "act", "Relu_2")
    assert [n.index for n in g.nodes()] == [0, 1, 2]
    assert g.node("Relu_2").op == "Relu"


def test_duplicate_names_are_made_unique(kit: Any) -> None:
    """x ── Relu "dup" ── a ── Relu "dup" ── b ── Relu "Relu_2" ... unnamed Relu ── y"""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="dup"),
             helper.make_node("Relu", ["a"], ["b"], name="dup"),
             helper.make_node("Relu", ["b"], ["c"], name="Relu_3"),
             helper.make_node("Relu", ["c"], ["y"])]  # would be Relu_3 too
    g = load(kit.model(nodes, [kit.value("x", [2])], [kit.value("y", [2])]))
    assert len(set(g.order)) == 4
    assert g.order[:3] == ("dup", "dup_1", "Relu_3")
    assert g.order[3] not in ("dup", "dup_1", "Relu_3")
    assert g.node(g.order[3]).index == 3


def test_unsorted_node_list_loads_in_topological_order_with_shapes(kit: Any) -> None:
    """
    file order:  [0] Sigmoid(t) -> y    [1] Relu(x) -> t
    graph:       x[N,4] ── Relu ── t ── Sigmoid ── y
    """
    nodes = [helper.make_node("Sigmoid", ["t"], ["y"]), helper.make_node("Relu", ["x"], ["t"])]
    g = load(kit.model(nodes, [kit.value("x", ["N", 4])], [kit.value("y", ["N", 4])]), batch=3)
    assert g.order == ("Relu_1", "Sigmoid_0")
    assert g.node("Sigmoid_0").index == 0  # indices stay the file's
    # shape inference saw the sorted graph: both tensors have shapes, so costs are known
    assert g.tensors["t"].shape == (3, 4)
    assert g.node("Sigmoid_0").cost.flops == 3 * 12
    assert list(nx.topological_sort(g.nx)) == list(g.order)
    assert g.model is not None and g.model.graph.node[0].op_type == "Sigmoid"


def test_diamond_order_follows_the_file_where_sorted(kit: Any) -> None:
    """
         ┌─ Relu "a" ─┐
    x ───┤            ├─ Add ── y
         └─ Tanh "b" ─┘
    """
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="a"),
             helper.make_node("Tanh", ["x"], ["b"], name="b"),
             helper.make_node("Add", ["a", "b"], ["y"], name="add")]
    g = load(kit.model(nodes, [kit.value("x", [2])], [kit.value("y", [2])]))
    assert g.order == ("a", "b", "add")
    assert g.consumers["x"] == ("a", "b")
    assert g.producer["y"] == "add"
    assert sorted(g.nx.predecessors("add")) == ["a", "b"]


# ---------------------------------------------------------------- edges and tensors


def test_edges_carry_tensor_shape_and_dtype(kit: Any) -> None:
    g = load(small_cnn(kit), batch=2)
    edge = g.nx.edges["conv", "relu"]
    assert edge["tensor"] == "c"
    assert edge["shape"] == (2, 4, 8, 8)
    assert edge["dtype"] == "float32"
    assert edge["tensors"] == (Tensor("c", (2, 4, 8, 8), "float32"),)
    assert g.nx.number_of_edges() == 4
    assert not g.nx.has_edge("relu", "conv")


def test_an_edge_with_two_tensors_lists_both(kit: Any) -> None:
    """x[1,4] ── Split(axis 1) ══ a[1,2], b[1,2] ══ Add ── y[1,2]"""
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1),
             helper.make_node("Add", ["a", "b"], ["y"])]
    g = load(kit.model(nodes, [kit.value("x", [1, 4])], [kit.value("y", [1, 2])]))
    edge = g.nx.edges["Split_0", "Add_1"]
    assert edge["tensor"] == "a"
    assert [t.name for t in edge["tensors"]] == ["a", "b"]
    assert {t.shape for t in edge["tensors"]} == {(1, 2)}
    assert g.node("Split_0").outputs == ("a", "b")


def test_node_fields_and_attributes(kit: Any) -> None:
    """x ── Conv(auto_pad SAME_UPPER) ── c ── LeakyRelu(alpha 0.25) ── y; Constant k ── (unused)"""
    small = numpy_helper.from_array(np.arange(4, dtype=np.int64), "k")
    big = numpy_helper.from_array(np.zeros((100, 100), np.float32), "big")
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], auto_pad="SAME_UPPER",
                              kernel_shape=[3, 3], strides=[1, 1]),
             helper.make_node("LeakyRelu", ["c"], ["y"], alpha=0.25),
             helper.make_node("Constant", [], ["k"], value=small),
             helper.make_node("Constant", [], ["kb"], value=big)]
    model = kit.model(nodes, [kit.value("x", [1, 2, 5, 5])],
                      [kit.value("y", None), kit.value("k", None), kit.value("kb", None)],
                      [kit.weight("W", [3, 2, 3, 3])])
    g = load(model)
    conv = g.node("Conv_0")
    assert conv.attrs == {"auto_pad": "SAME_UPPER", "kernel_shape": (3, 3), "strides": (1, 1)}
    assert conv.inputs == ("x", "W") and conv.outputs == ("c",) and conv.weights == ("W",)
    assert conv.domain == "" and not conv.opaque
    assert g.node("LeakyRelu_1").attrs["alpha"] == 0.25
    assert g.node("Constant_2").attrs["value"] == [0, 1, 2, 3]
    assert g.node("Constant_3").attrs["value"] == "<tensor float32 [100, 100]>"
    assert g.tensors["c"].shape == (1, 3, 5, 5)
    assert g.nx.nodes["Conv_0"]["op"] == "Conv"


def test_graph_summary_fields(kit: Any, tmp_path: Path) -> None:
    path = kit.save(small_cnn(kit), "cnn.onnx")
    g = load(path, batch=1)
    assert g.name == "cnn" and g.path == path and g.opset == 17
    assert len(g) == 5 and "relu" in g and "nope" not in g
    assert g.output_names == frozenset({"y"})
    assert load(path, name="other").name == "other"
    with pytest.raises(FusionlabError, match="no node named 'nope'"):
        g.node("nope")


# ---------------------------------------------------------------- weights


def test_weights_have_shape_and_dtype_and_load_on_demand(kit: Any) -> None:
    model = small_cnn(kit)
    g = load(model)
    assert g.weights["W"] == Weight("W", (4, 3, 3, 3), "float32", None)
    assert g.tensors["fc.w"] is g.weights["fc.w"]
    assert g.weights["W"].nbytes == 4 * 3 * 3 * 3 * 4
    expected = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "W"))
    np.testing.assert_array_equal(g.array("W"), expected)
    with pytest.raises(FusionlabError, match="no initializer named 'x'"):
        g.array("x")


def save_with_external_data(kit: Any, folder: str = "") -> tuple[Path, onnx.ModelProto]:
    model = small_cnn(kit)
    path = kit.folder / folder / "cnn.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(onnx.ModelProto.FromString(model.SerializeToString()), str(path),
                    save_as_external_data=True, all_tensors_to_one_file=True,
                    location="cnn.weights", size_threshold=0)
    return path, model


def test_external_data_in_the_models_folder_is_read_on_demand(kit: Any) -> None:
    path, model = save_with_external_data(kit)
    g = load(path, batch=2)
    assert g.weights["W"].external == "cnn.weights"
    assert g.weights["W"].shape == (4, 3, 3, 3)
    assert g.node("conv").cost.flops == 2 * 4 * 8 * 8 * (54 + 1)
    expected = numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == "fc.w"))
    np.testing.assert_array_equal(g.array("fc.w"), expected)
    # the array really is read when asked for: change the file after loading
    data = bytearray((path.parent / "cnn.weights").read_bytes())
    info = {e.key: e.value for e in next(
        i for i in onnx.load(str(path), load_external_data=False).graph.initializer
        if i.name == "fc.b").external_data}
    offset = int(info["offset"])
    data[offset:offset + 4] = np.float32(42.0).tobytes()
    (path.parent / "cnn.weights").write_bytes(bytes(data))
    assert g.array("fc.b")[0] == np.float32(42.0)


def test_external_data_missing_or_gone_later(kit: Any) -> None:
    path, _ = save_with_external_data(kit, "m")
    g = load(path)
    (path.parent / "cnn.weights").unlink()
    with pytest.raises(FusionlabError, match=r"missing external data file 'cnn\.weights'"):
        g.array("W")
    with pytest.raises(FusionlabError, match=r"cnn\.onnx: missing external data file"):
        load(path)


# ---------------------------------------------------------------- read-only


def test_the_graph_is_frozen(kit: Any) -> None:
    g = load(small_cnn(kit), batch=1)
    with pytest.raises(nx.NetworkXError, match="Frozen"):
        g.nx.add_node("extra")
    with pytest.raises(nx.NetworkXError, match="Frozen"):
        g.nx.remove_edge("conv", "relu")
    with pytest.raises(TypeError, match="read-only"):
        g.nx.nodes["conv"]["op"] = "Relu"
    with pytest.raises(TypeError, match="read-only"):
        g.nx.edges["conv", "relu"]["shape"] = None
    with pytest.raises(TypeError, match="read-only"):
        g.tensors["c"] = Tensor("c", None, None)  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        g.consumers.pop("c")  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="read-only"):
        g.node("conv").attrs["pads"] = ()  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.name = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.node("conv").cost.flops = 0  # type: ignore[misc]
    # a copy is an ordinary graph that the caller may change
    copy = g.nx.copy()
    copy.nodes["conv"]["mark"] = True
    assert "mark" not in g.nx.nodes["conv"]


# ---------------------------------------------------------------- control flow


def if_model(kit: Any, outer: str = "t") -> onnx.ModelProto:
    """
    x[2,3] ── Relu ── t ─ ─ ─ ─ ─ ┐ (read inside the branches, not an input of If)
    cond ──────────────────────── If ── y[2,3]
        then: y = Identity(t)    else: y = Neg(t)
    """
    then_g = helper.make_graph([helper.make_node("Identity", [outer], ["then_y"])], "then", [],
                               [kit.value("then_y", [2, 3])])
    else_g = helper.make_graph([helper.make_node("Neg", [outer], ["else_y"])], "else", [],
                               [kit.value("else_y", [2, 3])])
    nodes = [helper.make_node("Relu", ["x"], ["t"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)]
    return kit.model(nodes, [kit.value("x", [2, 3]), kit.value("cond", [], TensorProto.BOOL)],
                     [kit.value("y", [2, 3])])


def test_if_is_opaque_with_unknown_flops_and_edges_for_what_it_reads(kit: Any) -> None:
    g = load(if_model(kit))
    node = g.node("If_1")
    assert node.opaque
    assert node.cost.flops is None
    assert node.cost.note == "If is opaque: its body is not analysed"
    assert node.attrs == {"then_branch": "<subgraph>", "else_branch": "<subgraph>"}
    assert node.inputs == ("cond",)
    assert node.implicit_inputs == ("t",)
    assert g.nx.edges["Relu_0", "If_1"]["tensor"] == "t"
    assert g.consumers["t"] == ("If_1",)


def test_loop_is_opaque_too(kit: Any) -> None:
    """
    x[2] ── Relu ── t ─ ─ ─ ─ ─ ─ ┐ (read by the body)
    M=3, cond, x ──────────────── Loop ── y[2]
        body(i, c, v): c_out = Identity(c); v_out = Add(v, t)
    """
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]),
         helper.make_node("Add", ["v", "t"], ["v_out"])],
        "body",
        [kit.value("i", [], TensorProto.INT64), kit.value("c", [], TensorProto.BOOL),
         kit.value("v", [2])],
        [kit.value("c_out", [], TensorProto.BOOL), kit.value("v_out", [2])],
    )
    nodes = [helper.make_node("Relu", ["x"], ["t"]),
             helper.make_node("Loop", ["M", "cond", "x"], ["y"], body=body)]
    inits = [numpy_helper.from_array(np.array(3, np.int64), "M"),
             numpy_helper.from_array(np.array(True), "cond")]
    g = load(kit.model(nodes, [kit.value("x", [2])], [kit.value("y", None)], inits))
    loop = g.node("Loop_1")
    assert loop.opaque and loop.cost.flops is None
    assert loop.cost.note == "Loop is opaque: its body is not analysed"
    assert loop.implicit_inputs == ("t",)
    assert loop.weights == ("M", "cond")
    assert g.order == ("Relu_0", "Loop_1")
    assert g.nx.edges["Relu_0", "Loop_1"]["tensor"] == "t"


def test_a_branch_reading_an_unknown_tensor_is_dangling(kit: Any) -> None:
    with pytest.raises(FusionlabError, match="node 'If_1' reads 'ghost'"):
        load(if_model(kit, outer="ghost"))


# ---------------------------------------------------------------- invalid graphs


def test_invalid_graphs_are_user_errors(kit: Any) -> None:
    x, y = kit.value("x", [2]), kit.value("y", [2])
    dangling = [helper.make_node("Add", ["x", "nowhere"], ["y"])]
    with pytest.raises(FusionlabError, match="'Add_0' reads 'nowhere'"):
        load(kit.model(dangling, [x], [y]))
    #   x ── Add ── a ── Relu ── b ─┐
    #         └──────────────────────┘  (Add reads b: a cycle)
    cycle = [helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["y"])]
    with pytest.raises(FusionlabError, match="the graph has a cycle: Add_0 -> Relu_1 -> Add_0"):
        load(kit.model(cycle, [x], [y]))
    twice = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Tanh", ["x"], ["y"])]
    with pytest.raises(FusionlabError, match="'y' is written by both 'Relu_0' and 'Tanh_1'"):
        load(kit.model(twice, [x], [y]))
    with pytest.raises(FusionlabError, match="output 'z' is not produced"):
        load(kit.model([helper.make_node("Relu", ["x"], ["y"])], [x], [kit.value("z", [2])]))



def test_an_attribute_of_the_wrong_type_is_a_user_error_naming_the_model(tmp_path: Path) -> None:
    """A Conv's ``group`` as text made passes fail on ``int("SAME_UPPER")`` (found by the
    campaign); the loader now checks each attribute of a standard op against ONNX's schema."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=4)
    conv.attribute[0].CopyFrom(helper.make_attribute("group", "SAME_UPPER"))
    model = helper.make_model(helper.make_graph([conv], "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    with pytest.raises(FusionlabError, match=r"m\.onnx: node 'conv' \(Conv\): attribute 'group' is STRING, "
                                             r"where ONNX's Conv takes INT"):
        load(path)
    custom = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", domain="my.domain", group="odd")
    model = helper.make_model(helper.make_graph([custom], "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("my.domain", 1)])
    assert load(model).node("conv").attrs["group"] == "odd"  # not ONNX's op: not checked


def test_an_attribute_the_op_does_not_take_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Campaign seed 24: a text ``max`` on an opset-13 Clip (whose bounds are inputs since
    opset 11) reached the rtx target's ``float(...)``. An attribute ONNX's schema does not
    declare at the model's opset is left out, with one warning, as TensorRT's parser never
    reads it; a graph hung on a Relu likewise (no subgraph, no implicit inputs)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    lo = numpy_helper.from_array(np.array(0.0, np.float32), "lo")
    clip = helper.make_node("Clip", ["x", "lo"], ["c"], name="clip", max="\xff")
    body = helper.make_graph([helper.make_node("Identity", ["c"], ["b"])], "body", [],
                             [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 3])])
    relu = helper.make_node("Relu", ["c"], ["y"], name="relu")
    relu.attribute.append(helper.make_attribute("body", body))
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(helper.make_graph([clip, relu], "g", [x], [y], [lo]),
                                opset_imports=[helper.make_opsetid("", 13)]), path)
    with caplog.at_level(logging.WARNING):
        g = load(path)
    assert dict(g.node("clip").attrs) == {} and dict(g.node("relu").attrs) == {}
    assert g.node("relu").implicit_inputs == ()
    assert sum("'max' of Clip is not one ONNX's Clip takes at opset 13: ignored" in r.message
               for r in caplog.records) == 1
    from fusionlab.fusion.predictor import predict

    assert predict(g, "rtx").plan.layers  # the rtx target reads Clip's bounds from its inputs
    custom = helper.make_node("Relu", ["x"], ["y"], name="relu", domain="my.domain")
    custom.attribute.append(helper.make_attribute("body", body))
    model = helper.make_model(helper.make_graph([clip, custom], "g", [x], [y], [lo]),
                              opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("my.domain", 1)])
    node = load(model).node("relu")  # another domain's op: its graph is kept, with what it reads
    assert node.attrs["body"] == "<subgraph>" and node.implicit_inputs == ("c",)

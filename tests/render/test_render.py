"""DOT drawings (fusionlab.render.dot): golden figures, determinism, escaping, selection.

The Inception (3a) block used throughout (zoo ``inception3a``, batch 1)::

    data ─┬─ 1x1 ── bn ── relu ─────────────────────────┐
          ├─ 3x3_reduce ── bn ── relu ── 3x3 ── bn ── relu ─┤
          ├─ 5x5_reduce ── bn ── relu ── 5x5 ── bn ── relu ─┼─ Concat output
          └─ pool ── pool_proj ── bn ── relu ──────────────┘

With the classic target its plan is: the three 1x1 CBRs merged (layer 0), a copy of the
1x1 output into the concat buffer (layer 1), the 3x3 and 5x5 CBRs, the pool, the pool
projection CBR; the Concat is eliminated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from fusionlab import zoo
from fusionlab.compare.diff import compare
from fusionlab.errors import FusionlabError
from fusionlab.formats.trtexec import join_profile, read_layer_info, read_profile
from fusionlab.fusion.predictor import Prediction, predict
from fusionlab.ir.graph import Graph, load
from fusionlab.plan import Layer, Plan
from fusionlab.render.dot import (
    CONTEXT_COLOUR,
    LABEL_LIMIT,
    MARK_COLOURS,
    TOOLTIP_LIMIT,
    clean,
    diff_marks,
    diff_to_dot,
    dot_string,
    graph_to_dot,
    html_text,
    plan_to_dot,
    stable_colour,
    stage_dots,
    wrap_name,
)
from fusionlab.render.figures import FIGURES, Figure, figure_dot
from fusionlab.render.graphviz import run_dot
from tests.golden import assert_golden
from tests.records import RESNET18 as RECORDS

needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")

GOLDEN = ("inception3a-1-original", "inception3a-2-vertical", "inception3a-3-horizontal",
          "inception3a-4-concat", "resnet18-trt8")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@cache
def inception() -> Graph:
    return load(zoo.build("inception3a", 1), batch=1, name="inception3a")


@cache
def classic() -> Prediction:
    return predict(inception(), "classic")


def figure(name: str) -> Figure:
    return next(f for f in FIGURES if f.name == name)


def unquote(text: str) -> str:
    """What Graphviz shows for the body of a DOT quoted string written by dot_string."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def drawn_boxes(dot: str) -> dict[str, str]:
    """DOT id -> tooltip (the full name) of every node drawn."""
    boxes = {}
    for line in dot.splitlines():
        m = re.match(r"\s*(\w+) \[(?:group=spine, )?label=.*tooltip=(\"(?:[^\"\\]|\\.)*\")\];$",
                     line)
        if m:
            boxes[m.group(1)] = unquote(m.group(2)[1:-1])
    return boxes


def clusters(dot: str) -> dict[str, str]:
    """Layer key (``L3``) -> tooltip of every layer drawn as a cluster."""
    out = {}
    lines = dot.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*subgraph cluster_(L\d+) \{$", line)
        if m:
            tip = re.match(r"\s*tooltip=\"(.*)\";$", lines[i + 2])
            assert tip is not None, lines[i + 2]
            out[m.group(1)] = unquote(tip.group(1))
    return out


# -- golden figures and determinism --------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN)
def test_figure_matches_golden_dot(name: str) -> None:
    assert_golden(f"{name}.dot", figure_dot(figure(name)))


def test_two_renders_are_identical() -> None:
    fig = figure("inception3a-4-concat")
    assert figure_dot(fig) == figure_dot(fig)
    again = load(zoo.build("inception3a", 1), batch=1, name="inception3a")
    assert plan_to_dot(predict(again, "classic").plan, again) == \
        plan_to_dot(classic().plan, inception())


def test_dot_does_not_depend_on_python_hash_seed() -> None:
    """Colours come from SHA-256, orders from the graph: another hash seed, same bytes."""
    code = ("import sys; from fusionlab.render.figures import FIGURES, figure_dot; "
            "sys.stdout.write(figure_dot(FIGURES[3]))")
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, check=True)
        outputs.add(done.stdout)
    assert outputs == {figure_dot(figure("inception3a-4-concat"))}


def test_stage_figures_show_the_fusions() -> None:
    """What a reader must see in each Inception figure."""
    original = figure_dot(figure("inception3a-1-original"))
    assert "subgraph cluster_" not in original and original.count("tooltip=") == 20 + 2
    assert 'label="1x192x28x28"' in original  # edges carry shapes
    assert "Each Conv+BN+ReLU is one CBR layer".lower() in \
        figure_dot(figure("inception3a-2-vertical")).lower()
    vertical = figure_dot(figure("inception3a-2-vertical"))
    assert len(clusters(vertical)) == 8
    assert vertical.count("(folded in)") == 6  # BatchNorm folded into each convolution
    horizontal = figure_dot(figure("inception3a-3-horizontal"))
    assert len(clusters(horizontal)) == 6
    assert horizontal.count("subgraph cluster_L0_") == 3  # the three merged 1x1 branches
    concat = figure_dot(figure("inception3a-4-concat"))
    assert "Concat\\ninception_3a/output" not in concat  # no Concat box any more
    assert "ch 0-63" in concat and "ch 224-255" in concat  # one buffer, four slices
    assert re.search(r"L1 \[label=<<B>Copy · eliminate_concat</B>", concat)  # the copy's box
    assert re.search(r"L1 -> n19:p0:n \[label=\"copy\"\]", concat)


def test_stage_dots_draws_every_stage() -> None:
    dots = stage_dots(classic())
    assert [name for name, _ in dots] == [s.name for s in classic().stages]
    assert all(dot.startswith("digraph fusionlab {") for _, dot in dots)
    assert "subgraph cluster_" not in dots[0][1]  # original: the ONNX graph


def test_every_layer_is_a_cluster_named_after_it() -> None:
    plan = classic().plan
    dot = plan_to_dot(plan, inception())
    named = clusters(dot)
    boxes = drawn_boxes(dot)
    for i, layer in enumerate(plan.layers):
        key = f"L{i}"
        shown = named.get(key) if not layer.inserted else boxes.get(key)
        assert shown == layer.name


def test_compact_draws_one_box_per_layer() -> None:
    plan = classic().plan
    dot = plan_to_dot(plan, inception(), members=False)
    assert "subgraph cluster_" not in dot
    boxes = drawn_boxes(dot)
    assert [boxes[f"L{i}"] for i in range(len(plan.layers))] == [x.name for x in plan.layers]
    assert "3 × Conv+BatchNormalization+Relu" in dot


def test_eliminated_node_is_dashed_and_says_why() -> None:
    graph = load(zoo.build("resnet18", 1), batch=1, name="resnet18")
    plan = predict(graph, "trt8").plan
    dot = plan_to_dot(plan, graph)
    line = next(x for x in dot.splitlines() if 'tooltip="Flatten_47"' in x)
    assert "dashed" in line and "eliminated: absorbed into Gemm_48" in line


def test_marks_colour_layers_and_fill_the_legend() -> None:
    dot = plan_to_dot(classic().plan, inception(), marks={0: "split", 2: "matched"})
    assert f'color="{MARK_COLOURS["split"]}"; penwidth=3;' in dot
    assert f'color="{MARK_COLOURS["matched"]}"; penwidth=3;' in dot
    assert ">split<" in dot and ">matched<" in dot
    assert len(set(MARK_COLOURS.values())) == len(MARK_COLOURS)  # all distinct


def test_plan_without_graph_joins_layers_by_tensor() -> None:
    """
    x ── [conv + relu] ── t ── [pool] ── y        (no ONNX graph: tensors only)
    """
    a = Layer("conv + relu", "Convolution", ("conv", "relu"), "fuse_conv_activation",
              inputs=("x",), outputs=("t",), time_ms=0.25)
    b = Layer("pool", "Pooling", ("pool",), "unfused", inputs=("t",), outputs=("y",))
    dot = plan_to_dot(Plan((a, b)))
    assert "L0 -> L1" in dot and "0.2500 ms" in dot


# -- escaping and caps ---------------------------------------------------------------

NASTY = ('q"uote', "back\\slash\\", "{brace}|<x>", "new\nline", "z" * 20_000, "ctl\x01\x7f")


@cache
def nasty_graph() -> Graph:
    """
    x ── Relu q"uote ── Relu back\\slash\\ ── Relu {brace}|<x> ── Relu new⏎line
      ── Relu zzz…(20,000 z) ── Relu ctl\\x01\\x7f ── y
    """
    nodes, prev = [], "x"
    for i, name in enumerate(NASTY):
        nodes.append(helper.make_node("Relu", [prev], [f"t{i}"], name=name))
        prev = f"t{i}"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)
    return load(helper.make_model(helper.make_graph(nodes, "nasty", [x], [y])))


def test_dot_string_escapes_quotes_backslashes_and_lines() -> None:
    assert dot_string('a"b') == '"a\\"b"'
    assert dot_string("a\\") == '"a\\\\"'
    assert dot_string("a\nb") == '"a\\nb"'
    assert dot_string("\\N{x}") == '"\\\\N{x}"'  # not Graphviz's node-name escape
    assert html_text("<b>&\"") == "&lt;b&gt;&amp;&quot;"
    assert clean("a\x01b\x7f") == "a\\x01b\\x7f"


def test_labels_are_capped() -> None:
    long = "z" * 20_000
    assert len(unquote(dot_string(long)[1:-1])) == LABEL_LIMIT
    assert dot_string(long).endswith('…"')
    assert len(wrap_name(long)) <= LABEL_LIMIT + LABEL_LIMIT // 20  # plus line breaks
    for dot in (graph_to_dot(nasty_graph()), plan_to_dot(predict(nasty_graph()).plan, nasty_graph()),
                plan_to_dot(predict(nasty_graph()).plan, nasty_graph(), members=False)):
        longest = max(len(unquote(m.group(1))) for m in QUOTED.finditer(dot))
        assert longest <= TOOLTIP_LIMIT
        assert "z" * (TOOLTIP_LIMIT + 1) not in dot


@needs_dot
def test_nasty_names_survive_graphviz() -> None:
    for dot in (graph_to_dot(nasty_graph()), plan_to_dot(predict(nasty_graph()).plan, nasty_graph())):
        svg = ET.fromstring(run_dot(dot, "svg"))
        texts = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        shown = "\n".join(texts)
        assert 'q"uote' in shown and "{brace}|<x>" in shown and "ctl\\x01\\x7f" in shown
        assert "new" in texts and "line" in texts  # the newline is a line break
        assert max(len(t) for t in texts) <= LABEL_LIMIT


def test_colours_are_stable_and_distinct() -> None:
    assert stable_colour("Convolution") == "#b9b8ea"  # the same on every machine
    assert stable_colour("Convolution") != stable_colour("Pooling")
    assert re.fullmatch(r"#[0-9a-f]{6}", stable_colour("anything"))


# -- selection: --focus/--radius and --match ------------------------------------------


def test_focus_radius_keeps_the_neighbourhood() -> None:
    g = inception()
    names = set(drawn_boxes(graph_to_dot(g, focus="inception_3a/3x3", radius=1)).values())
    assert names == {"inception_3a/relu_3x3_reduce", "inception_3a/3x3", "inception_3a/3x3/bn"}
    assert set(drawn_boxes(graph_to_dot(g, focus="inception_3a/3x3", radius=0)).values()) == \
        {"inception_3a/3x3"}
    two = set(drawn_boxes(graph_to_dot(g, focus="inception_3a/pool", radius=2)).values())
    # the input tensor is not a node: radius counts edges between nodes
    assert two == {"inception_3a/pool", "inception_3a/pool_proj", "inception_3a/pool_proj/bn",
                   "data"}


def test_focus_on_a_plan_counts_layers() -> None:
    plan = classic().plan
    dot = plan_to_dot(plan, inception(), focus="inception_3a/5x5", radius=1)
    assert set(clusters(dot)) == {"L0", "L3"}  # the 5x5 CBR and the merged layer feeding it
    assert "ch 0-63" in dot  # the buffer it writes into
    by_layer = plan_to_dot(plan, inception(), focus=plan.layers[3].name, radius=1)
    assert by_layer == dot
    with pytest.raises(FusionlabError, match="no node or layer named"):
        plan_to_dot(plan, inception(), focus="nope")


def test_match_keeps_matching_layers_and_greys_neighbours() -> None:
    plan = classic().plan
    dot = plan_to_dot(plan, inception(), match=r"relu_5x5$")
    assert set(clusters(dot)) == {"L3"}  # only the 5x5 CBR is drawn in full
    grey = {key for key in drawn_boxes(dot)
            if re.search(rf"^[ ]*{key} \[.*color=\"{CONTEXT_COLOUR}\"", dot, re.M)}
    assert grey == {"L0", "n19"}  # the merged layer before it, the buffer after it
    assert "neighbour (not matched)" in dot
    with pytest.raises(FusionlabError, match="no layer or node name matches"):
        plan_to_dot(plan, inception(), match="zzz")
    with pytest.raises(FusionlabError, match="not a valid regular expression"):
        plan_to_dot(plan, inception(), match="(")


# -- SVG -----------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize("target", ["classic", "trt10"])
def test_svg_parses_and_names_every_layer(target: str) -> None:
    plan = predict(inception(), target).plan
    svg = ET.fromstring(run_dot(plan_to_dot(plan, inception()), "svg"))
    titles = {a.get("{http://www.w3.org/1999/xlink}title")
              for a in svg.iter("{http://www.w3.org/2000/svg}a")}
    for layer in plan.layers:
        assert layer.name in titles


def test_docs_figures_use_their_models() -> None:
    assert Path(__file__).parents[1].joinpath("golden", "README.md").exists()
    assert {f.model for f in FIGURES} >= {"inception3a", "googlenet", "resnet18"}


# -- diffs against a real engine -----------------------------------------------------



def test_diff_drawing_marks_the_engine_layers() -> None:
    """ResNet-18 fp16 engine (A100, TensorRT 8) against a target without residual fusion:
    the eight Conv+Add+Relu engine layers each merge two predicted layers."""
    from dataclasses import replace

    from fusionlab.fusion.targets import TARGETS

    graph = load(zoo.build("resnet18"), batch=32, name="resnet18")
    actual = join_profile(read_layer_info(RECORDS / "fp16" / "engine.graph.json", graph=graph),
                          read_profile(RECORDS / "fp16" / "engine.profile.json"))
    trt8 = TARGETS["trt8"]
    target = replace(trt8, name="no-residual",
                     passes=tuple(p for p in trt8.passes if p != "fuse_conv_add"))
    prediction = predict(graph, target, "fp16")
    diff = compare(prediction.plan, actual, ops={n.name: n.op for n in graph.nodes()})
    marks, _ = diff_marks(diff)
    statuses = [marks[i] for i in range(len(actual.layers))]
    assert statuses.count("merged") == 8 and statuses.count("inserted") == 13
    dot = diff_to_dot(graph, diff)
    assert f'color="{MARK_COLOURS["merged"]}"; penwidth=3;' in dot
    assert ">merged<" in dot and ">inserted<" in dot and ">matched<" in dot
    assert "15 of 23 engine layers as predicted · 8 merged · 13 inserted" in dot
    assert re.search(r"\d\.\d{4} ms", dot)  # measured times in the layer labels


def test_stream_syncs_are_not_drawn_but_counted() -> None:
    """TensorRT-RTX's signal/wait layers synchronise streams: no data flows through them, so
    a diff drawing leaves them out (a row of unconnected boxes before) and says how many."""
    from fusionlab.plan import Kind

    pred = Plan((Layer("a + b", "Convolution", ("a", "b"), "fuse_conv_activation"),))
    actual = Plan((Layer("k", "Convolution", ("a", "b"), engine_type="runtime_fusion"),
                   Layer("__mye1_myl0_1", Kind.SYNC, engine_type="signal"),
                   Layer("__mye2_myl0_2", Kind.SYNC, engine_type="wait")), source="build log")
    dot = diff_to_dot(None, compare(pred, actual))
    assert "__mye1_myl0_1" not in dot and "__mye2_myl0_2" not in dot
    assert "build log vs predicted (target) · 1 of 1 engine layers as predicted · 2 stream syncs (not drawn)" in dot

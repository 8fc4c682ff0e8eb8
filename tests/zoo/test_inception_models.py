"""Structure and names of the Inception models: inception3a, googlenet, googlenet-caffe."""

from __future__ import annotations

from collections import Counter

import onnx
import pytest

from fusionlab import zoo
from fusionlab.ir.graph import Graph, load


@pytest.fixture(scope="module")
def block() -> Graph:
    return load(zoo.build("inception3a"), batch=1)


@pytest.fixture(scope="module")
def googlenet() -> Graph:
    return load(zoo.build("googlenet"), batch=1)


@pytest.fixture(scope="module")
def caffe() -> Graph:
    return load(zoo.build("googlenet-caffe"), batch=1)


def test_inception3a_has_four_branches_joined_by_a_256_channel_concat(block: Graph) -> None:
    """
    data[1,192,28,28] ─┬─ 1x1 64 ─────────────────┐
                       ├─ 1x1 96 ── 3x3 128 ──────┤
                       ├─ 1x1 16 ── 5x5 32 ───────┼─ Concat ── [1,256,28,28]
                       └─ maxpool 3x3/1 ── 1x1 32 ┘
    (every conv: Conv -> BatchNormalization -> Relu)
    """
    readers = [block.node(n) for n in block.consumers["data"]]
    assert sorted(n.op for n in readers) == ["Conv", "Conv", "Conv", "MaxPool"]
    pool = next(n for n in readers if n.op == "MaxPool")
    assert pool.name == "inception_3a/pool"
    assert pool.attrs["kernel_shape"] == (3, 3) and pool.attrs["strides"] == (1, 1)
    assert pool.attrs["pads"] == (1, 1, 1, 1)
    concat = block.node("inception_3a/output")
    assert concat.op == "Concat" and concat.attrs["axis"] == 1 and len(concat.inputs) == 4
    assert block.tensors[concat.outputs[0]].shape == (1, 256, 28, 28)
    assert [block.tensors[t].shape[1] for t in concat.inputs] == [64, 128, 32, 32]  # type: ignore[index]
    assert Counter(n.op for n in block.nodes()) == {
        "Conv": 6, "BatchNormalization": 6, "Relu": 6, "MaxPool": 1, "Concat": 1,
    }


def test_inception3a_names_are_readable(block: Graph) -> None:
    for part in ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj"):
        conv, bn, relu = (f"inception_3a/{part}", f"inception_3a/{part}/bn",
                          f"inception_3a/relu_{part}")
        assert block.node(conv).op == "Conv"
        assert block.node(bn).op == "BatchNormalization"
        assert block.node(relu).op == "Relu"
        assert block.consumers[block.node(conv).outputs[0]] == (bn,)
        assert block.consumers[block.node(bn).outputs[0]] == (relu,)


def test_googlenet_follows_the_paper(googlenet: Graph) -> None:
    ops = Counter(n.op for n in googlenet.nodes())
    assert ops["Concat"] == 9
    assert ops["Conv"] == 3 + 9 * 6 == ops["BatchNormalization"] == ops["Relu"]
    assert "LRN" not in ops and "Dropout" not in ops
    fives = [n for n in googlenet.nodes() if n.op == "Conv" and n.attrs["kernel_shape"] == (5, 5)]
    assert len(fives) == 9, "the 5x5 branches are 5x5 as in the paper"
    widths = {n.name: googlenet.tensors[n.outputs[0]].shape for n in googlenet.nodes()
              if n.op == "Concat"}
    assert widths["inception_3a/output"] == (1, 256, 28, 28)
    assert widths["inception_4e/output"] == (1, 832, 14, 14)
    assert widths["inception_5b/output"] == (1, 1024, 7, 7)
    assert googlenet.outputs[0].shape == (1, 1000)


CAFFE_NAMES = [
    "conv1/7x7_s2", "conv1/relu_7x7", "pool1/3x3_s2", "pool1/norm1", "conv2/3x3_reduce",
    "conv2/relu_3x3_reduce", "conv2/3x3", "conv2/relu_3x3", "conv2/norm2", "pool2/3x3_s2",
    "inception_3a/1x1", "inception_3a/relu_1x1", "inception_3a/3x3_reduce",
    "inception_3a/relu_3x3_reduce", "inception_3a/3x3", "inception_3a/relu_3x3",
    "inception_3a/5x5_reduce", "inception_3a/relu_5x5_reduce", "inception_3a/5x5",
    "inception_3a/relu_5x5", "inception_3a/pool", "inception_3a/pool_proj",
    "inception_3a/relu_pool_proj", "inception_3a/output", "inception_3b/output", "pool3/3x3_s2",
    "inception_4a/1x1", "inception_4e/relu_pool_proj", "pool4/3x3_s2", "inception_5b/output",
    "pool5/7x7_s1", "pool5/drop_7x7_s1", "loss3/classifier", "prob",
]
"""Layer names of bvlc_googlenet/deploy.prototxt, in its order (a sample of every kind)."""


def test_googlenet_caffe_names_are_the_caffe_layer_names(caffe: Graph) -> None:
    positions = [caffe.order.index(name) for name in CAFFE_NAMES]
    assert positions == sorted(positions)
    extra = [n.name for n in caffe.nodes() if n.op == "Flatten"]
    assert extra == ["loss3/classifier/flatten"]
    flat = caffe.node("loss3/classifier/flatten")
    assert caffe.consumers[flat.outputs[0]] == ("loss3/classifier",)


def test_googlenet_caffe_layers(caffe: Graph) -> None:
    ops = Counter(n.op for n in caffe.nodes())
    assert "BatchNormalization" not in ops
    assert ops["LRN"] == 2 and ops["Dropout"] == 1 and ops["Softmax"] == 1 and ops["Gemm"] == 1
    assert ops["Conv"] == 57 == ops["Relu"]
    for n in caffe.nodes():
        if n.op == "Conv":
            assert len(n.inputs) == 3, "Caffe convolutions have a bias"
            (relu,) = caffe.consumers[n.outputs[0]]
            assert caffe.node(relu).op == "Relu"
    lrn = caffe.node("pool1/norm1").attrs
    assert lrn["size"] == 5 and lrn["alpha"] == pytest.approx(1e-4)
    assert (lrn["beta"], lrn["bias"]) == (0.75, 1.0)
    assert caffe.node("pool5/7x7_s1").op == "AveragePool"
    model = caffe.model
    assert model is not None
    ratio_name = caffe.node("pool5/drop_7x7_s1").inputs[1]
    ratio = next(i for i in model.graph.initializer if i.name == ratio_name)
    assert float(onnx.numpy_helper.to_array(ratio)) == pytest.approx(0.4)


def test_googlenet_caffe_pooling_rounds_up_like_caffe(caffe: Graph) -> None:
    """Caffe rounds pooled sizes up: 112 -> 56, 56 -> 28, 28 -> 14, 14 -> 7 (floor gives 55...)."""
    sizes = {"pool1/3x3_s2": 56, "pool2/3x3_s2": 28, "pool3/3x3_s2": 14, "pool4/3x3_s2": 7}
    for name, size in sizes.items():
        node = caffe.node(name)
        assert node.attrs["ceil_mode"] == 1
        assert caffe.tensors[node.outputs[0]].shape[2:] == (size, size)  # type: ignore[index]
    assert caffe.node("inception_3a/pool").attrs["ceil_mode"] == 0
    assert caffe.outputs[0].name == "prob" and caffe.outputs[0].shape == (1, 1000)

"""The ``rtx`` rules, one micro-network each: the prediction, and TensorRT-RTX's own grouping.

Each case is built in code (a few nodes); ``test_prediction`` checks the predicted kernels
(multisets of node sets: an LRN is three kernels), ``test_live`` builds the case with
TensorRT-RTX's CPU builder (``fusionlab.backends.rtx.build_actual``) and checks that the
engine has exactly those kernels. The case names of the research builds each case repeats
are in the rule's docstring.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import onnx
import pytest

from fusionlab.fusion.predictor import Prediction, predict
from fusionlab.ir.graph import load
from tests.fusion.rtx_nets import CNN, engine_plan, kernels


def dup_relu() -> onnx.ModelProto:
    #   x -> conv1 -> rA -> y1        two identical Relus: the later one stays (rtx_eliminate)
    #           └---> rB -> y2
    n = CNN()
    c = n.conv("x", 16, 3, name="conv1")
    n.unary("Relu", c, "rA")
    n.unary("Relu", c, "rB")
    return n.output("rA", "rB").model()


def conv_relu() -> onnx.ModelProto:
    #   x -> conv -> relu             (rtx_conv_activation)
    n = CNN()
    n.unary("Relu", n.conv("x", 16, 3, name="conv"), "relu")
    return n.model()


def conv_relu_and_conv() -> onnx.ModelProto:
    #   x -> conv1 -> relu1           the conv output has two readers: no CASK activation
    #           └---> conv2
    n = CNN()
    c = n.conv("x", 16, 3, name="conv1")
    n.unary("Relu", c, "relu1")
    n.conv(c, 8, name="conv2")
    return n.model()


def residual() -> onnx.ModelProto:
    #   x -> conv1 -> relu1 -> conv2 -> add -> relu2      (rtx_conv_add)
    #                  └-------------------┘
    n = CNN()
    r1 = n.unary("Relu", n.conv("x", 16, 3, name="conv1"), "relu1")
    n.unary("Relu", n.add(n.conv(r1, 16, 3, name="conv2"), r1, "add"), "relu2")
    return n.model()


def concat_inplace() -> onnx.ModelProto:
    #   x -> conv1 -> relu1 --\
    #                          cat -> conv3       the producers write their slices (rtx_concat)
    #   x -> conv2 -> relu2 --/
    n = CNN()
    r1 = n.unary("Relu", n.conv("x", 8, name="conv1"), "relu1")
    r2 = n.unary("Relu", n.conv("x", 8, 3, name="conv2"), "relu2")
    n.conv(n.concat([r1, r2], "cat"), 8, name="conv3")
    return n.model()


def concat_copy_input() -> onnx.ModelProto:
    #   x ------------------\
    #                        cat -> conv3          a network input: a copy kernel (rtx_concat)
    #   x -> conv1 -> relu1 /
    n = CNN()
    r1 = n.unary("Relu", n.conv("x", 8, name="conv1"), "relu1")
    n.conv(n.concat(["x", r1], "cat"), 8, name="conv3")
    return n.model()


def concat_gap() -> onnx.ModelProto:
    #   x -> conv1 -> bn1 -> relu1 --\
    #                                 cat -> gap   one K input: the kernel takes the B epilogue
    #   x -> conv2 -> relu2 ---------/              (rtx_concat_pool; conv1 shared: rtx_share_bias)
    n = CNN()
    b = n.unary("Relu", n.bn(n.conv("x", 16, name="conv1"), "bn1"), "relu1")
    r = n.unary("Relu", n.conv("x", 16, name="conv2"), "relu2")
    n.gap(n.concat([b, r], "cat"), "gap")
    return n.model()


def cbr_out() -> onnx.ModelProto:
    #   x -> conv -> bn -> relu -> y  an output: no runtime fusion; the kgen lists the conv too
    n = CNN()
    n.unary("Relu", n.bn(n.conv("x", 16, 3, name="conv"), "bn"), "relu")
    return n.model()


def cbr_then_conv() -> onnx.ModelProto:
    #   x -> conv1 -> bn1 -> relu1 -> conv2          (rtx_runtime_fusion)
    n = CNN()
    n.conv(n.unary("Relu", n.bn(n.conv("x", 16, 3, name="conv1"), "bn1"), "relu1"), 8, name="conv2")
    return n.model()


def leaky_then_conv() -> onnx.ModelProto:
    #   x -> conv1 -> lrelu -> conv2                 not native: a runtime fusion
    n = CNN()
    n.conv(n.unary("LeakyRelu", n.conv("x", 16, 3, name="conv1"), "lrelu", alpha=0.1), 8, name="conv2")
    return n.model()


def cbr_fork_two_sinks() -> onnx.ModelProto:
    #   x -> conv1 -> bn1 -> relu -> convA           two sinks: one kgen (rtx_pointwise)
    #                   └--> sig  -> convB
    n = CNN()
    b = n.bn(n.conv("x", 16, 3, name="conv1"), "bn1")
    n.conv(n.unary("Relu", b, "relu"), 8, name="convA")
    n.conv(n.unary("Sigmoid", b, "sig"), 8, name="convB")
    return n.model()


def gap_gemm() -> onnx.ModelProto:
    #   x -> conv -> relu -> gap -> flat -> fc(16 -> 10)   a reduction Gemm: two kernels (rtx_gemm)
    n = CNN()
    c = n.unary("Relu", n.conv("x", 16, 3, name="conv"), "relu")
    n.gemm(n.flatten(n.gap(c, "gap"), "flat"), 10, "fc")
    return n.model()


def gemm_relu() -> onnx.ModelProto:
    #   ... -> fc(16 -> 10) -> fcrelu           bias + act in the Add kgen, which lists the fc
    n = CNN()
    c = n.unary("Relu", n.conv("x", 16, 3, name="conv"), "relu")
    n.unary("Relu", n.gemm(n.flatten(n.gap(c, "gap"), "flat"), 10, "fc"), "fcrelu")
    return n.model()


def lrn() -> onnx.ModelProto:
    #   x -> conv -> relu -> lrn                     three kernels, each [lrn] (rtx_lrn)
    n = CNN()
    n.lrn(n.unary("Relu", n.conv("x", 16, 3, name="conv"), "relu"), "lrn")
    return n.model()


def pool_relu() -> onnx.ModelProto:
    #   x -> conv -> relu -> maxpool -> prelu        a pooling takes no activation
    n = CNN()
    c = n.unary("Relu", n.conv("x", 16, 3, name="conv"), "relu")
    n.unary("Relu", n.pool("MaxPool", c, 3, 1, 1, "pool"), "prelu")
    return n.model()


def se_block() -> onnx.ModelProto:
    #   x -> conv1 -> bn1 -> relu1 -> gap -> fc1 -> fc1relu -> fc2 -> gate
    #                          └------------------------------------------ scale (Mul) -> conv2
    # the gap joins the BN kgen; the scale Mul waits for the gate: a kgen of its own (rtx_pointwise);
    # fc2 + gate stay CASK: the Mul broadcasts to a larger tensor (rtx_runtime_fusion condition 8)
    n = CNN()
    r = n.unary("Relu", n.bn(n.conv("x", 16, 3, name="conv1"), "bn1"), "relu1")
    s1 = n.unary("Relu", n.conv(n.gap(r, "gap"), 4, name="fc1"), "fc1relu")
    gate = n.unary("Sigmoid", n.conv(s1, 16, name="fc2"), "gate")
    n.conv(n.node("Mul", [r, gate], "scale", n.shapes[r]), 8, name="conv2")
    return n.model()


def grouped_relu_gap() -> onnx.ModelProto:
    #   x -> gconv (group 2) -> relu -> gap        a grouped conv's activation read by a pool:
    #                            └----> conv2       kgen [gconv relu gap] (rtx_conv_activation 5)
    n = CNN()
    r = n.unary("Relu", n.conv("x", 16, 3, name="gconv", group=2), "relu")
    n.gap(r, "gap")
    n.conv(r, 8, name="conv2")
    return n.model()


def grouped_relu_conv() -> onnx.ModelProto:
    #   x -> gconv (group 2) -> relu -> conv2       read by a convolution only: one CASK kernel
    n = CNN()
    n.conv(n.unary("Relu", n.conv("x", 16, 3, name="gconv", group=2), "relu"), 8, name="conv2")
    return n.model()


def concat_one_input() -> onnx.ModelProto:
    #   x -> conv1 -> relu1 -> cat(relu1) -> bn -> relu2 -> conv2   a one-input Concat is no kernel:
    #   conv1 ... relu2 is one runtime fusion, as if it were not there (R1b)
    n = CNN()
    r = n.unary("Relu", n.conv("x", 16, 3, name="conv1"), "relu1")
    n.conv(n.unary("Relu", n.bn(n.concat([r], "cat"), "bn"), "relu2"), 8, name="conv2")
    return n.model()


def layout_ln_conv() -> onnx.ModelProto:
    #   x -> conv1 -> t1 (to NHWC) -> ln -> t2 (to NCHW) -> conv2     (rtx_layout R18a/c: conv2 lists t2;
    #                                                                   mov18_ln_t_dense1)
    n = CNN((1, 32, 16, 16))
    t = n.transpose(n.conv("x", 32, 3, name="conv1"), (0, 2, 3, 1), "t1")
    ln = n.node("LayerNormalization", [t, n._weight("ln.s", (32,)), n._weight("ln.b", (32,))], "ln", n.shapes[t],
                axis=-1, epsilon=1e-6)
    n.conv(n.transpose(ln, (0, 3, 1, 2), "t2"), 16, name="conv2")
    return n.model()


def layout_relu_t() -> onnx.ModelProto:
    #   x -> conv1 -> t1 -> relu -> t2 -> conv2      (rtx_layout R18a: ``TranReluTran``; mov18_relu_t_*)
    n = CNN((1, 32, 16, 16))
    r = n.unary("Relu", n.transpose(n.conv("x", 32, 3, name="conv1"), (0, 2, 3, 1), "t1"), "relu")
    n.conv(n.transpose(r, (0, 3, 1, 2), "t2"), 16, name="conv2")
    return n.model()


def fold_shuffle() -> onnx.ModelProto:
    #   conv1 -> bn1 -> relu1 -> resh1 -> tr -> resh2 -> conv2, resh1's shape computed by
    #   shape -> gather -> div -> unsq -> cat_shape   (rtx_fold R19a: folded, in no kernel;
    #   rtx_layout R20b: resh2 at the kgen's edge in no kernel; shufflenetv2-legacy)
    n = CNN((1, 32, 8, 8))
    y = n.unary("Relu", n.bn(n.conv("x", 32, name="conv1"), "bn1"), "relu1")

    def i64(name: str, v: object) -> str:
        return n._init(name, np.array(v, np.int64))

    c = n.node("Gather", [n.node("Shape", [y], "shape", (4,)), i64("one", 1)], "gather", ())
    u = n.node("Unsqueeze", [n.node("Div", [c, i64("two", 2)], "div", ()), i64("zero", [0])], "unsq", (1,))
    shp = n.node("Concat", [i64("n1", [1]), i64("g2", [2]), u, i64("hw", [8, 8])], "cat_shape", (5,), axis=0)
    t = n.node("Transpose", [n.node("Reshape", [y, shp], "resh1", (1, 2, 16, 8, 8))], "tr", (1, 16, 2, 8, 8),
               perm=[0, 2, 1, 3, 4])
    n.conv(n.node("Reshape", [t, i64("back", [1, 32, 8, 8])], "resh2", (1, 32, 8, 8)), 16, name="conv2")
    return n.model()


def c2f_split() -> onnx.ModelProto:
    #   conv1 -> silu1 -> split -> a, b; b -> conv2 -> silu2; cat(a, b, silu2) -> conv3
    #   (rtx_concat R20g: ``SlicConc [split cat]`` next to ``Slic [split]``; R20f: conv1 runtime-fuses;
    #   mover20_c2f_silu, yolov8n C2f)
    n = CNN((1, 32, 16, 16))
    a, b = n.split(n.act("SiLU", n.conv("x", 32, name="conv1"), "silu1"), (16, 16), ("a", "b"), "split")
    z = n.act("SiLU", n.conv(b, 16, 3, name="conv2"), "silu2")
    n.conv(n.concat([a, b, z], "cat"), 32, name="conv3")
    return n.model()


def hswish_gap(c: int) -> Callable[[], onnx.ModelProto]:
    #   x -> dw (c channels, 14x14) -> hs (HardSwish, an output) -> gap -> fc1    (rtx_pointwise R13b:
    #   c = 480, 94,080 elements: [hs] + [gap]; c = 80, 15,680: [hs gap]; se13_dw_hswish_hsig_c{C}_hw14)
    def build() -> onnx.ModelProto:
        n = CNN((1, c, 14, 14))
        h = n.unary("HardSwish", n.conv("x", c, 3, name="dw", group=c), "hs")
        n.conv(n.gap(h, "gap"), c // 4, name="fc1")
        return n.output(h, "fc1").model()

    return build


def mlp_head() -> onnx.ModelProto:
    #   conv -> gap -> flat -> fc1 (1024 -> 1024) -> relu1 -> fc2 (-> 10) -> sm -> am
    #   (rtx_gemm R21a: bare [fc1], its bias and Relu in fc2's first kernel; R21b: [sm am];
    #   mlp21_1024_1024_*_argmax, mnist-cookbook)
    n = CNN((1, 1024, 4, 4))
    f = n.flatten(n.gap(n.conv("x", 1024, name="conv"), "gap"), "flat")
    sm = n.node("Softmax", [n.gemm(n.unary("Relu", n.gemm(f, 1024, "fc1"), "relu1"), 10, "fc2")], "sm", (1, 10),
                axis=1)
    n.node("ArgMax", [sm], "am", (1, 1), axis=1, keepdims=1)
    return n.output("am").model()


def softmax_out_image(axis: int) -> Callable[[], onnx.ModelProto]:
    #   x -> conv -> sm (Softmax over ``axis`` of the NHWC image, a graph output)   (rtx_pointwise R22:
    #   one more kernel [sm]; sm22_dfl_*)
    def build() -> onnx.ModelProto:
        n = CNN((1, 16, 8, 8))
        n.node("Softmax", [n.conv("x", 16, name="conv")], "sm", (1, 16, 8, 8), axis=axis)
        return n.model()

    return build


def grouped_gap() -> onnx.ModelProto:
    #   x -> gc (group 2, a bias) -> gap -> fc      (rtx_gemm R16: the pool kernel adds gc's bias:
    #   ``AddMoveMean [gc gap]``; grp16t_g{2,4,8}_none_gap)
    n = CNN((1, 32, 16, 16))
    n.conv(n.gap(n.conv("x", 32, 3, name="gc", group=2), "gap"), 8, name="fc")
    return n.model()


def qdq_residual() -> onnx.ModelProto:
    #   x -> in_q -> in_dq -> c1 -> r1 -> a1_q -> a1_dq -> c2 -> add(c2, in_dq) -> r2 -> a2_q -> a2_dq -> c3
    #   (rtx_qdq R14a/b: in_dq is listed by c1's kernel and by the add's kgen, which recomputes it;
    #   prototype micro qdq_residual_add)
    n = CNN()
    x = n.qdq("x", "in")
    y = n.unary("Relu", n.qconv(x, 16, 3, name="c1"), "r1")
    y = n.unary("Relu", n.add(n.qconv(n.qdq(y, "a1"), 16, 3, name="c2"), x, "add"), "r2")
    n.qconv(n.qdq(y, "a2"), 8, name="c3")
    return n.model()


def qdq_int8_chain() -> onnx.ModelProto:
    #   x -> in_q -> in_dq -> c1 -> bn1 -> r1 -> a1_q -> a1_dq -> c2 -> y     (rtx_qdq: R14a-c;
    #   c1, c2: per-channel int8 convs, weights quantized in the graph)     qdq14_wq_in_graph)
    n = CNN()
    y = n.unary("Relu", n.bn(n.qconv(n.qdq("x", "in"), 32, 3, name="c1", bias=False), "bn1"), "r1")
    n.qconv(n.qdq(y, "a1"), 16, name="c2")
    return n.model()


def concat_kgen_cycle() -> onnx.ModelProto:
    #   x -> mul0 -> conv1 -> relu2 -> relu5 (out)         concat3 = cat(x, mul0) feeds concat4 and
    #                  └-----> add11 <- add9 <- concat3      add9; concat4 = cat(concat3, mul0, relu2,
    #   pool14(add11) (out), concat4 (out)                   conv1): the output concat's kernel and
    #   the pointwise region would wait for each other: one kgen (rtx_kit R15b; the property tests
    #   found the net, a CycleError before)
    n = CNN((1, 4, 4, 4))
    mul0 = n.node("Mul", ["x", "x"], "mul0", n.shapes["x"])
    conv1 = n.conv(mul0, 8, name="conv1")
    relu2 = n.unary("Relu", conv1, "relu2")
    concat3 = n.concat(["x", mul0], "concat3")
    n.concat([concat3, mul0, relu2, conv1], "concat4")
    n.unary("Relu", relu2, "relu5")
    add11 = n.add(conv1, n.add(concat3, relu2, "add9"), "add11")
    n.pool("MaxPool", add11, 3, 1, 1, "pool14")
    return n.output("concat4", "relu5", "pool14").model()


Case = tuple[Callable[[], onnx.ModelProto], list[list[str]]]
CASES: dict[str, Case] = {
    "dup_relu": (dup_relu, [["conv1", "rB"]]),
    "conv_relu": (conv_relu, [["conv", "relu"]]),
    "conv_relu_and_conv": (conv_relu_and_conv, [["conv1"], ["conv2"], ["relu1"]]),
    "residual": (residual, [["conv1", "relu1"], ["conv2", "add", "relu2"]]),
    "concat_inplace": (concat_inplace, [["conv1", "relu1"], ["conv2", "relu2"], ["conv3"]]),
    "concat_copy_input": (concat_copy_input, [["cat"], ["conv1", "relu1"], ["conv3"]]),
    "concat_gap": (concat_gap, [["conv1"], ["conv2", "relu2"], ["cat", "gap", "bn1", "relu1", "conv1"]]),
    "cbr_out": (cbr_out, [["conv"], ["bn", "conv", "relu"]]),
    "cbr_then_conv": (cbr_then_conv, [["conv1", "bn1", "relu1"], ["conv2"]]),
    "leaky_then_conv": (leaky_then_conv, [["conv1", "lrelu"], ["conv2"]]),
    "cbr_fork_two_sinks": (cbr_fork_two_sinks, [["conv1"], ["bn1", "conv1", "relu", "sig"], ["convA"], ["convB"]]),
    "gap_gemm": (gap_gemm, [["conv", "relu"], ["gap"], ["fc"], ["fc"]]),
    "gemm_relu": (gemm_relu, [["conv", "relu"], ["gap"], ["fc"], ["fc", "fcrelu"]]),
    "lrn": (lrn, [["conv", "relu"], ["lrn"], ["lrn"], ["lrn"]]),
    "pool_relu": (pool_relu, [["conv", "relu"], ["pool"], ["prelu"]]),
    "grouped_relu_gap": (grouped_relu_gap, [["gconv"], ["gconv", "relu", "gap"], ["conv2"]]),
    "grouped_relu_conv": (grouped_relu_conv, [["gconv", "relu"], ["conv2"]]),
    "concat_one_input": (concat_one_input, [["conv1", "relu1", "bn", "relu2"], ["conv2"]]),
    "se_block": (se_block, [["conv1"], ["bn1", "relu1", "gap", "conv1"], ["fc1", "fc1relu"], ["fc2", "gate"],
                            ["scale"], ["conv2"]]),
    "layout_ln_conv": (layout_ln_conv, [["conv1"], ["t1", "ln"], ["t2", "conv2"]]),
    "layout_relu_t": (layout_relu_t, [["conv1"], ["t1", "relu", "t2"], ["conv2"]]),
    "fold_shuffle": (fold_shuffle, [["conv1"], ["bn1", "conv1", "relu1", "resh1", "tr"], ["conv2"]]),
    "c2f_split": (c2f_split, [["conv1", "silu1_sig", "silu1"], ["split"], ["split", "cat"],
                              ["conv2", "silu2_sig", "silu2"], ["conv3"]]),
    "hswish_gap_apart": (hswish_gap(480), [["dw"], ["hs"], ["gap"], ["fc1"]]),
    "hswish_gap_together": (hswish_gap(80), [["dw"], ["hs", "gap"], ["fc1"]]),
    "mlp_head": (mlp_head, [["conv"], ["gap"], ["fc1"], ["fc1", "relu1", "fc2"], ["fc2", "sm"], ["sm", "am"]]),
    "softmax_out_image_c": (softmax_out_image(1), [["conv"], ["sm"], ["sm"]]),
    "softmax_out_image_w": (softmax_out_image(-1), [["conv"], ["sm"], ["sm"]]),
    "grouped_gap": (grouped_gap, [["gc"], ["gc", "gap"], ["fc"]]),
    "qdq_residual": (qdq_residual, [["in_q"], ["c1", "c1_wdq", "c1_wq", "in_dq"], ["a1_q", "c1", "r1"],
                                    ["a1_dq", "c2", "c2_wdq", "c2_wq"], ["a2_q", "add", "c2", "in_dq", "r2"],
                                    ["a2_dq", "c3", "c3_wdq", "c3_wq"], ["c3"]]),
    "qdq_int8_chain": (qdq_int8_chain, [["in_q"], ["c1", "in_dq", "c1_wdq", "c1_wq"], ["bn1", "r1", "a1_q"],
                                        ["c2", "a1_dq", "c2_wdq", "c2_wq"], ["c2"]]),
    "concat_kgen_cycle": (concat_kgen_cycle, [["mul0"], ["conv1"], ["pool14"],
                                              ["relu2", "concat3", "concat4", "relu5", "add9", "add11"]]),
}


def _predict(name: str) -> Prediction:
    return predict(load(CASES[name][0](), batch=1), "rtx")


def _expected(name: str) -> Counter[frozenset[str]]:
    return Counter(frozenset(group) for group in CASES[name][1])


@pytest.mark.parametrize("name", sorted(CASES))
def test_prediction(name: str) -> None:
    assert kernels(_predict(name).plan) == _expected(name)


@pytest.mark.rtx
@pytest.mark.parametrize("name", sorted(CASES))
def test_live(name: str) -> None:
    assert kernels(engine_plan(CASES[name][0]())) == _expected(name)


def _failed(prediction: Prediction, rule: str) -> set[int]:
    return {r.condition for r in prediction.rejections if r.rule == rule}


def test_rules_that_formed_the_kernels() -> None:
    rules = {layer.nodes: layer.rule for layer in _predict("residual").plan.layers}
    assert rules == {("conv1", "relu1"): "rtx_conv_activation", ("conv2", "add", "relu2"): "rtx_conv_add"}
    assert {layer.rule for layer in _predict("cbr_then_conv").plan.layers} == {"rtx_runtime_fusion", "unfused"}
    assert _predict("concat_inplace").plan.eliminated["cat"].how.value == "concat"


def test_shared_nodes() -> None:
    plan = _predict("cbr_out").plan
    kgen = next(layer for layer in plan.layers if "bn" in layer.nodes)
    assert kgen.shared == ("conv",) and kgen.rule == "rtx_pointwise"
    assert plan.node_to_layer()["conv"] != plan.node_to_layer()["bn"]
    lrns = [layer for layer in _predict("lrn").plan.layers if layer.nodes == ("lrn",)]
    assert [layer.shared for layer in lrns] == [(), ("lrn",), ("lrn",)]


def test_rejections_name_the_failed_condition() -> None:
    assert 2 in _failed(_predict("conv_relu_and_conv"), "rtx_conv_activation")  # two readers
    assert 1 in _failed(_predict("cbr_out"), "rtx_runtime_fusion")  # a graph output
    assert 3 in _failed(_predict("cbr_fork_two_sinks"), "rtx_runtime_fusion")  # two sinks
    assert 1 in _failed(_predict("concat_inplace"), "rtx_concat")  # in place
    assert 1 in _failed(_predict("leaky_then_conv"), "rtx_conv_activation")  # not native
    assert 8 in _failed(_predict("se_block"), "rtx_runtime_fusion")  # the scale Mul broadcasts
    assert 4 in _failed(_predict("se_block"), "rtx_pointwise")  # not convex: the Mul waits for the gate
    assert 3 in _failed(_predict("qdq_int8_chain"), "rtx_qdq")  # per-channel int8: no epilogue
    assert 3 in _failed(_predict("layout_ln_conv"), "rtx_layout")  # t2 read by a conv only
    assert 9 in _failed(_predict("fold_shuffle"), "rtx_runtime_fusion")  # a movement op in the epilogue
    assert 3 in _failed(_predict("hswish_gap_apart"), "rtx_pointwise")  # HardSwish map too large
    assert 4 in _failed(_predict("mlp_head"), "rtx_gemm")  # fc1's epilogue in fc2's first kernel
    assert 3 in _failed(_predict("c2f_split"), "rtx_concat")  # recomputed by the Split kgen
    assert _predict("fold_shuffle").plan.eliminated["div"].how.value == "constant-folded"


def test_plan_invariants_with_shared_nodes() -> None:
    from fusionlab.fusion.predictor import check_plan

    graph = load(cbr_out(), batch=1)
    plan = predict(graph, "rtx").plan
    assert check_plan(graph, plan) is None
    without_owner = plan.with_layers(layer for layer in plan.layers if layer.nodes != ("conv",))
    assert "shared nodes no layer owns" in (check_plan(graph, without_owner) or "")


def test_stages_form_kernels_rule_by_rule() -> None:
    stages = {s.name: s for s in _predict("cbr_out").stages}
    assert [layer.nodes for layer in stages["rtx_pointwise"].formed] == [("bn", "relu")]
    kgen = next(layer for layer in stages["rtx_share_bias"].plan.layers if "bn" in layer.nodes)
    assert kgen.nodes == ("bn", "relu", "conv") and kgen.shared == ("conv",)

"""FLOPs and bytes per node, checked against arithmetic done by hand in each test.

Every model here is one node between graph inputs and outputs; shapes come from ONNX
shape inference through :func:`fusionlab.load`, so these tests also check that the
loader hands the right shapes to the cost model. Multiply-add = 2 FLOPs; float32 = 4 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionlab.ir.flops import Cost, node_cost
from fusionlab.ir.graph import load
from fusionlab.ir.tensors import Tensor

F32 = 4  # bytes per float32


def one_node(
    kit: Any,
    node: onnx.NodeProto,
    inputs: Sequence[onnx.ValueInfoProto],
    inits: Sequence[onnx.TensorProto] = (),
) -> tuple[Cost, tuple[Any, ...] | None]:
    """Load a one-node model; return the node's cost and its first output's shape."""
    model = kit.model([node], inputs, [kit.value(node.output[0], None)], inits)
    g = load(model)
    n = g.node(next(iter(g.order)))
    return n.cost, g.tensors[node.output[0]].shape


#   x[1,8,16,16] --Conv(W[16,4,3,3], B[16], group=2, stride=2, pad=1)--> y[1,16,8,8]
def test_conv_with_groups_stride_and_bias(kit: Any) -> None:
    node = helper.make_node("Conv", ["x", "W", "B"], ["y"], group=2, strides=[2, 2],
                            pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    cost, shape = one_node(kit, node, [kit.value("x", [1, 8, 16, 16])],
                           [kit.weight("W", [16, 4, 3, 3]), kit.weight("B", [16])])
    assert shape == (1, 16, 8, 8)  # (16 + 2*1 - 3) // 2 + 1 = 8
    outputs = 1 * 16 * 8 * 8  # 1024
    per_output = 2 * (8 // 2) * 3 * 3  # C_in/groups = 4 -> 72 FLOPs
    assert cost.flops == outputs * per_output + outputs  # 73728 + bias 1024 = 74752
    assert cost.flops == 74752
    assert cost.bytes_read == (8 * 16 * 16 + 16 * 4 * 3 * 3 + 16) * F32  # 10560
    assert cost.bytes_written == outputs * F32
    assert cost.note == ""


#   x[1,1,7,7] --Conv(W[1,1,3,3], dilation=2, no pad)--> y[1,1,3,3]
def test_conv_with_dilation_counts_the_real_kernel(kit: Any) -> None:
    node = helper.make_node("Conv", ["x", "W"], ["y"], dilations=[2, 2])
    cost, shape = one_node(kit, node, [kit.value("x", [1, 1, 7, 7])],
                           [kit.weight("W", [1, 1, 3, 3])])
    # the dilated kernel spans 2*(3-1)+1 = 5 pixels: 7 - 5 + 1 = 3 outputs per side,
    # but each output still takes 3*3 multiply-adds
    assert shape == (1, 1, 3, 3)
    assert cost.flops == 9 * 2 * 1 * 3 * 3 == 162


#   x[1,4,5,5] --ConvTranspose(W[4,2,3,3], B[2], stride=2)--> y[1,2,11,11]
def test_conv_transpose(kit: Any) -> None:
    node = helper.make_node("ConvTranspose", ["x", "W", "B"], ["y"], strides=[2, 2])
    cost, shape = one_node(kit, node, [kit.value("x", [1, 4, 5, 5])],
                           [kit.weight("W", [4, 2, 3, 3]), kit.weight("B", [2])])
    assert shape == (1, 2, 11, 11)  # (5 - 1) * 2 + 3 = 11
    # every input element is multiplied into C_out/groups * 3*3 = 18 outputs
    inputs, outputs = 4 * 5 * 5, 2 * 11 * 11  # 100, 242
    assert cost.flops == inputs * 2 * 2 * 3 * 3 + outputs == 3600 + 242


#   x[1,4,5,5] --ConvTranspose(W[4,1,3,3], group=2)--> y[1,2,7,7]
def test_conv_transpose_with_groups(kit: Any) -> None:
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], group=2)
    cost, shape = one_node(kit, node, [kit.value("x", [1, 4, 5, 5])],
                           [kit.weight("W", [4, 1, 3, 3])])
    assert shape == (1, 2, 7, 7)
    assert cost.flops == 100 * 2 * 1 * 9 == 1800  # C_out/groups = 1


#   A[6,3] (transA) , B[6,5] , C[5] --Gemm--> y[3,5]
def test_gemm_with_trans_a_and_bias(kit: Any) -> None:
    node = helper.make_node("Gemm", ["A", "B", "C"], ["y"], transA=1)
    cost, shape = one_node(kit, node, [kit.value("A", [6, 3])],
                           [kit.weight("B", [6, 5]), kit.weight("C", [5])])
    assert shape == (3, 5)
    # M=3, N=5, K=6 (the first dimension of A, since A is transposed)
    assert cost.flops == 2 * 3 * 5 * 6 + 3 * 5 == 195
    assert cost.bytes_read == (18 + 30 + 5) * F32


#   A[4,6] , B[6,5] --Gemm (no C)--> y[4,5]
def test_gemm_without_bias(kit: Any) -> None:
    node = helper.make_node("Gemm", ["A", "B"], ["y"])
    cost, _ = one_node(kit, node, [kit.value("A", [4, 6])], [kit.weight("B", [6, 5])])
    assert cost.flops == 2 * 4 * 5 * 6 == 240


#   A[2,3,4,8] , B[3,8,5] --MatMul (broadcast batch)--> y[2,3,4,5]
def test_matmul_with_batch_dimensions(kit: Any) -> None:
    node = helper.make_node("MatMul", ["A", "B"], ["y"])
    cost, shape = one_node(kit, node, [kit.value("A", [2, 3, 4, 8])], [kit.weight("B", [3, 8, 5])])
    assert shape == (2, 3, 4, 5)
    assert cost.flops == 2 * (2 * 3 * 4 * 5) * 8 == 1920


#   x[1,4,3,3] --BatchNormalization(scale, bias, mean, var)--> y[1,4,3,3]
def test_batch_normalization(kit: Any) -> None:
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    variance = numpy_helper.from_array(np.ones(4, np.float32), "v")
    inits = [kit.weight(n, [4]) for n in "sbm"] + [variance]
    cost, _ = one_node(kit, node, [kit.value("x", [1, 4, 3, 3])], inits)
    assert cost.flops == 2 * 36 == 72  # one scale and one shift per element
    assert cost.bytes_read == (36 + 4 * 4) * F32


#   x[1,2,8,8] --pool--> y
@pytest.mark.parametrize(
    ("op", "attrs", "out_shape", "flops"),
    [
        # 8x8 -> (8 + 2 - 3) // 2 + 1 = 4x4, 2 channels = 32 outputs, 3*3 window each
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
         (1, 2, 4, 4), 32 * 9),
        # 8x8 -> 4x4, 2x2 window
        ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, (1, 2, 4, 4), 32 * 4),
        # one operation per input element: 2 * 8 * 8
        ("GlobalAveragePool", {}, (1, 2, 1, 1), 128),
        ("GlobalMaxPool", {}, (1, 2, 1, 1), 128),
    ],
)
def test_pooling(kit: Any, op: str, attrs: dict[str, Any], out_shape: tuple[int, ...],
                 flops: int) -> None:
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    cost, shape = one_node(kit, node, [kit.value("x", [1, 2, 8, 8])])
    assert shape == out_shape
    assert cost.flops == flops


#   x[1,8,4,4] --LRN(size=5)--> y[1,8,4,4]
def test_lrn(kit: Any) -> None:
    node = helper.make_node("LRN", ["x"], ["y"], size=5, alpha=1e-4, beta=0.75, bias=1.0)
    cost, _ = one_node(kit, node, [kit.value("x", [1, 8, 4, 4])])
    # per element: 5 squares + 5 adds, * alpha/size, + bias, pow, divide = 2*5 + 4 = 14
    assert cost.flops == 128 * (2 * 5 + 4) == 1792


#   x[2,10] --Softmax(axis=-1)--> y[2,10]
def test_softmax(kit: Any) -> None:
    cost, _ = one_node(kit, helper.make_node("Softmax", ["x"], ["y"]), [kit.value("x", [2, 10])])
    assert cost.flops == 20 * 5 == 100  # max, subtract, exp, sum, divide per element


#   a[1,2,4,4] ─┐
#               ├─ Concat(axis=1) ──> y[1,5,4,4]
#   b[1,3,4,4] ─┘
def test_concat_is_zero_flops_but_moves_bytes(kit: Any) -> None:
    node = helper.make_node("Concat", ["a", "b"], ["y"], axis=1)
    cost, shape = one_node(kit, node, [kit.value("a", [1, 2, 4, 4]), kit.value("b", [1, 3, 4, 4])])
    assert shape == (1, 5, 4, 4)
    assert cost.flops == 0
    assert cost.bytes_read == (32 + 48) * F32
    assert cost.bytes_written == 80 * F32
    assert cost.bytes == 160 * F32


#   x[1,3,4,4] --op--> y[1,3,4,4]   (48 elements)
@pytest.mark.parametrize(
    ("op", "per_element"),
    [("Relu", 1), ("Clip", 2), ("LeakyRelu", 2), ("Sigmoid", 3), ("Tanh", 1), ("HardSwish", 4)],
)
def test_unary_pointwise(kit: Any, op: str, per_element: int) -> None:
    cost, _ = one_node(kit, helper.make_node(op, ["x"], ["y"]), [kit.value("x", [1, 3, 4, 4])])
    assert cost.flops == 48 * per_element
    assert cost.bytes_read == cost.bytes_written == 48 * F32


#   x[1,3,4,4] , c[3,1,1] --op (broadcast)--> y[1,3,4,4]
@pytest.mark.parametrize("op", ["Add", "Mul", "Sub", "Div"])
def test_binary_pointwise_counts_output_elements(kit: Any, op: str) -> None:
    node = helper.make_node(op, ["x", "c"], ["y"])
    cost, shape = one_node(kit, node, [kit.value("x", [1, 3, 4, 4])], [kit.weight("c", [3, 1, 1])])
    assert shape == (1, 3, 4, 4)
    assert cost.flops == 48
    assert cost.bytes_read == (48 + 3) * F32


#   a, b, c [2,5] --Sum / Max / Mean--> y[2,5]
def test_variadic_pointwise_counts_each_extra_input(kit: Any) -> None:
    xs = [kit.value(n, [2, 5]) for n in "abc"]
    for op, per_element in (("Sum", 2), ("Max", 2), ("Mean", 3)):  # Mean: 2 adds + 1 divide
        cost, _ = one_node(kit, helper.make_node(op, ["a", "b", "c"], ["y"]), xs)
        assert cost.flops == 10 * per_element, op


#   x[1,3,4,4] --data movement--> y
@pytest.mark.parametrize(
    ("node", "shape"),
    [
        (helper.make_node("Flatten", ["x"], ["y"]), (1, 48)),
        (helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1]), (1, 4, 4, 3)),
        (helper.make_node("Dropout", ["x"], ["y"]), (1, 3, 4, 4)),
        (helper.make_node("Identity", ["x"], ["y"]), (1, 3, 4, 4)),
    ],
    ids=["Flatten", "Transpose", "Dropout", "Identity"],
)
def test_data_movement_is_zero_flops(
    kit: Any, node: onnx.NodeProto, shape: tuple[int, ...]
) -> None:
    cost, out_shape = one_node(kit, node, [kit.value("x", [1, 3, 4, 4])])
    assert out_shape == shape
    assert cost.flops == 0
    assert cost.bytes_written == 48 * F32


#   x[1,3,4,4] , shape=[1,-1] --Reshape--> y[1,48]
def test_reshape_is_zero_flops(kit: Any) -> None:
    target = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    cost, shape = one_node(kit, node, [kit.value("x", [1, 3, 4, 4])], [target])
    assert shape == (1, 48)
    assert cost.flops == 0
    assert cost.bytes_read == 48 * F32 + 2 * 8  # the int64 shape tensor is read too


#   x[2,3] , axis=1 --CumSum (not in the cost model)--> y[2,3]
def test_unknown_op_gets_bytes_and_an_explicit_note(kit: Any) -> None:
    axis = numpy_helper.from_array(np.array(1, np.int64), "axis")
    cost, shape = one_node(kit, helper.make_node("CumSum", ["x", "axis"], ["y"]),
                           [kit.value("x", [2, 3])], [axis])
    assert shape == (2, 3)
    assert cost.flops is None
    assert cost.note == "FLOPs unknown for CumSum"
    assert cost.bytes_read == 6 * F32 + 8
    assert cost.bytes_written == 6 * F32


#   x[1,3,8,8] , W (graph input, shape unknown) --Conv--> y (shape unknown)
def test_unknown_shapes_give_none_with_a_note(kit: Any) -> None:
    node = helper.make_node("Conv", ["x", "W"], ["y"])
    cost, _ = one_node(kit, node, [kit.value("x", [1, 3, 8, 8]), kit.value("W", None)])
    assert cost.flops is None
    assert cost.bytes_read is None
    assert "shapes not inferred" in cost.note


def test_node_cost_directly_with_omitted_optional_inputs() -> None:
    # Clip(x, <no min>, max): the empty input counts no bytes
    x = Tensor("x", (2, 4), "float32")
    hi = Tensor("hi", (), "float32")
    cost = node_cost("Clip", {}, [x, None, hi], [Tensor("y", (2, 4), "float32")])
    assert cost == Cost(flops=16, bytes_read=8 * F32 + F32, bytes_written=8 * F32)
    assert node_cost("If", {}, [Tensor("c", (), "bool")], []).note.startswith("If is opaque")


def test_float16_bytes(kit: Any) -> None:
    #   x[1,3,4,4] fp16 --Relu--> y
    model = kit.model([helper.make_node("Relu", ["x"], ["y"])],
                      [kit.value("x", [1, 3, 4, 4], TensorProto.FLOAT16)],
                      [kit.value("y", None, TensorProto.FLOAT16)])
    n = load(model).node("Relu_0")
    assert n.cost.bytes_read == n.cost.bytes_written == 48 * 2

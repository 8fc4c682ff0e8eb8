"""The fp16/bf16 ONNX conversion for strongly typed TensorRT, checked numerically.

fp16 runs on onnxruntime's CPU kernels; onnxruntime has no CPU kernels for bfloat16, so
bf16 runs on ONNX's reference evaluator (numpy, bf16 through ml_dtypes).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fusionlab.backends.tensorrt_precision import (
    convert_float_model,
    from_bfloat16_bits,
    has_qdq,
    to_bfloat16_bits,
)
from fusionlab.errors import FusionlabError

ort = pytest.importorskip(
    "onnxruntime", reason="the numerical check runs the model with onnxruntime"
)


def _small_cnn(seed: int = 0) -> onnx.ModelProto:
    r"""A CNN with the fusions' usual ops, two outputs, and a Resize whose scales must stay fp32.

    x -> Conv -> BN -> Relu -+-> Conv1x1 -> Relu -+-> Concat -> MaxPool -> feat (output)
                             \-> Conv3x3 -> Relu -/                        |
                                                                           v
                             logits <- Gemm <- Flatten <- GAP <- Resize(scales fp32)
    """
    rng = np.random.default_rng(seed)

    def w(name: str, *shape: int, scale: float = 0.3) -> onnx.TensorProto:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    inits = [
        w("w0", 8, 3, 3, 3),
        w("b0", 8),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "bn_s"),
        w("bn_b", 8),
        w("bn_m", 8, scale=0.1),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 8).astype(np.float32), "bn_v"),
        w("w1", 4, 8, 1, 1),
        w("w2", 4, 8, 3, 3),
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        w("fc_w", 10, 8),
        w("fc_b", 10),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], name="conv0"),
        helper.make_node(
            "BatchNormalization", ["c0", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"], name="bn0"
        ),
        helper.make_node("Relu", ["bn"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r0", "w2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Concat", ["r1", "r2"], ["cat"], axis=1, name="concat"),
        helper.make_node(
            "MaxPool", ["cat"], ["feat"], kernel_shape=[2, 2], strides=[2, 2], name="pool"
        ),
        helper.make_node("Resize", ["feat", "", "scales"], ["up"], mode="nearest", name="resize"),
        helper.make_node("GlobalAveragePool", ["up"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "small_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10]),
            helper.make_tensor_value_info("feat", TensorProto.FLOAT, ["N", 8, 8, 8]),
        ],
        inits,
    )
    model = _model(graph)
    onnx.checker.check_model(model)
    return model


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    """Opset 17, IR version 8: readable by older onnxruntime releases too."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run_ort(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, {"x": x})]


def _elem(t: onnx.ValueInfoProto) -> str:
    return str(TensorProto.DataType.Name(t.type.tensor_type.elem_type))


def test_fp16_outputs_match_fp32_within_fp16_tolerance() -> None:
    model = _small_cnn()
    half = convert_float_model(model, "fp16")
    onnx.checker.check_model(half, full_check=True)
    x = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    ref = _run_ort(model, x)
    got = _run_ort(half, x)
    for r, h in zip(ref, got, strict=True):
        assert h.dtype == np.float32  # I/O stays fp32
        scale = float(np.abs(r).max())
        np.testing.assert_allclose(h, r, rtol=1e-2, atol=1e-2 * scale)
        assert not np.array_equal(h, r)  # it really computed in fp16


def test_fp16_model_structure() -> None:
    half = convert_float_model(_small_cnn(), "fp16")
    g = half.graph
    assert [_elem(v) for v in (*g.input, *g.output)] == ["FLOAT"] * 3
    init_types = {i.name: TensorProto.DataType.Name(i.data_type) for i in g.initializer}
    assert init_types.pop("scales") == "FLOAT"  # Resize scales are float32-only in ONNX
    assert set(init_types.values()) == {"FLOAT16"}
    casts = [n for n in g.node if n.op_type == "Cast"]
    assert casts[0].input == ["x"]  # the input is cast first
    assert {n.output[0] for n in casts} >= {"logits", "feat"}  # the outputs are cast back
    # the second output is also read inside the graph: the reader takes the fp16 tensor
    resize = next(n for n in g.node if n.op_type == "Resize")
    assert resize.input[0] == "feat_fp16"


def test_bf16_outputs_match_fp32_within_bf16_tolerance() -> None:
    from onnx.reference import ReferenceEvaluator

    model = _small_cnn()
    half = convert_float_model(model, "bf16")
    assert {TensorProto.DataType.Name(i.data_type) for i in half.graph.initializer} == {
        "BFLOAT16",
        "FLOAT",
    }
    x = np.random.default_rng(2).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref = _run_ort(model, x)
    got = ReferenceEvaluator(half).run(None, {"x": x})
    for r, h in zip(ref, got, strict=True):
        assert h.dtype == np.float32
        scale = float(np.abs(r).max())
        np.testing.assert_allclose(h, r, rtol=5e-2, atol=5e-2 * scale)
        assert not np.array_equal(h, r)


def test_fp16_clips_weights_to_the_fp16_range() -> None:
    big = numpy_helper.from_array(np.array([[1e6, -1e6]], np.float32), "w")
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [big],
    )
    half = convert_float_model(_model(g), "fp16")
    w = numpy_helper.to_array(half.graph.initializer[0])
    assert w.tolist() == [[65504.0, -65504.0]]
    assert np.isfinite(_run_ort(half, np.ones((1, 1), np.float32))[0]).all()


def test_constants_and_casts_follow_the_precision() -> None:
    """x -> Add(Constant 0.5) -> Cast(to float) -> y: both become fp16 inside."""
    nodes = [
        helper.make_node("Constant", [], ["c"], value_float=0.5),
        helper.make_node("Add", ["x", "c"], ["a"]),
        helper.make_node("Cast", ["a"], ["y"], to=TensorProto.FLOAT),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    half = convert_float_model(_model(g), "fp16")
    const = next(n for n in half.graph.node if n.op_type == "Constant")
    assert const.attribute[0].t.data_type == TensorProto.FLOAT16
    x = np.array([1.0, 2.0], np.float32)
    np.testing.assert_allclose(_run_ort(half, x)[0], x + 0.5)


def test_refuses_control_flow_and_unknown_precision() -> None:
    body = helper.make_graph([], "b", [], [])
    node = helper.make_node("If", ["c"], ["y"], then_branch=body, else_branch=body)
    m = helper.make_model(helper.make_graph([node], "g", [], []))
    with pytest.raises(FusionlabError, match="control flow"):
        convert_float_model(m, "fp16")
    with pytest.raises(FusionlabError, match="unknown precision"):
        convert_float_model(_small_cnn(), "fp8")


def test_bfloat16_bits_match_ml_dtypes_rounding() -> None:
    ml_dtypes = pytest.importorskip(
        "ml_dtypes", reason="ml_dtypes (an onnx dependency) is the reference"
    )
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            rng.standard_normal(10_000).astype(np.float32) * 10.0 ** rng.integers(-30, 30, 10_000),
            np.array(
                [0.0, -0.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, 3.4e38, np.inf, -np.inf], np.float32
            ),
        ]
    ).astype(np.float32)
    expected = values.astype(ml_dtypes.bfloat16).view(np.uint16)
    assert np.array_equal(to_bfloat16_bits(values), expected)
    exact = np.array([0.0, 1.0, -3.5, 2.0**-100], np.float32)
    assert np.array_equal(from_bfloat16_bits(to_bfloat16_bits(exact)), exact)
    assert np.isnan(from_bfloat16_bits(to_bfloat16_bits(np.array([np.nan], np.float32))))[0]


def test_has_qdq() -> None:
    q = helper.make_node("QuantizeLinear", ["x", "s"], ["q"])
    assert has_qdq(helper.make_model(helper.make_graph([q], "g", [], [])))
    assert not has_qdq(_small_cnn())

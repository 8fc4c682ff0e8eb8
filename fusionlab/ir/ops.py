"""ONNX op families: the vocabulary that costs, passes and drawings share.

>>> family("Conv"), family("Relu"), family("Concat"), family("NonMaxSuppression")
('conv', 'activation', 'concat', 'other')
"""

from __future__ import annotations

CONV = frozenset({"Conv", "ConvTranspose"})
GEMM = frozenset({"Gemm", "MatMul"})
NORM = frozenset({"BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN"})
ACTIVATIONS = frozenset(
    {
        "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
        "Elu", "Selu", "Softplus", "Softsign", "ThresholdedRelu", "Gelu", "Mish", "Celu",
    }
)
UNARY = frozenset(
    {
        "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round", "Sign",
        "Erf", "Sin", "Cos", "Not", "Cast", "Identity",
    }
)
BINARY = frozenset(
    {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "Where", "And", "Or",
     "Equal", "Greater", "Less"}
)
POOLING = frozenset(
    {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "GlobalLpPool"}
)
DATA_MOVEMENT = frozenset(
    {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Dropout", "Identity",
     "Slice", "Gather", "Expand", "Tile", "Pad", "Split", "Shape", "Constant"}
)
REDUCE = frozenset(
    {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "Softmax",
     "LogSoftmax"}
)
OPAQUE = frozenset({"If", "Loop", "Scan"})
POINTWISE = ACTIVATIONS | (UNARY - {"Identity"}) | BINARY


def family(op: str) -> str:
    """The family an op belongs to (used for colours, costs and rule tables)."""
    if op in CONV:
        return "conv"
    if op in GEMM:
        return "gemm"
    if op in NORM:
        return "norm"
    if op in ACTIVATIONS:
        return "activation"
    if op in POOLING:
        return "pool"
    if op == "Concat":
        return "concat"
    if op in BINARY or op in UNARY - {"Identity"}:
        return "pointwise"
    if op in REDUCE:
        return "reduce"
    if op in DATA_MOVEMENT:
        return "shuffle"
    if op in OPAQUE:
        return "control"
    return "other"

"""The Q/DQ models and the detectors: resnet18-qat, mobilenetv2-qdq, yolov8n, unet.

- resnet18-qat against the real TensorRT engine record ``trex-resnet18-a100-qat``: every ONNX
  node and tensor name the record shows exists in the model, with its op type and role.
- Q/DQ conventions: int8 zero points of 0, per-channel weight scales on axis 0, per-tensor
  activation scales, Q/DQ placement.
- yolov8n and unet against PyTorch definitions of the same networks (here, below): the
  exporter's output node for node, parameters, and FLOPs (``fusionlab inspect --json``).
- Every model: valid, deterministic, symbolic batch, runs in onnxruntime.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from fusionlab import zoo
from tests.records import RESNET18_QAT

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["mobilenetv2-qdq", "resnet18-qat", "unet", "yolov8n"]
OUTPUT = {"mobilenetv2-qdq": [1000], "resnet18-qat": [1000], "unet": [2, 256, 256],
          "yolov8n": [84, 8400]}
BATCH_NAME = {"mobilenetv2-qdq": "N", "resnet18-qat": "batch_size", "unet": "batch_size",
              "yolov8n": "batch"}


@pytest.fixture(scope="module")
def built() -> Any:
    cache: dict[str, onnx.ModelProto] = {}

    def get(name: str) -> onnx.ModelProto:
        if name not in cache:
            cache[name] = zoo.build(name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def layers() -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = json.loads((RESNET18_QAT / "engine.graph.json").read_text())["Layers"]
    return layers


# ------------------------------------------------------------------ every model
@pytest.mark.parametrize("name", MODELS)
def test_valid_deterministic_and_symbolic(name: str, built: Any) -> None:
    model = built(name)
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert len({n.name for n in model.graph.node}) == len(model.graph.node)
    assert zoo.build(name).SerializeToString() == model.SerializeToString()
    for value in (model.graph.input[0], model.graph.output[0]):
        assert value.type.tensor_type.shape.dim[0].dim_param == BATCH_NAME[name]
    text = zoo.describe(name)
    assert text and "\n" not in text and len(text) < 120


@pytest.mark.parametrize("name", MODELS)
def test_runs_in_onnxruntime_at_batch_2(name: str, built: Any) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(built(name).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    x = np.random.default_rng(3).standard_normal([2, *inp.shape[1:]], dtype=np.float32)
    (y,) = session.run(None, {inp.name: x})
    assert list(y.shape) == [2, *OUTPUT[name]]
    assert np.isfinite(y).all()


# ------------------------------------------------------------------ the TensorRT record
_ENGINE_MADE = ("(Unnamed Layer", "unsqueeze_node_after_", "copied_squeeze_after_")


def _named_parts(layers: list[dict[str, Any]]) -> list[str]:
    """ONNX names in the layer names: split on `` + `` and `` || ``, TensorRT's own left out."""
    parts = []
    for layer in layers:
        name = layer["Name"]
        if name.startswith(("Reformatting CopyNode", *_ENGINE_MADE)):
            continue
        for part in name.replace(" || ", " + ").split(" + "):
            if not part.startswith(_ENGINE_MADE) and not part.endswith("_output"):
                parts.append(part)
    return parts


def test_record_names_all_exist(layers: list[dict[str, Any]], built: Any) -> None:
    """Every node name in the record's layers is a node of that op type (``QuantizeLinear_7``
    is a QuantizeLinear) or a weight initializer (``conv1.weight``); every tensor a layer
    reads or writes, except the engine's own, is a tensor of the model: 100 % coverage."""
    model = built("resnet18-qat")
    nodes = {n.name: n.op_type for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    tensors = {t for n in model.graph.node for t in [*n.input, *n.output]}
    parts = set(_named_parts(layers))
    node_parts = {p for p in parts if re.fullmatch(r"[A-Za-z]+_[0-9]+", p)}
    weight_parts = parts - node_parts  # conv1.weight, ..., fc.weight, fc.bias
    found = {p for p in node_parts if nodes.get(p) == p.rsplit("_", 1)[0]}
    engine_tensors = {t["Name"] for layer in layers for t in [*layer["Inputs"], *layer["Outputs"]]
                      if not t["Name"].startswith(("Reformatted", "(Unnamed Layer"))}
    print(f"\nrecord coverage: nodes {len(found)}/{len(node_parts)}, weights "
          f"{len(weight_parts & inits)}/{len(weight_parts)}, tensors "
          f"{len(engine_tensors & tensors)}/{len(engine_tensors)}")
    assert found == node_parts, sorted(node_parts - found)
    assert weight_parts <= inits, sorted(weight_parts - inits)
    assert len(node_parts) == 70 and len(weight_parts) == 22  # 21 weights and fc.bias
    assert engine_tensors <= tensors, sorted(engine_tensors - tensors)
    assert len(engine_tensors) == 34
    assert {i.name for i in model.graph.input} == {"input.1"}
    assert [o.name for o in model.graph.output] == ["422"]


def _producer(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {t: n for n in model.graph.node for t in n.output}


def test_record_layers_mean_what_the_model_says(layers: list[dict[str, Any]],
                                                built: Any) -> None:
    """``w + QuantizeLinear_k + Conv_j``: Q k quantizes the weight w that Conv j reads through
    its DQ; a ``Reformat`` whose Origin is QDQ is an activation QuantizeLinear of the tensor
    the layer reads; ``HasReLU`` says whether a Relu follows the layer's last named node."""
    model = built("resnet18-qat")
    by_name = {n.name: n for n in model.graph.node}
    inits = {i.name for i in model.graph.initializer}
    made_by = _producer(model)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)
    checked = 0
    for layer in layers:
        parts = layer["Name"].split(" + ")
        if layer["LayerType"] == "CaskConvolution" and not layer["Name"].startswith("fc."):
            weight, q, conv = parts[0], by_name[parts[1]], by_name[parts[2]]
            assert q.op_type == "QuantizeLinear" and q.input[0] == weight
            dq = made_by[conv.input[1]]
            assert dq.op_type == "DequantizeLinear" and dq.input[0] == q.output[0]
            last = by_name[parts[-1]]
            if last.op_type == "Conv":  # Conv -> BN (-> Relu), the Relu unnamed
                bn = readers[last.output[0]][0]
                assert bn.op_type == "BatchNormalization"
                relu = [r.op_type for r in readers[bn.output[0]]] == ["Relu"]
            else:  # ... + Add_k + Relu_j: the Relu named
                relu = last.op_type == "Relu"
            assert relu == bool(layer["HasReLU"]), layer["Name"]
            checked += 1
        elif layer.get("Origin") == "QDQ":
            (q,) = (by_name[p] for p in parts)
            assert q.op_type == "QuantizeLinear" and q.input[0] not in inits
            source, target = layer["Inputs"][0]["Name"], layer["Outputs"][0]["Name"]
            if target != q.output[0]:  # QuantizeLinear_250 moved above the Flatten it reads
                flatten = made_by[q.input[0]]
                assert flatten.op_type == "Flatten" and (source, target) == (
                    flatten.input[0], flatten.output[0])
            checked += 1
    assert checked == 20 + 10


# ------------------------------------------------------------------ Q/DQ conventions
def _constant(model: onnx.ModelProto, tensor: str) -> np.ndarray:
    inits = {i.name: i for i in model.graph.initializer}
    if tensor in inits:
        return numpy_helper.to_array(inits[tensor])
    node = _producer(model)[tensor]
    assert node.op_type == "Constant"
    return numpy_helper.to_array(node.attribute[0].t)


@pytest.mark.parametrize("name", ["resnet18-qat", "mobilenetv2-qdq"])
def test_symmetric_int8_per_channel_weights(name: str, built: Any) -> None:
    model = built(name)
    inits = {i.name: i for i in model.graph.initializer}
    qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    dqs = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert len(qs) == len(dqs)
    weights = 0
    for n in [*qs, *dqs]:
        zero = _constant(model, n.input[2])
        assert zero.dtype == np.int8 and not zero.any()
        scale = _constant(model, n.input[1])
        assert scale.dtype == np.float32 and (scale > 0).all()
        axis = {a.name: a.i for a in n.attribute}.get("axis")
        if n.op_type == "QuantizeLinear" and n.input[0] in inits:  # a weight: per channel
            weights += 1
            w = numpy_helper.to_array(inits[n.input[0]])
            assert axis == 0 and scale.shape == (w.shape[0],)
            amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
            np.testing.assert_allclose(scale, amax / 127, rtol=1e-6)
        elif n.op_type == "QuantizeLinear":
            assert axis is None and scale.shape == ()
    convs = sum(n.op_type in ("Conv", "Gemm") for n in model.graph.node)
    assert weights == convs  # every Conv and Gemm weight is quantized ...
    for n in model.graph.node:
        if n.op_type in ("Conv", "Gemm"):  # ... and so is every Conv and Gemm input
            assert all(_producer(model)[t].op_type == "DequantizeLinear" for t in n.input[:2])


def test_resnet18_qat_export_order(built: Any) -> None:
    model = built("resnet18-qat")
    ops = [n.op_type for n in model.graph.node]
    assert [n.name for n in model.graph.node] == [f"{op}_{i}" for i, op in enumerate(ops)]
    assert ops[:13] == ["Constant", "Constant", "QuantizeLinear", "Constant", "Constant",
                        "DequantizeLinear", "Constant", "QuantizeLinear", "DequantizeLinear",
                        "Conv", "BatchNormalization", "Relu", "MaxPool"]
    assert ops.count("QuantizeLinear") == ops.count("DequantizeLinear") == 2 * 21
    assert ops.count("BatchNormalization") == 20 and ops.count("Add") == 8
    by_name = {n.name: n for n in model.graph.node}
    # residual Adds are not quantized: Add(BN output, block input) in the plain export
    for add in (n for n in model.graph.node if n.op_type == "Add"):
        assert _producer(model)[add.input[0]].op_type == "BatchNormalization"
        assert _producer(model)[add.input[1]].op_type in ("Relu", "MaxPool",
                                                          "BatchNormalization")
    # the downsample quantizes the block input again, with the same scale as conv1
    q_conv1, q_down = by_name["QuantizeLinear_65"], by_name["QuantizeLinear_88"]
    assert q_conv1.input[0] == q_down.input[0] == "inputs.8"
    assert _constant(model, q_conv1.input[1]) == _constant(model, q_down.input[1])


def test_mobilenetv2_qdq_is_mobilenetv2_plus_qdq(built: Any) -> None:
    qdq, float_ = built("mobilenetv2-qdq"), built("mobilenetv2")
    kept = [(n.name, n.op_type) for n in qdq.graph.node
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    assert kept == [(n.name, n.op_type) for n in float_.graph.node]
    made_by = _producer(qdq)
    adds = [n for n in qdq.graph.node if n.op_type == "Add"]
    assert len(adds) == 10
    for add in adds:  # the skip input quantized (TensorRT's residual placement), not the branch
        skip, branch = (made_by[t] for t in add.input)
        assert skip.name.endswith("/residual_quantizer/DequantizeLinear")
        assert branch.op_type == "BatchNormalization"
    assert _inspect(qdq)["flops"] == _inspect(float_)["flops"]  # Q/DQ add no FLOPs


# ------------------------------------------------------------------ fusionlab inspect
def _inspect(model: onnx.ModelProto) -> dict[str, Any]:
    """``fusionlab inspect MODEL --json --nodes --batch 1``."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.onnx"
        path.write_bytes(model.SerializeToString())
        out = subprocess.run([sys.executable, "-m", "fusionlab", "inspect", str(path), "--json",
                              "--nodes", "--batch", "1"], check=True, capture_output=True,
                             text=True, cwd=ROOT)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _matmul_flops(info: dict[str, Any]) -> int:
    return sum(r["flops"] or 0 for r in info["node_table"]
               if r["op"] in ("Conv", "ConvTranspose", "Gemm", "MatMul"))


def _strip_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """The float model under the Q/DQ: each DQ output replaced by its Q's input, the Q/DQ
    nodes and the Constants only they read removed."""
    made_by = _producer(model)
    source = {n.output[0]: made_by[n.input[0]].input[0] for n in model.graph.node
              if n.op_type == "DequantizeLinear"}
    kept = [n for n in model.graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    read = {t for n in kept for t in n.input}
    kept = [n for n in kept if n.op_type != "Constant" or n.output[0] in read]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.node[:]
    for n in kept:
        copy = m.graph.node.add()
        copy.CopyFrom(n)
        copy.input[:] = [source.get(t, t) for t in n.input]
    return m


def test_resnet18_qat_flops_are_its_float_models(built: Any) -> None:
    qat = _inspect(built("resnet18-qat"))
    float_ = _inspect(_strip_qdq(built("resnet18-qat")))
    assert qat["flops_unknown_ops"] == []  # Q/DQ count zero: folded or fused by TensorRT
    assert float_["flops_unknown_ops"] == [] and float_["ops"].get("QuantizeLinear") is None
    assert qat["flops"] == float_["flops"]


# ------------------------------------------------------------------ PyTorch references
def _torch() -> Any:
    return pytest.importorskip("torch", reason="PyTorch is not installed: no reference modules")


def _references() -> SimpleNamespace:
    """PyTorch definitions of the zoo's networks (torchvision does not import here)."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class BasicBlock(nn.Module):  # TREx's qat_model.BasicBlock with quantize=False
        def __init__(self, cin: int, c: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            self.downsample = (nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False),
                                             nn.BatchNorm2d(c))
                               if stride != 1 or cin != c else None)

        def forward(self, x: Any) -> Any:
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)

    class ResNet18(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            blocks, cin = [], 64
            for stage, c in enumerate((64, 128, 256, 512)):
                for i in range(2):
                    blocks.append(BasicBlock(cin, c, 2 if stage and not i else 1))
                    cin = c
            self.layers = nn.Sequential(*blocks)
            self.fc = nn.Linear(512, 1000)

        def forward(self, x: Any) -> Any:
            x = self.layers(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    class Conv(nn.Module):  # ultralytics Conv, fused (the BN folded into the bias)
        def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=True)
            self.act = nn.SiLU()

        def forward(self, x: Any) -> Any:
            return self.act(self.conv(x))

    class Bottleneck(nn.Module):
        def __init__(self, c: int, shortcut: bool) -> None:
            super().__init__()
            self.cv1, self.cv2, self.add = Conv(c, c, 3), Conv(c, c, 3), shortcut

        def forward(self, x: Any) -> Any:
            y = self.cv2(self.cv1(x))
            return x + y if self.add else y

    class C2f(nn.Module):
        def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False) -> None:
            super().__init__()
            self.c = c2 // 2
            self.cv1, self.cv2 = Conv(c1, 2 * self.c, 1), Conv((2 + n) * self.c, c2, 1)
            self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

        def forward(self, x: Any) -> Any:  # forward_split, which ultralytics exports
            y = list(self.cv1(x).split((self.c, self.c), 1))
            y.extend(m(y[-1]) for m in self.m)
            return self.cv2(torch.cat(y, 1))

    class SPPF(nn.Module):
        def __init__(self, c1: int, c2: int) -> None:
            super().__init__()
            self.cv1, self.cv2 = Conv(c1, c1 // 2, 1), Conv(c1 // 2 * 4, c2, 1)
            self.m = nn.MaxPool2d(5, 1, 2)

        def forward(self, x: Any) -> Any:
            y = [self.cv1(x)]
            y.extend(self.m(y[-1]) for _ in range(3))
            return self.cv2(torch.cat(y, 1))

    class Concat(nn.Module):
        def forward(self, x: Any) -> Any:
            return torch.cat(x, 1)

    class DFL(nn.Module):
        def __init__(self, c1: int = 16) -> None:
            super().__init__()
            self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
            self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
            self.c1 = c1

        def forward(self, x: Any) -> Any:
            b, _, a = x.shape
            return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)

    class Detect(nn.Module):
        def __init__(self, ch: tuple[int, ...], nc: int = 80) -> None:
            super().__init__()
            self.nc, self.reg_max, self.no = nc, 16, nc + 64
            c2, c3 = max(16, ch[0] // 4, 64), max(ch[0], min(nc, 100))
            self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3),
                                                   nn.Conv2d(c2, 64, 1)) for x in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3),
                                                   nn.Conv2d(c3, nc, 1)) for x in ch)
            self.dfl = DFL(16)
            points, strides = [], []
            for s in (8, 16, 32):
                n = 640 // s
                r = torch.arange(n, dtype=torch.float) + 0.5
                sy, sx = torch.meshgrid(r, r, indexing="ij")
                points.append(torch.stack((sx, sy), -1).view(-1, 2))
                strides.append(torch.full((n * n, 1), float(s)))
            self.register_buffer("anchors", torch.cat(points).T, persistent=False)
            self.register_buffer("strides", torch.cat(strides).T, persistent=False)

        def forward(self, x: list[Any]) -> Any:
            for i in range(len(x)):
                x[i] = torch.cat((self.cv2[i](x[i]), self.cv3[i](x[i])), 1)
            shape = x[0].shape
            x_cat = torch.cat([xi.view(shape[0], self.no, -1) for xi in x], 2)
            box, cls = x_cat.split((64, self.nc), 1)
            lt, rb = self.dfl(box).chunk(2, 1)
            anchor = self.anchors.unsqueeze(0)
            x1y1, x2y2 = anchor - lt, anchor + rb
            dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * self.strides
            return torch.cat((dbox, cls.sigmoid()), 1)

    class YOLOv8n(nn.Module):  # ultralytics yolov8.yaml, scale n, as DetectionModel runs it
        def __init__(self) -> None:
            super().__init__()
            up = nn.Upsample(None, 2, "nearest")
            self.model = nn.Sequential(
                Conv(3, 16, 3, 2), Conv(16, 32, 3, 2), C2f(32, 32, 1, True), Conv(32, 64, 3, 2),
                C2f(64, 64, 2, True), Conv(64, 128, 3, 2), C2f(128, 128, 2, True),
                Conv(128, 256, 3, 2), C2f(256, 256, 1, True), SPPF(256, 256), up, Concat(),
                C2f(384, 128), nn.Upsample(None, 2, "nearest"), Concat(), C2f(192, 64),
                Conv(64, 64, 3, 2), Concat(), C2f(192, 128), Conv(128, 128, 3, 2), Concat(),
                C2f(384, 256), Detect((64, 128, 256)))
            self.sources = {11: (-1, 6), 14: (-1, 4), 17: (-1, 12), 20: (-1, 9),
                            22: (15, 18, 21)}

        def forward(self, x: Any) -> Any:
            y: list[Any] = []
            for i, m in enumerate(self.model):
                if i in self.sources:
                    x = [x if j == -1 else y[j] for j in self.sources[i]]
                x = m(x)
                y.append(x)
            return x

    class DoubleConv(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.double_conv = nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        def forward(self, x: Any) -> Any:
            return self.double_conv(x)

    class Down(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))

        def forward(self, x: Any) -> Any:
            return self.maxpool_conv(x)

    class Up(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(cin, cout)

        def forward(self, x1: Any, x2: Any) -> Any:  # milesial's no-op F.pad left out
            return self.conv(torch.cat([x2, self.up(x1)], dim=1))

    class UNet(nn.Module):  # milesial/Pytorch-UNet UNet(3, 2, bilinear=False)
        def __init__(self) -> None:
            super().__init__()
            self.inc = DoubleConv(3, 64)
            self.down1, self.down2 = Down(64, 128), Down(128, 256)
            self.down3, self.down4 = Down(256, 512), Down(512, 1024)
            self.up1, self.up2 = Up(1024, 512), Up(512, 256)
            self.up3, self.up4 = Up(256, 128), Up(128, 64)
            self.outc = nn.Conv2d(64, 2, kernel_size=1)

        def forward(self, x: Any) -> Any:
            x1 = self.inc(x)
            x2 = self.down1(x1)
            x3 = self.down2(x2)
            x4 = self.down3(x3)
            x = self.up1(self.down4(x4), x4)
            return self.outc(self.up4(self.up3(self.up2(x, x3), x2), x1))

    class MobileNetV2(nn.Module):  # torchvision's layout: the zoo's mobilenetv2
        def __init__(self) -> None:
            super().__init__()

            def cbr(cin: int, cout: int, k: int, s: int, g: int) -> Any:
                return [nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=g, bias=False),
                        nn.BatchNorm2d(cout), nn.ReLU6()]

            layers: list[Any] = [nn.Sequential(*cbr(3, 32, 3, 2, 1))]
            cin = 32
            for t, c, n, s in zoo.mobilenet.CONFIG:
                for i in range(n):
                    h = cin * t
                    block = ([*cbr(cin, h, 1, 1, 1)] if t != 1 else []) + [
                        *cbr(h, h, 3, s if i == 0 else 1, h), nn.Conv2d(h, c, 1, bias=False),
                        nn.BatchNorm2d(c)]
                    layers.append(nn.Sequential(*block))
                    cin = c
            layers.append(nn.Sequential(*cbr(cin, 1280, 1, 1, 1)))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(1280, 1000)

        def forward(self, x: Any) -> Any:
            for block in self.features:
                y = block(x)
                x = x + y if y.shape == x.shape else y
            return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return SimpleNamespace(torch=torch, ResNet18=ResNet18, YOLOv8n=YOLOv8n, UNet=UNet,
                           MobileNetV2=MobileNetV2)


@pytest.fixture(scope="module")
def refs() -> SimpleNamespace:
    return _references()


def _torch_flops(refs: SimpleNamespace, module: Any, shape: tuple[int, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    torch = refs.torch
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module.eval()(torch.zeros(shape))
    return int(counter.get_total_flops())


def _fused_parameters(module: Any) -> int:
    """Parameters once each BatchNorm is folded into its convolution (a bias per channel)."""
    import torch

    n = 0
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n += m.num_features
        elif not list(m.children()):
            n += sum(p.numel() for p in m.parameters(recurse=False))
    return n


REFERENCE = {  # zoo model -> (reference class, input shape)
    "resnet18-qat": ("ResNet18", (1, 3, 224, 224)),
    "mobilenetv2-qdq": ("MobileNetV2", (1, 3, 224, 224)),
    "yolov8n": ("YOLOv8n", (1, 3, 640, 640)),
    "unet": ("UNet", (1, 3, 256, 256)),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_flops_match_the_pytorch_reference(name: str, refs: SimpleNamespace, built: Any) -> None:
    """Conv/ConvTranspose/Gemm FLOPs from ``fusionlab inspect --json`` within 1 % of
    PyTorch's FlopCounterMode on the reference (2 per multiply-add; fusionlab adds one per
    biased output element). The Q/DQ models count their float model's FLOPs (above)."""
    cls, shape = REFERENCE[name]
    reference = getattr(refs, cls)()
    expected = _torch_flops(refs, reference, shape)
    info = _inspect(built(name))
    got = _matmul_flops(info)
    print(f"\n{name}: fusionlab {got / 1e9:.3f} GFLOPs (conv/gemm), total {info['flops'] / 1e9:.3f};"
          f" torch {expected / 1e9:.3f}")
    assert abs(got - expected) <= 0.01 * expected
    if name in ("yolov8n", "unet"):  # BN folded into the convolutions in both
        assert info["parameters"] == _fused_parameters(reference)


def test_yolov8n_has_ultralytics_parameter_count(refs: SimpleNamespace, built: Any) -> None:
    reference = refs.YOLOv8n()
    assert sum(p.numel() for p in reference.parameters()) == 3_151_904  # "yolov8n (fused)"
    assert sum(int(np.prod(i.dims)) for i in built("yolov8n").graph.initializer) == 3_151_904


# ------------------------------------------------------------------ node for node
def _normalized(model: onnx.ModelProto) -> Iterator[tuple[Any, ...]]:
    for n in model.graph.node:
        attrs = []
        for a in sorted(n.attribute, key=lambda a: a.name):
            v = helper.get_attribute_value(a)
            if a.name == "value":
                t = numpy_helper.to_array(v)
                v = (str(t.dtype), t.shape, t.ravel()[:8].round(4).tolist())
            attrs.append((a.name, v))
        yield n.name, n.op_type, tuple(n.input), tuple(n.output), tuple(attrs)


EXPORT = {  # zoo model -> (reference, input shape, input, output, batch axis name)
    "yolov8n": ("YOLOv8n", (1, 3, 640, 640), "images", "output0", "batch"),
    "unet": ("UNet", (1, 3, 256, 256), "input", "output", "batch_size"),
}


@pytest.mark.parametrize("name", sorted(EXPORT))
def test_same_graph_as_torch_exports(name: str, refs: SimpleNamespace, built: Any,
                                     tmp_path: Path) -> None:
    """The reference exported by the venv's torch (legacy TorchScript exporter, opset 13,
    dynamic batch) is the zoo model node for node: names, ops, edges, attributes, constants;
    and the same initializer names and shapes."""
    torch = refs.torch
    cls, shape, inp, out, axis = EXPORT[name]
    module = getattr(refs, cls)().eval()
    generator = torch.Generator().manual_seed(0)
    for m in module.modules():  # distinct statistics: the folded biases must not be equal
        if isinstance(m, torch.nn.BatchNorm2d):  # (the exporter would deduplicate them)
            m.running_var.uniform_(0.5, 1.5, generator=generator)
            m.running_mean.normal_(0.0, 0.1, generator=generator)
    path = tmp_path / f"{name}.onnx"
    params = inspect.signature(torch.onnx.export).parameters
    kwargs: dict[str, Any] = {"dynamo": False} if "dynamo" in params else {}
    try:
        with torch.no_grad():
            torch.onnx.export(module, torch.zeros(shape), str(path), opset_version=13,
                              input_names=[inp], output_names=[out],
                              dynamic_axes={inp: {0: axis}, out: {0: axis}}, **kwargs)
    except Exception as err:  # a torch without the TorchScript exporter
        pytest.skip(f"torch {torch.__version__} cannot export with the TorchScript exporter: "
                    f"{err}")
    exported, mine = onnx.load(str(path)), built(name)
    assert list(_normalized(exported)) == list(_normalized(mine))
    assert sorted((i.name, tuple(i.dims)) for i in exported.graph.initializer) == sorted(
        (i.name, tuple(i.dims)) for i in mine.graph.initializer)

"""YOLOv8n (ultralytics ``yolov8.yaml`` at scale n) as PyTorch's TorchScript ONNX exporter
writes it for an ultralytics export, without PyTorch.

The network (ultralytics 8.x, ``depth_multiple`` 0.33, ``width_multiple`` 0.25, 80 classes,
640x640): a CSP backbone of strided ``Conv`` and ``C2f`` blocks, ``SPPF`` (three 5x5
stride-1 max poolings and a Concat), a PAN neck (nearest ``Upsample`` x2 + ``Concat``, and
strided convs back down) and the anchor-free ``Detect`` head with its distribution focal
loss decoding (DFL: Reshape, Transpose, Softmax over 16 bins, a fixed 1x1 conv with the
weights 0..15), box decoding against constant anchors and strides, and the class sigmoid.
Output ``output0`` [N, 84, 8400]: 4 box coordinates (xywh, pixels) and 80 class scores for
the 80x80 + 40x40 + 20x20 anchor points. 3,151,904 parameters, as ultralytics reports for
the fused ``yolov8n``.

What the export does, and what this module reproduces (checked node for node against
``torch.onnx.export(model, x, opset_version=13, dynamo=False, input_names=["images"],
output_names=["output0"], dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}})``
of a PyTorch definition of the same network with torch 2.13, in
``tests/zoo/test_qdq_and_detectors.py``):

- ultralytics fuses every Conv + BatchNorm before export (``model.fuse()``): each ``Conv``
  module is a Conv with a bias (``model.0.conv.weight``, ``model.0.conv.bias``) and SiLU,
  which the exporter writes as ``Sigmoid`` + ``Mul``.
- ``C2f`` runs ``forward_split`` for export (``cv1(x).split((c, c), 1)``): a ``Split`` with
  a constant split input; bottlenecks with a shortcut end in an ``Add``.
- Node names are the module scope and the op, numbered within the scope
  (``/model.0/conv/Conv``, ``/model.0/act/Sigmoid``, ``/model.0/act/Mul``,
  ``/model.2/Split``, ``/model.9/m_1/MaxPool`` for SPPF's second pooling,
  ``/model.22/dfl/Softmax``, ``/model.22/Concat_8``); every output tensor is
  ``<node>_output_<i>``. Constants created by the symbolic functions (Unsqueeze axes,
  split sizes) are unscoped: ``Constant_257`` writing ``onnx::Unsqueeze_365``, numbered
  by the exporter's counters (hard-coded here, as torch 2.13 numbers them; the split
  sizes of C2f blocks with equal widths are one pooled Constant).
- The batch is dynamic (``batch``), so the head's Reshapes take their shape from
  ``Shape`` -> ``Gather`` -> ``Unsqueeze`` -> ``Concat``; the spatial sizes are fixed, so
  the anchors and strides are Constants. The box ``chunk(2, 1)`` in ``dist2bbox`` is the
  exporter's Shape/Gather/Add/Div/Mul/Slice pattern.

>>> m = yolov8n(batch=1)
>>> [n.name for n in m.graph.node][:3]
['/model.0/conv/Conv', '/model.0/act/Sigmoid', '/model.0/act/Mul']
>>> len(m.graph.node)
293
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from fusionlab.zoo._builder import Builder
from fusionlab.zoo.catalog import CATALOG

SEED_YOLOV8N = 8
INPUT_SIZE = 640
NUM_CLASSES = 80
REG_MAX = 16
STRIDES = (8, 16, 32)
BATCH_NAME = "batch"
"""ultralytics' name for the dynamic batch (``export(dynamic=True)``)."""

SPLIT_CONSTANTS = {16: ("Constant_45", "onnx::Split_137"), 32: ("Constant_64", "onnx::Split_157"),
                   64: ("Constant_90", "onnx::Split_184"),
                   128: ("Constant_116", "onnx::Split_211")}
"""C2f half width -> the pooled split-size Constant (node, tensor) as torch 2.13 names it."""
HEAD_RESHAPE_AXES = [("Constant_257", "onnx::Unsqueeze_365"), ("Constant_262", "onnx::Unsqueeze_372"),
                     ("Constant_267", "onnx::Unsqueeze_379")]
HEAD_SPLIT = ("Constant_276", "onnx::Split_390")
HEAD_DFL_AXES = [("Constant_284", "onnx::Unsqueeze_401"), ("Constant_288", "onnx::Unsqueeze_407"),
                 ("Constant_295", "onnx::Unsqueeze_414"), ("Constant_298", "onnx::Unsqueeze_418")]
"""The Detect head's unscoped Constants (node, tensor), in order."""


class _Export:
    """Scoped node names as the exporter writes them: ``<scope>/<Op>[_<k>]``."""

    def __init__(self, b: Builder) -> None:
        self.b = b
        self.count: dict[str, Counter[str]] = {}
        self.split_done: set[int] = set()
        """C2f half widths whose split-size Constant is written (the exporter pools them)."""

    def name(self, scope: str, op: str) -> str:
        k = self.count.setdefault(scope, Counter())[op]
        self.count[scope][op] += 1
        return f"{scope}/{op}" if k == 0 else f"{scope}/{op}_{k}"

    def op(self, scope: str, op: str, inputs: list[str], **attrs: Any) -> str:
        return self.ops(scope, op, inputs, 1, **attrs)[0]

    def ops(self, scope: str, op: str, inputs: list[str], outputs: int, **attrs: Any) -> list[str]:
        """A node with ``outputs`` outputs ``<node>_output_<i>``."""
        name = self.name(scope, op)
        outs = [f"{name}_output_{i}" for i in range(outputs)]
        self.b.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs

    def const(self, scope: str, array: np.ndarray) -> str:
        return self.op(scope, "Constant", [], value=numpy_helper.from_array(np.asarray(array)))

    def anonymous(self, node: str, tensor: str, array: np.ndarray) -> str:
        """A Constant that the exporter leaves unscoped (``Constant_257`` -> ``onnx::..._365``)."""
        value = numpy_helper.from_array(np.asarray(array))
        self.b.nodes.append(helper.make_node("Constant", [], [tensor], name=node, value=value))
        return tensor

    # ------------------------------------------------------------ ultralytics modules
    def conv2d(self, scope: str, weight: str, x: str, c1: int, c2: int, k: int, s: int = 1,
               bias: bool = True, gain: float = 1.0) -> str:
        w = self.b.he((c2, c1, k, k), c1 * k * k) * np.float32(gain)
        ins = [x, self.b.weight(f"{weight}.weight", w)]
        if bias:
            ins.append(self.b.weight(f"{weight}.bias", self.b.small((c2,), 0.1)))
        p = k // 2
        return self.op(scope, "Conv", ins, dilations=[1, 1], group=1, kernel_shape=[k, k],
                       pads=[p] * 4, strides=[s, s])

    def c2f(self, i: int, x: str, c1: int, c2: int, n: int, shortcut: bool) -> str:
        c, scope = c2 // 2, f"/model.{i}"
        y = self.conv(f"{scope}/cv1", f"model.{i}.cv1", x, c1, 2 * c)
        node, tensor = SPLIT_CONSTANTS[c]
        if c not in self.split_done:
            self.anonymous(node, tensor, np.array([c, c], dtype=np.int64))
            self.split_done.add(c)
        a, last = self.ops(scope, "Split", [y, tensor], 2, axis=1)
        parts = [a, last]
        for j in range(n):
            sub = f"{scope}/m.{j}"
            h = self.conv(sub + "/cv1", f"model.{i}.m.{j}.cv1", last, c, c, 3)
            h = self.conv(sub + "/cv2", f"model.{i}.m.{j}.cv2", h, c, c, 3, gain=0.5)
            last = self.op(sub, "Add", [last, h]) if shortcut else h
            parts.append(last)
        y = self.op(scope, "Concat", parts, axis=1)
        return self.conv(f"{scope}/cv2", f"model.{i}.cv2", y, (2 + n) * c, c2)

    def conv(self, scope: str, weight: str, x: str, c1: int, c2: int, k: int = 1,
             s: int = 1, gain: float = 1.0) -> str:
        """ultralytics ``Conv`` after fusing: Conv (with bias) and SiLU as ``x * Sigmoid(x)``."""
        y = self.conv2d(f"{scope}/conv", f"{weight}.conv", x, c1, c2, k, s, gain=gain)
        sig = self.op(f"{scope}/act", "Sigmoid", [y])
        return self.op(f"{scope}/act", "Mul", [y, sig])

    def sppf(self, i: int, x: str, c1: int, c2: int) -> str:
        c_, scope = c1 // 2, f"/model.{i}"
        ys = [self.conv(f"{scope}/cv1", f"model.{i}.cv1", x, c1, c_)]
        for j in range(3):
            sub = f"{scope}/m" if j == 0 else f"{scope}/m_{j}"
            ys.append(self.op(sub, "MaxPool", [ys[-1]], ceil_mode=0, dilations=[1, 1],
                              kernel_shape=[5, 5], pads=[2, 2, 2, 2], strides=[1, 1]))
        y = self.op(scope, "Concat", ys, axis=1)
        return self.conv(f"{scope}/cv2", f"model.{i}.cv2", y, 4 * c_, c2)

    def upsample(self, i: int, x: str) -> str:
        scales = self.const(f"/model.{i}", np.array([1, 1, 2, 2], dtype=np.float32))
        return self.op(f"/model.{i}", "Resize", [x, "", scales],
                       coordinate_transformation_mode="asymmetric", cubic_coeff_a=-0.75,
                       mode="nearest", nearest_mode="floor")

    def concat(self, i: int, xs: list[str]) -> str:
        return self.op(f"/model.{i}", "Concat", xs, axis=1)


def _anchors(size: int) -> tuple[np.ndarray, np.ndarray]:
    """ultralytics ``make_anchors`` (offset 0.5): points [2, A] and strides [1, A]."""
    points, strides = [], []
    for s in STRIDES:
        n = size // s
        sy, sx = np.meshgrid(np.arange(n, dtype=np.float32) + 0.5,
                             np.arange(n, dtype=np.float32) + 0.5, indexing="ij")
        points.append(np.stack([sx.ravel(), sy.ravel()]))
        strides.append(np.full((1, n * n), s, dtype=np.float32))
    return np.concatenate(points, 1), np.concatenate(strides, 1)


def _detect(e: _Export, xs: list[str], ch: tuple[int, ...]) -> str:
    scope = "/model.22"
    c2, c3 = max(16, ch[0] // 4, REG_MAX * 4), max(ch[0], min(NUM_CLASSES, 100))
    no = NUM_CLASSES + 4 * REG_MAX
    levels = []
    for i, (x, c) in enumerate(zip(xs, ch, strict=True)):
        branches = []
        for name, width, out in (("cv2", c2, 4 * REG_MAX), ("cv3", c3, NUM_CLASSES)):
            sub, w = f"{scope}/{name}.{i}/{name}.{i}", f"model.22.{name}.{i}"
            h = e.conv(f"{sub}.0", f"{w}.0", x, c, width, 3)
            h = e.conv(f"{sub}.1", f"{w}.1", h, width, width, 3)
            branches.append(e.conv2d(f"{sub}.2", f"{w}.2", h, width, out, 1, gain=0.5))
        levels.append(e.op(scope, "Concat", branches, axis=1))
    # x_cat = cat([xi.view(shape[0], no, -1) ...], 2), shape = x[0].shape (dynamic batch)
    shape = e.op(scope, "Shape", [levels[0]])
    batch = e.op(scope, "Gather", [shape, e.const(scope, np.array(0, dtype=np.int64))], axis=0)
    targets = []
    for node, tensor in HEAD_RESHAPE_AXES:
        axes = e.anonymous(node, tensor, np.array([0], dtype=np.int64))
        b = e.op(scope, "Unsqueeze", [batch, axes])
        targets.append(e.op(scope, "Concat", [b, e.const(scope, np.array([no], dtype=np.int64)),
                                              e.const(scope, np.array([-1], dtype=np.int64))],
                            axis=0))
    flat = [e.op(scope, "Reshape", [x, t]) for x, t in zip(levels, targets, strict=True)]
    x_cat = e.op(scope, "Concat", flat, axis=2)
    node, tensor = HEAD_SPLIT
    sizes = e.anonymous(node, tensor, np.array([4 * REG_MAX, NUM_CLASSES], dtype=np.int64))
    box, cls = e.ops(scope, "Split", [x_cat, sizes], 2, axis=1)
    # DFL: conv(x.view(b, 4, 16, a).transpose(2, 1).softmax(1)).view(b, 4, a)
    dfl = f"{scope}/dfl"
    dfl_axes = iter(HEAD_DFL_AXES)

    def unsqueeze0(x: str) -> str:
        node, tensor = next(dfl_axes)
        return e.op(dfl, "Unsqueeze", [x, e.anonymous(node, tensor, np.array([0], np.int64))])

    b_ = e.op(dfl, "Gather", [e.op(dfl, "Shape", [box]), e.const(dfl, np.array(0, np.int64))],
              axis=0)
    a_ = e.op(dfl, "Gather", [e.op(dfl, "Shape", [box]), e.const(dfl, np.array(2, np.int64))],
              axis=0)
    target = [unsqueeze0(b_), e.const(dfl, np.array([4], np.int64)),
              e.const(dfl, np.array([REG_MAX], np.int64)), unsqueeze0(a_)]
    h = e.op(dfl, "Reshape", [box, e.op(dfl, "Concat", target, axis=0)])
    h = e.op(dfl, "Transpose", [h], perm=[0, 2, 1, 3])
    h = e.op(dfl, "Softmax", [h], axis=1)
    weight = e.b.weight("model.22.dfl.conv.weight",
                        np.arange(REG_MAX, dtype=np.float32).reshape(1, REG_MAX, 1, 1))
    h = e.op(f"{dfl}/conv", "Conv", [h, weight], dilations=[1, 1], group=1, kernel_shape=[1, 1],
             pads=[0, 0, 0, 0], strides=[1, 1])
    target = [unsqueeze0(b_), e.const(dfl, np.array([4], np.int64)), unsqueeze0(a_)]
    dist = e.op(dfl, "Reshape", [h, e.op(dfl, "Concat", target, axis=0)])
    # dist2bbox: lt, rb = distance.chunk(2, 1), as the exporter writes a chunk
    def i64(v: int) -> str:
        return e.const(scope, np.array([v], np.int64))

    shape = e.op(scope, "Shape", [dist])
    one = i64(1)
    size = e.op(scope, "Gather", [shape, one], axis=0)
    zero = i64(0)
    half = e.op(scope, "Div", [e.op(scope, "Add", [size, i64(1)]), i64(2)])
    mid = e.op(scope, "Mul", [half, i64(1)])
    lt = e.op(scope, "Slice", [dist, zero, mid, one])
    end = e.op(scope, "Mul", [half, i64(2)])
    rb = e.op(scope, "Slice", [dist, mid, end, one])
    points, strides = _anchors(INPUT_SIZE)
    x1y1 = e.op(scope, "Sub", [e.const(scope, points[None]), lt])
    x2y2 = e.op(scope, "Add", [e.const(scope, points[None]), rb])
    c_xy = e.op(scope, "Div", [e.op(scope, "Add", [x1y1, x2y2]),
                               e.const(scope, np.array(2.0, dtype=np.float32))])
    wh = e.op(scope, "Sub", [x2y2, x1y1])
    dbox = e.op(scope, "Mul", [e.op(scope, "Concat", [c_xy, wh], axis=1),
                               e.const(scope, strides)])
    name = e.name(scope, "Concat")
    scores = e.op(scope, "Sigmoid", [cls])
    e.b.nodes.append(helper.make_node("Concat", [dbox, scores], ["output0"], name=name, axis=1))
    return "output0"


def yolov8n(batch: int | None = None) -> onnx.ModelProto:
    """YOLOv8n, 640x640, 80 classes, as ultralytics exports it (fused, dynamic batch)."""
    b = Builder("main_graph", SEED_YOLOV8N, batch, batch_name=BATCH_NAME)
    e = _Export(b)
    x = b.input("images", 3, INPUT_SIZE, INPUT_SIZE)
    y: list[str] = []
    x = e.conv("/model.0", "model.0", x, 3, 16, 3, 2)
    y.append(x)
    x = e.conv("/model.1", "model.1", x, 16, 32, 3, 2)
    y.append(x)
    plan = [(2, 32, 1), (4, 64, 2), (6, 128, 2), (8, 256, 1)]
    for i, c, n in plan:
        x = e.c2f(i, x, c, c, n, shortcut=True)
        y.append(x)
        if i < 8:
            x = e.conv(f"/model.{i + 1}", f"model.{i + 1}", x, c, 2 * c, 3, 2)
            y.append(x)
    x = e.sppf(9, x, 256, 256)
    y.append(x)
    x = e.upsample(10, x)
    y.append(x)
    x = e.concat(11, [x, y[6]])
    y.append(x)
    x = e.c2f(12, x, 384, 128, 1, shortcut=False)
    y.append(x)
    x = e.upsample(13, x)
    y.append(x)
    x = e.concat(14, [x, y[4]])
    y.append(x)
    x = e.c2f(15, x, 192, 64, 1, shortcut=False)
    y.append(x)
    x = e.conv("/model.16", "model.16", x, 64, 64, 3, 2)
    y.append(x)
    x = e.concat(17, [x, y[12]])
    y.append(x)
    x = e.c2f(18, x, 192, 128, 1, shortcut=False)
    y.append(x)
    x = e.conv("/model.19", "model.19", x, 128, 128, 3, 2)
    y.append(x)
    x = e.concat(20, [x, y[9]])
    y.append(x)
    x = e.c2f(21, x, 384, 256, 1, shortcut=False)
    y.append(x)
    out = _detect(e, [y[15], y[18], y[21]], (64, 128, 256))
    anchors = sum((INPUT_SIZE // s) ** 2 for s in STRIDES)
    return b.model([(out, (NUM_CLASSES + 4, anchors))], doc=DESCRIPTION)


DESCRIPTION = CATALOG["yolov8n"]

"""A plan's layers as fused PyTorch/cuDNN calls: one :class:`~fusionlab.execute.program.Step`
per engine layer, realised the way the plan says.

==========================  ==============================================================
layer                       realisation (``Step.path`` says which one each layer took)
==========================  ==============================================================
Conv (+ folded BN)          BatchNorm folded into the weights and bias (float64, then cast);
                            a zero Pad folded into the convolution's padding;
                            ``torch.convolution`` with the bias
... + Relu                  ``torch.cudnn_convolution_relu`` (cuDNN's fused conv-bias-ReLU;
                            CUDA only); if cuDNN finds no engine for it: convolution, then
                            ``relu_`` in place
... + Add + Relu            ``torch.cudnn_convolution_add_relu`` (residual in the epilogue);
                            fallback: convolution, ``add_``, ``relu_``
... + other epilogue        convolution, then the epilogue: one generated kernel
                            (``torch.compile``) for two or more point-wise ops on CUDA,
                            else the ops one by one
A || B || C (merged)        one convolution over the members' concatenated (BN-folded)
                            weights; each member's output is a channel view (``narrow``);
                            a convolution that reads such a view copies it to a dense
                            tensor first (PyTorch hands cuDNN no strided channel views)
Gemm (+ BN)                 ``F.linear`` with BN folded into the weights
PWN(...) point-wise chain   ``torch.compile`` of the chain (one Triton kernel) on CUDA; the
                            ops one by one on the CPU or where compiling fails
eliminated Concat           its output is allocated once; each producer's output becomes a
                            view of its slice. A layer whose last op is a TensorIterator op
                            (ReLU, Add, Sigmoid ...) writes into the slice itself (``out=``);
                            a cuDNN convolution or a pooling kernel cannot write a strided
                            slice through PyTorch, so its result is copied into it
``X copy`` layer            ``slice.copy_(X)``: a real copy kernel
eliminated Identity,        an alias or view (no kernel), run by the first layer that reads
Dropout, Flatten            it
==========================  ==============================================================

Channels-last memory format throughout (4-D activations and convolution weights).

**Tactics (CUDA with Triton, the default).** As TensorRT times several kernels per layer and
keeps the fastest, convolution, merged-convolution and MaxPool layers get candidate
realisations (:class:`~fusionlab.execute.program.Tactic`), timed on the GPU when the program
is prepared (:mod:`fusionlab.execute.tactics`); the path says which one won and every
candidate's time. The candidates (:func:`conv_cores`; kernels in
:mod:`fusionlab.execute.triton_kernels`):

==========================  ==============================================================
layer                       candidates
==========================  ==============================================================
Conv (+ ReLU, + Add+ReLU)   the PyTorch realisation above (cuDNN fused call, or its
                            fallback), its Concat copy done by ``copy_`` or a Triton copy;
                            cuDNN without the bias, then one Triton epilogue (bias,
                            residual, ReLU) writing the destination — a Concat slot
                            directly; in NCHW (RGB stems, float32) with the epilogue
                            changing the layout; 1x1 as a cuBLAS matrix product over the
                            pixels, plain (then the epilogue) or with bias + ReLU in
                            cuBLASLt's epilogue
A || B || C (merged)        each core over the concatenated weights, then one Triton split
                            epilogue that writes every member into its own destination (its
                            Concat slot, or a dense tensor): no channel views, no copy
                            layer (it becomes a no-op), no copy in the consumers
MaxPool (2-D)               ``F.max_pool2d``, or a Triton kernel without the int64 index
                            tensor, writing its destination (a Concat slot directly)
==========================  ==============================================================

``tactics=False`` (``--no-tactics``), the CPU, or no Triton: the realisations of the first
table alone.
This module imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import torch

from fusionlab.errors import FusionlabError
from fusionlab.execute.kernels import (
    POINTWISE_OPS,
    Env,
    Kernel,
    conv_geometry,
    convolution,
    make_kernel,
)
from fusionlab.execute.program import Program, Step, Tactic, Tensors, to_device
from fusionlab.ir.graph import Graph, Node
from fusionlab.plan import How, Layer, Plan

log = logging.getLogger(__name__)

Tensor = torch.Tensor

SINK_COPY = (", then copied into its Concat slot (a cuDNN convolution cannot write a strided "
             "channel slice through PyTorch)")
VIEW_INPUT = ("; its input is a channel view of a merged layer, which PyTorch copies to a dense "
              "tensor before cuDNN reads it")


# ---------------------------------------------------------------------------------------
# Concat elimination: where each producer writes


@dataclass(frozen=True)
class Slot:
    """One input position of an eliminated Concat: ``buffer.narrow(axis, offset, size)``."""

    concat: str
    """Output tensor of the Concat (the buffer)."""
    axis: int
    offset: int
    size: int


@dataclass
class Buffers:
    """Eliminated Concats: their buffers' shapes, and which tensor goes to which slot."""

    shapes: dict[str, tuple[int, ...]]
    primary: dict[str, Slot]
    """Tensor -> the slot it lives in (the producer's output is a view of it)."""
    extra: dict[str, list[Slot]]
    """Tensor -> further slots its producer copies it into (a tensor used twice)."""
    copied: dict[tuple[str, str], list[Slot]]
    """(tensor, concat output) -> slots a ``copy`` layer fills."""
    fill_on_alloc: dict[str, list[tuple[str, Slot]]]
    """Concat output -> (constant or graph input, slot) copied when the buffer is made."""
    device: torch.device
    dtype: torch.dtype
    direct: set[tuple[str, str]] = field(default_factory=set)
    """(tensor, concat output) pairs of :attr:`copied` whose producer writes the slot itself,
    so that the plan's ``copy`` layer has nothing left to do."""

    def view(self, env: Tensors, slot: Slot) -> Tensor:
        """The slot as a view of its buffer (allocated on first use)."""
        return self.buffer(env, slot.concat).narrow(slot.axis, slot.offset, slot.size)

    def buffer(self, env: Tensors, concat: str) -> Tensor:
        buf = env.get(concat)
        if buf is not None:
            return buf
        if concat in self.primary:  # a Concat that feeds an eliminated Concat: nested
            buf = self.view(env, self.primary[concat])
        else:
            shape = self.shapes[concat]
            layout = torch.channels_last if len(shape) == 4 else torch.contiguous_format
            buf = torch.empty(shape, dtype=self.dtype, device=self.device, memory_format=layout)
        env[concat] = buf
        for source, slot in self.fill_on_alloc.get(concat, ()):
            buf.narrow(slot.axis, slot.offset, slot.size).copy_(env[source])
        return buf

    def store(self, env: Tensors, name: str, value: Tensor) -> None:
        """Put a layer's output where the plan says: its slot (copying if it is elsewhere)."""
        slot = self.primary.get(name)
        if slot is None:
            env[name] = value
            return
        dst = self.view(env, slot)
        if not _same_memory(dst, value):
            dst.copy_(value)
        env[name] = dst
        for extra in self.extra.get(name, ()):
            self.view(env, extra).copy_(dst)


def _same_memory(a: Tensor, b: Tensor) -> bool:
    return a.data_ptr() == b.data_ptr() and a.stride() == b.stride() and a.shape == b.shape


def _static_shape(graph: Graph, name: str, what: str) -> tuple[int, ...]:
    t = graph.tensors.get(name)
    if t is None or t.shape is None or not all(isinstance(d, int) for d in t.shape):
        raise FusionlabError(
            f"{what}: the shape of {name!r} is not known (concat elimination needs static "
            "shapes; fix the batch with --batch)"
        )
    return tuple(int(d) for d in t.shape)  # type: ignore[arg-type]


def _copy_target(graph: Graph, layer: Layer, concats: Mapping[str, Node]) -> tuple[str, str] | None:
    """``(source tensor, concat output)`` of an inserted copy layer, or None."""
    if not layer.inputs:
        return None
    src = layer.inputs[0]
    outs = {c.outputs[0] for c in concats.values()}
    for out in layer.outputs:
        if out in outs:
            return src, out
    users = [concats[c].outputs[0] for c in graph.consumers.get(src, ()) if c in concats]
    return (src, users[0]) if len(users) == 1 else None


def eliminated_concats(graph: Graph, plan: Plan, folded: frozenset[str]) -> dict[str, Node]:
    """The Concats the plan eliminates (constant ones, folded at load, left out)."""
    return {n: graph.node(n) for n, gone in plan.eliminated.items()
            if gone.how is How.CONCAT and n in graph and n not in folded}


def plan_buffers(graph: Graph, plan: Plan, env: Env, inputs: Sequence[str],
                 folded: frozenset[str]) -> Buffers:
    """Slots of every eliminated Concat, and who fills each."""
    concats = eliminated_concats(graph, plan, folded)
    copies = {pair for layer in plan.layers if layer.inserted
              if (pair := _copy_target(graph, layer, concats)) is not None}
    bufs = Buffers({}, {}, {}, {}, {}, env.device, env.dtype)
    for name, node in concats.items():
        out = node.outputs[0]
        shape = _static_shape(graph, out, f"Concat {name!r}")
        bufs.shapes[out] = shape
        axis = int(node.attrs["axis"]) % len(shape)
        offset = 0
        for t in node.inputs:
            size = _static_shape(graph, t, f"Concat {name!r}")[axis]
            slot = Slot(out, axis, offset, size)
            offset += size
            if (t, out) in copies:
                bufs.copied.setdefault((t, out), []).append(slot)
            elif t in env.constants or t in inputs:
                bufs.fill_on_alloc.setdefault(out, []).append((t, slot))
            elif t not in bufs.primary:
                bufs.primary[t] = slot
            else:
                bufs.extra.setdefault(t, []).append(slot)
        if offset != shape[axis]:
            raise FusionlabError(f"Concat {name!r}: input sizes do not add up to its output")
    return bufs


# ---------------------------------------------------------------------------------------
# Folding


def fold_bn(
    w: np.ndarray, b: np.ndarray | None, bn: Node, values: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias with an inference BatchNormalization folded in (in float64).

    >>> from types import SimpleNamespace
    >>> v = {"s": np.array([2.0]), "b": np.array([1.0]), "m": np.array([0.5]), "v": np.array([3.0])}
    >>> bn = SimpleNamespace(inputs=("x", "s", "b", "m", "v"), attrs={"epsilon": 1.0})
    >>> fold_bn(np.ones((1, 1, 1, 1)), None, bn, v)  # doctest: +NORMALIZE_WHITESPACE
    (array([[[[1.]]]]), array([0.5]))
    """
    scale, beta, mean, var = (values[t].astype(np.float64) for t in bn.inputs[1:5])
    s = scale / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
    w64 = w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))
    b64 = np.zeros_like(s) if b is None else b.astype(np.float64)
    return w64, (b64 - mean) * s + beta


def _zero_pad(node: Node, env: Env, rank: int) -> tuple[list[int], list[int]] | None:
    """Spatial ``(begin, end)`` pads of a Pad that a convolution can absorb, else None."""
    mode = node.attrs.get("mode", "constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        return None
    if "pads" in node.attrs:
        pads = [int(v) for v in node.attrs["pads"]]
        value = float(node.attrs.get("value", 0.0))
    else:
        if node.inputs[1] not in env.values:
            return None
        pads = [int(v) for v in env.values[node.inputs[1]].ravel()]
        value = 0.0
        if len(node.inputs) > 2 and node.inputs[2]:
            if node.inputs[2] not in env.values:
                return None
            value = float(env.values[node.inputs[2]].ravel()[0])
        if len(node.inputs) > 3 and node.inputs[3]:
            return None
    if value != 0.0 or len(pads) != 2 * rank or min(pads) < 0:
        return None
    begin, end = pads[:rank], pads[rank:]
    if begin[:2] != [0, 0] or end[:2] != [0, 0]:
        return None
    return begin[2:], end[2:]


# ---------------------------------------------------------------------------------------
# Convolution with an epilogue


@dataclass
class ConvSpec:
    """A convolution after folding: weights in float64 plus its geometry."""

    w: np.ndarray
    b: np.ndarray | None
    stride: list[int]
    begin: list[int]
    end: list[int]
    dilation: list[int]
    groups: int

    def geometry(self) -> tuple[object, ...]:
        return (tuple(self.w.shape[2:]), tuple(self.stride), tuple(self.begin),
                tuple(self.end), tuple(self.dilation), self.groups)


def _epilogue_key(node: Node, env: Env) -> tuple[object, ...]:
    consts = tuple(
        env.values[t].tobytes() if t in env.values else None for t in node.inputs[1:]
    )
    return (node.op, tuple(sorted((k, repr(v)) for k, v in node.attrs.items())), consts)


class FusedConv:
    """A convolution with bias and an optional fused ReLU / residual Add + ReLU.

    On CUDA it calls cuDNN's fused kernels through ``torch.cudnn_convolution_relu`` /
    ``torch.cudnn_convolution_add_relu``; the first call that fails (cuDNN has no engine
    for this shape, dtype or layout) switches the layer to the unfused equivalent for good
    and says so in the step's path.
    """

    def __init__(self, spec: ConvSpec, env: Env, mode: str, step: Step | None = None) -> None:
        self.mode = mode  # "none" | "relu" | "add_relu"
        w = to_device(spec.w.astype(np.float32), env.device, env.dtype)
        self.w = w.contiguous(memory_format=torch.channels_last) if w.dim() == 4 else w
        self.b = (None if spec.b is None
                  else to_device(spec.b.astype(np.float32), env.device, env.dtype))
        self.stride, self.begin, self.end = spec.stride, spec.begin, spec.end
        self.dilation, self.groups = spec.dilation, spec.groups
        symmetric = spec.begin == spec.end
        self.fused = (
            mode != "none" and env.device.type == "cuda" and symmetric
            and hasattr(torch, "cudnn_convolution_relu")
        )
        self.step = step
        if mode == "none":
            self.how = "torch.convolution (bias in the call)"
        elif self.fused:
            self.how = ("torch.cudnn_convolution_relu" if mode == "relu"
                        else "torch.cudnn_convolution_add_relu")
        else:
            why = ("CPU: cuDNN's fused kernels need CUDA" if env.device.type != "cuda"
                   else "asymmetric padding" if not symmetric else "no fused op in this torch")
            self.how = self._fallback_how(why)

    def _fallback_how(self, why: str) -> str:
        ops = "relu_" if self.mode == "relu" else "add_ + relu_"
        return f"torch.convolution + {ops} ({why})"

    def __call__(self, x: Tensor, z: Tensor | None = None) -> Tensor:
        if self.fused:
            b = self.b if self.b is not None else torch.zeros(
                self.w.shape[0], dtype=self.w.dtype, device=self.w.device)
            try:
                if self.mode == "relu":
                    return torch.cudnn_convolution_relu(
                        x, self.w, b, self.stride, self.begin, self.dilation, self.groups)
                assert z is not None
                return torch.cudnn_convolution_add_relu(
                    x, self.w, z, 1.0, b, self.stride, self.begin, self.dilation, self.groups)
            except RuntimeError as exc:
                self.fused = False
                first = " ".join(str(exc).split())[:120]
                self.how = self._fallback_how(f"cuDNN fused op failed: {first}")
                if self.step is not None:
                    self.step.path = self.step.path.replace(
                        "torch.cudnn_convolution_relu" if self.mode == "relu"
                        else "torch.cudnn_convolution_add_relu", self.how)
                log.info("fused convolution fell back: %s", first)
        y = convolution(x, self.w, self.b, self.stride, self.begin, self.end, self.dilation,
                        self.groups)
        if self.mode == "relu":
            y.relu_()
        elif self.mode == "add_relu":
            assert z is not None
            y.add_(z).relu_()
        return y


# ---------------------------------------------------------------------------------------
# Building one layer


# ---------------------------------------------------------------------------------------
# Tactics: the candidate kernels of a convolution (timed per layer when the program is prepared)


def load_triton_kernels() -> ModuleType | None:
    """:mod:`fusionlab.execute.triton_kernels`, or None where Triton cannot be imported."""
    try:
        from fusionlab.execute import triton_kernels
    except Exception as exc:  # ImportError, or a broken Triton install raising anything
        log.info("Triton kernels unavailable (%s: %s); PyTorch realisations only",
                 type(exc).__name__, exc)
        return None
    return triton_kernels


def use_triton(env: Env) -> bool:
    """Whether this build may use the Triton kernels: CUDA only."""
    return env.device.type == "cuda"


def _channels_last(shape: Sequence[int], like: Tensor) -> Tensor:
    return torch.empty(tuple(shape), dtype=like.dtype, device=like.device,
                       memory_format=torch.channels_last)


@dataclass(frozen=True)
class Core:
    """A convolution's main kernel, and which parts of the epilogue it applies itself.

    ``fn(x, z)`` returns the convolution's output (``z``: the residual, or None). ``bias``:
    the bias is in it; ``tail``: the residual Add and the ReLU are too (vacuously so for a
    convolution without them). What it leaves out, a Triton epilogue applies.
    """

    name: str
    fn: Callable[[Tensor, Tensor | None], Tensor]
    bias: bool
    tail: bool
    how: str
    describe: Callable[[], str] | None = None


def conv_cores(spec: ConvSpec, env: Env, mode: str, step: Step | None) -> list[Core]:
    """The kernels that can compute a convolution (with ``mode``'s epilogue), first the
    PyTorch/cuDNN realisation of :class:`FusedConv`.

    - ``cudnn-fused`` (or its fallback): :class:`FusedConv`, everything applied;
    - ``cudnn``: ``torch.convolution`` without the bias (PyTorch adds a bias in a kernel of its
      own after cuDNN's; a Triton epilogue does it with the rest);
    - ``cudnn-nchw`` (fewer than 8 input channels, e.g. an RGB stem, or float32, where cuDNN's
      channels-last kernels are NCHW kernels between layout transforms): the convolution in
      NCHW, whose output the epilogue turns into channels-last;
    - ``gemm`` / ``gemm-fused`` (1x1, stride 1, no padding, one group): the convolution as a
      matrix product over the channels-last pixels (cuBLAS); ``gemm-fused`` with the bias and
      ReLU in cuBLASLt's epilogue (``torch._addmm_activation``), when there is no residual.
    """
    legacy = FusedConv(spec, env, mode, step)
    cores = [Core("cudnn-fused" if legacy.fused else "torch", lambda x, z: legacy(x, z),
                  True, True, legacy.how, lambda: legacy.how)]
    w_cl = legacy.w
    w = w_cl.contiguous()
    stride, begin, end, dil, groups = spec.stride, spec.begin, spec.end, spec.dilation, spec.groups

    def plain(x: Tensor, z: Tensor | None) -> Tensor:
        return convolution(x, w_cl, None, stride, begin, end, dil, groups)

    cores.append(Core("cudnn", plain, False, mode == "none", "torch.convolution (no bias)"))
    # cuDNN runs IEEE float32 convolutions on channels-last tensors as NCHW kernels between two
    # layout transforms: in NCHW the output transform folds into the epilogue
    if w.dim() == 4 and groups == 1 and (w.shape[1] < 8 or env.dtype == torch.float32):
        w_nchw = w.contiguous()

        def nchw(x: Tensor, z: Tensor | None) -> Tensor:
            return convolution(x.contiguous(), w_nchw, None, stride, begin, end, dil, groups)

        cores.append(Core("cudnn-nchw", nchw, False, mode == "none",
                          "torch.convolution in NCHW (no bias; the input made contiguous)"))
    pointwise = (w.dim() == 4 and tuple(w.shape[2:]) == (1, 1) and groups == 1
                 and all(v == 1 for v in stride) and not any(begin) and not any(end))
    if pointwise:
        cout, cin = int(w.shape[0]), int(w.shape[1])
        w2 = w.reshape(cout, cin).contiguous().t()
        b = (legacy.b if legacy.b is not None
             else torch.zeros(cout, dtype=env.dtype, device=env.device))

        def rows(x: Tensor) -> Tensor:
            return x.permute(0, 2, 3, 1).reshape(-1, cin)

        def back(y: Tensor, x: Tensor) -> Tensor:
            n, _, h, wd = x.shape
            return y.view(n, h, wd, cout).permute(0, 3, 1, 2)

        def gemm(x: Tensor, z: Tensor | None) -> Tensor:
            return back(torch.mm(rows(x), w2), x)

        cores.append(Core("gemm", gemm, False, mode == "none", "torch.mm over the pixels (1x1)"))
        if mode in ("none", "relu"):
            relu = mode == "relu"

            def gemm_fused(x: Tensor, z: Tensor | None) -> Tensor:
                if relu:
                    return back(torch._addmm_activation(b, rows(x), w2), x)
                return back(torch.addmm(b, rows(x), w2), x)

            how = ("torch._addmm_activation over the pixels (1x1; bias + ReLU in cuBLASLt's "
                   "epilogue)" if relu else "torch.addmm over the pixels (1x1, bias)")
            cores.append(Core("gemm-fused", gemm_fused, True, True, how))
    return cores


@dataclass
class Realised:
    """A layer's callable plus what it reads and writes and how it was realised."""

    run: Callable[[Tensors], None]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    path: str
    tactics: list[Tactic] = field(default_factory=list)
    """Candidate realisations (the first is :attr:`run`); one is chosen when prepared."""


class _Builder:
    def __init__(self, graph: Graph, plan: Plan, env: Env, folded: frozenset[str],
                 compile_pointwise: bool, tactics: bool = True) -> None:
        self.tk = load_triton_kernels() if tactics and use_triton(env) else None
        """The Triton kernels, where this build uses them (else the PyTorch paths alone)."""
        self.graph = graph
        self.plan = plan
        self.env = env
        self.folded = folded
        self.compile = compile_pointwise and env.device.type == "cuda"
        self.inputs = tuple(t.name for t in graph.inputs)
        self.concats = eliminated_concats(graph, plan, folded)
        self.bufs = plan_buffers(graph, plan, env, self.inputs, folded)
        self.kernels: dict[str, Kernel] = {}
        self.views: set[str] = set()
        """Tensors a merged layer writes as channel views of its wide output."""

    # -- helpers ------------------------------------------------------------------------

    def kernel(self, node: Node) -> Kernel:
        if node.name not in self.kernels:
            self.kernels[node.name] = make_kernel(node, self.env)
        return self.kernels[node.name]

    def is_const(self, t: str) -> bool:
        return t in self.env.constants

    def external_writes(self, nodes: Sequence[Node]) -> tuple[str, ...]:
        """Outputs of ``nodes`` read outside them, graph outputs, or Concat slots."""
        inside = {n.name for n in nodes}
        outs: list[str] = []
        for n in nodes:
            for t in n.outputs:
                if not t:
                    continue
                users = self.graph.consumers.get(t, ())
                if (t in self.graph.output_names or any(u not in inside for u in users)
                        or t in self.bufs.primary):
                    outs.append(t)
        return tuple(outs)

    def external_reads(self, nodes: Sequence[Node]) -> tuple[str, ...]:
        made = {t for n in nodes for t in n.outputs if t}
        reads: list[str] = []
        for n in nodes:
            for t in n.inputs:
                if t and t not in made and not self.is_const(t) and t not in reads:
                    reads.append(t)
        return tuple(reads)

    def sequential(self, nodes: Sequence[Node], why: str = "") -> Realised:
        """The nodes' own kernels one after another (a layer's generic realisation)."""
        kernels = [self.kernel(n) for n in nodes]
        writes = self.external_writes(nodes)
        reads = self.external_reads(nodes)
        plan_ins = [tuple(n.inputs) for n in nodes]
        plan_outs = [tuple(n.outputs) for n in nodes]
        bufs = self.bufs
        # the last op that writes a Concat slot writes it itself when it can (out=)
        into = {i: n.outputs[0] for i, (n, k) in enumerate(zip(nodes, kernels, strict=True))
                if k.into is not None and n.outputs and n.outputs[0] in bufs.primary}

        def run(env: Tensors) -> None:
            local: Tensors = {}
            for i, k in enumerate(kernels):
                xs = [(local[t] if t in local else env[t]) if t else None for t in plan_ins[i]]
                if i in into:
                    dst = bufs.view(env, bufs.primary[into[i]])
                    assert k.into is not None
                    k.into(xs, dst)
                    local[into[i]] = dst
                    continue
                for t, v in zip(plan_outs[i], k.fn(xs), strict=False):
                    if t:
                        local[t] = v
            for t in writes:
                bufs.store(env, t, local[t])

        hows = " + ".join(k.how for k in kernels)
        direct = [t for t in into.values()]
        path = hows + (f" (writes {', '.join(direct)} into its Concat slot)" if direct else "")
        return Realised(run, reads, writes, f"{path}{'; ' + why if why else ''}")

    def pointwise_chain(self, nodes: Sequence[Node]) -> Realised:
        """A PWN layer: one generated kernel (torch.compile) on CUDA, else sequential."""
        plain = self.sequential(nodes)
        if not self.compile:
            reason = ("torch.compile skipped on the CPU" if self.env.device.type != "cuda"
                      else "torch.compile disabled")
            return Realised(plain.run, plain.reads, plain.writes,
                            f"point-wise chain, one kernel per op ({reason}): {plain.path}")
        kernels = [self.kernel(n) for n in nodes]
        reads, writes = plain.reads, plain.writes
        plan_ins = [tuple(n.inputs) for n in nodes]
        plan_outs = [tuple(n.outputs) for n in nodes]
        consts = {t: self.env.constants[t] for n in nodes for t in n.inputs
                  if t and self.is_const(t)}

        def chain(*args: Tensor) -> tuple[Tensor, ...]:
            local: Tensors = dict(consts)
            local.update(zip(reads, args, strict=True))
            for i, k in enumerate(kernels):
                outs = k.fn([local[t] if t else None for t in plan_ins[i]])
                local.update((t, v) for t, v in zip(plan_outs[i], outs, strict=False) if t)
            return tuple(local[t] for t in writes)

        compiled = torch.compile(chain, fullgraph=True, dynamic=False)
        state = {"compiled": True}
        bufs = self.bufs
        realised = Realised(lambda env: None, reads, writes,
                            "torch.compile of the point-wise chain (one generated kernel): "
                            + " + ".join(k.how for k in kernels))

        def run(env: Tensors) -> None:
            args = [env[t] for t in reads]
            if state["compiled"]:
                try:
                    outs = compiled(*args)
                except Exception as exc:  # inductor raises many types; fall back for good
                    state["compiled"] = False
                    first = " ".join(str(exc).split())[:120]
                    realised.path = (f"point-wise chain, one kernel per op (torch.compile "
                                     f"failed: {type(exc).__name__}: {first})")
                    log.info("torch.compile failed for a point-wise chain: %s", first)
                    plain.run(env)
                    return
                for t, v in zip(writes, outs, strict=True):
                    bufs.store(env, t, v)
                return
            plain.run(env)

        realised.run = run
        return realised

    # -- convolutions --------------------------------------------------------------------

    def conv_spec(self, conv: Node, pads: tuple[list[int], list[int]] | None,
                  bn: Node | None) -> ConvSpec | None:
        values = self.env.values
        if conv.inputs[1] not in values:
            return None
        w = values[conv.inputs[1]]
        b = values.get(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else None
        if len(conv.inputs) > 2 and conv.inputs[2] and b is None:
            return None
        stride, begin, end, dil, groups = conv_geometry(conv, self.env, w.shape)
        if pads is not None:
            begin = [a + p for a, p in zip(begin, pads[0], strict=True)]
            end = [a + p for a, p in zip(end, pads[1], strict=True)]
        if bn is not None:
            if not all(t in values for t in bn.inputs[1:5]):
                return None
            w, b = fold_bn(w, b, bn, values)
        return ConvSpec(w, b, stride, begin, end, dil, groups)

    def conv_chain(self, nodes: Sequence[Node]) -> tuple[ConvSpec, list[str], Node, list[Node],
                                                          str] | None:
        """``(spec, folded notes, conv, epilogue nodes, conv output name)`` or None."""
        i = 0
        pad: Node | None = None
        if nodes and nodes[0].op == "Pad":
            pad, i = nodes[0], 1
        if i >= len(nodes) or nodes[i].op != "Conv":
            return None
        conv = nodes[i]
        notes: list[str] = []
        pads = None
        if pad is not None:
            if conv.inputs[0] != pad.outputs[0]:
                return None
            rank = len(self.env.shape(pad.inputs[0], pad))
            pads = _zero_pad(pad, self.env, rank)
            if pads is None:
                return None
            notes.append("Pad folded into the padding")
        rest = list(nodes[i + 1:])
        bn = None
        out = conv.outputs[0]
        if rest and rest[0].op == "BatchNormalization" and rest[0].inputs[0] == out:
            bn = rest.pop(0)
            out = bn.outputs[0]
            notes.append("BatchNorm folded into the weights")
        spec = self.conv_spec(conv, pads, bn)
        if spec is None:
            return None
        return spec, notes, conv, rest, out

    def conv_layer(self, nodes: Sequence[Node], step: Step) -> Realised | None:
        found = self.conv_chain(nodes)
        if found is None:
            return None
        spec, notes, _conv, epilogue, out = found
        reads = self.external_reads(nodes)
        writes = self.external_writes(nodes)
        x_name = (nodes[0].inputs[0])
        bufs = self.bufs
        mode, z_name = "none", ""
        ops = [n.op for n in epilogue]
        if ops == ["Relu"] and epilogue[0].inputs[0] == out:
            mode = "relu"
        elif (ops == ["Add", "Relu"] and out in epilogue[0].inputs
              and epilogue[1].inputs[0] == epilogue[0].outputs[0]):
            z_name = next((t for t in epilogue[0].inputs if t != out), "")
            same = (z_name and z_name not in self.env.constants
                    and self.graph.tensors.get(z_name) is not None
                    and self.graph.tensors[z_name].shape == self.graph.tensors[out].shape
                    and epilogue[0].inputs.count(out) == 1)
            mode = "add_relu" if same else "none"
        if x_name in self.views:
            notes.append(VIEW_INPUT.removeprefix("; "))
        suffix = f" ({'; '.join(notes)})" if notes else ""
        if self.tk is not None and (mode != "none" or not epilogue):
            final = epilogue[-1].outputs[0] if epilogue else out
            tactics = self.conv_tactics(spec, mode, x_name, z_name, final, suffix, step)
            return Realised(tactics[0].run, reads, writes, tactics[0].path, tactics)
        fused = FusedConv(spec, self.env, mode, step)
        if mode != "none":
            final = epilogue[-1].outputs[0]

            def run(env: Tensors) -> None:
                y = fused(env[x_name], env[z_name] if z_name else None)
                bufs.store(env, final, y)

            sink = SINK_COPY if final in bufs.primary else ""
            return Realised(run, reads, writes, fused.how + suffix + sink)
        if not epilogue:
            def run_plain(env: Tensors) -> None:
                bufs.store(env, out, fused(env[x_name]))

            sink = SINK_COPY if out in bufs.primary else ""
            return Realised(run_plain, reads, writes, fused.how + suffix + sink)
        single = self._single_epilogue(epilogue, out)
        if single is not None:
            k, final, ins = single

            def run_into(env: Tensors) -> None:
                y = fused(env[x_name])
                xs = [y if t == out else (env[t] if t else None) for t in ins]
                dst = bufs.view(env, bufs.primary[final]) if final in bufs.primary else y
                assert k.into is not None
                k.into(xs, dst)
                bufs.store(env, final, dst)

            where = ("written into its Concat slot (out=)" if final in bufs.primary
                     else "in place")
            return Realised(run_into, reads, writes,
                            f"{fused.how}{suffix}, then {k.how} {where}")
        # a generic epilogue over the convolution's output
        if all(n.op in POINTWISE_OPS for n in epilogue) and len(epilogue) > 1:
            tail = self.pointwise_chain(epilogue)
        else:
            tail = self.sequential(epilogue)

        def run_tail(env: Tensors) -> None:
            env[out] = fused(env[x_name])
            tail.run(env)
            env.pop(out, None)

        return Realised(run_tail, reads, writes, f"{fused.how}{suffix}, then {tail.path}")

    def conv_tactics(self, spec: ConvSpec, mode: str, x_name: str, z_name: str, final: str,
                     suffix: str, step: Step) -> list[Tactic]:
        """Every core (:func:`conv_cores`) with the epilogue it leaves out, into the layer's
        destination (its Concat slot, or a fresh tensor): a Triton epilogue, or, where the core
        applied everything, nothing (a dense destination) or a copy into the slot."""
        tk = self.tk
        assert tk is not None
        bufs = self.bufs
        slot = bufs.primary.get(final)
        relu = mode != "none"
        residual = mode == "add_relu"
        layer_bias = self._bias(spec)
        tactics: list[Tactic] = []
        for core in conv_cores(spec, self.env, mode, step):
            bias = None if core.bias else layer_bias
            needs_epilogue = bias is not None or not core.tail or core.name == "cudnn-nchw"
            variants = ["epilogue"] if needs_epilogue else (
                ["store", "triton-copy"] if slot is not None else ["store"])
            for how in variants:
                def run(env: Tensors, core: Core = core, how: str = how,
                        bias: Tensor | None = bias) -> None:
                    z = env[z_name] if z_name else None
                    y = core.fn(env[x_name], z)
                    if how == "store":
                        bufs.store(env, final, y)
                        return
                    dst = bufs.view(env, slot) if slot is not None else _channels_last(y.shape, y)
                    if how == "triton-copy":
                        tk.epilogue(y, dst)
                    else:
                        tk.epilogue(y, dst, bias, z if residual and not core.tail else None,
                                    relu and not core.tail)
                    bufs.store(env, final, dst)

                name = core.name + {"store": "", "triton-copy": "+copy",
                                    "epilogue": "+epilogue"}[how]
                into = "its Concat slot" if slot is not None else "a channels-last tensor"
                if how == "store":
                    tail = suffix + (SINK_COPY if slot is not None else "")
                elif how == "triton-copy":
                    tail = f"{suffix}, then a Triton copy into {into}"
                else:
                    parts = [p for p, on in (("bias", bias is not None),
                                             ("residual Add", residual and not core.tail),
                                             ("ReLU", relu and not core.tail)) if on]
                    what = " + ".join(parts) if parts else "layout change"
                    tail = f"{suffix}, then one Triton epilogue ({what}) writing {into}"
                describe = core.describe
                tactics.append(Tactic(name, run, tail if describe else core.how + tail, describe))
        return tactics

    def _bias(self, spec: ConvSpec) -> Tensor | None:
        if spec.b is None:
            return None
        return to_device(spec.b.astype(np.float32), self.env.device, self.env.dtype)

    def _single_epilogue(self, epilogue: Sequence[Node],
                         out: str) -> tuple[Kernel, str, tuple[str, ...]] | None:
        """One element-wise op over the convolution's output alone that can write in place."""
        if len(epilogue) != 1:
            return None
        node = epilogue[0]
        k = self.kernel(node)
        data = [t for t in node.inputs if t and not self.is_const(t)]
        if k.into is None or data != [out] or not node.outputs:
            return None
        return k, node.outputs[0], tuple(node.inputs)

    def merged_layer(self, nodes: Sequence[Node], step: Step) -> Realised | None:
        """Horizontally merged sibling convolutions as one wide convolution."""
        convs = [n for n in nodes if n.op == "Conv"]
        x_name = convs[0].inputs[0]
        if any(c.inputs[0] != x_name for c in convs):
            return None
        member_of: dict[str, int] = {}
        members: list[list[Node]] = [[] for _ in convs]
        for n in nodes:
            if n.op == "Conv":
                k = convs.index(n)
            else:
                src = [t for t in n.inputs if t in member_of]
                if len(src) != 1:
                    return None
                k = member_of[src[0]]
            members[k].append(n)
            for t in n.outputs:
                if t:
                    member_of[t] = k
        chains = [self.conv_chain(m) for m in members]
        if any(c is None for c in chains):
            return None
        specs = [c[0] for c in chains if c is not None]
        epis = [c[3] for c in chains if c is not None]
        outs = [c[4] for c in chains if c is not None]
        keys = {tuple(_epilogue_key(n, self.env) for n in e) for e in epis}
        linear = all(
            len([t for t in n.inputs if t and not self.is_const(t)]) == 1 for e in epis for n in e
        )
        if (len({s.geometry() for s in specs}) != 1 or specs[0].groups != 1 or len(keys) != 1
                or not linear or any(n.op not in POINTWISE_OPS for n in epis[0])):
            return None
        w = np.concatenate([s.w for s in specs], axis=0)
        if any(s.b is not None for s in specs):
            b: np.ndarray | None = np.concatenate(
                [s.b if s.b is not None else np.zeros(s.w.shape[0]) for s in specs])
        else:
            b = None
        spec = ConvSpec(w, b, specs[0].stride, specs[0].begin, specs[0].end, specs[0].dilation, 1)
        ops = [n.op for n in epis[0]]
        mode = "relu" if ops == ["Relu"] else "none"
        finals = [e[-1].outputs[0] if e else o for e, o in zip(epis, outs, strict=True)]
        sizes = [s.w.shape[0] for s in specs]
        offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        writes = self.external_writes(nodes)
        bufs = self.bufs
        if self.tk is not None and ops in ([], ["Relu"]):
            tactics = self.split_tactics(spec, mode, x_name, finals, sizes, step)
            return Realised(tactics[0].run, self.external_reads(nodes), writes, tactics[0].path,
                            tactics)
        fused = FusedConv(spec, self.env, mode, step)
        tail = [] if mode == "relu" else [self.kernel(n) for n in epis[0]]
        self.views.update(finals)

        def run(env: Tensors) -> None:
            y = fused(env[x_name])
            for k in tail:
                y = k.fn([y])[0]
            for t, off, size in zip(finals, offsets, sizes, strict=True):
                bufs.store(env, t, y.narrow(1, off, size))

        tails = " + ".join(k.how for k in tail)
        path = (f"one convolution over {len(convs)} members' concatenated weights "
                f"({'+'.join(map(str, sizes))} = {sum(sizes)} channels; BatchNorm folded): "
                f"{fused.how}{', then ' + tails if tails else ''}; outputs are channel views")
        return Realised(run, self.external_reads(nodes), writes, path)

    def member_slot(self, t: str) -> Slot | None:
        """The Concat slot a merged member writes itself: its own, or the one slot a ``copy``
        layer would fill from it (that copy then has nothing to do)."""
        bufs = self.bufs
        if t in bufs.primary:
            return bufs.primary[t]
        pairs = [(src, concat) for (src, concat) in bufs.copied if src == t]
        if len(pairs) == 1 and len(bufs.copied[pairs[0]]) == 1:
            bufs.direct.add(pairs[0])
            return bufs.copied[pairs[0]][0]
        return None

    def split_tactics(self, spec: ConvSpec, mode: str, x_name: str, finals: Sequence[str],
                      sizes: Sequence[int], step: Step) -> list[Tactic]:
        """A merged layer: each core over the wide weights, then one Triton split epilogue that
        writes every member (with what the core left out: bias, ReLU) into its destination."""
        tk = self.tk
        assert tk is not None
        bufs = self.bufs
        slots = [self.member_slot(t) for t in finals]
        relu = mode == "relu"
        wide_bias = self._bias(spec)
        groups = [list(range(i, min(i + tk.MAX_SPLIT, len(finals))))
                  for i in range(0, len(finals), tk.MAX_SPLIT)]
        offsets = [sum(sizes[:i]) for i in range(len(sizes))]
        where = ", ".join(
            f"{t!r} -> " + (f"slot [{sl.offset}:{sl.offset + sl.size}] of {sl.concat!r}" if sl
                            else "a dense tensor")
            for t, sl in zip(finals, slots, strict=True))
        head = (f"one convolution over {len(finals)} members' concatenated weights "
                f"({'+'.join(map(str, sizes))} = {sum(sizes)} channels; BatchNorm folded): ")
        tactics: list[Tactic] = []
        for core in conv_cores(spec, self.env, mode, step):
            if core.name == "cudnn-nchw":
                continue
            bias = None if core.bias else wide_bias

            def run(env: Tensors, core: Core = core, bias: Tensor | None = bias) -> None:
                y = core.fn(env[x_name], None)
                outs = [bufs.view(env, sl) if sl is not None
                        else _channels_last((y.shape[0], sizes[k], *y.shape[2:]), y)
                        for k, sl in enumerate(slots)]
                for group in groups:
                    first, last = group[0], group[-1]
                    width = offsets[last] + sizes[last] - offsets[first]
                    tk.split_epilogue(
                        y.narrow(1, offsets[first], width), [outs[k] for k in group],
                        None if bias is None else bias.narrow(0, offsets[first], width),
                        relu and not core.tail)
                for t, o in zip(finals, outs, strict=True):
                    bufs.store(env, t, o)

            applied = [p for p, on in (("bias", bias is not None), ("ReLU", relu and not core.tail))
                       if on]
            tail = (f"; one Triton split epilogue{' (' + ' + '.join(applied) + ')' if applied else ''}"
                    f" writes each member into its destination ({where})")
            if core.describe is not None:
                tactics.append(Tactic(core.name + "+split", run, tail,
                                      _prefixed(head, core.describe)))
            else:
                tactics.append(Tactic(core.name + "+split", run, head + core.how + tail))
        # a safety net without the split kernel: the members as channel views of the wide
        # output, each copied (Tensor.copy_) into the slot it has
        legacy = FusedConv(spec, self.env, mode, step)

        def run_views(env: Tensors) -> None:
            y = legacy(env[x_name])
            for t, sl, off, size in zip(finals, slots, offsets, sizes, strict=True):
                view = y.narrow(1, off, size)
                if sl is not None:
                    dst = bufs.view(env, sl)
                    dst.copy_(view)
                    view = dst
                bufs.store(env, t, view)

        tactics.append(Tactic(
            "views+copy", run_views, "; outputs are channel views, each copied into its slot "
            "(Tensor.copy_)", _prefixed(head, lambda: legacy.how), fallback=True))
        return tactics

    def gemm_layer(self, nodes: Sequence[Node]) -> Realised | None:
        """A fully connected layer with a BatchNormalization folded into it."""
        if len(nodes) < 2 or nodes[0].op != "Gemm" or nodes[1].op != "BatchNormalization":
            return None
        gemm, bn = nodes[0], nodes[1]
        a, values = gemm.attrs, self.env.values
        if (bn.inputs[0] != gemm.outputs[0] or int(a.get("transA", 0))
                or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0
                or gemm.inputs[1] not in values
                or not all(t in values for t in bn.inputs[1:5])):
            return None
        w = values[gemm.inputs[1]]
        w = w if int(a.get("transB", 0)) else w.T
        b = values.get(gemm.inputs[2]) if len(gemm.inputs) > 2 and gemm.inputs[2] else None
        wf, bf = fold_bn(w, b, bn, values)
        wt = to_device(wf.astype(np.float32), self.env.device, self.env.dtype)
        bt = to_device(bf.astype(np.float32), self.env.device, self.env.dtype)
        x_name, out = gemm.inputs[0], bn.outputs[0]
        rest = list(nodes[2:])
        tail = self.sequential(rest) if rest else None
        bufs = self.bufs
        writes = self.external_writes(nodes)

        def run(env: Tensors) -> None:
            y = torch.nn.functional.linear(env[x_name], wt, bt)
            if tail is None:
                bufs.store(env, out, y)
                return
            env[out] = y
            tail.run(env)
            env.pop(out, None)

        path = "F.linear (BatchNorm folded into the weights)" + (
            f", then {tail.path}" if tail else "")
        return Realised(run, self.external_reads(nodes), writes, path)

    # -- a whole layer -------------------------------------------------------------------

    def layer(self, layer: Layer, step: Step) -> Realised:
        nodes = [self.graph.node(n) for n in layer.nodes if n not in self.folded]
        if not nodes:
            return Realised(lambda env: None, (), (), "constant (computed at load)")
        convs = [n for n in nodes if n.op == "Conv"]
        found: Realised | None = None
        if len(convs) > 1:
            found = self.merged_layer(nodes, step)
            if found is None:
                return self.sequential(nodes, "sibling convolutions not merged "
                                              "(different geometry or epilogue)")
        elif len(convs) == 1:
            found = self.conv_layer(nodes, step)
        elif nodes[0].op == "Gemm":
            found = self.gemm_layer(nodes)
        elif len(nodes) == 1 and nodes[0].op == "MaxPool":
            found = self.pool_layer(nodes[0])
        elif len(nodes) > 1 and all(
            n.op in POINTWISE_OPS or n.op == "BatchNormalization" for n in nodes
        ):
            found = self.pointwise_chain(nodes)
        return found if found is not None else self.sequential(nodes)

    def pool_layer(self, node: Node) -> Realised | None:
        """A 2-D MaxPool: ``F.max_pool2d``, or the Triton kernel writing its destination."""
        tk = self.tk
        a = node.attrs
        if (tk is None or "kernel_shape" not in a or len(a["kernel_shape"]) != 2
                or len([t for t in node.outputs if t]) != 1
                or any(int(v) != 1 for v in a.get("dilations", [1, 1]))):
            return None
        auto = a.get("auto_pad", "NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", "VALID"):
            return None
        kernel = [int(v) for v in a["kernel_shape"]]
        stride = [int(v) for v in a.get("strides", [1, 1])]
        pads = [0] * 4 if auto == "VALID" else [int(v) for v in a.get("pads", [0] * 4)]
        begin, end = pads[:2], pads[2:]
        ceil = bool(a.get("ceil_mode", 0))
        legacy = self.sequential([node])
        x_name, out = node.inputs[0], node.outputs[0]
        bufs = self.bufs
        slot = bufs.primary.get(out)

        def run(env: Tensors) -> None:
            x = env[x_name]
            if x.dim() != 4 or x.stride(1) != 1:
                x = x.contiguous(memory_format=torch.channels_last)
            n, c, h, w = x.shape
            shape = (n, c, *(tk.pool_output_size(size, k, st, b, e, ceil) for size, k, st, b, e
                             in zip((h, w), kernel, stride, begin, end, strict=True)))
            dst = bufs.view(env, slot) if slot is not None else _channels_last(shape, x)
            tk.max_pool(x, kernel, stride, begin, dst)
            bufs.store(env, out, dst)

        into = "into its Concat slot" if slot is not None else "a channels-last output"
        path = (f"Triton max pooling ({kernel[0]}x{kernel[1]}, stride {stride[0]}, no index "
                f"tensor) writing {into}")
        return Realised(legacy.run, legacy.reads, legacy.writes, legacy.path,
                        [Tactic("torch", legacy.run, legacy.path),
                         Tactic("triton-maxpool", run, path)])

    def copy_layer(self, layer: Layer) -> Realised:
        target = _copy_target(self.graph, layer, self.concats)
        if target is None or target not in self.bufs.copied:
            if layer.inputs and self.is_const(layer.inputs[0]):
                why = "it copies a constant into a Concat computed at load"
            else:
                why = f"{layer.kind or 'a layer'} inserted by the engine, nothing to do in PyTorch"
            return Realised(lambda env: None, (), (), f"no-op ({why})")
        src, concat = target
        if target in self.bufs.direct:
            return Realised(lambda env: None, (), (),
                            f"no-op (the merged layer's split epilogue wrote {src!r} into its "
                            f"slot of {concat!r} itself)")
        slots = self.bufs.copied[target]
        bufs = self.bufs

        def run(env: Tensors) -> None:
            for slot in slots:
                bufs.view(env, slot).copy_(env[src])

        where = ", ".join(f"[{s.offset}:{s.offset + s.size}]" for s in slots)
        return Realised(run, (src,), (concat,),
                        f"copy into channel slice {where} of {concat!r} (Tensor.copy_)")


def _eliminated_pre(
    graph: Graph, plan: Plan, folded: frozenset[str], concats: frozenset[str]
) -> dict[str, str]:
    """Output tensor -> eliminated node (not a Concat, not folded) that computes it."""
    out: dict[str, str] = {}
    for n in plan.eliminated:
        if n in graph and n not in folded and n not in concats:
            for t in graph.node(n).outputs:
                if t:
                    out[t] = n
    return out


def check_plan(graph: Graph, plan: Plan, folded: frozenset[str]) -> None:
    """The plan must cover every node of this graph once (or eliminate it)."""
    seen: dict[str, str] = {}
    for layer in plan.layers:
        for n in layer.nodes:
            if n not in graph:
                raise FusionlabError(
                    f"the plan does not match the model: layer {layer.name!r} names node "
                    f"{n!r}, which {graph.name} does not have"
                )
            if n in seen:
                raise FusionlabError(
                    f"the plan computes node {n!r} twice ({seen[n]!r} and {layer.name!r})"
                )
            seen[n] = layer.name
    missing = [n for n in graph.order
               if n not in seen and n not in plan.eliminated and n not in folded]
    if missing:
        raise FusionlabError(
            f"the plan does not match the model: {len(missing)} node(s) are in no layer and "
            f"not eliminated, e.g. {missing[0]!r}"
        )


def fused_program(
    graph: Graph, plan: Plan, env: Env, folded: frozenset[str], *, compile_pointwise: bool = True,
    tactics: bool = True,
) -> Program:
    """The plan's layers as steps (see the module docstring for each realisation).

    ``tactics``: on CUDA with Triton, give layers their candidate realisations (Triton
    kernels among them), to be timed when the program is prepared; off, the PyTorch/cuDNN
    realisations alone.
    """
    check_plan(graph, plan, folded)
    builder = _Builder(graph, plan, env, folded, compile_pointwise, tactics)
    pre_of = _eliminated_pre(graph, plan, folded, frozenset(builder.concats))
    scheduled: set[str] = set()
    steps: list[Step] = []

    def pre_nodes(reads: Sequence[str]) -> list[Node]:
        """Eliminated nodes (aliases, views) this layer needs first, in order."""
        out: list[Node] = []

        def visit(t: str) -> None:
            n = pre_of.get(t)
            if n is None or n in scheduled:
                return
            scheduled.add(n)
            node = graph.node(n)
            for i in node.inputs:
                if i:
                    visit(i)
            out.append(node)

        for t in reads:
            visit(t)
        return out

    for layer in plan.layers:
        step = Step(layer.name, layer.kind, layer.nodes, lambda env: None, (), (), "")
        realised = builder.copy_layer(layer) if layer.inserted else builder.layer(layer, step)
        pre = pre_nodes(realised.reads)
        if pre:
            head = builder.sequential(pre)
            body = realised.run

            def both(env: Tensors, head: Callable[[Tensors], None] = head.run,
                     body: Callable[[Tensors], None] = body) -> None:
                head(env)
                body(env)

            run: Callable[[Tensors], None] = both

            reads = tuple(dict.fromkeys(
                (*head.reads, *(t for t in realised.reads if t not in head.writes))))
            writes = (*head.writes, *realised.writes)
            names = ", ".join(n.name for n in pre)
            after = f" (after eliminated {names}: {head.path})"
            path = realised.path + after
            step.tactics = [
                Tactic(t.name, _after(head.run, t.run), t.path + after, t.describe)
                for t in realised.tactics]
        else:
            run, reads, writes, path = realised.run, realised.reads, realised.writes, realised.path
            step.tactics = list(realised.tactics)
        step.run, step.reads, step.writes, step.path = run, reads, writes, path
        steps.append(step)
    leftover = pre_nodes([t.name for t in graph.outputs])
    if leftover:
        tail = builder.sequential(leftover)
        steps.append(Step("(graph outputs)", "Alias", tuple(n.name for n in leftover), tail.run,
                          tail.reads, tail.writes, tail.path))
    _check_order(graph, steps, env, builder.bufs)
    source = plan.source or "plan"
    label = f"fused ({source}{', ' + plan.target if plan.target else ''})"
    return Program(label, steps, builder.inputs, tuple(t.name for t in graph.outputs),
                   env.constants, env.device, env.dtype)


def _prefixed(text: str, describe: Callable[[], str]) -> Callable[[], str]:
    return lambda: text + describe()


def _after(head: Callable[[Tensors], None],
           body: Callable[[Tensors], None]) -> Callable[[Tensors], None]:
    def both(env: Tensors) -> None:
        head(env)
        body(env)

    return both


def _check_order(graph: Graph, steps: Sequence[Step], env: Env, bufs: Buffers) -> None:
    """Every step reads only what earlier steps (or the inputs) wrote."""
    ready = set(t.name for t in graph.inputs) | set(env.constants)
    for step in steps:
        for t in step.reads:
            if t not in ready and t not in bufs.shapes:
                raise FusionlabError(
                    f"the plan's layer order is not executable: {step.name!r} reads {t!r} "
                    "before any layer writes it"
                )
        ready.update(step.writes)

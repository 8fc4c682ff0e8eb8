"""A program: the steps (engine layers, or ONNX nodes when unfused) that run a graph in order.

Each :class:`Step` reads named tensors from an environment (a dict), runs its PyTorch
calls and writes named tensors back; :class:`Program` runs the steps in order and drops
every tensor after the last step that reads it (as an engine reuses its activation
memory). Constants (initializers, and nodes that compute only from constants) are
computed once, when the program is built (:func:`fold_constants`).

This module imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from fusionlab.errors import FusionlabError
from fusionlab.execute.kernels import SUPPORTED_OPS, Env, make_kernel
from fusionlab.ir.graph import Graph, Node

log = logging.getLogger(__name__)

Tensor = torch.Tensor
Tensors = dict[str, Tensor]

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
"""Precisions the executor runs, as torch dtypes."""


@dataclass
class Tactic:
    """One way to realise a layer (as TensorRT has several tactics per layer)."""

    name: str
    """Short label, e.g. ``cudnn-fused+copy`` or ``conv+triton-epilogue``."""
    run: Callable[[Tensors], None]
    path: str
    """What :attr:`Step.path` says when this tactic is chosen."""
    describe: Callable[[], str] | None = None
    """Where the realisation is only known after running (a cuDNN fused call that may fall
    back): its description, put before :attr:`path`."""
    fallback: bool = False
    """Timed only when every other candidate failed (its cost lands partly in other layers,
    which timing this layer alone would not see)."""


@dataclass
class Step:
    """One timed unit: an engine layer (fused) or an ONNX node (unfused)."""

    name: str
    kind: str
    nodes: tuple[str, ...]
    run: Callable[[Tensors], None]
    reads: tuple[str, ...]
    """Tensors it reads from the environment (constants left out)."""
    writes: tuple[str, ...]
    path: str
    """How it was realised (the PyTorch/cuDNN calls); updated if a fused kernel falls back."""
    notes: list[str] = field(default_factory=list)
    tactics: list[Tactic] = field(default_factory=list)
    """Candidate realisations; :meth:`Program.prepare` keeps the fastest (CUDA) or the first."""
    tactic_ms: dict[str, float] = field(default_factory=dict)
    """Each timed candidate's median time per call (ms), once chosen."""


@dataclass
class Program:
    """Steps in order, plus the graph's inputs, outputs and constants."""

    label: str
    """``"unfused"`` or ``"fused (<plan source>)"``."""
    steps: list[Step]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: Mapping[str, Tensor]
    device: torch.device
    dtype: torch.dtype
    release: list[tuple[str, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.release = release_schedule(self.steps, self.outputs, self.constants)

    def start(self, feeds: Mapping[str, Tensor]) -> Tensors:
        """A fresh environment holding the constants and the inputs."""
        env: Tensors = dict(self.constants)
        env.update(feeds)
        return env

    def step(self, i: int, env: Tensors, *, keep: bool = False) -> None:
        """Run step ``i`` and drop the tensors no later step reads (unless ``keep``)."""
        self.steps[i].run(env)
        if not keep:
            for name in self.release[i]:
                env.pop(name, None)

    def finish(self, env: Tensors) -> Tensors:
        """The graph outputs from a finished environment."""
        return {name: env[name] for name in self.outputs}

    def run(self, feeds: Mapping[str, Tensor], *, keep: bool = False) -> Tensors:
        """Run every step; with ``keep`` the whole environment is returned."""
        env = self.start(feeds)
        for i in range(len(self.steps)):
            self.step(i, env, keep=keep)
        return env if keep else self.finish(env)

    def prepare(self, feeds: Mapping[str, Tensor]) -> None:
        """A first run that names the step when PyTorch fails (kernels are probed here).

        A step with several tactics gets one here, on the live tensors of this run: on CUDA
        the fastest by timing (:func:`fusionlab.execute.tactics.choose`), on the CPU the first.
        """
        from fusionlab.execute.tactics import choose

        env = self.start(feeds)
        for i, step in enumerate(self.steps):
            try:
                if step.tactics:
                    choose(step, env, self.device)
                self.step(i, env)
            except FusionlabError:
                raise
            except (RuntimeError, NotImplementedError, ValueError, TypeError) as exc:
                first = " ".join(str(exc).split())[:300]
                raise FusionlabError(
                    f"{self.label} step {step.name!r} ({step.path}): PyTorch failed: {first}"
                ) from exc
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def release_schedule(
    steps: Sequence[Step], outputs: Sequence[str], constants: Mapping[str, Tensor]
) -> list[tuple[str, ...]]:
    """For each step, the tensors to drop after it: those no later step reads."""
    last: dict[str, int] = {}
    for i, step in enumerate(steps):
        for t in (*step.writes, *step.reads):
            last[t] = i
    keep = set(outputs) | set(constants)
    per_step: list[list[str]] = [[] for _ in steps]
    for t, i in last.items():
        if t not in keep:
            per_step[i].append(t)
    return [tuple(sorted(names)) for names in per_step]


def _constant_value(node: Node, graph: Graph) -> np.ndarray:
    assert graph.model is not None
    proto = graph.model.graph.node[node.index]
    for a in proto.attribute:
        v = onnx.helper.get_attribute_value(a)
        if a.name == "value":
            return np.asarray(numpy_helper.to_array(v))
        if a.name == "value_float":
            return np.asarray(v, dtype=np.float32)
        if a.name == "value_floats":
            return np.asarray(list(v), dtype=np.float32)
        if a.name == "value_int":
            return np.asarray(v, dtype=np.int64)
        if a.name == "value_ints":
            return np.asarray(list(v), dtype=np.int64)
    raise FusionlabError(f"node {node.name!r} (Constant): unsupported value attribute")


def _static(graph: Graph, name: str) -> bool:
    t = graph.tensors.get(name)
    return t is not None and t.shape is not None and all(isinstance(d, int) for d in t.shape)


def to_device(array: np.ndarray, device: torch.device, dtype: torch.dtype) -> Tensor:
    """A numpy constant on the device; floating-point values in the compute dtype."""
    t = torch.from_numpy(np.array(array, copy=True, order="C"))
    if t.is_floating_point():
        t = t.to(dtype)
    return t.to(device)


def fold_constants(
    graph: Graph, device: torch.device, dtype: torch.dtype
) -> tuple[dict[str, np.ndarray], frozenset[str]]:
    """Values of every constant tensor, and the nodes that compute only from constants.

    Initializers, Constant nodes, ``Shape`` of a tensor whose shape is static, and any
    node whose inputs are all constant (computed here, on the CPU, in float32).
    """
    values: dict[str, np.ndarray] = {name: graph.array(name) for name in graph.weights}
    folded: set[str] = set()
    for name in graph.order:
        node = graph.node(name)
        if node.opaque or node.op not in SUPPORTED_OPS:
            continue
        data = [t for t in node.inputs if t]
        if node.op == "Constant":
            values[node.outputs[0]] = _constant_value(node, graph)
        elif node.op == "Shape" and data and _static(graph, data[0]):
            shape = graph.tensors[data[0]].shape
            assert shape is not None
            values[node.outputs[0]] = np.asarray(shape, dtype=np.int64)
        elif data and all(t in values for t in data):
            cpu = torch.device("cpu")
            env = Env(graph, {t: to_device(values[t], cpu, torch.float32) for t in data},
                      values, cpu, torch.float32)
            kernel = make_kernel(node, env)
            outs = kernel.fn([env.constants[t] if t else None for t in node.inputs])
            for t, v in zip(node.outputs, outs, strict=False):
                if t:
                    values[t] = v.detach().cpu().numpy()
        else:
            continue
        folded.add(name)
    return values, frozenset(folded)


def make_env(
    graph: Graph, device: torch.device, dtype: torch.dtype
) -> tuple[Env, frozenset[str]]:
    """The kernel builders' environment (constants on the device) and the folded nodes."""
    values, folded = fold_constants(graph, device, dtype)
    constants = {name: to_device(v, device, dtype) for name, v in values.items()}
    return Env(graph, constants, values, device, dtype), folded


def random_inputs(
    graph: Graph, device: torch.device, dtype: torch.dtype, seed: int
) -> Tensors:
    """Seeded random graph inputs: standard normal floats (channels-last when 4-D)."""
    gen = torch.Generator().manual_seed(seed)
    feeds: Tensors = {}
    for t in graph.inputs:
        if t.shape is None or not all(isinstance(d, int) for d in t.shape):
            raise FusionlabError(
                f"{graph.name}: input {t.name!r} has shape {t.shape}; fix it with --batch"
            )
        shape = [int(d) for d in t.shape]  # type: ignore[arg-type]
        if t.dtype in (None, "float32", "float16", "float64"):
            x = torch.randn(shape, generator=gen).to(dtype)
        elif t.dtype == "bool":
            x = torch.rand(shape, generator=gen) > 0.5
        else:
            x = torch.randint(0, 2, shape, generator=gen)
        x = x.to(device)
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        feeds[t.name] = x
    return feeds


def unfused_program(graph: Graph, env: Env, folded: frozenset[str]) -> Program:
    """One step per ONNX node (constant nodes computed at load), in graph order."""
    steps: list[Step] = []
    for name in graph.order:
        if name in folded:
            continue
        node = graph.node(name)
        kernel = make_kernel(node, env)
        ins = tuple(node.inputs)
        outs = tuple(node.outputs)

        def run(tensors: Tensors, kernel_fn: Callable[..., list[Tensor]] = kernel.fn,
                ins: tuple[str, ...] = ins, outs: tuple[str, ...] = outs) -> None:
            results = kernel_fn([tensors[t] if t else None for t in ins])
            for t, v in zip(outs, results, strict=False):
                if t:
                    tensors[t] = v

        reads = tuple(t for t in ins if t and t not in env.constants)
        steps.append(Step(name, node.op, (name,), run, reads, tuple(t for t in outs if t),
                          kernel.how))
    return Program("unfused", steps, tuple(t.name for t in graph.inputs),
                   tuple(t.name for t in graph.outputs), env.constants, env.device, env.dtype)

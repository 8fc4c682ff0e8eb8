"""The reference executor against plain PyTorch and torch.compile on the same ONNX weights.

For each zoo model, precision and batch, in one process on one GPU:

- ``unfused``          fusionlab execute --unfused: one PyTorch call per ONNX node;
- ``fused``            fusionlab execute following the plan predicted for trt10, with per-layer
                       tactic selection among cuDNN, cuBLAS and Triton kernels (issue 15);
- ``fused (torch)``    the same plan with the PyTorch/cuDNN realisations alone
                       (``--no-tactics``: the executor before issue 15);
- ``torch``            the model as a plain ``torch.nn.Module`` built from the same ONNX
                       weights (nn.Conv2d, nn.BatchNorm2d, nn.ReLU(inplace) ...);
- ``torch folded``     BatchNorm folded into the convolutions (``fuse_conv_bn_eval``);
- ``compile``          ``torch.compile`` of the folded module, default settings (a fresh
                       ``torch._dynamo.reset()`` per configuration, so each compiles static);
- ``max-autotune``     ``torch.compile(mode="max-autotune-no-cudagraphs")`` of the folded
                       module, for the configurations named by ``--max-autotune``;

``graph`` columns capture the call as one CUDA graph (every variant through the same
capture), ``eager`` columns launch it from Python. The CUDA-graph variants are timed
interleaved: ``--rounds`` rounds, each replaying every variant ``--reps`` times in a rotating
order, an event pair around each replay; medians over all replays. Eager variants are timed
one after another (:func:`fusionlab.execute.timing.time_callable`).

Numerical check: the fused (both) and the compiled executions against the unfused one on
the same random inputs (relative 2-norm error; limits fp32 1e-4, fp16 1e-2).

Per-layer evidence (``--profile``): each layer of the fused plan with its CUDA-event median
inside the CUDA graph (new and old realisation), the kernels it ran (torch.profiler names and
GPU times) and the chosen tactic with every candidate's time; torch.compile's kernels in GPU
order, attributed to ONNX nodes by the structure of inductor's code
(:func:`attribute_compile_kernels`); sums per layer kind. ``--from-json`` writes the tables
again from saved rows, without a GPU. ``--probe`` (a process of its own) checks whether cuDNN
can write a Concat slot directly and measures the host cost of a Triton launch. All variants
use channels-last memory, cuDNN autotuning and, at fp32, IEEE
float32 (TF32 off, for the 1e-4 check).

Run (GPU): python benchmarks/bench_execute.py --out DIR [--models ...] [--batches ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusionlab import zoo
from fusionlab.execute import backend_settings, build
from fusionlab.execute.check import compare, relative_error
from fusionlab.execute.fused import fused_program
from fusionlab.execute.kernels import Env, conv_geometry
from fusionlab.execute.program import Program, make_env
from fusionlab.execute.timing import (
    capture_graph,
    count_launches,
    gpu_kernels,
    step_kernels,
    step_stats,
    time_callable,
    time_layers,
)
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import Graph, Node, load

log = logging.getLogger("bench_execute")

GRAPH_VARIANTS = ("unfused graph", "torch graph", "torch folded graph", "compile graph",
                  "max-autotune graph", "fused (torch) graph", "fused graph")


class OnnxModule(nn.Module):
    """A plain PyTorch module for a CNN ONNX graph: one submodule per node, run in order.

    Conv -> nn.Conv2d, BatchNormalization -> nn.BatchNorm2d (eval), Relu -> nn.ReLU
    (in place where its input has no other reader), MaxPool -> nn.MaxPool2d,
    GlobalAveragePool -> nn.AdaptiveAvgPool2d, Flatten -> torch.flatten, Gemm -> nn.Linear,
    Add -> ``+``, Concat -> torch.cat, Clip -> nn.Hardtanh. ``fold_bn`` folds each
    BatchNorm that follows a convolution into it (``fuse_conv_bn_eval``).
    """

    def __init__(self, graph: Graph, env: Env, folded: frozenset[str], *, fold_bn: bool) -> None:
        super().__init__()
        self.inputs = [t.name for t in graph.inputs]
        self.outputs = [t.name for t in graph.outputs]
        self.mods = nn.ModuleList()
        self.program: list[tuple[str, list[str], list[str], int]] = []
        self.kinds: list[str] = []
        convs: dict[str, int] = {}
        for name in graph.order:
            if name in folded:
                continue
            node = graph.node(name)
            mod, kind = self._module(node, graph, env)
            ins = [t for t in node.inputs if t and t not in env.constants]
            if (fold_bn and node.op == "BatchNormalization" and ins[0] in convs
                    and len(graph.consumers.get(ins[0], ())) == 1):
                i = convs[ins[0]]
                conv = self.mods[i]
                assert isinstance(conv, nn.Conv2d) and isinstance(mod, nn.BatchNorm2d)
                self.mods[i] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv.eval(), mod.eval())
                mod, kind = nn.Identity(), "alias"
            self.mods.append(mod)
            self.kinds.append(kind)
            self.program.append((name, ins, [t for t in node.outputs if t], len(self.mods) - 1))
            if node.op == "Conv":
                convs[node.outputs[0]] = len(self.mods) - 1
        self.constants = env.constants

    @staticmethod
    def _module(node: Node, graph: Graph, env: Env) -> tuple[nn.Module, str]:
        a, c = node.attrs, env.constants
        if node.op == "Conv":
            w = c[node.inputs[1]]
            stride, begin, end, dil, groups = conv_geometry(node, env, tuple(w.shape))
            if begin != end:
                raise ValueError(f"{node.name}: asymmetric padding")
            has_bias = len(node.inputs) > 2 and bool(node.inputs[2])
            conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], (w.shape[2], w.shape[3]),
                             (stride[0], stride[1]), (begin[0], begin[1]), (dil[0], dil[1]),
                             groups, bias=has_bias)
            conv.weight.data = w.float().clone()
            if has_bias:
                assert conv.bias is not None
                conv.bias.data = c[node.inputs[2]].float().clone()
            return conv, "module"
        if node.op == "BatchNormalization":
            scale, bias, mean, var = (c[t].float() for t in node.inputs[1:5])
            bn = nn.BatchNorm2d(scale.numel(), eps=float(a.get("epsilon", 1e-5)))
            bn.weight.data, bn.bias.data = scale.clone(), bias.clone()
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.data, bn.running_var.data = mean.clone(), var.clone()
            return bn.eval(), "module"
        if node.op == "Relu":
            x = node.inputs[0]
            inplace = (len(graph.consumers.get(x, ())) == 1 and x not in graph.output_names
                       and graph.producer.get(x) is not None)
            return nn.ReLU(inplace=inplace), "module"
        if node.op == "Clip":
            lo = float(env.values[node.inputs[1]]) if len(node.inputs) > 1 else -math.inf
            hi = float(env.values[node.inputs[2]]) if len(node.inputs) > 2 else math.inf
            return nn.Hardtanh(lo, hi), "module"
        if node.op == "MaxPool":
            k = tuple(int(v) for v in a["kernel_shape"])
            pads = tuple(int(v) for v in a.get("pads", [0] * 4))
            strides = tuple(int(v) for v in a.get("strides", [1, 1]))
            return nn.MaxPool2d(k, strides, pads[:2],
                                ceil_mode=bool(a.get("ceil_mode", 0))), "module"
        if node.op == "GlobalAveragePool":
            return nn.AdaptiveAvgPool2d(1), "module"
        if node.op == "Gemm":
            w = c[node.inputs[1]]
            lin = nn.Linear(w.shape[1], w.shape[0])
            lin.weight.data, lin.bias.data = w.float().clone(), c[node.inputs[2]].float().clone()
            return lin, "module"
        if node.op in ("Flatten", "Add", "Concat", "Dropout", "Identity"):
            return nn.Identity(), node.op
        raise ValueError(f"{node.name}: {node.op} has no plain-PyTorch module here")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {self.inputs[0]: x}
        for (_, ins, outs, i), kind in zip(self.program, self.kinds, strict=True):
            args = [env[t] for t in ins]
            if kind == "module":
                y = self.mods[i](args[0])
            elif kind == "Add":
                y = args[0] + args[1]
            elif kind == "Concat":
                y = torch.cat(args, 1)
            elif kind == "Flatten":
                y = torch.flatten(args[0], 1)
            else:
                y = args[0]
            env[outs[0]] = y
        return env[self.outputs[0]]




def channels_last(module: OnnxModule) -> OnnxModule:
    """The module in eval mode with its 4-D weights in channels-last memory."""
    for p in module.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
    return module.eval()


def _eager_median(fn: Callable[[], object], iterations: int, warmup: int) -> float:
    s = time_callable(fn, torch.device("cuda"), iterations, warmup).summary.gpu_compute
    assert s is not None
    return s.median_ms


def interleaved_graph_medians(variants: dict[str, Callable[[], object]], rounds: int, reps: int,
                              warmup: int) -> dict[str, float]:
    """Median replay time (ms) of each callable captured as a CUDA graph, timed interleaved."""
    graphs: dict[str, torch.cuda.CUDAGraph] = {}
    kept: list[object] = []
    for name, fn in variants.items():
        g, out = capture_graph(fn, warmup)
        graphs[name] = g
        kept.append(out)
    names = list(graphs)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            g = graphs[name]
            for _ in range(2):
                g.replay()
            events = [(torch.cuda.Event(enable_timing=True),  # type: ignore[no-untyped-call,unused-ignore]
                       torch.cuda.Event(enable_timing=True))  # type: ignore[no-untyped-call,unused-ignore]
                      for _ in range(reps)]
            for a, b in events:
                a.record()
                g.replay()
                b.record()
            torch.cuda.synchronize()
            samples[name] += [a.elapsed_time(b) for a, b in events]
    del graphs, kept
    return {n: statistics.median(v) for n, v in samples.items()}


# ---------------------------------------------------------------------------------------
# Kernel classification and attribution


AUXILIARY = ("tonhwc", "tonchw", "flip_filter", "fft2d_r2c", "fft2d_c2r", "kern_precompute",
             "addpadding", "memset", "memcpy", "splitk", "reduce_kernel", "offsets")
"""Name parts of the helper kernels a library runs around a convolution (layout transforms,
FFT transforms, index precomputation, split-K reductions)."""


FUSED_AWAY = "(none: computed in the previous convolution's epilogue kernel)"


def kernel_kind(name: str) -> str:
    """A kernel's kind from its name: conv, gemm, pool, pointwise, layout, aux, other."""
    low = name.lower()
    if any(k in low for k in ("tonhwc", "tonchw")):
        return "layout"
    if any(k in low for k in AUXILIARY):
        return "aux"
    if low.startswith("triton"):
        if "convolution" in low or "addmm" in low or "mm" in low.split("_"):
            return "epilogue"
        return "pool" if "pool" in low or "mean" in low else "pointwise"
    if "pool" in low:
        return "pool"
    if "elementwise" in low or "vectorized" in low or "copy" in low:
        return "pointwise"
    if any(k in low for k in ("fprop", "conv", "implicit", "xmma", "cutlass", "nvjet", "gemm",
                              "sgemm", "winograd")):
        return "conv"
    return "other"


def attribute_compile_kernels(graph: Graph, kernels: Sequence[tuple[str, float]]
                              ) -> tuple[dict[str, list[tuple[str, float]]], str]:
    """torch.compile's kernels per ONNX node, by the structure of inductor's code.

    Inductor runs each convolution as an external cuDNN call without its bias and then one
    Triton kernel (``triton_*_fused_*convolution*``) with the bias and what follows (BN,
    ReLU, a residual Add, a Concat slot, sometimes the pooling after it: then that pooling
    node gets no kernel of its own, marked :data:`FUSED_AWAY`; a second Triton kernel over
    the same output that pools goes to the pooling node). So the library kernels
    since the previous such Triton kernel (the convolution and its helpers) plus that Triton
    kernel belong to the next Conv nodes in graph order: as many as there were main
    convolution kernels (two convolutions feeding one residual Add share one epilogue).
    Triton pooling kernels go to the next pooling node; what is left at the end (the
    classifier's matrix product) to the graph's Gemm/MatMul nodes. Returns the attribution
    and a note saying whether every Conv node got exactly one main kernel.
    """
    convs = [n for n in graph.order if graph.node(n).op == "Conv"]
    pools = [n for n in graph.order if graph.node(n).op in ("MaxPool", "AveragePool",
                                                            "GlobalAveragePool")]
    tail = [n for n in graph.order if graph.node(n).op in ("Gemm", "MatMul")] or graph.order[-1:]
    per: dict[str, list[tuple[str, float]]] = {}
    ci = pi = 0
    pending: list[tuple[str, float]] = []
    exact = True
    for name, us in kernels:
        kind = kernel_kind(name)
        if kind == "epilogue":
            mains = [i for i, (n, _) in enumerate(pending) if kernel_kind(n) == "conv"]
            if not mains:  # a second Triton kernel over the same convolution's output
                low = name.lower()
                if ("pool" in low or "mean" in low) and pi < len(pools):
                    owner = pools[pi]  # it recomputes the epilogue inline and pools
                    pi += 1
                elif "addmm" in low or not ci:
                    owner = tail[0]
                else:
                    owner = convs[ci - 1]
                per.setdefault(owner, []).extend([*pending, (name, us)])
                pending = []
                continue
            cut = 0
            for m, i in enumerate(mains):
                last = m == len(mains) - 1
                group = [*pending[cut:], (name, us)] if last else pending[cut:i + 1]
                cut = i + 1
                if ci < len(convs):
                    per.setdefault(convs[ci], []).extend(group)
                    ci += 1
                else:
                    exact = False
                    per.setdefault(tail[0], []).extend(group)
            pending = []
            low = name.lower()
            if ("pool" in low or "mean" in low) and pi < len(pools):
                # the epilogue computes the pooling too: that pooling node has no kernel
                per.setdefault(pools[pi], []).append((FUSED_AWAY, 0.0))
                pi += 1
        elif kind in ("pool", "pointwise") and name.lower().startswith("triton"):
            if pi < len(pools) and kind == "pool":
                per.setdefault(pools[pi], []).append((name, us))
                pi += 1
            else:
                per.setdefault(convs[ci - 1] if ci else tail[0], []).append((name, us))
        else:
            pending.append((name, us))
    if pending:
        per.setdefault(tail[0], []).extend(pending)
    exact = exact and ci == len(convs)
    note = ("every Conv node matched one convolution kernel and its epilogue" if exact
            else f"approximate: {ci} convolution groups for {len(convs)} Conv nodes")
    return per, note


def _short(name: str, width: int = 60) -> str:
    name = name if len(name) <= width else name[:width - 3] + "..."
    return name.replace("|", "\\|")


def layer_kind(path: str, name: str, kinds: Sequence[str]) -> str:
    """A fused layer's kind for the per-kind sums."""
    if " || " in name:
        return "merged 1x1 convolutions"
    if "Conv" in kinds or "Convolution" in kinds:
        if "Add" in name:
            return "convolution + residual"
        return "convolution"
    if "Pool" in " ".join(kinds) or "pool" in name.lower():
        return "pooling"
    if "copy" in name.lower() or "Copy" in kinds:
        return "copy"
    if any(k in kinds for k in ("Gemm", "FullyConnected", "MatrixMultiply")):
        return "fully connected"
    return "other"


# ---------------------------------------------------------------------------------------
# One configuration


def bench_one(model: str, precision: str, batch: int, args: argparse.Namespace,
              out: Path | None) -> dict[str, Any]:
    """Every variant of one (model, precision, batch); returns one results row."""
    t_start = time.perf_counter()
    graph = load(zoo.build(model, batch), batch=batch, name=model)
    plan = predict(graph, "trt10", precision).plan
    row: dict[str, Any] = {"model": model, "precision": precision, "batch": batch,
                           "layers": len(plan.layers), "nodes": len(graph)}
    dtype = torch.float16 if precision == "fp16" else torch.float32
    profile = batch in args.profile_batches
    autotune = f"{model}:{precision}:{batch}" in args.max_autotune
    with backend_settings(precision):
        progs = build(graph, plan, device="cuda", precision=precision)
        assert progs.fused is not None
        fused, unfused, feeds = progs.fused, progs.unfused, progs.feeds
        env, folded = make_env(graph, torch.device("cuda"), dtype)
        old = fused_program(graph, plan, env, folded, tactics=False)
        unfused.prepare(feeds)
        old.prepare(feeds)
        t0 = time.perf_counter()
        fused.prepare(feeds)
        row["tactic_selection_s"] = time.perf_counter() - t0
        check = compare(fused, unfused, feeds, precision)
        check_old = compare(old, unfused, feeds, precision)
        row["check"] = {"fused worst": check.worst_error, "fused outputs": check.output_error,
                        "fused worst layer": check.worst_layer, "passed": check.passed,
                        "fused (torch) worst": check_old.worst_error}
        eager = channels_last(OnnxModule(graph, env, folded, fold_bn=False).to("cuda", dtype))
        folded_mod = channels_last(OnnxModule(graph, env, folded, fold_bn=True).to("cuda", dtype))
        x = feeds[graph.inputs[0].name]
        with torch.inference_mode():
            ref = unfused.run(feeds)[graph.outputs[0].name]
            row["check"]["torch"] = relative_error(eager(x), ref)
            row["check"]["torch folded"] = relative_error(folded_mod(x), ref)
            torch._dynamo.reset()
            compiled = torch.compile(folded_mod)
            t0 = time.perf_counter()
            y = compiled(x)
            torch.cuda.synchronize()
            row["compile_s"] = time.perf_counter() - t0
            row["check"]["compile"] = relative_error(y, ref)
            tuned: Callable[[], object] | None = None
            if autotune:
                torch._dynamo.reset()
                mat = torch.compile(folded_mod, mode="max-autotune-no-cudagraphs")
                t0 = time.perf_counter()
                y = mat(x)
                torch.cuda.synchronize()
                row["max_autotune_compile_s"] = time.perf_counter() - t0
                row["check"]["max-autotune"] = relative_error(y, ref)
                tuned = lambda: mat(x)  # noqa: E731
            graphs: dict[str, Callable[[], object]] = {
                "unfused graph": lambda: unfused.run(feeds),
                "torch graph": lambda: eager(x),
                "torch folded graph": lambda: folded_mod(x),
                "compile graph": lambda: compiled(x),
                "fused (torch) graph": lambda: old.run(feeds),
                "fused graph": lambda: fused.run(feeds),
            }
            if tuned is not None:
                graphs["max-autotune graph"] = tuned
            medians = interleaved_graph_medians(graphs, args.rounds, args.reps, args.warmup)
            iters = args.reps * 2
            medians["torch folded eager"] = _eager_median(lambda: folded_mod(x), iters, args.warmup)
            medians["compile eager"] = _eager_median(lambda: compiled(x), iters, args.warmup)
            medians["fused eager"] = _eager_median(lambda: fused.run(feeds), iters, args.warmup)
            row["median_ms"] = medians
            row["kernels"] = {
                "unfused": count_launches(lambda: unfused.run(feeds)),
                "fused (torch)": count_launches(lambda: old.run(feeds)),
                "fused": count_launches(lambda: fused.run(feeds)),
                "torch folded": count_launches(lambda: folded_mod(x)),
                "compile": count_launches(lambda: compiled(x)),
            }
            if profile:
                row["per_layer"] = per_layer(graph, fused, old, feeds, lambda: compiled(x), args)
                row["per_layer"]["compile_kernels_total_us"] = sum(
                    us for _, us in row["per_layer"]["compile_kernels"])
        row["tactics"] = {s.name: s.tactic_ms for s in fused.steps if s.tactic_ms}
        row["paths"] = {s.name: s.path for s in fused.steps}
    row["seconds"] = time.perf_counter() - t_start
    return row


def per_layer(graph: Graph, fused: Program, old: Program, feeds: dict[str, torch.Tensor],
              compiled: Callable[[], object], args: argparse.Namespace) -> dict[str, Any]:
    """Per-layer evidence: CUDA-event medians in the graph, kernels, torch.compile's kernels."""
    new_t = time_layers(fused, feeds, args.reps * 2, args.warmup, cuda_graph=True)
    old_t = time_layers(old, feeds, args.reps * 2, args.warmup, cuda_graph=True)
    new_k = step_kernels(fused, feeds)
    old_k = step_kernels(old, feeds)
    comp = gpu_kernels(compiled)
    by_node, note = attribute_compile_kernels(graph, comp)
    old_by_name = {s.name: i for i, s in enumerate(old.steps)}
    layers = []
    for i, step in enumerate(fused.steps):
        j = old_by_name.get(step.name)
        ck = [k for n in step.nodes for k in by_node.get(n, [])]
        layers.append({
            "name": step.name, "kind": layer_kind(step.path, step.name, [step.kind]),
            "ms": step_stats(new_t.times_ms[i]).median_ms,
            "old_ms": step_stats(old_t.times_ms[j]).median_ms if j is not None else None,
            "kernels": new_k[i], "old_kernels": old_k[j] if j is not None else [],
            "compile_kernels": ck, "path": step.path, "tactics": step.tactic_ms,
            "nodes": list(step.nodes),
        })
    return {"layers": layers, "compile_kernels": comp, "attribution": note}


def reattribute(row: dict[str, Any]) -> None:
    """Attribute torch.compile's stored kernels to the layers again (offline, ``--from-json``)."""
    pl = row["per_layer"]
    graph = load(zoo.build(row["model"], row["batch"]), batch=row["batch"], name=row["model"])
    by_node, pl["attribution"] = attribute_compile_kernels(
        graph, [(str(n), float(us)) for n, us in pl["compile_kernels"]])
    for L in pl["layers"]:
        L["compile_kernels"] = [k for n in L["nodes"] for k in by_node.get(n, [])]


def layer_table(row: dict[str, Any]) -> str:
    """The per-layer comparison of one configuration as Markdown."""
    pl = row["per_layer"]
    m = row["median_ms"]
    lines = [
        f"## {row['model']} {row['precision']} batch {row['batch']}",
        "",
        f"End to end (CUDA graph, median): fused {m['fused graph']:.3f} ms, fused before "
        f"(PyTorch/cuDNN only) {m['fused (torch) graph']:.3f} ms, torch.compile "
        f"{m['compile graph']:.3f} ms. GPU kernel time of one eager inference (sum of "
        f"torch.profiler kernel durations): fused "
        f"{sum(us for L in pl['layers'] for _, us in L['kernels']) / 1000:.3f} ms in "
        f"{sum(len(L['kernels']) for L in pl['layers'])} kernels, before "
        f"{sum(us for L in pl['layers'] for _, us in L['old_kernels']) / 1000:.3f} ms in "
        f"{sum(len(L['old_kernels']) for L in pl['layers'])}, torch.compile "
        f"{pl['compile_kernels_total_us'] / 1000:.3f} ms in {len(pl['compile_kernels'])} "
        "(end to end minus this: the gaps between kernels in the graph, or less where the "
        "eagerly profiled kernels ran longer). torch.compile's kernels attributed to layers by "
        f"inductor's structure ({pl['attribution']}).",
        "",
        "Per layer kind (sums; layer columns are CUDA-event medians inside the CUDA graph, "
        "kernel columns GPU kernel time):",
        "",
        "| kind | layers | fused ms | before ms | fused kernels ms (n) | before kernels ms (n) "
        "| compile kernels ms (n) |",
        "|---|---|---|---|---|---|---|",
    ]
    kinds: dict[str, list[dict[str, Any]]] = {}
    for L in pl["layers"]:
        kinds.setdefault(L["kind"], []).append(L)
    for kind, ls in sorted(kinds.items()):
        def ksum(key: str, ls: list[dict[str, Any]] = ls) -> str:
            ks = [k for L in ls for k in L[key] if k[0] != FUSED_AWAY]
            return f"{sum(us for _, us in ks) / 1000:.3f} ({len(ks)})"
        lines.append(f"| {kind} | {len(ls)} | {sum(L['ms'] for L in ls):.3f} | "
                     f"{sum(L['old_ms'] or 0 for L in ls):.3f} | {ksum('kernels')} | "
                     f"{ksum('old_kernels')} | {ksum('compile_kernels')} |")
    lines += ["", "| # | layer | fused us | before us | fused kernels (us) | before kernels (us) "
              "| torch.compile kernels (us) | tactic (candidates, us) |",
              "|---|---|---|---|---|---|---|---|"]

    def ks(kernels: Sequence[Sequence[Any]]) -> str:
        return "<br>".join(f"{_short(str(n), 48)} {us:.1f}" for n, us in kernels)

    for i, L in enumerate(pl["layers"]):
        tac = ", ".join(f"{k} {v * 1000:.1f}" for k, v in (L["tactics"] or {}).items())
        old = f"{L['old_ms'] * 1000:.1f}" if L["old_ms"] is not None else ""
        lines.append(f"| {i} | {_short(L['name'], 50)} | {L['ms'] * 1000:.1f} | {old} | "
                     f"{ks(L['kernels'])} | {ks(L['old_kernels'])} | {ks(L['compile_kernels'])} "
                     f"| {tac} |")
    return "\n".join(lines) + "\n"


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (medians in ms, kernels per inference)."""
    head = ("| model | prec | batch | unfused graph | torch folded eager | torch folded graph "
            "| compile eager | compile graph | max-autotune graph | fused (before) graph "
            "| fused eager | fused graph | fused / compile | fused / max-autotune "
            "| kernels fused / before / compile | check fused / compile |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        m, k, c = r["median_ms"], r["kernels"], r["check"]
        mat = m.get("max-autotune graph")
        vs_mat = f"{m['fused graph'] / mat:.2f}" if mat else "-"
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['batch']} | {m['unfused graph']:.3f} | "
            f"{m['torch folded eager']:.3f} | {m['torch folded graph']:.3f} | "
            f"{m['compile eager']:.3f} | {m['compile graph']:.3f} | "
            f"{f'{mat:.3f}' if mat else '-'} | {m['fused (torch) graph']:.3f} | "
            f"{m['fused eager']:.3f} | **{m['fused graph']:.3f}** | "
            f"{m['fused graph'] / m['compile graph']:.2f} | "
            f"{vs_mat} | "
            f"{k['fused']} / {k['fused (torch)']} / {k['compile']} | "
            f"{c['fused worst']:.1e} / {c['compile']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def _gpu_ms(fn: Callable[[], object], reps: int = 50) -> float:
    """Median GPU time (ms) of ``fn`` captured as a CUDA graph."""
    return interleaved_graph_medians({"f": fn}, 3, reps, 3)["f"]


def probe_cudnn_out() -> dict[str, Any]:
    """Can cuDNN (``aten::cudnn_convolution.out``) write a channel slice of a Concat buffer?

    One 3x3 convolution (16x96x28x28 -> 128 channels, channels-last) written into channels
    64..191 of a 256-channel buffer: its error against a dense convolution, whether the rest
    of the buffer stayed untouched, whether a dense call of the same convolution afterwards
    is still right (PyTorch's cuDNN plan cache keys on shapes and alignment, not on the
    output's strides), and the times of dense, strided-out and dense + copy.
    """
    return {p: _probe_one(p, d) for p, d in (("fp16", torch.float16), ("fp32", torch.float32))}


def _probe_one(precision: str, dtype: torch.dtype) -> dict[str, Any]:
    r: dict[str, Any] = {}
    cl = torch.channels_last
    with backend_settings(precision), torch.inference_mode():
        x = torch.randn(16, 96, 28, 28, device="cuda", dtype=dtype).contiguous(memory_format=cl)
        w = (torch.randn(128, 96, 3, 3, device="cuda", dtype=dtype) * 0.05).contiguous(
            memory_format=cl)

        def dense() -> torch.Tensor:
            return torch.convolution(x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)

        buf = torch.full((16, 256, 28, 28), float("nan"), device="cuda",
                         dtype=dtype).contiguous(memory_format=cl)
        slot = buf.narrow(1, 64, 128)

        def strided() -> torch.Tensor:
            return torch.ops.aten.cudnn_convolution.out(  # type: ignore[no-any-return]
                x, w, [1, 1], [1, 1], [1, 1], 1, True, False, False, out=slot)

        ref = dense().double()
        try:
            strided()
            torch.cuda.synchronize()
            r["strided_error"] = float((slot.double() - ref).norm() / ref.norm())
            r["rest_untouched"] = bool(buf[:, :64].isnan().all() and buf[:, 192:].isnan().all())
            again = dense().double()
            r["dense_after_strided_error"] = float((again - ref).norm() / ref.norm())
            r["ms"] = {"dense": _gpu_ms(dense), "strided out": _gpu_ms(strided),
                       "dense + copy": _gpu_ms(lambda: slot.copy_(dense()))}
        except Exception as exc:  # the answer may well be "it raises"
            r["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return r


def launch_overhead() -> dict[str, float]:
    """Host microseconds per eager call (no CUDA graph) of a Triton kernel and of PyTorch ops
    of the same size (a 1x64x28x28 fp16 tensor): what launching from Python costs."""
    from fusionlab.execute import triton_kernels as tk

    x = torch.randn(1, 64, 28, 28, device="cuda", dtype=torch.float16).contiguous(
        memory_format=torch.channels_last)
    b = torch.randn(64, device="cuda", dtype=torch.float16)
    out = torch.empty_like(x)
    pooled = torch.empty(1, 64, 14, 14, device="cuda", dtype=torch.float16).contiguous(
        memory_format=torch.channels_last)
    calls: dict[str, Callable[[], object]] = {
        "triton epilogue (bias+relu)": lambda: tk.epilogue(x, out, b, relu=True),
        "triton max_pool 3x3/2": lambda: tk.max_pool(x, (3, 3), (2, 2), (1, 1), pooled),
        "torch.relu": lambda: torch.relu(x),
        "torch.add + relu_": lambda: torch.add(x, b[None, :, None, None]).relu_(),
        "F.max_pool2d 3x3/2": lambda: torch.nn.functional.max_pool2d(x, 3, 2, 1),
    }
    found: dict[str, float] = {}
    for name, fn in calls.items():
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(500):
            fn()
        found[name] = (time.perf_counter() - t0) / 500 * 1e6
        torch.cuda.synchronize()
    return found


def from_json(paths: Sequence[Path], out: Path) -> int:
    """The Markdown tables again from saved ``results.json`` rows (no GPU needed)."""
    rows: list[dict[str, Any]] = []
    for p in paths:
        rows += json.loads(p.read_text())
    out.mkdir(parents=True, exist_ok=True)
    device = rows[0].get("device", "?") if rows else "?"
    (out / "results.md").write_text(f"device: {device}\n\n" + table(rows))
    parts = []
    for row in rows:
        if "per_layer" in row:
            reattribute(row)
            parts.append(layer_table(row))
    (out / "layers.md").write_text("\n".join(parts))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["googlenet", "resnet50"])
    ap.add_argument("--precisions", nargs="+", default=["fp16", "fp32"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64])
    ap.add_argument("--profile-batches", nargs="*", type=int, default=[1, 16, 64])
    ap.add_argument("--max-autotune", nargs="*", default=[], metavar="MODEL:PREC:BATCH",
                    help="configurations also compiled with mode=max-autotune-no-cudagraphs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--deadline-s", type=float, default=math.inf,
                    help="start no configuration after this many seconds")
    ap.add_argument("--out", type=Path, default=None, help="folder for results")
    ap.add_argument("--from-json", type=Path, nargs="+", default=None, metavar="RESULTS.json",
                    help="no GPU: write results.md and layers.md into --out from saved rows")
    ap.add_argument("--probe", action="store_true",
                    help="only probe cuDNN writing a strided Concat slot (probe.json); run it "
                         "in a process of its own: a wrong plan may corrupt memory")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.from_json:
        return from_json(args.from_json, args.out or Path("."))
    if not torch.cuda.is_available():
        print("bench_execute: needs a CUDA GPU", file=sys.stderr)
        return 2
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    device = (f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN "
              f"{torch.backends.cudnn.version()}")  # type: ignore[no-untyped-call,unused-ignore]
    print(device, flush=True)
    t_start = time.perf_counter()
    if args.probe:
        probe = {"cudnn_convolution.out": probe_cudnn_out(),
                 "host us per eager call": launch_overhead()}
        print(f"probe: {probe}", flush=True)
        if args.out is not None:
            (args.out / "probe.json").write_text(json.dumps(probe, indent=1) + "\n")
        return 0
    rows: list[dict[str, Any]] = []
    for model in args.models:
        for precision in args.precisions:
            for batch in args.batches:
                if time.perf_counter() - t_start > args.deadline_s:
                    print(f"deadline: skipping {model} {precision} b{batch}", flush=True)
                    continue
                row = bench_one(model, precision, batch, args, args.out)
                row["device"] = torch.cuda.get_device_name()
                rows.append(row)
                m = row["median_ms"]
                print(f"{model} {precision} b{batch}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in m.items()) + f"; kernels {row['kernels']}; "
                    f"check {row['check']}; compile {row['compile_s']:.1f}s; tactics "
                    f"{row['tactic_selection_s']:.1f}s; {row['seconds']:.0f}s", flush=True)
                if args.out is not None:
                    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
                    if "per_layer" in row:
                        with (args.out / "layers.md").open("a") as f:
                            f.write(layer_table(row) + "\n")
    text = device + "\n\n" + table(rows)
    if args.out is not None:
        (args.out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The reference executor against plain PyTorch on the same ONNX weights (issue 7).

For each zoo model, precision and batch, in one process on one GPU:

- ``unfused``        fusionlab execute --unfused: one PyTorch call per ONNX node;
- ``fused``          fusionlab execute following the plan predicted for trt10;
- ``torch eager``    the model as a plain ``torch.nn.Module`` built from the same ONNX
                     weights (nn.Conv2d, nn.BatchNorm2d, nn.ReLU(inplace) ... as torchvision
                     writes it), run eagerly;
- ``torch graph``    the same module captured as a CUDA graph;
- ``torch folded``   BatchNorm folded into the convolutions
                     (``torch.nn.utils.fusion.fuse_conv_bn_eval``), captured as a CUDA graph;

each executor variant eagerly and as a CUDA graph. End-to-end medians with CUDA events
(the executor's own timer, :func:`fusionlab.execute.timing.time_callable`, for every
variant), kernels per inference with ``torch.profiler``, the fused-vs-unfused check, and
for the batches of ``--profile-batches`` the fused plan's per-layer profile (trtexec
``--exportProfile`` JSON), the plan JSON and the plan as layer information, for
``fusionlab calibrate``. All variants use channels-last memory, cuDNN autotuning and, at
fp32, IEEE float32 (TF32 off).

Run (GPU): python benchmarks/bench_execute.py --out DIR [--models ...] [--batches ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fusionlab import zoo
from fusionlab.execute import ExecuteOptions, backend_settings, build, execute
from fusionlab.execute.check import compare, relative_error
from fusionlab.execute.kernels import Env, conv_geometry
from fusionlab.execute.program import Program, make_env
from fusionlab.execute.timing import count_launches, time_callable
from fusionlab.formats.trtexec import layer_info_to_json, profile_to_json
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import Graph, Node, load
from fusionlab.plan.serialize import plan_to_json

log = logging.getLogger("bench_execute")


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


def _median(fn: Callable[[], object], iterations: int, warmup: int, graph: bool) -> float:
    return time_callable(fn, torch.device("cuda"), iterations, warmup,
                         cuda_graph=graph).summary.gpu_compute.median_ms  # type: ignore[union-attr]


def bench_one(model: str, precision: str, batch: int, iterations: int, warmup: int,
              out: Path | None, profile: bool) -> dict[str, Any]:
    """Every variant of one (model, precision, batch); returns one results row."""
    t_start = time.perf_counter()
    onnx_model = zoo.build(model, batch)
    graph = load(onnx_model, batch=batch, name=model)
    plan = predict(graph, "trt10", precision).plan
    row: dict[str, Any] = {"model": model, "precision": precision, "batch": batch,
                           "layers": len(plan.layers), "nodes": len(graph)}
    dtype = torch.float16 if precision == "fp16" else torch.float32
    with backend_settings(precision):
        progs = build(graph, plan, device="cuda", precision=precision)
        assert progs.fused is not None
        fused, unfused, feeds = progs.fused, progs.unfused, progs.feeds
        unfused.prepare(feeds)
        fused.prepare(feeds)
        check = compare(fused, unfused, feeds, precision)
        row["check_worst"] = check.worst_error
        row["check_outputs"] = check.output_error
        row["check_passed"] = check.passed
        row["check_worst_layer"] = check.worst_layer
        env, folded = make_env(graph, torch.device("cuda"), dtype)
        eager = channels_last(OnnxModule(graph, env, folded, fold_bn=False).to("cuda", dtype))
        folded_mod = channels_last(
            OnnxModule(graph, env, folded, fold_bn=True).to("cuda", dtype))
        x = feeds[graph.inputs[0].name]
        with torch.inference_mode():
            ref = unfused.run(feeds)[graph.outputs[0].name]
            row["torch_vs_unfused"] = relative_error(eager(x), ref)
            row["torch_folded_vs_unfused"] = relative_error(folded_mod(x), ref)
            variants: dict[str, tuple[Callable[[], object], bool]] = {
                "unfused eager": (lambda: unfused.run(feeds), False),
                "unfused graph": (lambda: unfused.run(feeds), True),
                "fused eager": (lambda: fused.run(feeds), False),
                "fused graph": (lambda: fused.run(feeds), True),
                "torch eager": (lambda: eager(x), False),
                "torch graph": (lambda: eager(x), True),
                "torch folded graph": (lambda: folded_mod(x), True),
            }
            row["median_ms"] = {k: _median(fn, iterations, warmup, g)
                                for k, (fn, g) in variants.items()}
            row["kernels"] = {
                "unfused": count_launches(lambda: unfused.run(feeds)),
                "fused": count_launches(lambda: fused.run(feeds)),
                "torch eager": count_launches(lambda: eager(x)),
                "torch folded": count_launches(lambda: folded_mod(x)),
            }
        row["paths"] = _path_summary(fused)
    if profile and out is not None:
        options = ExecuteOptions(device="cuda", precision=precision, iterations=iterations,
                                 warmup=warmup, cuda_graph=True, check=False,
                                 count_kernels=True)
        result = execute(graph, plan, options, programs=progs)
        stem = f"{model}-{precision}-b{batch}"
        (out / f"{stem}.profile.json").write_text(profile_to_json(result.profile))
        (out / f"{stem}.plan.json").write_text(plan_to_json(plan))
        (out / f"{stem}.layers.json").write_text(layer_info_to_json(plan, graph))
        summary = result.profile.summary
        assert summary is not None and summary.gpu_compute is not None
        row["profile_e2e_median_ms"] = summary.gpu_compute.median_ms
        row["profile_layer_sum_ms"] = sum(r.stats.median_ms for r in result.layers)
        row["profile_kernels"] = result.kernels
        row["layer_kernels"] = {r.name: r.kernels for r in result.layers}
        row["layer_medians_ms"] = {r.name: r.stats.median_ms for r in result.layers}
        row["method"] = result.method
    row["seconds"] = time.perf_counter() - t_start
    return row


def _path_summary(program: Program) -> dict[str, int]:
    """How many layers took each realisation (first words of the path)."""
    counts: dict[str, int] = {}
    for step in program.steps:
        key = step.path.split(" (")[0].split(";")[0][:80]
        counts[key] = counts.get(key, 0) + 1
    return counts


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table (medians in ms, kernels per inference)."""
    head = ("| model | prec | batch | unfused eager | unfused graph | fused eager | fused graph "
            "| torch eager | torch graph | torch folded graph | fused graph / torch folded graph "
            "| fused graph / unfused graph | kernels unfused / fused / torch / torch folded "
            "| check worst |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        m, k = r["median_ms"], r["kernels"]
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['batch']} | {m['unfused eager']:.3f} | "
            f"{m['unfused graph']:.3f} | {m['fused eager']:.3f} | {m['fused graph']:.3f} | "
            f"{m['torch eager']:.3f} | {m['torch graph']:.3f} | {m['torch folded graph']:.3f} | "
            f"{m['fused graph'] / m['torch folded graph']:.2f} | "
            f"{m['fused graph'] / m['unfused graph']:.2f} | "
            f"{k['unfused']} / {k['fused']} / {k['torch eager']} / {k['torch folded']} | "
            f"{r['check_worst']:.1e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["googlenet", "resnet50"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "fp16"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16, 64])
    ap.add_argument("--profile-batches", nargs="*", type=int, default=[16, 64])
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="folder for results and profiles")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not torch.cuda.is_available():
        print("bench_execute: needs a CUDA GPU", file=sys.stderr)
        return 2
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"cuDNN {torch.backends.cudnn.version()}",  # type: ignore[no-untyped-call,unused-ignore]
          flush=True)
    rows: list[dict[str, Any]] = []
    for model in args.models:
        for precision in args.precisions:
            for batch in args.batches:
                iters = args.iterations if batch < 64 else max(args.iterations // 2, 10)
                row = bench_one(model, precision, batch, iters, args.warmup, args.out,
                                batch in args.profile_batches)
                row["device"] = torch.cuda.get_device_name()
                rows.append(row)
                m = row["median_ms"]
                print(f"{model} {precision} b{batch}: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in m.items()) + f"; kernels {row['kernels']}; "
                    f"check {row['check_worst']:.1e}; {row['seconds']:.0f}s", flush=True)
                if args.out is not None:
                    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    text = table(rows)
    if args.out is not None:
        (args.out / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())


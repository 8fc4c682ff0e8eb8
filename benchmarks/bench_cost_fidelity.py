"""How well the cost model predicts the recorded TensorRT engines (issue 6, item 3).

The records (../shared/records/trex-resnet18-a100): TensorRT 8 ResNet-18 engines at batch 32
on an NVIDIA A100 80GB PCIe, fp32 (TF32 allowed) and fp16, with per-layer profiles and
trtexec's performance summary. In one run this prints:

1. Uncalibrated fidelity (device table and default efficiency factors only) of
   ``predict(load(zoo.build("resnet18"), batch=32), "trt8", precision)``: predicted total
   vs the engine's GPU compute time (median), and per-layer Spearman rank correlation and
   median absolute error over the layers joined by name. Engine-inserted layers
   (reformats, no-ops) have no prediction: they are left out of the correlation, and the
   predicted total has nothing for them (their measured time is shown).
   Targets: total within +-35 %, Spearman >= 0.8.
2. Calibration on each record, scored on the data it was fitted to (costs from the ONNX
   model, and from the engine JSON alone).
3. Calibrated on fp32, tested on fp16, and vice versa.
4. How the uncalibrated figures move with the two default factors that matter most here
   (convolution compute efficiency, per-layer overhead): the defaults are round numbers
   from general knowledge, not tuned to these records.

Run: .venv/bin/python benchmarks/bench_cost_fidelity.py [--layers]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from fusionlab import zoo
from fusionlab.cost import model as cost
from fusionlab.formats.trtexec import (
    engine_info_to_plan,
    parse_engine_info,
    read_profile,
    read_trex_metadata,
)
from fusionlab.fusion.predictor import predict
from fusionlab.ir.graph import Graph, load

RECORDS = Path(__file__).resolve().parents[2] / "shared" / "records" / "trex-resnet18-a100"
DEVICE = "a100-80gb-pcie"
PRECISIONS = ("fp32", "fp16")


def latency_ms(precision: str) -> float:
    """GPU compute time, median, from trtexec's summary in the TREx metadata."""
    summary = read_trex_metadata(RECORDS / precision / "engine.profile.metadata.json").summary
    assert summary is not None and summary.gpu_compute is not None
    return summary.gpu_compute.median_ms


def predicted(graph: Graph, precision: str, eff: cost.Efficiency) -> cost.Comparison:
    plan = cost.estimate(graph, predict(graph, "trt8", precision).plan, DEVICE, precision, eff)
    return cost.compare(plan, read_profile(RECORDS / precision / "engine.profile.json"))


def samples(graph: Graph | None, precision: str) -> tuple[cost.Sample, ...]:
    folder = RECORDS / precision
    info = parse_engine_info(folder / "engine.graph.json")
    if graph is None:
        costs = cost.engine_costs(info, DEVICE, precision)
    else:
        plan = engine_info_to_plan(info, graph, precision=precision)
        costs = cost.layer_costs(graph, plan, DEVICE, precision,
                                 tensor_bytes=cost.engine_tensor_bytes(info))
    found, _ = cost.join(costs, read_profile(folder / "engine.profile.json"))
    return found


def fidelity_line(label: str, c: cost.Comparison, latency: float) -> str:
    m = c.metrics
    return (f"{label:34s} total {c.predicted_total_ms:6.3f} ms vs {latency:6.3f} ms "
            f"({c.total_error_pct(latency):+6.1f} %)  Spearman {m.spearman:5.3f}  "
            f"median |err| {m.median_abs_error_pct:5.1f} %  ({m.layers} layers)")


def metrics_line(label: str, m: cost.Metrics) -> str:
    return (f"{label:34s} layer sums {m.total_error_pct:+6.1f} %  median |err| "
            f"{m.median_abs_error_pct:5.1f} %  Spearman {m.spearman:5.3f}  "
            f"rms log err {m.rms_log_error:5.3f}  ({m.layers} layers)")


def scaled(conv_compute: float, overhead_ms: float) -> cost.Efficiency:
    base = cost.DEFAULT_EFFICIENCY
    classes = dict(base.classes)
    classes["conv"] = replace(classes["conv"], compute=conv_compute)
    return replace(base, classes=classes, overhead_ms=overhead_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", action="store_true", help="also print every layer")
    args = parser.parse_args()
    graph = load(zoo.build("resnet18"), batch=32)
    default = cost.DEFAULT_EFFICIENCY

    print(f"1. uncalibrated, {DEVICE}, default efficiency factors ({default.note})")
    for precision in PRECISIONS:
        c = predicted(graph, precision, default)
        lat = latency_ms(precision)
        print(fidelity_line(f"   {precision}", c, lat))
        m = c.metrics
        print(f"   {'':31s} engine-inserted layers: {len(c.engine_only)}, measured "
              f"{c.engine_only_ms:.4f} ms (in the latency, not predicted); matched layers "
              f"alone: {m.predicted_ms:.3f} vs {m.measured_ms:.3f} ms "
              f"({m.total_error_pct:+.1f} %)")
        if args.layers:
            for name, p, t in c.matched:
                print(f"      {name:32s} {p:8.4f} {t:8.4f}  x{p / t:5.2f}")

    print()
    print("2. calibrated on each record, scored on the layers it was fitted to")
    fitted: dict[str, cost.Efficiency] = {}
    for precision in PRECISIONS:
        for source, g in (("model", graph), ("engine json", None)):
            found = samples(g, precision)
            eff = cost.fit(found, device=DEVICE, precision=precision)
            if g is not None:
                fitted[precision] = eff
            print(metrics_line(f"   {precision} ({source}) before", cost.evaluate(found, default)))
            print(metrics_line(f"   {precision} ({source}) after", cost.evaluate(found, eff)))
        e = fitted[precision]
        factors = ", ".join(f"{k} {v.compute:.2f}/{v.memory:.2f}" for k, v in e.classes.items())
        print(f"   {precision} fitted (compute/memory): {factors}; overhead "
              f"{e.overhead_ms * 1000:.1f} us")

    print()
    print("3. calibrated on one precision, tested on the other (uncalibrated for reference)")
    for fit_on, test_on in (("fp32", "fp16"), ("fp16", "fp32")):
        lat = latency_ms(test_on)
        print(fidelity_line(f"   {test_on} uncalibrated", predicted(graph, test_on, default),
                            lat))
        print(fidelity_line(f"   {test_on} calibrated on {fit_on}",
                            predicted(graph, test_on, fitted[fit_on]), lat))
        print(fidelity_line(f"   {test_on} calibrated on {test_on}",
                            predicted(graph, test_on, fitted[test_on]), lat))

    print()
    print("4. sensitivity of the uncalibrated figures (total error %, Spearman)")
    print(f"   {'conv compute':>12s} {'overhead':>9s}   " + "   ".join(
        f"{p:>18s}" for p in PRECISIONS))
    for conv_compute in (0.4, 0.5, 0.6):
        for overhead_us in (2.0, 3.0, 5.0):
            eff = scaled(conv_compute, overhead_us / 1000)
            cells = []
            for precision in PRECISIONS:
                c = predicted(graph, precision, eff)
                cells.append(f"{c.total_error_pct(latency_ms(precision)):+6.1f} %  "
                             f"{c.metrics.spearman:5.3f}")
            mark = "  <- defaults" if (conv_compute, overhead_us) == (0.5, 3.0) else ""
            print(f"   {conv_compute:12.1f} {overhead_us:6.1f} us   " + "   ".join(
                f"{cell:>18s}" for cell in cells) + mark)


if __name__ == "__main__":
    main()

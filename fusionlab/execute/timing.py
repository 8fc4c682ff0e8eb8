"""Timing a program as trtexec times an engine: per layer, and end to end, in separate runs.

- **Per layer** (``--dumpProfile``): an event before the first step and after every step;
  each layer's time is the time between its two events, per iteration. With a CUDA graph
  the events are captured into the graph as event-record nodes (``external=True``), so
  the launch gaps of eager PyTorch stay out of the layer times; without one the events
  are recorded eagerly between the launches (then a layer's time includes the time the
  GPU waited for the host to launch it).
- **End to end**: an event pair around each whole inference (eager run, or one replay of
  the captured graph), in its own run; statistics as trtexec's performance summary (there
  are no host-device copies: H2D and D2H are zero, as with ``--noDataTransfers``).
- On the CPU both use ``time.perf_counter`` around the same regions.
- **Kernels**: one eager run under ``torch.profiler``; every kernel, memcpy and memset the
  GPU ran, attributed to the step during which it ran (each step synchronizes in that run).

This module imports torch.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fusionlab.execute.program import Program, Tensor
from fusionlab.plan.profile import InferenceTrace, Latency, Summary, latency_stats, summarize_times

log = logging.getLogger(__name__)

PERCENTILES = (90.0, 95.0, 99.0)


@dataclass(frozen=True)
class LayerTimes:
    """Per-step times of every iteration, and how they were taken."""

    times_ms: tuple[tuple[float, ...], ...]
    """``times_ms[i]`` holds step ``i``'s time in each iteration."""
    timer: str


@dataclass(frozen=True)
class EndToEnd:
    """End-to-end statistics and how they were taken."""

    summary: Summary
    compute_ms: tuple[float, ...]
    timer: str


@dataclass(frozen=True)
class KernelCount:
    """Kernels (and memcpy/memset) one eager run launched, in all and per step."""

    total: int
    per_step: tuple[int, ...]
    unattributed: int


def capture_graph(fn: Callable[[], object], warmup: int) -> tuple[torch.cuda.CUDAGraph, object]:
    """Warm ``fn`` up on a side stream, then capture it into a CUDA graph.

    Returns the graph and what the captured call returned (kept alive with the graph).
    """
    side = torch.cuda.Stream()  # type: ignore[no-untyped-call,unused-ignore]
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(max(warmup, 2)):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        kept = fn()
    torch.cuda.synchronize()
    return graph, kept


def _timing_event(external: bool = False) -> torch.cuda.Event:
    """A CUDA event that records time (``external``: an event-record node when captured)."""
    if external:
        return torch.cuda.Event(  # type: ignore[no-untyped-call,unused-ignore]
            enable_timing=True, external=True)
    return torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call,unused-ignore]


def time_layers(
    program: Program,
    feeds: Mapping[str, Tensor],
    iterations: int,
    warmup: int,
    *,
    cuda_graph: bool = False,
) -> LayerTimes:
    """Each step's time in each of ``iterations`` runs (after ``warmup`` runs)."""
    n = len(program.steps)
    per_step: list[list[float]] = [[] for _ in range(n)]
    if program.device.type != "cuda":
        for it in range(warmup + iterations):
            env = program.start(feeds)
            for i in range(n):
                t0 = time.perf_counter()
                program.step(i, env)
                if it >= warmup:
                    per_step[i].append((time.perf_counter() - t0) * 1000.0)
        return LayerTimes(tuple(map(tuple, per_step)), "time.perf_counter around each layer (CPU)")

    def record_run(events: Sequence[torch.cuda.Event]) -> Callable[[], object]:
        def run() -> object:
            env = program.start(feeds)
            events[0].record()
            for i in range(n):
                program.step(i, env)
                events[i + 1].record()
            return program.finish(env)

        return run

    replay: Callable[[], object]
    timer = "CUDA events between layers, eager launches (launch gaps count in the layer times)"
    events: list[torch.cuda.Event]
    if cuda_graph:
        try:
            events = [_timing_event(True) for _ in range(n + 1)]
            graph, _kept = capture_graph(record_run(events), warmup)
            replay = graph.replay
            timer = "CUDA events between layers, captured in the CUDA graph (event-record nodes)"
        except (TypeError, RuntimeError) as exc:
            log.warning("per-layer events in a CUDA graph failed (%s); timing layers eagerly", exc)
            torch.cuda.synchronize()
            cuda_graph = False
    if not cuda_graph:
        events = [_timing_event(False) for _ in range(n + 1)]
        replay = record_run(events)
        for _ in range(warmup):
            replay()
    for _ in range(iterations):
        replay()
        torch.cuda.synchronize()
        for i in range(n):
            per_step[i].append(events[i].elapsed_time(events[i + 1]))
    return LayerTimes(tuple(map(tuple, per_step)), timer)


def time_end_to_end(
    program: Program,
    feeds: Mapping[str, Tensor],
    iterations: int,
    warmup: int,
    *,
    cuda_graph: bool = False,
) -> EndToEnd:
    """Statistics over ``iterations`` back-to-back inferences (after ``warmup``)."""
    return time_callable(lambda: program.run(feeds), program.device, iterations, warmup,
                         cuda_graph=cuda_graph)


def time_callable(
    infer: Callable[[], object],
    device: torch.device,
    iterations: int,
    warmup: int,
    *,
    cuda_graph: bool = False,
) -> EndToEnd:
    """End-to-end statistics of any inference callable (a program, a ``torch.nn.Module``).

    On CUDA: an event pair around each call (or each replay of the call captured as a CUDA
    graph), calls back to back; on the CPU: ``time.perf_counter``.
    """
    traces: list[InferenceTrace] = []
    if device.type != "cuda":
        for _ in range(warmup):
            infer()
        origin = time.perf_counter()
        for _ in range(iterations):
            t0 = time.perf_counter()
            infer()
            t1 = time.perf_counter()
            a, b = (t0 - origin) * 1000.0, (t1 - origin) * 1000.0
            traces.append(InferenceTrace(a, a, a, b, b, b, a, b))
        return EndToEnd(summarize_times(traces, PERCENTILES),
                        tuple(t.compute_ms for t in traces), "time.perf_counter (CPU)")
    run: Callable[[], object]
    if cuda_graph:
        graph, _kept = capture_graph(infer, warmup)
        run = graph.replay
        timer = "CUDA events around each CUDA graph replay"
    else:
        run = infer
        for _ in range(warmup):
            run()
        timer = "CUDA events around each eager run"
    torch.cuda.synchronize()
    starts = [_timing_event() for _ in range(iterations)]
    ends = [_timing_event() for _ in range(iterations)]
    host: list[tuple[float, float]] = []
    host_origin = time.perf_counter()
    for i in range(iterations):
        t0 = time.perf_counter()
        starts[i].record()
        run()
        ends[i].record()
        host.append(((t0 - host_origin) * 1000.0, (time.perf_counter() - host_origin) * 1000.0))
    torch.cuda.synchronize()
    for i in range(iterations):
        a = starts[0].elapsed_time(starts[i]) if i else 0.0
        b = starts[0].elapsed_time(ends[i])
        traces.append(InferenceTrace(a, a, a, b, b, b, host[i][0], host[i][1]))
    return EndToEnd(summarize_times(traces, PERCENTILES), tuple(t.compute_ms for t in traces),
                    timer)


def step_stats(times_ms: Sequence[float]) -> Latency:
    """median / mean / p90 / p95 / p99 of one step, as trtexec computes percentiles."""
    return latency_stats(list(times_ms), PERCENTILES)


def _on_gpu(event: Any) -> bool:
    """A profiler event the GPU ran: a kernel, memcpy or memset (not an annotation)."""
    return bool(event.device_type.name == "CUDA"
                and not getattr(event, "is_user_annotation", False))


def count_launches(infer: Callable[[], object]) -> int:
    """GPU kernels, memcpys and memsets of one call of ``infer`` (after one warm-up call)."""
    from torch.profiler import ProfilerActivity, profile

    infer()
    torch.cuda.synchronize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            infer()
            torch.cuda.synchronize()
        return sum(1 for e in prof.events() if _on_gpu(e))


def gpu_kernels(infer: Callable[[], object]) -> list[tuple[str, float]]:
    """``(name, GPU microseconds)`` of every kernel, memcpy and memset of one call of
    ``infer``, in the order the GPU started them (``torch.profiler``, after one warm-up call)."""
    from torch.profiler import ProfilerActivity, profile

    infer()
    torch.cuda.synchronize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            infer()
            torch.cuda.synchronize()
        events = sorted((e for e in prof.events() if _on_gpu(e)),
                        key=lambda e: e.time_range.start)
        return [(str(e.name), float(e.time_range.elapsed_us())) for e in events]


def step_kernels(program: Program, feeds: Mapping[str, Tensor]) -> list[list[tuple[str, float]]]:
    """For each step, ``(name, GPU microseconds)`` of the kernels it ran in one eager run.

    Each step runs inside its own ``record_function`` range and synchronizes before the
    range closes, so every GPU activity that starts inside a step's range is that step's:
    this also catches kernels launched without an ATen op (Triton's, cuBLASLt's).
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    program.run(feeds)
    torch.cuda.synchronize()
    env = program.start(feeds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for i in range(len(program.steps)):
                with record_function(f"fusionlab.step.{i}"):
                    program.step(i, env)
                    torch.cuda.synchronize()
        events = list(prof.events())
    ranges = sorted(
        (e.time_range.start, e.time_range.end, int(e.name.rsplit(".", 1)[1]))
        for e in events if e.device_type.name == "CPU" and e.name.startswith("fusionlab.step.")
    )
    per_step: list[list[tuple[str, float]]] = [[] for _ in program.steps]
    for e in sorted((e for e in events if _on_gpu(e) and not e.name.startswith("fusionlab.")),
                    key=lambda e: e.time_range.start):
        at = e.time_range.start
        owner = next((i for a, b, i in ranges if a <= at <= b), None)
        if owner is not None:
            per_step[owner].append((str(e.name), float(e.time_range.elapsed_us())))
    return per_step


def count_kernels(program: Program, feeds: Mapping[str, Tensor]) -> KernelCount:
    """GPU kernels, memcpys and memsets of one eager run, per step (``torch.profiler``).

    The total is every GPU activity of one plain run; the per-step counts come from
    :func:`step_kernels` (a run that synchronizes after each step).
    """
    total = count_launches(lambda: program.run(feeds))
    per_step = tuple(len(k) for k in step_kernels(program, feeds))
    unattributed = total - sum(per_step)
    if unattributed:
        log.info("%d GPU activities were not attributed to a step", unattributed)
    return KernelCount(total, per_step, unattributed)

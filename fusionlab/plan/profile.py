"""Measured times: per-layer (as ``trtexec --exportProfile``) and end-to-end statistics.

>>> p = Profile(layers=(LayerTime("Conv_0 + Relu_1", 0.5, 0.5, 0.5, 80.0),
...                    LayerTime("MaxPool_2", 0.125, 0.125, 0.125, 20.0)))
>>> p.total_ms
0.625
>>> p.time_of("MaxPool_2")
0.125
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fusionlab.errors import FusionlabError


@dataclass(frozen=True)
class LayerTime:
    """One engine layer's time, as a record of ``--exportProfile``."""

    name: str
    time_ms: float
    """Total time over all profiled runs."""
    average_ms: float
    """Mean time per run."""
    median_ms: float | None = None
    percentage: float | None = None
    """Share of the summed layer times, in percent."""


@dataclass(frozen=True)
class Latency:
    """Statistics of one timed quantity over many runs, in milliseconds."""

    min_ms: float
    max_ms: float
    mean_ms: float
    median_ms: float
    percentiles: Mapping[float, float] = field(default_factory=dict)
    """Percentile (e.g. 90.0, 95.0, 99.0) -> milliseconds."""


@dataclass(frozen=True)
class Summary:
    """End-to-end performance, as trtexec's performance summary."""

    throughput_qps: float | None = None
    latency: Latency | None = None
    """Host latency: H2D + GPU compute + D2H."""
    gpu_compute: Latency | None = None
    enqueue: Latency | None = None
    h2d: Latency | None = None
    d2h: Latency | None = None
    total_host_walltime_s: float | None = None
    total_gpu_compute_s: float | None = None


@dataclass(frozen=True)
class Profile:
    """Per-layer times plus end-to-end statistics, with how they were measured."""

    layers: tuple[LayerTime, ...] = ()
    runs: int = 1
    """How many profiled runs the per-layer times cover (``{"count": N}``)."""
    summary: Summary | None = None
    method: Mapping[str, str] = field(default_factory=dict)
    """How it was measured: iterations, warm-up, CUDA graph, tool ..."""
    device: str | None = None
    source: str = ""

    @property
    def total_ms(self) -> float:
        """Sum of the per-layer average times."""
        return sum(t.average_ms for t in self.layers)

    def by_name(self) -> dict[str, LayerTime]:
        """Layer name -> its time (profiles join to layers by name, never by position)."""
        return {t.name: t for t in self.layers}

    def time_of(self, layer: str) -> float | None:
        """Average milliseconds of the named layer, or None when it was not timed."""
        t = self.by_name().get(layer)
        return None if t is None else t.average_ms


# ---------------------------------------------------------------------------------------
# Statistics of timed runs, as trtexec computes them


@dataclass(frozen=True)
class InferenceTrace:
    """One inference as ``--exportTimes`` records it: event times in ms on one clock.

    Without data transfers (``--noDataTransfers``) trtexec still records the H2D and D2H
    events, with no time between start and end.
    """

    start_h2d_ms: float
    end_h2d_ms: float
    start_compute_ms: float
    end_compute_ms: float
    start_d2h_ms: float
    end_d2h_ms: float
    start_enq_ms: float | None = None
    end_enq_ms: float | None = None

    @property
    def enqueue_ms(self) -> float | None:
        """Host time to enqueue the inference, None when not recorded."""
        if self.start_enq_ms is None or self.end_enq_ms is None:
            return None
        return self.end_enq_ms - self.start_enq_ms

    @property
    def h2d_ms(self) -> float:
        return self.end_h2d_ms - self.start_h2d_ms

    @property
    def compute_ms(self) -> float:
        return self.end_compute_ms - self.start_compute_ms

    @property
    def d2h_ms(self) -> float:
        return self.end_d2h_ms - self.start_d2h_ms

    @property
    def latency_ms(self) -> float:
        """Host latency: H2D + GPU compute + D2H (``InferenceTime::latency``)."""
        return self.h2d_ms + self.compute_ms + self.d2h_ms


DEFAULT_PERCENTILES = (90.0, 95.0, 99.0)
"""trtexec's ``--percentile`` default since TensorRT 8.6."""


def _excluded(percentile: float, n: int) -> int:
    """``int((1 - p / 100) * n)`` in single precision, as trtexec's ``findPercentile``
    computes it (in double precision p=90 of 10 values would exclude 0 values, not 1)."""
    one, hundred = np.float32(1), np.float32(100)
    return int((one - np.float32(percentile) / hundred) * np.float32(n))


def latency_stats(
    values: Sequence[float], percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> Latency:
    """min/max/mean/median/percentiles as trtexec computes them (``getPerformanceResult``).

    The median of an even count is the mean of the middle two; percentile ``p`` is the
    sorted value at ``max(n - 1 - int((1 - p/100) * n), 0)``.

    >>> latency_stats([4.0, 1.0, 3.0, 2.0], (50.0,)).percentiles
    {50.0: 2.0}
    """
    if not values:
        raise FusionlabError("no timings to summarize")
    s = sorted(values)
    n = len(s)
    median = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    pcts = {float(p): s[max(n - 1 - _excluded(p, n), 0)] for p in percentiles}
    return Latency(s[0], s[-1], sum(s) / n, median, pcts)


def summarize_times(
    traces: Sequence[InferenceTrace],
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    batch: int = 1,
) -> Summary:
    """trtexec's performance summary of a trace (``printEpilog``).

    Throughput is ``batch * n / walltime`` with the walltime from the first H2D start to the
    last D2H end (explicit-batch engines count one query per inference: ``batch`` 1).
    """
    if not traces:
        raise FusionlabError("no timings to summarize")
    walltime_ms = traces[-1].end_d2h_ms - traces[0].start_h2d_ms
    compute = latency_stats([t.compute_ms for t in traces], percentiles)
    enq = [e for t in traces if (e := t.enqueue_ms) is not None]
    return Summary(
        throughput_qps=batch * len(traces) / walltime_ms * 1000 if walltime_ms > 0 else None,
        latency=latency_stats([t.latency_ms for t in traces], percentiles),
        gpu_compute=compute,
        enqueue=latency_stats(enq, percentiles) if len(enq) == len(traces) else None,
        h2d=latency_stats([t.h2d_ms for t in traces], percentiles),
        d2h=latency_stats([t.d2h_ms for t in traces], percentiles),
        total_host_walltime_s=walltime_ms / 1000,
        total_gpu_compute_s=compute.mean_ms * len(traces) / 1000,
    )

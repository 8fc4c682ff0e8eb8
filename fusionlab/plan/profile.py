"""Measured times: per-layer (as ``trtexec --exportProfile``) and end-to-end statistics.

>>> p = Profile(layers=(LayerTime("Conv_0 + Relu_1", 0.5, 0.5, 0.5, 80.0),
...                    LayerTime("MaxPool_2", 0.125, 0.125, 0.125, 20.0)))
>>> p.total_ms
0.625
>>> p.time_of("MaxPool_2")
0.125
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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

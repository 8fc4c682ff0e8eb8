"""Profile values and the statistics of timed runs (as trtexec computes them)."""

from __future__ import annotations

import pytest

from fusionlab.plan.profile import InferenceTrace, latency_stats, summarize_times


def trace(start: float, compute: float, enqueue: float | None = 0.5) -> InferenceTrace:
    """An inference whose GPU work starts at ``start`` and lasts ``compute`` ms."""
    return InferenceTrace(
        start_h2d_ms=start, end_h2d_ms=start, start_compute_ms=start,
        end_compute_ms=start + compute, start_d2h_ms=start + compute, end_d2h_ms=start + compute,
        start_enq_ms=None if enqueue is None else start - 1,
        end_enq_ms=None if enqueue is None else start - 1 + enqueue,
    )


def test_latency_stats_follow_trtexec() -> None:
    stats = latency_stats([float(v) for v in range(1, 11)], (50.0, 90.0, 99.0))
    assert (stats.min_ms, stats.max_ms, stats.mean_ms, stats.median_ms) == (1.0, 10.0, 5.5, 5.5)
    # percentile p: sorted[max(n - 1 - int((1 - p/100) n), 0)]
    assert stats.percentiles[50.0] == 5.0
    assert stats.percentiles[99.0] == 10.0
    assert stats.percentiles[90.0] == 9.0  # trtexec's float32: int((1 - 0.9f) * 10) == 1
    assert latency_stats([3.0, 1.0, 2.0]).median_ms == 2.0


def test_summarize_times() -> None:
    traces = [trace(10.0 * i, c) for i, c in enumerate([2.0, 4.0, 3.0, 1.0])]
    s = summarize_times(traces, percentiles=(50.0,))
    assert s.gpu_compute is not None and s.latency is not None and s.enqueue is not None
    assert s.gpu_compute.median_ms == 2.5
    assert s.latency == s.gpu_compute
    assert s.enqueue.mean_ms == 0.5
    assert s.total_host_walltime_s == pytest.approx(0.031)  # first H2D start to last D2H end
    assert s.throughput_qps == pytest.approx(4 / 31 * 1000)
    assert s.total_gpu_compute_s == pytest.approx(0.010)
    assert summarize_times([trace(0.0, 1.0, enqueue=None)]).enqueue is None

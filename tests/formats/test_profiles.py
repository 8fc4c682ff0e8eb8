"""Timing files -> Profile (fusionlab.formats.profiles).

Real data: records/trex-resnet18-a100/{fp32,fp16}/engine.profile.json
(``--exportProfile``) and engine.profile.metadata.json (TREx's parse of trtexec's summary).
The files in data/ lay the fp32 record's own numbers out the way other TensorRT versions
write them:

- ``trt7_4key.profile.json``: records 1-6 with TensorRT 7's four keys (no ``medianMs``;
  ``Profiler::exportJSONProfile`` before the median was added);
- ``quoted_names.profile.json``: records 1-3, one name holding ``"`` and ``\\`` written raw
  between quotes, as trtexec's exporter does (it does not escape names);
- ``trt7.dump_profile.txt``: ``--dumpProfile`` with the name first, right-aligned, and
  three number columns (``Profiler::print``, TensorRT 7-8), with the log prefix;
- ``trt10.dump_profile.txt``: the name-last layout of TensorRT 10 (``Time(ms) Avg.(ms)
  Median(ms) Time(%) Layer``, as in NVIDIA/TensorRT#3842);
- ``trt8.summary.txt``: the ``=== Performance summary ===`` block (``printEpilog``,
  TensorRT 8.x with one percentile) holding the values of engine.profile.metadata.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fusionlab.errors import FusionlabError
from fusionlab.formats.trtexec import (
    join_profile,
    read_layer_info,
    read_profile,
    read_summary,
    read_times,
    read_trex_metadata,
)
from fusionlab.plan.profile import LayerTime
from tests.records import RESNET18 as RECORDS

DATA = Path(__file__).parent / "data"


def raw_records(precision: str) -> list[dict[str, float | str]]:
    data: list[dict[str, float | str]] = json.loads(
        (RECORDS / precision / "engine.profile.json").read_text()
    )
    return data


# ---------------------------------------------------------------------------------------
# Recorded profiles and summaries


@pytest.mark.parametrize(
    ("precision", "count", "total_ms"), [("fp32", 32, 2.123776), ("fp16", 36, 1.016832)]
)
def test_record_profile(precision: str, count: int, total_ms: float) -> None:
    profile = read_profile(RECORDS / precision / "engine.profile.json")
    records = raw_records(precision)
    assert profile.runs == records[0]["count"] == 1
    assert len(profile.layers) == len(records) - 1 == count
    assert profile.total_ms == pytest.approx(sum(float(r["averageMs"]) for r in records[1:]))
    assert profile.total_ms == pytest.approx(total_ms)
    assert sum(t.time_ms for t in profile.layers) == pytest.approx(total_ms)
    assert sum(t.percentage or 0 for t in profile.layers) == pytest.approx(100, abs=1e-3)
    first = profile.layers[0]
    assert (first.name, first.median_ms) == (records[1]["name"], records[1]["medianMs"])
    assert profile.source == "trtexec --exportProfile"


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_record_profile_joins_layers_by_name(precision: str) -> None:
    plan = read_layer_info(RECORDS / precision / "engine.graph.json")
    profile = read_profile(RECORDS / precision / "engine.profile.json")
    timed = join_profile(plan, profile)
    assert all(layer.time_ms is not None for layer in timed.layers)
    assert sum(layer.time_ms or 0 for layer in timed.layers) == pytest.approx(profile.total_ms)
    by_name = profile.by_name()
    for layer in timed.layers:
        assert layer.time_ms == by_name[layer.name].average_ms
    # by name, never by position: reversed records give the same times
    shuffled = profile.__class__(layers=tuple(reversed(profile.layers)), runs=profile.runs)
    assert join_profile(plan, shuffled) == timed


def test_record_summary_fp32() -> None:
    profile = read_trex_metadata(RECORDS / "fp32" / "engine.profile.metadata.json")
    s = profile.summary
    assert s is not None and s.latency is not None and s.gpu_compute is not None
    assert s.throughput_qps == 499.294
    assert s.latency.median_ms == 1.99072
    assert (s.latency.min_ms, s.latency.max_ms, s.latency.mean_ms) == (1.98438, 2.05927, 2.00003)
    assert s.latency.percentiles == {99.0: 2.05621}
    assert s.gpu_compute == s.latency  # no data transfers: latency is GPU compute alone
    assert s.enqueue is not None and s.enqueue.median_ms == 0.00537109
    assert s.h2d is not None and s.h2d.max_ms == 0.0
    assert (s.total_host_walltime_s, s.total_gpu_compute_s) == (3.00424, 3.00005)
    assert profile.device == "NVIDIA A100 80GB PCIe"
    assert profile.method["CUDA Graph"] == "Enabled"
    assert profile.layers == ()


def test_record_summary_fp16_through_read_profile() -> None:
    profile = read_profile(RECORDS / "fp16" / "engine.profile.metadata.json")
    assert profile.summary is not None and profile.summary.latency is not None
    assert profile.summary.throughput_qps == 1155.36
    assert profile.summary.latency.median_ms == 0.862183
    assert profile.summary.total_gpu_compute_s == 2.99208


def test_trex_metadata_with_three_percentiles() -> None:
    """TensorRT 8.6+ trtexec prints percentile(90%), (95%) and (99%): TREx keeps 7 values."""
    doc = {"performance_summary": {"Latency": [1.0, 5.0, 2.0, 1.5, 3.0, 4.0, 4.5]}}
    s = read_trex_metadata(json.dumps(doc)).summary
    assert s is not None and s.latency is not None
    assert s.latency.percentiles == {90.0: 3.0, 95.0: 4.0, 99.0: 4.5}


# ---------------------------------------------------------------------------------------
# Other versions' layouts


def test_four_key_profile() -> None:
    profile = read_profile(DATA / "trt7_4key.profile.json")
    assert len(profile.layers) == 6
    assert all(t.median_ms is None for t in profile.layers)
    assert profile.layers[0] == LayerTime("Conv_0 + Relu_1", 0.52224, 0.52224, None, 24.5902)


def test_names_with_raw_quotes_are_repaired() -> None:
    path = DATA / "quoted_names.profile.json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text())
    profile = read_profile(path)
    assert [t.name for t in profile.layers] == [
        "Conv_0 + Relu_1",
        'MaxPool_2 "pool1" \\ stem',
        "Reformatting CopyNode for Output Tensor 0 to MaxPool_2",
    ]
    assert profile.layers[1].average_ms == 0.093184


def test_dump_profile_old_layout() -> None:
    profile = read_profile(DATA / "trt7.dump_profile.txt")
    records = raw_records("fp32")[1:7]
    assert profile.runs == 1
    assert [t.name for t in profile.layers] == [r["name"] for r in records]
    for t, r in zip(profile.layers, records, strict=True):
        assert t.time_ms == pytest.approx(float(r["timeMs"]), abs=0.005)
        assert t.average_ms == pytest.approx(float(r["averageMs"]), abs=0.00005)
        assert t.percentage == pytest.approx(float(r["percentage"]), abs=0.05)
        assert t.median_ms is None
    assert profile.summary is None


def test_dump_profile_new_layout() -> None:
    profile = read_profile(DATA / "trt10.dump_profile.txt")
    records = raw_records("fp32")[1:7]
    assert [t.name for t in profile.layers] == [r["name"] for r in records]
    for t, r in zip(profile.layers, records, strict=True):
        assert t.median_ms == pytest.approx(float(r["medianMs"]), abs=0.00005)
    assert profile.layers[2].name == "Reformatting CopyNode for Output Tensor 0 to MaxPool_2"


def test_summary_text_block() -> None:
    s = read_summary(DATA / "trt8.summary.txt")
    assert s.throughput_qps == 499.294
    assert s.latency is not None and s.latency.median_ms == 1.99072
    assert s.latency.percentiles == {99.0: 2.05621}
    assert s.enqueue is not None and s.enqueue.max_ms == 0.0128174
    assert s.total_host_walltime_s == 3.00424
    assert s.total_gpu_compute_s == 3.00005
    # read_profile on a log with a summary and no table: the summary alone
    assert read_profile(DATA / "trt8.summary.txt").summary == s


def test_summary_text_matches_trex_metadata() -> None:
    text = read_summary(DATA / "trt8.summary.txt")
    trex = read_trex_metadata(RECORDS / "fp32" / "engine.profile.metadata.json").summary
    assert text == trex


def test_log_with_table_and_summary(tmp_path: Path) -> None:
    log = tmp_path / "trtexec.log"
    parts = [(DATA / name).read_text() for name in ("trt8.summary.txt", "trt10.dump_profile.txt")]
    log.write_text("".join(parts))
    profile = read_profile(log)
    assert len(profile.layers) == 6
    assert profile.summary is not None and profile.summary.throughput_qps == 499.294


def test_read_times_keys_ignore_case(tmp_path: Path) -> None:
    path = tmp_path / "times.json"
    path.write_text(json.dumps([
        {"startH2DMs": 0, "endH2DMs": 0, "startComputeMs": 0, "endComputeMs": 2,
         "startD2HMs": 2, "endD2HMs": 2, "h2dMs": 0, "computeMs": 2, "d2hMs": 0, "latencyMs": 2},
    ]))
    (t,) = read_times(path)
    assert (t.compute_ms, t.latency_ms, t.enqueue_ms) == (2.0, 2.0, None)
    profile = read_profile(path)
    assert profile.source == "trtexec --exportTimes"
    assert profile.summary is not None and profile.summary.gpu_compute is not None
    assert profile.summary.gpu_compute.mean_ms == 2.0


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"Layers": []}', "not a trtexec profile"),
        ('[{"name": "a", "averageMs": 1}]', "has no 'timeMs'"),
        ('[{"name": "a", "timeMs": "x", "averageMs": 1}]', "must be a number"),
        ("[1, 2]", "must be JSON objects"),
        ('[{"startH2dMs": 0}]', "has no 'endH2dMs'"),
        ("just some words\n", "no trtexec profile table or performance summary"),
        ("=== Profile (3 iterations ) ===\nweird header\n", "unrecognized profile table header"),
        ('{"performance_summary": {"Latency": [1, 2]}}', "must be a list"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(FusionlabError, match=message) as err:
        read_profile(path)
    assert str(err.value).startswith(str(path))


def test_summary_missing(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("nothing here\n")
    with pytest.raises(FusionlabError, match="no trtexec performance summary"):
        read_summary(path)

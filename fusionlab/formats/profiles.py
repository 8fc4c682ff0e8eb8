"""Timings as trtexec reports them: per-layer profiles, timing traces, performance summaries.

Readers and writers for

- ``--exportProfile`` JSON: ``[{"count": N}, {"name", "timeMs", "averageMs", "medianMs",
  "percentage"}, ...]`` (4-key records before TensorRT 8, names with raw quotes repaired);
- ``--dumpProfile`` tables, both layouts (name first, TensorRT 7-8; name last, TensorRT 10);
- ``--exportTimes`` JSON: one record per inference, summarized as trtexec does;
- the ``=== Performance summary ===`` text block;
- TREx's ``engine.profile.metadata.json`` (``performance_summary``, ``device_information``).

>>> p = read_profile('[{"count": 2}, {"name": "Conv_0", "timeMs": 1, "averageMs": 0.5, '
...                  '"percentage": 100}]')
>>> p.runs, p.layers[0].average_ms, p.layers[0].median_ms
(2, 0.5, None)
>>> read_profile(profile_to_json(p)) == p
True
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from fusionlab.errors import FusionlabError
from fusionlab.formats.common import (
    Source,
    fmt_number,
    is_log_text,
    load_json,
    normalize_layer_names,
    read_source,
    strip_log_prefix,
    to_float,
    to_time,
)
from fusionlab.plan import Plan
from fusionlab.plan.profile import InferenceTrace, Latency, LayerTime, Profile, Summary, summarize_times

log = logging.getLogger(__name__)

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?inf|nan"
_STAT = re.compile(
    rf"(min|max|mean|median|percentile\(\s*({_NUMBER})\s*%\))\s*=\s*({_NUMBER})\s*ms"
)
_SUMMARY_KEYS = {
    "Latency": "latency",
    "Enqueue Time": "enqueue",
    "H2D Latency": "h2d",
    "GPU Compute Time": "gpu_compute",
    "D2H Latency": "d2h",
}
_PROFILE_HEADER = re.compile(r"=== Profile \(\s*(\d+)\s+iterations\s*\)\s*===")
_UNQUOTED_NAME = re.compile(r'("name"\s*:\s*")(.*?)("\s*,\s*"timeMs"\s*:)')

TREX_DEFAULT_PERCENTILES = {1: (99.0,), 3: (90.0, 95.0, 99.0)}
"""Which percentiles TREx's unlabelled lists hold, by count: trtexec's ``--percentile``
default was 99 (TensorRT 8.0-8.5) and became 90,95,99 (8.6+)."""


# ---------------------------------------------------------------------------------------
# --exportProfile JSON


def _repair_quotes(text: str) -> str:
    """Escape quotes and backslashes inside ``"name"`` values.

    trtexec (``Profiler::exportJSONProfile``, TensorRT 7-10) writes layer names between
    quotes without escaping them, so a name with a ``"`` or ``\\`` breaks the JSON.
    """
    def escape(m: re.Match[str]) -> str:
        return m.group(1) + json.dumps(m.group(2))[1:-1] + m.group(3)

    return _UNQUOTED_NAME.sub(escape, text)


def _load_profile_json(text: str, where: str) -> Any:
    try:
        return load_json(text, where)
    except FusionlabError:
        return load_json(_repair_quotes(text), where)  # the same error again if not quotes


def _layer_time(rec: Mapping[str, Any], where: str) -> LayerTime:
    """One record. TensorRT 7 wrote 4 keys (no ``medianMs``); 8.x and later 5 (TREx
    ``read_profiling_file`` keeps records of 4 or 5 keys)."""
    name = rec["name"]
    if not isinstance(name, str):
        raise FusionlabError(f"{where}: a profile record's name must be a string")
    for key in ("timeMs", "averageMs"):
        if key not in rec:
            raise FusionlabError(f"{where}: profile record {name!r} has no {key!r}")
    median = rec.get("medianMs")
    pct = rec.get("percentage")
    return LayerTime(
        name=name,
        time_ms=to_time(rec["timeMs"], f"{name!r} timeMs", where),
        average_ms=to_time(rec["averageMs"], f"{name!r} averageMs", where),
        median_ms=None if median is None else to_time(median, f"{name!r} medianMs", where),
        percentage=None if pct is None else to_float(pct, f"{name!r} percentage", where),
    )


def _with_normalized_names(layers: Sequence[LayerTime]) -> tuple[LayerTime, ...]:
    names = normalize_layer_names(t.name for t in layers)
    return tuple(replace(t, name=n) for t, n in zip(layers, names, strict=True) if n is not None)


def _profile_from_records(data: list[Any], where: str) -> Profile:
    runs = 1
    layers: list[LayerTime] = []
    for rec in data:
        if not isinstance(rec, dict):
            raise FusionlabError(f"{where}: profile records must be JSON objects")
        if "name" in rec:
            layers.append(_layer_time(rec, where))
        elif "count" in rec:
            runs = int(to_float(rec["count"], "count", where))
    return Profile(
        layers=_with_normalized_names(layers), runs=runs, source="trtexec --exportProfile"
    )


def _percentage(t: LayerTime, total_ms: float) -> float:
    """The record's share, or as trtexec computes it: total time over all layers' total."""
    if t.percentage is not None:
        return t.percentage
    return t.time_ms / total_ms * 100 if total_ms else 0.0


def profile_to_json(profile: Profile) -> str:
    """Per-layer times in trtexec's ``--exportProfile`` format.

    Same layout as ``Profiler::exportJSONProfile``; names are escaped (trtexec did not),
    numbers exact; a record without a median is written with trtexec 7's four keys, and a
    missing percentage is computed from the total times as trtexec does.
    """
    total = sum(t.time_ms for t in profile.layers)
    lines = ["[", f'  {{ "count" : {profile.runs} }}']
    for t in profile.layers:
        median = "" if t.median_ms is None else f', "medianMs" : {fmt_number(t.median_ms)}'
        name = json.dumps(t.name, ensure_ascii=False)
        lines.append(
            f', {{ "name" : {name}, "timeMs" : {fmt_number(t.time_ms)}, '
            f'"averageMs" : {fmt_number(t.average_ms)}{median}, '
            f'"percentage" : {fmt_number(_percentage(t, total))} }}'
        )
    lines.append("]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# --exportTimes JSON


_TRACE_KEYS = (
    ("startEnqMs", "start_enq_ms"), ("endEnqMs", "end_enq_ms"),
    ("startH2dMs", "start_h2d_ms"), ("endH2dMs", "end_h2d_ms"),
    ("startComputeMs", "start_compute_ms"), ("endComputeMs", "end_compute_ms"),
    ("startD2hMs", "start_d2h_ms"), ("endD2hMs", "end_d2h_ms"),
)


def _trace(rec: Any, i: int, where: str) -> InferenceTrace:
    """One record of ``exportJSONTrace`` (TensorRT 7-10: the event times plus derived
    ``h2dMs``/``computeMs``/``d2hMs``/``latencyMs``, and ``endToEndMs`` in 7.x-8.2). Keys are
    compared without case (``startH2dMs`` in trtexec, ``startH2DMs`` in some copies); the
    enqueue times are optional."""
    if not isinstance(rec, dict):
        raise FusionlabError(f"{where}: timing record {i} is not a JSON object")
    lower = {str(k).lower(): v for k, v in rec.items()}
    values: dict[str, float] = {}
    for key, field in _TRACE_KEYS:
        v = lower.get(key.lower())
        if v is None:
            if "Enq" in key:
                continue
            raise FusionlabError(f"{where}: timing record {i} has no {key!r}")
        values[field] = to_float(v, f"record {i} {key}", where)
    return InferenceTrace(**values)


def read_times(text_or_path: Source) -> tuple[InferenceTrace, ...]:
    """The per-inference records of a ``--exportTimes`` file."""
    text, where = read_source(text_or_path)
    data = load_json(text, where)
    if not isinstance(data, list):
        raise FusionlabError(f"{where}: not a timing trace (expected a JSON list of records)")
    return tuple(_trace(rec, i, where) for i, rec in enumerate(data))


def times_to_json(traces: Sequence[InferenceTrace]) -> str:
    """Records in ``--exportTimes`` format (``exportJSONTrace``, TensorRT 8.4+ keys)."""
    lines = ["["]
    for i, t in enumerate(traces):
        fields = [
            f'"{key}" : {fmt_number(getattr(t, field))}'
            for key, field in _TRACE_KEYS
            if getattr(t, field) is not None
        ]
        fields += [
            f'"h2dMs" : {fmt_number(t.h2d_ms)}', f'"computeMs" : {fmt_number(t.compute_ms)}',
            f'"d2hMs" : {fmt_number(t.d2h_ms)}', f'"latencyMs" : {fmt_number(t.latency_ms)}',
        ]
        lines.append(("  " if i == 0 else ", ") + "{ " + ", ".join(fields) + " }")
    lines.append("]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# "=== Performance summary ===" text


def _number_in_text(text: str, what: str, where: str) -> float:
    """A number read from a log line: finite, or a one-line error naming the file."""
    try:
        value = float(text.strip())
    except ValueError:
        raise FusionlabError(f"{where}: {what}: cannot read the number {text.strip()[:40]!r}") from None
    if not math.isfinite(value):
        raise FusionlabError(f"{where}: {what}: {text.strip()[:40]} is not a finite number")
    return value


def _stat_line(text: str, where: str, what: str) -> Latency:
    found = {m.group(1).split("(")[0]: _number_in_text(m.group(3), what, where) for m in _STAT.finditer(text)}
    pcts = {_number_in_text(m.group(2), what, where): _number_in_text(m.group(3), what, where)
            for m in _STAT.finditer(text) if m.group(2)}
    missing = [k for k in ("min", "max", "mean", "median") if k not in found]
    if missing:
        raise FusionlabError(f"{where}: {what} line lacks {', '.join(missing)}")
    return Latency(found["min"], found["max"], found["mean"], found["median"], pcts)


def parse_summary(text: str, where: str = "<text>") -> Summary | None:
    """The performance summary in trtexec output (TensorRT 8+), or None when there is none.

    Lines may carry the log prefix; ``End-to-End Host Latency`` (8.0-8.2) is read past.
    """
    lines = [strip_log_prefix(line).strip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if "=== Performance summary ===" in line), 0)
    fields: dict[str, Any] = {}
    for line in lines[start:]:
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "Throughput" and "qps" in rest:
            fields["throughput_qps"] = _number_in_text(rest.replace("qps", ""), key, where)
        elif key in _SUMMARY_KEYS and "=" in rest and _SUMMARY_KEYS[key] not in fields:
            fields[_SUMMARY_KEYS[key]] = _stat_line(rest, where, key)
        elif key == "Total Host Walltime":
            fields["total_host_walltime_s"] = _number_in_text(rest.replace(" s", ""), key, where)
        elif key == "Total GPU Compute Time":
            fields["total_gpu_compute_s"] = _number_in_text(rest.replace(" s", ""), key, where)
    if "throughput_qps" not in fields and "latency" not in fields:
        return None
    return Summary(**fields)


def read_summary(text_or_path: Source) -> Summary:
    """The ``=== Performance summary ===`` block of a trtexec log."""
    text, where = read_source(text_or_path)
    summary = parse_summary(text, where)
    if summary is None:
        raise FusionlabError(
            f"{where}: no trtexec performance summary found (no 'Throughput:' or 'Latency:' line)"
        )
    return summary


def _num(x: float, exact: bool) -> str:
    return fmt_number(x) if exact else f"{x:g}"


def _perf_string(lat: Latency, exact: bool) -> str:
    s = (
        f"min = {_num(lat.min_ms, exact)} ms, max = {_num(lat.max_ms, exact)} ms, "
        f"mean = {_num(lat.mean_ms, exact)} ms, median = {_num(lat.median_ms, exact)} ms"
    )
    for p, v in lat.percentiles.items():
        s += f", percentile({p:g}%) = {_num(v, exact)} ms"
    return s


def format_summary(profile: Profile | Summary, *, exact: bool = False) -> str:
    """trtexec's ``=== Performance summary ===`` block (``printEpilog``, TensorRT 8.6+).

    Numbers print as C++ streams do (6 significant digits); ``exact`` prints every digit
    so that :func:`read_summary` gives back the same values.
    """
    summary = profile.summary if isinstance(profile, Profile) else profile
    if summary is None:
        raise FusionlabError("the profile has no performance summary")
    lines = ["=== Performance summary ==="]
    if summary.throughput_qps is not None:
        lines.append(f"Throughput: {_num(summary.throughput_qps, exact)} qps")
    for label, attr in _SUMMARY_KEYS.items():
        lat = getattr(summary, attr)
        if lat is not None:
            lines.append(f"{label}: {_perf_string(lat, exact)}")
    if summary.total_host_walltime_s is not None:
        lines.append(f"Total Host Walltime: {_num(summary.total_host_walltime_s, exact)} s")
    if summary.total_gpu_compute_s is not None:
        lines.append(f"Total GPU Compute Time: {_num(summary.total_gpu_compute_s, exact)} s")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# --dumpProfile table


def parse_profile_table(text: str, where: str = "<text>") -> Profile | None:
    """The ``=== Profile (N iterations ) ===`` table of a trtexec log, or None.

    Layouts: ``Layer  Time (ms)  Avg. Time (ms)  [Median Time (ms)]  Time %`` with the name
    right-aligned first (``Profiler::print``, TensorRT 7-8; the median column from 8.4), and
    ``Time(ms)  Avg.(ms)  Median(ms)  Time(%)  Layer`` with the name last (TensorRT 10, seen
    in NVIDIA/TensorRT#3842). The ``Total`` row is dropped.
    """
    lines = [strip_log_prefix(line).rstrip() for line in text.splitlines()]
    start = next((i for i, line in enumerate(lines) if _PROFILE_HEADER.search(line)), None)
    if start is None or start + 1 >= len(lines):
        return None
    m = _PROFILE_HEADER.search(lines[start])
    runs = int(m.group(1)) if m else 1
    header = lines[start + 1].strip()
    name_first = header.startswith("Layer")
    if not name_first and not header.endswith("Layer"):
        raise FusionlabError(f"{where}: unrecognized profile table header {header!r}")
    has_median = "Median" in header
    k = 4 if has_median else 3
    layers: list[LayerTime] = []
    for line in lines[start + 2 :]:
        if not line.strip() or line.lstrip().startswith("==="):
            break
        parts = line.rsplit(None, k) if name_first else line.strip().split(None, k)
        if len(parts) != k + 1:
            raise FusionlabError(f"{where}: cannot read profile row {line.strip()!r}")
        name, numbers = (parts[0], parts[1:]) if name_first else (parts[k], parts[:k])
        name = name.strip()
        values = [_number_in_text(v, f"profile row {name[:60]!r}", where) for v in numbers]
        median = values[2] if has_median else None
        layers.append(LayerTime(name, values[0], values[1], median, values[-1]))
    if layers and layers[-1].name == "Total":
        layers.pop()
    return Profile(layers=_with_normalized_names(layers), runs=runs, source="trtexec --dumpProfile")


def _row(cells: Sequence[str], heads: Sequence[str]) -> str:
    """Cells right-aligned under headers, as ``std::setw`` does."""
    return "".join(c.rjust(len(h)) for c, h in zip(cells, heads, strict=True))


def format_profile_table(
    profile: Profile, *, layout: Literal["new", "old"] = "new", exact: bool = False
) -> str:
    """The ``--dumpProfile`` table.

    ``layout="new"``: times first, name last (TensorRT 10); ``"old"``: name first,
    right-aligned (``Profiler::print``, TensorRT 8; without a median column when no layer
    has a median, as TensorRT 7). Numbers print with trtexec's fixed decimals (2, 4, 4, 1);
    ``exact`` prints every digit instead. The ``Total`` row's median is the sum of the
    layer medians (trtexec prints the median of per-run totals, which a profile does not keep).
    """
    total = sum(t.time_ms for t in profile.layers)
    runs = max(profile.runs, 1)
    has_median = layout == "new" or any(t.median_ms is not None for t in profile.layers)

    def fixed(x: float, decimals: int) -> str:
        return fmt_number(x) if exact else f"{x:.{decimals}f}"

    rows: list[tuple[str, list[str]]] = []
    for t in profile.layers:
        cells = [fixed(t.time_ms, 2), fixed(t.average_ms, 4)]
        if has_median:
            cells.append(fixed(t.median_ms if t.median_ms is not None else t.average_ms, 4))
        cells.append(fixed(_percentage(t, total), 1))
        rows.append((t.name, cells))
    median_total = sum(
        t.median_ms if t.median_ms is not None else t.average_ms for t in profile.layers
    )
    total_cells = [fixed(total, 2), fixed(total / runs, 4)]
    if has_median:
        total_cells.append(fixed(median_total, 4))
    total_cells.append(fixed(100.0, 1))
    rows.append(("Total", total_cells))

    out = ["", f"=== Profile ({runs} iterations ) ==="]
    if layout == "new":
        heads = ["   Time(ms)", "     Avg.(ms)", "   Median(ms)", "   Time(%)"]
        out.append("".join(heads) + "   Layer")
        for name, cells in rows:
            out.append(_row(cells, heads) + "   " + name)
    else:
        heads = ["   Time (ms)", "   Avg. Time (ms)"]
        heads += ["   Median Time (ms)"] if has_median else []
        heads += ["   Time %"]
        width = max([len("Layer")] + [len(name) + 1 for name, _ in rows])
        out.append("Layer".rjust(width) + "".join(heads))
        for name, cells in rows:
            out.append(name.rjust(width) + _row(cells, heads))
    return "\n".join(out) + "\n\n"


# ---------------------------------------------------------------------------------------
# TREx engine.profile.metadata.json


def _trex_latency(values: Any, key: str, where: str) -> Latency:
    """``[min, max, mean, median, percentile...]`` as TREx's ``parse_trtexec_log`` stores a
    summary line; the percentiles are unlabelled (see :data:`TREX_DEFAULT_PERCENTILES`)."""
    if not isinstance(values, list) or len(values) < 4:
        raise FusionlabError(
            f"{where}: performance_summary {key!r} must be a list [min, max, mean, median, ...]"
        )
    v = [to_float(x, key, where) for x in values]
    labels = TREX_DEFAULT_PERCENTILES.get(len(v) - 4)
    if labels is None and len(v) > 4:
        log.warning("%s: %r has %d percentiles of unknown levels; dropped", where, key, len(v) - 4)
    pcts = dict(zip(labels, v[4:], strict=True)) if labels else {}
    return Latency(v[0], v[1], v[2], v[3], pcts)


def trex_metadata_profile(data: Mapping[str, Any], where: str) -> Profile:
    """A profile (summary, device, inference options) from TREx's profiling metadata."""
    perf = data.get("performance_summary")
    if not isinstance(perf, dict):
        raise FusionlabError(
            f"{where}: no 'performance_summary' object (TREx engine.profile.metadata.json)"
        )
    fields: dict[str, Any] = {}
    for key, attr in _SUMMARY_KEYS.items():
        if key in perf:
            fields[attr] = _trex_latency(perf[key], key, where)
    scalars = {
        "Throughput": "throughput_qps",
        "Total Host Walltime": "total_host_walltime_s",
        "Total GPU Compute Time": "total_gpu_compute_s",
    }
    for key, attr in scalars.items():
        if key in perf:
            fields[attr] = to_float(perf[key], key, where)
    info = data.get("device_information")
    device = info.get("Selected Device") if isinstance(info, dict) else None
    options = data.get("inference_options")
    return Profile(
        summary=Summary(**fields),
        method={str(k): str(v) for k, v in options.items()} if isinstance(options, dict) else {},
        device=str(device) if device is not None else None,
        source="trex metadata",
    )


def read_trex_metadata(text_or_path: Source) -> Profile:
    """TREx's ``engine.profile.metadata.json`` as a :class:`Profile` without layers."""
    text, where = read_source(text_or_path)
    data = load_json(text, where)
    if not isinstance(data, dict):
        raise FusionlabError(f"{where}: not TREx profiling metadata (expected a JSON object)")
    return trex_metadata_profile(data, where)


# ---------------------------------------------------------------------------------------
# One entry point for any of the above


def read_profile(text_or_path: Source) -> Profile:
    """Timings from any trtexec/TREx export, recognized by content.

    - ``--exportProfile`` JSON -> per-layer times (``runs`` from ``{"count": N}``);
    - ``--exportTimes`` JSON -> the summary trtexec would print for that trace;
    - TREx ``engine.profile.metadata.json`` -> summary, device, inference options;
    - a trtexec log (text) -> the ``--dumpProfile`` table and/or the performance summary.

    Raises :class:`FusionlabError` naming the file for anything else.
    """
    text, where = read_source(text_or_path)
    head = "" if is_log_text(text) else text.lstrip()[:1]
    if head == "[":
        data = _load_profile_json(text, where)
        if not isinstance(data, list):
            raise FusionlabError(f"{where}: not a trtexec profile")
        if data and all(isinstance(r, dict) and "name" not in r and "count" not in r for r in data):
            traces = tuple(_trace(r, i, where) for i, r in enumerate(data))
            stats = summarize_times(traces)
            return Profile(summary=stats, runs=len(traces), source="trtexec --exportTimes")
        return _profile_from_records(data, where)
    if head == "{":
        data = load_json(text, where)
        if isinstance(data, dict) and "performance_summary" in data:
            return trex_metadata_profile(data, where)
        raise FusionlabError(
            f"{where}: not a trtexec profile (expected --exportProfile or --exportTimes JSON, "
            "a trtexec log, or TREx engine.profile.metadata.json)"
        )
    table = parse_profile_table(text, where)
    summary = parse_summary(text, where)
    if table is None and summary is None:
        raise FusionlabError(f"{where}: no trtexec profile table or performance summary found")
    if table is None:
        return Profile(summary=summary, source="trtexec log")
    return replace(table, summary=summary)


def join_profile(plan: Plan, profile: Profile) -> Plan:
    """The plan with each layer's measured average time, joined by layer name.

    Never by position: layers the profile does not name keep ``time_ms`` None, and profile
    records that name no layer are reported in the log.
    """
    times = profile.by_name()
    layer_names = {layer.name for layer in plan.layers}
    strays = [name for name in times if name not in layer_names]
    if strays:
        log.warning(
            "%d profile record(s) name no layer of the plan, e.g. %r", len(strays), strays[0]
        )
    missing = [layer.name for layer in plan.layers if layer.name not in times]
    if missing and times:
        log.info("%d layer(s) have no profile record, e.g. %r", len(missing), missing[0])
    return plan.with_layers(
        replace(layer, time_ms=times[layer.name].average_ms) if layer.name in times else layer
        for layer in plan.layers
    )

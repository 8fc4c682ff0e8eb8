"""Files that TensorRT's tools write, read and written without TensorRT.

The public face of :mod:`fusionlab.formats.layer_info` (engine layer information) and
:mod:`fusionlab.formats.profiles` (per-layer profiles, timing traces, performance
summaries, TREx metadata). Readers take a path or the text itself and name the file in
every :class:`~fusionlab.errors.FusionlabError`; writers return the text, in the format of
the tool, so that files fusionlab writes load in tools that read trtexec output, and read
back to the same data.

=====================================  =======================  ===========================
file                                   read                     write
=====================================  =======================  ===========================
``--exportLayerInfo`` / inspector      :func:`read_layer_info`  :func:`layer_info_to_json`
``--exportProfile``                    :func:`read_profile`     :func:`profile_to_json`
``--exportTimes``                      :func:`read_times`       :func:`times_to_json`
``=== Performance summary ===``        :func:`read_summary`     :func:`format_summary`
``--dumpProfile`` table                :func:`read_profile`     :func:`format_profile_table`
TREx ``engine.profile.metadata.json``  :func:`read_trex_metadata`  -
=====================================  =======================  ===========================

Profiles join to plans by layer name (:func:`join_profile`), never by position.
"""

from __future__ import annotations

from fusionlab.formats.layer_info import (
    SOURCE,
    EngineInfo,
    EngineLayer,
    IOTensor,
    TensorInfo,
    engine_info_to_plan,
    is_inserted,
    is_reformat,
    layer_info_to_json,
    metadata_nodes,
    parse_engine_info,
    read_layer_info,
    split_layer_name,
)
from fusionlab.formats.profiles import (
    format_profile_table,
    format_summary,
    join_profile,
    parse_profile_table,
    parse_summary,
    profile_to_json,
    read_profile,
    read_summary,
    read_times,
    read_trex_metadata,
    times_to_json,
)

__all__ = [
    "SOURCE",
    "EngineInfo",
    "EngineLayer",
    "IOTensor",
    "TensorInfo",
    "engine_info_to_plan",
    "format_profile_table",
    "format_summary",
    "is_inserted",
    "is_reformat",
    "join_profile",
    "layer_info_to_json",
    "metadata_nodes",
    "parse_engine_info",
    "parse_profile_table",
    "parse_summary",
    "profile_to_json",
    "read_layer_info",
    "read_profile",
    "read_summary",
    "read_times",
    "read_trex_metadata",
    "split_layer_name",
    "times_to_json",
]

"""Shared pieces of the trtexec readers and writers: sources, JSON, names, numbers.

Every reader takes ``text_or_path``: a path (``str`` or ``os.PathLike``) or the file's
text itself, and names the file in every error it raises.

>>> read_source('[{"count": 1}]')
('[{"count": 1}]', '<text>')
>>> normalize_layer_names(["Conv_0", "Copy", "Copy", "Relu_1 [profile 1]"])
['Conv_0', 'Copy', 'Copy_2', None]
>>> fmt_number(0.52224), fmt_number(2.0), fmt_number(1 / 3)
('0.52224', '2', '0.3333333333333333')
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fusionlab.errors import FusionlabError
from fusionlab.io import parse_json, read_text

log = logging.getLogger(__name__)

Source = str | os.PathLike[str]
"""A file path, or the text of the file itself."""

_LOG_PREFIX = re.compile(r"^\s*\[\d{1,2}/\d{1,2}/\d{4}-\d{1,2}:\d{2}:\d{2}\]\s*\[[A-Z]\]\s?")
_PROFILE_SUFFIX = re.compile(r"\s*\[profile \d+\]")


def _is_file(s: str) -> bool:
    try:
        return Path(s).is_file()
    except (OSError, ValueError):  # a name too long for the file system, or with NUL
        return False


def read_source(text_or_path: Source) -> tuple[str, str]:
    """The text to parse and the name to use in errors (the path, or ``<text>``).

    A ``str`` is a path when no such text could be a file's content: one line that names
    an existing file, or anything not starting with ``{``/``[`` and without a newline.
    """
    if isinstance(text_or_path, str):
        s = text_or_path
        looks_like_text = "\n" in s or s.lstrip().startswith(("{", "["))
        if looks_like_text and not ("\n" not in s and _is_file(s)):
            return s, "<text>"
    path = Path(text_or_path)
    return read_text(path), str(path)


def load_json(text: str, where: str) -> Any:
    """Parse JSON that may hold raw control characters in strings.

    TensorRT 8.6 and later put the separators ``\\x1E`` and ``\\x1F`` into layer names and
    ``Metadata`` unescaped (TREx ``fix_unicode``; NVIDIA/TensorRT#2779), which strict JSON
    rejects; Python's non-strict mode accepts them.
    """
    return parse_json(text, where, control_characters=True)


def strip_log_prefix(line: str) -> str:
    """A trtexec log line without its ``[MM/DD/YYYY-hh:mm:ss] [I]`` prefix.

    >>> strip_log_prefix("[05/08/2024-14:05:14] [I] Throughput: 499.294 qps")
    'Throughput: 499.294 qps'
    """
    return _LOG_PREFIX.sub("", line, count=1)


def is_log_text(text: str) -> bool:
    """True when the text starts like a trtexec log (``[date] [I] ...``), not like JSON."""
    return bool(_LOG_PREFIX.match(text.lstrip()))


def fix_separators(name: str) -> str:
    """Replace TensorRT's unit/record separators in a name by ``+`` as TREx does.

    TensorRT 8.6 and 10.0 introduced ``\\x1E``/``\\x1F`` in layer names of the graph JSON
    (TREx ``fix_unicode``, NVIDIA/TensorRT#2779); the profile JSON carries the same names,
    so both readers apply this and still join by name.
    """
    return name.replace("\x1e", "+").replace("\x1f", "+")


def normalize_layer_names(names: Iterable[str]) -> list[str | None]:
    """Layer names as both readers key them; None for a layer of another shape profile.

    - separators fixed (:func:`fix_separators`);
    - layers of optimization profile 1, 2, ... (names with a ``[profile N]`` suffix, TREx
      ``filter_profiles``) are dropped: the first profile has no suffix;
    - a name seen before gets ``_2``, ``_3`` ... (TREx ``disambiguate_layer_names``), in the
      same order in the layer file and the profile, so the join by name still holds.
    """
    out: list[str | None] = []
    seen: dict[str, int] = {}
    for raw in names:
        name = fix_separators(raw)
        if _PROFILE_SUFFIX.search(name):
            out.append(None)
            continue
        count = seen.get(name, 0) + 1
        seen[name] = count
        out.append(name if count == 1 else f"{name}_{count}")
    return out


def fmt_number(x: float) -> str:
    """A number as C++ streams print it (``%g``, 6 digits) when that loses nothing, else exact.

    Writers use this so that files look like trtexec's and still read back to the same values.
    """
    x = float(x)
    if not math.isfinite(x):
        raise FusionlabError(f"cannot write the non-finite time {x!r}")
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


def to_float(value: Any, what: str, where: str) -> float:
    """A JSON number as float, or a one-line error naming the file and the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FusionlabError(f"{where}: {what} must be a number, got {str(value)[:40]!r}")
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise FusionlabError(f"{where}: {what} is not a finite number")
    return result


def to_time(value: Any, what: str, where: str) -> float:
    """A duration in a profile: :func:`to_float`, and not negative (one line naming the file).

    >>> to_time(0.5, "timeMs", "p.json")
    0.5
    >>> to_time(-1, "'Conv_0' averageMs", "p.json")
    Traceback (most recent call last):
    fusionlab.errors.FusionlabError: p.json: 'Conv_0' averageMs is negative (-1.0): a time cannot be
    """
    result = to_float(value, what, where)
    if result < 0:
        raise FusionlabError(f"{where}: {what} is negative ({result!r}): a time cannot be")
    return result

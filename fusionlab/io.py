"""Reading the user's files and writing outputs: bounded, strict, whole or not at all.

Readers (:func:`read_text`, :func:`parse_json`, :func:`parse_toml`) turn every way a file
can be wrong — missing, a folder, unreadable, not UTF-8, larger than :data:`MAX_TEXT_BYTES`
or endless (``/dev/zero``), nested beyond the parser's recursion, holding numbers that do
not fit a float — into one :class:`FusionlabError` line naming the file. Writers
(:func:`write_atomic`, :func:`dumps_json`) write strict JSON (no NaN or Infinity), never
over an input, through a temporary file renamed into place; a device, a FIFO or a stream
(``/dev/stdout``) given as the output is written through, and a symbolic link is followed,
never replaced.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(folder / "plan.json", "{}\\n").read_text()
'{}\\n'
>>> parse_json('{"a": 1e400}', "x.json")
Traceback (most recent call last):
...
fusionlab.errors.FusionlabError: x.json: the number 1e400 does not fit a float
>>> dumps_json({"rho": float("nan")})
'{\\n  "rho": null\\n}\\n'
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fusionlab.errors import FusionlabError

MAX_TEXT_BYTES = 256 << 20
"""The largest text file fusionlab reads (layer information, profiles, plans, TOML):
256 MiB, several times the layer JSON of the largest engines TREx was shown on."""
MAX_DIGITS = 300
"""Integers with more digits than this are refused: no count or size is that large, and
every shorter integer converts to a float without overflow."""
_STREAMS = ("/dev/stdout", "/dev/stderr", "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/")


def read_text(path: str | os.PathLike[str], limit: int = MAX_TEXT_BYTES) -> str:
    """The text of the file at ``path``, read as UTF-8, at most ``limit`` bytes."""
    p = Path(path)
    try:
        if p.is_dir():
            raise FusionlabError(f"{p}: is a folder, not a file")
        with open(p, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise FusionlabError(f"{p}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise FusionlabError(f"{p}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if len(data) > limit:
        raise FusionlabError(f"{p}: larger than {limit >> 20} MiB: not a file fusionlab reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FusionlabError(f"{p}: not a text file (invalid UTF-8)") from None


def _int(text: str, where: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise FusionlabError(f"{where}: the integer {text[:20]}... has over {MAX_DIGITS} digits")
    return int(text)


def _float(text: str, where: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise FusionlabError(f"{where}: the number {text[:40]} does not fit a float")
    return value


def _constant(text: str, where: str) -> float:
    raise FusionlabError(f"{where}: {text} is not a number JSON allows")


def parse_json(text: str, where: str, *, control_characters: bool = False) -> Any:
    """Parse JSON text of the file ``where``; a one-line error for anything not JSON.

    ``control_characters``: accept raw control characters inside strings (TensorRT 8.6+
    writes ``\\x1E``/``\\x1F`` unescaped into layer names: NVIDIA/TensorRT#2779).
    """
    try:
        return json.loads(
            text,
            strict=not control_characters,
            parse_int=lambda s: _int(s, where),
            parse_float=lambda s: _float(s, where),
            parse_constant=lambda s: _constant(s, where),
        )
    except json.JSONDecodeError as exc:
        raise FusionlabError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise FusionlabError(f"{where}: nested too deeply to be a file fusionlab reads") from None


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """Parse TOML text of the file ``where``; a one-line error for anything not TOML."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 only
        import tomli as tomllib

    try:
        return tomllib.loads(text, parse_float=lambda s: _float(s, where))
    except tomllib.TOMLDecodeError as exc:
        raise FusionlabError(f"{where}: invalid TOML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise FusionlabError(f"{where}: nested too deeply to be a file fusionlab reads") from None


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def dumps_json(data: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text with a final newline: a NaN or infinite float is written ``null``."""
    return json.dumps(_finite(data), indent=indent, ensure_ascii=False, allow_nan=False) + "\n"


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stream_fd(path: Path) -> int | None:
    """The descriptor when ``path`` is, or links through, this process's own stream
    (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``), else None."""
    p = path
    for _ in range(40):
        text = os.path.abspath(p)
        if text in ("/dev/stdout", "/dev/stderr"):
            return 1 if text.endswith("stdout") else 2
        for prefix in _STREAMS[2:]:
            if text.startswith(prefix) and text[len(prefix):].isdigit():
                return int(text[len(prefix):])
        if not p.is_symlink():
            return None
        p = p.parent / os.readlink(p)
    return None


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view):]


def _write_through(target: Path, raw: bytes) -> None:
    fd = os.open(target, os.O_WRONLY)
    try:
        _write_all(fd, raw)
    finally:
        os.close(fd)


def write_atomic(
    path: str | os.PathLike[str],
    data: str | bytes,
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``data`` to ``path`` whole or not at all, never over one of ``protect``.

    A regular file is written through a temporary file in the same folder, then renamed:
    a reader never sees half a file; on failure the old file (if any) is untouched and no
    temporary file is left. A symbolic link is followed (its target is written, the link
    stays); a character device, a FIFO or a process stream (``/dev/stdout``) is written
    through. ``protect`` lists the user's input files, which an output must not replace
    (compared as files, so links and other spellings of a path are caught). A new file gets
    the usual permissions (``0o666`` less the umask); a replaced file keeps its own.
    Raises :class:`FusionlabError` naming ``path`` when it cannot be written.
    """
    target = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        for p in protect:
            if Path(p).exists() and target.exists() and os.path.samefile(target, p):
                raise FusionlabError(f"{target}: refusing to overwrite an input file")
        stream = _stream_fd(target)
        if stream is not None:  # the process's own stdout/stderr: after what it printed so far
            sys.stdout.flush()
            sys.stderr.flush()
            _write_all(stream, raw)
            return target
        real = Path(os.path.realpath(target)) if target.is_symlink() else target
        if real.exists():
            mode = real.stat().st_mode
            if stat.S_ISDIR(mode):
                raise FusionlabError(f"{target}: is a folder")
            if not stat.S_ISREG(mode):  # a device or a FIFO
                _write_through(real, raw)
                return target
    except (OSError, ValueError) as exc:
        raise FusionlabError(f"{target}: cannot write ({getattr(exc, 'strerror', None) or exc})") from None
    folder = real.parent if str(real.parent) else Path(".")
    if not folder.is_dir():
        raise FusionlabError(f"{target}: folder {folder} does not exist")
    try:
        mode = real.stat().st_mode & 0o7777 if real.exists() else 0o666 & ~_current_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FusionlabError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FusionlabError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

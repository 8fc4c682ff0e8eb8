"""Writing outputs whole or not at all, and never over the user's inputs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fusionlab.errors import FusionlabError


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, protect: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader never sees half a file; on failure the old file (if any) is untouched.
    ``protect`` lists the user's input files, which an output must not replace.
    """
    target = Path(path)
    for p in protect:
        if Path(p).exists() and target.exists() and target.resolve() == Path(p).resolve():
            raise FusionlabError(f"{target}: refusing to overwrite an input file")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FusionlabError(f"{target}: folder {folder} does not exist")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

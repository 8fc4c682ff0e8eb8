"""Writing outputs whole or not at all, and never over the user's inputs.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(folder / "plan.json", "{}\\n").read_text()
'{}\\n'
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fusionlab.errors import FusionlabError


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(
    path: str | os.PathLike[str],
    data: str | bytes,
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename.

    A reader never sees half a file; on failure the old file (if any) is untouched and no
    temporary file is left behind. ``protect`` lists the user's input files, which an
    output must not replace (compared as files, so links and other spellings of the same
    path are caught). A new file gets the usual permissions (``0o666`` less the umask);
    a replaced file keeps its own. Raises :class:`FusionlabError` when the file cannot be
    written.
    """
    target = Path(path)
    if target.exists():
        for p in protect:
            if Path(p).exists() and os.path.samefile(target, p):
                raise FusionlabError(f"{target}: refusing to overwrite an input file")
        if target.is_dir():
            raise FusionlabError(f"{target}: is a folder")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FusionlabError(f"{target}: folder {folder} does not exist")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_current_umask()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FusionlabError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise FusionlabError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target

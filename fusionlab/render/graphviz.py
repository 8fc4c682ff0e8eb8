"""The one place that runs Graphviz's ``dot``: DOT text in, an SVG/PNG/PDF/DOT file out.

The output format follows the file's extension (:data:`FORMATS`). DOT output needs
nothing; the others need the ``dot`` program of the system package ``graphviz`` — when
it is missing, :func:`render_file` raises a one-line :class:`FusionlabError` that says
how to install it. Files are written whole or not at all (:func:`fusionlab.io.write_atomic`).

>>> output_format("figures/plan.svg"), output_format("plan.DOT")
('svg', 'dot')
>>> output_format("plan.jpg")
Traceback (most recent call last):
...
fusionlab.errors.FusionlabError: plan.jpg: unknown output format '.jpg' (use .svg, .png, .pdf, .dot or .gv)
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from fusionlab.errors import FusionlabError
from fusionlab.io import write_atomic

log = logging.getLogger(__name__)

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
"""File extension -> Graphviz output format (``dot``: the DOT text itself)."""

INSTALL_HINT = (
    "Graphviz's 'dot' program is not installed (it draws SVG, PNG and PDF; .dot output "
    "works without it): install the graphviz package, e.g. 'sudo apt-get install graphviz', "
    "'brew install graphviz', 'conda install graphviz' or https://graphviz.org/download/"
)

DOT_TIMEOUT_S = 120
"""How long ``dot`` may run before fusionlab gives up (huge graphs: use --focus or --match)."""


def output_format(path: str | os.PathLike[str]) -> str:
    """The Graphviz format for ``path``'s extension; FusionlabError for an unknown one."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise FusionlabError(
            f"{path}: unknown output format {suffix or '(none)'!r} (use .svg, .png, .pdf, .dot or .gv)"
        )
    return FORMATS[suffix]


def dot_program() -> str | None:
    """Path of Graphviz's ``dot``, or None when it is not on PATH."""
    return shutil.which("dot")


def run_dot(source: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` on ``source`` and return what it wrote (the only call of ``dot``).

    Raises FusionlabError when ``dot`` is missing, fails, or runs past
    :data:`DOT_TIMEOUT_S`.
    """
    exe = dot_program()
    if exe is None:
        raise FusionlabError(INSTALL_HINT)

    log.debug("running %s -T%s on %d bytes of DOT", exe, fmt, len(source))
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
            timeout=DOT_TIMEOUT_S, check=False,
        )
    except subprocess.TimeoutExpired:
        raise FusionlabError(
            f"Graphviz's dot ran for more than {DOT_TIMEOUT_S} s; draw part of the graph "
            "(--focus NODE --radius K, --match REGEX) or one box per layer (--compact)"
        ) from None
    except OSError as exc:
        raise FusionlabError(f"cannot run Graphviz's dot ({exe}): {exc.strerror or exc}") from exc
    errors = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        first = errors.splitlines()[0] if errors else f"exit code {proc.returncode}"
        raise FusionlabError(f"Graphviz's dot failed: {first}")
    for line in errors.splitlines():
        log.warning("dot: %s", line)
    return proc.stdout


def render_file(
    source: str,
    path: str | os.PathLike[str],
    *,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write DOT ``source`` to ``path`` in the format its extension names.

    ``.dot``/``.gv`` get the text as it is; ``.svg``, ``.png`` and ``.pdf`` are drawn by
    :func:`run_dot`. ``protect`` lists input files the output must not replace.
    """
    fmt = output_format(path)
    if fmt == "dot":
        return write_atomic(path, source, protect=protect)
    return write_atomic(path, run_dot(source, fmt), protect=protect)

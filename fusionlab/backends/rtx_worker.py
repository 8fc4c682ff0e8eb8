"""The subprocess that builds one engine for :func:`fusionlab.backends.rtx.build_actual`.

``python -m fusionlab.backends.rtx_worker REQUEST.json``. The build runs here, not in the
caller, because TensorRT-RTX 1.7 crashes (SIGSEGV) on some graphs inside its compiler
backend: a crash must cost a clear error, not the caller's process. Every builder message
is appended to the request's ``messages`` file as it arrives, one JSON array
``[severity, text]`` per line (so a crash keeps every message up to it, and no text can
break the framing); the ``result`` file is rewritten (whole) after each step: the builder's
label, then the build, then the engine inspector's JSON when the runtime works here (a
supported GPU; tried after the build, so its failure or crash never loses the build).
Exit code 0, or 2 with ``error`` in the result for a user error. Python's collector is
paused during the build (:func:`~fusionlab.backends.tensorrt.outside_gc`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from fusionlab.errors import FusionlabError
from fusionlab.io import read_text, write_atomic


def _writer(stream: TextIO) -> Any:
    def keep(severity: str, text: str) -> None:
        stream.write(json.dumps([severity, text]) + "\n")
        stream.flush()

    return keep


def run(request: dict[str, Any]) -> int:
    """Build as ``request`` says; write its messages and result files. Returns the exit code."""
    from fusionlab.backends.tensorrt import BuildOptions, build_engine, layer_information, load_backend

    result: dict[str, Any] = {"built": False}
    result_path = Path(request["result"])

    def save() -> None:
        write_atomic(result_path, json.dumps(result))

    with open(request["messages"], "w", encoding="utf-8") as messages:
        try:
            backend = load_backend(request["backend"], "building an engine")
            result.update(builder=backend.label, flavor=backend.caps.flavor, version=str(backend.caps.version))
            save()
            options = BuildOptions(
                precision=request.get("precision", "fp32"),
                shapes={k: tuple(v) for k, v in request.get("shapes", {}).items()},
                batch=request.get("batch"),
                workspace_mib=request.get("workspace_mib"),
                opt_level=request.get("opt_level"),
                timing_cache=request.get("timing_cache"),
                calib_data=request.get("calib_data"),
                calib_batches=request.get("calib_batches", 4),
                progress=sys.stderr if request.get("progress") else None,
                messages=_writer(messages),
            )
            engine = build_engine(request["model"], options, backend)
        except FusionlabError as exc:
            result["error"] = str(exc)
            save()
            return 2
    result.update(built=True, build_s=engine.build_s, precision=engine.precision, how=engine.how,
                  input_shapes={k: list(v) for k, v in engine.input_shapes.items()})
    if request.get("engine"):
        write_atomic(request["engine"], engine.data)
    save()
    if request.get("inspect"):
        try:
            info = layer_information(engine.data, backend)
        except Exception as exc:  # no usable runtime here (no supported GPU): the log is used
            result["inspector_error"] = (str(exc).splitlines() or [type(exc).__name__])[0]
        else:
            write_atomic(request["inspector"], info)
            result["inspector"] = request["inspector"]
        save()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m fusionlab.backends.rtx_worker REQUEST.json\n")
        return 2
    return run(json.loads(read_text(args[0])))


if __name__ == "__main__":
    sys.exit(main())

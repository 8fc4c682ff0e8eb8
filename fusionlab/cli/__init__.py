"""The ``fusionlab`` command line: one explicit list of subcommands.

Each module in ``COMMANDS`` defines ``register(subparsers)``, which adds its parser and
sets ``run`` (a function ``(args) -> int``). User errors (:class:`FusionlabError`) end as
one line on stderr with exit code 2 (under ``--debug`` the traceback comes first); a
file-system error (``OSError``) is treated the same way. Other exceptions are bugs: one
line and exit code 3, or the full traceback under ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from fusionlab import __version__
from fusionlab.errors import FusionlabError

COMMANDS = (
    "models",
    "inspect",
    "predict",
    "passes",
    "diff",
    "check",
    "build",
    "profile",
    "import_",
    "render",
    "figures",
    "calibrate",
    "execute",
)
"""Subcommand modules under ``fusionlab.cli``, in the order ``--help`` lists them."""

EXIT_OK, EXIT_EXPECTATION, EXIT_USAGE = 0, 1, 2
EXIT_BUG = 3
"""Exit code of an unexpected exception (a bug) when ``--debug`` is off."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"fusionlab: {' '.join(message.split())} (see --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full argument parser (every subcommand registered); with ``only`` (a command's
    name, as typed), just that subcommand: the parse of a command line that names it is the
    same, and the other command modules stay unimported (start-up time, issue 14)."""
    parser = _Parser(
        prog="fusionlab",
        description=(
            "Predict TensorRT's layer fusions from an ONNX model and check them against "
            "the real engine."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fusionlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        if only is None or _command_name(name) == only:
            module = importlib.import_module(f"fusionlab.cli.{name}")
            module.register(sub)
    return parser


def _command_name(module: str) -> str:
    """The command a module of :data:`COMMANDS` registers (``import_`` -> ``import``)."""
    return module.rstrip("_")


def _named_command(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` names, if it is one of :data:`COMMANDS`: the first argument
    that is not an option (the top-level options take no value)."""
    for arg in argv:
        if arg == "--" or not arg.startswith("-"):
            return arg if arg in {_command_name(m) for m in COMMANDS} else None
    return None


class _HeldBack(logging.Handler):
    """Keeps log records until the command ends: printed when it succeeds (exit 0 or 1),
    dropped when it ends with a user error, whose one line is then all that stderr holds."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < 1000:
            self.records.append(record)

    def print_all(self) -> None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(LOG_FORMAT))
        for record in self.records:
            stream.handle(record)
        self.records.clear()


LOG_FORMAT = "fusionlab: %(levelname)s: %(message)s"


def _logging(args: argparse.Namespace) -> _HeldBack | None:
    """Log to stderr: at once under ``--verbose``/``--debug``, else held back (see _HeldBack)."""
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, _HeldBack):
            root.removeHandler(h)
    logging.captureWarnings(True)  # numpy's RuntimeWarnings go the same way
    root.setLevel(level)
    if args.debug or args.verbose:
        logging.basicConfig(level=level, format=LOG_FORMAT)
        return None
    held = _HeldBack()
    root.addHandler(held)
    return held


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fusionlab`` script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_named_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        print("fusionlab: error: no command given (see --help)", file=sys.stderr)
        return EXIT_USAGE
    held = _logging(args)
    code = _run(args)
    if held is not None:
        logging.getLogger().removeHandler(held)
        if code != EXIT_USAGE:
            held.print_all()
    return code


_ENDS_WITH_EXIT = False
"""True while the console script runs: the process then ends with ``os._exit``."""
_LEFT_FOR_EXIT: list[object] = []


def leave_for_exit(*objects: object) -> None:
    """Keep ``objects`` alive until the process ends, when the console script runs.

    The command's graph and plans then go with the process (``os._exit``) instead of being
    freed one object at a time as the command returns (at 10,000 nodes about 0.06 s of
    ``predict``; benchmarks/bench_predict.py). Under :func:`main` called as a library
    (tests, scripts) this does nothing: their memory is freed as usual.
    """
    if _ENDS_WITH_EXIT:
        _LEFT_FOR_EXIT.extend(objects)


def script() -> NoReturn:
    """The ``fusionlab`` console script and ``python -m fusionlab``: :func:`main`, then end the
    process without tearing the interpreter down.

    Freeing a large model's graph, plans and protobufs one object at a time, and the last
    full collection, only to hand the memory back to the system a moment later took about
    0.2 s after ``predict`` on the 10,000-node Inception chain and over 1 s on the 100,000-node
    one (benchmarks/bench_predict.py). The streams are flushed and logging is shut down
    first, so nothing written is lost; argparse's exits (``--help``, usage errors) end the
    usual way.
    """
    global _ENDS_WITH_EXIT
    _ENDS_WITH_EXIT = True
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass  # the reader went away (``fusionlab ... | head``): what it read is what it wanted
    logging.shutdown()
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = args.run(args)
        return code
    except FusionlabError as exc:
        return _user_error(str(exc), args.debug)
    except MemoryError:
        return _user_error("out of memory: the input is too large for this machine", args.debug)
    except KeyboardInterrupt:
        print("fusionlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:  # the file system refused: the user can fix it
        where = f"{exc.filename}: " if exc.filename else ""
        return _user_error(f"{where}{exc.strerror or exc}", args.debug)
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"fusionlab: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
            "(a bug; run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG


def _user_error(message: str, debug: bool) -> int:
    """Print a user error as one line (after the traceback under ``--debug``)."""
    if debug:
        traceback.print_exc()
    one_line = " ".join(message.split())
    print(f"fusionlab: error: {one_line}", file=sys.stderr)
    return EXIT_USAGE

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
import sys
import traceback
from collections.abc import Sequence

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
        self.exit(EXIT_USAGE, f"fusionlab: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (every subcommand registered)."""
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
        module = importlib.import_module(f"fusionlab.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fusionlab`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="fusionlab: %(levelname)s: %(message)s")
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        code: int = args.run(args)
        return code
    except FusionlabError as exc:
        return _user_error(str(exc), args.debug)
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

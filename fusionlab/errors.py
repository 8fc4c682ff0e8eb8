"""The one exception type for user errors.

A :class:`FusionlabError` is something the user can fix (a bad file, a missing
dependency, an invalid expectation). The CLI prints it as one line and exits with code 2;
any other exception is a bug and keeps its traceback under ``--debug``.
"""

from __future__ import annotations


class FusionlabError(Exception):
    """A user error: printed as one line, exit code 2."""


def missing_extra(module: str, extra: str, what: str) -> FusionlabError:
    """The error for an optional dependency that is not installed.

    >>> str(missing_extra("tensorrt", "tensorrt", "building engines"))
    "building engines needs the 'tensorrt' module: pip install 'fusionlab[tensorrt]'"
    """
    return FusionlabError(f"{what} needs the '{module}' module: pip install 'fusionlab[{extra}]'")

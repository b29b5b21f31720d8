"""The project's own errors, and how stage scripts report them.

``ProjectError`` is anything the user can fix (a setting, a file, a download); stage scripts run
inside :func:`stage_errors`, which prints such an error as one line and exits non-zero, with no
traceback; a command's ``main`` returns :func:`exit_status` instead. Anything else is a bug and
keeps its traceback. A value put into a message goes through :func:`shown`, cut to a few hundred
characters (a 3 MB list in a params.yaml key otherwise became a 3 MB line), and the printed line
itself is cut at MESSAGE_LIMIT, for the messages that name a value some other way.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ProjectError(ValueError):
    """A problem in the user's settings or files; the message names the key or file."""


class ConfigError(ProjectError):
    """A setting in params.yaml (or an override) is missing or invalid; the message names the key."""


class DataError(ProjectError):
    """Bad input data or data settings, or a bad record file; the message names the file/key and
    what was expected. Here, at the bottom, so the report and the metrics raise it without
    importing the data layer."""


EXIT_CODE = 2
VALUE_LIMIT = 200
MESSAGE_LIMIT = 2000


def cut(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def shown(value: object, limit: int = VALUE_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters."""
    return cut(repr(value), limit)


@contextmanager
def stage_errors(stage: str) -> Iterator[None]:
    try:
        yield
    except ProjectError as err:
        raise SystemExit(_report(stage, err)) from None


def exit_status(command: str, main: Callable[[], int]) -> int:
    """``main()``'s exit status, or EXIT_CODE after ``<command>: error: <one line>``."""
    try:
        return main()
    except ProjectError as err:
        return _report(command, err)


def _report(stage: str, err: ProjectError) -> int:
    message = cut(" ".join(str(err).split()), MESSAGE_LIMIT)  # one line, whatever the message held
    print(f"{stage}: error: {message}", file=sys.stderr)
    return EXIT_CODE

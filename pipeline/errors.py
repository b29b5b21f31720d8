"""The project's own errors, and how stage scripts report them.

``ProjectError`` is anything the user can fix (a setting, a file, a download); stage scripts run
inside :func:`stage_errors`, which prints such an error as one line and exits non-zero, with no
traceback. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator


class ProjectError(ValueError):
    """A problem in the user's settings or files; the message names the key or file."""


class ConfigError(ProjectError):
    """A setting in params.yaml (or an override) is missing or invalid; the message names the key."""


class DataError(ProjectError):
    """Bad input data or data settings, or a bad record file; the message names the file/key and
    what was expected. Here, at the bottom, so the report and the metrics raise it without
    importing the data layer."""


EXIT_CODE = 2


@contextmanager
def stage_errors(stage: str) -> Iterator[None]:
    try:
        yield
    except ProjectError as err:
        message = " ".join(str(err).split())  # one line, whatever the message held
        print(f"{stage}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None

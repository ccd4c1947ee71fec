"""A user's mistake inside an asset, check or resource becomes a one-line `dg.Failure`.

The run stops with the error's own message as the Failure's description: the file, line and field
it names, no traceback (`from None` drops the chained one too). The message is the one the CLI would
print, and core builds those from paths, fields and counts, never from record text.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import dagster as dg

from ft_pipeline.errors import UserError


def one_line(message: str) -> str:
    """The message's first line: a description is read in a run's header, not as a report."""
    return (message.strip().splitlines() or [""])[0]


@contextmanager
def user_failure(*also: type[BaseException], shown: Callable[[str], str] = one_line) -> Iterator[None]:
    """Turns a UserError (and the exception types in `also`, for core errors that are a user's
    mistake where they are raised but not a UserError everywhere, such as a ValueError from a config
    class) into a one-line dg.Failure. `shown` rewrites the line first (the raw zone's file names
    leave it masked: core.data.source_names.shown)."""
    try:
        yield
    except (UserError, *also) as exc:
        raise dg.Failure(description=one_line(shown(str(exc)))) from None

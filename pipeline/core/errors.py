"""Errors a user can fix: each message names the file, line and field, or the config key.

Every command reports a :class:`UserError` as one line ``error: ...`` with exit status 2.
Anything else is a programming error and keeps its traceback.
"""

from __future__ import annotations

import difflib
import errno
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class UserError(Exception):
    """Base of every error the user can fix (bad input, bad config, missing model)."""


class InputError(UserError, ValueError):
    """Bad user input; the message names the file, line and field. Exit status 2."""

    def __init__(self, path: str | Path, message: str, line: int | None = None,
                 field: str | None = None) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field = str(path), line, field


class ConfigError(UserError, ValueError):
    """A configuration value that cannot work (the message names the config key)."""


def unknown_key(key: str, name: str, known: Iterable[str], what: str) -> ConfigError:
    """The error for config ``key`` naming an unknown ``name`` (a typo): it names the closest
    of the ``known`` names (difflib) and lists them when there are few."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = f" (known: {', '.join(known)})" if len(known) <= 12 else ""
    return ConfigError(f"{key}: unknown {what} {name!r}{hint}{listed}")


class ScoreError(UserError):
    """A metric value that cannot be right (NaN, infinite or outside the metric's range);
    the message names the metric, task and example, and the likely cause."""


class MissingModelError(UserError):
    """Neither predictions nor a usable checkpoint exist for a cell; says which key to set."""


class StorageError(UserError):
    """A file could not be written: disk full, no permission or a read-only file system."""


# errno values that mean "the storage refuses the write", not a bug
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM,
                            errno.EROFS})


def storage_error(exc: OSError, path: str | Path) -> StorageError | None:
    """The :class:`StorageError` naming the file (else ``path``) that ``exc`` could not write
    for lack of space or permission; None when ``exc`` is another error."""
    if exc.errno not in STORAGE_ERRNOS:
        return None
    reason = exc.strerror or os.strerror(exc.errno)
    return StorageError(f"cannot write {exc.filename or path}: {reason}")


@contextmanager
def reporting_storage_errors(path: str | Path) -> Iterator[None]:
    """Raise a :class:`StorageError` naming the file (else ``path``) when a write inside
    fails for lack of space or permission; other errors pass unchanged."""
    try:
        yield
    except OSError as exc:
        error = storage_error(exc, path)
        if error is None:
            raise
        raise error from None

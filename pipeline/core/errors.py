"""Errors a user can fix: each message names the file, line and field, or the config key.

Every command reports a :class:`UserError` as one line ``error: ...`` with exit status 2.
Anything else is a programming error and keeps its traceback.
"""

from __future__ import annotations

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


class MissingModelError(UserError):
    """Neither predictions nor a usable checkpoint exist for a cell; says which key to set."""

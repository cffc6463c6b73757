"""Errors a user can fix: each message names the file, line and field, or the config key."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
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


class ConfigError(ValueError):
    """A configuration value that cannot work (the message names the config key)."""

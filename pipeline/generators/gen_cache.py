"""Append-only stores of generated outputs.

An :class:`OutputStore` is a JSONL file of rows ``{"key", "id", "task", ...}``: ``key`` hashes
everything an output depends on (the generation key of the model and settings, the task
and the exact prompt), so a row is reused only for an identical request. Rows are appended
and flushed per batch.

Each row carries ``check``, a checksum of its other fields. A line that is cut short (an
interruption), is not valid UTF-8 or JSON, or whose checksum does not match (damaged on
disk, edited, or written before checksums existed) is ignored with one warning per file,
and its output is generated again. A store this process may not read is treated as empty
and left alone; a cache store that cannot be written (``optional``) is skipped with a
warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path

from pipeline.finetune.weights import digest

__all__ = ["OutputStore", "digest", "row_check"]

log = logging.getLogger(__name__)

CHECK = "check"  # the field holding a row's checksum


def row_check(row: dict) -> str:
    """Checksum of a row's fields other than ``check`` (16 hex digits)."""
    body = json.dumps({k: v for k, v in row.items() if k != CHECK}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def _parse_row(raw: bytes) -> dict | None:
    """The row of one line, or None when the line is damaged."""
    try:
        row = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(row, dict) and "key" in row and row.get(CHECK) == row_check(row):
        return row
    return None


class OutputStore:
    """Rows of one generation key kept in a JSONL file, looked up by their ``key``.

    ``optional``: a cache whose write failures (permissions, full disk) only warn.
    """

    def __init__(self, path: Path, optional: bool = False) -> None:
        self.path = Path(path)
        self.optional = optional
        self._write_failed = False  # an optional store warns about its first failure only

    def load(self) -> dict[str, dict]:
        """Every intact row by key (damaged lines are skipped, with one warning)."""
        rows: dict[str, dict] = {}
        try:
            with open(self.path, "rb") as fh:
                lines = [raw for raw in fh if raw.strip()]
        except FileNotFoundError:
            return rows
        except OSError as exc:  # no permission, a file where a folder should be, ...
            log.warning("cannot read %s (%s): its outputs are generated again, the file is "
                        "left as it is", self.path, exc.strerror or exc)
            return rows
        damaged = 0
        for raw in lines:
            row = _parse_row(raw)
            if row is None:
                damaged += 1
            else:
                rows[row["key"]] = row
        if damaged:
            log.warning("%s: %d damaged line(s) ignored (cut short, not valid JSON or a wrong "
                        "checksum); their outputs are generated again", self.path, damaged)
        return rows

    def append(self, rows: list[dict]) -> None:
        """Append ``rows`` (each with its ``check``) and flush them to disk, under an
        exclusive lock of the file.

        The lock keeps rows of concurrent jobs sharing the store from interleaving.
        """
        lines = [json.dumps({**r, CHECK: row_check(r)}, ensure_ascii=False) + "\n"
                 for r in rows]
        try:
            self._append_lines(lines)
        except OSError as exc:
            if not self.optional:
                raise
            if not self._write_failed:
                log.warning("cannot write to %s (%s): outputs are not cached", self.path,
                            exc.strerror or exc)
            self._write_failed = True

    def _append_lines(self, lines: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if fh.tell() and not self._ends_newline():
                    fh.write("\n")  # end the line an interruption cut short
                fh.writelines(lines)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _ends_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

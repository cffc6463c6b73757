"""Append-only stores of generated outputs, and checksums of checkpoint directories.

An :class:`OutputStore` is a JSONL file of rows ``{"key", "id", "task", ...}``: ``key`` hashes
everything an output depends on (the generation key of the model and settings, the task
and the exact prompt), so a row is reused only for an identical request. Rows are appended
and flushed per batch; a line cut short by an interruption is ignored on reading.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pipeline.core.io import atomic_write_text, file_sha256


def digest(*parts: Any) -> str:
    """sha256 (24 hex digits) of JSON-serialised ``parts``."""
    blob = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class OutputStore:
    """Rows of one generation key kept in a JSONL file, looked up by their ``key``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, dict]:
        """Every complete row by key (a truncated last line is skipped)."""
        rows: dict[str, dict] = {}
        if not self.path.exists():
            return rows
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and "key" in row:
                    rows[row["key"]] = row
        return rows

    def append(self, rows: list[dict]) -> None:
        """Append ``rows`` and flush them to disk, under an exclusive lock of the file.

        The lock keeps rows of concurrent jobs sharing the store from interleaving.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                if fh.tell() and not self._ends_newline():
                    fh.write("\n")  # end the line an interruption cut short
                fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _ends_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"


def directory_checksum(path: Path, memo_file: Path) -> str:
    """sha256 over the relative names and contents of every file under ``path``.

    Hashing multi-GB weights takes a while, so results are memoised in ``memo_file`` by the
    directory's (name, size, mtime) listing; a changed file is hashed again.
    """
    path = Path(path).resolve()
    files = sorted(p for p in path.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    listing = digest([(str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns)
                      for p in files])
    memo: dict[str, dict[str, str]] = {}
    if memo_file.exists():
        try:
            memo = json.loads(memo_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            memo = {}
    entry = memo.get(str(path))
    if entry and entry.get("listing") == listing:
        return entry["sha256"]
    checksum = digest([(str(p.relative_to(path)), file_sha256(p)) for p in files])
    memo[str(path)] = {"listing": listing, "sha256": checksum}
    atomic_write_text(memo_file, json.dumps(memo, indent=1, sort_keys=True) + "\n")
    return checksum

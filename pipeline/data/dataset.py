"""The in-memory dataset and the validation of records read from user files.

A record is a dict with a unique string ``id``, the input text (``article``) and one field
per task reference: ``summary`` and ``title`` (a string, or a list of strings for several
references), ``tags`` (a list of strings, or one comma-separated string) and ``type`` (a
string). ``meta`` (optional) holds attributes such as length used for slicing.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.errors import ConfigError
from pipeline.core.io import InputError, read_input_bytes, read_records
from pipeline.core.tasks import Task, get_task


@dataclass
class Dataset:
    """A training pool and a fixed test split."""

    name: str
    train: list[dict]
    test: list[dict]
    tasks: list[str]
    source: dict[str, Any] = field(default_factory=dict)
    # sha256 of the file the training records were parsed from (None: not one file); the
    # records are a function of those bytes and ``tasks``
    train_sha256: str | None = None

    def test_subset(self, limit: int | None) -> list[dict]:
        """The first ``limit`` test examples (all when ``limit`` is None); a limit below 1
        is a :class:`ConfigError` naming ``data.limit``."""
        if limit is None:
            return self.test
        if int(limit) < 1:
            raise ConfigError(f"data.limit={limit}: give a positive number of test examples "
                              "to score, or data.limit=null for all of them")
        return self.test[: int(limit)]


def as_reference_list(value: Any) -> list[str]:
    """One or several text references as a list of strings."""
    return [value] if isinstance(value, str) else list(value)


def parse_tags(value: Any) -> list[str]:
    """Tags from a list or from a string separated by commas or semicolons."""
    if isinstance(value, str):
        return [t.strip() for t in value.replace(";", ",").split(",") if t.strip()]
    return [str(t) for t in value]


def check_field(path: str | Path, line: int, task: Task, value: Any, role: str) -> Any:
    """Validate and normalise the value of a task field; ``role`` is reference/prediction."""
    name = task.field
    if value is None:
        raise InputError(path, f"{role} for task {task.name!r} is missing (null)", line, name)
    if task.kind == "text":
        if isinstance(value, str):
            return value
        if role == "reference" and isinstance(value, list) and value and all(
                isinstance(v, str) for v in value):
            return value
        want = "a string" if role == "prediction" else "a string or a non-empty list of strings"
        raise InputError(path, f"expected {want}, got {type(value).__name__}", line, name)
    if task.kind == "set":
        if isinstance(value, str) or (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value)):
            return sorted(set(parse_tags(value)))
        raise InputError(path, f"expected a list of strings, got {type(value).__name__}",
                         line, name)
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise InputError(path, f"expected a string label, got {type(value).__name__}", line, name)


def check_id(path: str | Path, line: int, record: dict, seen: dict[str, int]) -> str:
    """The record's id as a string; missing or duplicate ids raise InputError."""
    rid = record.get("id")
    if rid is None or (isinstance(rid, str) and not rid.strip()) or isinstance(rid, bool | float):
        raise InputError(path, "missing or invalid id (a non-empty string is required)",
                         line, "id")
    rid = str(rid)
    if rid in seen:
        raise InputError(path, f"duplicate id {rid!r} (first seen on line {seen[rid]})",
                         line, "id")
    seen[rid] = line
    return rid


# (path, sha256 of the bytes read, tasks) -> the validated records, pickled
_VALIDATED: OrderedDict[tuple, bytes] = OrderedDict()
_VALIDATED_MAX = 4  # distinct files kept


def read_split(path: str | Path, tasks: list[str]) -> tuple[list[dict], str]:
    """Read and validate dataset records (text references stay a string or a list), and
    the sha256 of the bytes they were parsed from.

    The cells of a multirun read the same files: the validated records are kept in this
    process keyed by that sha256, so a file is parsed and validated again whenever its
    content changes. Each call returns its own copy.
    """
    data = read_input_bytes(path)
    sha = hashlib.sha256(data).hexdigest()
    key = (str(path), sha, tuple(tasks))
    if key not in _VALIDATED:
        rows = check_records(path, read_records(path, data), tasks)
        _VALIDATED[key] = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        while len(_VALIDATED) > _VALIDATED_MAX:
            _VALIDATED.popitem(last=False)
    _VALIDATED.move_to_end(key)
    return pickle.loads(_VALIDATED[key]), sha


def check_records(path: str | Path, rows: Iterable[tuple[int, dict]], tasks: list[str],
                  require_all: bool = True) -> list[dict]:
    """Validate ``(line, record)`` pairs read from ``path`` (errors name it and the line)."""
    out: list[dict] = []
    seen: dict[str, int] = {}
    for line, rec in rows:
        rid = check_id(path, line, rec, seen)
        clean = {"id": rid, "article": str(rec.get("article") or ""),
                 "meta": rec.get("meta") if isinstance(rec.get("meta"), dict) else {}}
        for name in tasks:
            task = get_task(name)
            if task.field not in rec:
                if require_all:
                    raise InputError(path, f"reference for task {name!r} is missing", line,
                                     task.field)
                continue
            clean[task.field] = check_field(path, line, task, rec[task.field], "reference")
        out.append(clean)
    return out

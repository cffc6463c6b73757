"""Predictions of one cell: validation of loaded files and the ``predictions.jsonl`` format.

A prediction record has the example ``id`` and one field per task: ``summary`` and ``title``
(strings), ``tags`` (list of strings or a comma-separated string) and ``type`` (string).
An empty string is a valid (empty) prediction and is scored as such. Optional numeric
``human_<aspect>`` fields carry human judgments of the output (meta-evaluation); an optional
``raw`` object keeps a text generator's unparsed outputs (task -> text), not scored.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.io import InputError, read_records
from pipeline.core.tasks import get_task
from pipeline.data.dataset import check_field, check_id

HUMAN_PREFIX = "human_"
RAW_FIELD = "raw"


def human_scores(path: str | Path, line: int, rec: dict) -> dict[str, float]:
    """Optional per-output human judgments: numeric ``human_<aspect>`` fields, kept as is."""
    out: dict[str, float] = {}
    for key, value in rec.items():
        if not key.startswith(HUMAN_PREFIX) or value is None:
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            raise InputError(path, f"human score must be a number, got {value!r}", line,
                             key) from None
    return out


def raw_outputs(path: str | Path, line: int, rec: dict) -> dict[str, dict[str, str]]:
    """The optional ``raw`` field (task -> generated text), checked, as ``{"raw": ...}``."""
    raw = rec.get(RAW_FIELD)
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise InputError(path, "raw must be an object mapping task names to texts", line,
                         RAW_FIELD)
    return {RAW_FIELD: {str(k): v for k, v in raw.items()}}


def validate_predictions(rows: list[tuple[int, dict]], path: str | Path, tasks: list[str],
                         known_ids: list[str], wanted_ids: list[str]) -> list[dict]:
    """Check ids and task fields; return predictions for ``wanted_ids`` in that order.

    ``known_ids`` are all ids of the test split (an id outside it is an error);
    ``wanted_ids`` are those being scored (all of them must be present).
    """
    known = set(known_ids)
    seen: dict[str, int] = {}
    by_id: dict[str, dict] = {}
    for line, rec in rows:
        rid = check_id(path, line, rec, seen)
        if rid not in known:
            raise InputError(path, f"unknown id {rid!r}: not in the test split", line, "id")
        clean = {"id": rid}
        for name in tasks:
            task = get_task(name)
            if task.field not in rec:
                raise InputError(path, f"prediction for task {name!r} is missing", line,
                                 task.field)
            clean[task.field] = check_field(path, line, task, rec[task.field], "prediction")
        clean.update(human_scores(path, line, rec))
        clean.update(raw_outputs(path, line, rec))
        by_id[rid] = clean
    missing = [i for i in wanted_ids if i not in by_id]
    if missing:
        shown = ", ".join(repr(i) for i in missing[:5])
        raise InputError(path, f"{len(missing)} test example(s) have no prediction "
                               f"(first: {shown})", field="id")
    return [by_id[i] for i in wanted_ids]


def system_rows(rows: list[tuple[int, dict]], path: str | Path, column: str,
                system: str) -> list[tuple[int, dict]]:
    """The rows of one system in a long-format file (one row per system and example), with
    the system column dropped; no row for ``system`` is an :class:`InputError`."""
    out, seen = [], set()
    for line, rec in rows:
        if rec.get(column) is None:
            raise InputError(path, f"the system column {column!r} is missing or empty", line,
                             column)
        seen.add(str(rec[column]))
        if str(rec[column]) == system:
            out.append((line, {k: v for k, v in rec.items() if k != column}))
    if not out:
        shown = ", ".join(sorted(seen)[:10]) + (" ..." if len(seen) > 10 else "")
        raise InputError(path, f"no rows for system {system!r} (model.name) in column "
                               f"{column!r}; systems in the file: {shown}", field=column)
    return out


def load_predictions(path: str | Path, tasks: list[str], known_ids: list[str],
                     wanted_ids: list[str], system_column: str | None = None,
                     system: str | None = None) -> list[dict]:
    """Read a JSONL, CSV or parquet predictions file and validate it; with
    ``system_column``, only the rows whose column equals ``system``."""
    rows = read_records(path)
    if system_column:
        rows = system_rows(rows, path, system_column, str(system))
    return validate_predictions(rows, path, tasks, known_ids, wanted_ids)

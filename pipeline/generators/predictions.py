"""Predictions of one cell: validation of loaded files and the ``predictions.jsonl`` format.

A prediction record has the example ``id`` and one field per task: ``summary`` and ``title``
(strings), ``tags`` (list of strings or a comma-separated string) and ``type`` (string).
An empty string is a valid (empty) prediction and is scored as such. Optional numeric
``human_<aspect>`` fields carry human judgments of the output (meta-evaluation).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.io import InputError, read_records
from pipeline.core.tasks import get_task
from pipeline.data.dataset import check_field, check_id

HUMAN_PREFIX = "human_"


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
        by_id[rid] = clean
    missing = [i for i in wanted_ids if i not in by_id]
    if missing:
        shown = ", ".join(repr(i) for i in missing[:5])
        raise InputError(path, f"{len(missing)} test example(s) have no prediction "
                               f"(first: {shown})", field="id")
    return [by_id[i] for i in wanted_ids]


def load_predictions(path: str | Path, tasks: list[str], known_ids: list[str],
                     wanted_ids: list[str]) -> list[dict]:
    """Read a JSONL, CSV or parquet predictions file and validate it."""
    return validate_predictions(read_records(path), path, tasks, known_ids, wanted_ids)

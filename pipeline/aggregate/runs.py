"""Reading finished cells back: the inputs of the aggregate stage.

Finished cells are run folders with a ``manifest.json``; folders without one (a crashed or
running job) and folders whose files cannot be read are reported, never fatal.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.aggregate.outputs import run_dirs
from pipeline.core.io import InputError, read_json, read_jsonl, read_records
from pipeline.core.paths import OutputPaths, run_file
from pipeline.generators.predictions import HUMAN_PREFIX

log = logging.getLogger(__name__)

CELL_COLUMNS = ("model", "family", "params_b", "train_size", "n_examples", "perplexity")
PerExample = dict[tuple[str, int], pd.DataFrame]


@dataclass(frozen=True)
class ScoredExamples:
    """What a cell was scored on: the checksum of its scored test records (``inputs.test`` of
    its manifest; of its example ids when a manifest predates it) and, per example id, the
    checksum of that record (None when the manifest predates ``example_digests``)."""

    checksum: str
    digests: dict[str, str] | None


@dataclass
class SweepResults:
    """Per-cell values, per-example scores, what each cell was scored on, human judgments and
    the cells left out."""

    cells: pd.DataFrame
    per_example: PerExample = field(default_factory=dict)
    human: pd.DataFrame | None = None
    problems: list[str] = field(default_factory=list)
    scored: dict[tuple[str, int], ScoredExamples] = field(default_factory=dict)


def _cell_row(metrics: dict) -> dict:
    row = {k: metrics.get(k) for k in CELL_COLUMNS if k != "n_examples"}
    row["train_size"] = int(row["train_size"])
    for key in ("params_b", "perplexity"):
        row[key] = np.nan if row[key] is None else float(row[key])
    row.update(metrics["metrics"])
    return row


def _human_rows(pred_path: Path, model: str, train_size: int) -> list[dict]:
    rows = []
    for rec in read_jsonl(pred_path):
        scores = {k: v for k, v in rec.items() if k.startswith(HUMAN_PREFIX)}
        if scores:
            rows.append({"model": model, "train_size": train_size, "id": rec["id"], **scores})
    return rows


def load_runs(output_dir: str | Path) -> SweepResults:
    """Every finished cell under ``<output_dir>/runs``; unfinished ones go to ``problems``."""
    paths = OutputPaths(Path(output_dir))
    rows, per_example, human, problems, found = [], {}, [], [], {}
    for run_dir in run_dirs(paths):
        rel = run_dir.relative_to(paths.root)
        if not run_file(run_dir, "manifest").exists():
            problems.append(f"{rel}: unfinished (no manifest.json)")
            continue
        try:
            metrics = read_json(run_file(run_dir, "metrics"))
            row = _cell_row(metrics)
            owner = paths.run_dir(row["model"], row["train_size"])
            if owner != run_dir:
                problems.append(f"{rel}: its metrics.json is for model {row['model']!r} at "
                                f"train_size {row['train_size']}, whose run folder is "
                                f"{owner.relative_to(paths.root)} (a copied or renamed "
                                "folder?); move it there or re-run that cell")
                continue
            scores = pd.read_parquet(run_file(run_dir, "scores"))
            scored = _scored_examples(read_json(run_file(run_dir, "manifest")), scores)
            if metrics.get("human_fields"):
                human.extend(_human_rows(run_file(run_dir, "predictions"), row["model"],
                                         row["train_size"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{rel}: unreadable ({exc})")
            continue
        row["n_examples"] = len(scores)
        rows.append(row)
        per_example[(row["model"], row["train_size"])] = scores
        found[(row["model"], row["train_size"])] = scored
    cells = pd.DataFrame(rows)
    return SweepResults(cells, per_example, pd.DataFrame(human) if human else None, problems,
                        found)


def _scored_examples(manifest: dict, scores: pd.DataFrame) -> ScoredExamples:
    """:class:`ScoredExamples` of a cell from its manifest (and its scores' ids)."""
    checksum = (manifest.get("inputs") or {}).get("test")
    if not checksum:
        ids = "\n".join(sorted(scores["id"].astype(str)))
        checksum = "ids:" + hashlib.sha256(ids.encode()).hexdigest()[:24]
    digests = manifest.get("example_digests")
    return ScoredExamples(str(checksum), dict(digests) if isinstance(digests, dict) else None)


def load_table(path: str | Path) -> SweepResults:
    """A per-model table (CSV/JSONL/parquet) with model, family, params_b, train_size, metrics."""
    records = read_records(path)
    rows = []
    for line, rec in records:
        for key in ("model", "family", "params_b", "train_size"):
            if rec.get(key) in (None, ""):
                raise InputError(path, "required column is empty or missing", line, key)
        row = {}
        for key, value in rec.items():
            if key in ("model", "family"):
                row[key] = str(value)
                continue
            try:
                row[key] = np.nan if value in (None, "") else float(value)
            except (TypeError, ValueError):
                raise InputError(path, f"expected a number, got {value!r}", line, key) from None
        if not float(row["train_size"]).is_integer():
            raise InputError(path, "train_size must be an integer", line, "train_size")
        row["train_size"] = int(row["train_size"])
        row.setdefault("perplexity", np.nan)
        rows.append(row)
    cells = pd.DataFrame(rows)
    dup = cells.duplicated(["model", "train_size"], keep="first")
    if dup.any():
        line = records[int(np.flatnonzero(dup.to_numpy())[0])][0]
        raise InputError(path, "duplicate (model, train_size) row", line, "model")
    return SweepResults(cells)

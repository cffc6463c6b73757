"""The example explorer ``report/examples.html``: every offered cell's output for one test
example side by side, with that example's metric values.

The page itself is static (``examples.html`` beside this module, copied as is). Its data are
``<script>`` files, so it opens from ``file://`` with no server:
``examples/index.js`` (cells, tasks, every example's id, input, references, slice fields and
per-cell overall score) and ``examples/chunk-NNN.js`` (the outputs and metric values of
:data:`CHUNK_EXAMPLES` examples for every cell, a gzip-compressed JSON string in base64 that
the page unpacks with the browser's ``DecompressionStream`` when an example of it is opened).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline.aggregate.ranking import OVERALL, cell_label, example_overall
from pipeline.core.io import atomic_write_text, create_temp_dir, read_records
from pipeline.core.paths import OutputPaths, run_file
from pipeline.core.tasks import get_task
from pipeline.report.errors_table import unparsable_outputs
from pipeline.report.html import Section
from pipeline.report.slices import LENGTH, auto_bins, length_buckets, text_field
from pipeline.scoring.metrics import directions

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("examples.html")  # the static page, copied beside index.html
DATA_DIR = "examples"  # report/examples/{index.js, chunk-NNN.js}
CHUNK_EXAMPLES = 20  # examples per chunk file
SCALE = 1000  # metric values are stored as integers of value * SCALE (3 decimals)
SOURCE = "article"  # the record field the tasks are computed from
DEFAULT_MODELS = 24  # shown on opening: the best cell of each of the 24 best-ranked models
NEEDS_RUNS = ("The example explorer needs per-example data: this ranking was aggregated from a "
              "per-model table (`input=`), so there are no outputs to show. Run the sweep "
              "(`python -m pipeline.compare -m`) to get runs/<model>/<size>/.")


@dataclass
class Explorer:
    """The page's data: the index and one payload per chunk of examples."""

    index: dict[str, Any]
    chunks: list[dict[str, Any]]


def offered_cells(paths: OutputPaths, ranked: pd.DataFrame) -> pd.DataFrame:
    """The cells of the ranking with a finished run folder, in rank order (cells left out of
    the ranking are never offered: they were scored on other examples)."""
    done = [run_file(paths.run_dir(str(m), int(t)), "manifest").exists()
            for m, t in zip(ranked["model"], ranked["train_size"], strict=True)]
    return ranked[done].sort_values("rank", kind="stable").reset_index(drop=True)


def default_cells(cells: pd.DataFrame, limit: int = DEFAULT_MODELS) -> list[int]:
    """Positions of each model's best-ranked cell (one per model), in rank order; of the
    ``limit`` best-ranked models only, so that the list stays readable and quick to draw."""
    return [int(i) for i in cells.drop_duplicates("model").index[:limit]]


def _text(value: object) -> str:
    """An output or reference as display text (lists joined with ``, ``)."""
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(map(str, value))
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def references(value: object, kind: str) -> list[str]:
    """Every reference of one record field: a list of texts/labels is several references, a
    tag set is one (a list of tag sets is several)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, list | tuple):
        if kind == "set" and not any(isinstance(v, list | tuple | np.ndarray) for v in value):
            return [_text(value)]
        return [_text(v) for v in value]
    return [_text(value)]


def _labels(values: pd.Series) -> list[str]:
    return [_text(v) if _text(v) else "(none)" for v in values]


def slice_fields(examples: pd.DataFrame) -> dict[str, list[str]]:
    """``meta.*`` attributes as labels, plus length buckets of the source text."""
    fields = {c: _labels(examples[c]) for c in sorted(examples.columns) if c.startswith("meta.")}
    text = SOURCE if SOURCE in examples.columns else text_field(examples)
    if text is not None:
        words = examples[text].map(lambda v: len(v.split()) if isinstance(v, str) else 0)
        fields[LENGTH] = length_buckets(words, auto_bins(len(words), 1, 5)).tolist()
    return fields


@dataclass
class CellData:
    """One cell's per-example metric values and outputs, indexed by example id."""

    scores: pd.DataFrame
    outputs: dict[str, dict]
    raw: dict[tuple[str, str], str]


def read_cell(run_dir: Path, weights: dict[str, float]) -> CellData:
    """A cell's scores (with the per-example overall score), outputs and unparsed raw texts."""
    scores = pd.read_parquet(run_file(run_dir, "scores"))
    overall = example_overall(scores, weights)
    scores[OVERALL] = np.nan if overall is None else overall.to_numpy(dtype=float)
    records = [rec for _, rec in read_records(run_file(run_dir, "predictions"))]
    bad = unparsable_outputs(pd.DataFrame(records)) if records else pd.DataFrame()
    raw = {(str(r["id"]), str(r["task"])): str(r["raw output"]) for r in bad.to_dict("records")}
    scores = scores.drop_duplicates("id")
    scores.index = scores["id"].astype(str)
    return CellData(scores, {str(r["id"]): r for r in records}, raw)


def metric_rows(scores: pd.DataFrame, metrics: list[str]) -> dict[str, list[int | None]]:
    """Example id -> its values of ``metrics`` as integers of value * :data:`SCALE`."""
    values = np.round(scores.reindex(columns=metrics).to_numpy(dtype=float) * SCALE)
    table = [[int(v) if np.isfinite(v) else None for v in row] for row in values.tolist()]
    return dict(zip(scores.index, table, strict=True))


def _example_payload(rid: str, cells: list[CellData], values: list[dict[str, list]],
                     tasks: list[dict]) -> dict[str, Any]:
    """Outputs (``o``: text indices per task), raw texts (``r``: [cell, task, text]) and metric
    values (``m``) of every cell for one example; texts shared by cells are stored once."""
    texts: dict[str, int] = {}

    def ref(text: str) -> int:
        return texts.setdefault(text, len(texts))

    outputs, raws = [], []
    for c, cell in enumerate(cells):
        rec = cell.outputs.get(rid)
        outputs.append(None if rec is None else
                       [ref(_text(rec.get(t["field"]))) if t["field"] in rec else -1
                        for t in tasks])
        raws += [[c, k, ref(cell.raw[rid, t["name"]])] for k, t in enumerate(tasks)
                 if (rid, t["name"]) in cell.raw]
    return {"t": list(texts), "o": outputs, "r": raws, "m": [v.get(rid) for v in values]}


def assemble(cfg: DictConfig, paths: OutputPaths, ranked: pd.DataFrame,
             examples: pd.DataFrame | None) -> Explorer:
    """The explorer's index and chunks for the offered cells of ``ranked``."""
    cells = offered_cells(paths, ranked)
    if cells.empty:
        return Explorer({"note": NEEDS_RUNS, "cells": [], "examples": []}, [])
    higher = directions(cfg.tasks, cfg.metrics)
    weights = {k: float(v) for k, v in cfg.aggregate.weights.items()}
    data = [read_cell(paths.run_dir(str(m), int(t)), weights)
            for m, t in zip(cells["model"], cells["train_size"], strict=True)]
    scored = [c for c in dict.fromkeys(col for d in data for col in d.scores.columns)
              if c in higher]
    fields = {f for d in data for rec in list(d.outputs.values())[:1] for f in rec}
    tasks = [{"name": t, "field": get_task(t).field, "kind": get_task(t).kind,
              "metrics": [m for m in scored if m.startswith(f"{t}_")]} for t in cfg.tasks]
    tasks = [t for t in tasks if t["metrics"] or t["field"] in fields]  # the data's tasks
    metrics = [m for t in tasks for m in t["metrics"]] + [OVERALL]
    ids = list(dict.fromkeys(i for d in data for i in d.scores.index))
    if examples is not None:
        order = {str(i): n for n, i in enumerate(examples["id"])}
        ids.sort(key=lambda i: order.get(i, len(order)))
        recs = examples.assign(id=examples["id"].astype(str)).drop_duplicates("id")
        recs = recs.set_index("id").reindex(ids)
    else:
        recs = pd.DataFrame(index=ids)
    source = SOURCE if SOURCE in recs.columns else text_field(recs.reset_index(drop=True))
    refs = [[references(v, t["kind"]) for v in recs[t["field"]]] if t["field"] in recs
            else [[] for _ in ids] for t in tasks]
    values = [metric_rows(d.scores, metrics) for d in data]
    overall = [[v[i][-1] if i in v else None for i in ids] for v in values]
    index = {
        "note": None if examples is not None else
        "The test records were not found: inputs, references and slices are left out.",
        "scale": SCALE, "chunk_size": CHUNK_EXAMPLES,
        "n_chunks": -(-len(ids) // CHUNK_EXAMPLES), "source": source,
        "tasks": tasks,
        "metrics": [{"name": m, "higher": bool(higher.get(m, True))} for m in metrics],
        "cells": [{"label": cell_label(str(r.model), int(r.train_size)), "model": str(r.model),
                   "train_size": int(r.train_size), "rank": float(r.rank),
                   "overall": _finite(getattr(r, OVERALL))} for r in cells.itertuples()],
        "defaults": default_cells(cells), "n_models": int(cells["model"].nunique()),
        "slices": slice_fields(recs.reset_index(drop=True)) if examples is not None else {},
        "examples": [{"id": i, "input": _text(recs[source].iloc[n]) if source else "",
                      "refs": [r[n] for r in refs]} for n, i in enumerate(ids)],
        "overall": overall,
    }
    chunks = [{"start": s, "examples": [_example_payload(i, data, values, tasks)
                                        for i in ids[s:s + CHUNK_EXAMPLES]]}
              for s in range(0, len(ids), CHUNK_EXAMPLES)]
    return Explorer(index, chunks)


def _finite(value: object) -> float | None:
    return float(value) if pd.notna(value) and np.isfinite(float(value)) else None


def _json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def chunk_script(k: int, payload: dict[str, Any]) -> str:
    """``explorerChunk(k, "<base64 of gzip(JSON)>");``: one chunk file's text."""
    packed = gzip.compress(_json(payload).encode("utf-8"), compresslevel=9, mtime=0)
    return f'explorerChunk({k},"{base64.b64encode(packed).decode("ascii")}");\n'


def chunk_name(k: int) -> str:
    return f"chunk-{k:03d}.js"


def write_explorer(folder: Path, explorer: Explorer) -> Path:
    """Write ``examples.html`` and its ``examples/`` data folder into ``folder`` (the data
    folder is replaced as a whole, so no chunk of an older build is left behind)."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(create_temp_dir(folder, f".{DATA_DIR}."))
    try:
        (staging / "index.js").write_text(f"explorerIndex({_json(explorer.index)});\n",
                                          encoding="utf-8")
        for k, payload in enumerate(explorer.chunks):
            (staging / chunk_name(k)).write_text(chunk_script(k, payload), encoding="utf-8")
        target = folder / DATA_DIR
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    page = folder / PAGE.name
    atomic_write_text(page, PAGE.read_text(encoding="utf-8"))
    return page


def examples_section(cfg: DictConfig, paths: OutputPaths, ranked: pd.DataFrame,
                     examples: pd.DataFrame | None) -> Section:
    """Write the explorer beside ``index.html``; the index's section linking to it."""
    explorer = assemble(cfg, paths, ranked, examples)
    page = write_explorer(paths.report_dir, explorer)
    n_cells, n_ex = len(explorer.index["cells"]), len(explorer.index["examples"])
    log.info("wrote %s (%d cells x %d examples, %d chunks)", page, n_cells, n_ex,
             len(explorer.chunks))
    if not n_cells:
        return Section("Examples", NEEDS_RUNS)
    reading = (f"examples.html shows the outputs of every ranked cell ({n_cells}) for each of "
               f"the {n_ex} test examples side by side, with their metric values; sort by where "
               "the cells disagree most or where one cell does worst.")
    return Section("Examples", reading, ['<p><a href="examples.html">Open the example explorer'
                                         "</a> (opens offline; j/k move between examples)</p>"])

"""The aggregate stage: every finished cell under ``output_dir`` -> ranking, tables, analysis.

    python -m pipeline.aggregate                         # reads <output_dir>/runs
    python -m pipeline.aggregate output_dir=/tmp/x
    python -m pipeline.aggregate input=metrics.csv       # a per-model table instead

It needs no multirun callback: run it any time; unfinished or unreadable cells are listed
and left out. Writes ``model_comparison.csv``, ``tables/*.csv`` (+ ``.md``) and
``analysis.md`` under ``output_dir``, as one set (:mod:`pipeline.aggregate.publish`); when
its inputs are unchanged since that set was published it keeps it (``force=true`` redoes it).
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from pipeline.aggregate.outputs import LOCK, inputs_digest, published, remove_strays
from pipeline.aggregate.tracking import track_sweep
from pipeline.core.errors import ConfigError, InputError, unknown_key
from pipeline.core.locking import exclusive
from pipeline.core.paths import OutputPaths
from pipeline.scoring.metrics import directions

if TYPE_CHECKING:
    from pipeline.aggregate.runs import SweepResults

log = logging.getLogger(__name__)
SHOWN = ("rank", "rank_group", "model", "train_size", "params_b", "overall_score")


def usable_weights(cfg: DictConfig, results: SweepResults) -> dict[str, float]:
    """``aggregate.weights`` restricted to columns present in the results; weighting a
    column that no cell has per example (a corpus-level metric) is a ConfigError."""
    weights = {k: float(v) for k, v in cfg.aggregate.weights.items()}
    present = {k: v for k, v in weights.items() if k in results.cells.columns}
    absent = sorted(set(weights) - set(present))
    if absent:
        log.warning("aggregate.weights: no results for %s; the overall score uses %s",
                    ", ".join(absent), ", ".join(sorted(present)) or "nothing")
    frames = list(results.per_example.values())
    for col, weight in present.items():
        if weight > 0 and frames and not any(col in frame.columns for frame in frames):
            raise ConfigError(
                f"aggregate.weights.{col}: {col} is a corpus-level metric (one value per "
                "cell, no per-example values), so it cannot enter the per-example overall "
                "score, its confidence intervals and paired tests; weight per-example "
                "metrics only")
    if not present and "overall_score" not in results.cells.columns:
        raise ConfigError("aggregate.weights: none of the weighted columns "
                          f"({', '.join(sorted(weights))}) is in the results")
    return present


def aggregate(cfg: DictConfig) -> dict[str, Path]:
    """Rank the cells and write every table; returns the written paths by name."""
    with exclusive(Path(cfg.output_dir) / LOCK, "aggregate of this output_dir"):
        return _aggregate(cfg)


def _aggregate(cfg: DictConfig) -> dict[str, Path]:
    paths = OutputPaths(Path(cfg.output_dir))
    higher = directions(cfg.tasks, cfg.metrics)
    for key in sorted(set(cfg.aggregate.weights) - set(higher)):  # a typo must not pass
        raise unknown_key(f"aggregate.weights.{key}", key, higher, "column")
    settings = {"aggregate": OmegaConf.to_container(cfg.aggregate, resolve=True),
                "tasks": OmegaConf.to_container(cfg.tasks, resolve=True), "directions": higher}
    inputs = inputs_digest(paths.root, settings, cfg.input)
    remove_strays(paths.root)  # what a killed aggregate left, first: it may hold the set
    if not cfg.force and _unchanged(paths, inputs):
        _print_top(paths.comparison_csv)
        track_sweep(cfg)  # tracking=mlflow: update the sweep's runs
        return {"model_comparison": paths.comparison_csv, "analysis": paths.analysis_md,
                **{p.stem: p for p in sorted(paths.tables.glob("*.csv"))}}
    from pipeline.aggregate.comparable import comparable
    from pipeline.aggregate.publish import write_all  # heavy (pandas, scipy): after the check
    from pipeline.aggregate.runs import CELL_COLUMNS, load_runs, load_table

    results = load_table(cfg.input) if cfg.input else load_runs(paths.root)
    for problem in results.problems:
        log.warning("left out: %s", problem)
    chosen = comparable(results, cfg.aggregate.examples)
    results = chosen.results
    for cell in chosen.excluded.itertuples():
        log.warning("left out of the ranking: %s@%s (%d examples): %s", cell.model,
                    cell.train_size, cell.n_examples, cell.reason)
    if results.cells.empty:
        raise ConfigError(f"no finished cells under {paths.runs}: run "
                          "`python -m pipeline.compare -m` first, or give input=<table.csv>")
    metric_cols = [c for c in results.cells.columns if c in higher]
    unknown = [c for c in results.cells.columns
               if c not in higher and c not in (*CELL_COLUMNS, "overall_score")]
    if unknown:
        log.warning("ignoring columns with no registered direction: %s", ", ".join(unknown))
        results.cells = results.cells.drop(columns=unknown)
    log.info("aggregating %d cells, %d metric columns", len(results.cells), len(metric_cols))
    agg = cfg.aggregate
    written = write_all(paths.root, results.cells, results.per_example, higher,
                        usable_weights(cfg, results), human=results.human,
                        n_boot=agg.n_boot, seed=agg.seed, alpha=agg.alpha,
                        max_pairs=agg.max_pairs, inputs=inputs,
                        min_effect=agg.min_effect, comparable=chosen,
                        extrapolate_to=agg.extrapolate_to)
    _print_top(paths.comparison_csv)
    track_sweep(cfg)
    return written


def _unchanged(paths: OutputPaths, inputs: str) -> bool:
    """Whether the published set was made from exactly these inputs (and is intact)."""
    try:
        stamp = published(paths.root)
    except InputError as exc:
        log.warning("published aggregate set is not intact (%s); recomputing", exc)
        return False
    if stamp is None or stamp.get("inputs") != inputs:
        return False
    log.info("aggregate: inputs unchanged since set %s (%d cells; cell files, config and code "
             "content-checked): kept, not recomputed (force=true recomputes)",
             stamp["run_id"], stamp["n_cells"])
    return True


def _print_top(csv_path: Path, n: int = 10) -> None:
    """Print the first ``n`` rows of ``model_comparison.csv`` (numbers to 6 decimals)."""
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols = [c for c in SHOWN if rows and c in rows[0]]
    table = [cols] + [[_shown(row[c]) for c in cols] for row in rows[:n]]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    print(f"\nTop {min(n, len(rows))} of {len(rows)} cells ({csv_path}):")
    for line in table:
        print(" " + "  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)))


def _shown(value: str) -> str:
    """A CSV value as printed: integers as they are, other numbers to 6 decimals."""
    if not value:
        return "NaN"
    try:
        int(value)
        return value
    except ValueError:
        pass
    try:
        return f"{float(value):.6f}"
    except ValueError:
        return value

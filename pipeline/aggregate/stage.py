"""The aggregate stage: every finished cell under ``output_dir`` -> ranking, tables, analysis.

    python -m pipeline.aggregate                         # reads <output_dir>/runs
    python -m pipeline.aggregate output_dir=/tmp/x
    python -m pipeline.aggregate input=metrics.csv       # a per-model table instead

It needs no multirun callback: run it any time; unfinished or unreadable cells are listed
and left out. Writes ``model_comparison.csv``, ``tables/*.csv`` (+ ``.md``) and
``analysis.md`` under ``output_dir``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from pipeline.aggregate.publish import write_all
from pipeline.aggregate.runs import CELL_COLUMNS, SweepResults, load_runs, load_table
from pipeline.core.errors import ConfigError
from pipeline.core.paths import OutputPaths
from pipeline.scoring.metrics import directions

log = logging.getLogger(__name__)
SHOWN = ("rank", "rank_group", "model", "train_size", "params_b", "overall_score")


def usable_weights(cfg: DictConfig, results: SweepResults) -> dict[str, float]:
    """``aggregate.weights`` restricted to columns present in the results."""
    weights = {k: float(v) for k, v in cfg.aggregate.weights.items()}
    present = {k: v for k, v in weights.items() if k in results.cells.columns}
    absent = sorted(set(weights) - set(present))
    if absent:
        log.warning("aggregate.weights: no results for %s; the overall score uses %s",
                    ", ".join(absent), ", ".join(sorted(present)) or "nothing")
    if not present and "overall_score" not in results.cells.columns:
        raise ConfigError("aggregate.weights: none of the weighted columns "
                          f"({', '.join(sorted(weights))}) is in the results")
    return present


def aggregate(cfg: DictConfig) -> dict[str, Path]:
    """Rank the cells and write every table; returns the written paths by name."""
    paths = OutputPaths(Path(cfg.output_dir))
    results = load_table(cfg.input) if cfg.input else load_runs(paths.root)
    for problem in results.problems:
        log.warning("left out: %s", problem)
    if results.cells.empty:
        raise ConfigError(f"no finished cells under {paths.runs}: run "
                          "`python -m pipeline.compare -m` first, or give input=<table.csv>")
    higher = directions(cfg.tasks)
    metric_cols = [c for c in results.cells.columns if c in higher]
    unknown = [c for c in results.cells.columns
               if c not in higher and c not in (*CELL_COLUMNS, "overall_score")]
    if unknown:
        log.warning("ignoring columns with no registered direction: %s", ", ".join(unknown))
        results.cells = results.cells.drop(columns=unknown)
    log.info("aggregating %d cells, %d metric columns", len(results.cells), len(metric_cols))
    agg = cfg.aggregate
    written = write_all(paths.root, results.cells, results.per_example, higher,
                        usable_weights(cfg, results), human=results.human, margin=agg.margin,
                        n_boot=agg.n_boot, seed=agg.seed, alpha=agg.alpha)
    _print_top(paths.comparison_csv)
    return written


def _print_top(csv_path: Path, n: int = 10) -> None:
    import pandas as pd

    ranked = pd.read_csv(csv_path)
    cols = [c for c in SHOWN if c in ranked.columns]
    print(f"\nTop {min(n, len(ranked))} of {len(ranked)} cells ({csv_path}):")
    print(ranked[cols].head(n).to_string(index=False))

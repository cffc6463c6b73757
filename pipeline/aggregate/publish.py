"""Write the ranked table, every summary table and ``analysis.md`` for one sweep."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipeline.aggregate import tables as tb
from pipeline.aggregate.analysis import write_analysis_md
from pipeline.aggregate.ranking import (
    PerExample,
    adjacent_significance,
    pairwise_matrix,
    rank_cells,
)
from pipeline.core.io import write_csv, write_table
from pipeline.core.paths import OutputPaths


def build_tables(ranked: pd.DataFrame, cells: pd.DataFrame, per_example: PerExample,
                 higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                 human: pd.DataFrame | None = None, margin: float = 0.01, n_boot: int = 1000,
                 seed: int = 0, alpha: float = 0.05) -> dict[str, pd.DataFrame]:
    """All summary tables by file stem (``significance`` excluded, see :func:`write_all`)."""
    out = {
        "efficiency": tb.efficiency(ranked),
        "scaling": tb.scaling(ranked),
        "train_size_summary": tb.train_size_summary(ranked),
        "family_comparison": tb.family_comparison(ranked, higher_is_better),
        "task_leaders": tb.task_leaders(ranked, higher_is_better),
        "factor_correlations": tb.factor_correlations(ranked),
        "metric_correlations": tb.metric_correlations(ranked, higher_is_better),
        "recommendations": tb.recommendations(ranked, margin, alpha),
        "pairwise_pvalues": pairwise_matrix(cells, per_example, higher_is_better, weights,
                                            n_boot, seed, "holm", alpha),
    }
    if human is not None:
        out["human_correlations"] = tb.human_correlations(per_example, ranked, human, weights)
    return out


def write_all(out_dir: Path, cells: pd.DataFrame, per_example: PerExample,
              higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
              human: pd.DataFrame | None = None, margin: float = 0.01, n_boot: int = 1000,
              seed: int = 0, alpha: float = 0.05) -> dict[str, Path]:
    """Write ``model_comparison.csv``, ``tables/<name>.csv`` + ``.md`` and ``analysis.md``.

    Returns the written CSV/Markdown paths by name (``model_comparison``, each table stem,
    ``analysis``).
    """
    out_dir = Path(out_dir)
    ranked = rank_cells(cells, per_example, higher_is_better, weights, n_boot, seed, alpha)
    significance = adjacent_significance(cells, per_example, higher_is_better, weights, n_boot,
                                         seed, alpha)
    tables = build_tables(ranked, cells, per_example, higher_is_better, weights, human, margin,
                          n_boot, seed, alpha)
    layout = OutputPaths(out_dir)
    paths = {"model_comparison": layout.comparison_csv}
    write_csv(paths["model_comparison"], ranked)
    for name, frame in {**tables, "significance": significance}.items():
        paths[name] = layout.tables / f"{name}.csv"
        write_table(paths[name], frame)
    keys = zip(ranked["model"], ranked["train_size"], strict=True)
    n_examples = [len(per_example[k]) for k in keys if k in per_example]
    paths["analysis"] = layout.analysis_md
    write_analysis_md(ranked, tables, significance, paths["analysis"], alpha=alpha,
                      n_examples=n_examples)
    return paths

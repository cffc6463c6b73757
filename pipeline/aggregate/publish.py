"""Write the ranked table, every summary table and ``analysis.md`` for one sweep, as one set.

The set (``model_comparison.csv``, ``tables/``, ``analysis.md`` and the stamp
``aggregate.json``) is written into a staging folder that then replaces
``<output_dir>/aggregate/`` as a whole (:mod:`pipeline.core.staging`); the documented paths
are symbolic links into it (:mod:`pipeline.aggregate.outputs`). A run killed while writing
leaves the previous set complete and untouched; readers never see a new CSV beside old
tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipeline.aggregate import tables as tb
from pipeline.aggregate.analysis import untested_note, write_analysis_md
from pipeline.aggregate.comparable import Comparable
from pipeline.aggregate.examples import Examples
from pipeline.aggregate.learning_curves import learning_curves
from pipeline.aggregate.manifest_summary import read_provenance
from pipeline.aggregate.outputs import SET_DIR, link_set, remove_strays, write_stamp
from pipeline.aggregate.ranking import (
    OVERALL,
    PerExample,
    adjacent_significance,
    example_overall,
    overall_family,
    pairwise_tests,
    pvalue_matrix,
    rank_cells,
    sort_cells,
    sweep_examples,
)
from pipeline.aggregate.significance import FamilyTests
from pipeline.core.io import (
    atomic_write_text,
    write_csv,
    write_table,
)
from pipeline.core.paths import OutputPaths
from pipeline.core.staging import staged


def build_tables(ranked: pd.DataFrame, cells: pd.DataFrame, per_example: PerExample,
                 higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                 human: pd.DataFrame | None = None, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05, max_pairs: int | None = None,
                 examples: Examples | None = None, family: FamilyTests | None = None,
                 min_effect: float = 0.0,
                 extrapolate_to: int | None = None) -> dict[str, pd.DataFrame]:
    """All summary tables by file stem (``significance`` excluded, see :func:`write_all`).

    ``pairwise_pvalues`` is the matrix of the cells whose every pair was tested;
    ``pairwise_tests`` lists every test of the overall score's family (raw and Holm-adjusted
    p-values, bounds); ``learning_curves`` and ``learning_curve_bands`` the per-model fits of
    :mod:`pipeline.aggregate.learning_curves`. ``family`` and ``examples`` are computed when
    not given.
    """
    examples = examples or sweep_examples(per_example, higher_is_better, weights)
    tests, top = pairwise_tests(cells, per_example, higher_is_better, weights, n_boot, seed,
                                alpha, max_pairs, examples, family)
    x = examples.matrix(ranked, OVERALL) if per_example else None
    out = {
        "recommendations": tb.recommendations(ranked, x, min_effect, n_boot, seed, alpha),
        "efficiency": tb.efficiency(ranked),
        "scaling": tb.scaling(ranked),
        "train_size_summary": tb.train_size_summary(ranked),
        "family_comparison": tb.family_comparison(ranked, higher_is_better),
        "task_leaders": tb.task_leaders(ranked, higher_is_better),
        "factor_correlations": tb.factor_correlations(ranked),
        "metric_correlations": tb.metric_correlations(ranked, higher_is_better),
        "pairwise_pvalues": pvalue_matrix(tests, top),
        "pairwise_tests": tests,
    }
    out["learning_curves"], out["learning_curve_bands"] = learning_curves(
        ranked, _overall_by_id(per_example, weights) or None, min_effect, extrapolate_to,
        n_boot, seed, alpha)
    if human is not None:
        out["human_correlations"] = tb.human_correlations(per_example, ranked, human, weights,
                                                          n_boot, seed, alpha)
    return out


def _overall_by_id(per_example: PerExample,
                   weights: Mapping[str, float]) -> dict[tuple[str, int], pd.Series]:
    """Each cell's per-example overall score indexed by example id (cells without one left
    out)."""
    out = {}
    for key, frame in per_example.items():
        overall = example_overall(frame, weights)
        if overall is not None:
            out[key] = pd.Series(overall.to_numpy(dtype=float),
                                 index=frame["id"].astype(str))
    return out


def write_all(out_dir: Path, cells: pd.DataFrame, per_example: PerExample,
              higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
              human: pd.DataFrame | None = None, n_boot: int = 1000,
              seed: int = 0, alpha: float = 0.05, max_pairs: int | None = None,
              inputs: str = "", min_effect: float = 0.0, comparable: Comparable | None = None,
              extrapolate_to: int | None = None) -> dict[str, Path]:
    """Publish ``model_comparison.csv``, ``tables/<name>.csv`` + ``.md`` and ``analysis.md``
    under ``out_dir`` as one set (see the module docstring), stamped with ``inputs`` (the
    digest of what was aggregated). ``comparable`` says which cells were left out of the
    ranking (``tables/excluded_cells.csv``) and what the ranked cells were scored on.

    Returns the written CSV/Markdown paths by name (``model_comparison``, each table stem,
    ``analysis``), as their documented paths under ``out_dir``.
    """
    out_dir = Path(out_dir)
    examples = sweep_examples(per_example, higher_is_better, weights)
    ordered = sort_cells(cells, higher_is_better, weights)
    family = overall_family(ordered, examples.matrix(ordered, OVERALL), n_boot, seed, alpha,
                            max_pairs)
    ranked = rank_cells(cells, per_example, higher_is_better, weights, n_boot, seed, alpha,
                        examples, family)
    significance = adjacent_significance(cells, per_example, higher_is_better, weights, n_boot,
                                         seed, alpha, examples, family)
    tables = build_tables(ranked, cells, per_example, higher_is_better, weights, human,
                          n_boot, seed, alpha, max_pairs, examples, family, min_effect,
                          extrapolate_to)
    if comparable is not None and len(comparable.excluded):
        tables["excluded_cells"] = comparable.excluded
    remove_strays(out_dir)
    with staged(out_dir / SET_DIR) as stage:
        layout = OutputPaths(stage)
        written = {"model_comparison": layout.comparison_csv}
        write_csv(written["model_comparison"], ranked)
        for name, frame in {**tables, "significance": significance}.items():
            written[name] = layout.tables / f"{name}.csv"
            write_table(written[name], frame)
            if (note := untested_note(name, frame)) is not None:  # not an empty table
                atomic_write_text(written[name].with_suffix(".md"), note)
        written["analysis"] = layout.analysis_md
        keys = zip(ranked["model"], ranked["train_size"], strict=True)
        write_analysis_md(ranked, tables, significance, written["analysis"], alpha=alpha,
                          min_effect=min_effect,
                          examples_note=comparable.note if comparable else "",
                          provenance=read_provenance(out_dir, keys))
        write_stamp(stage, inputs, len(ranked))
    link_set(out_dir)
    return {name: out_dir / path.relative_to(stage) for name, path in written.items()}

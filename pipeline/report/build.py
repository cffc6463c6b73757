"""Assemble ``<output_dir>/report/index.html`` from the aggregate outputs and one cell's files."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from pipeline.aggregate.analysis import RULE
from pipeline.aggregate.manifest_summary import provenance_lines, read_provenance
from pipeline.aggregate.outputs import published
from pipeline.aggregate.ranking import OVERALL, cell_label, example_overall, metric_columns
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.io import read_csv, read_json, read_records
from pipeline.core.paths import OutputPaths, run_file
from pipeline.report import sweep_charts as sc
from pipeline.report.bertscore_suite import bertscore_sections
from pipeline.report.decision import excluded_section, recommendation_section
from pipeline.report.errors_table import error_section, unparsable_section
from pipeline.report.examples_page import examples_section
from pipeline.report.html import Section, export_images, write_report
from pipeline.report.learning_chart import learning_sections
from pipeline.report.slices import resolve, slice_section
from pipeline.report.style import fmt
from pipeline.scoring.metrics import directions

log = logging.getLogger(__name__)


def load_ranked(paths: OutputPaths) -> pd.DataFrame:
    """``model_comparison.csv``; a clear error when aggregate has not run yet, or when the
    published set of aggregate outputs is not intact (checked against its stamp)."""
    path = paths.comparison_csv
    if not path.exists():
        raise InputError(path, "not found: run `python -m pipeline.aggregate "
                               f"output_dir={paths.root}` first")
    published(paths.root)
    ranked = read_csv(path)
    missing = {"rank", "rank_group", "model", "family", "train_size", OVERALL} - set(ranked)
    if ranked.empty or missing:
        raise InputError(path, f"not a ranking (missing {sorted(missing)} or no rows); rerun "
                               "`python -m pipeline.aggregate`")
    return ranked


def choose_cell(ranked: pd.DataFrame, model: str | None,
                train_size: int | None) -> tuple[str, int]:
    """The cell shown in detail: ``report.model``/``report.train_size`` or the top cell."""
    rows = ranked if model is None else ranked[ranked["model"] == model]
    if train_size is not None:
        rows = rows[rows["train_size"] == int(train_size)]
    if rows.empty:
        cells = ", ".join(cell_label(m, t) for m, t in
                          zip(ranked["model"], ranked["train_size"], strict=True))
        raise ConfigError(f"report.model={model} report.train_size={train_size}: no such "
                          f"cell in the ranking (cells: {cells})")
    return str(rows.iloc[0]["model"]), int(rows.iloc[0]["train_size"])


def load_examples(paths: OutputPaths, run_dir: Path) -> pd.DataFrame | None:
    """The test records of a cell's dataset, ``meta`` flattened to ``meta.<key>`` columns."""
    data = read_json(run_file(run_dir, "manifest")).get("config", {}).get("data", {})
    test = (data.get("options") or {}).get("test")
    path = Path(test) if test else paths.data_dir(data.get("name", "")) / "test.jsonl"
    if not path.exists():
        log.warning("test records not found at %s: slices and references are left out", path)
        return None
    return pd.json_normalize([rec for _, rec in read_records(path)], sep=".")


def cell_scores(run_dir: Path, weights: dict[str, float]) -> pd.DataFrame:
    """Per-example scores of a cell, with the per-example overall score when it can be formed."""
    scores = pd.read_parquet(run_file(run_dir, "scores"))
    present = {k: v for k, v in weights.items() if k in scores.columns}
    overall = example_overall(scores, present) if present else None
    return scores if overall is None else scores.assign(**{OVERALL: overall})


def sweep_sections(cfg: DictConfig, paths: OutputPaths, ranked: pd.DataFrame) -> list[Section]:
    """Leaderboard, per-task bars, perplexity, scaling, Pareto, correlations, significance."""
    rep = cfg.report
    higher = directions(cfg.tasks, cfg.metrics)
    metrics = metric_columns(ranked, higher)
    weighted = [c for c in cfg.aggregate.weights if c in ranked.columns]
    sections = [sc.leaderboard(ranked, weighted)]
    for task in cfg.tasks:
        cols = [c for c in metrics if c.startswith(f"{task}_")]
        if cols:
            sections.append(sc.task_bars(ranked, task, cols, weighted, int(rep.top_n)))
    pvalues = _optional_csv(paths.tables / "pairwise_pvalues.csv")
    sections += [sc.perplexity(ranked, int(rep.top_n)), sc.scaling_chart(ranked, int(rep.top_n)),
                 sc.pareto_chart(ranked), sc.correlation_heatmap(ranked, higher),
                 sc.significance_matrix(pvalues, float(cfg.aggregate.alpha), ranked,
                                        int(rep.max_matrix),
                                        _optional_csv(paths.tables / "pairwise_tests.csv"))]
    sections += learning_sections(ranked, _optional_csv(paths.tables / "learning_curves.csv"),
                                  _optional_csv(paths.tables / "learning_curve_bands.csv"),
                                  float(cfg.aggregate.alpha))
    human = sc.human_section(_optional_csv(paths.tables / "human_correlations.csv"))
    return sections + ([human] if human is not None else [])


def _optional_csv(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return read_csv(path)
    except pd.errors.EmptyDataError:
        return None


def provenance_section(prov: dict[str, str]) -> Section:
    """The provenance box: encoder, layer, idf, rescaling, versions, hashes, checksums."""
    if not prov:
        return Section("Provenance", provenance_lines(prov)[0])
    rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                   for k, v in prov.items())
    reading = ("What produced these numbers, from the cells' manifest.json. BERTScore values "
               "and their quality bands depend on the encoder, layer, idf and rescaling.")
    return Section("Provenance", reading, [f'<dl class="provenance">{rows}</dl>'])


def cell_sections(cfg: DictConfig, paths: OutputPaths, model: str,
                  train_size: int) -> list[Section]:
    """BERTScore suite, slice heatmaps and error analysis of one cell."""
    rep = cfg.report
    run_dir = paths.run_dir(model, train_size)
    if not run_file(run_dir, "manifest").exists():
        raise InputError(run_dir, "no finished cell here (no manifest.json); was the run "
                                  "folder moved after aggregate?")
    label = cell_label(model, train_size)
    scores = cell_scores(run_dir, dict(cfg.aggregate.weights))
    sections = []
    lo, hi = (float(v) for v in rep.f1_range)
    for prefix in rep.bertscore:
        if f"{prefix}_f1" in scores.columns:
            sections += bertscore_sections(scores, prefix, dict(rep.bands),
                                           title=prefix.replace("_", " "), f1_range=(lo, hi))
        else:
            log.info("report.bertscore: %s has no %s_f1 column; skipped", label, prefix)
    examples = load_examples(paths, run_dir)
    if examples is not None:
        sections += _slice_sections(rep, scores, examples, label)
    if rep.error_metric not in scores.columns:
        raise ConfigError(f"report.error_metric={rep.error_metric}: not a per-example column "
                          f"of {label} ({', '.join(c for c in scores.columns if c != 'id')})")
    predictions = pd.DataFrame([rec for _, rec in read_records(run_file(run_dir,
                                                                        "predictions"))])
    sections.append(error_section(scores, predictions, examples, rep.error_metric,
                                  int(rep.n_errors), label))
    unparsed = unparsable_section(predictions, int(rep.n_errors), label)
    return sections + ([unparsed] if unparsed is not None else [])


def _slice_sections(rep: DictConfig, scores: pd.DataFrame, examples: pd.DataFrame,
                    label: str) -> list[Section]:
    sl = rep.slices
    slicing = resolve(examples, sl.rows, sl.cols, int(sl.length_bins), int(sl.min_n))
    if slicing is None:
        return [Section("Slices", f"The examples have no {sl.rows!r} and no text field to "
                                  "compute a length from, so there are no slices.")]
    return [slice_section(scores, slicing, metric, label, int(sl.min_n))
            for metric in sl.metrics if metric in scores.columns]


def detail_intro(ranked: pd.DataFrame, model: str, train_size: int, chosen: bool) -> Section:
    """Which cell the detail sections show, and why."""
    row = ranked[(ranked["model"] == model) & (ranked["train_size"] == train_size)].iloc[0]
    why = "chosen with report.model" if chosen else "the top-ranked cell with per-example data"
    reading = (f"The sections below show {cell_label(model, train_size)} in detail, {why}: "
               f"rank {row['rank']:g} of {len(ranked)}, overall score {fmt(row[OVERALL])}. "
               "Pick another cell with report.model=<name> report.train_size=<size>.")
    return Section(f"Detail: {cell_label(model, train_size)}", reading)


TABLE_ONLY = ("No cell has a run folder with per-example scores (the ranking was aggregated "
              "from a per-model table with `input=`), so this report has the sections a table "
              "supports: leaderboard, per-task bars, perplexity, scaling, parameters and metric "
              "correlations. Confidence intervals, rank intervals, significance tests, the "
              "BERTScore suite, slices and the error analysis need per-example data: run the "
              "sweep (`python -m pipeline.compare -m`) to get runs/<model>/<size>/.")


def _finished(paths: OutputPaths, ranked: pd.DataFrame) -> list[tuple[str, int]]:
    return [(str(m), int(t)) for m, t in zip(ranked["model"], ranked["train_size"], strict=True)
            if run_file(paths.run_dir(str(m), int(t)), "manifest").exists()]


def build_report(cfg: DictConfig) -> Path:
    """Write ``<output_dir>/report/index.html`` (and figure images when configured)."""
    paths = OutputPaths(Path(cfg.output_dir))
    ranked = load_ranked(paths)
    finished = _finished(paths, ranked)
    agg = cfg.aggregate
    rule = RULE.format(min_effect=f"{agg.min_effect:g}", one_sided=f"{100 * (1 - agg.alpha):g}%")
    decision = [recommendation_section(_optional_csv(paths.tables / "recommendations.csv"), rule),
                excluded_section(_optional_csv(paths.tables / "excluded_cells.csv"))]
    sections = [*(s for s in decision if s is not None),
                provenance_section(read_provenance(paths.root, finished)),
                *sweep_sections(cfg, paths, ranked)]
    tests = load_examples(paths, paths.run_dir(*finished[0])) if finished else None
    board = next(i for i, s in enumerate(sections) if s.title == "Leaderboard")
    sections.insert(board + 1, examples_section(cfg, paths, ranked, tests))
    chosen = cfg.report.model is not None
    if finished or chosen:
        done = set(finished)
        pool = ranked if chosen or not finished else ranked[
            [(str(m), int(t)) in done for m, t in
             zip(ranked["model"], ranked["train_size"], strict=True)]]
        model, train_size = choose_cell(pool, cfg.report.model, cfg.report.train_size)
        sections += [detail_intro(ranked, model, train_size, chosen),
                     *cell_sections(cfg, paths, model, train_size)]
        title = (f"Model comparison: {len(ranked)} cells, detail of "
                 f"{cell_label(model, train_size)}")
    else:
        sections.append(Section("Per-example sections", TABLE_ONLY))
        title = f"Model comparison: {len(ranked)} cells (per-model table)"
    out = paths.report_dir / "index.html"
    write_report(out, title, sections)
    if cfg.report.export_images:
        export_images(sections, paths.report_dir / "figures", cfg.report.image_format)
    print(f"report: {out}")
    return out

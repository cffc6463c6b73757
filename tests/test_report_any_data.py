"""The report on any data: records without metadata, a per-model table, 1,000 cells; the
provenance box, colours, number format and the analysis' new sections."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.aggregate.analysis import render_analysis, untested_note
from pipeline.aggregate.manifest_summary import cell_provenance, summarize
from pipeline.aggregate.stage import aggregate
from pipeline.core.io import write_json, write_jsonl, write_parquet
from pipeline.core.paths import OutputPaths, run_file
from pipeline.report.build import build_report
from pipeline.report.html import table_html
from pipeline.report.slices import auto_bins, length_buckets, resolve, slice_section
from pipeline.report.style import fmt, model_colors, model_symbols

TEXT_METRICS = ["summarization_rougeL", "summarization_bertscore_precision",
                "summarization_bertscore_recall", "summarization_bertscore_f1",
                "title_rougeL", "title_bertscore_precision", "title_bertscore_recall",
                "title_bertscore_f1"]
MANIFEST = {"config": {"data": {"name": "plain"}}, "config_hash": "abc123",
            "dataset": {"name": "plain", "test": "feedbeef"},
            "encoder": {"encoder": "roberta-large", "num_layers": 17, "idf": True,
                        "rescale": False, "impl": "torch", "dtype": "fp32"},
            "packages": {"bert-score": "0.3.13", "torch": "2.13.0", "numpy": "2.0"}}


def make_plain_sweep(root: Path, n_models: int = 3, n_examples: int = 60,
                     sizes: tuple[int, ...] = (100, 400, 1600)) -> None:
    """Finished cells over records with only id, article, summary and title (no ``meta``, no
    ``type``, no tags), e.g. SummEval-like data."""
    paths = OutputPaths(root)
    rng = np.random.default_rng(1)
    test = [{"id": f"doc{i:03d}", "article": " ".join(["word"] * int(20 + 7 * i)),
             "summary": "a short summary", "title": "a title"} for i in range(n_examples)]
    write_jsonl(paths.data_dir("plain") / "test.jsonl", test)
    for m in range(n_models):
        for size in sizes:
            base = 0.5 + 0.1 * m + 0.02 * np.log2(size / 100)
            scores = pd.DataFrame({"id": [r["id"] for r in test], **{
                c: np.clip(base + rng.normal(0, 0.05, n_examples), 0, 1) for c in TEXT_METRICS}})
            run_dir = paths.run_dir(f"p{m}", size)
            write_parquet(run_file(run_dir, "scores"), scores)
            write_jsonl(run_file(run_dir, "predictions"),
                        [{"id": r["id"], "summary": "pred", "title": "t"} for r in test])
            write_json(run_file(run_dir, "metrics"), {
                "model": f"p{m}", "family": "famA" if m < 2 else "famB", "params_b": 1.0 + m,
                "train_size": size, "perplexity": None, "n_examples": n_examples,
                "metrics": scores[TEXT_METRICS].mean().to_dict()})
            write_json(run_file(run_dir, "manifest"), MANIFEST)


def _titles(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def plain_report(out: Path, compose: Callable) -> Path:
    """A report on records without metadata (slices fall back to computed length buckets)."""
    make_plain_sweep(out)
    cfg = compose(f"output_dir={out}", "aggregate.n_boot=100")
    aggregate(cfg)
    return build_report(cfg)


def table_report(out: Path, compose: Callable) -> Path:
    """A report from a per-model table (``input=<csv>``): no run folders at all."""
    rows = [{"model": f"t{i}", "family": f"f{i % 3}", "params_b": 0.5 * (i + 1),
             "train_size": size, "summarization_rougeL": 0.3 + 0.03 * i + size / 1e5,
             "title_rougeL": 0.4 + 0.02 * i, "type_accuracy": 0.5 + 0.04 * i}
            for i in range(6) for size in (1000, 4000)]
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out / "table.csv", index=False)
    cfg = compose(f"output_dir={out / 'result'}", f"input={out / 'table.csv'}")
    aggregate(cfg)
    return build_report(cfg)


def test_report_without_metadata_slices_by_computed_length(tmp_path: Path,
                                                           compose_cfg: Callable) -> None:
    page = plain_report(tmp_path / "out", compose_cfg).read_text()
    titles = _titles(page)
    assert "Slices: overall_score by length (words) x all examples" in titles
    assert "the examples have no &#x27;meta.length_bucket&#x27;, so the rows are" in page
    assert "length buckets of &#x27;article&#x27;" in page
    # provenance box from the manifests
    assert "Provenance" in titles and "roberta-large" in page and "feedbeef" in page
    assert "<dt>BERTScore layer</dt><dd>17</dd>" in page
    assert "<dt>BERTScore idf</dt><dd>true</dd>" in page


def test_table_only_report_builds_what_a_table_supports(tmp_path: Path,
                                                        compose_cfg: Callable) -> None:
    out = tmp_path / "out"
    page = table_report(out, compose_cfg).read_text()
    titles = _titles(page)
    for title in ("Leaderboard", "Score vs train size", "Score vs parameters",
                  "Metric correlations", "Per-example sections"):
        assert title in titles
    assert "need per-example data" in page
    assert "No pair of cells was tested" in page
    tables = out / "result" / "tables"
    assert (tables / "significance.md").read_text().startswith("No paired test was run")
    assert (tables / "pairwise_pvalues.md").read_text().startswith("No paired test was run")
    assert "No run manifest was found" in (out / "result" / "analysis.md").read_text()


def test_length_buckets_and_auto_bins() -> None:
    words = pd.Series([10, 20, 30, 40, 50, 60])
    buckets = length_buckets(words, 3)
    # quantile edges 10, 26.67, 43.33, 60: two examples per bucket
    assert buckets.tolist() == ["1. 10-26 words"] * 2 + ["2. 27-43 words"] * 2 + [
        "3. 44-60 words"] * 2
    assert length_buckets(pd.Series([5, 5, 5]), 3).tolist() == ["5 words"] * 3
    assert auto_bins(200, 1, 5) == 8 and auto_bins(200, 8, 5) == 3 and auto_bins(60, 2, 5) == 3


def test_slice_cells_show_ci_and_grey_out_small_slices() -> None:
    examples = pd.DataFrame({"id": list("abcdefg"), "kind": list("xxxxyyz"),
                             "text": ["one two three four"] * 7})
    scores = pd.DataFrame({"id": list("abcdefg"), "m": [0.1, 0.2, 0.3, 0.4, 0.9, 0.7, 0.5]})
    slicing = resolve(examples, "meta.length_bucket", "kind", length_bins=1, min_n=3)
    assert slicing.rows == "length (words)" and slicing.cols == "kind"
    section = slice_section(scores, slicing, "m", "cell", min_n=3)
    # only x (n=4) has 3 examples: mean 0.25, t(0.975, 3) * sd / 2
    half = 3.182446305284263 * np.std([0.1, 0.2, 0.3, 0.4], ddof=1) / 2
    # x's CI (0.25 ± 0.205) covers the overall mean 3.1 / 7 = 0.443: pale, nothing claimed
    assert 0.25 + half > 3.1 / 7
    assert "2 smaller ones are grey" in section.reading
    assert "no slice's 95% CI excludes the mean" in section.reading
    assert f"(0.2500 ± {half:.4f}, n=4)" not in section.reading  # no "weakest slice" claim
    grey, pale, main = section.figures[0].data
    assert grey.colorscale[0][1] == "#d9d9d9" and pale.name == "95% CI covers the mean"
    assert np.isnan(np.array(main.z, dtype=float)).all()  # nothing in colour
    assert resolve(examples.drop(columns="text"), "meta.length_bucket", "kind") is None


def test_slices_colour_only_supported_differences_around_the_mean() -> None:
    rng = np.random.default_rng(0)
    kinds = ["hi"] * 30 + ["mid"] * 30 + ["lo"] * 30
    base = {"hi": 0.8, "mid": 0.5, "lo": 0.2}
    examples = pd.DataFrame({"id": [f"e{i}" for i in range(90)], "kind": kinds,
                             "text": ["one two three four"] * 90})
    scores = pd.DataFrame({"id": examples["id"],
                           "m": [base[k] + rng.normal(0, 0.05) for k in kinds]})
    slicing = resolve(examples, "meta.length_bucket", "kind", length_bins=1, min_n=5)
    section = slice_section(scores, slicing, "m", "cell", min_n=5)
    overall = scores["m"].mean()
    main = section.figures[0].data[-1]
    z = pd.Series(np.array(main.z, dtype=float)[0], index=list(main.x))
    # hi and lo lie far outside their CIs around the mean: coloured; mid's CI covers it: pale
    assert z[["hi", "lo"]].notna().all() and np.isnan(z["mid"])
    assert main.zmin < overall < main.zmax
    assert main.zmax - overall == pytest.approx(overall - main.zmin)  # centred on the mean
    assert "above the mean: length (words)" in section.reading and "kind=hi" in section.reading
    assert "below the mean" in section.reading and "kind=lo" in section.reading
    assert "the other 1 are pale" in section.reading


def test_number_format_never_uses_exponents() -> None:
    assert [fmt(v) for v in (9.058e-05, 0.455, 1.0, 2000.0, 7, 12345.6, float("nan"))] == [
        "<0.0001", "0.4550", "1.0000", "2000", "7", "12,345.6", ""]
    html = table_html(pd.DataFrame({"p": [9.058e-05], "x": [0.455]}))
    assert "e-05" not in html.split("data-value")[0] and ">&lt;0.0001<" not in html
    assert '<td class="num" data-value="9.058e-05">&lt;0.0001</td>' in html.replace(
        "<0.0001", "&lt;0.0001")


def test_model_colours_are_shades_of_their_family() -> None:
    ranked = pd.DataFrame({"model": ["a", "b", "c"], "family": ["x", "x", "y"],
                           "params_b": [1.0, 2.0, 1.0]})
    colors = model_colors(ranked)
    assert colors["c"] == "#e69f00"  # a family with one model keeps the family colour
    # the two x models: #0072b2 (Okabe-Ito blue) 40% toward white (smaller) and 45% toward
    # black (larger), worked out by hand
    assert colors["a"] == "#66aad1" and colors["b"] == "#003f62"
    symbols = model_symbols(ranked)
    assert symbols["a"] != symbols["b"]  # a shape of its own within the family


def test_provenance_summary_lists_distinct_values() -> None:
    one = cell_provenance(MANIFEST)
    assert one["BERTScore encoder"] == "roberta-large" and one["BERTScore layer"] == "17"
    assert one["packages"] == "bert-score 0.3.13, torch 2.13.0"
    other = {**one, "config hash": "zzz"}
    merged = summarize([one, other])
    assert merged["BERTScore encoder"] == "roberta-large"
    assert merged["config hash"] == "2 values over 2 cells: abc123, zzz"


def _scaling_frames() -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """Two models at three sizes: m1 rises with shrinking gains, m2 rises then drops."""
    from pipeline.aggregate import tables as tb

    rows = []
    for model, scores in (("m1", [0.50, 0.60, 0.65]), ("m2", [0.40, 0.45, 0.42])):
        for size, score in zip((1000, 2000, 3000), scores, strict=True):
            rows.append({"model": model, "family": "f", "params_b": 1.0, "train_size": size,
                         "overall_score": score, "overall_score_ci_low": score - 0.01,
                         "overall_score_ci_high": score + 0.01, "rank_low": 1, "rank_high": 2,
                         "p_vs_next": 0.01, "rank_group": 1, "perplexity": np.nan,
                         "type_accuracy": score})
    ranked = pd.DataFrame(rows).sort_values("overall_score", ascending=False)
    ranked["rank"] = range(1, len(ranked) + 1)
    higher = {"type_accuracy": True}
    labels = [f"{m}@{s}" for m, s in zip(ranked["model"], ranked["train_size"], strict=True)]
    p = np.full((6, 6), 0.001)
    np.fill_diagonal(p, np.nan)
    tables = {"efficiency": tb.efficiency(ranked), "scaling": tb.scaling(ranked),
              "train_size_summary": tb.train_size_summary(ranked),
              "family_comparison": tb.family_comparison(ranked, higher),
              "task_leaders": tb.task_leaders(ranked, higher),
              "factor_correlations": tb.factor_correlations(ranked),
              "metric_correlations": tb.metric_correlations(ranked, higher),
              "recommendations": tb.recommendations(ranked, None, 0.01),
              "pairwise_pvalues": pd.concat([pd.DataFrame({"cell": labels}),
                                             pd.DataFrame(p, columns=labels)], axis=1)}
    i, j = np.triu_indices(6, 1)
    tables["pairwise_tests"] = pd.DataFrame({
        "cell_a": np.array(labels)[i], "cell_b": np.array(labels)[j], "position_a": i + 1,
        "position_b": j + 1, "p_raw": 0.0001, "p_value": 0.001, "p_bound": False,
        "n_permutations": 1000})
    significance = pd.DataFrame({"metric": ["overall_score"], "position": [1],
                                 "test": ["permutation"], "p_value": [0.001],
                                 "p_bound": [False], "n_permutations": [1000],
                                 "difference": [0.0004]})
    return ranked, tables, significance


def test_analysis_every_step_drops_distribution_and_min_effect() -> None:
    ranked, tables, significance = _scaling_frames()
    text = render_analysis(ranked, tables, significance, alpha=0.05, min_effect=0.02,
                           provenance={"BERTScore encoder": "roberta-large"})
    # distribution over the six scores 0.40 0.42 0.45 0.50 0.60 0.65
    v = np.array([0.40, 0.42, 0.45, 0.50, 0.60, 0.65])
    assert f"| 6 | {v.mean():.4f} | {np.median(v):.4f} | {v.std(ddof=1):.4f} | 0.4000 | " \
           "0.6500 | 0.2500 |" in text
    assert ("m1: 1000 -> 3000: +0.1500 (significant, p = 0.001); steps: 1000 -> 2000 "
            "+0.1000, p = 0.001; 2000 -> 3000 +0.0500, p = 0.001; diminishing returns "
            "(gain per 1,000 examples 0.1000 -> 0.0500)") in text
    assert "**drop with more data**: 2000 -> 3000 (-0.0300, significant)" in text
    # the leader's 0.05 lead is above min_effect; a 0.0004 difference would be negligible
    assert "significant but negligible" not in text.split("## Top and bottom")[1].split(
        "##")[0]
    assert "| type_accuracy | 0.5-0.7 | 3 |" in text
    assert "## Provenance\n\n- BERTScore encoder: roberta-large" in text


def test_negligible_significant_lead_is_not_a_win() -> None:
    ranked, tables, significance = _scaling_frames()
    ranked = ranked.copy()
    ranked.iloc[1, ranked.columns.get_loc("overall_score")] = 0.6496  # lead 0.0004
    text = render_analysis(ranked, tables, significance, min_effect=0.005)
    assert "is 0.0004: significant but negligible (|difference| < min_effect 0.005)" in text


def test_untested_notes() -> None:
    sig = pd.DataFrame({"metric": ["overall_score"], "p_value": [np.nan]})
    assert untested_note("significance", sig).startswith("No paired test was run")
    assert untested_note("significance", sig.assign(p_value=0.2)) is None
    assert untested_note("efficiency", sig) is None
    one = pd.DataFrame({"cell": ["a@1"], "a@1": [np.nan]})
    assert "Only one cell" in untested_note("pairwise_pvalues", one)


@pytest.mark.parametrize("n_cells", [1000])
def test_report_at_1000_cells_stays_bounded(tmp_path: Path, compose_cfg: Callable,
                                            n_cells: int) -> None:
    """A 1,000-cell ranking (written directly): top-N charts, a bounded p-value heatmap,
    a filterable leaderboard with every cell."""
    out = tmp_path / "big"
    paths = OutputPaths(out)
    rng = np.random.default_rng(0)
    n_models = n_cells // 4
    rows = [{"model": f"m{i:03d}", "family": f"f{i % 7}", "params_b": 0.1 * (1 + i % 40),
             "train_size": size, "overall_score": 0.3 + 0.5 * rng.random(),
             "summarization_rougeL": rng.random()}
            for i in range(n_models) for size in (500, 1000, 1500, 2000)]
    ranked = pd.DataFrame(rows).sort_values("overall_score", ascending=False)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    ranked.insert(1, "rank_group", np.arange(1, len(ranked) + 1))
    ranked["perplexity"] = np.nan
    paths.comparison_csv.parent.mkdir(parents=True, exist_ok=True)
    ranked.to_csv(paths.comparison_csv, index=False)
    labels = [f"{m}@{s}" for m, s in zip(ranked["model"][:60], ranked["train_size"][:60],
                                         strict=True)]
    matrix = pd.DataFrame(rng.random((60, 60)), columns=labels).assign(cell=labels)
    paths.tables.mkdir(parents=True, exist_ok=True)
    matrix[["cell", *labels]].to_csv(paths.tables / "pairwise_pvalues.csv", index=False)
    page = build_report(compose_cfg(f"output_dir={out}", "report.top_n=20",
                                    "report.max_matrix=25")).read_text()
    assert page.count("<tr>") >= n_cells + 1  # every cell in the leaderboard
    assert 'class="table-filter"' in page
    assert "Only the top 25 of 60 cells are drawn" in page
    assert f"Only the top 20 of {n_models} models" in page
    assert len(page) < 3_000_000


def test_task_bars_open_on_the_weighted_metric_with_a_family_legend() -> None:
    from pipeline.report.sweep_charts import task_bars

    ranked = pd.DataFrame({"model": ["a", "b"], "family": ["x", "y"], "train_size": [1, 1],
                           "params_b": [1.0, 2.0], "s_rouge1": [0.5, 0.4],
                           "s_rougeL": [0.3, 0.35]})
    fig = task_bars(ranked, "s", ["s_rouge1", "s_rougeL"], weighted=["s_rougeL"]).figures[0]
    bars = [t for t in fig.data if t.showlegend is False]
    assert [t.name for t in bars] == ["s_rougeL", "s_rouge1"] and bars[0].visible
    assert not bars[1].visible
    assert [t.name for t in fig.data if t.showlegend] == ["x", "y"]  # one entry per family
    assert fig.layout.xaxis.title.text == "s_rougeL"
    assert fig.layout.yaxis.title.text and fig.layout.xaxis.autorange is not False
    assert bars[0].mode == "markers"  # dots on an axis scaled to the data, not bars from 0


def test_one_point_or_one_train_size_gives_a_sentence_not_a_chart() -> None:
    from pipeline.report.sweep_charts import pareto_chart, perplexity, scaling_chart, task_bars

    one_size = pd.DataFrame({"model": ["a", "b"], "family": ["x", "y"], "train_size": [0, 0],
                             "params_b": [1.0, float("nan")], "overall_score": [0.5, 0.4],
                             "overall_score_ci_low": [0.4, 0.3],
                             "overall_score_ci_high": [0.6, 0.5], "s_m": [0.5, 0.4],
                             "perplexity": [3.0, float("nan")]})
    scaling = scaling_chart(one_size)
    assert scaling.figures == [] and "one train size" in scaling.reading
    assert pareto_chart(one_size).figures == []  # one model has a parameter count
    assert perplexity(one_size).figures == []  # one cell reports one
    assert task_bars(one_size.head(1), "s", ["s_m"]).figures == []
    assert len(task_bars(one_size, "s", ["s_m"]).figures) == 1


def test_scaling_title_names_bands_only_when_drawn() -> None:
    from pipeline.report.sweep_charts import scaling_chart

    rows = pd.DataFrame({"model": ["a", "a", "b", "b"], "family": ["x", "x", "x", "x"],
                         "train_size": [1, 2, 1, 2], "params_b": [1.0, 1.0, 2.0, 2.0],
                         "overall_score": [0.4, 0.5, 0.45, 0.55]})
    no_ci = scaling_chart(rows).figures[0]
    assert "band" not in no_ci.layout.title.text
    with_ci = scaling_chart(rows.assign(overall_score_ci_low=rows["overall_score"] - 0.05,
                                        overall_score_ci_high=rows["overall_score"] + 0.05))
    assert "band: 95% CI" in with_ci.figures[0].layout.title.text
    lines = [t for t in with_ci.figures[0].data if t.mode == "lines+markers"]
    assert len({t.marker.symbol for t in lines}) == 2  # two models of one family: two shapes


def test_correlation_heatmap_is_annotated_and_pareto_points_labelled() -> None:
    from pipeline.report.sweep_charts import correlation_heatmap, pareto_chart

    ranked = pd.DataFrame({"model": list("abcd"), "family": list("xxyy"),
                           "train_size": [1] * 4, "params_b": [1.0, 2.0, 3.0, 4.0],
                           "overall_score": [0.2, 0.5, 0.4, 0.9],
                           "t_a": [0.1, 0.2, 0.3, 0.4], "t_b": [0.4, 0.1, 0.3, 0.2]})
    heat = correlation_heatmap(ranked, {"t_a": True, "t_b": True}).figures[0].data[0]
    assert heat.text[0][1] == "-0.40" and heat.zmin == -1  # Spearman of a vs b = -0.4
    points = [t for t in pareto_chart(ranked).figures[0].data if t.mode == "markers+text"]
    assert sorted(m for t in points for m in t.text) == ["a", "b", "c", "d"]


def test_human_section_reports_p_values() -> None:
    from pipeline.report.sweep_charts import human_section

    human = pd.DataFrame({"metric": ["m1", "m2"], "aspect": ["human_coherence"] * 2,
                          "level": ["system"] * 2, "n": [16, 16], "pearson": [0.5, 0.7],
                          "spearman": [0.4, 0.6], "kendall": [0.3, 0.55],
                          "pearson_p": [0.05, 0.002], "spearman_p": [0.1, 0.01],
                          "kendall_p": [0.1, 0.003]})
    section = human_section(human)
    assert ("human_coherence (system): m2, Kendall 0.550, p = 0.003, n = 16"
            in section.reading)
    assert "kendall<wbr>_p" in section.content[0]
    assert human_section(None) is None


def test_finer_length_bins_are_offered_and_taken() -> None:
    n = 120
    examples = pd.DataFrame({"id": [f"e{i}" for i in range(n)],
                             "meta.length_bucket": ["short", "long"] * (n // 2),
                             "article": [" ".join(["w"] * (10 + i)) for i in range(n)]})
    # 120 examples, one column, min_n 5: 120 // (2 * 5) = 12 -> capped at 8 bins
    fixed = resolve(examples, "meta.length_bucket", "type", min_n=5)
    assert fixed.rows == "meta.length_bucket"
    assert any("report.slices.rows=length gives 8 quantile buckets" in n for n in fixed.notes)
    finer = resolve(examples, "length", "type", length_bins=4, min_n=5)
    assert finer.rows == "length (words)"
    assert finer.examples["length (words)"].value_counts().tolist() == [30] * 4

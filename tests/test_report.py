"""The HTML report: computed readings, trend line, bands, the CLI, and 4- and 40-model sweeps."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from pipeline.aggregate.stage import aggregate
from pipeline.core.errors import ConfigError, UserError
from pipeline.core.io import write_json, write_jsonl, write_parquet
from pipeline.core.paths import OutputPaths, run_file
from pipeline.data.demo_corpus import build_demo_corpus
from pipeline.report.bertscore_suite import band_distances, band_of, bertscore_sections, trend_line
from pipeline.report.build import build_report, choose_cell
from pipeline.report.errors_table import worst_examples
from pipeline.report.html import Section, write_report
from pipeline.report.slices import slice_table
from tests.conftest import ROOT, run_env

METRICS = ["summarization_rouge1", "summarization_rouge2", "summarization_rougeL",
           "summarization_bertscore_precision", "summarization_bertscore_recall",
           "summarization_bertscore_f1", "title_rouge1", "title_rouge2", "title_rougeL",
           "title_bertscore_precision", "title_bertscore_recall", "title_bertscore_f1",
           "tag_exact_match", "tag_jaccard", "tag_f1", "type_accuracy"]
PREFIX = "summarization_bertscore"


def make_sweep(root: Path, n_models: int, sizes: tuple[int, ...] = (500, 2000),
               n_examples: int = 24, seed: int = 0) -> None:
    """Synthetic finished cells (run folders + demo test records), quality rising with the
    model index and the train size. Beyond 10 models (the 40-model case) only the first 10
    have every size, the rest only the largest, and cells report perplexity."""
    paths = OutputPaths(root)
    _, test = build_demo_corpus(n_train=0, n_test=n_examples)
    write_jsonl(paths.data_dir("demo") / "test.jsonl", test)
    rng = np.random.default_rng(seed)
    ids = [r["id"] for r in test]
    for i in range(n_models):
        model, family = f"m{i:02d}", f"fam{i % min(n_models, 6)}"
        for size in sizes if i < 10 else sizes[-1:]:
            base = 0.45 + 0.4 * i / n_models + 0.05 * (size / max(sizes))
            scores = pd.DataFrame({"id": ids, **{
                m: (rng.random(n_examples) < base).astype(float)
                if m in ("tag_exact_match", "type_accuracy")
                else np.clip(base + rng.normal(0, 0.08, n_examples), 0, 1) for m in METRICS}})
            run_dir = paths.run_dir(model, size)
            write_parquet(run_file(run_dir, "scores"), scores)
            write_jsonl(run_file(run_dir, "predictions"), [
                {"id": r["id"], "summary": f"<b>{model}</b> says " + r["summary"][:60],
                 "title": r["title"], "tags": r["tags"][:1], "type": r["type"]} for r in test])
            write_json(run_file(run_dir, "metrics"), {
                "model": model, "family": family, "params_b": 0.5 * (i + 1), "train_size": size,
                "perplexity": 5.0 + i if n_models > 10 else None,
                "metrics": scores[METRICS].mean().to_dict()})
            write_json(run_file(run_dir, "manifest"), {"config": {"data": {"name": "demo"}}})


def build_sweep_report(out: Path, n_models: int, compose: Callable, *overrides: str) -> Path:
    """A synthetic sweep, aggregated and reported; returns the index.html path."""
    make_sweep(out, n_models)
    cfg = compose(f"output_dir={out}", "aggregate.n_boot=100", *overrides)
    aggregate(cfg)
    return build_report(cfg)


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory, compose_cfg: Callable) -> Path:
    return build_sweep_report(tmp_path_factory.mktemp("four") / "out", 4, compose_cfg)


# --- pure functions on hand-made data -------------------------------------------------------

def test_trend_line_recovers_a_known_line() -> None:
    x = np.array([0.5, 0.6, 0.7, 0.8])
    trend = trend_line(x, 2 * x - 0.25)
    assert trend.slope == pytest.approx(2) and trend.intercept == pytest.approx(-0.25)
    assert trend.r2 == pytest.approx(1)
    assert trend.equation == "R = 2.000·P - 0.250 (R² = 1.000)"
    assert trend_line(np.array([0.5, 0.5]), np.array([0.1, 0.9])) is None


def test_bands_and_distances() -> None:
    assert [band_of(v) for v in (0.2, 0.7, 0.79, 0.85, 0.95)] == [
        "Poor", "Fair", "Fair", "Good", "Excellent"]
    assert band_distances(0.75) == pytest.approx({"Fair": 0.05, "Good": -0.05,
                                                  "Excellent": -0.15})
    custom = {"low": 0.0, "high": 0.5}
    assert band_of(0.6, custom) == "high" and band_distances(0.6, custom) == pytest.approx(
        {"high": 0.1})


def _hand_scores() -> pd.DataFrame:
    p = np.array([0.6, 0.7, 0.8, 0.9, 0.95])
    r = np.array([0.7, 0.75, 0.8, 0.85, 0.99])
    return pd.DataFrame({"id": [f"e{i}" for i in range(5)], f"{PREFIX}_precision": p,
                         f"{PREFIX}_recall": r, f"{PREFIX}_f1": 2 * p * r / (p + r)})


def test_bertscore_sections_readings_follow_the_numbers() -> None:
    scores = _hand_scores()
    sections = bertscore_sections(scores, PREFIX, title="A")
    assert len(sections) == 7 and all(isinstance(s, Section) for s in sections)
    assert all(s.title.startswith("A: ") for s in sections)
    assert sum(len(s.figures) for s in sections) == 7
    text = {s.title.split(": ", 1)[1]: s.reading for s in sections}
    f1 = scores[f"{PREFIX}_f1"]
    assert f"mean F1 {f1.mean():.4f}" in text["per-example F1 map"]
    assert "weakest is e0" in text["per-example F1 map"]
    assert "20% of the examples fall below the Fair threshold" in text["per-example F1 map"]
    trend = trend_line(scores[f"{PREFIX}_precision"], scores[f"{PREFIX}_recall"])
    assert trend.equation in text["precision vs recall"]
    assert "Recall exceeds precision on 60%" in text["precision vs recall"]
    assert f"Mean F1 {f1.mean():.4f} is in the Good band" in text["quality bands"]
    assert "F1 is roughly symmetric" in text["distributions"]
    assert "1 Poor, 1 Fair, 2 Good, 1 Excellent" in text["quality bands"]
    # configurable bands
    custom = bertscore_sections(scores, PREFIX, bands={"bad": 0.0, "ok": 0.95})
    assert "is in the bad band" in custom[-1].reading
    with pytest.raises(UserError, match="lack column"):
        bertscore_sections(scores.drop(columns=f"{PREFIX}_recall"), PREFIX)


def test_constant_scores_do_not_break_the_suite() -> None:
    scores = _hand_scores().assign(**{f"{PREFIX}_precision": 0.8})
    reading = bertscore_sections(scores, PREFIX)[1].reading
    assert "no trend line" in reading


def test_write_report_is_self_contained(tmp_path: Path) -> None:
    fig = go.Figure(go.Bar(x=[1], y=[2]))
    write_report(tmp_path / "r" / "index.html", "T <1>",
                 [Section("One", "reading <b>", [fig, "<p>snippet</p>"])])
    page = (tmp_path / "r" / "index.html").read_text()
    assert (tmp_path / "r" / "plotly.min.js").stat().st_size > 1_000_000
    assert '<script src="plotly.min.js">' in page and "cdn" not in page.lower()
    assert "T &lt;1&gt;" in page and "reading &lt;b&gt;" in page and "<p>snippet</p>" in page
    assert 'data-figures="1"' in page


def test_slices_and_worst_examples() -> None:
    scores = pd.DataFrame({"id": list("abcd"), "m": [0.1, 0.9, 0.5, 0.3]})
    examples = pd.DataFrame({"id": list("abcd"), "len": ["s", "s", "l", "l"],
                             "type": ["x", "y", "x", "x"]})
    means, counts = slice_table(scores, examples, "len", "type", "m")
    assert means.loc["l", "x"] == pytest.approx(0.4) and counts.loc["l", "x"] == 2
    assert pd.isna(means.loc["l", "y"]) and counts.loc["l", "y"] == 0
    assert worst_examples(scores, "m", 2)["id"].tolist() == ["a", "d"]
    with pytest.raises(ConfigError, match="no attribute 'topic'"):
        slice_table(scores, examples, "topic", "type", "m")


def test_choose_cell() -> None:
    ranked = pd.DataFrame({"model": ["b", "a", "a"], "train_size": [2, 2, 1]})
    assert choose_cell(ranked, None, None) == ("b", 2)
    assert choose_cell(ranked, "a", None) == ("a", 2)
    assert choose_cell(ranked, "a", 1) == ("a", 1)
    with pytest.raises(ValueError, match="no such cell"):
        choose_cell(ranked, "c", None)


# --- whole reports ----------------------------------------------------------------------------

def _sections(page: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", page)


def test_four_model_report(four: Path) -> None:
    page = four.read_text()
    titles = _sections(page)
    for expected in ("Leaderboard", "Task: summarization", "Task: type", "Perplexity",
                     "Score vs train size", "Score vs parameters", "Metric correlations",
                     "Significance matrix", "Error analysis: m03@2000"):
        assert expected in titles
    # the answer first: the recommendation opens the report, above the leaderboard
    assert titles[0] == "Recommendation" and titles.index("Leaderboard") > 0
    assert re.search(r'<strong>Ship m\d\d@\d+</strong>', page)
    assert "Rule: ship the cheapest cell" in page
    assert sum("summarization bertscore" in t for t in titles) == 7
    assert any(t.startswith("Slices: overall_score by meta.length_bucket x type") for t in titles)
    assert "No cell of this sweep reports a perplexity" in page
    assert "&lt;b&gt;m03&lt;/b&gt; says" in page and "<b>m03</b>" not in page  # escaped
    assert 'class="sortable"' in page
    assert int(re.search(r'data-figures="(\d+)"', page)[1]) == page.count("plotly-graph-div")


def test_forty_model_report_stays_readable(tmp_path: Path, compose_cfg: Callable) -> None:
    page = build_sweep_report(tmp_path / "out", 40, compose_cfg,
                              "report.model=m05", "report.train_size=500").read_text()
    assert "Error analysis: m05@500" in page
    assert "Use the menu to switch family" in page  # score vs train size: one family at a time
    assert "reports a perplexity" not in page and "Perplexity (log scale" in page


def test_cli_without_aggregate_says_what_to_do(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeline.report", f"output_dir={tmp_path}"],
                          cwd=ROOT, env=run_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "model_comparison.csv" in proc.stderr and "pipeline.aggregate" in proc.stderr


def test_model_choice_and_export_without_kaleido(four: Path, compose_cfg: Callable,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_cfg(f"output_dir={four.parent.parent}", "report.export_images=true",
                      "report.model=m00", "report.error_metric=tag_f1", "report.n_errors=3")
    with caplog.at_level("INFO"):
        build_report(cfg)
    page = four.read_text()
    assert "Error analysis: m00@2000" in page and "The 3 lowest-scoring of 24" in page
    try:
        import kaleido  # noqa: F401
    except ImportError:
        assert "kaleido is not installed" in caplog.text
    else:
        assert list((four.parent / "figures").glob("*.png"))


def test_cli_keeps_an_unchanged_report_and_rebuilds_a_changed_one(tmp_path: Path,
                                                                   compose_cfg: Callable) -> None:
    out = tmp_path / "out"
    make_sweep(out, 2)
    aggregate(compose_cfg(f"output_dir={out}", "aggregate.n_boot=100"))

    def report(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline.report", f"output_dir={out}",
                               "aggregate.n_boot=100", *extra], cwd=ROOT, env=run_env(),
                              capture_output=True, text=True, timeout=300, check=True)

    page = out / "report" / "index.html"
    first = report()
    assert "(unchanged)" not in first.stdout and page.exists()
    built = page.stat().st_mtime_ns
    assert "(unchanged)" in report().stdout and page.stat().st_mtime_ns == built
    # a changed predictions file (same scores) and force=true each rebuild the page
    preds = run_file(OutputPaths(out).run_dir("m00", 500), "predictions")
    preds.write_text(preds.read_text().replace("says", "writes"))
    assert "(unchanged)" not in report().stdout and page.stat().st_mtime_ns != built
    assert "(unchanged)" in report().stdout
    assert "(unchanged)" not in report("force=true").stdout
    # another report setting rebuilds too
    assert "(unchanged)" not in report("report.n_errors=3").stdout


def test_unparsable_outputs_are_shown_as_written() -> None:
    from pipeline.report.errors_table import unparsable_section

    preds = pd.DataFrame([
        {"id": "a", "tags": [], "type": "", "raw": {"tag": "The article is <about> towns",
                                                   "type": "The allowed types are: x, y, z"}},
        {"id": "b", "tags": ["energy"], "type": "sports",
         "raw": {"tag": "energy", "type": "sports"}},
        {"id": "c", "tags": [], "type": "sports", "raw": {"tag": "", "type": "sports"}},
    ])
    section = unparsable_section(preds, 10, "m@500")
    assert section is not None
    assert section.reading.startswith("2 outputs of m@500 could not be parsed (tag 1, type 1 "
                                      "of 3 examples)")
    page = "".join(c for c in section.content if isinstance(c, str))
    assert "The article is &lt;about&gt; towns" in page and "allowed types are" in page
    # a predictions file or demo learner keeps no raw text: no section
    assert unparsable_section(preds.drop(columns="raw"), 10, "m@500") is None

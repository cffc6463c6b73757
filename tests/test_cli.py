"""The command line, as users run it: a small multirun sweep, aggregation and error exits."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import ROOT, SMALL, run_env

SWEEP = [*SMALL, "data.limit=8", "model=demo-lead,demo-knn,demo-linear-small",
         "train_size=100,300", "aggregate.n_boot=200"]


def _run(module, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=run_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "out"
    sweep = _run("pipeline.compare", "-m", f"output_dir={out}", *SWEEP)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    agg = _run("pipeline.aggregate", f"output_dir={out}", "aggregate.n_boot=200")
    assert agg.returncode == 0, agg.stderr[-3000:]
    return out, sweep, agg


def test_multirun_writes_every_cell(swept):
    out, _, _ = swept
    cells = sorted(p.relative_to(out / "runs").as_posix() for p in (out / "runs").glob("*/*"))
    assert cells == [f"{m}/{n}" for m in ("demo-knn", "demo-lead", "demo-linear-small")
                     for n in (100, 300)]
    for cell in (out / "runs").glob("*/*"):
        names = {p.name for p in cell.iterdir()}
        assert {"predictions.jsonl", "scores.parquet", "metrics.json", "manifest.json"} <= names
    assert not (ROOT / "multirun").exists()


def test_model_comparison_is_ranked_best_first(swept):
    out, _, agg = swept
    table = pd.read_csv(out / "model_comparison.csv")
    assert len(table) == 6
    assert list(table["overall_score"]) == sorted(table["overall_score"], reverse=True)
    assert list(table["rank"]) == sorted(table["rank"])
    for col in ("rank", "model", "family", "params_b", "train_size", "overall_score",
                "summarization_rougeL", "title_bertscore_f1", "tag_jaccard", "type_accuracy",
                "perplexity"):
        assert col in table.columns
    assert table["perplexity"].isna().all()
    assert "Top 6 of 6 cells" in agg.stdout


def test_aggregate_writes_tables_and_analysis(swept):
    out, _, _ = swept
    for name in ("efficiency", "scaling", "train_size_summary", "recommendations"):
        assert (out / "tables" / f"{name}.csv").exists()
        assert (out / "tables" / f"{name}.md").exists()
    assert (out / "analysis.md").read_text().strip()


def test_rerun_skips_finished_cells(swept):
    out, _, _ = swept
    again = _run("pipeline.compare", "-m", f"output_dir={out}", *SWEEP)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("already finished") + again.stderr.count("already finished") == 6


def test_missing_predictions_exit_2_with_the_key_to_set(tmp_path):
    result = _run("pipeline.compare", "model=llama-3.2-3b", "train_size=1000",
                  f"output_dir={tmp_path}", *SMALL)
    assert result.returncode == 2
    assert "model.predictions" in result.stderr and "llama-3.2-3b" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_predictions_file_exit_2_naming_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "demo-test-00001"}\n', encoding="utf-8")
    result = _run("pipeline.compare", "model=qwen3-0.6b", f"model.predictions={bad}",
                  f"output_dir={tmp_path}", *SMALL)
    assert result.returncode == 2
    assert "bad.jsonl, line 1, field 'summary'" in result.stderr


@pytest.mark.parametrize(("override", "named"), [("data.limmit=3", "limmit"),
                                                  ("train_size=lots", "train_size"),
                                                  ("model=qwen9", "qwen9")])
def test_config_errors_exit_2_naming_the_key(tmp_path, override, named):
    result = _run("pipeline.compare", override, f"output_dir={tmp_path}")
    assert result.returncode == 2
    assert named in result.stderr
    assert not (tmp_path / "runs").exists()


def test_aggregate_without_runs_says_what_to_do(tmp_path):
    result = _run("pipeline.aggregate", f"output_dir={tmp_path}")
    assert result.returncode == 2
    assert "pipeline.compare -m" in result.stderr

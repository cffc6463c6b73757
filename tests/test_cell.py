"""One cell end to end, in process: generate or load, score, write, skip when finished."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.core.errors import InputError
from pipeline.core.io import read_json
from pipeline.generators import MissingModelError
from pipeline.scoring.cell import run_cell
from pipeline.scoring.metrics import column, get_metric

LIMIT = "data.limit=6"


def test_demo_cell_writes_every_file(small_cfg):
    cfg = small_cfg("model=demo-linear-small", "train_size=200", LIMIT)
    run_dir = run_cell(cfg)
    assert run_dir.parts[-2:] == ("demo-linear-small", "200")
    preds = [json.loads(x) for x in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 6 and {"id", "summary", "title", "tags", "type"} <= set(preds[0])
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert list(scores["id"]) == [p["id"] for p in preds]
    expected = {column(t, out) for t, task_cfg in cfg.tasks.items() for m in task_cfg.metrics
                for out in get_metric(m).outputs_for(cfg.metrics.get(m) or {})}
    expected -= {"type_macro_f1"}  # corpus level: in metrics.json, not per example
    assert expected <= set(scores.columns)
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["train_size"] == 200 and metrics["n_examples"] == 6
    assert metrics["perplexity"] is None
    assert metrics["params_b"] == pytest.approx(metrics["num_parameters"] / 1e9)
    for col in expected:
        assert metrics["metrics"][col] == pytest.approx(scores[col].mean())
    manifest = read_json(run_dir / "manifest.json")
    assert manifest["config"]["train_size"] == 200
    assert manifest["encoder"]["num_layers"] == 6
    assert "/" not in manifest["encoder"]["encoder"].split("==")[0]
    assert manifest["packages"]["rouge-score"] and manifest["packages"]["torch"]
    assert len(manifest["config_hash"]) == 16


def test_finished_cell_is_skipped_and_force_recomputes(small_cfg):
    run_dir = run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT))
    stamp = (run_dir / "manifest.json").stat().st_mtime_ns
    run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT))
    assert (run_dir / "manifest.json").stat().st_mtime_ns == stamp
    run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT, "force=true"))
    assert (run_dir / "manifest.json").stat().st_mtime_ns != stamp


def test_changed_metric_setting_recomputes(small_cfg):
    run_dir = run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT))
    before = read_json(run_dir / "manifest.json")["config_hash"]
    run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT,
                       "metrics.rouge.use_stemmer=false"))
    assert read_json(run_dir / "manifest.json")["config_hash"] != before


def test_learned_model_depends_on_train_size(small_cfg):
    a = run_cell(small_cfg("model=demo-knn", "train_size=50", LIMIT))
    b = run_cell(small_cfg("model=demo-knn", "train_size=300", LIMIT))
    assert (a / "predictions.jsonl").read_text() != (b / "predictions.jsonl").read_text()


def _write_predictions(cfg, path, mutate=None):
    from pipeline.core.paths import OutputPaths
    from pipeline.data import load_dataset

    dataset = load_dataset(cfg.data, OutputPaths(cfg.output_dir))
    rows = [{"id": r["id"], "summary": r["article"].split(". ")[0] + ".",
             "title": r["title"], "tags": r["tags"][:1], "type": r["type"]}
            for r in dataset.test]
    if mutate:
        mutate(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_precomputed_predictions_cell(small_cfg, tmp_path):
    pred = tmp_path / "preds" / "llama-3.2-1b" / "500.jsonl"
    cfg = small_cfg("model=llama-3.2-1b", "train_size=500", LIMIT,
                    f"model.predictions={tmp_path}/preds/${{model.name}}/${{train_size}}.jsonl")
    _write_predictions(cfg, pred)
    run_dir = run_cell(cfg)
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["params_b"] == 1.24 and metrics["family"] == "llama"
    assert metrics["metrics"]["title_rouge1"] == pytest.approx(1.0)
    assert metrics["metrics"]["type_accuracy"] == pytest.approx(1.0)
    assert read_json(run_dir / "manifest.json")["generator"]["predictions_file"] == str(pred)


def test_bad_predictions_never_touch_finished_results(small_cfg, tmp_path):
    pred = tmp_path / "p.jsonl"
    cfg = small_cfg("model=qwen3-8b", "train_size=500", LIMIT, f"model.predictions={pred}")
    _write_predictions(cfg, pred)
    run_dir = run_cell(cfg)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    def break_it(rows):
        rows[2]["type"] = None

    _write_predictions(cfg, pred, break_it)
    with pytest.raises(InputError, match=r"p.jsonl, line 3, field 'type'"):
        run_cell(small_cfg("model=qwen3-8b", "train_size=500", LIMIT,
                           f"model.predictions={pred}", "force=true"))
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_missing_model_says_which_key_to_set(small_cfg):
    with pytest.raises(MissingModelError) as info:
        run_cell(small_cfg("model=qwen3-4b", "train_size=1000", LIMIT))
    msg = str(info.value)
    assert "qwen3-4b" in msg and "train_size=1000" in msg
    assert "model.predictions" in msg and "model.checkpoint" in msg
    assert "predictions/qwen3-4b/1000.jsonl" in msg


def test_changed_metric_setting_recomputes_only_that_metric(small_cfg, caplog):
    base = ("model=demo-knn", "train_size=100", LIMIT)
    run_dir = run_cell(small_cfg(*base))
    macro_f1 = read_json(run_dir / "metrics.json")["metrics"]["type_macro_f1"]
    before = pd.read_parquet(run_dir / "scores.parquet")
    preds_before = (run_dir / "predictions.jsonl").read_bytes()
    caplog.clear()
    with caplog.at_level("INFO"):
        run_cell(small_cfg(*base, "metrics.rouge.use_stemmer=false"))
    text = caplog.text
    assert "predictions unchanged, reusing them" in text
    assert "scoring summarization with rouge on" in text
    assert "scoring summarization with bertscore: unchanged, reused" in text
    assert "scoring tag with set_overlap: unchanged, reused" in text
    after = pd.read_parquet(run_dir / "scores.parquet")
    assert (run_dir / "predictions.jsonl").read_bytes() == preds_before
    pd.testing.assert_series_equal(before["title_bertscore_f1"], after["title_bertscore_f1"])
    assert read_json(run_dir / "metrics.json")["metrics"]["type_macro_f1"] == macro_f1

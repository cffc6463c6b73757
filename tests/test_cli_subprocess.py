"""Entry points as a user runs them (subprocesses): aggregate ``input=``, report, the cache
location settings, ``data=files`` with ``data.tasks``, and a smoke run of the benchmark."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, run_env
from test_openai_trust import ScriptedServer

from pipeline.core.io import read_json
from pipeline.scoring.cell import run_cell

TABLE = """model,family,params_b,train_size,summarization_rougeL,type_accuracy
qwen3-0.6b,qwen3,0.6,500,0.30,0.60
llama-3.2-1b,llama,1.24,2000,0.40,0.80
"""
WEIGHTS = "aggregate.weights={summarization_rougeL: 1.0, type_accuracy: 1.0}"


def _cli(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env or run_env(),
                          capture_output=True, text=True, timeout=600)


def test_aggregate_input_table_then_report(tmp_path):
    table = tmp_path / "metrics.csv"
    table.write_text(TABLE, encoding="utf-8")
    out = tmp_path / "out"
    proc = _cli("pipeline.aggregate", f"input={table}", f"output_dir={out}", WEIGHTS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ranked = pd.read_csv(out / "model_comparison.csv")
    assert ranked["model"].tolist() == ["llama-3.2-1b", "qwen3-0.6b"]
    assert ranked["overall_score"].tolist() == pytest.approx([0.60, 0.45])  # by hand
    proc = _cli("pipeline.report", f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert "llama-3.2-1b" in html and "qwen3-0.6b" in html


def test_bad_input_table_is_one_error_line_and_status_2(tmp_path):
    table = tmp_path / "metrics.csv"
    table.write_text(TABLE.replace("0.80", "lots"), encoding="utf-8")
    proc = _cli("pipeline.aggregate", f"input={table}", f"output_dir={tmp_path / 'out'}",
                WEIGHTS)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "metrics.csv" in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "model_comparison.csv").exists()


def test_files_dataset_with_a_subset_of_tasks(small_cfg, tmp_path):
    """Text-only records (no tags/type) scored on the two text tasks only."""
    records = [{"id": f"d{i}", "article": f"Article {i}. More text.", "summary": f"Sum {i}.",
                "title": f"Title {i}"} for i in range(3)]
    test = tmp_path / "test.jsonl"
    test.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "summary": r["summary"],
                                         "title": "Other words"}) + "\n" for r in records),
                     encoding="utf-8")
    run_dir = run_cell(small_cfg("data=files", f"data.options.test={test}",
                                 "data.tasks=[summarization,title]", "model=qwen3-8b",
                                 f"model.predictions={preds}", "train_size=0",
                                 "tasks.summarization.metrics=[rouge]",
                                 "tasks.title.metrics=[rouge]"))
    metrics = read_json(run_dir / "metrics.json")["metrics"]
    assert metrics["summarization_rouge1"] == pytest.approx(1.0)
    assert metrics["title_rouge1"] == pytest.approx(0.0)
    assert not any(k.startswith(("tag_", "type_")) for k in metrics)


def _generation_files(root: Path) -> list[Path]:
    return sorted(root.rglob("generations/*.jsonl"))


@pytest.mark.parametrize("setting", ["cache_dir", *(pytest.param(s, marks=pytest.mark.slow)
                                                    for s in ("XDG_CACHE_HOME",
                                                              "PIPELINE_CACHE_DIR"))])
def test_cache_location_settings(tmp_path, setting):
    """The generation and BERTScore caches go where the setting points (``generations/``
    and ``bertscore/`` there), and nowhere else."""
    srv = ScriptedServer()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = run_env()
    for key in ("PIPELINE_CACHE_DIR", "XDG_CACHE_HOME"):
        env.pop(key, None)
    env["HOME"] = str(tmp_path / "home")
    where = tmp_path / "chosen"
    args = []
    if setting == "cache_dir":
        args.append(f"cache_dir={where}")
        expected = where / "generations"
    elif setting == "PIPELINE_CACHE_DIR":
        env[setting] = str(where)
        expected = where / "generations"
    else:
        env[setting] = str(where)
        expected = where / "model-comparison" / "generations"
    try:
        proc = _cli("pipeline.compare", "generator=openai", "model=llama-3.2-1b",
                    f"generator.options.base_url={srv.url}", "data.limit=1",
                    "data.n_train=50", "data.n_test=4",
                    "tasks.summarization.metrics=[rouge,bertscore]",
                    "tasks.title.metrics=[rouge]", f"output_dir={tmp_path / 'out'}", *args,
                    env=env)
    finally:
        srv.shutdown()
        srv.server_close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = _generation_files(tmp_path)
    assert files and all(f.parent == expected for f in files), files
    packs = sorted(tmp_path.rglob("*.pack"))
    assert packs and all(p.parent.parent == expected.parent / "bertscore" for p in packs), packs


@pytest.mark.slow
def test_bertscore_benchmark_smoke(tmp_path):
    proc = subprocess.run([sys.executable, "scripts/bench_bertscore.py", "--cells", "1",
                           "--examples", "3", "--skip-bf16", "--skip-processes"], cwd=ROOT,
                          env=run_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    diff = re.search(r"max \|F1 diff\| ([0-9.e+-]+)", proc.stdout)
    assert diff and float(diff.group(1)) < 1e-5, proc.stdout

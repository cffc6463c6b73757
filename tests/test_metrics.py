"""Every metric against its reference implementation (rouge-score, scikit-learn)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, f1_score, jaccard_score
from sklearn.preprocessing import MultiLabelBinarizer

from pipeline.core import text_norm
from pipeline.core.tasks import SUMMARIZATION, TAG, TITLE, TYPE
from pipeline.scoring.metrics import classification, rouge, set_overlap
from pipeline.scoring.metrics.base import check_applicable, directions, get_metric
from pipeline.scoring.score import score_cell

PREDS = [
    "The council approved the new bridge on Monday. Work starts in May.",
    "Scientists found a new beetle species. It lives in old oak forests!",
    "",
    "Prices rose by 4 percent. Analysts expected less.",
]
REFS = [
    ["The city council approved a bridge. Construction begins in May."],
    ["A new species of beetle was discovered in oak forests.",
     "Researchers describe a beetle found in ancient oak woodland. It is rare."],
    ["Nothing happened."],
    ["Consumer prices climbed 4 percent in March. The rise surprised analysts."],
]


# The same texts one sentence per line, split by hand (ROUGE-Lsum's input), keyed by text.
LINES = {
    PREDS[0]: "The council approved the new bridge on Monday.\nWork starts in May.",
    PREDS[1]: "Scientists found a new beetle species.\nIt lives in old oak forests!",
    PREDS[3]: "Prices rose by 4 percent.\nAnalysts expected less.",
    REFS[0][0]: "The city council approved a bridge.\nConstruction begins in May.",
    REFS[1][1]: "Researchers describe a beetle found in ancient oak woodland.\nIt is rare.",
    REFS[3][0]: "Consumer prices climbed 4 percent in March.\nThe rise surprised analysts.",
}


def _reference_rouge(pred, refs, lsum, agg, stem):
    keys = ["rouge1", "rouge2", "rougeLsum" if lsum else "rougeL"]
    scorer = rouge_scorer.RougeScorer(keys, use_stemmer=stem)
    prep = (lambda s: LINES.get(s, s)) if lsum else (lambda s: s)
    per_ref = [scorer.score(prep(r), prep(pred)) for r in refs]
    f = np.array([[s[k].fmeasure for k in keys] for s in per_ref])
    return f.max(axis=0) if agg == "max" else f.mean(axis=0)


@pytest.mark.parametrize("stem", [True, False])
@pytest.mark.parametrize("task", [SUMMARIZATION, TITLE])
@pytest.mark.parametrize("agg", ["max", "mean"])
def test_rouge_matches_rouge_score(task, agg, stem):
    got = rouge.rouge(task, PREDS, REFS, use_stemmer=stem, ref_aggregation=agg)
    for i, (pred, refs) in enumerate(zip(PREDS, REFS, strict=True)):
        want = _reference_rouge(pred, refs, task.multi_sentence, agg, stem)
        have = [got.per_example[k][i] for k in ("rouge1", "rouge2", "rougeL")]
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-12)


def test_use_stemmer_option_reaches_rouge_score_through_config():
    # By hand: with Porter stemming 3 of 3 / 5 unigrams match (F = 0.75); without it none.
    pred, ref = "Councils approving bridges", "The council approves a bridge"
    for stem, f1 in {True: 0.75, False: 0.0}.items():
        want = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=stem).score(ref, pred)
        assert want["rouge1"].fmeasure == pytest.approx(f1)
        table, _ = score_cell([{"id": "a", "title": ref}], [{"id": "a", "title": pred}],
                              {"title": {"metrics": ["rouge"]}},
                              {"rouge": {"use_stemmer": stem}}, ["title"])
        assert table["title_rouge1"][0] == pytest.approx(f1)


def test_rouge_lsum_differs_from_rougeL_on_multi_sentence_text():
    pred = ["Work starts in May. The council approved the bridge."]
    ref = [["The council approved the bridge. Work starts in May."]]
    lsum = rouge.rouge(SUMMARIZATION, pred, ref).per_example["rougeL"][0]
    plain = rouge.rouge(TITLE, pred, ref).per_example["rougeL"][0]
    assert lsum == pytest.approx(1.0) and plain < 0.7


def test_score_multi_is_max_by_fmeasure():
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    want = scorer.score_multi(REFS[1], PREDS[1])["rouge1"].fmeasure
    got = rouge.rouge(TITLE, PREDS[1:2], REFS[1:2]).per_example["rouge1"][0]
    assert got == pytest.approx(want, abs=1e-12)


def test_empty_prediction_scores_zero():
    got = rouge.rouge(TITLE, [""], [["A title"]])
    assert all(got.per_example[k][0] == 0 for k in ("rouge1", "rouge2", "rougeL"))


TAG_PRED = [["Energy", "policy"], [], ["a"], ["x", "y", "X "], [], ["b", "c"]]
TAG_REF = [["energy", "climate"], [], [], ["x", "y"], ["z"], ["c", "b"]]
# Normalised by hand (lower-case, stripped, deduplicated).
TAG_PRED_NORMALISED = [["energy", "policy"], [], ["a"], ["x", "y"], [], ["b", "c"]]
TAG_REF_NORMALISED = [["climate", "energy"], [], [], ["x", "y"], ["z"], ["b", "c"]]


def test_set_overlap_matches_sklearn_samples_average():
    got = set_overlap.set_overlap(TAG, TAG_PRED, TAG_REF).per_example
    norm_p, norm_r = TAG_PRED_NORMALISED, TAG_REF_NORMALISED
    mlb = MultiLabelBinarizer().fit(norm_p + norm_r)
    yp, yr = mlb.transform(norm_p), mlb.transform(norm_r)
    for i in range(len(TAG_PRED)):
        j = jaccard_score(yr[i:i + 1], yp[i:i + 1], average="samples", zero_division=1)
        f = f1_score(yr[i:i + 1], yp[i:i + 1], average="samples", zero_division=1)
        assert got["jaccard"][i] == pytest.approx(j)
        assert got["f1"][i] == pytest.approx(f)
    np.testing.assert_array_equal(got["exact_match"], [0, 1, 0, 1, 0, 1])


def test_set_overlap_empty_set_cases():
    got = set_overlap.set_overlap(TAG, [[], [], ["a"]], [[], ["a"], []]).per_example
    np.testing.assert_array_equal(got["jaccard"], [1, 0, 0])
    np.testing.assert_array_equal(got["f1"], [1, 0, 0])


def test_classification_matches_sklearn():
    rng = np.random.default_rng(0)
    labels = ["sports", "science", "business", "culture"]
    ref = list(rng.choice(labels, 200))
    pred = [r if rng.random() < 0.6 else str(rng.choice(labels + ["other"])) for r in ref]
    got = classification.classification(TYPE, pred, ref)
    assert got.per_example["accuracy"].mean() == pytest.approx(accuracy_score(ref, pred))
    assert got.corpus["macro_f1"] == pytest.approx(
        f1_score(ref, pred, average="macro", zero_division=0))


def test_label_normalisation():
    got = classification.classification(TYPE, [" Sports", "straße"], ["sports", "STRASSE"])
    assert got.per_example["accuracy"].tolist() == [1, 0]  # lower-cased, not case-folded


def test_macro_f1_edge_cases():
    assert classification.macro_f1([], []) == 0.0
    with pytest.raises(ValueError):
        classification.macro_f1(["a", "b"], ["a"])


@pytest.mark.parametrize("module", [rouge, set_overlap, classification, text_norm])
def test_metric_doc_examples_run(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_metric_does_not_fit_wrong_task_kind():
    with pytest.raises(ValueError, match="text tasks"):
        check_applicable(TAG, get_metric("rouge"))


def test_directions_come_from_registration():
    d = directions({"type": {"metrics": ["classification"]},
                    "summarization": {"metrics": ["rouge"]}})
    rouge_cols = {f"summarization_{t}{m}": True for t in ("rouge1", "rouge2", "rougeL")
                  for m in ("", "_precision", "_recall")}
    assert d == {"type_accuracy": True, "type_macro_f1": True, **rouge_cols,
                 "perplexity": False}

"""Tests for the demo learners (imported directly, registered by name)."""

from __future__ import annotations

import pytest

from pipeline.core.registry import LEARNERS
from pipeline.data.demo_corpus import TYPE_NAMES, build_demo_corpus
from pipeline.generators import demo_learners as dl

CLASSES = {"lead": dl.LeadBaseline, "knn": dl.KnnRetrieval, "linear": dl.LinearLearner,
           "nb": dl.NaiveBayesLearner}
SMALL = {"lead": {}, "knn": {}, "linear": {"n_features": 2**12}, "nb": {}}


@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict], list[dict]]:
    return build_demo_corpus(seed=13, n_train=2000, n_test=200)


def _fit_predict(name: str, train: list[dict], test: list[dict]) -> tuple[object, list[dict]]:
    learner = CLASSES[name](seed=0, **SMALL[name])
    learner.fit(train)
    return learner, learner.predict(test)


def test_registered() -> None:
    for name, cls in CLASSES.items():
        assert LEARNERS._items[name] is cls


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_schema_and_determinism(name: str, corpus: tuple[list[dict], list[dict]]) -> None:
    train, test = corpus
    learner, preds = _fit_predict(name, train[:300], test[:40])
    assert [p["id"] for p in preds] == [r["id"] for r in test[:40]]
    for p in preds:
        assert set(p) == {"id", "summary", "title", "tags", "type"}
        assert p["type"] in TYPE_NAMES and p["summary"] and p["title"]
        assert p["tags"] == sorted(set(p["tags"])) and all(t == t.lower() for t in p["tags"])
    assert _fit_predict(name, train[:300], test[:40])[1] == preds
    assert learner.num_parameters() >= 0


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_empty_training_set(name: str, corpus: tuple[list[dict], list[dict]]) -> None:
    learner, preds = _fit_predict(name, [], corpus[1][:5])
    assert len(preds) == 5 and learner.num_parameters() == 0


def test_predict_reads_only_article(corpus: tuple[list[dict], list[dict]]) -> None:
    train, test = corpus
    stripped = [{"id": r["id"], "article": r["article"]} for r in test[:20]]
    learner, preds = _fit_predict("linear", train[:300], test[:20])
    assert learner.predict(stripped) == preds


def test_baseline_ignores_training_data(corpus: tuple[list[dict], list[dict]]) -> None:
    train, test = corpus
    assert _fit_predict("lead", train[:10], test)[1] == _fit_predict("lead", train, test)[1]


def test_parameters_grow_with_data(corpus: tuple[list[dict], list[dict]]) -> None:
    train, test = corpus
    for name in ("knn", "nb"):
        small = _fit_predict(name, train[:200], test[:5])[0].num_parameters()
        large = _fit_predict(name, train[:800], test[:5])[0].num_parameters()
        assert large > small > 0
    tiny = dl.LinearLearner(n_features=2**10)
    tiny.fit(train[:300])
    assert 0 < tiny.num_parameters() < _fit_predict("linear", train[:300], test[:5])[0] \
        .num_parameters()


def test_learned_beats_baseline(corpus: tuple[list[dict], list[dict]]) -> None:
    train, test = corpus

    def accuracy(preds: list[dict]) -> float:
        return sum(p["type"] == r["type"] for p, r in zip(preds, test, strict=True)) / len(test)

    _, linear = _fit_predict("linear", train, test)
    assert accuracy(linear) > accuracy(_fit_predict("lead", train, test)[1]) + 0.2

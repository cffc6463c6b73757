"""Tests for the built-in demo corpus."""

from __future__ import annotations

import json

import pytest

from pipeline.data.demo_corpus import TAG_NAMES, TYPE_NAMES, build_demo_corpus


@pytest.fixture(scope="module")
def corpus() -> tuple[list[dict], list[dict]]:
    return build_demo_corpus(seed=13, n_train=300, n_test=50)


def test_deterministic_byte_identical(corpus: tuple[list[dict], list[dict]]) -> None:
    again = build_demo_corpus(seed=13, n_train=300, n_test=50)
    assert json.dumps(again, sort_keys=True) == json.dumps(corpus, sort_keys=True)
    other = build_demo_corpus(seed=14, n_train=300, n_test=50)
    assert other[0][0]["article"] != corpus[0][0]["article"]


def test_prefix_and_fixed_test(corpus: tuple[list[dict], list[dict]]) -> None:
    small_train, small_test = build_demo_corpus(seed=13, n_train=100, n_test=50)
    assert small_train == corpus[0][:100]
    assert small_test == corpus[1]


def test_schema(corpus: tuple[list[dict], list[dict]]) -> None:
    train, test = corpus
    assert train[0]["id"] == "demo-train-00001" and test[0]["id"] == "demo-test-00001"
    assert len({r["id"] for r in train + test}) == len(train) + len(test)
    for r in train + test:
        assert set(r) == {"id", "article", "title", "summary", "tags", "type", "meta"}
        assert r["type"] in TYPE_NAMES
        assert 1 <= len(r["tags"]) <= 5 and r["tags"] == sorted(set(r["tags"]))
        assert set(r["tags"]) <= set(TAG_NAMES)
        assert r["meta"]["length_bucket"] in ("short", "medium", "long")
        assert r["meta"]["n_words"] == len(r["article"].split())
        assert r["title"] and r["summary"] and "{" not in r["article"] + r["summary"]
        assert r["summary"] not in r["article"]


def test_variety(corpus: tuple[list[dict], list[dict]]) -> None:
    train = corpus[0]
    assert {r["type"] for r in train} == set(TYPE_NAMES)
    assert {r["meta"]["length_bucket"] for r in train} == {"short", "medium", "long"}
    assert len({t for r in train for t in r["tags"]}) >= 30
    assert len({r["article"][:60] for r in train}) > 0.9 * len(train)

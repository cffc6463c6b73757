"""Parsing generated text into tags, type labels and clean summaries/titles."""

from __future__ import annotations

import pytest

from pipeline.generators.parsing import clean_text, parse_label, parse_tags

ALLOWED = ["energy", "local government", "sport"]


@pytest.mark.parametrize("text", [
    "energy, local government",
    "Tags: Energy; Local Government.",
    "- energy\n- local government",
    "1. energy\n2) local government",
    "* energy\n\u2022 local government",
    '["energy", "local government"]',
    '```json\n{"tags": ["energy", "Local government"]}\n```',
    "<think>maybe sport?</think>energy, local government",
])
def test_tag_formats(text):
    assert parse_tags(text, ALLOWED) == (["energy", "local government"], 0, True)


def test_unknown_tags_are_dropped_and_counted():
    assert parse_tags("energy, weather, crime", ALLOWED) == (["energy"], 2, True)


def test_tag_failure_is_reported():
    assert parse_tags("I cannot tell.", ALLOWED) == ([], 1, False)
    assert parse_tags("", ALLOWED) == ([], 0, False)


def test_tags_without_known_labels_keep_every_item():
    assert parse_tags("Tags: B, a", None) == (["a", "b"], 0, True)


@pytest.mark.parametrize("text", ["sport", "Type: Sport", '{"type": "sport"}', '["sport"]',
                                  "The article is about sport.", "- sport\n"])
def test_label_formats(text):
    assert parse_label(text, ALLOWED) == ("sport", True)


def test_label_first_mentioned_wins_and_failure_is_reported():
    assert parse_label("energy rather than sport", ALLOWED) == ("energy", True)
    assert parse_label("weather", ALLOWED) == ("weather", False)
    assert parse_label("", ALLOWED) == ("", False)


def test_clean_text():
    assert clean_text('Title: "Council backs plan"\nmore', first_line=True) == "Council backs plan"
    assert clean_text("Summary: One. Two.") == "One. Two."
    assert clean_text("<think>hmm</think>\nA summary.") == "A summary."

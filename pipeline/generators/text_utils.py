"""Regex sentence splitting and tokenising shared by the demo learners (no NLTK data)."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'])\s+")
_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at ``.``, ``!`` or ``?`` (optionally quoted) + whitespace."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def tokens(text: str) -> list[str]:
    """Lowercase word tokens (hyphens and apostrophes kept inside words)."""
    return _TOKEN.findall(text.lower())


def overlap_precision(candidate: list[str], reference: set[str]) -> float:
    """Share of ``candidate`` tokens that occur in ``reference`` (0 for an empty candidate)."""
    if not candidate:
        return 0.0
    return sum(tok in reference for tok in candidate) / len(candidate)

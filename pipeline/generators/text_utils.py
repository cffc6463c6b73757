"""Tokenising and word-overlap helpers shared by the demo learners (no NLTK data)."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lowercase word tokens (hyphens and apostrophes kept inside words)."""
    return _TOKEN.findall(text.lower())


def overlap_precision(candidate: list[str], reference: set[str]) -> float:
    """Share of ``candidate`` tokens that occur in ``reference`` (0 for an empty candidate)."""
    if not candidate:
        return 0.0
    return sum(tok in reference for tok in candidate) / len(candidate)

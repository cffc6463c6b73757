"""Text normalisation shared by metrics: sentence splitting and tag normalisation."""

from __future__ import annotations

import re
import unicodedata

_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation followed by a capital or digit; keep newlines.

    >>> split_sentences("Rain fell. The river rose! Was it 3 m? 4 m.")
    ['Rain fell.', 'The river rose!', 'Was it 3 m?', '4 m.']
    """
    out: list[str] = []
    for line in text.splitlines():
        out.extend(s.strip() for s in _SENT_END.split(line.strip()) if s.strip())
    return out


def normalize_tag(tag: str) -> str:
    """NFKC, lower-case, collapse whitespace, strip surrounding punctuation and ``#``.

    >>> normalize_tag("  Climate   Change! ")
    'climate change'
    """
    tag = unicodedata.normalize("NFKC", str(tag)).lower()
    tag = " ".join(tag.split())
    return tag.strip(" \t.,;:!?\"'#()[]{}")


def normalize_tag_set(tags: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The set of normalised, non-empty tags."""
    return frozenset(t for t in (normalize_tag(x) for x in tags) if t)

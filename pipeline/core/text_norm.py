"""Text normalisation shared by metrics: sentence splitting and tag normalisation."""

from __future__ import annotations

import re
import unicodedata

_NEXT = r"(?=[\"'(\[]?[A-Z0-9])"  # the next sentence starts with a capital or a digit
_SENT_END = re.compile(rf"(?<=[.!?])\s+{_NEXT}|(?<=[.!?][\"')\]])\s+{_NEXT}")


def rouge_sentences(text: str) -> list[str]:
    """Sentences for ROUGE-Lsum: each line split by sentencex (Wikimedia's rule-based,
    offline splitter: knows abbreviations, quotes, a lower-case word after a full stop).

    >>> rouge_sentences('Dr. Lee came at 5 p.m. on Monday. the rain stopped. "Go!" He went.')
    ['Dr. Lee came at 5 p.m. on Monday.', 'the rain stopped.', '"Go!"', 'He went.']
    """
    from sentencex import segment

    return [s.strip() for line in text.splitlines() if line.strip()
            for s in segment("en", line.strip()) if s.strip()]


def split_sentences(text: str) -> list[str]:
    """Split on sentence-final punctuation followed by a capital or digit; keep newlines.

    The demo learners use this rule: the demo corpus is generated one sentence at a time, so
    the rule splits it exactly. Real text goes through :func:`rouge_sentences`.

    >>> split_sentences('Rain fell. She said: "It rose!" Was it 3 m? 4 m. e.g. not here.')
    ['Rain fell.', 'She said: "It rose!"', 'Was it 3 m?', '4 m. e.g. not here.']
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

"""Turn generated text into predictions: clean text outputs, parse tag lists and type labels.

Tag and type outputs are parsed robustly: JSON arrays/objects (also inside code fences),
comma/semicolon lists, bullets, numbered lists and ``Tags: a, b`` prefixes. When the allowed
labels are known (from the training pool), outputs are matched to them case-insensitively.
A parse failure (nothing usable) is reported by the ``ok`` flag, never silently dropped.
An output that echoes the label list gets no credit: a tag list naming (nearly) every allowed
tag or more tags than a sane answer has, or a type answer naming several allowed types, is a
parse failure. Summaries cut at the token limit can be trimmed to their last full sentence.
"""

from __future__ import annotations

import json
import re

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z]*")
_PREFIX = re.compile(r"^\s*(summary|title|headline|tags?|labels?|types?|category|answer)"
                     r"\s*[:\-]\s*", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s*")
_JSON = re.compile(r"(\[.*?\]|\{.*?\})", re.DOTALL)
_JSON_KEYS = ("tags", "labels", "type", "label", "category", "answer")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
ECHO_FRACTION = 0.8  # a tag list naming this share of >= ECHO_MIN_LABELS allowed tags: echo
ECHO_MIN_LABELS = 5
MAX_TYPE_MENTIONS = 2  # a type answer naming more allowed types than this: echo


def clean_text(text: str, first_line: bool = False) -> str:
    """Generated text without think blocks, a ``Summary:``-style prefix and outer quotes."""
    text = _FENCE.sub("", _THINK.sub("", text)).strip()
    if first_line:
        text = next((line for line in text.splitlines() if line.strip()), "")
    return _PREFIX.sub("", text).strip().strip("\"'").strip()


def trim_to_sentence(text: str) -> str:
    """``text`` up to the end of its last complete sentence (unchanged when it has none)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[:ends[-1].end()] if ends else text


def _json_items(text: str) -> list[str] | None:
    """Items of the first JSON array or object (its tags/labels/type value) in ``text``."""
    for match in _JSON.finditer(text):
        try:
            value = json.loads(match.group(1))
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            value = next((value[k] for k in _JSON_KEYS if k in value), None)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
            return [str(v) for v in value]
    return None


def split_items(text: str) -> list[str]:
    """Items of a list written as JSON, bullets, numbered lines or comma/semicolon lists."""
    text = clean_text(text)
    items = _json_items(text)
    if items is None:
        items = []
        for line in text.splitlines():
            line = _PREFIX.sub("", _BULLET.sub("", line))
            items.extend(re.split(r"[,;]", line))
    cleaned = (re.sub(r"\s+", " ", i).strip().strip("\"'`.").strip().lower() for i in items)
    return list(dict.fromkeys(i for i in cleaned if i))


def parse_tags(text: str, allowed: list[str] | None, max_tags: int | None = None
               ) -> tuple[list[str], int, bool]:
    """``(tags, n_unknown, ok)``: allowed tags found (all items when ``allowed`` is None).

    ``n_unknown`` counts items outside ``allowed`` (dropped); ``ok`` is False when no tag
    could be parsed, or when the output is an echo of the label list: more than
    ``max_tags`` tags, or at least ``ECHO_FRACTION`` of ``ECHO_MIN_LABELS`` or more allowed
    tags (then ``tags`` is empty).
    """
    items = split_items(text)
    if allowed is None:
        return sorted(items), 0, bool(items)
    canon = {a.lower(): a for a in allowed}
    tags = sorted({canon[i] for i in items if i in canon})
    unknown = sum(i not in canon for i in items)
    echo = (len(allowed) >= ECHO_MIN_LABELS and len(tags) >= ECHO_FRACTION * len(allowed))
    if echo or (max_tags is not None and len(tags) > max_tags):
        return [], unknown, False
    return tags, unknown, bool(tags)


def parse_label(text: str, allowed: list[str] | None) -> tuple[str, bool]:
    """``(label, ok)``: the allowed label given (or else mentioned first) in ``text``.

    Without ``allowed`` the first item of the output is the label. On failure the label is
    the cleaned first item (or "") and ``ok`` is False; an output naming more than
    ``MAX_TYPE_MENTIONS`` allowed labels (an echo of the list) fails with the label "".
    """
    items = split_items(text)
    first = items[0] if items else ""
    if allowed is None:
        return first, bool(first)
    canon = {a.lower(): a for a in allowed}
    lowered = clean_text(text).lower()
    found = [(m.start(), a) for a in canon
             if (m := re.search(rf"(?<!\w){re.escape(a)}(?!\w)", lowered))]
    if len(found) > MAX_TYPE_MENTIONS:
        return "", False
    if first in canon:
        return canon[first], True
    if found:
        return canon[min(found)[1]], True
    return first, False

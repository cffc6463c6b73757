"""Turn generated text into predictions: clean text outputs, parse tag lists and type labels.

Tag and type outputs are parsed robustly: JSON arrays/objects (also inside code fences),
comma/semicolon lists, bullets, numbered lists and ``Tags: a, b`` prefixes. When the allowed
labels are known (from the training pool), outputs are matched to them case-insensitively.
A parse failure (nothing usable) is reported by the ``ok`` flag, never silently dropped.
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


def clean_text(text: str, first_line: bool = False) -> str:
    """Generated text without think blocks, a ``Summary:``-style prefix and outer quotes."""
    text = _FENCE.sub("", _THINK.sub("", text)).strip()
    if first_line:
        text = next((line for line in text.splitlines() if line.strip()), "")
    return _PREFIX.sub("", text).strip().strip("\"'").strip()


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


def parse_tags(text: str, allowed: list[str] | None) -> tuple[list[str], int, bool]:
    """``(tags, n_unknown, ok)``: allowed tags found (all items when ``allowed`` is None).

    ``n_unknown`` counts items outside ``allowed`` (dropped); ``ok`` is False when no tag
    could be parsed.
    """
    items = split_items(text)
    if allowed is None:
        return sorted(items), 0, bool(items)
    canon = {a.lower(): a for a in allowed}
    tags = sorted({canon[i] for i in items if i in canon})
    return tags, sum(i not in canon for i in items), bool(tags)


def parse_label(text: str, allowed: list[str] | None) -> tuple[str, bool]:
    """``(label, ok)``: the allowed label given (or else mentioned first) in ``text``.

    Without ``allowed`` the first item of the output is the label. On failure the label is
    the cleaned first item (or "") and ``ok`` is False.
    """
    items = split_items(text)
    first = items[0] if items else ""
    if allowed is None:
        return first, bool(first)
    canon = {a.lower(): a for a in allowed}
    if first in canon:
        return canon[first], True
    lowered = clean_text(text).lower()
    found = [(m.start(), a) for a in canon
             if (m := re.search(rf"(?<!\w){re.escape(a)}(?!\w)", lowered))]
    if found:
        return canon[min(found)[1]], True
    return first, False

"""Overlap of predicted and reference tag sets: exact match, Jaccard and F1.

Tags are normalised first (NFKC, lower-case, whitespace collapsed, surrounding punctuation
removed; see ``normalize_tag``) and compared as sets, so order and duplicates do not matter.
Empty sets: when both sets are empty all three scores are 1 (nothing to find, nothing
wrongly found); when exactly one is empty they are 0. Range 0-1, higher is better. The
per-example F1 equals scikit-learn's ``f1_score(average="samples", zero_division=1)``.

>>> from pipeline.core.tasks import TAG
>>> r = set_overlap(TAG, [["Energy", "policy"]], [["energy", "climate"]])
>>> [round(float(r.per_example[k][0]), 4) for k in ("exact_match", "jaccard", "f1")]
[0.0, 0.3333, 0.5]
"""

from __future__ import annotations

import numpy as np

from pipeline.core.tasks import Task
from pipeline.core.text_norm import normalize_tag_set
from pipeline.scoring.metrics.base import MetricResult, register_metric, unit_bounds


def _scores(pred: frozenset[str], ref: frozenset[str]) -> tuple[float, float, float]:
    if not pred and not ref:
        return 1.0, 1.0, 1.0
    inter = len(pred & ref)
    jaccard = inter / len(pred | ref)
    f1 = 2 * inter / (len(pred) + len(ref))
    return float(pred == ref), jaccard, f1


@register_metric("set_overlap", outputs={"exact_match": True, "jaccard": True, "f1": True},
                 kinds=("set",), description="exact match, Jaccard and F1 of normalised tag sets")
def set_overlap(task: Task, predictions: list[list[str]],
                references: list[list[str]]) -> MetricResult:
    """Per-example exact match, Jaccard and F1 of tag sets."""
    rows = [_scores(normalize_tag_set(p), normalize_tag_set(r))
            for p, r in zip(predictions, references, strict=True)]
    arr = np.asarray(rows, dtype=float).reshape(-1, 3)
    per_example = {"exact_match": arr[:, 0], "jaccard": arr[:, 1], "f1": arr[:, 2]}
    return MetricResult(per_example=per_example, bounds=unit_bounds(per_example))

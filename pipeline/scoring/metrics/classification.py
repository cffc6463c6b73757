"""Single-label classification: accuracy (per example) and macro-F1 (corpus level).

Labels are compared after stripping surrounding whitespace and lower-casing. Macro-F1 is
the unweighted mean of per-class F1 over every label that occurs in the references or the
predictions (scikit-learn's ``f1_score(average="macro", zero_division=0)``). Range 0-1,
higher is better.

>>> from pipeline.core.tasks import TYPE
>>> r = classification(TYPE, ["sports", "science", "sports"], ["sports", "sports", "science"])
>>> float(r.per_example["accuracy"].mean()), round(r.corpus["macro_f1"], 4)
(0.3333333333333333, 0.25)
"""

from __future__ import annotations

import numpy as np

from pipeline.core.tasks import Task
from pipeline.scoring.metrics.base import MetricResult, register_metric, unit_bounds


def _norm(label: object) -> str:
    return str(label).strip().lower()


def macro_f1(predictions: list[str], references: list[str]) -> float:
    """Unweighted mean F1 over the union of reference and predicted labels."""
    pred = [_norm(p) for p in predictions]
    ref = [_norm(r) for r in references]
    f1s = []
    for label in sorted(set(pred) | set(ref)):
        tp = sum(p == label and r == label for p, r in zip(pred, ref, strict=True))
        n_pred, n_ref = pred.count(label), ref.count(label)
        f1s.append(2 * tp / (n_pred + n_ref) if n_pred + n_ref else 0.0)
    return float(np.mean(f1s)) if f1s else 0.0


@register_metric("classification", outputs={"accuracy": True, "macro_f1": True},
                 kinds=("label",), description="accuracy and macro-F1 of one label per example")
def classification(task: Task, predictions: list[str], references: list[str]) -> MetricResult:
    """Per-example correctness and corpus macro-F1."""
    correct = np.array([_norm(p) == _norm(r) for p, r in zip(predictions, references,
                                                                strict=True)], dtype=float)
    per_example = {"accuracy": correct}
    corpus = {"macro_f1": macro_f1(predictions, references)}
    return MetricResult(per_example=per_example, corpus=corpus,
                        bounds=unit_bounds(per_example, corpus))

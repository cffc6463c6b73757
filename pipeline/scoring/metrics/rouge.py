"""ROUGE-1/2/L with Google's rouge-score package (Lin, 2004).

Inputs: one prediction string and one or more reference strings per example.
Outputs (per example, range 0-1, higher is better): ``rouge1``, ``rouge2``, ``rougeL`` are
F-measures; with ``measures`` including ``precision`` / ``recall`` also ``rouge1_precision``,
``rouge1_recall`` and so on (``measures=[f1]`` by default; F1 keeps the bare names).
For multi-sentence tasks ``rougeL`` is ROUGE-Lsum with one sentence per line, as the
published ROUGE-1.5.5 script computes summary-level LCS; lines are split into sentences
with sentencex (``pipeline.core.text_norm.rouge_sentences``). Porter stemming is on by default.
Several references: ``ref_aggregation="max"`` keeps the reference with the best F-measure per
ROUGE type, and reports its precision and recall too (rouge-score's ``score_multi``);
``"mean"`` averages each measure over references (the SummEval convention).

>>> from pipeline.core.tasks import TITLE
>>> r = rouge(TITLE, ["council approves new bridge"], [["City council approves bridge"]])
>>> round(float(r.per_example["rouge1"][0]), 4)
0.75
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from pipeline.core.errors import ConfigError
from pipeline.core.tasks import Task
from pipeline.core.text_norm import rouge_sentences
from pipeline.scoring.metrics.base import MetricResult, register_metric, unit_bounds

TYPES = ("rouge1", "rouge2", "rougeL")
MEASURES = ("precision", "recall", "f1")
Measure = Literal["precision", "recall", "f1"]
_SCORE_FIELD = {"precision": "precision", "recall": "recall", "f1": "fmeasure"}
PROGRESS_MIN_EXAMPLES = 500  # show a progress bar (on a terminal) from this many examples


def output_name(rouge_type: str, measure: str) -> str:
    """``rouge1`` for F1 (today's name), ``rouge1_precision`` / ``rouge1_recall`` otherwise."""
    return rouge_type if measure == "f1" else f"{rouge_type}_{measure}"


def produced(options: Mapping[str, Any]) -> list[str]:
    """The outputs computed with these options (``measures`` selects them)."""
    measures = list(options.get("measures", ["f1"]))
    if not measures or len(set(measures)) != len(measures):
        raise ConfigError("metrics.rouge.measures must name each of precision, recall, f1 at "
                          f"most once and at least one of them, got {measures!r}")
    return [output_name(t, m) for m in measures for t in TYPES]


def _lines(text: str) -> str:
    return "\n".join(rouge_sentences(text))


@register_metric("rouge", outputs={output_name(t, m): True for m in MEASURES for t in TYPES},
                 kinds=("text",), produces=produced,
                 description="ROUGE-1/2/L F1 (and P/R on request; rouge-score; ROUGE-Lsum "
                             "for multi-sentence tasks)")
def rouge(task: Task, predictions: list[str], references: list[list[str]],
          use_stemmer: bool = True, ref_aggregation: Literal["max", "mean"] = "max",
          measures: Sequence[Measure] = ("f1",)) -> MetricResult:
    """Per-example ROUGE precision / recall / F-measure, as ``measures`` asks."""
    if ref_aggregation not in ("max", "mean"):
        raise ConfigError(f"metrics.rouge.ref_aggregation must be 'max' or 'mean', "
                          f"got {ref_aggregation!r}")
    produced({"measures": measures})
    lcs = "rougeLsum" if task.multi_sentence else "rougeL"
    from rouge_score import rouge_scorer  # imports nltk: only when ROUGE is computed

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", lcs], use_stemmer=use_stemmer)
    prep = _lines if task.multi_sentence else (lambda s: s)
    keys = ("rouge1", "rouge2", lcs)
    scores = np.zeros((len(predictions), len(keys), len(measures)))
    pairs = tqdm(zip(predictions, references, strict=True), total=len(predictions),
                 desc=f"ROUGE ({task.name})", unit="example", leave=False,
                 disable=None if len(predictions) >= PROGRESS_MIN_EXAMPLES else True)
    for i, (pred, refs) in enumerate(pairs):
        per_ref = [scorer.score(prep(ref), prep(pred)) for ref in refs]
        for j, key in enumerate(keys):
            best = int(np.argmax([s[key].fmeasure for s in per_ref]))  # first on ties
            for k, m in enumerate(measures):
                values = [getattr(s[key], _SCORE_FIELD[m]) for s in per_ref]
                scores[i, j, k] = values[best] if ref_aggregation == "max" else np.mean(values)
    per_example = {output_name(t, m): scores[:, j, k]
                   for k, m in enumerate(measures) for j, t in enumerate(TYPES)}
    return MetricResult(per_example=per_example, bounds=unit_bounds(per_example))

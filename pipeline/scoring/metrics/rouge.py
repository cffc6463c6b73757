"""ROUGE-1/2/L F-measure with Google's rouge-score package (Lin, 2004).

Inputs: one prediction string and one or more reference strings per example.
Outputs (per example, range 0-1, higher is better): ``rouge1``, ``rouge2``, ``rougeL``.
For multi-sentence tasks ``rougeL`` is ROUGE-Lsum with one sentence per line, as the
published ROUGE-1.5.5 script computes summary-level LCS. Porter stemming is on by default.
Several references: ``ref_aggregation="max"`` keeps the reference with the best F-measure per
ROUGE type (rouge-score's ``score_multi``); ``"mean"`` averages over references (the
SummEval convention).

>>> from pipeline.core.tasks import TITLE
>>> r = rouge(TITLE, ["council approves new bridge"], [["City council approves bridge"]])
>>> round(float(r.per_example["rouge1"][0]), 4)
0.75
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from pipeline.core.errors import ConfigError
from pipeline.core.tasks import Task
from pipeline.core.text_norm import split_sentences
from pipeline.scoring.metrics.base import MetricResult, register_metric

OUTPUTS = ("rouge1", "rouge2", "rougeL")
PROGRESS_MIN_EXAMPLES = 500  # show a progress bar (on a terminal) from this many examples


def _lines(text: str) -> str:
    return "\n".join(split_sentences(text))


@register_metric("rouge", outputs={o: True for o in OUTPUTS}, kinds=("text",),
                 description="ROUGE-1/2/L F1 (rouge-score; ROUGE-Lsum for multi-sentence tasks)")
def rouge(task: Task, predictions: list[str], references: list[list[str]],
          use_stemmer: bool = True, ref_aggregation: str = "max") -> MetricResult:
    """Per-example ROUGE F-measures."""
    if ref_aggregation not in ("max", "mean"):
        raise ConfigError(f"ref_aggregation must be 'max' or 'mean', got {ref_aggregation!r}")
    lcs = "rougeLsum" if task.multi_sentence else "rougeL"
    from rouge_score import rouge_scorer  # imports nltk: only when ROUGE is computed

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", lcs], use_stemmer=use_stemmer)
    prep = _lines if task.multi_sentence else (lambda s: s)
    scores = np.zeros((len(predictions), 3))
    pairs = tqdm(zip(predictions, references, strict=True), total=len(predictions),
                 desc=f"ROUGE ({task.name})", unit="example", leave=False,
                 disable=None if len(predictions) >= PROGRESS_MIN_EXAMPLES else True)
    for i, (pred, refs) in enumerate(pairs):
        per_ref = [scorer.score(prep(ref), prep(pred)) for ref in refs]
        for j, key in enumerate(("rouge1", "rouge2", lcs)):
            values = [s[key].fmeasure for s in per_ref]
            scores[i, j] = max(values) if ref_aggregation == "max" else float(np.mean(values))
    return MetricResult(per_example={o: scores[:, j] for j, o in enumerate(OUTPUTS)})

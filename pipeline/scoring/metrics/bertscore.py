"""BERTScore precision, recall and F1 (Zhang et al., 2019) with the project's engine.

Inputs: one candidate string and one or more reference strings per example. Outputs per
example: ``bertscore_precision``, ``bertscore_recall``, ``bertscore_f1`` (higher is better;
cosine-based, roughly 0-1 without rescaling). Options are those of
:func:`pipeline.scoring.bertscore.get_scorer` (encoder, layer, idf, baseline rescaling, dtype,
reference aggregation, ``cache``). Embeddings are cached on disk under
``<cache_dir>/bertscore``, so a text seen in any earlier cell of a sweep is not encoded
again; ``cache="refresh"`` (what ``force=true`` uses) encodes every text again, ``"off"``
bypasses the cache. Each output's range (``[-1, 1]``, mapped through the baseline when
rescaled) is declared for the scoring stage's check. With ``idf`` on, IDF weights come from
the references of the scored examples, as in bert_score. The encoder's weight and tokenizer
files and the baseline file are checksummed: replacing them re-scores finished cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pipeline.core.paths import bertscore_cache_dir
from pipeline.core.tasks import Task
from pipeline.scoring.bertscore import BertScorer, get_scorer
from pipeline.scoring.bertscore.engine import files_checksum
from pipeline.scoring.metrics.base import MetricResult, register_metric

OUTPUTS = ("bertscore_precision", "bertscore_recall", "bertscore_f1")


def scorer_for(options: dict[str, Any], cache_dir: str | None = None) -> BertScorer:
    """The process-wide scorer for these options (the encoder is loaded once), caching
    under ``<cache_dir>/bertscore``."""
    return get_scorer(cache_dir=bertscore_cache_dir(cache_dir), **options)


def input_files(options: Mapping[str, Any], cache_dir: str | None) -> str:
    """Checksum of the encoder's and the baseline's files these options score with."""
    named = {k: options[k] for k in ("model", "rescale", "baseline_path", "lang")
             if k in options}
    return files_checksum(**named, cache_dir=bertscore_cache_dir(cache_dir))


@register_metric("bertscore", outputs={o: True for o in OUTPUTS}, kinds=("text",),
                 description="BERTScore P/R/F1 (own engine, exact to bert_score)",
                 inputs=input_files)
def bertscore(task: Task, predictions: list[str], references: list[list[str]],
              cache_dir: str | None = None, **options: Any) -> MetricResult:
    """Per-example BERTScore precision, recall and F1."""
    scorer = scorer_for(options, cache_dir)
    out = scorer.score(list(predictions), [list(r) for r in references])
    return MetricResult(per_example={f"bertscore_{k}": v for k, v in out.items()},
                        bounds={f"bertscore_{k}": v for k, v in scorer.bounds().items()})


bertscore.options_signature = get_scorer  # type: ignore[attr-defined]  # checked by scoring

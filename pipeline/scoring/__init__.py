"""Stage 4, score (with ``python -m pipeline.compare``, one cell = one job): a cell's
predictions -> per-example scores.

Reads the test split and the generator's predictions; writes
``runs/<model>/<train_size>/{predictions.jsonl, scores.parquet, metrics.json, manifest.json}``.
Metrics live in ``metrics/`` (one module each), the BERTScore engine in ``bertscore/``.
"""

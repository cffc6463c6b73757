"""Stage 5, aggregate: every finished cell -> ranking, tables and the written analysis.

Reads ``<output_dir>/runs/*/*/{metrics.json, scores.parquet, manifest.json}`` (or a per-model
table, ``input=<csv>``); writes ``model_comparison.csv``, ``tables/*.{csv,md}`` and
``analysis.md``. Light: imports no torch, transformers, scikit-learn or onnxruntime.
"""

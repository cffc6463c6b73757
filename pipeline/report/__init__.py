"""Stage 6, report: the offline HTML report of ``python -m pipeline.report``.

Reads the published aggregate set (``model_comparison.csv``, ``tables/``, ``analysis.md``),
the cells' manifests and one cell's run folder with its test records; writes
``report/index.html``, ``report/plotly.min.js`` and ``report/report.json``. Reusable
sections live in ``html.py`` (``Section``, ``write_report``) and ``bertscore_suite.py``.
"""

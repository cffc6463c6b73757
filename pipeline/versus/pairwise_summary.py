"""The numbers of ``pairwise/<candidate>_vs_<reference>/summary.json``.

Per metric column: mean, median and sample standard deviation (ddof=1) over the shared
examples, and the quality band of the mean where the metric has bands. ``pairwise.bands``
maps a metric name (matched as an ``_``-separated part of the column, e.g. ``bertscore`` ->
``summarization_bertscore_f1``) to its bands, a band name -> inclusive lower bound (default
for BERTScore: Poor 0, Fair 0.7, Good 0.8, Excellent 0.9); a value below every bound gets
the lowest band, and a metric without bands (ROUGE, tag overlap ...) gets none.
Per BERTScore task: the least-squares trend line of recall on precision
(``recall = slope * precision + intercept``, with R^2) and the Pearson correlations of P, R
and F1. Bands and the trend line are those of the HTML report
(:mod:`pipeline.report.bertscore_suite`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.report.bertscore_suite import band_of, trend_line

BERTSCORE = ("precision", "recall", "f1")
TREND = "least squares of recall on precision: recall = slope * precision + intercept"


def bands_for(column: str, bands: Mapping[str, Mapping[str, float]]
              ) -> dict[str, float] | None:
    """The bands of the first metric key that is an ``_``-separated part of ``column``."""
    for key, value in bands.items():
        if f"_{key}_" in f"_{column}_":
            return {str(k): float(v) for k, v in value.items()}
    return None


def describe(values: np.ndarray, bands: Mapping[str, float] | None) -> dict:
    """Mean, median, std (ddof=1) and the band of the mean of the non-NaN values (band None
    when ``bands`` is None)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if not v.size:
        return {"n": 0, "mean": None, "median": None, "std": None, "band": None}
    mean = float(v.mean())
    return {"n": int(v.size), "mean": mean, "median": float(np.median(v)),
            "std": float(v.std(ddof=1)) if v.size > 1 else None,
            "band": band_of(mean, bands) if bands else None}


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def trend(precision: np.ndarray, recall: np.ndarray) -> dict | None:
    """Least-squares line of recall on precision (None when precision is constant)."""
    fit = trend_line(precision, recall)
    return None if fit is None else {"slope": fit.slope, "intercept": fit.intercept,
                                     "r2": fit.r2, "fit": TREND}


def bertscore_relations(scores: pd.DataFrame, prefix: str) -> dict:
    """Trend line and P/R/F1 Pearson correlations of ``<prefix>_precision/recall/f1``."""
    frame = scores[[f"{prefix}_{k}" for k in BERTSCORE]].dropna()
    p, r, f = (frame[f"{prefix}_{k}"].to_numpy(dtype=float) for k in BERTSCORE)
    return {"trend_line": trend(p, r),
            "pearson": {"precision_recall": _pearson(p, r), "precision_f1": _pearson(p, f),
                        "recall_f1": _pearson(r, f)}}


def bertscore_prefixes(columns: list[str]) -> list[str]:
    """``<task>_bertscore`` prefixes whose P, R and F1 columns are all present."""
    return [c[: -len("_f1")] for c in columns if c.endswith("_bertscore_f1")
            and all(f"{c[: -len('_f1')]}_{k}" in columns for k in BERTSCORE)]


def summarize(scores: pd.DataFrame, bands: Mapping[str, Mapping[str, float]]) -> dict:
    """``metrics`` (per column) and ``bertscore`` (per task prefix) of per-example scores;
    ``bands`` per metric name (see :func:`bands_for`)."""
    cols = [c for c in scores.columns if c != "id"]
    return {"metrics": {c: describe(scores[c].to_numpy(dtype=float), bands_for(c, bands))
                        for c in cols},
            "bertscore": {p: bertscore_relations(scores, p)
                          for p in bertscore_prefixes(cols)}}

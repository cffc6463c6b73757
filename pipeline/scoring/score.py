"""The scoring stage: every configured metric of every task on one cell's predictions.

Returns the per-example table (``id`` plus one column per ``<task>_<metric>``) and the
aggregate values (per-example means plus corpus-level metrics such as macro-F1).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.core.errors import ScoreError
from pipeline.core.tasks import get_task
from pipeline.data.dataset import as_reference_list
from pipeline.scoring.metrics import column, get_metric
from pipeline.scoring.metrics.base import MetricResult, MetricSpec, check_applicable
from pipeline.scoring.metrics.options import metric_options

log = logging.getLogger(__name__)


@dataclass
class PreviousScores:
    """Scores of an earlier run of the same cell that are still valid (same predictions)."""

    table: pd.DataFrame
    values: dict[str, float]
    valid: set[str] = field(default_factory=set)  # "<task>/<metric>" keys still valid

    def take(self, task: str, outputs: Mapping[str, bool]) -> MetricResult | None:
        """The stored result of a metric for a task, or None when it must be recomputed."""
        per_example, corpus = {}, {}
        for out in outputs:
            col = column(task, out)
            if col in self.table.columns:
                per_example[out] = self.table[col].to_numpy(dtype=float)
            elif col in self.values:
                corpus[out] = self.values[col]
            else:
                return None
        return MetricResult(per_example=per_example, corpus=corpus)


def score_key(task: str, metric: str) -> str:
    """The key of one task's metric in manifests and :class:`PreviousScores`."""
    return f"{task}/{metric}"


def _has_cache(spec: MetricSpec) -> bool:
    """Whether a metric takes a ``cache`` option (``use|refresh|off``)."""
    target = getattr(spec.fn, "options_signature", None) or spec.fn
    return "cache" in inspect.signature(target).parameters


def check_values(result: MetricResult, metric: str, task: str, ids: list[str]) -> None:
    """Raise :class:`ScoreError` at the first value that is not finite or lies outside its
    output's declared range, naming the metric, column and example."""
    for out, value in [*result.per_example.items(), *result.corpus.items()]:
        values = np.atleast_1d(np.asarray(value, dtype=float))
        lo, hi = result.bounds.get(out, (-np.inf, np.inf))
        bad = np.flatnonzero(~np.isfinite(values) | (values < lo) | (values > hi))
        if not len(bad):
            continue
        k = int(bad[0])
        where = f"example {ids[k]!r}" if out in result.per_example else "the corpus"
        rule = f"outside its range [{lo:.6g}, {hi:.6g}]" if np.isfinite(values[k]) \
            else "not a finite number"
        raise ScoreError(
            f"metric {metric!r} gave {column(task, out)} = {float(values[k])!r} for {where} "
            f"({len(bad)} bad value(s)), {rule}: a damaged cache or a faulty metric; "
            "nothing was ranked. Rerun with force=true (recomputes cached embeddings too)")


def score_cell(test: list[dict], predictions: list[dict], tasks: Mapping[str, Any],
               metrics_cfg: Mapping[str, Mapping[str, Any]], dataset_tasks: list[str],
               cache_dir: str | None = None, previous: PreviousScores | None = None,
               refresh_caches: bool = False) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score ``predictions`` (aligned with ``test``) on every configured task present.

    Metrics listed as valid in ``previous`` are copied from it instead of recomputed.
    ``refresh_caches`` (``force=true``) turns a metric's ``cache`` option from ``use`` into
    ``refresh``, so cached intermediate values (BERTScore embeddings) are recomputed too.
    Every value is checked with :func:`check_values`.
    """
    ids = [r["id"] for r in test]
    if [p["id"] for p in predictions] != ids:
        raise ValueError("predictions are not aligned with the test examples")
    per_example: dict[str, np.ndarray] = {}
    corpus: dict[str, float] = {}
    for task_name, task_cfg in tasks.items():
        if task_name not in dataset_tasks:
            continue
        task = get_task(task_name)
        preds = [p[task.field] for p in predictions]
        refs = [r[task.field] for r in test]
        if task.kind == "text":
            refs = [as_reference_list(r) for r in refs]
        for metric_name in task_cfg["metrics"]:
            spec = get_metric(metric_name)
            check_applicable(task, spec)
            opts = metric_options(spec, metrics_cfg.get(metric_name) or {})
            result = None
            if previous is not None and score_key(task_name, metric_name) in previous.valid:
                result = previous.take(task_name, spec.outputs_for(opts))
            if result is None:
                if "cache_dir" in inspect.signature(spec.fn).parameters:
                    opts["cache_dir"] = cache_dir
                if refresh_caches and opts.get("cache", "use") == "use" and _has_cache(spec):
                    opts["cache"] = "refresh"
                log.info("scoring %s with %s on %d examples", task_name, metric_name, len(ids))
                result = spec.fn(task, preds, refs, **opts)
            else:
                log.info("scoring %s with %s: unchanged, reused", task_name, metric_name)
            check_values(result, metric_name, task_name, ids)
            for out, values in result.per_example.items():
                per_example[column(task_name, out)] = np.asarray(values, dtype=float)
            for out, value in result.corpus.items():
                corpus[column(task_name, out)] = float(value)
    table = pd.DataFrame({"id": ids, **per_example})
    means = {col: float(np.mean(v)) if len(v) else float("nan")
             for col, v in per_example.items()}
    return table, {**means, **corpus}

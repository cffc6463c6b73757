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

from pipeline.core.errors import ConfigError
from pipeline.core.tasks import get_task
from pipeline.data.dataset import as_reference_list
from pipeline.scoring.metrics import column, get_metric
from pipeline.scoring.metrics.base import MetricResult, check_applicable

log = logging.getLogger(__name__)


def metric_options(name: str, fn: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``metrics.<name>`` options against the metric's keyword parameters.

    A metric that forwards ``**options`` names the function that defines them in its
    ``options_signature`` attribute.
    """
    target = getattr(fn, "options_signature", None)
    params = list(inspect.signature(target or fn).parameters.values())[0 if target else 3:]
    allowed = [p.name for p in params
               if p.kind is not inspect.Parameter.VAR_KEYWORD and p.name != "cache_dir"]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ConfigError(f"metrics.{name}: unknown option(s) {', '.join(unknown)}; "
                          f"accepted: {', '.join(allowed) or '(none)'}")
    return dict(options)


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


def score_cell(test: list[dict], predictions: list[dict], tasks: Mapping[str, Any],
               metrics_cfg: Mapping[str, Mapping[str, Any]], dataset_tasks: list[str],
               cache_dir: str | None = None,
               previous: PreviousScores | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score ``predictions`` (aligned with ``test``) on every configured task present.

    Metrics listed as valid in ``previous`` are copied from it instead of recomputed.
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
            opts = metric_options(metric_name, spec.fn, metrics_cfg.get(metric_name, {}))
            result = None
            if previous is not None and score_key(task_name, metric_name) in previous.valid:
                result = previous.take(task_name, spec.outputs)
            if result is None:
                if "cache_dir" in inspect.signature(spec.fn).parameters:
                    opts["cache_dir"] = cache_dir
                log.info("scoring %s with %s on %d examples", task_name, metric_name, len(ids))
                result = spec.fn(task, preds, refs, **opts)
            else:
                log.info("scoring %s with %s: unchanged, reused", task_name, metric_name)
            for out, values in result.per_example.items():
                per_example[column(task_name, out)] = np.asarray(values, dtype=float)
            for out, value in result.corpus.items():
                corpus[column(task_name, out)] = float(value)
    table = pd.DataFrame({"id": ids, **per_example})
    means = {col: float(np.mean(v)) if len(v) else float("nan")
             for col, v in per_example.items()}
    return table, {**means, **corpus}

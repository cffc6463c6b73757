"""What a metric is, how it registers, and where metric directions come from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.registry import METRICS
from pipeline.core.tasks import Task, TaskKind, get_task

# Cell-level quantities that are not computed by a metric but ranked like one.
CELL_QUANTITIES: dict[str, bool] = {"perplexity": False}


@dataclass
class MetricResult:
    """Per-example arrays (one value per example) and corpus-level values."""

    per_example: dict[str, np.ndarray] = field(default_factory=dict)
    corpus: dict[str, float] = field(default_factory=dict)
    # output -> the closed range its values must lie in (scoring stops outside it); every
    # value must be finite, with or without a range
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSpec:
    """Registration record: the function and what it outputs.

    ``outputs`` lists every output the metric can produce (with its direction);
    ``produces(options)``, when given, names those produced under a set of options
    (default: all of them); ``inputs(options, cache_dir)``, when given, is a checksum of
    the files the numbers depend on beyond the options (an encoder's weights, a module's
    source), so a finished cell is re-scored when they change.
    """

    name: str
    fn: Callable[..., MetricResult]
    outputs: Mapping[str, bool]  # output name -> higher_is_better
    kinds: tuple[TaskKind, ...]
    description: str = ""
    produces: Callable[[Mapping[str, Any]], list[str]] | None = None
    inputs: Callable[[Mapping[str, Any], str | None], str] | None = None

    def outputs_for(self, options: Mapping[str, Any]) -> dict[str, bool]:
        """The outputs (name -> higher_is_better) produced with these options."""
        if self.produces is None:
            return dict(self.outputs)
        return {out: self.outputs[out] for out in self.produces(options)}


def register_metric(name: str, outputs: Mapping[str, bool], kinds: tuple[TaskKind, ...],
                    description: str = "",
                    produces: Callable[[Mapping[str, Any]], list[str]] | None = None,
                    inputs: Callable[[Mapping[str, Any], str | None], str] | None = None
                    ) -> Callable:
    """Register ``fn(task, predictions, references, **options) -> MetricResult``.

    ``outputs``: every output the metric may produce -> higher_is_better; ``produces``:
    options -> the outputs produced with them (when options select among the outputs);
    ``inputs``: (options, cache_dir) -> checksum of the files the numbers depend on.
    """

    def deco(fn: Callable[..., MetricResult]) -> Callable[..., MetricResult]:
        METRICS.register(name)(MetricSpec(name, fn, dict(outputs), kinds, description,
                                          produces, inputs))
        return fn

    return deco


def unit_bounds(*results: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """``[0, 1]`` as the range of every output named in ``results`` (rates, F-measures)."""
    return {out: (0.0, 1.0) for result in results for out in result}


def get_metric(name: str) -> MetricSpec:
    """The registered metric called ``name``."""
    return METRICS.get(name)


def column(task: str, output: str) -> str:
    """Column name of a metric output for a task: ``<task>_<output>``."""
    return f"{task}_{output}"


def directions(tasks: Mapping[str, object],
               metrics: Mapping[str, Any] | None = None) -> dict[str, bool]:
    """``higher_is_better`` for every column the configured tasks can produce (every output
    a metric declares, whatever its options select), plus perplexity; ``metrics`` (the
    ``metrics`` config) first registers the metrics it declares from evaluate modules."""
    if metrics:
        from pipeline.scoring.metrics.hf_evaluate import register_evaluate_metrics

        register_evaluate_metrics(metrics)
    result: dict[str, bool] = {}
    for task_name, task_cfg in tasks.items():
        get_task(task_name)
        for metric_name in _metric_names(task_cfg):
            for out, higher in get_metric(metric_name).outputs.items():
                result[column(task_name, out)] = higher
    result.update(CELL_QUANTITIES)
    return result


def _metric_names(task_cfg: object) -> list[str]:
    if isinstance(task_cfg, Mapping):
        return list(task_cfg.get("metrics", []))
    return list(getattr(task_cfg, "metrics", []))


def check_applicable(task: Task, spec: MetricSpec) -> None:
    """Raise a readable error when a metric does not fit a task's kind."""
    if task.kind not in spec.kinds:
        raise ConfigError(f"metric {spec.name!r} scores {'/'.join(spec.kinds)} tasks, "
                         f"but task {task.name!r} is a {task.kind} task")

"""Metric options (``metrics.<name>.<option>``): checked against the metric's signature.

Each option must be a keyword parameter of the metric function (or of the function named by
its ``options_signature`` attribute, for metrics that forward ``**options``) and match that
parameter's type hint (``bool``, ``int``, ``float``, ``str``, ``None``, ``Literal[...]``,
lists/sequences of those, unions). The metric's ``produces(options)`` then checks values that
select outputs. :func:`validate_metrics` runs all checks for a whole config, so a command
fails before any cell runs.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from omegaconf import DictConfig, ListConfig, OmegaConf

from pipeline.core.errors import ConfigError, unknown_key
from pipeline.core.registry import METRICS
from pipeline.core.tasks import get_task
from pipeline.scoring.metrics.base import MetricSpec, check_applicable, get_metric
from pipeline.scoring.metrics.hf_evaluate import register_evaluate_metrics

_NOT_OPTIONS = ("cache_dir",)  # keyword parameters filled in by the scoring stage


def _option_params(spec: MetricSpec) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    target = getattr(spec.fn, "options_signature", None) or spec.fn
    skip = 0 if target is not spec.fn else 3  # task, predictions, references
    params = list(inspect.signature(target).parameters.values())[skip:]
    allowed = {p.name: p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD
               and p.name not in _NOT_OPTIONS}
    return allowed, typing.get_type_hints(target)


def _conforms(value: Any, hint: Any) -> bool:
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (list, tuple, Sequence):
        item = args[0] if args else Any
        return isinstance(value, list | tuple) and all(_conforms(v, item) for v in value)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this checker does not know: accept


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    if hint is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, Sequence):
        return f"a list of ({_describe(args[0])})" if args else "a list"
    return getattr(hint, "__name__", str(hint))


def _plain(options: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(options, DictConfig):
        return OmegaConf.to_container(options, resolve=True)  # type: ignore[return-value]
    return {k: OmegaConf.to_container(v, resolve=True) if isinstance(v, DictConfig | ListConfig)
            else v for k, v in options.items()}


def metric_options(spec: MetricSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics.<name>`` options checked against the metric (names, types, values).

    Raises :class:`ConfigError` naming ``metrics.<name>.<option>``; returns plain values.
    """
    opts = _plain(options)
    allowed, hints = _option_params(spec)
    for key, value in opts.items():
        if key not in allowed:
            raise unknown_key(f"metrics.{spec.name}.{key}", key, allowed, "option")
        hint = hints.get(key, Any)
        if not _conforms(value, hint):
            raise ConfigError(f"metrics.{spec.name}.{key} must be {_describe(hint)}, "
                              f"got {value!r}")
    spec.outputs_for(opts)  # value checks of the options that select outputs
    return opts


def validate_metrics(tasks: Mapping[str, Any], metrics_cfg: Mapping[str, Any]) -> None:
    """Check every task's metrics: registered, applicable, options valid (names, types,
    values), and every ``metrics.<name>`` block, used or not (a misspelt name or option,
    e.g. ``+metrics.rogue.use_stemmer=false``, must not pass silently). Raises
    :class:`ConfigError` before any scoring starts."""
    register_evaluate_metrics(metrics_cfg)  # metrics declared in YAML (evaluate modules)
    for name, options in metrics_cfg.items():
        if name not in METRICS:
            raise unknown_key(f"metrics.{name}", name, METRICS.names(), "metric")
        metric_options(get_metric(name), options or {})
    for task_name, task_cfg in tasks.items():
        task = get_task(task_name)
        for metric_name in task_cfg["metrics"]:
            spec = get_metric(metric_name)
            check_applicable(task, spec)
            metric_options(spec, metrics_cfg.get(metric_name) or {})


def metric_input_checksums(tasks: Mapping[str, Any], metrics_cfg: Mapping[str, Any],
                           cache_dir: str | None) -> dict[str, str]:
    """``{metric: checksum}`` of the files each metric the tasks use depends on beyond its
    options (``MetricSpec.inputs``: an encoder's weights, an evaluate module's source)."""
    register_evaluate_metrics(metrics_cfg)
    sums: dict[str, str] = {}
    for task_cfg in tasks.values():
        for name in task_cfg["metrics"]:
            spec = get_metric(name)
            if spec.inputs is not None and name not in sums:
                sums[name] = spec.inputs(_plain(metrics_cfg.get(name) or {}), cache_dir)
    return sums

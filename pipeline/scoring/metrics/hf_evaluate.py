"""Metrics from local Hugging Face ``evaluate`` modules, declared in YAML (no Python).

A ``metrics.<name>`` entry with an ``evaluate`` block registers metric ``<name>``::

    metrics:
      word_overlap:
        evaluate:
          module: tests/evaluate_modules/word_overlap  # a module folder or a .py file
          outputs: {overlap: true}   # each output the module returns -> higher_is_better
          per_example: true          # corpus-only outputs: call the module once per example
          kinds: [text]              # task kinds it scores (text, set, label)
          args: {}                   # keyword arguments of the module's compute()

Then list ``<name>`` in a task's metrics (``tasks.summarization.metrics=[rouge,word_overlap]``).
An output the module returns as one value per example is per-example; a single value is
corpus-level unless ``per_example`` asks for a call per example. Text references go to the
module as strings when its ``references`` feature is a string and each example has one
reference, else as lists. Modules load offline; hub names (``rouge``, ``bleu``) are refused.
The module's files are checksummed: editing them re-scores the cells that used the metric.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from pipeline.core.errors import ConfigError
from pipeline.core.io import file_sha256
from pipeline.core.registry import METRICS
from pipeline.core.tasks import Task
from pipeline.finetune.weights import directory_checksum
from pipeline.scoring.metrics.base import MetricResult, register_metric

KEYS = ("module", "outputs", "per_example", "kinds", "args")
KINDS = ("text", "set", "label")
_DECLARED: dict[str, str] = {}  # metric name -> repr of its evaluate block


def module_file(name: str, module: Any) -> Path:
    """The module's script: ``<folder>/<folder name>.py`` or the ``.py`` file itself."""
    path = Path(str(module)).expanduser()
    script = path / f"{path.name}.py" if path.is_dir() else path
    if script.suffix != ".py" or not script.is_file():
        raise ConfigError(
            f"metrics.{name}.evaluate.module={module}: no local evaluate module there (a "
            "folder holding <folder name>.py, or a .py file); modules from the Hugging Face "
            "Hub (rouge, bleu, ...) need the network, which scoring does not use: copy the "
            "module's folder and point to it")
    return script


def check_block(name: str, block: Mapping[str, Any]) -> dict[str, Any]:
    """The ``metrics.<name>.evaluate`` block checked, with defaults filled in."""
    where = f"metrics.{name}.evaluate"
    if isinstance(block, DictConfig):
        block = OmegaConf.to_container(block, resolve=True)
    unknown = sorted(set(block) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; accepted: {', '.join(KEYS)}")
    outputs = block.get("outputs")
    if not isinstance(outputs, Mapping) or not outputs or not all(
            isinstance(v, bool) for v in outputs.values()):
        raise ConfigError(f"{where}.outputs must map each output name to higher_is_better "
                          "(true/false), e.g. {score: true}")
    kinds = list(block.get("kinds") or ["text"])
    if not set(kinds) <= set(KINDS):
        raise ConfigError(f"{where}.kinds={kinds}: use any of {', '.join(KINDS)}")
    if not isinstance(block.get("per_example", True), bool):
        raise ConfigError(f"{where}.per_example must be true or false")
    if not isinstance(block.get("args") or {}, Mapping):
        raise ConfigError(f"{where}.args must map compute() keyword arguments to values")
    module_file(name, block.get("module"))
    return {"module": str(block["module"]), "outputs": dict(outputs), "kinds": kinds,
            "per_example": block.get("per_example", True), "args": dict(block.get("args") or {})}


def register_evaluate_metrics(metrics_cfg: Mapping[str, Any]) -> None:
    """Register every ``metrics.<name>`` entry that has an ``evaluate`` block."""
    for name, options in metrics_cfg.items():
        if not isinstance(options, Mapping) or "evaluate" not in options:
            continue
        block = check_block(name, options["evaluate"])
        if _DECLARED.get(name) == repr(block):
            continue
        if name in _DECLARED or name in METRICS:
            raise ConfigError(f"metrics.{name}.evaluate: metric {name!r} is already registered "
                              "(a built-in, or another evaluate block); choose another name")
        _DECLARED[name] = repr(block)
        register_metric(name, outputs=block["outputs"], kinds=tuple(block["kinds"]),
                        description=f"evaluate module {block['module']}",
                        inputs=_module_checksum(name))(_metric(name))


def _module_checksum(name: str) -> Callable[[Mapping[str, Any], str | None], str]:
    """The ``inputs`` checksum of metric ``name``: over the module folder's files
    (:func:`~pipeline.finetune.weights.directory_checksum`), or of the one ``.py`` file."""

    def checksum(options: Mapping[str, Any], cache_dir: str | None) -> str:
        module = Path(str(check_block(name, options["evaluate"])["module"])).expanduser()
        script = module_file(name, module)
        return directory_checksum(module) if module.is_dir() else file_sha256(script)[:24]

    return checksum


def _metric(name: str) -> Callable[..., MetricResult]:
    """The registered function of metric ``name``; its one option is the ``evaluate``
    block."""

    def score(task: Task, predictions: list, references: list,
              evaluate: dict) -> MetricResult:
        return score_module(name, check_block(name, evaluate), task, predictions, references)

    return score


@cache
def load_module(script: str, checksum: str) -> Any:
    """``evaluate.load`` of a local module script, with the hub switched off; loaded again
    when its files' ``checksum`` changed."""
    os.environ["HF_EVALUATE_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    import evaluate

    return evaluate.load(script)


def _wants_strings(module: Any) -> bool:
    """Whether the module's ``references`` feature is a plain string (not a sequence)."""
    features = module.features if isinstance(module.features, list) else [module.features]
    return any(getattr(f.get("references"), "dtype", None) == "string" for f in features)


def score_module(name: str, block: dict[str, Any], task: Task, predictions: list,
                 references: list) -> MetricResult:
    """Run the module on the cell; per-example values where it gives them or where
    ``per_example`` asks for a call per example."""
    module = load_module(str(module_file(name, block["module"]).resolve()),
                         _module_checksum(name)({"evaluate": block}, None))
    if task.kind == "text" and _wants_strings(module):
        if any(len(r) != 1 for r in references):
            raise ConfigError(f"metrics.{name}: module {block['module']} takes one reference "
                              f"per example, but task {task.name!r} has several")
        references = [r[0] for r in references]
    n = len(predictions)
    out, each = _compute_each(module, predictions, references, block["args"])
    result = MetricResult()
    for output in block["outputs"]:
        if output not in (out or {}):
            raise ConfigError(f"metrics.{name}.evaluate.outputs.{output}: module "
                              f"{block['module']} returned {sorted(out or {})}")
        value = np.asarray(out[output], dtype=float)
        if value.ndim == 1 and len(value) == n:
            result.per_example[output] = value
        elif block["per_example"]:
            rows = [each(i) for i in range(n)]
            result.per_example[output] = np.asarray([e[output] for e in rows], dtype=float)
        else:
            result.corpus[output] = float(value)
    return result


def _compute_each(module: Any, predictions: list, references: list, args: dict[str, Any]
                  ) -> tuple[Any, Callable[[int], Any]]:
    """``module.compute`` on the whole cell, and a function giving what ``compute`` returns
    for example ``i`` alone.

    ``compute`` casts its inputs to the module's features through an Arrow file it writes
    and reads back (about 4 ms a call, far more than a simple metric's ``_compute``); the
    cast happens row by row, so the whole cell is cast once (here) and each example's
    ``_compute`` gets its row of the cast inputs: the same values as a ``compute`` call per
    example (tests/test_evaluate_metric.py checks it), at the cost of ``_compute`` alone.
    """
    seen: dict[str, Any] = {}
    original = module._compute

    def record(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return original(**kwargs)

    module._compute = record  # an instance attribute: shadows the method for this call
    try:
        out = module.compute(predictions=predictions, references=references, **args)
    finally:
        del module._compute
    names = set(module._feature_names())

    def each(i: int) -> Any:
        return original(**{k: v[i:i + 1] if k in names else v for k, v in seen.items()})

    return out, each

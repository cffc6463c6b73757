"""Experiment tracking of the aggregate stage (``tracking=mlflow``).

One aggregate process logs the whole sweep: a parent run for the sweep (its tables,
``analysis.md`` and ``report/index.html`` as artifacts) and one child run per cell (the
cell's resolved config as params, its row of ``model_comparison.csv`` as metrics). Runs are
tagged with a stable key (the output folder; the cell's ``model@train_size``) and found
again on the next aggregate, which updates them instead of adding new ones. Default store:
``sqlite:///<output_dir>/mlflow.db`` with artifacts under ``<output_dir>/mlruns``.
``mlflow`` is imported only here, and only when tracking is on.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from pipeline.core.errors import ConfigError
from pipeline.core.io import read_csv, read_json
from pipeline.core.paths import OutputPaths, run_file

log = logging.getLogger(__name__)
SWEEP_TAG, RUN_TAG = "pipeline.sweep", "pipeline.run"  # run: "sweep" or model@train_size
MAX_PARAM = 6000  # MLflow's longest param value


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``{"a.b.c": str(value)}`` (lists and scalars are leaves)."""
    if not isinstance(data, dict):
        return {prefix: str(data)[:MAX_PARAM]}
    out: dict[str, str] = {}
    for key, value in data.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _client(cfg: DictConfig, root: Path) -> tuple[Any, str]:
    """An ``MlflowClient`` on the configured store and the sweep's experiment id."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise ConfigError("tracking=mlflow needs MLflow: pip install -e '.[tracking]' "
                          "(mlflow-skinny and its SQLite store)") from exc
    uri = cfg.tracking.uri or f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    name = cfg.tracking.experiment or root.name
    found = client.get_experiment_by_name(name)
    if found is not None:
        return client, found.experiment_id
    where = None if cfg.tracking.uri else (root / "mlruns").as_uri()
    return client, client.create_experiment(name, artifact_location=where)


def _run(client: Any, experiment: str, sweep: str, key: str, params: dict[str, str],
         tags: dict[str, str] | None = None) -> str:
    """The id of the run of ``sweep`` tagged ``key``: the existing one when its params still
    match (MLflow params cannot change), else a new one that replaces it."""
    query = " and ".join(f"tags.`{k}` = '{v.replace(chr(39), chr(39) * 2)}'"
                         for k, v in ((SWEEP_TAG, sweep), (RUN_TAG, key)))
    for run in client.search_runs([experiment], filter_string=query, max_results=10):
        if run.data.params == params:
            for tag, value in (tags or {}).items():
                client.set_tag(run.info.run_id, tag, value)
            return run.info.run_id
        client.delete_run(run.info.run_id)
    run = client.create_run(experiment, run_name=key, tags={
        SWEEP_TAG: sweep, RUN_TAG: key, **(tags or {})})
    _log(client, run.info.run_id, params=params)
    return run.info.run_id


def _log(client: Any, run_id: str, params: dict[str, str] | None = None,
         metrics: dict[str, float] | None = None, when: int = 0) -> None:
    """Log params, and metrics stamped ``when`` (ms), in batches of MLflow's size limits."""
    from mlflow.entities import Metric, Param

    items = sorted((params or {}).items())
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=[Param(k, v) for k, v in items[i:i + 100]])
    values = sorted((metrics or {}).items())
    for i in range(0, len(values), 1000):
        client.log_batch(run_id, metrics=[Metric(k, v, when, 0)
                                          for k, v in values[i:i + 1000]])


def _cell_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The finite numeric values of one ``model_comparison.csv`` row."""
    return {str(k): float(v) for k, v in row.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


def track_sweep(cfg: DictConfig) -> None:
    """Log the aggregated sweep to the tracker ``cfg.tracking.backend`` (``none``: nothing)."""
    backend = cfg.tracking.backend
    if backend == "none":
        return
    if backend != "mlflow":
        raise ConfigError(f"tracking.backend={backend}: use none or mlflow")
    import time

    paths = OutputPaths(Path(cfg.output_dir))
    root = paths.root.resolve()
    client, experiment = _client(cfg, root)
    settings = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("aggregate", "tasks")}
    parent = _run(client, experiment, str(root), "sweep", flatten(settings))
    now = int(time.time() * 1000)
    ranked = read_csv(paths.comparison_csv)
    for row in ranked.to_dict("records"):
        cell = f"{row['model']}@{int(row['train_size'])}"
        manifest = run_file(paths.run_dir(row["model"], int(row["train_size"])), "manifest")
        config = read_json(manifest).get("config", {}) if manifest.exists() else {}
        params = flatten(config) or {"model": str(row["model"]),
                                     "train_size": str(int(row["train_size"]))}
        child = _run(client, experiment, str(root), cell, params,
                     tags={"mlflow.parentRunId": parent})
        _log(client, child, metrics=_cell_metrics(row), when=now)
        client.set_terminated(child, end_time=now)
    _log(client, parent, metrics={"n_cells": float(len(ranked))}, when=now)
    for path in (paths.comparison_csv, paths.analysis_md):
        if path.exists():
            client.log_artifact(parent, str(path))
    client.log_artifacts(parent, str(paths.tables), "tables")
    report = paths.report_dir / "index.html"
    if report.exists():
        client.log_artifact(parent, str(report), "report")
    client.set_terminated(parent, end_time=now)
    log.info("tracking: logged %d cells to MLflow (%s, experiment id %s)", len(ranked),
             client.tracking_uri, experiment)

"""Experiment tracking of the aggregate and report stages (``tracking=mlflow``).

The aggregate logs the whole sweep: a parent run for the sweep (its tables, ``analysis.md``
and, once made, ``report/index.html`` as artifacts) and one child run per cell: as params
only what the cell's results depend on (the inputs of its config hash, the hash itself and
its input checksums), as metrics its row of ``model_comparison.csv`` and ``n_examples``, as
artifacts its ``predictions.jsonl`` and ``scores.parquet``. The report stage attaches the
report to the sweep's run. Runs are tagged with a stable key (the output folder; the cell's
``model@train_size``) and found again on the next run, which updates them instead of adding
new ones. Default store: ``sqlite:///<output_dir>/mlflow.db`` with artifacts under
``<output_dir>/mlruns``. ``mlflow`` is imported only here, and only when tracking is on.
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
from pipeline.core.provenance import result_config

log = logging.getLogger(__name__)
SWEEP_TAG, RUN_TAG = "pipeline.sweep", "pipeline.run"  # run: "sweep" or model@train_size
MAX_PARAM = 6000  # MLflow's longest param value


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts as ``{"a.b.c": str(value)}`` (lists and scalars are leaves; unset, i.e.
    None, values are left out)."""
    if data is None:
        return {}
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
         tags: dict[str, str] | None = None) -> tuple[str, bool]:
    """The id of the run of ``sweep`` tagged ``key`` and whether it is new: the existing one
    when its params still match (MLflow params cannot change), else a new one that replaces
    it."""
    query = " and ".join(f"tags.`{k}` = '{v.replace(chr(39), chr(39) * 2)}'"
                         for k, v in ((SWEEP_TAG, sweep), (RUN_TAG, key)))
    for run in client.search_runs([experiment], filter_string=query, max_results=10):
        if run.data.params == params:
            for tag, value in (tags or {}).items():
                client.set_tag(run.info.run_id, tag, value)
            return run.info.run_id, False
        client.delete_run(run.info.run_id)
    run = client.create_run(experiment, run_name=key, tags={
        SWEEP_TAG: sweep, RUN_TAG: key, **(tags or {})})
    _log(client, run.info.run_id, params=params)
    return run.info.run_id, True


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


def _cell_params(manifest: dict[str, Any], row: dict[str, Any]) -> dict[str, str]:
    """What a cell's results depend on: the config-hash inputs, the hash and the checksums
    of its inputs (a changed predictions file or test set gives a new run)."""
    config = manifest.get("config")
    if not config:
        return {"model": str(row["model"]), "train_size": str(int(row["train_size"]))}
    return {**flatten(result_config(config)), "config_hash": str(manifest.get("config_hash")),
            **flatten(manifest.get("inputs") or {}, "inputs")}


def _sweep_run(cfg: DictConfig) -> tuple[Any, str, OutputPaths] | None:
    """Client, the sweep's parent run id and the paths; None when tracking is off."""
    backend = cfg.tracking.backend
    if backend == "none":
        return None
    if backend != "mlflow":
        raise ConfigError(f"tracking.backend={backend}: use none or mlflow")
    paths = OutputPaths(Path(cfg.output_dir))
    root = paths.root.resolve()
    client, experiment = _client(cfg, root)
    settings = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("aggregate", "tasks")}
    parent, _ = _run(client, experiment, str(root), "sweep", flatten(settings))
    return client, parent, paths


def _attach_report(client: Any, parent: str, paths: OutputPaths) -> bool:
    report = paths.report_dir / "index.html"
    if report.exists():
        client.log_artifact(parent, str(report), "report")
    return report.exists()


def track_sweep(cfg: DictConfig) -> None:
    """Log the aggregated sweep to the tracker ``cfg.tracking.backend`` (``none``: nothing)."""
    found = _sweep_run(cfg)
    if found is None:
        return
    import time


    client, parent, paths = found
    experiment = client.get_run(parent).info.experiment_id
    sweep = client.get_run(parent).data.tags[SWEEP_TAG]
    now = int(time.time() * 1000)
    ranked = read_csv(paths.comparison_csv)
    for row in ranked.to_dict("records"):
        cell = f"{row['model']}@{int(row['train_size'])}"
        run_dir = paths.run_dir(row["model"], int(row["train_size"]))
        manifest, metrics = run_file(run_dir, "manifest"), run_file(run_dir, "metrics")
        child, new = _run(client, experiment, sweep, cell,
                          _cell_params(read_json(manifest) if manifest.exists() else {}, row),
                          tags={"mlflow.parentRunId": parent})
        values = _cell_metrics(row)
        if metrics.exists() and "n_examples" in (counts := read_json(metrics)):
            values["n_examples"] = float(counts["n_examples"])
        _log(client, child, metrics=values, when=now)
        if new:  # same params = same inputs: the files logged with the run are still these
            for kind in ("predictions", "scores"):
                if run_file(run_dir, kind).exists():
                    client.log_artifact(child, str(run_file(run_dir, kind)))
        client.set_terminated(child, end_time=now)
    _log(client, parent, metrics={"n_cells": float(len(ranked))}, when=now)
    for path in (paths.comparison_csv, paths.analysis_md):
        if path.exists():
            client.log_artifact(parent, str(path))
    client.log_artifacts(parent, str(paths.tables), "tables")
    _attach_report(client, parent, paths)
    client.set_terminated(parent, end_time=now)
    log.info("tracking: logged %d cells to MLflow (%s, experiment id %s)", len(ranked),
             client.tracking_uri, experiment)


def track_report(cfg: DictConfig) -> None:
    """Attach ``report/index.html`` to the sweep's run (``tracking=mlflow``; after the report
    stage, so the report is there whichever stage ran last)."""
    found = _sweep_run(cfg)
    if found is None:
        return
    client, parent, paths = found
    if _attach_report(client, parent, paths):
        log.info("tracking: attached %s to the sweep's MLflow run",
                 paths.report_dir / "index.html")
    client.set_terminated(parent)

"""Skip rebuilding the report when nothing it reads has changed (``report/report.json``).

Light on purpose: ``python -m pipeline.report`` decides here, before importing pandas and
plotly, whether ``report/index.html`` is still current.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from pipeline.aggregate.outputs import published, run_dirs
from pipeline.core.io import dumps, file_sha256, read_json, write_json
from pipeline.core.paths import OutputPaths, run_file

STAMP = "report.json"


def report_inputs(cfg: DictConfig, paths: OutputPaths) -> str | None:
    """sha256 over what the report reads: the published aggregate set (its run id), the
    config (less ``force``), every finished cell's predictions, the report code (with the
    explorer page) and the
    plotly version; None when there is no published set to check against."""
    stamp = published(paths.root)
    if stamp is None:
        return None
    settings = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items()
                if k != "force"}
    h = hashlib.sha256(f"{stamp['run_id']}\0{metadata.version('plotly')}\0".encode())
    h.update(dumps(settings).encode())
    code = Path(__file__).parent
    for source in sorted([*code.glob("*.py"), *code.glob("*.html")]):
        h.update(source.read_bytes())
    for run_dir in run_dirs(paths):
        predictions = run_file(run_dir, "predictions")
        if run_file(run_dir, "manifest").exists() and predictions.exists():
            h.update(f"{run_dir.name}/{file_sha256(predictions)}".encode())
    return h.hexdigest()


def is_current(paths: OutputPaths, inputs: str | None) -> bool:
    """True when ``report/index.html`` was built from exactly these inputs."""
    stamp = paths.report_dir / STAMP
    if inputs is None or not stamp.exists() or not (paths.report_dir / "index.html").exists():
        return False
    try:
        return read_json(stamp).get("inputs") == inputs
    except ValueError:
        return False


def record(paths: OutputPaths, inputs: str | None) -> None:
    """Write ``report/report.json`` after a successful build."""
    if inputs is not None:
        write_json(paths.report_dir / STAMP, {"inputs": inputs})

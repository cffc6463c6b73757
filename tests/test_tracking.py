"""``tracking=mlflow``: the aggregate logs the sweep (parent run, one child per cell with only
result-relevant params, metrics incl. n_examples, predictions and scores as artifacts) to a
local SQLite store, the report stage attaches the report, and a re-run updates instead of
duplicating."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from test_report_any_data import MANIFEST, make_plain_sweep

from pipeline.aggregate.stage import aggregate
from pipeline.aggregate.tracking import track_report
from pipeline.core.errors import ConfigError
from pipeline.core.io import write_json

ROOT = Path(__file__).resolve().parents[1]


def _sweep(out: Path) -> None:
    make_plain_sweep(out, n_models=2, n_examples=20, sizes=(100, 400))


def _active_runs(db: Path) -> list[tuple[str, str]]:
    """``(run name, parent run id)`` of every active run, read with sqlite3 directly."""
    with sqlite3.connect(db) as con:
        return sorted(con.execute(
            "SELECT r.name, COALESCE(t.value, '') FROM runs r LEFT JOIN tags t ON "
            "t.run_uuid = r.run_uuid AND t.key = 'mlflow.parentRunId' "
            "WHERE r.lifecycle_stage = 'active'").fetchall())


def test_mlflow_logs_the_sweep_and_updates_on_rerun(compose_cfg: Callable,
                                                    tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    out = tmp_path / "sweep"
    _sweep(out)
    noisy = {**MANIFEST, "config": {  # a full resolved config: most keys do not change results
        "data": {"name": "plain", "limit": None}, "seed": 0, "model": {"name": "p1"},
        "before": None, "candidate": None, "output_dir": str(out), "force": False,
        "aggregate": {"n_boot": 50}, "report": {"top_n": 30}, "tracking": {"backend": "x"}}}
    write_json(out / "runs/p1/400/manifest.json", noisy)
    cfg = compose_cfg(f"output_dir={out}", "aggregate.n_boot=50", "tracking=mlflow")
    aggregate(cfg)
    db = out / "mlflow.db"
    runs = _active_runs(db)
    assert [name for name, _ in runs] == ["p0@100", "p0@400", "p1@100", "p1@400", "sweep"]
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("sweep")
    assert experiment.artifact_location == (out / "mlruns").as_uri()
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`pipeline.run` = 'sweep'")
    assert {p for _, p in runs if p} == {parent.info.run_id}
    ranked = pd.read_csv(out / "model_comparison.csv")
    row = ranked[(ranked["model"] == "p1") & (ranked["train_size"] == 400)].iloc[0]
    (child,) = client.search_runs([experiment.experiment_id],
                                  "tags.`pipeline.run` = 'p1@400'")
    assert child.data.params["data.name"] == "plain"  # the cell's config, from its manifest
    # only what the results depend on: the config-hash inputs, the hash, input checksums
    assert {k.split(".")[0] for k in child.data.params} <= {
        "model", "data", "generator", "tasks", "metrics", "train_size", "seed", "finetune",
        "config_hash", "inputs"}
    assert child.data.params == {"data.name": "plain", "seed": "0", "model.name": "p1",
                                 "config_hash": MANIFEST["config_hash"]}
    for col in ("overall_score", "rank", "summarization_rougeL", "params_b"):
        assert child.data.metrics[col] == pytest.approx(float(row[col]))
    assert child.data.metrics["n_examples"] == 20
    assert child.info.status == "FINISHED"
    logged = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert logged == {"predictions.jsonl", "scores.parquet"}
    got = Path(client.download_artifacts(child.info.run_id, "scores.parquet", str(tmp_path)))
    assert got.read_bytes() == (out / "runs/p1/400/scores.parquet").read_bytes()
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"model_comparison.csv", "analysis.md", "tables"} <= names
    tables = {a.path for a in client.list_artifacts(parent.info.run_id, "tables")}
    assert {f"tables/{p.name}" for p in (out / "tables").iterdir()} == tables

    (out / "report").mkdir()  # a report made since: the report stage attaches it ...
    (out / "report" / "index.html").write_text("<html></html>", encoding="utf-8")
    track_report(cfg)
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} == {
        "report/index.html"}
    (out / "report" / "index.html").write_text("<html>v2</html>", encoding="utf-8")
    aggregate(cfg)  # ... and so does the next aggregate
    assert _active_runs(db) == runs  # same runs (same ids), none added
    got = client.download_artifacts(parent.info.run_id, "report/index.html", str(tmp_path))
    assert Path(got).read_text(encoding="utf-8") == "<html>v2</html>"


def test_missing_mlflow_names_the_extra(compose_cfg: Callable, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sweep"
    _sweep(out)
    for name in [m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(ConfigError, match=r"pip install -e '\.\[tracking\]'"):
        aggregate(compose_cfg(f"output_dir={out}", "aggregate.n_boot=50", "tracking=mlflow"))


def test_tracking_none_never_imports_mlflow(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    _sweep(out)
    code = ("import sys\n"
            "from hydra import compose, initialize_config_dir\n"
            "from pipeline.core.schema import register_schema\n"
            "from pipeline.aggregate.stage import aggregate\n"
            "register_schema()\n"
            f"with initialize_config_dir(version_base='1.3', config_dir='{ROOT / 'conf'}'):\n"
            f"    cfg = compose('config', ['output_dir={out}', 'aggregate.n_boot=50'])\n"
            "aggregate(cfg)\n"
            "print('mlflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert not (out / "mlflow.db").exists()

"""Scale-out launchers: the same sweep through joblib (local processes) and submitit's local
executor (the SLURM code path without SLURM); the SLURM launcher config composes."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from pipeline.core.schema import register_schema
from tests.conftest import CONF, ROOT, SMALL, run_env

GRID = [*SMALL, "data.limit=4", "model=demo-lead,demo-knn", "train_size=100"]


@pytest.mark.parametrize("launcher", ["local", "submitit_local"])
def test_sweep_through_launcher(tmp_path, launcher):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "pipeline.compare", "-m",
                             f"hydra/launcher={launcher}", f"output_dir={out}", *GRID],
                            cwd=ROOT, env=run_env(), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    manifests = sorted((out / "runs").glob("*/*/manifest.json"))
    assert [p.parent.parent.name for p in manifests] == ["demo-knn", "demo-lead"]
    scores = pd.read_parquet(manifests[0].parent / "scores.parquet")
    assert len(scores) == 4


def test_slurm_launcher_config_composes():
    register_schema()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name="config", return_hydra_config=True,
                      overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1
    assert launcher.array_parallelism == 16 and launcher.timeout_min == 120

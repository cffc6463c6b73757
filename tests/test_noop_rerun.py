"""What keeps a no-op re-run of the sweep cheap, without weakening what it checks: each job's
config is composed once (Hydra validates the batch, the in-process launcher reuses those
configs), validated dataset records are kept by file content, and skipping finished cells
imports no scoring stack."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from pipeline.core.io import file_sha256
from pipeline.data.dataset import Dataset, read_split
from pipeline.generators.gen_cache import digest
from pipeline.generators.inputs import train_digest
from tests.conftest import ROOT, SMALL, run_env

# A Hydra command over the project's config whose task only records what each job received;
# it counts the compositions Hydra makes (ConfigLoaderImpl.load_sweep_config).
DRIVER = textwrap.dedent("""
    import json, sys
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.hydra_config import HydraConfig
    from pipeline.core.cli import exit_with_failures, hydra_command

    composed, jobs = [], []
    original = ConfigLoaderImpl.load_sweep_config

    def counting(self, master_config, sweep_overrides):
        composed.append(list(sweep_overrides))
        return original(self, master_config, sweep_overrides)

    ConfigLoaderImpl.load_sweep_config = counting

    @hydra_command(lambda cfg: "job")
    def main(cfg):
        jobs.append({"model": cfg.model.name, "train_size": cfg.train_size,
                     "seed": cfg.seed, "num": HydraConfig.get().job.num})

    try:
        exit_with_failures(main)
    finally:
        print(json.dumps({"composed": composed, "jobs": jobs}))
""")


def _drive(tmp_path, *overrides: str) -> tuple[subprocess.CompletedProcess, dict]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    run = subprocess.run([sys.executable, str(script), "-m", f"output_dir={tmp_path / 'out'}",
                          *overrides], cwd=ROOT, env=run_env(), capture_output=True,
                         text=True, timeout=300)
    return run, json.loads(run.stdout.strip().splitlines()[-1])


def test_multirun_composes_each_job_config_once(tmp_path):
    run, seen = _drive(tmp_path, "model=demo-lead,demo-knn", "train_size=100,300", "seed=7")
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(seen["composed"]) == 4  # Hydra alone composes 8: validation, then launch
    assert seen["jobs"] == [
        {"model": "demo-lead", "train_size": 100, "seed": 7, "num": 0},
        {"model": "demo-lead", "train_size": 300, "seed": 7, "num": 1},
        {"model": "demo-knn", "train_size": 100, "seed": 7, "num": 2},
        {"model": "demo-knn", "train_size": 300, "seed": 7, "num": 3},
    ]


def test_a_job_that_cannot_compose_fails_the_sweep_before_any_job_runs(tmp_path):
    run, seen = _drive(tmp_path, "model=demo-lead,no-such-model", "train_size=100")
    assert run.returncode == 2
    assert "no-such-model" in run.stderr
    assert seen["jobs"] == []


def load_records(path, tasks):
    return read_split(path, tasks)[0]


def test_validated_records_follow_the_file_content(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text('{"id": "a", "article": "x", "title": "one"}\n')
    first = load_records(path, ["title"])
    assert first == [{"id": "a", "article": "x", "meta": {}, "title": "one"}]
    first[0]["title"] = "changed by a caller"  # each call gets its own copy
    assert load_records(path, ["title"])[0]["title"] == "one"
    path.write_text('{"id": "a", "article": "x", "title": "two"}\n')  # same size, new content
    assert load_records(path, ["title"])[0]["title"] == "two"
    path.write_text('{"id": "a", "article": "x"}\n')
    with pytest.raises(Exception, match="line 1.*title|title.*line 1"):
        load_records(path, ["title"])


def test_training_checksum_is_memoised_by_file_content(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [f'{{"id": "{i}", "article": "a{i}", "title": "t{i}"}}\n' for i in range(3)]
    path.write_text("".join(rows))
    train, sha = read_split(path, ["title"])
    assert sha == file_sha256(path)
    data = Dataset("d", train=train, test=[], tasks=["title"], train_sha256=sha)
    first_two = [{"id": "0", "article": "a0", "meta": {}, "title": "t0"},
                 {"id": "1", "article": "a1", "meta": {}, "title": "t1"}]
    assert train_digest(data, 2) == digest(first_two)
    assert train_digest(data, 2) == digest(first_two)  # memoised: same answer
    path.write_text(rows[0] + rows[1].replace("t1", "T1") + rows[2])  # same size
    train, sha = read_split(path, ["title"])
    changed = Dataset("d", train=train, test=[], tasks=["title"], train_sha256=sha)
    assert train_digest(changed, 2) == digest([first_two[0], {**first_two[1], "title": "T1"}])
    assert train_digest(changed, 2) != train_digest(data, 2)


def test_rerun_over_finished_cells_skips_them_without_the_scoring_stack(tmp_path):
    out = tmp_path / "out"
    grid = [f"output_dir={out}", *SMALL, "data.limit=4", "model=demo-lead,demo-knn",
            "train_size=100"]
    first = subprocess.run([sys.executable, "-m", "pipeline.compare", "-m", *grid], cwd=ROOT,
                           env=run_env(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    probe = ("import runpy, sys; sys.argv = ['compare', '-m', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('pipeline.compare', run_name='__main__')\n"
             "finally:\n    print('loaded:', sorted(m for m in ('pandas', 'torch', "
             "'transformers') if m in sys.modules))")
    again = subprocess.run([sys.executable, "-c", probe, *grid], cwd=ROOT, env=run_env(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("already finished") == 2
    assert "loaded: []" in again.stdout

"""The SLURM launcher against a real single-node SLURM cluster (scripts/slurm_local.sh):
two array tasks at once share one cache_dir, one task is cancelled mid-cell with scancel,
the same command submitted again computes only that cell, and the aggregate equals a local
run of the same grid. Run with ``make test-slurm`` (``-m slurm``); root installs the Debian
packages when they are missing, anyone else without them gets a skip with the reason."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, run_env

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SCRIPT = ROOT / "scripts" / "slurm_local.sh"
GRID = ["data.n_train=300", "data.n_test=64", "model=demo-lead,demo-knn",
        "train_size=100,300"]
# One CPU per task on the 2-CPU node and two tasks at once; no GPU, no memory request.
SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug",
         "hydra.launcher.cpus_per_task=1", "hydra.launcher.gpus_per_node=null",
         "hydra.launcher.mem_gb=null", "hydra.launcher.timeout_min=10",
         "hydra.launcher.array_parallelism=2"]
COMPUTING = re.compile(r"(\S+) @ train_size=(\d+): computing \(")
TIMEOUT_S = 600


def _free_port_pair() -> int:
    """A port p with p and p+1 free (slurmctld and slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture(scope="module")
def slurm_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of a running local cluster (SLURM_CONF set); stopped afterwards."""
    folder = tmp_path_factory.mktemp("slurm")
    env = {**run_env(), "SLURM_LOCAL_PORT": str(_free_port_pair())}
    start = time.perf_counter()
    up = subprocess.run([str(SCRIPT), "start", str(folder)], env=env, capture_output=True,
                        text=True, timeout=TIMEOUT_S)
    if up.returncode == 3:
        pytest.skip(up.stderr.strip().splitlines()[-1])
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        print(f"cluster up in {time.perf_counter() - start:.1f} s")
        yield {**env, "SLURM_CONF": str(folder / "slurm.conf")}
    finally:
        subprocess.run([str(SCRIPT), "stop", str(folder)], env=env, timeout=120)


def _compare(out: Path, cache: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.compare", "-m", f"output_dir={out}",
            f"cache_dir={cache}", *GRID, *extra]


def _queue(env: dict[str, str]) -> list[tuple[str, str]]:
    """(job id, state) of every job in the queue."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %t"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return [tuple(line.split()) for line in out.splitlines()]  # type: ignore[misc]


def _task_logs(out: Path) -> dict[str, str]:
    """Job id (e.g. ``12_0``) -> the text its submitit task logged so far."""
    logs: dict[str, str] = {}
    for path in sorted(out.glob("hydra/multirun/*/.submitit/*/*_log.*")):
        logs[path.parent.name] = logs.get(path.parent.name, "") + path.read_text(
            errors="replace")
    return logs


def _wait(condition, what: str, timeout: float = TIMEOUT_S):
    """Poll ``condition()`` until it returns something true; that value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _cancel_first_computing(env: dict[str, str], out: Path) -> tuple[str, str, int]:
    """Wait for a task to start computing its cell, scancel it; (job id, model, size).
    Also checks that the launcher's settings reached SLURM and two tasks ran at once."""
    most_running = 0

    def computing():
        nonlocal most_running
        most_running = max(most_running, sum(s == "R" for _, s in _queue(env)))
        for job, text in _task_logs(out).items():
            if (found := COMPUTING.search(text)) and "done in" not in text:
                return job, found.group(1), int(found.group(2))
        return None

    job, model, size = _wait(computing, "a task computing its cell")
    record = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True,
                            text=True, check=True).stdout
    for setting in ("Partition=debug", "TimeLimit=00:10:00", "CPUs/Task=1"):
        assert setting in record, f"{setting} not in the task's record:\n{record}"
    subprocess.run(["scancel", job], env=env, check=True)
    _wait(lambda: not _queue(env), "the other tasks to finish")
    assert most_running == 2, f"at most {most_running} task(s) ran at once"
    return job, model, size


def test_slurm_cancel_resubmit_equals_local(tmp_path, slurm_env):
    local, out, cache = tmp_path / "local", tmp_path / "slurm", tmp_path / "shared_cache"
    start = time.perf_counter()
    ran = subprocess.run(_compare(local, tmp_path / "local_cache"), cwd=ROOT, env=slurm_env,
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert ran.returncode == 0, ran.stderr[-3000:]
    print(f"local run {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    first = subprocess.Popen(_compare(out, cache, *SLURM), cwd=ROOT, env=slurm_env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        job, model, size = _cancel_first_computing(slurm_env, out)
    finally:
        # Without accounting (no slurmdbd) submitit cannot learn that the cancelled task
        # ended and would wait for it forever: stop the launcher as a user would (Ctrl-C).
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    print(f"first submission (cancelled {job}: {model} @ {size}) "
          f"{time.perf_counter() - start:.1f} s")
    cells = sorted(out.glob("runs/*/*"))
    cancelled = out / "runs" / model / str(size)
    finished = {p: (p / "manifest.json").stat().st_mtime_ns for p in cells if p != cancelled}
    assert not (cancelled / "manifest.json").exists(), "the cancelled cell was finished"
    assert len(finished) == 3

    start = time.perf_counter()
    again = subprocess.run(_compare(out, cache, *SLURM), cwd=ROOT, env=slurm_env,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert again.returncode == 0, again.stderr[-3000:]
    print(f"re-submission {time.perf_counter() - start:.1f} s")
    logs = "".join(text for j, text in _task_logs(out).items() if not j.startswith(
        job.split("_")[0] + "_"))
    assert logs.count("already finished") == 3
    assert f"{model} @ train_size={size}: computing (not finished yet)" in logs
    assert {p: (p / "manifest.json").stat().st_mtime_ns for p in finished} == finished
    assert (cancelled / "manifest.json").exists()

    tables = []
    for folder in (local, out):
        agg = subprocess.run([sys.executable, "-m", "pipeline.aggregate",
                              f"output_dir={folder}"], cwd=ROOT, env=slurm_env,
                             capture_output=True, text=True, timeout=TIMEOUT_S)
        assert agg.returncode == 0, agg.stderr[-3000:]
        tables.append(pd.read_csv(folder / "model_comparison.csv"))
    assert len(tables[0]) == 4
    pd.testing.assert_frame_equal(tables[1], tables[0])

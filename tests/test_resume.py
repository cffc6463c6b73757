"""Fault tolerance: a sweep killed with SIGKILL at a seeded random point (``RESUME_TEST_SEED``,
default 0) and started again ends with the same ``model_comparison.csv`` as an uninterrupted
sweep, without recomputing the cells finished before the kill; tables are deterministic."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SMALL, run_env

GRID = [*SMALL, "data.limit=8", "model=demo-lead,demo-knn,demo-linear-small",
        "train_size=100,300"]
N_CELLS = 6


def _sweep(out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.compare", "-m",
                             f"output_dir={out}", *GRID], cwd=ROOT, env=run_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _aggregate(out: Path) -> None:
    subprocess.run([sys.executable, "-m", "pipeline.aggregate", f"output_dir={out}",
                    "aggregate.n_boot=200"], cwd=ROOT, env=run_env(), check=True,
                   capture_output=True, timeout=300)


def _finished(out: Path) -> int:
    return len(list((out / "runs").glob("*/*/manifest.json")))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted sweep, aggregated."""
    out = tmp_path_factory.mktemp("reference")
    assert _sweep(out).wait(timeout=900) == 0
    _aggregate(out)
    return out


def _manifests(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*/manifest.json")}


def test_sigkill_then_resume_gives_identical_results(reference, tmp_path):
    killed = tmp_path / "killed"

    seed = int(os.environ.get("RESUME_TEST_SEED", "0"))  # RESUME_TEST_SEED=<n> tries others
    rng = random.Random(seed)
    after_cells, extra = rng.randrange(N_CELLS - 1), rng.uniform(0.0, 0.5)
    print(f"RESUME_TEST_SEED={seed}: kill after {after_cells} finished cells + {extra:.2f} s")
    proc = _sweep(killed)
    deadline = time.monotonic() + 600  # a hung sweep fails instead of blocking the suite
    while _finished(killed) < after_cells and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(extra)
    assert proc.poll() is None, "the sweep ended before the kill: nothing was interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _manifests(killed)
    assert after_cells <= len(done_before) < N_CELLS, "the kill did not land mid-sweep"

    assert _sweep(killed).wait(timeout=900) == 0
    after = _manifests(killed)
    assert {p: after[p] for p in done_before} == done_before  # finished cells not recomputed
    _aggregate(killed)

    cells = sorted((killed / "runs").glob("*/*"))
    assert len(cells) == N_CELLS and _finished(killed) == N_CELLS
    assert not list((killed / "runs").glob("*/*/.*.tmp"))
    assert (killed / "model_comparison.csv").read_bytes() == \
        (reference / "model_comparison.csv").read_bytes()
    for table in sorted((reference / "tables").glob("*.csv")):
        assert (killed / "tables" / table.name).read_bytes() == table.read_bytes(), table.name


def _outputs(out: Path) -> dict[str, bytes]:
    files = [out / "model_comparison.csv", out / "analysis.md", *(out / "tables").iterdir()]
    return {p.name: p.read_bytes() for p in files}


def test_aggregate_is_byte_identical_when_repeated(reference):
    first = _outputs(reference)
    _aggregate(reference)
    assert _outputs(reference) == first

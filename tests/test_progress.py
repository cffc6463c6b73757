"""Feedback on long work: timed progress lines off a terminal (a fake clock, no waiting), the
fine-tuning loss lines, the thread count rule and the third-party noise filter."""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pipeline.core.cli import quiet_third_party
from pipeline.core.cpus import available_cpus
from pipeline.core.errors import ConfigError
from pipeline.core.progress import Progress
from pipeline.data.dataset import Dataset
from pipeline.finetune.feedback import log_line, summary_line
from pipeline.generators.textgen import Completion, TextGenOptions, TextSession

TEMPLATES = {"summarization": "Sum: {article}", "title": "Title: {article}"}
RECORDS = [{"id": f"r{i}", "article": f"article {i}", "summary": "s", "title": "t"}
           for i in range(6)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowBackend:
    """Each prompt takes 10 fake seconds and yields 5 tokens."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def identity(self) -> dict:
        return {"backend": "slow"}

    def generate(self, prompts: list, max_new_tokens: int) -> list[Completion]:
        self.clock.now += 10.0 * len(prompts)
        return [Completion("word " * 5, False, 5) for _ in prompts]


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pipeline.progress"]


def test_slow_generator_off_a_terminal_logs_progress_every_30_s(tmp_path: Path, caplog) -> None:
    clock = FakeClock()
    cfg = OmegaConf.create({"seed": 0, "output_dir": str(tmp_path / "out"), "train_size": 0,
                            "model": {"name": "m"}, "cache_dir": str(tmp_path / "cache")})
    dataset = Dataset(name="d", train=[], test=RECORDS, tasks=["summarization", "title"])
    session = TextSession(cfg, dataset, SlowBackend(clock),
                          TextGenOptions(prompts=TEMPLATES, batch_size=1))
    session.clock = clock
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    session.generate(RECORDS)  # 6 batches of 2 prompts (one per task), 10 s per prompt
    # progress counts each task's prompts as they finish: a line once 30 s passed since
    # the last one, the last line being the final count
    assert _lines(caplog) == [
        "generate: 3/12 requests (25%), 0.5 tokens/s, 30s elapsed, ETA 1m30s",
        "generate: 6/12 requests (50%), 0.5 tokens/s, 1m00s elapsed, ETA 1m00s",
        "generate: 9/12 requests (75%), 0.5 tokens/s, 1m30s elapsed, ETA 30s",
        "generate: 12/12 requests (100%), 0.5 tokens/s, 2m00s elapsed"]
    caplog.clear()
    session.generate(RECORDS)  # everything reused: nothing computed, no progress lines
    assert _lines(caplog) == []


def test_progress_gaps_never_exceed_the_interval(caplog) -> None:
    """Uneven steps: no two lines are further apart than the interval plus one step."""
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    times = []
    with Progress("perplexity", 50, clock=clock, tty=False) as progress:
        for i in range(50):
            clock.now += 3.0 + (i % 7)
            progress.update(1, tokens=10)
            if _lines(caplog) and len(times) < len(_lines(caplog)):
                times.append(clock.now)
    gaps = [b - a for a, b in zip([1000.0, *times], times, strict=False)]
    assert gaps and max(gaps) < 30 + 10
    assert re.fullmatch(r"perplexity: 50/50 requests \(100%\), [\d.]+ tokens/s, \dm\d\ds elapsed",
                        _lines(caplog)[-1])


def test_heartbeat_logs_during_one_long_batch(caplog) -> None:
    """``tick`` (what the timer thread calls) logs with no update when the interval passed."""
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    progress = Progress("generate", 8, clock=clock, tty=False)
    progress.tick()
    assert _lines(caplog) == []
    clock.now += 31
    progress.tick()
    assert _lines(caplog) == ["generate: 0/8 requests (0%), 31s elapsed"]


def test_finetune_log_lines_are_formatted() -> None:
    logs = {"loss": 2.412734, "grad_norm": 1.91349, "learning_rate": 0.000142, "epoch": 0.3}
    assert log_line(logs, 3, 10) == ("finetune: step 3/10, loss 2.4127, grad_norm 1.913, "
                                     "learning_rate 1.4e-04, epoch 0.30")
    assert log_line({"train_runtime": 3.2, "train_loss": 2.1}, 10, 10) is None
    assert summary_line({"train_runtime": 3.25, "train_loss": 2.1}) == (
        "finetune: done, mean loss 2.1000 in 3.2 s")


def test_thread_count_follows_the_cpus_available(monkeypatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert available_cpus(environ={}) == 4
    assert available_cpus(environ={"SLURM_CPUS_PER_TASK": "2"}) == 2
    assert available_cpus(environ={"SLURM_CPUS_PER_TASK": "16"}) == 4  # affinity is the cap
    assert available_cpus(3, environ={"SLURM_CPUS_PER_TASK": "2"}) == 3  # explicit wins
    with pytest.raises(ConfigError, match="generator.options.threads=0"):
        available_cpus(0)


def test_known_third_party_noise_is_filtered(monkeypatch, caplog) -> None:
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_third_party(tty=False)
        warnings.warn("`torch_dtype` is deprecated! Use `dtype` instead!", FutureWarning,
                      stacklevel=1)
        warnings.warn("something else", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["something else"]
    caplog.set_level(logging.INFO)
    logging.getLogger("absl").info("Using default tokenizer.")
    assert "Using default tokenizer." not in caplog.text
    import os

    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


@pytest.mark.parametrize(("given", "want"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_commands_make_openmp_threads_wait_passively(given: str | None, want: str) -> None:
    """Every command sets OMP_WAIT_POLICY=PASSIVE before torch loads (spinning threads
    starve each other on a busy machine), unless the user chose a policy."""
    import subprocess
    import sys

    from conftest import ROOT, run_env

    env = run_env()
    env.pop("OMP_WAIT_POLICY", None)
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = ("import os, sys, pipeline.compare; "
            "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout.split()
    assert out == [want, "False"]

"""Trust on real inputs (issue 13): a finished cell is reused only while the content of its
inputs is unchanged, conflicting settings and impossible limits stop the run, a failed or
interrupted re-run never loses a finished result."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hf_tiny import save_tiny_encoder

from pipeline.core.cli import exit_with_failures
from pipeline.core.errors import ConfigError, StorageError, UserError
from pipeline.core.io import read_json
from pipeline.core.staging import recover, staged
from pipeline.generators.inputs import input_checksums
from pipeline.scoring.cell import run_cell, stale_reason
from tests.conftest import ROOT, SMALL, run_env

LIMIT = "data.limit=4"


def _test_records(cfg) -> list[dict]:
    from pipeline.core.paths import OutputPaths
    from pipeline.data import load_dataset

    return load_dataset(cfg.data, OutputPaths(cfg.output_dir)).test


def _write_predictions(path: Path, records: list[dict], type_label: str | None) -> None:
    """Predictions copying the references, except ``type`` (the reference when None)."""
    rows = [{"id": r["id"], "summary": r["article"].split(". ")[0] + ".", "title": r["title"],
             "tags": r["tags"], "type": type_label or r["type"]} for r in records]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _type_accuracy(run_dir: Path) -> float:
    return read_json(run_dir / "metrics.json")["metrics"]["type_accuracy"]


# 1. stale inputs ----------------------------------------------------------------------------

def test_replaced_predictions_file_is_rescored(small_cfg, tmp_path, caplog):
    pred = tmp_path / "p.jsonl"
    args = ("model=qwen3-8b", "train_size=500", LIMIT, f"model.predictions={pred}")
    cfg = small_cfg(*args)
    records = _test_records(cfg)
    _write_predictions(pred, records, None)
    run_dir = run_cell(cfg)
    assert _type_accuracy(run_dir) == 1.0
    _write_predictions(pred, records, "no-such-type")  # same path, new content
    with caplog.at_level("INFO"):
        run_cell(small_cfg(*args))
    assert "predictions file changed" in caplog.text
    assert "already finished" not in caplog.text
    assert _type_accuracy(run_dir) == 0.0
    caplog.clear()
    with caplog.at_level("INFO"):
        run_cell(small_cfg(*args))
    assert "already finished" in caplog.text


def test_edited_test_data_is_rescored_only_when_a_scored_record_changes(small_cfg, tmp_path,
                                                                        caplog):
    data, pred = tmp_path / "test.jsonl", tmp_path / "p.jsonl"
    records = _test_records(small_cfg())[:6]
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    _write_predictions(pred, records, None)
    args = ("model=qwen3-8b", "train_size=500", LIMIT, "data=files",
            f"data.options.test={data}", f"model.predictions={pred}")
    run_dir = run_cell(small_cfg(*args))
    assert _type_accuracy(run_dir) == 1.0

    def edit(index: int) -> None:
        records[index] = {**records[index], "type": "edited"}
        data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    edit(5)  # beyond data.limit=4: not scored, the cell stays finished
    with caplog.at_level("INFO"):
        run_cell(small_cfg(*args))
    assert "already finished" in caplog.text
    caplog.clear()
    edit(0)  # a scored reference changed: 3 of 4 predictions still match
    with caplog.at_level("INFO"):
        run_cell(small_cfg(*args))
    assert "test data changed" in caplog.text
    assert _type_accuracy(run_dir) == 0.75


def test_checkpoint_content_changes_its_checksum(small_cfg, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"a": 1}')
    (ckpt / "model.safetensors").write_bytes(b"0123456789")
    cfg = small_cfg("model=qwen3-0.6b", "generator=hf", f"model.checkpoint={ckpt}", LIMIT)
    test = _test_records(cfg)[:4]
    first = input_checksums(cfg, None, test)
    assert set(first) == {"test", "checkpoint"}
    assert input_checksums(cfg, None, test) == first
    (ckpt / "model.safetensors").write_bytes(b"9876543210")  # same size, new content
    os.utime(ckpt / "model.safetensors", ns=(1, 1))
    second = input_checksums(cfg, None, test)
    assert second["checkpoint"] != first["checkpoint"] and second["test"] == first["test"]


def test_stale_reason_names_what_changed(tmp_path):
    for name in ("predictions.jsonl", "scores.parquet", "metrics.json"):
        (tmp_path / name).write_text("x")
    old = {"config_hash": "c1", "inputs": {"test": "t", "checkpoint": "w"},
           "metric_inputs": {"bertscore": "e"}}
    same = {"bertscore": "e"}
    assert stale_reason(tmp_path, old, "c1", {"test": "t", "checkpoint": "w"}, same) is None
    assert stale_reason(tmp_path, old, "c1", {"test": "t", "checkpoint": "W"}, same) == \
        "checkpoint changed"
    assert stale_reason(tmp_path, old, "c2", {"test": "T", "checkpoint": "w"}, same) == \
        "config changed; test data changed"
    assert stale_reason(tmp_path, old, "c1", {"test": "t", "checkpoint": "w"},
                        {"bertscore": "E", "word_overlap": "m"}) == \
        "bertscore files changed; word_overlap files not checksummed"
    assert stale_reason(tmp_path, None, "c1", {}, {}) == "not finished yet"
    assert stale_reason(tmp_path, {"config_hash": "c1"}, "c1", {"test": "t"}, {}) == \
        "no input checksums recorded"


def test_replaced_encoder_weights_rescore_only_bertscore(small_cfg, tmp_path, caplog):
    """The encoder at the same path gets new weights: BERTScore is computed again (other
    metrics and the predictions are reused); an unchanged encoder skips the cell."""
    encoder = save_tiny_encoder(tmp_path / "encoder", seed=0)
    args = ("model=demo-lead", "train_size=100", LIMIT, f"cache_dir={tmp_path / 'cache'}",
            f"metrics.bertscore.model={encoder}", "metrics.bertscore.num_layers=1")
    run_dir = run_cell(small_cfg(*args))
    before = read_json(run_dir / "metrics.json")["metrics"]
    manifest = read_json(run_dir / "manifest.json")
    assert set(manifest["metric_inputs"]) == {"bertscore"}
    caplog.clear()
    with caplog.at_level("INFO"):
        run_cell(small_cfg(*args))
    assert "already finished" in caplog.text
    save_tiny_encoder(encoder, seed=1)  # same path, other weights
    caplog.clear()
    with caplog.at_level("INFO"):
        run_cell(small_cfg(*args))
    text = caplog.text
    assert "computing (bertscore files changed)" in text
    assert "predictions unchanged, reusing them" in text
    assert "scoring summarization with rouge: unchanged, reused" in text
    assert "scoring summarization with bertscore on 4 examples" in text
    after = read_json(run_dir / "metrics.json")["metrics"]
    assert after["summarization_bertscore_f1"] != before["summarization_bertscore_f1"]
    assert after["summarization_rouge1"] == before["summarization_rouge1"]
    assert read_json(run_dir / "manifest.json")["metric_inputs"] != manifest["metric_inputs"]


# 4. explicit settings win or stop the run ---------------------------------------------------

def test_demo_model_with_predictions_file_is_a_config_error(small_cfg, tmp_path):
    pred = tmp_path / "f.jsonl"
    cfg = small_cfg("model=demo-knn", "train_size=100", LIMIT, f"model.predictions={pred}")
    _write_predictions(pred, _test_records(cfg), None)
    with pytest.raises(ConfigError, match=r"model.predictions=.*f.jsonl.* would be ignored"):
        run_cell(cfg)
    assert not (tmp_path / "out" / "runs" / "demo-knn").exists()


def test_log_says_loading_or_generating(small_cfg, tmp_path, caplog):
    pred = tmp_path / "p.jsonl"
    cfg = small_cfg("model=qwen3-8b", "train_size=500", LIMIT, f"model.predictions={pred}")
    _write_predictions(pred, _test_records(cfg), None)
    with caplog.at_level("INFO"):
        run_cell(cfg)
    assert f"loading predictions from {pred}" in caplog.text
    assert "generating" not in caplog.text
    caplog.clear()
    with caplog.at_level("INFO"):
        run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT))
    assert "generating predictions for 4 examples" in caplog.text
    assert "loading predictions" not in caplog.text


# 5. a corpus-level metric cannot be weighted ------------------------------------------------

def test_weighting_a_corpus_level_metric_is_a_config_error(small_cfg):
    from pipeline.aggregate.stage import aggregate

    run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT))
    run_cell(small_cfg("model=demo-lead", "train_size=200", LIMIT))
    with pytest.raises(ConfigError, match=r"aggregate\.weights\.type_macro_f1"):
        aggregate(small_cfg("+aggregate.weights.type_macro_f1=1", "aggregate.n_boot=50"))


# 6. impossible limits ------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [0, -5])
def test_non_positive_limit_is_a_config_error(small_cfg, limit):
    with pytest.raises(ConfigError, match=rf"data\.limit={limit}"):
        run_cell(small_cfg("model=demo-lead", "train_size=100", f"data.limit={limit}"))


# 7. a failed re-run keeps the finished cell ---------------------------------------------------

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_write_failure_keeps_the_finished_cell(small_cfg, monkeypatch, code):
    import pipeline.scoring.cell as cell

    args = ("model=demo-lead", "train_size=100", LIMIT)
    run_dir = run_cell(small_cfg(*args))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}

    def fail(path, *_):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(cell, "write_parquet", fail)
    with pytest.raises(StorageError) as info:
        run_cell(small_cfg(*args, "force=true"))
    assert isinstance(info.value, UserError)
    assert str(info.value) == f"cannot write {run_dir}: {os.strerror(code)}"
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["100"]


def test_staged_swap_and_recovery(tmp_path):
    folder = tmp_path / "cell"
    folder.mkdir()
    (folder / "a").write_text("old")
    with pytest.raises(RuntimeError), staged(folder) as stage:
        (stage / "a").write_text("half")
        raise RuntimeError("killed")
    assert (folder / "a").read_text() == "old" and os.listdir(tmp_path) == ["cell"]
    with staged(folder) as stage:
        (stage / "a").write_text("new")
        assert (folder / "a").read_text() == "old"
    assert (folder / "a").read_text() == "new" and os.listdir(tmp_path) == ["cell"]
    # killed between the two renames: the old folder is aside, the new one not yet in place
    os.rename(folder, tmp_path / ".cell.old-1")
    (tmp_path / ".cell.staging-1").mkdir()
    recover(folder)
    assert (folder / "a").read_text() == "new" and os.listdir(tmp_path) == ["cell"]


# Ctrl-C ------------------------------------------------------------------------------------

def test_ctrl_c_is_one_line_and_status_130(capsys):
    def entry() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as info:
        exit_with_failures(entry)
    assert info.value.code == 130
    assert capsys.readouterr().err == ("interrupted (Ctrl-C): finished results are kept; run "
                                       "the same command again to resume\n")


@pytest.mark.slow
def test_ctrl_c_during_a_sweep_exits_130_and_the_rerun_resumes(tmp_path):
    out = tmp_path / "out"
    grid = [*SMALL, "data.limit=2", "model=demo-lead", "train_size=10,20,30,40",
            f"output_dir={out}"]
    cmd = [sys.executable, "-m", "pipeline.compare", "-m", *grid]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=run_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("runs/*/*/manifest.json")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("interrupted (Ctrl-C)")
    done = len(list(out.glob("runs/*/*/manifest.json")))
    assert 1 <= done < 4
    again = subprocess.run(cmd, cwd=ROOT, env=run_env(), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (again.stdout + again.stderr).count("already finished") == done
    assert len(list(out.glob("runs/*/*/manifest.json"))) == 4
    assert sorted(p.name for p in (out / "runs" / "demo-lead").iterdir()) == \
        ["10", "20", "30", "40"]

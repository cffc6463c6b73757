"""``data=hf``: the same records read through Hugging Face ``datasets`` score exactly as
through ``data=files``; column mapping, row-index ids, offline errors, provenance."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.io import read_json
from pipeline.data.demo_corpus import build_demo_corpus
from pipeline.scoring.cell import run_cell

datasets = pytest.importorskip("datasets")

# demo-knn fits the first train_size training records: the train split matters too
CELL = ("model=demo-knn", "train_size=40", "tasks.summarization.metrics=[rouge]",
        "tasks.title.metrics=[rouge]")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Demo records (every task, meta) as test and train JSONL files."""
    train, test = build_demo_corpus(seed=5, n_train=40, n_test=12)
    return _write(tmp_path / "test.jsonl", test), _write(tmp_path / "train.jsonl", train)


def _cell(small_cfg: Callable, out: Path, *overrides: str) -> Path:
    return run_cell(small_cfg(f"output_dir={out}", *CELL, *overrides))


def _results(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    return (pd.read_parquet(run_dir / "scores.parquet"),
            read_json(run_dir / "metrics.json")["metrics"])


def test_hf_json_and_save_to_disk_score_like_files(small_cfg: Callable, tmp_path: Path,
                                                   corpus: tuple[Path, Path]) -> None:
    test, train = corpus
    cache = f"data.options.cache_dir={tmp_path / 'hf_cache'}"
    files_dir = _cell(small_cfg, tmp_path / "files", "data=files", f"data.options.test={test}",
                      f"data.options.train={train}")
    json_dir = _cell(small_cfg, tmp_path / "hf_json", "data=hf", "data.options.path=json",
                     f"data.options.data_files={{test: {test}, train: {train}}}",
                     "data.options.train_split=train", cache)
    disk = tmp_path / "on_disk"
    datasets.DatasetDict({"test": datasets.Dataset.from_list(_rows(test)),
                          "train": datasets.Dataset.from_list(_rows(train))}
                         ).save_to_disk(str(disk))
    disk_dir = _cell(small_cfg, tmp_path / "hf_disk", "data=hf", f"data.options.path={disk}",
                     "data.options.train_split=train")
    scores, metrics = _results(files_dir)
    assert set(metrics) >= {"summarization_rouge1", "title_rougeL", "tag_f1", "type_accuracy"}
    for other in (json_dir, disk_dir):
        other_scores, other_metrics = _results(other)
        assert other_metrics == metrics
        pd.testing.assert_frame_equal(other_scores, scores)
    manifest = read_json(disk_dir / "manifest.json")["dataset"]
    assert manifest["test"] == datasets.load_from_disk(str(disk))["test"]._fingerprint
    assert manifest["hf"] == {"path": str(disk)}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_column_mapping_and_row_index_ids(small_cfg: Callable, tmp_path: Path) -> None:
    """Renamed columns, no id column (ids 0, 1, ...), tasks from the mapped columns only;
    scores equal the files run of the renamed records with those ids."""
    texts = [("The cat sat on the mat today.", "cat sat on mat"),
             ("Rain fell over the hills all night.", "rain fell all night"),
             ("A new bridge opened in the town.", "bridge opened")]
    hf_file = _write(tmp_path / "cnn.jsonl", [{"document": a, "highlights": s, "extra": 1}
                                              for a, s in texts])
    files = _write(tmp_path / "plain.jsonl", [{"id": str(i), "article": a, "summary": s}
                                              for i, (a, s) in enumerate(texts)])
    preds = _write(tmp_path / "preds.jsonl", [{"id": str(i), "summary": s.split()[0]}
                                              for i, (_, s) in enumerate(texts)])
    common = ("model=precomputed", "model.name=sys", f"model.predictions={preds}",
              "train_size=0", "tasks.summarization.metrics=[rouge]")
    hf_dir = run_cell(small_cfg(f"output_dir={tmp_path / 'a'}", "data=hf", *common,
                                f"data.options.path={hf_file}",
                                "data.options.columns={article: document, summary: highlights}",
                                f"data.options.cache_dir={tmp_path / 'hf_cache'}"))
    files_dir = run_cell(small_cfg(f"output_dir={tmp_path / 'b'}", "data=files", *common,
                                   f"data.options.test={files}"))
    metrics = _results(hf_dir)[1]
    assert "summarization_rouge1" in metrics
    assert {k.split("_")[0] for k in metrics} == {"summarization"}  # no title/tag/type
    # one-word predictions: rouge1 F1 = 2PR/(P+R), P = 1, R = 1/len(reference)
    assert metrics["summarization_rouge1"] == pytest.approx((2 / 5 + 2 / 5 + 2 / 3) / 3)
    assert metrics == _results(files_dir)[1]
    assert list(_results(hf_dir)[0]["id"]) == ["0", "1", "2"]


def test_edited_dataset_recomputes_the_cell(small_cfg: Callable, tmp_path: Path,
                                            corpus: tuple[Path, Path],
                                            caplog: pytest.LogCaptureFixture) -> None:
    """The test records' checksum is in the freshness check: a changed save_to_disk folder
    (same config) reruns the cell; an unchanged one is skipped."""
    test, train = corpus
    rows = _rows(test)
    disk = tmp_path / "d"
    args = ("data=hf", f"data.options.path={disk}", "data.options.train_split=train")

    def save(test_rows: list[dict]) -> None:
        datasets.DatasetDict({"test": datasets.Dataset.from_list(test_rows),
                              "train": datasets.Dataset.from_list(_rows(train))}
                             ).save_to_disk(str(tmp_path / "tmp"))
        if disk.exists():
            import shutil
            shutil.rmtree(disk)
        (tmp_path / "tmp").rename(disk)

    save(rows)
    _cell(small_cfg, tmp_path / "out", *args)
    with caplog.at_level(logging.INFO, logger="pipeline.scoring.cell"):
        _cell(small_cfg, tmp_path / "out", *args)
        assert "already finished" in caplog.text
        caplog.clear()
        save([{**rows[0], "summary": "A different reference."}, *rows[1:]])
        _cell(small_cfg, tmp_path / "out", *args)
    assert "test data changed" in caplog.text


@pytest.mark.parametrize(("overrides", "message"), [
    (("data.options.path=nobody/no-such-dataset",),
     "data.options.path=nobody/no-such-dataset: cannot read the dataset (offline"),
    ((), "data=hf needs data.options.path"),
    (("data.options.path=json", "data.options.data_files={test: TEST}",
      "data.options.split=validation"),
     "data.options.split=validation: no such split in json; its splits: test"),
    (("data.options.path=TEST", "data.options.columns={summary: highlights}"),
     "data.options.columns.summary=highlights: no such column"),
    (("data.options.path=TEST", "data.options.columns={abstract: summary}"),
     "data.options.columns.abstract: not a record field"),
])
def test_bad_hf_settings_are_config_errors(small_cfg: Callable, tmp_path: Path,
                                           corpus: tuple[Path, Path], overrides: tuple,
                                           message: str) -> None:
    from pipeline.core.paths import OutputPaths
    from pipeline.data import load_dataset

    cfg = small_cfg("data=hf", f"data.options.cache_dir={tmp_path / 'c'}",
                    *(o.replace("TEST", str(corpus[0])) for o in overrides))
    with pytest.raises(ConfigError) as err:
        load_dataset(cfg.data, OutputPaths(tmp_path))
    assert message in str(err.value)

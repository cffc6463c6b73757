"""Trust on real inputs (issue 13, part C): one run folder per model name, and the input files
users really have (byte-order marks, JSON arrays, repeated keys, other extensions, semicolon
CSVs, parquet indexes, directories)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from pipeline.aggregate.runs import load_runs
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.io import read_json, read_records
from pipeline.core.paths import OutputPaths, safe_name
from pipeline.generators.precomputed import find_predictions
from pipeline.scoring.cell import run_cell
from pipeline.versus.sides import side_name
from tests.conftest import SMALL, run_env

LIMIT = "data.limit=4"
BOM = b"\xef\xbb\xbf"


# --- one run folder per model name -------------------------------------------------------

def test_safe_names_keep_todays_folder():
    for name in ("demo-knn", "demo-linear-large", "qwen3-1.7b", "M0", "a=b_c"):
        assert safe_name(name) == name


def test_names_that_shared_a_folder_get_their_own():
    # sha256 of "org/model" starts with c87c0c64 (`printf org/model | sha256sum`)
    assert safe_name("org/model") == "org_model+c87c0c64"
    assert safe_name("org_model") == "org_model"
    names = ["org/model", "org_model", "org model", "org:model", ".", "..", "../x", ".hidden",
             "x" * 300, "modèle"]
    folders = [safe_name(n) for n in names]
    assert len(set(folders)) == len(names)
    runs = OutputPaths("/out").runs
    for name, folder in zip(names, folders, strict=True):
        assert "/" not in folder and not folder.startswith(".") and len(folder) <= 100, name
        assert OutputPaths("/out").run_dir(name, 5).parent.parent == runs


def test_empty_model_name_is_a_config_error():
    with pytest.raises(ConfigError, match="model.name"):
        OutputPaths("/out").run_dir("", 100)


def test_two_names_two_cells_both_aggregated(small_cfg, tmp_path):
    a = run_cell(small_cfg("model=demo-lead", "model.name=org/model", "train_size=100", LIMIT))
    b = run_cell(small_cfg("model=demo-lead", "model.name=org_model", "train_size=100", LIMIT))
    assert a != b and a.parent.name == "org_model+c87c0c64" and b.parent.name == "org_model"
    results = load_runs(tmp_path / "out")
    assert sorted(results.cells["model"]) == ["org/model", "org_model"]
    assert results.problems == []
    assert side_name(a) == "org/model-100"


def test_copied_or_renamed_cell_is_listed_never_silently_used(small_cfg, tmp_path):
    cell = run_cell(small_cfg("model=demo-lead", "train_size=100", LIMIT))
    shutil.copytree(cell, cell.parent / "999")  # claims (demo-lead, 100) a second time
    shutil.copytree(cell, cell.parent.parent / "renamed" / "100")
    results = load_runs(tmp_path / "out")
    assert list(zip(results.cells["model"], results.cells["train_size"], strict=True)) == [
        ("demo-lead", 100)]
    assert len(results.problems) == 2
    assert all("runs/demo-lead/100" in p for p in results.problems)
    assert results.problems[0].startswith("runs/demo-lead/999:")
    assert results.problems[1].startswith("runs/renamed/100:")


def test_a_folder_holding_another_models_cell_is_not_overwritten(small_cfg, tmp_path):
    cfg = small_cfg("model=demo-lead", "train_size=100", LIMIT)
    cell = OutputPaths(tmp_path / "out").run_dir("demo-lead", 100)
    cell.mkdir(parents=True)
    (cell / "manifest.json").write_text('{"model": "DEMO-lead", "train_size": 100}')
    with pytest.raises(ConfigError, match="DEMO-lead"):
        run_cell(cfg)
    assert json.loads((cell / "manifest.json").read_text())["model"] == "DEMO-lead"


# --- input files users really have ---------------------------------------------------------

def _recs(rows):
    return [rec for _, rec in rows]


def test_byte_order_mark_is_read_in_jsonl_json_and_csv(tmp_path):
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_bytes(BOM + b'{"id": "a", "x": 1}\n{"id": "b", "x": 2}\n')
    assert read_records(jsonl) == [(1, {"id": "a", "x": 1}), (2, {"id": "b", "x": 2})]
    array = tmp_path / "a.json"
    array.write_bytes(BOM + b'[{"id": "a"}]')
    assert _recs(read_records(array)) == [{"id": "a"}]
    meta = tmp_path / "meta.json"
    meta.write_bytes(BOM + b'{"k": 1}')
    assert read_json(meta) == {"k": 1}
    csv = tmp_path / "a.csv"
    csv.write_bytes(BOM + b"id,x\na,1\n")
    assert read_records(csv) == [(2, {"id": "a", "x": "1"})]


def test_json_array_file_is_read_with_lines(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('[\n  {"id": "a", "t": "x"},\n  {"id": "b",\n   "t": "y"}\n]\n')
    assert read_records(path) == [(2, {"id": "a", "t": "x"}), (3, {"id": "b", "t": "y"})]
    path.write_text("[]")
    with pytest.raises(InputError, match="empty"):
        read_records(path)


@pytest.mark.parametrize(("text", "expected"), [
    ('[{"id": "a"},\n 7]', r"p\.json, line 2: array element \[1\]: expected a JSON object"),
    ('[{"id": "a"},\n {"id": }]', r"p\.json, line 2: array element \[1\]: not valid JSON"),
    ('[{"id": "a"}\n {"id": "b"}]', r"p\.json, line 2: after array element \[0\]: expected"),
    ('[{"id": "a"}]\n{"id": "b"}', r"p\.json, line 2: extra data after the JSON array"),
])
def test_json_array_errors_name_element_and_line(tmp_path, text, expected):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(InputError, match=expected):
        read_records(path)


def test_repeated_key_is_an_error_naming_file_line_and_key(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"id": "a", "summary": "x"}\n{"id": "b", "summary": "x", "summary": "y"}\n')
    with pytest.raises(InputError, match=r"p\.jsonl, line 2, field 'summary': key given twice"):
        read_records(jsonl)
    array = tmp_path / "p.json"
    array.write_text('[{"id": "a"},\n {"id": "b", "t": {"k": 1, "k": 2}}]')
    with pytest.raises(InputError, match=r"p\.json, line 2, field 'k': array element \[1\]"):
        read_records(array)
    meta = tmp_path / "m.json"
    meta.write_text('{"a": 1, "a": 2}')
    with pytest.raises(InputError, match=r"m\.json, field 'a'"):
        read_json(meta)


def test_semicolon_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id;summary\na;text\n")
    with pytest.raises(InputError, match=r"p\.csv, line 1: .*semicolon-separated"):
        read_records(path)


def test_parquet_with_id_as_index_is_read(tmp_path):
    path = tmp_path / "p.parquet"
    pd.DataFrame({"id": ["a", "b"], "type": ["x", "y"]}).set_index("id").to_parquet(path)
    assert read_records(path) == [(1, {"id": "a", "type": "x"}), (2, {"id": "b", "type": "y"})]


def test_directory_is_a_clear_error(tmp_path):
    folder = tmp_path / "preds.jsonl"
    folder.mkdir()
    with pytest.raises(InputError, match="preds.jsonl: is a directory"):
        read_records(folder)


class _Cfg:
    """The one key find_predictions reads."""

    def __init__(self, predictions):
        self.model = type("M", (), {"predictions": predictions})()


def test_predictions_found_under_another_extension(tmp_path, monkeypatch):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "500.csv").write_text("id\n")
    (tmp_path / "m" / "qwen3-1.7b.parquet").write_bytes(b"")
    assert find_predictions(_Cfg(str(tmp_path / "m" / "500"))) == tmp_path / "m" / "500.csv"
    assert find_predictions(_Cfg(str(tmp_path / "m" / "500.jsonl"))) == tmp_path / "m/500.csv"
    assert find_predictions(_Cfg(str(tmp_path / "m/qwen3-1.7b"))) == (
        tmp_path / "m/qwen3-1.7b.parquet")
    assert find_predictions(_Cfg(str(tmp_path / "m" / "300"))) is None
    monkeypatch.chdir(tmp_path)  # relative paths: against the launch directory
    assert find_predictions(_Cfg("m/500.jsonl")) == tmp_path / "m" / "500.csv"
    (tmp_path / "m" / "500.jsonl.d").mkdir()
    with pytest.raises(InputError, match=r"500\.jsonl\.d: model\.predictions names a dir"):
        find_predictions(_Cfg("m/500.jsonl.d"))
    (tmp_path / "m" / "500.parquet").write_bytes(b"")
    with pytest.raises(InputError, match=r"500\.csv, 500\.parquet; give the extension"):
        find_predictions(_Cfg("m/500"))
    assert find_predictions(_Cfg("m/500.csv")) == tmp_path / "m" / "500.csv"


def test_cli_relative_predictions_without_extension(small_cfg, tmp_path):
    out = tmp_path / "out"
    dataset_cfg = small_cfg("model=qwen3-0.6b", "train_size=500")
    from pipeline.data import load_dataset

    test = load_dataset(dataset_cfg.data, OutputPaths(out)).test[:4]
    (tmp_path / "preds").mkdir()
    pd.DataFrame([{"id": r["id"], "summary": r["article"][:80], "title": r["title"],
                   "tags": ",".join(r["tags"]), "type": r["type"]} for r in test]).to_csv(
        tmp_path / "preds" / "500.csv", index=False)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.compare", "model=qwen3-0.6b", "train_size=500",
         "model.predictions=preds/${train_size}", f"output_dir={out}", *SMALL, LIMIT],
        cwd=tmp_path, env=run_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = read_json(out / "runs" / "qwen3-0.6b" / "500" / "manifest.json")
    assert manifest["generator"]["predictions_file"] == str(tmp_path / "preds" / "500.csv")

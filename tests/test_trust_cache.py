"""Caches are never trusted blindly, and shared folders stay usable (issue 13, items 2 and 8).

A damaged BERTScore pack is quarantined and recomputed, ``force=true`` recomputes embeddings,
a damaged generation-cache line is regenerated, impossible metric values stop the cell, files
follow the umask, and another user's unreadable pack is neither used nor deleted.
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import ScoreError
from pipeline.core.io import atomic_write_text, write_json, write_parquet
from pipeline.core.provenance import config_hash, score_hashes
from pipeline.generators.gen_cache import OutputStore
from pipeline.scoring import score as score_module
from pipeline.scoring.bertscore import BertScorer
from pipeline.scoring.bertscore import cache as cache_module
from pipeline.scoring.bertscore.encoder import Encoder
from pipeline.scoring.cell import run_cell
from pipeline.scoring.metrics import get_metric
from pipeline.scoring.score import score_cell

CANDS = ["the council approved the new bridge on monday",
         "a storm closed the schools for two days"]
REFS = [["city council approves bridge plan"], ["schools shut as storm hits the coast"]]
DAMAGE_LOG = "pipeline.scoring.bertscore.cache"


@pytest.fixture
def forward_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the encoder's forward batches (every scorer in the test)."""
    calls: list[int] = []
    original = Encoder.forward

    def counting(self: Encoder, input_ids: np.ndarray, attention_mask: np.ndarray):
        calls.append(len(input_ids))
        return original(self, input_ids, attention_mask)

    monkeypatch.setattr(Encoder, "forward", counting)
    return calls


def scores(scorer: BertScorer) -> np.ndarray:
    out = scorer.score(CANDS, REFS)
    return np.stack([out["precision"], out["recall"], out["f1"]])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder with the ONNX graph and weight checksums built (once per module)."""
    root = tmp_path_factory.mktemp("built")
    BertScorer(cache_dir=root, cache="off").score(CANDS[:1], REFS[:1])
    return root


@pytest.fixture
def new_cache(built: Path, tmp_path: Path) -> Path:
    """An embedding cache without packs that reuses the graph of ``built``."""
    root = tmp_path / "cache"
    root.mkdir()
    for name in ("onnx", "checksums"):
        (root / name).symlink_to(built / name)
    return root


@pytest.fixture
def warm(new_cache: Path) -> tuple[Path, np.ndarray, Path]:
    """A cache holding one pack for CANDS/REFS, the scores computed from scratch, the pack."""
    root = new_cache
    fresh = scores(BertScorer(cache_dir=root))  # cold cache: every embedding computed
    (pack,) = root.glob("*/*.pack")
    return root, fresh, pack


@pytest.mark.parametrize("where", ["embeddings", "index"])
def test_damaged_pack_is_quarantined_and_recomputed(warm, forward_calls, caplog, where):
    root, fresh, pack = warm
    data = bytearray(pack.read_bytes())
    if where == "embeddings":  # scale many floats of the second half by 2**+-128
        for i in range(len(data) // 2 + 3, len(data), 4):
            data[i] ^= 0x40
    else:
        data[30] ^= 0x01  # inside the keys
    pack.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger=DAMAGE_LOG):
        got = scores(BertScorer(cache_dir=root))  # a later process
    np.testing.assert_allclose(got, fresh, rtol=0, atol=1e-6)
    assert forward_calls, "the damaged entries must be recomputed"
    bad = pack.with_name(pack.name + ".bad")
    assert bad.read_bytes() == bytes(data)  # set aside as found, for inspection
    assert sum("damaged" in r.getMessage() for r in caplog.records) == 1
    # the recomputed entries were stored again and are trusted on the next read
    forward_calls.clear()
    np.testing.assert_allclose(scores(BertScorer(cache_dir=root)), fresh, rtol=0, atol=1e-6)
    assert not forward_calls


def test_cache_modes_refresh_and_off(warm, forward_calls):
    root, fresh, pack = warm
    np.testing.assert_allclose(scores(BertScorer(cache_dir=root)), fresh, atol=1e-6)
    assert not forward_calls  # warm cache: nothing encoded
    np.testing.assert_allclose(scores(BertScorer(cache_dir=root, cache="refresh")), fresh,
                               atol=1e-6)
    assert forward_calls  # refresh: encoded again although cached
    pack.unlink()
    scores(BertScorer(cache_dir=root, cache="off"))
    assert not list(root.glob("*/*.pack"))  # off: nothing stored


def test_force_recomputes_embeddings(small_cfg, new_cache, forward_calls, tmp_path):
    (tmp_path / "pipeline-cache").mkdir()
    (tmp_path / "pipeline-cache" / "bertscore").symlink_to(new_cache)  # <cache_dir>/bertscore
    args = ("model=demo-lead", "train_size=100", "data.limit=3",
            f"cache_dir={tmp_path / 'pipeline-cache'}")
    run_cell(small_cfg(*args))
    assert forward_calls and list(new_cache.glob("*/*.pack"))
    forward_calls.clear()
    run_cell(small_cfg(*args, "force=true"))
    assert forward_calls, "force=true must recompute the embeddings, not read the cache"


def test_cache_mode_does_not_change_the_cell_hashes(compose_cfg):
    plain = compose_cfg()
    refresh = compose_cfg("metrics.bertscore.cache=refresh")
    assert refresh.metrics.bertscore.cache == "refresh" and plain.metrics.bertscore.cache == "use"
    assert config_hash(plain) == config_hash(refresh)
    assert score_hashes(plain) == score_hashes(refresh)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_follow_the_umask(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"a": 1})
    write_parquet(tmp_path / "c.parquet", pd.DataFrame({"a": [1]}))
    cache = cache_module.EmbeddingCache(tmp_path / "bs", "ns")
    cache.put("text", np.arange(3), np.ones((3, 4), np.float32))
    store = OutputStore(tmp_path / "gen" / "s.jsonl")
    store.append([{"key": "k", "text": "t"}])
    files = [tmp_path / "a.txt", tmp_path / "b.json", tmp_path / "c.parquet",
             *(tmp_path / "bs").glob("*/*.pack"), store.path]
    assert len(files) == 5
    assert {str(f.name): oct(mode(f)) for f in files} == {str(f.name): "0o644" for f in files}
    os.umask(0o077)  # a private umask is honoured too
    atomic_write_text(tmp_path / "private.txt", "x")
    assert mode(tmp_path / "private.txt") == 0o600


def test_onnx_graph_folder_follows_the_umask(tmp_path, umask_022):
    from onnx import helper

    from pipeline.scoring.bertscore.onnx_bert import write_graph

    node = helper.make_node("Identity", ["x"], ["y"])
    value = helper.make_tensor_value_info
    graph = helper.make_graph([node], "g", [value("x", 1, [1])], [value("y", 1, [1])])
    folder = tmp_path / "graph"
    write_graph(helper.make_model(graph), folder)
    assert mode(folder) == 0o755 and mode(folder / "model.onnx") == 0o644


def test_unreadable_pack_is_neither_used_nor_deleted(warm, forward_calls, caplog,
                                                     monkeypatch):
    """Another user's pack without read permission (tests run as root, so the permission
    error is simulated): scored from scratch, the file is left exactly as it was."""
    root, fresh, pack = warm
    before = pack.read_bytes()
    real_open = builtins.open

    def deny_packs(file, *args, **kwargs):
        if str(file).endswith(".pack"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(cache_module, "open", deny_packs, raising=False)
    with caplog.at_level(logging.WARNING, logger=DAMAGE_LOG):
        got = scores(BertScorer(cache_dir=root))
    np.testing.assert_allclose(got, fresh, rtol=0, atol=1e-6)
    assert forward_calls  # not read: computed
    assert pack.read_bytes() == before and not list(root.glob("*/*.bad"))
    assert sum("cannot read" in r.getMessage() for r in caplog.records) == 1


def test_unwritable_cache_warns_and_scores(new_cache, caplog, monkeypatch):
    """A read-only shared cache (simulated: root ignores permissions) does not stop scoring."""
    real_replace = os.replace

    def refuse_packs(src, dst, *args, **kwargs):
        if str(dst).endswith(".pack"):
            raise PermissionError(13, "Permission denied", str(dst))
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refuse_packs)
    root = new_cache
    with caplog.at_level(logging.WARNING, logger=DAMAGE_LOG):
        got = scores(BertScorer(cache_dir=root))
        scores(BertScorer(cache_dir=root))
    assert np.isfinite(got).all()
    assert not list(root.glob("*/*.pack")) and not list(root.glob("*/.*.tmp"))
    assert sum("cannot write" in r.getMessage() for r in caplog.records) == 2  # once each


@pytest.mark.parametrize("bad", [1e35, float("nan"), -float("inf")])
def test_impossible_bertscore_stops_the_cell(monkeypatch, tmp_path, bad):
    def broken(self, candidates, references, idf_references=None):
        f1 = np.full(len(candidates), 0.9)
        f1[1] = bad
        return {"precision": np.full(len(candidates), 0.9),
                "recall": np.full(len(candidates), 0.9), "f1": f1}

    monkeypatch.setattr(BertScorer, "score", broken)
    test = [{"id": "n1", "title": "council approves bridge"},
            {"id": "n2", "title": "storm closes schools"}]
    preds = [{"id": "n1", "title": "bridge approved"}, {"id": "n2", "title": "schools shut"}]
    with pytest.raises(ScoreError) as err:
        score_cell(test, preds, {"title": {"metrics": ["bertscore"]}},
                   {"bertscore": {}}, ["title"], str(tmp_path))
    message = str(err.value)
    assert "'bertscore'" in message and "title_bertscore_f1" in message
    assert "'n2'" in message


def test_rouge_outside_unit_range_stops_the_cell(monkeypatch):
    spec = get_metric("rouge")

    def inflated(*args, **kwargs):
        result = spec.fn(*args, **kwargs)
        result.per_example["rouge1"] = result.per_example["rouge1"] + 1.5
        return result

    monkeypatch.setattr(score_module, "get_metric",
                        lambda name: dataclasses.replace(spec, fn=inflated))
    test = [{"id": "a", "title": "council approves bridge"}]
    preds = [{"id": "a", "title": "council approves bridge"}]
    with pytest.raises(ScoreError, match=r"title_rouge1 = 2\.5 for example 'a'.*\[0, 1\]"):
        score_cell(test, preds, {"title": {"metrics": ["rouge"]}}, {"rouge": {}}, ["title"])


def test_damaged_generation_cache_lines_are_regenerated(tmp_path, caplog):
    store = OutputStore(tmp_path / "s.jsonl")
    store.append([{"key": f"k{i}", "id": str(i), "task": "title", "text": f"output {i}"}
                  for i in range(4)])
    lines = store.path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"output 1", b"output 7")  # still valid JSON: bit rot
    lines[2] = b"\xff\xfe" + lines[2][2:]  # not UTF-8
    lines.append(b'{"key": "k9", "id": "9", "te')  # cut short by a kill
    store.path.write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING):
        rows = store.load()
    assert sorted(rows) == ["k0", "k3"]
    assert rows["k3"]["text"] == "output 3"
    assert sum("3 damaged line(s)" in r.getMessage() for r in caplog.records) == 1
    store.append([{"key": "k1", "id": "1", "task": "title", "text": "output 1"}])
    assert sorted(store.load()) == ["k0", "k1", "k3"]
    assert json.loads(store.path.read_text(encoding="utf-8", errors="replace")
                      .splitlines()[-1])["text"] == "output 1"


def test_store_under_a_file_instead_of_a_folder_is_treated_as_empty(tmp_path, caplog):
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    store = OutputStore(blocker / "generations" / "k.jsonl", optional=True)
    with caplog.at_level(logging.WARNING):
        assert store.load() == {}
        store.append([{"key": "k1", "id": "1", "task": "title", "text": "t"}])  # warns only
    assert "cannot read" in caplog.text and "cannot write" in caplog.text
    assert blocker.read_text() == "not a folder"

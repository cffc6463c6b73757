"""The example explorer's data (``report/examples.html`` + ``examples/``): offered and default
cells, chunks that decode to every cell's outputs and metric values, escaping, missing data."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.aggregate.ranking import OVERALL, example_overall
from pipeline.aggregate.stage import aggregate
from pipeline.core.io import read_jsonl, write_jsonl
from pipeline.core.paths import OutputPaths, run_file
from pipeline.report.build import build_report
from pipeline.report.examples_page import (
    CHUNK_EXAMPLES,
    PAGE,
    SCALE,
    chunk_script,
    default_cells,
    references,
)
from tests.conftest import ROOT, run_env
from tests.test_report import make_sweep
from tests.test_report_any_data import plain_report, table_report


def read_index(report: Path) -> dict:
    text = (report / "examples" / "index.js").read_text(encoding="utf-8")
    assert text.startswith("explorerIndex(") and text.endswith(");\n")
    return json.loads(text[len("explorerIndex("):-3])


def read_chunk(path: Path) -> tuple[int, dict]:
    match = re.fullmatch(r'explorerChunk\((\d+),"([A-Za-z0-9+/=]*)"\);\n', path.read_text())
    assert match, path
    return int(match[1]), json.loads(gzip.decompress(base64.b64decode(match[2])))


def chunks(report: Path) -> list[dict]:
    found = [read_chunk(p) for p in sorted((report / "examples").glob("chunk-*.js"))]
    assert [k for k, _ in found] == list(range(len(found)))
    return [c for _, c in found]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory, compose_cfg: Callable) -> Path:
    """4 models x 2 sizes on 24 demo examples (two chunks); one unranked run folder."""
    out = tmp_path_factory.mktemp("explorer") / "out"
    make_sweep(out, 4, n_examples=24)
    cfg = compose_cfg(f"output_dir={out}", "aggregate.n_boot=50")
    aggregate(cfg)
    # finished after aggregate: not in model_comparison.csv, so it must not be offered
    extra = OutputPaths(out).run_dir("late", 500)
    src = OutputPaths(out).run_dir("m00", 500)
    for kind in ("scores", "predictions", "metrics", "manifest"):
        extra.mkdir(parents=True, exist_ok=True)
        run_file(extra, kind).write_bytes(run_file(src, kind).read_bytes())
    build_report(cfg)
    return out


def test_offers_ranked_cells_and_defaults_to_each_models_best(sweep: Path) -> None:
    ranked = pd.read_csv(sweep / "model_comparison.csv").sort_values("rank", kind="stable")
    index = read_index(sweep / "report")
    labels = [c["label"] for c in index["cells"]]
    assert labels == [f"{m}@{t}" for m, t in zip(ranked["model"], ranked["train_size"],
                                                 strict=True)]
    assert not any(label.startswith("late@") for label in labels)
    best = [labels.index(f"{m}@{t}") for m, t in
            ranked.groupby("model", sort=False).head(1)[["model", "train_size"]].itertuples(
                index=False)]
    assert sorted(index["defaults"]) == sorted(best) and len(index["defaults"]) == 4
    shown = [index["cells"][i] for i in index["defaults"]]
    for cell in shown:  # the best of its model: no cell of the same model ranks higher
        assert cell["rank"] == min(c["rank"] for c in index["cells"]
                                   if c["model"] == cell["model"])


def test_default_cells_one_per_model_in_rank_order() -> None:
    cells = pd.DataFrame({"model": ["b", "a", "b", "c", "a"], "rank": [1, 2, 3, 4, 5]})
    assert default_cells(cells) == [0, 1, 3]
    assert default_cells(cells, limit=2) == [0, 1]  # the best-ranked models only


def test_chunks_hold_every_cells_outputs_and_metric_values(sweep: Path,
                                                           compose_cfg: Callable) -> None:
    index = read_index(sweep / "report")
    parts = chunks(sweep / "report")
    assert len(parts) == index["n_chunks"] == -(-24 // CHUNK_EXAMPLES) == 2
    assert [len(p["examples"]) for p in parts] == [CHUNK_EXAMPLES, 24 - CHUNK_EXAMPLES]
    payloads = [e for p in parts for e in p["examples"]]
    ids = [e["id"] for e in index["examples"]]
    test = read_jsonl(sweep / "data" / "demo" / "test.jsonl")
    assert ids == [r["id"] for r in test]  # the test records' order
    metrics = [m["name"] for m in index["metrics"]]
    fields = [t["field"] for t in index["tasks"]]
    weights = dict(compose_cfg().aggregate.weights)
    for c, cell in enumerate(index["cells"]):
        model, size = cell["model"], cell["train_size"]
        run_dir = OutputPaths(sweep).run_dir(model, size)
        preds = {r["id"]: r for r in read_jsonl(run_file(run_dir, "predictions"))}
        scores = pd.read_parquet(run_file(run_dir, "scores")).set_index("id")
        scores[OVERALL] = example_overall(scores, weights)
        for e, rid in enumerate(ids):
            out = payloads[e]["o"][c]
            texts = [payloads[e]["t"][k] for k in out]
            want = [", ".join(v) if isinstance(v, list) else v
                    for v in (preds[rid][f] for f in fields)]
            assert texts == want
            got = np.array(payloads[e]["m"][c], dtype=float) / SCALE
            assert np.allclose(got, scores.loc[rid, metrics].to_numpy(dtype=float),
                               atol=0.5 / SCALE)
            assert index["overall"][c][e] == payloads[e]["m"][c][-1]


def test_text_is_data_never_markup(sweep: Path) -> None:
    page = (sweep / "report" / "examples.html").read_text()
    assert page == PAGE.read_text()  # static: no data is pasted into the HTML
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page
    assert "document.write" not in page
    payload = chunks(sweep / "report")[0]["examples"][0]
    assert any(t.startswith("<b>m0") for t in payload["t"])  # kept verbatim, shown as text
    index = (sweep / "report" / "index.html").read_text()
    assert '<a href="examples.html">' in index


def test_chunk_script_survives_markup_and_unicode() -> None:
    payload = {"t": ["</script><img src=x onerror=alert(1)>", "\u2028 caf\u00e9 \U0001f600"]}
    k, back = read_chunk_text(chunk_script(7, payload))
    assert k == 7 and back == payload


def read_chunk_text(text: str) -> tuple[int, dict]:
    match = re.fullmatch(r'explorerChunk\((\d+),"([A-Za-z0-9+/=]*)"\);\n', text)
    assert match
    return int(match[1]), json.loads(gzip.decompress(base64.b64decode(match[2])))


def test_references_one_or_many() -> None:
    assert references(["r1", "r2"], "text") == ["r1", "r2"]  # multi-reference text
    assert references("r", "text") == ["r"]
    assert references(["a", "b"], "set") == ["a, b"]  # one tag set
    assert references([["a"], ["b", "c"]], "set") == ["a", "b, c"]  # several tag sets
    assert references(None, "label") == [] and references(float("nan"), "text") == []


def test_unparsed_raw_outputs_and_missing_examples(tmp_path: Path,
                                                   compose_cfg: Callable) -> None:
    out = tmp_path / "out"
    make_sweep(out, 2, sizes=(500,), n_examples=6)
    run_dir = OutputPaths(out).run_dir("m00", 500)
    preds = read_jsonl(run_file(run_dir, "predictions"))
    preds[0]["tags"], preds[0]["raw"] = [], {"tag": "Tags: <none> & so on"}
    write_jsonl(run_file(run_dir, "predictions"), preds[1:] + preds[:1])
    cfg = compose_cfg(f"output_dir={out}", "aggregate.n_boot=50")
    aggregate(cfg)
    # the other cell lost one prediction after scoring: its output shows as missing
    other = OutputPaths(out).run_dir("m01", 500)
    write_jsonl(run_file(other, "predictions"), read_jsonl(run_file(other, "predictions"))[1:])
    build_report(cfg)
    index = read_index(out / "report")
    first = chunks(out / "report")[0]["examples"][0]
    cells = [c["label"] for c in index["cells"]]
    tag = [t["name"] for t in index["tasks"]].index("tag")
    a, b = cells.index("m00@500"), cells.index("m01@500")
    assert [[a, tag]] == [r[:2] for r in first["r"]]
    assert first["t"][first["r"][0][2]] == "Tags: <none> & so on"
    assert first["o"][b] is None and first["m"][b] is not None


def test_without_test_records_and_without_metadata(tmp_path: Path,
                                                   compose_cfg: Callable) -> None:
    out = tmp_path / "plain"
    plain_report(out, compose_cfg)
    index = read_index(out / "report")
    assert list(index["slices"]) == ["length (words)"]  # no meta: computed length buckets
    assert index["source"] == "article" and index["examples"][0]["input"].startswith("word")
    for test in (out / "data").glob("*/test.jsonl"):
        test.unlink()
    cfg = compose_cfg(f"output_dir={out}", "aggregate.n_boot=100")
    build_report(cfg)
    index = read_index(out / "report")
    assert "test records were not found" in index["note"]
    assert index["slices"] == {} and index["examples"][0]["input"] == ""
    assert len(chunks(out / "report")) == index["n_chunks"] >= 1


def test_table_input_says_it_needs_per_example_data(tmp_path: Path,
                                                    compose_cfg: Callable) -> None:
    report = table_report(tmp_path / "table", compose_cfg)
    assert "The example explorer needs per-example data" in report.read_text()
    index = read_index(report.parent)
    assert index["cells"] == [] and "per-example data" in index["note"]
    assert not list((report.parent / "examples").glob("chunk-*.js"))


def test_rebuild_leaves_no_stale_chunks(sweep: Path, compose_cfg: Callable) -> None:
    stale = sweep / "report" / "examples" / "chunk-099.js"
    stale.write_text("explorerChunk(99,\"\");\n")
    cfg = compose_cfg(f"output_dir={sweep}", "aggregate.n_boot=50")
    build_report(cfg)
    assert not stale.exists() and len(chunks(sweep / "report")) == 2
    assert not [p for p in (sweep / "report").iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_bench_quick_smoke(tmp_path: Path) -> None:
    """scripts/bench_examples_page.py --quick builds both pages and measures their sizes."""
    bench = ROOT / "scripts" / "bench_examples_page.py"
    out = subprocess.run([sys.executable, str(bench), "--quick", "--work", str(tmp_path)],
                         capture_output=True, text=True, env=run_env(), cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "total_mb" in line)
    rows = [line.split() for line in lines[header + 1:] if line.strip()
            and not line.startswith("chromium not found")]
    assert [r[:2] for r in rows] == [["template", "4"], ["synthetic", "12"]]
    for sweep, n_cells in (("reference", 4), ("sweep12", 12)):
        index = read_index(tmp_path / sweep / "report")
        assert len(index["cells"]) == n_cells and len(chunks(tmp_path / sweep / "report")) == 1

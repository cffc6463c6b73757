"""Sweep against sweep: hand-made run folders with known changes, one-sided cells/ids, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.core.errors import InputError
from pipeline.core.io import write_csv, write_json, write_jsonl, write_parquet
from pipeline.core.paths import OutputPaths, run_file
from pipeline.versus.diff import diff
from tests.conftest import ROOT, run_env

WEIGHTED = ["summarization_rougeL", "summarization_bertscore_f1", "title_rougeL",
            "title_bertscore_f1", "tag_f1"]
N = 40


def _scores(shift: float = 0.0, correct: int = 20, n: int = N, seed: int = 0) -> pd.DataFrame:
    """Per-example scores: continuous metrics ``base + shift``, ``correct`` of type right."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": [f"e{i:02d}" for i in range(n)]})
    for col in WEIGHTED:
        frame[col] = np.clip(rng.uniform(0.3, 0.6, n) + shift, 0, 1)
    frame["type_accuracy"] = (np.arange(n) < correct).astype(float)
    return frame


def make_sweep(root, cells: dict, ranks: list | None = None):
    """Finished run folders for ``{(model, size): scores}`` and optionally a ranking."""
    paths = OutputPaths(root)
    for (model, size), scores in cells.items():
        run = paths.run_dir(model, size)
        write_parquet(run_file(run, "scores"), scores)
        write_jsonl(run_file(run, "predictions"), [{"id": i} for i in scores["id"]])
        means = {c: float(scores[c].mean()) for c in scores.columns if c != "id"}
        write_json(run_file(run, "metrics"), {
            "model": model, "family": "f", "params_b": 1.0, "train_size": size,
            "perplexity": None, "metrics": {**means, "type_macro_f1": 0.5}})
        write_json(run_file(run, "manifest"), {})
    if ranks is not None:
        write_csv(paths.comparison_csv, pd.DataFrame(
            [{"rank": r + 1, "model": m, "train_size": s} for r, (m, s) in enumerate(ranks)]))
    return root


def _run(small_cfg, before, after, *extra):
    out = diff(small_cfg(f"before={before}", f"after={after}", "aggregate.n_boot=500", *extra))
    return pd.read_csv(out / "changes.csv"), json.loads((out / "summary.json").read_text())


def _row(changes, model, size, metric):
    sel = changes[(changes["model"] == model) & (changes["train_size"] == size)
                  & (changes["metric"] == metric)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_clear_shift_is_significant_and_no_change_is_not(small_cfg, tmp_path):
    before = make_sweep(tmp_path / "b", {("m", 100): _scores(), ("n", 100): _scores(seed=1)},
                        ranks=[("m", 100), ("n", 100)])
    after = make_sweep(tmp_path / "a", {("m", 100): _scores(0.1, correct=35),
                                        ("n", 100): _scores(seed=1)},
                       ranks=[("n", 100), ("m", 100)])
    changes, summary = _run(small_cfg, before, after)
    up = _row(changes, "m", 100, "summarization_rougeL")
    assert up["change"] == pytest.approx(0.1, abs=1e-9)
    assert up["test"] == "permutation" and up["p_raw"] < 0.01
    # one family: Holm over the 14 tested (cell, metric) rows, 2 * 14 / alpha permutations;
    # no permutation reached the observed shift, so the value is the floor's bound
    assert summary["n_permutations"] == 560
    assert up["p_raw"] == pytest.approx(1 / 561) and up["p_bound"]
    assert up["p_value"] == pytest.approx(13 / 561)
    assert (up["significant"], up["verdict"]) == ("yes", "better")
    acc = _row(changes, "m", 100, "type_accuracy")
    assert acc["test"] == "mcnemar" and acc["p_value"] < 0.01 and acc["significant"] == "yes"
    overall = _row(changes, "m", 100, "overall_score")
    assert (overall["rank_before"], overall["rank_after"]) == (1, 2)
    assert overall["significant"] == "yes"
    same = changes[changes["model"] == "n"]
    assert (same["change"] == 0).all() and (same["significant"].isin(["no", np.nan])).all()
    assert _row(changes, "n", 100, "tag_f1")["p_value"] == 1.0
    macro = _row(changes, "n", 100, "type_macro_f1")
    assert pd.isna(macro["p_value"]) and pd.isna(macro["test"])
    assert summary["n_significant"]["worse"] == 0 and summary["n_significant"]["better"] >= 7
    assert summary["top_k"]["before"] == ["m@100", "n@100"]
    assert summary["top_k"]["after"] == ["n@100", "m@100"]
    assert summary["ids"] == {}
    assert (tmp_path / "out" / "diff" / "changes.md").exists()
    assert "Significant changes" in (tmp_path / "out" / "diff" / "index.html").read_text()


def test_top_k_entered_and_left(small_cfg, tmp_path):
    cells = {(m, 100): _scores(seed=i) for i, m in enumerate("abc")}
    before = make_sweep(tmp_path / "b", cells, ranks=[("a", 100), ("b", 100), ("c", 100)])
    after = make_sweep(tmp_path / "a", cells, ranks=[("c", 100), ("a", 100), ("b", 100)])
    _, summary = _run(small_cfg, before, after, "diff.top_k=2")
    top = summary["top_k"]
    assert (top["k"], top["entered"], top["left"]) == (2, ["c@100"], ["b@100"])


def test_one_sided_cells_and_ids_are_reported(small_cfg, tmp_path, capsys):
    before = make_sweep(tmp_path / "b", {("m", 100): _scores(), ("old", 100): _scores()})
    after = make_sweep(tmp_path / "a", {("m", 100): _scores().iloc[3:], ("new", 500): _scores()})
    changes, summary = _run(small_cfg, before, after)
    assert summary["only_before"] == ["old@100"] and summary["only_after"] == ["new@500"]
    assert summary["ids"]["m@100"]["only_in_before"] == {"count": 3,
                                                         "first": ["e00", "e01", "e02"]}
    assert summary["top_k"] is None
    assert summary["test_data_differs"] == []
    assert set(changes["n_examples"].dropna()) == {N - 3}
    printed = capsys.readouterr().out
    assert "3 example id(s) only in before: e00, e01, e02" in printed
    assert "1 cell(s) only in after: new@500" in printed


def test_different_test_data_are_flagged(small_cfg, tmp_path, capsys):
    sides = [make_sweep(tmp_path / s, {("m", 100): _scores()}) for s in "ba"]
    for side, checksum in zip(sides, ("abc", "def"), strict=True):
        write_json(run_file(OutputPaths(side).run_dir("m", 100), "manifest"),
                   {"dataset": {"test": checksum}})
    _, summary = _run(small_cfg, *sides)
    assert summary["test_data_differs"] == ["m@100"]
    assert "WARNING: the test data differ" in capsys.readouterr().out
    # with per-example checksums: only a shared id with other content counts (a test file
    # that merely grew does not)
    ids = [f"e{i:02d}" for i in range(N)]
    for side, edited in zip(sides, ({}, {"e99": "new"}), strict=True):
        digests = {**dict.fromkeys(ids, "same"), **edited}
        write_json(run_file(OutputPaths(side).run_dir("m", 100), "manifest"),
                   {"dataset": {"test": str(side)}, "example_digests": digests})
    assert _run(small_cfg, *sides)[1]["test_data_differs"] == []
    write_json(run_file(OutputPaths(sides[1]).run_dir("m", 100), "manifest"),
               {"example_digests": {**dict.fromkeys(ids, "same"), "e01": "edited"}})
    assert _run(small_cfg, *sides)[1]["test_data_differs"] == ["m@100"]


def test_bad_inputs(small_cfg, tmp_path):
    good = make_sweep(tmp_path / "b", {("m", 100): _scores()})
    with pytest.raises(InputError, match="before: no such output folder"):
        _run(small_cfg, tmp_path / "missing", good)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="after: no finished cells"):
        _run(small_cfg, good, tmp_path / "empty")
    other = make_sweep(tmp_path / "o", {("x", 100): _scores()})
    with pytest.raises(InputError, match="no finished .model, train_size. cell in common"):
        _run(small_cfg, good, other)
    disjoint = make_sweep(tmp_path / "d", {("m", 100): _scores().assign(id=lambda f: "z" + f.id)})
    with pytest.raises(InputError, match="no example id in common"):
        _run(small_cfg, good, disjoint)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.diff", *args], cwd=ROOT,
                          env=run_env(), capture_output=True, text=True, timeout=300)


def test_cli_exit_0_and_2(tmp_path):
    before = make_sweep(tmp_path / "b", {("m", 100): _scores()})
    after = make_sweep(tmp_path / "a", {("m", 100): _scores(0.2)})
    ok = _cli(f"before={before}", f"after={after}", f"output_dir={after}",
              "aggregate.n_boot=200")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "significant improvement(s)" in ok.stdout
    assert {p.name for p in (after / "diff").iterdir()} >= {"changes.csv", "changes.md",
                                                           "summary.json", "index.html"}
    bad = _cli(f"before={tmp_path / 'nope'}", f"after={after}", f"output_dir={after}")
    assert bad.returncode == 2
    assert "nope: before: no such output folder" in bad.stderr and "Traceback" not in bad.stderr

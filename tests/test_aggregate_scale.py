"""The aggregate at scale: bounded pairwise tests, lazy rank groups, batched bootstrap,
skipping unchanged inputs, one consistent published set, and the benchmark's smoke run."""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.aggregate import outputs, publish, stats
from pipeline.aggregate.examples import Examples
from pipeline.aggregate.ranking import pairwise_tests, pvalue_matrix, select_pairs
from pipeline.aggregate.stage import aggregate
from pipeline.core.errors import InputError
from pipeline.core.io import write_parquet
from pipeline.core.paths import OutputPaths, run_file
from pipeline.report.build import load_ranked
from tests.conftest import ROOT, run_env

BENCH = ROOT / "scripts" / "bench_aggregate.py"
HIB = {"task_score": True}
W = {"task_score": 1.0}


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_aggregate", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _ranked_cells(k: int, n: int, seed: int = 0, models: list[str] | None = None):
    """k cells with strictly decreasing means (so the ranking is cell 0, 1, ...), n examples."""
    rng = np.random.default_rng(seed)
    models = models or [f"m{j}" for j in range(k)]
    cells, per = [], {}
    for j, model in enumerate(models):
        size = 100 * (1 + sum(m == model for m in models[:j]))
        values = 0.9 - 0.02 * j + rng.normal(0, 0.05, n)
        values += 0.9 - 0.02 * j - values.mean()  # exact mean: fixes the ranking
        per[(model, size)] = pd.DataFrame({"id": [f"e{i}" for i in range(n)],
                                           "task_score": values})
        cells.append({"model": model, "family": "f", "params_b": 1.0, "train_size": size,
                      "task_score": values.mean()})
    return pd.DataFrame(cells), per


def _exact_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided sign-flip p-value by brute force over all 2**n sign patterns."""
    d = a - b
    observed = abs(d.sum())
    hits = sum(abs(np.dot(signs, d)) >= observed * (1 - 1e-9)
               for signs in itertools.product((1.0, -1.0), repeat=len(d)))
    return hits / 2 ** len(d)


def _holm(p: list[float]) -> list[float]:
    """Holm step-down, written out: sorted p_(i) * (m - i), running max, capped at 1."""
    m, order, out, run = len(p), np.argsort(p, kind="stable"), [0.0] * len(p), 0.0
    for rank, idx in enumerate(order):
        run = max(run, (m - rank) * p[idx])
        out[idx] = min(run, 1.0)
    return out


# --- which pairs are tested ------------------------------------------------------------------

def test_select_pairs_all_when_they_fit() -> None:
    cells = pd.DataFrame({"model": list("abcd"), "train_size": [1] * 4})
    left, right, top = select_pairs(cells, 6)
    assert list(zip(left, right, strict=True)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3),
                                                   (2, 3)]
    assert top == 4


def test_select_pairs_bounded_hand_worked() -> None:
    # 6 cells, one size each, at most 10 pairs: leader (5) + neighbours (4 new) = 9; the top
    # 3 cells are then complete, cell 4 needs (1, 3) -> 10 pairs; cell 5 would need 2 more.
    cells = pd.DataFrame({"model": list("abcdef"), "train_size": [1] * 6})
    left, right, top = select_pairs(cells, 10)
    assert set(zip(left.tolist(), right.tolist(), strict=True)) == {
        (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 2), (2, 3), (3, 4), (4, 5), (1, 3)}
    assert top == 4


def test_select_pairs_adds_each_models_smallest_vs_largest_size() -> None:
    # ranking: x@1, y@1, z@1, y@2, x@2 (positions 0..4); the leader's 4 pairs and 3 more
    # neighbours ((0, 1) is already in) fill 7, so an 8th slot goes to y: 1 vs 2
    cells = pd.DataFrame({"model": list("xyzyx"), "train_size": [1, 1, 1, 2, 2]})
    pairs = set(zip(*select_pairs(cells, 8)[:2], strict=True))
    assert pairs == {(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4), (1, 3)}


def test_select_pairs_spends_no_slot_on_a_pair_already_chosen() -> None:
    # 4 cells, 5 of 6 pairs allowed: leader (3) + neighbours (1, 2) and (2, 3); (0, 1) is
    # both a leader and a neighbour pair and counts once
    cells = pd.DataFrame({"model": list("abcd"), "train_size": [1, 1, 1, 1]})
    pairs = set(zip(*select_pairs(cells, 5)[:2], strict=True))
    assert pairs == {(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)}


def test_bounded_pvalues_equal_exact_tests_and_holm_over_tested_pairs() -> None:
    cells, per = _ranked_cells(k=7, n=8)
    # 2**8 = 256 <= the family's permutations: every sign pattern is enumerated, p is exact
    tests, labels = pairwise_tests(cells, per, HIB, W, n_boot=256, max_pairs=12)
    # the 12 selected pairs, plus each model's consecutive sizes and the pairs the rank-group
    # walk needs: one family
    assert len(tests) >= 12 and len(labels) < 7
    x = {f"{m}@{s}": f["task_score"].to_numpy() for (m, s), f in per.items()}
    exact = [_exact_p(x[a], x[b]) for a, b in zip(tests["cell_a"], tests["cell_b"],
                                                  strict=True)]
    np.testing.assert_allclose(tests["p_raw"], exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tests["p_value"], _holm(exact), rtol=0, atol=1e-12)
    assert not tests["p_bound"].any()  # exact p-values are not bounds
    # the full family (no bound) has the same raw p-values for those pairs
    full, all_labels = pairwise_tests(cells, per, HIB, W, n_boot=256)
    assert len(full) == 21 and len(all_labels) == 7
    merged = tests.merge(full, on=["cell_a", "cell_b"], suffixes=("", "_full"))
    np.testing.assert_allclose(merged["p_raw"], merged["p_raw_full"], rtol=0, atol=1e-12)
    matrix = pvalue_matrix(tests, labels)
    assert list(matrix["cell"]) == labels and matrix.drop(columns="cell").notna().sum().sum() \
        == len(labels) * (len(labels) - 1)


def test_pair_pvalues_match_per_pair_tests_with_missing_examples() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 0.1, (40, 5))
    x[:5, 1] = np.nan
    left, right = np.array([0, 1, 2, 0]), np.array([1, 3, 4, 4])
    got = stats.pair_pvalues(x, left, right, 500, 7)
    want = [stats.paired_permutation_test(x[:, a], x[:, b], 500, 7)
            for a, b in zip(left, right, strict=True)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_lazy_rank_groups_equal_the_full_matrix_walk() -> None:
    rng = np.random.default_rng(1)
    means = np.sort(rng.uniform(0.3, 0.9, 30))[::-1]
    x = rng.normal(0, 0.05, (60, 30)) + means
    x[rng.random(x.shape) < 0.05] = np.nan
    full = stats.rank_groups(stats.pairwise_pvalues(x, 300, 0), 0.05)
    np.testing.assert_array_equal(stats.rank_groups_of(x, 300, 0, 0.05), full)
    assert full.max() > 3  # several groups, so the walk changed leaders
    no_shared = np.full((4, 3), np.nan)
    no_shared[np.arange(3), np.arange(3)] = 1.0
    assert np.isnan(stats.rank_groups_of(no_shared, 100, 0)).all()


def test_batched_bootstrap_equals_one_block_at_a_time() -> None:
    rng = np.random.default_rng(2)
    blocks = [rng.random((30, 3)), rng.random((30, 1)), rng.random((12, 2)), rng.random((30, 2))]
    blocks[0][4, 1] = np.nan
    for block, (low, high) in zip(blocks, stats.bootstrap_ci_blocks(blocks, 200, 0.1, 5),
                                  strict=True):
        want_low, want_high = stats.bootstrap_ci(block, 200, 0.1, 5)
        np.testing.assert_allclose(low, want_low, rtol=1e-12)
        np.testing.assert_allclose(high, want_high, rtol=1e-12)


def test_examples_align_on_the_union_of_the_ordered_cells_ids() -> None:
    per = {("a", 1): pd.DataFrame({"id": ["x2", "x1"], "s": [2.0, 1.0]}),
           ("b", 1): pd.DataFrame({"id": ["x3", "x1"], "s": [3.0, 4.0], "t": [5.0, 6.0]}),
           ("c", 1): pd.DataFrame({"id": ["x9"], "s": [9.0]})}
    ex = Examples(per, ["s", "t"])
    order = pd.DataFrame({"model": ["b", "a", "z"], "train_size": [1, 1, 1]})
    np.testing.assert_array_equal(ex.matrix(order, "s"), [[4.0, 1.0, np.nan],
                                                          [np.nan, 2.0, np.nan],
                                                          [3.0, np.nan, np.nan]])
    np.testing.assert_array_equal(ex.matrix(order, "t"), [[6.0, np.nan, np.nan],
                                                          [np.nan, np.nan, np.nan],
                                                          [5.0, np.nan, np.nan]])


# --- skip when unchanged, one consistent set ---------------------------------------------------

@pytest.fixture
def tiny(tmp_path: Path, compose_cfg: Callable) -> Callable:
    """A 4-cell finished sweep; returns ``cfg(*overrides)`` for it."""
    _bench_module().quick_template(tmp_path / "out", n_examples=12)

    def cfg(*overrides: str):
        return compose_cfg(f"output_dir={tmp_path / 'out'}", "aggregate.n_boot=100", *overrides)

    return cfg


def test_unchanged_inputs_skip_the_aggregate(tiny: Callable,
                                             caplog: pytest.LogCaptureFixture) -> None:
    root = Path(tiny().output_dir)
    aggregate(tiny())
    first = outputs.published(root)
    caplog.set_level(logging.INFO)
    aggregate(tiny())
    assert outputs.published(root)["run_id"] == first["run_id"]
    assert "inputs unchanged" in caplog.text
    aggregate(tiny("force=true"))  # force recomputes
    assert outputs.published(root)["run_id"] != first["run_id"]
    forced = outputs.published(root)["run_id"]
    aggregate(tiny("aggregate.alpha=0.1"))  # a config change recomputes
    assert outputs.published(root)["run_id"] != forced
    changed = outputs.published(root)
    scores_path = run_file(OutputPaths(root).run_dir("demo-a", 500), "scores")
    scores = pd.read_parquet(scores_path)
    write_parquet(scores_path, scores.assign(tag_f1=1.0 - scores["tag_f1"]))  # same size
    aggregate(tiny("aggregate.alpha=0.1"))
    assert outputs.published(root)["inputs"] != changed["inputs"]


def test_documented_paths_are_links_into_one_set(tiny: Callable) -> None:
    root = Path(tiny().output_dir)
    paths = OutputPaths(root)
    paths.tables.mkdir(parents=True)  # what an older version left: plain files
    (paths.tables / "old.csv").write_text("stale\n")
    paths.comparison_csv.write_text("stale\n")
    (root / ".model_comparison.csv.abc123.tmp").write_text("stray temp file")
    aggregate(tiny())
    for path in (paths.comparison_csv, paths.tables, paths.analysis_md):
        assert path.is_symlink() and path.resolve().parent == (root / "aggregate").resolve()
    assert not (paths.tables / "old.csv").exists()  # moved aside, not deleted:
    assert [p.read_text() for p in root.glob("tables.moved-*/old.csv")] == ["stale\n"]
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [outputs.LOCK]
    stamp = outputs.published(root)
    assert set(stamp["files"]) >= {"model_comparison.csv", "analysis.md",
                                   "tables/pairwise_pvalues.csv"}


def test_a_failure_mid_publish_keeps_the_old_set(tiny: Callable,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(tiny().output_dir)
    aggregate(tiny())
    before = {p.relative_to(root / "aggregate"): p.read_bytes()
              for p in (root / "aggregate").rglob("*") if p.is_file()}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # after the CSV and tables were written to the staging folder

    monkeypatch.setattr(publish, "write_analysis_md", killed)
    with pytest.raises(KeyboardInterrupt):
        aggregate(tiny("force=true", "aggregate.alpha=0.1"))
    after = {p.relative_to(root / "aggregate"): p.read_bytes()
             for p in (root / "aggregate").rglob("*") if p.is_file()}
    assert after == before
    assert outputs.published(root) is not None  # still intact
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == [outputs.LOCK]
    assert load_ranked(OutputPaths(root)).shape[0] == 4


def test_a_swap_cut_between_its_renames_is_repaired(tiny: Callable,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(tiny().output_dir)
    aggregate(tiny())
    first = outputs.published(root)["run_id"]
    real_replace = os.replace

    def killed(src, dst):  # dies after moving the old set aside: nothing is moved back
        if Path(src).name.startswith((".aggregate.staging", ".aggregate.old")):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        aggregate(tiny("force=true"))
    monkeypatch.setattr(os, "replace", real_replace)
    assert not (root / "aggregate").exists()  # the cut state: old set aside, new not in
    with pytest.raises(InputError, match="not found"):
        load_ranked(OutputPaths(root))
    aggregate(tiny())  # puts the old set back, then finds its inputs unchanged
    assert outputs.published(root)["run_id"] == first
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == [outputs.LOCK]


def test_report_refuses_a_tampered_set(tiny: Callable) -> None:
    root = Path(tiny().output_dir)
    aggregate(tiny())
    table = OutputPaths(root).tables / "efficiency.csv"
    table.write_text(table.read_text() + "\n")
    with pytest.raises(InputError, match="changed since aggregate set"):
        load_ranked(OutputPaths(root))
    aggregate(tiny())  # not skipped: the set is not intact
    assert load_ranked(OutputPaths(root)).shape[0] == 4


# --- the benchmark ------------------------------------------------------------------------------

def test_bench_quick_smoke(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--quick", "--work", str(tmp_path)],
                         capture_output=True, text=True, env=run_env(), cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "aggregate_s" in line)
    rows = [line.split() for line in lines[header + 1:]]
    assert [r[:2] for r in rows] == [["template", "4"], ["synthetic", "6"]]
    assert all(float(v) > 0 for r in rows for v in r[3:])
    assert len(list((tmp_path / "sweep6" / "runs").glob("*/*/manifest.json"))) == 6

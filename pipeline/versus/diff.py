"""Sweep against sweep: did the results change between two output folders?

python -m pipeline.diff before=outputs after=outputs-stem0 output_dir=outputs-stem0

For every (model, train_size) cell finished in both sweeps and every metric: the mean before
and after over the example ids both sides share, the change (after - before), a paired test
on those ids (sign-flip permutation, McNemar for 0/1 metrics; as in
:func:`pipeline.aggregate.ranking.adjacent_tests`), significance at ``aggregate.alpha`` after
Holm's correction over every tested (cell, metric) pair, with enough permutations for that
family (the policy of :mod:`pipeline.aggregate.significance`) and, when each side has a
``model_comparison.csv``, the cell's rank before and after. A significant change smaller than
``aggregate.min_effect`` is called ``negligible``, not better or worse. With
``diff.sweeps=[v1,v2,v3,...]`` (oldest first) the last two are compared and ``history.csv``
plus a chart track each cell's overall score across all of them. Corpus-level metrics (e.g.
macro-F1) are compared on each side's own examples, untested. Cells whose manifests record
different test-set checksums are flagged: their ids match but the examples behind them differ.
Writes ``<output_dir>/diff/changes.csv`` (+ ``.md``), ``summary.json`` and ``index.html``;
cells and example ids present on one side only are listed there and on stdout.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from pipeline.aggregate.ranking import OVERALL, adjacent_tests, cell_label, example_overall
from pipeline.aggregate.runs import SweepResults, load_runs
from pipeline.aggregate.significance import at_floor, holm, n_permutations, p_text
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.io import read_csv, read_json, write_json, write_table
from pipeline.core.paths import OutputPaths, run_file
from pipeline.scoring.metrics import directions
from pipeline.versus.diff_html import write_page
from pipeline.versus.history import score_history
from pipeline.versus.sides import IdMatch, match_ids

log = logging.getLogger(__name__)
Cell = tuple[str, int]


@dataclass
class Sweep:
    """One side of the diff: its folder, finished cells and ranks (None: not aggregated)."""

    root: Path
    results: SweepResults
    ranks: dict[Cell, int] | None

    @property
    def cells(self) -> list[Cell]:
        return sorted(self.results.per_example)


def load_sweep(spec: str, key: str) -> Sweep:
    """Finished cells of an output folder and the ranks of its ``model_comparison.csv``."""
    root = Path(spec)
    if not root.is_dir():
        raise InputError(root, f"{key}: no such output folder")
    results = load_runs(root)
    for problem in results.problems:
        log.warning("%s: left out: %s", key, problem)
    if not results.per_example:
        raise InputError(OutputPaths(root).runs, f"{key}: no finished cells (run "
                                                 "`python -m pipeline.compare -m` first)")
    ranked = OutputPaths(root).comparison_csv
    ranks = None
    if ranked.exists():
        table = read_csv(ranked).dropna(subset=["rank"])
        ranks = {(str(m), int(t)): int(r) for m, t, r in
                 zip(table["model"], table["train_size"], table["rank"], strict=True)}
    return Sweep(root, results, ranks)


def data_checksum(sweep: Sweep, cell: Cell) -> str | None:
    """The test-set checksum in the cell's ``manifest.json`` (None when not recorded)."""
    manifest = read_json(run_file(OutputPaths(sweep.root).run_dir(*cell), "manifest"))
    dataset = manifest.get("dataset") if isinstance(manifest, dict) else None
    return dataset.get("test") if isinstance(dataset, dict) else None


def _data_differs(before: Sweep, after: Sweep, cell: Cell) -> bool:
    """Whether an example id both sides scored names different records: by the per-example
    checksums the cells record (read by :func:`load_runs`); cells from before those by their
    test-file checksums."""
    b, a = before.results.scored.get(cell), after.results.scored.get(cell)
    if b is not None and a is not None and b.digests is not None and a.digests is not None:
        return any(b.digests[i] != a.digests[i] for i in b.digests.keys() & a.digests.keys())
    sums = data_checksum(before, cell), data_checksum(after, cell)
    return None not in sums and sums[0] != sums[1]


def _with_overall(frame: pd.DataFrame, weights: Mapping[str, float]) -> pd.DataFrame:
    overall = example_overall(frame, weights)
    return frame if overall is None else frame.assign(**{OVERALL: overall})


def cell_rows(before: pd.DataFrame, after: pd.DataFrame, match: IdMatch,
              higher: Mapping[str, bool], n_perm: int, seed: int,
              alpha: float, min_effect: float = 0.0) -> list[dict]:
    """One row per per-example metric both frames carry; means over the complete pairs."""
    b, a = before.set_index(before["id"].astype(str)), after.set_index(after["id"].astype(str))
    rows = []
    for metric in [c for c in b.columns if c in a.columns and c in higher]:
        x = np.column_stack([b.loc[match.shared, metric].to_numpy(dtype=float),
                             a.loc[match.shared, metric].to_numpy(dtype=float)])
        pairs = x[~np.isnan(x).any(axis=1)]
        tests, p = adjacent_tests(x, n_perm, seed)
        mean_b, mean_a = pairs.mean(axis=0) if len(pairs) else (np.nan, np.nan)
        rows.append(_row(metric, float(mean_b), float(mean_a), tests[0], float(p[0]),
                         higher[metric], alpha, len(pairs), min_effect))
    return rows


def judge(change: float, p: float, higher: bool, alpha: float,
          min_effect: float = 0.0) -> tuple[str, str]:
    """``(significant, verdict)`` of one change: ``yes``/``no``/blank (untested), and
    better/worse, ``negligible`` (significant but smaller than ``min_effect``), ``no
    significant change`` or blank."""
    if not np.isfinite(p):
        return "", ""
    if p >= alpha:
        return "no", "no significant change"
    return "yes", ("negligible" if abs(change) < min_effect
                   else "better" if (change > 0) == higher else "worse")


def _row(metric: str, before: float, after: float, test: str, p: float, higher: bool,
         alpha: float, n: int | None, min_effect: float = 0.0) -> dict:
    """One row of ``changes.csv`` (raw p; :func:`adjust` applies the family's correction)."""
    change = after - before
    significant, verdict = judge(change, p, higher, alpha, min_effect)
    return {"metric": metric, "before": before, "after": after, "change": change,
            "test": test, "p_value": p, "significant": significant,
            "verdict": verdict, "n_examples": n}


def adjust(changes: pd.DataFrame, higher: Mapping[str, bool], alpha: float, n_perm: int,
           min_effect: float = 0.0) -> pd.DataFrame:
    """Holm over every tested row of ``changes`` (one family): ``p_raw`` keeps the test's
    value, ``p_value`` becomes the adjusted one (``p_bound``: an upper bound at the
    permutation floor), and significance and verdicts follow the adjusted value."""
    raw = changes["p_value"].to_numpy(dtype=float)
    perm = (changes["test"] == "permutation").to_numpy()
    p, bound = holm(raw, perm & at_floor(raw, n_perm))
    judged = [judge(c, q, higher[m], alpha, min_effect) for c, q, m in
              zip(changes["change"], p, changes["metric"], strict=True)]
    out = changes.assign(p_raw=raw, p_value=p, p_bound=bound,
                         significant=[j[0] for j in judged], verdict=[j[1] for j in judged])
    cols = list(changes.columns)
    at = cols.index("p_value")
    return out[cols[:at] + ["p_raw", "p_value", "p_bound"] + cols[at + 1:]]


def corpus_rows(before: pd.Series, after: pd.Series, tested: set[str],
                higher: Mapping[str, bool]) -> list[dict]:
    """Untested rows for cell-level metrics without per-example values (e.g. macro-F1)."""
    return [_row(m, float(before[m]), float(after[m]), "", np.nan, higher[m], 0.0, None)
            for m in higher if m not in tested and m in before.index and m in after.index
            and pd.notna(before[m]) and pd.notna(after[m])]


def top_k(before: Sweep, after: Sweep, k: int) -> dict | None:
    """Cells in the top ``k`` ranks of each side and those that entered or left them."""
    if before.ranks is None or after.ranks is None:
        return None
    tops = [[cell_label(*c) for c, r in sorted(s.ranks.items(), key=lambda kv: kv[1]) if r <= k]
            for s in (before, after)]
    return {"k": k, "before": tops[0], "after": tops[1],
            "entered": [c for c in tops[1] if c not in tops[0]],
            "left": [c for c in tops[0] if c not in tops[1]]}


def diff(cfg: DictConfig) -> Path:
    """Compare the two sweeps and write the diff folder; returns it."""
    sweeps = [str(s) for s in cfg.diff.sweeps]
    before_dir = cfg.get("before") or (sweeps[-2] if len(sweeps) > 1 else None)
    after_dir = cfg.get("after") or (sweeps[-1] if len(sweeps) > 1 else None)
    for key, value in (("before", before_dir), ("after", after_dir)):
        if not value:
            raise ConfigError(f"{key}: required, e.g. before=outputs after=outputs-new (or "
                              "diff.sweeps=[outputs-v1,outputs-v2,outputs-v3])")
    before, after = load_sweep(before_dir, "before"), load_sweep(after_dir, "after")
    shared = [c for c in before.cells if c in after.cells]
    if not shared:
        raise InputError(after.root, f"no finished (model, train_size) cell in common with "
                                     f"{before.root}")
    agg, higher = cfg.aggregate, {**directions(cfg.tasks, cfg.metrics), OVERALL: True}
    weights = {k: float(v) for k, v in agg.weights.items()}
    rows, ids, frames = [], {}, {}
    for cell in shared:
        fb = _with_overall(before.results.per_example[cell], weights)
        fa = _with_overall(after.results.per_example[cell], weights)
        match = match_ids(fb["id"].astype(str), fa["id"].astype(str))
        ids[cell_label(*cell)] = match
        if match.shared:
            frames[cell] = fb, fa, match
    family = sum(len([c for c in fb.columns if c in fa.columns and c in higher])
                 for fb, fa, _ in frames.values())
    n_perm = n_permutations(family, int(agg.n_boot), float(agg.alpha))
    for cell, (fb, fa, match) in frames.items():
        found = cell_rows(fb, fa, match, higher, n_perm, int(agg.seed),
                          float(agg.alpha), float(agg.min_effect))
        found += corpus_rows(_cell(before, cell), _cell(after, cell),
                             {r["metric"] for r in found}, higher)
        ranks = {f"rank_{s}": (side.ranks or {}).get(cell)
                 for s, side in (("before", before), ("after", after))}
        rows += [{"model": cell[0], "train_size": cell[1], **r, **ranks} for r in found]
    if not rows:
        raise InputError(after.root, f"no example id in common with {before.root} in any "
                                     "shared cell", field="id")
    changes = adjust(pd.DataFrame(rows), higher, float(agg.alpha), n_perm,
                     float(agg.min_effect))
    for col in ("n_examples", "rank_before", "rank_after"):  # whole numbers, blank if none
        changes[col] = pd.Series([None if pd.isna(v) else int(v) for v in changes[col]],
                                 dtype=object)
    summary = _summary(cfg, before, after, shared, ids, changes, n_perm)
    out = OutputPaths(Path(cfg.output_dir)).diff_dir
    history = None
    if len(sweeps) > 2:
        loaded = [load_sweep(s, f"diff.sweeps[{i}]") for i, s in enumerate(sweeps)]
        history = score_history([(s.root, s.results) for s in loaded], weights)
        write_table(out / "history.csv", history)
    write_table(out / "changes.csv", changes)
    write_json(out / "summary.json", summary)
    write_page(out / "index.html", summary, changes, history)
    _print_summary(summary, ids, out)
    return out


def _cell(sweep: Sweep, cell: Cell) -> pd.Series:
    cells = sweep.results.cells
    return cells[(cells["model"] == cell[0]) & (cells["train_size"] == cell[1])].iloc[0]


def _summary(cfg: DictConfig, before: Sweep, after: Sweep, shared: list[Cell],
             ids: dict[str, IdMatch], changes: pd.DataFrame, n_perm: int) -> dict:
    sig = changes[changes["significant"] == "yes"].sort_values("p_value", kind="stable")
    negligible = int((sig["verdict"] == "negligible").sum())
    return {
        "before": str(before.root), "after": str(after.root),
        "alpha": float(cfg.aggregate.alpha), "n_permutations": n_perm,
        "correction": "holm over every tested (cell, metric) pair",
        "min_effect": float(cfg.aggregate.min_effect),
        "cells_compared": [cell_label(*c) for c in shared],
        "only_before": [cell_label(*c) for c in before.cells if c not in shared],
        "only_after": [cell_label(*c) for c in after.cells if c not in shared],
        "left_out": {"before": before.results.problems, "after": after.results.problems},
        "test_data_differs": [cell_label(*c) for c in shared if _data_differs(before, after, c)],
        "n_significant": {v: int((sig["verdict"] == v).sum()) for v in ("better", "worse")},
        "n_negligible": negligible,
        "significant_changes": [
            {"cell": cell_label(r.model, r.train_size), "metric": r.metric,
             "before": r.before, "after": r.after, "change": r.change, "p_value": r.p_value,
             "p_bound": bool(r.p_bound), "verdict": r.verdict}
            for r in sig.itertuples(index=False)],
        "top_k": top_k(before, after, int(cfg.diff.top_k)),
        "ids": {label: m.report("before", "after") for label, m in ids.items()
                if m.only_left or m.only_right or not m.shared},
    }


def _print_summary(summary: dict, ids: dict[str, IdMatch], out: Path) -> None:
    print(f"\n{len(summary['cells_compared'])} cell(s) in both sweeps; "
          f"{summary['n_significant']['better']} significant improvement(s), "
          f"{summary['n_significant']['worse']} significant regression(s) "
          f"(alpha {summary['alpha']:g}); {summary['n_negligible']} significant change(s) "
          f"below min_effect {summary['min_effect']:g} (negligible)")
    if summary["test_data_differs"]:
        print(f"  WARNING: the test data differ (manifest checksums) in "
              f"{len(summary['test_data_differs'])} cell(s): the same ids name different "
              "examples, so the changes mix data and model effects")
    for key in ("only_before", "only_after"):
        if summary[key]:
            print(f"  note: {len(summary[key])} cell(s) {key.replace('_', ' in ')}: "
                  + ", ".join(summary[key]))
    for label, match in ids.items():
        for line in match.lines("before", "after"):
            print(f"  note: {label}: {line}")
    for r in summary["significant_changes"][:10]:
        print(f"  {r['verdict']:6s} {r['cell']:28s} {r['metric']:34s} {r['before']:.4f} -> "
              f"{r['after']:.4f} ({p_text(r['p_value'], r['p_bound'], summary['n_permutations'])}"
              ", Holm)")
    top = summary["top_k"]
    if top is None:
        print("  top-k: a side has no model_comparison.csv (run pipeline.aggregate on it)")
    else:
        print(f"  top-{top['k']}: entered {', '.join(top['entered']) or 'none'}; "
              f"left {', '.join(top['left']) or 'none'}")
    print(f"-> {out}")

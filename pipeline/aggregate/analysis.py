"""``analysis.md``: a generated deep-dive over the ranked table and the summary tables.

Every number comes from the tables passed in, and a claim is only written when the data
supports it (e.g. "more data helped" only when every model's score rose). Long lists are
capped so a 40-cell sweep stays readable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from pipeline.aggregate.learning_curves import learning_curve_section
from pipeline.aggregate.manifest_summary import provenance_lines
from pipeline.aggregate.ranking import OVERALL, cell_label, order_best
from pipeline.aggregate.significance import p_text as _p
from pipeline.core.io import atomic_write_text, to_markdown

LIST_CAP = 10


def _num(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def _signed(x: float) -> str:
    return "n/a" if pd.isna(x) else f"{x:+.4f}"


def _pval(p: float, bound: bool = False) -> str:
    """A p-value for a table cell: ``0.0312``, ``<0.001``, ``<=0.025`` (a bound), ``n/a``."""
    if pd.isna(p):
        return "n/a"
    if bound:
        return f"<={p:.3g}"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def _corr_p(p: float, n: int) -> str:
    """A correlation's p-value, or why it has none (fewer than ``MIN_N_FOR_P`` points)."""
    return f"n = {n}, too few points for a p-value" if pd.isna(p) else f"{_p(p)}, n = {n}"


def _cell(row: pd.Series) -> str:
    return cell_label(row["model"], row["train_size"])


def _cap(items: Sequence[str], limit: int = LIST_CAP) -> list[str]:
    """At most ``limit`` items, then a line saying how many were left out."""
    items = list(items)
    if len(items) <= limit:
        return items
    return items[:limit] + [f"... and {len(items) - limit} more (see the tables)"]


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in _cap(items))


def _names(items: Sequence[str], limit: int = LIST_CAP) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _level(alpha: float) -> str:
    """Confidence level of a (1 - alpha) interval, e.g. ``95%``."""
    return f"{100 * (1 - alpha):g}%"


def _verdict(p: float, alpha: float, diff: float = np.nan, min_effect: float = 0.0,
             bound: bool = False, n_perm: int | None = None) -> str:
    """``significant, p = ...``; a significant difference below ``min_effect`` is negligible."""
    if pd.isna(p):
        return "untested (no per-example scores)"
    text = _p(p, bound, n_perm)
    if p < alpha and pd.notna(diff) and abs(diff) < min_effect:
        return f"significant but negligible (|difference| < min_effect {min_effect:g}), {text}"
    return f"{'significant' if p < alpha else 'not significant'}, {text}"


def _has_tests(ranked: pd.DataFrame) -> bool:
    """Whether any cell had per-example scores (so CIs and tests exist)."""
    return bool(ranked["overall_score_ci_low"].notna().any())


def _untested(ranked: pd.DataFrame) -> list[str]:
    """Scored cells without per-example scores (when others have them)."""
    rows = ranked[ranked[OVERALL].notna() & ranked["overall_score_ci_low"].isna()]
    return [_cell(r) for _, r in rows.iterrows()] if _has_tests(ranked) else []


def _overview(ranked: pd.DataFrame, n_examples: Sequence[int] | None,
              examples_note: str = "") -> str:
    families = sorted(ranked["family"].astype(str).unique())
    sizes = sorted(ranked["train_size"].unique())
    text = (f"This sweep has {len(ranked)} cells (model x training-set size): "
            f"{ranked['model'].nunique()} models from {len(families)} "
            f"famil{'y' if len(families) == 1 else 'ies'} ({_names(families)}) at "
            f"{len(sizes)} training-set size(s) ({_names([str(s) for s in sizes])}). "
            "Scores are means over the test examples; higher overall score is better.")
    if examples_note:
        text += " " + examples_note
    elif n_examples:
        lo, hi = min(n_examples), max(n_examples)
        text += (f" Each cell was scored on {lo} test examples." if lo == hi else
                 f" Cells were scored on {lo} to {hi} test examples.")
    if not _has_tests(ranked):
        text += (" No per-example scores were available, so confidence intervals, rank "
                 "intervals and significance tests are left out.")
    unscored = [_cell(r) for _, r in ranked[ranked[OVERALL].isna()].iterrows()]
    if unscored:
        text += (f" {len(unscored)} cell(s) have no overall score (a weighted metric is "
                 f"missing) and are listed last: {_names(unscored)}.")
    untested = _untested(ranked)
    if untested:
        text += (f" {len(untested)} cell(s) have no per-example scores, so they have no CI and "
                 f"were not tested (their rank group is not test-based): {_names(untested)}.")
    return text


def _distribution(ranked: pd.DataFrame) -> str:
    """Mean, median, standard deviation and range of the overall score across cells."""
    v = ranked[OVERALL].dropna()
    if v.empty:
        return "No cell has an overall score."
    lo, hi = ranked.loc[v.idxmin()], ranked.loc[v.idxmax()]
    std = _num(v.std(ddof=1)) if len(v) > 1 else "n/a"
    table = pd.DataFrame({"cells": [len(v)], "mean": [_num(v.mean())],
                          "median": [_num(v.median())], "std": [std],
                          "min": [_num(v.min())], "max": [_num(v.max())],
                          "range": [_num(v.max() - v.min())]})
    return (to_markdown(table) + "\n" + _bullets([
        f"Overall scores run from {_num(v.min())} ({_cell(lo)}) to {_num(v.max())} "
        f"({_cell(hi)}); the median cell scores {_num(v.median())} and the standard deviation "
        f"across cells is {std} (sample, ddof = 1)."]))


def _top_bottom(ranked: pd.DataFrame, significance: pd.DataFrame, alpha: float,
                top_n: int, min_effect: float = 0.0) -> str:
    scored = ranked[ranked[OVERALL].notna()]
    if scored.empty:
        return "No cell has an overall score."
    show = scored if len(scored) <= top_n + 3 else pd.concat([scored.head(top_n),
                                                                scored.tail(3)])
    table = pd.DataFrame({
        "rank": show["rank"].astype(str), "group": show["rank_group"].astype(str),
        "cell": [_cell(r) for _, r in show.iterrows()],
        "overall": [_num(v) for v in show[OVERALL]],
        f"{_level(alpha)} CI": [f"{_num(lo)}-{_num(hi)}" if pd.notna(lo) else "n/a" for lo, hi in
                   zip(show["overall_score_ci_low"], show["overall_score_ci_high"],
                       strict=True)],
        "rank interval": [f"{lo}-{hi}" if pd.notna(lo) else "n/a" for lo, hi in
                          zip(show["rank_low"], show["rank_high"], strict=True)],
    })
    best, lines = scored.iloc[0], []
    lines.append(f"**{_cell(best)}** ranks first with an overall score of "
                 f"{_num(best[OVERALL])}.")
    if len(scored) > 1:
        second = scored.iloc[1]
        first_pair = significance[(significance["metric"] == OVERALL)
                                  & (significance["position"] == 1)]
        test = first_pair["test"].iloc[0] if len(first_pair) else ""
        via = f" ({test} test)" if test else ""
        lead = best[OVERALL] - second[OVERALL]
        verdict = _verdict(best["p_vs_next"], alpha, lead, min_effect,
                           bool(best.get("p_vs_next_bound", False)), _n_perm(significance))
        if np.isclose(lead, 0, rtol=0, atol=1e-12):
            lines.append(f"It ties with {_cell(second)} (both {_num(best[OVERALL])}): "
                         f"{verdict}{via}.")
        else:
            lines.append(f"Its lead over {_cell(second)} is {_num(lead)}: {verdict}{via}.")
        if _has_tests(ranked):
            group1 = scored[scored["rank_group"] == 1]
            lines.append(f"{len(group1)} of {len(scored)} cells share rank group 1, i.e. are "
                         f"not significantly worse than the leader (Holm-adjusted): "
                         f"{_names([_cell(r) for _, r in group1.iterrows()])}.")
        if pd.notna(best["rank_low"]):
            lines.append(f"Across bootstrap resamples of the test examples the leader's rank "
                         f"lies between {best['rank_low']} and {best['rank_high']} "
                         f"({_level(alpha)}).")
        worst = scored.iloc[-1]
        lines.append(f"**{_cell(worst)}** is last with {_num(worst[OVERALL])}, "
                     f"{_num(best[OVERALL] - worst[OVERALL])} below the leader.")
    note = "" if len(show) == len(scored) else (
        f"\n\nTop {top_n} and bottom 3 of {len(scored)} scored cells shown.")
    return to_markdown(table) + note + "\n\n" + _bullets(lines)


def _n_perm(frame: pd.DataFrame) -> int | None:
    """The permutation count of a table's overall-score tests (None when it has none)."""
    if "n_permutations" not in frame or frame.empty:
        return None
    rows = frame[frame["metric"] == OVERALL] if "metric" in frame else frame
    counts = rows["n_permutations"][rows["n_permutations"] > 0]
    return int(counts.iloc[0]) if len(counts) else None


def _pair(tables: Mapping[str, pd.DataFrame], a: str, b: str) -> tuple[float, bool]:
    """The Holm-adjusted p-value of cells ``a`` and ``b`` in the overall family and whether
    it is a bound ((NaN, False) when that pair was not tested)."""
    long = tables.get("pairwise_tests")
    if long is None:
        return np.nan, False
    hit = long[((long["cell_a"] == a) & (long["cell_b"] == b))
               | ((long["cell_a"] == b) & (long["cell_b"] == a))]
    if not len(hit):
        return np.nan, False
    return float(hit["p_value"].iloc[0]), bool(hit["p_bound"].iloc[0])


def _pair_text(tables: Mapping[str, pd.DataFrame], a: str, b: str) -> str:
    p, bound = _pair(tables, a, b)
    return _p(p, bound, _n_perm(tables["pairwise_tests"]) if "pairwise_tests" in tables
              else None)


def _steps(rows: pd.DataFrame, tables: Mapping[str, pd.DataFrame], alpha: float,
           min_effect: float) -> str:
    """Every step of one model's scaling curve, with its test, drops and diminishing returns.

    ``rows`` are the model's rows of ``tables["scaling"]`` (by train size); ``alpha`` NaN
    means no test exists. Gains are compared per 1,000 added examples.
    """
    if len(rows) < 3:
        return ""
    model = rows["model"].iloc[0]
    parts, rates, drops = [], [], []
    for prev, cur in zip(rows.iloc[:-1].itertuples(), rows.iloc[1:].itertuples(), strict=True):
        d = cur.overall_score - prev.overall_score
        a, b = cell_label(model, prev.train_size), cell_label(model, cur.train_size)
        p = np.nan if pd.isna(alpha) else _pair(tables, a, b)[0]
        test = "" if pd.isna(p) else f", {_pair_text(tables, a, b)}"
        parts.append(f"{prev.train_size} -> {cur.train_size} {_signed(d)}{test}")
        rates.append(1000 * d / (cur.train_size - prev.train_size))
        if d < 0 and abs(d) >= min_effect:
            sig = "untested" if pd.isna(p) else ("significant" if p < alpha
                                                 else "not significant")
            drops.append(f"{prev.train_size} -> {cur.train_size} ({_signed(d)}, {sig})")
    text = "; steps: " + "; ".join(parts)
    if all(r > 0 for r in rates) and all(b < a for a, b in zip(rates, rates[1:], strict=False)):
        text += ("; diminishing returns (gain per 1,000 examples "
                 + " -> ".join(_num(r) for r in rates) + ")")
    if drops:
        text += "; **drop with more data**: " + ", ".join(drops)
    return text


def _scaling_section(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                     pairwise: pd.DataFrame | None, alpha: float,
                     min_effect: float = 0.0) -> str:
    sizes = sorted(ranked["train_size"].unique())
    if len(sizes) < 2:
        return (f"All cells use a single training-set size ({sizes[0] if sizes else 'none'}), "
                "so the effect of training data cannot be assessed.")
    summary = tables["train_size_summary"]
    means = " -> ".join(f"{_num(m)} ({s})" for s, m in
                        zip(summary["train_size"], summary["mean_score"], strict=True))
    lines = [f"Mean overall score across models by training-set size: {means}."]
    changes = []
    for model, grp in tables["scaling"].dropna(subset=[OVERALL]).groupby("model", sort=True):
        if len(grp) < 2:
            continue
        first, last = grp.iloc[0], grp.iloc[-1]
        p, bound = (_pair(tables, cell_label(model, first["train_size"]),
                          cell_label(model, last["train_size"])) if pairwise is not None
                    else (np.nan, False))
        changes.append((model, first["train_size"], last["train_size"],
                        last[OVERALL] - first[OVERALL], p, bound))
    if not changes:
        return "No model was trained at more than one training-set size.\n\n" + _bullets(lines)
    up = [c for c in changes if c[3] > 0]
    down = [c for c in changes if c[3] < 0]
    sig = [c for c in changes if pd.notna(c[4]) and c[4] < alpha]
    m = len(changes)
    flat = m - len(up) - len(down)
    if len(up) == m:
        headline = f"More training data raised the overall score of every model ({m} of {m})"
    elif len(down) == m:
        headline = f"More training data lowered the overall score of every model ({m} of {m})"
    elif not down:
        headline = (f"More training data raised the overall score of {len(up)} of {m} models "
                    f"and left {flat} unchanged (none fell)")
    elif not up:
        headline = (f"More training data lowered the overall score of {len(down)} of {m} "
                    f"models and left {flat} unchanged (none rose)")
    else:
        headline = (f"The effect of training data is mixed: from the smallest to the largest "
                    f"size the score rose for {len(up)}, fell for {len(down)} and was unchanged "
                    f"for {flat} of {m} models")
    if any(pd.notna(c[4]) for c in changes):
        headline += (f"; {len(sig)} of these {m} changes are significant at alpha = {alpha} "
                     "(paired permutation test, Holm-adjusted over the ranking's family)")
    lines.append(headline + ".")
    ordered = sorted(changes, key=lambda c: (-c[3], c[0]))
    steps = tables["scaling"].dropna(subset=[OVERALL])
    n_perm = _n_perm(tables["pairwise_tests"]) if "pairwise_tests" in tables else None
    lines += [f"{model}: {a} -> {b}: {_signed(d)}"
              + ("" if pd.isna(p) else f" ({_verdict(p, alpha, d, min_effect, bound, n_perm)})")
              + _steps(steps[steps["model"] == model], tables,
                       alpha if pairwise is not None else np.nan, min_effect)
              for model, a, b, d, p, bound in ordered]
    corr = tables["factor_correlations"].set_index("factor")
    if "train_size" in corr.index and pd.notna(corr.loc["train_size", "spearman"]):
        r = corr.loc["train_size"]
        lines.append(f"Across all cells, Spearman correlation of training-set size with the "
                     f"overall score: {_num(r['spearman'], 3)} "
                     f"({_corr_p(r['spearman_p'], r['n'])}).")
    return to_markdown(summary) + "\n" + _bullets(lines)


def _family_section(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> str:
    fam = tables["family_comparison"]
    families = [c for c in fam.columns if c not in ("metric", "higher_is_better", "best_family")]
    if len(families) < 2:
        return "All models belong to one family, so families are not compared."
    size = ranked["train_size"].max()
    at_size = ranked[ranked["train_size"] == size]
    counts = at_size.groupby("family")["model"].nunique()
    overall = fam[fam["metric"] == OVERALL].iloc[0]
    lines = [f"At the largest training-set size ({size}) the best family by mean overall score "
             f"is **{overall['best_family']}** "
             f"({', '.join(f'{f}: {_num(overall[f])}' for f in families)})."]
    leaders = fam.loc[fam["metric"] != OVERALL, "best_family"]
    wins = leaders.value_counts()
    ties = int(leaders.str.contains(", ", regex=False).sum())
    lines.append("Metrics led (direction-aware): " + ", ".join(
        f"{f} {int(wins.get(f, 0))} of {len(leaders)}" for f in families)
        + (f"; {ties} tied" if ties else "") + ".")
    lines.append("Family means are averages over models, not paired tests; the paired tests "
                 "between cells are in the ranking and tables/pairwise_pvalues.csv.")
    single = [f for f in families if counts.get(f, 0) == 1]
    if single:
        lines.append(f"{_names(single)} {'has' if len(single) == 1 else 'have'} a single model "
                     "at this size, so the family mean is that model's score.")
    return to_markdown(fam) + "\n" + _bullets(lines)


def _task_section(tables: Mapping[str, pd.DataFrame], significance: pd.DataFrame,
                  alpha: float, min_effect: float = 0.0) -> str:
    leaders = tables["task_leaders"]
    leaders = leaders[~leaders["metric"].isin([OVERALL, "perplexity"])]
    if leaders.empty:
        return "No task metrics were given."
    first = significance[significance["position"] == 1].set_index("metric")
    table = pd.DataFrame({
        "metric": leaders["metric"],
        "best": [f"{m}@{s}" for m, s in zip(leaders["best_model"], leaders["best_train_size"],
                                            strict=True)],
        "best value": [_num(v) for v in leaders["best_value"]],
        "lead over 2nd": [_num(first["difference"].get(m, np.nan)) for m in leaders["metric"]],
        "lead p": [_pval(first["p_value"].get(m, np.nan), first["p_bound"].get(m, False))
                   for m in leaders["metric"]],
        "worst": [f"{m}@{s}" for m, s in zip(leaders["worst_model"],
                                             leaders["worst_train_size"], strict=True)],
        "worst value": [_num(v) for v in leaders["worst_value"]],
    })
    lines = []
    tasks = leaders["metric"].str.split("_", n=1).str[0]
    for task, grp in leaders.groupby(tasks, sort=False):
        tied = grp["metric"].map(lambda m: bool(np.isclose(
            first["difference"].get(m, np.nan), 0, rtol=0, atol=1e-12)))
        led = grp[~tied.to_numpy()]
        best = led["best_model"] + "@" + led["best_train_size"].astype(str)
        top = best.value_counts()
        sig = [m for m in grp["metric"]
               if pd.notna(first["p_value"].get(m, np.nan)) and first["p_value"][m] < alpha]
        if top.empty:
            text = f"**{task}**: the top two cells tie on all {len(grp)} metric(s)"
        else:
            text = (f"**{task}**: {top.index[0]} leads {top.iloc[0]} of {len(grp)} metric(s)"
                    + ("" if top.iloc[0] == len(led)
                       else f" (leaders: {_names(list(best.unique()))})")
                    + (f"; the top two cells tie on {int(tied.sum())}" if tied.any() else ""))
        tested = [m for m in grp["metric"] if pd.notna(first["p_value"].get(m, np.nan))]
        if tested:
            big = [m for m in sig if abs(first["difference"].get(m, np.nan)) >= min_effect]
            text += (f"; the leader's margin over the runner-up is significant for "
                     f"{len(sig)} of {len(tested)} tested metric(s)"
                     + (f", {len(sig) - len(big)} of them below min_effect {min_effect:g} "
                        "(negligible)" if len(big) < len(sig) else ""))
        lines.append(text + ".")
    return to_markdown(table) + "\n" + _bullets(lines)


def _efficiency_section(tables: Mapping[str, pd.DataFrame]) -> str:
    eff = tables["efficiency"]
    known = eff[eff["params_b"].notna()]
    if known.empty:
        return "Parameter counts are unknown, so efficiency is not assessed."
    front = [f"{r.model} ({r.params_b:g}B, {_num(r.overall_score)})"
             for r in known[known["pareto"].astype(bool)].itertuples()]
    lines = [f"Pareto-optimal models (no other model scores at least as well with no more "
             f"parameters, at each model's largest training size): {_names(front)}."]
    per_billion = known[np.isfinite(known["score_per_billion"].astype(float))]
    if not per_billion.empty:
        best = order_best(per_billion, "score_per_billion").iloc[0]
        lines.append(f"Highest score per billion parameters: {best['model']} "
                     f"({_num(best['score_per_billion'])}).")
    corr = tables["factor_correlations"].set_index("factor")
    if "params_b" in corr.index and pd.notna(corr.loc["params_b", "spearman"]):
        r = corr.loc["params_b"]
        lines.append(f"Spearman correlation of parameter count with overall score across cells: "
                     f"{_num(r['spearman'], 3)} ({_corr_p(r['spearman_p'], r['n'])}).")
    shown = eff.head(LIST_CAP)
    note = "" if len(eff) <= LIST_CAP else f"\nTop {LIST_CAP} of {len(eff)} models shown.\n"
    return to_markdown(shown) + note + "\n" + _bullets(lines)


def _perplexity_by_family(ranked: pd.DataFrame) -> str:
    rows = ranked.dropna(subset=["perplexity"])
    by = rows.groupby("family", sort=True).agg(cells=("perplexity", "size"),
                                               mean_perplexity=("perplexity", "mean"),
                                               min_perplexity=("perplexity", "min"),
                                               mean_overall=(OVERALL, "mean"))
    return to_markdown(by.reset_index())


def _perplexity_section(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                        alpha: float) -> str | None:
    corr = tables["factor_correlations"].set_index("factor")
    if "perplexity" not in corr.index or corr.loc["perplexity", "n"] == 0:
        return None
    by_family = _perplexity_by_family(ranked) + "\n"
    r = corr.loc["perplexity"]
    if pd.isna(r["spearman"]):
        return (by_family + f"Perplexity is available but its correlation is undefined "
                f"({r['note']}).")
    stat = f"Spearman {_num(r['spearman'], 3)}, {_corr_p(r['spearman_p'], r['n'])}"
    if pd.isna(r["spearman_p"]):
        return by_family + (f"Across cells, Spearman {_num(r['spearman'], 3)} between "
                            f"perplexity and the overall score ({stat}): too few cells to "
                            "say more.")
    if r["spearman_p"] < alpha:
        trend = "lower" if r["spearman"] < 0 else "higher"
        return by_family + (f"Across cells, {trend} perplexity goes with a higher overall score "
                            f"({stat}; Pearson {_num(r['pearson'], 3)}).")
    return by_family + ("Across cells there is no significant monotone association between "
                        f"perplexity and the overall score ({stat}).")


ACCURACY_BUCKETS = (0.0, 0.5, 0.7, 0.9)


def _accuracy_buckets(ranked: pd.DataFrame) -> str | None:
    """Per classification accuracy column: how many cells fall in each accuracy bucket."""
    cols = [c for c in ranked.columns if c.endswith("_accuracy") and ranked[c].notna().any()]
    if not cols:
        return None
    edges = [*ACCURACY_BUCKETS, np.inf]
    names = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">= {lo:g}"
             for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    names[-1] = f"{ACCURACY_BUCKETS[-1]:g}-1"
    rows = []
    for col in cols:
        v = ranked[col].dropna()
        codes = np.searchsorted(ACCURACY_BUCKETS, v.to_numpy(dtype=float), side="right") - 1
        for k, name in enumerate(names):
            hit = ranked.loc[v.index[codes == k]]
            rows.append({"metric": col, "accuracy": name, "cells": len(hit),
                         "cells (first 4)": _names([_cell(r) for _, r in hit.iterrows()], 4)})
    return ("Cells by accuracy bucket (lower bound inclusive).\n\n"
            + to_markdown(pd.DataFrame(rows)))


def _human_section(human: pd.DataFrame) -> str:
    lines = []
    for (aspect, level), grp in human.groupby(["aspect", "level"], sort=True):
        grp = grp.dropna(subset=["kendall"])
        if grp.empty:
            continue
        best = grp.sort_values(["kendall", "metric"], ascending=[False, True]).iloc[0]
        ci = (f" [{_num(best['kendall_ci_low'], 3)}, {_num(best['kendall_ci_high'], 3)}]"
              if "kendall_ci_low" in best and pd.notna(best["kendall_ci_low"]) else "")
        sig = f", {_p(best['kendall_p'])}" if pd.notna(best.get("kendall_p")) else ""
        lines.append(f"{aspect}, {level} level: highest Kendall for {best['metric']} "
                     f"({_num(best['kendall'], 3)}{ci}{sig}; Spearman "
                     f"{_num(best['spearman'], 3)}, Pearson {_num(best['pearson'], 3)}, "
                     f"n = {best['n']}).")
    if not lines:
        return "Human judgments were given but no correlation could be computed."
    return ("System level correlates per-system means across systems; summary level "
            "correlates across systems per example and averages over examples. Brackets: "
            "bootstrap CI over documents; p: scipy's test (system level) or a t-test of the "
            "per-example correlations (summary level).\n\n" + _bullets(lines))


def _caveats(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
             significance: pd.DataFrame, alpha: float,
             n_examples: Sequence[int] | None) -> str:
    lines = []
    scored = ranked[ranked[OVERALL].notna()]
    if n_examples:
        n, z = min(n_examples), sps.norm.ppf(1 - alpha / 2)
        lines.append(f"Smallest test set: {n} examples; for a 0/1 metric near 0.5 that gives a "
                     f"{_level(alpha)} CI half-width of about {_num(z * np.sqrt(0.25 / n), 3)}.")
    width = (scored["overall_score_ci_high"] - scored["overall_score_ci_low"]).dropna()
    if len(width):
        lines.append(f"Median width of the overall-score {_level(alpha)} CI: "
                     f"{_num(width.median())}.")
    if len(scored) > 1 and scored["overall_score_ci_low"].notna().iloc[:2].all():
        a, b = scored.iloc[0], scored.iloc[1]
        verb = "overlap" if a["overall_score_ci_low"] <= b["overall_score_ci_high"] else (
            "do not overlap")
        lines.append(f"The {_level(alpha)} CIs of the top two cells {verb}"
                     f" ({_num(a['overall_score_ci_low'])}-{_num(a['overall_score_ci_high'])} vs "
                     f"{_num(b['overall_score_ci_low'])}-{_num(b['overall_score_ci_high'])}).")
    adjacent = significance[(significance["metric"] == OVERALL)
                            & significance["p_value"].notna()]
    if len(adjacent):
        lines.append(f"{int((adjacent['p_value'] < alpha).sum())} of {len(adjacent)} adjacent "
                     f"pairs in the overall ranking differ significantly (Holm-adjusted "
                     f"p < {alpha}, paired tests on shared examples).")
    pairwise = tables.get("pairwise_pvalues")
    tests = tables.get("pairwise_tests")
    n_scored = len(scored)
    if tests is not None and pairwise is not None and len(pairwise) < n_scored:
        lines.append(_bounded_pairs(tests, len(pairwise), n_scored, alpha))
    elif tests is not None and len(tests):
        p = tests["p_value"].dropna()
        if len(p):
            lines.append(f"{int((p < alpha).sum())} of {len(p)} pairs of cells differ "
                         "significantly after Holm correction over all pairs.")
    no_ci = [c[: -len("_ci_low")] for c in ranked.columns
             if c.endswith("_ci_low") and c != "overall_score_ci_low" and ranked[c].isna().all()]
    if no_ci and _has_tests(ranked):
        lines.append(f"No per-example values (no CI or test) for: {_names(no_ci)}.")
    corr = tables["metric_correlations"].dropna(subset=["spearman"])
    high = corr[corr["spearman"].abs() >= 0.9]
    if len(corr):
        lines.append(f"{len(high)} of {len(corr)} metric pairs have |Spearman| >= 0.9 across "
                     "cells, so those metrics carry largely the same ranking information.")
    if len(scored) < 10:
        lines.append(f"Correlations across cells rest on only {len(scored)} cells.")
    return _bullets(lines) if lines else "No caveats could be computed."


def _bounded_pairs(tests: pd.DataFrame, top: int, k: int, alpha: float) -> str:
    """What the bounded all-pairs section tested, what it left out, and what it found."""
    p = tests["p_value"].dropna()
    return (f"Not every pair was tested: {len(tests)} of the {k * (k - 1) // 2} pairs of "
            f"{k} cells (bounded by aggregate.max_pairs): the leader against every cell, each "
            f"cell against the next, each model's consecutive training sizes, the pairs the "
            f"rank groups need, "
            f"and every pair among the top {top} cells (tables/pairwise_tests.csv; the matrix "
            f"tables/pairwise_pvalues.csv holds those {top}). {int((p < alpha).sum())} of "
            f"{len(p)} tested pairs differ significantly after Holm correction over the tested "
            "pairs; the other pairs have no p-value.")


def _recommendation(tables: Mapping[str, pd.DataFrame], min_effect: float,
                    alpha: float) -> str:
    """The "Recommendation" section: the cell to ship, the rule, the runner-up."""
    rec = tables["recommendations"].set_index("choice")
    if rec.empty:
        return "No recommendation: no cell has an overall score."
    ship = rec.loc["ship"]
    lines = [f"**Ship {cell_label(ship['model'], ship['train_size'])}**: {ship['reason']}"]
    if "runner_up" in rec.index:
        run = rec.loc["runner_up"]
        lines.append(f"Runner-up: {cell_label(run['model'], run['train_size'])}. "
                     f"{run['reason']}")
    return (_bullets(lines) + "\n\n"
            + RULE.format(min_effect=f"{min_effect:g}", one_sided=_level(alpha)))


RULE = ("Rule: ship the cheapest cell (fewest parameters, then smallest training set) that is "
        "shown to be no worse than the best cell by more than aggregate.min_effect = "
        "{min_effect} in overall score: the one-sided {one_sided} upper bound of (best - "
        "cell), from a paired bootstrap over the test examples, is below {min_effect}. If no "
        "cheaper cell passes, ship the best cell. A cell that is merely not significantly "
        "worse, with a wide interval, does not pass. tables/recommendations.csv holds the "
        "same choice; efficiency ratios (tables/efficiency.csv) are context, not the rule.")


POLICY = ("One significance policy for every view (model_comparison.csv rank groups and "
          "p_vs_next, tables/significance.csv, tables/pairwise_tests.csv and "
          "pairwise_pvalues.csv, the scaling steps above, the report and `pipeline.diff`): "
          "a difference is significant when its paired test's p-value, Holm-adjusted over its "
          "family, is below alpha = {alpha}. The overall score's family is every tested pair "
          "of ranked cells; each metric's adjacent pairs are a family of their own. Tests are "
          "paired sign-flip permutation tests on the shared test examples (McNemar for 0/1 "
          "metrics) with at least 2 x family size / alpha permutations{n_perm}, so the "
          "smallest attainable p-value never decides significance; a p-value at that floor is "
          "an upper bound and printed as 'p <= ...'. Rank groups: group 1 is the leader and "
          "exactly the cells not significantly worse than it; walking down the other cells, a "
          "new group starts at the first cell significantly worse than the current group's "
          "leader.")


def _policy(alpha: float, tables: Mapping[str, pd.DataFrame]) -> str:
    tests = tables.get("pairwise_tests")
    n = _n_perm(tests) if tests is not None else None
    return POLICY.format(alpha=f"{alpha:g}",
                         n_perm=f" ({n:,} for the overall score here)" if n else "")


def _learning(tables: Mapping[str, pd.DataFrame], min_effect: float,
              alpha: float) -> str | None:
    """The learning-curve section's body (its own heading dropped: the section names it)."""
    curves = tables.get("learning_curves")
    text = None if curves is None else learning_curve_section(curves, min_effect, alpha)
    return None if text is None else text.split("\n", 2)[2]


def _left_out(excluded: pd.DataFrame | None) -> str | None:
    if excluded is None or excluded.empty:
        return None
    lines = [f"{cell_label(r.model, r.train_size)} ({r.n_examples} examples, checksum "
             f"{r.examples_checksum}): {r.reason}" for r in excluded.itertuples()]
    return (f"{len(excluded)} finished cell(s) are not in this ranking or any table "
            "(tables/excluded_cells.csv):\n\n" + _bullets(lines))


def render_analysis(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                    significance: pd.DataFrame, alpha: float = 0.05,
                    top_n: int = 5, min_effect: float = 0.0,
                    provenance: Mapping[str, str] | None = None,
                    examples_note: str = "") -> str:
    """The text of ``analysis.md``.

    ``tables`` holds the frames of :mod:`pipeline.aggregate.tables` by name
    (``pairwise_pvalues``, ``pairwise_tests`` and ``human_correlations`` optional);
    ``significance`` is :func:`pipeline.aggregate.ranking.adjacent_significance`;
    a significant difference smaller than ``min_effect`` is called negligible and it is the
    recommendation's non-inferiority margin; ``provenance`` is
    :func:`pipeline.aggregate.manifest_summary.read_provenance` (None: no provenance section);
    ``examples_note`` says what the ranked cells were scored on
    (:class:`pipeline.aggregate.comparable.Comparable`).
    """
    pairwise = tables.get("pairwise_pvalues") if _has_tests(ranked) else None
    n_examples = [int(n) for n in ranked["n_examples"].dropna()] if "n_examples" in ranked else []
    sections = [
        ("Recommendation", _recommendation(tables, min_effect, alpha)),
        ("Overview", _overview(ranked, n_examples, examples_note)),
        ("Cells left out of the ranking", _left_out(tables.get("excluded_cells"))),
        ("Distribution of the overall score", _distribution(ranked)),
        ("Top and bottom cells", _top_bottom(ranked, significance, alpha, top_n, min_effect)),
        ("Effect of training data", _scaling_section(ranked, tables, pairwise, alpha,
                                                     min_effect)),
        ("Learning curves: would more data pay?", _learning(tables, min_effect, alpha)),
        ("Model families", _family_section(ranked, tables)),
        ("Per-task findings", _task_section(tables, significance, alpha, min_effect)),
        ("Classification accuracy", _accuracy_buckets(ranked)),
        ("Efficiency", _efficiency_section(tables)),
        ("Perplexity versus task score", _perplexity_section(ranked, tables, alpha)),
    ]
    human = tables.get("human_correlations")
    if human is not None:
        sections.append(("Agreement with human judgments", _human_section(human)))
    sections += [("Statistical caveats", _caveats(ranked, tables, significance, alpha,
                                                  n_examples))]
    if _has_tests(ranked):
        sections.append(("How significance is decided", _policy(alpha, tables)))
    if provenance is not None:
        sections.append(("Provenance", _bullets(provenance_lines(provenance))))
    body = "\n\n".join(f"## {title}\n\n{text.strip()}" for title, text in sections if text)
    return f"# Model comparison: analysis\n\n{body}\n"


NO_TESTS = ("No paired test was run: the cells have no per-example scores (a per-model table "
            "was aggregated with `input=`), and paired tests need every test example's score. "
            "Run the sweep to get run folders with scores.parquet.")


def untested_note(name: str, frame: pd.DataFrame) -> str | None:
    """The Markdown written instead of an empty ``significance`` / ``pairwise_pvalues`` table
    (None when the table holds tests)."""
    if name == "significance":
        p = frame["p_value"] if "p_value" in frame else pd.Series(dtype=float)
    elif name == "pairwise_pvalues":
        if len(frame) < 2:
            return ("Only one cell was aggregated, so there is no pair to test; "
                    "pairwise_pvalues.csv is empty.\n")
        p = pd.Series(frame.drop(columns="cell").to_numpy(dtype=float).ravel())
    else:
        return None
    if pd.to_numeric(p, errors="coerce").notna().any():
        return None
    csv = f"{name}.csv"
    return f"{NO_TESTS} {csv} lists the {'pairs' if len(frame) else 'cells'} without p-values.\n"


def write_analysis_md(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                      significance: pd.DataFrame, path: str | Path, **kwargs) -> None:
    """Atomically write :func:`render_analysis` to ``path``."""
    atomic_write_text(path, render_analysis(ranked, tables, significance, **kwargs))

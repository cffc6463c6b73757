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

from pipeline.aggregate.ranking import OVERALL, cell_label, order_best
from pipeline.core.io import atomic_write_text, to_markdown

LIST_CAP = 10


def _num(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:.{digits}f}"


def _signed(x: float) -> str:
    return "n/a" if pd.isna(x) else f"{x:+.4f}"


def _pval(p: float) -> str:
    return "n/a" if pd.isna(p) else ("<0.001" if p < 0.001 else f"{p:.3g}")


def _p(p: float) -> str:
    text = _pval(p)
    return f"p < {text[1:]}" if text.startswith("<") else f"p = {text}"


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


def _verdict(p: float, alpha: float) -> str:
    if pd.isna(p):
        return "untested (no per-example scores)"
    return f"{'significant' if p < alpha else 'not significant'}, {_p(p)}"


def _has_tests(ranked: pd.DataFrame) -> bool:
    """Whether any cell had per-example scores (so CIs and tests exist)."""
    return bool(ranked["overall_score_ci_low"].notna().any())


def _untested(ranked: pd.DataFrame) -> list[str]:
    """Scored cells without per-example scores (when others have them)."""
    rows = ranked[ranked[OVERALL].notna() & ranked["overall_score_ci_low"].isna()]
    return [_cell(r) for _, r in rows.iterrows()] if _has_tests(ranked) else []


def _overview(ranked: pd.DataFrame, n_examples: Sequence[int] | None) -> str:
    families = sorted(ranked["family"].astype(str).unique())
    sizes = sorted(ranked["train_size"].unique())
    text = (f"This sweep has {len(ranked)} cells (model x training-set size): "
            f"{ranked['model'].nunique()} models from {len(families)} "
            f"famil{'y' if len(families) == 1 else 'ies'} ({_names(families)}) at "
            f"{len(sizes)} training-set size(s) ({_names([str(s) for s in sizes])}). "
            "Scores are means over the test examples; higher overall score is better.")
    if n_examples:
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


def _top_bottom(ranked: pd.DataFrame, significance: pd.DataFrame, alpha: float,
                top_n: int) -> str:
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
        lines.append(f"Its lead over {_cell(second)} is "
                     f"{_num(best[OVERALL] - second[OVERALL])}: "
                     f"{_verdict(best['p_vs_next'], alpha)}{via}.")
        if _has_tests(ranked):
            group1 = scored[scored["rank_group"] == 1]
            lines.append(f"{len(group1)} of {len(scored)} cells share rank group 1, i.e. are "
                         f"not significantly worse than the leader: "
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


def _scaling_section(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                     pairwise: pd.DataFrame | None, alpha: float) -> str:
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
        p = np.nan
        if pairwise is not None:
            a, b = cell_label(model, first["train_size"]), cell_label(model, last["train_size"])
            p = pairwise.set_index("cell").loc[a, b]
        changes.append((model, first["train_size"], last["train_size"],
                        last[OVERALL] - first[OVERALL], p))
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
                     "(paired permutation test, Holm-adjusted over all pairs)")
    lines.append(headline + ".")
    ordered = sorted(changes, key=lambda c: (-c[3], c[0]))
    lines += [f"{model}: {a} -> {b}: {_signed(d)}"
              + ("" if pd.isna(p) else f" ({_verdict(p, alpha)})")
              for model, a, b, d, p in ordered]
    corr = tables["factor_correlations"].set_index("factor")
    if "train_size" in corr.index and pd.notna(corr.loc["train_size", "spearman"]):
        r = corr.loc["train_size"]
        lines.append(f"Across all cells, Spearman correlation of training-set size with the "
                     f"overall score: {_num(r['spearman'], 3)} ({_p(r['spearman_p'])}, "
                     f"n = {r['n']}).")
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
    single = [f for f in families if counts.get(f, 0) == 1]
    if single:
        lines.append(f"{_names(single)} {'has' if len(single) == 1 else 'have'} a single model "
                     "at this size, so the family mean is that model's score.")
    return to_markdown(fam) + "\n" + _bullets(lines)


def _task_section(tables: Mapping[str, pd.DataFrame], significance: pd.DataFrame,
                  alpha: float) -> str:
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
        "lead p": [_pval(first["p_value"].get(m, np.nan)) for m in leaders["metric"]],
        "worst": [f"{m}@{s}" for m, s in zip(leaders["worst_model"],
                                             leaders["worst_train_size"], strict=True)],
        "worst value": [_num(v) for v in leaders["worst_value"]],
    })
    lines = []
    tasks = leaders["metric"].str.split("_", n=1).str[0]
    for task, grp in leaders.groupby(tasks, sort=False):
        best = grp["best_model"] + "@" + grp["best_train_size"].astype(str)
        top = best.value_counts()
        lead = top.index[0]
        sig = [m for m in grp["metric"]
               if pd.notna(first["p_value"].get(m, np.nan)) and first["p_value"][m] < alpha]
        text = (f"**{task}**: {lead} leads {top.iloc[0]} of {len(grp)} metric(s)"
                + ("" if top.iloc[0] == len(grp) else f" (leaders: {_names(list(best.unique()))})"))
        tested = [m for m in grp["metric"] if pd.notna(first["p_value"].get(m, np.nan))]
        if tested:
            text += (f"; the leader's margin over the runner-up is significant for "
                     f"{len(sig)} of {len(tested)} tested metric(s)")
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
                     f"{_num(r['spearman'], 3)} ({_p(r['spearman_p'])}, n = {r['n']}).")
    shown = eff.head(LIST_CAP)
    note = "" if len(eff) <= LIST_CAP else f"\nTop {LIST_CAP} of {len(eff)} models shown.\n"
    return to_markdown(shown) + note + "\n" + _bullets(lines)


def _perplexity_section(tables: Mapping[str, pd.DataFrame], alpha: float) -> str | None:
    corr = tables["factor_correlations"].set_index("factor")
    if "perplexity" not in corr.index or corr.loc["perplexity", "n"] == 0:
        return None
    r = corr.loc["perplexity"]
    if pd.isna(r["spearman"]):
        return f"Perplexity is available but its correlation is undefined ({r['note']})."
    stat = f"Spearman {_num(r['spearman'], 3)}, {_p(r['spearman_p'])}, n = {r['n']}"
    if r["spearman_p"] < alpha:
        trend = "lower" if r["spearman"] < 0 else "higher"
        return (f"Across cells, {trend} perplexity goes with a higher overall score ({stat}; "
                f"Pearson {_num(r['pearson'], 3)}).")
    return (f"Across cells there is no significant monotone association between perplexity and "
            f"the overall score ({stat}).")


def _human_section(human: pd.DataFrame) -> str:
    lines = []
    for (aspect, level), grp in human.groupby(["aspect", "level"], sort=True):
        grp = grp.dropna(subset=["kendall"])
        if grp.empty:
            continue
        best = grp.sort_values(["kendall", "metric"], ascending=[False, True]).iloc[0]
        lines.append(f"{aspect}, {level} level: highest Kendall for {best['metric']} "
                     f"({_num(best['kendall'], 3)}; Spearman {_num(best['spearman'], 3)}, "
                     f"Pearson {_num(best['pearson'], 3)}, n = {best['n']}).")
    if not lines:
        return "Human judgments were given but no correlation could be computed."
    return ("System level correlates per-system means across systems; summary level "
            "correlates across systems per example and averages over examples.\n\n"
            + _bullets(lines))


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
                     f"pairs in the overall ranking differ significantly (raw p < {alpha}, "
                     "paired tests on shared examples).")
    tested = significance["p_value"].notna()
    if tested.any():
        n_tests = int(tested.sum())
        lines.append(f"The significance table holds {n_tests} uncorrected tests; at alpha = "
                     f"{alpha} about {_num(n_tests * alpha, 1)} false positives are expected "
                     "if no real differences existed.")
    pairwise = tables.get("pairwise_pvalues")
    if pairwise is not None and len(pairwise) > 1:
        p = pairwise.drop(columns="cell").to_numpy(dtype=float)
        upper = p[np.triu_indices(len(p), 1)]
        upper = upper[~np.isnan(upper)]
        if len(upper):
            lines.append(f"{int((upper < alpha).sum())} of {len(upper)} pairs of cells differ "
                         f"significantly after Holm correction over all pairs.")
    if _has_tests(ranked):
        lines.append("Rank groups: walking down the ranking, a new group starts at the first "
                     "cell significantly worse (raw paired p < alpha) than the current group's "
                     "leader; cells in one group are not significantly different from it.")
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


def _recommendations(tables: Mapping[str, pd.DataFrame]) -> str:
    rec = tables["recommendations"]
    if rec.empty:
        return "No recommendation: no cell has an overall score."
    titles = {"best_overall": "Best overall", "best_score_per_billion": "Best score per parameter",
              "smallest_within_margin": "Smallest model near the best",
              "lowest_perplexity": "Lowest perplexity"}
    return _bullets([f"**{titles.get(r.choice, r.choice)}**: {r.model}@{r.train_size}. {r.reason}"
                     for r in rec.itertuples()])


def render_analysis(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                    significance: pd.DataFrame, alpha: float = 0.05,
                    n_examples: Sequence[int] | None = None, top_n: int = 5) -> str:
    """The text of ``analysis.md``.

    ``tables`` holds the frames of :mod:`pipeline.aggregate.tables` by name
    (``pairwise_pvalues`` and ``human_correlations`` optional); ``significance`` is
    :func:`pipeline.aggregate.ranking.adjacent_significance`; ``n_examples`` the per-cell
    test-set sizes.
    """
    pairwise = tables.get("pairwise_pvalues") if _has_tests(ranked) else None
    sections = [
        ("Overview", _overview(ranked, n_examples)),
        ("Top and bottom cells", _top_bottom(ranked, significance, alpha, top_n)),
        ("Effect of training data", _scaling_section(ranked, tables, pairwise, alpha)),
        ("Model families", _family_section(ranked, tables)),
        ("Per-task findings", _task_section(tables, significance, alpha)),
        ("Efficiency", _efficiency_section(tables)),
        ("Perplexity versus task score", _perplexity_section(tables, alpha)),
    ]
    human = tables.get("human_correlations")
    if human is not None:
        sections.append(("Agreement with human judgments", _human_section(human)))
    sections += [("Statistical caveats", _caveats(ranked, tables, significance, alpha,
                                                  n_examples)),
                 ("Recommendations", _recommendations(tables))]
    body = "\n\n".join(f"## {title}\n\n{text.strip()}" for title, text in sections if text)
    return f"# Model comparison: analysis\n\n{body}\n"


def write_analysis_md(ranked: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
                      significance: pd.DataFrame, path: str | Path, **kwargs) -> None:
    """Atomically write :func:`render_analysis` to ``path``."""
    atomic_write_text(path, render_analysis(ranked, tables, significance, **kwargs))

"""``index.html`` of a pairwise comparison: overview, the BERTScore suite per text task and the
lowest-agreement examples side by side (built on :mod:`pipeline.report`)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from pipeline.report.bertscore_suite import bertscore_sections
from pipeline.report.html import Section, table_html, write_report
from pipeline.versus.pairwise_summary import bands_for, bertscore_prefixes


def _overview(summary: dict) -> Section:
    cand, ref = summary["candidate"]["name"], summary["reference"]["name"]
    ids = summary["ids"]
    rows = [{"metric": col, "mean": d["mean"], "median": d["median"], "std": d["std"],
             "band": d["band"] or "(no bands)"} for col, d in summary["metrics"].items()]
    bands = "; ".join(f"{metric}: " + ", ".join(f"{k} >= {v:g}" for k, v in b.items())
                      for metric, b in summary["bands"].items())
    reading = (f"{cand} is scored with {ref}'s outputs as the references on {ids['n_shared']} "
               f"shared examples ({ids['only_in_candidate']['count']} only in the candidate, "
               f"{ids['only_in_reference']['count']} only in the reference). Quality bands "
               f"(pairwise.bands) apply only to the metrics that define them: {bands or 'none'}"
               "; other metrics get no band.")
    return Section("Agreement overview", reading, [table_html(pd.DataFrame(rows)),
                                                   provenance_box(summary["provenance"])])


def provenance_box(prov: dict) -> str:
    """The scoring settings and each side's recorded provenance as an HTML list."""
    parts = []
    for side, values in prov.items():
        if values:
            rows = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                           for k, v in values.items())
            parts.append(f"<h3>Provenance: {html.escape(side)}</h3>"
                         f'<dl class="provenance">{rows}</dl>')
    return "".join(parts)


def lowest_agreement(scores: pd.DataFrame, pairs: list[dict], n: int) -> tuple[str, pd.DataFrame]:
    """The sort column (first BERTScore F1, else the first metric) and its ``n`` lowest rows."""
    cols = [c for c in scores.columns if c != "id"]
    prefixes = bertscore_prefixes(cols)
    key = f"{prefixes[0]}_f1" if prefixes else cols[0]
    texts = {p["id"]: p for p in pairs}
    rows = []
    for rec in scores.sort_values(key, kind="stable").head(n).itertuples(index=False):
        pair = texts[rec.id]
        row = {"id": rec.id, key: float(getattr(rec, key))}
        for field in pair["candidate"]:
            for side in ("candidate", "reference"):
                value = pair[side][field]
                row[f"{side} {field}"] = ", ".join(value) if isinstance(value, list) else value
        rows.append(row)
    return key, pd.DataFrame(rows)


def write_page(path: Path, summary: dict, scores: pd.DataFrame, pairs: list[dict],
               n_lowest: int) -> None:
    """Write the pairwise report page (and plotly.js beside it)."""
    sections = [_overview(summary)]
    for prefix in summary["bertscore"]:
        sections += bertscore_sections(scores, prefix,
                                       bands_for(f"{prefix}_f1", summary["bands"]),
                                       title=prefix.replace("_bertscore", "") + " BERTScore")
    key, lowest = lowest_agreement(scores, pairs, n_lowest)
    text_cols = tuple(c for c in lowest.columns if c.startswith(("candidate ", "reference ")))
    sections.append(Section(
        "Lowest agreement", f"The {len(lowest)} examples with the lowest {key}, candidate and "
        "reference outputs side by side.", [table_html(lowest, text_columns=text_cols)]))
    title = f"{summary['candidate']['name']} vs {summary['reference']['name']}"
    write_report(path, title, sections)

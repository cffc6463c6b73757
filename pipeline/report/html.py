"""A self-contained, offline HTML page of sections (reading + plotly figures / HTML snippets).

plotly.js is written once beside the page (``plotly.min.js``) and referenced by relative
path, so the page opens from disk with no network.
"""

from __future__ import annotations

import html
import logging
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from pipeline.core.io import atomic_write_text
from pipeline.report.style import fmt

log = logging.getLogger(__name__)

PLOTLY_JS = "plotly.min.js"
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
TEMPLATE = "plotly_white"

Content = go.Figure | str


@dataclass
class Section:
    """One titled block of the report: a computed reading and its figures / HTML snippets."""

    title: str
    reading: str
    content: list[Content] = field(default_factory=list)

    @property
    def figures(self) -> list[go.Figure]:
        return [c for c in self.content if isinstance(c, go.Figure)]


def slug(text: str) -> str:
    """An HTML id from a title."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.dataset.order !== 'asc';
    table.querySelectorAll('th').forEach(function (h) { delete h.dataset.order; });
    th.dataset.order = asc ? 'asc' : 'desc';
    var key = function (row) {
      var cell = row.children[idx], v = cell.dataset.value !== undefined
        ? cell.dataset.value : cell.textContent;
      var n = parseFloat(v);
      return isNaN(n) ? v.toLowerCase() : n;
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
document.querySelectorAll('input.table-filter').forEach(function (box) {
  var table = document.getElementById(box.dataset.table), count = box.nextElementSibling;
  box.addEventListener('input', function () {
    var words = box.value.toLowerCase().split(' ').filter(Boolean), shown = 0;
    Array.from(table.tBodies[0].rows).forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.style.display = hit ? '' : 'none';
      shown += hit ? 1 : 0;
    });
    count.textContent = shown + ' of ' + table.tBodies[0].rows.length + ' rows';
  });
});
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em;
       color: #222; }
nav ol { columns: 2; font-size: 0.85em; }
section { border-top: 1px solid #ddd; padding-top: 0.5em; margin-top: 1.5em; }
p.reading { background: #f6f8fa; border-left: 4px solid #4c78a8; padding: 0.6em 0.9em; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 2px 5px; text-align: left; vertical-align: top; }
td { white-space: nowrap; }
th { max-width: 8em; font-size: 0.95em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.sortable th { cursor: pointer; background: #f0f0f0; }
table.sortable th[data-order=asc]::after { content: " \\25B2"; }
table.sortable th[data-order=desc]::after { content: " \\25BC"; }
td.text { min-width: 240px; max-width: 420px; white-space: pre-wrap; }
.table-wrap { overflow-x: auto; max-width: 100%; }
.figure { margin: 0.5em 0 1em; }
.table-wrap.scroll { max-height: 36em; overflow-y: auto; }
.table-wrap.scroll thead th { position: sticky; top: 0; }
input.table-filter { padding: 4px 8px; width: 24em; margin: 0.3em 0.5em 0.3em 0; }
span.filter-count { color: #666; font-size: 0.85em; }
dl.provenance { display: grid; grid-template-columns: max-content auto; gap: 2px 1em;
                font-size: 0.85em; background: #fafafa; border: 1px solid #ddd;
                padding: 0.6em 0.9em; }
dl.provenance dt { font-weight: 600; }
dl.provenance dd { margin: 0; overflow-wrap: anywhere; }
"""


def _header(name: object) -> str:
    """An escaped column name that may wrap before its underscores."""
    return html.escape(str(name)).replace("_", "<wbr>_")


def table_html(frame: pd.DataFrame, sortable: bool = True, text_columns: tuple[str, ...] = (),
               digits: int = 4, filter_id: str | None = None) -> str:
    """An escaped HTML table; numbers are formatted by :func:`style.fmt` for display but sort by
    their full value. ``filter_id`` adds a search box that filters the rows (long tables
    then scroll inside a box of fixed height with a sticky header)."""
    head = "".join(f"<th>{_header(c)}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, rec, strict=True):
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                shown = fmt(value, digits)
                cells.append(f'<td class="num" data-value="{value}">{shown}</td>')
            else:
                cls = ' class="text"' if col in text_columns else ""
                cells.append(f"<td{cls}>{html.escape(str(value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cls = ' class="sortable"' if sortable else ""
    table_id = f' id="table-{filter_id}"' if filter_id else ""
    box, wrap = "", "table-wrap"
    if filter_id:
        box = (f'<div><input class="table-filter" type="search" data-table="table-{filter_id}" '
               'placeholder="filter rows: model, family, size ..." aria-label="filter rows">'
               f'<span class="filter-count">{len(frame)} rows</span></div>')
        wrap += " scroll" if len(frame) > 25 else ""
    return (f'{box}<div class="{wrap}"><table{table_id}{cls}><thead><tr>{head}</tr></thead>'
            "<tbody>" + "\n".join(rows) + "</tbody></table></div>")


def _figure_html(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(template=TEMPLATE)
    height = fig.layout.height or 450
    return ('<div class="figure">'
            + fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                          config=PLOT_CONFIG, default_height=f"{height}px")
            + "</div>")


def _section_html(section: Section, start: int) -> tuple[str, int]:
    parts = [f'<section id="{slug(section.title)}"><h2>{html.escape(section.title)}</h2>',
             f'<p class="reading">{html.escape(section.reading)}</p>']
    n = start
    for item in section.content:
        if isinstance(item, go.Figure):
            parts.append(_figure_html(item, f"fig-{n}"))
            n += 1
        else:
            parts.append(item)
    parts.append("</section>")
    return "\n".join(parts), n


def write_plotlyjs(folder: Path) -> Path:
    """Write the installed plotly.js beside the report (only when it differs)."""
    target = Path(folder) / PLOTLY_JS
    script = get_plotlyjs()
    if not target.exists() or target.stat().st_size != len(script.encode("utf-8")):
        atomic_write_text(target, script)
    return target


def render(title: str, sections: list[Section]) -> str:
    """The page's HTML text (plotly.js referenced as ``plotly.min.js`` beside it)."""
    body, n = [], 0
    for section in sections:
        text, n = _section_html(section, n)
        body.append(text)
    toc = "".join(f'<li><a href="#{slug(s.title)}">{html.escape(s.title)}</a></li>'
                  for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
<script src="{PLOTLY_JS}"></script>
</head><body data-figures="{n}">
<h1>{html.escape(title)}</h1>
<nav><ol>{toc}</ol></nav>
{chr(10).join(body)}
<script>{SORT_JS}</script>
</body></html>
"""


def write_report(path: Path, title: str, sections: list[Section]) -> None:
    """Write ``path`` (an HTML page) and ``plotly.min.js`` beside it; opens offline."""
    path = Path(path)
    write_plotlyjs(path.parent)
    atomic_write_text(path, render(title, sections))
    log.info("wrote %s (%d sections, %d figures)", path, len(sections),
             sum(len(s.figures) for s in sections))


def export_images(sections: list[Section], folder: Path, fmt: str = "png") -> int:
    """Static copies of every figure (needs kaleido); returns how many were written."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        log.info("static export skipped: kaleido is not installed (pip install kaleido)")
        return 0
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for section in sections:
        for i, fig in enumerate(section.figures):
            fig.write_image(folder / f"{slug(section.title)}-{i + 1}.{fmt}")
            n += 1
    log.info("exported %d figures to %s", n, folder)
    return n

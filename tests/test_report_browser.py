"""Render the HTML report in headless Chromium (Chrome DevTools protocol over a websocket).

Checks: loads from file:// with no console errors and no network requests, every figure
draws, every chart titles its axes and shows at least two points (no line through a single
point), and a full-page screenshot is saved under the test's tmp dir. Reports: synthetic 4-
and 40-model sweeps on the demo records, a sweep over records without metadata and a report
from a per-model table. The example explorer (examples.html): every shown cell's outputs of
the selected example are displayed as text, ordering, j/k and the search box work.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.test_report import build_sweep_report
from tests.test_report_any_data import plain_report, table_report


def _unavailable(reason: str) -> None:
    """Skip locally; fail in CI (``CI`` set), where the browser check must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser test must not be skipped)")
    pytest.skip(reason, allow_module_level=True)


try:
    from tests.cdp import LOCAL, Page, launch, load
except ImportError:
    _unavailable("websocket-client is not installed (pip install websocket-client)")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the Chromium binary; installed with apt when missing and we are root."""
    path = shutil.which("chromium")
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run("apt-get update && apt-get install -y chromium", shell=True, env=env,
                       check=False, capture_output=True, timeout=900)
        path = shutil.which("chromium")
    if path is None:
        _unavailable("chromium is not installed (apt-get install chromium needs root)")
    return path


@pytest.fixture
def browser_page(chromium: str, tmp_path: Path) -> Iterator[Page]:
    """A fresh headless Chromium (own profile) with Page/Network/Runtime/Log enabled."""
    with launch(chromium, tmp_path / "profile") as page:
        yield page


def render(page: Page, html_path: Path, screenshot: Path) -> dict:
    """Load the page, wait until every figure draws; returns counts, errors and requests."""
    expected = len(re.findall(r'class="plotly-graph-div"', html_path.read_text()))
    drawn = load(page, html_path, expected)
    metrics = page.call("Page.getLayoutMetrics")["cssContentSize"]
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                     clip={"x": 0, "y": 0, "width": metrics["width"],
                           "height": min(metrics["height"], 16000), "scale": 1})
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    return {"expected": expected, "drawn": drawn, "errors": console_errors(page),
            "remote": remote_requests(page),
            "figures_attr": int(page.evaluate("document.body.dataset.figures"))}


def console_errors(page: Page) -> list[dict]:
    """Exceptions, console errors/asserts and error log entries seen so far."""
    return [e["params"] for e in page.events
            if (e.get("method") == "Runtime.exceptionThrown")
            or (e.get("method") == "Runtime.consoleAPICalled"
                and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded"
                and e["params"]["entry"]["level"] == "error")]


def remote_requests(page: Page) -> list[str]:
    """URLs requested so far that are not local (file:, data:, blob:, about:)."""
    return [e["params"]["request"]["url"] for e in page.events
            if e.get("method") == "Network.requestWillBeSent"
            and not e["params"]["request"]["url"].startswith(LOCAL)]


@pytest.mark.parametrize("n_models", [4, 40])
def test_report_renders_offline(browser_page: Page, tmp_path: Path, n_models: int,
                                compose_cfg: Callable) -> None:
    html_path = build_sweep_report(tmp_path / "out", n_models, compose_cfg)
    shot = tmp_path / f"report-{n_models}.png"
    result = render(browser_page, html_path, shot)
    assert result["errors"] == []
    assert result["remote"] == []
    assert result["expected"] == result["figures_attr"] > 10
    assert result["drawn"] == result["expected"]
    assert shot.stat().st_size > 10_000
    assert_charts_honest(browser_page)
    column = browser_page.evaluate(SORT_BY_SCORE)  # the leaderboard sorts on click
    assert column == sorted(column)


CHART_CHECK = """(function () {
  function count(t) {
    var v = t.type === 'heatmap' ? Array.from(t.z || []).reduce(function (a, row) {
      return a.concat(Array.from(row)); }, []) : (t.y && t.y.length ? t.y : t.x);
    return Array.from(v || []).filter(function (e) {
      return e !== null && e !== undefined && !(typeof e === 'number' && isNaN(e)); }).length;
  }
  return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (el) {
    var L = el._fullLayout;
    var shown = el._fullData.filter(function (t) { return t.visible === true; });
    var untitled = Object.keys(L).filter(function (k) {
      if (!/^[xy]axis[0-9]*$/.test(k) || L[k].visible === false) return false;
      var id = k[0] + k.slice(5);
      var used = shown.some(function (t) {
        return (t[k[0] + 'axis'] || k[0]) === id && count(t) > 0; });
      var own = el.layout[k] && el.layout[k].title;  // _fullLayout fills in a placeholder
      return used && !(own && (typeof own === 'string' ? own : own.text));
    });
    var shortLines = shown.filter(function (t) {
      return t.type === 'scatter' && /lines/.test(t.mode || '') && count(t) === 1;
    }).map(function (t) { return t.name || ''; });
    return {title: L.title && L.title.text, untitled: untitled, short_lines: shortLines,
            points: shown.reduce(function (s, t) { return s + count(t); }, 0)};
  });
})()"""


def assert_charts_honest(page: Page) -> None:
    """Every drawn chart titles each axis it uses, shows at least two points, and draws no
    line through a single point."""
    charts = page.evaluate(CHART_CHECK)
    assert charts
    bad = [c for c in charts if c["untitled"] or c["points"] < 2 or c["short_lines"]]
    assert bad == []


SORT_BY_SCORE = """(function () {
  var table = document.querySelector('table.sortable');
  var th = Array.from(table.querySelectorAll('th')).find(h => h.textContent === 'overall_score');
  th.click();
  var idx = Array.prototype.indexOf.call(th.parentNode.children, th);
  return Array.from(table.tBodies[0].rows).map(r => parseFloat(r.children[idx].dataset.value));
})()"""


@pytest.mark.parametrize("kind", ["no-metadata", "table-only"])
def test_any_data_report_renders(browser_page: Page, tmp_path: Path, kind: str,
                                 compose_cfg: Callable) -> None:
    build = plain_report if kind == "no-metadata" else table_report
    html_path = build(tmp_path / "out", compose_cfg)
    shot = tmp_path / f"report-{kind}.png"
    result = render(browser_page, html_path, shot)
    assert result["errors"] == [] and result["remote"] == []
    assert result["drawn"] == result["expected"] == result["figures_attr"] > 3
    assert shot.stat().st_size > 10_000
    assert_charts_honest(browser_page)
    shown = browser_page.evaluate(FILTER_ROWS)  # the leaderboard's search box filters rows
    assert 0 < shown[0] < shown[1] and shown[2].endswith(f"{shown[0]} of {shown[1]} rows")


FILTER_ROWS = """(function () {
  var box = document.querySelector('input.table-filter');
  var table = document.getElementById(box.dataset.table);
  var col = Array.from(table.querySelectorAll('th')).findIndex(h => h.textContent === 'model');
  var first = table.tBodies[0].rows[0].children[col].textContent;
  box.value = first;
  box.dispatchEvent(new Event('input'));
  var rows = Array.from(table.tBodies[0].rows);
  return [rows.filter(r => r.style.display !== 'none').length, rows.length,
          box.nextElementSibling.textContent];
})()"""


def _wait(page: Page, expression: str, timeout: float = 60) -> object:
    end = time.time() + timeout
    while time.time() < end:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(expression)


EXPLORER_STATE = """(function () {
  var rows = Array.from(document.querySelectorAll('#detail tr[data-cell]'));
  return {example: document.getElementById('detail').dataset.example,
          chips: Array.from(document.querySelectorAll('#chips .chip')).map(
            c => c.firstChild.textContent),
          cells: rows.map(r => r.dataset.cell),
          outputs: rows.map(r => Array.from(r.querySelectorAll('td.out .text')).map(
            t => t.textContent)),
          markup: document.querySelectorAll('#detail b, #list b').length,
          listed: document.querySelectorAll('#list tbody tr').length};
})()"""


def test_example_explorer(browser_page: Page, tmp_path: Path, compose_cfg: Callable) -> None:
    """Open examples.html, select an example, order by the A-B gap, filter, move with j."""
    out = tmp_path / "out"
    build_sweep_report(out, 4, compose_cfg)
    page = browser_page
    page.call("Page.navigate", url=(out / "report" / "examples.html").resolve().as_uri())
    page.wait_for("Page.loadEventFired")
    _wait(page, "document.querySelector('#detail tr[data-cell]') !== null")
    state = page.evaluate(EXPLORER_STATE)
    index = json.loads((out / "report" / "examples" / "index.js").read_text()[14:-3])
    assert state["chips"] == [index["cells"][i]["label"] for i in index["defaults"]]
    assert sorted(state["cells"]) == sorted(state["chips"]) and len(state["cells"]) == 4
    assert state["listed"] == len(index["examples"]) and state["markup"] == 0
    first = index["examples"][0]["id"]
    assert state["example"] == first
    for label, texts in zip(state["cells"], state["outputs"], strict=True):
        model, size = label.split("@")
        preds = [json.loads(line) for line in
                 (out / "runs" / model / size / "predictions.jsonl").read_text().splitlines()]
        rec = next(r for r in preds if r["id"] == first)
        # every task's output of every shown cell, as text (the <b> in it is not markup)
        assert texts == [rec["summary"], rec["title"], ", ".join(rec["tags"]), rec["type"]]
    # "largest A-B gap": one click, the first example shown is the one where A and B differ most
    page.evaluate("document.getElementById('by-gap').click()")
    gaps = page.evaluate("""Array.from(document.querySelectorAll('#list tbody tr')).map(
        r => Math.abs(parseFloat(r.children[3].textContent)))""")
    assert gaps[0] == max(gaps) and gaps == sorted(gaps, reverse=True)
    top = page.evaluate("document.querySelector('#list tbody tr').children[1].textContent")
    _wait(page, f"document.getElementById('detail').dataset.example === {json.dumps(top)}")
    # ... beside its references, task by task: the A and B of the selects, then every cell
    pair = page.evaluate("""[document.getElementById('cell-a'), document.getElementById('cell-b')]
        .map(s => s.options[s.selectedIndex].textContent)""")
    heads = page.evaluate("""Array.from(document.querySelectorAll('#compare thead th'))
        .map(th => th.textContent)""")
    assert heads[:2] == ["task", "references"] and len(heads) == 4
    assert [h.split(" ")[0] for h in heads[2:]] == ["A" + pair[0], "B" + pair[1]]
    refs = page.evaluate("document.querySelectorAll('#compare ol.refs li').length")
    top_refs = next(e["refs"] for e in index["examples"] if e["id"] == top)
    assert refs == sum(len(r) for r in top_refs) == 4
    # j moves to the next example of the list
    second = page.evaluate("document.querySelectorAll('#list tbody tr')[1].children[1]"
                           ".textContent")
    page.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j'}))")
    _wait(page, f"document.getElementById('detail').dataset.example === {json.dumps(second)}")
    # the search box narrows the list
    page.evaluate(f"""(function () {{ var box = document.getElementById('search');
        box.value = {json.dumps(first)}; box.dispatchEvent(new Event('input')); }})()""")
    state = page.evaluate(EXPLORER_STATE)
    assert 0 < state["listed"] < len(index["examples"])
    assert page.evaluate("document.getElementById('count').textContent").startswith(
        f"{state['listed']} of {len(index['examples'])}")
    shot = page.call("Page.captureScreenshot", format="png")
    (tmp_path / "examples.png").write_bytes(base64.b64decode(shot["data"]))
    assert console_errors(page) == [] and remote_requests(page) == []


def test_example_explorer_without_runs(browser_page: Page, tmp_path: Path,
                                       compose_cfg: Callable) -> None:
    """From a per-model table the explorer says it needs per-example data, without errors."""
    report = table_report(tmp_path / "out", compose_cfg).parent
    browser_page.call("Page.navigate", url=(report / "examples.html").resolve().as_uri())
    browser_page.wait_for("Page.loadEventFired")
    note = _wait(browser_page, "document.getElementById('note').textContent")
    assert "needs per-example data" in note
    assert browser_page.evaluate("document.getElementById('main').offsetHeight") == 0
    assert console_errors(browser_page) == [] and remote_requests(browser_page) == []

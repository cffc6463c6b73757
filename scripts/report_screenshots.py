"""Screenshots of the HTML report for the docs: the top of the page, the leaderboard and one
chart of each kind, as small PNGs under ``docs/img/`` (headless Chromium).

    .venv/bin/python scripts/report_screenshots.py [--report outputs/report/index.html]

Run it after ``make sweep`` when the report's look changed; it prints each file's size and
stops with an error when the images together exceed ``--max-kb``.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cdp import launch, load  # noqa: E402

# image name -> CSS selector of the element shown ("" = the top of the page)
SHOTS = {
    "report-top": "",
    "report-recommendation": "section#recommendation",
    "report-leaderboard": "section#leaderboard",
    "report-task": "section[id^='task-']",
    "report-scaling": "section#score-vs-train-size",
    "report-parameters": "section#score-vs-parameters",
    "report-correlations": "section#metric-correlations",
    "report-significance": "section[id^='significance']",
    "report-learning-curves": "section#learning-curves",
    "report-bertscore": "section[id$='per-example-f1-map']",
    "report-slices": "section[id^='slices-']",
    "report-errors": "section[id^='error-analysis']",
}
RECT = """(function () {
  var el = document.querySelector(%r);
  if (!el) return null;
  el.scrollIntoView();
  var r = el.getBoundingClientRect();
  return [r.left + window.scrollX, r.top + window.scrollY, r.width, Math.min(r.height, 900)];
})()"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, default=ROOT / "outputs/report/index.html")
    ap.add_argument("--out", type=Path, default=ROOT / "docs/img")
    ap.add_argument("--scale", type=float, default=0.6, help="image scale (CSS px -> image px)")
    ap.add_argument("--max-kb", type=int, default=1500, help="limit on the images' total size")
    args = ap.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("error: chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    if not args.report.exists():
        print(f"error: {args.report}: no report; run make sweep first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    expected = len(re.findall(r'class="plotly-graph-div"', args.report.read_text()))
    total = 0
    with tempfile.TemporaryDirectory() as profile, launch(chromium, Path(profile)) as page:
        load(page, args.report, expected)
        for name, selector in SHOTS.items():
            rect = [0, 0, 1280, 700] if not selector else page.evaluate(RECT % selector)
            if rect is None:
                print(f"{name}: no {selector} in this report, skipped")
                continue
            x, y, w, h = rect
            shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                             clip={"x": x, "y": y, "width": w, "height": h,
                                   "scale": args.scale})
            path = args.out / f"{name}.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            total += path.stat().st_size
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
                  f"{path.stat().st_size // 1024} KB")
    print(f"total: {total // 1024} KB")
    if total > args.max_kb * 1024:
        print(f"error: the screenshots take {total // 1024} KB, more than --max-kb "
              f"{args.max_kb}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

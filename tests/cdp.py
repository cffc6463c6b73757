"""A minimal headless-Chromium driver (Chrome DevTools protocol over a websocket), shared by
the browser test and ``scripts/report_screenshots.py``."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import websocket

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--window-size=1280,900", "--remote-debugging-port=0"]
LOCAL = ("file://", "data:", "blob:", "about:")


class Page:
    """A minimal CDP client for one page target: commands, and the events seen so far."""

    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0

    def call(self, method: str, **params: object) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        end = time.time() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.time() > end:
                raise TimeoutError(method)
            self.events.append(json.loads(self.ws.recv()))

    def evaluate(self, expression: str) -> object:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res["result"].get("value")



@contextmanager
def launch(chromium: str, profile: Path) -> Iterator[Page]:
    """A fresh headless Chromium (own profile) with Page/Network/Runtime/Log enabled."""
    proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.time() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() > end or proc.poll() is not None:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as resp:
            targets = json.load(resp)
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        for domain in ("Page", "Network", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        yield page
        page.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


DRAWN = """Array.from(document.querySelectorAll('.js-plotly-plot')).filter(function (el) {
  return el.querySelector('svg.main-svg') && el._fullData && el._fullData.length > 0;
}).length"""


def load(page: Page, html_path: Path, expected: int, timeout: float = 120) -> int:
    """Navigate to the page and wait until ``expected`` figures draw; the number drawn."""
    page.call("Page.navigate", url=html_path.resolve().as_uri())
    page.wait_for("Page.loadEventFired")
    end, drawn = time.time() + timeout, 0
    while time.time() < end:
        drawn = page.evaluate(DRAWN)
        if drawn >= expected:
            break
        time.sleep(0.5)
    return drawn

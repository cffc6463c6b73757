"""generator=openai against a small OpenAI-compatible server started inside the test."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import ROOT, SMALL, run_env

from pipeline.core.errors import ConfigError
from pipeline.core.io import read_json, read_jsonl
from pipeline.scoring.cell import run_cell

NO_BERTSCORE = ("tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")


def _answer(prompt: str) -> str:
    """A plausible output: first label offered for type, two bulleted tags, article text."""
    if labels := re.search(r"Allowed (tags|types): (.*?)\.", prompt):
        offered = labels.group(2).split(", ")
        if labels.group(1) == "types":
            return f"Type: {offered[0]}"
        return "Tags:\n- " + "\n- ".join(offered[:2])
    article = prompt.split("Article: ", 1)[1]
    return "Title: " + article[:40] if "headline" in prompt else article[:200]


class Server(ThreadingHTTPServer):
    """Answers like an OpenAI server; ``mode`` and ``fail_first`` script its misbehaviour."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode, self.fail_first, self.requests, self.failed = "ok", 0, 0, 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass

    def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        with srv.lock:
            srv.requests += 1
            fail = srv.failed < srv.fail_first
            srv.failed += fail
        if fail:
            return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
        if srv.mode == "sleep":
            time.sleep(1.0)
        if srv.mode == "unauthorized":
            return self._send(401, {"error": {"message": "invalid api key"}})
        if srv.mode == "malformed":
            return self._send(200, {"id": "x", "object": "chat.completion"})
        if self.path.endswith("/chat/completions"):
            text = _answer(body["messages"][-1]["content"])
            return self._send(200, {"choices": [{"message": {"role": "assistant",
                                                             "content": text}}]})
        return self._send(200, {"choices": [{"text": _answer(body["prompt"])}]})


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _openai(small_cfg, srv: Server, *more: str):
    return small_cfg("generator=openai", "model=llama-3.2-1b", "data.limit=3",
                     f"generator.options.base_url={srv.url}", "generator.options.backoff_s=0.01",
                     *NO_BERTSCORE, *more)


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_end_to_end_then_cached(small_cfg, server, endpoint):
    cfg = _openai(small_cfg, server, f"generator.options.endpoint={endpoint}")
    run_dir = run_cell(cfg)
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert len(preds) == 3 and all(p["tags"] and p["type"] for p in preds)
    assert all(not p["title"].startswith("Title:") for p in preds)
    assert read_json(run_dir / "metrics.json")["perplexity"] is None
    info = read_json(run_dir / "manifest.json")["generator"]
    assert info["parse_failures"] == {"tag": 0, "type": 0}
    assert info["requests"] == {"computed": 12, "reused": 0} and server.requests == 12
    run_cell(_openai(small_cfg, server, f"generator.options.endpoint={endpoint}",
                     "force=true"))
    assert server.requests == 12  # everything came from the cache


def test_429_is_retried_then_succeeds(small_cfg, server):
    server.fail_first = 2
    run_dir = run_cell(_openai(small_cfg, server, "generator.options.concurrency=1",
                               "generator.options.cache=false"))
    assert server.failed == 2 and server.requests == 12 + 2
    assert len(read_jsonl(run_dir / "predictions.jsonl")) == 3


def test_timeout_is_retried_then_a_clear_error(small_cfg, server):
    server.mode = "sleep"
    cfg = _openai(small_cfg, server, "data.limit=1", "generator.options.timeout_s=0.2",
                  "generator.options.max_retries=1", "generator.options.concurrency=1")
    with pytest.raises(ConfigError, match=r"timed out after 0.2 s \(gave up after 2 attempts"):
        run_cell(cfg)
    assert server.requests == 2


def test_client_error_is_not_retried(small_cfg, server):
    server.mode = "unauthorized"
    with pytest.raises(ConfigError, match="HTTP 401.*invalid api key.*OPENAI_API_KEY"):
        run_cell(_openai(small_cfg, server, "data.limit=1", "generator.options.concurrency=1"))
    assert server.requests == 1


def test_malformed_response_names_what_is_missing(small_cfg, server):
    server.mode = "malformed"
    with pytest.raises(ConfigError, match=r"malformed response.*'choices\[0\]\.message"):
        run_cell(_openai(small_cfg, server, "data.limit=1"))


def test_missing_base_url(small_cfg, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        run_cell(small_cfg("generator=openai", "model=llama-3.2-1b", "data.limit=1"))


@pytest.mark.slow
def test_cli_exits_2_on_malformed_response(server, tmp_path):
    server.mode = "malformed"
    cmd = [sys.executable, "-m", "pipeline.compare", "generator=openai", "model=llama-3.2-1b",
           f"generator.options.base_url={server.url}", "data.limit=1", *SMALL,
           f"output_dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "malformed response" in proc.stderr

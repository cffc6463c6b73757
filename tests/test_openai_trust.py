"""generator=openai: retries (5xx, dropped connections, Retry-After), the server address and
key from the environment, the served model name, and resuming an interrupted cell."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from test_generate_openai import NO_BERTSCORE, Handler, Server, _answer

from pipeline.core.errors import ConfigError
from pipeline.core.io import read_json
from pipeline.generators import openai as openai_gen
from pipeline.scoring.cell import run_cell

N = 3  # examples; 4 requests each (one per task)
SECRET = "sk-test-0123456789abcdef"


class ScriptedHandler(Handler):
    """Records each request's key and model; ``server.script`` misbehaviours come first, and
    from ``server.refuse_after`` answered requests on every request is refused (HTTP 401)."""

    server: ScriptedServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            step = srv.script.pop(0) if srv.script else None
            srv.auth.append(self.headers.get("Authorization"))
            refuse = srv.refuse_after is not None and len(srv.models) >= srv.refuse_after
            if step is None and not refuse:
                srv.models.append(body["model"])
        if step == "drop":  # close the connection without an answer
            self.close_connection = True
            return None
        if step is not None:
            code, _, retry_after = step.partition(":")
            return self._send(int(code), {"error": "busy"},
                              {"Retry-After": retry_after} if retry_after else {})
        if refuse:
            return self._send(401, {"error": {"message": "key revoked"}})
        text = _answer(body["messages"][-1]["content"])
        return self._send(200, {"choices": [{"message": {"role": "assistant",
                                                         "content": text}}]})


class ScriptedServer(Server):
    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = ScriptedHandler
        self.script: list[str] = []
        self.refuse_after: int | None = None
        self.auth: list[str | None] = []
        self.models: list[str] = []


@pytest.fixture
def srv() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The generator's retry sleeps, recorded instead of slept."""
    seen: list[float] = []
    real = time.sleep

    def sleep(seconds: float) -> None:
        if sys._getframe(1).f_globals["__name__"] == openai_gen.__name__:
            seen.append(seconds)
        else:  # other callers of time.sleep (threads, libraries) sleep as usual
            real(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    return seen


def _cfg(small_cfg, srv: ScriptedServer, *more: str, url: bool = True):
    return small_cfg("generator=openai", "model=llama-3.2-1b", f"data.limit={N}",
                     *([f"generator.options.base_url={srv.url}"] if url else []),
                     "generator.options.concurrency=1", "generator.options.backoff_s=0.5",
                     *NO_BERTSCORE, *more)


def _requests(run_dir) -> dict[str, int]:
    return read_json(run_dir / "manifest.json")["generator"]["requests"]


def test_5xx_and_dropped_connections_are_retried_with_exponential_backoff(small_cfg, srv,
                                                                         waits):
    srv.script = ["503", "drop", "500"]
    run_dir = run_cell(_cfg(small_cfg, srv, "generator.options.cache=false"))
    assert len(srv.auth) == 4 * N + 3 and _requests(run_dir)["computed"] == 4 * N
    assert waits == [0.5, 1.0, 2.0]  # backoff_s * 2**(attempt - 1)


def test_retry_after_header_wins_over_backoff(small_cfg, srv, waits):
    srv.script = ["429:0.25", "503:2"]
    run_cell(_cfg(small_cfg, srv, "generator.options.cache=false"))
    assert waits == [0.25, 2.0]


def test_gives_up_after_max_retries(small_cfg, srv, waits):
    srv.script = ["502"] * 3
    with pytest.raises(ConfigError, match=r"HTTP 502.*gave up after 3 attempts"):
        run_cell(_cfg(small_cfg, srv, "generator.options.max_retries=2"))
    assert waits == [0.5, 1.0]


def test_base_url_and_key_from_environment_key_never_written(small_cfg, srv, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", srv.url)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    run_dir = run_cell(_cfg(small_cfg, srv, url=False))
    assert srv.auth == [f"Bearer {SECRET}"] * (4 * N)
    out = run_dir.parents[2]
    for path in [p for p in out.rglob("*") if p.is_file()]:
        assert SECRET.encode() not in path.read_bytes(), path


def test_served_model_name_and_server_are_part_of_the_cache_key(small_cfg, srv):
    run_dir = run_cell(_cfg(small_cfg, srv))
    assert srv.models == ["llama-3.2-1b"] * (4 * N)  # default: model.name
    assert _requests(run_dir) == {"computed": 4 * N, "reused": 0}
    run_dir = run_cell(_cfg(small_cfg, srv, "generator.options.model=org/served-name",
                            "force=true"))
    assert srv.models[4 * N:] == ["org/served-name"] * (4 * N)
    assert _requests(run_dir) == {"computed": 4 * N, "reused": 0}
    other = ScriptedServer()  # the same answers from another address: asked again
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        run_dir = run_cell(_cfg(small_cfg, srv, f"generator.options.base_url={other.url}",
                                "force=true"))
    finally:
        other.shutdown()
        other.server_close()
    assert _requests(run_dir) == {"computed": 4 * N, "reused": 0} and len(other.auth) == 4 * N
    run_dir = run_cell(_cfg(small_cfg, srv, "force=true"))  # back to the first: all cached
    assert _requests(run_dir) == {"computed": 0, "reused": 4 * N}


def test_interrupted_server_cell_resumes_where_it_stopped(small_cfg, srv):
    more = ("generator.options.batch_size=1", "generator.options.cache=false")
    srv.refuse_after = 4  # the first example's 4 requests are answered, then the key fails
    with pytest.raises(ConfigError, match="HTTP 401.*key revoked"):
        run_cell(_cfg(small_cfg, srv, *more))
    assert len(srv.models) == 4
    srv.refuse_after = None
    run_dir = run_cell(_cfg(small_cfg, srv, *more))
    assert len(srv.models) == 4 * N  # only the examples not answered before
    assert _requests(run_dir) == {"computed": 4 * (N - 1), "reused": 4}

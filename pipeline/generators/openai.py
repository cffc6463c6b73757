"""The ``openai`` generator: any OpenAI-compatible server (vLLM, TGI, llama.cpp, OpenAI).

Requests go to ``<base_url>/chat/completions`` (``endpoint: chat``) or ``<base_url>/completions``
with bounded concurrency. Timeouts, connection errors, HTTP 429 and 5xx are retried with
exponential backoff (``Retry-After`` wins when the server sends it); other 4xx answers and
malformed responses stop the cell with a message naming the URL and what was wrong (exit 2).
Standard library only. The key is read from the environment variable ``api_key_env`` so it
never lands in a manifest. No perplexity: the column stays empty.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from pipeline.core.errors import ConfigError
from pipeline.core.registry import GENERATORS
from pipeline.data.dataset import Dataset
from pipeline.finetune.prompts import Prompt
from pipeline.generators.base import Generation
from pipeline.generators.textgen import TextGenOptions, TextSession, parse_options

log = logging.getLogger(__name__)
MAX_RETRY_AFTER_S = 120.0
ENDPOINTS = {"chat": "/chat/completions", "completions": "/completions"}


class EndpointError(ConfigError):
    """The server refused a request, kept failing, or answered something unusable."""


@dataclass
class OpenAIOptions(TextGenOptions):
    """``generator.options`` of ``generator=openai`` (see ``conf/generator/openai.yaml``)."""

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    endpoint: str = "chat"
    batch_size: int = 32
    concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 1.0


class _Retryable(Exception):
    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.wait_s = wait_s


class OpenAIBackend:
    """Sends one request per prompt, ``concurrency`` at a time."""

    def __init__(self, cfg: DictConfig, opts: OpenAIOptions) -> None:
        base = opts.base_url or os.environ.get("OPENAI_BASE_URL")
        if not base:
            raise ConfigError("generator=openai needs a server: set generator.options.base_url"
                              "=http://host:port/v1 or the OPENAI_BASE_URL environment variable")
        if opts.endpoint not in ENDPOINTS:
            raise ConfigError(f"generator.options.endpoint={opts.endpoint!r}; use chat or "
                              "completions")
        if opts.concurrency < 1 or opts.max_retries < 0:
            raise ConfigError("generator.options: concurrency must be >= 1, max_retries >= 0")
        self.opts = opts
        self.url = base.rstrip("/") + ENDPOINTS[opts.endpoint]
        self.model = opts.model or cfg.model.name
        self.key = os.environ.get(opts.api_key_env) or None

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "url": self.url, "model": self.model}

    def generate(self, prompts: list[Prompt], max_new_tokens: int) -> list[str]:
        """Outputs in prompt order; requests run concurrently."""
        with ThreadPoolExecutor(max_workers=self.opts.concurrency) as pool:
            return list(pool.map(lambda p: self._complete(p, max_new_tokens), prompts))

    def _body(self, prompt: Prompt, max_new_tokens: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_new_tokens,
                                "temperature": self.opts.temperature if self.opts.do_sample
                                else 0.0}
        if self.opts.do_sample:
            body["top_p"] = self.opts.top_p
        if self.opts.endpoint == "chat":
            body["messages"] = prompt.messages()
        else:
            body["prompt"] = prompt.plain()
        return body

    def _complete(self, prompt: Prompt, max_new_tokens: int) -> str:
        data = json.dumps(self._body(prompt, max_new_tokens)).encode()
        attempt = 0
        while True:
            try:
                return self._parse(self._post(data))
            except _Retryable as exc:
                attempt += 1
                if attempt > self.opts.max_retries:
                    raise EndpointError(
                        f"POST {self.url}: {exc} (gave up after {attempt} attempts); check the "
                        "server or raise generator.options.timeout_s/max_retries") from None
                wait = exc.wait_s if exc.wait_s is not None else self.opts.backoff_s * 2**(
                    attempt - 1)
                log.warning("POST %s: %s; retrying in %.1f s", self.url, exc, wait)
                time.sleep(wait)

    def _post(self, data: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.opts.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            try:
                detail = exc.read()[:300].decode("utf-8", "replace").strip()
            except (OSError, http.client.HTTPException):  # the error body itself cut short
                detail = ""
            if exc.code == 429 or exc.code >= 500:
                raise _Retryable(f"HTTP {exc.code} {detail}", _retry_after(exc)) from None
            raise EndpointError(f"POST {self.url}: HTTP {exc.code}: {detail or exc.reason}; "
                                "check generator.options.base_url, generator.options.model "
                                f"and the key in ${self.opts.api_key_env}") from None
        except TimeoutError:
            raise _Retryable(f"timed out after {self.opts.timeout_s:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Retryable(f"timed out after {self.opts.timeout_s:g} s") from None
            raise _Retryable(f"connection failed ({exc.reason})") from None
        except http.client.IncompleteRead as exc:
            raise _Retryable(f"response cut short ({len(exc.partial)} bytes read, "
                             f"{exc.expected} more expected)") from None
        except (OSError, http.client.HTTPException) as exc:  # every other transport failure
            raise _Retryable(f"connection failed ({type(exc).__name__}: {exc})") from None

    def _parse(self, raw: bytes) -> str:
        where = "choices[0].message.content" if self.opts.endpoint == "chat" else "choices[0].text"
        try:
            choice = json.loads(raw)["choices"][0]
            text = choice["message"]["content"] if self.opts.endpoint == "chat" else choice["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            shown = raw[:200].decode("utf-8", "replace")
            raise EndpointError(f"POST {self.url}: malformed response, expected JSON with "
                                f"'{where}', got: {shown!r}") from None
        if not isinstance(text, str):
            raise EndpointError(f"POST {self.url}: malformed response, '{where}' is "
                                f"{type(text).__name__}, expected a string")
        return text


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    """Seconds from a numeric ``Retry-After`` header (capped), else None."""
    try:
        return min(float(exc.headers.get("Retry-After", "")), MAX_RETRY_AFTER_S)
    except (TypeError, ValueError):
        return None


@GENERATORS.register("openai")
def openai(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Generate the cell's predictions through an OpenAI-compatible server."""
    opts = parse_options(OpenAIOptions, cfg.generator.options)
    backend = OpenAIBackend(cfg, opts)
    log.info("generating predictions for %d examples with %s", len(test), backend.url)
    session = TextSession(cfg, dataset, backend, opts)
    preds, info = session.generate(test)
    info["requests"] = session.finish()
    return Generation(predictions=preds, info={**backend.identity(), **info})

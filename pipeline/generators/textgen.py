"""Shared driver of the text generators (``hf``, ``openai``): prompts -> outputs -> predictions.

Every (test example, task) is one request. Requests run in batches of ``batch_size``
examples; after each batch the raw outputs are appended to the run folder's
``generations.partial.jsonl`` (resume after an interruption) and, for deterministic
settings, to ``<cache>/generations/<generation key>.jsonl``. The generation key hashes the
backend's identity (weights checksum, adapter, dtype / server and model), the prompt
templates and labels and the generation settings, so a re-run generates nothing it already
has. Sampled generation (``do_sample=true``) is never written to the cache.

Each prediction keeps the raw outputs under ``raw`` (task -> text). A summary cut at
``max_new_tokens`` is trimmed to its last complete sentence (``trim_truncated``); the
truncated outputs are counted per task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pipeline.core.errors import ConfigError
from pipeline.core.paths import OutputPaths, generation_cache_dir, run_file
from pipeline.core.progress import Progress
from pipeline.core.tasks import get_task
from pipeline.data.dataset import Dataset
from pipeline.finetune.prompts import Prompt, PromptSet, load_templates
from pipeline.generators.gen_cache import OutputStore, digest
from pipeline.generators.parsing import clean_text, parse_label, parse_tags, trim_to_sentence

log = logging.getLogger(__name__)

# about twice the longest reference of the demo corpus (SmolLM2 tokens: summary 54,
# tags 12; titles 20, kept at 32); a summary cut there is trimmed to its last sentence
DEFAULT_MAX_NEW_TOKENS = {"summarization": 112, "title": 32, "tag": 24, "type": 12}
N_SHOWN_FAILURES = 3  # unparsable outputs shown in the log per task


@dataclass(frozen=True)
class Completion:
    """One output text and whether it stopped at ``max_new_tokens`` (None: unknown)."""

    text: str
    truncated: bool | None = None
    tokens: int | None = None  # generated tokens, when the engine counts them


@dataclass
class TextGenOptions:
    """Options shared by the text generators (``generator.options``)."""

    prompts: Any = None  # inline templates, a prompt file name/path, or None: default
    batch_size: int = 8
    max_new_tokens: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_NEW_TOKENS))
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    cache: bool = True
    trim_truncated: bool = True  # cut a summary stopped by max_new_tokens at its last sentence

    def settings(self) -> dict[str, Any]:
        """The settings that change outputs (sampling parameters only when sampling)."""
        sampling = ({"temperature": self.temperature, "top_p": self.top_p}
                    if self.do_sample else {})
        return {"max_new_tokens": dict(self.max_new_tokens), "do_sample": self.do_sample,
                **sampling}


OptionsT = TypeVar("OptionsT", bound=TextGenOptions)


def parse_options(cls: type[OptionsT], options: Any) -> OptionsT:
    """``generator.options`` checked against ``cls`` (unknown keys and bad types fail)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls), options or {})
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"generator.options: {str(exc).splitlines()[0]}") from None


class TextBackend(Protocol):
    """Produces one output text per prompt."""

    def identity(self) -> dict[str, Any]:
        """What the outputs depend on besides prompts and settings (weights, server...)."""
        ...

    def generate(self, prompts: list[Prompt], max_new_tokens: int) -> list[str | Completion]:
        """One output per prompt, in order."""
        ...


class TextSession:
    """Outputs of one cell's requests: looked up in the partial file and cache, or computed."""

    def __init__(self, cfg: DictConfig, dataset: Dataset, backend: TextBackend,
                 opts: TextGenOptions) -> None:
        if opts.batch_size < 1:
            raise ConfigError("generator.options.batch_size must be at least 1")
        missing = [t for t in dataset.tasks if t not in opts.max_new_tokens]
        if missing:
            raise ConfigError(f"generator.options.max_new_tokens has no value for task(s) "
                              f"{', '.join(missing)}")
        self.tasks, self.opts, self.backend = list(dataset.tasks), opts, backend
        self.prompts = PromptSet(load_templates(opts.prompts), dataset)
        self.key = digest(backend.identity(), opts.settings(), self.prompts.digest(),
                          int(cfg.seed))
        run_dir = OutputPaths(cfg.output_dir).run_dir(cfg.model.name, cfg.train_size)
        self.partial = OutputStore(run_file(run_dir, "partial"))
        self.cached = opts.cache and not opts.do_sample
        self.stores = [self.partial]
        if self.cached:
            path = generation_cache_dir(cfg.cache_dir) / f"{self.key}.jsonl"
            self.stores.append(OutputStore(path, optional=True))
        self.rows: dict[str, dict] = {}
        for store in reversed(self.stores):
            self.rows.update(store.load())
        self.counts = {"computed": 0, "reused": 0}
        self.clock = time.monotonic  # of the progress lines (tests inject a fake one)
        self.progress: Progress | None = None  # while ``fill`` computes

    def fill(self, items: list[dict], per_batch: int,
             compute: Callable[[list[dict]], list[dict]], desc: str = "generate",
             tokens_key: str = "tokens") -> list[dict]:
        """Rows of ``items`` (each with a ``key``); missing ones computed in batches, saved.

        Progress (:class:`~pipeline.core.progress.Progress`) counts the computed requests and
        the rows' ``tokens_key`` values as tokens.
        """
        pending = [it for it in items if it["key"] not in self.rows]
        self.counts["reused"] += len(items) - len(pending)
        if len(items) > len(pending):
            log.info("%s: %d of %d requests reused from earlier runs", desc,
                     len(items) - len(pending), len(items))
        with Progress(desc, len(pending), clock=self.clock) as self.progress:
            for start in range(0, len(pending), per_batch):
                before = self.progress.done  # ``compute`` may count its own parts
                rows = compute(pending[start:start + per_batch])
                for store in self.stores:
                    store.append(rows)
                self.rows.update((r["key"], r) for r in rows)
                self.counts["computed"] += len(rows)
                if self.progress.done == before:
                    self.progress.update(len(rows),
                                         sum(int(r.get(tokens_key) or 0) for r in rows))
        self.progress = None
        return [self.rows[it["key"]] for it in items]

    def generate(self, test: list[dict]) -> tuple[list[dict], dict[str, Any]]:
        """Predictions of ``test`` (parsed outputs) and what to report about them."""
        items = [{"key": digest(self.key, "gen", task, prompt.messages()), "id": r["id"],
                  "task": task, "prompt": prompt}
                 for r in test for task in self.tasks
                 for prompt in [self.prompts.render(task, r)]]
        rows = self.fill(items, self.opts.batch_size * len(self.tasks), self._generate)
        texts = {(row["id"], row["task"]): row["text"] for row in rows}
        truncated = {t: sum(bool(row.get("truncated")) for row in rows if row["task"] == t)
                     for t in self.tasks}
        cut = {(row["id"], row["task"]) for row in rows if row.get("truncated")}
        preds, report = self._parse(test, texts, cut)
        report["truncated"] = truncated
        return preds, {"generation_key": self.key, "cached": self.cached, **report}

    def finish(self) -> dict[str, int]:
        """Remove the partial file (everything is in the predictions); the request counts."""
        self.partial.path.unlink(missing_ok=True)
        return dict(self.counts)

    def _generate(self, batch: list[dict]) -> list[dict]:
        """Outputs of ``batch``: one backend call per task, or for a ``sequential`` backend
        (one that reuses the key/value cache of a shared prefix) one call per request in
        test order, so an article's task prompts run one after another."""
        if getattr(self.backend, "sequential", False):
            groups = [[it] for it in batch]
        else:
            groups = [todo for task in self.tasks
                      if (todo := [it for it in batch if it["task"] == task])]
        rows = []
        for todo in groups:
            task = todo[0]["task"]
            outs = self.backend.generate([it["prompt"] for it in todo],
                                         int(self.opts.max_new_tokens[task]))
            outs = [o if isinstance(o, Completion) else Completion(o) for o in outs]
            rows += [{"key": it["key"], "id": it["id"], "task": task, "text": out.text,
                      "truncated": out.truncated, "tokens": out.tokens}
                     for it, out in zip(todo, outs, strict=True)]
            if self.progress is not None:  # one task's prompts of the batch are done
                self.progress.update(len(todo), sum(o.tokens or 0 for o in outs))
        return rows

    def _parse(self, test: list[dict], texts: dict[tuple[str, str], str],
               cut: set[tuple[str, str]]) -> tuple[list[dict], dict[str, Any]]:
        failures: dict[str, list[str]] = {t: [] for t in self.tasks
                                          if get_task(t).kind != "text"}
        dropped = 0
        preds = []
        for r in test:
            pred: dict[str, Any] = {"id": r["id"]}
            raw = {name: texts[(r["id"], name)] for name in self.tasks}
            for name, text in raw.items():
                task, labels = get_task(name), self.prompts.labels.get(name)
                if task.kind == "text":
                    value = clean_text(text, first_line=not task.multi_sentence)
                    if task.multi_sentence and self.opts.trim_truncated and (r["id"], name) in cut:
                        value = trim_to_sentence(value)
                    pred[task.field] = value
                    continue
                if task.kind == "set":
                    value, unknown, ok = parse_tags(text, labels, self.prompts.max_tags)
                    dropped += unknown
                else:
                    value, ok = parse_label(text, labels)
                pred[task.field] = value
                if not ok:
                    failures[name].append(text)
            preds.append(pred | {"raw": raw})
        for name, bad in failures.items():
            if bad:
                log.warning("%s: %d of %d outputs could not be parsed into a %s (scored as "
                            "empty/unknown), e.g. %s", name, len(bad), len(test),
                            get_task(name).kind,
                            "; ".join(repr(t[:200]) for t in bad[:N_SHOWN_FAILURES]))
        return preds, {"parse_failures": {t: len(b) for t, b in failures.items()},
                       "unknown_tags_dropped": dropped}

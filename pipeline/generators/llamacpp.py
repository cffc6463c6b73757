"""The ``llamacpp`` generator: llama.cpp (llama-cpp-python, extra ``.[llamacpp]``) running
``model.gguf_file`` directly, quantised weights and all, on the CPU.

Prompts, chat template, parsing, caching and raw outputs are those of ``generator=hf``: the
prompt is rendered and tokenised by the GGUF's own transformers tokenizer
(:func:`~pipeline.finetune.weights.prompt_ids`, exactly as ``hf`` does) and the token ids are
handed to llama.cpp, so both engines see the same tokens; outputs are decoded by the same
tokenizer. Decoding is greedy unless ``do_sample``; it stops at the end token or at
``max_new_tokens``. Requests run one at a time, the four task prompts of an article one after
another: the prompts start with the same article, and llama.cpp keeps the key/value cache of
the common prefix, so each article is processed about once rather than once per task.

Perplexity follows the ``hf`` definition (:func:`pipeline.generators.hf.perplexity`, the
same token sequences via :func:`pipeline.finetune.weights.answer_ids`), from a second llama.cpp
context that returns the logits of every position (``logits_all``), reusing the prompt
prefix the same way. The generation key holds the engine and its version, the GGUF file's
sha256 and the options that change outputs (``n_ctx``, ``n_batch``, ``n_ubatch``); the thread
count does not change outputs (each output value is computed by one thread) and is left out.

LoRA cells are not run here: llama.cpp would need the adapter converted to GGUF.
``finetune=lora`` with ``train_size>0`` stops before training with an ``error:`` line that
says to use ``generator=hf`` (see ``pipeline/scoring/cell.py``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from pipeline.core.cpus import available_cpus
from pipeline.core.errors import ConfigError, MissingModelError
from pipeline.core.registry import GENERATORS
from pipeline.data.dataset import Dataset
from pipeline.finetune.prompts import Prompt
from pipeline.finetune.weights import Weights, base_weights, load_tokenizer, prompt_ids
from pipeline.generators.base import Generation
from pipeline.generators.textgen import Completion, TextGenOptions, TextSession, parse_options

log = logging.getLogger(__name__)

INSTALL = "pip install -e '.[llamacpp]' (builds llama-cpp-python from source, ~12 min)"
LORA_ERROR = ("generator=llamacpp cannot apply LoRA adapters (llama.cpp needs them as GGUF): "
              "LoRA cells (finetune=lora with train_size>0) use generator=hf")


@dataclass
class LlamaCppOptions(TextGenOptions):
    """``generator.options`` of ``generator=llamacpp`` (see ``conf/generator/llamacpp.yaml``)."""

    threads: int | None = None  # None: default_threads()
    n_ctx: int = 2048
    n_batch: int = 512
    n_ubatch: int = 512
    chat_template: bool = True
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    perplexity: bool = True


def default_threads() -> int:
    """Threads for ``threads: null``: the CPUs this job may use
    (:func:`pipeline.core.cpus.available_cpus`); outside SLURM (whose CPUs are the job's
    alone) no more than the machine's idle cores (CPUs less the 1-minute load average,
    rounded), and at least 1.

    llama.cpp's threads wait for each other at every layer by spinning: one thread more than
    there are free cores stalls them all (SmolLM2 on 2 cores at load 15: 2 threads ran 5x
    slower than 1), while one thread per free core degrades in proportion to the share.
    The thread count does not change outputs.
    """
    own = available_cpus()
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        return own
    idle = round((os.cpu_count() or 1) - os.getloadavg()[0])
    return max(1, min(own, idle))


def gguf_weights(cfg: DictConfig) -> Weights:
    """``model.gguf_file`` (a :class:`MissingModelError` when it is not set or not a file)."""
    if not cfg.model.get("gguf_file"):
        raise MissingModelError("generator=llamacpp runs a GGUF file: set model.gguf_file="
                                "<file.gguf> (for SmolLM2 `make smollm2` puts one in "
                                "<cache_dir>/models/)")
    weights = base_weights(cfg)
    assert weights is not None and weights.gguf_file
    return weights


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(f"generator=llamacpp needs llama-cpp-python: {INSTALL}") from None
    return llama_cpp


class LlamaCppBackend:
    """A GGUF model in llama.cpp plus its transformers tokenizer; one request at a time."""

    sequential = True  # TextSession sends requests one by one, an article's tasks together

    def __init__(self, cfg: DictConfig, opts: LlamaCppOptions) -> None:
        self.llama_cpp = _llama_cpp()
        for key in ("n_ctx", "n_batch", "n_ubatch"):
            if getattr(opts, key) < 1:
                raise ConfigError(f"generator.options.{key} must be at least 1")
        self.opts, self.seed = opts, int(cfg.seed)
        self.threads = (default_threads() if opts.threads is None
                        else available_cpus(opts.threads))
        self.weights = gguf_weights(cfg)
        self.tok = load_tokenizer(self.weights)
        self.chat = bool(opts.chat_template and self.tok.chat_template)
        self.llm = self._load(logits_all=False)
        self._scorer: Any = None
        self.eos = sorted({self.tok.eos_token_id, self.llm.token_eos()} - {None, -1})
        self.info: dict[str, Any] = {
            "backend": "llamacpp", "checkpoint": str(self.weights), "adapter": False,
            "gguf_sha256": self.weights.checksum(cfg),
            "llama_cpp_version": self.llama_cpp.__version__, "threads": self.threads,
            "n_ctx": opts.n_ctx, "n_batch": opts.n_batch, "n_ubatch": opts.n_ubatch,
            "chat_template": self.chat}

    def _load(self, logits_all: bool) -> Any:
        return self.llama_cpp.Llama(
            model_path=str(self.weights), n_ctx=self.opts.n_ctx, n_batch=self.opts.n_batch,
            n_ubatch=self.opts.n_ubatch, n_threads=self.threads, n_threads_batch=self.threads,
            logits_all=logits_all, seed=self.seed, verbose=False)

    def identity(self) -> dict[str, Any]:
        keys = ("backend", "gguf_sha256", "llama_cpp_version", "n_ctx", "n_batch", "n_ubatch",
                "chat_template")
        return {k: self.info[k] for k in keys} | {
            "chat_template_kwargs": dict(self.opts.chat_template_kwargs)}

    def num_parameters(self) -> int:
        return int(self.llama_cpp.llama_model_n_params(self.llm.model))

    def prompt_ids(self, prompt: Prompt) -> list[int]:
        """The token ids given to llama.cpp: those ``generator=hf`` feeds its model."""
        return prompt_ids(self.tok, prompt, self.chat, self.opts.chat_template_kwargs)

    def _fits(self, n_tokens: int) -> None:
        if n_tokens > self.opts.n_ctx:
            raise ConfigError(f"a request needs {n_tokens} tokens (prompt + max_new_tokens or "
                              f"reference) but generator.options.n_ctx={self.opts.n_ctx}; "
                              "raise it")

    def generate(self, prompts: list[Prompt], max_new_tokens: int) -> list[Completion]:
        """Greedy (or sampled) decoding of each prompt until an end token or the limit."""
        sampling = ({"temp": self.opts.temperature, "top_p": self.opts.top_p, "top_k": 0,
                     "min_p": 0.0} if self.opts.do_sample else {"temp": 0.0})
        outs = []
        for prompt in prompts:
            ids = self.prompt_ids(prompt)
            self._fits(len(ids) + max_new_tokens)
            new: list[int] = []
            ended = False
            for token in self.llm.generate(ids, repeat_penalty=1.0, reset=True, **sampling):
                if token in self.eos:
                    ended = True
                    break
                new.append(token)
                if len(new) >= max_new_tokens:
                    break
            outs.append(Completion(self.tok.decode(new, skip_special_tokens=True),
                                   len(new) >= max_new_tokens and not ended,
                                   len(new) + ended))
        return outs

    def nll(self, batch: list[dict]) -> list[dict]:
        """Summed NLL and token count of each item's ``target`` given its ``prompt``."""
        import numpy as np

        from pipeline.finetune.weights import answer_ids

        if self._scorer is None:
            self._scorer = self._load(logits_all=True)
        llm, rows = self._scorer, []
        for it in batch:
            prompt, target = answer_ids(self.tok, it["prompt"], it["target"], self.chat,
                                        self.opts.chat_template_kwargs)
            seq = prompt + target
            self._fits(len(seq))
            _eval_reusing_prefix(llm, seq)
            logits = np.asarray(llm.scores[len(prompt) - 1:len(seq) - 1], dtype=np.float64)
            top = logits.max(axis=1, keepdims=True)
            logz = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            nll = float((logz - logits[np.arange(len(target)), target]).sum())
            rows.append({"key": it["key"], "id": it["id"], "task": it["task"], "nll": nll,
                         "n": len(target)})
        return rows


def _eval_reusing_prefix(llm: Any, seq: list[int]) -> None:
    """Evaluate ``seq`` in ``llm`` (logits of every position in ``llm.scores``), keeping the
    key/value cache and logits of the prefix it shares with the previous sequence."""
    keep = 0
    for a, b in zip(llm.input_ids[:llm.n_tokens].tolist(), seq[:-1], strict=False):
        if a != b:
            break
        keep += 1
    llm.n_tokens = keep
    llm.eval(seq[keep:])


@GENERATORS.register("llamacpp", no_adapters=LORA_ERROR)
def llamacpp(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Generate the cell's predictions (and perplexity) with llama.cpp from a GGUF file."""
    from pipeline.generators.hf import _parameter_counts, perplexity

    opts = parse_options(LlamaCppOptions, cfg.generator.options)
    backend = LlamaCppBackend(cfg, opts)
    log.info("generating predictions for %d examples with llama.cpp %s from %s (%d threads)",
             len(test), backend.info["llama_cpp_version"], backend.weights, backend.threads)
    session = TextSession(cfg, dataset, backend, opts)
    preds, info = session.generate(test)
    ppl, n_tokens = perplexity(session, backend, test) if opts.perplexity else (None, 0)
    info |= {"requests": session.finish(), "perplexity_tokens": n_tokens}
    counted = backend.num_parameters()
    return Generation(predictions=preds, perplexity=ppl, num_parameters=counted,
                      info={**backend.info, **_parameter_counts(cfg, counted), **info})


def gguf_checksum(cfg: DictConfig) -> str:
    """sha256 of ``model.gguf_file`` (the input a ``llamacpp`` cell's outputs depend on)."""
    return gguf_weights(cfg).checksum(cfg)


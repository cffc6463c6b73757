"""The ``hf`` generator: transformers from a checkpoint directory (or LoRA adapter), offline.

``model.checkpoint`` is a model directory, a LoRA adapter directory (its base is
``model.gguf_file`` or ``model.base_model`` or the adapter's ``base_model_name_or_path``) or a
hub id already in the local cache (``model.revision``); nothing is downloaded. With
``train_size=0`` and a base (``model.base_model`` or ``model.gguf_file``) the base model
itself is used. Prompts use the tokenizer's chat template when it has one. The parameters of
the loaded model are counted; a config ``params_b`` more than 10% off is warned about.
Decoding is batched with left padding; greedy unless ``do_sample``. On CUDA the weights run
in bf16 (fp16 without bf16 support), on CPU in bf16 where the CPU computes it natively
(AVX512-BF16/AMX: about twice as fast) and in fp32 otherwise.

Perplexity (``Generation.perplexity``) is ``exp(sum NLL / sum N)`` over every text task
(summary, title) and every reference of every scored example, where the target of one
reference is the assistant turn that ``finetune=lora`` trains on
(:func:`~pipeline.finetune.weights.answer_ids`: the chat template's rendering of the reference
as the assistant's answer, its end-of-turn marker included; without a chat template the
reference's tokens followed by EOS), conditioned on the same prompt as for generation
(prompt tokens are masked with -100); NLL is the summed token negative log-likelihood
(natural log) of the target and N its number of tokens.

Torch uses one thread per CPU this job may run on (:func:`~pipeline.core.cpus.torch_threads`:
``generator.options.threads``, else ``SLURM_CPUS_PER_TASK``, else the CPU affinity).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig

from pipeline.core.cpus import torch_threads
from pipeline.core.errors import ConfigError
from pipeline.core.registry import GENERATORS
from pipeline.core.tasks import get_task
from pipeline.data.dataset import Dataset, as_reference_list
from pipeline.finetune.prompts import Prompt
from pipeline.finetune.weights import (
    answer_ids,
    cell_weights,
    cpu_bf16_supported,
    load_causal_lm,
    load_tokenizer,
    prompt_ids,
)
from pipeline.generators.base import PERPLEXITY_DEFINITION, Generation
from pipeline.generators.gen_cache import digest
from pipeline.generators.textgen import Completion, TextGenOptions, TextSession, parse_options

log = logging.getLogger(__name__)

PARAMS_TOLERANCE = 0.10  # warn when the config's params_b is further off the counted figure
DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
          "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}


@dataclass
class HFOptions(TextGenOptions):
    """``generator.options`` of ``generator=hf`` (see ``conf/generator/hf.yaml``)."""

    device: str = "auto"
    dtype: str = "auto"
    chat_template: bool = True
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    perplexity: bool = True
    threads: int | None = None  # torch CPU threads; None: the CPUs this job may use


def _device_dtype(opts: HFOptions) -> tuple[str, torch.dtype]:
    device = opts.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if opts.dtype == "auto":
        if not device.startswith("cuda"):
            return device, torch.bfloat16 if cpu_bf16_supported() else torch.float32
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if opts.dtype not in DTYPES:
        raise ConfigError(f"generator.options.dtype={opts.dtype!r}; use auto or one of "
                          f"{', '.join(DTYPES)}")
    return device, DTYPES[opts.dtype]


class HFBackend:
    """A causal LM and its tokenizer, ready for batched generation and scoring."""

    def __init__(self, cfg: DictConfig, opts: HFOptions) -> None:
        self.opts = opts
        self.device, self.dtype = _device_dtype(opts)
        ckpt, base = cell_weights(cfg)
        adapter = ckpt.is_adapter()
        weights = base if adapter else ckpt
        self.info: dict[str, Any] = {
            "backend": "hf", "checkpoint": str(ckpt), "adapter": adapter,
            "base_model": str(base) if adapter else None, "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "weights_sha256": ckpt.checksum(cfg),
            "base_sha256": base.checksum(cfg) if adapter else None}
        self.tok = load_tokenizer(ckpt if ckpt.has_tokenizer() else weights)
        self.tok.padding_side = "left"
        model = load_causal_lm(weights, self.dtype)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, ckpt.path).merge_and_unload()
        self.model = model.to(self.device).eval()
        self.chat = bool(opts.chat_template and self.tok.chat_template)
        self.info["chat_template"] = self.chat
        self.info |= _parameter_counts(cfg, int(self.model.num_parameters()))

    def identity(self) -> dict[str, Any]:
        keys = ("backend", "weights_sha256", "base_sha256", "dtype", "chat_template")
        return {k: self.info[k] for k in keys} | {
            "device": self.device.split(":")[0],
            "chat_template_kwargs": dict(self.opts.chat_template_kwargs)}

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        return prompt_ids(self.tok, prompt, self.chat, self.opts.chat_template_kwargs)

    def generate(self, prompts: list[Prompt], max_new_tokens: int) -> list[Completion]:
        """Batched decoding (left padding): greedy, or sampling when ``do_sample``; an output
        is ``truncated`` when it ran to ``max_new_tokens`` without an end token."""
        from transformers import GenerationConfig

        ids = [self._prompt_ids(p) for p in prompts]
        enc = self.tok.pad({"input_ids": ids}, padding=True, return_tensors="pt")
        sampling = ({"temperature": self.opts.temperature, "top_p": self.opts.top_p}
                    if self.opts.do_sample else {})
        eos = self.model.generation_config.eos_token_id
        eos = sorted({*(eos if isinstance(eos, list) else [eos]), self.tok.eos_token_id}
                     - {None})
        gen_cfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=self.opts.do_sample,
                                   pad_token_id=self.tok.pad_token_id, eos_token_id=eos,
                                   **sampling)
        with torch.inference_mode():
            out = self.model.generate(**enc.to(self.device), generation_config=gen_cfg)
        new = out[:, enc["input_ids"].shape[1]:]
        is_eos = torch.isin(new, torch.tensor(eos, device=new.device))
        ended = is_eos.any(dim=1)
        # generated tokens: up to and including the first end token
        counts = torch.where(ended, is_eos.int().argmax(dim=1) + 1, new.shape[1]).tolist()
        full = new.shape[1] >= max_new_tokens
        return [Completion(text, bool(full and not stop), n) for text, stop, n in
                zip(self.tok.batch_decode(new, skip_special_tokens=True), ended.tolist(),
                    counts, strict=True)]

    def nll(self, batch: list[dict]) -> list[dict]:
        """Summed NLL and token count of each item's ``target`` (as the assistant turn)
        given its ``prompt``."""
        seqs, labels = [], []
        for it in batch:
            prompt, target = answer_ids(self.tok, it["prompt"], it["target"], self.chat,
                                        self.opts.chat_template_kwargs)
            seqs.append(prompt + target)
            labels.append([-100] * len(prompt) + target)
        width = max(map(len, seqs))
        pad = self.tok.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=self.device)
        lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels], device=self.device)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs],
                            device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        rows = []
        for i, it in enumerate(batch):
            nll = torch.nn.functional.cross_entropy(logits[i, :-1].float(), lab[i, 1:],
                                                    ignore_index=-100, reduction="sum")
            rows.append({"key": it["key"], "id": it["id"], "task": it["task"],
                         "nll": float(nll), "n": int((lab[i, 1:] != -100).sum())})
        return rows


def _parameter_counts(cfg: DictConfig, counted: int) -> dict[str, Any]:
    """The config's and the counted size in billions; warns when they differ by > 10%."""
    config = cfg.model.params_b
    if config is not None and abs(config * 1e9 - counted) > PARAMS_TOLERANCE * counted:
        log.warning("model.params_b=%s but the loaded checkpoint has %.3fB parameters; the "
                    "metrics record the config's figure (set model.params_b=null to use the "
                    "counted one)", config, counted / 1e9)
    return {"params_b_config": config, "params_b_counted": round(counted / 1e9, 4)}


def perplexity(session: TextSession, backend: Any, test: list[dict]
               ) -> tuple[float | None, int]:
    """``exp(sum NLL / sum N)`` over the text references (module docstring); and N."""
    items = []
    for r in test:
        for name in session.tasks:
            task = get_task(name)
            if task.kind != "text":
                continue
            prompt = session.prompts.render(name, r)
            for ref in as_reference_list(r[task.field]):
                items.append({"key": digest(session.key, "nll", PERPLEXITY_DEFINITION, name,
                                            prompt.messages(), ref),
                              "id": r["id"], "task": name, "prompt": prompt, "target": ref})
    rows = session.fill(items, session.opts.batch_size, backend.nll, desc="perplexity",
                        tokens_key="n")
    n = sum(row["n"] for row in rows)
    return (math.exp(sum(row["nll"] for row in rows) / n) if n else None), n


@GENERATORS.register("hf")
def hf(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Generate the cell's predictions (and perplexity) with transformers."""
    opts = parse_options(HFOptions, cfg.generator.options)
    if opts.do_sample:
        torch.manual_seed(int(cfg.seed))
    threads = torch_threads(opts.threads)
    backend = HFBackend(cfg, opts)
    log.info("generating predictions for %d examples with %s (%s, %s, %d CPU threads)",
             len(test), backend.info["checkpoint"], backend.device, backend.info["dtype"],
             threads)
    session = TextSession(cfg, dataset, backend, opts)
    preds, info = session.generate(test)
    ppl, n_tokens = perplexity(session, backend, test) if opts.perplexity else (None, 0)
    info |= {"requests": session.finish(), "perplexity_tokens": n_tokens}
    if opts.perplexity:
        info["perplexity_definition"] = PERPLEXITY_DEFINITION
    return Generation(predictions=preds, perplexity=ppl,
                      num_parameters=int(backend.model.num_parameters()),
                      info={**backend.info, **info})

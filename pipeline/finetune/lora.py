"""``finetune=lora``: LoRA-train a cell's ``model.checkpoint`` with peft and the transformers
``Trainer`` (options in ``conf/finetune/lora.yaml``).

The training set is the first ``train_size`` training examples x every task of the data,
each a (prompt, answer) pair: the prompt exactly as ``generator=hf`` renders it (templates of
``generator.options.prompts``, chat template when the tokenizer has one), the answer the
reference (first summary reference, title, tags as ``a, b, c``, type) as the chat template
renders the assistant's turn (so the model learns to end it), or plus EOS without a chat
template. The loss covers the answer tokens only (prompt labels are -100).

The adapter (with its tokenizer and ``finetune.json``) is written to ``model.checkpoint``
and reused while its cache key matches: base weights checksum, training pairs checksum,
``train_size`` and the hyperparameters. Trainer checkpoints go to a hidden folder beside it
(``.<name>.trainer``) every ``save_steps`` steps, and an interrupted run with the same cache key
resumes from the last one. ``train_size=0`` means the base model itself: nothing is trained.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from pipeline.core.cpus import torch_threads
from pipeline.core.errors import ConfigError
from pipeline.core.io import read_json, write_json
from pipeline.core.provenance import package_versions
from pipeline.core.tasks import get_task
from pipeline.data.dataset import Dataset, as_reference_list
from pipeline.finetune.feedback import feedback_callback
from pipeline.finetune.prompts import Prompt, PromptSet, load_templates
from pipeline.finetune.weights import (
    Weights,
    answer_ids,
    base_weights,
    cpu_bf16_supported,
    digest,
    load_causal_lm,
    load_tokenizer,
)

log = logging.getLogger(__name__)

META_FILE = "finetune.json"
VERSIONED = ("peft", "transformers", "torch", "accelerate")


@dataclass
class LoraOptions:
    """``conf/finetune/lora.yaml``."""

    name: str = "lora"
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj",
                                                                "o_proj"])
    epochs: float = 1.0
    max_steps: int = -1
    learning_rate: float = 2e-4
    batch_size: int = 8
    grad_accumulation: int = 1
    max_length: int = 768
    seed: int = 0
    dtype: str = "auto"
    gradient_checkpointing: bool = False
    save_steps: int = 20


def _options(node: Any) -> LoraOptions:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(LoraOptions), node)
        opts: LoraOptions = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"finetune: {str(exc).splitlines()[0]}") from None
    if opts.name != "lora":
        raise ConfigError(f"finetune.name={opts.name!r}; only 'lora' is available")
    if opts.dtype not in ("auto", "fp32", "bf16"):
        raise ConfigError(f"finetune.dtype={opts.dtype!r}; use auto, fp32 or bf16")
    return opts


def answer_text(task: str, record: dict) -> str:
    """The training target of ``task`` for ``record`` (as a good generated output reads)."""
    spec = get_task(task)
    value = record.get(spec.field)
    if spec.kind == "text":
        refs = as_reference_list(value)
        return refs[0] if refs else ""
    if spec.kind == "set":
        return ", ".join(value or [])
    return str(value or "")


def training_pairs(dataset: Dataset, prompts: PromptSet, n: int) -> list[tuple[Prompt, str]]:
    """(prompt, answer) of the first ``n`` training examples x every task (empty ones left
    out)."""
    if n > len(dataset.train):
        raise ConfigError(f"train_size={n} but the training pool of {dataset.name!r} has "
                          f"{len(dataset.train)} examples")
    return [(prompts.render(task, r), answer)
            for r in dataset.train[:n] for task in dataset.tasks
            if (answer := answer_text(task, r))]


def _encode(tok: Any, prompt: Prompt, answer: str, chat: bool, chat_kwargs: dict[str, Any],
            max_length: int) -> dict[str, list[int]] | None:
    """input_ids / labels (prompt masked) of one pair, cut to ``max_length`` (None when no
    answer token is left)."""
    head, target = answer_ids(tok, prompt, answer, chat, chat_kwargs)
    ids = (head + target)[:max_length]
    labels = ([-100] * len(head) + target)[:max_length]
    if all(x == -100 for x in labels):
        return None
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def _train(opts: LoraOptions, base: Weights, tok: Any, features: list[dict], out: Path,
           info: dict[str, Any]) -> dict[str, Any]:
    """Train, save the adapter to ``out`` atomically (temporary folder, then rename)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        DataCollatorForSeq2Seq,
        PrinterCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.trainer_utils import get_last_checkpoint

    cuda = torch.cuda.is_available()
    native = torch.cuda.is_bf16_supported() if cuda else cpu_bf16_supported()
    bf16 = opts.dtype == "bf16" or (opts.dtype == "auto" and native)
    set_seed(opts.seed)
    torch_threads()
    model = load_causal_lm(base, torch.float32)
    if opts.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(
        r=opts.rank, lora_alpha=opts.alpha, lora_dropout=opts.dropout,
        target_modules=list(opts.target_modules), task_type="CAUSAL_LM"))
    work = out.parent / f".{out.name}.trainer"
    args = TrainingArguments(
        output_dir=str(work), per_device_train_batch_size=opts.batch_size,
        gradient_accumulation_steps=opts.grad_accumulation, num_train_epochs=opts.epochs,
        max_steps=opts.max_steps, learning_rate=opts.learning_rate, logging_steps=1,
        save_steps=opts.save_steps, save_total_limit=2, seed=opts.seed, data_seed=opts.seed,
        bf16=bf16, use_cpu=not cuda, report_to=[], remove_unused_columns=False,
        disable_tqdm=True, include_num_input_tokens_seen="non_padding")
    tok.padding_side = "right"
    trainer = Trainer(model=model, args=args, train_dataset=features,
                      data_collator=DataCollatorForSeq2Seq(tok, padding=True,
                                                           label_pad_token_id=-100),
                      callbacks=[feedback_callback()])
    trainer.remove_callback(PrinterCallback)  # raw dicts; feedback_callback formats them
    stamp = work / "cache_key"  # Trainer checkpoints of other settings are not resumed
    if work.is_dir() and (not stamp.exists() or stamp.read_text() != info["cache_key"]):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(info["cache_key"])
    resume = get_last_checkpoint(str(work))
    if resume:
        log.info("finetune: resuming from %s", resume)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    if not sys.stderr.isatty():  # the Trainer turns the hub's bars back on when it ends
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    info |= {"steps": int(trainer.state.global_step),
             "losses": [round(float(h["loss"]), 6) for h in trainer.state.log_history
                        if "loss" in h],
             "seconds": round(time.perf_counter() - start, 3), "resumed_from": resume,
             "trainable_parameters": int(model.get_nb_trainable_parameters()[0]),
             "dtype": "bf16" if bf16 else "fp32", "device": "cuda" if cuda else "cpu",
             "versions": package_versions(VERSIONED)}
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    write_json(tmp / META_FILE, info)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    shutil.rmtree(work, ignore_errors=True)
    return info


def finetune(cfg: DictConfig, dataset: Dataset) -> tuple[DictConfig, dict[str, Any] | None]:
    """Make sure the cell's adapter exists and is current; the config to generate with
    (``finetune.cache_key`` added, so predictions follow the adapter) and the manifest's
    ``finetune`` section (None without ``finetune``)."""
    if not cfg.get("finetune"):
        return cfg, None
    opts = _options(cfg.finetune)
    n = int(cfg.train_size)
    base = base_weights(cfg)
    if base is None:
        raise ConfigError("finetune=lora needs model.base_model=<dir> or model.gguf_file=<file>")
    if n == 0:
        return cfg, {"train_examples": 0, "base_model": str(base)}
    if not cfg.model.checkpoint:
        raise ConfigError("finetune=lora needs model.checkpoint (where the adapter goes)")
    out = Path(str(cfg.model.checkpoint))
    gen: dict[str, Any] = OmegaConf.to_container(cfg.generator.options, resolve=True)  # type: ignore[assignment]
    tok = load_tokenizer(base)
    chat = bool(gen.get("chat_template", True) and tok.chat_template)
    chat_kwargs = dict(gen.get("chat_template_kwargs") or {})
    pairs = training_pairs(dataset, PromptSet(load_templates(gen.get("prompts")), dataset), n)
    hyper = asdict(opts)
    key = digest(base.checksum(cfg), digest([[p.messages(), a] for p, a in pairs]), n, hyper,
                 chat, chat_kwargs)
    meta = out / META_FILE
    if meta.exists() and read_json(meta).get("cache_key") == key:
        log.info("finetune: adapter %s is current, reusing it", out)
        info = read_json(meta) | {"reused": True}
    else:
        if out.exists() and any(out.iterdir()) and not meta.exists():
            raise ConfigError(f"model.checkpoint={str(out)!r} exists and was not written by "
                              "finetune=lora; remove it or point model.checkpoint elsewhere")
        features = [f for p, a in pairs
                    if (f := _encode(tok, p, a, chat, chat_kwargs, opts.max_length))]
        if not features:
            raise ConfigError(f"finetune.max_length={opts.max_length}: no training prompt "
                              "leaves room for its answer; raise it")
        if len(features) < len(pairs):
            log.warning("finetune: %d of %d training prompts are longer than finetune."
                        "max_length=%d with no answer token left; they are left out",
                        len(pairs) - len(features), len(pairs), opts.max_length)
        log.info("finetune: LoRA on %d examples (%d prompts) -> %s", n, len(features), out)
        info = _train(opts, base, tok, features, out, {
            "cache_key": key, "train_examples": n, "train_prompts": len(features),
            "base_model": str(base), "hyperparameters": hyper})
        info["reused"] = False
    tuned = cfg.copy()
    with open_dict(tuned):
        tuned.finetune.cache_key = key
    return tuned, info

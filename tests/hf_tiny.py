"""Tiny random-initialised Llama / Qwen3 checkpoints with an offline word-level tokenizer, and
a tiny random BERT encoder with MiniLM's tokenizer files."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from pipeline.data.demo_corpus import build_demo_corpus

SPECIALS = ["<unk>", "<pad>", "<s>", "</s>"]
CHAT_TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }} </s> "
                 "{% endfor %}{% if add_generation_prompt %}<s> assistant : {% endif %}")
SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 64}


def chat_by_hand(system: str | None, user: str) -> str:
    """CHAT_TEMPLATE written out by hand for an optional system and one user message."""
    head = f"<s> system : {system} </s> " if system else ""
    return f"{head}<s> user : {user} </s> <s> assistant : "


def nll_by_hand(model: torch.nn.Module, prompt: list[int], target: list[int]) -> float:
    """Summed negative log-likelihood (float64) of ``target`` after ``prompt``, from the
    model's logits: token j of the target is predicted at position len(prompt) - 1 + j."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + target])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return -sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(target))


def tiny_tokenizer(chat_template: str | None) -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer trained on a few demo articles and their references."""
    train, _ = build_demo_corpus(n_train=40, n_test=0)
    texts = [" ".join([r["article"], r["summary"], r["title"], " ".join(r["tags"]), r["type"]])
             for r in train]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>")
    if chat_template:
        fast.chat_template = chat_template
    return fast


def save_tiny(kind: str, path: Path, chat_template: str | None = None) -> Path:
    """Save a random ``llama`` or ``qwen3`` model and its tokenizer to ``path``."""
    tok = tiny_tokenizer(chat_template)
    ids = {"vocab_size": len(tok), "pad_token_id": tok.pad_token_id,
           "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id}
    torch.manual_seed(0)
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**SIZES, **ids))
    else:
        model = Qwen3ForCausalLM(Qwen3Config(**SIZES, head_dim=8, **ids))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_lora(base: Path, path: Path) -> Path:
    """Save a LoRA adapter (non-zero B, so it changes outputs) on the model at ``base``."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(path)
    return path


def save_tiny_encoder(path: Path, seed: int) -> Path:
    """A one-layer random BERT with MiniLM's tokenizer files, saved under ``path`` (written
    again with ``seed``'s weights when it exists)."""
    from transformers import BertConfig, BertModel

    from pipeline.scoring.bertscore.encoder import DEFAULT_MODEL, resolve_model

    source = resolve_model(DEFAULT_MODEL).model_dir
    torch.manual_seed(seed)
    BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32), add_pooling_layer=False).save_pretrained(path)
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                 "special_tokens_map.json"):
        (path / name).write_bytes((source / name).read_bytes())
    return path

"""CPU speed of a causal LM checkpoint: generated tokens/s by batch size, threads and dtype,
and seconds per LoRA training step (the numbers behind the README's CPU cost table).

    python scripts/bench_hf_cpu.py <checkpoint dir> [--batch 1 4 8] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.data.demo_corpus import build_demo_corpus

NEW_TOKENS = 48


def generation_rate(model, tok, prompts: list[str]) -> float:
    """Generated tokens per second for one batch (greedy, no early stop)."""
    enc = tok(prompts, return_tensors="pt", padding=True)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                             do_sample=False, pad_token_id=tok.pad_token_id)
    new = out.shape[1] - enc["input_ids"].shape[1]
    return len(prompts) * new / (time.perf_counter() - start)


def train_step_seconds(path: str, tok, texts: list[str], dtype: torch.dtype) -> float:
    """Seconds of one LoRA forward+backward+step on ``texts`` (after one warm-up step)."""
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32),
                           LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM",
                                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=512)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            loss = model(**enc, labels=enc["input_ids"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - start)
    return times[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(args.checkpoint)
    tok.padding_side = "left"
    tok.pad_token = tok.pad_token or tok.eos_token
    _, test = build_demo_corpus(n_train=0, n_test=8)
    prompts = [f"Article: {r['article'][:1500]}\n\nWrite a short headline." for r in test]
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    rows = []
    for name in args.dtypes:
        model = AutoModelForCausalLM.from_pretrained(args.checkpoint, dtype=dtypes[name]).eval()
        for threads in args.threads:
            torch.set_num_threads(threads)
            for batch in args.batch:
                generation_rate(model, tok, prompts[:1])  # warm-up
                rate = generation_rate(model, tok, prompts[:batch])
                rows.append({"dtype": name, "threads": threads, "batch": batch,
                             "tokens_per_s": round(rate, 1)})
                print(json.dumps(rows[-1]), flush=True)
    torch.set_num_threads(max(args.threads))
    for name in args.dtypes:
        tok.padding_side = "right"
        sec = train_step_seconds(args.checkpoint, tok, prompts[:4], dtypes[name])
        print(json.dumps({"dtype": name, "train_step_s_batch4": round(sec, 2)}), flush=True)


if __name__ == "__main__":
    main()

"""Generated tokens/s of SmolLM2-135M on this CPU, every engine in the same run.

``generator=hf`` (fp32, and bf16 where the CPU computes it natively; batch 1 and 8) against a
plain transformers ``model.generate`` loop on the same prompts (the reference for the hf
path's overhead), and ``generator=llamacpp`` (the Q4_1 GGUF, one request at a time; needs
the ``.[llamacpp]`` extra); then the same with a second busy process started by this script
(contention); seconds per LoRA training step (``finetune=lora``, a few steps); and a small
real cell per engine (4 tasks, perplexity on), scaled to 200 examples.

    make smollm2 && python scripts/bench_generation.py            # short: 8 prompts x 48 tokens
    python scripts/bench_generation.py --prompts 16 --new-tokens 96 --cell 8 --lora-steps 4

Prompts are the pipeline's summarization prompts of demo articles with the chat template;
decoding is greedy and stops at the end token; tokens are counted by re-tokenising each
output (+1 for the end token). Threads: every CPU this process may use, for every engine;
llama.cpp also with the count ``threads: null`` picks (fewer on a busy machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.core.paths import default_cache_dir  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma", "f16c")
BUSY = ("import torch, sys\ntorch.set_num_threads(int(sys.argv[1]))\n"
        "a = torch.randn(512, 512)\nwhile True:\n    a = (a @ a).tanh()\n")
CELL_EXAMPLES = 200


def cpu_line() -> str:
    """CPU model, the SIMD flags that matter for these engines, CPUs usable, load."""
    info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), "unknown")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines()
                  if line.startswith("flags")), [])
    have = [f for f in FLAGS if f in flags]
    return (f"CPU: {model}; flags: {' '.join(have) or 'none of ' + ' '.join(FLAGS)}; "
            f"{len(os.sched_getaffinity(0))} CPUs usable; load {os.getloadavg()[0]:.1f}")


def prompts(n: int) -> list:
    from pipeline.data.demo_corpus import build_demo_corpus
    from pipeline.finetune.prompts import Prompt, load_templates

    templates = load_templates(None)
    _, test = build_demo_corpus(n_train=0, n_test=n)
    return [Prompt(templates.get("system"), templates["summarization"].format(
        article=r["article"])) for r in test]


def count_tokens(tok, texts: list[str], truncated: list[bool]) -> int:
    return sum(len(tok(t, add_special_tokens=False)["input_ids"]) + (not cut)
               for t, cut in zip(texts, truncated, strict=True))


def plain_loop(hf, batch: list, new: int) -> tuple[list[str], list[bool]]:
    """The reference: tokenise with the chat template, pad left, ``model.generate``."""
    import torch

    from pipeline.finetune.weights import prompt_ids

    tok, model = hf.tok, hf.model
    enc = tok.pad({"input_ids": [prompt_ids(tok, p, True, {}) for p in batch]},
                  return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=new, do_sample=False,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    rows = out[:, enc["input_ids"].shape[1]:]
    ended = (rows == tok.eos_token_id).any(dim=1).tolist()
    return (tok.batch_decode(rows, skip_special_tokens=True),
            [rows.shape[1] >= new and not e for e in ended])


def backend_run(backend, batch: list, new: int) -> tuple[list[str], list[bool]]:
    outs = backend.generate(batch, new)
    return [o.text for o in outs], [bool(o.truncated) for o in outs]


def rate(run: Callable, tok, items: list, batch: int, new: int) -> dict:
    """Tokens/s of ``run`` over ``items`` in batches of ``batch`` (after a short warm-up on
    another prompt: llama.cpp would otherwise reuse the measured prompt's key/value cache)."""
    from pipeline.finetune.prompts import Prompt

    run([Prompt(None, "Say hello.")], 4)
    texts, cut = [], []
    start = time.perf_counter()
    for i in range(0, len(items), batch):
        t, c = run(items[i:i + batch], new)
        texts += t
        cut += c
    seconds = time.perf_counter() - start
    tokens = count_tokens(tok, texts, cut)
    return {"tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1), "texts": texts}


@contextlib.contextmanager
def busy(threads: int) -> Iterator[None]:
    """A second process multiplying matrices on ``threads`` threads while inside."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY, str(threads)])
    try:
        time.sleep(3)  # let it start spinning
        yield
    finally:
        proc.terminate()
        proc.wait()


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from pipeline.core.schema import register_schema

    register_schema()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        return hydra_compose(config_name="config", overrides=list(overrides))


def engines(args, checkpoint: Path, gguf: Path, threads: int) -> dict[str, tuple]:
    """name -> (run, tokenizer, batch sizes) for every engine available here."""
    import torch

    from pipeline.finetune.weights import cpu_bf16_supported
    from pipeline.generators.hf import HFBackend, HFOptions

    torch.set_num_threads(threads)
    base = ("generator=hf", "model=smollm2-135m", "train_size=0", f"model.base_model={checkpoint}")
    found: dict[str, tuple] = {}
    dtypes = ["fp32"] + (["bf16"] if cpu_bf16_supported() else [])
    for dtype in dtypes:
        hf = HFBackend(compose(*base), HFOptions(dtype=dtype, max_new_tokens={}))
        found[f"plain generate {dtype}"] = (lambda b, n, hf=hf: plain_loop(hf, b, n), hf.tok)
        found[f"hf {dtype}"] = (lambda b, n, hf=hf: backend_run(hf, b, n), hf.tok)
    try:
        from pipeline.generators.llamacpp import (
            LlamaCppBackend,
            LlamaCppOptions,
            default_threads,
        )

        cfg = compose("generator=llamacpp", "model=smollm2-135m", "train_size=0",
                      f"model.gguf_file={gguf}")
        for count in dict.fromkeys([threads, default_threads()]):  # theirs, and a cell's
            lc = LlamaCppBackend(cfg, LlamaCppOptions(threads=count, max_new_tokens={}))
            found[f"llamacpp Q4_1 {count} threads"] = (
                lambda b, n, lc=lc: backend_run(lc, b, n), lc.tok)
    except Exception as exc:  # noqa: BLE001 - the bench reports what it could not run
        print(f"llamacpp: not measured ({exc})", flush=True)
    return found


def measure(found: dict, items: list, args, label: str, batches: list[int]) -> list[dict]:
    """Every engine at every batch size, a batch size at a time (a plain loop and its hf
    run side by side, so a change of load on a shared machine hits both alike)."""
    rows = []
    for i, size in enumerate(batches):
        for name, (run, tok) in found.items():
            sequential = name.startswith("llamacpp")  # one request at a time: measured once
            if sequential and i:
                continue
            batch = 1 if sequential else size
            row = {"setting": label, "engine": name, "batch": batch,
                   **rate(run, tok, items, batch, args.new_tokens),
                   "load": round(os.getloadavg()[0], 1)}
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "texts"}), flush=True)
    return rows


def lora_step_seconds(checkpoint: Path, steps: int, out: Path) -> dict:
    """Seconds per optimizer step of ``finetune=lora`` (8 sequences a step) on SmolLM2."""
    from pipeline.core.paths import OutputPaths
    from pipeline.data import load_dataset
    from pipeline.finetune import finetune

    cfg = compose("generator=hf", "finetune=lora", "model=smollm2-135m", "train_size=8",
                  f"model.base_model={checkpoint}", f"model.checkpoint={out / 'adapter'}",
                  f"output_dir={out}", f"cache_dir={out / 'cache'}",
                  f"finetune.max_steps={steps}", "finetune.save_steps=1000")
    _, info = finetune(cfg, load_dataset(cfg.data, OutputPaths(out)))
    return {"steps": info["steps"], "seconds": info["seconds"], "dtype": info["dtype"],
            "seconds_per_step": round(info["seconds"] / info["steps"], 2)}


def cell_seconds(engine: str, n: int, checkpoint: Path, gguf: Path, out: Path) -> dict:
    """A real cell of ``n`` examples (4 tasks, perplexity, ROUGE only), nothing cached."""
    from pipeline.core.io import read_json
    from pipeline.scoring.cell import run_cell

    model = f"model.gguf_file={gguf}" if engine == "llamacpp" else f"model.base_model={checkpoint}"
    cfg = compose(f"generator={engine}", "model=smollm2-135m", "train_size=0", model,
                  f"data.limit={n}", f"output_dir={out / engine}", f"cache_dir={out / 'cache'}",
                  "tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")
    manifest = read_json(run_cell(cfg) / "manifest.json")
    seconds = manifest["seconds"]["generate"]
    return {"engine": engine, "examples": n, "requests": manifest["generator"]["requests"],
            "generate_s": seconds,
            f"minutes_per_{CELL_EXAMPLES}": round(seconds / n * CELL_EXAMPLES / 60, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    models = default_cache_dir() / "models"
    ap.add_argument("--checkpoint", type=Path, default=models / "SmolLM2-135M-Instruct")
    ap.add_argument("--gguf", type=Path, default=models / "SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--lora-steps", type=int, default=2, help="0 skips the LoRA timing")
    ap.add_argument("--cell", type=int, default=2, help="examples per cell timed; 0 skips")
    ap.add_argument("--no-busy", action="store_true", help="skip the contention runs")
    args = ap.parse_args()
    if not (args.checkpoint / "config.json").exists() or not args.gguf.exists():
        sys.exit("error: SmolLM2 not found: run `make smollm2` (or pass --checkpoint/--gguf)")
    threads = len(os.sched_getaffinity(0))
    print(cpu_line(), flush=True)
    found = engines(args, args.checkpoint, args.gguf, threads)
    items = prompts(args.prompts)
    rows = measure(found, items, args, "quiet", args.batch)
    if not args.no_busy:
        with busy(threads):
            print(f"busy: a second process on {threads} threads; {cpu_line()}", flush=True)
            rows += measure(found, items, args, "busy", [max(args.batch)])
    summary(rows)
    with tempfile.TemporaryDirectory(prefix="bench_generation_") as tmp:
        if args.lora_steps:
            print("LoRA:", json.dumps(lora_step_seconds(args.checkpoint, args.lora_steps,
                                                        Path(tmp) / "lora")), flush=True)
        if args.cell:
            llama = any(name.startswith("llamacpp") for name in found)
            for engine in ("hf", *(["llamacpp"] if llama else [])):
                print("cell:", json.dumps(cell_seconds(engine, args.cell, args.checkpoint,
                                                       args.gguf, Path(tmp) / "cells")),
                      flush=True)
    print(cpu_line())


def summary(rows: list[dict]) -> None:
    """Markdown table; each hf row's time against the plain loop's at the same dtype/batch,
    outputs compared; busy against quiet."""
    def find(setting: str, engine: str, batch: int) -> dict | None:
        return next((r for r in rows if (r["setting"], r["engine"], r["batch"]) ==
                     (setting, engine, batch)), None)

    print("\n| setting | engine | batch | tokens | s | tokens/s | hf / plain time | "
          "same outputs as plain | busy / quiet time |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = (find(r["setting"], r["engine"].replace("hf", "plain generate"), r["batch"])
               if r["engine"].startswith("hf") else None)
        quiet = find("quiet", r["engine"], r["batch"]) if r["setting"] == "busy" else None
        overhead = f"{r['seconds'] / ref['seconds']:.2f}" if ref else ""
        same = ("yes" if ref["texts"] == r["texts"] else "no") if ref else ""
        slowdown = f"{r['seconds'] / quiet['seconds']:.2f}" if quiet else ""
        print(f"| {r['setting']} | {r['engine']} | {r['batch']} | {r['tokens']} | "
              f"{r['seconds']} | {r['tokens_per_s']} | {overhead} | {same} | {slowdown} |")
    print()


if __name__ == "__main__":
    main()

"""generator=llamacpp: llama.cpp runs the SmolLM2 GGUF file with hf's prompts, cache and
perplexity; LoRA cells are refused before any training.

The tests that run llama.cpp need the extra (`pip install -e '.[llamacpp]'`) and the SmolLM2
GGUF file (`make smollm2`); they skip with the reason otherwise.
"""

from __future__ import annotations

import functools
import math
import sys

import pytest

from pipeline.core.errors import ConfigError, MissingModelError
from pipeline.core.io import file_sha256, read_json, read_jsonl
from pipeline.core.paths import default_cache_dir
from pipeline.finetune.prompts import Prompt
from pipeline.generators import llamacpp as lc

# `make smollm2` puts them in the user's cache dir (read before the tests redirect the cache)
MODELS = default_cache_dir() / "models"
GGUF = MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT = MODELS / "SmolLM2-135M-Instruct"
NO_BERTSCORE = ("tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")
TOKENS = "generator.options.max_new_tokens={summarization:24,title:12,tag:12,type:4}"
PROMPTS = [Prompt("You are a careful news editor.", "Article: The council approved a new "
                  "bridge over the river on Monday.\n\nWrite a short headline for the article "
                  "above."),
           Prompt(None, "Article: Rain is expected all week.\n\nSummarize the article above.")]


def test_lora_cells_are_refused_before_training(small_cfg, tmp_path):
    from pipeline.scoring.cell import run_cell

    adapter = tmp_path / "adapter"
    cfg = small_cfg("generator=llamacpp", "finetune=lora", "model=hf", "model.name=x",
                    f"model.gguf_file={tmp_path / 'none.gguf'}",
                    f"model.checkpoint={adapter}", "train_size=4", "data.limit=1")
    with pytest.raises(ConfigError, match="LoRA cells .* use generator=hf"):
        run_cell(cfg)
    assert not adapter.exists() and not (tmp_path / "out").exists()


def test_needs_a_gguf_file(small_cfg):
    cfg = small_cfg("generator=llamacpp", "model=hf", "model.name=x", "train_size=0")
    with pytest.raises(MissingModelError, match="set model.gguf_file="):
        lc.gguf_weights(cfg)


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as when not installed
    with pytest.raises(ConfigError, match=r"needs llama-cpp-python: pip install -e '\.\[llamacpp"):
        lc._llama_cpp()


def test_threads_follow_slurm_else_idle_cores(monkeypatch):
    import os

    cpus = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")
    monkeypatch.setattr(os, "getloadavg", lambda: (50.0, 0.0, 0.0))
    assert lc.default_threads() == min(cpus, 3)  # the job's own CPUs, whatever the load
    monkeypatch.delenv("SLURM_CPUS_PER_TASK")
    assert lc.default_threads() == 1  # a busy machine: one thread, not a stalled many
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert lc.default_threads() == cpus  # a quiet machine: every CPU
    if cpus > 1:
        monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 0.0, 0.0))
        assert lc.default_threads() == cpus - 1


# --- llama.cpp itself ---------------------------------------------------------------------

needs_gguf = pytest.mark.skipif(not GGUF.exists(),
                                reason="SmolLM2 GGUF file missing: run `make smollm2`")


@pytest.fixture(scope="module")
def llama_cpp():
    return pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed: pip "
                               "install -e '.[llamacpp]' runs these tests")


@pytest.fixture
def backend(llama_cpp, small_cfg, monkeypatch):
    """``backend(**options)``: a LlamaCppBackend on the SmolLM2 GGUF (tokenizer loaded once)."""
    monkeypatch.setattr(lc, "load_tokenizer", _cached_tokenizer)

    def _backend(**options):
        cfg = small_cfg("generator=llamacpp", "model=smollm2-135m", f"model.gguf_file={GGUF}",
                        "train_size=0", *(f"generator.options.{k}={v}"
                                          for k, v in options.items()))
        opts = lc.parse_options(lc.LlamaCppOptions, cfg.generator.options)
        return cfg, lc.LlamaCppBackend(cfg, opts)

    return _backend


@functools.cache
def _cached_tokenizer(weights):
    from pipeline.finetune.weights import load_tokenizer

    return load_tokenizer(weights)


@needs_gguf
@pytest.mark.skipif(not (CHECKPOINT / "config.json").exists(),
                    reason="SmolLM2 checkpoint missing: run `make smollm2`")
def test_same_prompt_tokens_as_hf(backend, small_cfg, monkeypatch):
    """llama.cpp is handed exactly the token ids (and so the text) generator=hf feeds its
    model, chat template included."""
    from pipeline.generators.hf import HFBackend, HFOptions

    cfg, lb = backend()
    hf = HFBackend(small_cfg("generator=hf", "model=smollm2-135m", "train_size=0",
                             f"model.base_model={CHECKPOINT}"), HFOptions())
    seen = []
    real = lb.llm.generate
    monkeypatch.setattr(lb.llm, "generate", lambda tokens, **kw: (seen.append(list(tokens)),
                                                                  real(tokens, **kw))[1])
    lb.generate(PROMPTS, 2)
    expected = [hf._prompt_ids(p) for p in PROMPTS]
    assert seen == expected
    text = lb.tok.decode(seen[0])
    assert text == hf.tok.decode(expected[0])
    assert text.startswith("<|im_start|>system\nYou are a careful news editor.")
    assert text.endswith("<|im_start|>assistant\n")


@needs_gguf
def test_cache_key_holds_engine_file_and_options_not_threads(backend):
    cfg, one = backend(threads=1)
    ident = one.identity()
    assert ident["backend"] == "llamacpp" and ident["gguf_sha256"] == file_sha256(GGUF)
    assert ident["llama_cpp_version"] == one.llama_cpp.__version__
    assert lc.gguf_checksum(cfg) == file_sha256(GGUF)
    _, two = backend(threads=2)
    assert two.identity() == ident  # threads do not change outputs (checked below)
    assert one.generate(PROMPTS, 12) == two.generate(PROMPTS, 12)
    for option, value in [("n_batch", 64), ("n_ubatch", 64), ("n_ctx", 1024),
                          ("chat_template", "false")]:
        assert backend(**{option: value})[1].identity() != ident, option


@needs_gguf
def test_prefix_reuse_gives_the_fresh_results(backend):
    """Generation and scoring after another prompt sharing a prefix equal a fresh start."""
    from pipeline.finetune.weights import answer_ids

    _, lb = backend()
    shared = "Article: The council approved a new bridge over the river on Monday.\n\n"
    first, second = Prompt(None, shared + "Summarize it."), Prompt(None, shared + "Title?")
    lb.generate([first], 8)
    warm = lb.generate([second], 8)
    _, fresh = backend()
    assert warm == fresh.generate([second], 8)
    items = [{"key": str(i), "id": "a", "task": "title", "prompt": p, "target": "A bridge."}
             for i, p in enumerate([first, second])]
    warm_nll = lb.nll(items)[1]["nll"]
    assert lb._scorer.n_tokens == len(sum(answer_ids(lb.tok, second, "A bridge.", True, {}),
                                          []))
    assert warm_nll == pytest.approx(fresh.nll(items[1:])[0]["nll"], rel=1e-4)


@needs_gguf
@pytest.mark.skipif(not (CHECKPOINT / "config.json").exists(),
                    reason="SmolLM2 checkpoint missing: run `make smollm2`")
def test_nll_matches_hf_on_the_same_weights(backend, small_cfg):
    """The checkpoint is the GGUF dequantised, so both engines score the same model; llama.cpp
    rounds activations to 8 bits in its dot products, hence a loose tolerance."""
    from pipeline.generators.hf import HFBackend, HFOptions

    _, lb = backend()
    hf = HFBackend(small_cfg("generator=hf", "model=smollm2-135m", "train_size=0",
                             f"model.base_model={CHECKPOINT}"), HFOptions(dtype="fp32"))
    items = [{"key": str(i), "id": "a", "task": "title", "prompt": p, "target": target}
             for i, (p, target) in enumerate(zip(PROMPTS, ["Council approves a new bridge",
                                                           "A wet week ahead."], strict=True))]
    ours, theirs = lb.nll(items), hf.nll(items)
    assert [r["n"] for r in ours] == [r["n"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert a["nll"] == pytest.approx(b["nll"], rel=0.05)


@pytest.mark.slow
@needs_gguf
def test_cell_end_to_end_and_cached(llama_cpp, small_cfg, caplog):
    """A real cell: predictions with raw outputs, perplexity, counted parameters, the GGUF's
    checksum among the inputs; a second run (force) generates nothing."""
    import logging

    from pipeline.scoring.cell import run_cell

    args = ("generator=llamacpp", "model=smollm2-135m", f"model.gguf_file={GGUF}",
            "train_size=0", "data.limit=2", TOKENS, *NO_BERTSCORE)
    run_dir = run_cell(small_cfg(*args))
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert all(set(p["raw"]) == {"summarization", "title", "tag", "type"} for p in preds)
    assert all(p["title"] for p in preds)
    manifest = read_json(run_dir / "manifest.json")
    info = manifest["generator"]
    assert info["backend"] == "llamacpp" and info["chat_template"]
    assert info["requests"]["reused"] == 0 and info["requests"]["computed"] > 8  # + scoring
    assert info["params_b_counted"] == pytest.approx(0.1345, abs=2e-3)
    assert manifest["inputs"]["base_model"] == file_sha256(GGUF)
    assert math.isfinite(read_json(run_dir / "metrics.json")["perplexity"])
    with caplog.at_level(logging.INFO):
        run_cell(small_cfg(*args, "force=true"))
    again = read_json(run_dir / "manifest.json")["generator"]
    assert again["requests"] == {"computed": 0, "reused": info["requests"]["computed"]}
    assert read_jsonl(run_dir / "predictions.jsonl") == preds


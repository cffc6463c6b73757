"""generator=hf end to end on tiny random Llama / Qwen3 checkpoints (built offline)."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SMALL, run_env
from hf_tiny import CHAT_TEMPLATE, save_lora, save_tiny

from pipeline.core.io import read_json, read_jsonl, write_json
from pipeline.generators import MissingModelError
from pipeline.generators.hf import HFBackend
from pipeline.scoring.cell import run_cell

TOKENS = "generator.options.max_new_tokens={summarization:8,title:4,tag:4,type:2}"
TEXT_REFS = 4 * 2  # data.limit=4 examples x (summary, title), one reference each
NO_BERTSCORE = ("tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpts")
    llama = save_tiny("llama", root / "llama", CHAT_TEMPLATE)
    return {"llama": llama, "qwen3": save_tiny("qwen3", root / "qwen3"),
            "lora": save_lora(llama, root / "lora")}


def _hf(small_cfg, ckpt: Path, *more: str):
    return small_cfg("generator=hf", "model=llama-3.2-1b", f"model.checkpoint={ckpt}",
                     "data.limit=4", TOKENS, *more)


def _check_cell(run_dir: Path) -> dict:
    """Every file written, every task scored, perplexity finite; returns generator info."""
    assert len(read_jsonl(run_dir / "predictions.jsonl")) == 4
    metrics = read_json(run_dir / "metrics.json")
    for col in ("summarization_rougeL", "title_rougeL", "tag_f1", "type_accuracy"):
        assert col in metrics["metrics"]
    assert math.isfinite(metrics["perplexity"]) and metrics["perplexity"] > 1
    assert not (run_dir / "generations.partial.jsonl").exists()
    return read_json(run_dir / "manifest.json")["generator"]


def test_llama_chat_template_end_to_end_then_cached(small_cfg, ckpts):
    run_dir = run_cell(_hf(small_cfg, ckpts["llama"]))
    info = _check_cell(run_dir)
    assert info["backend"] == "hf" and info["chat_template"] and not info["adapter"]
    assert info["requests"] == {"computed": 4 * 4 + TEXT_REFS, "reused": 0}
    assert set(info["parse_failures"]) == {"tag", "type"}
    assert info["perplexity_tokens"] > 0 and info["cached"]
    preds = (run_dir / "predictions.jsonl").read_text()
    ppl = read_json(run_dir / "metrics.json")["perplexity"]

    run_dir = run_cell(_hf(small_cfg, ckpts["llama"], "force=true"))
    info = read_json(run_dir / "manifest.json")["generator"]
    assert info["requests"] == {"computed": 0, "reused": 4 * 4 + TEXT_REFS}
    assert (run_dir / "predictions.jsonl").read_text() == preds
    assert read_json(run_dir / "metrics.json")["perplexity"] == pytest.approx(ppl)


def test_cell_scored_under_the_old_perplexity_rescores_only_perplexity(small_cfg, ckpts,
                                                                       _cache_dir, caplog):
    """A cell finished before the assistant-turn definition (no ``perplexity_definition`` in
    its manifest) is recomputed: outputs come from the generation cache, only the perplexity
    requests run again, and the metric scores are reused."""
    run_dir = run_cell(_hf(small_cfg, ckpts["llama"], *NO_BERTSCORE))
    ppl = read_json(run_dir / "metrics.json")["perplexity"]
    manifest = read_json(run_dir / "manifest.json")
    del manifest["generator"]["perplexity_definition"]
    write_json(run_dir / "manifest.json", manifest)
    metrics = read_json(run_dir / "metrics.json")
    write_json(run_dir / "metrics.json", metrics | {"perplexity": 99.0})
    key = manifest["generator"]["generation_key"]
    cache = _cache_dir / "generations" / f"{key}.jsonl"
    rows = read_jsonl(cache)
    cache.write_text("".join(json.dumps(r) + "\n" for r in rows if "nll" not in r))
    caplog.set_level(logging.INFO)
    run_cell(_hf(small_cfg, ckpts["llama"], *NO_BERTSCORE))
    assert "perplexity definition changed (now assistant-turn)" in caplog.text
    info = read_json(run_dir / "manifest.json")["generator"]
    assert info["requests"] == {"computed": TEXT_REFS, "reused": 4 * 4}
    assert info["perplexity_definition"] == "assistant-turn"
    assert read_json(run_dir / "metrics.json")["perplexity"] == pytest.approx(ppl)
    assert "scoring summarization with rouge: unchanged, reused" in caplog.text


def test_lora_adapter_on_its_base(small_cfg, ckpts):
    info = _check_cell(run_cell(_hf(small_cfg, ckpts["lora"], *NO_BERTSCORE)))
    assert info["adapter"] and info["base_model"] == str(ckpts["llama"])
    assert info["base_sha256"] and info["weights_sha256"] != info["base_sha256"]


def test_interrupted_generation_resumes(small_cfg, ckpts, monkeypatch, tmp_path):
    more = ("generator.options.batch_size=2", "generator.options.cache=false", *NO_BERTSCORE)
    real = HFBackend.generate
    prompts_seen: list[int] = []

    def flaky(self, prompts, max_new_tokens):
        if len(prompts_seen) == 4:  # one call per task: the first batch is done
            raise KeyboardInterrupt
        prompts_seen.append(len(prompts))
        return real(self, prompts, max_new_tokens)

    monkeypatch.setattr(HFBackend, "generate", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_cell(_hf(small_cfg, ckpts["llama"], *more))
    partial = tmp_path / "out/runs/llama-3.2-1b/2000/generations.partial.jsonl"
    assert len(read_jsonl(partial)) == 2 * 4
    prompts_seen.clear()
    monkeypatch.setattr(HFBackend, "generate", lambda s, p, n: prompts_seen.append(len(p))
                        or real(s, p, n))
    info = _check_cell(run_cell(_hf(small_cfg, ckpts["llama"], *more)))
    assert sum(prompts_seen) == 2 * 4  # only the two remaining examples
    assert info["requests"]["reused"] == 2 * 4 and not info["cached"]


@pytest.mark.slow
def test_sampling_is_not_cached(small_cfg, ckpts, _cache_dir):
    before = set((_cache_dir / "generations").glob("*.jsonl"))
    run_dir = run_cell(_hf(small_cfg, ckpts["llama"], "generator.options.do_sample=true",
                           "generator.options.perplexity=false", *NO_BERTSCORE))
    assert not read_json(run_dir / "manifest.json")["generator"]["cached"]
    assert read_json(run_dir / "metrics.json")["perplexity"] is None
    assert set((_cache_dir / "generations").glob("*.jsonl")) == before


@pytest.mark.slow
def test_auto_generates_from_an_existing_checkpoint(small_cfg, ckpts):
    cfg = small_cfg("model=qwen3-0.6b", f"model.checkpoint={ckpts['qwen3']}",
                    "model.predictions=/nonexistent.jsonl", "data.limit=4", "+" + TOKENS,
                    *NO_BERTSCORE)  # '+': generator=auto has no hf options to override
    assert cfg.generator.name == "auto"
    info = _check_cell(run_cell(cfg))
    assert info["backend"] == "hf" and not info["chat_template"]


def test_missing_checkpoint_is_a_clear_error(small_cfg):
    with pytest.raises(MissingModelError, match="model.checkpoint='no/such/model'"):
        run_cell(_hf(small_cfg, Path("no/such/model")))


def test_subprocess_qwen3(ckpts, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.compare", "generator=hf", "model=qwen3-0.6b",
           f"model.checkpoint={ckpts['qwen3']}", "data.limit=4", TOKENS, *SMALL, *NO_BERTSCORE,
           f"output_dir={out}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = _check_cell(out / "runs" / "qwen3-0.6b" / "2000")
    assert info["backend"] == "hf" and not info["chat_template"]
    assert read_json(out / "runs/qwen3-0.6b/2000/metrics.json")["num_parameters"] > 0

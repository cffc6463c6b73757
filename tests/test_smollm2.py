"""What a real small LLM showed (issue 17, section 4), and SmolLM2-135M itself (slow).

Label-list echoes are parse failures, summaries cut at max_new_tokens are trimmed to their
last sentence and counted, raw outputs are kept, parameters are counted and checked against
the config; the slow test runs the real SmolLM2-135M-Instruct (``make smollm2``) offline.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SMALL, run_env
from hf_tiny import CHAT_TEMPLATE, save_tiny

from pipeline.core.io import read_json, read_jsonl
from pipeline.core.paths import default_cache_dir
from pipeline.generators.hf import HFBackend
from pipeline.generators.parsing import parse_label, parse_tags, trim_to_sentence
from pipeline.generators.textgen import Completion

TYPES = ["business", "culture", "health", "politics", "science", "sport"]
TAGS = [f"tag{i}" for i in range(47)]
NO_BERTSCORE = ("tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")


def test_type_answer_listing_the_labels_is_a_failure():
    text = "The allowed types are: business, culture, health, politics, science, sport."
    assert parse_label(text, TYPES) == ("", False)
    assert parse_label("business, culture, health", TYPES) == ("", False)
    assert parse_label("Business.", TYPES) == ("business", True)
    assert parse_label("business rather than culture", TYPES) == ("business", True)


def test_tag_answer_listing_the_labels_is_a_failure():
    assert parse_tags(", ".join(TAGS), TAGS) == ([], 0, False)
    assert parse_tags(", ".join(TAGS[:40]), TAGS) == ([], 0, False)  # 40/47 >= 80%
    assert parse_tags(", ".join(TAGS[:11]), TAGS, max_tags=10) == ([], 0, False)
    ten = sorted(TAGS[:10])
    assert parse_tags(", ".join(TAGS[:10]), TAGS, max_tags=10) == (ten, 0, True)
    assert parse_tags("tag1, tag2, weather", TAGS, max_tags=10) == (["tag1", "tag2"], 1, True)


@pytest.mark.parametrize(("text", "expected"), [
    ("One. Two! Three is cut", "One. Two!"),
    ('He said "yes." Then it', 'He said "yes."'),
    ("Version 2.5 shipped. Then", "Version 2.5 shipped."),
    ("No sentence end at all", "No sentence end at all"),
    ("Complete.", "Complete."),
])
def test_trim_to_last_sentence(text, expected):
    assert trim_to_sentence(text) == expected


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny("llama", tmp_path_factory.mktemp("tiny") / "llama", CHAT_TEMPLATE)


OUTPUTS = {  # what the fake model says per task, and whether it hit max_new_tokens
    "summarization": Completion("First sentence here. Second one is cu", truncated=True),
    "title": Completion("A title cut. mid", truncated=True),
    "tag": Completion("Allowed tags: " + "x, " * 3, truncated=False),
    "type": Completion("science", truncated=False),
}


def _fake_generate(self, prompts, max_new_tokens):
    """Answers by task (recognised from the prompt's instruction, which comes last)."""
    keys = {"Summarize": "summarization", "headline": "title", "tags": "tag", "Classify": "type"}
    out = []
    for p in prompts:
        task = next(t for k, t in keys.items() if k in p.user.split("\n")[-1])
        out.append(OUTPUTS[task])
    return out


@pytest.mark.parametrize("trim", [True, False])
def test_raw_outputs_trimming_and_parameter_count(small_cfg, tiny, monkeypatch, caplog, trim):
    from transformers import AutoModelForCausalLM

    from pipeline.scoring.cell import run_cell

    monkeypatch.setattr(HFBackend, "generate", _fake_generate)
    cfg = small_cfg("generator=hf", "model=llama-3.2-1b", f"model.checkpoint={tiny}",
                    "data.limit=2", "generator.options.perplexity=false",
                    f"generator.options.trim_truncated={str(trim).lower()}", *NO_BERTSCORE)
    with caplog.at_level(logging.WARNING):
        run_dir = run_cell(cfg)
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert [p["summary"] for p in preds] == (
        ["First sentence here."] * 2 if trim else ["First sentence here. Second one is cu"] * 2)
    assert [p["title"] for p in preds] == ["A title cut. mid"] * 2  # titles are not trimmed
    assert [p["type"] for p in preds] == ["science"] * 2
    assert preds[0]["raw"] == {t: c.text for t, c in OUTPUTS.items()}
    info = read_json(run_dir / "manifest.json")["generator"]
    assert info["truncated"] == {"summarization": 2, "title": 2, "tag": 0, "type": 0}
    assert info["parse_failures"] == {"tag": 2, "type": 0}
    assert "tag: 2 of 2 outputs could not be parsed" in caplog.text
    assert "'Allowed tags: x, x, x, '" in caplog.text  # the unparsable output is shown
    counted = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny).parameters())
    assert info["params_b_config"] == 1.24
    assert info["params_b_counted"] == pytest.approx(counted / 1e9, abs=1e-4)
    assert "model.params_b=1.24 but the loaded checkpoint has" in caplog.text


# `make smollm2` puts it in the user's cache dir (read before the tests redirect the cache)
SMOLLM2 = default_cache_dir() / "models" / "SmolLM2-135M-Instruct"


@pytest.mark.slow
@pytest.mark.skipif(not (SMOLLM2 / "config.json").exists(),
                    reason="SmolLM2 checkpoint missing: run `make smollm2`")
def test_smollm2_base_model_end_to_end(tmp_path):
    """The real SmolLM2-135M-Instruct on 4 demo examples, offline, through the CLI."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "pipeline.compare", "model=smollm2-135m", "train_size=0",
           "generator=hf", "data.limit=4", *SMALL, *NO_BERTSCORE, f"output_dir={out}",
           f"model.base_model={SMOLLM2}"]  # the tests' own cache dir has no models/
    proc = subprocess.run(cmd, cwd=ROOT, env=run_env(), capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = out / "runs/smollm2-135m/0"
    metrics = read_json(run_dir / "metrics.json")
    assert math.isfinite(metrics["perplexity"]) and 1 < metrics["perplexity"] < 100
    info = read_json(run_dir / "manifest.json")["generator"]
    assert info["chat_template"] and not info["adapter"]
    assert info["params_b_counted"] == pytest.approx(0.1345, abs=1e-3)
    preds = read_jsonl(run_dir / "predictions.jsonl")
    assert all(len(p["summary"].split()) >= 5 for p in preds)  # real sentences, not noise
    assert all(p["title"] for p in preds)
    assert all(set(p["raw"]) == {"summarization", "title", "tag", "type"} for p in preds)
    assert set(info["parse_failures"]) == {"tag", "type"}


@pytest.mark.slow
@pytest.mark.skipif(not (SMOLLM2.parent / "SmolLM2-135M-Instruct.Q4_1.gguf").exists(),
                    reason="SmolLM2 GGUF file missing: run `make smollm2`")
def test_gguf_file_directly(small_cfg):
    """model.gguf_file: the Q4_1 file is dequantised on load and generates like a checkpoint."""
    from pipeline.scoring.cell import run_cell

    gguf = SMOLLM2.parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    run_dir = run_cell(small_cfg("generator=hf", "model=hf", "model.name=smollm2-gguf",
                                 "model.family=llama", f"model.gguf_file={gguf}",
                                 "train_size=0", "data.limit=1",
                                 "generator.options.max_new_tokens={summarization:24,title:12,"
                                 "tag:12,type:4}", *NO_BERTSCORE))
    info = read_json(run_dir / "manifest.json")["generator"]
    assert info["checkpoint"] == str(gguf) and info["chat_template"]
    assert info["params_b_counted"] == pytest.approx(0.1345, abs=1e-3)
    assert read_jsonl(run_dir / "predictions.jsonl")[0]["title"]
    assert math.isfinite(read_json(run_dir / "metrics.json")["perplexity"])

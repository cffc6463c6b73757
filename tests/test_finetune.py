"""finetune=lora on a tiny random Llama: adapter trained, used, cached, resumed after a kill."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers
from hf_tiny import CHAT_TEMPLATE, save_tiny

from pipeline.core.errors import ConfigError
from pipeline.core.io import read_json, read_jsonl
from pipeline.finetune.lora import answer_text
from pipeline.finetune.prompts import Prompt
from pipeline.finetune.weights import Weights, answer_ids, load_tokenizer
from pipeline.scoring.cell import run_cell

STEPS = 3
TOKENS = "generator.options.max_new_tokens={summarization:6,title:4,tag:4,type:2}"
# q/k/v/o on 2 layers, hidden 32, 2 of 4 heads for k/v (16 wide): r*(in+out) per matrix
LORA_PARAMS = 2 * 8 * ((32 + 32) + (32 + 16) + (32 + 16) + (32 + 32))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny("llama", tmp_path_factory.mktemp("tiny") / "llama", CHAT_TEMPLATE)


@pytest.fixture
def cell(small_cfg, base, tmp_path):
    adapter = tmp_path / "adapter"

    def _cell(*more: str, train_size: int = 4):
        return small_cfg("generator=hf", "finetune=lora", "model=hf", "model.name=tiny",
                         "model.family=llama", f"model.base_model={base}",
                         f"model.checkpoint={adapter}", f"train_size={train_size}",
                         "data.limit=2", TOKENS, f"finetune.max_steps={STEPS}",
                         "finetune.batch_size=4", "finetune.learning_rate=0.05",
                         "finetune.save_steps=1", "finetune.max_length=1024",
                         "tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]",
                         *more)

    return _cell


def test_answers_are_the_references():
    rec = {"summary": ["First ref.", "Second."], "title": "T", "tags": ["a", "b"],
           "type": "sport"}
    assert [answer_text(t, rec) for t in ("summarization", "title", "tag", "type")] == [
        "First ref.", "T", "a, b", "sport"]


def test_training_target_is_the_assistant_turn(base):
    """With a chat template the answer ends with the template's end-of-turn token."""
    tok = load_tokenizer(Weights(base))
    prompt = Prompt("Be brief.", "Classify the article above.")
    head, target = answer_ids(tok, prompt, "science", True, {})
    assert tok.convert_ids_to_tokens(target) == ["science", "</s>"]
    assert tok.decode(head).endswith("<s> assistant :")
    head, target = answer_ids(tok, prompt, "science", False, {})
    assert tok.convert_ids_to_tokens(target) == ["science", "</s>"]
    assert "assistant" not in tok.decode(head)


def test_lora_trains_saves_is_used_and_cached(cell, tmp_path):
    run_dir = run_cell(cell())
    manifest = read_json(run_dir / "manifest.json")
    tuned = manifest["finetune"]
    assert tuned["train_examples"] == 4 and tuned["train_prompts"] == 4 * 4
    assert tuned["steps"] == STEPS and len(tuned["losses"]) == STEPS
    assert all(loss > 0 for loss in tuned["losses"])
    assert tuned["trainable_parameters"] == LORA_PARAMS
    assert tuned["versions"]["peft"] and tuned["versions"]["transformers"]
    assert not tuned["reused"] and tuned["resumed_from"] is None
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_config.json").exists()
    assert read_json(adapter / "finetune.json")["cache_key"] == tuned["cache_key"]
    assert not (tmp_path / ".adapter.trainer").exists()
    gen = manifest["generator"]
    assert gen["adapter"] and gen["checkpoint"] == str(adapter)

    # re-run: the adapter is reused, not retrained
    mtime = (adapter / "adapter_model.safetensors").stat().st_mtime_ns
    again = read_json(run_cell(cell("force=true")) / "manifest.json")["finetune"]
    assert again["reused"] and again["losses"] == tuned["losses"]
    assert (adapter / "adapter_model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_adapter_changes_outputs_and_settings_retrain(cell):
    tuned_dir = run_cell(cell())
    tuned = read_json(tuned_dir / "manifest.json")
    base_dir = run_cell(cell(train_size=0))  # the base model itself
    base = read_json(base_dir / "manifest.json")
    assert base["finetune"]["train_examples"] == 0 and not base["generator"]["adapter"]
    assert (read_json(base_dir / "metrics.json")["perplexity"]
            != pytest.approx(read_json(tuned_dir / "metrics.json")["perplexity"]))
    assert ([p["raw"] for p in read_jsonl(base_dir / "predictions.jsonl")]
            != [p["raw"] for p in read_jsonl(tuned_dir / "predictions.jsonl")])

    changed = read_json(run_cell(cell("finetune.learning_rate=0.01")) / "manifest.json")
    assert not changed["finetune"]["reused"]
    assert changed["finetune"]["cache_key"] != tuned["finetune"]["cache_key"]
    assert changed["generator"]["weights_sha256"] != tuned["generator"]["weights_sha256"]
    assert changed["generation_hash"] != tuned["generation_hash"]


@pytest.mark.slow
def test_interrupted_finetune_resumes(cell, monkeypatch, tmp_path):
    real = transformers.Trainer.training_step
    calls: list[int] = []

    def killed(self, *args, **kwargs):
        if len(calls) == 2:  # two steps done (and checkpointed: save_steps=1)
            raise KeyboardInterrupt
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "training_step", killed)
    with pytest.raises(KeyboardInterrupt):
        run_cell(cell("finetune.learning_rate=0.01"))
    assert (tmp_path / ".adapter.trainer" / "checkpoint-2").is_dir()
    calls.clear()
    with pytest.raises(KeyboardInterrupt):  # other settings: starts afresh, killed again
        run_cell(cell())
    assert calls == [1, 1]
    assert not (tmp_path / "adapter").exists()
    monkeypatch.setattr(transformers.Trainer, "training_step", real)
    tuned = read_json(run_cell(cell()) / "manifest.json")["finetune"]
    assert tuned["resumed_from"].endswith("checkpoint-2")
    assert tuned["steps"] == STEPS and len(tuned["losses"]) == STEPS


def test_max_length_without_room_for_answers(cell):
    with pytest.raises(ConfigError, match="finetune.max_length=16"):
        run_cell(cell("finetune.max_length=16"))


def test_foreign_checkpoint_is_not_overwritten(cell, tmp_path):
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="not written by finetune=lora"):
        run_cell(cell())


def test_finetune_needs_a_base_model(small_cfg, tmp_path):
    cfg = small_cfg("generator=hf", "finetune=lora", "model=hf", "model.name=x",
                    "model.family=llama", f"model.checkpoint={tmp_path / 'a'}", "data.limit=2")
    with pytest.raises(ConfigError, match="model.base_model"):
        run_cell(cfg)

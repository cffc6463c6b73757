"""generator=hf against hand-computed references: perplexity from the model's own logits, the
LoRA adapter's effect, and the generation cache reusing outputs only for identical requests."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, SMALL
from hf_tiny import CHAT_TEMPLATE, chat_by_hand, nll_by_hand, save_lora, save_tiny
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.core.io import read_json, read_jsonl
from pipeline.scoring.cell import run_cell

TOKENS = "generator.options.max_new_tokens={summarization:6,title:3,tag:3,type:2}"
ONLY_ROUGE = ("tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")
N_EXAMPLES = 2
REQUESTS = N_EXAMPLES * 4  # generation requests: examples x tasks
NLL_ITEMS = N_EXAMPLES * 2  # perplexity targets: examples x (summary, title)
ALL = REQUESTS + NLL_ITEMS


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trust_ckpts")
    llama = save_tiny("llama", root / "llama", CHAT_TEMPLATE)
    same = Path(shutil.copytree(llama, root / "llama_copy"))
    scaled = {}
    for name, factor in (("other", 1.5), ("older", 0.5)):  # other weights, same file names
        scaled[name] = Path(shutil.copytree(llama, root / f"llama_{name}"))
        model = AutoModelForCausalLM.from_pretrained(scaled[name])
        with torch.no_grad():
            model.lm_head.weight.mul_(factor)
        model.save_pretrained(scaled[name])
    return {"llama": llama, "same": same, **scaled, "lora": save_lora(llama, root / "lora")}


@pytest.fixture(scope="module")
def run(compose_cfg, tmp_path_factory) -> Callable[..., Path]:
    """``run(ckpt, *overrides)``: one hf cell in a fresh output folder, all sharing one cache
    folder of their own (so other test files' runs are never reused)."""
    cache = tmp_path_factory.mktemp("trust_cache")

    def _run(ckpt: Path, *more: str) -> Path:
        out = tmp_path_factory.mktemp("trust_out")
        if not any(m.startswith("generator.options.dtype=") for m in more):
            more = ("generator.options.dtype=fp32", *more)  # as computed by hand below
        return run_cell(compose_cfg(*SMALL, f"output_dir={out}", "generator=hf",
                                    "model=llama-3.2-1b", f"model.checkpoint={ckpt}",
                                    f"data.limit={N_EXAMPLES}", TOKENS, *ONLY_ROUGE,
                                    f"cache_dir={cache}", *more))

    return _run


@pytest.fixture(scope="module")
def base_run(run, ckpts) -> Path:
    """The base model's cell, run first: every request computed."""
    run_dir = run(ckpts["llama"])
    assert _requests(run_dir) == {"computed": ALL, "reused": 0}
    return run_dir


def _requests(run_dir: Path) -> dict[str, int]:
    return read_json(run_dir / "manifest.json")["generator"]["requests"]


def _perplexity_by_hand(model, tok, cfg, records: list[dict]) -> float:
    """exp(sum NLL / sum N) of each reference (+ EOS) after its chat prompt, from the logits."""
    prompts = cfg.generator.options.prompts
    nll, n = 0.0, 0
    for r in records:
        for task, field in (("summarization", "summary"), ("title", "title")):
            prompt = tok(chat_by_hand(prompts.system,
                                      prompts[task].format(article=r["article"])),
                         add_special_tokens=False)["input_ids"]
            target = tok(r[field], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            nll += nll_by_hand(model, prompt, target)
            n += len(target)
    return math.exp(nll / n)


def _test_records(run_dir: Path) -> list[dict]:
    ids = [p["id"] for p in read_jsonl(run_dir / "predictions.jsonl")]
    test = {r["id"]: r for r in read_jsonl(run_dir.parents[2] / "data/demo/test.jsonl")}
    return [test[i] for i in ids]


def test_perplexity_equals_hand_computed_from_logits(compose_cfg, ckpts, base_run):
    run_dir = base_run
    cfg = compose_cfg("generator=hf")
    tok = AutoTokenizer.from_pretrained(ckpts["llama"])
    model = AutoModelForCausalLM.from_pretrained(ckpts["llama"]).eval()
    want = _perplexity_by_hand(model, tok, cfg, _test_records(run_dir))
    assert read_json(run_dir / "metrics.json")["perplexity"] == pytest.approx(want, rel=1e-5)


def test_lora_adapter_changes_outputs_by_its_own_weights(compose_cfg, run, ckpts, base_run):
    from peft import PeftModel

    base_ppl = read_json(base_run / "metrics.json")["perplexity"]
    lora_dir = run(ckpts["lora"])
    assert _requests(lora_dir) == {"computed": REQUESTS + NLL_ITEMS, "reused": 0}
    lora_ppl = read_json(lora_dir / "metrics.json")["perplexity"]
    tok = AutoTokenizer.from_pretrained(ckpts["llama"])
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(ckpts["llama"]),
                                      ckpts["lora"]).eval()
    want = _perplexity_by_hand(model, tok, compose_cfg("generator=hf"), _test_records(lora_dir))
    assert lora_ppl == pytest.approx(want, rel=1e-5)
    assert abs(lora_ppl - base_ppl) > 1e-3 * base_ppl


@pytest.mark.parametrize(("variant", "more", "reused"), [
    ("same", (), ALL),  # a copy of the same weights elsewhere: everything reused
    ("other", (), 0),  # different weights under the same file names: nothing reused
    pytest.param("llama", ("generator.options.dtype=bf16",), 0, marks=pytest.mark.slow),
    ("llama", ("generator.options.chat_template=false",), 0),
    pytest.param("llama", ("+generator.options.chat_template_kwargs.enable_thinking=false",),
                 0, marks=pytest.mark.slow),
    ("llama", ("generator.options.prompts.title='Headline please: {article}'",), 0),
    pytest.param("llama", ("model.name=renamed", "train_size=500"), ALL,
                 marks=pytest.mark.slow),  # the same requests in another cell
])
def test_generation_cache_reuses_only_identical_requests(run, ckpts, base_run, variant, more,
                                                         reused):
    assert _requests(run(ckpts[variant], *more)) == {"computed": ALL - reused, "reused": reused}


@pytest.mark.slow
def test_prompt_file_same_templates_reused_changed_recomputed(run, ckpts, base_run, tmp_path):
    templates = yaml.safe_load((ROOT / "conf/prompts/default.yaml").read_text(encoding="utf-8"))
    same = tmp_path / "same.yaml"
    same.write_text(yaml.safe_dump(templates), encoding="utf-8")
    assert _requests(run(ckpts["llama"], f"generator.options.prompts={same}")) == {
        "computed": 0, "reused": ALL}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump({**templates, "title": "Headline: {article}"}),
                       encoding="utf-8")
    run_dir = run(ckpts["llama"], f"generator.options.prompts={changed}")
    assert _requests(run_dir)["computed"] == ALL


@pytest.mark.slow
def test_base_model_setting_overrides_the_adapters_own(run, ckpts, base_run, tmp_path):
    lora = Path(shutil.copytree(ckpts["lora"], tmp_path / "lora"))
    config = json.loads((lora / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = str(tmp_path / "nowhere")
    (lora / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    run_dir = run(lora, f"model.base_model={ckpts['llama']}")
    info = read_json(run_dir / "manifest.json")["generator"]
    assert info["adapter"] and info["base_model"] == str(ckpts["llama"])
    lora_run = run(ckpts["lora"])  # the same adapter weights and base: the same outputs
    assert (run_dir / "predictions.jsonl").read_bytes() == \
        (lora_run / "predictions.jsonl").read_bytes()


def test_base_named_only_by_the_adapter_is_checksummed(compose_cfg, ckpts, tmp_path, caplog):
    """A LoRA adapter whose base model comes from its own ``adapter_config.json`` (no
    ``model.base_model``): new weights at that base path recompute the finished cell."""
    base = Path(shutil.copytree(ckpts["llama"], tmp_path / "base"))
    lora = save_lora(base, tmp_path / "lora")

    def cell() -> Path:
        return run_cell(compose_cfg(*SMALL, f"output_dir={tmp_path / 'out'}", "generator=hf",
                                    "model=llama-3.2-1b", f"model.checkpoint={lora}",
                                    f"data.limit={N_EXAMPLES}", TOKENS, *ONLY_ROUGE,
                                    f"cache_dir={tmp_path / 'cache'}",
                                    "generator.options.dtype=fp32"))

    run_dir = cell()
    assert set(read_json(run_dir / "manifest.json")["inputs"]) == {"test", "checkpoint",
                                                                   "base_model"}
    with caplog.at_level("INFO"):
        cell()
    assert "already finished" in caplog.text
    shutil.copy(ckpts["other"] / "model.safetensors", base / "model.safetensors")
    caplog.clear()
    with caplog.at_level("INFO"):
        cell()
    assert "computing (base model changed)" in caplog.text
    assert _requests(run_dir) == {"computed": ALL, "reused": 0}


def test_hub_id_and_revision_resolve_in_the_local_cache(run, ckpts, base_run, tmp_path,
                                                        monkeypatch):
    import huggingface_hub

    hub = tmp_path / "hub"
    repo = hub / "models--test--tiny"
    # the old revision's weights are used by no other test (whose cache results it would add)
    revisions = {"1" * 40: ckpts["llama"], "2" * 40: ckpts["older"]}
    for commit, source in revisions.items():
        shutil.copytree(source, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("1" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    main = read_json(run("test/tiny") / "manifest.json")["generator"]
    assert main["checkpoint"].endswith("1" * 40) and main["requests"]["reused"] == ALL
    old = read_json(run("test/tiny", f"model.revision={'2' * 40}") / "manifest.json")
    assert old["generator"]["checkpoint"].endswith("2" * 40)
    assert old["generator"]["weights_sha256"] != main["weights_sha256"]

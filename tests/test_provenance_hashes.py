"""Every config key that changes a result changes the hashes that decide reuse; others do not.

The overrides are literal: a key dropped from a hash (e.g. ``seed``) makes its case fail.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT
from omegaconf import OmegaConf

from pipeline.core import provenance
from pipeline.core.provenance import config_hash, generation_hash, resolved, score_hashes

HF = ("generator=hf", "model=llama-3.2-1b")

# Each changes the predictions, so every hash must change.
GENERATION_OVERRIDES = [
    "seed=1", "train_size=500",
    "data=summeval", "data.seed=14", "data.n_train=100", "data.n_test=50", "data.limit=5",
    "data.tasks=[summarization,title]", "+data.options.test=/data/test.jsonl",
    "model=qwen3-0.6b", "model.name=other", "model.checkpoint=/ckpt/other",
    "model.predictions=/preds/other.jsonl", "model.base_model=/ckpt/base",
    "model.revision=abc123", "model.params_b=2.0",
    "generator=openai", "generator.options.temperature=0.5", "generator.options.do_sample=true",
    "generator.options.top_p=0.9", "generator.options.max_new_tokens.title=7",
    "generator.options.prompts.title='Headline: {article}'",
    "generator.options.prompts.system=Be brief.", "generator.options.chat_template=false",
    "+generator.options.chat_template_kwargs.enable_thinking=false",
    "generator.options.dtype=bf16",
]
# None of these changes a result.
NEUTRAL_OVERRIDES = ["output_dir=/elsewhere", "force=true", "cache_dir=/tmp/c",
                     "aggregate.n_boot=7", "report.n_errors=3"]


@pytest.fixture(scope="module")
def base(compose_cfg):
    return compose_cfg(*HF)


@pytest.mark.parametrize("override", GENERATION_OVERRIDES)
def test_generation_keys_change_every_hash(compose_cfg, base, override):
    cfg = compose_cfg(*HF, override)
    assert generation_hash(cfg) != generation_hash(base)
    assert config_hash(cfg) != config_hash(base)
    assert set(score_hashes(cfg).values()).isdisjoint(score_hashes(base).values())


@pytest.mark.parametrize("override", NEUTRAL_OVERRIDES)
def test_other_keys_change_no_hash(compose_cfg, base, override):
    cfg = compose_cfg(*HF, override)
    assert (config_hash(cfg), generation_hash(cfg), score_hashes(cfg)) == (
        config_hash(base), generation_hash(base), score_hashes(base))


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return 3
    return f"{value}_other"


def _metric_options(cfg) -> list[tuple[str, str]]:
    return [(metric, key) for metric, opts in cfg.metrics.items() for key in opts]


def test_there_are_metric_options_to_check(base):
    assert {("rouge", "use_stemmer"), ("rouge", "ref_aggregation"),
            ("bertscore", "model"), ("bertscore", "idf")} <= set(_metric_options(base))


# How a metric uses its cache never changes its numbers (literal: a new entry is a decision).
NON_RESULT_OPTIONS = {("bertscore", "cache")}


def test_cache_mode_options_change_no_hash(base):
    for metric, key in NON_RESULT_OPTIONS:
        cfg = base.copy()
        OmegaConf.update(cfg, f"metrics.{metric}.{key}", "off")
        assert (config_hash(cfg), score_hashes(cfg)) == (config_hash(base), score_hashes(base))


def test_every_metric_option_changes_only_its_metrics_hashes(base):
    before = score_hashes(base)
    for metric, key in set(_metric_options(base)) - NON_RESULT_OPTIONS:
        cfg = base.copy()
        OmegaConf.update(cfg, f"metrics.{metric}.{key}", _changed(cfg.metrics[metric][key]))
        after = score_hashes(cfg)
        changed = {k for k in before if after[k] != before[k]}
        assert changed == {k for k in before if k.endswith("/" + metric)}, (metric, key)
        assert config_hash(cfg) != config_hash(base), (metric, key)
        assert generation_hash(cfg) == generation_hash(base), (metric, key)


def test_task_metric_list_changes_config_hash_not_predictions(compose_cfg, base):
    cfg = compose_cfg(*HF, "tasks.title.metrics=[rouge]")
    assert config_hash(cfg) != config_hash(base)
    assert generation_hash(cfg) == generation_hash(base)
    assert set(score_hashes(cfg)) == set(score_hashes(base)) - {"title/bertscore"}


def test_resolved_config_has_interpolations_filled_in(base):
    data = resolved(base)
    assert data["model"]["checkpoint"] == "checkpoints/llama-3.2-1b-2000"
    assert data["model"]["predictions"] == "predictions/llama-3.2-1b/2000.jsonl"


def test_package_versions(monkeypatch):
    monkeypatch.setattr(provenance, "PACKAGES", ("numpy", "no-such-package-xyz"))
    assert provenance.package_versions() == {"numpy": np.__version__,
                                             "no-such-package-xyz": None}


def test_git_commit_clean_dirty_and_outside_a_repository(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    (repo / "f.txt").write_text("a", encoding="utf-8")
    for cmd in (["init", "-q"], ["add", "f.txt"], ["commit", "-q", "-m", "x"]):
        subprocess.run([*git, *cmd], cwd=repo, check=True, capture_output=True)
    head = (repo / ".git" / (repo / ".git/HEAD").read_text().split()[1]).read_text().strip()
    assert provenance.git_commit(repo) == head and len(head) == 40
    (repo / "untracked.txt").write_text("u", encoding="utf-8")
    assert provenance.git_commit(repo) == head  # untracked files do not count
    (repo / "f.txt").write_text("b", encoding="utf-8")
    assert provenance.git_commit(repo) == head + "+dirty"
    outside = tmp_path / "plain"
    outside.mkdir()
    assert provenance.git_commit(outside) is None


def test_digest_is_sha256_of_canonical_json():
    # Canonical form by hand: sorted keys, no spaces, non-JSON values as str().
    obj = {"b": [1, 2.5, None], "a": {"y": True, "x": Path("/p")}}
    blob = '{"a":{"x":"/p","y":true},"b":[1,2.5,null]}'
    assert provenance._digest(obj) == hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_finetune_changes_hashes_only_when_set(compose_cfg, base):
    tuned = compose_cfg(*HF, "finetune=lora")
    assert generation_hash(tuned) != generation_hash(base)
    assert config_hash(tuned) != config_hash(base)



def test_thread_count_changes_no_hash(compose_cfg, base):
    """``generator.options.threads`` changes speed, not outputs: no hash moves."""
    threads = compose_cfg(*HF, "generator.options.threads=1")
    assert base.generator.options.threads is None
    assert generation_hash(threads) == generation_hash(base)
    assert config_hash(threads) == config_hash(base)
    assert score_hashes(threads) == score_hashes(base)


def _by_hand(data: dict, keys: tuple[str, ...]) -> str:
    picked = {k: data[k] for k in keys}
    if "metrics" in picked:
        picked["metrics"]["bertscore"].pop("cache")  # see NON_RESULT_OPTIONS
    picked["generator"]["options"].pop("threads", None)  # NON_RESULT_GENERATOR_OPTIONS
    blob = json.dumps(picked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_hashes_cover_exactly_the_documented_keys(base):
    """Without finetune: config hash = these 7 keys, generation hash = these 5 (by hand)."""
    keys = ("model", "data", "generator", "tasks", "metrics", "train_size", "seed")
    assert config_hash(base) == _by_hand(resolved(base), keys)
    keys = ("model", "data", "generator", "train_size", "seed")
    assert generation_hash(base) == _by_hand(resolved(base), keys)


def test_git_commit_of_this_checkout_by_default():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=False).stdout.strip()
    got = provenance.git_commit()
    assert (got is None and not head) or got.removesuffix("+dirty") == head

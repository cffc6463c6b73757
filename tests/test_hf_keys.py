"""The hf generator's perplexity pieces one at a time: ``HFBackend.nll`` on the tiny model
against log-probabilities computed by hand, ``perplexity`` over a scripted backend with
hand-chosen NLLs (which targets, which prompts, exp(sum NLL / sum N)), and what the backend
identity (part of every cache key) holds."""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from hf_tiny import CHAT_TEMPLATE, chat_by_hand, nll_by_hand, save_tiny
from omegaconf import OmegaConf
from tokenizers import processors
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipeline.core.errors import ConfigError
from pipeline.data.dataset import Dataset
from pipeline.finetune.prompts import Prompt
from pipeline.generators.hf import HFBackend, HFOptions, perplexity
from pipeline.generators.textgen import Completion, TextSession, parse_options

SYSTEM = "Be brief."
TEMPLATES = {"system": SYSTEM, "summarization": "Sum: {article}", "title": "Title: {article}",
             "tag": "Tags ({labels}): {article}", "type": "Type: {article}"}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny("llama", tmp_path_factory.mktemp("keys") / "llama", CHAT_TEMPLATE)


def _backend(compose_cfg, ckpt: Path, dtype: str) -> HFBackend:
    cfg = compose_cfg("generator=hf", "model=llama-3.2-1b", f"model.checkpoint={ckpt}",
                      f"generator.options.dtype={dtype}")
    return HFBackend(cfg, parse_options(HFOptions, cfg.generator.options))


@pytest.fixture(scope="module")
def fp32(compose_cfg, ckpt: Path) -> HFBackend:
    return _backend(compose_cfg, ckpt, "fp32")


def _item(key: str, system: str | None, user: str, target: str) -> dict:
    return {"key": key, "id": f"id-{key}", "task": "summarization",
            "prompt": Prompt(system, user), "target": target}


def _by_hand(model, tok, item: dict) -> float:
    prompt = tok(chat_by_hand(item["prompt"].system, item["prompt"].user),
                 add_special_tokens=False)["input_ids"]
    target = tok(item["target"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return nll_by_hand(model, prompt, target)


def test_nll_of_each_target_in_a_padded_batch_equals_hand_computed(fp32: HFBackend,
                                                                    ckpt: Path) -> None:
    """Prompts and targets of different lengths in one batch: each row is the NLL of its own
    assistant turn (with CHAT_TEMPLATE: its words and the end marker </s>; prompt masked,
    pads ignored) and N counts exactly those."""
    long_prompt = "Sum: Local residents said the region has grown"
    batch = [_item("k1", SYSTEM, long_prompt, "Interest has grown"),
             _item("k2", None, "Title: the area",
                   "Local newspapers have published more about the region this year"),
             _item("k3", SYSTEM, long_prompt, "A")]
    tok = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForCausalLM.from_pretrained(ckpt).eval()
    want = [_by_hand(model, tok, it) for it in batch]
    assert fp32.nll(batch) == [
        {"key": key, "id": f"id-{key}", "task": "summarization",
         "nll": pytest.approx(nll, rel=1e-5), "n": n}
        for key, nll, n in zip(("k1", "k2", "k3"), want, (4, 11, 2), strict=True)]


def _grown(ckpt: Path) -> tuple[dict, Any, Any, list[int]]:
    """The "Interest has grown" item, the tiny checkpoint's tokenizer and model, and the ids
    of the item's chat prompt."""
    item = _item("k", SYSTEM, "Sum: Local residents said the region has grown",
                 "Interest has grown")
    tok = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForCausalLM.from_pretrained(ckpt).eval()
    prompt = tok(chat_by_hand(SYSTEM, item["prompt"].user), add_special_tokens=False)[
        "input_ids"]
    return item, tok, model, prompt


def test_target_without_bos_and_with_eos_only_when_the_tokenizer_has_one(fp32: HFBackend,
                                                                         ckpt: Path) -> None:
    """A tokenizer that adds BOS by default (as Llama's): the target still starts with its
    first word; a tokenizer without an end token: the target is its words only."""
    item, tok, model, prompt = _grown(ckpt)
    words = [tok.convert_tokens_to_ids(w) for w in ("Interest", "has", "grown")]
    bos = copy.copy(fp32)
    bos.tok = copy.deepcopy(fp32.tok)
    bos.tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
    assert bos.tok("Interest")["input_ids"] == [tok.bos_token_id, words[0]]
    assert bos.nll([item])[0] | {"nll": 0} == {"key": "k", "id": "id-k",
                                              "task": "summarization", "nll": 0, "n": 4}
    assert bos.nll([item])[0]["nll"] == pytest.approx(
        nll_by_hand(model, prompt, words + [tok.eos_token_id]), rel=1e-5)
    no_eos = copy.copy(fp32)
    no_eos.tok = copy.deepcopy(fp32.tok)
    no_eos.tok.eos_token = None
    no_eos.chat = False  # with a chat template the turn's end marker is the template's
    plain = tok(f"{SYSTEM}\n\n{item['prompt'].user}\n\n")["input_ids"]
    (row,) = no_eos.nll([item])
    assert row["n"] == 3 and row["nll"] == pytest.approx(nll_by_hand(model, plain, words),
                                                         rel=1e-5)


# CHAT_TEMPLATE, but the assistant's turn ends with " ." before its end marker: the turn
# LoRA trains on is then not the answer + EOS (the perplexity definition before issue 25)
TURN_TEMPLATE = ("{% for m in messages %}<s> {{ m['role'] }} : {{ m['content'] }}"
                 "{% if m['role'] == 'assistant' %} .{% endif %} </s> {% endfor %}"
                 "{% if add_generation_prompt %}<s> assistant : {% endif %}")


def test_perplexity_target_is_the_assistant_turn_lora_trains_on(fp32: HFBackend,
                                                                ckpt: Path) -> None:
    """The NLL is over the chat template's assistant turn (its end marker included), the
    exact tokens ``finetune=lora`` computes its loss on."""
    from pipeline.finetune.lora import _encode

    turn = copy.copy(fp32)
    turn.tok = copy.deepcopy(fp32.tok)
    turn.tok.chat_template = TURN_TEMPLATE
    item, tok, model, prompt = _grown(ckpt)
    target = tok("Interest has grown . </s> ", add_special_tokens=False)["input_ids"]
    assert len(target) == 5 and target[-1] == tok.eos_token_id
    (row,) = turn.nll([item])
    assert row["n"] == 5
    assert row["nll"] == pytest.approx(nll_by_hand(model, prompt, target), rel=1e-5)
    trained = _encode(turn.tok, item["prompt"], item["target"], True, {}, 10_000)
    assert [t for t in trained["labels"] if t != -100] == target
    assert trained["input_ids"] == prompt + target


def test_one_token_plain_prompt_scores_every_target_token(fp32: HFBackend,
                                                          ckpt: Path) -> None:
    """Without the chat template a one-word prompt is one token: the target's first token
    (predicted at position 0) is still counted."""
    plain = copy.copy(fp32)
    plain.chat = False
    tok = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForCausalLM.from_pretrained(ckpt).eval()
    ids = [tok.convert_tokens_to_ids(w) for w in ("Interest", "has", "grown")]
    (row,) = plain.nll([_item("k", None, "Interest", "has grown")])
    assert row["n"] == 3
    assert row["nll"] == pytest.approx(nll_by_hand(model, ids[:1], ids[1:] + [tok.eos_token_id]),
                                       rel=1e-5)


def test_nll_in_bf16_is_summed_in_float32(compose_cfg, ckpt: Path) -> None:
    """bf16 weights: the cross-entropy of the bf16 logits is summed at float precision (a bf16
    sum is ~3e-3 off)."""
    item = _item("k", SYSTEM, "Sum: the cat sat on the mat today",
                 "Local newspapers have published more about the region this year")
    tok = AutoTokenizer.from_pretrained(ckpt)
    model = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.bfloat16).eval()
    (row,) = _backend(compose_cfg, ckpt, "bf16").nll([item])
    assert row["nll"] == pytest.approx(_by_hand(model, tok, item), rel=1e-5)


def test_nll_builds_ids_labels_and_mask_on_the_backend_device(fp32: HFBackend,
                                                              monkeypatch) -> None:
    """On a GPU the model's inputs must be built on its device; on this CPU-only machine the
    request is what can be checked: every tensor ``nll`` builds asks for ``backend.device``."""
    asked: list[object] = []
    real = torch.tensor

    def spy(data, *args, **kwargs):
        if sys._getframe(1).f_globals["__name__"] == "pipeline.generators.hf":
            asked.append(kwargs.get("device"))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(torch, "tensor", spy)
    fp32.nll([_item("k", None, "Interest", "has grown")])
    assert asked == ["cpu"] * 3 and fp32.device == "cpu"


def test_identity_holds_weights_dtype_template_and_device_kind(fp32: HFBackend) -> None:
    ident = fp32.identity()
    assert re.fullmatch("[0-9a-f]{24}", ident["weights_sha256"])
    assert ident == {"backend": "hf", "weights_sha256": ident["weights_sha256"],
                     "base_sha256": None, "dtype": "float32", "chat_template": True,
                     "device": "cpu", "chat_template_kwargs": {}}
    on_gpu = []
    for device in ("cuda", "cuda:0", "cuda:1"):  # which GPU does not change outputs
        other = copy.copy(fp32)
        other.device = device
        on_gpu.append(other.identity())
    assert on_gpu[0] == on_gpu[1] == on_gpu[2] == ident | {"device": "cuda"}
    thinking = copy.copy(fp32)
    thinking.opts = dataclasses.replace(fp32.opts, chat_template_kwargs={"think": False})
    assert thinking.identity() == ident | {"chat_template_kwargs": {"think": False}}


class ScriptedNLL:
    """A backend whose (NLL, N) of a target comes from a table; records what it was asked."""

    def __init__(self, name: str, table: dict[str, tuple[float, int]]) -> None:
        self.name, self.table = name, table
        self.batches: list[list[tuple]] = []

    def identity(self) -> dict[str, str]:
        return {"backend": "scripted", "name": self.name}

    def nll(self, batch: list[dict]) -> list[dict]:
        self.batches.append([(it["id"], it["task"], it["prompt"], it["target"]) for it in batch])
        return [{"key": it["key"], "id": it["id"], "task": it["task"],
                 "nll": self.table[it["target"]][0], "n": self.table[it["target"]][1]}
                for it in batch]


RECORDS = [
    {"id": "a", "article": "first", "summary": ["cat sat", "a cat sat down"], "title": "Cats",
     "tags": ["pets"], "type": "news"},
    {"id": "b", "article": "second", "summary": "cat sat", "title": "Dogs", "tags": [],
     "type": "news"},
]
TABLE = {"cat sat": (1.0, 3), "a cat sat down": (3.0, 5), "Cats": (2.0, 2), "Dogs": (0.5, 2)}


def _session(tmp_path: Path, backend, tasks: list[str]) -> TextSession:
    cfg = OmegaConf.create({"seed": 0, "output_dir": str(tmp_path / "out"), "train_size": 0,
                            "model": {"name": "m"}, "cache_dir": str(tmp_path / "cache")})
    dataset = Dataset(name="d", train=[], test=RECORDS, tasks=tasks)
    return TextSession(cfg, dataset, backend, HFOptions(prompts=TEMPLATES, batch_size=2))


def test_perplexity_over_every_reference_of_the_text_tasks(tmp_path: Path) -> None:
    backend = ScriptedNLL("a", TABLE)
    session = _session(tmp_path, backend, ["tag", "summarization", "type", "title"])
    # (1 + 3 + 2 + 1 + 0.5) / (3 + 5 + 2 + 3 + 2) = 7.5 / 15
    assert perplexity(session, backend, RECORDS) == (pytest.approx(math.exp(0.5)), 15)
    first, second = Prompt(SYSTEM, "Sum: first"), Prompt(SYSTEM, "Sum: second")
    assert backend.batches == [  # batches of generator.options.batch_size targets
        [("a", "summarization", first, "cat sat"),
         ("a", "summarization", first, "a cat sat down")],
        [("a", "title", Prompt(SYSTEM, "Title: first"), "Cats"),
         ("b", "summarization", second, "cat sat")],  # same target, other prompt: asked
        [("b", "title", Prompt(SYSTEM, "Title: second"), "Dogs")]]
    assert session.counts == {"computed": 5, "reused": 0}


def test_perplexity_without_text_tasks_is_none(tmp_path: Path) -> None:
    backend = ScriptedNLL("a", TABLE)
    assert perplexity(_session(tmp_path, backend, ["tag", "type"]), backend, RECORDS) == (
        None, 0)
    assert backend.batches == []


def test_resumed_nll_rows_are_reused_only_for_the_same_backend(tmp_path: Path) -> None:
    """An interrupted cell (partial file left) resumed with the same weights reuses its NLL
    rows; resumed with other weights it computes them all again."""
    tasks = ["summarization", "title"]
    first = ScriptedNLL("a", TABLE)
    perplexity(_session(tmp_path, first, tasks), first, RECORDS)
    same = _session(tmp_path, again := ScriptedNLL("a", TABLE), tasks)
    perplexity(same, again, RECORDS)
    assert same.counts == {"computed": 0, "reused": 5} and again.batches == []
    other_weights = {t: (v + 1.0, n) for t, (v, n) in TABLE.items()}
    other = _session(tmp_path, backend := ScriptedNLL("b", other_weights), tasks)
    assert perplexity(other, backend, RECORDS) == (pytest.approx(math.exp(12.5 / 15)), 15)
    assert other.counts == {"computed": 5, "reused": 0}


def test_resumed_nll_rows_are_recomputed_when_the_article_changed(tmp_path: Path) -> None:
    """Same references, but the second record's article (so its prompts) changed: only that
    record's targets are computed again."""
    tasks = ["summarization", "title"]
    perplexity(_session(tmp_path, first := ScriptedNLL("a", TABLE), tasks), first, RECORDS)
    edited = [RECORDS[0], {**RECORDS[1], "article": "second, edited"}]
    session = _session(tmp_path, again := ScriptedNLL("a", TABLE), tasks)
    perplexity(session, again, edited)
    assert session.counts == {"computed": 2, "reused": 3}
    assert [(i, task, p.user, target) for batch in again.batches
            for i, task, p, target in batch] == [
        ("b", "summarization", "Sum: second, edited", "cat sat"),
        ("b", "title", "Title: second, edited", "Dogs")]


# ------------------------------------------------------- the generation session (textgen)


class ScriptedGen:
    """A backend answering each prompt's user text from a table; records each call."""

    def __init__(self, name: str, answers: dict[str, str | Completion]) -> None:
        self.name, self.answers = name, answers
        self.calls: list[tuple[list[str], int]] = []

    def identity(self) -> dict[str, str]:
        return {"backend": "scripted", "name": self.name}

    def generate(self, prompts: list[Prompt], max_new_tokens: int) -> list[str | Completion]:
        self.calls.append(([p.user for p in prompts], max_new_tokens))
        return [self.answers[p.user] for p in prompts]


TRAIN = [{"id": "t1", "tags": ["pets", "news"], "type": "news"},
         {"id": "t2", "tags": ["sport"], "type": "opinion"}]
TOKENS = {"summarization": 7, "title": 3, "tag": 5, "type": 2}
LABELS = "Tags (news, pets, sport): "
ANSWERS: dict[str, str | Completion] = {
    "Sum: first": Completion("Summary: The cat sat. It was", truncated=True),
    "Sum: second": "Dogs ran.\nThey barked.",
    "Title: first": 'Title: "Cats"\nmore text',
    "Title: second": Completion("Dogs at", truncated=True),
    LABELS + "first": "pets, Unknown, news",
    LABELS + "second": "nothing useful",
    "Type (news, opinion): first": "It is opinion.",
    "Type (news, opinion): second": "???",
}


def _gen_session(out: Path, backend, *, seed: int = 0, cache_dir: Path | None = None,
                 train: list[dict] = TRAIN, **options) -> TextSession:
    cfg = OmegaConf.create({"seed": seed, "output_dir": str(out), "train_size": 0,
                            "model": {"name": "m"}, "cache_dir": str(cache_dir or out / "cache")})
    dataset = Dataset(name="d", train=train, test=RECORDS,
                      tasks=["tag", "summarization", "type", "title"])
    templates = TEMPLATES | {"type": "Type ({labels}): {article}"}
    opts = HFOptions(**({"prompts": templates, "batch_size": 1,
                         "max_new_tokens": TOKENS} | options))
    return TextSession(cfg, dataset, backend, opts)


def test_session_parses_outputs_into_predictions(tmp_path: Path, caplog) -> None:
    backend = ScriptedGen("a", ANSWERS)
    session = _gen_session(tmp_path, backend)
    caplog.set_level("INFO", logger="pipeline.generators.textgen")
    caplog.set_level("INFO", logger="pipeline.progress")
    preds, info = session.generate(RECORDS)
    assert preds == [
        {"id": "a", "summary": "The cat sat.", "title": "Cats", "tags": ["news", "pets"],
         "type": "opinion", "raw": {"tag": "pets, Unknown, news",
                                    "summarization": "Summary: The cat sat. It was",
                                    "type": "It is opinion.",
                                    "title": 'Title: "Cats"\nmore text'}},
        {"id": "b", "summary": "Dogs ran.\nThey barked.", "title": "Dogs at", "tags": [],
         "type": "???", "raw": {"tag": "nothing useful", "type": "???", "title": "Dogs at",
                                "summarization": "Dogs ran.\nThey barked."}}]
    assert info == {"generation_key": session.key, "cached": True,
                    "parse_failures": {"tag": 1, "type": 1}, "unknown_tags_dropped": 2,
                    "truncated": {"tag": 0, "summarization": 1, "type": 0, "title": 1}}
    assert backend.calls == [  # one example per batch, one call per task, its token limit
        ([LABELS + "first"], 5), (["Sum: first"], 7), (["Type (news, opinion): first"], 2),
        (["Title: first"], 3), ([LABELS + "second"], 5), (["Sum: second"], 7),
        (["Type (news, opinion): second"], 2), (["Title: second"], 3)]
    lines = [r.getMessage() for r in caplog.records]
    assert re.fullmatch(r"generate: 8/8 requests \(100%\), \d+s elapsed", lines.pop(0))
    assert lines == [
        "tag: 1 of 2 outputs could not be parsed into a set (scored as empty/unknown), e.g. "
        "'nothing useful'",
        "type: 1 of 2 outputs could not be parsed into a label (scored as empty/unknown), "
        "e.g. '???'"]
    assert session.partial.path.is_file()
    assert session.finish() == {"computed": 8, "reused": 0}
    assert not session.partial.path.exists()


def test_untrimmed_summaries_when_trimming_is_off(tmp_path: Path) -> None:
    session = _gen_session(tmp_path, ScriptedGen("a", ANSWERS), trim_truncated=False)
    assert session.generate(RECORDS)[0][0]["summary"] == "The cat sat. It was"


@pytest.mark.parametrize(("change", "computed"), [
    ({}, 0),
    ({"seed": 1}, 8),
    ({"name": "b"}, 8),  # other weights / server
    ({"max_new_tokens": TOKENS | {"title": 4}}, 8),
    ({"temperature": 0.5, "top_p": 0.5}, 0),  # not used by greedy decoding
    ({"prompts": TEMPLATES | {"type": "Kind ({labels}): {article}"}}, 8),
])
def test_generation_key_reuses_only_identical_settings(tmp_path: Path, change: dict,
                                                       computed: int) -> None:
    cache = tmp_path / "cache"
    _gen_session(tmp_path / "one", ScriptedGen("a", ANSWERS), cache_dir=cache).generate(RECORDS)
    change = dict(change)
    name, seed = change.pop("name", "a"), change.pop("seed", 0)
    answers = ANSWERS | {k.replace("Type", "Kind"): v for k, v in ANSWERS.items()}
    session = _gen_session(tmp_path / "two", ScriptedGen(name, answers), seed=seed,
                           cache_dir=cache, **change)
    session.generate(RECORDS)
    assert session.finish() == {"computed": computed, "reused": 8 - computed}


@pytest.mark.parametrize("options", [{"do_sample": True}, {"cache": False}])
def test_sampled_or_uncached_outputs_are_never_stored(tmp_path: Path, options: dict) -> None:
    for run in ("one", "two"):
        session = _gen_session(tmp_path / run, ScriptedGen("a", ANSWERS),
                               cache_dir=tmp_path / "cache", **options)
        assert session.generate(RECORDS)[1]["cached"] is False
        assert session.finish() == {"computed": 8, "reused": 0}
    assert not (tmp_path / "cache" / "generations").exists()


class FailingGen(ScriptedGen):
    """Fails (an interruption) once the first example's four requests are answered."""

    def generate(self, prompts: list[Prompt], max_new_tokens: int) -> list[str | Completion]:
        if len(self.calls) == 4:
            raise KeyboardInterrupt
        return super().generate(prompts, max_new_tokens)


@pytest.mark.parametrize(("name", "computed"), [("a", 4), ("b", 8)])
def test_interrupted_session_resumes_only_with_the_same_backend(tmp_path: Path, name: str,
                                                                computed: int) -> None:
    with pytest.raises(KeyboardInterrupt):
        _gen_session(tmp_path, FailingGen("a", ANSWERS), cache=False).generate(RECORDS)
    backend = ScriptedGen(name, ANSWERS)
    session = _gen_session(tmp_path, backend, cache=False)
    assert session.generate(RECORDS)[0][1]["title"] == "Dogs at"
    assert session.finish() == {"computed": computed, "reused": 8 - computed}
    assert len(backend.calls) == computed


def test_bad_session_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="^generator.options.batch_size must be at least 1$"):
        _gen_session(tmp_path, ScriptedGen("a", ANSWERS), batch_size=0)
    with pytest.raises(ConfigError, match=r"max_new_tokens has no value for task\(s\) tag, "
                                          r"type$"):
        _gen_session(tmp_path, ScriptedGen("a", ANSWERS),
                     max_new_tokens={"summarization": 7, "title": 3})
    with pytest.raises(ConfigError, match=r"^generator.options: Key 'batch_sise' not in "
                                          r"'HFOptions'$"):
        parse_options(HFOptions, {"batch_sise": 2})
    assert parse_options(HFOptions, {"batch_size": 3, "max_new_tokens": {"title": 1}}) == \
        HFOptions(batch_size=3, max_new_tokens={"summarization": 112, "title": 1, "tag": 24,
                                                "type": 12})  # merged with the defaults


def test_unwritable_cache_only_warns(tmp_path: Path, caplog) -> None:
    session = _gen_session(tmp_path, ScriptedGen("a", ANSWERS), cache_dir=tmp_path / "cache")
    store = tmp_path / "cache" / "generations" / f"{session.key}.jsonl"
    store.parent.mkdir(parents=True)
    store.symlink_to(tmp_path / "nowhere" / "store.jsonl")  # cannot be created
    assert session.generate(RECORDS)[0][0]["title"] == "Cats"
    assert session.finish() == {"computed": 8, "reused": 0}
    assert sum("outputs are not cached" in r.getMessage() for r in caplog.records) == 1


def test_more_tags_than_any_training_example_twice_over_is_a_failure(tmp_path: Path) -> None:
    """One tag per training example: an answer with three known tags (> 2 x 1) is an echo
    of the label list, scored as no tags."""
    train = [{"id": f"t{k}", "tags": [tag], "type": kind}
             for k, (tag, kind) in enumerate([("news", "news"), ("pets", "opinion"),
                                              ("sport", "news")])]
    answers = ANSWERS | {LABELS + "first": "sport, news, pets", LABELS + "second": "pets, news"}
    session = _gen_session(tmp_path, ScriptedGen("a", answers), train=train)
    preds, info = session.generate(RECORDS)
    assert [p["tags"] for p in preds] == [[], ["news", "pets"]]
    assert info["parse_failures"]["tag"] == 1


class LengthGen(ScriptedGen):
    """Answers every prompt with its token limit, so each task's output differs."""

    def generate(self, prompts: list[Prompt], max_new_tokens: int) -> list[str | Completion]:
        self.calls.append(([p.user for p in prompts], max_new_tokens))
        return [f"{max_new_tokens} words." for _ in prompts]


def test_tasks_with_identical_prompts_keep_their_own_outputs(tmp_path: Path) -> None:
    same = TEMPLATES | {"title": "{article}", "summarization": "{article}",
                        "type": "Type ({labels}): {article}"}
    for run in ("first", "cached"):
        session = _gen_session(tmp_path / run, LengthGen("a", {}), prompts=same,
                               cache_dir=tmp_path / "cache")
        preds, _ = session.generate(RECORDS)
        assert [(p["summary"], p["title"]) for p in preds] == [("7 words.", "3 words.")] * 2


def test_parse_failure_warning_shows_the_first_outputs_cut_short(tmp_path: Path,
                                                                 caplog) -> None:
    answers = ANSWERS | {LABELS + "first": "x" * 250}
    _gen_session(tmp_path, ScriptedGen("a", answers)).generate(RECORDS)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("tag:")] == [
        "tag: 2 of 2 outputs could not be parsed into a set (scored as empty/unknown), e.g. "
        f"'{'x' * 200}'; 'nothing useful'"]


@pytest.mark.parametrize(("temperature", "computed"), [(0.5, 4), (0.9, 8)])
def test_interrupted_sampled_session_resumes_only_with_the_same_sampling(
        tmp_path: Path, temperature: float, computed: int) -> None:
    with pytest.raises(KeyboardInterrupt):
        _gen_session(tmp_path, FailingGen("a", ANSWERS), do_sample=True,
                     temperature=0.5).generate(RECORDS)
    session = _gen_session(tmp_path, ScriptedGen("a", ANSWERS), do_sample=True,
                           temperature=temperature)
    session.generate(RECORDS)
    assert session.finish() == {"computed": computed, "reused": 8 - computed}

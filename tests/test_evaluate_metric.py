"""A local ``evaluate`` module declared in YAML scores like a built-in metric: per-example
values (one module call per example for a corpus-only module), corpus values, directions,
and clear offline errors (tests/evaluate_modules/word_overlap is the worked example)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import ConfigError
from pipeline.core.io import read_json
from pipeline.scoring.cell import run_cell
from pipeline.scoring.metrics import directions
from pipeline.scoring.metrics.options import validate_metrics

pytest.importorskip("evaluate")
MODULE = Path(__file__).parent / "evaluate_modules" / "word_overlap"
# reference, prediction, share of the reference's distinct words in the prediction
EXAMPLES = [("the cat sat", "the cat", 2 / 3), ("a dog ran far", "dog", 1 / 4),
            ("birds sing", "Birds sing loudly", 1.0)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cell(small_cfg: Callable, tmp_path: Path, name: str, block: str) -> Path:
    test = _write(tmp_path / "test.jsonl", [{"id": f"d{i}", "article": "x", "summary": ref}
                                            for i, (ref, _, _) in enumerate(EXAMPLES)])
    preds = _write(tmp_path / "preds.jsonl", [{"id": f"d{i}", "summary": pred}
                                              for i, (_, pred, _) in enumerate(EXAMPLES)])
    return run_cell(small_cfg("data=files", f"data.options.test={test}", "model=precomputed",
                              "model.name=sys", f"model.predictions={preds}", "train_size=0",
                              f"tasks.summarization.metrics=[rouge,{name}]",
                              f"+metrics.{name}={{evaluate: {block}}}"))


def test_module_scores_per_example(small_cfg: Callable, tmp_path: Path) -> None:
    run_dir = _cell(small_cfg, tmp_path, "word_overlap",
                    f"{{module: {MODULE}, outputs: {{overlap: true}}, per_example: true}}")
    scores = pd.read_parquet(run_dir / "scores.parquet")
    assert list(scores["summarization_overlap"]) == pytest.approx([e[2] for e in EXAMPLES])
    metrics = read_json(run_dir / "metrics.json")["metrics"]
    assert metrics["summarization_overlap"] == pytest.approx((2 / 3 + 1 / 4 + 1) / 3)
    assert "summarization_rouge1" in metrics  # next to the built-in metrics


def test_corpus_value_and_direction(small_cfg: Callable, tmp_path: Path) -> None:
    block = f"{{module: {MODULE}/word_overlap.py, outputs: {{overlap: false}}, per_example: false}}"
    run_dir = _cell(small_cfg, tmp_path, "overlap_corpus", block)
    assert "summarization_overlap" not in pd.read_parquet(run_dir / "scores.parquet")
    metrics = read_json(run_dir / "metrics.json")["metrics"]
    assert metrics["summarization_overlap"] == pytest.approx((2 / 3 + 1 / 4 + 1) / 3)
    tasks = {"summarization": {"metrics": ["overlap_corpus"]}}
    assert directions(tasks)["summarization_overlap"] is False  # as declared


@pytest.mark.parametrize(("block", "message"), [
    ({"module": "rouge", "outputs": {"rouge1": True}},
     "metrics.m.evaluate.module=rouge: no local evaluate module there"),
    ({"module": str(MODULE), "outputs": {"overlap": "up"}},
     "metrics.m.evaluate.outputs must map each output name to higher_is_better"),
    ({"module": str(MODULE), "outputs": {"overlap": True}, "per_examples": True},
     "metrics.m.evaluate.per_examples: unknown key"),
])
def test_bad_declarations_fail_before_scoring(block: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_metrics({"summarization": {"metrics": ["m"]}}, {"m": {"evaluate": block}})
    assert message in str(err.value)


def test_builtin_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="'rouge' is already registered"):
        validate_metrics({}, {"rouge": {"evaluate": {"module": str(MODULE),
                                                     "outputs": {"overlap": True}}}})


def test_edited_module_rescores_only_its_metric(small_cfg: Callable, tmp_path: Path,
                                                caplog) -> None:
    """Editing the module's source re-scores the cells that used it (ROUGE and the
    predictions are reused); an unchanged module skips the cell."""
    module = tmp_path / "modules" / "word_overlap"
    shutil.copytree(MODULE, module)
    block = f"{{module: {module}, outputs: {{overlap: true}}, per_example: true}}"
    run_dir = _cell(small_cfg, tmp_path, "overlap_edited", block)
    assert list(pd.read_parquet(run_dir / "scores.parquet")["summarization_overlap"]) == \
        pytest.approx([e[2] for e in EXAMPLES])
    with caplog.at_level("INFO"):
        _cell(small_cfg, tmp_path, "overlap_edited", block)
    assert "already finished" in caplog.text
    script = module / "word_overlap.py"  # case-sensitive words from now on
    script.write_text(script.read_text().replace("text.lower().split()", "text.split()"))
    caplog.clear()
    with caplog.at_level("INFO"):
        _cell(small_cfg, tmp_path, "overlap_edited", block)
    assert "computing (overlap_edited files changed)" in caplog.text
    assert "scoring summarization with rouge: unchanged, reused" in caplog.text
    assert list(pd.read_parquet(run_dir / "scores.parquet")["summarization_overlap"]) == \
        pytest.approx([2 / 3, 1 / 4, 1 / 2])  # "Birds" no longer matches "birds"


def test_per_example_values_equal_one_compute_call_per_example(monkeypatch) -> None:
    """Per-example values are exactly what the module's own ``compute()`` returns for each
    example alone, while ``compute()`` (and its Arrow round trip) runs once for the cell."""
    from pipeline.core.tasks import get_task
    from pipeline.scoring.metrics.hf_evaluate import (
        _module_checksum,
        check_block,
        load_module,
        score_module,
    )

    block = check_block("wo", {"module": str(MODULE), "outputs": {"overlap": True}})
    preds = ["the cat", "", "Birds sing loudly", "ünïcode wörds here", "dog dog dog"]
    refs = [["the cat sat"], ["a dog ran far"], ["birds sing"], ["wörds ünïcode"], ["dog"]]
    module = load_module(str((MODULE / "word_overlap.py").resolve()),
                         _module_checksum("wo")({"evaluate": block}, None))  # the cell's one
    direct = [module.compute(predictions=[p], references=[r[0]])["overlap"]
              for p, r in zip(preds, refs, strict=True)]
    calls: list[int] = []
    real = module.compute
    monkeypatch.setattr(module, "compute", lambda **kw: calls.append(1) or real(**kw))
    got = score_module("wo", block, get_task("summarization"), preds, refs)
    assert list(got.per_example["overlap"]) == direct  # equal, not approximately
    assert direct == pytest.approx([2 / 3, 0, 1, 1, 1])
    assert len(calls) == 1

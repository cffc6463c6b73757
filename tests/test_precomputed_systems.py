"""Precomputed systems with no YAML: model=precomputed, one file per system or one long file
with a system column; human correlations with p-values and bootstrap CIs; experiment weights
replace the default ones."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.aggregate.human_stats import bootstrap_ci
from pipeline.aggregate.runs import load_runs
from pipeline.aggregate.tables import HUMAN_COLUMNS, human_correlations
from pipeline.core.errors import InputError
from pipeline.scoring.cell import run_cell
from tests.conftest import ROOT, run_env

DOCS = {
    "d1": "The council approved a new bridge. Work begins in May.",
    "d2": "A rare beetle species was found in oak forests.",
    "d3": "Consumer prices climbed 4 percent, more than expected.",
    "d4": "The museum reopened after renovation to long queues.",
    "d5": "Floods closed the valley road for a week of repairs.",
}
SYSTEMS = {  # system -> (output per doc, human relevance per doc)
    "sysA": ({d: t for d, t in DOCS.items()}, [5, 4.5, 5, 4, 4.5]),
    "sysB": ({d: " ".join(t.split()[:5]) for d, t in DOCS.items()}, [3, 2.5, 3.5, 3, 2]),
    "sysC": ({d: "Nothing to report today." for d in DOCS}, [1, 1.5, 1, 2, 1]),
    "sysD": ({d: " ".join(t.split()[2:]) for d, t in DOCS.items()}, [4, 3, 2.5, 3.5, 4]),
}
RECIPE = ("data=files", "model=precomputed", "train_size=0", "tasks.summarization.metrics=[rouge]")


@pytest.fixture
def files(tmp_path):
    """test.jsonl, preds/<system>.jsonl and the same rows as one long all.jsonl."""
    (tmp_path / "preds").mkdir()
    (tmp_path / "test.jsonl").write_text("".join(
        json.dumps({"id": d, "summary": t}) + "\n" for d, t in DOCS.items()))
    long = []
    for system, (outputs, human) in SYSTEMS.items():
        rows = [{"id": d, "summary": outputs[d], "human_relevance": h}
                for d, h in zip(DOCS, human, strict=True)]
        (tmp_path / "preds" / f"{system}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows))
        long += [{"system": system, **r} for r in rows]
    (tmp_path / "all.jsonl").write_text("".join(json.dumps(r) + "\n" for r in long))
    return tmp_path


def _run(compose_cfg, folder, out, *extra):
    for system in SYSTEMS:
        run_cell(compose_cfg(*RECIPE, f"data.options.test={folder / 'test.jsonl'}",
                             f"output_dir={out}", f"model.name={system}", *extra))
    return load_runs(out)


def test_files_per_system_and_one_long_file_give_the_same_cells(compose_cfg, files):
    per_file = _run(compose_cfg, files, files / "out1",
                    f"model.predictions={files}/preds/${{model.name}}.jsonl")
    long = _run(compose_cfg, files, files / "out2", f"model.predictions={files}/all.jsonl",
                "model.system_column=system")
    assert sorted(per_file.cells["model"]) == sorted(SYSTEMS) and not per_file.problems
    cols = ["model", "family", "train_size", "summarization_rouge1", "summarization_rougeL"]
    pd.testing.assert_frame_equal(per_file.cells[cols].sort_values("model", ignore_index=True),
                                  long.cells[cols].sort_values("model", ignore_index=True))
    assert set(long.cells["family"]) == {"precomputed"}
    # sysA repeats the references: every ROUGE F1 is 1
    assert long.cells.set_index("model").loc["sysA", "summarization_rouge1"] == 1.0
    human = long.human.set_index(["model", "id"])["human_relevance"]
    assert human.loc[("sysD", "d3")] == 2.5 and len(human) == 20


def test_long_file_with_an_unknown_system_names_the_systems(compose_cfg, files):
    cfg = compose_cfg(*RECIPE, f"data.options.test={files / 'test.jsonl'}",
                      f"output_dir={files / 'out'}", "model.name=sysZ",
                      f"model.predictions={files}/all.jsonl", "model.system_column=system")
    with pytest.raises(InputError, match=r"no rows for system 'sysZ'.*sysA, sysB, sysC, sysD"):
        run_cell(cfg)


def test_family_and_size_are_settable_per_run(compose_cfg, files):
    cfg = compose_cfg(*RECIPE, f"data.options.test={files / 'test.jsonl'}",
                      f"output_dir={files / 'out'}", "model.name=sysB",
                      f"model.predictions={files}/preds/sysB.jsonl", "model.family=lead",
                      "model.params_b=0.5")
    run_cell(cfg)
    cells = load_runs(files / "out").cells
    assert cells.loc[0, "family"] == "lead" and cells.loc[0, "params_b"] == 0.5


def _human_table(n_docs=6, n_sys=5, seed=1):
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=(n_docs, n_sys)) + np.arange(n_sys)
    metric = quality + rng.normal(scale=0.8, size=quality.shape)
    per_example, human, cells = {}, [], []
    for s in range(n_sys):
        ids = [f"d{d}" for d in range(n_docs)]
        per_example[(f"s{s}", 0)] = pd.DataFrame({"id": ids, "m": metric[:, s]})
        human += [{"model": f"s{s}", "train_size": 0, "id": i, "human_q": quality[d, s]}
                  for d, i in enumerate(ids)]
        cells.append({"model": f"s{s}", "train_size": 0})
    return per_example, pd.DataFrame(cells), pd.DataFrame(human), metric, quality


def test_human_correlations_p_values_match_scipy():
    per_example, cells, human, metric, quality = _human_table()
    table = human_correlations(per_example, cells, human, n_boot=200)
    assert list(table.columns[:7]) == ["metric", "aspect", "level", "n", "pearson", "spearman",
                                       "kendall"]
    assert list(table.columns) == HUMAN_COLUMNS
    row = table.set_index(["metric", "level"])
    sys_m, sys_h = metric.mean(axis=0), quality.mean(axis=0)
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr),
                       ("kendall", stats.kendalltau)):
        ref = fn(sys_m, sys_h)
        assert row.loc[("m", "system"), method] == pytest.approx(ref.statistic, abs=1e-12)
        assert row.loc[("m", "system"), f"{method}_p"] == pytest.approx(ref.pvalue, rel=1e-9)
        per_doc = [fn(metric[d], quality[d]).statistic for d in range(len(metric))]
        assert row.loc[("m", "summary"), method] == pytest.approx(np.mean(per_doc), abs=1e-12)
        assert row.loc[("m", "summary"), f"{method}_p"] == pytest.approx(
            stats.ttest_1samp(per_doc, 0.0).pvalue, rel=1e-9)
        for level in ("system", "summary"):
            low, mid, high = (row.loc[("m", level), f"{method}{s}"]
                              for s in ("_ci_low", "", "_ci_high"))
            assert -1 <= low <= high <= 1 and low <= mid + 1e-9


def test_bootstrap_ci_resamples_documents():
    """Against a plain loop: resample document indices, recompute both levels."""
    _, _, _, metric, quality = _human_table(n_docs=8, n_sys=4, seed=3)
    got = bootstrap_ci(metric, quality, "pearson", n_boot=300, seed=5, alpha=0.1)
    rng = np.random.default_rng(5)
    draws = rng.integers(0, 8, size=(300, 8))
    system = [stats.pearsonr(metric[d].mean(axis=0), quality[d].mean(axis=0)).statistic
              for d in draws]
    per_doc = np.array([stats.pearsonr(metric[d], quality[d]).statistic for d in range(8)])
    summary = [per_doc[d].mean() for d in draws]
    assert got["system"] == pytest.approx(tuple(np.quantile(system, [0.05, 0.95])), abs=1e-12)
    assert got["summary"] == pytest.approx(tuple(np.quantile(summary, [0.05, 0.95])),
                                           abs=1e-12)


def test_experiment_weights_replace_the_default_ones(compose_cfg):
    default = compose_cfg().aggregate.weights
    assert "title_rougeL" in default and "type_accuracy" in default
    summeval = compose_cfg("+experiment=summeval").aggregate.weights
    assert dict(summeval) == {"summarization_rougeL": 1.0, "summarization_bertscore_f1": 1.0}
    assert compose_cfg("+experiment=summeval").model.system_column == "system"
    tweaked = compose_cfg("aggregate.weights.title_rougeL=2").aggregate.weights
    assert tweaked.title_rougeL == 2 and tweaked.tag_f1 == 1  # one key still merges


@pytest.mark.slow  # both commands in subprocesses (Hydra start-up, scoring, aggregate)
def test_recipe_from_the_command_line(files):
    """The README's commands: a sweep over systems, then the aggregate with human tables."""
    out = files / "out"
    compare = [sys.executable, "-m", "pipeline.compare", "-m", "data=files",
               "data.options.test=test.jsonl", "model=precomputed",
               "model.name=sysA,sysB,sysC,sysD", "model.predictions=all.jsonl",
               "model.system_column=system", "train_size=0", f"output_dir={out}",
               "tasks.summarization.metrics=[rouge]"]
    done = subprocess.run(compare, cwd=files, env=run_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([sys.executable, "-m", "pipeline.aggregate", f"output_dir={out}",
                           "aggregate.n_boot=50"], cwd=ROOT, env=run_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    table = pd.read_csv(out / "tables" / "human_correlations.csv")
    assert set(table["level"]) == {"system", "summary"} and "kendall_p" in table
    ranked = pd.read_csv(out / "model_comparison.csv")
    assert ranked.iloc[0]["model"] == "sysA" and len(ranked) == 4


def test_missing_system_name_is_one_line_error(files):
    done = subprocess.run([sys.executable, "-m", "pipeline.compare", "data=files",
                           "data.options.test=test.jsonl", "model=precomputed",
                           "model.predictions=all.jsonl", f"output_dir={files / 'out'}"],
                          cwd=files, env=run_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "error: model.name is required" in done.stderr and "Traceback" not in done.stderr

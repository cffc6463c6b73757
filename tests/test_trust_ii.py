"""Trust II (issue 24): the user's files, typos, faulty servers and concurrent runs.

One section per situation; each test failed on the code before the fix.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.aggregate import outputs
from pipeline.aggregate.stage import aggregate
from tests.conftest import ROOT, run_env


def _quick_sweep(root: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_aggregate",
                                                  ROOT / "scripts" / "bench_aggregate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    module.quick_template(root, n_examples=12)


@pytest.fixture
def sweep(tmp_path: Path, compose_cfg: Callable) -> Callable:
    """A 4-cell finished sweep under ``tmp_path/out``; returns ``cfg(*overrides)``."""
    _quick_sweep(tmp_path / "out")

    def cfg(*overrides: str):
        return compose_cfg(f"output_dir={tmp_path / 'out'}", "aggregate.n_boot=50", *overrides)

    return cfg


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=run_env(),
                          capture_output=True, text=True, timeout=600, **kwargs)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# 1. a user's own file is never deleted ------------------------------------------------------

def test_users_tables_folder_and_files_are_moved_aside_not_deleted(sweep, caplog):
    root = Path(sweep().output_dir)
    (root / "tables").mkdir()
    (root / "tables" / "table1.tex").write_text("my paper's table\n")
    (root / "analysis.md").write_text("my notes\n")
    with caplog.at_level(logging.WARNING):
        aggregate(sweep())
    assert (root / "tables").is_symlink() and (root / "analysis.md").is_symlink()
    kept = {p.relative_to(root).as_posix().split(".moved-")[0]: p
            for p in root.glob("*.moved-*")}
    assert sorted(kept) == ["analysis.md", "tables"]
    assert (kept["tables"] / "table1.tex").read_text() == "my paper's table\n"
    assert kept["analysis.md"].read_text() == "my notes\n"
    assert sum("nothing deleted" in r.getMessage() for r in caplog.records) == 2
    aggregate(sweep("force=true"))  # our own links are replaced silently, nothing more moved
    assert len(list(root.glob("*.moved-*"))) == 2


# 5. two aggregates at once on one output_dir ------------------------------------------------

def test_a_second_aggregate_waits_for_the_first(sweep, caplog):
    from pipeline.core.locking import exclusive

    root = Path(sweep().output_dir)
    done: list[dict] = []
    with caplog.at_level(logging.WARNING), exclusive(root / outputs.LOCK, "test"):
        worker = threading.Thread(target=lambda: done.append(aggregate(sweep())))
        worker.start()
        for _ in range(200):
            if "waiting for another aggregate" in caplog.text:
                break
            time.sleep(0.05)
        assert "waiting for another aggregate" in caplog.text and not done
        assert not (root / "model_comparison.csv").exists()
    worker.join(120)
    assert done and outputs.published(root)["n_cells"] == 4


@pytest.mark.slow
def test_concurrent_aggregates_both_end_with_a_complete_set(sweep):
    root = Path(sweep().output_dir)
    for _ in range(3):
        procs = [subprocess.Popen([sys.executable, "-m", "pipeline.aggregate",
                                   f"output_dir={root}", "force=true", "aggregate.n_boot=50"],
                                  cwd=ROOT, env=run_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(300), p.stderr.read()) for p in procs]
        for rc, err in results:
            assert rc == 0, err[-2000:]
        assert (root / "model_comparison.csv").is_file()
        assert outputs.published(root)["n_cells"] == 4  # every file of the set is intact


# 2. a cell never mixes outputs of two configurations ----------------------------------------

@pytest.mark.slow
def test_resume_after_weights_changed_in_place_regenerates_everything(small_cfg, tmp_path,
                                                                      monkeypatch):
    """Weights edited in place with the same size and their mtime restored (``cp -p``, a
    restore): the interrupted cell's partial outputs of the old weights are not reused."""
    from hf_tiny import CHAT_TEMPLATE, save_tiny

    from pipeline.core.io import read_json
    from pipeline.generators.hf import HFBackend
    from pipeline.scoring.cell import run_cell

    ckpt = save_tiny("llama", tmp_path / "llama", CHAT_TEMPLATE)
    cfg = small_cfg("generator=hf", "model=llama-3.2-1b", f"model.checkpoint={ckpt}",
                    "data.limit=4", "generator.options.batch_size=2",
                    "generator.options.cache=false",
                    "generator.options.max_new_tokens={summarization:8,title:4,tag:4,type:2}",
                    "tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")
    real, calls = HFBackend.generate, []

    def interrupted(self, prompts, max_new_tokens):
        if len(calls) == 4:  # one call per task: the first batch is done
            raise KeyboardInterrupt
        calls.append(1)
        return real(self, prompts, max_new_tokens)

    monkeypatch.setattr(HFBackend, "generate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_cell(cfg)
    weights = ckpt / "model.safetensors"
    stat = weights.stat()
    with open(weights, "r+b") as fh:  # other weights (signs flipped), same size and mtime
        fh.seek(-4096, 2)
        tail = bytearray(fh.read())
        tail[3::4] = bytes(b ^ 0x80 for b in tail[3::4])
        fh.seek(-4096, 2)
        fh.write(tail)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    monkeypatch.setattr(HFBackend, "generate", real)
    info = read_json(run_cell(cfg) / "manifest.json")["generator"]
    assert info["requests"]["reused"] == 0 and not info["cached"]


# 3. typos are errors naming the closest valid key -------------------------------------------

@pytest.mark.parametrize(("override", "message"), [
    ("+metrics.rogue.use_stemmer=false", "metrics.rogue: unknown metric 'rogue'; did you mean "
                                         "'rouge'?"),
    ("+metrics.rouge.use_stemer=false", "metrics.rouge.use_stemer: unknown option "
                                        "'use_stemer'; did you mean 'use_stemmer'?"),
])
def test_unused_or_misspelt_metric_blocks_are_config_errors(small_cfg, override, message):
    """Checked whether or not a task uses the metric (here ``tag`` and ``type``, which use
    no ROUGE): the cell fails before any work."""
    from pipeline.core.errors import ConfigError
    from pipeline.scoring.cell import run_cell

    with pytest.raises(ConfigError) as info:
        run_cell(small_cfg("model=demo-lead", "train_size=100", "data.limit=4",
                           "data.tasks=[tag,type]", "~tasks.summarization", "~tasks.title",
                           override))
    assert str(info.value).startswith(message)


def test_misspelt_weight_is_one_error_line_naming_the_closest_column(sweep):
    out = sweep().output_dir
    proc = _cli("pipeline.aggregate", f"output_dir={out}", "+aggregate.weights.title_rogueL=2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert _error_lines(proc.stderr) == [
        "error: aggregate: aggregate.weights.title_rogueL: unknown column 'title_rogueL'; "
        "did you mean 'title_rougeL'?"]
    assert not (Path(out) / "model_comparison.csv").exists()


# 6. model names that look like numbers or missing values stay text -------------------------

NAMES = {"demo-a": "007", "demo-b": "NA"}


def _rename_models(root: Path, names: dict[str, str], families: dict[str, str]) -> None:
    """Give the quick sweep's models (and families) other names, moving their folders."""
    from pipeline.core.io import read_json, write_json
    from pipeline.core.paths import OutputPaths, run_file

    paths = OutputPaths(root)
    for old, new in names.items():
        for size in (500, 2000):
            src, dst = paths.run_dir(old, size), paths.run_dir(new, size)
            dst.parent.mkdir(parents=True, exist_ok=True)
            src.rename(dst)
            metrics = read_json(run_file(dst, "metrics"))
            write_json(run_file(dst, "metrics"), {**metrics, "model": new,
                                                  "family": families[new]})


def test_names_like_numbers_or_missing_values_are_read_as_text(sweep):
    from pipeline.core.io import read_csv
    from pipeline.core.paths import OutputPaths
    from pipeline.report.build import load_ranked
    from pipeline.versus.diff import load_sweep

    root = Path(sweep().output_dir)
    _rename_models(root, NAMES, {"007": "1e3", "NA": "True"})
    aggregate(sweep())
    ranked = load_ranked(OutputPaths(root))
    assert sorted(ranked["model"]) == ["007", "007", "NA", "NA"]
    assert sorted(set(ranked["family"])) == ["1e3", "True"]
    assert set(read_csv(root / "tables" / "scaling.csv")["family"]) == {"1e3", "True"}
    ranks = load_sweep(str(root), "before").ranks
    assert sorted(ranks) == [("007", 500), ("007", 2000), ("NA", 500), ("NA", 2000)]
    assert sorted(ranks.values()) == [1, 2, 3, 4]
    proc = _cli("pipeline.report", f"output_dir={root}")
    assert proc.returncode == 0, proc.stderr[-3000:]


# 7. a response cut short is retried, then one error line ------------------------------------

@pytest.fixture
def short_srv():
    """The scripted OpenAI server whose ``"short"`` step promises more bytes than it sends."""
    from test_openai_trust import ScriptedHandler, ScriptedServer

    class ShortHandler(ScriptedHandler):
        def do_POST(self) -> None:  # noqa: N802
            if self.server.script and self.server.script[0] == "short":
                self.server.script.pop(0)
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'{"choices": [')
                self.close_connection = True
                return
            super().do_POST()

    server = ScriptedServer()
    server.RequestHandlerClass = ShortHandler
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _openai_cfg(small_cfg, server, *more):
    return small_cfg("generator=openai", "model=llama-3.2-1b", "data.limit=2",
                     f"generator.options.base_url={server.url}",
                     "generator.options.concurrency=1", "generator.options.backoff_s=0.01",
                     "generator.options.cache=false", "tasks.summarization.metrics=[rouge]",
                     "tasks.title.metrics=[rouge]", *more)


def test_a_response_cut_short_is_retried(small_cfg, short_srv):
    from pipeline.core.io import read_json
    from pipeline.scoring.cell import run_cell

    short_srv.script = ["short", "short"]
    run_dir = run_cell(_openai_cfg(small_cfg, short_srv))
    assert read_json(run_dir / "manifest.json")["generator"]["requests"]["computed"] == 8
    assert short_srv.script == [] and len(short_srv.auth) == 8  # 2 cut short, retried


def test_a_server_always_cutting_short_is_one_error_line(small_cfg, short_srv):
    from pipeline.core.errors import UserError
    from pipeline.scoring.cell import run_cell

    short_srv.script = ["short"] * 3
    with pytest.raises(UserError, match=r"response cut short \(13 bytes read, 987 more "
                                        r"expected\) \(gave up after 3 attempts\)"):
        run_cell(_openai_cfg(small_cfg, short_srv, "generator.options.max_retries=2"))


# 10. CSV errors name the physical line where the record starts ------------------------------

MULTILINE = ('id,article,summary\n'
             'a,"first line\nsecond line\nthird line",short\n'
             '\n'
             'b,"one\n\ntwo",{bad}\n')


def test_csv_lines_are_where_each_record_starts(tmp_path):
    from pipeline.core.io import read_records

    path = tmp_path / "test.csv"
    path.write_text(MULTILINE.format(bad="fine"), encoding="utf-8")
    assert [line for line, _ in read_records(path)] == [2, 6]


def test_csv_error_names_the_line_where_the_bad_record_starts(tmp_path):
    from pipeline.aggregate.runs import load_table
    from pipeline.core.errors import InputError
    from pipeline.core.io import read_records

    path = tmp_path / "metrics.csv"
    path.write_text('model,family,params_b,train_size,title_rougeL\n'
                    'a,"a family\nwith a long\ndescription",1,500,0.5\n'
                    'b,f,1,500,lots\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"metrics\.csv, line 5, field 'title_rougeL'"):
        load_table(path)
    path = tmp_path / "test.csv"
    path.write_text(MULTILINE.format(bad="x,extra"), encoding="utf-8")
    with pytest.raises(InputError, match=r"test\.csv, line 6: 4 fields where the header has 3"):
        read_records(path)


# 4. data=hf local files edited without their mtime changing ---------------------------------

def test_hf_local_file_edited_with_the_same_mtime_is_read_again(small_cfg, tmp_path, caplog):
    pytest.importorskip("datasets")
    from pipeline.core.io import read_json
    from pipeline.data.demo_corpus import build_demo_corpus
    from pipeline.scoring.cell import run_cell

    _, test = build_demo_corpus(seed=5, n_train=0, n_test=6)
    path = tmp_path / "test.jsonl"

    def write(rows):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        os.utime(path, ns=(10**18, 10**18))  # the same mtime each time

    args = ("data=hf", f"data.options.path={path}", "model=demo-lead", "train_size=0",
            "tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")
    write(test)
    first = read_json(run_cell(small_cfg(*args)) / "manifest.json")["inputs"]["test"]
    write([{**test[0], "summary": "An entirely different reference."}, *test[1:]])
    with caplog.at_level(logging.INFO, logger="pipeline.scoring.cell"):
        run_dir = run_cell(small_cfg(*args))
    assert "test data changed" in caplog.text
    assert read_json(run_dir / "manifest.json")["inputs"]["test"] != first


# 8. a read-only output_dir ------------------------------------------------------------------

def _as_reader() -> list[str]:
    """Command prefix under which permission bits hold (root ignores them unless it drops
    its override capabilities)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: cannot make a folder unwritable")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@pytest.fixture
def read_only_sweep(sweep):
    """An aggregated sweep, then made read-only (made writable again afterwards)."""
    root = Path(sweep().output_dir)
    aggregate(sweep())
    modes = {p: p.stat().st_mode for p in [root, *root.rglob("*")] if not p.is_symlink()}
    for path, mode in modes.items():
        path.chmod(mode & ~0o222)
    yield root
    for path, mode in modes.items():
        path.chmod(mode)


@pytest.mark.slow
def test_read_only_sweep_aggregates_when_unchanged_and_errors_in_one_line(read_only_sweep):
    root = read_only_sweep

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_reader(), sys.executable, "-m", *args, f"output_dir={root}"],
                              cwd=ROOT, env=run_env(), capture_output=True, text=True,
                              timeout=600)

    proc = run("pipeline.aggregate", "aggregate.n_boot=50")  # reads only: works
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Top 4 of 4 cells" in proc.stdout
    for args in (("pipeline.aggregate", "aggregate.n_boot=50", "force=true"),
                 ("pipeline.report",),
                 ("pipeline.compare", "model=demo-lead", "train_size=100", "data.limit=4",
                  "tasks.summarization.metrics=[rouge]", "tasks.title.metrics=[rouge]")):
        proc = run(*args)
        errors = _error_lines(proc.stderr)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert len(errors) == 1 and f"cannot write {root}" in errors[0], errors
        assert "Permission denied (this command writes its outputs under output_dir" in errors[0]


# 9. no native abort after a clean data=hf error ---------------------------------------------

@pytest.mark.slow
def test_data_hf_error_exits_2_every_time(tmp_path):
    """Each run builds the dataset afresh (Arrow's thread pools at work), then fails on a
    column: status 2 and one error line every time, never an abort (134) at exit."""
    pytest.importorskip("datasets")
    from pipeline.data.demo_corpus import build_demo_corpus

    _, test = build_demo_corpus(seed=5, n_train=0, n_test=6)
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in test), encoding="utf-8")
    for run in range(12):
        proc = _cli("pipeline.compare", "data=hf", f"data.options.path={path}",
                    "data.options.columns={summary: nope}",
                    f"data.options.cache_dir={tmp_path / f'hf{run}'}",
                    f"output_dir={tmp_path / 'out'}")
        assert proc.returncode == 2, (run, proc.stderr[-2000:])
        assert "terminate called" not in proc.stderr
        assert len(_error_lines(proc.stderr)) == 1

"""The generation cache is safe when several jobs append to it at once."""

from __future__ import annotations

import subprocess
import sys

from pipeline.generators.gen_cache import OutputStore
from tests.conftest import ROOT, run_env

WRITER = """
import sys
from pipeline.generators.gen_cache import OutputStore
store, tag = OutputStore(sys.argv[1]), sys.argv[2]
for batch in range(40):
    store.append([{"key": f"{tag}-{batch}-{i}", "id": str(i), "text": "x" * 3000}
                  for i in range(8)])
"""


def test_two_processes_append_without_losing_rows(tmp_path):
    path = tmp_path / "store.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag], cwd=ROOT,
                              env=run_env()) for tag in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    rows = OutputStore(path).load()
    assert len(rows) == 2 * 40 * 8
    assert all(len(r["text"]) == 3000 for r in rows.values())


def test_a_line_cut_short_is_skipped_and_closed(tmp_path):
    store = OutputStore(tmp_path / "s.jsonl")
    store.append([{"key": "k1", "v": 1}])
    with open(store.path, "a", encoding="utf-8") as fh:
        fh.write('{"key": "k2", "v"')  # a process killed mid-write
    store.append([{"key": "k3", "v": 3}])
    assert sorted(store.load()) == ["k1", "k3"]

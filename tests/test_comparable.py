"""One ranking holds only cells scored on the same examples (aggregate.examples)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.aggregate.comparable import comparable, groups_of, shared_ids
from pipeline.aggregate.runs import ScoredExamples, SweepResults
from pipeline.core.errors import ConfigError


def _results(spec: dict[tuple[str, int], tuple[str, dict[str, str], list[float]]],
             ) -> SweepResults:
    """Cells from ``{cell: (checksum, {id: digest}, per-example s)}``; the cells table holds
    each cell's mean of s and a corpus-level value ``macro``."""
    per, scored, rows = {}, {}, []
    for (model, size), (checksum, digests, s) in spec.items():
        per[(model, size)] = pd.DataFrame({"id": list(digests), "s": s})
        scored[(model, size)] = ScoredExamples(checksum, digests)
        rows.append({"model": model, "family": "f", "params_b": 1.0, "train_size": size,
                     "n_examples": len(s), "perplexity": 3.0, "s": float(np.mean(s)),
                     "macro": 0.5})
    return SweepResults(pd.DataFrame(rows), per, None, [], scored)


FIVE = {f"e{i}": f"d{i}" for i in range(5)}
TWO = {"e0": "d0", "e1": "d1"}
EDITED = {**FIVE, "e1": "changed"}  # same ids, e1's reference edited


def _sweep() -> SweepResults:
    return _results({
        ("a", 1): ("A", FIVE, [0.1, 0.2, 0.3, 0.4, 0.5]),
        ("b", 1): ("A", FIVE, [0.5, 0.5, 0.5, 0.5, 0.5]),
        ("c", 1): ("A", FIVE, [0.0, 0.0, 0.0, 0.0, 1.0]),
        ("smoke", 0): ("B", TWO, [1.0, 0.0]),
        ("old", 1): ("C", EDITED, [0.9, 0.9, 0.9, 0.9, 0.9]),
    })


def test_largest_group_is_ranked_and_the_others_are_named() -> None:
    results = _sweep()
    assert groups_of(results) == [[("a", 1), ("b", 1), ("c", 1)], [("old", 1)], [("smoke", 0)]]
    chosen = comparable(results, "largest")
    assert sorted(chosen.results.per_example) == [("a", 1), ("b", 1), ("c", 1)]
    assert list(chosen.results.cells["model"]) == ["a", "b", "c"]
    assert set(chosen.results.scored) == {("a", 1), ("b", 1), ("c", 1)}
    excluded = chosen.excluded
    assert list(zip(excluded["model"], excluded["train_size"], excluded["n_examples"],
                    excluded["examples_checksum"], strict=True)) == [
        ("old", 1, 5, "C"), ("smoke", 0, 2, "B")]
    assert (excluded["reason"] == "scored on other examples than the 3 ranked cells "
                                  "(5 examples, checksum A)").all()
    assert chosen.note.startswith("The ranking holds the largest group of cells scored on the "
                                  "same examples: 3 cells on 5 test examples (checksum A). "
                                  "2 cell(s) scored on other examples are left out")


def test_equal_cell_counts_prefer_more_examples() -> None:
    results = _results({("x", 1): ("small", TWO, [0.1, 0.2]),
                        ("y", 1): ("big", FIVE, [0.1] * 5)})
    assert groups_of(results) == [[("y", 1)], [("x", 1)]]
    assert list(comparable(results).results.per_example) == [("y", 1)]


def test_common_ranks_every_cell_on_the_shared_examples() -> None:
    results = _sweep()
    # e0 is in every cell with one content; e1's content differs in "old"; e2.. miss in smoke
    assert shared_ids(results.scored, {c: set(f["id"]) for c, f in
                                       results.per_example.items()}) == {"e0"}
    chosen = comparable(results, "common")
    cells = chosen.results.cells.set_index("model")
    assert (cells["n_examples"] == 1).all() and chosen.excluded.empty
    # means on e0 only: a 0.1, b 0.5, c 0.0, smoke 1.0, old 0.9
    assert cells["s"].to_dict() == pytest.approx(
        {"a": 0.1, "b": 0.5, "c": 0.0, "smoke": 1.0, "old": 0.9})
    # cell-level values of cut cells cannot be recomputed: left empty
    assert cells["macro"].isna().all() and cells["perplexity"].isna().all()
    assert all(list(f["id"]) == ["e0"] for f in chosen.results.per_example.values())
    assert "every cell is ranked on the 1 test examples all 5 cells share" in chosen.note
    assert "(same id and content; the cells have 2 to 5 each)" in chosen.note


def test_common_keeps_cell_values_of_cells_that_lost_nothing() -> None:
    results = _results({("a", 1): ("A", FIVE, [0.1] * 5), ("b", 1): ("B", TWO, [0.3, 0.5])})
    cells = comparable(results, "common").results.cells.set_index("model")
    assert cells.loc["b", "macro"] == 0.5 and cells.loc["b", "perplexity"] == 3.0
    assert np.isnan(cells.loc["a", "macro"]) and cells.loc["a", "s"] == pytest.approx(0.1)


def test_common_without_shared_examples_and_error_mode() -> None:
    results = _results({("a", 1): ("A", {"e0": "x"}, [0.1]), ("b", 1): ("B", {"e1": "y"}, [0.2])})
    with pytest.raises(ConfigError, match="share no test example"):
        comparable(results, "common")
    with pytest.raises(ConfigError, match=r"aggregate.examples=error: .* in 3 groups: 3 cell\(s\) "
                                          r"on 5 examples \(checksum A\): a@1, b@1, c@1; 1 "
                                          r"cell\(s\) on 5 examples \(checksum C\): old@1; 1 "
                                          r"cell\(s\) on 2 examples \(checksum B\): smoke@0"):
        comparable(_sweep(), "error")
    with pytest.raises(ConfigError, match="aggregate.examples=sometimes: expected one of"):
        comparable(_sweep(), "sometimes")


def test_one_group_or_no_examples_is_kept_whole() -> None:
    results = _results({("a", 1): ("A", FIVE, [0.1] * 5), ("b", 1): ("A", FIVE, [0.2] * 5)})
    chosen = comparable(results, "error")
    assert chosen.results is results and chosen.excluded.empty
    assert chosen.note == "All 2 ranked cells were scored on the same 5 test examples " \
                          "(checksum A)."
    table = SweepResults(pd.DataFrame({"model": ["a"], "train_size": [1]}))
    assert comparable(table, "largest").results is table


def _with_human(results: SweepResults) -> SweepResults:
    rows = [{"model": m, "train_size": t, "id": i, "human_q": 0.5}
            for (m, t), f in results.per_example.items() for i in f["id"]]
    results.human = pd.DataFrame(rows)
    return results


def test_human_judgments_follow_the_ranked_cells_and_examples() -> None:
    kept = comparable(_with_human(_sweep()), "largest").results.human
    assert sorted(set(zip(kept["model"], kept["train_size"], strict=True))) == [
        ("a", 1), ("b", 1), ("c", 1)]
    assert len(kept) == 15
    common = comparable(_with_human(_sweep()), "common").results.human
    assert list(common["id"]) == ["e0"] * 5


def test_frames_keep_their_columns_and_every_cut_cell_is_recomputed() -> None:
    # b (first) loses nothing; a and c are cut to e0, e1: both recomputed
    results = _results({("b", 1): ("B", TWO, [0.2, 0.4]),
                        ("a", 1): ("A", FIVE, [0.1, 0.3, 0.9, 0.9, 0.9]),
                        ("c", 1): ("C", {**TWO, "e9": "d9"}, [0.5, 0.7, 0.0])})
    chosen = comparable(results, "common")
    cells = chosen.results.cells.set_index("model")
    assert cells["s"].to_dict() == pytest.approx({"b": 0.3, "a": 0.2, "c": 0.6})
    assert list(chosen.results.cells.columns) == list(results.cells.columns)
    kept = chosen.results.cells  # the cells' keys and sizes are not metrics: never recomputed
    assert list(zip(kept["model"], kept["family"], kept["params_b"], kept["train_size"],
                    strict=True)) == [("b", "f", 1.0, 1), ("a", "f", 1.0, 1), ("c", "f", 1.0, 1)]
    assert all(list(f.columns) == ["id", "s"] and list(f.index) == [0, 1]
               for f in chosen.results.per_example.values())
    assert "(same id and content; the cells have 2 to 5 each)" in chosen.note
    assert chosen.note.endswith("Means were recomputed on those examples for 2 cell(s); "
                                "their corpus-level metrics and perplexity, computed on their "
                                "own examples, are left empty.")
    largest = comparable(results, "largest").results.cells
    assert list(largest.columns) == list(results.cells.columns)
    assert list(largest.index) == [0]


def test_messages_in_full() -> None:
    six = {(f"m{i}", 1): ("A", FIVE, [0.1] * 5) for i in range(6)}
    results = _results({**six, ("z", 1): ("B", TWO, [0.1, 0.2])})
    with pytest.raises(ConfigError) as err:
        comparable(results, "error")
    assert str(err.value).endswith(
        "in 2 groups: 6 cell(s) on 5 examples (checksum A): m0@1, m1@1, m2@1, m3@1 ...; "
        "1 cell(s) on 2 examples (checksum B): z@1. Re-run the odd cells on the same data, "
        "or use aggregate.examples=largest (rank the largest group) or "
        "aggregate.examples=common (the shared examples)")
    five = {(f"m{i}", 1): ("A", FIVE, [0.1] * 5) for i in range(5)}
    with pytest.raises(ConfigError, match=r"m0@1, m1@1, m2@1, m3@1 \.\.\.; 1 cell"):
        comparable(_results({**five, ("z", 1): ("B", TWO, [0.1, 0.2])}), "error")
    four = {(f"m{i}", 1): ("A", FIVE, [0.1] * 5) for i in range(4)}
    with pytest.raises(ConfigError, match=r"m0@1, m1@1, m2@1, m3@1; 1 cell"):
        comparable(_results({**four, ("z", 1): ("B", TWO, [0.1, 0.2])}), "error")
    with pytest.raises(ConfigError) as err:
        comparable(results, "all")
    assert str(err.value).endswith(
        "aggregate.examples=all: expected one of largest, common, error")
    assert comparable(results, "largest").note.endswith(
        "1 cell(s) scored on other examples are left out of every table "
        "(aggregate.examples=common ranks all cells on their shared examples).")
    one = _results({("solo", 1): ("S", FIVE, [0.1] * 5)})
    assert comparable(one).note == ("All 1 ranked cells were scored on the same 5 test "
                                    "examples (checksum S).")


def test_per_example_scores_without_checksums_are_kept_whole() -> None:
    results = _results({("a", 1): ("A", FIVE, [0.1] * 5), ("b", 1): ("B", TWO, [0.1] * 2)})
    results.scored = {}
    assert comparable(results, "error").results is results

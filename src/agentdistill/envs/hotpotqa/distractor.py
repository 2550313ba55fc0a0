"""HotPotQA question files as a task bank: the splits, ReAct's evaluation questions, the oracle's plan.

``data`` names the questions (``sources.py`` reads the original JSON, Hugging Face ``hotpot_qa``
JSON / JSON Lines and ``datasets`` directories) in one of three ways:

- one file, e.g. ``hotpot_dev_distractor_v1.json``: ``test`` holds ReAct's evaluation questions
  (the indices of the file shuffled by ``random.Random(233)``, the first ``questions``, 500 by
  default, as in ReAct's ``hotpotqa.ipynb``), ``dev`` the next ``questions`` of that order and
  ``train`` every other question, in file order; the three are disjoint;
- one file per split, ``train=hotpot_train_v1.1.json,test=hotpot_dev_distractor_v1.json[,dev=F]``:
  ``test`` is ReAct's selection from its file, ``dev`` its own file in file order or, without one,
  the next ``questions`` of the test file's shuffle; ``train`` its file, less any question of dev or test;
- a ``DatasetDict.save_to_disk`` directory: its ``train`` split is ``train`` and its ``validation``
  split (HotPotQA's dev set, the one ReAct evaluates on) gives ``test`` and ``dev`` as one file does.
  HotPotQA's test set has no answers, so it is never used.

With the whole dev set (7,405 questions, file order) as the test source, ``test`` is exactly the 500
questions ReAct reports on, in its order. Task ids are the ``_id`` values and task types the
``type`` values.

Each question's context paragraphs become its own local wiki (the distractor setting), or with
``wiki=DUMP`` every question searches one Wikipedia dump (the full-wiki setting, ``dump.py``). The
oracle searches the supporting-fact titles in order, looks up a supporting sentence a search does
not show, and finishes with the gold answer; in the full-wiki setting it finds each supporting
sentence on the dump's page of that title (a page the dump lacks is not searched).
"""

import functools
import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz

from agentdistill.envs.hotpotqa.dump import WikiDump, wiki_dump
from agentdistill.envs.hotpotqa.scoring import normalize_answer
from agentdistill.envs.hotpotqa.sources import Records, read_source
from agentdistill.envs.hotpotqa.tasks import SPLITS, Hop, Task, TaskBank
from agentdistill.envs.hotpotqa.wiki import SHOWN_SENTENCES, Wiki, lookup_keyword
from agentdistill.errors import AgentDistillError, ConfigError

REQUIRED = {"_id": str, "question": str, "answer": str, "type": str, "supporting_facts": list, "context": list}
MAX_ACTIONS = 6  # searches + lookups the oracle may spend; the 7th action is Finish
REACT_SEED = 233  # ReAct's hotpotqa.ipynb: random.Random(233).shuffle(idxs) over the dev set
REACT_QUESTIONS = 500  # ... then idxs[:500]
DataSpec = str | Path | Mapping[str, str | Path]


def react_order(n: int) -> list[int]:
    """ReAct's evaluation order of ``n`` questions: ``list(range(n))`` shuffled by ``random.Random(233)``."""
    order = list(range(n))
    random.Random(REACT_SEED).shuffle(order)
    return order


def data_sources(data: DataSpec) -> dict[str, str]:
    """``{"": path}`` for one source, else split -> path from ``"train=A,test=B"`` (or a mapping).

    Raises:
        ConfigError: a split name other than train, dev or test, or an empty path.
    """
    if isinstance(data, Mapping):
        pairs = [(str(k), str(v)) for k, v in data.items()]
    else:
        text = str(data)
        pieces = text.split(",")
        if not all("=" in p for p in pieces):
            return {"": text}
        pairs = [tuple(x.strip() for x in p.split("=", 1)) for p in pieces]  # type: ignore[misc]
    out: dict[str, str] = {}
    for split, path in pairs:
        if split not in SPLITS or not path or split in out:
            raise ConfigError(
                f"hotpotqa --data {data}: name each split once with its file, e.g. "
                "train=hotpot_train_v1.1.json,test=hotpot_dev_distractor_v1.json (splits: train, dev, test)"
            )
        out[split] = path
    return out


def load_hotpotqa(data: DataSpec, questions: int | None = None, wiki: str | Path | None = None) -> TaskBank:
    """The task bank of ``data`` (see the module docstring), cached per source, ``questions`` and ``wiki``.

    Args:
        data: one source, or a source per split (``"train=A,test=B"`` or a mapping).
        questions: how many of ReAct's shuffled evaluation questions form ``test`` (and ``dev``); default 500.
        wiki: a ``{title, text}`` JSON Lines Wikipedia dump every question searches (full-wiki setting).

    Raises:
        AgentDistillError: a file is missing or malformed; the message names the file, the record and the problem.
        ConfigError: a bad ``data`` spec or ``questions`` < 1.
    """
    n = REACT_QUESTIONS if questions is None else questions
    if n < 1:
        raise ConfigError(f"hotpotqa questions must be >= 1; got {n}")
    pools = _pools(data_sources(data))
    dump = wiki_dump(wiki) if wiki is not None else None
    return _bank(tuple(pools.items()), n, dump)


def _pools(sources: dict[str, str]) -> dict[str, Records]:
    """``train`` / ``dev`` / ``test`` -> records (one file is both the train and the test pool)."""
    if "" in sources:
        read = read_source(sources[""])
        if set(read) == {""}:
            return {"train": read[""], "test": read[""]}
        pools = {ours: read[theirs] for ours, theirs in (("train", "train"), ("test", "validation")) if theirs in read}
        if not pools:
            raise AgentDistillError(
                f"hotpotqa data {sources['']}: a DatasetDict with splits {', '.join(read)}; expected train and/or "
                "validation (pass one split's directory per split: train=DIR/train,test=DIR/validation)"
            )
        return pools
    pools = {}
    for split, path in sources.items():
        read = read_source(path)
        if set(read) != {""}:
            raise AgentDistillError(
                f"hotpotqa data {split}={path}: a DatasetDict directory (splits {', '.join(read)}); pass one of its "
                f"split directories ({split}={path}/validation) or the whole directory as --data"
            )
        pools[split] = read[""]
    return pools


@functools.lru_cache(maxsize=4)
def _bank(pools: tuple[tuple[str, Records], ...], n: int, dump: WikiDump | None) -> TaskBank:
    """The bank of ``pools`` (``Records`` hash by identity and are cached per file and modification time)."""
    checked: dict[str, dict[str, tuple[dict[str, Any], dict[str, list[str]]]]] = {}
    for split, records in pools:
        same = next((checked[s] for s, r in pools if r is records and s in checked), None)
        checked[split] = same if same is not None else _checked(records)  # one file as train and test: check once
    test_pool = list(checked.get("test", {}))
    order = [test_pool[i] for i in react_order(len(test_pool))]
    test = order[:n]
    dev = [i for i in (checked["dev"] if "dev" in checked else order[n : 2 * n]) if i not in set(test)]
    held_out = set(test) | set(dev)
    split_ids = {"train": [i for i in checked.get("train", {}) if i not in held_out], "dev": dev, "test": test}
    every = {i: entry for pool in checked.values() for i, entry in pool.items()}
    tasks = _Tasks({i: every[i] for ids in split_ids.values() for i in ids}, dump)
    if dump is not None:
        return TaskBank(tasks, split_ids, wiki_of=lambda _task_id: dump)
    return TaskBank(tasks, split_ids, wiki_of=_wikis({i: ctx for i, (_, ctx) in tasks.entries.items()}))


def _checked(records: Records) -> dict[str, tuple[dict[str, Any], dict[str, list[str]]]]:
    """Every record of a pool, checked, by id: ``(record, context as title -> sentences)``."""
    out: dict[str, tuple[dict[str, Any], dict[str, list[str]]]] = {}
    for n, record in enumerate(records.records):
        context = check_record(record, f"{records.where}: record {n}")
        if record["_id"] in out:
            raise AgentDistillError(f"{records.where}: record {n}: duplicate _id {record['_id']!r}")
        out[record["_id"]] = (record, context)
    return out


class _Tasks(Mapping[str, Task]):
    """Task id -> ``Task``, the oracle's plan made on first use (a train file has ~90k questions)."""

    def __init__(self, entries: dict[str, tuple[dict[str, Any], dict[str, list[str]]]], dump: WikiDump | None) -> None:
        self.entries, self._dump = entries, dump
        self._plan = functools.lru_cache(maxsize=None)(self._make)

    def _make(self, task_id: str) -> Task:
        record, context = self.entries[task_id]
        if self._dump is not None:
            record, context = _on_dump(record, context, self._dump)
        return _task(record, context)

    def __getitem__(self, task_id: str) -> Task:
        if task_id not in self.entries:
            raise KeyError(task_id)
        return self._plan(task_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


def _wikis(contexts: dict[str, dict[str, list[str]]]) -> Callable[[str], Wiki]:
    @functools.lru_cache(maxsize=256)
    def wiki_of(task_id: str) -> Wiki:
        return Wiki(contexts[task_id])

    return wiki_of


def _on_dump(
    record: dict[str, Any], context: dict[str, list[str]], dump: WikiDump
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The record with its supporting facts moved onto the dump's pages: each title resolved in the
    dump and each supporting sentence found among that page's sentences (index -1 where it is not)."""
    facts, pages = [], {}
    for title, index in record["supporting_facts"]:
        found = dump.resolve(title)
        if found is None:
            continue  # the dump lacks the page: nothing to search
        pages[found] = list(dump.pages[found])
        sentences = context.get(title, [])
        facts.append([found, _locate(sentences[index], pages[found]) if 0 <= index < len(sentences) else -1])
    return {**record, "supporting_facts": facts}, pages


def _locate(sentence: str, sentences: list[str]) -> int:
    """Index of ``sentence`` among ``sentences``: equal after normalisation, else the closest with a
    ``fuzz.ratio`` of at least 90 (sentence splitting differs a little between HotPotQA and a dump); -1 if none."""
    target = normalize_answer(sentence)
    normal = [normalize_answer(s) for s in sentences]
    if target in normal:
        return normal.index(target)
    scores = [fuzz.ratio(target, s) for s in normal]
    best = max(range(len(scores)), key=scores.__getitem__, default=-1)
    return best if best >= 0 and scores[best] >= 90 else -1


def check_record(record: Any, where: str) -> dict[str, list[str]]:
    """Validate one record (original schema); returns its context as title -> stripped sentences.

    Raises:
        AgentDistillError: ``where`` (file and record) and what is wrong.
    """
    if not isinstance(record, dict):
        raise AgentDistillError(f"{where}: expected an object, got {type(record).__name__}")
    if isinstance(record.get("_id"), str):
        where += f" (_id {record['_id']!r})"
    for key, kind in REQUIRED.items():
        if key not in record:
            raise AgentDistillError(
                f"{where}: missing key {key!r} (records need {', '.join(REQUIRED)}; Hugging Face records 'id' for '_id')"
            )
        if not isinstance(record[key], kind):
            raise AgentDistillError(f"{where}: {key!r} must be a {kind.__name__}, got {type(record[key]).__name__}")
    if not record["answer"].strip():
        raise AgentDistillError(f"{where}: empty answer (HotPotQA's test set has none; evaluate on its dev set)")
    context: dict[str, list[str]] = {}
    for paragraph in record["context"]:
        ok = (
            isinstance(paragraph, list)
            and len(paragraph) == 2
            and isinstance(paragraph[0], str)
            and isinstance(paragraph[1], list)
        )
        if not ok or not all(isinstance(s, str) for s in paragraph[1]):
            raise AgentDistillError(
                f"{where}: each context entry must be [title, [sentence, ...]], got {str(paragraph)[:80]}"
            )
        context.setdefault(paragraph[0], [s.strip() for s in paragraph[1]])
    for fact in record["supporting_facts"]:
        if not (isinstance(fact, list) and len(fact) == 2 and isinstance(fact[0], str) and isinstance(fact[1], int)):
            raise AgentDistillError(
                f"{where}: each supporting fact must be [title, sentence index], got {str(fact)[:80]}"
            )
    return context


def _task(record: dict[str, Any], context: dict[str, list[str]]) -> Task:
    """The task and the oracle's plan: one hop per supporting sentence, grouped by title in order.

    A supporting sentence among a page's first five is read from the search; a later one gets a
    ``Lookup`` while the step budget lasts. Each hop's statement is its supporting sentence, so the
    thoughts quote what the observations showed.
    """
    order: list[str] = []
    wanted: dict[str, list[int]] = {}
    for title, index in record["supporting_facts"]:
        if title not in context:
            continue  # a title outside the context cannot be searched; the gold answer still finishes
        if title not in wanted:
            order.append(title)
            wanted[title] = []
        if 0 <= index < len(context[title]) and index not in wanted[title]:
            wanted[title].append(index)  # HotPotQA has a few out-of-range indices; they are skipped
    order = order[:MAX_ACTIONS]
    budget = MAX_ACTIONS - len(order)
    hops: list[Hop] = []
    for title in order:
        sentences = context[title]
        early = [i for i in wanted[title] if i < SHOWN_SENTENCES]
        late = sorted(i for i in wanted[title] if i >= SHOWN_SENTENCES)[: max(budget, 0)]
        budget -= len(late)
        hops.append(Hop(title, early[0], statement=_said(sentences[early[0]])) if early else Hop(title))
        hops += [Hop(title, i, lookup_keyword(sentences, i), _said(sentences[i])) for i in late]
    titles = [h.title for h in hops if not h.keyword]
    listed = ", ".join(titles[:-1]) + f" and {titles[-1]}" if len(titles) > 1 else "".join(titles)
    plan = (
        f"I need to search {listed} to answer the question.",
        f"I need to search {listed}, then answer the question.",
    )
    answer = record["answer"]
    said = next((h.statement for h in reversed(hops) if h.statement), "")
    conclusion = (f"{said}. So the answer is {answer}.", f"{said}, so the answer is {answer}.") if said else ()
    return Task(
        id=record["_id"],
        type=record["type"],
        question=record["question"],
        answer=answer,
        hops=tuple(hops),
        plan=plan if titles else ("I can answer this directly.",),
        conclusion=conclusion or (f"So the answer is {answer}.", f"The answer is {answer}."),
    )


def _said(sentence: str) -> str:
    """A supporting sentence as a thought's clause (its final full stop dropped)."""
    return sentence.strip().removesuffix(".")

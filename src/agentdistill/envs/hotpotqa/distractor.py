"""Load a standard HotPotQA distractor-format JSON file as a task bank.

The file is a list of questions (``hotpot_dev_distractor_v1.json`` and friends)::

    [{"_id": "5a8b57f25542995d1e6f1371", "question": "Were Scott Derrickson and Ed Wood of the same
      nationality?", "answer": "yes", "type": "comparison", "level": "hard",
      "supporting_facts": [["Scott Derrickson", 0], ["Ed Wood", 0]],
      "context": [["Ed Wood", ["Edward Davis Wood Jr. ...", "..."]], ["Scott Derrickson", [...]], ...]}]

Each question's context paragraphs become its own local wiki (so ``Search`` only finds those ten
pages). Task ids are the ``_id`` values and task types the ``type`` values. A file has no split of
its own: ``train``, ``dev`` and ``test`` all list every question of the file, in file order. The
oracle searches the supporting-fact titles in order, looks up a supporting sentence a search does
not show, and finishes with the gold answer.
"""

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentdistill.envs.hotpotqa.tasks import SPLITS, Hop, Task, TaskBank
from agentdistill.envs.hotpotqa.wiki import SHOWN_SENTENCES, Wiki, lookup_keyword
from agentdistill.errors import AgentDistillError

REQUIRED = {"_id": str, "question": str, "answer": str, "type": str, "supporting_facts": list, "context": list}
MAX_ACTIONS = 6  # searches + lookups the oracle may spend; the 7th action is Finish


def load_distractor(path: str | Path) -> TaskBank:
    """Read a HotPotQA distractor-format file (cached per path and modification time).

    Args:
        path: the JSON file.

    Returns:
        A ``TaskBank`` whose three splits all hold every question of the file.

    Raises:
        AgentDistillError: the file is missing, is not JSON, or a record is malformed; the message
            names the file, the record and the problem.
    """
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as e:
        raise AgentDistillError(
            f"hotpotqa data file {path}: cannot read it ({e.strerror}); pass an existing JSON file"
        ) from e
    return _load(str(path.resolve()), stamp)


@functools.lru_cache(maxsize=4)
def _load(path: str, _stamp: int) -> TaskBank:
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AgentDistillError(f"hotpotqa data file {path}: not valid JSON ({e})") from e
    if not isinstance(records, list) or not records:
        raise AgentDistillError(
            f"hotpotqa data file {path}: expected a non-empty JSON list of questions, got {type(records).__name__}"
        )
    tasks: dict[str, Task] = {}
    contexts: dict[str, dict[str, list[str]]] = {}
    for n, record in enumerate(records):
        context = _check(record, n, path)
        if record["_id"] in tasks:
            raise AgentDistillError(f"hotpotqa data file {path}: record {n}: duplicate _id {record['_id']!r}")
        tasks[record["_id"]] = _task(record, context)
        contexts[record["_id"]] = context
    ids = list(tasks)
    return TaskBank(tasks, dict.fromkeys(SPLITS, ids), wiki_of=_wikis(contexts))


def _wikis(contexts: dict[str, dict[str, list[str]]]) -> Callable[[str], Wiki]:
    @functools.lru_cache(maxsize=256)
    def wiki_of(task_id: str) -> Wiki:
        return Wiki(contexts[task_id])

    return wiki_of


def _check(record: Any, n: int, path: str) -> dict[str, list[str]]:
    """Validate one record; returns its context as title -> stripped sentences."""
    where = f"hotpotqa data file {path}: record {n}"
    if not isinstance(record, dict):
        raise AgentDistillError(f"{where}: expected an object, got {type(record).__name__}")
    if isinstance(record.get("_id"), str):
        where += f" (_id {record['_id']!r})"
    for key, kind in REQUIRED.items():
        if key not in record:
            raise AgentDistillError(
                f"{where}: missing key {key!r} (distractor-format records need {', '.join(REQUIRED)})"
            )
        if not isinstance(record[key], kind):
            raise AgentDistillError(f"{where}: {key!r} must be a {kind.__name__}, got {type(record[key]).__name__}")
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

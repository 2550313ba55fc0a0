"""HotPotQA task records and the bank of tasks an env serves, synthetic or loaded from a file.

A ``Task`` carries, besides the question and gold answer, the oracle's plan: the ``Hop``s (page
to search, sentence holding the needed fact, the ``Lookup`` keyword that reaches it) and the
wording of its thoughts, so the expert only ever writes what the transcript has shown.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agentdistill.envs.hotpotqa.dump import WikiDump
from agentdistill.envs.hotpotqa.wiki import Wiki
from agentdistill.errors import ConfigError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Hop:
    """One page the oracle must read.

    Attributes:
        title: page to search.
        fact: index of the sentence holding the needed fact; -1 when reaching the page is enough.
        keyword: ``Lookup`` keyword whose first hit is that sentence (used when it is not among the
            first five); empty when no lookup is needed.
        statement: the fact in words, for thoughts (``"Night Harbor was directed by Ann Lee"``);
            may be empty.
        seek: what to find on this page, for thoughts (``"its director"``); may be empty.
    """

    title: str
    fact: int = -1
    keyword: str = ""
    statement: str = ""
    seek: str = ""


@dataclass(frozen=True)
class Task:
    """One question with its gold answer and the oracle's plan.

    Attributes:
        id: task id, ``hotpotqa-<split>-<index>`` (synthetic) or the file's ``_id``.
        type: ``"bridge"`` or ``"comparison"`` (a file's ``type``).
        question: the question text.
        answer: gold answer.
        hops: pages to read, in order.
        plan: wordings of the first thought (one is picked per task id).
        conclusion: wordings of the last thought, before ``Finish``.
        entities: the entities the question names (the disjointness unit between splits).
        template: generator of the question (``"file"`` for loaded data).
    """

    id: str
    type: str
    question: str
    answer: str
    hops: tuple[Hop, ...]
    plan: tuple[str, ...]
    conclusion: tuple[str, ...]
    entities: tuple[str, ...] = ()
    template: str = ""


@dataclass
class TaskBank:
    """Tasks by id, ordered ids per split, and the wiki each task is answered from.

    Attributes:
        tasks: task id -> task.
        split_ids: split name -> ordered task ids.
        wiki_of: task id -> the ``Wiki`` its searches run against.
    """

    tasks: Mapping[str, Task]
    split_ids: dict[str, list[str]]
    wiki_of: Callable[[str], Wiki | WikiDump] = field(repr=False)

    def task(self, task_id: str) -> Task:
        """The task ``task_id``; raises ``ConfigError`` for an unknown id."""
        if task_id not in self.tasks:
            raise ConfigError(f"unknown hotpotqa task id {task_id!r}; ids look like {next(iter(self.tasks), '?')!r}")
        return self.tasks[task_id]

    def ids(self, split: str) -> list[str]:
        """Ordered ids of ``split``; raises ``ConfigError`` for an unknown split."""
        if split not in self.split_ids:
            raise ConfigError(f"unknown hotpotqa split {split!r}; choose one of {', '.join(self.split_ids)}")
        return list(self.split_ids[split])

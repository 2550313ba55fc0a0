"""The embedded HotPotQA environment with ReAct's Search/Lookup/Finish action space.

A transcript (react format; seed 0, ``hotpotqa-dev-0163``, played by the expert)::

    Question: The film The Broken Echo was directed by a person of what nationality?
    Thought 1: I need to search The Broken Echo to find its director, and then find the director's nationality.
    Action 1: Search[The Broken Echo]
    Observation 1: The Broken Echo is a 1952 crime film directed by Samantha Griffin. It stars Sharon Brooks in
        the lead role. Several scenes were shot at night to save money. Its score was praised for its use of strings.
    Thought 2: The Broken Echo was directed by Samantha Griffin. Next, I need to search Samantha Griffin to find
        her nationality.
    Action 2: Search[Samantha Griffin]
    Observation 2: Samantha Griffin (born 1907) is a film director. She was born in Fairby. Samantha Griffin
        directed The Broken Echo (1952). Samantha Griffin directed Frontier of Engines (1970). She is also a keen cyclist.
    Thought 3: The first paragraph of Samantha Griffin does not mention her nationality. I need to look up citizenship.
    Action 3: Lookup[citizenship]
    Observation 3: (Result 1 / 1) She holds Danish citizenship.
    Thought 4: Samantha Griffin is Danish. So the answer is Danish.
    Action 4: Finish[Danish]
    Observation 4: Episode finished, reward = 1

(Long lines are wrapped here; in a transcript each step is one line.) Questions come from a
generated corpus (``questions.py``) or, with ``data``, from HotPotQA's own files: original JSON,
Hugging Face ``hotpot_qa`` JSON / JSON Lines or a ``datasets`` directory, with ReAct's selection of
evaluation questions as the test split (``distractor.py``); each question searches its own context
paragraphs or, with ``wiki``, a Wikipedia dump (``dump.py``). Success is exact match after SQuAD
normalisation.
"""

import re
from pathlib import Path
from typing import Any, ClassVar

from agentdistill.envs.base import StepResult
from agentdistill.envs.hotpotqa.distractor import DataSpec, load_hotpotqa
from agentdistill.envs.hotpotqa.expert import expert_step
from agentdistill.envs.hotpotqa.questions import synthetic_bank
from agentdistill.envs.hotpotqa.scoring import exact_match, f1_score
from agentdistill.envs.hotpotqa.tasks import Task
from agentdistill.envs.hotpotqa.wiki import WikiBrowser
from agentdistill.errors import ConfigError

# ReAct's HotPotQA instruction, with "Wikipedia" made the local wiki.
INSTRUCTION = """Solve a question answering task with interleaving Thought, Action, Observation steps. \
Thought can reason about the current situation, and Action can be three types:
(1) Search[entity], which searches the exact entity in the wiki and returns the first paragraph if it exists. \
If not, it will return some similar entities to search.
(2) Lookup[keyword], which returns the next sentence containing keyword in the current passage.
(3) Finish[answer], which returns the answer and finishes the task."""

_ACTION = re.compile(r"(\w+)\[(.*)\]", re.DOTALL)


class HotpotQAEnv:
    """Multi-hop question answering over a local wiki (see the module docstring).

    Args:
        seed: seed of the generated corpus and questions (ignored with ``data``).
        data: HotPotQA questions: one file or ``datasets`` directory, or one per split
            (``"train=A,test=B"``); ``test`` is ReAct's evaluation selection (``distractor.py``).
        train_size: train questions of the generated corpus (default 3000); more add questions over
            new entities with fresh names, dev and test stay the same (``questions.synthetic_bank``).
        questions: with ``data``, how many of ReAct's shuffled evaluation questions form ``test``
            (and ``dev``, when it has no file of its own); default 500, as in ReAct.
        wiki: with ``data``, a ``{title, text}`` JSON Lines Wikipedia dump that every question
            searches (the full-wiki setting) instead of its own context paragraphs.
    """

    name: ClassVar[str] = "hotpotqa"
    format: ClassVar[str] = "react"
    max_steps: ClassVar[int] = 7
    task_types: ClassVar[tuple[str, ...]] = ("bridge", "comparison")

    def __init__(
        self,
        seed: int = 0,
        data: DataSpec | None = None,
        train_size: int | None = None,
        questions: int | None = None,
        wiki: str | Path | None = None,
    ) -> None:
        self.seed, self.data = seed, data
        if data is not None and train_size is not None:
            raise ConfigError("hotpotqa: train_size applies to the generated corpus, not to a --data file")
        if data is None and (questions is not None or wiki is not None):
            flag = "--questions" if questions is not None else "--wiki"
            raise ConfigError(f"hotpotqa: {flag} applies to HotPotQA's questions; pass them with --data FILE")
        self._bank = synthetic_bank(seed, train_size) if data is None else load_hotpotqa(data, questions, wiki)
        self._task: Task | None = None
        self._browser: WikiBrowser | None = None
        self._steps = 0
        self._done = False
        self._answer: str | None = None

    def splits(self) -> dict[str, int]:
        return {split: len(ids) for split, ids in self._bank.split_ids.items()}

    def task_ids(self, split: str) -> list[str]:
        ids = self._bank.ids(split)
        if not ids and self.data is not None:
            raise ConfigError(
                f"hotpotqa --data {self.data}: the {split} split is empty (one file gives ReAct's --questions to "
                "test, as many more to dev, the rest to train); pass a larger file, fewer --questions, or a file "
                "per split: train=FILE,test=FILE"
            )
        return ids

    def task_type(self, task_id: str) -> str:
        return self._bank.task(task_id).type

    def task_text(self, task_id: str) -> str:
        """The question's first line (a loaded question is shown whole in the first observation)."""
        return self._bank.task(task_id).question.strip().splitlines()[0]

    def task(self, task_id: str) -> Task:
        """The full task record (question, gold answer, the oracle's hops)."""
        return self._bank.task(task_id)

    def instruction(self) -> str:
        return INSTRUCTION

    def reset(self, task_id: str) -> str:
        self._task = self._bank.task(task_id)
        self._browser = WikiBrowser(self._bank.wiki_of(task_id))
        self._steps, self._done, self._answer = 0, False, None
        return f"Question: {self._task.question}"

    def step(self, action: str) -> StepResult:
        """Apply ``Search[entity]``, ``Lookup[keyword]``, ``Finish[answer]`` or ``think[...]`` (any case).

        Anything else answers ``Invalid action: <action>`` with ``info["invalid"] = True``. The
        episode ends at ``Finish`` (reward = exact match) or after ``max_steps`` actions (reward 0).
        """
        if self._task is None or self._browser is None:
            raise RuntimeError("HotpotQAEnv.step() called before reset()")
        action = action.strip()
        if self._done:
            return StepResult(self._finished(), 0.0, True, {"invalid": True})
        self._steps += 1
        m = _ACTION.fullmatch(action)
        verb, arg = (m.group(1).lower(), m.group(2).strip()) if m else ("", "")
        info: dict[str, Any] = {}
        reward = 0.0
        if verb == "search" and arg:
            obs = self._browser.search(arg)
        elif verb == "lookup" and arg:
            obs = self._browser.lookup(arg)
        elif verb == "finish":
            self._answer, self._done = arg, True
            reward = float(exact_match(arg, self._task.answer))
            obs = self._finished()
            info["answer"] = arg
        elif verb == "think":
            obs = "OK."
        else:
            obs, info["invalid"] = f"Invalid action: {action}", True
        if self._steps >= self.max_steps:
            self._done = True  # out of actions without finishing: reward 0
        return StepResult(obs, reward, self._done, info)

    def expert_step(self) -> tuple[str | None, str]:
        if self._task is None or self._browser is None:
            raise RuntimeError("HotpotQAEnv.expert_step() called before reset()")
        return expert_step(self._task, self._browser)

    def result(self) -> dict[str, Any]:
        answer, gold = self._answer, self._task.answer if self._task else ""
        em = float(answer is not None and exact_match(answer, gold))
        f1 = f1_score(answer, gold) if answer is not None else 0.0
        return {"success": em == 1.0, "reward": em, "em": em, "f1": f1, "answer": answer}

    def _finished(self) -> str:
        """ReAct's closing observation (its HotPotQA wrapper reports the exact-match reward)."""
        em = self._answer is not None and self._task is not None and exact_match(self._answer, self._task.answer)
        return f"Episode finished, reward = {int(em)}"

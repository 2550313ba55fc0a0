"""``WebShopEnv``: the embedded WebShop, with the text-mode pages of the real benchmark.

Pages are search -> results (10 per page) -> item -> Description / Features / Reviews, their
lines joined with "\\n"; the first observation is the search page with the instruction. Actions
are ``search[query]`` (search page only), ``click[button]`` for any bracketed text on the page,
and ``think[...]`` (answered "OK.", not counted). Anything else is answered "Invalid action!".
Buy Now ends the episode with WebShop's reward; 15 actions without buying end it with 0.

Example (an item page)::

    [Back to Search]
    [< Prev]
    size [5 ounce] [12 ounce] [travel kit]
    scent [bright citrus] [calming lavender] [unscented]
    Brightwell Long Lasting Natural Ingredients Paraben Free Deodorant
    Price: $15.50
    Rating: N.A.
    [Description]
    [Features]
    [Reviews]
    [Buy Now]
"""

import json
import re
from dataclasses import asdict
from typing import Any, ClassVar

from agentdistill.envs.base import StepResult
from agentdistill.envs.webshop.catalog import CATEGORIES, Goal, Product
from agentdistill.envs.webshop.expert import Expert
from agentdistill.envs.webshop.reward import reward_breakdown
from agentdistill.envs.webshop.search import RESULTS_PER_PAGE, search_index
from agentdistill.envs.webshop.tasks import Task, task_set
from agentdistill.envs.webshop.text import (
    click_target,
    done_text,
    item_text,
    results_text,
    search_text,
    subpage_text,
)
from agentdistill.errors import ConfigError

INVALID = "Invalid action!"
ACTION = re.compile(r"(search|click|think)\[(.*)\]", re.DOTALL)
INSTRUCTION = """\
You are shopping on WebShop for the product described in the instruction.
Each turn, write exactly one action:
search[query] - search the catalog (only on the search page).
click[button] - click a button shown in brackets on the current page: an item id, an option value, \
Next >, < Prev, Back to Search, Description, Features, Reviews or Buy Now.
think[thought] - reason about what to do next; it is answered with OK.
Buy the product that matches the instruction, with its options, within 15 actions."""


class WebShopEnv:
    """The embedded WebShop (DESIGN §5): a generated catalog, BM25 search and WebShop's reward.

    Args:
        seed: fixes the catalog, the search index and every split's tasks (all cached per seed).
        train_size: train tasks (default 3000); more add tasks over fresh catalogs with new ASINs,
            dev and test stay the same (``tasks.task_set``).
    """

    name: ClassVar[str] = "webshop"
    format: ClassVar[str] = "webshop"
    max_steps: ClassVar[int] = 15
    task_types: ClassVar[tuple[str, ...]] = CATEGORIES

    def __init__(self, seed: int = 0, train_size: int | None = None) -> None:
        self.seed = seed
        tasks = task_set(seed, train_size)
        self._splits, self._tasks, self._products = tasks.splits, tasks.by_id, tasks.products
        self._index = search_index(seed)
        self._task: Task | None = None

    # -- task sets ---------------------------------------------------------------------------

    def splits(self) -> dict[str, int]:
        return {split: len(tasks) for split, tasks in self._splits.items()}

    def task_ids(self, split: str) -> list[str]:
        if split not in self._splits:
            raise ConfigError(f"unknown webshop split {split!r}; choose one of {', '.join(self._splits)}")
        return [t.id for t in self._splits[split]]

    def _get_task(self, task_id: str) -> Task:
        if task_id not in self._tasks:
            raise ConfigError(f"unknown webshop task {task_id!r}; ids look like 'webshop-test-0042'")
        return self._tasks[task_id]

    def task_type(self, task_id: str) -> str:
        return self._get_task(task_id).goal.category

    def task_text(self, task_id: str) -> str:
        """The instruction, e.g. "i need a long lasting deodorant in bright citrus scent, and price ..."."""
        return self._get_task(task_id).goal.instruction

    def goal(self, task_id: str) -> Goal:
        """The structured goal behind a task's instruction."""
        return self._get_task(task_id).goal

    def instruction(self) -> str:
        return INSTRUCTION

    # -- episode -----------------------------------------------------------------------------

    def reset(self, task_id: str) -> str:
        self._task = self._get_task(task_id)
        self._index = search_index(self.seed, self._task.shard)  # extra train tasks shop in their own catalog
        self._page = "search"
        self._results: list[str] = []
        self._page_no = 1
        self._item: Product | None = None
        self._chosen: dict[str, str] = {}
        self._steps = 0
        self._reward = 0.0
        self._done = False
        self._expert = Expert(self._task.goal, task_id)
        return self._render()

    def step(self, action: str) -> StepResult:
        if self._task is None:
            raise RuntimeError("call reset(task_id) before step()")
        m = ACTION.fullmatch(action.strip())
        if m and m.group(1) == "think":
            return StepResult("OK.", 0.0, self._done, {"think": True})
        if self._done:
            return StepResult(INVALID, 0.0, True, {"invalid": True})
        self._steps += 1
        info: dict[str, Any] = {}
        ok = m is not None and (self._search(m.group(2)) if m.group(1) == "search" else self._click(m.group(2)))
        if self._page == "bought":
            self._done = True
            info["purchased"] = self._item.asin if self._item else None
            info["breakdown"] = self._breakdown
            return StepResult(self._render(), self._reward, True, info)
        obs = self._render() if ok else INVALID
        if not ok:
            info["invalid"] = True
        if self._steps >= self.max_steps:
            self._done = True  # out of actions without buying: reward 0
        return StepResult(obs, 0.0, self._done, info)

    def result(self) -> dict[str, Any]:
        return {"success": self._reward >= 1.0 - 1e-9, "reward": self._reward, "score": 100.0 * self._reward}

    def expert_step(self) -> tuple[str | None, str]:
        if self._task is None:
            raise RuntimeError("call reset(task_id) before expert_step()")
        if self._page == "search":
            return self._expert.on_search_page()
        if self._page == "results":
            return self._expert.on_results(self._listings(), self._has_next())
        if self._page == "item" and self._item is not None:
            return self._expert.on_item(self._item, self._chosen)
        return None, "click[< Prev]"

    # -- actions -----------------------------------------------------------------------------

    def _search(self, query: str) -> bool:
        if self._page != "search" or not query.strip():
            return False
        self._results = self._index.search(query)
        self._page, self._page_no = "results", 1
        return True

    def _click(self, button: str) -> bool:
        results = self._page == "results"
        target = click_target(
            self._page,
            button,
            [asin for asin, _, _ in self._listings()] if results else (),
            results and self._page_no > 1,
            results and self._has_next(),
            self._item.options if self._item is not None else (),
        )
        if target is None:
            return False
        kind, arg = target
        if kind == "search":
            self._page, self._item, self._chosen = "search", None, {}
        elif kind == "results" and arg:
            self._page_no += arg
        elif kind == "results":
            self._page, self._item, self._chosen = "results", None, {}
        elif kind == "item" and arg:
            self._page, self._item, self._chosen = "item", self._products[arg], {}
        elif kind == "item":
            self._page = "item"
        elif kind == "subpage":
            self._page = arg.lower()
        elif kind == "buy":
            assert self._task is not None and self._item is not None
            breakdown = reward_breakdown(self._task.goal, self._item, self._chosen)
            self._breakdown, self._reward = asdict(breakdown), breakdown.reward
            self._page = "bought"
        else:  # an option
            dim, value = arg
            self._chosen[dim] = value
        return True

    # -- pages -------------------------------------------------------------------------------

    def _listings(self) -> list[tuple[str, str, float]]:
        start = (self._page_no - 1) * RESULTS_PER_PAGE
        return [
            (a, self._products[a].title, self._products[a].price)
            for a in self._results[start : start + RESULTS_PER_PAGE]
        ]

    def _has_next(self) -> bool:
        return self._page_no * RESULTS_PER_PAGE < len(self._results)

    def _render(self) -> str:
        assert self._task is not None
        page, item = self._page, self._item
        if page == "search":
            return search_text(self._task.goal.instruction)
        if page == "results":
            listings = [(asin, title, f"${price:.2f}") for asin, title, price in self._listings()]
            return results_text(self._page_no, len(self._results), self._page_no > 1, self._has_next(), listings)
        assert item is not None
        if page == "bought":
            return done_text("None", item.asin, json.dumps(self._chosen), self._reward)
        if page == "item":
            return item_text(item.options, item.title, f"${item.price:.2f}", "N.A.")
        if page == "description":
            return subpage_text([item.description])
        return subpage_text(item.features if page == "features" else item.reviews)

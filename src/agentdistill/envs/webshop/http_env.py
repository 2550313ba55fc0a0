"""``webshop-http``: play a server with WebShop's URLs (the real princeton-nlp/WebShop app, or
``agentdistill serve-webshop``) and write the observations the embedded ``webshop`` env writes.

    agentdistill collect --env webshop-http --webshop_url http://127.0.0.1:3000 --agent MODEL --split test

Actions become URLs as ReAct's WebShop harness makes them (``search[q]``: results page 1; ``click``
on an ASIN: its item page; on an option value: the item page with that option chosen; ``Buy Now``:
the done page, ...). Each page's HTML is read by ``pages.py`` and written as text by ``text.py``, the
functions the embedded env writes its pages with. Whether a click is valid is decided here from the
last page, by the embedded env's rules; an action the page does not offer is ``Invalid action!`` and
sends no request, and so is one the server answers with an HTTP error.

Tasks: ``webshop-<split>-<k>`` plays session ``fixed_<offset + k>`` (``routes.GOAL_OFFSETS``). Split
sizes come from the server's hidden ``#splits`` (``serve-webshop``), else WebShop's layout: 500 test,
1000 dev and 10,587 train goals (its 12,087 human-written instructions). The scripted expert needs a
task's goal before the purchase; only ``serve-webshop`` shows it (hidden ``#goal``), the real app
shows it after the purchase only, so there ``expert_step`` is an error and trajectories come from a
model (``--agent MODEL``).
"""

import contextlib
import json
import re
from typing import Any, ClassVar
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from agentdistill.envs.base import StepResult
from agentdistill.envs.webshop.catalog import CATEGORIES, Goal, Product
from agentdistill.envs.webshop.env import ACTION, INSTRUCTION, INVALID
from agentdistill.envs.webshop.expert import Expert
from agentdistill.envs.webshop.pages import (
    ItemPage,
    ResultsPage,
    TextNode,
    read_done,
    read_hidden_json,
    read_instruction,
    read_item,
    read_results,
    read_subpage,
    text_nodes,
)
from agentdistill.envs.webshop.routes import (
    done_url,
    index_url,
    item_url,
    keywords_of,
    search_url,
    session_id,
    sub_url,
)
from agentdistill.envs.webshop.text import (
    click_target,
    done_text,
    item_text,
    results_text,
    search_text,
    subpage_text,
)
from agentdistill.errors import AgentDistillError, ConfigError

WEBSHOP_SPLITS = {"train": 10587, "dev": 1000, "test": 500}  # the real app's goal list, as its baselines split it
_TASK_ID = re.compile(r"webshop-(train|dev|test)-(\d+)")
_PRICE = re.compile(r"\d+(?:\.\d+)?")


class WebShopHTTPEnv:
    """WebShop over HTTP (see the module docstring).

    Args:
        url: the server, e.g. ``http://127.0.0.1:3000``; it must answer ``/fixed_0`` with a search page.
        seed: unused (the server's own ``--seed`` fixes its tasks); accepted like every env's.
        train_size: use the first ``train_size`` train tasks (at most what the server has, where it says).
        timeout: seconds to wait for a page (the real app loads its catalog on its first request).

    Raises:
        ConfigError: no ``url``, the server cannot be reached or is not a WebShop server, or
            ``train_size`` is out of range; one line each, before any episode.
    """

    name: ClassVar[str] = "webshop-http"
    format: ClassVar[str] = "webshop"
    max_steps: ClassVar[int] = 15
    task_types: ClassVar[tuple[str, ...]] = CATEGORIES  # serve-webshop's; the real app's show as "webshop"

    def __init__(
        self, url: str | None = None, seed: int = 0, train_size: int | None = None, timeout: float = 120.0
    ) -> None:
        if not url:
            raise ConfigError(
                "webshop-http needs a server: pass --webshop_url http://HOST:PORT (agentdistill serve-webshop starts one)"
            )
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"--webshop_url {url!r}: give an http(s) address, e.g. http://127.0.0.1:3000")
        self.url, self.seed, self.timeout = url.rstrip("/"), seed, timeout
        probe = self._probe()
        sizes = json.loads(probe) if probe else dict(WEBSHOP_SPLITS)
        if train_size is not None:
            if train_size < 1:
                raise ConfigError(f"webshop-http train_size must be >= 1; got {train_size}")
            if probe and train_size > sizes["train"]:
                raise ConfigError(
                    f"webshop-http: the server at {self.url} has {sizes['train']} train tasks, not {train_size}; "
                    "restart it with agentdistill serve-webshop --train_size N or ask for fewer"
                )
            sizes["train"] = train_size
        self._sizes: dict[str, int] = sizes
        self._tasks: dict[str, tuple[str, Goal | None]] = {}  # task id -> (instruction, goal if shown)
        self._session: str | None = None

    # -- server ------------------------------------------------------------------------------

    def _fetch(self, path: str) -> list[TextNode]:
        """The text nodes of ``self.url + path``.

        Raises:
            HTTPError: the server answered with an error status.
            AgentDistillError: no answer at all (connection refused, timeout).
        """
        try:
            with urlopen(Request(self.url + path, headers={"User-Agent": "agentdistill"}), timeout=self.timeout) as r:
                return text_nodes(r.read().decode("utf-8", errors="replace"))
        except HTTPError:
            raise
        except (URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise AgentDistillError(
                f"webshop-http: no answer from {self.url} ({reason}); start the server "
                "(agentdistill serve-webshop, or WebShop's web_agent_site app) or fix --webshop_url"
            ) from None

    def _probe(self) -> str | None:
        """Check the server answers ``/fixed_0`` with a search page; its ``#splits`` JSON if it shows one."""
        try:
            nodes = self._fetch(index_url(session_id("test", 0)))
        except HTTPError as e:
            raise ConfigError(
                f"webshop-http: {self.url}/fixed_0 answered HTTP {e.code}; is --webshop_url a WebShop server?"
            ) from None
        except AgentDistillError as e:
            raise ConfigError(str(e)) from None
        if not read_instruction(nodes):
            raise ConfigError(
                f"webshop-http: {self.url}/fixed_0 shows no instruction (#instruction-text); "
                "is --webshop_url a WebShop server?"
            )
        return read_hidden_json(nodes, "splits")

    def _task_info(self, task_id: str) -> tuple[str, Goal | None]:
        if task_id not in self._tasks:
            split, k = self._parse_id(task_id)
            try:
                nodes = self._fetch(index_url(session_id(split, k)))
            except HTTPError as e:
                raise ConfigError(f"webshop-http: {self.url} has no task {task_id} (HTTP {e.code})") from None
            goal = read_hidden_json(nodes, "goal")
            self._tasks[task_id] = (read_instruction(nodes), _goal(json.loads(goal)) if goal else None)
        return self._tasks[task_id]

    # -- task sets ---------------------------------------------------------------------------

    def _parse_id(self, task_id: str) -> tuple[str, int]:
        m = _TASK_ID.fullmatch(task_id)
        if not m or int(m.group(2)) >= self._sizes[m.group(1)]:
            raise ConfigError(f"unknown webshop-http task {task_id!r}; ids look like 'webshop-test-0042'")
        return m.group(1), int(m.group(2))

    def splits(self) -> dict[str, int]:
        return dict(self._sizes)

    def task_ids(self, split: str) -> list[str]:
        if split not in self._sizes:
            raise ConfigError(f"unknown webshop-http split {split!r}; choose one of {', '.join(self._sizes)}")
        return [f"webshop-{split}-{k:04d}" for k in range(self._sizes[split])]

    def task_type(self, task_id: str) -> str:
        goal = self._task_info(task_id)[1]
        return goal.category if goal else "webshop"

    def task_text(self, task_id: str) -> str:
        return self._task_info(task_id)[0]

    def instruction(self) -> str:
        return INSTRUCTION

    # -- episode -----------------------------------------------------------------------------

    def reset(self, task_id: str) -> str:
        instruction, goal = self._task_info(task_id)
        self._task_id, self._session = task_id, session_id(*self._parse_id(task_id))
        self._page, self._keywords, self._chosen = "search", [""], {}
        self._results: ResultsPage | None = None
        self._item: ItemPage | None = None
        self._asin = ""
        self._steps, self._reward, self._done = 0, 0.0, False
        self._expert = Expert(goal, task_id) if goal else None
        return search_text(instruction)

    def step(self, action: str) -> StepResult:
        if self._session is None:
            raise RuntimeError("call reset(task_id) before step()")
        m = ACTION.fullmatch(action.strip())
        if m and m.group(1) == "think":
            return StepResult("OK.", 0.0, self._done, {"think": True})
        if self._done:
            return StepResult(INVALID, 0.0, True, {"invalid": True})
        self._steps += 1
        info: dict[str, Any] = {}
        obs = None
        if m:
            try:
                obs = self._search(m.group(2)) if m.group(1) == "search" else self._click(m.group(2))
            except HTTPError as e:
                info["http_status"] = e.code  # the server refused the page: the action did nothing
        if self._page == "bought":
            self._done = True
            info.update(self._purchase)
            return StepResult(obs or "", self._reward, True, info)
        if obs is None:
            obs, info["invalid"] = INVALID, True
        if self._steps >= self.max_steps:
            self._done = True  # out of actions without buying: reward 0
        return StepResult(obs, 0.0, self._done, info)

    def result(self) -> dict[str, Any]:
        return {"success": self._reward >= 1.0 - 1e-9, "reward": self._reward, "score": 100.0 * self._reward}

    def expert_step(self) -> tuple[str | None, str]:
        """The embedded env's expert, reading the same pages; needs the goal (``serve-webshop`` only)."""
        if self._session is None:
            raise RuntimeError("call reset(task_id) before expert_step()")
        if self._expert is None:
            raise ConfigError(
                f"webshop-http: the server at {self.url} does not show task goals before a purchase (the real "
                "WebShop app does not), so there is no scripted expert; collect with a model: --agent MODEL"
            )
        if self._page == "search":
            return self._expert.on_search_page()
        if self._page == "results" and self._results is not None:
            listings = [(a, t, _price(p)) for a, t, p in self._results.listings]
            return self._expert.on_results(listings, self._results.has_next)
        if self._page == "item" and self._item is not None:
            return self._expert.on_item(self._shown_product(), self._chosen)
        return None, "click[< Prev]"

    # -- actions: each builds the next URL, fetches it, and only then changes the state ----------

    def _search(self, query: str) -> str | None:
        if self._page != "search" or not query.strip():
            return None
        keywords = keywords_of(query)
        return self._show_results(keywords, 1)

    def _show_results(self, keywords: list[str], page_no: int) -> str:
        assert self._session is not None
        results = read_results(self._fetch(search_url(self._session, keywords, page_no)))
        self._page, self._keywords, self._results, self._item, self._chosen = "results", keywords, results, None, {}
        return results_text(results.page_no, results.total, results.has_prev, results.has_next, results.listings)

    def _show_item(self, asin: str, chosen: dict[str, str]) -> str:
        assert self._session is not None and self._results is not None
        item = read_item(self._fetch(item_url(self._session, asin, self._keywords, self._results.page_no, chosen)))
        self._page, self._asin, self._item, self._chosen = "item", asin, item, chosen
        return item_text(item.options, item.title, item.price, item.rating)

    def _click(self, button: str) -> str | None:
        s, r, item = self._session, self._results, self._item
        assert s is not None
        target = click_target(
            self._page,
            button,
            [asin for asin, _, _ in r.listings] if r is not None else (),
            r is not None and r.has_prev,
            r is not None and r.has_next,
            item.options if item is not None else (),
        )
        if target is None:
            return None
        kind, arg = target
        if kind == "search":
            instruction = read_instruction(self._fetch(index_url(s)))
            self._page, self._results, self._item, self._chosen = "search", None, None, {}
            return search_text(instruction)
        assert r is not None  # every other page was reached from a results page
        if kind == "results":
            return self._show_results(self._keywords, r.page_no + arg)
        if kind == "item":
            return self._show_item(arg, {}) if arg else self._show_item(self._asin, self._chosen)
        if kind == "subpage":
            lines = read_subpage(
                self._fetch(sub_url(s, self._asin, self._keywords, r.page_no, arg, self._chosen)), arg
            )
            self._page = arg
            return subpage_text(lines)
        if kind == "buy":
            done = read_done(self._fetch(done_url(s, self._asin, self._chosen)))
            self._page, self._reward = "bought", done.reward
            self._purchase: dict[str, Any] = {"purchased": done.asin or self._asin}
            if done.reward_info:
                with contextlib.suppress(json.JSONDecodeError):  # the real app prints it with pprint, not as JSON
                    self._purchase["breakdown"] = json.loads(done.reward_info)
            return done_text(done.code, done.asin, done.options_json, done.reward)
        dim, value = arg  # an option
        return self._show_item(self._asin, {**self._chosen, dim: value})

    def _shown_product(self) -> Product:
        """The item as its page shows it: all the expert reads (ASIN, title, price, options)."""
        assert self._item is not None
        options = tuple((d, tuple(vs)) for d, vs in self._item.options)
        return Product(self._asin, "", "", "", self._item.title, _price(self._item.price), (), options, "", (), ())


def _price(text: str) -> float:
    """The first amount of a price text (``"$15.50"``, ``"$10.99 to $15.99"``); inf when there is none."""
    m = _PRICE.search(text)
    return float(m.group()) if m else float("inf")


def _goal(d: dict[str, Any]) -> Goal:
    return Goal(
        d["category"],
        d["noun"],
        tuple(d["attributes"]),
        tuple((dim, v) for dim, v in d["options"]),
        float(d["price_cap"]),
        d["target"],
        d["instruction"],
    )

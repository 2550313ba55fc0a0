"""The embedded WebShop as a website with the real app's URLs and page structure (``agentdistill serve-webshop``).

    agentdistill serve-webshop --port 3000 --seed 0
    curl http://127.0.0.1:3000/fixed_0

Routes follow princeton-nlp/WebShop (``routes.py``) and each page has the ids, classes and tags of
its template there, so ``pages.py`` reads this server and the real one alike. Session ``fixed_<i>``
plays goal ``i``: test task ``k`` is goal ``k``, dev task ``k`` goal ``500 + k``, train task ``k``
goal ``1500 + k`` (WebShop's own split of its goal list). A page is a pure function of its URL (the
session only picks the goal), so any number of agents can play at once.

Two additions the real app lacks, both hidden (``display:none``) on the search page: the task's
structured goal (``#goal``, JSON; the real app shows its goal only on the page after a purchase) and
the number of tasks per split (``#splits``). They are for the scripted expert and the task lists of
``http_env.py`` and never part of an observation.
"""

import dataclasses
import json
from collections.abc import Sequence
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from agentdistill.envs.webshop.catalog import Product
from agentdistill.envs.webshop.reward import reward_breakdown
from agentdistill.envs.webshop.routes import (
    GOAL_OFFSETS,
    SESSION_PREFIX,
    Route,
    done_url,
    index_url,
    item_url,
    keywords_of,
    parse_path,
    search_url,
    sub_url,
)
from agentdistill.envs.webshop.search import RESULTS_PER_PAGE, search_index
from agentdistill.envs.webshop.tasks import Task, task_set
from agentdistill.envs.webshop.text import SUBPAGES


class NotFound(Exception):
    """A URL with no page: an unknown session, ASIN or route."""


def _page(body: str) -> str:
    return f'<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>WebShop</title></head>\n<body>\n{body}\n</body>\n</html>\n'


def _button(action: str, label: str) -> str:
    return f'<form method="post" action="{escape(action)}"><button type="submit">{escape(label)}</button></form>'


def _instruction(task: Task, keywords: Sequence[str] | None = None) -> str:
    query = "" if keywords is None else f"<h4>Current Query: {escape(' '.join(keywords))}</h4>"
    return f'<div id="instruction-text"><h4>Instruction: {escape(task.goal.instruction)}</h4>{query}</div>'


def _hidden_json(element_id: str, value: object) -> str:
    return f'<div id="{element_id}"><pre>{escape(json.dumps(value))}</pre></div>'


class Shop:
    """The pages of the embedded shop of ``seed`` (``train_size`` as in ``WebShopEnv``), by URL.

    Raises:
        ConfigError: ``train_size`` < 1.
    """

    def __init__(self, seed: int = 0, train_size: int | None = None) -> None:
        self.seed = seed
        tasks = task_set(seed, train_size)
        self.products = tasks.products
        self.splits = {split: len(ts) for split, ts in tasks.splits.items()}
        self.goals: dict[int, Task] = {
            GOAL_OFFSETS[split] + k: task for split, ts in tasks.splits.items() for k, task in enumerate(ts)
        }
        assert len(self.goals) == sum(self.splits.values()), "a split outgrew its goal range"

    def describe(self) -> str:
        """Where each split's sessions are, e.g. ``test fixed_0..fixed_499``."""
        return ", ".join(
            f"{split} {SESSION_PREFIX}{GOAL_OFFSETS[split]}..{SESSION_PREFIX}{GOAL_OFFSETS[split] + n - 1}"
            for split, n in sorted(self.splits.items(), key=lambda kv: GOAL_OFFSETS[kv[0]])
        )

    def render(self, path: str) -> str:
        """The HTML page of a request ``path``.

        Raises:
            NotFound: no such route, session or ASIN (the message says which).
        """
        try:
            route = parse_path(path)
        except ValueError as e:
            raise NotFound(str(e)) from None
        task = self._task(route.session)
        if route.kind == "index":
            return self._index(route, task)
        if route.kind == "search":
            return self._results(route, task)
        product = self.products.get(route.asin)
        if product is None:
            raise NotFound(f"no product with ASIN {route.asin!r}")
        if route.kind == "item":
            return self._item(route, task, product)
        if route.kind == "sub":
            return self._sub(route, task, product)
        return self._done(route, task, product)

    def _task(self, session: str) -> Task:
        index = session.removeprefix(SESSION_PREFIX)
        if not session.startswith(SESSION_PREFIX) or not index.isdigit() or int(index) not in self.goals:
            raise NotFound(f"no session {session!r}; sessions are {self.describe()}")
        return self.goals[int(index)]

    # -- pages ------------------------------------------------------------------------------

    def _index(self, route: Route, task: Task) -> str:
        return _page(
            '<div id="logo"><h2>WebShop</h2></div>\n'
            f'<div id="instruction-text"><h4>Instruction: <br>{escape(task.goal.instruction)}</h4></div>\n'
            f'<form method="post" action="{escape(index_url(route.session))}">'
            '<input type="text" name="search_query" required/><button type="submit">Search</button></form>\n'
            '<div style="display:none">'
            + _hidden_json("goal", dataclasses.asdict(task.goal))
            + _hidden_json("splits", self.splits)
            + "</div>"
        )

    def _results(self, route: Route, task: Task) -> str:
        asins = search_index(self.seed, task.shard).search(" ".join(route.keywords))
        page, kw, s = route.page, route.keywords, route.session
        start = (page - 1) * RESULTS_PER_PAGE
        buttons = [_button(index_url(s), "Back to Search")]
        if page > 1:
            buttons.append(_button(search_url(s, kw, page - 1), "< Prev"))
        if page * RESULTS_PER_PAGE < len(asins):
            buttons.append(_button(search_url(s, kw, page + 1), "Next >"))
        items = [
            '<div class="grid-item">'
            f'<h4 class="product-asin"><a class="product-link" href="{escape(item_url(s, p.asin, kw, page, {}))}">'
            f"{p.asin}</a></h4>"
            f'<h4 class="product-title">{escape(p.title)}</h4>'
            f'<h5 class="product-price">${p.price:.2f}</h5></div>'
            for p in (self.products[a] for a in asins[start : start + RESULTS_PER_PAGE])
        ]
        return _page(
            _instruction(task, kw)
            + f"\n<h1>Results</h1><p>Page {page} ({start + 1}-{page * RESULTS_PER_PAGE}) of {len(asins)} total results</p>\n"
            + "".join(buttons)
            + '\n<div class="grid-container">\n'
            + "\n".join(items)
            + "\n</div>"
        )

    def _item(self, route: Route, task: Task, product: Product) -> str:
        s, asin, kw, page, chosen = route.session, product.asin, route.keywords, route.page, route.options
        rows = []
        for dim, values in product.options:
            radios = []
            for i, v in enumerate(values):
                url = item_url(s, asin, kw, page, {**chosen, dim: v})
                checked = " checked" if chosen.get(dim) == v else ""
                radios.append(
                    f'<input type="radio" id="radio_{escape(dim)}{i}" name="{escape(dim)}" value="{escape(v)}" '
                    f'data-url="{escape(url)}" onclick="location.href=this.dataset.url"{checked}>'
                    f'<label for="radio_{escape(dim)}{i}">{escape(v)}</label>'
                )
            rows.append(
                f'<div class="row"><h4>{escape(dim)}</h4><div class="radio-toolbar">{"".join(radios)}</div></div>'
            )
        subs = "".join(_button(sub_url(s, asin, kw, page, sub, chosen), sub) for sub in SUBPAGES)
        return _page(
            _instruction(task, kw)
            + "\n"
            + _button(index_url(s), "Back to Search")
            + _button(search_url(s, kw, page), "< Back to Results")
            + "\n"
            + "\n".join(rows)
            + f"\n<h2>{escape(product.title)}</h2><h4>Price: ${product.price:.2f}</h4><h4>Rating: N.A.</h4>\n"
            + subs
            + _button(done_url(s, asin, chosen), "Buy Now")
        )

    def _sub(self, route: Route, task: Task, product: Product) -> str:
        if route.sub not in SUBPAGES:
            raise NotFound(f"no sub page {route.sub!r}; choose one of {', '.join(SUBPAGES)}")
        if route.sub == "Description":
            panel = f'<div name="description"><p class="product-info">{escape(product.description)}</p></div>'
        elif route.sub == "Features":
            points = "".join(f'<li><p class="product-info">{escape(f)}</p></li>' for f in product.features)
            panel = f'<div name="bulletpoints"><ul>{points}</ul></div>'
        else:
            panel = f'<div name="reviews">{"".join(_review(r) for r in product.reviews)}</div>'
        back = item_url(route.session, product.asin, route.keywords, route.page, route.options)
        return _page(
            _instruction(task, route.keywords)
            + "\n"
            + _button(index_url(route.session), "Back to Search")
            + _button(back, "< Prev")
            + f"\n{panel}"
        )

    def _done(self, route: Route, task: Task, product: Product) -> str:
        breakdown = reward_breakdown(task.goal, product, route.options)
        return _page(
            '<div id="thankyou"><h1>Thank you for shopping with us!</h1></div>\n<div id="stats">'
            "<h3>Your code: </h3><p><pre>None</pre> (Paste it in your MTurk interface.)</p>\n"
            '<div style="display:none"><h2>Purchased</h2>'
            f'<h4 id="asin">asin<pre>{escape(product.asin)}</pre></h4>'
            f'<h4 id="options">options<pre>{escape(json.dumps(route.options))}</pre></h4></div>\n'
            f'<h3 id="reward">Your score (min 0.0, max 1.0)<pre>{breakdown.reward}</pre></h3>\n'
            '<h4 hidden>Reward Details <div id="reward_info">'
            f"<pre>{escape(json.dumps(dataclasses.asdict(breakdown)))}</pre></div></h4></div>"
        )


def _review(review: str) -> str:
    """``"5 stars: Works well."`` as WebShop's review card: the score in a ``<span>``, the text in ``p.content``."""
    score, _, body = review.partition(" stars: ")
    return (
        f'<div class="card"><p class="text-left"><span>{escape(score)}</span></p>'
        f'<p class="content">{escape(body)}</p></div>'
    )


class _Handler(BaseHTTPRequestHandler):
    shop: Shop  # set on the subclass make_server builds

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        try:
            body, status = self.shop.render(path), HTTPStatus.OK
        except NotFound as e:
            body, status = _page(f"<h1>Not found</h1><p>{escape(str(e))}</p>"), HTTPStatus.NOT_FOUND
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        """The search form posts its query to the session's index page (a redirect to page 1 of the
        results, as in WebShop); every other button posts to the page it shows."""
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode("utf-8")) if length else {}
        query = form.get("search_query", [""])[0]
        path = urlsplit(self.path).path
        if query:
            try:
                route = parse_path(path)
            except ValueError:
                route = None
            if route is not None and route.kind == "index":
                self.send_response(HTTPStatus.FOUND)
                self.send_header("Location", search_url(route.session, keywords_of(query), 1))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # one line per request would drown the agent's progress bar


def make_server(shop: Shop, host: str = "127.0.0.1", port: int = 3000) -> ThreadingHTTPServer:
    """A threaded HTTP server for ``shop`` bound to ``host:port`` (port 0 picks a free one); call
    ``serve_forever()`` on it, and ``shutdown()`` from another thread to stop it.

    Raises:
        OSError: the address cannot be bound (in use, not local).
    """
    handler = type("ShopHandler", (_Handler,), {"shop": shop})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server

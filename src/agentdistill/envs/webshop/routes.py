"""WebShop's URL scheme (the routes of princeton-nlp/WebShop ``web_agent_site/app.py``), built and parsed.

    /<session>                                                          search page with the instruction
    /search_results/<session>/<keywords>/<page>                         results page <page> (10 per page)
    /item_page/<session>/<asin>/<keywords>/<page>/<options>             an item, with the options chosen so far
    /item_sub_page/<session>/<asin>/<keywords>/<page>/<sub>/<options>   its Description | Features | Reviews
    /done/<session>/<asin>/<options>                                    the purchase and its reward

``keywords`` is a Python list literal of words (``['bright', 'citrus', 'deodorant']``, what WebShop's
search form posts) or one plain string, ``options`` a Python dict literal (``{'scent': 'bright citrus'}``),
both percent-encoded. Session ``fixed_<i>`` plays goal ``i`` of the server's goal list; WebShop's
baselines take goals 0-499 as the test split, 500-1499 as dev and 1500 on as train (``GOAL_OFFSETS``).
"""

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

GOAL_OFFSETS: dict[str, int] = {"test": 0, "dev": 500, "train": 1500}
SESSION_PREFIX = "fixed_"


def session_id(split: str, index: int) -> str:
    """The session that plays task ``index`` of ``split``: ``fixed_<goal index>``."""
    return f"{SESSION_PREFIX}{GOAL_OFFSETS[split] + index}"


def _seg(value: str) -> str:
    return quote(value, safe="")


def keywords_of(query: str) -> list[str]:
    """The keyword list WebShop's search form makes of a query: lower-cased, split on spaces."""
    return query.lower().split(" ")


def index_url(session: str) -> str:
    return f"/{_seg(session)}"


def search_url(session: str, keywords: Sequence[str], page: int) -> str:
    return f"/search_results/{_seg(session)}/{_seg(str(list(keywords)))}/{page}"


def item_url(session: str, asin: str, keywords: Sequence[str], page: int, options: Mapping[str, str]) -> str:
    return f"/item_page/{_seg(session)}/{_seg(asin)}/{_seg(str(list(keywords)))}/{page}/{_seg(str(dict(options)))}"


def sub_url(session: str, asin: str, keywords: Sequence[str], page: int, sub: str, options: Mapping[str, str]) -> str:
    kw = _seg(str(list(keywords)))
    return f"/item_sub_page/{_seg(session)}/{_seg(asin)}/{kw}/{page}/{_seg(sub)}/{_seg(str(dict(options)))}"


def done_url(session: str, asin: str, options: Mapping[str, str]) -> str:
    return f"/done/{_seg(session)}/{_seg(asin)}/{_seg(str(dict(options)))}"


@dataclass(frozen=True)
class Route:
    """A parsed request path; ``kind`` is ``index``, ``search``, ``item``, ``sub`` or ``done``."""

    kind: str
    session: str
    asin: str = ""
    keywords: tuple[str, ...] = ()
    page: int = 1
    sub: str = ""
    options: dict[str, str] = field(default_factory=dict)


_ARITY = {"search_results": ("search", 3), "item_page": ("item", 5), "item_sub_page": ("sub", 6), "done": ("done", 3)}


def parse_path(path: str) -> Route:
    """The route of a request path (query string and fragment already removed).

    Raises:
        ValueError: the path fits no route, or a keywords, page or options segment is malformed.
    """
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if len(parts) == 1 and parts[0]:
        return Route("index", parts[0])
    if parts[0] not in _ARITY or len(parts) - 1 != _ARITY[parts[0]][1]:
        raise ValueError(f"no WebShop route matches {path!r}")
    kind, args = _ARITY[parts[0]][0], parts[1:]
    if kind == "search":
        return Route(kind, args[0], keywords=_keywords(args[1]), page=_page(args[2]))
    if kind == "done":
        return Route(kind, args[0], asin=args[1], options=_options(args[2]))
    sub = args[4] if kind == "sub" else ""
    return Route(kind, args[0], args[1], _keywords(args[2]), _page(args[3]), sub, _options(args[-1]))


def _keywords(text: str) -> tuple[str, ...]:
    if not text.startswith("["):
        return (text,)  # a plain query string, as WebShop accepts it too
    value = _literal(text, "keywords")
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise ValueError(f"keywords must be a list of strings; got {text!r}")
    return tuple(value)


def _page(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"page must be a number >= 1; got {text!r}")
    return int(text)


def _options(text: str) -> dict[str, str]:
    value = _literal(text, "options")
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"options must be a dict of strings; got {text!r}")
    return value


def _literal(text: str, what: str) -> object:
    try:
        return ast.literal_eval(text)  # literals only: no names, calls or attributes are evaluated
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"{what} must be a Python literal; got {text!r}") from None

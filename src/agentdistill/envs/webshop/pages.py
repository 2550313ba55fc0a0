"""Read WebShop's HTML pages (princeton-nlp/WebShop ``web_agent_site/templates``) into what they show.

``text_nodes`` lists a page's text with the element that holds each piece and that element's
ancestors, as the standard library's ``html.parser`` reads it (WebShop's templates close some tags
with the wrong name, ``<h4 class="product-title">...</h5>``; an end tag with no open element of its
name is ignored, one with an open element closes everything opened after it). The ``read_*``
functions pick a page's fields by the ids, classes and tags the templates use, so they read the
real app and ``site.py`` alike; hidden elements (``display:none``) are read too, as WebShop's own
text mode does.
"""

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})
_SKIP = frozenset({"script", "style", "head", "title"})


@dataclass(frozen=True)
class Element:
    tag: str
    id: str = ""
    classes: tuple[str, ...] = ()
    name: str = ""


@dataclass(frozen=True)
class TextNode:
    """A stripped, non-empty piece of text; ``path`` is its elements from the root down to its parent."""

    text: str
    path: tuple[Element, ...]

    @property
    def parent(self) -> Element:
        return self.path[-1] if self.path else Element("")

    def under(self, *, id: str = "", name: str = "") -> bool:  # noqa: A002
        """Whether the parent or an ancestor has this ``id`` (or this ``name`` attribute)."""
        return any((id and e.id == id) or (name and e.name == name) for e in self.path)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[Element] = []
        self.nodes: list[TextNode] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        a = {k: v or "" for k, v in attrs}
        self.stack.append(Element(tag, a.get("id", ""), tuple(a.get("class", "").split()), a.get("name", "")))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        text = data.strip()
        if text and not any(e.tag in _SKIP for e in self.stack):
            self.nodes.append(TextNode(text, tuple(self.stack)))


def text_nodes(html: str) -> list[TextNode]:
    """The visible (and hidden) text of ``html`` in document order, outside script, style and head."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.nodes


# -- pages ------------------------------------------------------------------------------------


def read_instruction(nodes: list[TextNode]) -> str:
    """The instruction of any page: the ``#instruction-text`` text after ``Instruction:``."""
    texts = [n.text for n in nodes if n.under(id="instruction-text") and not n.text.startswith("Current Query")]
    return " ".join(texts).removeprefix("Instruction:").strip()


def read_hidden_json(nodes: list[TextNode], element_id: str) -> str | None:
    """The ``<pre>`` text inside the element ``element_id`` (``#goal``, ``#reward_info``), if the page has one."""
    return next((n.text for n in nodes if n.under(id=element_id) and n.parent.tag == "pre"), None)


@dataclass
class ResultsPage:
    page_no: int
    total: int
    has_prev: bool
    has_next: bool
    listings: list[tuple[str, str, str]] = field(default_factory=list)  # (asin, title, price text)


_PAGE = re.compile(r"Page (\d+) \(.*\) of (\d+) total results")


def read_results(nodes: list[TextNode]) -> ResultsPage:
    """A results page: ``Page 1 (1-10) of 50 total results``, its buttons and listings."""
    page = ResultsPage(1, 0, False, False)
    for n in nodes:
        m = _PAGE.fullmatch(n.text)
        if m:
            page.page_no, page.total = int(m.group(1)), int(m.group(2))
        elif n.parent.tag == "button":
            page.has_prev |= n.text == "< Prev"
            page.has_next |= n.text == "Next >"
        elif "product-link" in n.parent.classes:
            page.listings.append((n.text, "", ""))
        elif "product-title" in n.parent.classes and page.listings:
            page.listings[-1] = (page.listings[-1][0], n.text, page.listings[-1][2])
        elif "product-price" in n.parent.classes and page.listings:
            page.listings[-1] = (*page.listings[-1][:2], n.text)
    return page


@dataclass
class ItemPage:
    title: str = ""
    price: str = ""
    rating: str = ""
    options: list[tuple[str, list[str]]] = field(default_factory=list)  # (option name, values) in page order


def read_item(nodes: list[TextNode]) -> ItemPage:
    """An item page: option names (``<h4>``) with their values (``<label>``), title (``<h2>``), price, rating."""
    item = ItemPage()
    for n in nodes:
        if n.under(id="instruction-text"):
            continue
        if n.parent.tag == "label" and item.options:
            item.options[-1][1].append(n.text)
        elif n.parent.tag == "h2":
            item.title = n.text
        elif n.parent.tag == "h4" and n.text.startswith("Price:"):
            item.price = n.text.removeprefix("Price:").strip()
        elif n.parent.tag == "h4" and n.text.startswith("Rating:"):
            item.rating = n.text.removeprefix("Rating:").strip()
        elif n.parent.tag == "h4":
            item.options.append((n.text, []))
    item.options = [(name, values) for name, values in item.options if values]
    return item


_SUB_NAMES = {"Description": "description", "Features": "bulletpoints", "Reviews": "reviews"}


def read_subpage(nodes: list[TextNode], sub: str) -> list[str]:
    """The lines of a Description, Features or Reviews page.

    Description and Features: each text piece of the panel. Reviews: one line per review,
    ``"<title>" <score> stars: <body>`` (the title only where the review has one).
    """
    panel = [n for n in nodes if n.under(name=_SUB_NAMES[sub])]
    if sub != "Reviews":
        return [n.text for n in panel]
    reviews: list[dict[str, str]] = []
    lines: list[str] = []
    for n in panel:
        if n.parent.tag == "h4" and "blue-text" in n.parent.classes:
            reviews.append({"title": n.text})
        elif n.parent.tag == "span":
            if not reviews or "score" in reviews[-1]:
                reviews.append({})
            reviews[-1]["score"] = n.text
        elif "content" in n.parent.classes and reviews:
            reviews[-1]["body"] = n.text
        elif n.parent.tag == "h4":
            lines.append(n.text)  # "No reviews found"
    for r in reviews:
        head = f"{r['title']} " if "title" in r else ""
        score = f"{r['score']} stars: " if "score" in r else ""
        lines.append(f"{head}{score}{r.get('body', '')}".strip())
    return lines


@dataclass
class DonePage:
    code: str
    asin: str
    options_json: str
    reward: float
    reward_info: str | None


def read_done(nodes: list[TextNode]) -> DonePage:
    """The page after Buy Now: the MTurk code, the purchase (asin, options) and ``Your score``.

    Raises:
        ValueError: the page shows no score.
    """
    pre = [n for n in nodes if n.parent.tag == "pre"]
    ids = ("asin", "options", "reward", "reward_info")
    code = next((n.text for n in pre if n.under(id="stats") and not any(n.under(id=i) for i in ids)), "")
    reward = read_hidden_json(nodes, "reward")
    if reward is None:
        raise ValueError("the page shows no 'Your score'")
    return DonePage(
        code,
        read_hidden_json(nodes, "asin") or "",
        read_hidden_json(nodes, "options") or "{}",
        float(reward),
        read_hidden_json(nodes, "reward_info"),
    )

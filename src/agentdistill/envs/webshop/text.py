"""The text observations of WebShop's pages, one function per page, lines joined with "\\n", and what a
click on each page's buttons does (``click_target``).

The embedded env (``env.py``) writes them from its own state and the HTTP env (``http_env.py``) from
what a WebShop server's HTML shows (``pages.py``), so both backends write the same text by
construction. Prices and ratings are passed as the page shows them (``"$15.50"``).
"""

from collections.abc import Sequence
from typing import Any

SUBPAGES = ("Description", "Features", "Reviews")


def search_text(instruction: str) -> str:
    """The search page: ``WebShop [SEP] Instruction: [SEP] i need ... [SEP] Search``."""
    return f"WebShop [SEP] Instruction: [SEP] {instruction} [SEP] Search"


def results_text(
    page_no: int, total: int, has_prev: bool, has_next: bool, listings: Sequence[tuple[str, str, str]]
) -> str:
    """A results page; ``listings`` are ``(asin, title, price text)`` in page order."""
    lines = ["[Back to Search]", f"Page {page_no} (Total results: {total})"]
    lines += ["[< Prev]"] * has_prev + ["[Next >]"] * has_next
    for asin, title, price in listings:
        lines += [f"[{asin}]", title, price]
    return "\n".join(lines)


def item_text(options: Sequence[tuple[str, Sequence[str]]], title: str, price: str, rating: str) -> str:
    """An item page: option rows (``scent [bright citrus] [unscented]``), title, price, rating, buttons."""
    lines = ["[Back to Search]", "[< Prev]"]
    lines += [f"{dim} " + " ".join(f"[{v}]" for v in values) for dim, values in options]
    lines += [title, f"Price: {price}", f"Rating: {rating}"]
    lines += [f"[{s}]" for s in SUBPAGES] + ["[Buy Now]"]
    return "\n".join(lines)


def subpage_text(lines: Sequence[str]) -> str:
    """A Description, Features or Reviews page: the two buttons, then its lines."""
    return "\n".join(["[Back to Search]", "[< Prev]", *lines])


def done_text(code: str, asin: str, options_json: str, reward: float) -> str:
    """The page after Buy Now, with the reward to two decimals."""
    return "\n".join(
        [
            "Thank you for shopping with us!",
            "Your code: ",
            code,
            "(Paste it in your MTurk interface.)",
            "Purchased",
            "asin",
            asin,
            "options",
            options_json,
            f"Your score (min 0.0, max 1.0): {reward:.2f}",
        ]
    )


def click_target(
    page: str,
    button: str,
    asins: Sequence[str] = (),
    has_prev: bool = False,
    has_next: bool = False,
    options: Sequence[tuple[str, Sequence[str]]] = (),
) -> tuple[str, Any] | None:
    """What ``click[button]`` does on ``page`` (search, results, item, a subpage, any case), or ``None`` when
    the page shows no such button (an invalid action). Buttons match case-insensitively. ``asins``,
    ``has_prev`` and ``has_next`` describe a results page, ``options`` (dimension, values) an item page.

    Returns one of ``("search", None)``; ``("results", d)``: the results page ``d`` = -1, +1 pages away,
    or 0 for the one the item was opened from; ``("item", asin)``: open it, or ``("item", None)``: back to
    the item from a subpage; ``("subpage", name)`` (a ``SUBPAGES`` name); ``("buy", None)``;
    ``("option", (dimension, value))``.
    """
    b = button.strip().lower()
    page = page.lower()
    if page == "search" or not b:
        return None
    if b == "back to search":
        return "search", None
    if page == "results":
        if b == "next >" and has_next:
            return "results", 1
        if b == "< prev" and has_prev:
            return "results", -1
        asin = next((a for a in asins if a.lower() == b), None)
        return ("item", asin) if asin else None
    if page in (s.lower() for s in SUBPAGES):
        return ("item", None) if b == "< prev" else None
    if page != "item":
        return None
    if b == "< prev":
        return "results", 0
    sub = next((s for s in SUBPAGES if s.lower() == b), None)
    if sub:
        return "subpage", sub
    if b == "buy now":
        return "buy", None
    return next((("option", (dim, v)) for dim, values in options for v in values if v.lower() == b), None)

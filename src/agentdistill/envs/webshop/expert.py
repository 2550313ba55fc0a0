"""The WebShop oracle: a policy a small LM can imitate, because it only uses what is on the screen.

1. search with the instruction's options, attributes and type noun (``search[bright citrus
   5 ounce long lasting deodorant]``);
2. scan the results in order for the first title that names the type noun and every goal
   attribute at a price under the cap (``Next >`` when the page has none);
3. on its item page, go back (``< Prev``) if a goal option is not offered, else click each goal
   option and ``Buy Now``.

Thoughts come only at decisions (which item, next page, go back, buy), from a few templates
picked per task id. ``plan`` replays the same policy on a ranking without rendering pages; the
task generator keeps only goals it solves within the step budget.
"""

import random
from collections.abc import Mapping, Sequence

from agentdistill.envs.webshop.catalog import Goal, Product, describe, normalize, option_phrase
from agentdistill.envs.webshop.search import RESULTS_PER_PAGE

Listing = tuple[str, str, float]  # (asin, title, price) as a results page shows it

_PICK = (
    "{id} looks like the {desc} I need, and it costs ${price}. I can check it first.",
    "{id} matches {attrs} {noun} and costs ${price}, which is under ${cap}. Let me check it.",
    "The title of {id} mentions {attrs}, and its price ${price} is within my budget. I will click it.",
    "{id} seems to be the {desc} I am looking for (${price} < ${cap}). I should check its options.",
    "Among the results, {id} fits best: {attrs} {noun} for ${price}. Let me open it.",
)
_PICK_TWO = (
    "{id} and {id2} are both {attrs} {noun} under ${cap}. I can check {id} first.",
    "{id} and {id2} look like what I need and cost less than ${cap}. Let me check {id} first.",
)
_RETRY = (
    "{id} is the next result that matches {attrs} {noun} under ${cap}. Let me check it.",
    "Let me try {id} instead; it is also the {desc} I need, for ${price}.",
    "{id} also matches the instruction and costs ${price}. I will check its options.",
)
_NEXT_PAGE = (
    "None of the results on this page is the {desc} under ${cap}. I should check the next page.",
    "I don't see a {noun} with {attrs} under ${cap} here. Let me look at the next page.",
    "No item on this page matches {attrs} within the budget, so I will go to the next page.",
)
_BUY = (
    "For {wanted} {desc}, the item has options {quoted} and seems good to buy.",
    "This item offers {quoted}, which is what the instruction asks for. I will select {them} and buy it.",
    "The item has the {phrases} option{s} I need. Let me choose {them}, then buy it.",
    "Good, {quoted} can be chosen for this {noun}. I will pick {them} and then click Buy Now.",
)
_BUY_PLAIN = (
    "This item is the {desc} I need and costs ${price}. I can buy it now.",
    "The {noun} matches {attrs} and costs ${price}, under ${cap}. It seems good to buy.",
)
_REJECT = (
    "This item does not offer {missing}. I should go back and check another one.",
    "There is no {missing} option for this item. Let me go back to the results.",
    "The options do not include {value}, so this is not the right item. I will go back.",
)


def search_query(goal: Goal) -> str:
    """The expert's query: goal option values, then attributes, then the type noun."""
    return " ".join([v for _, v in goal.options] + list(goal.attributes) + [goal.noun])


def title_ok(goal: Goal, title: str) -> bool:
    """Whether ``title`` names the goal's type noun and every goal attribute (whole words)."""
    padded = f" {normalize(title)} "
    return all(f" {normalize(w)} " in padded for w in (goal.noun, *goal.attributes))


def listing_ok(goal: Goal, title: str, price: float) -> bool:
    """Whether a results-page entry is worth opening: right title, price within the cap."""
    return price <= goal.price_cap and title_ok(goal, title)


def missing_options(goal: Goal, options: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, str]]:
    """Goal ``(dim, value)`` pairs that the item page does not offer as a button."""
    offered = {(d, v.lower()) for d, vs in options for v in vs}
    return [(d, v) for d, v in goal.options if (d, v.lower()) not in offered]


def plan(goal: Goal, ranked: Sequence[Product]) -> tuple[Product | None, int]:
    """Replay the expert on search results ``ranked``: the product it buys (or None) and its step count."""
    steps = 1  # search
    for i, product in enumerate(ranked):
        if i and i % RESULTS_PER_PAGE == 0:
            steps += 1  # Next >
        if not listing_ok(goal, product.title, product.price):
            continue
        steps += 1  # open the item
        if missing_options(goal, product.options):
            steps += 1  # < Prev
            continue
        return product, steps + len(goal.options) + 1  # each option, then Buy Now
    return None, steps


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


class Expert:
    """The oracle for one episode; remembers the items it has rejected (as its transcript shows).

    Args:
        goal: the task's goal (everything in it is in the instruction text).
        task_id: seeds the choice of thought templates.
    """

    def __init__(self, goal: Goal, task_id: str) -> None:
        self.goal = goal
        self.task_id = task_id
        self.rejected: list[str] = []
        self._thoughts = 0

    def _say(self, templates: Sequence[str], **slots: object) -> str:
        rng = random.Random(f"{self.task_id}:{self._thoughts}")
        self._thoughts += 1
        g = self.goal
        base = {
            "desc": describe(g.noun, g.attributes),
            "attrs": _and(list(g.attributes)),
            "noun": g.noun,
            "cap": f"{g.price_cap:.2f}",
        }
        return rng.choice(templates).format(**base, **slots)

    def on_search_page(self) -> tuple[str | None, str]:
        return None, f"search[{search_query(self.goal)}]"

    def on_results(self, listings: Sequence[Listing], has_next: bool) -> tuple[str | None, str]:
        """Pick the first unrejected matching listing on the page, else go to the next page."""
        good = [x for x in listings if x[0] not in self.rejected and listing_ok(self.goal, x[1], x[2])]
        if good:
            asin, _, price = good[0]
            if self.rejected:
                templates = _RETRY
            else:
                templates = _PICK + _PICK_TWO if len(good) > 1 else _PICK
            thought = self._say(templates, id=asin, id2=good[1 if len(good) > 1 else 0][0], price=f"{price:.2f}")
            return thought, f"click[{asin}]"
        if has_next:
            return self._say(_NEXT_PAGE), "click[Next >]"
        return (
            None,
            f"click[{listings[0][0]}]" if listings else "click[Back to Search]",
        )  # unreachable for generated tasks

    def on_item(self, product: Product, chosen: Mapping[str, str]) -> tuple[str | None, str]:
        """Go back from a wrong item; else click the goal options one by one, then Buy Now."""
        g = self.goal
        if product.asin in self.rejected or not listing_ok(g, product.title, product.price):
            return None, "click[< Prev]"
        missing = missing_options(g, product.options)
        if missing:
            self.rejected.append(product.asin)
            dim, value = missing[0]
            return self._say(_REJECT, missing=option_phrase(g.noun, dim, value), value=f"'{value}'"), "click[< Prev]"
        todo = [(d, v) for d, v in g.options if chosen.get(d, "").lower() != v.lower()]
        if not g.options:
            return self._say(_BUY_PLAIN, price=f"{product.price:.2f}"), "click[Buy Now]"
        if not todo:
            return None, "click[Buy Now]"
        thought = None
        if len(todo) == len(g.options):  # the first option click carries the decision to buy
            values = [v for _, v in g.options]
            thought = self._say(
                _BUY,
                wanted=" ".join(values),
                quoted=_and([f"'{v}'" for v in values]),
                phrases=_and([option_phrase(g.noun, d, v) for d, v in g.options]),
                them="them" if len(values) > 1 else "it",
                s="s" if len(values) > 1 else "",
            )
        return thought, f"click[{todo[0][1]}]"

"""WebShop's purchase reward (DESIGN §5), as a pure function of the goal, the product and the chosen options.

    reward = r_type · (#goal attributes matched + #goal options matched + [price ≤ cap])
                     / (#goal attributes + #goal options + 1)

A goal attribute is matched when some attribute of the bought product has a rapidfuzz
``token_set_ratio`` above 85 with it (both lowercased); a goal option likewise against the chosen
option values. The product-type factor ``r_type`` replaces WebShop's query/category/title
heuristics with an exact rule over our typed catalog:

- 1.0: the bought product has the goal's type (same category and title noun);
- 0.5: another type of the same category whose noun shares a word with the goal's
  ("walking shoes" for "running shoes", "black tea" for "green tea");
- 0.1: another type of the same category with no shared noun word;
- 0.0: a different category, whatever the nouns share ("coffee mug" for "coffee beans").
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rapidfuzz import fuzz

from agentdistill.envs.webshop.catalog import Goal, Product

FUZZY_THRESHOLD = 85.0


@dataclass(frozen=True)
class RewardBreakdown:
    """The terms of the reward, kept for reports and tests."""

    r_type: float
    attributes_matched: int
    num_attributes: int
    options_matched: int
    num_options: int
    price_ok: bool

    @property
    def reward(self) -> float:
        hits = self.attributes_matched + self.options_matched + int(self.price_ok)
        return self.r_type * hits / (self.num_attributes + self.num_options + 1)


def fuzzy_match(goal: str, candidates: Iterable[str]) -> bool:
    """Whether ``goal`` matches any candidate: ``token_set_ratio > 85`` on lowercased text."""
    g = goal.lower()
    return any(fuzz.token_set_ratio(g, c.lower()) > FUZZY_THRESHOLD for c in candidates)


def type_factor(goal: Goal, product: Product) -> float:
    """``r_type``: 1.0 same type, 0.5 same category with a shared noun word, 0.1 same category, else 0."""
    if product.category != goal.category:
        return 0.0
    if product.noun == goal.noun:
        return 1.0
    return 0.5 if set(goal.noun.split()) & set(product.noun.split()) else 0.1


def reward_breakdown(goal: Goal, product: Product, chosen_options: Mapping[str, str]) -> RewardBreakdown:
    """Score buying ``product`` with ``chosen_options`` (dim -> value) for ``goal``."""
    chosen = list(chosen_options.values())
    return RewardBreakdown(
        r_type=type_factor(goal, product),
        attributes_matched=sum(fuzzy_match(a, product.attributes) for a in goal.attributes),
        num_attributes=len(goal.attributes),
        options_matched=sum(fuzzy_match(v, chosen) for _, v in goal.options),
        num_options=len(goal.options),
        price_ok=product.price <= goal.price_cap,
    )


def webshop_reward(goal: Goal, product: Product, chosen_options: Mapping[str, str]) -> float:
    """The reward in [0, 1] for buying ``product`` with ``chosen_options``; see ``reward_breakdown``."""
    return reward_breakdown(goal, product, chosen_options).reward

"""Templated, seeded shopping instructions and the train / dev / test splits.

Each goal is built from a target product: 1–3 of its attributes, 0–2 of its option values and a
price cap above its price, said in one of a few templates ("i need a long lasting deodorant for
sensitive skin in bright citrus scent, and price lower than 30.00 dollars"). Target products are
disjoint between splits and every goal is unique over all splits, so no test goal is a train goal.
A goal is kept only if the expert (``expert.plan``) buys a product worth reward 1.0 from the real
search results within the step budget.
"""

import math
import random
from dataclasses import dataclass
from functools import lru_cache

from agentdistill.envs.webshop.catalog import (
    PRODUCT_TYPES,
    TYPES_BY_NOUN,
    Goal,
    Product,
    catalog,
    describe,
    option_phrase,
)
from agentdistill.envs.webshop.expert import plan, search_query
from agentdistill.envs.webshop.reward import webshop_reward
from agentdistill.envs.webshop.search import search_index

SPLIT_SIZES: dict[str, int] = {"train": 3000, "dev": 200, "test": 500}
# Target products per product type (16 each), by split; the rest stay in the catalog as distractors.
_TARGETS_PER_TYPE = {"test": 3, "dev": 1, "train": 12}
STEP_BUDGET = 15
_LEADS = ("i need", "i'm looking for", "i want to buy", "find me", "i would like", "i am looking for", "get me")
_OPTION_LEADS = (" in ", " with ", ", ")


@dataclass(frozen=True)
class Task:
    """One instruction of a split."""

    id: str
    split: str
    goal: Goal


def instruction_text(
    rng: random.Random, noun: str, attributes: tuple[str, ...], options: tuple[tuple[str, str], ...], cap: float
) -> str:
    """Say a goal in words, e.g. ``i need a long lasting deodorant in bright citrus scent, and price ...``."""
    desc = describe(noun, attributes)
    article = "" if TYPES_BY_NOUN[noun].plural else ("an " if desc[0] in "aeiou" else "a ")
    text = f"{rng.choice(_LEADS)} {article}{desc}"
    if options:
        text += rng.choice(_OPTION_LEADS) + " and ".join(option_phrase(noun, d, v) for d, v in options)
    return f"{text}, and price lower than {cap:.2f} dollars"


def make_goal(rng: random.Random, product: Product) -> Goal:
    """A random goal that ``product`` satisfies."""
    n_attrs = rng.choices((1, 2, 3), weights=(3, 4, 3))[0]
    attributes = tuple(rng.sample(product.attributes, n_attrs))
    n_opts = min(len(product.options), rng.choices((0, 1, 2), weights=(1, 4, 5))[0])
    dims = rng.sample(product.options, n_opts)
    options = tuple((d, rng.choice(values)) for d, values in dims)
    cap = (math.floor(product.price / 10) + 1 + rng.choice((0, 0, 1))) * 10.0
    text = instruction_text(rng, product.noun, attributes, options, cap)
    return Goal(product.category, product.noun, attributes, options, cap, product.asin, text)


def _goal_key(goal: Goal) -> tuple:
    return goal.noun, frozenset(goal.attributes), frozenset(goal.options), goal.price_cap


def _targets(seed: int, products: tuple[Product, ...]) -> dict[str, list[Product]]:
    """Split each type's products into disjoint target pools."""
    rng = random.Random(f"webshop-targets-{seed}")
    pools: dict[str, list[Product]] = {split: [] for split in _TARGETS_PER_TYPE}
    for ptype in PRODUCT_TYPES:
        of_type = [p for p in products if p.noun == ptype.noun]
        rng.shuffle(of_type)
        start = 0
        for split, n in _TARGETS_PER_TYPE.items():
            pools[split] += of_type[start : start + n]
            start += n
    return pools


def build_tasks(seed: int) -> dict[str, tuple[Task, ...]]:
    """Generate every split of ``seed`` (deterministic, not cached)."""
    products = catalog(seed)
    by_asin = {p.asin: p for p in products}
    index = search_index(seed)
    pools = _targets(seed, products)
    seen: set[tuple] = set()
    splits: dict[str, tuple[Task, ...]] = {}
    for split in ("train", "dev", "test"):  # fixed order: seen goals carry over to later splits
        rng = random.Random(f"webshop-tasks-{seed}-{split}")
        tasks: list[Task] = []
        while len(tasks) < SPLIT_SIZES[split]:
            goal = make_goal(rng, rng.choice(pools[split]))
            key = _goal_key(goal)
            if key in seen:
                continue
            seen.add(key)
            bought, steps = plan(goal, [by_asin[a] for a in index.search(search_query(goal))])
            if bought is None or steps > STEP_BUDGET or webshop_reward(goal, bought, dict(goal.options)) < 1.0:
                continue
            tasks.append(Task(f"webshop-{split}-{len(tasks):04d}", split, goal))
        splits[split] = tuple(tasks)
    return splits


@lru_cache(maxsize=8)
def task_splits(seed: int) -> dict[str, tuple[Task, ...]]:
    """The splits of ``seed``, built once per process."""
    return build_tasks(seed)

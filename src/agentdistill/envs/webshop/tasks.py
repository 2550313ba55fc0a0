"""Templated, seeded shopping instructions and the train / dev / test splits.

Each goal is built from a target product: 1–3 of its attributes, 0–2 of its option values and a
price cap above its price, said in one of a few templates ("i need a long lasting deodorant for
sensitive skin in bright citrus scent, and price lower than 30.00 dollars"). Target products are
disjoint between splits and every goal is unique over all splits, so no test goal is a train goal.
A goal is kept only if the expert (``expert.plan``) buys a product worth reward 1.0 from the real
search results within the step budget.

A train split larger than ``SPLIT_SIZES["train"]`` (``task_set(seed, train_size)``) appends shards
of ``SHARD_TASKS`` goals, each over a fresh catalog of its own (new products, new ASINs, its own
search index), so an agent cannot memorise the ids it clicks; their goals differ from every dev
and test goal, and dev, test and the default train tasks are the same for every size.
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
from agentdistill.envs.webshop.search import SearchIndex, search_index
from agentdistill.errors import ConfigError

SPLIT_SIZES: dict[str, int] = {"train": 3000, "dev": 200, "test": 500}
SHARD_TASKS = 500  # extra train tasks per fresh catalog (about one per product)
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
    shard: int = 0  # the catalog the task shops in (0: the one dev and test use)


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


def _keep(goal: Goal, seen: set[tuple], by_asin: dict[str, Product], index: SearchIndex) -> bool:
    """Whether ``goal`` is new and the expert buys a reward-1 product for it within the step budget."""
    key = _goal_key(goal)
    if key in seen:
        return False
    seen.add(key)
    bought, steps = plan(goal, [by_asin[a] for a in index.search(search_query(goal))])
    return bought is not None and steps <= STEP_BUDGET and webshop_reward(goal, bought, dict(goal.options)) >= 1.0


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
            if _keep(goal, seen, by_asin, index):
                tasks.append(Task(f"webshop-{split}-{len(tasks):04d}", split, goal))
        splits[split] = tuple(tasks)
    return splits


@lru_cache(maxsize=8)
def task_splits(seed: int) -> dict[str, tuple[Task, ...]]:
    """The splits of ``seed`` at the default sizes, built once per process."""
    return build_tasks(seed)


@lru_cache(maxsize=128)
def _train_shard(seed: int, shard: int) -> tuple[tuple[Task, ...], frozenset[tuple]]:
    """The ``SHARD_TASKS`` train tasks over catalog ``shard`` >= 1, and every goal key used so far."""
    if shard == 1:
        seen = {_goal_key(t.goal) for tasks in task_splits(seed).values() for t in tasks}
    else:
        seen = set(_train_shard(seed, shard - 1)[1])
    products = catalog(seed, shard)
    by_asin, index = {p.asin: p for p in products}, search_index(seed, shard)
    rng = random.Random(f"webshop-tasks-{seed}-train-shard-{shard}")
    start = SPLIT_SIZES["train"] + (shard - 1) * SHARD_TASKS
    tasks: list[Task] = []
    while len(tasks) < SHARD_TASKS:
        goal = make_goal(rng, rng.choice(products))
        if _keep(goal, seen, by_asin, index):
            tasks.append(Task(f"webshop-train-{start + len(tasks):04d}", "train", goal, shard))
    return tuple(tasks), frozenset(seen)


@dataclass(frozen=True)
class TaskSet:
    """The tasks an env serves: ordered per split, by id, and every product they can reach by ASIN."""

    splits: dict[str, tuple[Task, ...]]
    by_id: dict[str, Task]
    products: dict[str, Product]


@lru_cache(maxsize=8)
def task_set(seed: int, train_size: int | None = None) -> TaskSet:
    """The tasks of ``seed`` with ``train_size`` train tasks (default ``SPLIT_SIZES["train"]``), built once.

    Fewer keep the first ones; more append shards over fresh catalogs (see the module docstring).
    """
    n = SPLIT_SIZES["train"] if train_size is None else train_size
    if n < 1:
        raise ConfigError(f"webshop train_size must be >= 1; got {n}")
    splits = dict(task_splits(seed))
    train = list(splits["train"][:n])
    shards = -(-max(0, n - SPLIT_SIZES["train"]) // SHARD_TASKS)
    for shard in range(1, shards + 1):
        train += _train_shard(seed, shard)[0][: n - len(train)]
    splits["train"] = tuple(train)
    products = {p.asin: p for shard in range(shards + 1) for p in catalog(seed, shard)}
    return TaskSet(splits, {t.id: t for ts in splits.values() for t in ts}, products)

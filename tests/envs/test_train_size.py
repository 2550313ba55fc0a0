"""``train_size``: larger train splits of new, distinct tasks, with dev and test left byte-for-byte alone."""

import hashlib
import json

import pytest

from agentdistill.collect import CollectArgs
from agentdistill.envs import make_env
from agentdistill.envs.alfworld.tasks import split_specs, task_specs
from agentdistill.envs.hotpotqa import normalize_answer
from agentdistill.envs.hotpotqa.names import BANNED
from agentdistill.envs.hotpotqa.questions import KEYWORDS, default_bank, synthetic_bank
from agentdistill.envs.webshop.catalog import catalog
from agentdistill.envs.webshop.tasks import task_set
from agentdistill.errors import ConfigError

DEFAULT = {"alfworld": 3553, "webshop": 3000, "hotpotqa": 3000}
# sha256 (first 16 hex digits) of every task's id, first observation and expert transcript, taken
# from the code before train_size existed: any change to dev, test or the default train tasks shows here.
PINNED = {
    ("alfworld", "dev"): "b89c2c49298cf5e1",
    ("alfworld", "test"): "79c3292548beb7ce",
    ("alfworld", "train[:200]"): "f4025d16a18f4438",
    ("webshop", "dev"): "fc5d567a26215cb1",
    ("webshop", "test"): "1d736eff5a9007ce",
    ("webshop", "train[:200]"): "fe9e37f55bdcc259",
    ("hotpotqa", "dev"): "d7cd4b56e5868e0c",
    ("hotpotqa", "test"): "44f9344e676c59d8",
    ("hotpotqa", "train[:200]"): "72cf7dc189a93ef8",
}


def rollout(env, task_id):
    rows = [env.reset(task_id)]
    for _ in range(env.max_steps):
        thought, action = env.expert_step()
        res = env.step(action)
        rows.append([thought, action, res.observation, res.reward])
        if res.done:
            break
    return rows


def digest(env, task_ids):
    h = hashlib.sha256()
    for tid in task_ids:
        h.update(json.dumps([tid, rollout(env, tid)]).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name", list(DEFAULT))
@pytest.mark.parametrize("mult", [None, 3])
def test_dev_test_and_default_train_are_unchanged_by_train_size(name, mult):
    env = make_env(name, train_size=mult and mult * DEFAULT[name])
    assert env.splits()["train"] == (mult or 1) * DEFAULT[name]
    for split in ("dev", "test"):
        assert digest(env, env.task_ids(split)) == PINNED[(name, split)], split
    # the default train split is the prefix of a larger one
    assert env.task_ids("train")[: DEFAULT[name]] == make_env(name).task_ids("train")
    assert digest(env, env.task_ids("train")[:200]) == PINNED[(name, "train[:200]")]


@pytest.mark.parametrize("name", list(DEFAULT))
def test_smaller_sizes_are_prefixes_and_extra_tasks_are_solved_by_the_expert(name):
    n = DEFAULT[name]
    small, big = make_env(name, train_size=50), make_env(name, train_size=2 * n + 7)
    assert small.task_ids("train") == make_env(name).task_ids("train")[:50]
    extra = big.task_ids("train")[n:]
    assert len(extra) == n + 7
    assert extra[:3] == [f"{name}-train-{i:04d}" for i in range(n, n + 3)]
    # a larger size extends a smaller one: the extra tasks do not depend on the size asked for
    bigger = make_env(name, train_size=3 * n)
    assert bigger.task_ids("train")[: 2 * n + 7] == big.task_ids("train")
    for tid in extra[::150]:
        assert rollout(big, tid) == rollout(bigger, tid)
        assert rollout(big, tid)[-1][3] == 1.0  # the oracle reaches the goal


@pytest.mark.parametrize("name", list(DEFAULT))
def test_bad_train_size_is_a_clear_error(name):
    with pytest.raises(ConfigError, match=f"{name} train_size must be >= 1; got 0"):
        make_env(name, train_size=0)


def test_train_size_reaches_the_env_through_collect_args():
    assert CollectArgs(env="webshop", train_size=3100).env_kwargs() == {"seed": 0, "train_size": 3100}
    assert CollectArgs(env="webshop").env_kwargs() == {"seed": 0}
    with pytest.raises(ConfigError, match="train_size"):
        CollectArgs(train_size=0)
    with pytest.raises(ConfigError, match="not to a --data file"):
        make_env("hotpotqa", data="x.json", train_size=10)


# -- hotpotqa ------------------------------------------------------------------------------


def _names(bank, split):
    """Normalised titles of every page the questions of ``split`` name or the oracle reads."""
    return {normalize_answer(h.title) for tid in bank.ids(split) for h in bank.task(tid).hops} | {
        normalize_answer(e) for tid in bank.ids(split) for e in bank.task(tid).entities
    }


def test_hotpotqa_larger_train_shares_no_entity_with_dev_or_test_and_names_new_ones():
    bank = synthetic_bank(0, 9000)
    train = _names(bank, "train")
    assert not train & _names(bank, "test")
    assert not train & _names(bank, "dev")
    extra = {normalize_answer(h.title) for tid in bank.ids("train")[3000:] for h in bank.task(tid).hops}
    assert not extra & _names(default_bank(0), "train")  # the shards name entities of their own
    entities = [{e for tid in b.ids("train") for e in b.task(tid).entities} for b in (default_bank(0), bank)]
    assert [len(e) for e in entities] == [1924, 5723]
    # every extra question is answered from its own shard's wiki, never the default one
    assert bank.wiki_of("hotpotqa-train-3000") is not bank.wiki_of("hotpotqa-test-0000")
    assert bank.wiki_of("hotpotqa-train-2999") is bank.wiki_of("hotpotqa-test-0000")


def test_hotpotqa_shards_are_deterministic():
    questions = [synthetic_bank(0, 6000).task(f"hotpotqa-train-{i}").question for i in range(3000, 6000, 97)]
    synthetic_bank.cache_clear()
    default_bank.cache_clear()
    from agentdistill.envs.hotpotqa import questions as q

    q._train_shard.cache_clear()
    assert [synthetic_bank(0, 6000).task(f"hotpotqa-train-{i}").question for i in range(3000, 6000, 97)] == questions


def test_invented_words_never_hold_a_lookup_keyword():
    assert set(BANNED) == {w for phrases in KEYWORDS.values() for p in phrases for w in p.split()}


# -- webshop -------------------------------------------------------------------------------


def test_webshop_extra_tasks_shop_in_fresh_catalogs_with_new_asins():
    tasks = task_set(0, 9000)
    train, held_out = tasks.splits["train"], tasks.splits["dev"] + tasks.splits["test"]
    key = lambda t: (t.goal.noun, frozenset(t.goal.attributes), frozenset(t.goal.options), t.goal.price_cap)  # noqa: E731
    assert not {key(t) for t in train} & {key(t) for t in held_out}
    assert len({key(t) for t in train}) == 9000  # every goal distinct
    assert not {t.goal.target for t in train} & {t.goal.target for t in held_out}
    base = {p.asin for p in catalog(0)}
    assert all(t.goal.target not in base for t in train[3000:])
    assert [len({t.goal.target for t in ts}) for ts in (task_set(0).splits["train"], train)] == [359, 4094]
    assert len(tasks.products) == 480 * 13  # the default catalog and 12 shards of 500 tasks
    env = make_env("webshop", train_size=9000)
    env.reset("webshop-train-3000")
    results = env.step(f"search[{train[3000].goal.noun}]").observation
    shown = [line[1:-1] for line in results.splitlines() if line.startswith("[B0")]
    assert shown and not set(shown) & base  # its search results come from its own catalog


# -- alfworld ------------------------------------------------------------------------------


def test_alfworld_extra_tasks_get_fresh_layouts_never_a_test_layout():
    specs = split_specs(0, "train", 3 * 3553)
    test_layouts = {s.layout for s in task_specs(0)["test"]}
    assert not {s.layout for s in specs} & test_layouts
    assert [len({s.layout for s in specs[:n]}) for n in (3553, len(specs))] == [120, 7226]
    assert specs[:3553] == task_specs(0)["train"]

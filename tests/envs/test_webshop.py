import re
from itertools import combinations

import pytest
from rapidfuzz import fuzz

from agentdistill.envs import make_env
from agentdistill.envs.webshop import Goal, WebShopEnv, reward_breakdown, webshop_reward
from agentdistill.envs.webshop.catalog import PRODUCT_TYPES, build_catalog, canonical, catalog, normalize
from agentdistill.envs.webshop.expert import search_query
from agentdistill.envs.webshop.search import search_index
from agentdistill.envs.webshop.tasks import build_tasks, task_splits
from agentdistill.errors import ConfigError


@pytest.fixture(scope="module")
def env():
    return WebShopEnv(seed=0)


def _product(noun, pred=lambda p: True):
    return next(p for p in catalog(0) if p.noun == noun and pred(p))


def _goal(product, attributes, options, cap):
    return Goal(product.category, product.noun, tuple(attributes), tuple(options), cap, product.asin, "test goal")


def _run_expert(env, task_id):
    """Run the expert; returns [(thought, action, observation_before, observation_after)]."""
    obs = env.reset(task_id)
    log = []
    for _ in range(env.max_steps):
        thought, action = env.expert_step()
        res = env.step(action)
        log.append((thought, action, obs, res.observation))
        obs = res.observation
        if res.done:
            break
    return log


# -- reward -----------------------------------------------------------------------------------


def _two_two():
    """A product with >= 2 option dims and a goal of 2 of its attributes and 2 of its option values."""
    p = _product("deodorant")
    options = [(dim, values[0]) for dim, values in p.options[:2]]
    return p, _goal(p, p.attributes[:2], options, cap=p.price + 10)


def test_reward_all_matched_is_one():
    p, goal = _two_two()
    assert webshop_reward(goal, p, dict(goal.options)) == 1.0


def test_reward_wrong_product_type_is_zero():
    p, goal = _two_two()
    other = _product("usb flash drive")  # other category, other noun
    assert webshop_reward(goal, other, dict(goal.options)) == 0.0


def test_reward_unchosen_options_gives_formula_value():
    p, goal = _two_two()
    assert webshop_reward(goal, p, {}) == 0.6  # (2 attributes + 0 options + price) / (2 + 2 + 1)
    one = dict(goal.options[:1])
    assert webshop_reward(goal, p, one) == 0.8  # (2 + 1 + 1) / 5


def test_reward_price_over_cap_gives_formula_value():
    p, goal = _two_two()
    expensive = _goal(p, goal.attributes, goal.options[:1], cap=p.price - 0.01)
    b = reward_breakdown(expensive, p, dict(goal.options))
    assert (b.attributes_matched, b.options_matched, b.price_ok) == (2, 1, False)
    assert b.reward == 0.75  # (2 + 1 + 0) / (2 + 1 + 1)


def test_reward_type_factor_rules():
    run = _product("running shoes")
    goal = _goal(run, [], [], cap=1000.0)
    assert webshop_reward(goal, _product("walking shoes"), {}) == 0.5  # same category, shared noun word
    assert webshop_reward(goal, _product("backpack"), {}) == pytest.approx(0.1)  # same category only
    assert webshop_reward(goal, _product("coffee mug"), {}) == 0.0  # other category
    coffee = _goal(_product("coffee beans"), [], [], cap=1000.0)
    assert webshop_reward(coffee, _product("coffee mug"), {}) == 0.0  # shared word, other category


def test_reward_fuzzy_match_boundary():
    p = _product("deodorant", lambda p: "aluminum free" in p.attributes)
    near = _goal(p, ["aluminium free"], [], cap=p.price + 1)  # a near spelling
    assert fuzz.token_set_ratio("aluminium free", "aluminum free") > 85
    assert reward_breakdown(near, p, {}).attributes_matched == 1
    other = _goal(p, ["alcohol free"], [], cap=p.price + 1)  # a different word
    assert fuzz.token_set_ratio("alcohol free", "aluminum free") <= 85
    assert reward_breakdown(other, p, {}).attributes_matched == 0
    dim, values = p.options[-1]
    goal = _goal(p, [], [(dim, values[0])], cap=p.price + 1)
    assert webshop_reward(goal, p, {dim: values[0].upper()}) == 1.0  # case does not matter
    assert webshop_reward(goal, p, {dim: values[1]}) == 0.5


# -- catalog, tasks, splits -------------------------------------------------------------------


def test_catalog_and_splits_shape(env):
    products = catalog(0)
    assert len(products) == 480
    assert all(re.fullmatch(r"B0[0-9A-Z]{8}", p.asin) for p in products)
    assert len({p.asin for p in products}) == 480
    assert env.splits() == {"train": 3000, "dev": 200, "test": 500}
    for split, n in env.splits().items():
        ids = env.task_ids(split)
        assert len(ids) == n == len(set(ids))
        assert ids[42] == f"webshop-{split}-0042"
    assert {env.task_type(t) for t in env.task_ids("test")} == set(WebShopEnv.task_types)
    assert (WebShopEnv.name, WebShopEnv.format, WebShopEnv.max_steps) == ("webshop", "webshop", 15)
    assert "search[" in env.instruction() and "click[" in env.instruction()
    assert isinstance(make_env("webshop"), WebShopEnv)


def test_unknown_split_or_task_is_config_error(env):
    with pytest.raises(ConfigError, match="unknown webshop split 'val'"):
        env.task_ids("val")
    with pytest.raises(ConfigError, match="webshop-test-0042"):
        env.reset("webshop-test-9999")


def test_titles_name_exactly_the_product_attributes_and_noun():
    """The expert reads attributes off titles, so a title must name an attribute iff the product has it."""
    nouns = [t.noun for t in PRODUCT_TYPES]
    for p in catalog(0):
        ptype = next(t for t in PRODUCT_TYPES if t.noun == p.noun)
        padded = f" {normalize(p.title)} "
        for a in map(canonical, ptype.attributes):
            assert (f" {normalize(a)} " in padded) == (a in p.attributes), (p.title, a)
        assert [n for n in nouns if f" {normalize(n)} " in padded] == [p.noun]


def test_attribute_and_option_pools_are_fuzzy_distinct():
    """No two attributes (or option values) of a type fuzzy-match, so a wrong one never earns credit."""
    for t in PRODUCT_TYPES:
        for pool in ([canonical(a) for a in t.attributes], [v for d in t.dims for v in d.values]):
            for a, b in combinations(pool, 2):
                assert fuzz.token_set_ratio(a, b) <= 85, (t.noun, a, b)


def test_same_seed_same_catalog_tasks_and_observations():
    assert build_catalog(0) == catalog(0)
    assert build_tasks(0) == task_splits(0)
    assert build_catalog(1) != catalog(0)
    a, b = WebShopEnv(seed=0), WebShopEnv(seed=0)
    for tid in a.task_ids("dev")[:10]:
        assert _run_expert(a, tid) == _run_expert(b, tid)


def test_test_goals_are_not_train_goals():
    splits = task_splits(0)

    def key(t):
        g = t.goal
        return g.noun, frozenset(g.attributes), frozenset(g.options), g.price_cap

    train = {key(t) for t in splits["train"]}
    assert not train & {key(t) for t in splits["test"]}
    assert not train & {key(t) for t in splits["dev"]}
    assert not {t.goal.target for t in splits["train"]} & {t.goal.target for t in splits["test"]}
    assert len({t.goal.instruction for t in splits["test"]}) == 500


def test_search_results_hold_same_type_distractors(env):
    by_asin = {p.asin: p for p in catalog(0)}
    for tid in env.task_ids("test")[:50]:
        goal = env.goal(tid)
        results = [by_asin[a] for a in search_index(0).search(search_query(goal))]
        misses = [
            p
            for p in results
            if p.noun == goal.noun
            and not (
                set(goal.attributes) <= set(p.attributes)
                and all(v in dict(p.options).get(d, ()) for d, v in goal.options)
                and p.price <= goal.price_cap
            )
        ]
        assert len(misses) >= 2, tid


# -- pages and actions ------------------------------------------------------------------------


def _open_item(env, task_id):
    """Reset, search like the expert, open the expert's first pick; returns the results page and the item."""
    first = env.reset(task_id)
    assert first == f"WebShop [SEP] Instruction: [SEP] {env.goal(task_id).instruction} [SEP] Search"
    results = env.step(env.expert_step()[1]).observation
    click = env.expert_step()[1]
    env.step(click)
    return results, next(p for p in catalog(0) if f"click[{p.asin}]" == click)


def test_page_text(env):
    tid = env.task_ids("test")[0]
    results, item = _open_item(env, tid)
    lines = results.split("\n")
    assert lines[:3] == ["[Back to Search]", "Page 1 (Total results: 50)", "[Next >]"]
    assert re.fullmatch(r"\[B0[0-9A-Z]{8}\]", lines[3])
    assert re.fullmatch(r"\$\d+\.\d\d", lines[5])
    assert len(lines) == 3 + 3 * 10
    (dim, values), *_ = item.options
    expected = ["[Back to Search]", "[< Prev]", f"{dim} " + " ".join(f"[{v}]" for v in values)]
    page = env.step("click[Description]").observation
    assert page == f"[Back to Search]\n[< Prev]\n{item.description}"
    page = env.step("click[< Prev]").observation.split("\n")
    assert page[:3] == expected
    assert page[-7:] == [
        item.title,
        f"Price: ${item.price:.2f}",
        "Rating: N.A.",
        "[Description]",
        "[Features]",
        "[Reviews]",
        "[Buy Now]",
    ]
    res = env.step("click[Buy Now]")
    assert res.done
    assert res.observation.startswith("Thank you for shopping with us!\nYour code: \n")
    score = f"Your score (min 0.0, max 1.0): {res.reward:.2f}"
    assert res.observation.endswith("\n" + score)
    assert re.fullmatch(r"Your score \(min 0\.0, max 1\.0\): [01]\.\d\d", score)
    assert env.result() == {"success": res.reward == 1.0, "reward": res.reward, "score": 100 * res.reward}


def test_results_paging_and_subpages(env):
    tid = env.task_ids("dev")[3]
    first, _ = _open_item(env, tid)
    env.step("click[< Prev]")
    page2 = env.step("click[Next >]").observation
    assert page2.split("\n")[:4] == ["[Back to Search]", "Page 2 (Total results: 50)", "[< Prev]", "[Next >]"]
    assert env.step("click[< Prev]").observation == first
    for _ in range(4):
        last = env.step("click[Next >]").observation
    assert last.split("\n")[:3] == ["[Back to Search]", "Page 5 (Total results: 50)", "[< Prev]"]
    assert env.step("click[Next >]").observation == "Invalid action!"
    assert env.step("click[Back to Search]").observation.startswith("WebShop [SEP] Instruction:")


def test_invalid_actions_stay_on_page_and_never_raise(env):
    tid = env.task_ids("train")[7]
    _open_item(env, tid)
    results = env.step("click[< Prev]").observation
    first_id = results.split("\n")[3][1:-1]
    assert "[Buy Now]" in env.step(f"click[{first_id.lower()}]").observation  # ids match case-insensitively
    bad = ["search[deodorant]", "click[no such button]", "buy it now!!", "", "click[]", "search[", "click[Next >]"]
    for action in bad:
        res = env.step(action)
        assert (res.observation, res.reward, res.info.get("invalid")) == ("Invalid action!", 0.0, True), action
    assert env.step("click[Features]").observation.split("\n")[:2] == ["[Back to Search]", "[< Prev]"]
    assert "[Buy Now]" in env.step("click[< Prev]").observation


def test_think_is_free_and_step_cap_ends_with_zero(env):
    env.reset(env.task_ids("test")[1])
    for _ in range(20):
        assert env.step("think[I should search first.]").observation == "OK."
    for i in range(15):
        res = env.step("garbage")
        assert res.done == (i == 14)
    assert env.result() == {"success": False, "reward": 0.0, "score": 0.0}
    assert env.step("search[anything]").done


def test_options_chosen_on_item_page_count_in_reward(env):
    tid = next(t for t in env.task_ids("test") if len(env.goal(t).options) == 2 and len(env.goal(t).attributes) == 2)
    log = _run_expert(env, tid)
    env.reset(tid)
    for _, action, _, _ in log:
        if action != "click[Buy Now]" and not (
            action.startswith("click[") and any(action == f"click[{v}]" for _, v in env.goal(tid).options)
        ):
            env.step(action)
    res = env.step("click[Buy Now]")
    assert res.reward == 0.6  # right product, no option chosen: (2 + 0 + 1) / 5
    assert res.info["breakdown"]["options_matched"] == 0


# -- expert -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "n"), [("train", 30), ("dev", 30), ("test", 100)])
def test_expert_succeeds_on_every_category(env, split, n):
    ids = env.task_ids(split)[:n]
    for tid in ids:
        log = _run_expert(env, tid)
        assert env.result()["success"], (tid, log[-1])
        assert len(log) <= env.max_steps
    assert {env.task_type(t) for t in ids} == set(WebShopEnv.task_types)


def test_expert_thoughts_are_varied_and_grounded(env):
    thoughts = []
    for tid in env.task_ids("test")[:30]:
        for thought, _action, before, _ in _run_expert(env, tid):
            if thought is None:
                continue
            thoughts.append(thought)
            for asin in re.findall(r"B0[0-9A-Z]{8}", thought):  # only ids on the screen
                assert f"[{asin}]" in before
            for quoted in re.findall(r"'([^']+)'", thought):  # only options on the item page
                assert f"[{quoted}]" in before
    assert len(set(thoughts)) >= 10
    first = _run_expert(env, env.task_ids("test")[0])
    assert first[0][0] is None and first[0][1].startswith("search[")


def test_click_rules_both_backends_share():
    """``click_target``: every button of every page, case-insensitive, and the clicks no page offers."""
    from agentdistill.envs.webshop.text import click_target

    res = {"asins": ["B0ABC", "B0XYZ"], "has_prev": True, "has_next": False}
    opts = {"options": [("size", ["small", "Large"]), ("color", ["red"])]}
    cases = [
        ("search", "Back to Search", {}, None),  # the search page has a search box and no buttons
        ("results", "back to search", res, ("search", None)),
        ("results", " < Prev ", res, ("results", -1)),
        ("results", "Next >", res, None),  # no next page
        ("results", "Next >", {**res, "has_next": True}, ("results", 1)),
        ("results", "b0xyz", res, ("item", "B0XYZ")),
        ("results", "B0NOPE", res, None),
        ("results", "", res, None),
        ("item", "< Prev", opts, ("results", 0)),
        ("item", "features", opts, ("subpage", "Features")),
        ("item", "Buy Now", opts, ("buy", None)),
        ("item", "large", opts, ("option", ("size", "Large"))),
        ("item", "Red", opts, ("option", ("color", "red"))),
        ("item", "blue", opts, None),
        ("item", "B0ABC", {**opts, **res}, None),  # results' buttons are not on the item page
        ("Reviews", "< prev", opts, ("item", None)),
        ("description", "< Prev", {}, ("item", None)),
        ("description", "buy now", opts, None),
        ("description", "Back to Search", {}, ("search", None)),
        ("bought", "< Prev", opts, None),
    ]
    for page, button, kw, want in cases:
        assert click_target(page, button, **kw) == want, (page, button)

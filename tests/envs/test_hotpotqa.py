import json
import re

import pytest

from agentdistill.envs import make_env
from agentdistill.envs.hotpotqa import HotpotQAEnv, exact_match, f1_score, normalize_answer
from agentdistill.envs.hotpotqa.questions import default_bank, synthetic_bank
from agentdistill.envs.hotpotqa.wiki import Wiki, WikiBrowser
from agentdistill.errors import AgentDistillError, ConfigError


@pytest.fixture(scope="module")
def env():
    return HotpotQAEnv(seed=0)


def run_expert(env, task_id):
    """Play the oracle to the end; returns (question, [(thought, action, observation)], result)."""
    first = env.reset(task_id)
    steps = []
    for _ in range(env.max_steps):
        thought, action = env.expert_step()
        res = env.step(action)
        steps.append((thought, action, res.observation))
        if res.done:
            break
    return first, steps, env.result()


def argument(action):
    return action[action.index("[") + 1 : -1]


# --- tasks and splits -------------------------------------------------------------------------


def test_splits_ids_and_types(env):
    assert env.splits() == {"train": 3000, "dev": 200, "test": 500}
    assert env.task_ids("test")[123] == "hotpotqa-test-0123"
    assert all(re.fullmatch(r"hotpotqa-dev-\d{4}", t) for t in env.task_ids("dev"))
    for split in ("train", "dev", "test"):
        types = {env.task_type(t) for t in env.task_ids(split)}
        assert types == {"bridge", "comparison"}
    with pytest.raises(ConfigError, match="unknown hotpotqa split 'val'"):
        env.task_ids("val")
    with pytest.raises(ConfigError, match="unknown hotpotqa task id"):
        env.reset("hotpotqa-test-9999")


def test_registry_and_protocol_attributes():
    env = make_env("hotpotqa", seed=0)
    assert (env.name, env.format, env.max_steps, env.task_types) == ("hotpotqa", "react", 7, ("bridge", "comparison"))
    for verb in ("Search[entity]", "Lookup[keyword]", "Finish[answer]"):
        assert verb in env.instruction()


def test_first_observation_is_the_question(env):
    tid = env.task_ids("dev")[0]
    assert env.reset(tid) == f"Question: {env.task(tid).question}"


def test_same_seed_same_questions_and_observations():
    synthetic_bank.cache_clear()
    default_bank.cache_clear()
    a = HotpotQAEnv(seed=0)
    transcripts_a = [run_expert(a, t) for t in a.task_ids("test")[:40]]
    synthetic_bank.cache_clear()
    default_bank.cache_clear()
    b = HotpotQAEnv(seed=0)
    assert a._bank is not b._bank  # really generated twice
    assert [b.task(t).question for t in b.task_ids("train")] == [a.task(t).question for t in a.task_ids("train")]
    assert [run_expert(b, t) for t in b.task_ids("test")[:40]] == transcripts_a
    other = HotpotQAEnv(seed=1)
    assert [other.task(t).question for t in other.task_ids("test")] != [a.task(t).question for t in a.task_ids("test")]


def test_test_entities_are_disjoint_from_train(env):
    def entities(split):
        return {e for t in env.task_ids(split) for e in env.task(t).entities}

    def pages(split):
        return {h.title for t in env.task_ids(split) for h in env.task(t).hops}

    assert entities("test") and entities("train")
    assert not entities("test") & entities("train")
    assert not entities("dev") & entities("train")
    assert not pages("test") & pages("train")  # the bridge pages too


def test_bridge_answers_need_the_second_hop(env):
    wiki = env._bank.wiki_of("")
    for tid in env.task_ids("train") + env.task_ids("test"):
        task = env.task(tid)
        if task.type != "bridge":
            continue
        first, second = task.hops
        shown = " ".join(wiki.pages[first.title][:5])
        answer = f" {normalize_answer(task.answer)} "
        assert answer not in f" {normalize_answer(shown)} ", tid
        assert answer not in f" {normalize_answer(task.question)} ", tid
        assert second.title in wiki.pages[first.title][first.fact]  # the first page names the bridge entity
        assert answer in f" {normalize_answer(wiki.pages[second.title][second.fact])} "


def test_comparison_answers_are_one_of_the_two_or_yes_no(env):
    answers = []
    for tid in env.task_ids("train"):
        task = env.task(tid)
        if task.type == "comparison":
            assert task.answer in {"yes", "no", *task.entities}
            assert all(e in task.question for e in task.entities)
            answers.append(task.answer)
    assert 0.35 < answers.count("yes") / (answers.count("yes") + answers.count("no")) < 0.65


# --- the expert -------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "n"), [("train", 400), ("dev", 200), ("test", 500)])
def test_expert_solves_every_task(env, split, n):
    steps_by_type = {"bridge": [], "comparison": []}
    lookups = 0
    for tid in env.task_ids(split)[:n]:
        _, steps, result = run_expert(env, tid)
        assert result["success"] and result["em"] == 1.0 and result["f1"] == 1.0, tid
        assert steps[-1][2] == "Episode finished, reward = 1"
        assert all(thought for thought, _, _ in steps)
        steps_by_type[env.task_type(tid)].append(len(steps))
        lookups += any(a.startswith("Lookup[") for _, a, _ in steps)
    assert all(steps_by_type.values())
    assert max(max(s) for s in steps_by_type.values()) <= env.max_steps
    assert 0 < lookups < n  # some facts sit beyond the first five sentences, most do not


def test_expert_acts_only_on_what_the_transcript_shows(env):
    wiki = env._bank.wiki_of("")
    for tid in env.task_ids("test")[:300]:
        task = env.task(tid)
        question, steps, _ = run_expert(env, tid)
        seen = question  # what the transcript holds before each step
        for thought, action, observation in steps:
            if action.startswith(("Search[", "Finish[")) and argument(action) not in ("yes", "no"):
                assert argument(action) in seen, (tid, action)
            for number in re.findall(r"\d[\d,]*", thought):
                assert number.rstrip(",") in seen, (tid, thought)
            for hop in task.hops:  # a fact is stated only once its sentence has been shown
                if hop.statement in thought:
                    assert wiki.pages[hop.title][hop.fact] in seen, (tid, thought)
            seen += "\n" + observation


def test_expert_recovers_after_a_wrong_turn(env):
    for tid in env.task_ids("dev")[:50]:
        env.reset(tid)
        env.step("Search[Nowhere In Particular]")
        env.step("Lookup[the]")
        for _ in range(env.max_steps - 2):
            res = env.step(env.expert_step()[1])
            if res.done:
                break
        assert env.result()["success"], tid


def test_expert_thoughts_follow_react_style(env):
    tid = next(t for t in env.task_ids("dev") if env.task(t).template == "director_nationality")
    task = env.task(tid)
    _, steps, _ = run_expert(env, tid)
    film, director = (h.title for h in task.hops)
    assert steps[0][0] in task.plan
    assert steps[0][1] == f"Search[{film}]"
    assert f"{film} was directed by {director}." in steps[-2][0]
    assert steps[-2][1] == f"Search[{director}]"
    assert steps[-1][0] == f"{director} is {task.answer}. So the answer is {task.answer}." or steps[-1][0] == (
        f"{director} is {task.answer}, so the answer is {task.answer}."
    )


# --- observation semantics --------------------------------------------------------------------

PAGES = {
    "Ann Lee": [
        "Ann Lee is a painter.",
        "She was born in Kelham.",
        "She paints rivers.",
        "Her studio is by the river Lune.",
        "She has two dogs.",
        "She moved to Leeds in 1990.",
        "The river Tarn inspired her later work.",
    ],
    "Anna Leigh": ["Anna Leigh is a singer."],
    "Dan Lee": ["Dan Lee is a chef."],
    "Bob Stone": ["Bob Stone is a sailor."],
    "Lee Ann Rimes": ["Lee Ann Rimes is a band."],
    "Annie Hall": ["Annie Hall is a film."],
    "The Leeds Review": ["The Leeds Review is a magazine."],
}


def test_search_hit_returns_first_five_sentences_case_insensitively():
    browser = WikiBrowser(Wiki(PAGES))
    expected = "Ann Lee is a painter. She was born in Kelham. She paints rivers. Her studio is by the river Lune. She has two dogs."
    assert browser.search("Ann Lee") == expected
    assert browser.search("ann lee") == expected
    assert browser.search("Leeds Review!") == "The Leeds Review is a magazine."  # normalised match


def test_search_miss_lists_similar_titles_and_keeps_the_page():
    browser = WikiBrowser(Wiki(PAGES))
    browser.search("Ann Lee")
    assert browser.search("Ann Leigh") == (
        "Could not find Ann Leigh. Similar: ['Anna Leigh', 'Ann Lee', 'Dan Lee', 'Annie Hall', 'Lee Ann Rimes']."
    )
    assert browser.lookup("dogs") == "(Result 1 / 1) She has two dogs."  # still on Ann Lee, as in ReAct


def test_lookup_walks_results_then_runs_out():
    browser = WikiBrowser(Wiki(PAGES))
    assert browser.lookup("river") == "No more results."  # no page searched yet
    browser.search("Ann Lee")
    assert browser.lookup("river") == "(Result 1 / 3) She paints rivers."
    assert browser.lookup("river") == "(Result 2 / 3) Her studio is by the river Lune."
    assert browser.lookup("river") == "(Result 3 / 3) The river Tarn inspired her later work."
    assert browser.lookup("river") == "No more results."
    assert browser.lookup("LEEDS") == "(Result 1 / 1) She moved to Leeds in 1990."  # new keyword starts over
    browser.search("Ann Lee")
    assert browser.lookup("river") == "(Result 1 / 3) She paints rivers."  # a search resets the cursor


def test_env_search_and_lookup_use_the_corpus(env):
    tid = env.task_ids("dev")[0]
    title = env.task(tid).hops[0].title
    page = env._bank.wiki_of(tid).pages[title]
    env.reset(tid)
    assert env.step(f"search[{title.upper()}]").observation == " ".join(page[:5])
    assert env.step("Lookup[zzzz]").observation == "No more results."
    assert env.step("Search[Qqqq Xxxx]").observation.startswith("Could not find Qqqq Xxxx. Similar: ['")


@pytest.mark.parametrize(
    "action",
    [
        "",
        "Search[]",
        "search",
        "Lookup[",
        "Finish",
        "go north",
        "Search[a]]x",
        "[Ann Lee]",
        "Search(Ann Lee)",
        "\u00e9\u00e9[",
    ],
)
def test_invalid_actions_never_crash(env, action):
    env.reset(env.task_ids("dev")[0])
    res = env.step(action)
    assert res.observation == f"Invalid action: {action.strip()}"
    assert res.info["invalid"] and not res.done and res.reward == 0.0


def test_think_is_harmless_and_counts_as_a_step(env):
    env.reset(env.task_ids("dev")[0])
    res = env.step("think[I should search something]")
    assert (res.observation, res.done, res.info) == ("OK.", False, {})


def test_step_cap_ends_the_episode_as_a_failure(env):
    env.reset(env.task_ids("dev")[0])
    results = [env.step("Lookup[nothing]") for _ in range(env.max_steps)]
    assert [r.done for r in results] == [False] * 6 + [True]
    assert env.result() == {"success": False, "reward": 0.0, "em": 0.0, "f1": 0.0, "answer": None}
    assert env.step("Finish[x]").done  # nothing happens once it is over
    assert env.result()["answer"] is None


def test_finish_scores_exact_match_and_f1(env):
    tid = next(t for t in env.task_ids("dev") if env.task(t).template == "star_birthplace")
    gold = env.task(tid).answer
    env.reset(tid)
    res = env.step(f"FINISH[ the {gold.lower()}! ]")
    assert (res.observation, res.reward, res.done) == ("Episode finished, reward = 1", 1.0, True)
    assert env.result() == {"success": True, "reward": 1.0, "em": 1.0, "f1": 1.0, "answer": f"the {gold.lower()}!"}
    env.reset(tid)
    res = env.step(f"Finish[{gold} town]")
    assert (res.observation, res.reward) == ("Episode finished, reward = 0", 0.0)
    assert env.result()["f1"] == pytest.approx(2 / 3)


# --- scoring ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("The Beatles", "beatles"),
        ("  New   York\tCity ", "new york city"),
        ("St. Louis, Missouri!", "st louis missouri"),
        ("An Apple a day", "apple day"),
        ("theater", "theater"),  # an article only as a whole word
        ("A", ""),
    ],
)
def test_normalize_answer(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_after_normalisation():
    assert exact_match("the United States", "United States")
    assert exact_match("2,105,000", "2105000")
    assert not exact_match("United States", "United Kingdom")


@pytest.mark.parametrize(
    ("prediction", "gold", "f1"),
    [
        ("the quick brown fox", "quick fox jumps", 2 / 3),  # P = R = 2/3
        ("New York", "New York City", 0.8),  # P = 1, R = 2/3
        ("yes", "yes", 1.0),
        ("yes", "no", 0.0),
        ("no", "no way", 0.0),  # a yes/no answer that differs scores 0 despite the shared token
        ("noanswer", "no answer", 0.0),
        ("cat cat", "cat", 2 / 3),  # token counts, not sets: P = 1/2, R = 1
    ],
)
def test_f1_score(prediction, gold, f1):
    assert f1_score(prediction, gold) == pytest.approx(f1)


def test_f1_score_of_nothing_is_zero():
    assert f1_score("the", "a") == 0.0
    assert f1_score("", "Paris") == 0.0


# --- distractor-format files ------------------------------------------------------------------

RECORDS = [
    {
        "_id": "5a8b57f25542995d1e6f1371",
        "question": "Which river flows through the town where Ada Byrne was born?",
        "answer": "Lune",
        "type": "bridge",
        "level": "medium",
        "supporting_facts": [["Ada Byrne", 1], ["Kelham", 6]],
        "context": [
            ["Ada Byrne", ["Ada Byrne (1931-2002) was a poet.", " She was born in Kelham."]],
            ["Kelham", ["Kelham is a town.", "It has a market.", "It has a castle.", "It has a port.", "It has a mill.", "It has a school.", "The Lune flows through Kelham."]],
            ["Tom Hale", ["Tom Hale is an English painter."]],
        ],
    },
    {
        "_id": "5a8c7595554299585d9e36b6",
        "question": "Were Ada Byrne and Tom Hale of the same nationality?",
        "answer": "no",
        "type": "comparison",
        "level": "hard",
        "supporting_facts": [["Ada Byrne", 0], ["Tom Hale", 0]],
        "context": [
            ["Tom Hale", ["Tom Hale is an English painter."]],
            ["Ada Byrne", ["Ada Byrne (1931-2002) was an Irish poet."]],
        ],
    },
    {
        "_id": "5ae0185b55429942ec259c1b",
        "question": "Who wrote the song covered on Kelham Nights?",
        "answer": "Mary Ames",
        "type": "bridge",
        "level": "easy",
        "supporting_facts": [["Kelham Nights", 0], ["Kelham Nights", 9], ["Missing Page", 0]],
        "context": [["Kelham Nights", ["Kelham Nights is an album covering a song by Mary Ames."]]],
    },
]  # fmt: skip


def write(tmp_path, records):
    path = tmp_path / "hotpot_dev_distractor.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_distractor_file_loads_and_the_expert_solves_it(tmp_path):
    env = HotpotQAEnv(data=write(tmp_path, RECORDS))
    ids = [r["_id"] for r in RECORDS]
    assert env.splits() == {"train": 0, "dev": 0, "test": 3}  # fewer than ReAct's 500: all are test questions
    assert env.task_ids("test") == [ids[i] for i in (1, 0, 2)]  # random.Random(233).shuffle([0, 1, 2])
    assert [env.task_type(t) for t in ids] == ["bridge", "comparison", "bridge"]
    transcripts = {t: run_expert(env, t) for t in ids}
    assert all(result["success"] for _, _, result in transcripts.values())
    _, steps, _ = transcripts[ids[0]]
    assert [a for _, a, _ in steps] == ["Search[Ada Byrne]", "Search[Kelham]", "Lookup[flows]", "Finish[Lune]"]
    assert steps[0][2] == "Ada Byrne (1931-2002) was a poet. She was born in Kelham."
    assert steps[2][2] == "(Result 1 / 1) The Lune flows through Kelham."
    assert [a for _, a, _ in transcripts[ids[2]][1]] == ["Search[Kelham Nights]", "Finish[Mary Ames]"]


def test_distractor_search_sees_only_its_own_context(tmp_path):
    env = HotpotQAEnv(data=write(tmp_path, RECORDS))
    env.reset(RECORDS[1]["_id"])
    assert env.step("Search[Kelham]").observation.startswith("Could not find Kelham. Similar: [")
    assert "Kelham" not in env.step("Search[Kelham]").observation.split("Similar:")[1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"_id": "x"}', "expected a non-empty JSON list of questions (or JSON Lines), got dict"),
        ("[]", "expected a non-empty JSON list"),
        (json.dumps([{k: v for k, v in RECORDS[0].items() if k != "answer"}]), "record 0 (_id '5a8b57f25542995d1e6f1371'): missing key 'answer'"),
        (json.dumps([RECORDS[1], {**RECORDS[0], "context": [["Ada Byrne", "one string"]]}]), "record 1 (_id '5a8b57f25542995d1e6f1371'): each context entry must be [title, [sentence, ...]]"),
        (json.dumps([{**RECORDS[0], "supporting_facts": [["Ada Byrne", "0"]]}]), "each supporting fact must be [title, sentence index]"),
        (json.dumps([{**RECORDS[0], "question": 3}]), "'question' must be a str, got int"),
        (json.dumps([RECORDS[0], RECORDS[0]]), "record 1: duplicate _id '5a8b57f25542995d1e6f1371'"),
        (json.dumps(["a question"]), "record 0: expected an object, got str"),
    ],
)  # fmt: skip
def test_malformed_distractor_file_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AgentDistillError) as err:
        HotpotQAEnv(data=path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_distractor_file_is_a_clear_error(tmp_path):
    with pytest.raises(AgentDistillError, match=r"hotpotqa data file .*nope\.json: cannot read it"):
        HotpotQAEnv(data=tmp_path / "nope.json")

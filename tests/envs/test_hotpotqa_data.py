"""HotPotQA's own data: both schemas, every file kind, ReAct's evaluation selection, splits, a Wikipedia dump."""

import json
import re
import sys

import pytest

from agentdistill.cli import main
from agentdistill.envs.hotpotqa import HotpotQAEnv
from agentdistill.envs.hotpotqa.distractor import react_order
from agentdistill.envs.hotpotqa.dump import WikiDump, split_sentences
from agentdistill.envs.hotpotqa.wiki import WikiBrowser
from agentdistill.errors import AgentDistillError, ConfigError
from agentdistill.runconfig import CollectArgs, EvalArgs, load_run_config, stage_args
from agentdistill.trajectory import read_trajectories

TOWNS = ["Kelham", "Rowby", "Ashford", "Tinmouth", "Halden", "Brixley", "Corwen", "Dunmere", "Elstow", "Farley",
         "Glenby", "Hurst"]  # fmt: skip
RIVERS = ["Lune", "Wyre", "Tees", "Eden", "Kent", "Ribble", "Calder", "Aire", "Swale", "Ure", "Nidd", "Wharfe"]


def record(i: int) -> dict:
    """A bridge question in the original schema: the poet's page names the town, the town's 7th sentence the river."""
    town, river, poet = TOWNS[i], RIVERS[i], f"Poet {TOWNS[i]}"
    filler = [f"{town} has a market.", "It has a castle.", "It has a port.", "It has a mill.", "It has a school."]
    return {
        "_id": f"5a8b{i:04d}",
        "question": f"Which river flows through the town where {poet} was born?",
        "answer": river,
        "type": "bridge",
        "level": "medium",
        "supporting_facts": [[poet, 1], [town, 6]],
        "context": [
            [poet, [f"{poet} (1931-2002) was a poet.", f" She was born in {town}."]],
            [town, [f"{town} is a town.", *filler, f"The {river} flows through {town}."]],
        ],
    }


RECORDS = [record(i) for i in range(12)]
IDS = [r["_id"] for r in RECORDS]
ORDER_12 = [5, 9, 0, 1, 4, 7, 6, 3, 8, 2, 11, 10]  # random.Random(233).shuffle(list(range(12)))


def hf(r: dict) -> dict:
    """The record in the Hugging Face ``hotpot_qa`` schema."""
    return {
        "id": r["_id"],
        "question": r["question"],
        "answer": r["answer"],
        "type": r["type"],
        "level": r["level"],
        "supporting_facts": {
            "title": [t for t, _ in r["supporting_facts"]],
            "sent_id": [i for _, i in r["supporting_facts"]],
        },
        "context": {"title": [t for t, _ in r["context"]], "sentences": [s for _, s in r["context"]]},
    }


def write(path, records, lines=False):
    text = "\n".join(json.dumps(r) for r in records) + "\n" if lines else json.dumps(records)
    path.write_text(text, encoding="utf-8")
    return path


def expert_run(env, task_id):
    """[(action, observation)] of the expert's episode and the result."""
    env.reset(task_id)
    steps = []
    for _ in range(env.max_steps):
        _, action = env.expert_step()
        res = env.step(action)
        steps.append((action, res.observation))
        if res.done:
            break
    return steps, env.result()


def test_react_order_is_reacts_dev_set_selection():
    order = react_order(7405)  # hotpotqa.ipynb: idxs = list(range(7405)); random.Random(233).shuffle(idxs); idxs[:500]
    assert order[:8] == [3687, 6238, 5388, 3522, 3824, 2866, 1551, 2544]
    assert order[499] == 4082 and sorted(order) == list(range(7405))
    assert react_order(12) == ORDER_12


def test_one_file_gives_reacts_questions_to_test_the_next_to_dev_the_rest_to_train(tmp_path):
    env = HotpotQAEnv(data=write(tmp_path / "dev.json", RECORDS), questions=3)
    assert env.task_ids("test") == [IDS[i] for i in ORDER_12[:3]]
    assert env.task_ids("dev") == [IDS[i] for i in ORDER_12[3:6]]
    assert env.task_ids("train") == [IDS[i] for i in sorted(ORDER_12[6:])]  # file order
    assert env.splits() == {"train": 6, "dev": 3, "test": 3}
    steps, result = expert_run(env, env.task_ids("test")[0])
    assert [a for a, _ in steps] == ["Search[Poet Brixley]", "Search[Brixley]", "Lookup[Ribble]", "Finish[Ribble]"]
    assert steps[2][1] == "(Result 1 / 1) The Ribble flows through Brixley."
    assert result["success"] and result["em"] == 1.0
    with pytest.raises(ConfigError, match=r"the train split is empty .*fewer --questions, or a file per split"):
        HotpotQAEnv(data=write(tmp_path / "small.json", RECORDS[:4]), questions=2).task_ids("train")


def test_a_file_per_split(tmp_path):
    train, test, dev = write(tmp_path / "a.json", RECORDS[:6]), write(tmp_path / "b.json", RECORDS[6:]), None
    env = HotpotQAEnv(data=f"train={train},test={test}", questions=2)
    shuffled = [RECORDS[6:][i]["_id"] for i in react_order(6)]
    assert env.task_ids("test") == shuffled[:2] and env.task_ids("dev") == shuffled[2:4]
    assert env.task_ids("train") == IDS[:6]
    dev = write(tmp_path / "c.json", [RECORDS[4], RECORDS[1]])  # a dev file of its own: its order, out of train
    env = HotpotQAEnv(data={"train": train, "dev": dev, "test": test}, questions=2)
    assert env.task_ids("dev") == [IDS[4], IDS[1]] and env.task_ids("test") == shuffled[:2]
    assert env.task_ids("train") == [IDS[0], IDS[2], IDS[3], IDS[5]]
    assert HotpotQAEnv(data=f"test={test}").task_ids("test") == shuffled  # questions >= the file: all of it
    for bad in (f"train={train},exam={test}", f"train={train},train={test}", "train="):
        with pytest.raises(ConfigError, match="name each split once with its file"):
            HotpotQAEnv(data=bad)
    with pytest.raises(ConfigError, match="questions must be >= 1; got 0"):
        HotpotQAEnv(data=train, questions=0)
    with pytest.raises(ConfigError, match="--wiki applies to HotPotQA's questions; pass them with --data"):
        HotpotQAEnv(wiki=train)


def test_hugging_face_schema_as_json_and_json_lines_equals_the_original(tmp_path):
    original = HotpotQAEnv(data=write(tmp_path / "orig.json", RECORDS), questions=4)
    ids = original.task_ids("test") + original.task_ids("train")
    expected = [expert_run(original, t) for t in ids]
    hf_records = [hf(r) for r in RECORDS]
    for path in (
        write(tmp_path / "hf.json", hf_records),
        write(tmp_path / "hf.jsonl", hf_records, lines=True),
        write(tmp_path / "hf_lines.json", hf_records, lines=True),  # Dataset.to_json writes lines into .json
        write(tmp_path / "mixed.json", RECORDS[:6] + hf_records[6:]),
    ):
        env = HotpotQAEnv(data=path, questions=4)
        assert [env.task_ids(s) for s in ("train", "dev", "test")] == [
            original.task_ids(s) for s in ("train", "dev", "test")
        ]
        assert [env.task_type(t) for t in ids] == [original.task_type(t) for t in ids]
        assert [expert_run(env, t) for t in ids] == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps([{**hf(RECORDS[0]), "context": {"title": ["a", "b"], "sentences": [["x"]]}}]),
         "record 0: 'context' must be {'title': [...], 'sentences': [...]} with lists of equal length"),
        (json.dumps([{**hf(RECORDS[0]), "supporting_facts": {"title": ["a"]}}]), "'supporting_facts' must be {'title'"),
        (json.dumps(hf(RECORDS[0])) + "\n{oops\n", "line 2 is not valid JSON"),
        (json.dumps([{**hf(RECORDS[0]), "answer": ""}]), "record 0 (_id '5a8b0000'): empty answer (HotPotQA's test set"),
        (json.dumps([{k: v for k, v in hf(RECORDS[0]).items() if k != "question"}]), "missing key 'question'"),
    ],
)  # fmt: skip
def test_malformed_hugging_face_records_are_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AgentDistillError) as err:
        HotpotQAEnv(data=path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_datasets_save_to_disk_directories(tmp_path):
    datasets = pytest.importorskip("datasets")
    hf_records = [hf(r) for r in RECORDS]
    datasets.Dataset.from_list(hf_records).save_to_disk(str(tmp_path / "one"))
    single = HotpotQAEnv(data=write(tmp_path / "orig.json", RECORDS), questions=3)
    env = HotpotQAEnv(data=tmp_path / "one", questions=3)
    assert [env.task_ids(s) for s in ("train", "dev", "test")] == [
        single.task_ids(s) for s in ("train", "dev", "test")
    ]
    assert expert_run(env, env.task_ids("dev")[1]) == expert_run(single, single.task_ids("dev")[1])

    both = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(hf_records[:6]), "validation": datasets.Dataset.from_list(hf_records[6:])}
    )
    both.save_to_disk(str(tmp_path / "dict"))
    per_split = HotpotQAEnv(
        data=f"train={write(tmp_path / 'a.json', RECORDS[:6])},test={write(tmp_path / 'b.json', RECORDS[6:])}",
        questions=2,
    )
    for data in (tmp_path / "dict", f"train={tmp_path / 'dict' / 'train'},test={tmp_path / 'dict' / 'validation'}"):
        env = HotpotQAEnv(data=data, questions=2)
        assert [env.task_ids(s) for s in ("train", "dev", "test")] == [
            per_split.task_ids(s) for s in ("train", "dev", "test")
        ]
    with pytest.raises(AgentDistillError, match=r"a DatasetDict directory \(splits train, validation\); pass one"):
        HotpotQAEnv(data=f"test={tmp_path / 'dict'}")


def test_a_dataset_directory_without_datasets_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset_info.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    with pytest.raises(ConfigError, match=r"needs the datasets package: pip install agentdistill\[datasets\]"):
        HotpotQAEnv(data=tmp_path / "ds")
    out = tmp_path / "t.jsonl"
    assert main(["collect", "--env", "hotpotqa", "--data", str(tmp_path / "ds"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()
    (tmp_path / "plain").mkdir()
    with pytest.raises(AgentDistillError, match="not one written by datasets' save_to_disk"):
        HotpotQAEnv(data=tmp_path / "plain")


# --- a Wikipedia dump: the full-wiki setting -------------------------------------------------------

PAGES = [
    {"title": "Kelham", "text": "Kelham is a town in Lunshire. It has a market. It has a castle.\n\n"
                                "It has a port. It has a mill. It has a school. The Lune flows through Kelham."},
    {"title": "Poet Kelham", "text": "Poet Kelham (1931-2002) was a poet. She was born in Kelham, in 1931."},
    {"title": "Kelham Castle", "text": "Kelham Castle is a ruin.\nIt overlooks the Lune."},
    {"title": "Kelham Nights", "text": "Kelham Nights is an album."},
    {"title": "Poet Rowby", "text": "Poet Rowby was a poet. She was born in Rowby."},
    {"title": "Kelham", "text": "A second page of the same title is ignored."},
]  # fmt: skip


@pytest.fixture
def dump(tmp_path):
    return write(tmp_path / "wiki.jsonl", PAGES, lines=True)


def test_dump_search_and_lookup_follow_react(dump):
    assert split_sentences("A is B. C is D.\n\n E.  \n") == ("A is B.", "C is D.", "E.")
    browser = WikiBrowser(WikiDump(dump))
    first_five = "Kelham is a town in Lunshire. It has a market. It has a castle. It has a port. It has a mill."
    assert browser.search("kelham") == first_five  # case-insensitive title, first five sentences over paragraphs
    assert browser.lookup("It has") == "(Result 1 / 5) It has a market."
    assert browser.lookup("It has") == "(Result 2 / 5) It has a castle."
    assert browser.lookup("Lune") == "(Result 1 / 1) The Lune flows through Kelham."
    assert browser.lookup("Lune") == "No more results."
    miss = browser.search("Castle of Kelham")
    assert (
        miss
        == "Could not find Castle of Kelham. Similar: ['Kelham Castle', 'Kelham', 'Poet Kelham', 'Kelham Nights']."
    )
    assert browser.search("Zanzibar") == "Could not find Zanzibar. Similar: []."
    assert browser.page == "Kelham"  # a miss keeps the page, as in ReAct
    assert browser.search("Kelham Castle") == "Kelham Castle is a ruin. It overlooks the Lune."


def test_full_wiki_questions_search_the_dump_and_the_expert_solves_them(tmp_path, dump):
    data = write(tmp_path / "dev.json", RECORDS[:2])
    env = HotpotQAEnv(data=data, wiki=dump)
    kelham = next(t for t in env.task_ids("test") if env.task(t).answer == "Lune")
    steps, result = expert_run(env, kelham)
    # the dump's Kelham page is not the context paragraph: the Lune sentence is its 7th, reached by a lookup
    assert [a for a, _ in steps] == ["Search[Poet Kelham]", "Search[Kelham]", "Lookup[flows]", "Finish[Lune]"]
    assert steps[1][1].startswith("Kelham is a town in Lunshire.")
    assert result["success"]
    env.reset(kelham)
    assert (
        env.step("Search[Poet Rowby]").observation == "Poet Rowby was a poet. She was born in Rowby."
    )  # not in its context
    rowby = next(t for t in env.task_ids("test") if t != kelham)
    steps, result = expert_run(env, rowby)  # the dump lacks the page "Rowby": the expert searches what it has
    assert [a for a, _ in steps] == ["Search[Poet Rowby]", "Finish[Wyre]"] and result["success"]
    bad = write(tmp_path / "bad.jsonl", [{"title": "x"}], lines=True)
    with pytest.raises(AgentDistillError, match=r'line 1 is not a \{"title": str, "text": str\} object'):
        HotpotQAEnv(data=data, wiki=bad)
    with pytest.raises(AgentDistillError, match="hotpotqa wiki dump .*nope.jsonl: cannot read it"):
        HotpotQAEnv(data=data, wiki=tmp_path / "nope.jsonl")


# --- the flags: collect, evaluate and run ---------------------------------------------------------------


def test_collect_takes_data_questions_and_wiki(tmp_path, dump, capsys):
    a, b = write(tmp_path / "a.json", RECORDS[:6]), write(tmp_path / "b.json", RECORDS[6:])
    out = tmp_path / "t.jsonl"
    argv = ["collect", "--env", "hotpotqa", "--data", f"train={a},test={b}", "--questions", "2", "--split", "test"]
    assert main([*argv, "--out", str(out)]) == 0
    trajs = read_trajectories(out)
    assert [t.id for t in trajs] == [RECORDS[6:][i]["_id"] for i in react_order(6)[:2]]
    assert all(t.success for t in trajs)
    wiki_out = tmp_path / "w.jsonl"
    assert main(["collect", "--env", "hotpotqa", "--data", str(a), "--wiki", str(dump), "--split", "test",
                 "--episodes", "1", "--out", str(wiki_out)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["collect", "--env", "hotpotqa", "--questions", "3", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--questions applies to HotPotQA's questions; pass them with --data" in capsys.readouterr().err
    assert main(["collect", "--env", "alfworld", "--data", str(a), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "--data is only for --env hotpotqa; got --env alfworld" in capsys.readouterr().err
    assert main(["collect", "--env", "hotpotqa", "--data", str(a), "--questions", "0", "--out", str(out)]) == 2
    assert "--questions must be >= 1" in capsys.readouterr().err


def test_run_passes_its_data_to_every_stage(tmp_path, capsys):
    data = str(write(tmp_path / "dev.json", RECORDS))
    cfg = load_run_config("smoke", sets=[f"data={json.dumps(data)}", "questions=3"])
    kwargs = stage_args(CollectArgs, cfg.collect, env="hotpotqa", **cfg.env_options("hotpotqa")).env_kwargs()
    assert kwargs == {"seed": 0, "data": data, "questions": 3}
    assert stage_args(EvalArgs, cfg.evaluate, env="hotpotqa", **cfg.env_options("hotpotqa")).env_kwargs() == kwargs
    assert cfg.env_options("alfworld") == {"env_seed": 0}
    for sets, message in (
        ([f"data={json.dumps(data)}", "envs=[alfworld]"], "`data` is for the hotpotqa env, which is not in envs"),
        (["questions=5"], "`questions` and `wiki` choose among HotPotQA's questions; set `data`"),
        (["envs=[webshop-http]"], "envs has webshop-http; set its server: --webshop_url"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_run_config("smoke", sets=sets)
    missing = tmp_path / "missing.json"
    assert main(["run", "--preset", "smoke", "--data", str(missing), "--out", str(tmp_path / "r1")]) == 2
    assert re.fullmatch(r"error: hotpotqa data file .*missing\.json: cannot read it .*\n", capsys.readouterr().err)
    assert not (tmp_path / "r1" / "run.yaml").exists()  # refused before any stage

    run = tmp_path / "r2"
    assert main(["run", "--preset", "smoke", "--data", data, "--questions", "3", "--out", str(run),
                 "--stop_after", "collect"]) == 0  # fmt: skip
    train_ids = set(HotpotQAEnv(data=data, questions=3).task_ids("train"))
    for path in (run / "teacher" / "expert" / "hotpotqa.jsonl", run / "collect" / "hotpotqa.jsonl"):
        ids = [t.id for t in read_trajectories(path)]
        assert ids and set(ids) <= train_ids  # the file's train questions, none of ReAct's test questions
    assert "data: " + data in (run / "run.yaml").read_text()

import json

import pytest

from agentdistill.cli import main as cli_main
from agentdistill.errors import ConfigError
from agentdistill.report import build_report, build_results, format_tables, main

METHODS = {
    "sft": {"loss": "sft", "lambda_reason": 1.0, "lambda_act": 1.0, "curriculum": "none"},
    "token-kd": {"loss": "token-kd", "lambda_reason": 1.0, "lambda_act": 1.0, "curriculum": "none"},
    "sad": {"loss": "sad", "lambda_reason": 1.0, "lambda_act": 1.0, "curriculum": "buckets"},
    "sad-no-cot": {"loss": "sad", "lambda_reason": 0.0, "lambda_act": 1.0, "curriculum": "buckets"},
}
# (key, method, seed) -> env -> (success %, reasoning length, CoT match %); None: no eval file written
EVALS = {
    ("teacher", None, None): {"alfworld": (80.0, 30.0, None), "webshop": (70.0, 20.0, None)},
    ("sft__s__s0", "sft", 0): {"alfworld": (30.0, 25.0, 10.0), "webshop": (35.0, 18.0, 5.0)},
    ("token-kd__s__s0", "token-kd", 0): {"alfworld": (38.0, 28.0, 20.0), "webshop": (30.0, 19.0, 6.0)},
    ("sad__s__s0", "sad", 0): {"alfworld": (40.0, 29.0, 30.0), "webshop": (20.0, 21.0, 8.0)},
    ("sad__s__s1", "sad", 1): {"alfworld": (60.0, 31.0, 40.0), "webshop": None},
    ("sad-no-cot__s__s0", "sad-no-cot", 0): {"alfworld": (45.0, 12.0, 15.0), "webshop": "corrupt"},
}


def _metrics(success, length, cot):
    return {
        "episodes": 10, "success_rate": success, "score": success, "reasoning_length": length, "steps": 7.0,
        "invalid_rate": 1.0, "seconds_per_episode": 0.25, "tokens_per_second": 100.0, "cot_match_rate": cot,
    }  # fmt: skip


# the first task each method solves: method m solves task i iff (i + OFFSET[m]) % 10 < its successes
OFFSET = {None: 0, "sft": 0, "token-kd": 2, "sad": 5, "sad-no-cot": 1}


def solved(method, success, i):
    return (i + OFFSET[method]) % 10 < round(success / 10)


def make_run(root, evals=EVALS):
    """A run directory as `agentdistill run` writes it, with eval files of known numbers and, beside each,
    the 10 episodes behind it (``solved``)."""
    run = root / "demo"
    cells, teacher_eval = [], {}
    for (key, method, seed), per_env in evals.items():
        paths = {env: f"eval/{key}/{env}.json" for env in ("alfworld", "webshop")}
        for env, v in per_env.items():
            path = run / paths[env]
            path.parent.mkdir(parents=True, exist_ok=True)
            if v == "corrupt":
                path.write_text('{"overall": {"succ')
            elif v is not None:
                s, length, cot = v
                by_type = {"clean": _metrics(s + 10, length, cot), "heat": _metrics(s - 10, length, cot)}
                path.write_text(json.dumps({"overall": _metrics(s, length, cot), "by_type": by_type, "config": {}}))
                rows = [{"id": f"t{i}", "success": solved(method, s, i), "steps": []} for i in range(10)]
                path.with_name(f"{env}.trajectories.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if method is None:
            teacher_eval = paths
            continue
        cells.append({"key": key, "method": method, "size": "s", "seed": seed, "params": 200000,
                      "dir": f"distill/{key}", "eval": paths})  # fmt: skip
        d = run / "distill" / key
        d.mkdir(parents=True)
        log = [
            {"step": k, "loss": 2.0 / k, "loss_cot": 1.5 / k, "loss_act": 0.5 / k, "tokens_per_sec": 9.9}
            for k in (1, 2, 3)
        ]
        (d / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        if method != "sad-no-cot":
            (d / ".distill.done").write_text("{}")
    manifest = {
        "name": "demo", "preset": "quick", "command": "agentdistill run --preset quick --out runs/demo",
        "machine": "2 CPU cores, 24 GB RAM, no GPU (Linux x86_64)", "started": "2026-11-23T10:00:00",
        "versions": {"agentdistill": "0.1.0", "torch": "2.13.0"}, "envs": ["alfworld", "webshop"],
        "eval": {"split": "test", "episodes": {"alfworld": 10, "webshop": 10}},
        "teacher": {"key": "teacher", "source": "embedded", "params": 1317504, "non_embedding_params": 790000,
                    "num_layers": 2, "eval": teacher_eval},
        "methods": METHODS, "sizes": {"s": {"params": 200000, "non_embedding_params": 150000, "num_layers": 1}}, "cells": cells, "stages": {},
    }  # fmt: skip
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("report"))
    return run, build_report(run)


def _row(results, env, model):
    return next(r for r in results["tables"][env] if r["model"] == model)


def test_report_rows_mean_std_over_seeds(built):
    run, res = built
    assert json.loads((run / "results.json").read_text()) == res
    assert [r["model"] for r in res["tables"]["alfworld"]] == ["teacher", "sft", "token-kd", "sad", "sad-no-cot"]
    sad = _row(res, "alfworld", "sad")
    assert sad["success_rate"] == {"mean": 50.0, "std": 14.142136}
    assert sad["cot_match_rate"] == {"mean": 35.0, "std": 7.071068}
    assert (sad["n_seeds"], sad["n_cells"], sad["seeds"], sad["params"]) == (2, 2, [0, 1], 200000)
    teacher = _row(res, "alfworld", "teacher")
    assert teacher["cot_match_rate"] == {"mean": None, "std": None}  # None stays None
    assert (teacher["size"], teacher["params"], teacher["success_rate"]) == (None, 1317504, {"mean": 80.0, "std": 0.0})
    assert _row(res, "alfworld", "sad-no-cot")["label"] == "sad (λ_r=0)"
    assert res["timing_keys"] == ["seconds_per_episode", "tokens_per_second"]
    assert res["by_type"]["alfworld"]["types"] == ["clean", "heat"]
    sad_types = next(r for r in res["by_type"]["alfworld"]["rows"] if r["model"] == "sad")["success_rate"]
    assert sad_types["clean"] == {"mean": 60.0, "std": 14.142136}


def test_report_ablation_overall_and_training(built):
    _, res = built
    abl = res["ablation"]["alfworld"]
    assert [(r["model"], r["size"]) for r in abl] == [("sad", "s"), ("sad-no-cot", "s")]
    assert abl[1]["delta"] == {"success_rate": -5.0, "reasoning_length": -18.0, "cot_match_rate": -20.0}
    assert res["ablation"]["webshop"][1]["delta"]["success_rate"] is None  # unreadable eval: no number made up
    overall = {(o["model"], o["size"]): o for o in res["overall"]}
    assert overall[("sad", "s")]["success_rate"] == 35.0  # (50 + 20) / 2
    assert overall[("sad-no-cot", "s")]["envs_missing"] == ["webshop"]
    t = next(t for t in res["training"] if t["cell"] == "sad__s__s1")
    assert (t["done"], t["step"], t["loss_cot"], t["loss_act"]) == (True, 3, 0.5, 0.166667)


def test_report_paired_tests_pair_the_same_tasks_and_seeds(built):
    _, res = built
    got = {(t["env"], t["b"]): (t["pairs"], t["seeds"], t["a_only"], t["b_only"], t["p_value"]) for t in res["paired"]}
    # alfworld: sad seed 0 solves t5..t8, sft t0..t2, token-kd t8,t9,t0,t1; sad seed 1 has no baseline seed 1
    assert got[("alfworld", "sft")] == (10, 1, 4, 3, 1.0)
    assert got[("alfworld", "token-kd")] == (10, 1, 3, 3, 1.0)
    # webshop: sad t5,t6 vs sft t0..t3: p = 2 * (1 + 6 + 15) / 64
    assert got[("webshop", "sft")] == (10, 1, 2, 4, 0.6875)
    assert got[("all", "sft")] == (20, 1, 6, 7, 1.0)
    assert set(got) == {(e, b) for e in ("alfworld", "webshop", "all") for b in ("sft", "token-kd")}
    sad = _row(res, "alfworld", "sad")["success_ci"]
    assert (sad["low"], sad["high"], sad["method"], sad["episodes"]) == (0.0, 100.0, "t+wilson", 20)
    overall = {(o["model"], o["size"]): o["success_ci"] for o in res["overall"]}
    sft = overall[("sft", "s")]  # mean of Wilson(3, 10) and Wilson(4, 10 from 35 %)
    assert (sft["low"], sft["high"]) == (
        pytest.approx((10.7789 + 16.8180) / 2, abs=1e-3),
        pytest.approx((60.3222 + 68.7326) / 2, abs=1e-3),
    )


def test_report_paired_test_sees_a_clear_win(tmp_path):
    evals = {
        ("teacher", None, None): {"alfworld": (90.0, 30.0, None)},
        ("token-kd__s__s0", "token-kd", 0): {"alfworld": (0.0, 28.0, 20.0)},
        ("sad__s__s0", "sad", 0): {"alfworld": (80.0, 29.0, 30.0)},
    }
    run = make_run(tmp_path, evals)
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(manifest | {"envs": ["alfworld"]}))
    res = build_results(run)
    (t,) = res["paired"]
    assert (t["pairs"], t["a_only"], t["b_only"], t["diff"]) == (10, 8, 0, 80.0)
    assert t["p_value"] == pytest.approx(2 / 256)  # exact McNemar: 8 of 8 discordant pairs
    assert 40.0 <= t["diff_low"] < t["diff_high"] == 100.0
    assert "McNemar p = 0.00781" in res["statement"]


def test_report_lists_missing_and_unreadable_files(built):
    _, res = built
    got = {(m["path"], m["reason"].split(":")[0]) for m in res["missing"]}
    assert got == {
        ("eval/sad__s__s1/webshop.json", "missing"),
        ("eval/sad-no-cot__s__s0/webshop.json", "unreadable"),
        ("distill/sad-no-cot__s__s0/.distill.done", "missing"),
    }
    webshop_sad = _row(res, "webshop", "sad")
    assert (webshop_sad["n_seeds"], webshop_sad["success_rate"]) == (1, {"mean": 20.0, "std": 0.0})


def test_report_warns_where_the_teacher_is_not_competent(built):
    run, res = built
    # the teacher: alfworld 80 % (at the bar: no warning), webshop 70 % (below: one warning)
    assert res["notes"] == [
        "the teacher solves 70.0 % of the webshop tasks evaluated (below 80 %): its students learn from an agent "
        "that is not yet competent, so the webshop rows say little about the methods"
    ]
    assert f"- **Note:** {res['notes'][0]}" in (run / "results.md").read_text().splitlines()


def test_report_markdown_tables_and_statement(built):
    run, res = built
    md = (run / "results.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "# Results: demo"
    assert "- Command: `agentdistill run --preset quick --out runs/demo`" in lines
    assert "- Evaluation: split test; episodes per env: alfworld 10, webshop 10" in lines
    assert "- Versions: agentdistill 0.1.0, torch 2.13.0" in lines
    i = lines.index("## alfworld")
    assert lines[i + 2] == (
        "| Model       | Size | Layers | Non-emb params | Params | Success %   | 95 % CI      | Reasoning len (tok) "
        "| CoT match % | Steps     | Invalid % | Latency (s/ep) | Seeds |"
    )
    teacher = "| teacher     | —    | 2      | 790k           | 1.32M  | 80.0        | [49.0, 94.3] | 30.0  "
    assert lines[i + 4].startswith(teacher)
    sft = "| sft         | s    | 1      | 150k           | 200k   | 30.0        | [10.8, 60.3] |"  # Wilson 3/10
    assert lines[i + 5].startswith(sft)
    assert lines[i + 7] == (
        "| sad         | s    | 1      | 150k           | 200k   | 50.0 ± 14.1 | [0.0, 100.0] | 30.0 ± 1.4          "
        "| 35.0 ± 7.1  | 7.0 ± 0.0 | 1.0 ± 0.0 | 0.250 ± 0.000  | 2/2   |"
    )  # two seeds: a t interval with 1 degree of freedom, clipped to [0, 100]
    j = lines.index("## webshop")
    assert lines[j + 8].startswith(
        "| sad (λ_r=0) | s    | 1      | 150k           | 200k   | —         | —            |"
    )
    assert lines[j + 8].endswith("| 0/1   |")
    statement = res["statement"]
    assert "SAD beats the best baseline on alfworld (size s): +12.0 points success (sad 50.0 ± 14.1 vs token-kd 38.0); the gap is within one seed std (14.1); paired over 10 task pairs, Δ +0.0 points (95 % CI -50.0 to +50.0), McNemar p = 1." in statement  # fmt: skip
    assert "SAD does not beat the baselines on webshop (size s): -15.0 points success (sad 20.0 vs sft 35.0); paired over 10 task pairs, Δ -20.0 points" in statement  # fmt: skip
    assert statement in lines
    assert [(c["env"], c["best_baseline"], c["delta"], c["sad_beats_baselines"]) for c in res["comparison"]] == [
        ("alfworld", "token-kd", 12.0, True),
        ("webshop", "sft", -15.0, False),
        ("overall", "token-kd", 1.0, True),  # 35.0 vs 34.0, means over the two envs
    ]
    assert "SAD beats the best baseline on the mean over envs (size s): +1.0 points success (sad 35.0 vs token-kd 34.0); paired over 20 task pairs, Δ -5.0 points" in statement  # fmt: skip
    i = lines.index("## Paired tests (the same test tasks; with several seeds, task-seed pairs matched by seed)")
    assert lines[i + 4].startswith("| alfworld | s    | sad vs sft      | 10    | 4        | 3             | +10.0  ")
    assert lines[i + 6].endswith("| -20.0              | [-60.0, +30.0] | 0.688     |")
    assert (
        "| alfworld | s    | sad (λ_r=0) | 45.0        | -5.0      | 12.0          | -18.0 | 15.0        | -20.0 |"
        in lines
    )
    assert "- eval of sad s seed 1 on webshop: `eval/sad__s__s1/webshop.json` (missing)" in lines
    for p in res["plots"]:
        assert f"![{p.split('/')[-1][:-4]}]({p})" in lines


def test_report_writes_png_plots(built):
    run, res = built
    assert res["plots"] == ["plots/success_vs_size.png", "plots/reasoning_cot.png", "plots/training_curves.png"]
    for p in res["plots"]:
        data = (run / p).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1024
    assert not [p for p in (run / "plots").iterdir() if p.name.startswith(".")]  # no temp files left


def test_report_rebuild_is_identical_and_main_prints(built, capsys):
    run, res = built
    before = (run / "results.json").read_text(), (run / "results.md").read_text()
    assert main([str(run)]) == 0
    out = capsys.readouterr().out
    assert (
        format_tables(res) in out and "| sad         | s    | 1      | 150k           | 200k   | 50.0 ± 14.1 |" in out
    )
    assert ((run / "results.json").read_text(), (run / "results.md").read_text()) == before


def test_report_sad_not_best_when_baseline_wins_everywhere(tmp_path):
    evals = dict(EVALS)
    evals[("sad__s__s0", "sad", 0)] = {"alfworld": (10.0, 29.0, 30.0), "webshop": (20.0, 21.0, 8.0)}
    evals[("sad__s__s1", "sad", 1)] = {"alfworld": (12.0, 29.0, 30.0), "webshop": None}
    res = build_results(make_run(tmp_path, evals))
    assert "SAD does not beat the baselines on alfworld (size s): -27.0 points success (sad 11.0 ± 1.4 vs token-kd 38.0); paired" in res["statement"]  # fmt: skip
    assert "SAD beats" not in res["statement"]


def test_report_builds_with_no_results_on_disk(tmp_path):
    evals = {k: {"alfworld": None, "webshop": None} for k in EVALS}
    run = make_run(tmp_path, evals)
    res = build_report(run)
    assert all(r["success_rate"] == {"mean": None, "std": None} for r in res["tables"]["alfworld"])
    assert len([m for m in res["missing"] if m["path"].startswith("eval/")]) == 12
    assert "No sad result on alfworld (size s), so SAD is not compared there." in res["statement"]
    for p in res["plots"]:
        assert (run / p).read_bytes().startswith(b"\x89PNG")


def test_report_without_manifest_is_a_config_error(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no manifest.json — is this an `agentdistill run` output directory"):
        main([str(tmp_path)])
    assert cli_main(["report", str(tmp_path)]) == 2
    assert "no manifest.json" in capsys.readouterr().err


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -5.0, "abc"])
def test_an_eval_file_with_impossible_numbers_is_listed_not_crashed_on(tmp_path, value):
    run = make_run(tmp_path)
    path = run / "eval" / "sad__s__s0" / "alfworld.json"
    data = json.loads(path.read_text())
    data["overall"]["success_rate"] = value
    path.write_text(json.dumps(data))  # NaN and inf as JSON's NaN / Infinity
    results = build_report(run)
    bad = [m for m in results["missing"] if m["path"] == "eval/sad__s__s0/alfworld.json"]
    assert bad and "overall.success_rate" in bad[0]["reason"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("methods", [1], "`methods` is not a JSON object"),
        ("envs", "alfworld", "`envs` is not a JSON list"),
        ("envs", ["alfworld", "alfworld"], "`envs` is not a list of distinct env names"),
        ("eval", {"split": "test", "episodes": 7}, "is not a JSON object"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_one_line(tmp_path, capsys, key, value, message):
    run = make_run(tmp_path)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest[key] = value
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert cli_main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "rerun `agentdistill run`" in err

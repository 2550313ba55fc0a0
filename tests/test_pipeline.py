"""`agentdistill run`: the smoke preset end to end, resume after a crash mid-distill, corruption detection,
config validation of every preset."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from agentdistill.cli import main
from agentdistill.embedded_teacher import longest_turn
from agentdistill.errors import ConfigError
from agentdistill.markers import check, mark
from agentdistill.modeling import load_tokenizer
from agentdistill.report import comparable
from agentdistill.runconfig import METHODS, load_run_config, parse_run_config, presets, read_yaml

PNG = b"\x89PNG\r\n\x1a\n"
CELLS = ["sft__xs__s0", "token-kd__xs__s0", "sad__xs__s0"]


def _run(out: Path, *extra: str) -> int:
    return main(["run", "--preset", "smoke", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("runs") / "smoke"
    assert _run(out) == 0
    return out


def test_smoke_writes_every_output(smoke_run):
    out = smoke_run
    for rel in ("run.yaml", "manifest.json", "versions.json", "results.md", "results.json"):
        assert (out / rel).is_file(), rel
    for name in ("success_vs_size", "reasoning_cot", "training_curves"):
        png = (out / "plots" / f"{name}.png").read_bytes()
        assert png.startswith(PNG) and len(png) > 1000
    # the embedded teacher: tokenizer trained here with the preset's vocabulary, model saved with it
    tok = json.loads((out / "teacher" / "model" / "tokenizer.json").read_text())
    assert len(tok["model"]["vocab"]) == 512
    assert (out / "teacher" / "expert" / "hotpotqa.jsonl").read_text().count("\n") == 40
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["key"] for c in manifest["cells"]] == CELLS
    # the KD cells share one cached teacher signal (one teacher pass); sft uses no teacher
    (cache,) = (out / "teacher_signal").iterdir()
    for key in ("token-kd__xs__s0", "sad__xs__s0"):
        train = yaml.safe_load((out / "distill" / key / "config.yaml").read_text())["training"]
        assert (train["teacher_signal"], train["teacher_cache"]) == ("cached", str(cache)), key
    assert (
        yaml.safe_load((out / "distill" / "sft__xs__s0" / "config.yaml").read_text())["training"]["teacher_signal"]
        == "live"
    )
    # smoke generates 24 tokens a turn, fewer than the longest expert turn: the report says so, with the figure
    longest = json.loads((out / ".markers" / "teacher.done").read_text())["longest_turn"]
    assert longest == longest_turn(
        out / "teacher" / "expert" / "train.jsonl", load_tokenizer(out / "teacher" / "model")
    )
    assert 24 < longest < 200
    results = json.loads((out / "results.json").read_text())
    for stage in ("collect", "evaluate"):
        note = f"{stage}.max_new_tokens = 24 is shorter than the longest expert turn ({longest} tokens)"
        assert sum(n.startswith(note) for n in results["notes"]) == 1, results["notes"]
    assert manifest["teacher"]["params"] > manifest["cells"][0]["params"] > 0
    assert manifest["stages"]["collect"]["trajectories"] == 8
    for key in ["teacher", *CELLS]:
        metrics = json.loads((out / "eval" / key / "hotpotqa.json").read_text())
        assert metrics["overall"]["episodes"] == 6
        assert len((out / "eval" / key / "hotpotqa.trajectories.jsonl").read_text().splitlines()) == 6
        # CoT match is measured against the teacher's own test trajectories, for students only
        assert (metrics["overall"]["cot_match_rate"] is None) == (key == "teacher")
    for key in CELLS:
        cell = out / "distill" / key
        assert (cell / "model.safetensors").is_file() and not list(cell.glob("checkpoint-*"))
        cfg = yaml.safe_load((cell / "config.yaml").read_text())
        # every method starts from the same initial weights and sees the same data and step budget
        assert cfg["distill_args"]["student"] == str(out / "students" / "xs-s0")
        assert cfg["distill_args"]["data"] == str(out / "collect" / "train.jsonl")
        assert cfg["training"]["max_steps"] == 6
        method = key.split("__")[0]
        assert cfg["training"]["loss"] == METHODS[method]["loss"]
        assert (cfg["distill_args"]["teacher"] is None) == (method == "sft")
        steps = [json.loads(x)["step"] for x in (cell / "train_log.jsonl").read_text().splitlines()]
        assert steps == [2, 4, 6]
    results = json.loads((out / "results.json").read_text())
    rows = results["tables"]["hotpotqa"]
    assert [r["model"] for r in rows] == ["teacher", "sft", "token-kd", "sad"]
    assert results["missing"] == []
    md = (out / "results.md").read_text()
    assert "## hotpotqa" in md and "| sad " in md and "agentdistill run --preset smoke" in md


def test_rerun_skips_everything(smoke_run, capsys):
    before = {
        p: p.stat().st_mtime_ns
        for p in smoke_run.rglob("*")
        if p.is_file() and "results" not in p.name and p.parent.name != "plots"  # the report is rebuilt
    }
    assert _run(smoke_run) == 0
    out = capsys.readouterr().out
    assert "0 to train" in out and "0 to run" in out and "teacher: done" in out
    after = {p: p.stat().st_mtime_ns for p in before if p.exists()}
    changed = [str(p.relative_to(smoke_run)) for p in before if before[p] != after.get(p)]
    assert set(changed) <= {"manifest.json", "run.yaml", "versions.json"}, changed


def test_resume_after_crash_in_distill_equals_uninterrupted(smoke_run, tmp_path, monkeypatch, caplog):
    """Kill the run right after the second cell's first checkpoint; the rerun resumes that cell from the
    checkpoint and the report equals the uninterrupted run's (wall-clock fields aside)."""
    from transformers import Trainer

    out = tmp_path / "crashed"
    original = Trainer._save_checkpoint

    def crash_after_checkpoint(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if "token-kd" in str(self.args.output_dir):
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(Trainer, "_save_checkpoint", crash_after_checkpoint)
    assert _run(out) == 130  # interrupted: one line, no traceback
    assert (out / "distill" / "token-kd__xs__s0" / "checkpoint-4").is_dir()
    assert check(out, "cell-sft__xs__s0") is not None and check(out, "cell-token-kd__xs__s0") is None
    monkeypatch.setattr(Trainer, "_save_checkpoint", original)
    with caplog.at_level("INFO", logger="agentdistill.distill"):
        assert _run(out) == 0
    # the interrupted cell continued from its checkpoint (not retrained from scratch); the finished one was skipped
    assert f"resuming from {out / 'distill' / 'token-kd__xs__s0' / 'checkpoint-4'}" in caplog.text
    assert "sft__xs__s0" not in caplog.text
    log = [json.loads(x) for x in (out / "distill" / "token-kd__xs__s0" / "train_log.jsonl").read_text().splitlines()]
    ref = [
        json.loads(x)
        for x in (smoke_run / "distill" / "token-kd__xs__s0" / "train_log.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in log] == [2, 4, 6]
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in ref], rel=1e-5)
    a = json.loads((out / "results.json").read_text())
    b = json.loads((smoke_run / "results.json").read_text())
    assert comparable(a) == comparable(b)


def test_corrupted_outputs_are_detected_and_redone(smoke_run, tmp_path, caplog):
    out = tmp_path / "copy"
    shutil.copytree(smoke_run, out)
    # the copy's markers name files relative to the run dir, so they stay valid after the copy
    sad_eval = out / "eval" / "sad__xs__s0" / "hotpotqa.json"
    good = json.loads(sad_eval.read_text())
    sad_eval.write_text(sad_eval.read_text()[:50])  # a truncated eval output
    model = out / "distill" / "sft__xs__s0" / "model.safetensors"
    blob = bytearray(model.read_bytes())
    blob[-1] ^= 0xFF  # one flipped byte in a trained student
    model.write_bytes(bytes(blob))
    kd_eval = out / "eval" / "token-kd__xs__s0" / "hotpotqa.json"
    kd_mtime = kd_eval.stat().st_mtime_ns
    with caplog.at_level("WARNING"):
        assert _run(out) == 0
    warned = caplog.text
    assert "eval/sad__xs__s0/hotpotqa.json is missing or changed" in warned
    assert "distill/sft__xs__s0/model.safetensors is missing or changed" in warned
    assert json.loads(sad_eval.read_text())["overall"]["success_rate"] == good["overall"]["success_rate"]
    assert (out / "distill" / "sft__xs__s0" / "model.safetensors").read_bytes() == (
        smoke_run / "distill" / "sft__xs__s0" / "model.safetensors"
    ).read_bytes()  # retrained from the same initial weights: identical
    assert kd_eval.stat().st_mtime_ns == kd_mtime  # untouched outputs are not redone
    assert comparable(json.loads((out / "results.json").read_text())) == comparable(
        json.loads((smoke_run / "results.json").read_text())
    )


def test_corrupt_collected_file_is_redone_not_read_around(smoke_run, tmp_path, caplog):
    out = tmp_path / "copy"
    shutil.copytree(smoke_run, out)
    per_env = out / "collect" / "hotpotqa.jsonl"
    lines = per_env.read_text().splitlines(keepends=True)
    per_env.write_text("".join([lines[0], "{not json\n", *lines[2:]]))  # damage in the middle
    (out / "collect" / "train.jsonl").write_text("")
    with caplog.at_level("WARNING"):
        assert _run(out) == 0
    assert "hotpotqa.jsonl:2 is corrupted" in caplog.text

    def rows(run):  # the same episodes again (meta names the teacher by its path, which differs in the copy)
        return [
            {**r, "meta": None} for r in map(json.loads, (run / "collect" / "train.jsonl").read_text().splitlines())
        ]

    assert rows(out) == rows(smoke_run) and len(rows(out)) == 8


def test_config_change_needs_force(smoke_run, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(smoke_run, out)
    assert main(["run", "--preset", "smoke", "--out", str(out), "--set", "evaluate.episodes=3"]) == 2
    assert "differs from the run's run.yaml at `evaluate.episodes`" in capsys.readouterr().err
    assert (
        main(["run", "--preset", "smoke", "--out", str(out), "--set", "evaluate.episodes=3", "--force", "evaluate"])
        == 0
    )
    metrics = json.loads((out / "eval" / "sad__xs__s0" / "hotpotqa.json").read_text())
    assert metrics["overall"]["episodes"] == 3
    # distill was not redone: the trained students are the same files
    assert (out / "distill" / "sad__xs__s0" / "model.safetensors").read_bytes() == (
        smoke_run / "distill" / "sad__xs__s0" / "model.safetensors"
    ).read_bytes()


@pytest.mark.parametrize("name", ["smoke", "quick", "paper"])
def test_every_preset_validates(name):
    cfg = load_run_config(name)
    assert cfg.envs and cfg.distill.sizes and cfg.distill.methods
    assert set(cfg.distill.methods) <= set(METHODS)


def test_paper_preset_runs_every_method_and_ablation():
    cfg = load_run_config("paper")
    assert cfg.distill.methods == list(METHODS)
    assert len(cfg.distill.sizes) == 3 and len(cfg.distill.seeds) == 5
    assert cfg.envs == ["alfworld", "webshop", "hotpotqa"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"envz": ["alfworld"]}, "unknown key `envz`; did you mean `envs`?"),
        ({"envs": ["alfwrld"]}, "unknown env 'alfwrld'"),
        ({"distill": {"methods": ["sad", "kd"]}}, "unknown method 'kd'"),
        ({"distill": {"train": {"learning_rat": 1e-3}}}, "unknown key `learning_rat`; did you mean `learning_rate`?"),
        ({"distill": {"train": {"loss": "sft"}}}, "`loss` is set by the pipeline"),
        ({"distill": {"train": {"divergence": "kl"}}}, "`distill.train.divergence` must be one of fkl, rkl"),
        ({"teacher": {"hiden_size": 3}}, "did you mean `hidden_size`"),
        ({"distill": {"sizes": []}}, "distill.sizes is empty"),
    ],
)
def test_bad_configs_are_one_line_errors(edit, message):
    from agentdistill.runconfig import deep_merge

    data = deep_merge(read_yaml(presets()["smoke"]), edit)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        parse_run_config(data, "exp.yaml")


def test_cli_errors_and_configs_commands(tmp_path, capsys):
    assert main(["run", "--preset", "smoke", "--out", str(tmp_path / "r"), "--set", "distill.train.max_stepz=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "max_stepz" in err and len(err.strip().splitlines()) == 1
    assert main(["configs", "list"]) == 0
    assert {"smoke", "quick", "paper"} <= {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    dest = tmp_path / "exp.yaml"
    assert main(["configs", "copy", "quick", str(dest)]) == 0
    assert dest.read_text() == presets()["quick"].read_text()
    assert main(["configs", "copy", "quick", str(dest)]) == 2  # never overwrites
    assert main(["configs", "validate", str(dest)]) == 0
    assert "valid (3 env(s), 3 distillation cell(s))" in capsys.readouterr().out


def test_marker_detects_changed_inputs(tmp_path):
    f = tmp_path / "out.txt"
    f.write_text("x")
    mark(tmp_path, "step", [f], deps={"data": "abc"})
    assert check(tmp_path, "step", {"data": "abc"}) is not None
    assert check(tmp_path, "step", {"data": "other"}) is None  # inputs changed: redo
    assert check(tmp_path, "step") is None  # and the marker is gone


def test_user_teacher_skips_training(smoke_run, tmp_path, capsys):
    teacher = smoke_run / "teacher" / "model"
    out = tmp_path / "mine"
    assert _run(out, "--teacher", str(teacher), "--set", "evaluate.episodes=2", "--set", "collect.episodes=4") == 0
    assert f"teacher: using {teacher}" in capsys.readouterr().out
    assert not (out / "teacher").exists()  # nothing trained: the user's model is the teacher
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["teacher"]["source"] == str(teacher)
    assert manifest["teacher"]["params"] == json.loads((smoke_run / "manifest.json").read_text())["teacher"]["params"]
    # students are the teacher depth-pruned (the preset's size: 1 of its 2 layers)
    conf = json.loads((out / "students" / "xs-s0" / "config.json").read_text())
    tconf = json.loads((teacher / "config.json").read_text())
    assert conf["vocab_size"] == tconf["vocab_size"] and conf["model_type"] == tconf["model_type"]
    assert (conf["hidden_size"], conf["num_hidden_layers"], tconf["num_hidden_layers"]) == (32, 1, 2)
    size, t = manifest["sizes"]["xs"], manifest["teacher"]
    assert (size["init"], size["num_layers"], t["num_layers"]) == ("prune", 1, 2)
    # the embeddings and head are the teacher's: only one layer's parameters differ
    assert t["params"] - size["params"] == t["non_embedding_params"] - size["non_embedding_params"] > 0
    assert 2 * size["non_embedding_params"] > t["non_embedding_params"] > size["non_embedding_params"]
    cfg = yaml.safe_load((out / "distill" / "sad__xs__s0" / "config.yaml").read_text())
    assert cfg["distill_args"]["teacher"] == str(teacher)
    assert json.loads((out / "eval" / "teacher" / "hotpotqa.json").read_text())["overall"]["episodes"] == 2


def test_longest_turn_counts_consecutive_generated_tokens(tmp_path, tok):
    """A ReAct turn is a thought and its action together; an ALFWorld think and its command are two turns.
    Counted independently here: each span is encoded on its own (the text is cut at span boundaries)."""
    from agentdistill.agent import expert_episode
    from agentdistill.envs import make_env
    from agentdistill.formats import get_format

    for env, joined in (("hotpotqa", True), ("alfworld", False)):
        traj = expert_episode(env, make_env(env).task_ids("train")[0])
        path = tmp_path / f"{env}.jsonl"
        path.write_text(json.dumps(traj.to_json()) + "\n")
        text, spans = get_format(traj.text_format).render(traj.prompt, traj.steps)
        turns: list[list[int]] = []
        for sp in spans:  # spans that touch (nothing between them) are one generated turn
            if turns and turns[-1][1] == sp.start:
                turns[-1][1] = sp.end
            else:
                turns.append([sp.start, sp.end])
        assert (len(turns) < len(spans)) == joined
        size = {
            (sp.start, sp.end): len(tok(text[sp.start : sp.end], add_special_tokens=False)["input_ids"])
            for sp in spans
        }
        want = max(sum(n for (s, e), n in size.items() if a <= s < b) for a, b in turns)
        assert longest_turn(path, tok) == want > 10


def test_stop_after_teacher_then_resume_to_collect(tmp_path, capsys):
    out = tmp_path / "staged"
    assert _run(out, "--stop_after", "teacher") == 0
    assert "stopped after teacher (--stop_after)" in capsys.readouterr().out
    assert (out / "teacher" / "model" / "model.safetensors").is_file()
    assert check(out, "teacher") is not None
    assert not (out / "collect").exists() and not (out / "results.json").exists()
    # the next call resumes: the teacher is reused, collect runs, nothing after it
    weights = (out / "teacher" / "model" / "model.safetensors").read_bytes()
    assert _run(out, "--stop-after", "collect") == 0
    printed = capsys.readouterr().out
    assert "[1/5] teacher: done" in printed and "stopped after collect" in printed
    assert (out / "teacher" / "model" / "model.safetensors").read_bytes() == weights
    assert (out / "collect" / "train.jsonl").read_text().count("\n") == 8
    assert not (out / "distill").exists() and not (out / "results.json").exists()
    with pytest.raises(SystemExit):
        _run(out, "--stop_after", "report")  # report is the last stage: a plain run does it


def test_sizes_choose_their_own_methods_and_seeds(tmp_path):
    from agentdistill.manifest import cells
    from agentdistill.runconfig import run_methods

    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(
        "distill:\n  methods: [sft, sad]\n  seeds: [0, 1]\n  sizes:\n    - {name: a, num_layers: 1}\n"
        "    - {name: b, num_layers: 1, methods: [token-kd, sad], seeds: [2]}\n"
    )
    cfg = load_run_config("smoke", config=str(cfg_file))
    got = [(m, s.name, seed) for m, s, seed in cells(cfg)]
    assert got == [
        ("sft", "a", 0),
        ("sad", "a", 0),
        ("sft", "a", 1),
        ("sad", "a", 1),
        ("token-kd", "b", 2),
        ("sad", "b", 2),
    ]
    assert run_methods(cfg) == ["sft", "sad", "token-kd"]


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("{name: a, num_layers: 1, methods: [sad, kd]}", "unknown method 'kd' in distill.sizes[a].methods"),
        (
            "{name: a, num_layers: 1, methods: []}",
            "distill.sizes[a].methods is empty; omit it or name at least one method",
        ),
        ("{name: a, num_layers: 1, seeds: []}", "distill.sizes[a].seeds is empty; omit it or give at least one seed"),
        ("{name: a, num_layers: 1, seeds: [1, 1]}", "distill.sizes[a] names a method or seed twice"),
    ],
)
def test_bad_per_size_methods_or_seeds_are_one_line_errors(tmp_path, size, message):
    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(f"distill:\n  sizes:\n    - {size}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_run_config("smoke", config=str(cfg_file))


def test_shared_teacher_signal_is_named_by_data_and_teacher_and_stale_ones_go(tmp_path):
    from agentdistill.pipeline import Pipeline
    from agentdistill.runconfig import cell_training_args

    cfg = load_run_config("smoke")
    pipe = Pipeline(cfg, tmp_path)
    args = cell_training_args(cfg, "sad", str(tmp_path / "cell"), 0)
    data = tmp_path / "collect" / "train.jsonl"
    data.parent.mkdir()
    data.write_text('{"a": 1}\n')
    mark(tmp_path, "collect", [data])
    first = pipe._teacher_signal_file(args)
    assert first.parent == tmp_path / "teacher_signal" and first.name.endswith("-top64-t1.safetensors")
    assert pipe._teacher_signal_file(args) == first  # same data, same teacher: the same file
    first.parent.mkdir()
    first.write_bytes(b"cache")
    data.write_text('{"a": 2}\n')  # new data: a new name, and the old cache is deleted
    mark(tmp_path, "collect", [data])
    second = pipe._teacher_signal_file(args)
    assert second != first and not first.exists()

"""Model directories that cannot load, outputs that would destroy something, and failures of the file system:
one line and exit 2 before any work (``modeling.check_model_dir``, ``cli``), never a traceback."""

import errno
import json
import shutil

import pytest

from agentdistill import cli
from agentdistill.cli import main


@pytest.fixture(scope="module")
def broken(tiny_pair, tmp_path_factory):
    """Copies of a good model directory, each broken one way."""
    root = tmp_path_factory.mktemp("broken")
    good = tiny_pair[1]
    out = {}
    for name in ("garbage", "truncated", "config_list", "config_no_type", "no_tokenizer"):
        shutil.copytree(good, root / name)
        out[name] = root / name
    (root / "garbage" / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    weights = (good / "model.safetensors").read_bytes()
    (root / "truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    (root / "config_list" / "config.json").write_text("[1, 2]")
    config = json.loads((good / "config.json").read_text())
    config.pop("model_type")
    (root / "config_no_type" / "config.json").write_text(json.dumps(config))
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"):
        (root / "no_tokenizer" / f).unlink(missing_ok=True)
    (root / "empty").mkdir()
    out["empty"] = root / "empty"
    return out


WANT = {
    "garbage": "weights file model.safetensors is corrupt or truncated (Error while deserializing header",
    "truncated": "weights file model.safetensors is corrupt or truncated (",
    "config_list": "config.json is not a model config (a JSON object with a model_type)",
    "config_no_type": "config.json is not a model config (a JSON object with a model_type)",
    "empty": "no config.json there, so it is not a model directory",
}


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("kind", sorted(WANT))
def test_a_model_directory_that_cannot_load_is_one_line_before_any_work(kind, broken, tiny_pair, tmp_path, capsys):
    model = str(broken[kind])
    data = tmp_path / "none.jsonl"  # never read: the model is refused first
    commands = {
        "evaluate": ["evaluate", "--env", "hotpotqa", "--model", model, "--out", str(tmp_path / "e.json")],
        "collect": ["collect", "--env", "hotpotqa", "--agent", model, "--out", str(tmp_path / "c.jsonl")],
        "distill": ["distill", "--student", model, "--data", str(data), "--loss", "sft", "--out", str(tmp_path / "d")],
        "prune": ["prune", "--teacher", model, "--num_layers", "1", "--out", str(tmp_path / "p")],
        "run": ["run", "--preset", "smoke", "--teacher", model, "--out", str(tmp_path / "r")],
    }
    for name, argv in commands.items():
        err = _one_line_error(capsys, argv)
        assert WANT[kind] in err and model in err, (name, err)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_directory_without_a_tokenizer_says_so(broken, tmp_path, capsys):
    data = tmp_path / "none.jsonl"
    err = _one_line_error(capsys, ["segment", str(data), "--tokenizer", str(broken["no_tokenizer"]), "--show"])
    assert "no tokenizer there (none of tokenizer.json, tokenizer.model, vocab.json, tokenizer_config.json)" in err


def test_prune_replaces_its_own_output_but_never_other_files(tiny_pair, tmp_path, capsys):
    out = tmp_path / "student"
    for _ in range(2):  # a rerun replaces the student it wrote
        assert main(["prune", "--teacher", str(tiny_pair[0]), "--num_layers", "1", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["num_hidden_layers"] == 1
    capsys.readouterr()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    err = _one_line_error(capsys, ["prune", "--teacher", str(tiny_pair[0]), "--num_layers", "1", "--out", str(other)])
    assert "holds files that are not a model; choose a new or empty directory" in err
    assert (other / "keep.txt").read_text() == "mine"


def test_segment_never_writes_over_its_input(tmp_path, capsys):
    data = tmp_path / "t.jsonl"
    data.write_text('{"id": "a"}\n')
    err = _one_line_error(capsys, ["segment", str(data), "--out", str(tmp_path / "." / "t.jsonl")])
    assert "is the input" in err and "it would be overwritten: choose another --out" in err
    assert data.read_text() == '{"id": "a"}\n'


def _report_raises(monkeypatch, error):
    """Make ``agentdistill report`` raise ``error`` from inside its handler."""

    def handler(argv):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "report", ("", "raising_handler"))
    monkeypatch.setattr(cli, "raising_handler", handler, raising=False)


def test_file_system_failures_and_interrupts_are_one_line(monkeypatch, capsys):
    _report_raises(monkeypatch, OSError(errno.EROFS, "Read-only file system", "/runs/x/run.yaml"))
    err = _one_line_error(capsys, ["report", "x"])
    assert err.startswith("error: /runs/x/run.yaml: Read-only file system;")
    _report_raises(monkeypatch, KeyboardInterrupt())
    assert main(["report", "x"]) == 130
    assert capsys.readouterr().err == "interrupted; rerun the same `agentdistill report` command to resume\n"


def test_distill_refuses_bad_data_before_it_writes_anything(tiny_pair, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "x", "steps": 5}\n')
    out = tmp_path / "student"
    argv = ["distill", "--student", str(tiny_pair[1]), "--data", str(data), "--loss", "sft", "--out", str(out)]
    err = _one_line_error(capsys, argv)
    assert str(data) in err and ":1" in err
    assert not out.exists()


def test_a_file_given_as_a_model_says_so(tmp_path, capsys):
    model = tmp_path / "run.log"
    model.write_text("not a model\n")
    err = _one_line_error(
        capsys, ["prune", "--teacher", str(model), "--num_layers", "1", "--out", str(tmp_path / "p")]
    )
    assert f"--teacher {model} is a file; pass a model directory" in err


def test_a_closed_pipe_is_not_an_error(monkeypatch, capsys):
    _report_raises(monkeypatch, BrokenPipeError(errno.EPIPE, "Broken pipe"))
    assert main(["report", "x"]) == 0
    assert capsys.readouterr().err == ""


def test_a_wrong_kind_of_path_gets_no_disk_space_hint(monkeypatch, capsys):
    _report_raises(monkeypatch, IsADirectoryError(errno.EISDIR, "Is a directory", "/runs/x/train_log.jsonl"))
    err = _one_line_error(capsys, ["report", "x"])
    assert (
        err
        == "error: /runs/x/train_log.jsonl: Is a directory; it is a directory where a file belongs; check the path\n"
    )


def test_run_refuses_contradictions_and_empty_splits_before_it_writes(tmp_path, capsys):
    out = tmp_path / "r"
    err = _one_line_error(
        capsys, ["run", "--preset", "smoke", "--out", str(out), "--force", "distill", "--stop_after", "collect"]
    )
    assert "--force distill with --stop_after collect: the run would stop before redoing distill" in err
    err = _one_line_error(capsys, ["run", "--preset", "smoke", "--envs", "hotpotqa,hotpotqa", "--out", str(out)])
    assert "envs names hotpotqa twice; name each env once" in err
    assert not out.exists()


def test_serve_webshop_seed_is_a_client_seed(capsys):
    err = _one_line_error(capsys, ["serve-webshop", "--seed", "-1", "--port", "0"])
    assert "--seed must be in 0..2**32 - 1" in err


def test_evaluate_reference_must_hold_the_evaluated_tasks(tiny_pair, tmp_path, capsys):
    from agentdistill.agent import expert_episode
    from agentdistill.envs import make_env

    ref = tmp_path / "ref.jsonl"
    train = make_env("hotpotqa").task_ids("train")[:2]
    ref.write_text("".join(json.dumps(expert_episode("hotpotqa", t).to_json()) + "\n" for t in train))
    argv = ["evaluate", "--env", "hotpotqa", "--model", str(tiny_pair[1]), "--episodes", "2", "--reference", str(ref)]
    err = _one_line_error(capsys, [*argv, "--out", str(tmp_path / "m.json")])
    assert "holds none of the 2 hotpotqa test task(s) evaluated" in err
    assert not (tmp_path / "m.json").exists()

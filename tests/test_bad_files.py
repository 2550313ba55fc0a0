"""Bad files and places given to or left for a command: one line, exit code 2, before any work; and the
leftovers of a kill or a damaged run directory never wedge a rerun.

1. an --out that cannot be written (empty, read-only file system, /proc) is refused at once;
2. an existing collect --out that is not a trajectory file is refused, a torn last line is not;
3. collect --out holding another env's trajectories is refused;
4. an output that is the command's input is refused (``files.check_not_input``);
5. a chat message whose content is not text is a record error (line, --skip_bad);
6. a corrupt marker is "not done", an empty run.yaml is rewritten, stale temp files are removed.
"""

import json
import os
from pathlib import Path

import pytest

from agentdistill import files, markers
from agentdistill.cli import main
from agentdistill.errors import ConfigError, TrajectoryError
from agentdistill.testing import commands_writing

_REACT = '{"id": "a", "format": "react", "text": "Q\\nThought 1: t\\nAction 1: Finish[x]\\n"}\n'


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---------------------------------------------------------------- 1. an --out that cannot be written

COMMANDS = ["segment", "distill", "evaluate", "collect", "run"]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "segment"])  # segment: "nothing to do"
def test_empty_out_is_one_line_error(tmp_path, capsys, command, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `run --out ""` wrote the run into the current directory
    argv = commands_writing(tmp_path, "")[command]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    assert _err(capsys).startswith("error: --out is empty; give a ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written here


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", COMMANDS)
def test_out_where_no_file_can_be_created_is_one_line_error(tmp_path, capsys, command):
    """/proc exists and `os.access` says root may write it, but no file can be created there."""
    assert main(commands_writing(tmp_path, "/proc/agentdistill-out")[command]) == 2
    assert _err(capsys) == (
        "error: --out /proc/agentdistill-out: cannot create files in /proc (it takes no new files); "
        "choose another --out"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_out_on_a_read_only_file_system_is_one_line_error(tmp_path, capsys, command, monkeypatch):
    """A read-only mount (EROFS even for root), simulated: statvfs reports ST_RDONLY for tmp_path/ro."""
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.statvfs

    class _RO:
        def __init__(self, st):
            self._st = st

        def __getattr__(self, name):
            return getattr(self._st, name)

        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda p: _RO(real(p)) if Path(p) == ro else real(p))
    out = str(ro / "sub" / "out")
    assert main(commands_writing(tmp_path, out)[command]) == 2
    assert _err(capsys) == (
        f"error: --out {out}: cannot create files in {ro} (read-only file system); choose another --out"
    )


def test_real_read_only_mount_if_there_is_one(tmp_path):
    """The audit's case, where the machine has it: `mount -t tmpfs -o ro tmpfs /tmp/ro`."""
    ro = Path("/tmp/ro")
    if not (ro.is_dir() and os.statvfs(ro).f_flag & os.ST_RDONLY):
        pytest.skip("no read-only mount at /tmp/ro")
    for kind in ("file", "dir"):
        with pytest.raises(ConfigError, match=r"cannot create files in /tmp/ro \(read-only file system\)"):
            files.check_output_path(ro / "x", kind=kind)


def test_existing_output_directory_is_reused(tmp_path):
    """`prune --out DIR` / `run --out DIR` rerun on an existing directory: kind="dir" accepts it."""
    out = tmp_path / "student"
    out.mkdir()
    (out / "config.json").write_text("{}")
    files.check_output_path(out, kind="dir")
    with pytest.raises(ConfigError, match="is a directory; it must be a file name"):
        files.check_output_path(out)  # what `prune` calls today: cli.py must pass kind="dir"
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]  # the write probe left nothing


# ---------------------------------------------------------------- 2. and 3. an existing collect --out


def _collect(out: Path, env: str = "hotpotqa", episodes: int = 1) -> list[str]:
    return ["collect", "--env", env, "--agent", "expert", "--episodes", str(episodes), "--out", str(out)]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "line 1 is not UTF-8 text"),
        (bytes(range(256)) * 4, "line 1 is not JSON"),
        (b"[1, 2, 3]\n", "line 1 is a JSON list, not an object"),
        (b"[1, 2, 3]", "line 1 is a JSON list, not an object"),
        (b"hello world\n", "line 1 is not JSON"),
        (b'{"id": "x", "steps": []}\n\n"a string"\n', "line 3 is a JSON string, not an object"),
        (b'{"name": "not a trajectory"}\n', "line 1 has no `id`"),
    ],
)
def test_collect_out_that_is_not_a_trajectory_file_is_refused_untouched(tmp_path, capsys, content, problem):
    out = tmp_path / "t.jsonl"
    out.write_bytes(content)
    assert main(_collect(out)) == 2
    assert _err(capsys) == (
        f"error: --out {out} is not a trajectory file (JSONL of objects): {problem}; "
        "choose another --out or move the file away"
    )
    assert out.read_bytes() == content  # nothing appended, no "torn line" cut
    assert not out.with_name("t.jsonl.attempted").exists()


def test_collect_sidecar_that_is_not_collects_is_refused(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    sidecar = tmp_path / "t.jsonl.attempted"
    sidecar.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert main(_collect(out)) == 2
    assert _err(capsys).startswith(f"error: {sidecar} is not collect's record of attempted tasks (JSONL of objects)")
    assert not out.exists()


def test_collect_keeps_the_torn_last_line_tolerance(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(_collect(out, episodes=1)) == 0
    good = out.read_text()
    out.write_text(good + good.splitlines()[0][:40])  # a kill mid-append: a partial line, no newline
    assert main(_collect(out, episodes=2)) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]  # every line parses: the torn one was cut
    assert [r["id"] for r in rows] == ["hotpotqa-train-0000", "hotpotqa-train-0001"]


def test_collect_into_a_file_of_another_env_is_refused_before_any_episode(tmp_path, capsys):
    out = tmp_path / "t.jsonl"
    assert main(_collect(out, "hotpotqa")) == 0
    before, attempted = out.read_bytes(), (tmp_path / "t.jsonl.attempted").read_bytes()
    capsys.readouterr()
    assert main(_collect(out, "alfworld")) == 2
    assert _err(capsys) == (
        f"error: --out {out} holds trajectories of env 'hotpotqa'; collecting --env alfworld into it would mix "
        "them: choose another --out"
    )
    assert out.read_bytes() == before and (tmp_path / "t.jsonl.attempted").read_bytes() == attempted


def test_read_jsonl_tolerant_reads_around_binary_and_non_objects(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_bytes(b'{"id": 1}\n\xff\xfe garbage\n[1, 2]\n{"id": 2}\n{"id": 3, "te')
    assert files.read_jsonl_tolerant(p) == [{"id": 1}, {"id": 2}]


# ---------------------------------------------------------------- 4. an output that is an input


def test_check_not_input_refuses_the_input_however_it_is_spelled(tmp_path, monkeypatch):
    data = tmp_path / "trajs.jsonl"
    data.write_text(_REACT)
    (tmp_path / "link.jsonl").symlink_to(data)
    monkeypatch.chdir(tmp_path)
    for out in (data, "trajs.jsonl", "./trajs.jsonl", tmp_path / "sub" / ".." / "trajs.jsonl", "link.jsonl"):
        with pytest.raises(ConfigError) as e:
            files.check_not_input(out, None, data)
        assert str(e.value) == f"--out {out} is the input {data}; it would be overwritten: choose another --out"
    files.check_not_input(tmp_path / "seg.jsonl", data, None)  # another file: fine
    files.check_not_input("", data)  # empty: check_output_path's to report
    with pytest.raises(ConfigError, match="^--out m is the input m/; "):
        files.check_not_input("m", "m/", flag="--out")  # prune --teacher m --out m (a directory)


def test_segment_refuses_to_overwrite_its_input(tmp_path, capsys):
    data = tmp_path / "trajs.jsonl"
    data.write_text(_REACT)
    assert main(["segment", str(data), "--out", str(data)]) == 2
    assert _err(capsys) == f"error: --out {data} is the input {data}; it would be overwritten: choose another --out"
    assert data.read_text() == _REACT


# ---------------------------------------------------------------- 5. a chat message whose content is not text


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (
            {"role": "assistant", "content": 5},
            "messages[0].content must be a string, a list of content parts or null, got int 5",
        ),  # fmt: skip
        ({"role": "assistant", "content": {"a": 1}}, "messages[0].content must be a string, a list of content parts"),
        (
            {"role": "assistant", "content": [{"type": "text", "text": 3}]},
            "messages[0].content[0] must be a content part",
        ),  # fmt: skip
        (
            {"role": "assistant", "content": "x", "tool_calls": 7},
            "messages[0].tool_calls must be a list of calls, got int",
        ),  # fmt: skip
    ],
)
def test_chat_content_that_is_not_text_is_a_record_error(tmp_path, capsys, message, problem):
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"id": "c1", "messages": [message]}) + "\n" + _REACT)
    out = tmp_path / "seg.jsonl"
    assert main(["segment", str(data), "--out", str(out)]) == 2
    err = _err(capsys)
    assert err.startswith(f"error: {data}: record 'c1' on line 1: {problem}"), err
    assert err.endswith("; fix it or pass --skip_bad")
    assert main(["segment", str(data), "--out", str(out), "--skip_bad"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 1 record(s) to {out}; skipped 1 bad record(s)"


def test_chat_tools_that_are_not_schemas_are_a_record_error():
    from agentdistill.errors import TrajectoryError
    from agentdistill.formats.chat import render_messages

    with pytest.raises(TrajectoryError, match="`tools` must be a list of tool schemas"):
        render_messages([{"role": "user", "content": "hi"}], tools=5)


def test_distill_reports_a_chat_content_that_is_not_text(tmp_path, capsys, tiny_pair):
    data = tmp_path / "chat.jsonl"
    data.write_text('{"messages":[{"role":"assistant","content":5}]}\n')
    _teacher, student = tiny_pair
    argv = ["distill", "--data", str(data), "--student", str(student), "--loss", "sft", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert _err(capsys).startswith(
        f"error: {data}: record 'record-1' on line 1: messages[0].content must be a string, a list of content parts"
    )


# ---------------------------------------------------------------- 6. leftovers in a run directory


@pytest.mark.parametrize("content", [b"", bytes(range(256)), b"[1, 2]", b'{"files": 3}', b'{"files": {"m": 5}}'])
def test_a_corrupt_marker_is_not_done(tmp_path, content):
    from agentdistill.manifest import notes
    from agentdistill.runconfig import load_run_config

    for name in ("teacher", "collect"):
        path = markers.marker_path(tmp_path, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    (tmp_path / "m").write_text("x")
    cfg = load_run_config("smoke")
    assert notes(tmp_path, cfg) == []  # read via manifest.notes: was a UnicodeDecodeError traceback
    if not content.startswith(b"{"):
        assert markers.read(tmp_path, "teacher") is None and not markers.is_done(tmp_path, "teacher")
    assert markers.check(tmp_path, "teacher") is None
    assert not markers.marker_path(tmp_path, "teacher").exists()  # removed: the step is redone
    assert markers.digest(tmp_path, "collect") is None or content.startswith(b'{"files": {')


@pytest.mark.parametrize("content", [b"", b"\n\n", b"# nothing\n", b"\xff\xfe\x00", b"collect: [1, 2\n", b"- a\n"])
def test_an_empty_or_damaged_run_yaml_is_rewritten(tmp_path, content, caplog):
    import yaml

    from agentdistill.manifest import check_config
    from agentdistill.runconfig import load_run_config

    cfg = load_run_config("smoke")
    (tmp_path / "run.yaml").write_bytes(content)
    check_config(tmp_path, cfg, forced=False)  # was "differs from the run's run.yaml at `collect`" (or a traceback)
    assert yaml.safe_load((tmp_path / "run.yaml").read_text()) == cfg.to_dict()
    assert "is empty or unreadable; rewriting it from this command's config" in caplog.text
    other = load_run_config("smoke", sets=["env_seed=7"])
    with pytest.raises(ConfigError, match="differs from the run's run.yaml at `env_seed`"):
        check_config(tmp_path, other, forced=False)  # a readable run.yaml is still checked


def test_stale_atomic_write_temps_are_removed_and_nothing_else(tmp_path):
    root = tmp_path / "run"
    stale = [root / "plots" / ".training_curves.png._5mqw6no.tmp", root / "eval" / "t" / ".hotpotqa.json.ab_12xyz.tmp"]
    keep = [
        root / "plots" / "training_curves.png",
        root / ".training_curves.png.tmp",  # not mkstemp's 8 characters
        root / "training_curves.png.abcdefgh.tmp",  # no leading dot
        root / ".x.ABCDEFGH.tmp",  # mkstemp's characters are lower case
        root / "run.yaml.lock",
    ]
    outside = tmp_path / ".results.md.abcdefgh.tmp"
    for p in [*stale, *keep, outside]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    (root / "adir" / ".y.abcdefgh.tmp").mkdir(parents=True)  # a directory is never removed
    assert sorted(files.remove_stale_temps(root)) == sorted(stale)
    assert all(p.exists() for p in [*keep, outside, root / "adir" / ".y.abcdefgh.tmp"])
    assert not any(p.exists() for p in stale)


def test_the_stale_pattern_matches_what_the_atomic_writers_leave(tmp_path):
    target = tmp_path / "plots" / "training_curves.png"
    for writer in (files.atomic_open, files.atomic_path):
        with writer(target) as f:
            (tmp,) = [p for p in target.parent.iterdir() if p.name != target.name]
            assert files._STALE_TEMP.match(tmp.name), tmp.name
            if writer is files.atomic_path:
                f.write_bytes(b"x")
            else:
                f.write("x")


def test_run_resumes_over_corrupt_marker_empty_run_yaml_and_stale_temps(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "--preset", "smoke", "--out", str(out), "--stop_after", "teacher"]
    assert main(argv) == 0
    done = markers.read(out, "teacher")
    assert done is not None
    (out / ".markers" / "teacher.done").write_bytes(bytes(range(256)) * 8)  # a marker damaged on disk
    (out / "run.yaml").write_bytes(b"")
    stale = out / "plots" / ".training_curves.png._5mqw6no.tmp"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"")
    capsys.readouterr()
    assert main(argv) == 0  # was a UnicodeDecodeError, then "config differs ... at `collect`"
    assert "teacher: embedded" in capsys.readouterr().out  # the corrupt marker counted as not done: redone
    assert markers.read(out, "teacher")["files"] == done["files"]  # same seed, same teacher
    assert (out / "run.yaml").read_text().strip() and not stale.exists()


def test_a_directory_or_device_as_data_says_what_it_is(tmp_path, capsys):
    from agentdistill.trajectory import read_trajectories

    for path in (tmp_path, "/dev/null"):
        assert main(["segment", str(path), "--show"]) == 2
        assert capsys.readouterr().err.rstrip().endswith("is not a file (a directory or a device); pass a JSONL file")
    bad = tmp_path / "ref.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(TrajectoryError) as e:  # read_trajectories never skips: no --skip_bad to offer
        read_trajectories(bad)
    assert str(e.value).endswith("; fix the line")


def test_evaluate_never_writes_its_episodes_over_the_reference(tmp_path, capsys):
    ref = tmp_path / "m.trajectories.jsonl"
    ref.write_text("{}\n")
    argv = [
        "evaluate",
        "--env",
        "hotpotqa",
        "--model",
        "x/y",
        "--reference",
        str(ref),
        "--out",
        str(tmp_path / "m.json"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is the input" in err and "it would be overwritten" in err
    assert ref.read_text() == "{}\n"

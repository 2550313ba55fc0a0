import io

import pytest

from agentdistill.agent import Generation, expert_episode, run_episodes
from agentdistill.cli import main as cli_main
from agentdistill.envs import make_env
from agentdistill.errors import ConfigError
from agentdistill.formats import get_format
from agentdistill.play import main, play


class _Terminal:
    """Scripted typing: each line read is echoed onto the screen, as a terminal does."""

    def __init__(self, lines):
        self.lines, self.screen, self.writes = list(lines), [], []

    def read_line(self):
        if not self.lines:
            raise EOFError
        line = self.lines.pop(0)
        self.screen.append(line + "\n")
        return line + "\n"

    def write(self, text):
        self.writes.append(text)
        self.screen.append(text)

    @property
    def text(self):
        return "".join(self.screen)


class _Sequence:
    """A policy that emits the given outputs in order (one episode)."""

    def __init__(self, outputs):
        self.outputs = list(outputs)

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, contexts, fmt):
        return [Generation(self.outputs.pop(0), 1) for _ in contexts]


def _typed_lines(env_name, steps):
    """What a person types to replay ``steps``: thoughts as their own lines, markers left to ``play``."""
    lines = []
    for k, s in enumerate(steps, 1):
        if env_name == "alfworld":
            lines += ([f"think: {s.thought}"] if s.thought else []) + [s.action]
        elif env_name == "webshop":
            lines += ([f"think[{s.thought}]"] if s.thought else []) + [s.action]
        else:  # react: the thought line, then the action after the "Action k: " play writes
            lines += [f"Thought {k}: {s.thought}", s.action] if s.thought else [f"Action {k}: {s.action}"]
    return lines


@pytest.mark.parametrize("env_name", ["alfworld", "webshop", "hotpotqa"])
def test_replaying_expert_shows_the_exact_transcript_and_succeeds(env_name):
    env = make_env(env_name)
    tid = env.task_ids("train")[0]  # the default task
    expert = expert_episode(env_name, tid)
    assert expert.success
    term = _Terminal(_typed_lines(env_name, expert.steps))
    traj = play(env_name, None, term.read_line, term.write)
    assert traj.id == tid
    assert traj.steps == expert.steps
    assert [s.observation for s in traj.steps] == [s.observation for s in expert.steps]
    assert traj.prompt == expert.prompt and traj.task == expert.task
    assert traj.success and traj.reward == 1.0
    # the screen (what play wrote + the echoed typing) is exactly the transcript the agent reads
    fmt = get_format(env.format)
    assert fmt.render(expert.prompt, expert.steps)[0] in term.text
    assert term.writes[-1] == f"\n=== done after {len(expert.steps)} action(s) (0 invalid): success, reward 1.00 ===\n"
    assert term.lines == []  # every typed line was consumed


@pytest.mark.parametrize(
    ("env_name", "thought", "reply"),
    [("alfworld", "think: find the mug", "OK.\n"), ("webshop", "think[check the first item]", "Observation: OK.\n\n")],
)
def test_thought_gets_the_harness_reply_and_is_not_an_action(env_name, thought, reply):
    term = _Terminal([thought, "quit"])
    traj = play(env_name, None, term.read_line, term.write)
    assert term.writes[-3:-1] == [reply, "> " if env_name == "alfworld" else "Action: "]  # then the next turn
    assert traj.steps == []
    assert term.writes[-1] == "\n=== stopped after 0 action(s) (0 invalid): failure, reward 0.00 ===\n"


@pytest.mark.parametrize(
    ("env_name", "observation"),
    [("alfworld", "Nothing happens."), ("webshop", "Invalid action!"), ("hotpotqa", "Invalid action: blah blah")],
)
def test_garbage_gets_the_invalid_observation_until_the_step_cap(env_name, observation):
    env = make_env(env_name)
    tid = env.task_ids("test")[0]
    term = _Terminal(["blah blah"] * (env.max_steps + 5))
    traj = play(env_name, tid, term.read_line, term.write)
    assert len(traj.steps) == env.max_steps  # ends at the cap without reading further
    assert len(term.lines) == 5
    assert {s.observation for s in traj.steps} == {observation}
    assert term.writes[-1] == (
        f"\n=== done after {env.max_steps} action(s) ({env.max_steps} invalid): failure, reward 0.00 ===\n"
    )
    # the agent loop, given the same text, records the same episode
    (rec,) = run_episodes(env_name, [tid], _Sequence(["blah blah"] * env.max_steps))
    assert traj.steps == rec.trajectory.steps


@pytest.mark.parametrize(
    ("env_name", "outputs", "n_steps"),
    [
        # the third thought in a row is past max_thinks=2: an invalid turn, as in the agent loop
        ("alfworld", ["> think: a", "> think: b", "> think: c", "> go to countertop 1", "zzz", "> look"], 4),
        ("webshop", ["Action: think[a]", "Action: search[walking shoes]", "Action: click[nope]", "garbage"], 3),
        ("hotpotqa", ["Thought 1: a\nAction 1: Search[Engine Sessions]", "nonsense", "Action 3: Lookup[album]"], 3),
    ],
)
def test_play_handles_turns_exactly_as_the_agent_loop(env_name, outputs, n_steps):
    tid = make_env(env_name).task_ids("dev")[0]
    (rec,) = run_episodes(env_name, [tid], _Sequence(outputs), max_steps=n_steps)
    assert rec.steps == n_steps and rec.invalid >= 1
    term = _Terminal([line for out in outputs for line in out.split("\n")] + ["quit"])
    traj = play(env_name, tid, term.read_line, term.write)
    assert traj.steps == rec.trajectory.steps
    assert term.writes[-1].startswith(f"\n=== stopped after {n_steps} action(s) ({rec.invalid} invalid): failure")


def test_unknown_task_or_split_is_a_config_error():
    with pytest.raises(
        ConfigError, match=r"unknown alfworld task 'alfworld-nope'; ids look like 'alfworld-train-0000'"
    ):
        play("alfworld", "alfworld-nope", lambda: "quit", lambda _: None)
    with pytest.raises(ConfigError, match="agentdistill envs"):
        play("webshop", "webshop-test-9999", lambda: "quit", lambda _: None)
    with pytest.raises(ConfigError, match="unknown hotpotqa split 'valid'"):
        play("hotpotqa", None, lambda: "quit", lambda _: None, split="valid")


def test_main_plays_on_stdin(monkeypatch, capsys):
    tid = make_env("hotpotqa").task_ids("test")[2]
    expert = expert_episode("hotpotqa", tid)
    lines = _typed_lines("hotpotqa", expert.steps)
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["--env", "hotpotqa", "--split", "test", "--task", tid]) == 0
    out = capsys.readouterr().out
    assert f"hotpotqa task {tid}" in out
    assert expert.prompt in out
    assert all(f"Observation {k}: {s.observation}\n" in out for k, s in enumerate(expert.steps, 1))
    assert out.endswith(f"=== done after {len(expert.steps)} action(s) (0 invalid): success, reward 1.00 ===\n")


def test_cli_play_bad_input_is_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli_main(["play", "--env", "alfworld", "--task", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown alfworld task 'bogus'")
    assert cli_main(["play", "--env", "alfworld", "--data", "x.json"]) == 2
    assert "--data is only for --env hotpotqa" in capsys.readouterr().err

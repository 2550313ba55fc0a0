"""``agentdistill play``: play a task yourself, typing what the agent would generate.

    agentdistill play --env alfworld                    # the first train task
    agentdistill play --env webshop --task webshop-test-0042

You see the exact text the agent sees (the instruction, the task, then every observation as the
harness writes it), and your lines go through the same ``parse_output`` and the same env loop as a
model's: a thought is answered "OK.", unparseable text gets the env's invalid-action observation,
and the episode ends when the env says done or at its step cap.
"""

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from typing import Any

# The agent's own episode, so a human turn is handled exactly as a model's (think-only turns, invalid text).
from agentdistill.agent import Episode
from agentdistill.envs import ENVS, SOURCE_HELP, make_env
from agentdistill.errors import ConfigError
from agentdistill.formats import get_format
from agentdistill.trajectory import Trajectory

# The marker that starts a turn of each format: written before reading a turn, and added to a typed
# line that does not parse without it ("go to desk 1" is read as "> go to desk 1"). React writes
# "Thought k:" and "Action k:" itself, so its first line has no prompt; "{k}" is the step number.
_TURN_PROMPT = {"alfworld": "> ", "webshop": "Action: ", "react": ""}
_ACTION_MARKER = {"alfworld": "> ", "webshop": "Action: ", "react": "Action {k}: "}

_HINTS = {
    "alfworld": "Type a command (`go to countertop 1`) or a thought (`think: ...`); the `> ` is written for you.",
    "webshop": "Type `search[...]`, `click[...]` or a thought `think[...]`; the `Action: ` is written for you.",
    "react": "Type `Thought: ...` then the action (`Search[...]`, `Lookup[...]`, `Finish[...]`), or an action alone.",
}


def _find_task(env: Any, env_name: str, task_id: str | None, split: str) -> str:
    """``task_id`` if the env has it in any split, else the first task of ``split``."""
    if task_id is None:
        ids = env.task_ids(split)
        if not ids:
            raise ConfigError(f"split {split!r} of {env_name} has no tasks; pick another with --split")
        return ids[0]
    splits = env.splits()
    if any(task_id in env.task_ids(s) for s in splits):
        return task_id
    example = env.task_ids(next(iter(splits)))[:1]
    raise ConfigError(
        f"unknown {env_name} task {task_id!r}; ids look like {example[0] if example else '?'!r} "
        f"(splits: {', '.join(f'{s} {n}' for s, n in splits.items())}); "
        "`agentdistill envs` lists the splits, or omit --task to play the first task of --split"
    )


def play(
    env_name: str,
    task_id: str | None,
    read_line: Callable[[], str],
    write: Callable[[str], Any],
    *,
    split: str = "train",
    env_kwargs: dict[str, Any] | None = None,
    max_thinks: int = 2,
) -> Trajectory:
    """Play one episode interactively; returns it as a trajectory (the same record the agent writes).

    Args:
        env_name: registered env name.
        task_id: the task to play (any split); ``None`` plays the first task of ``split``.
        read_line: returns the next typed line; raising ``EOFError`` (or the line ``quit``) stops.
        write: shows text (no newline is added).
        split: the split whose first task is played when ``task_id`` is ``None``.
        env_kwargs: passed to ``make_env`` (``seed``, ``data``).
        max_thinks: think-only turns allowed before an action, as in ``agent.run_episodes``.

    Raises:
        ConfigError: for an unknown env, split or task id.
    """
    env = make_env(env_name, **(env_kwargs or {}))
    task_id = _find_task(env, env_name, task_id, split)
    fmt = get_format(env.format)
    ep = Episode.start(env, env_name, task_id)
    write(
        f"=== {env_name} task {task_id} ({env.task_type(task_id)}), at most {env.max_steps} actions. "
        "You are the agent: type what it would generate; `quit` or Ctrl-D stops. ===\n"
        f"=== {_HINTS.get(fmt.name, '')} ===\n\n"
    )
    shown = fmt.render(ep.prompt, [])[0]
    write(shown)
    stopped = False
    while not ep.done:
        try:
            output = _read_turn(fmt, len(ep.steps) + 1, read_line, write)
        except EOFError:
            stopped = True
            break
        ep.take_turn(fmt, output, max_thinks)
        # Show what the harness wrote after the generated text, exactly as the agent will read it next turn.
        text, spans = fmt.render(ep.prompt, ep.history())
        generated_end = max([s.end for s in spans if s.end > len(shown)], default=len(shown))
        write(text[generated_end:])
        shown = text
    traj = ep.trajectory(fmt.name, teacher="human")
    how = "stopped" if stopped else "done"
    write(
        f"\n=== {how} after {len(ep.steps)} action(s) ({ep.invalid} invalid): "
        f"{'success' if traj.success else 'failure'}, reward {traj.reward:.2f} ===\n"
    )
    return traj


def _read_turn(fmt: Any, k: int, read_line: Callable[[], str], write: Callable[[str], Any]) -> str:
    """One turn's generated text: the typed line (with the turn marker added when it needs one).

    React generates a thought and its action in one turn, so a thought-only line is followed by
    a second line for the action. Blank lines are ignored; ``quit`` raises ``EOFError``.
    """
    marker = _ACTION_MARKER[fmt.name].format(k=k)
    write(_TURN_PROMPT[fmt.name])
    line = _next_line(read_line)
    output = line if fmt.parse_output(line) != (None, None) else marker + line
    if not fmt.separate_thinks and fmt.parse_output(output)[1] is None:
        write(marker)
        second = _next_line(read_line)
        output += "\n" + (second if fmt.parse_output(second)[1] is not None else marker + second)
    return output


def _next_line(read_line: Callable[[], str]) -> str:
    while True:
        line = read_line().rstrip("\r\n")
        if line.strip().lower() == "quit":
            raise EOFError
        if line.strip():
            return line.strip()


def _stdin_line() -> str:
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError
    return line


def _stdout_write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """``agentdistill play``: parse the flags and play one task on stdin/stdout."""
    from agentdistill.runconfig import EnvSource

    p = argparse.ArgumentParser(
        prog="agentdistill play",
        description="Play a task yourself: you see the exact prompt and observations the agent sees, and "
        "type what it would generate (a command, or a thought: `think: ...` in alfworld, `think[...]` in "
        "webshop, `Thought: ...` then `Search[...]` in hotpotqa). Type `quit` or press Ctrl-D to stop.",
        epilog="`agentdistill envs` lists each env's splits and sizes; task ids look like alfworld-test-0007.",
    )
    p.add_argument("--env", required=True, choices=list(ENVS), help="environment to play")
    p.add_argument("--task", help="task id to play, from any split (default: the first task of --split)")
    p.add_argument("--split", default="train", help="split whose first task is played without --task (train|dev|test)")
    p.add_argument("--env_seed", "--env-seed", type=int, default=0, help="seed that fixes the env's task sets")
    p.add_argument("--data", help=SOURCE_HELP["data"])
    p.add_argument("--questions", type=int, help=SOURCE_HELP["questions"])
    p.add_argument("--wiki", help=SOURCE_HELP["wiki"])
    p.add_argument("--webshop_url", "--webshop-url", help=SOURCE_HELP["webshop_url"])
    p.add_argument("--games", help=SOURCE_HELP["games"])
    a = p.parse_args(argv)
    env_kwargs = EnvSource(**{f.name: getattr(a, f.name) for f in dataclasses.fields(EnvSource)}).env_kwargs()
    play(a.env, a.task, _stdin_line, _stdout_write, split=a.split, env_kwargs=env_kwargs)
    return 0

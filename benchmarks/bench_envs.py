"""Time the embedded environments per step, against the 1 ms/step budget and a no-op baseline.

    .venv/bin/python benchmarks/bench_envs.py [--episodes 20] [--repeat 3] [--split test]

For each env, the expert's actions for the first N tasks of the split are recorded first; the timed
loop then replays them (``reset`` + one ``step`` per action), so the figure is the env's own cost.
The baseline drives a trivial env that echoes the action through the same loop and actions, so
"x no-op" shows env work against loop overhead. "oracle ms/step" times whole expert episodes
(env + planner), the cost ``collect --agent expert`` pays.
"""

import argparse
import time
from collections.abc import Sequence
from typing import Any

from agentdistill.agent import expert_episode
from agentdistill.envs import ENVS, StepResult, make_env

BUDGET_MS = 1.0  # the budget: an env step must cost well under a model's generation


class EchoEnv:
    """The no-op baseline: answers every action with itself."""

    def reset(self, task_id: str) -> str:
        return task_id

    def step(self, action: str) -> StepResult:
        return StepResult(action, 0.0, False, {})


def replay(env: Any, episodes: Sequence[tuple[str, list[str]]]) -> float:
    """Seconds to reset and step through every episode's actions."""
    t = time.perf_counter()
    for task_id, actions in episodes:
        env.reset(task_id)
        for action in actions:
            env.step(action)
    return time.perf_counter() - t


def best_of(repeat: int, fn: Any, *args: Any) -> float:
    return min(fn(*args) for _ in range(repeat))


def bench(env_name: str, n: int, split: str, repeat: int) -> dict[str, Any]:
    env = make_env(env_name)  # builds and caches the world/catalog/wiki outside the timed loops
    tasks = env.task_ids(split)[:n]
    t = time.perf_counter()
    trajs = [expert_episode(env_name, tid) for tid in tasks]
    oracle_s = time.perf_counter() - t
    episodes = [(tr.id, [s.action for s in tr.steps if s.action is not None]) for tr in trajs]
    steps = sum(len(a) for _, a in episodes)
    for (tid, actions), tr in zip(episodes, trajs, strict=True):  # warm-up, and a check that replay is faithful
        replay(env, [(tid, actions)])
        if env.result()["success"] != tr.success:
            raise SystemExit(f"{env_name} {tid}: replaying the expert's actions did not reproduce its outcome")
    env_s = best_of(repeat, replay, env, episodes)
    noop_s = best_of(repeat, replay, EchoEnv(), episodes)
    return {
        "env": env_name,
        "episodes": len(episodes),
        "steps": steps,
        "success": sum(tr.success for tr in trajs),
        "ms_per_step": 1e3 * env_s / steps,
        "noop_ms_per_step": 1e3 * noop_s / steps,
        "oracle_ms_per_step": 1e3 * oracle_s / steps,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--episodes", type=int, default=20, help="expert episodes per env (first N tasks of --split)")
    p.add_argument("--split", default="test", help="task split to draw the episodes from")
    p.add_argument("--repeat", type=int, default=3, help="timed replays per env; the fastest is reported")
    embedded = [name for name in ENVS if name != "webshop-http"]  # a client of a server, not a simulator
    p.add_argument("--envs", default=",".join(embedded), help="comma-separated envs to time")
    a = p.parse_args(argv)
    rows = [bench(name, a.episodes, a.split, a.repeat) for name in a.envs.split(",")]
    header = (
        "env",
        "episodes",
        "steps",
        "success",
        "ms/step",
        "x budget",
        "no-op ms/step",
        "x no-op",
        "oracle ms/step",
    )
    table = [header]
    for r in rows:
        table.append(
            (
                r["env"],
                str(r["episodes"]),
                str(r["steps"]),
                f"{r['success']}/{r['episodes']}",
                f"{r['ms_per_step']:.4f}",
                f"{r['ms_per_step'] / BUDGET_MS:.3f}",
                f"{r['noop_ms_per_step']:.5f}",
                f"{r['ms_per_step'] / r['noop_ms_per_step']:.0f}",
                f"{r['oracle_ms_per_step']:.4f}",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    print(
        f"\nx budget = ms/step / {BUDGET_MS:g} ms (below 1 is within budget); "
        "x no-op = ms/step / the echo env's ms/step in this run (env work vs loop overhead)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

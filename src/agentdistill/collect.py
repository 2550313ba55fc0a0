"""The ``collect`` stage: run a teacher (a model or the env's expert) on a split and save its trajectories.

    agentdistill collect --env alfworld --agent expert --split train --episodes 500 --out trajs.jsonl

Each finished episode is appended (one fsynced line), so an interrupted run loses at most the
episodes in flight, and a rerun skips every task already attempted. A lock beside ``--out``
(``<out>.lock``) keeps a second ``collect`` on the same file out while one runs.
"""

from pathlib import Path

from tqdm.auto import tqdm

from agentdistill.agent import EpisodeRecord, HFPolicy, expert_episode, run_episodes
from agentdistill.envs import make_env
from agentdistill.errors import ConfigError
from agentdistill.files import append_jsonl, exclusive_lock, read_resumable_jsonl, repair_jsonl_tail
from agentdistill.runconfig import CollectArgs
from agentdistill.trajectory import Trajectory


def _progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".attempted")


def collect(args: CollectArgs, policy: HFPolicy | None = None) -> dict:
    """Collect trajectories; returns ``{"attempted", "written", "success", "skipped_done"}`` for this call.

    Raises:
        ConfigError: another ``collect`` is writing the same ``--out``, or ``--out`` (or its ``.attempted``
            sidecar) exists and is not a trajectory file of this env: checked before any episode runs.
    """
    # Two writers would both see a task as not done and both append it (duplicate rows).
    with exclusive_lock(args.out, "collect"):
        return _collect(args, policy)


def done_ids(out: str | Path, env: str) -> set:
    """The ids of the tasks already attempted in an existing ``--out`` (and its ``.attempted`` sidecar),
    which a rerun skips; nothing is written.

    Raises:
        ConfigError: ``out`` or its sidecar is not JSONL of objects (a binary or foreign file, which
            appending would corrupt), or ``out`` holds trajectories of another env.
    """
    out = Path(out)
    rows = read_resumable_jsonl(out, "a trajectory file (JSONL of objects)", keys=("id", "steps"))
    other = next((r["env"] for r in rows if r.get("env") not in (None, env)), None)
    if other is not None:
        raise ConfigError(
            f"--out {out} holds trajectories of env {other!r}; collecting --env {env} into it would mix them: "
            "choose another --out"
        )
    sidecar = _progress_path(out)
    progress = read_resumable_jsonl(
        sidecar,
        "collect's record of attempted tasks (JSONL of objects)",
        str(sidecar),
        "move it away or choose another --out",
        keys=("id",),
    )
    return {str(r["id"]) for r in (*progress, *rows)}


def _collect(args: CollectArgs, policy: HFPolicy | None) -> dict:
    out = Path(args.out)
    done = done_ids(out, args.env)  # before anything is appended to a file that is not ours
    env = make_env(args.env, **args.env_kwargs())
    tasks = env.task_ids(args.split)[: args.episodes]
    for path in (out, _progress_path(out)):
        repair_jsonl_tail(path)  # a line cut by a crash: its task is not in `done`, so it is rerun
    todo = [t for t in tasks if t not in done]
    stats = {"attempted": 0, "written": 0, "success": 0, "skipped_done": len(tasks) - len(todo)}
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=f"collect {args.env}/{args.split}", unit="ep")

    def save(traj: Trajectory) -> None:
        stats["attempted"] += 1
        stats["success"] += int(bool(traj.success))
        if traj.success or not args.only_success:
            append_jsonl(out, traj.to_json())
            stats["written"] += 1
        append_jsonl(_progress_path(out), {"id": traj.id, "success": bool(traj.success)})
        bar.update(1)
        bar.set_postfix(success=f"{stats['success']}/{stats['attempted']}")

    if args.agent == "expert":
        for tid in todo:
            save(expert_episode(args.env, tid, args.env_kwargs()))
    else:
        if policy is None:
            policy = args.load_policy(args.agent)

        def on_done(rec: EpisodeRecord) -> None:
            rec.trajectory.meta["teacher"] = args.agent
            save(rec.trajectory)

        # Episodes run in lockstep waves; each finished episode is saved at once.
        wave = max(args.batch_size, 1) * 4
        for i in range(0, len(todo), wave):
            run_episodes(
                args.env, todo[i : i + wave], policy, args.env_kwargs(), on_done=on_done, max_steps=args.max_steps
            )
    bar.close()
    return stats

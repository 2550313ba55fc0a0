"""The ``evaluate`` stage: run a model as an agent on a split and report every metric of DESIGN §6.

    agentdistill evaluate --model DIR --env alfworld --split test --reference teacher.jsonl --out metrics.json

Writes ``metrics.json`` (overall + per task type + the config) and, beside it,
``<stem>.trajectories.jsonl`` with the episodes it ran.
"""

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from agentdistill.agent import EpisodeRecord, HFPolicy, run_episodes
from agentdistill.envs import make_env
from agentdistill.errors import ConfigError
from agentdistill.files import atomic_write_json, atomic_write_jsonl, check_output_path
from agentdistill.metrics import summarize_by_type
from agentdistill.runconfig import EvalArgs
from agentdistill.trajectory import Trajectory, read_trajectories

logger = logging.getLogger(__name__)


def episode_row(rec: EpisodeRecord) -> dict[str, Any]:
    """A trajectory JSON line with the episode's counters in ``meta.episode``."""
    row = rec.trajectory.to_json()
    row["meta"]["episode"] = {
        k: getattr(rec, k) for k in ("steps", "invalid", "reason_tokens", "gen_tokens", "gen_seconds", "wall_seconds")
    }
    return row


def evaluate(args: EvalArgs, policy: HFPolicy | None = None) -> dict[str, Any]:
    """Run the episodes, write metrics and trajectories, return the metrics dict."""
    check_output_path(args.out)  # before the episodes, not after them
    env_kwargs = args.env_kwargs()
    env = make_env(args.env, **env_kwargs)
    tasks = env.task_ids(args.split)[: args.episodes]
    reference: dict[str, Trajectory] | None = None
    if args.reference:
        reference = {t.id: t for t in read_trajectories(args.reference)}
        if tasks and not set(tasks) & set(reference):  # a CoT match of 0.0 would be a number about nothing
            raise ConfigError(
                f"--reference {args.reference} holds none of the {len(tasks)} {args.env} {args.split} task(s) "
                f"evaluated (e.g. {tasks[0]}; it has e.g. {next(iter(reference))}); pass the teacher's trajectories "
                "of these tasks"
            )
    if policy is None:
        policy = args.load_policy(args.model)
    bar = tqdm(total=len(tasks), desc=f"evaluate {args.env}/{args.split}", unit="ep")
    wins = [0]

    def on_done(rec: EpisodeRecord) -> None:
        wins[0] += int(rec.success)
        bar.update(1)
        bar.set_postfix(success=f"{wins[0]}/{bar.n}")

    records = run_episodes(args.env, tasks, policy, env_kwargs, on_done=on_done, max_steps=args.max_steps)
    bar.close()
    metrics = summarize_by_type(
        records,
        min(args.max_steps or env.max_steps, env.max_steps),
        reference=reference,
        matcher=args.cot_matcher,
        threshold=args.cot_threshold,
    )
    metrics["config"] = asdict(args)
    out = Path(args.out)
    atomic_write_jsonl(out.with_name(out.stem + ".trajectories.jsonl"), (episode_row(r) for r in records))
    atomic_write_json(out, metrics)
    logger.info("metrics: %s", json.dumps(metrics["overall"]))
    return metrics

"""The ``evaluate`` stage: run a model as an agent on a split and report every metric of DESIGN §6.

    agentdistill evaluate --model DIR --env alfworld --split test --reference teacher.jsonl --out metrics.json

Writes ``metrics.json`` (overall + per task type + the config) and, beside it,
``<stem>.trajectories.jsonl`` with the episodes it ran.
"""

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from agentdistill.agent import AgentConfig, EpisodeRecord, HFPolicy, run_episodes
from agentdistill.collect import CollectArgs
from agentdistill.config import check_counts
from agentdistill.envs import make_env
from agentdistill.files import atomic_write_json, atomic_write_jsonl, check_output_path
from agentdistill.metrics import summarize_by_type
from agentdistill.modeling import DEVICE_HELP, DTYPE_HELP, TorchDtype, check_device_dtype
from agentdistill.trajectory import Trajectory, read_trajectories

logger = logging.getLogger(__name__)


@dataclass
class EvalArgs:
    """Options of ``agentdistill evaluate``."""

    model: str = field(default="", metadata={"help": "Model directory or hub name to run as the agent."})
    env: str = field(default="alfworld", metadata={"help": "Environment: alfworld | webshop | hotpotqa."})
    split: str = field(default="test", metadata={"help": "Task split."})
    episodes: int | None = field(default=None, metadata={"help": "First N tasks of the split (default: all)."})
    reference: str | None = field(
        default=None, metadata={"help": "Teacher trajectories (same task ids) for CoT match."}
    )
    out: str = field(default="metrics.json", metadata={"help": "Metrics JSON; trajectories go beside it."})
    batch_size: int = field(default=32, metadata={"help": "Episodes per batched generate call."})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy; > 0 samples."})
    max_new_tokens: int = field(default=96, metadata={"help": "Longest generation per turn."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})
    env_seed: int = field(default=0, metadata={"help": "Seed that fixes the env's task sets."})
    data: str | None = field(default=None, metadata={"help": "hotpotqa only: a HotPotQA distractor-format JSON file."})
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "Step cap per episode, at most the env's own (default: the env's); failures count at the cap."
        },
    )
    cot_matcher: str = field(default="rouge_l", metadata={"help": "CoT matcher: rouge_l | exact."})
    cot_threshold: float = field(default=0.7, metadata={"help": "Match when the matcher's score >= this."})
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    torch_dtype: TorchDtype = field(default="auto", metadata={"help": DTYPE_HELP})

    def __post_init__(self) -> None:
        check_device_dtype(self.device, self.torch_dtype)
        check_counts(self, 1, "episodes", "batch_size", "max_new_tokens", "max_steps")


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
    env_kwargs = CollectArgs(env=args.env, data=args.data, env_seed=args.env_seed).env_kwargs()
    env = make_env(args.env, **env_kwargs)
    tasks = env.task_ids(args.split)[: args.episodes]
    reference: dict[str, Trajectory] | None = None
    if args.reference:
        reference = {t.id: t for t in read_trajectories(args.reference)}
    if policy is None:
        cfg = AgentConfig(args.max_new_tokens, args.temperature, seed=args.seed, batch_size=args.batch_size)
        policy = HFPolicy.from_pretrained(args.model, cfg, args.device, args.torch_dtype)
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

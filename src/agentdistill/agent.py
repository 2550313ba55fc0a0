"""The ReAct agent: prompt, batched generation with stop strings, action parsing, the env loop.

Many episodes run in lockstep: at every turn one batched call serves all unfinished episodes, and
``HFPolicy`` keeps each episode's KV cache between turns so it prefills only what is new
(``decoding``). The text the model sees is exactly what the trajectory's
format renders (``formats/``), so collection, training and evaluation share one prompt format.
``Episode`` is the one turn logic and trajectory builder: the model loop here, ``expert_episode``
and ``agentdistill play`` (a person typing the turns) all step through it.

    records = run_episodes("alfworld", task_ids, HFPolicy(model, tok, AgentConfig()))
"""

import itertools
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from agentdistill.decoding import TurnDecoder, token_picker, unsupported
from agentdistill.envs import AgentEnv, StepResult, make_env
from agentdistill.formats import TrajectoryFormat, get_format
from agentdistill.masks import context_ids, piece_encoder
from agentdistill.trajectory import Span, Step, Trajectory

logger = logging.getLogger(__name__)

_EPISODE_KEYS = itertools.count()  # Context.key of each episode run_episodes runs


@dataclass
class AgentConfig:
    """How the agent generates.

    Args:
        max_new_tokens: longest generation for one turn.
        temperature: 0 = greedy; > 0 samples (seeded by ``seed``).
        top_p: nucleus sampling threshold when sampling.
        seed: torch seed for sampling.
        batch_size: most episodes in one batch.
        max_context: longest input in tokens (default: the model's ``max_position_embeddings``);
            longer histories are cut from the left, keeping the instruction and task.
        reuse_cache: keep each episode's KV cache between turns and prefill only its new tokens
            (``decoding``; same tokens as without); off: every turn re-reads the whole context.
    """

    max_new_tokens: int = 96
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 32
    max_context: int | None = None
    reuse_cache: bool = True


@dataclass
class Generation:
    text: str
    num_tokens: int


@dataclass(frozen=True)
class Context:
    """What a policy continues: the transcript so far and its REASON/ACT spans (``fmt.render``).

    The text ends exactly where the model's next span starts; a policy that encodes it with
    ``masks.context_ids`` feeds the model a prefix of the ids training uses for the transcript.
    """

    text: str
    spans: tuple[Span, ...] = ()
    key: Hashable | None = None  # the episode it continues: a policy may keep state (a KV cache) per key


class Policy(Protocol):
    """What the agent loop asks of a model. A policy with a ``tokenizer`` attribute gets its contexts
    rendered with that tokenizer's chat template (chat format), exactly as training renders them; one
    with a ``release(key)`` method is told when the episode of ``Context.key`` ends."""

    def generate(self, contexts: Sequence[Context], fmt: TrajectoryFormat) -> list[Generation]:
        """Continue every context for one turn; each text is cut where ``fmt.turn_end`` says the turn ends."""
        ...

    def count_tokens(self, text: str) -> int: ...


def cut_turn(text: str, fmt: TrajectoryFormat) -> str:
    """``text`` up to the end of the model's turn (``fmt.turn_end``), all of it if the turn is unfinished."""
    end = fmt.turn_end(text)
    return text if end is None else text[:end]


class _TurnEnd(StoppingCriteria):
    """Stops each row once its generated text holds a whole turn (``fmt.turn_end``)."""

    def __init__(self, fmt: TrajectoryFormat, decode: Callable[[list[int]], str], width: int) -> None:
        self.fmt, self.decode, self.width = fmt, decode, width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        done = [self.fmt.turn_end(self.decode(row[self.width :])) is not None for row in input_ids.tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class HFPolicy:
    """A Hugging Face causal LM as a policy: batched generation with stop strings.

    Contexts are encoded as training encodes transcripts (``masks.context_ids``: cut at span
    boundaries, left-cut like ``truncation="left"``), and generated ids are decoded as the
    continuation they are. With ``reuse_cache`` (and a model ``decoding.unsupported`` accepts),
    each keyed episode's KV cache is kept between turns (``decoding.TurnDecoder``); else every turn
    is one left-padded ``generate`` call.
    """

    def __init__(self, model: Any, tokenizer: Any, cfg: AgentConfig | None = None) -> None:
        self.model, self.tok, self.cfg = model.eval(), tokenizer, cfg or AgentConfig()
        self.max_context = self.cfg.max_context or getattr(model.config, "max_position_embeddings", 2048)
        self.pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        self.generator_seeded = False
        self.turns: TurnDecoder | None = None
        if self.cfg.reuse_cache:
            if why := unsupported(model, self.max_context):
                logger.info("no KV cache reuse between turns: %s", why)
            else:
                pick = token_picker(self.cfg.temperature, self.cfg.top_p, self.cfg.seed, model)
                device = next(model.parameters()).device
                # kept caches may fill half the GPU memory free now; the rest is each batch's working memory
                budget = torch.cuda.mem_get_info(device)[0] // 2 if device.type == "cuda" else None
                self.turns = TurnDecoder(model, self.cfg.max_new_tokens, self.pad, self.tok.eos_token_id, pick, budget)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, cfg: AgentConfig | None = None, device: str = "auto", torch_dtype: str = "auto"
    ) -> "HFPolicy":
        """Load a model directory or hub name (model + tokenizer) as a policy, placed by
        ``modeling.resolve_device_dtype(device, torch_dtype)`` (the GPU when there is one)."""
        from agentdistill.modeling import load_agent_model, load_tokenizer

        return cls(load_agent_model(name_or_path, device, torch_dtype), load_tokenizer(name_or_path), cfg)

    @property
    def tokenizer(self) -> Any:
        return self.tok

    def count_tokens(self, text: str) -> int:
        return len(self.tok(text, add_special_tokens=False)["input_ids"])

    def encode(self, context: Context) -> list[int]:
        """The ids fed to the model for ``context``: room is left for ``max_new_tokens``."""
        return context_ids(context.text, context.spans, self.tok, self.max_context - self.cfg.max_new_tokens)

    def release(self, key: Hashable) -> None:
        """The episode of ``key`` ended: drop its KV cache."""
        if self.turns is not None:
            self.turns.release(key)

    def generate(self, contexts: Sequence[Context], fmt: TrajectoryFormat) -> list[Generation]:
        decoder = piece_encoder(self.tok)
        ids = [self.encode(c) for c in contexts]
        # rows of similar length share a batch: less padding
        order = sorted(range(len(ids)), key=lambda i: len(ids[i])) if self.turns else range(len(ids))
        out: list[Generation | None] = [None] * len(ids)
        for a in range(0, len(ids), self.cfg.batch_size):
            batch = order[a : a + self.cfg.batch_size]
            if self.turns is not None:
                rows = self.turns.decode(
                    [contexts[i].key for i in batch],
                    [ids[i] for i in batch],
                    lambda g: fmt.turn_end(decoder.decode(g)) is not None,
                )
            else:
                rows = self._generate([ids[i] for i in batch], fmt)
            for i, row in zip(batch, rows, strict=True):
                n = len(row)
                while n and row[n - 1] == self.pad:
                    n -= 1  # generate pads finished sequences to the batch's longest generation
                out[i] = Generation(cut_turn(decoder.decode(row[:n]), fmt), n)
        return out

    @torch.no_grad()
    def _generate(self, batch: list[list[int]], fmt: TrajectoryFormat) -> list[list[int]]:
        """Generated ids of each context from one left-padded ``generate`` call (no cache kept)."""
        cfg = self.cfg
        if not self.generator_seeded:
            torch.manual_seed(cfg.seed)
            self.generator_seeded = True
        device = next(self.model.parameters()).device
        width = max(len(b) for b in batch)
        ids = torch.tensor([[self.pad] * (width - len(b)) + b for b in batch], device=device)
        attn = torch.tensor([[0] * (width - len(b)) + [1] * len(b) for b in batch], device=device)
        kwargs: dict[str, Any] = {"do_sample": cfg.temperature > 0, "max_new_tokens": cfg.max_new_tokens}
        if cfg.temperature > 0:
            kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p)
        gen = self.model.generate(
            input_ids=ids,
            attention_mask=attn,
            pad_token_id=self.pad,
            stopping_criteria=StoppingCriteriaList([_TurnEnd(fmt, piece_encoder(self.tok).decode, width)]),
            eos_token_id=self.tok.eos_token_id,
            **kwargs,
        )
        return gen[:, width:].tolist()


@dataclass
class EpisodeRecord:
    """One finished episode: its outcome, counts, timing and the trajectory itself."""

    task_id: str
    env: str
    task_type: str
    success: bool
    reward: float
    steps: int
    invalid: int
    reason_tokens: int
    gen_tokens: int
    gen_seconds: float
    wall_seconds: float
    result: dict[str, Any]
    trajectory: Trajectory


@dataclass
class Episode:
    """One episode in progress, whoever writes the turns (a model, the env's expert, a person).

    ``take_turn`` applies a generated turn, ``act`` an already parsed one, and ``trajectory`` is
    the record every writer produces. The token and time counts are filled by ``run_episodes``.
    """

    env: AgentEnv
    env_name: str
    task_id: str
    prompt: str
    max_steps: int  # actions before the episode is cut
    steps: list[Step] = field(default_factory=list)
    pending: str | None = None  # a thought waiting for its action (formats with separate think turns)
    thinks: int = 0
    invalid: int = 0
    done: bool = False
    reason_tokens: int = 0
    gen_tokens: int = 0
    gen_seconds: float = 0.0
    t0: float = field(default_factory=time.perf_counter)
    t1: float = 0.0

    @classmethod
    def start(cls, env: AgentEnv, env_name: str, task_id: str, max_steps: int | None = None) -> "Episode":
        """Reset ``env`` to ``task_id``; ``max_steps`` caps the env's own step cap."""
        cap = min(max_steps, env.max_steps) if max_steps else env.max_steps
        return cls(env, env_name, task_id, build_prompt(env, env.reset(task_id)), cap)

    def history(self) -> list[Step]:
        """The steps the next turn continues: a pending thought is an open step."""
        return [*self.steps, Step(thought=self.pending)] if self.pending is not None else self.steps

    def take_turn(self, fmt: TrajectoryFormat, output: str, max_thinks: int = 2) -> str | None:
        """Apply one generated turn: a thought waits for its action, an action steps the env.

        Returns:
            The turn's thought (``None`` if it has none), for the caller's reasoning-token count.
        """
        thought, action = fmt.parse_output(output)
        if thought is not None and action is None and fmt.separate_thinks and self.thinks < max_thinks:
            # a think-only turn (ALFWorld "> think:", WebShop "think[...]"): the harness answers "OK."
            self.pending = thought if self.pending is None else f"{self.pending} {thought}"
            self.thinks += 1
        elif action is None:
            self.invalid += 1  # unparseable: the env answers with its invalid-action observation
            action_text = output.strip().splitlines()[0] if output.strip() else ""
            self._append(thought, action_text or None, self.env.step(action_text or "<invalid>"))
        else:
            self.act(thought, action)
        return thought

    def act(self, thought: str | None, action: str) -> None:
        """Step the env with a parsed action and record the step (after any pending thought)."""
        res = self.env.step(action)
        if res.info.get("invalid"):
            self.invalid += 1
        self._append(thought, action, res)

    def _append(self, thought: str | None, action: str | None, res: StepResult) -> None:
        thought = self.pending if self.pending is not None else thought
        self.steps.append(Step(thought=thought, action=action, observation=res.observation))
        self.pending, self.thinks = None, 0
        self.done = res.done or len(self.steps) >= self.max_steps

    def trajectory(self, fmt_name: str, teacher: str | None = None) -> Trajectory:
        """The episode as a trajectory; ``teacher`` ("expert", "human") is recorded in ``meta``."""
        result = dict(self.env.result())
        extras = {k: v for k, v in result.items() if k not in ("success", "reward")}
        return Trajectory(
            id=self.task_id,
            env=self.env_name,
            task=self.env.task_text(self.task_id),
            prompt=self.prompt,
            steps=self.steps,
            success=bool(result.get("success")),
            reward=float(result.get("reward", 0.0)),
            task_type=self.env.task_type(self.task_id),
            format=fmt_name,
            meta=extras if teacher is None else {"teacher": teacher, **extras},
        )


def build_prompt(env: AgentEnv, first_observation: str) -> str:
    """Instruction, then the first observation (which holds the task)."""
    return f"{env.instruction().rstrip()}\n\n{first_observation.strip()}\n"


def run_episodes(
    env_name: str,
    task_ids: Sequence[str],
    policy: Policy,
    env_kwargs: dict[str, Any] | None = None,
    on_done: Callable[[EpisodeRecord], None] | None = None,
    max_steps: int | None = None,
    max_thinks: int = 2,
    fmt: str | None = None,
) -> list[EpisodeRecord]:
    """Run one episode per task id in lockstep and return their records (in ``task_ids`` order).

    Args:
        env_name: registered env name.
        task_ids: tasks to run.
        policy: the model (``HFPolicy``) or any ``Policy``.
        env_kwargs: passed to ``make_env`` (e.g. ``seed``, ``data``).
        on_done: called with each record as soon as its episode ends (progress, incremental saves).
        max_steps: step cap, at most the env's own (default: the env's).
        max_thinks: think-only turns allowed before an action (formats with separate think turns).
        fmt: the transcript format the agent reads and writes (default: the env's own).
    """
    eps = [Episode.start(make_env(env_name, **(env_kwargs or {})), env_name, tid, max_steps) for tid in task_ids]
    fmt = get_format(fmt or eps[0].env.format) if eps else None
    tokenizer = getattr(policy, "tokenizer", None)  # chat: its template, as training renders with it
    release = getattr(policy, "release", lambda key: None)
    keys = {id(e): next(_EPISODE_KEYS) for e in eps}  # unique across runs that share a policy
    records: dict[str, EpisodeRecord] = {}
    try:
        while active := [e for e in eps if not e.done]:
            contexts = []
            for e in active:
                text, spans = fmt.open_turn(e.prompt, e.history(), tokenizer)  # rendered as training renders it
                contexts.append(Context(text, tuple(spans), keys[id(e)]))
            t = time.perf_counter()
            gens = policy.generate(contexts, fmt)
            dt = (time.perf_counter() - t) / len(active)
            for e, g in zip(active, gens, strict=True):
                e.gen_tokens += g.num_tokens
                e.gen_seconds += dt
                thought = e.take_turn(fmt, g.text, max_thinks)
                if thought is not None:
                    e.reason_tokens += policy.count_tokens(thought)
                if e.done:
                    release(keys[id(e)])
                    e.t1 = time.perf_counter()
                    rec = _record(e, fmt)
                    records[e.task_id] = rec
                    if on_done:
                        on_done(rec)
    finally:
        for e in eps:
            if not e.done:
                release(keys[id(e)])
    return [records[e.task_id] for e in eps]


def _record(e: Episode, fmt: TrajectoryFormat) -> EpisodeRecord:
    traj = e.trajectory(fmt.name)
    return EpisodeRecord(
        task_id=e.task_id,
        env=e.env_name,
        task_type=traj.task_type or "",
        success=traj.success,
        reward=traj.reward,
        steps=len(e.steps),
        invalid=e.invalid,
        reason_tokens=e.reason_tokens,
        gen_tokens=e.gen_tokens,
        gen_seconds=e.gen_seconds,
        wall_seconds=e.t1 - e.t0,
        result=dict(e.env.result()),
        trajectory=traj,
    )


def expert_episode(env_name: str, task_id: str, env_kwargs: dict[str, Any] | None = None) -> Trajectory:
    """One episode of the env's oracle, recorded in the same format the agent writes."""
    ep = Episode.start(make_env(env_name, **(env_kwargs or {})), env_name, task_id)
    while not ep.done:
        ep.act(*ep.env.expert_step())
    return ep.trajectory(ep.env.format, teacher="expert")

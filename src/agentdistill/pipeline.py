"""``agentdistill run``: a whole SAD experiment in one resumable run directory.

Stages (each writes atomically and marks itself done with a fingerprint of its outputs; a rerun
skips what is done and valid, redoes what is missing, partial or corrupted):

1. ``teacher``  — the user's model, or the embedded teacher: expert trajectories of the train
   split, a BPE tokenizer trained on them, a small causal LM trained by SFT on them;
2. ``collect``  — the teacher acts on the train split; its (successful) trajectories are kept;
3. ``distill``  — one student per method × size × seed, all from the same initial weights per
   (size, seed), on the same data with the same step budget;
4. ``evaluate`` — teacher and every student on the eval split of every env, CoT match against the
   teacher's own trajectories on the same tasks;
5. ``report``   — ``results.md``, ``results.json`` and plots (``report.build_report``).

Layout of ``RUN``::

    run.yaml  manifest.json  versions.json
    teacher/expert/<env>.jsonl  teacher/tokenizer/  teacher/model/
    collect/<env>.jsonl  collect/train.jsonl
    students/<size>-s<seed>/          initial student weights
    distill/<method>__<size>__s<seed>/  one trained student (checkpoints while training)
    eval/<teacher|cell>/<env>.json  (+ <env>.trajectories.jsonl)
    results.md  results.json  plots/
"""

import contextlib
import datetime as _dt
import json
import logging
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from agentdistill.errors import ConfigError
from agentdistill.files import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_jsonl_tolerant
from agentdistill.markers import check, digest, mark, marker_path, model_files, unmark
from agentdistill.runconfig import (
    METHODS,
    RunConfig,
    StudentSize,
    cell_training_args,
    parse_run_config,
    teacher_training_args,
)

logger = logging.getLogger(__name__)

STAGES = ("teacher", "collect", "distill", "evaluate", "report")


# --------------------------------------------------------------------------- helpers
def machine() -> str:
    cores = os.cpu_count() or 0
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        ram_s = f", {ram:.0f} GB RAM"
    except (ValueError, OSError, AttributeError):
        ram_s = ""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cores} CPU cores{ram_s}, {gpu} ({platform.system()} {platform.machine()})"


def versions() -> dict[str, str]:
    import tokenizers
    import torch
    import transformers

    from agentdistill import __version__

    return {
        "agentdistill": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
    }


def cell_key(method: str, size: str, seed: int) -> str:
    return f"{method}__{size}__s{seed}"


def _params(model_dir: Path) -> int:
    from safetensors import safe_open

    total = 0
    for f in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():  # noqa: SIM118 (safe_open is not iterable)
                n = 1
                for d in st.get_slice(k).get_shape():
                    n *= d
                total += n
    return total


def _stage(i: int, name: str, what: str) -> None:
    print(f"\n== [{i}/{len(STAGES)}] {name}: {what}", flush=True)


def student_config(teacher_config: Any, size: StudentSize) -> Any:
    """The teacher's config with the size's shape (works for Llama-, Mistral-, Qwen- and GPT-2-style configs)."""
    cfg = teacher_config.__class__.from_dict(teacher_config.to_dict())
    cfg.hidden_size = size.hidden_size
    cfg.num_hidden_layers = size.num_layers
    cfg.num_attention_heads = size.num_heads
    if hasattr(cfg, "num_key_value_heads"):
        cfg.num_key_value_heads = size.num_heads
    if hasattr(cfg, "head_dim"):
        cfg.head_dim = size.hidden_size // size.num_heads
    if hasattr(cfg, "intermediate_size"):
        cfg.intermediate_size = size.intermediate_size or int(2.7 * size.hidden_size)
    elif hasattr(cfg, "n_inner"):
        cfg.n_inner = size.intermediate_size
    if hasattr(cfg, "layer_types") and getattr(cfg, "layer_types", None):
        cfg.layer_types = cfg.layer_types[: size.num_layers] + [cfg.layer_types[-1]] * max(
            0, size.num_layers - len(cfg.layer_types)
        )
    return cfg


def longest_turn(data: Path, tokenizer: Any) -> int:
    """Tokens in the longest turn an agent generates when it replays ``data``: the longest run of consecutive
    reasoning/action tokens (a ReAct turn is a thought and its action; an ALFWorld or WebShop turn is one span).

    ``max_new_tokens`` below this cuts such turns, so no agent could solve every task.
    """
    from agentdistill.data import load_examples

    examples, _ = load_examples(data, tokenizer, max_length=1 << 30)
    best = 0
    for ex in examples:
        run = 0
        for r, a in zip(ex.reason_mask, ex.act_mask, strict=True):
            run = run + 1 if r or a else 0
            best = max(best, run)
    return best


# --------------------------------------------------------------------------- the run
class Pipeline:
    """One run directory and its stages. ``run()`` does what is not yet done."""

    def __init__(self, cfg: RunConfig, out: str | Path, command: str = "", preset: str | None = None) -> None:
        self.cfg, self.root, self.command, self.preset = cfg, Path(out), command, preset
        self.stage_seconds: dict[str, dict[str, Any]] = {}

    # paths
    @property
    def teacher_dir(self) -> Path:
        return Path(self.cfg.teacher.model) if self.cfg.teacher.model else self.root / "teacher" / "model"

    def teacher_id(self) -> Any:
        """What the teacher's dependents depend on: the embedded teacher's fingerprint, or the user's name."""
        return {"model": self.cfg.teacher.model} if self.cfg.teacher.model else digest(self.root, "teacher")

    def eval_path(self, key: str, env: str) -> Path:
        return self.root / "eval" / key / f"{env}.json"

    def cells(self) -> list[tuple[str, StudentSize, int]]:
        d = self.cfg.distill
        return [(m, s, seed) for seed in d.seeds for s in d.sizes for m in d.methods]

    # ------------------------------------------------------------------ entry
    def run(self, force: Iterable[str] = (), stop_after: str | None = None) -> dict[str, Any]:
        """Do every stage that is not done (``force``: redo these and the ones after them), up to ``stop_after``.

        Returns the results dict of the report, or ``{}`` when it stopped before the report.
        """
        force = set(force)
        unknown = force - {*STAGES, "all"}
        if unknown:
            raise ConfigError(f"--force {sorted(unknown)[0]}: choose a stage ({', '.join(STAGES)}) or all")
        if stop_after is not None and stop_after not in STAGES:
            raise ConfigError(f"--stop_after {stop_after}: choose a stage ({', '.join(STAGES)})")
        first_forced = min((STAGES.index(s) for s in force if s in STAGES), default=0 if "all" in force else None)
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_config(forced=first_forced is not None)
        if first_forced is not None:  # a forced stage invalidates the stages after it
            for s in STAGES[first_forced:]:
                print(f"--force: redoing {s}")
                self._invalidate(s)
        t_all = time.time()
        self._write_manifest()
        for name in STAGES[:-1]:
            getattr(self, f"stage_{name}")()
            if name == stop_after:
                print(
                    f"\nstopped after {name} (--stop_after) in {time.time() - t_all:.0f} s; rerun without it to go on"
                )
                return {}
        results = self.stage_report()
        print(f"\nrun finished in {time.time() - t_all:.0f} s; report: {self.root / 'results.md'}")
        return results

    def _check_config(self, forced: bool) -> None:
        path = self.root / "run.yaml"
        new = self.cfg.to_dict()
        if path.exists():
            old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            diff = _first_diff(old, new)
            if diff and not forced:
                raise ConfigError(
                    f"{self.root}: this command's config differs from the run's run.yaml at `{diff}`; "
                    "use a new --out, or --force STAGE to redo from that stage with the new config"
                )
        atomic_write_text(path, yaml.safe_dump(new, sort_keys=False))
        atomic_write_json(self.root / "versions.json", versions())

    def _invalidate(self, stage: str) -> None:
        if stage == "teacher":
            unmark(self.root, "teacher")
            if not self.cfg.teacher.model:
                shutil.rmtree(self.root / "teacher" / "model", ignore_errors=True)
        elif stage == "collect":
            unmark(self.root, "collect")
            shutil.rmtree(self.root / "collect", ignore_errors=True)
        elif stage == "distill":
            unmark(self.root, "cell")
            shutil.rmtree(self.root / "distill", ignore_errors=True)
        elif stage == "evaluate":
            unmark(self.root, "eval")
            shutil.rmtree(self.root / "eval", ignore_errors=True)

    # ------------------------------------------------------------------ manifest
    def _write_manifest(self) -> dict[str, Any]:
        cfg = self.cfg
        params: dict[str, int | None] = {}
        for _, size, seed in self.cells():
            init = self.root / "students" / f"{size.name}-s{seed}"
            if size.name not in params or params[size.name] is None:
                params[size.name] = _params(init) if init.exists() else None
        teacher_params = _params(self.teacher_dir) if self.teacher_dir.is_dir() else None
        manifest = {
            "name": self.root.name,
            "preset": self.preset,
            "command": self.command,
            "machine": machine(),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "versions": versions(),
            "envs": cfg.envs,
            "eval": {"split": cfg.evaluate.split, "episodes": {e: self._eval_episodes(e) for e in cfg.envs}},
            "teacher": {
                "key": "teacher",
                "source": cfg.teacher.model or "embedded",
                "params": teacher_params,
                "eval": {e: str(self.eval_path("teacher", e).relative_to(self.root)) for e in cfg.envs},
            },
            "methods": {m: {**_method_settings(cfg, m)} for m in cfg.distill.methods},
            "sizes": {s.name: {"params": params.get(s.name), **s.__dict__} for s in cfg.distill.sizes},
            "cells": [
                {
                    "key": cell_key(m, s.name, seed),
                    "method": m,
                    "size": s.name,
                    "seed": seed,
                    "params": params.get(s.name),
                    "dir": f"distill/{cell_key(m, s.name, seed)}",
                    "eval": {
                        e: str(self.eval_path(cell_key(m, s.name, seed), e).relative_to(self.root)) for e in cfg.envs
                    },
                }
                for m, s, seed in self.cells()
            ],
            "stages": self.stage_seconds,
            "notes": self._notes(),
        }
        old = self.root / "manifest.json"
        if old.exists():
            try:
                prev = json.loads(old.read_text(encoding="utf-8"))
                manifest["started"] = prev.get("started", manifest["started"])
                manifest["stages"] = {**prev.get("stages", {}), **self.stage_seconds}
            except json.JSONDecodeError:
                pass
        atomic_write_json(old, manifest)
        return manifest

    def _notes(self) -> list[str]:
        """Caveats the report must show (read from the stage markers, so `report` rebuilds them)."""
        notes = self._turn_notes()
        path = marker_path(self.root, "collect")
        if path.exists():
            with contextlib.suppress(json.JSONDecodeError):
                notes += json.loads(path.read_text(encoding="utf-8")).get("notes", [])
        if self.cfg.evaluate.max_steps:
            notes.append(f"episodes were capped at {self.cfg.evaluate.max_steps} steps (evaluate.max_steps)")
        return notes

    def _turn_notes(self) -> list[str]:
        """A note per stage whose generation budget is shorter than the embedded teacher's longest expert turn."""
        path = marker_path(self.root, "teacher")
        longest = None
        if path.exists():
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                longest = json.loads(path.read_text(encoding="utf-8")).get("longest_turn")
        if not longest:
            return []
        return [
            f"{name}.max_new_tokens = {spec.max_new_tokens} is shorter than the longest expert turn ({longest} "
            f"tokens): longer turns were cut, so even a perfect agent fails some tasks; set it to at least {longest}"
            for name, spec in (("collect", self.cfg.collect), ("evaluate", self.cfg.evaluate))
            if spec.max_new_tokens < longest
        ]

    def _eval_episodes(self, env: str) -> int:
        from agentdistill.collect import CollectArgs
        from agentdistill.envs import make_env

        e = make_env(env, **CollectArgs(env=env, env_seed=self.cfg.env_seed).env_kwargs())
        n = len(e.task_ids(self.cfg.evaluate.split))
        return min(n, self.cfg.evaluate.episodes) if self.cfg.evaluate.episodes else n

    def _done_stage(self, name: str, seconds: float, **info: Any) -> None:
        self.stage_seconds[name] = {"seconds": round(seconds, 1), **info}
        self._write_manifest()

    # ------------------------------------------------------------------ 1. teacher
    def stage_teacher(self) -> None:
        cfg = self.cfg
        t0 = time.time()
        if cfg.teacher.model:
            _stage(1, "teacher", f"using {cfg.teacher.model}")
            from agentdistill.modeling import load_tokenizer

            load_tokenizer(cfg.teacher.model)  # fails now, with a clear message, if it is not a model
            return
        if check(self.root, "teacher"):
            _stage(1, "teacher", f"done ({self.teacher_dir})")
            return
        tspec = cfg.teacher
        _stage(1, "teacher", f"embedded: SFT of a {tspec.arch} on expert trajectories of {', '.join(cfg.envs)}")
        from agentdistill.collect import CollectArgs, collect
        from agentdistill.distill import DistillArgs, distill

        tdir = self.root / "teacher"
        expert_files = []
        for env in cfg.envs:
            out = tdir / "expert" / f"{env}.jsonl"
            _drop_if_corrupt(out)
            collect(
                CollectArgs(
                    env=env,
                    agent="expert",
                    split="train",
                    episodes=tspec.expert_episodes,
                    out=str(out),
                    env_seed=cfg.env_seed,
                )
            )
            expert_files.append(out)
        data = tdir / "expert" / "train.jsonl"
        _merge(expert_files, data, seed=cfg.env_seed)
        tok_dir = tdir / "tokenizer"
        if not (tok_dir / "tokenizer.json").exists():
            self._train_tokenizer(data, tok_dir)
        init = tdir / "init"
        if not (init / "config.json").exists():
            from agentdistill.modeling import causal_lm_config
            from agentdistill.modeling import load_tokenizer as _lt

            conf = causal_lm_config(
                len(_lt(tok_dir)),
                hidden_size=tspec.hidden_size,
                num_layers=tspec.num_layers,
                num_heads=tspec.num_heads,
                intermediate_size=tspec.intermediate_size,
                max_position_embeddings=tspec.max_position_embeddings,
                arch=tspec.arch,
            )
            conf.save_pretrained(init)
        mdir = self.teacher_dir
        targs = teacher_training_args(cfg, str(mdir))
        distill(DistillArgs(data=str(data), student_config=str(init / "config.json"), tokenizer=str(tok_dir)), targs)
        _drop_checkpoints(mdir)
        from agentdistill.modeling import load_tokenizer

        info = {"params": _params(mdir), "longest_turn": longest_turn(data, load_tokenizer(tok_dir))}
        mark(self.root, "teacher", model_files(mdir), info)
        self._done_stage("teacher", time.time() - t0, params=info["params"])

    def _train_tokenizer(self, data: Path, tok_dir: Path) -> None:
        from agentdistill.formats import get_format
        from agentdistill.masks import text_pieces
        from agentdistill.testing import train_bpe_tokenizer
        from agentdistill.trajectory import read_trajectories

        texts = []
        for t in read_trajectories(data):  # trained on the pieces training encodes, never across a span boundary
            texts += text_pieces(*get_format(t.text_format).render(t.prompt, t.steps))
        tok = train_bpe_tokenizer(texts, vocab_size=self.cfg.teacher.vocab_size)
        tmp = tok_dir.with_name(tok_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(tmp)
        shutil.rmtree(tok_dir, ignore_errors=True)
        tmp.rename(tok_dir)

    # ------------------------------------------------------------------ policy
    def _policy(self, model_dir: Path, spec: Any) -> Any:
        """The agent for the collect or evaluate stage, on ``spec.device`` in ``spec.torch_dtype``."""
        from agentdistill.agent import AgentConfig, HFPolicy

        cfg = AgentConfig(max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size)
        return HFPolicy.from_pretrained(model_dir, cfg, spec.device, spec.torch_dtype)

    # ------------------------------------------------------------------ 2. collect
    def stage_collect(self) -> None:
        cfg = self.cfg
        data = self.root / "collect" / "train.jsonl"
        info = check(self.root, "collect", {"teacher": self.teacher_id()})
        if info:
            _stage(2, "collect", f"done ({info['trajectories']} trajectories)")
            return
        _stage(2, "collect", f"teacher on {cfg.collect.episodes or 'all'} train tasks per env")
        for note in self._turn_notes():
            print(f"   warning: {note}")
        from agentdistill.collect import CollectArgs, collect

        t0 = time.time()
        policy = self._policy(self.teacher_dir, cfg.collect)
        files, per_env = [], {}
        for env in cfg.envs:
            # every attempt is written (the sidecar makes reruns resume); the merge below keeps the successes
            out = self.root / "collect" / f"{env}.jsonl"
            _drop_if_corrupt(out)
            args = CollectArgs(
                env=env,
                agent=str(self.teacher_dir),
                split="train",
                episodes=cfg.collect.episodes,
                out=str(out),
                only_success=False,
                batch_size=cfg.collect.batch_size,
                max_new_tokens=cfg.collect.max_new_tokens,
                max_steps=cfg.collect.max_steps,
                env_seed=cfg.env_seed,
                device=cfg.collect.device,
                torch_dtype=cfg.collect.torch_dtype,
            )
            collect(args, policy=policy)
            rows = read_jsonl_tolerant(out)
            per_env[env] = {"attempted": len(rows), "success": sum(bool(r.get("success")) for r in rows)}
            print(f"   {env}: teacher solved {per_env[env]['success']}/{per_env[env]['attempted']} train tasks")
            files.append(out)
        solved = sum(v["success"] for v in per_env.values())
        keep_failed = not cfg.collect.only_success or solved < cfg.collect.min_success
        notes = []
        if cfg.collect.only_success and keep_failed:
            notes.append(
                f"the teacher solved only {solved} train task(s) (< collect.min_success {cfg.collect.min_success}), "
                "so its failed trajectories were kept too: the students imitate an incompetent teacher"
            )
            print(f"   warning: {notes[-1]}")
        n = _merge(files, data, seed=cfg.env_seed, keep=None if keep_failed else lambda r: bool(r.get("success")))
        if n == 0:
            raise ConfigError(
                f"{data}: the teacher solved 0 train tasks, nothing to distill; train the teacher longer "
                "(teacher.train.max_steps), use a stronger --teacher, or set collect.min_success / only_success"
            )
        info = {"trajectories": n, "per_env": per_env, "kept_failed": keep_failed, "notes": notes}
        mark(self.root, "collect", [data], info, {"teacher": self.teacher_id()})
        self._done_stage("collect", time.time() - t0, trajectories=n, per_env=per_env, kept_failed=keep_failed)

    # ------------------------------------------------------------------ 3. distill
    def _init_student(self, size: StudentSize, seed: int) -> Path:
        """Initial weights of (size, seed), saved once so every method starts from them."""
        from transformers import AutoConfig, AutoModelForCausalLM

        from agentdistill.modeling import load_tokenizer

        init = self.root / "students" / f"{size.name}-s{seed}"
        if check(self.root, f"init-{size.name}-s{seed}", {"teacher": self.teacher_id()}):
            return init
        import torch

        conf = student_config(AutoConfig.from_pretrained(str(self.teacher_dir)), size)
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(conf)
        tmp = init.with_name(init.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        load_tokenizer(self.teacher_dir).save_pretrained(tmp)
        shutil.rmtree(init, ignore_errors=True)
        tmp.rename(init)
        mark(self.root, f"init-{size.name}-s{seed}", model_files(init), deps={"teacher": self.teacher_id()})
        return init

    def _cell_deps(self, size: StudentSize, seed: int) -> dict[str, Any]:
        return {
            "data": digest(self.root, "collect"),
            "init": digest(self.root, f"init-{size.name}-s{seed}"),
            "teacher": self.teacher_id(),
        }

    def stage_distill(self) -> None:
        cells = self.cells()
        d = self.cfg.distill
        inits = {(s.name, seed): self._init_student(s, seed) for seed in d.seeds for s in d.sizes}
        todo = [
            c
            for c in cells
            if not check(self.root, f"cell-{cell_key(c[0], c[1].name, c[2])}", self._cell_deps(c[1], c[2]))
        ]
        _stage(3, "distill", f"{len(cells)} cell(s) (method × size × seed), {len(todo)} to train")
        if not todo:
            return
        from agentdistill.distill import DistillArgs, distill

        t0 = time.time()
        data = self.root / "collect" / "train.jsonl"
        for i, (method, size, seed) in enumerate(todo, 1):
            key = cell_key(method, size.name, seed)
            print(f"-- cell {i}/{len(todo)}: {key}", flush=True)
            init = inits[(size.name, seed)]
            out = self.root / "distill" / key
            args = cell_training_args(self.cfg, method, str(out), seed)
            teacher = None if args.loss == "sft" else str(self.teacher_dir)
            distill(DistillArgs(data=str(data), teacher=teacher, student=str(init)), args)
            _drop_checkpoints(out)
            mark(
                self.root,
                f"cell-{key}",
                [*model_files(out), out / "train_log.jsonl"],
                deps=self._cell_deps(size, seed),
            )
        self._write_manifest()  # student parameter counts are known now
        self._done_stage("distill", time.time() - t0 + self.stage_seconds.get("distill", {}).get("seconds", 0))

    # ------------------------------------------------------------------ 4. evaluate
    def _eval_deps(self, key: str, env: str) -> dict[str, Any]:
        if key == "teacher":
            return {"model": self.teacher_id()}
        return {"model": digest(self.root, f"cell-{key}"), "reference": digest(self.root, f"eval-teacher-{env}")}

    def _evaluate(self, key: str, model_dir: Path, reference: bool) -> None:
        from agentdistill.evaluate import EvalArgs, evaluate

        ecfg = self.cfg.evaluate
        policy = None
        for env in self.cfg.envs:
            if check(self.root, f"eval-{key}-{env}", self._eval_deps(key, env)):
                continue
            out = self.eval_path(key, env)
            if policy is None:
                policy = self._policy(model_dir, ecfg)
            ref = self.eval_path("teacher", env).with_name(f"{env}.trajectories.jsonl") if reference else None
            args = EvalArgs(
                model=str(model_dir),
                env=env,
                split=ecfg.split,
                episodes=ecfg.episodes,
                reference=str(ref) if ref else None,
                out=str(out),
                batch_size=ecfg.batch_size,
                max_new_tokens=ecfg.max_new_tokens,
                max_steps=ecfg.max_steps,
                env_seed=self.cfg.env_seed,
                cot_matcher=ecfg.cot_matcher,
                cot_threshold=ecfg.cot_threshold,
                device=ecfg.device,
                torch_dtype=ecfg.torch_dtype,
            )
            m = evaluate(args, policy=policy)["overall"]
            print(
                f"   {key} on {env}: success {m.get('success_rate', 0):.1f}%, steps {m.get('steps', 0):.1f}, "
                f"CoT match {m.get('cot_match_rate') if m.get('cot_match_rate') is not None else '—'}"
            )
            mark(
                self.root,
                f"eval-{key}-{env}",
                [out, out.with_name(f"{env}.trajectories.jsonl")],
                deps=self._eval_deps(key, env),
            )

    def stage_evaluate(self) -> None:
        cfg = self.cfg
        keys = ["teacher"] + [cell_key(m, s.name, seed) for m, s, seed in self.cells()]
        n = sum(not check(self.root, f"eval-{k}-{e}", self._eval_deps(k, e)) for k in keys for e in cfg.envs)
        _stage(4, "evaluate", f"{len(keys)} model(s) × {len(cfg.envs)} env(s) on {cfg.evaluate.split}, {n} to run")
        t0 = time.time()
        # the teacher first: its trajectories are the reference for the students' CoT match
        self._evaluate("teacher", self.teacher_dir, reference=False)
        for m, s, seed in self.cells():
            key = cell_key(m, s.name, seed)
            self._evaluate(key, self.root / "distill" / key, reference=True)
        if n:
            self._done_stage("evaluate", time.time() - t0)

    # ------------------------------------------------------------------ 5. report
    def stage_report(self) -> dict[str, Any]:
        from agentdistill.report import build_report, format_tables

        _stage(5, "report", f"{self.root / 'results.md'}")
        self._write_manifest()
        results = build_report(self.root)
        print(format_tables(results))
        return results


def _method_settings(cfg: RunConfig, method: str) -> dict[str, Any]:
    a = cell_training_args(cfg, method, "/tmp/agentdistill-manifest", cfg.distill.seeds[0])
    return {
        "loss": a.loss,
        "lambda_reason": a.lambda_reason,
        "lambda_act": a.lambda_act,
        "curriculum": a.curriculum,
        "divergence": a.divergence,
    }


def _first_diff(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            d = _first_diff(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
            if d:
                return d
        return None
    return None if a == b else (path or "<root>")


def _merge(files: list[Path], out: Path, seed: int, keep: Any = None) -> int:
    """Concatenate JSONL trajectory files into ``out`` (atomically), in a seeded shuffled order;
    ``keep(row) -> bool`` filters the rows."""
    rows = [r for f in files for r in read_jsonl_tolerant(f) if keep is None or keep(r)]
    random.Random(seed).shuffle(rows)
    atomic_write_jsonl(out, rows)
    return len(rows)


def _drop_if_corrupt(path: Path) -> None:
    """A resumable JSONL output whose lines before the last do not parse was damaged, not interrupted:
    delete it (and its ``.attempted`` sidecar) so it is redone rather than silently read around."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines[:-1], 1):
        try:
            json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d is corrupted (not an interrupted write); redoing this file", path, i)
            path.unlink()
            path.with_name(path.name + ".attempted").unlink(missing_ok=True)
            return


def _drop_checkpoints(out: Path) -> None:
    """A finished training's checkpoints are only needed to resume it: remove them."""
    for ck in out.glob("checkpoint-*"):
        shutil.rmtree(ck, ignore_errors=True)


def run_from_cli(
    preset: str | None,
    config: str | None,
    envs: str | None,
    teacher: str | None,
    sets: list[str],
    out: str,
    force: list[str],
    stop_after: str | None = None,
) -> dict[str, Any]:
    from agentdistill.runconfig import load_run_config

    cfg = load_run_config(preset, config, envs, teacher, sets)
    command = "agentdistill " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("agentdistill") else ""
    return Pipeline(
        cfg,
        out,
        command=command or f"agentdistill run --preset {preset or 'quick'} --out {out}",
        preset=preset or "quick",
    ).run(force, stop_after)


__all__ = ["METHODS", "STAGES", "Pipeline", "parse_run_config", "run_from_cli"]

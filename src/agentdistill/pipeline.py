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
    teacher_signal/<key>-top<K>-t<τ>.safetensors  the cached teacher signal all cells share (cached runs)
    distill/<method>__<size>__s<seed>/  one trained student (checkpoints while training)
    eval/<teacher|cell>/<env>.json  (+ <env>.trajectories.jsonl)
    results.md  results.json  plots/

Each stage is one short method; the work lives in the modules it calls: ``embedded_teacher`` (1),
``collect`` (2), ``students`` and ``distill`` (3), ``evaluate`` (4), ``report`` (5). ``markers`` says
what is done, ``manifest`` records the run (``run.yaml``, ``versions.json``, ``manifest.json``).
"""

import hashlib
import json
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentdistill.checkpoints import drop_checkpoints
from agentdistill.errors import ConfigError
from agentdistill.files import drop_if_corrupt, exclusive_lock, merge_jsonl, read_jsonl_tolerant, remove_stale_temps
from agentdistill.manifest import cell_key, cells, check_config, eval_path, teacher_dir, turn_notes, write_manifest
from agentdistill.markers import check, digest, mark, model_files, unmark
from agentdistill.runconfig import RunConfig, StudentSize, cell_training_args
from agentdistill.students import init_student

STAGES = ("teacher", "collect", "distill", "evaluate", "report")
# what `--force STAGE` removes: the prefix of the stage's markers and the folder of its outputs
_OUTPUTS = {"teacher": ("teacher", "teacher/model"), "collect": ("collect", "collect"),
            "distill": ("cell", "distill"), "evaluate": ("eval", "eval")}  # fmt: skip


def _stage(i: int, name: str, what: str) -> None:
    print(f"\n== [{i}/{len(STAGES)}] {name}: {what}", flush=True)


class Pipeline:
    """One run directory and its stages. ``run()`` does what is not yet done.

    Each ``stage_<name>`` method skips what its markers say is done and returns what the manifest records of
    the work it did (``None`` when there was none); ``run`` times it and rewrites the manifest after it.
    """

    def __init__(self, cfg: RunConfig, out: str | Path, command: str = "", preset: str | None = None) -> None:
        self.cfg, self.root, self.command, self.preset = cfg, Path(out), command, preset
        self.teacher_dir = teacher_dir(self.root, cfg)
        self.stage_seconds: dict[str, dict[str, Any]] = {}

    def teacher_id(self) -> Any:
        """What the teacher's dependents depend on: the embedded teacher's fingerprint, or the user's name."""
        return {"model": self.cfg.teacher.model} if self.cfg.teacher.model else digest(self.root, "teacher")

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
        with exclusive_lock(self.root / "run.yaml", "run"):  # a second run on the same --out is refused
            return self._run(first_forced, stop_after)

    def _run(self, first_forced: int | None, stop_after: str | None) -> dict[str, Any]:
        # Temporary files of atomic writes a kill left behind: no writer of this run is alive (we hold its lock).
        remove_stale_temps(self.root)
        check_config(self.root, self.cfg, forced=first_forced is not None)
        if first_forced is not None:  # a forced stage invalidates the stages after it
            for s in STAGES[first_forced:]:
                print(f"--force: redoing {s}")
                self._invalidate(s)
        t_all = time.time()
        self._write_manifest()
        for name in STAGES[:-1]:
            t0 = time.time()
            done = getattr(self, f"stage_{name}")()
            if done is not None:
                self.stage_seconds[name] = {"seconds": round(time.time() - t0, 1), **done}
            self._write_manifest()  # the stage's time and what it made (parameter counts) are on record now
            if name == stop_after:
                print(
                    f"\nstopped after {name} (--stop_after) in {time.time() - t_all:.0f} s; rerun without it to go on"
                )
                return {}
        results = self.stage_report()
        print(f"\nrun finished in {time.time() - t_all:.0f} s; report: {self.root / 'results.md'}")
        return results

    def _write_manifest(self) -> dict[str, Any]:
        return write_manifest(self.root, self.cfg, self.preset, self.command, self.stage_seconds)

    def _invalidate(self, stage: str) -> None:
        if stage not in _OUTPUTS:
            return
        prefix, folder = _OUTPUTS[stage]
        unmark(self.root, prefix)
        if not (stage == "teacher" and self.cfg.teacher.model):
            shutil.rmtree(self.root / folder, ignore_errors=True)

    # ------------------------------------------------------------------ 1. teacher
    def stage_teacher(self) -> dict[str, Any] | None:
        cfg = self.cfg
        if cfg.teacher.model:
            _stage(1, "teacher", f"using {cfg.teacher.model}")
            from agentdistill.modeling import load_tokenizer

            load_tokenizer(cfg.teacher.model)  # fails now, with a clear message, if it is not a model
            return None
        if check(self.root, "teacher"):
            _stage(1, "teacher", f"done ({self.teacher_dir})")
            return None
        _stage(1, "teacher", f"embedded: SFT of a {cfg.teacher.arch} on expert trajectories of {', '.join(cfg.envs)}")
        from agentdistill.embedded_teacher import train_embedded_teacher

        info = train_embedded_teacher(cfg, self.root / "teacher")
        mark(self.root, "teacher", model_files(self.teacher_dir), info)
        return {"params": info["params"]}

    # ------------------------------------------------------------------ policy
    def _policy(self, model_dir: Path, spec: Any) -> Any:
        """The agent for the collect or evaluate stage: loaded once for all envs, with the section's settings."""
        return spec.load_policy(model_dir)

    # ------------------------------------------------------------------ 2. collect
    def stage_collect(self) -> dict[str, Any] | None:
        cfg = self.cfg
        data = self.root / "collect" / "train.jsonl"
        info = check(self.root, "collect", {"teacher": self.teacher_id()})
        if info:
            _stage(2, "collect", f"done ({info.get('trajectories', '?')} trajectories)")
            return None
        _stage(2, "collect", f"teacher on {cfg.collect.episodes or 'all'} train tasks per env")
        for note in turn_notes(self.root, cfg):
            print(f"   warning: {note}")
        from agentdistill.collect import collect
        from agentdistill.runconfig import CollectArgs, stage_args

        policy = self._policy(self.teacher_dir, cfg.collect)
        files, per_env = [], {}
        for env in cfg.envs:
            # every attempt is written (the sidecar makes reruns resume); the merge below keeps the successes
            out = self.root / "collect" / f"{env}.jsonl"
            drop_if_corrupt(out, keys=("id", "steps"))  # else collect would refuse it (not a trajectory file)
            drop_if_corrupt(out.with_name(out.name + ".attempted"), keys=("id",))
            args = stage_args(
                CollectArgs,
                cfg.collect,
                env=env,
                agent=str(self.teacher_dir),
                split="train",
                out=str(out),
                only_success=False,
                **cfg.env_options(env),
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
        n = merge_jsonl(files, data, seed=cfg.env_seed, keep=None if keep_failed else lambda r: bool(r.get("success")))
        if n == 0:
            raise ConfigError(
                f"{data}: the teacher solved 0 train tasks, nothing to distill; train the teacher longer "
                "(teacher.train.max_steps), use a stronger --teacher, or set collect.min_success / only_success"
            )
        info = {"trajectories": n, "per_env": per_env, "kept_failed": keep_failed, "notes": notes}
        mark(self.root, "collect", [data], info, {"teacher": self.teacher_id()})
        return {k: v for k, v in info.items() if k != "notes"}

    # ------------------------------------------------------------------ 3. distill
    def _init_student(self, size: StudentSize, seed: int) -> Path:
        """Initial weights of (size, seed), saved once so every method starts from them."""
        name, init = f"init-{size.name}-s{seed}", self.root / "students" / f"{size.name}-s{seed}"
        if not check(self.root, name, {"teacher": self.teacher_id()}):
            init_student(self.teacher_dir, size, seed, init)
            mark(self.root, name, model_files(init), deps={"teacher": self.teacher_id()})
        return init

    def _cell_deps(self, size: StudentSize, seed: int) -> dict[str, Any]:
        return {
            "data": digest(self.root, "collect"),
            "init": digest(self.root, f"init-{size.name}-s{seed}"),
            "teacher": self.teacher_id(),
        }

    def _teacher_signal_file(self, args: Any) -> Path:
        """The cached teacher signal every cell with ``--teacher_signal cached`` shares: one teacher pass for
        the run's data, named by what it depends on (data, teacher, top-k, τ); caches for older data or
        another teacher are deleted."""
        deps = json.dumps([digest(self.root, "collect"), self.teacher_id()], sort_keys=True)
        key = hashlib.sha256(deps.encode()).hexdigest()[:16]
        folder = self.root / "teacher_signal"
        for old in folder.glob("*.safetensors") if folder.is_dir() else []:
            if not old.name.startswith(key):
                old.unlink()
        return folder / f"{key}-top{args.cache_topk}-t{args.temperature:g}.safetensors"

    def stage_distill(self) -> dict[str, Any] | None:
        every = cells(self.cfg)
        inits = {(s.name, seed): self._init_student(s, seed) for _, s, seed in every}
        todo = [
            (m, s, seed)
            for m, s, seed in every
            if not check(self.root, f"cell-{cell_key(m, s.name, seed)}", self._cell_deps(s, seed))
        ]
        _stage(3, "distill", f"{len(every)} cell(s) (method × size × seed), {len(todo)} to train")
        if not todo:
            return None
        from agentdistill.distill import DistillArgs, distill

        data = self.root / "collect" / "train.jsonl"
        for i, (method, size, seed) in enumerate(todo, 1):
            key = cell_key(method, size.name, seed)
            print(f"-- cell {i}/{len(todo)}: {key}", flush=True)
            init = inits[(size.name, seed)]
            out = self.root / "distill" / key
            args = cell_training_args(self.cfg, method, str(out), seed)
            if args.teacher_signal == "cached" and args.teacher_cache is None:
                args.teacher_cache = str(self._teacher_signal_file(args))
            teacher = None if args.loss == "sft" else str(self.teacher_dir)
            distill(DistillArgs(data=str(data), teacher=teacher, student=str(init)), args)
            drop_checkpoints(out)
            mark(
                self.root,
                f"cell-{key}",
                [*model_files(out), out / "train_log.jsonl"],
                deps=self._cell_deps(size, seed),
            )
        return {}

    # ------------------------------------------------------------------ 4. evaluate
    def _eval_deps(self, key: str, env: str) -> dict[str, Any]:
        if key == "teacher":
            return {"model": self.teacher_id()}
        return {"model": digest(self.root, f"cell-{key}"), "reference": digest(self.root, f"eval-teacher-{env}")}

    def _evaluate(self, key: str, model_dir: Path, reference: bool) -> None:
        from agentdistill.evaluate import evaluate
        from agentdistill.runconfig import EvalArgs, stage_args

        ecfg = self.cfg.evaluate
        policy = None
        for env in self.cfg.envs:
            if check(self.root, f"eval-{key}-{env}", self._eval_deps(key, env)):
                continue
            out = eval_path(self.root, key, env)
            if policy is None:
                policy = self._policy(model_dir, ecfg)
            ref = eval_path(self.root, "teacher", env).with_name(f"{env}.trajectories.jsonl") if reference else None
            args = stage_args(
                EvalArgs,
                ecfg,
                model=str(model_dir),
                env=env,
                reference=str(ref) if ref else None,
                out=str(out),
                **self.cfg.env_options(env),
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

    def stage_evaluate(self) -> dict[str, Any] | None:
        cfg = self.cfg
        keys = ["teacher"] + [cell_key(m, s.name, seed) for m, s, seed in cells(cfg)]
        n = sum(not check(self.root, f"eval-{k}-{e}", self._eval_deps(k, e)) for k in keys for e in cfg.envs)
        _stage(4, "evaluate", f"{len(keys)} model(s) × {len(cfg.envs)} env(s) on {cfg.evaluate.split}, {n} to run")
        # the teacher first: its trajectories are the reference for the students' CoT match
        self._evaluate("teacher", self.teacher_dir, reference=False)
        for key in keys[1:]:
            self._evaluate(key, self.root / "distill" / key, reference=True)
        return {} if n else None

    # ------------------------------------------------------------------ 5. report
    def stage_report(self) -> dict[str, Any]:
        from agentdistill.report import build_report, format_tables

        _stage(5, "report", f"{self.root / 'results.md'}")
        results = build_report(self.root)
        print(format_tables(results))
        return results


__all__ = ["STAGES", "Pipeline"]

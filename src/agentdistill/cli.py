"""The ``agentdistill`` command line: one thin subcommand per stage, each calling one library function.

agentdistill --help
agentdistill segment trajs.jsonl --out segmented.jsonl --show
agentdistill distill --teacher T --student S --data trajs.jsonl --loss sad --out DIR
"""

import argparse
import contextlib
import errno
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agentdistill.errors import AgentDistillError, ConfigError

if TYPE_CHECKING:
    from agentdistill.runconfig import RunConfig

COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("the main job: teacher -> collect -> distill -> evaluate -> report, resumable", "cmd_run"),
    "segment": ("split trajectories into reason/act spans (JSONL out, --show to view)", "cmd_segment"),
    "distill": ("train a student against a teacher (sad | token-kd | sft)", "cmd_distill"),
    "configs": ("list, show, copy or validate the run presets (smoke, quick, paper, teacher)", "cmd_configs"),
    "envs": ("list the environments: splits, sizes, step limits, task types", "cmd_envs"),
    "collect": ("run a teacher (model or expert) in an env and save its trajectories", "cmd_collect"),
    "evaluate": (
        "run a model as an agent and report success, reasoning length, CoT match, steps, latency",
        "cmd_evaluate",
    ),
    "play": (
        "play a task yourself, typing what the agent would (see what your agent faces)",
        "agentdistill.play:main",
    ),
    "report": ("rebuild a run's results table and plots from what is on disk", "agentdistill.report:main"),
    "prune": ("make a student from a teacher by keeping some of its layers (then distill it)", "cmd_prune"),
    "serve-webshop": ("serve the embedded WebShop over HTTP with the real app's URLs and pages", "cmd_serve_webshop"),
    "make-games": (
        "generate a seeded set of TextWorld or ALFWorld games offline (for --env textworld / alfworld-tw)",
        "agentdistill.make_games:main",
    ),
}

_COLORS = {"reason": "\033[36m", "act": "\033[33m"}  # cyan reasoning, yellow actions, plain context
_RESET = "\033[0m"


def _usage() -> str:
    lines = ["usage: agentdistill COMMAND [options]   (agentdistill COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<13} {help_}" for name, (help_, _) in COMMANDS.items()]
    return "\n".join(lines)


def cmd_segment(argv: Sequence[str]) -> int:
    from agentdistill.files import atomic_write_jsonl, check_not_input, check_output_path
    from agentdistill.formats import FORMATS
    from agentdistill.segment import segment
    from agentdistill.trajectory import BadRecord, iter_numbered_records

    p = argparse.ArgumentParser(
        prog="agentdistill segment", description="Split trajectories into reasoning and action spans."
    )
    p.add_argument("data", help="trajectory JSONL (structured records, raw transcripts or chat messages)")
    p.add_argument("--out", help="segmented JSONL: {id, format, text, spans: [{type, start, end}]}")
    p.add_argument(
        "--format", default="auto", choices=["auto", *FORMATS], help="transcript format (a record's own format wins)"
    )
    p.add_argument(
        "--show", action="store_true", help="print each transcript with reason (cyan) / act (yellow) coloured"
    )
    p.add_argument("--skip_bad", "--skip-bad", action="store_true", help="skip malformed records and report the count")
    p.add_argument("--tokenizer", help="tokenizer whose chat_template renders chat records (default: ChatML)")
    a = p.parse_args(argv)
    if not a.out and not a.show:
        raise ConfigError("nothing to do: pass --out FILE and/or --show")
    if a.out:
        check_output_path(a.out)
        check_not_input(a.out, a.data)
    _check_models(tokenizer=a.tokenizer)
    tokenizer = None
    if a.tokenizer:
        from agentdistill.modeling import load_tokenizer

        tokenizer = load_tokenizer(a.tokenizer)
    bad: list[BadRecord] = []
    records = list(iter_numbered_records(a.data, skip_bad=a.skip_bad, bad=bad))
    rows = []
    for lineno, rec in records:
        try:
            seg = segment(rec, fmt=a.format, tokenizer=tokenizer)
        except AgentDistillError as e:  # the message names the record and its line
            if not a.skip_bad:
                raise AgentDistillError(f"{a.data}: {e}; fix it or pass --skip_bad") from None
            bad.append(BadRecord(a.data, lineno, str(e)))
            continue
        rows.append(seg.to_json())
        if a.show:
            print(_render_colored(seg.text, seg.spans))
            n_r = sum(s.kind.value == "reason" for s in seg.spans)
            print(f"--- {seg.id} [{seg.format}]: {n_r} reason span(s), {len(seg.spans) - n_r} act span(s)\n")
    if a.out:
        atomic_write_jsonl(a.out, rows)
        print(f"wrote {len(rows)} record(s) to {a.out}" + (f"; skipped {len(bad)} bad record(s)" if bad else ""))
    elif bad:
        print(f"skipped {len(bad)} bad record(s)")
    return 0


def _render_colored(text: str, spans: Sequence) -> str:
    out, pos = [], 0
    for s in spans:
        out.append(text[pos : s.start])
        out.append(_COLORS[s.kind.value] + text[s.start : s.end] + _RESET)
        pos = s.end
    out.append(text[pos:])
    return "".join(out)


def _check_models(**flags: str | None) -> None:
    """A local-looking model path that does not exist is an error now, not after data loading and 30 s of
    hub retries (``modeling.check_model_path``), and so is a model directory whose config or weights do not
    read (``modeling.check_model_dir``)."""
    from agentdistill.modeling import check_model_dir, check_model_path

    for flag, value in flags.items():
        if value:
            check_model_path(value, f"--{flag}")
            if flag not in ("tokenizer", "student_config"):  # a model: its config and weights must read
                check_model_dir(value, f"--{flag}")


def _parse_with_config(parser: "argparse.ArgumentParser", argv: list[str], dataclasses: Sequence[type]) -> tuple:
    """Parse ``argv`` into ``dataclasses`` with ``--config YAML`` values as defaults (strict keys)."""
    from agentdistill.config import check_keys, check_value, field_types, read_yaml

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, rest = pre.parse_known_args(argv)
    if known.config:
        data = read_yaml(known.config)
        types = {k: t for d in dataclasses for k, t in field_types(d).items()}
        check_keys(data, types, known.config)
        for k, v in data.items():  # argparse never converts a non-string default: check it here
            try:
                data[k] = check_value(v, types[k], k)
            except ConfigError as e:
                raise ConfigError(f"{known.config}: {e}") from None
        parser.set_defaults(**data)
    try:
        return parser.parse_args_into_dataclasses(args=rest)
    except ValueError as e:  # TrainingArguments' own validation: a user error, one line
        raise ConfigError(str(e).strip().splitlines()[0]) from None


def _group_help(parser: argparse.ArgumentParser, stage: str, dataclasses_: Sequence[type]) -> None:
    """Make ``--help`` list the stage's own options first, one heading per dataclass, and last, under its own
    heading, what a dataclass inherits (``DistillConfig``: every ``TrainingArguments`` flag).

    A field a dataclass redeclares (a default of ours) counts as its own, after its new ones, and so do the fields
    of a mixin base (any base but the last). Only the help
    changes: argparse groups share the parser's actions, so moving an action between groups
    (``_group_actions``, which ``HfArgumentParser`` offers no public way to choose) leaves parsing as it was.
    """
    import dataclasses

    def move(title: str, names: list[str]) -> None:
        group = parser.add_argument_group(title)
        for action in [a for n in names for a in parser._actions if a.dest == n]:  # a bool's --no_x shares its dest
            for g in parser._action_groups:
                if action in g._group_actions:
                    g._group_actions.remove(action)
            group._group_actions.append(action)

    inherited: dict[str, list[str]] = {}
    for dc in dataclasses_:
        # the chain of its last direct base; the fields of other bases (mixins: ``EnvSource``) count as its own
        bases = [
            b for b in reversed(dc.__mro__[1:]) if dataclasses.is_dataclass(b) and issubclass(dc.__bases__[-1], b)
        ]
        base_fields = {name: f for b in bases for name, f in b.__dataclass_fields__.items()}
        new = [f.name for f in dataclasses.fields(dc) if f.name not in base_fields]
        own = new + [f.name for f in dataclasses.fields(dc) if f.name in base_fields and base_fields[f.name] is not f]
        move(f"{stage} options ({dc.__name__})", own)
        if bases:
            base = bases[-1]
            title = f"options inherited from {base.__module__.split('.')[0]}.{base.__name__}"
            inherited.setdefault(title, []).extend(f.name for f in dataclasses.fields(dc) if f.name not in own)
    for title, names in inherited.items():
        move(title, names)


def cmd_distill(argv: Sequence[str]) -> int:
    from transformers import HfArgumentParser

    from agentdistill.distill import DistillArgs, distill
    from agentdistill.files import check_output_path
    from agentdistill.trainer import DistillConfig

    parser = HfArgumentParser(
        (DistillArgs, DistillConfig),
        prog="agentdistill distill",
        usage="%(prog)s --data FILE --student DIR [--teacher DIR] [--loss sad|token-kd|sft] --out DIR [options]",
        description="Distil a teacher agent into a student (Structured Agent Distillation, arXiv 2505.13820). "
        "Options may also come from --config cfg.yaml; flags win over the file. --out is --output_dir.",
    )
    parser.add_argument("--config", help="YAML file of option: value (any flag below, without dashes)")
    _group_help(parser, "distill", (DistillArgs, DistillConfig))
    argv = ["--output_dir" if x == "--out" else x for x in argv]
    dargs, cfg = _parse_with_config(parser, argv, (DistillArgs, DistillConfig))[:2]
    check_output_path(cfg.output_dir, kind="dir")
    _check_models(
        teacher=dargs.teacher, student=dargs.student, student_config=dargs.student_config, tokenizer=dargs.tokenizer
    )
    out = distill(dargs, cfg)
    log = Path(out) / "train_log.jsonl"
    last = log.read_text().splitlines()[-1] if log.exists() and log.read_text().strip() else "{}"
    print(f"student saved to {out}; last log: {json.loads(last)}")
    return 0


def cmd_envs(argv: Sequence[str]) -> int:
    from agentdistill.envs import ENVS, make_env

    argparse.ArgumentParser(prog="agentdistill envs", description="List the embedded environments.").parse_args(argv)
    for name in ENVS:
        if name == "webshop-http":  # a client: its tasks are the server's
            print(f"{name:<12} format=webshop  max_steps=15  splits: the server's (--webshop_url URL)")
            print(f"{'':<12} agentdistill serve-webshop serves the embedded shop; WebShop's own app works too")
            continue
        try:
            env = make_env(name)
        except ConfigError as e:  # a real engine without its package or games
            print(f"{name:<12} not ready: {e}")
            continue
        sizes = ", ".join(f"{k} {v}" for k, v in env.splits().items())
        print(f"{name:<12} format={env.format:<8} max_steps={env.max_steps:<3} splits: {sizes}")
        print(f"{'':<12} task types: {', '.join(env.task_types)}")
    return 0


def _stage_args(dataclass_: type, prog: str, description: str, argv: Sequence[str]) -> object:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_, prog=prog, description=description)
    parser.add_argument("--config", help="YAML file of option: value; flags win over the file")
    _group_help(parser, prog.split()[-1], (dataclass_,))
    return _parse_with_config(parser, list(argv), (dataclass_,))[0]


def cmd_collect(argv: Sequence[str]) -> int:
    from agentdistill.collect import collect
    from agentdistill.files import check_output_path
    from agentdistill.runconfig import CollectArgs

    args = _stage_args(
        CollectArgs, "agentdistill collect", "Collect teacher trajectories (appends and resumes).", argv
    )
    check_output_path(args.out)
    _check_models(agent=None if args.agent == "expert" else args.agent)
    stats = collect(args)
    print(f"{args.out}: {stats}")
    return 0


def cmd_evaluate(argv: Sequence[str]) -> int:
    from agentdistill.evaluate import EvalArgs, evaluate

    args = _stage_args(EvalArgs, "agentdistill evaluate", "Evaluate a model as an agent (DESIGN §6 metrics).", argv)
    if not args.model:
        raise ConfigError("--model is required: a model directory or hub name")
    from agentdistill.files import check_not_input, check_output_path

    check_output_path(args.out)
    check_not_input(args.out, args.reference)
    episodes = Path(args.out).with_name(Path(args.out).stem + ".trajectories.jsonl")  # written beside --out
    check_not_input(episodes, args.reference, flag="--out's episode file")
    _check_models(model=args.model)
    m = evaluate(args)["overall"]
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items()}))
    return 0


def cmd_prune(argv: Sequence[str]) -> int:
    from agentdistill.files import check_not_input, check_output_path

    p = argparse.ArgumentParser(
        prog="agentdistill prune",
        description="Depth-prune a causal LM: keep some of its decoder layers, copy embeddings, final norm and "
        "head, save it with the tokenizer (a student to distill: agentdistill distill --student OUT ...).",
    )
    p.add_argument("--teacher", required=True, help="model directory or hub name to prune")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--layers", help="indices of the layers to keep, e.g. 0,2,5")
    which.add_argument("--num_layers", type=int, help="keep this many layers, evenly spaced (first and last kept)")
    p.add_argument("--out", required=True, help="directory to write the student to")
    a = p.parse_args(argv)
    check_output_path(a.out, kind="dir")
    check_not_input(a.out, a.teacher)
    out = Path(a.out)
    if out.is_dir() and any(out.iterdir()) and not (out / "config.json").exists():  # replaced as a whole
        raise ConfigError(f"--out {a.out} holds files that are not a model; choose a new or empty directory")
    _check_models(teacher=a.teacher)
    if a.layers is not None:
        try:
            keep = [int(x) for x in a.layers.split(",")]
        except ValueError:
            raise ConfigError(f"--layers {a.layers!r}: give comma-separated layer indices, e.g. 0,2,5") from None
    from transformers import AutoConfig

    from agentdistill.students import check_keep, even_layers, prune_student

    n = AutoConfig.from_pretrained(a.teacher).num_hidden_layers  # checked before the weights are loaded
    keep = even_layers(n, a.num_layers) if a.layers is None else check_keep(keep, n)
    out = prune_student(a.teacher, keep, a.out)
    print(f"student with layers {keep} of {a.teacher} saved to {out}")
    return 0


def cmd_serve_webshop(argv: Sequence[str]) -> int:
    from agentdistill.envs.webshop.site import Shop, make_server

    p = argparse.ArgumentParser(
        prog="agentdistill serve-webshop",
        description="Serve the embedded WebShop with princeton-nlp/WebShop's URLs and page structure, for "
        "--env webshop-http --webshop_url http://HOST:PORT (or a browser: http://HOST:PORT/fixed_0). "
        "Session fixed_<i> plays goal i: test tasks are goals 0-499, dev 500-699, train from 1500.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=3000, help="port (WebShop's is 3000; 0 picks a free one)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed that fixes the catalog and the tasks (the env's env_seed)"
    )
    p.add_argument("--train_size", "--train-size", type=int, help="train tasks (default 3000; more are new tasks)")
    a = p.parse_args(argv)
    if not 0 <= a.port <= 65535:
        raise ConfigError(f"--port {a.port}: choose a port in 0-65535")
    from agentdistill.config import check_seed

    check_seed(a.seed, "--seed")  # the clients' --env_seed range: a server no client can match is refused
    shop = Shop(a.seed, a.train_size)
    try:
        server = make_server(shop, a.host, a.port)
    except OSError as e:
        raise ConfigError(
            f"cannot listen on {a.host}:{a.port} ({e.strerror}); pass another --port or --host"
        ) from None
    host, port = server.server_address[:2]
    print(f"serving the embedded WebShop (seed {a.seed}) at http://{host}:{port}; sessions {shop.describe()}")
    print(
        f"play it: agentdistill collect --env webshop-http --webshop_url http://{host}:{port} ... (Ctrl-C stops)",
        flush=True,  # the address is the first thing a script that started us reads
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_run(argv: Sequence[str]) -> int:
    from agentdistill.envs import SOURCE_HELP
    from agentdistill.files import check_output_path
    from agentdistill.pipeline import STAGES, Pipeline
    from agentdistill.runconfig import load_run_config, presets

    p = argparse.ArgumentParser(
        prog="agentdistill run",
        description="Run a whole SAD experiment: train or load a teacher, collect its trajectories, distil every "
        "method x student size x seed from the same initial weights, evaluate teacher and students as agents, and "
        "write results.md / results.json / plots. Rerunning the same command resumes: finished stages and cells are "
        "skipped (checked against their fingerprints), an interrupted training resumes from its last checkpoint.",
        epilog="Precedence: preset < --config < --envs/--teacher < --set. Example: agentdistill run --preset quick "
        "--out runs/demo --set distill.train.learning_rate=1e-3",
    )
    p.add_argument("--preset", default="quick", choices=sorted(presets()), help="base configuration (default quick)")
    p.add_argument("--config", help="YAML file deep-merged over the preset (agentdistill configs copy quick exp.yaml)")
    p.add_argument("--envs", help="comma-separated envs, e.g. alfworld,hotpotqa (default: the preset's)")
    p.add_argument("--teacher", help="your teacher: model directory or hub name (default: train the embedded one)")
    p.add_argument("--data", help=SOURCE_HELP["data"])
    p.add_argument("--questions", type=int, help=SOURCE_HELP["questions"])
    p.add_argument("--wiki", help=SOURCE_HELP["wiki"])
    p.add_argument("--webshop_url", "--webshop-url", help=SOURCE_HELP["webshop_url"])
    p.add_argument("--games", help=SOURCE_HELP["games"])
    p.add_argument(
        "--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="override one key, repeatable"
    )
    p.add_argument("--out", required=True, help="run directory, e.g. runs/demo (created; reruns resume)")
    p.add_argument(
        "--force",
        action="append",
        default=[],
        choices=[*STAGES, "all"],
        help="redo this stage and the ones after it (repeatable)",
    )
    p.add_argument(
        "--stop_after",
        "--stop-after",
        choices=STAGES[:-1],
        help="stop once this stage is done, e.g. `teacher` to check the teacher before training students "
        "(agentdistill evaluate --model RUN/teacher/model); rerun without it to go on",
    )
    a = p.parse_args(argv)
    check_output_path(a.out, kind="dir")
    if a.stop_after:  # a stage forced after the last one run would be deleted and not redone
        later = [f for f in a.force if f != "all" and STAGES.index(f) > STAGES.index(a.stop_after)]
        if later:
            raise ConfigError(
                f"--force {later[0]} with --stop_after {a.stop_after}: the run would stop before redoing "
                f"{later[0]}; drop one of them"
            )
    sources = [(k, getattr(a, k)) for k in SOURCE_HELP if getattr(a, k, None) is not None]
    sets = [f"{k}={json.dumps(v)}" for k, v in sources] + a.sets  # JSON is YAML: a path stays a string
    cfg = load_run_config(a.preset, a.config, a.envs, a.teacher, sets)
    _check_models(teacher=cfg.teacher.model)
    _check_run_envs(cfg)
    Pipeline(cfg, a.out, command=" ".join(["agentdistill", "run", *argv]), preset=a.preset).run(a.force, a.stop_after)
    return 0


def _check_run_envs(cfg: "RunConfig") -> None:
    """Build every env of the run with its sources (a missing data file, a server that does not answer) and,
    where the run trains the embedded teacher, take one expert step on its first train task (a server that
    hides its goals has no expert): a one-line error now, before any stage runs."""
    from agentdistill.envs import make_env
    from agentdistill.runconfig import CollectArgs

    for env_name in cfg.envs:
        sizes = {cfg.collect.train_size} | ({cfg.teacher.train_size} if cfg.teacher.model is None else set())
        for size in sizes - {None}:  # an env that does not generate its train tasks takes no train_size
            CollectArgs(env=env_name, train_size=size, **cfg.env_options(env_name)).env_kwargs()
        env = make_env(env_name, **CollectArgs(env=env_name, **cfg.env_options(env_name)).env_kwargs())
        for split in ("train", cfg.evaluate.split):  # an empty split (a data file without test questions) fails here
            if not env.task_ids(split):
                raise ConfigError(f"{env_name} has no {split} tasks with these sources; check --data / --games")
        if cfg.teacher.model is None:
            env.reset(env.task_ids("train")[0])
            env.expert_step()


def cmd_configs(argv: Sequence[str]) -> int:
    import shutil

    from agentdistill.files import check_output_path
    from agentdistill.runconfig import load_run_config, preset_path, presets

    p = argparse.ArgumentParser(prog="agentdistill configs", description="The shipped `run` presets.")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="list the presets")
    sh = sub.add_parser("show", help="print a preset")
    sh.add_argument("name")
    cp = sub.add_parser("copy", help="copy a preset to a file you can edit and pass to --config")
    cp.add_argument("name")
    cp.add_argument("dest")
    va = sub.add_parser("validate", help="check a config file (merged over --preset) without running it")
    va.add_argument("file")
    va.add_argument("--preset", default="quick")
    a = p.parse_args(argv)
    if a.action == "list":
        for name, path in presets().items():
            first = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
            print(f"{name:<8} {first}")
    elif a.action == "show":
        print(preset_path(a.name).read_text(encoding="utf-8"), end="")
    elif a.action == "copy":
        if Path(a.dest).exists():
            raise ConfigError(f"{a.dest} exists; choose another destination or delete it first")
        check_output_path(a.dest, "destination")
        shutil.copyfile(preset_path(a.name), a.dest)
        print(f"wrote {a.dest}; edit it and run: agentdistill run --config {a.dest} --out runs/NAME")
    else:
        cfg = load_run_config(a.preset, a.file)
        from agentdistill.manifest import cells

        n = len(cells(cfg))
        print(f"{a.file}: valid ({len(cfg.envs)} env(s), {n} distillation cell(s))")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from agentdistill import __version__

        print(f"agentdistill {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}\n{_usage()}", file=sys.stderr)
        return 2
    target = COMMANDS[argv[0]][1]
    if ":" in target:  # "package.module:function", for commands that live in their own module
        import importlib

        mod, func = target.split(":")
        handler: Callable[[Sequence[str]], int] = getattr(importlib.import_module(mod), func)
    else:
        handler = globals()[target]
    try:
        return handler(argv[1:])
    except AgentDistillError as e:
        if os.environ.get("AGENTDISTILL_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of our output left (`| head`): nothing is wrong here
        with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # the file system refused where no check came first (a full disk mid-run, a wrong path)
        if os.environ.get("AGENTDISTILL_DEBUG"):
            raise
        what = f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e).strip().splitlines()[0]
        hint = {
            errno.ENOSPC: "free some space and rerun the same command: it resumes",
            errno.EROFS: "choose a writable place",
            errno.EACCES: "choose a place you may write to",
            errno.EISDIR: "it is a directory where a file belongs; check the path",
            errno.ENOTDIR: "a part of it is a file where a directory belongs; check the path",
            errno.EEXIST: "something of another kind is in the way; check the path",
        }.get(e.errno, "check the path")
        print(f"error: {what}; {hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; rerun the same `agentdistill {argv[0]}` command to resume", file=sys.stderr)
        return 130

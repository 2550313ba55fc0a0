"""The ``report`` stage: tables and plots of a run directory, built only from the files on disk.

    agentdistill report runs/NAME

Reads ``RUN/manifest.json`` (written by ``agentdistill run``), every eval JSON and training log it
names, and writes ``results.json``, ``results.md`` and ``plots/*.png``. A missing or unreadable
file never stops the report: it is listed under ``missing`` and its cells show "—". Values are
mean ± sample std over seeds (``metrics.mean_std``); every success rate carries its 95 % confidence
interval, and SAD is compared with each baseline of its size by a paired test over the same test
tasks (``stats``), read from the episodes each evaluation wrote. Nothing is filled in that is not on disk.
"""

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentdistill import markers
from agentdistill.errors import ConfigError
from agentdistill.files import atomic_write_json, atomic_write_text, read_jsonl_tolerant
from agentdistill.metrics import mean_std
from agentdistill.plots import PLOTS, write_plots
from agentdistill.stats import paired_test, success_ci
from agentdistill.tables import fmt_stat, format_params, format_tables, markdown

METRICS = (
    "success_rate", "score", "reasoning_length", "cot_match_rate", "steps", "invalid_rate",
    "seconds_per_episode", "tokens_per_second", "em", "f1",
)  # fmt: skip
TIMING_KEYS = ["seconds_per_episode", "tokens_per_second"]  # wall-clock dependent: ignore when comparing runs
ABLATION_METRICS = ("success_rate", "reasoning_length", "cot_match_rate")
SHAPE_KEYS = ("params", "non_embedding_params", "num_layers")  # of a model, from the manifest
_SHORT = {"lambda_reason": "λ_r", "lambda_act": "λ_a"}
# Below this teacher test success (%) on an env, the report warns that its students' rows say little
# about the method (the bar the embedded teacher is held to; see README "Results").
TEACHER_BAR = 80.0


# ---------------------------------------------------------------- reading


def comparable(results: dict) -> dict:
    """``results.json`` without what differs between identical runs: the wall-clock fields
    (``timing_keys``) and the ``run`` record (command, paths, machine)."""
    timing = set(results["timing_keys"])

    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in timing}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return strip({k: v for k, v in results.items() if k != "run"})


def _num(v: Any) -> float | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 6)


def _read_json(run: Path, rel: str | None, what: str, missing: list[dict]) -> dict | None:
    """The JSON object at ``run/rel``, or ``None`` with an entry appended to ``missing``."""
    if not rel:
        missing.append({"path": None, "what": what, "reason": "no path in manifest"})
        return None
    path = run / rel
    if not path.is_file():
        missing.append({"path": rel, "what": what, "reason": "missing"})
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        _check_overall(data.get("overall", {}))
    except (OSError, ValueError) as e:
        missing.append({"path": rel, "what": what, "reason": f"unreadable: {str(e)[:160]}"})
        return None
    return data


def _check_overall(overall: Any) -> None:
    """Raise ``ValueError`` unless an evaluation's ``overall`` metrics are an object whose episode count is a
    whole number >= 0 and whose success rate is a number in [0, 100] (what the tables and intervals use)."""
    if not isinstance(overall, dict):
        raise ValueError("`overall` is not a JSON object")
    n, rate = overall.get("episodes"), overall.get("success_rate")
    if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        raise ValueError(f"`overall.episodes` is not a whole number >= 0: {n!r}")
    if rate is not None and not (_num(rate) is not None and 0 <= rate <= 100):
        raise ValueError(f"`overall.success_rate` is not a number in [0, 100]: {rate!r}")


def _episodes(run: Path, eval_rel: str, what: str, missing: list[dict]) -> dict[str, bool] | None:
    """``{task id: success}`` of the episodes an evaluation wrote beside its metrics, or ``None``
    (listed in ``missing``) when that file is absent or holds no episode."""
    rel = (Path(eval_rel).with_suffix("").as_posix()) + ".trajectories.jsonl"
    rows = [r for r in read_jsonl_tolerant(run / rel) if isinstance(r, dict) and "id" in r]
    if not rows:
        reason = "missing" if not (run / rel).is_file() else "unreadable: no episode"
        missing.append({"path": rel, "what": f"episodes of the {what}", "reason": reason})
        return None
    return {str(r["id"]): bool(r.get("success")) for r in rows}


def read_manifest(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no manifest.json — is this an `agentdistill run` output directory?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: unreadable ({e}); rerun `agentdistill run` to rewrite it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object")
    shapes = {"envs": list, "methods": dict, "sizes": dict, "cells": list, "teacher": dict, "eval": dict}
    for key, kind in shapes.items():
        if key in data and not isinstance(data[key], kind):
            raise ConfigError(
                f"{path}: `{key}` is not a JSON {'list' if kind is list else 'object'}; rerun `agentdistill run` "
                "with the run's command to rewrite it"
            )
    envs = data.get("envs", [])
    if not all(isinstance(e, str) for e in envs) or len(set(envs)) != len(envs):
        raise ConfigError(
            f"{path}: `envs` is not a list of distinct env names; rerun `agentdistill run` to rewrite it"
        )
    for part in [data.get("teacher", {}), data.get("eval", {}), *data.get("cells", [])]:
        bad = not isinstance(part, dict) or any(
            k in part and not isinstance(part[k], dict) for k in ("eval", "episodes")
        )
        if bad:
            raise ConfigError(
                f"{path}: the teacher, a cell or `eval` (or its `eval`/`episodes`) is not a JSON object; rerun "
                "`agentdistill run` with the run's command to rewrite it"
            )
    return data


def method_label(name: str, methods: dict[str, dict]) -> str:
    """``sad`` ablations are labelled by what differs from ``sad``: ``sad-no-cot`` → ``sad (λ_r=0)``."""
    base, own = methods.get("sad"), methods.get(name)
    if name == "sad" or not base or not own or own.get("loss", "sad") != "sad":
        return name
    diffs = []
    for key, value in own.items():
        if key != "loss" and base.get(key) != value:
            v = int(value) if isinstance(value, float) and value.is_integer() else value
            diffs.append(f"{_SHORT.get(key, key)}={v}")
    return f"sad ({', '.join(diffs)})" if diffs else name


def _is_baseline(name: str, methods: dict[str, dict]) -> bool:
    loss = (methods.get(name) or {}).get("loss")
    return loss != "sad" if loss else name in ("sft", "token-kd")


def _is_ablation(name: str, methods: dict[str, dict]) -> bool:
    return name != "sad" and not _is_baseline(name, methods) and "sad" in methods


def _groups(manifest: dict) -> list[dict]:
    """Rows of the tables: the teacher, then each (method, size) in manifest order, with their cells."""
    methods, sizes = manifest.get("methods") or {}, manifest.get("sizes") or {}
    out: list[dict] = []
    teacher = manifest.get("teacher")
    if isinstance(teacher, dict):
        cell = {"key": teacher.get("key", "teacher"), "seed": None, "eval": teacher.get("eval") or {}}
        shape = {k: teacher.get(k) for k in SHAPE_KEYS}
        out.append({"model": "teacher", "label": "teacher", "size": None, **shape, "cells": [cell]})
    by_key: dict[tuple, dict] = {}
    for cell in manifest.get("cells") or []:
        key = (cell.get("method"), cell.get("size"))
        if key not in by_key:
            shape = {k: (sizes.get(key[1]) or {}).get(k) for k in SHAPE_KEYS}
            shape["params"] = cell.get("params", shape["params"])
            g = {"model": key[0], "label": method_label(str(key[0]), methods), "size": key[1], **shape}
            by_key[key] = {**g, "cells": []}
        by_key[key]["cells"].append(cell)
    rank_m, rank_s = {m: i for i, m in enumerate(methods)}, {s: i for i, s in enumerate(sizes)}
    order = sorted(by_key, key=lambda k: (rank_m.get(k[0], len(rank_m)), rank_s.get(k[1], len(rank_s))))
    return out + [by_key[k] for k in order]


# ---------------------------------------------------------------- building


def _successes(overall: dict) -> tuple[int, int]:
    """``(successes, episodes)`` of one evaluation's ``overall`` metrics (``(0, 0)`` when unknown)."""
    n, rate = _num(overall.get("episodes")), _num(overall.get("success_rate"))
    if n is None or rate is None or n <= 0:
        return 0, 0
    return round(rate * n / 100.0), int(n)


def _ci(per_seed: list[tuple[int, int]]) -> dict:
    ci = success_ci(per_seed)
    return {"low": _round(ci["low"]), "high": _round(ci["high"]), "method": ci["method"], "episodes": ci["episodes"]}


def _row(group: dict, overalls: list[dict], seeds: list) -> dict:
    row = {k: group[k] for k in ("model", "label", "size", *SHAPE_KEYS)}
    row.update(n_cells=len(group["cells"]), n_seeds=len(overalls), seeds=seeds)
    for m in METRICS:
        mean, std = mean_std([_num(o.get(m)) for o in overalls])
        row[m] = {"mean": _round(mean), "std": _round(std)}
    row["success_ci"] = _ci([_successes(o) for o in overalls])
    return row


def _delta(a: dict, b: dict) -> float | None:
    return None if a["mean"] is None or b["mean"] is None else _round(a["mean"] - b["mean"])


def _ablation(rows: list[dict], methods: dict) -> list[dict]:
    out = []
    for sad in (r for r in rows if r["model"] == "sad"):
        for r in [sad] + [r for r in rows if r["size"] == sad["size"] and _is_ablation(r["model"], methods)]:
            entry = {k: r[k] for k in ("model", "label", "size", "n_seeds")}
            entry.update({m: r[m] for m in ABLATION_METRICS})
            entry["delta"] = {m: _delta(r[m], sad[m]) for m in ABLATION_METRICS}
            out.append(entry)
    return out if any(_is_ablation(r["model"], methods) for r in rows) else []


def _overall(tables: dict[str, list[dict]], envs: list[str]) -> list[dict]:
    out: dict[tuple, dict] = {}
    for env in envs:
        for r in tables[env]:
            key = (r["model"], r["size"])
            o = out.setdefault(
                key, {k: r[k] for k in ("model", "label", "size", *SHAPE_KEYS)} | {"by_env": {}, "ci": {}}
            )
            o["by_env"][env] = r["success_rate"]["mean"]
            o["ci"][env] = r["success_ci"]
    for o in out.values():
        vals = [v for v in o["by_env"].values() if v is not None]
        complete = bool(vals) and len(vals) == len(envs)
        o["success_rate"] = _round(sum(vals) / len(vals)) if complete else None
        # the mean of the per-env intervals: conservative (wider than the interval of the mean of independent envs)
        cis = [o["ci"][e] for e in envs] if complete else []
        o["success_ci"] = {
            "low": _round(sum(c["low"] for c in cis) / len(cis)) if cis else None,
            "high": _round(sum(c["high"] for c in cis) / len(cis)) if cis else None,
            "method": "mean of the per-env intervals" if cis else None,
        }
        del o["ci"]
        o["envs_missing"] = [e for e in envs if o["by_env"].get(e) is None]
    return list(out.values())


def _teacher_notes(tables: dict[str, list[dict]]) -> list[str]:
    """A warning per env where the teacher solves fewer than ``TEACHER_BAR`` % of the evaluated tasks."""
    notes = []
    for env, rows in tables.items():
        for r in rows:
            mean = r["success_rate"]["mean"] if r["model"] == "teacher" else None
            if mean is not None and mean < TEACHER_BAR:
                notes.append(
                    f"the teacher solves {mean:.1f} % of the {env} tasks evaluated (below {TEACHER_BAR:.0f} %): "
                    f"its students learn from an agent that is not yet competent, so the {env} rows say little about the methods"
                )
    return notes


def _paired(outcomes: dict[str, dict[tuple, dict]], envs: list[str], methods: dict) -> list[dict]:
    """SAD against every baseline of its size on the same test tasks (and seeds), per env and, with more
    than one env, all envs pooled (``env`` = ``"all"``): ``stats.paired_test`` records."""
    out = []
    scopes = [(e, [e]) for e in envs] + ([("all", envs)] if len(envs) > 1 else [])
    keys = list(dict.fromkeys(k for e in envs for k in outcomes.get(e, {})))
    for scope, scope_envs in scopes:
        for size in dict.fromkeys(s for m, s in keys if m == "sad"):
            for base in (m for m, s in keys if s == size and _is_baseline(m, methods)):
                a, b, seeds = [], [], set()
                for e in scope_envs:
                    sa, sb = outcomes.get(e, {}).get(("sad", size), {}), outcomes.get(e, {}).get((base, size), {})
                    for seed in sorted(set(sa) & set(sb), key=str):
                        for task in sorted(set(sa[seed]) & set(sb[seed])):
                            a.append(sa[seed][task])
                            b.append(sb[seed][task])
                            seeds.add(seed)
                if a:
                    head = {"env": scope, "size": size, "a": "sad", "b": base, "seeds": len(seeds)}
                    out.append(head | paired_test(a, b).to_json())
    return out


def _paired_text(t: dict) -> str:
    return (
        f"paired over {t['pairs']} task{'-seed' if t['seeds'] > 1 else ''} pairs, "
        f"Δ {t['diff']:+.1f} points (95 % CI {t['diff_low']:+.1f} to {t['diff_high']:+.1f}), McNemar p = {t['p_value']:.3g}"
    )


def _comparisons(
    sections: list[tuple[str, str, list[dict]]], methods: dict, paired: list[dict] | None = None
) -> tuple[list[dict], list[str]]:
    """SAD against the best baseline at the same size, per (key, name, rows) section: records and sentences
    (with the paired test against that baseline where the episodes are on disk)."""
    if "sad" not in methods:
        return [], ["This run has no sad method, so SAD is not compared with the baselines."]
    records, sentences = [], []
    for key, name, rows in sections:
        for sad in (r for r in rows if r["model"] == "sad"):
            where = f"{name} (size {sad['size']})"
            base = [r for r in rows if r["size"] == sad["size"] and _is_baseline(r["model"], methods)]
            base = [r for r in base if r["success_rate"]["mean"] is not None]
            if sad["success_rate"]["mean"] is None or not base:
                if key != "overall":  # the per-env sentences already say what is missing
                    what = "sad" if sad["success_rate"]["mean"] is None else "baseline"
                    sentences.append(f"No {what} result on {where}, so SAD is not compared there.")
                continue
            best = max(base, key=lambda r: r["success_rate"]["mean"])  # first wins a tie
            s, b = sad["success_rate"], best["success_rate"]
            delta = _round(s["mean"] - b["mean"])
            records.append({"env": key, "size": sad["size"], "sad": s["mean"], "best_baseline": best["model"],
                            "baseline": b["mean"], "delta": delta, "sad_beats_baselines": delta > 0})  # fmt: skip
            head = "SAD beats the best baseline" if delta > 0 else "SAD does not beat the baselines"
            sad_s, base_s = fmt_stat(s, sad["n_seeds"]), fmt_stat(b, best["n_seeds"])
            text = f"{head} on {where}: {delta:+.1f} points success (sad {sad_s} vs {best['model']} {base_s})"
            spread = max(s["std"] or 0.0, b["std"] or 0.0)
            if spread > 0 and abs(delta) <= spread:
                text += f"; the gap is within one seed std ({spread:.1f})"
            scope = "all" if key == "overall" else key
            test = next(
                (t for t in paired or [] if (t["env"], t["size"], t["b"]) == (scope, sad["size"], best["model"])), None
            )
            if test is not None:
                records[-1]["paired"] = test
                text += f"; {_paired_text(test)}"
            sentences.append(text + ".")
    return records, sentences


def _training(run: Path, groups: list[dict], missing: list[dict]) -> tuple[list[dict], dict[tuple, dict]]:
    """Last logged losses per cell, and the loss_cot / loss_act curves per (model, size, key): {step: [values]}."""
    training, curves = [], {}
    for g in groups:
        for cell in g["cells"] if g["model"] != "teacher" else []:
            cdir = cell.get("dir") or f"distill/{cell.get('key')}"
            done = markers.is_done(run / cdir, "distill")
            if not done:
                missing.append({"path": markers.marker_path(cdir, "distill").as_posix(), "what": f"training of {cell.get('key')} (not finished)", "reason": "missing"})  # fmt: skip
            log = [r for r in read_jsonl_tolerant(run / cdir / "train_log.jsonl") if isinstance(r, dict)]
            if not log:
                missing.append({"path": f"{cdir}/train_log.jsonl", "what": f"training log of {cell.get('key')}", "reason": "missing or empty"})  # fmt: skip
            last = log[-1] if log else {}
            entry = {
                "cell": cell.get("key"),
                "model": g["model"],
                "size": g["size"],
                "seed": cell.get("seed"),
                "done": done,
            }
            step = _num(last.get("step"))
            entry["step"] = None if step is None else int(step)
            training.append(entry | {k: _round(_num(last.get(k))) for k in ("loss", "loss_cot", "loss_act")})
            for r in log:
                for key in ("loss_cot", "loss_act"):
                    step, value = _num(r.get("step")), _num(r.get(key))
                    if step is not None and value is not None:
                        curves.setdefault((g["model"], g["size"], key), {}).setdefault(step, []).append(value)
    return training, curves


def _collect(run_dir: str | Path) -> tuple[dict, dict[tuple, dict]]:
    """Everything the report shows, as a JSON-able dict with a fixed layout, and the training curves."""
    run = Path(run_dir)
    manifest = read_manifest(run)
    methods, envs = manifest.get("methods") or {}, list(manifest.get("envs") or [])
    missing: list[dict] = []
    groups = _groups(manifest)
    tables: dict[str, list[dict]] = {}
    by_type: dict[str, dict] = {}
    outcomes: dict[str, dict[tuple, dict]] = {}  # env -> (model, size) -> seed -> {task id: success}
    for env in envs:
        tables[env], type_rows, types, outcomes[env] = [], [], set(), {}
        for g in groups:
            overalls, btypes, seeds = [], [], []
            for cell in g["cells"]:
                seed = "" if cell.get("seed") is None else f" seed {cell['seed']}"
                what = f"eval of {g['label']}{'' if g['size'] is None else ' ' + str(g['size'])}{seed} on {env}"
                data = _read_json(run, (cell.get("eval") or {}).get(env), what, missing)
                if data is not None and not isinstance(data.get("overall"), dict):
                    missing.append({"path": cell["eval"][env], "what": what, "reason": "unreadable: no 'overall'"})
                    data = None
                if data is not None:
                    episodes = _episodes(run, cell["eval"][env], what, missing)
                    if episodes is not None and g["model"] != "teacher":
                        outcomes[env].setdefault((g["model"], g["size"]), {})[cell.get("seed")] = episodes
                    overalls.append(data["overall"])
                    btypes.append(data.get("by_type") if isinstance(data.get("by_type"), dict) else {})
                    seeds.append(cell.get("seed"))
                    types.update(btypes[-1])
            tables[env].append(_row(g, overalls, seeds))
            type_rows.append((g, btypes))
        types_sorted = sorted(types)
        by_type[env] = {"types": types_sorted, "rows": []}
        for g, btypes in type_rows:
            stats = {}
            for t in types_sorted:
                mean, std = mean_std([_num((b.get(t) or {}).get("success_rate")) for b in btypes])
                stats[t] = {"mean": _round(mean), "std": _round(std)}
            row = {k: g[k] for k in ("model", "label", "size")} | {"n_seeds": len(btypes), "success_rate": stats}
            by_type[env]["rows"].append(row)
    training, curves = _training(run, groups, missing)
    overall = _overall(tables, envs)
    sections = [(env, env, tables[env]) for env in envs]
    if len(envs) > 1:
        rows = [o | {"success_rate": {"mean": o["success_rate"], "std": None}, "n_seeds": 1} for o in overall]
        sections.append(("overall", "the mean over envs", rows))
    paired = _paired(outcomes, envs, methods)
    comparison, sentences = _comparisons(sections, methods, paired)
    results = {
        "format": 1,
        "run": {k: manifest.get(k) for k in ("name", "preset", "command", "machine", "versions", "eval", "teacher")},
        "notes": list(manifest.get("notes") or []) + _teacher_notes(tables),
        "envs": envs,
        "sizes": manifest.get("sizes") or {},
        "methods": methods,
        "metrics": list(METRICS),
        "timing_keys": list(TIMING_KEYS),
        "tables": tables,
        "by_type": by_type,
        "ablation": {env: _ablation(tables[env], methods) for env in envs},
        "overall": overall,
        "comparison": comparison,
        "paired": paired,
        "statement": " ".join(sentences),
        "training": training,
        "missing": missing,
        "plots": list(PLOTS),
    }
    return results, curves


# ---------------------------------------------------------------- entry points


def build_results(run_dir: str | Path) -> dict:
    """The results dict of ``build_report`` without writing anything."""
    return _collect(run_dir)[0]


def build_report(run_dir: str | Path) -> dict:
    """Write ``results.json``, ``results.md`` and ``plots/*.png`` into ``run_dir``; return the results."""
    run = Path(run_dir)
    results, curves = _collect(run)
    write_plots(results, curves, run, [f"{s}\n{format_params(v.get('params'))}" for s, v in results["sizes"].items()])
    atomic_write_json(run / "results.json", results)
    atomic_write_text(run / "results.md", markdown(results))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="agentdistill report",
        description="Rebuild a run's results.md, results.json and plots/ from the files on disk "
        "(missing or unreadable files are listed, never filled in).",
    )
    p.add_argument("run_dir", help="an `agentdistill run` output directory (holds manifest.json)")
    a = p.parse_args(argv)
    results = build_report(a.run_dir)
    print(format_tables(results))
    print(f"wrote {Path(a.run_dir) / 'results.md'}, results.json and {len(results['plots'])} plot(s) in plots/")
    return 0

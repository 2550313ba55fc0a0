"""The report's text: aligned markdown tables of a results dict (``report.build_results``) and
the ``results.md`` page around them. Pure formatting: everything shown is in the results dict.
"""

from pathlib import Path
from typing import Any

ABLATION_METRICS = ("success_rate", "reasoning_length", "cot_match_rate")
# (metric, column title, decimals) of the per-env table
COLUMNS = (
    ("success_rate", "Success %", 1),
    ("success_ci", "95 % CI", 1),
    ("reasoning_length", "Reasoning len (tok)", 1),
    ("cot_match_rate", "CoT match %", 1),
    ("steps", "Steps", 1),
    ("invalid_rate", "Invalid %", 1),
    ("seconds_per_episode", "Latency (s/ep)", 3),
)
DASH = "—"


def fmt_stat(stat: dict, n: int, decimals: int = 1) -> str:
    """``mean`` (± ``std`` when more than one seed has a result); — when nothing is on disk."""
    if stat["mean"] is None:
        return DASH
    s = f"{stat['mean']:.{decimals}f}"
    return f"{s} ± {stat['std']:.{decimals}f}" if n > 1 and stat["std"] is not None else s


def fmt_ci(ci: dict | None, decimals: int = 1) -> str:
    """A confidence interval as ``[low, high]``; — when there is none."""
    if not ci or ci.get("low") is None:
        return DASH
    return f"[{ci['low']:.{decimals}f}, {ci['high']:.{decimals}f}]"


def _cell(row: dict, metric: str, decimals: int) -> str:
    return fmt_ci(row[metric], decimals) if metric == "success_ci" else fmt_stat(row[metric], row["n_seeds"], decimals)


SHAPE_HEAD = ("Layers", "Non-emb params", "Params")


def _shape(row: dict) -> list[str]:
    layers = row.get("num_layers")
    return [DASH if layers is None else str(layers), format_params(row.get("non_embedding_params")),
            format_params(row.get("params"))]  # fmt: skip


def format_params(n: Any) -> str:
    """A parameter count as 921k / 1.5M; — when unknown."""
    n = n if isinstance(n, int | float) and not isinstance(n, bool) else None
    if n is None:
        return DASH
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{int(n)}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def format_tables(results: dict) -> str:
    """The tables and the SAD-vs-baselines statement as aligned markdown (printable as is)."""
    out = []
    for env in results["envs"]:
        head = ["Model", "Size", *SHAPE_HEAD, *[c[1] for c in COLUMNS], "Seeds"]
        rows = [
            [r["label"], r["size"] or DASH, *_shape(r)]
            + [_cell(r, m, d) for m, _, d in COLUMNS]
            + [f"{r['n_seeds']}/{r['n_cells']}"]
            for r in results["tables"][env]
        ]
        out += [f"## {env}", "", _table(head, rows), ""]
        bt = results["by_type"][env]
        if bt["types"]:
            rows = [[r["label"], r["size"] or DASH] + [fmt_stat(r["success_rate"][t], r["n_seeds"]) for t in bt["types"]]
                    for r in bt["rows"]]  # fmt: skip
            out += [f"### {env}: success % by task type", "", _table(["Model", "Size", *bt["types"]], rows), ""]
    abl = [(env, r) for env in results["envs"] for r in results["ablation"][env]]
    if abl:
        head = ["Env", "Size", "Model", "Success %", "Δ success", "Reasoning len", "Δ len", "CoT match %", "Δ CoT"]
        rows = []
        for env, r in abl:
            cells = [env, r["size"] or DASH, r["label"]]
            for m in ABLATION_METRICS:
                d = r["delta"][m]
                cells += [fmt_stat(r[m], r["n_seeds"]), DASH if d is None or r["model"] == "sad" else f"{d:+.1f}"]
            rows.append(cells)
        out += ["## Ablations (Δ = ablation − sad, same env and size)", "", _table(head, rows), ""]
    if results["overall"]:
        envs = results["envs"]
        rows = [[o["label"], o["size"] or DASH, *_shape(o)]
                + [DASH if o["by_env"].get(e) is None else f"{o['by_env'][e]:.1f}" for e in envs]
                + [DASH if o["success_rate"] is None else f"{o['success_rate']:.1f}", fmt_ci(o["success_ci"])]
                for o in results["overall"]]  # fmt: skip
        head = ["Model", "Size", *SHAPE_HEAD, *envs, "Mean over envs", "95 % CI"]
        out += [
            "## Overall success % (mean over seeds, then over envs; — unless every env has a result)",
            "",
            _table(head, rows),
            "",
            "The overall interval is the mean of the per-env intervals (conservative).",
            "",
        ]
    if results.get("paired"):
        head = [
            "Env",
            "Size",
            "Comparison",
            "Pairs",
            "Only sad",
            "Only baseline",
            "Δ success (points)",
            "95 % CI",
            "McNemar p",
        ]
        rows = [[t["env"], t["size"] or DASH, f"{t['a']} vs {t['b']}", str(t["pairs"]), str(t["a_only"]),
                 str(t["b_only"]), f"{t['diff']:+.1f}", f"[{t['diff_low']:+.1f}, {t['diff_high']:+.1f}]",
                 f"{t['p_value']:.3g}"] for t in results["paired"]]  # fmt: skip
        out += [
            "## Paired tests (the same test tasks; with several seeds, task-seed pairs matched by seed)",
            "",
            _table(head, rows),
            "",
            "Δ = success of sad − success of the baseline over the pairs; its interval is a paired bootstrap; "
            "p is the two-sided exact McNemar test on the pairs where only one method succeeds. "
            "`all` pools the pairs of every env.",
            "",
        ]
    out += ["## Summary", "", results["statement"] or "Nothing to compare.", ""]
    if results["missing"]:
        out += [f"## Missing or unreadable ({len(results['missing'])})", ""]
        out += [f"- {m['what']}: `{m['path'] or DASH}` ({m['reason']})" for m in results["missing"]] + [""]
    return "\n".join(out)


def markdown(results: dict) -> str:
    run = results["run"]
    versions = ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items()) or DASH
    ev = run.get("eval") or {}
    episodes = ", ".join(f"{k} {v}" for k, v in (ev.get("episodes") or {}).items()) or DASH
    lines = [
        f"# Results: {run.get('name') or DASH}",
        "",
        f"- Command: `{run.get('command') or DASH}`",
        f"- Preset: {run.get('preset') or DASH}",
        f"- Machine: {run.get('machine') or DASH}",
        f"- Versions: {versions}",
        f"- Evaluation: split {ev.get('split') or DASH}; episodes per env: {episodes}",
        "- Values are mean ± sample std over seeds where a row has more than one seed result; "
        "Seeds = results found / cells run; — = no result on disk.",
        "- 95 % CI of success: Wilson score interval over the episodes (one seed); with several seeds, "
        "the Student-t interval over seeds, never narrower than the Wilson interval of the pooled episodes.",
        *[f"- **Note:** {n}" for n in results.get("notes", [])],
        "",
        format_tables(results),
        "## Plots",
        "",
        *[f"![{Path(p).stem}]({p})" for p in results["plots"]],
        "",
    ]
    return "\n".join(lines)

"""The report's plots: success vs student size, reasoning length and CoT match, training curves.

``report.build_report`` calls ``write_plots`` with the results it built; each figure is drawn with
matplotlib's Agg backend (imported here only when plotting) and written atomically as PNG.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentdistill.files import atomic_open

PLOTS = ("plots/success_vs_size.png", "plots/reasoning_cot.png", "plots/training_curves.png")


def _save(fig: Any, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100, metadata={"Software": None})


def _no_data(ax: Any) -> None:
    ax.text(0.5, 0.5, "no results on disk", ha="center", va="center", transform=ax.transAxes)


def write_plots(results: dict, curves: dict[tuple, dict], run: Path, size_labels: Sequence[str]) -> None:
    """Write the three ``PLOTS`` of a report into ``run``.

    Args:
        results: the report's results (``report.build_results``).
        curves: ``(model, size, loss key) -> {step: [value per seed]}`` from the training logs.
        run: the run directory.
        size_labels: the x tick label of each size in ``results["sizes"]``, in order.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    envs, sizes = results["envs"] or [None], list(results["sizes"])
    models = list(dict.fromkeys(r["model"] for rows in results["tables"].values() for r in rows))
    color = {m: f"C{i % 10}" for i, m in enumerate(models)}

    fig = Figure(figsize=(4.6 * len(envs), 3.8), layout="constrained")
    for ax, env in zip(fig.subplots(1, len(envs), squeeze=False)[0], envs, strict=True):
        rows = results["tables"].get(env, [])
        if not any(r["success_rate"]["mean"] is not None for r in rows):
            _no_data(ax)
        for i, m in enumerate(models):
            dx = 0.05 * (i - len(models) / 2)  # side by side, so equal values stay visible
            pts = [(sizes.index(r["size"]) + dx, r) for r in rows if r["model"] == m and r["size"] in sizes]
            pts = [(x, r) for x, r in pts if r["success_rate"]["mean"] is not None]
            if m == "teacher":
                for r in (r for r in rows if r["model"] == m and r["success_rate"]["mean"] is not None):
                    ax.axhline(r["success_rate"]["mean"], ls="--", color="gray", label="teacher")
            elif pts:
                ys = [r["success_rate"]["mean"] for _, r in pts]
                cis = [r.get("success_ci") or {} for _, r in pts]  # 95 % interval where known, else none
                yerr = [
                    [y - (c.get("low") if c.get("low") is not None else y) for y, c in zip(ys, cis, strict=True)],
                    [(c.get("high") if c.get("high") is not None else y) - y for y, c in zip(ys, cis, strict=True)],
                ]
                ax.errorbar([x for x, _ in pts], ys, yerr=yerr,
                            marker="o", capsize=3, color=color[m], label=pts[0][1]["label"])  # fmt: skip
        ax.set_xticks(range(len(sizes)), list(size_labels))
        ax.set(title=env or "", xlabel="student size", ylabel="success % (95 % CI)", ylim=(-3, 103))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    _save(fig, run / PLOTS[0])

    fig = Figure(figsize=(4.6 * len(envs), 7.5), layout="constrained")
    axes = fig.subplots(2, len(envs), squeeze=False)
    for j, env in enumerate(envs):
        rows = results["tables"].get(env, [])
        for ax, (metric, title) in zip(axes[:, j], (("reasoning_length", "reasoning tokens / episode"),
                                                    ("cot_match_rate", "CoT match %")), strict=True):  # fmt: skip
            bars = [(i, r) for i, r in enumerate(rows) if r[metric]["mean"] is not None]
            if bars:
                ax.bar([i for i, _ in bars], [r[metric]["mean"] for _, r in bars],
                       yerr=[r[metric]["std"] or 0 for _, r in bars], capsize=2,
                       color=[color[r["model"]] for _, r in bars])  # fmt: skip
            else:
                _no_data(ax)
            ax.set_xticks(range(len(rows)), [f"{r['label']} {r['size'] or ''}" for r in rows], rotation=75, fontsize=7)
            ax.set(title=f"{env or ''}: {title}")
    _save(fig, run / PLOTS[1])

    fig = Figure(figsize=(10, 4), layout="constrained")
    labels = {(r["model"], r["size"]): r["label"] for rows in results["tables"].values() for r in rows}
    for ax, key in zip(fig.subplots(1, 2, squeeze=False)[0], ("loss_cot", "loss_act"), strict=True):
        lines = [(k, v) for k, v in curves.items() if k[2] == key]
        for (m, s, _), pts in lines:
            steps = sorted(pts)
            ls = ("-", "--", ":", "-.")[sizes.index(s) % 4 if s in sizes else 0]
            ax.plot(steps, [sum(pts[x]) / len(pts[x]) for x in steps], ls=ls, color=color.get(m, "k"),
                    label=f"{labels.get((m, s), m)} {s}")  # fmt: skip
        if not lines:
            _no_data(ax)
        else:
            ax.legend(fontsize=7)
        ax.set(title=f"{key} (mean over seeds)", xlabel="step", ylabel=key)
    _save(fig, run / PLOTS[2])

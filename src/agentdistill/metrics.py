"""Agent metrics (DESIGN §6) as pure functions over episode records.

Success rate, mean score, reasoning length, CoT match rate against reference trajectories, steps
per episode (failures count at the step cap), latency and generated tokens per second, overall and
per task type.
"""

import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from rapidfuzz.distance import LCSseq

from agentdistill.trajectory import Trajectory

_WORD = re.compile(r"[a-z0-9]+")


def normalize_text(text: str) -> list[str]:
    """Lower-cased alphanumeric words (punctuation and spacing never decide a match)."""
    return _WORD.findall(text.lower())


def rouge_l_f(candidate: str, reference: str) -> float:
    """ROUGE-L F1 between two texts: LCS of their words, ``2PR / (P + R)``."""
    c, r = normalize_text(candidate), normalize_text(reference)
    if not c or not r:
        return float(c == r)
    lcs = LCSseq.similarity(c, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


def exact_text_match(candidate: str, reference: str) -> float:
    return float(normalize_text(candidate) == normalize_text(reference))


MATCHERS: dict[str, Callable[[str, str], float]] = {"rouge_l": rouge_l_f, "exact": exact_text_match}


def cot_matches(
    student: Trajectory, teacher: Trajectory, matcher: str = "rouge_l", threshold: float = 0.7
) -> tuple[int, int]:
    """``(matched, total)`` reasoning steps of ``student`` that match ``teacher``'s at the same step index.

    A student thought at step k with no teacher thought at step k counts as unmatched.
    """
    score = MATCHERS[matcher]
    matched = total = 0
    for k, step in enumerate(student.steps):
        if not step.thought:
            continue
        total += 1
        ref = teacher.steps[k].thought if k < len(teacher.steps) else None
        if ref and score(step.thought, ref) >= threshold:
            matched += 1
    return matched, total


def _mean(xs: Sequence[float]) -> float:
    return float(statistics.fmean(xs)) if xs else 0.0


def summarize(
    records: Sequence[Any],
    max_steps: int,
    reference: dict[str, Trajectory] | None = None,
    matcher: str = "rouge_l",
    threshold: float = 0.7,
) -> dict[str, Any]:
    """Metrics of a list of ``EpisodeRecord``s.

    Returns:
        ``{"episodes", "success_rate" (%), "score" (100 × mean reward), "reasoning_length",
        "cot_match_rate" (% or None without reference), "steps", "invalid_rate" (%),
        "seconds_per_episode", "tokens_per_second", plus mean env extras (em, f1...)}``.
    """
    n = len(records)
    out: dict[str, Any] = {"episodes": n}
    if n == 0:
        return out
    out["success_rate"] = 100.0 * _mean([float(r.success) for r in records])
    out["score"] = 100.0 * _mean([float(r.reward) for r in records])
    out["reasoning_length"] = _mean([r.reason_tokens for r in records])
    out["steps"] = _mean([r.steps if r.success else max_steps for r in records])
    total_steps = sum(r.steps for r in records)
    out["invalid_rate"] = 100.0 * sum(r.invalid for r in records) / max(total_steps, 1)
    out["seconds_per_episode"] = _mean([r.wall_seconds for r in records])
    gen_s = sum(r.gen_seconds for r in records)
    out["tokens_per_second"] = sum(r.gen_tokens for r in records) / gen_s if gen_s > 0 else 0.0
    for key in ("em", "f1"):
        vals = [float(r.result[key]) for r in records if key in r.result]
        if vals:
            out[key] = 100.0 * _mean(vals)
    out["cot_match_rate"] = None
    if reference is not None:
        matched = total = 0
        for r in records:
            if r.task_id in reference:
                m, t = cot_matches(r.trajectory, reference[r.task_id], matcher, threshold)
                matched, total = matched + m, total + t
        out["cot_match_rate"] = 100.0 * matched / total if total else 0.0
    return out


def summarize_by_type(records: Sequence[Any], max_steps: int, **kw: Any) -> dict[str, Any]:
    """``{"overall": summarize(all), "by_type": {type: summarize(records of that type)}}``."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in records:
        groups[r.task_type].append(r)
    return {
        "overall": summarize(records, max_steps, **kw),
        "by_type": {t: summarize(rs, max_steps, **kw) for t, rs in sorted(groups.items())},
    }


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std over seeds (std 0 for one seed); ``None`` when no value is known."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    return float(statistics.fmean(vals)), float(statistics.stdev(vals)) if len(vals) > 1 else 0.0

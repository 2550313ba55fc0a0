import json
from dataclasses import replace

import pytest

from agentdistill.collect import CollectArgs, collect
from agentdistill.envs import make_env
from agentdistill.evaluate import EvalArgs, evaluate
from agentdistill.formats import get_format
from agentdistill.testing import ScriptedPolicy
from agentdistill.trajectory import Step, read_trajectories


def _lines(path):
    return path.read_text().splitlines()


class _MustNotRun:
    """A policy for a run that has nothing left to do."""

    def count_tokens(self, text):
        return 0

    def generate(self, contexts, fmt):
        raise AssertionError(f"generate called for {len(contexts)} episode(s)")


def test_collect_resumes_after_an_interruption_with_a_torn_line(tmp_path):
    out = tmp_path / "trajs.jsonl"
    sidecar = tmp_path / "trajs.jsonl.attempted"
    args = CollectArgs(env="alfworld", agent="expert", split="train", episodes=6, out=str(out))
    assert collect(args) == {"attempted": 6, "written": 6, "success": 6, "skipped_done": 0}
    full = _lines(out)
    ids = [json.loads(x)["id"] for x in full]
    assert ids == make_env("alfworld").task_ids("train")[:6]
    assert [json.loads(x) for x in _lines(sidecar)] == [{"id": i, "success": True} for i in ids]

    # interrupted while appending the 4th record: 3 complete lines, then half a line with no newline
    out.write_text("\n".join(full[:3]) + "\n" + full[3][: len(full[3]) // 2])
    sidecar.write_text("\n".join(_lines(sidecar)[:3]) + "\n")
    assert collect(args) == {"attempted": 3, "written": 3, "success": 3, "skipped_done": 3}

    trajs = read_trajectories(out)  # strict reader: every line is a whole record again
    assert [t.id for t in trajs] == ids
    assert _lines(out) == full  # the torn half-line is gone and the redone episodes are identical
    assert [json.loads(x)["id"] for x in _lines(sidecar)] == ids

    # a complete run is a no-op
    assert collect(args) == {"attempted": 0, "written": 0, "success": 0, "skipped_done": 6}
    assert _lines(out) == full
    # asking for more tasks runs only the new ones
    assert collect(replace(args, episodes=8)) == {"attempted": 2, "written": 2, "success": 2, "skipped_done": 6}
    assert [t.id for t in read_trajectories(out)] == make_env("alfworld").task_ids("train")[:8]


def test_collect_torn_sidecar_line_reruns_only_that_task(tmp_path):
    out = tmp_path / "t.jsonl"
    sidecar = tmp_path / "t.jsonl.attempted"
    args = CollectArgs(env="hotpotqa", agent="expert", split="dev", episodes=4, out=str(out))
    collect(args)
    full = _lines(out)
    # interrupted after the 3rd record's line, while writing its sidecar entry
    out.write_text("\n".join(full[:3]) + "\n")
    side = _lines(sidecar)
    sidecar.write_text("\n".join(side[:2]) + "\n" + side[2][:5])
    # the 3rd id is done (its record is in the output); only the 4th runs
    assert collect(args) == {"attempted": 1, "written": 1, "success": 1, "skipped_done": 3}
    assert _lines(out) == full
    assert [json.loads(x)["id"] for x in _lines(sidecar)] == [json.loads(x)["id"] for x in [*side[:2], side[3]]]


def test_collect_keeps_a_complete_last_record_that_lacks_its_newline(tmp_path):
    out = tmp_path / "t.jsonl"
    args = CollectArgs(env="hotpotqa", agent="expert", split="dev", episodes=2, out=str(out))
    collect(replace(args, episodes=1))
    out.write_text(out.read_text().rstrip("\n"))  # e.g. hand-edited
    (tmp_path / "t.jsonl.attempted").unlink()
    assert collect(args) == {"attempted": 1, "written": 1, "success": 1, "skipped_done": 1}
    assert [t.id for t in read_trajectories(out)] == make_env("hotpotqa").task_ids("dev")[:2]


def test_collect_only_success_records_failed_attempts_so_rerun_skips_them(tmp_path):
    out = tmp_path / "good.jsonl"
    sidecar = tmp_path / "good.jsonl.attempted"
    args = CollectArgs(env="hotpotqa", agent="some-model", split="train", episodes=3, out=str(out), only_success=True)
    stats = collect(args, policy=ScriptedPolicy([], fallback="Thought 1: no idea\nAction 1: Finish[nothing]"))
    assert stats == {"attempted": 3, "written": 0, "success": 0, "skipped_done": 0}
    assert not out.exists() or out.read_text() == ""
    tasks = make_env("hotpotqa").task_ids("train")[:3]
    assert [json.loads(x) for x in _lines(sidecar)] == [{"id": t, "success": False} for t in tasks]
    assert collect(args, policy=_MustNotRun()) == {"attempted": 0, "written": 0, "success": 0, "skipped_done": 3}
    assert len(_lines(sidecar)) == 3


def test_collect_model_policy_writes_teacher_name_and_failures_without_only_success(tmp_path):
    out = tmp_path / "all.jsonl"
    args = CollectArgs(env="webshop", agent="my-teacher", split="dev", episodes=2, out=str(out))
    stats = collect(args, policy=ScriptedPolicy([], fallback="Action: click[nothing]"))
    assert stats == {"attempted": 2, "written": 2, "success": 0, "skipped_done": 0}
    trajs = read_trajectories(out)
    assert [t.meta["teacher"] for t in trajs] == ["my-teacher"] * 2
    assert all(not t.success and len(t.steps) == 15 for t in trajs)  # WebShop's cap


# -- evaluate --reference ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def expert_refs(tmp_path_factory):
    """Per env: (reference file of 4 expert test episodes, their full rendered texts)."""
    d = tmp_path_factory.mktemp("refs")
    refs = {}
    for env_name in ("alfworld", "webshop", "hotpotqa"):
        path = d / f"{env_name}.jsonl"
        collect(CollectArgs(env=env_name, agent="expert", split="test", episodes=4, out=str(path)))
        fmt = get_format(make_env(env_name).format)
        trajs = read_trajectories(path)
        refs[env_name] = (path, trajs, [fmt.render(t.prompt, t.steps)[0] for t in trajs])
    return refs


def _write_refs(path, trajs):
    path.write_text("".join(json.dumps(t.to_json()) + "\n" for t in trajs))


@pytest.mark.parametrize("env_name", ["alfworld", "webshop", "hotpotqa"])
def test_evaluate_replaying_the_reference_matches_all_its_reasoning(env_name, expert_refs, tmp_path):
    ref_path, trajs, texts = expert_refs[env_name]
    out = tmp_path / "metrics.json"
    args = EvalArgs(model="scripted", env=env_name, split="test", episodes=4, reference=str(ref_path), out=str(out))
    m = evaluate(args, policy=ScriptedPolicy(texts))
    overall = m["overall"]
    assert overall["episodes"] == 4
    assert overall["success_rate"] == 100.0 and overall["score"] == 100.0
    assert overall["cot_match_rate"] == 100.0
    assert overall["invalid_rate"] == 0.0
    assert overall["steps"] == sum(len(t.steps) for t in trajs) / 4
    # ScriptedPolicy counts whitespace words: reasoning length is the thoughts' mean word count
    assert overall["reasoning_length"] == sum(len(s.thought.split()) for t in trajs for s in t.steps if s.thought) / 4
    assert sum(v["episodes"] for v in m["by_type"].values()) == 4
    assert json.loads(out.read_text()) == m
    assert m["config"] == {**m["config"], "env": env_name, "episodes": 4, "reference": str(ref_path), "out": str(out)}
    rows = [json.loads(x) for x in _lines(tmp_path / "metrics.trajectories.jsonl")]
    assert [r["id"] for r in rows] == [t.id for t in trajs]
    assert [r["steps"] for r in rows] == [t.to_json()["steps"] for t in trajs]
    assert all(r["meta"]["episode"]["steps"] == len(t.steps) for r, t in zip(rows, trajs, strict=True))


@pytest.mark.parametrize("env_name", ["alfworld", "webshop", "hotpotqa"])
def test_evaluate_cot_match_against_altered_reasoning(env_name, expert_refs, tmp_path):
    _ref_path, trajs, texts = expert_refs[env_name]

    def altered(t):
        steps = [
            Step(thought="zebra quantum violin" if s.thought else None, action=s.action, observation=s.observation)
            for s in t.steps
        ]
        return replace(t, steps=steps)

    # every thought replaced by unrelated text: nothing matches
    bad = tmp_path / "bad.jsonl"
    _write_refs(bad, [altered(t) for t in trajs])
    args = EvalArgs(
        model="scripted", env=env_name, split="test", episodes=4, reference=str(bad), out=str(tmp_path / "a.json")
    )
    m = evaluate(args, policy=ScriptedPolicy(texts))["overall"]
    assert m["cot_match_rate"] == 0.0
    assert m["success_rate"] == 100.0  # the actions still replay the expert

    # only the first two episodes altered: the rate is the share of thoughts in the other two
    half = tmp_path / "half.jsonl"
    _write_refs(half, [altered(t) for t in trajs[:2]] + trajs[2:])
    n_thoughts = [sum(1 for s in t.steps if s.thought) for t in trajs]
    args = replace(args, reference=str(half), out=str(tmp_path / "b.json"))
    m = evaluate(args, policy=ScriptedPolicy(texts))["overall"]
    assert m["cot_match_rate"] == pytest.approx(100.0 * sum(n_thoughts[2:]) / sum(n_thoughts))
    assert 0.0 < m["cot_match_rate"] < 100.0


def test_evaluate_without_reference_has_no_cot_match_and_counts_failures_at_the_cap(tmp_path):
    args = EvalArgs(model="scripted", env="hotpotqa", split="test", episodes=3, out=str(tmp_path / "m.json"))
    m = evaluate(args, policy=ScriptedPolicy([], fallback="Thought 1: hmm\nAction 1: Lookup[x]"))
    o = m["overall"]
    assert o["cot_match_rate"] is None
    assert o["success_rate"] == 0.0 and o["steps"] == 7.0
    assert o["reasoning_length"] == 7.0  # one 1-word thought per step, 7 steps
    assert len(_lines(tmp_path / "m.trajectories.jsonl")) == 3

import pytest

from agentdistill.agent import expert_episode, run_episodes
from agentdistill.envs import make_env
from agentdistill.formats import get_format
from agentdistill.metrics import summarize_by_type
from agentdistill.testing import ScriptedPolicy


def _expert_texts(env_name, tasks):
    trajs = [expert_episode(env_name, t) for t in tasks]
    fmt = get_format(make_env(env_name).format)
    return trajs, [fmt.render(t.prompt, t.steps)[0] for t in trajs]


@pytest.mark.parametrize("env_name", ["alfworld", "webshop", "hotpotqa"])
def test_agent_replaying_expert_reproduces_its_trajectories(env_name):
    tasks = make_env(env_name).task_ids("test")[:6]
    trajs, texts = _expert_texts(env_name, tasks)
    records = run_episodes(env_name, tasks, ScriptedPolicy(texts))
    assert [r.task_id for r in records] == tasks
    for rec, traj in zip(records, trajs, strict=True):
        assert rec.success and rec.reward == 1.0
        assert rec.trajectory.steps == traj.steps
        assert rec.trajectory.prompt == traj.prompt
        assert rec.invalid == 0
        assert rec.trajectory.task_type == make_env(env_name).task_type(rec.task_id)
    m = summarize_by_type(records, make_env(env_name).max_steps, reference={t.id: t for t in trajs})
    assert m["overall"]["success_rate"] == 100.0
    assert m["overall"]["cot_match_rate"] == 100.0


@pytest.mark.parametrize("env_name", ["alfworld", "webshop", "hotpotqa"])
def test_unparseable_output_is_counted_and_hits_step_cap(env_name):
    env = make_env(env_name)
    (tid,) = env.task_ids("test")[:1]
    (rec,) = run_episodes(env_name, [tid], ScriptedPolicy([], fallback="blah blah"), max_steps=3)
    assert not rec.success
    assert rec.steps == 3
    assert rec.invalid == 3
    m = summarize_by_type([rec], 3)["overall"]
    assert m["steps"] == 3 and m["invalid_rate"] == 100.0


def test_lockstep_equals_one_at_a_time():
    tasks = make_env("hotpotqa").task_ids("dev")[:4]
    _trajs, texts = _expert_texts("hotpotqa", tasks)
    together = run_episodes("hotpotqa", tasks, ScriptedPolicy(texts))
    alone = [run_episodes("hotpotqa", [t], ScriptedPolicy(texts))[0] for t in tasks]
    assert [r.trajectory.to_json() for r in together] == [r.trajectory.to_json() for r in alone]


def test_hf_policy_batched_equals_single_greedy(tiny_pair):
    from agentdistill.agent import AgentConfig, HFPolicy
    from agentdistill.modeling import load_causal_lm, load_tokenizer

    teacher_dir, _ = tiny_pair
    model, tok = load_causal_lm(teacher_dir), load_tokenizer(teacher_dir)
    tasks = make_env("hotpotqa").task_ids("test")[:3]
    cfg = AgentConfig(max_new_tokens=12, batch_size=8)
    batched = run_episodes("hotpotqa", tasks, HFPolicy(model, tok, cfg), max_steps=2)
    single = [run_episodes("hotpotqa", [t], HFPolicy(model, tok, cfg), max_steps=2)[0] for t in tasks]
    assert [r.trajectory.steps for r in batched] == [r.trajectory.steps for r in single]
    assert all(r.gen_tokens > 0 for r in batched)

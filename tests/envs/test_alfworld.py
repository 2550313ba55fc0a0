import random
import re
import time

import pytest

from agentdistill.envs import make_env
from agentdistill.envs.alfworld.env import AlfWorldEnv, _placement
from agentdistill.envs.alfworld.expert import Expert
from agentdistill.envs.alfworld.tasks import TASK_TYPES, TaskSpec, goal_reached, place_objects, task_specs
from agentdistill.envs.alfworld.world import OPENABLE, World, kind
from agentdistill.errors import ConfigError


def _by_type(env: AlfWorldEnv, split: str, per_type: int) -> list[str]:
    picked: dict[str, list[str]] = {t: [] for t in TASK_TYPES}
    for tid in env.task_ids(split):
        bucket = picked[env.task_type(tid)]
        if len(bucket) < per_type:
            bucket.append(tid)
    return [tid for ids in picked.values() for tid in ids]


def _expert_episode(env: AlfWorldEnv, task_id: str) -> list[tuple[str | None, str, str]]:
    """(thought, action, observation) per step, the first observation as a step with no action."""
    steps: list[tuple[str | None, str, str]] = [(None, "", env.reset(task_id))]
    for _ in range(env.max_steps):
        thought, action = env.expert_step()
        res = env.step(action)
        steps.append((thought, action, res.observation))
        if res.done:
            break
    return steps


def test_class_attributes_and_splits():
    env = make_env("alfworld", seed=0)
    assert isinstance(env, AlfWorldEnv)
    assert (env.name, env.format, env.max_steps) == ("alfworld", "alfworld", 50)
    assert env.task_types == TASK_TYPES and len(TASK_TYPES) == 6
    assert env.splits() == {"train": 3553, "dev": 140, "test": 134}
    for split, n in env.splits().items():
        ids = env.task_ids(split)
        assert len(ids) == n == len(set(ids))
    assert env.task_ids("test")[7] == "alfworld-test-0007"
    assert {env.task_type(t) for t in env.task_ids("test")} == set(TASK_TYPES)
    assert "think:" in env.instruction() and "put O in/on R" in env.instruction()


def test_unknown_split_and_task_id_raise_config_error():
    env = AlfWorldEnv()
    with pytest.raises(ConfigError, match="train, dev, test"):
        env.task_ids("valid_unseen")
    with pytest.raises(ConfigError):
        env.reset("alfworld-test-9999")
    with pytest.raises(ConfigError):
        env.task_type("webshop-test-0001")


@pytest.mark.parametrize("split", ["train", "test"])
def test_expert_solves_every_task_type(split):
    env = AlfWorldEnv(seed=0)
    ids = env.task_ids("test") if split == "test" else _by_type(env, "train", 20)
    solved: dict[str, list[bool]] = {t: [] for t in TASK_TYPES}
    for tid in ids:
        steps = _expert_episode(env, tid)
        assert env.result() == {"success": True, "reward": 1.0, "steps": len(steps) - 1}
        solved[env.task_type(tid)].append(True)
    assert all(len(v) >= 17 for v in solved.values())  # every type is covered


def test_first_observation_is_alfworld_text():
    env = AlfWorldEnv()
    obs = env.reset(env.task_ids("dev")[0])
    m = re.fullmatch(
        r"You are in the middle of a room\. Looking quickly around you, you see (a [a-z]+ \d+, )+and a [a-z]+ \d+\."
        r"\n\nYour task is to: [a-z ]+\.",
        obs,
    )
    assert m, obs
    receptacles = obs.split("you see ")[1].split(".")[0].split(", ")
    assert 10 <= len(receptacles) <= 25


def test_same_seed_same_tasks_and_episode_text():
    a, b = AlfWorldEnv(seed=3), AlfWorldEnv(seed=3)
    assert a.task_ids("train") == b.task_ids("train")
    assert [a.task_text(t) for t in a.task_ids("test")] == [b.task_text(t) for t in b.task_ids("test")]
    for tid in a.task_ids("test")[:5]:
        assert _expert_episode(a, tid) == _expert_episode(b, tid)


def test_different_seeds_differ():
    a, b = AlfWorldEnv(seed=0), AlfWorldEnv(seed=1)
    first_a = [a.reset(t) for t in a.task_ids("test")[:10]]
    first_b = [b.reset(t) for t in b.task_ids("test")[:10]]
    assert sum(x != y for x, y in zip(first_a, first_b, strict=True)) >= 9


def test_test_scenes_are_unseen_in_train():
    specs = task_specs(0)
    train_layouts = {s.layout for s in specs["train"]}
    train_goals = {(s.layout, s.task_type, s.obj, s.target) for s in specs["train"]}
    assert not {s.layout for s in specs["test"]} & train_layouts
    assert not {(s.layout, s.task_type, s.obj, s.target) for s in specs["test"]} & train_goals
    assert {s.layout for s in specs["dev"]} <= train_layouts  # dev is "seen", like valid_seen


INVALID = [
    "",
    "   ",
    "dance",
    "go to the moon",
    "go to cabinet 99",
    "take unicorn 1 from cabinet 1",
    "take",
    "put mug 1 in/on cabinet 1",
    "open countertop 1",
    "close sinkbasin 1",
    "heat apple 1 with fridge 1",
    "use mug 1",
    "examine wardrobe 1",
    "go to go to",
    "\x00\n\t",
    "ñandú 3",
    "take desklamp 1 from desk 1",
]


@pytest.mark.parametrize("action", INVALID)
def test_invalid_actions_do_nothing(action):
    env = AlfWorldEnv()
    env.reset(env.task_ids("test")[0])
    res = env.step(action)
    assert res.observation == "Nothing happens."
    assert res.info["invalid"] and res.reward == 0.0 and not res.done


def test_random_strings_never_crash():
    env = AlfWorldEnv()
    env.reset(env.task_ids("train")[1])
    rng = random.Random(0)
    words = ["go", "to", "take", "put", "from", "in/on", "open", "cabinet", "1", "mug", "2", "heat", "with", "x"]
    for _ in range(300):
        res = env.step(" ".join(rng.choice(words) for _ in range(rng.randint(0, 6))))
        assert isinstance(res.observation, str) and res.observation
        if res.done:
            env.reset(env.task_ids("train")[1])


def _hand_world() -> World:
    layout = ("cabinet 1", "countertop 1", "desk 1", "fridge 1", "microwave 1", "sinkbasin 1")
    contents = {"cabinet 1": ("mug 1", "cup 2"), "countertop 1": ("apple 1",), "desk 1": ("desklamp 1", "book 1")}
    return World(layout, contents)


def test_exact_observations_of_a_hand_checked_scene():
    w = _hand_world()
    assert w.intro() == (
        "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a countertop 1, "
        "a desk 1, a fridge 1, a microwave 1, and a sinkbasin 1."
    )
    script = [
        ("look", w.intro()),
        ("inventory", "You are not carrying anything."),
        ("take mug 1 from cabinet 1", "Nothing happens."),  # not there yet
        ("go to cabinet 1", "You arrive at cabinet 1. The cabinet 1 is closed."),
        ("take mug 1 from cabinet 1", "Nothing happens."),  # closed
        ("open cabinet 1", "You open the cabinet 1. The cabinet 1 is open. In it, you see a mug 1, and a cup 2."),
        ("take mug 1 from cabinet 1", "You pick up the mug 1 from the cabinet 1."),
        ("take cup 2 from cabinet 1", "Nothing happens."),  # hands full
        ("inventory", "You are carrying: a mug 1."),
        ("look", "You are facing the cabinet 1. Next to it, you see nothing."),
        ("close cabinet 1", "You close the cabinet 1."),
        ("go to cabinet 1", "Nothing happens."),  # already here
        ("go to sinkbasin 1", "You arrive at sinkbasin 1. On the sinkbasin 1, you see nothing."),
        ("clean mug 1 with sinkbasin 1", "You clean the mug 1 using the sinkbasin 1."),
        ("go to microwave 1", "You arrive at microwave 1. The microwave 1 is closed."),
        ("heat mug 1 with microwave 1", "You heat the mug 1 using the microwave 1."),
        ("go to countertop 1", "You arrive at countertop 1. On the countertop 1, you see a apple 1."),
        ("examine mug 1", "There's nothing special about mug 1."),
        ("put mug 1 in/on countertop 1", "You put the mug 1 in/on the countertop 1."),
        ("examine countertop 1", "On the countertop 1, you see a apple 1, and a mug 1."),
        ("go to desk 1", "You arrive at desk 1. On the desk 1, you see a desklamp 1, and a book 1."),
        ("take book 1 from desk 1", "You pick up the book 1 from the desk 1."),
        ("use desklamp 1", "You turn on the desklamp 1."),
        ("Put Book 1 on desk 1.", "You put the book 1 in/on the desk 1."),  # case, "on", final period
        ("go to fridge 1", "You arrive at fridge 1. The fridge 1 is closed."),
        ("open fridge 1", "You open the fridge 1. The fridge 1 is open. In it, you see nothing."),
        ("open fridge 1", "Nothing happens."),
    ]
    for action, expected in script:
        assert w.act(action)[0] == expected, action
    assert w.states["heat"] == {"mug 1"} and w.states["clean"] == {"mug 1"} and w.lit == {"desklamp 1"}


def _spec(task_type: str, obj: str, target: str | None) -> TaskSpec:
    return TaskSpec("alfworld-x", task_type, "kitchen", _hand_world().receptacles, obj, target, "", "k")


def test_goals_need_real_state_changes():
    heat = _spec("pick_heat_then_place", "mug", "countertop")
    w = _hand_world()
    for a in ["go to cabinet 1", "open cabinet 1", "take mug 1 from cabinet 1", "go to countertop 1"]:
        w.act(a)
    w.act("put mug 1 in/on countertop 1")
    assert goal_reached(_spec("pick_and_place", "mug", "countertop"), w)
    assert not goal_reached(heat, w)  # not hot
    for a in [
        "take mug 1 from countertop 1",
        "go to microwave 1",
        "heat mug 1 with microwave 1",
        "go to countertop 1",
    ]:
        w.act(a)
    w.act("put mug 1 in/on countertop 1")
    assert goal_reached(heat, w) and not goal_reached(_spec("pick_cool_then_place", "mug", "countertop"), w)
    two = _spec("pick_two_obj", "mug", "countertop")
    assert not goal_reached(two, w)
    light = _spec("look_at_obj_in_light", "book", None)
    w.act("go to desk 1")
    w.act("use desklamp 1")
    assert not goal_reached(light, w)  # lamp on, but the book is not held
    w.act("take book 1 from desk 1")
    assert goal_reached(light, w)


def test_step_cap_ends_episode_and_thinks_are_free():
    env = AlfWorldEnv()
    env.reset(env.task_ids("test")[2])
    for i in range(1, 51):
        assert env.step("think: I am stuck.").observation == "OK."
        res = env.step("look")
        assert res.done == (i == 50)
    assert env.result() == {"success": False, "reward": 0.0, "steps": 50}
    assert env.step("look").done


def test_reward_and_done_on_success():
    env = AlfWorldEnv()
    steps = _expert_episode(env, env.task_ids("dev")[3])
    assert env.step("look").observation == "Nothing happens."  # the episode is over
    assert steps[-1][1].startswith(("put ", "use "))
    assert env.result()["success"]


def test_expert_thoughts_are_sparse_and_varied():
    env = AlfWorldEnv()
    thoughts, actions = set(), 0
    for tid in env.task_ids("test")[:30]:
        steps = _expert_episode(env, tid)[1:]
        assert steps[0][0] is not None  # a plan at the start
        assert steps[-1][0] is not None  # and a word at the end
        thoughts |= {t for t, _, _ in steps if t}
        actions += len(steps)
        assert sum(t is not None for t, _, _ in steps) <= len(steps)
    assert len(thoughts) >= 10
    assert any(t.startswith("To solve the task, I need to find and take") for t in thoughts)
    assert any(re.fullmatch(r"Now I find an? \w+ \(\d+\)\. Next, I need to take it\.", t) for t in thoughts)


def test_expert_is_a_function_of_the_transcript():
    env = AlfWorldEnv()
    for tid in env.task_ids("test")[:20]:
        steps = _expert_episode(env, tid)
        replay = Expert(steps[0][2], tid)
        for thought, action, obs in steps[1:]:
            assert replay.act() == (thought, action)
            replay.observe(action, obs)


def test_expert_first_move_ignores_hidden_placement():
    for spec in task_specs(0)["test"][:30]:
        moves = set()
        for attempt in range(3):
            world = World(spec.layout, place_objects(spec, attempt))
            expert = Expert(f"{world.intro()}\n\nYour task is to: {spec.text}", spec.task_id)
            moves.add(expert.act())
        assert len(moves) == 1


def test_expert_searches_before_finding_hidden_objects():
    env, checked = AlfWorldEnv(), 0
    for tid in env.task_ids("train")[:400]:
        spec, contents = _placement(0, tid)
        hidden = {r for r, objs in contents.items() for o in objs if kind(o) == spec.obj}
        if not all(kind(r) in OPENABLE for r in hidden):
            continue
        steps = _expert_episode(env, tid)[1:]
        visits = [a.removeprefix("go to ") for _, a, _ in steps if a.startswith("go to ")]
        if visits[0] in hidden:
            continue  # the first place in the search order: finding it there at once is fair
        checked += 1
        first_hit = next(i for i, r in enumerate(visits) if r in hidden)
        assert first_hit >= 1 and len(set(visits[:first_hit])) == first_hit
    assert checked >= 20


def test_time_per_step_is_small(capsys):
    env = AlfWorldEnv()
    ids = env.task_ids("test")
    for tid in ids:
        env.reset(tid)  # placements drawn and cached outside the timing
    n, seconds = 0, 0.0
    for tid in ids:
        env.reset(tid)
        for _ in range(env.max_steps):
            action = env.expert_step()[1]
            t0 = time.perf_counter()
            res = env.step(action)
            seconds += time.perf_counter() - t0
            n += 1
            if res.done:
                break
    with capsys.disabled():
        print(f"\nalfworld: {1000 * seconds / n:.4f} ms/step over {n} expert steps")  # noqa: T201

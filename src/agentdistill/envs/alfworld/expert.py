"""The ALFWorld oracle: a searcher that knows only what the transcript shows.

``Expert`` is built from the first observation (receptacle list + task text) and is told every
``(action, observation)`` pair. It never reads the simulator, so a student that sees the same
transcript can imitate it: it searches likely receptacles in a fixed order (``OBJECT_PRIORS``, then
the rest as listed), opens closed ones, remembers what it saw, and writes a few short ReAct thoughts
(plan, found, next sub-goal, finish) worded from templates picked by a hash of the task id.
"""

import re
import zlib

from agentdistill.envs.alfworld.world import APPLIANCES, HOLDERS, OBJECT_PRIORS, kind

_FIRST = re.compile(r"Looking quickly around you, you see (.+?)\.\n\nYour task is to: (.+)$", re.S)
_TASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"put two (\w+) (in|on) (\w+)\."), "pick_two_obj"),
    (re.compile(r"find two (\w+) and put them (in|on) (\w+)\."), "pick_two_obj"),
    (re.compile(r"(?:look at|examine the) (\w+) (?:under|with) the desklamp\."), "look_at_obj_in_light"),
    (re.compile(r"(?:put a clean|clean some) (\w+) (?:and put it )?(in|on) (\w+)\."), "pick_clean_then_place"),
    (re.compile(r"(?:put a hot|heat some) (\w+) (?:and put it )?(in|on) (\w+)\."), "pick_heat_then_place"),
    (re.compile(r"(?:put a cool|cool some) (\w+) (?:and put it )?(in|on) (\w+)\."), "pick_cool_then_place"),
    (re.compile(r"put (?:a|some) (\w+) (in|on) (\w+)\."), "pick_and_place"),
)
_CHANGE = {"pick_clean_then_place": "clean", "pick_heat_then_place": "heat", "pick_cool_then_place": "cool"}
_ADJ = {"clean": "clean", "heat": "hot", "cool": "cool"}
_SEE = re.compile(r"you see (.+)\.$")
_ARRIVE = re.compile(r"You arrive at ([a-z]+ \d+)\. ")
_OPEN = re.compile(r"You open the ([a-z]+ \d+)\. ")
_CLOSE = re.compile(r"You close the ([a-z]+ \d+)\.")
_TAKE = re.compile(r"You pick up the ([a-z]+ \d+) from the ([a-z]+ \d+)\.")
_PUT = re.compile(r"You put the ([a-z]+ \d+) in/on the ([a-z]+ \d+)\.")
_CHANGED = re.compile(r"You (heat|cool|clean) the ([a-z]+ \d+) using the ([a-z]+ \d+)\.")
_LAMP = re.compile(r"You turn (on|off) the ([a-z]+ \d+)\.")

_THOUGHTS: dict[str, tuple[str, ...]] = {
    "plan": (
        "To solve the task, I need to {steps}. First I need to find {a_o}. {A_o} is more likely to appear in "
        "{likely}. I can check one by one, starting with {first}.",
        "The task asks me to {steps}. I will look for {a_o} first; {a_o} is usually in {likely}. "
        "Let me check them one by one, starting with {first}.",
        "My plan: {steps}. To find {a_o}, the likely places are {likely}. I will search them in order, "
        "beginning with {first}.",
    ),
    "found": (
        "Now I find {a_o} ({n}). Next, I need to take it.",
        "I see {a_o} ({n}) at {r}. Let me take it.",
        "Found {a_o} ({n}) at {r}. I will pick it up.",
    ),
    "recall": (
        "I saw {a_o} ({n}) at {r} before. Next, I need to go there and take it.",
        "I remember {a_o} ({n}) at {r}. I will go back and take it.",
        "There was {a_o} ({n}) at {r}, so I go back to take it.",
    ),
    "took": (
        "Now I take {a_o} ({n}). Next, I need to {goal}.",
        "I am carrying the {o} ({n}) now. Next, I should {goal}.",
        "Got the {o} ({n}). The next step is to {goal}.",
    ),
    "changed": (
        "Now I {verb} the {o} ({n}). Next, I need to put it {p} {t}.",
        "The {o} ({n}) is {adj} now. Next, I should put it {p} {t}.",
        "The {o} ({n}) is {adj}. Now I bring it to {t} and put it there.",
    ),
    "placed": (
        "Now I put the first {o} {p} {t}. Next, I need to find the second {o}. {then}",
        "One {o} is {p} {t}. I still need a second {o}. {then}",
        "The first {o} is in place. Now I need another {o}. {then}",
    ),
    "fallback": (
        "{A_o} is not in any of the likely places I checked. I will check the remaining places one by one, "
        "starting with {first}.",
        "No {o} in the usual places. I should look through the other receptacles, starting with {first}.",
        "I have checked the likely places without finding {a_o}. Let me try the rest, beginning with {first}.",
    ),
    "finish_put": (
        "I am at {t} with the {desc} ({n}). Now I put it {p} {t} to finish the task.",
        "Now I can put the {desc} ({n}) {p} {t}. That completes the task.",
        "Everything is ready: the {desc} ({n}) goes {p} {t}, and the task is done.",
    ),
    "finish_lamp": (
        "Now I have the {o} ({n}) and the desklamp ({m}) is here. I turn it on to look at the {o} under it.",
        "The desklamp ({m}) is here and I hold the {o} ({n}). Turning on the desklamp finishes the task.",
        "I can examine the {o} ({n}) with the desklamp ({m}) here: I turn the desklamp on.",
    ),
}


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _items(observation: str) -> list[str] | None:
    """The objects an observation shows inside a receptacle, or ``None`` if it shows none."""
    m = _SEE.search(observation)
    if not m:
        return None
    text = m.group(1)
    return [] if text == "nothing" else [x.removeprefix("and ").removeprefix("a ") for x in text.split(", ")]


class Expert:
    """A transcript-only oracle for one episode.

    Args:
        first_observation: the episode's first observation (receptacles and "Your task is to: ...").
        task_id: seeds the choice among thought templates (wording only, never the policy).
    """

    def __init__(self, first_observation: str, task_id: str) -> None:
        m = _FIRST.search(first_observation)
        if not m:
            raise ValueError("not an ALFWorld first observation")
        self.receptacles = [x.removeprefix("and ").removeprefix("a ") for x in m.group(1).split(", ")]
        text = m.group(2).strip()
        for pattern, task_type in _TASKS:
            t = pattern.fullmatch(text)
            if t:
                self.task_type = task_type
                self.obj, self.prep, self.target = (*t.groups(), None, None)[:3]
                break
        else:
            raise ValueError(f"unknown ALFWorld task: {text!r}")
        self.task_id = task_id
        self.change = _CHANGE.get(self.task_type)
        self.seen: dict[str, list[str]] = {}  # receptacle -> objects last seen in it
        self.closed: set[str] = set()
        self.states: dict[str, set[str]] = {}  # object -> {"heat", "cool", "clean"}
        self.lit: set[str] = set()
        self.location: str | None = None
        self.holding: str | None = None
        self.steps = 0
        self.last = ""  # the last observation
        self.revealed: set[str] = set()  # objects the last observation showed for the first time
        self.ever_seen: set[str] = set()

    # ---- memory -------------------------------------------------------------------------------

    def observe(self, action: str, observation: str) -> None:
        """Update memory from one step of the transcript (the action is only counted)."""
        self.steps += 1
        self.last, self.revealed = observation, set()
        if m := _ARRIVE.match(observation):
            self.location = m.group(1)
        if m := _ARRIVE.match(observation) or _OPEN.match(observation):
            r, items = m.group(1), _items(observation)
            if items is None:
                self.closed.add(r)
            else:
                self.closed.discard(r)
                self.seen[r], self.revealed = items, set(items) - self.ever_seen
                self.ever_seen.update(items)
        elif m := _CLOSE.match(observation):
            self.closed.add(m.group(1))
        elif m := _TAKE.match(observation):
            self.holding = m.group(1)
            if m.group(1) in self.seen.get(m.group(2), []):
                self.seen[m.group(2)].remove(m.group(1))
        elif m := _PUT.match(observation):
            self.holding = None
            self.seen.setdefault(m.group(2), []).append(m.group(1))
        elif m := _CHANGED.match(observation):
            self.states.setdefault(m.group(2), set()).add(m.group(1))
        elif m := _LAMP.match(observation):
            (self.lit.add if m.group(1) == "on" else self.lit.discard)(m.group(2))

    # ---- policy -------------------------------------------------------------------------------

    def act(self) -> tuple[str | None, str]:
        """The next ``(thought or None, action)``."""
        action, situation, slots = self._decide()
        if self.steps == 0:
            situation = "plan"
            slots |= self._plan_slots(action)
        if situation is None:
            return None, action
        templates = _THOUGHTS[situation]
        pick = zlib.crc32(f"{self.task_id}:{situation}".encode()) % len(templates)
        return templates[pick].format(**slots), action

    def _decide(self) -> tuple[str, str | None, dict[str, str]]:
        """The action, plus the situation worth a thought (or ``None``) and its template slots."""
        h = self.holding
        if h is not None and kind(h) != self.obj:  # carrying something useless: leave it here
            return self._at(self.location or "", f"put {h} in/on {self.location}"), None, {}
        if h is None:
            return self._fetch()
        slots = {"o": self.obj, "a_o": _a(self.obj), "n": h.split()[1], "p": self.prep or "in"}
        took = bool(_TAKE.match(self.last))
        if self.change and self.change not in self.states.get(h, set()):
            app = self._appliance()
            # like ALFWorld, an appliance works closed: no need to open it
            action = f"go to {app}" if self.location != app else f"{self.change} {h} with {app}"
            goal = f"{self.change} it with {app}" if self.location == app else f"go to {app} and {self.change} it"
            return action, "took" if took else None, slots | {"goal": goal}
        if self.task_type == "look_at_obj_in_light":
            return self._light(slots, took)
        t = self._target()
        action = self._at(t, f"put {h} in/on {t}")
        changed = bool(_CHANGED.match(self.last))
        slots |= {"t": t, "goal": f"put it {slots['p']} {t}"}
        if action.startswith("put "):
            two = self.task_type == "pick_two_obj"
            desc = "second " + self.obj if two else f"{_ADJ[self.change]} {self.obj}" if self.change else self.obj
            if not two or any(kind(o) == self.obj for o in self.seen.get(t, [])):
                return action, "finish_put", slots | {"desc": desc}
        if changed:
            verb, adj = self.change or "", _ADJ.get(self.change or "", "")
            return action, "changed", slots | {"verb": verb, "adj": adj}
        return action, "took" if took else None, slots

    def _at(self, r: str, action: str) -> str:
        """Go to ``r`` first, open it if it is closed, then do ``action``."""
        if self.location != r:
            return f"go to {r}"
        if r in self.closed:
            return f"open {r}"
        return action

    def _fetch(self) -> tuple[str, str | None, dict[str, str]]:
        """Not holding anything: take a known goal object, or search on."""
        known = [
            (r, o) for r, objs in self.seen.items() if kind(r) != self.target for o in objs if kind(o) == self.obj
        ]
        put = _PUT.match(self.last)
        placed = put is not None and kind(put.group(1)) == self.obj and kind(put.group(2)) == self.target
        if known:
            r, o = known[0]
            slots = {"o": self.obj, "a_o": _a(self.obj), "n": o.split()[1], "r": r}
            if placed:
                then = f"I saw {_a(self.obj)} ({slots['n']}) at {r}, so I will go back there."
                return self._at(r, f"take {o} from {r}"), "placed", slots | self._put_slots() | {"then": then}
            if self.location == r:
                return f"take {o} from {r}", "found" if o in self.revealed else None, slots
            return f"go to {r}", "recall", slots
        action, situation, slots = self._search(self.obj)
        if placed:
            then = f"I have not seen another one yet, so I continue with {slots['first']}."
            return action, "placed", slots | self._put_slots() | {"then": then}
        return action, situation, slots

    def _light(self, slots: dict[str, str], took: bool) -> tuple[str, str | None, dict[str, str]]:
        lamps = [(r, o) for r, objs in self.seen.items() for o in objs if kind(o) == "desklamp"]
        if not lamps:
            action, situation, found = self._search("desklamp")
            if not took:
                return action, situation, found
            goal = f"find a desklamp. {self._likely_sentence('desklamp', found['first'])}".rstrip(".")
            return action, "took", slots | {"goal": goal}
        r, lamp = lamps[0]
        slots |= {"m": lamp.split()[1]}
        if self.location != r:
            return f"go to {r}", "took" if took else None, slots | {"goal": f"go to {r} and use the desklamp there"}
        return f"use {lamp}", "finish_lamp", slots

    def _search(self, obj: str) -> tuple[str, str | None, dict[str, str]]:
        """Next unchecked receptacle in the search order for ``obj`` (open it when standing at it)."""
        likely, rest = self._order(obj)
        slots = {"o": obj, "a_o": _a(obj), "A_o": _a(obj).capitalize()}
        for r in likely + rest:
            if r in self.seen:
                continue
            slots["first"] = r
            # the first step outside the likely places is worth saying (later ones continue from there)
            fallback = r in rest and r != self.location and self.location not in rest
            return self._at(r, f"open {r}"), "fallback" if fallback else None, slots
        slots["first"] = self.location or self.receptacles[0]
        return "look", None, slots  # everything checked: nothing left to search

    def _order(self, obj: str) -> tuple[list[str], list[str]]:
        """(likely, rest): receptacles of the prior types in prior then numeric order; the others as listed."""
        priors = [t for t in OBJECT_PRIORS.get(obj, ()) if t != self.target]
        likely = [r for t in priors for r in self.receptacles if kind(r) == t]
        rest = [r for r in self.receptacles if r not in likely and kind(r) != self.target]
        # plain furniture before appliances and rails: a toaster rarely holds anything
        return likely, sorted(rest, key=lambda r: kind(r) not in HOLDERS)

    def _likely_sentence(self, obj: str, first: str) -> str:
        return f"{_a(obj).capitalize()} is more likely to appear in {self._likely_text(obj)}. " + (
            f"I can check one by one, starting with {first}."
        )

    def _likely_text(self, obj: str) -> str:
        likely, _ = self._order(obj)
        types = list(dict.fromkeys(kind(r) for r in likely))
        count = {t: sum(kind(r) == t for r in self.receptacles) for t in types}
        return ", ".join(f"{t} ({'1' if count[t] == 1 else f'1-{count[t]}'})" for t in types)

    def _plan_slots(self, action: str) -> dict[str, str]:
        o, a_o = self.obj, _a(self.obj)
        put = f"put it {self.prep} {self.target}"
        if self.task_type == "look_at_obj_in_light":
            steps = f"find and take {a_o}, then find and use a desklamp"
        elif self.task_type == "pick_two_obj":
            steps = f"find and take the first {o}, then {put}, then find and take the second {o}, then {put}"
        elif self.change:
            app = kind(self._appliance())
            steps = f"find and take {a_o}, then {self.change} it with {app}, then {put}"
        else:
            steps = f"find and take {a_o}, then {put}"
        first = action.split(" ", 2)[-1] if action.startswith("go to ") else self.receptacles[0]
        return {"steps": steps, "a_o": a_o, "A_o": a_o.capitalize(), "likely": self._likely_text(o), "first": first}

    def _put_slots(self) -> dict[str, str]:
        return {"t": self._target(), "p": self.prep or "in"}

    def _appliance(self) -> str:
        for t in APPLIANCES[self.change or "heat"]:
            for r in self.receptacles:
                if kind(r) == t:
                    return r
        return self.receptacles[0]

    def _target(self) -> str:
        """The receptacle to put into: one already holding a goal object (pick two), else the first."""
        mine = [r for r in self.receptacles if kind(r) == self.target]
        for r in mine:
            if any(kind(o) == self.obj for o in self.seen.get(r, [])):
                return r
        return mine[0] if mine else self.receptacles[0]

"""The household of the embedded ALFWorld: the catalog of rooms and objects, and the text simulator.

``ROOMS`` and ``OBJECT_PRIORS`` use ALFRED's names in lowercase. ``World`` holds one episode's mutable
state and answers ALFWorld's commands in ALFWorld's words ("You arrive at cabinet 1. The cabinet 1 is
closed.", "You pick up the mug 1 from the countertop 1."); anything it cannot do is "Nothing happens.".
"""

import re
from collections.abc import Mapping

NOTHING_HAPPENS = "Nothing happens."

OPENABLE = frozenset({"cabinet", "drawer", "fridge", "microwave", "safe"})

# Room type -> receptacle type -> (min, max) instances. Layouts keep 10-25 receptacles in all.
ROOMS: dict[str, dict[str, tuple[int, int]]] = {
    "kitchen": {
        "cabinet": (3, 9), "coffeemachine": (1, 1), "countertop": (1, 3), "diningtable": (0, 1),
        "drawer": (1, 5), "fridge": (1, 1), "garbagecan": (1, 1), "microwave": (1, 1), "shelf": (0, 3),
        "sinkbasin": (1, 1), "stoveburner": (2, 4), "toaster": (1, 1),
    },
    "bedroom": {
        "armchair": (0, 1), "bed": (1, 1), "desk": (0, 2), "drawer": (2, 6), "dresser": (0, 1),
        "garbagecan": (1, 1), "laundryhamper": (0, 1), "safe": (0, 1), "shelf": (1, 6), "sidetable": (0, 2),
    },
    "bathroom": {
        "bathtubbasin": (0, 1), "cabinet": (2, 4), "countertop": (1, 1), "drawer": (0, 4), "garbagecan": (1, 1),
        "handtowelholder": (0, 2), "shelf": (0, 3), "sinkbasin": (1, 2), "toilet": (1, 1),
        "toiletpaperhanger": (1, 1), "towelholder": (1, 1),
    },
    "livingroom": {
        "armchair": (0, 2), "cabinet": (0, 4), "coffeetable": (0, 2), "diningtable": (0, 1), "drawer": (0, 6),
        "dresser": (0, 1), "garbagecan": (1, 1), "ottoman": (0, 1), "safe": (0, 1), "shelf": (0, 6),
        "sidetable": (0, 3), "sofa": (1, 1), "tvstand": (0, 1),
    },
}  # fmt: skip

# Object types that each room holds (the desklamp is placed separately, in bedrooms and living rooms).
ROOM_OBJECTS: dict[str, tuple[str, ...]] = {
    "kitchen": (
        "apple", "bread", "butterknife", "bowl", "cup", "dishsponge", "egg", "fork", "kettle", "knife", "ladle",
        "lettuce", "mug", "pan", "peppershaker", "plate", "pot", "potato", "saltshaker", "soapbottle", "spatula",
        "spoon", "tomato", "winebottle",
    ),
    "bedroom": (
        "alarmclock", "book", "bowl", "cd", "cellphone", "cloth", "creditcard", "keychain", "laptop", "mug", "pen",
        "pencil", "pillow", "teddybear", "vase",
    ),
    "bathroom": (
        "candle", "cloth", "dishsponge", "handtowel", "soapbar", "soapbottle", "spraybottle", "tissuebox",
        "toiletpaper", "towel",
    ),
    "livingroom": (
        "bowl", "box", "cellphone", "creditcard", "keychain", "laptop", "newspaper", "pillow", "plate",
        "remotecontrol", "statue", "tissuebox", "vase", "watch",
    ),
}  # fmt: skip

# Object type -> receptacle types it is usually found in, most likely first. Placement mostly follows
# it, and the expert searches in this order: it is common sense a student can learn from transcripts.
OBJECT_PRIORS: dict[str, tuple[str, ...]] = {
    "alarmclock": ("desk", "sidetable", "dresser", "shelf"),
    "apple": ("countertop", "diningtable", "fridge", "sinkbasin", "garbagecan", "microwave"),
    "book": ("bed", "desk", "sidetable", "shelf", "dresser", "drawer"),
    "bowl": ("cabinet", "countertop", "diningtable", "shelf", "desk", "dresser", "sidetable", "coffeetable", "fridge"),
    "box": ("coffeetable", "sofa", "sidetable", "dresser", "armchair", "shelf", "diningtable", "ottoman"),
    "bread": ("countertop", "diningtable", "fridge", "cabinet", "microwave"),
    "butterknife": ("drawer", "countertop", "diningtable", "sinkbasin"),
    "candle": ("countertop", "toilet", "shelf", "cabinet", "bathtubbasin"),
    "cd": ("desk", "drawer", "shelf", "sidetable", "dresser", "safe", "garbagecan"),
    "cellphone": ("bed", "desk", "sidetable", "sofa", "coffeetable", "dresser", "armchair", "drawer", "shelf"),
    "cloth": ("countertop", "bathtubbasin", "cabinet", "laundryhamper", "drawer", "dresser", "shelf"),
    "creditcard": ("desk", "dresser", "sidetable", "coffeetable", "drawer", "shelf", "armchair", "sofa"),
    "cup": ("countertop", "cabinet", "diningtable", "shelf", "fridge", "sinkbasin", "microwave"),
    "desklamp": ("desk", "sidetable", "dresser"),
    "dishsponge": ("sinkbasin", "countertop", "cabinet", "drawer", "diningtable", "bathtubbasin", "toilet"),
    "egg": ("fridge", "countertop", "diningtable", "sinkbasin", "garbagecan", "microwave"),
    "fork": ("drawer", "countertop", "diningtable", "sinkbasin"),
    "handtowel": ("handtowelholder", "countertop", "cabinet"),
    "kettle": ("stoveburner", "countertop", "cabinet", "shelf", "diningtable"),
    "keychain": ("dresser", "sidetable", "desk", "coffeetable", "drawer", "shelf", "safe", "sofa"),
    "knife": ("countertop", "diningtable", "drawer", "sinkbasin"),
    "ladle": ("drawer", "countertop", "diningtable", "sinkbasin"),
    "laptop": ("bed", "desk", "sofa", "coffeetable", "diningtable", "dresser", "armchair"),
    "lettuce": ("fridge", "countertop", "diningtable", "sinkbasin"),
    "mug": ("countertop", "cabinet", "coffeemachine", "diningtable", "shelf", "desk", "sidetable", "sinkbasin"),
    "newspaper": ("sofa", "coffeetable", "sidetable", "armchair", "diningtable", "ottoman"),
    "pan": ("stoveburner", "countertop", "cabinet", "diningtable", "sinkbasin"),
    "pen": ("desk", "sidetable", "drawer", "shelf", "dresser"),
    "pencil": ("desk", "sidetable", "drawer", "shelf", "dresser"),
    "peppershaker": ("countertop", "cabinet", "diningtable", "shelf", "drawer"),
    "pillow": ("bed", "sofa", "armchair"),
    "plate": ("cabinet", "countertop", "diningtable", "shelf", "coffeetable", "fridge", "sinkbasin"),
    "pot": ("stoveburner", "cabinet", "countertop", "diningtable", "shelf", "sinkbasin"),
    "potato": ("fridge", "countertop", "diningtable", "sinkbasin", "garbagecan", "microwave"),
    "remotecontrol": ("coffeetable", "sofa", "armchair", "sidetable", "tvstand", "dresser"),
    "saltshaker": ("countertop", "cabinet", "diningtable", "shelf", "drawer"),
    "soapbar": ("bathtubbasin", "countertop", "sinkbasin", "toilet", "cabinet"),
    "soapbottle": ("countertop", "cabinet", "toilet", "shelf", "garbagecan", "sinkbasin"),
    "spatula": ("drawer", "countertop", "diningtable", "sinkbasin"),
    "spoon": ("drawer", "countertop", "diningtable", "sinkbasin"),
    "spraybottle": ("toilet", "cabinet", "countertop", "shelf", "garbagecan"),
    "statue": ("shelf", "coffeetable", "dresser", "sidetable", "tvstand", "diningtable"),
    "teddybear": ("bed", "dresser", "shelf", "armchair"),
    "tissuebox": ("toilet", "countertop", "shelf", "coffeetable", "sidetable", "dresser"),
    "toiletpaper": ("toiletpaperhanger", "toilet", "cabinet", "countertop", "shelf", "drawer"),
    "tomato": ("fridge", "countertop", "diningtable", "sinkbasin", "garbagecan", "microwave"),
    "towel": ("towelholder", "bathtubbasin", "countertop", "cabinet"),
    "vase": ("shelf", "dresser", "coffeetable", "sidetable", "desk", "tvstand"),
    "watch": ("coffeetable", "sidetable", "dresser", "shelf", "drawer", "tvstand"),
    "winebottle": ("fridge", "countertop", "diningtable", "cabinet", "shelf"),
}

# Where an object may also be left by chance: any plain holder (not an appliance or a towel rail).
HOLDERS = frozenset({
    "armchair", "bed", "cabinet", "coffeetable", "countertop", "desk", "diningtable", "drawer", "dresser",
    "garbagecan", "ottoman", "safe", "shelf", "sidetable", "sofa", "tvstand",
})  # fmt: skip

# Appliance type used by each state-changing verb ("clean" also works at a bathtubbasin).
APPLIANCES: dict[str, tuple[str, ...]] = {
    "heat": ("microwave",),
    "cool": ("fridge",),
    "clean": ("sinkbasin", "bathtubbasin"),
}

_NAME = r"([a-z]+ \d+)"
_COMMANDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("go", re.compile(rf"go to {_NAME}")),
    ("open", re.compile(rf"open {_NAME}")),
    ("close", re.compile(rf"close {_NAME}")),
    ("take", re.compile(rf"take {_NAME} from {_NAME}")),
    ("put", re.compile(rf"put {_NAME} (?:in/on|in|on) {_NAME}")),
    ("change", re.compile(rf"(heat|cool|clean) {_NAME} with {_NAME}")),
    ("use", re.compile(rf"use {_NAME}")),
    ("examine", re.compile(rf"examine {_NAME}")),
    ("inventory", re.compile(r"inventory")),
    ("look", re.compile(r"look")),
)


def kind(name: str) -> str:
    """The type of a numbered name: ``kind("cabinet 12") == "cabinet"``."""
    return name.rsplit(" ", 1)[0]


def listing(names: list[str] | tuple[str, ...]) -> str:
    """ALFWorld's enumeration: "nothing", "a mug 1", "a mug 1, and a cup 2", "a A, a B, and a C"."""
    if not names:
        return "nothing"
    items = [f"a {n}" for n in names]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + ", and " + items[-1]


class World:
    """One episode's state: where every object is, what is open, hot, cool, clean or lit, what is held.

    Args:
        receptacles: the room's receptacles in the order of the first observation.
        contents: receptacle -> objects in it at the start, in the order they are listed.
    """

    def __init__(self, receptacles: tuple[str, ...], contents: Mapping[str, tuple[str, ...]]) -> None:
        self.receptacles = receptacles
        self.contents: dict[str, list[str]] = {r: list(contents.get(r, ())) for r in receptacles}
        self.where: dict[str, str] = {o: r for r, objs in self.contents.items() for o in objs}
        self.opened: set[str] = set()
        self.location: str | None = None
        self.holding: str | None = None
        self.states: dict[str, set[str]] = {"heat": set(), "cool": set(), "clean": set()}
        self.lit: set[str] = set()

    def intro(self) -> str:
        """The first sentence of an episode, listing every receptacle."""
        return f"You are in the middle of a room. Looking quickly around you, you see {listing(self.receptacles)}."

    def act(self, command: str) -> tuple[str, bool]:
        """Apply one command; returns ``(observation, valid)``. Never raises on bad input."""
        text = " ".join(command.lower().split()).rstrip(".")
        for verb, pattern in _COMMANDS:
            m = pattern.fullmatch(text)
            if m:
                obs = getattr(self, f"_{verb}")(*m.groups())
                return (obs, True) if obs is not None else (NOTHING_HAPPENS, False)
        return NOTHING_HAPPENS, False

    def visible(self, receptacle: str) -> bool:
        """Whether the inside of ``receptacle`` can be seen (it is open or has no door)."""
        return kind(receptacle) not in OPENABLE or receptacle in self.opened

    def describe(self, r: str) -> str:
        """What is seen at ``r``: "The cabinet 1 is closed." / "On the desk 1, you see nothing."."""
        if kind(r) not in OPENABLE:
            return f"On the {r}, you see {listing(self.contents[r])}."
        if r not in self.opened:
            return f"The {r} is closed."
        return f"The {r} is open. In it, you see {listing(self.contents[r])}."

    def _here(self, r: str) -> bool:
        return r in self.contents and r == self.location

    def _go(self, r: str) -> str | None:
        if r not in self.contents or r == self.location:
            return None
        self.location = r
        return f"You arrive at {r}. {self.describe(r)}"

    def _open(self, r: str) -> str | None:
        if not self._here(r) or kind(r) not in OPENABLE or r in self.opened:
            return None
        self.opened.add(r)
        return f"You open the {r}. {self.describe(r)}"

    def _close(self, r: str) -> str | None:
        if not self._here(r) or r not in self.opened:
            return None
        self.opened.discard(r)
        return f"You close the {r}."

    def _take(self, o: str, r: str) -> str | None:
        if self.holding is not None or not self._here(r) or not self.visible(r) or self.where.get(o) != r:
            return None
        if kind(o) == "desklamp":  # lamps stay where they stand
            return None
        self.contents[r].remove(o)
        del self.where[o]
        self.holding = o
        return f"You pick up the {o} from the {r}."

    def _put(self, o: str, r: str) -> str | None:
        if self.holding != o or not self._here(r) or not self.visible(r):
            return None
        self.contents[r].append(o)
        self.where[o] = r
        self.holding = None
        return f"You put the {o} in/on the {r}."

    def _change(self, verb: str, o: str, r: str) -> str | None:
        if self.holding != o or not self._here(r) or kind(r) not in APPLIANCES[verb]:
            return None
        self.states[verb].add(o)
        return f"You {verb} the {o} using the {r}."

    def _use(self, lamp: str) -> str | None:
        if kind(lamp) != "desklamp" or self.location is None or self.where.get(lamp) != self.location:
            return None
        if lamp in self.lit:
            self.lit.discard(lamp)
            return f"You turn off the {lamp}."
        self.lit.add(lamp)
        return f"You turn on the {lamp}."

    def _examine(self, x: str) -> str | None:
        if self._here(x):
            return self.describe(x)
        seen_here = self.location is not None and self.visible(self.location) and self.where.get(x) == self.location
        if x == self.holding or seen_here:
            return f"There's nothing special about {x}."
        return None

    def _inventory(self) -> str:
        if self.holding is None:
            return "You are not carrying anything."
        return f"You are carrying: a {self.holding}."

    def _look(self) -> str:
        if self.location is None:
            return self.intro()
        return f"You are facing the {self.location}. Next to it, you see nothing."

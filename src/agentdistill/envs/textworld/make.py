"""Generate a seeded set of TextWorld games offline, with TextWorld's own generator (what ``tw-make custom`` runs).

    agentdistill make-games --env textworld --out games --count 20 --seed 0 --world_size 3 --quest_length 3

Game ``i`` of a set is drawn from ``sha256(f"{seed}:{i}:{attempt}")``, so a set is reproducible and two
seeds give different games; an ``attempt`` whose quest cannot be generated under the options is
retried with the next. Each game is ``game-NNNN.z8`` with the ``.json`` (quest, walkthrough) beside it.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

from agentdistill.errors import ConfigError, require_extra

ATTEMPTS = 20


@dataclass(frozen=True)
class TextWorldGameOptions:
    """The world and quest of each game (``tw-make custom``'s options of the same names)."""

    world_size: int = 5  # rooms
    nb_objects: int = 10  # objects, at least
    quest_length: int = 5  # commands the quest needs, at most (``quest_min_length`` to it)
    quest_min_length: int = 1
    theme: str = "house"

    def __post_init__(self) -> None:
        for name in ("world_size", "nb_objects", "quest_length", "quest_min_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1; got {getattr(self, name)}")
        if self.quest_min_length > self.quest_length:
            raise ConfigError(f"--quest_min_length {self.quest_min_length} exceeds --quest_length {self.quest_length}")


def game_seed(seed: int, index: int, attempt: int) -> int:
    return int(hashlib.sha256(f"{seed}:{index}:{attempt}".encode()).hexdigest()[:8], 16)


def make_textworld_game(path: Path, seed: int, index: int, opts: TextWorldGameOptions) -> Path:
    """Generate and compile game ``index`` of the set ``seed`` to ``path`` (a ``.z8``); returns it.

    Raises:
        ConfigError: no quest could be generated under ``opts`` in ``ATTEMPTS`` tries.
    """
    textworld = require_extra("textworld", "textworld", "make-games --env textworld")
    from textworld.generator import QuestGenerationError

    for attempt in range(ATTEMPTS):
        options = textworld.GameOptions()
        options.seeds = game_seed(seed, index, attempt)
        options.nb_rooms, options.nb_objects = opts.world_size, opts.nb_objects
        options.chaining.min_length, options.chaining.max_length = opts.quest_min_length, opts.quest_length
        options.chaining.max_depth = opts.quest_length
        options.grammar.theme = opts.theme
        options.path = str(path)
        options.file_ext = path.suffix
        options.force_recompile = True
        try:
            game_file, _ = textworld.make(options)
        except QuestGenerationError:
            continue
        return Path(game_file)
    raise ConfigError(
        f"no TextWorld quest of length {opts.quest_min_length}-{opts.quest_length} fits a world of "
        f"{opts.world_size} room(s) and {opts.nb_objects} object(s); raise --world_size/--nb_objects or lower --quest_length"
    )

"""ALFWorld's TextWorld engine, as ``AlfredTWEnv`` builds it, and the two command grammars of ALFWorld.

``start_game`` loads a game (a ``game.tw-pddl`` file or its JSON) into TextWorld's ``PddlEnv`` behind the
package's ``AlfredDemangler`` (ids -> "mug 1") and ``AlfredInfos`` wrappers. The planner expert is the
engine's ``policy_commands`` (Fast Downward from the current state), which is what ALFWorld's own
``AlfredExpert(expert_type="planner")`` reads.

ALFWorld's grammar has changed: the games of ``alfworld`` >= 0.3 say ``move X to Y`` where the ReAct
transcripts (and the embedded env) say ``put X in/on Y``. ``to_engine`` accepts both (and ``put X in Y``,
``put X on Y``); ``to_speech`` writes the engine's commands and feedback in the grammar the env speaks.
"""

import re
from typing import Any

from agentdistill.errors import require_extra

_PUT = re.compile(r"^put (.+?) (?:in/on|into|onto|in|on) (.+)$")
_MOVE = re.compile(r"^move (.+?) to (.+)$")
_MOVED = re.compile(r"^You move the (.+?) to the (.+?)\.$", re.MULTILINE)


def to_engine(action: str) -> str:
    """A command as the engine knows it: lower case, single spaces, ``put X in/on Y`` -> ``move X to Y``."""
    action = " ".join(action.lower().split())
    m = _PUT.match(action)
    return f"move {m.group(1)} to {m.group(2)}" if m else action


def to_speech(text: str, grammar: str) -> str:
    """A command or observation of the engine in the env's grammar (``put``: ReAct's words; ``move``: as is)."""
    if grammar == "move":
        return text
    m = _MOVE.match(text)
    if m:
        return f"put {m.group(1)} in/on {m.group(2)}"
    return _MOVED.sub(r"You put the \1 in/on the \2.", text)


def start_game(game: str | dict[str, Any], policy: bool) -> Any:
    """A loaded (not yet reset) ALFWorld game: ``PddlEnv`` + ``AlfredDemangler`` + ``AlfredInfos``.

    Args:
        game: a ``.tw-pddl`` file or its JSON content.
        policy: request ``policy_commands`` (the planner's plan; costs a Fast Downward call per step).
    """
    textworld = require_extra("textworld", "alfworld", "--env alfworld-tw")
    tw_env = require_extra("alfworld.agents.environment.alfred_tw_env", "alfworld", "--env alfworld-tw")
    from textworld.envs import PddlEnv

    infos = textworld.EnvInfos(won=True, admissible_commands=True, policy_commands=policy, extras=["gamefile"])
    env = tw_env.AlfredInfos(tw_env.AlfredDemangler(PddlEnv(infos), shuffle=False))
    env.load(game)
    return env

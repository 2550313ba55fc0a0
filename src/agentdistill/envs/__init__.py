"""Environment registry: name -> ``"module:Class"``, imported lazily by ``make_env``."""

import importlib
from typing import Any

from agentdistill.envs.base import AgentEnv, StepResult
from agentdistill.errors import ConfigError

ENVS: dict[str, str] = {
    "alfworld": "agentdistill.envs.alfworld.env:AlfWorldEnv",
    "webshop": "agentdistill.envs.webshop.env:WebShopEnv",
    "hotpotqa": "agentdistill.envs.hotpotqa.env:HotpotQAEnv",
    "webshop-http": "agentdistill.envs.webshop.http_env:WebShopHTTPEnv",
    # real engines over game files (optional extras; they need --games)
    "textworld": "agentdistill.envs.textworld.env:TextWorldEnv",
    "alfworld-tw": "agentdistill.envs.alfworld_tw.env:AlfworldTWEnv",
}


# Flags that say where an env's tasks come from, for the envs that read them from outside: the same
# flags on collect, evaluate, play and run (top-level keys of a run config, beside env_seed).
SOURCE_HELP: dict[str, str] = {
    "data": "hotpotqa only: HotPotQA questions, a JSON / JSON Lines file (original or Hugging Face hotpot_qa "
    "schema) or a datasets save_to_disk directory, or one per split: train=FILE,test=FILE[,dev=FILE].",
    "questions": "hotpotqa --data only: ReAct's shuffled evaluation questions in the test split (default 500).",
    "wiki": "hotpotqa --data only: a {title, text} JSON Lines Wikipedia dump every question searches (full wiki).",
    "webshop_url": "webshop-http only: the WebShop server, e.g. http://127.0.0.1:3000 (agentdistill serve-webshop).",
    "games": "textworld / alfworld-tw only: the games, a folder, a glob or a comma-separated list "
    "(alfworld-tw default: $ALFWORLD_DATA; make some with `agentdistill make-games`).",
}
# flag -> (the envs it applies to, the make_env keyword)
_SOURCE_OF = {"data": (("hotpotqa",), "data"), "questions": (("hotpotqa",), "questions"),
              "wiki": (("hotpotqa",), "wiki"), "webshop_url": (("webshop-http",), "url"),
              "games": (("textworld", "alfworld-tw"), "games")}  # fmt: skip


def source_kwargs(
    env: str,
    data: str | None = None,
    questions: int | None = None,
    wiki: str | None = None,
    webshop_url: str | None = None,
    games: str | None = None,
) -> dict[str, Any]:
    """The ``make_env`` keyword arguments of the source flags that are set (``webshop_url`` -> ``url``).

    Raises:
        ConfigError: a flag set for an env it does not apply to.
    """
    kw: dict[str, Any] = {}
    flags = (("data", data), ("questions", questions), ("wiki", wiki), ("webshop_url", webshop_url), ("games", games))
    for flag, value in flags:
        if value is not None:
            for_envs, key = _SOURCE_OF[flag]
            if env not in for_envs:
                raise ConfigError(f"--{flag} is only for --env {' or '.join(for_envs)}; got --env {env}")
            kw[key] = value
    return kw


def env_class(name: str) -> type:
    if name not in ENVS:
        raise ConfigError(f"unknown env {name!r}; choose one of {', '.join(sorted(ENVS))}")
    module, cls = ENVS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_env(name: str, **kwargs: Any) -> AgentEnv:
    """Build a fresh env object (cheap: generated worlds/catalogs are cached per seed)."""
    return env_class(name)(**kwargs)


__all__ = ["ENVS", "SOURCE_HELP", "AgentEnv", "StepResult", "env_class", "make_env", "source_kwargs"]

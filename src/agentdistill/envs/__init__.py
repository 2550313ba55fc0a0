"""Environment registry: name -> ``"module:Class"``, imported lazily by ``make_env``."""

import importlib
from typing import Any

from agentdistill.envs.base import AgentEnv, StepResult
from agentdistill.errors import ConfigError

ENVS: dict[str, str] = {
    "alfworld": "agentdistill.envs.alfworld.env:AlfWorldEnv",
    "webshop": "agentdistill.envs.webshop.env:WebShopEnv",
    "hotpotqa": "agentdistill.envs.hotpotqa.env:HotpotQAEnv",
    # real engines over game files (optional extras; they need --games)
    "textworld": "agentdistill.envs.textworld.env:TextWorldEnv",
    "alfworld-tw": "agentdistill.envs.alfworld_tw.env:AlfworldTWEnv",
}


def env_class(name: str) -> type:
    if name not in ENVS:
        raise ConfigError(f"unknown env {name!r}; choose one of {', '.join(sorted(ENVS))}")
    module, cls = ENVS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def make_env(name: str, **kwargs: Any) -> AgentEnv:
    """Build a fresh env object (cheap: generated worlds/catalogs are cached per seed)."""
    return env_class(name)(**kwargs)


__all__ = ["ENVS", "AgentEnv", "StepResult", "env_class", "make_env"]

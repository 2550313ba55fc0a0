"""Embedded ALFWorld: a seeded household text simulator with ALFWorld's task types, grammar and wording."""

from agentdistill.envs.alfworld.env import AlfWorldEnv

__all__ = ["AlfWorldEnv"]

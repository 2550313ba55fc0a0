"""Embedded WebShop: a generated catalog, BM25 search, WebShop's text pages, reward and an imitable expert."""

from agentdistill.envs.webshop.catalog import Goal, Product
from agentdistill.envs.webshop.env import WebShopEnv
from agentdistill.envs.webshop.reward import RewardBreakdown, reward_breakdown, webshop_reward

__all__ = ["Goal", "Product", "RewardBreakdown", "WebShopEnv", "reward_breakdown", "webshop_reward"]

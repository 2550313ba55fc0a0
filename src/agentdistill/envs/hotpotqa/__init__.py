"""Embedded HotPotQA: a local wiki with ReAct's Search/Lookup/Finish semantics and two-hop questions."""

from agentdistill.envs.hotpotqa.env import INSTRUCTION, HotpotQAEnv
from agentdistill.envs.hotpotqa.scoring import exact_match, f1_score, normalize_answer

__all__ = ["INSTRUCTION", "HotpotQAEnv", "exact_match", "f1_score", "normalize_answer"]

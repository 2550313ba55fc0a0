"""agentdistill: Structured Agent Distillation (arXiv 2505.13820) of ReAct agents on the Hugging Face stack."""

__version__ = "0.1.0"

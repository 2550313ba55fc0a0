"""TextWorld games (``--env textworld``) and the engine the real ALFWorld env shares; needs ``agentdistill[textworld]``."""

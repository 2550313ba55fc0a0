"""The real ALFWorld engine (``--env alfworld-tw``) and offline game generation; needs ``agentdistill[alfworld]``."""

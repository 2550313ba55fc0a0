"""Exceptions the user can act on. The CLI prints them on one line and exits with code 2.

Everything else that escapes is a bug and keeps its traceback.
"""

import importlib
from pathlib import Path
from types import ModuleType


class AgentDistillError(Exception):
    """Base for every error caused by the user's input or setup (not by a bug)."""


class ConfigError(AgentDistillError):
    """A bad option value, an unknown YAML key, or an inconsistent combination of options."""


class TrajectoryError(AgentDistillError):
    """A malformed trajectory record; names the file and line when they are known.

    Args:
        msg: what is wrong and, where possible, how to fix it.
        path: file the record came from.
        line: 1-based line number inside ``path``.
    """

    def __init__(self, msg: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.msg, self.path, self.line = msg, path, line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{msg}")


class VocabMismatchError(AgentDistillError):
    """Teacher and student tokenizers do not share a vocabulary."""


class MissingExtraError(ConfigError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs `{package}`; install it with `pip install 'agentdistill[{extra}]'`")


def require_extra(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency, or raise ``MissingExtraError`` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(module.split(".")[0], extra, feature) from None

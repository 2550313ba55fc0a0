"""Config loading shared by the commands: YAML files with strict keys, merged under CLI flags.

Precedence is dataclass default < YAML (``--config``) < command-line flag.
"""

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from agentdistill.errors import ConfigError


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of option: value at the top level")
    return data


def check_keys(data: dict[str, Any], valid: Iterable[str], where: str) -> None:
    """Raise ``ConfigError`` for the first unknown key, with a close match when there is one."""
    valid = sorted(set(valid))
    for key in data:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean `{close[0]}`?" if close else f"; valid keys: {', '.join(valid)}"
            raise ConfigError(f"{where}: unknown key `{key}`{hint}")

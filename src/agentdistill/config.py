"""Config loading shared by the commands: YAML files with strict keys, merged under CLI flags.

Precedence is dataclass default < YAML (``--config``) < command-line flag. Every value is checked
against the type of the dataclass field it sets (``check_value``) when it is read, so a bad value
fails before any work is done.
"""

import dataclasses as dc
import difflib
import enum
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from agentdistill.errors import ConfigError

# PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: `1e-3` and `1E-3` are
# strings there. Users mean numbers, so floats are resolved as YAML 1.2 does (plus 1.1's forms).
_FLOAT = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 floats."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, _FLOAT if tag == "tag:yaml.org,2002:float" else rx) for tag, rx in resolvers]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _ch in "-+0123456789.":
    if not any(tag == "tag:yaml.org,2002:float" for tag, _ in _Loader.yaml_implicit_resolvers.get(_ch, [])):
        _Loader.yaml_implicit_resolvers.setdefault(_ch, []).insert(0, ("tag:yaml.org,2002:float", _FLOAT))


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load`` that reads ``1e-3``, ``1E-3``, ``.5`` and ``5.`` as floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8-sig")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
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


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple, dict):
        args = typing.get_args(tp)
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]" if args else origin.__name__
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return " | ".join(repr(m.value) for m in tp)
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    """A value that does not fit a type; ``check_value`` turns it into a ``ConfigError``."""


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` as type ``tp`` (int -> float, integral float -> int, nothing else), or raise ``_Mismatch``."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and str in args:  # `IntervalStrategy | str` (TrainingArguments): the str is the enum's value
            args = tuple(a for a in args if a is not str)
        # an arm the value already is wins over one it converts to (`str | int` keeps "3" a str)
        wanted = []
        for arm in sorted((a for a in args if a is not type(None)), key=lambda a: not _is_exact(value, a)):
            try:
                return _coerce(value, arm, key)
            except _Mismatch as e:
                wanted.append(str(e))
        if type(None) in args:
            wanted.append("null")
        raise _Mismatch(" or ".join(dict.fromkeys(wanted)))
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        raise _Mismatch(f"one of {', '.join(str(c) for c in choices)}")
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch("null")
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _Mismatch(f"a list ({_type_name(tp)})")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return [check_value(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Mismatch(f"a mapping ({_type_name(tp)})")
        vt = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        return {k: check_value(v, vt, f"{key}.{k}") for k, v in value.items()}
    if not isinstance(tp, type):
        return value  # a typing construct this checker does not know: left to the class that owns it
    if issubclass(tp, enum.Enum):
        valid = [m.value for m in tp]
        if isinstance(value, tp) or value in valid:
            return value
        raise _Mismatch(f"one of {', '.join(str(v) for v in valid)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch("true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch("an integer")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value  # an int is a valid float; kept as written (run.yaml shows what the user wrote)
        raise _Mismatch("a number (e.g. 3e-4)")
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch("a string (quote it)")
    if dc.is_dataclass(tp):
        if not isinstance(value, dict | None):
            raise _Mismatch(f"a mapping of {', '.join(field_types(tp))}")
        return from_dict(tp, value, key)
    return value  # another class (e.g. accelerate's ParallelismConfig): its own constructor checks it


def _is_exact(value: Any, tp: Any) -> bool:
    if tp in (int, float) and isinstance(value, bool):
        return False
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and isinstance(value, origin)


def check_value(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the type hint ``tp`` of the option ``key`` and return it as that type.

    Accepts an int for a float and an integral float (``1e3``) for an int (converted); nothing else
    is converted: ``"1e-3"`` in quotes is a string, ``yes`` for a number an error.

    Raises:
        ConfigError: ``key must be <type>; got <value>`` (with the valid values for a ``Literal``).
    """
    try:
        return _coerce(value, tp, key)
    except _Mismatch as e:
        raise ConfigError(f"`{key}` must be {e}; got {value!r}") from None


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type hints of the ``__init__`` fields of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dc.fields(cls) if f.init}


def check_fields(cls: type, data: dict[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Strict keys, then every value checked against its field's type; returns the converted values."""
    types_ = field_types(cls)
    check_keys(data, types_, f"{where}: {prefix.rstrip('.')}" if prefix else where)
    out = {}
    for k, v in data.items():
        try:
            out[k] = check_value(v, types_[k], f"{prefix}{k}")
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return out


def from_dict(cls: type, data: Any, key: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking keys and value types (nested dataclasses too)."""
    types_ = field_types(cls)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"`{key}` must be a mapping of {', '.join(types_)}; got {data!r}")
    check_keys(data, types_, key or "config")
    return cls(**{k: check_value(v, types_[k], f"{key}.{k}" if key else k) for k, v in data.items()})


def check_counts(args: Any, low: int, *names: str) -> None:
    """Raise ``ConfigError`` unless each flag in ``names`` is unset (``None``) or ``>= low``.

    Counts are slice bounds and loop sizes: 0 would silently do nothing, a negative number
    (``tasks[:-198]``) the wrong tasks.
    """
    for name in names:
        v = getattr(args, name)
        if v is not None and v < low:
            unset = " (or omitted for the whole split)" if name == "episodes" else ""
            raise ConfigError(f"--{name} must be >= {low}{unset}; got {v}")


def check_seed(value: int | None, key: str) -> None:
    """Raise ``ConfigError`` unless ``value`` is unset or a seed numpy accepts (0..2**32 - 1): ``set_seed`` would
    fail on it only once the stage has started; ``key`` is the flag (``--seed``) or the key path."""
    if value is not None and not 0 <= value < 2**32:
        raise ConfigError(f"{key} must be in 0..2**32 - 1 (numpy's seed range); got {value}")


def check_unit_interval(value: float, key: str) -> None:
    """Raise ``ConfigError`` unless ``value`` is in [0, 1] (NaN is not)."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key} must be in [0, 1]; got {value}")

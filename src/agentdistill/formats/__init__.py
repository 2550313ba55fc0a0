"""Trajectory text formats by name, and format detection for raw transcripts.

fmt = get_format("alfworld")
text, spans = fmt.render(prompt, steps)
"""

from agentdistill.errors import ConfigError, TrajectoryError
from agentdistill.formats.alfworld import AlfWorldFormat
from agentdistill.formats.base import TrajectoryFormat
from agentdistill.formats.chat import ChatFormat, render_messages, steps_to_messages
from agentdistill.formats.react import ReactFormat
from agentdistill.formats.webshop import WebShopFormat

FORMATS: dict[str, TrajectoryFormat] = {
    "react": ReactFormat(),
    "alfworld": AlfWorldFormat(),
    "webshop": WebShopFormat(),
    "chat": ChatFormat(),
}

# Most specific markers first: ChatML headers, numbered ReAct lines, WebShop `Action: verb[`, then ALFWorld `>`.
_DETECT_ORDER = ("chat", "react", "webshop", "alfworld")


def get_format(name: str) -> TrajectoryFormat:
    """The format registered as ``name``.

    Raises:
        ConfigError: for an unknown name, listing the valid ones.
    """
    if name not in FORMATS:
        raise ConfigError(f"unknown trajectory format {name!r}; choose one of: {', '.join(FORMATS)}")
    return FORMATS[name]


def detect_format(text: str) -> str:
    """Name of the first format whose ``detect`` accepts ``text``.

    Raises:
        TrajectoryError: when no format matches.
    """
    for name in _DETECT_ORDER:
        if FORMATS[name].detect(text):
            return name
    raise TrajectoryError("cannot detect format; pass --format react|alfworld|webshop")


__all__ = [
    "FORMATS",
    "AlfWorldFormat",
    "ChatFormat",
    "ReactFormat",
    "TrajectoryFormat",
    "WebShopFormat",
    "detect_format",
    "get_format",
    "render_messages",
    "steps_to_messages",
]

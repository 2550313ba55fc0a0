"""Character spans + a tokenizer -> ``input_ids``, ``reason_mask``, ``act_mask`` (and span ids).

Masks come from the tokenizer's offset mapping, never from matching token ids. Boundary rule: a
token belongs to the span that contains its *first character* (``start <= offset_start < end``).
Our formats put every span boundary at a line start, right after a newline that the previous
span or the context owns, so with byte-level BPE no token straddles a boundary in practice; the
rule only decides the rare merged token, and it can never put one token in two spans, so the
two masks are disjoint by construction. Special tokens (empty offsets) and padding are context.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentdistill.errors import ConfigError
from agentdistill.trajectory import Span, SpanKind

CONTEXT_SPAN = -1  # span id of a token in no span


@dataclass
class Encoded:
    """One training example, all lists of equal length ``T``.

    ``span_ids[t]`` is the index (in the record's span list) of the span token ``t`` belongs to,
    or ``CONTEXT_SPAN``; it lets the loss average per span.
    """

    input_ids: list[int]
    reason_mask: list[int]
    act_mask: list[int]
    span_ids: list[int]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_reason(self) -> int:
        return sum(self.reason_mask)

    @property
    def num_act(self) -> int:
        return sum(self.act_mask)

    def slice(self, idx: Sequence[int]) -> "Encoded":
        """The tokens at positions ``idx`` (a window), same meta."""
        return Encoded(
            [self.input_ids[i] for i in idx],
            [self.reason_mask[i] for i in idx],
            [self.act_mask[i] for i in idx],
            [self.span_ids[i] for i in idx],
            dict(self.meta),
        )


def build_masks(text: str, spans: Sequence[Span], tokenizer: Any, add_bos: bool = False) -> Encoded:
    """Tokenize ``text`` once and label every token REASON, ACT or context.

    Args:
        text: the linearised trajectory.
        spans: sorted, non-overlapping character spans of ``text``.
        tokenizer: a *fast* Hugging Face tokenizer (offsets are required).
        add_bos: prepend ``tokenizer.bos_token_id`` (context) when the model expects it.

    Returns:
        ``Encoded`` with ``input_ids`` and 0/1 ``reason_mask``/``act_mask`` of the same length.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(
            f"tokenizer {type(tokenizer).__name__} is not a fast tokenizer; masks need offsets "
            "(load it with use_fast=True or convert it with `tokenizers`)"
        )
    # verbose=False: long texts are windowed or cut later (fit_length), the length warning would be noise
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False, verbose=False)
    ids: list[int] = list(enc["input_ids"])
    offsets: list[tuple[int, int]] = [tuple(o) for o in enc["offset_mapping"]]
    reason, act, span_ids = [0] * len(ids), [0] * len(ids), [CONTEXT_SPAN] * len(ids)
    # One pass over tokens and spans together (both are sorted by position).
    j = 0
    for t, (a, b) in enumerate(offsets):
        if a == b:
            continue  # special or empty token: the model is never trained to emit it here
        while j < len(spans) and spans[j].end <= a:
            j += 1
        if j < len(spans) and spans[j].start <= a < spans[j].end:
            if spans[j].kind is SpanKind.REASON:
                reason[t] = 1
            else:
                act[t] = 1
            span_ids[t] = j
        # else: prompt, observation or harness text ("Observation 3:", "OK."); the model never writes it
    if add_bos and tokenizer.bos_token_id is not None:
        ids, reason, act, span_ids = [tokenizer.bos_token_id, *ids], [0, *reason], [0, *act], [-1, *span_ids]
    return Encoded(ids, reason, act, span_ids)


def fit_length(example: Encoded, max_length: int, truncation: Literal["windows", "left"] = "windows") -> list[Encoded]:
    """Make an example fit ``max_length`` tokens, always keeping the task prompt.

    The prompt is every token before the first supervised token (capped at half the window so a
    huge prompt still leaves room). ``left`` keeps the prompt and the *last* tokens that fit (what
    the agent sees when its history is cut); ``windows`` splits the rest into consecutive windows,
    each preceded by the prompt, so every supervised token is trained exactly once.

    Returns:
        One example if it already fits, else the truncated example or the windows (windows with no
        supervised token are dropped).
    """
    if len(example) <= max_length:
        return [example]
    sup = [i for i in range(len(example)) if example.reason_mask[i] or example.act_mask[i]]
    prompt_len = min(sup[0] if sup else 0, max_length // 2)
    room = max_length - prompt_len
    head = list(range(prompt_len))
    if truncation == "left":
        return [example.slice(head + list(range(len(example) - room, len(example))))]
    out = []
    for start in range(prompt_len, len(example), room):
        win = example.slice(head + list(range(start, min(start + room, len(example)))))
        if win.num_reason + win.num_act > 0:
            out.append(win)
    return out

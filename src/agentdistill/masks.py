"""Character spans + a tokenizer -> ``input_ids``, ``reason_mask``, ``act_mask`` (and span ids).

The text is cut at every span boundary and each piece is encoded on its own, then the ids are
concatenated: every token lies in exactly one piece, so it is REASON, ACT or context with no rule
for straddling tokens, and the two masks are disjoint by construction. Cutting is also what
makes the agent see what training saw: the agent's context at a turn ends where the next span
starts, so its ids (``context_ids``) are exactly a prefix of the whole transcript's ids, whatever
the tokenizer would have merged across that boundary (``\\n\\n`` + ``Action``, ``]\\n`` + ``>``...).

Pieces after the first are encoded as continuations: a tokenizer that marks the start of a text
(``add_prefix_space``, SentencePiece's ``▁`` prepended by ``Metaspace`` or a ``Prepend``
normalizer) does so only for the first piece, so the ids decode back to the text itself.
"""

import json
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agentdistill.errors import ConfigError
from agentdistill.trajectory import Span, SpanKind

CONTEXT_SPAN = -1  # span id of a token in no span
MEMO_PIECES = 1 << 14  # encoded pieces a ``PieceEncoder`` remembers


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
    """Tokenize ``text`` piece by piece (cut at every span boundary) and label every token.

    Args:
        text: the linearised trajectory.
        spans: sorted, non-overlapping character spans of ``text``.
        tokenizer: a *fast* Hugging Face tokenizer.
        add_bos: prepend ``tokenizer.bos_token_id`` (context) when the model expects it.

    Returns:
        ``Encoded`` with ``input_ids`` and 0/1 ``reason_mask``/``act_mask`` of the same length; the
        tokens of a span decode to exactly its text.
    """
    pieces = _pieces(len(text), spans)
    encoded = piece_encoder(tokenizer).encode([text[a:b] for a, b, _ in pieces])
    ids: list[int] = []
    reason: list[int] = []
    act: list[int] = []
    span_ids: list[int] = []
    for (_a, _b, j), piece_ids in zip(pieces, encoded, strict=True):
        n = len(piece_ids)
        ids += piece_ids
        # j == CONTEXT_SPAN: prompt, observation or harness text ("Observation 3:", "OK."); never generated
        kind = spans[j].kind if j != CONTEXT_SPAN else None
        reason += [int(kind is SpanKind.REASON)] * n
        act += [int(kind is SpanKind.ACT)] * n
        span_ids += [j] * n
    if add_bos and tokenizer.bos_token_id is not None:
        ids, reason, act, span_ids = [tokenizer.bos_token_id, *ids], [0, *reason], [0, *act], [-1, *span_ids]
    return Encoded(ids, reason, act, span_ids)


def context_ids(text: str, spans: Sequence[Span], tokenizer: Any, max_length: int) -> list[int]:
    """The ids an agent feeds the model: ``build_masks``'s ids of its context, cut from the left to
    ``max_length`` exactly as training's ``truncation="left"`` cuts (``fit_length``).

    The context ends where the model's next span starts, so these ids are a prefix of the ids of
    every transcript that continues it (or that prefix, left-cut).
    """
    return fit_length(build_masks(text, spans, tokenizer), max_length, "left")[0].input_ids


def text_pieces(text: str, spans: Sequence[Span]) -> list[str]:
    """``text`` cut at every span boundary: the strings ``build_masks`` encodes one by one (a tokenizer
    trained on them learns no merge that encoding could never use)."""
    return [text[a:b] for a, b, _ in _pieces(len(text), spans)]


def _pieces(n: int, spans: Sequence[Span]) -> list[tuple[int, int, int]]:
    """``(start, end, span index or CONTEXT_SPAN)`` of the non-empty pieces of a text of length ``n``."""
    out, pos = [], 0
    for j, s in enumerate(spans):
        if s.start < pos or s.end < s.start:
            raise ValueError(f"spans must be sorted and non-overlapping; span {j} is {s.start}..{s.end}")
        out += [(pos, min(s.start, n), CONTEXT_SPAN), (min(s.start, n), min(s.end, n), j)]
        pos = s.end
    out.append((min(pos, n), n, CONTEXT_SPAN))
    return [p for p in out if p[1] > p[0]]


class PieceEncoder:
    """A fast tokenizer's backend twice: as is for the first piece of a text, and without its
    start-of-text marking for the pieces that continue it (also used to decode generated ids)."""

    def __init__(self, tokenizer: Any) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not getattr(tokenizer, "is_fast", False) or backend is None:
            raise ConfigError(
                f"tokenizer {type(tokenizer).__name__} is not a fast tokenizer; masks need its backend "
                "(load it with use_fast=True or convert it with `tokenizers`)"
            )
        from tokenizers import Tokenizer

        spec = json.loads(backend.to_str())
        self.first = Tokenizer.from_str(json.dumps(spec))
        for key in ("normalizer", "pre_tokenizer", "decoder"):
            spec[key] = _continuing(spec.get(key))
        self.rest = Tokenizer.from_str(json.dumps(spec))
        for t in (self.first, self.rest):  # the wrapper may have left its last call's settings behind
            t.no_truncation()
            t.no_padding()
        self.size = len(tokenizer)
        # (starts a text, piece) -> ids, least recently used first: an agent re-encodes its whole history
        # every turn, and all but the newest pieces were encoded the turn before
        self.memo: OrderedDict[tuple[bool, str], list[int]] = OrderedDict()

    def encode(self, pieces: Sequence[str]) -> list[list[int]]:
        """The ids of each piece; ``pieces[0]`` starts a text, the others continue it."""
        keys = [(i == 0, p) for i, p in enumerate(pieces)]
        out = [self.memo.get(k) for k in keys]
        missing = [i for i, ids in enumerate(out) if ids is None]
        if missing:
            first = [pieces[0]] if missing[0] == 0 else []
            encoded = [e.ids for e in self.first.encode_batch(first, add_special_tokens=False)]
            rest = [pieces[i] for i in missing[len(first) :]]
            encoded += [e.ids for e in self.rest.encode_batch(rest, add_special_tokens=False)] if rest else []
            for i, ids in zip(missing, encoded, strict=True):
                out[i] = ids
        for k, ids in zip(keys, out, strict=True):
            self.memo[k] = ids
            self.memo.move_to_end(k)
        while len(self.memo) > MEMO_PIECES:
            self.memo.popitem(last=False)
        return [list(ids) for ids in out]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ids that continue a text (a model's generation): no start-of-text space is stripped."""
        return self.rest.decode(list(ids), skip_special_tokens=True)


def _continuing(node: dict[str, Any] | None) -> dict[str, Any] | None:
    """A normalizer / pre-tokenizer / decoder spec that neither adds nor strips a start-of-text space."""
    if node is None:
        return None
    kind = node.get("type")
    if kind == "Sequence":
        key = next(k for k in ("normalizers", "pretokenizers", "decoders") if k in node)
        return {**node, key: [c for c in map(_continuing, node[key]) if c is not None]}
    if kind == "Prepend" or (kind == "Strip" and node.get("start", 0) > 0):
        return None  # SentencePiece's "▁" before the text, and the decoder step that strips it again
    if kind in ("Metaspace", "ByteLevel"):
        node = {**node}
        if "prepend_scheme" in node:
            node["prepend_scheme"] = "never"
        if "add_prefix_space" in node:
            node["add_prefix_space"] = False
    return node


_ENCODERS: "weakref.WeakKeyDictionary[Any, PieceEncoder]" = weakref.WeakKeyDictionary()


def piece_encoder(tokenizer: Any) -> PieceEncoder:
    """The ``PieceEncoder`` of ``tokenizer``, built once (again if tokens were added since)."""
    enc = _ENCODERS.get(tokenizer)
    if enc is None or enc.size != len(tokenizer):
        enc = _ENCODERS[tokenizer] = PieceEncoder(tokenizer)
    return enc


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
    prompt_len = min(sup[0] if sup else len(example), max_length // 2)
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

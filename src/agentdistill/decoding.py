"""Batched turn decoding that keeps each episode's KV cache between turns (``HFPolicy`` with ``reuse_cache``).

An agent's history only grows, so ``generate`` from scratch spends most of every turn re-reading it.
``TurnDecoder`` keeps, per episode, the keys and values of the ids the model has seen (its context and
what it generated). Next turn it keeps them up to the longest common prefix with the new context's ids
and prefills only the rest: the new ids need not extend the cached ones (the model's ids may be a
non-canonical tokenisation of its text, and a left cut changes everything after the prompt). What it
computes is what ``generate`` computes for the same ids, with the same stop rules.

One batch of B rows, row i with L_i context ids of which k_i are cached, E = max L_i, W = E + max_new_tokens:

    row i   [ pad ... pad | k_i cached | L_i - k_i new ] [ generated ... ]
            0             E - L_i                     E                 W

Contexts are right-aligned at column E, as ``generate`` left-pads them, so a row's ids sit in
consecutive columns and each decode step writes one column for every row into preallocated
(B, H, W, D) tensors per layer (no per-step ``torch.cat``). Column c of row i is position
c - (E - L_i) (RoPE, GPT-2's absolute embeddings); pads are masked. Prefill runs over runs of rows
with a similar number of new ids: a run whose longest row has M new ids feeds columns [E - M, E)
with the columns before them as its past, so a row with fewer new ids recomputes a few cached ones
and a shorter row gets left pads. Rows without a cache of their own (new episodes) start from the prefix that
the new episodes of a turn share (``share_prefix``: an env's instruction), prefilled once. A row that finishes
saves its cache; once a quarter of the rows
are done they leave the batch, so they stop costing attention. Kept caches can be capped in bytes
(least recently used dropped first: their episodes start afresh).

The model is driven by plain ``forward(input_ids, attention_mask, position_ids, cache)`` calls through
the ``Cache(layers=...)`` API of transformers >= 4.56; ``unsupported`` says when that does not apply
(then ``HFPolicy`` calls ``generate`` as before).
"""

import inspect
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

try:
    from transformers.cache_utils import Cache, DynamicLayer
except ImportError:  # transformers < 4.56: no per-layer cache objects
    Cache = DynamicLayer = None

# generation-config fields that change which token greedy decoding (or sampling) picks, with their neutral
# values; ``generate`` applies them, ``TurnDecoder`` does not, so a model that sets one is left to ``generate``
_PROCESSORS: dict[str, tuple[Any, ...]] = {
    "repetition_penalty": (None, 1.0),
    "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None, []),
    "sequence_bias": (None, {}),
    "suppress_tokens": (None, []),
    "begin_suppress_tokens": (None, []),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "exponential_decay_length_penalty": (None,),
    "typical_p": (None, 1.0),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "min_p": (None,),
}
PREFILL_SLACK = 16  # new ids a row may be padded by in a prefill run before it starts a run of its own
MIN_SHARED = 16  # fewest ids of a prefix that new episodes share (an env's instruction) worth keeping once


def unsupported(model: Any, max_context: int) -> str | None:
    """Why ``TurnDecoder`` cannot drive ``model`` for contexts of up to ``max_context`` tokens, ``None`` if it can."""
    if Cache is None or "layers" not in inspect.signature(Cache.__init__).parameters:
        return "transformers < 4.56 has no per-layer Cache API"
    params = inspect.signature(model.forward).parameters
    if "cache" not in params and "past_key_values" not in params:
        return "its forward takes no cache"
    config = _text_config(model)
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    if not kinds <= {"full_attention", "sliding_attention"}:
        return f"it has {sorted(kinds - {'full_attention', 'sliding_attention'})} layers"
    if getattr(config, "attention_chunk_size", None) is not None:
        return "it uses chunked attention"
    window = getattr(config, "sliding_window", None)
    if ("sliding_attention" in kinds or window is not None) and (window is None or window < max_context):
        return f"its sliding window ({window}) is shorter than the context ({max_context})"
    generation = getattr(model, "generation_config", None)
    for name, neutral in _PROCESSORS.items():
        if (value := getattr(generation, name, None)) not in neutral:
            return f"its generation config sets {name}={value!r}"
    return None


def _text_config(model: Any) -> Any:
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def token_picker(temperature: float, top_p: float, seed: int, model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The next token of each row from its logits (B, V) float32: argmax when ``temperature`` is 0, else a
    sample after temperature, the model's top-k (``generate``'s default 50 when unset) and top-p, in
    ``generate``'s order, drawn with a generator seeded with ``seed`` on the model's device."""
    if temperature <= 0:
        return lambda logits: logits.argmax(-1)
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    top_k = getattr(getattr(model, "generation_config", None), "top_k", None)
    top_k = 50 if top_k is None else top_k
    warpers: list[Any] = [TemperatureLogitsWarper(temperature)]
    if top_k:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)

    def pick(logits: torch.Tensor) -> torch.Tensor:
        for warp in warpers:
            logits = warp(None, logits)
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)

    return pick


@dataclass
class _Held:
    """An episode's cache between turns: the ids the model has seen, and per layer their keys and values (H, n, D)."""

    ids: list[int]
    kv: list[tuple[torch.Tensor, torch.Tensor]]

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in self.kv)


class TurnDecoder:
    """Generates one turn for a batch of contexts, reusing each episode's KV cache from its previous turn.

    Args:
        model: a causal LM (``unsupported(model, ...)`` is ``None``), in eval mode.
        max_new_tokens: most tokens generated per row.
        pad_id: the id fed to finished rows and to left pads.
        eos_id: a row that generates it is finished (``None``: no such token).
        pick: next token per row from its logits (``token_picker``).
        max_held_bytes: most bytes of caches kept between turns (``None``: no limit); beyond it the least
            recently used are dropped, and their episodes start afresh next turn.
    """

    def __init__(
        self,
        model: Any,
        max_new_tokens: int,
        pad_id: int,
        eos_id: int | None,
        pick: Callable[[torch.Tensor], torch.Tensor],
        max_held_bytes: int | None = None,
    ) -> None:
        self.model, self.max_new, self.pad, self.eos, self.pick = model, max_new_tokens, pad_id, eos_id, pick
        self.max_held_bytes = max_held_bytes
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.25
        self.logits_to_keep = "logits_to_keep" in params
        self.num_layers = _text_config(model).num_hidden_layers
        self.held: dict[Hashable, _Held] = {}  # least recently used first
        self.shared: _Held | None = None  # the prefix new episodes share (``share_prefix``)
        # ids: in contexts, kept from the cache (``shared``: from the shared prefix), fed to the model
        self.stats = {"context": 0, "reused": 0, "shared": 0, "prefilled": 0}

    def release(self, key: Hashable) -> None:
        """Forget the cache kept for ``key`` (its episode ended)."""
        self.held.pop(key, None)

    @torch.inference_mode()
    def decode(
        self, keys: Sequence[Hashable | None], contexts: Sequence[list[int]], done: Callable[[list[int]], bool]
    ) -> list[list[int]]:
        """Continue every context until ``done(generated ids)``, ``eos_id`` or ``max_new_tokens``, like ``generate``.

        Args:
            keys: each context's episode (its cache is reused and kept for the next turn), or ``None``.
            contexts: the ids of each context (non-empty).
            done: whether a row's generated ids hold a whole turn.

        Returns:
            The generated ids of each row (the stopping token included).
        """
        device = next(self.model.parameters()).device
        held = [self.held.pop(k, None) if k is not None else None for k in keys]
        fresh = [i for i, h in enumerate(held) if h is None]  # rows without a cache of their own
        leader, shared = self._leader([contexts[i] for i in fresh])
        leader = fresh[leader] if leader is not None else None
        for i in fresh:
            held[i] = self.shared if leader is None else None
        # the cache is kept up to the common prefix, and at least the last context id is fed (its logits are needed)
        keep = [min(_common_prefix(h.ids, c), len(c) - 1) if h else 0 for h, c in zip(held, contexts, strict=True)]
        followers = {i for i in fresh if i != leader} if leader is not None else set()
        for i in followers:
            keep[i] = shared  # the leader's first ``shared`` ids, copied once it is prefilled
        self.stats["context"] += sum(map(len, contexts))
        self.stats["reused"] += sum(keep)
        self.stats["shared"] += sum(keep[i] for i in fresh)
        # batch rows, the leader first, then most new ids first (prefill runs); from here on every list is in this order
        order = sorted(range(len(contexts)), key=lambda i: (i != leader, keep[i] - len(contexts[i])))
        keys, contexts, keep = [keys[i] for i in order], [contexts[i] for i in order], [keep[i] for i in order]
        lengths = [len(c) for c in contexts]
        end = max(lengths)
        buf = _Buffers([end - n for n in lengths], end + self.max_new, self.num_layers)
        mask = torch.zeros(len(order), end + self.max_new, dtype=torch.long, device=device)
        for r, i in enumerate(order):
            mask[r, end - lengths[r] :] = 1
            if keep[r] and i not in followers:
                buf.put(r, end - lengths[r], held[i].kv, keep[r])
        del held  # the batch owns them now
        follow = [r for r, i in enumerate(order) if i in followers]  # empty without a leader
        next_ids = self.pick(self._prefill(contexts, keep, buf, mask, follow))

        generated: list[list[int]] = [[] for _ in order]
        live = list(range(len(order)))  # buffer row -> batch row, None once finished
        pos = torch.tensor(lengths, device=device)
        length, cache = end, buf.cache(slice(0, len(order)), end)
        while True:
            for r, (j, token) in enumerate(zip(live, next_ids.tolist(), strict=True)):
                if j is None:
                    continue
                g = generated[j]
                g.append(token)
                if token == self.eos or len(g) >= self.max_new or done(g):
                    if keys[j] is not None:  # the last token was never fed: its keys and values do not exist
                        self._hold(keys[j], _Held(contexts[j] + g[:-1], buf.take(r, end - lengths[j], length)))
                    live[r] = None
            finished = sum(j is None for j in live)
            if finished == len(live):
                break
            if 4 * finished >= len(live):  # finished rows leave the batch
                rows = torch.tensor([r for r, j in enumerate(live) if j is not None], device=device)
                buf.select(rows)
                mask, pos, next_ids = mask[rows], pos[rows], next_ids[rows]
                live = [j for j in live if j is not None]
                cache = buf.cache(slice(0, len(live)), length)
            tokens = next_ids.masked_fill(torch.tensor([j is None for j in live], device=device), self.pad)
            next_ids = self.pick(self._forward(tokens[:, None], mask[:, : length + 1], pos[:, None], cache))
            pos, length = pos + 1, length + 1
        out: list[list[int]] = [[] for _ in order]
        for r, i in enumerate(order):
            out[i] = generated[r]
        return out

    def _leader(self, contexts: list[list[int]]) -> tuple[int | None, int]:
        """Which of new episodes' ``contexts`` (no cache of their own) is prefilled first so that the others
        start from the prefix they all share (an env's instruction and the start of its task), and that
        prefix's length: ``(None, 0)`` when fewer than two share ``MIN_SHARED`` ids or ``shared`` holds it."""
        if len(contexts) < 2:
            return None, 0
        n = min(min(map(len, contexts)) - 1, *(_common_prefix(contexts[0], c) for c in contexts[1:]))
        if n < MIN_SHARED or (self.shared is not None and _common_prefix(self.shared.ids, contexts[0]) >= n):
            return None, 0
        return 0, n

    def _prefill(
        self,
        contexts: list[list[int]],
        keep: list[int],
        buf: "_Buffers",
        mask: torch.Tensor,
        followers: Sequence[int] = (),
    ) -> torch.Tensor:
        """Feed each row's context ids after its first ``keep`` (already in ``buf``), in runs of rows with a
        similar number of new ids. With ``followers`` (rows), row 0 (the leader) is fed first, alone, and the first
        ``keep`` columns of each follower are then copied from it (and kept in ``shared``). Returns the
        logits (B, V) float32 after each row's last id."""
        end = max(map(len, contexts))
        logits, first = [], 0
        if followers:
            logits.append(self._feed(contexts, keep, buf, mask, 0, 1))
            n = keep[followers[0]]  # every follower starts from the same shared ids
            self.shared = _Held(contexts[0][:n], buf.take(0, end - len(contexts[0]), end - len(contexts[0]) + n))
            for r in followers:
                buf.put(r, end - len(contexts[r]), self.shared.kv, keep[r])
            first = 1
        for a, b in _prefill_runs([len(c) - k for c, k in zip(contexts[first:], keep[first:], strict=True)]):
            logits.append(self._feed(contexts, keep, buf, mask, first + a, first + b))
        return torch.cat(logits)

    def _feed(
        self, contexts: list[list[int]], keep: list[int], buf: "_Buffers", mask: torch.Tensor, a: int, b: int
    ) -> torch.Tensor:
        """Prefill rows ``[a, b)`` (row ``a`` has the most new ids); their logits (b - a, V)."""
        device, end = mask.device, max(map(len, contexts))
        width = len(contexts[a]) - keep[a]
        self.stats["prefilled"] += width * (b - a)
        ids, pos = [], []
        for c in contexts[a:b]:
            tail = c[max(0, len(c) - width) :]  # a row with fewer new ids recomputes some cached ones
            ids.append([self.pad] * (width - len(tail)) + tail)
            pos.append([max(p, 0) for p in range(len(c) - width, len(c))])
        ids_t, pos_t = torch.tensor(ids, device=device), torch.tensor(pos, device=device)
        return self._forward(ids_t, mask[a:b, :end], pos_t, buf.cache(slice(a, b), end - width))

    def _hold(self, key: Hashable, held: _Held) -> None:
        self.held[key] = held
        if self.max_held_bytes is not None:
            total = sum(h.nbytes for h in self.held.values())
            while total > self.max_held_bytes:
                total -= self.held.pop(next(iter(self.held))).nbytes

    def _forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        """Logits (B, V) float32 at the last input column."""
        kwargs = {self.cache_arg: cache, "use_cache": True}
        if self.logits_to_keep:
            kwargs["logits_to_keep"] = 1
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
        return out.logits[:, -1].float()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((t for t in range(n) if a[t] != b[t]), n)


def _prefill_runs(new: Sequence[int]) -> list[tuple[int, int]]:
    """Rows ``[a, b)`` that prefill together, from the new-id counts of rows sorted most first: each row of a
    run is fed as many ids as the run's first, so a row starts a new run when that would more than double
    its ids (and pad it by more than ``PREFILL_SLACK``)."""
    runs, start = [], 0
    for r in range(1, len(new)):
        if 2 * new[r] < new[start] and new[start] - new[r] > PREFILL_SLACK:
            runs.append((start, r))
            start = r
    runs.append((start, len(new)))
    return runs


class _Buffers:
    """Per layer, the keys and values of a batch: (B, H, W, D) tensors, allocated on first use. Only the left
    pads (``pads[r]`` columns of row ``r``) are zeroed: attention reads them, masked (0 * NaN would be NaN), and
    every other column is written before it is read."""

    def __init__(self, pads: list[int], width: int, num_layers: int) -> None:
        self.rows, self.width, self.pads = len(pads), width, pads
        self.k: list[torch.Tensor | None] = [None] * num_layers
        self.v: list[torch.Tensor | None] = [None] * num_layers

    def layer(self, i: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``i``'s tensors, allocated like ``k``/``v`` ((..., H, n, D), any n) if they do not exist yet."""
        if self.k[i] is None:
            h, d, dv = k.shape[-3], k.shape[-1], v.shape[-1]
            self.k[i] = k.new_empty(self.rows, h, self.width, d)
            self.v[i] = v.new_empty(self.rows, h, self.width, dv)
            for r, pad in enumerate(self.pads):
                self.k[i][r, :, :pad] = 0
                self.v[i][r, :, :pad] = 0
        return self.k[i], self.v[i]

    def put(self, row: int, col: int, kv: Sequence[tuple[torch.Tensor, torch.Tensor]], n: int) -> None:
        """Write the first ``n`` positions of a held cache (per layer (H, >=n, D)) at ``col`` of ``row``."""
        for i, (k, v) in enumerate(kv):
            bk, bv = self.layer(i, k, v)
            bk[row, :, col : col + n] = k[:, :n]
            bv[row, :, col : col + n] = v[:, :n]

    def take(self, row: int, start: int, stop: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of columns ``[start, stop)`` of ``row``, per layer (H, n, D)."""
        return [
            (k[row, :, start:stop].clone(), v[row, :, start:stop].clone()) for k, v in zip(self.k, self.v, strict=True)
        ]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (in that order)."""
        self.k = [k.index_select(0, rows) for k in self.k]
        self.v = [v.index_select(0, rows) for v in self.v]
        self.rows, self.pads = len(rows), [self.pads[r] for r in rows.tolist()]

    def cache(self, rows: slice, length: int) -> Any:
        """A transformers ``Cache`` over ``rows``, holding ``length`` columns; the model writes the next ones."""
        return Cache(layers=[_Columns(self, i, rows, length) for i in range(len(self.k))])


_Layer = DynamicLayer if DynamicLayer is not None else object


class _Columns(_Layer):
    """One layer of a ``Cache`` backed by ``_Buffers``: ``update`` writes the new keys and values in place
    after the first ``length`` columns and returns views of all of them."""

    def __init__(self, buffers: _Buffers, layer: int, rows: slice, length: int) -> None:
        super().__init__()
        self.buffers, self.layer, self.rows, self.length = buffers, layer, rows, length
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.buffers.layer(self.layer, key_states, value_states)
        n = key_states.shape[-2]
        k[self.rows, :, self.length : self.length + n] = key_states
        v[self.rows, :, self.length : self.length + n] = value_states
        self.length += n
        self.keys, self.values = k[self.rows, :, : self.length], v[self.rows, :, : self.length]
        return self.keys, self.values

    def get_seq_length(self, *args: Any, **kwargs: Any) -> int:
        return self.length

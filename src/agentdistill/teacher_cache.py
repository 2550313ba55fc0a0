"""The cached teacher signal: one teacher pass over the data, stored as top-k log-probs per position.

``build_cache`` runs the teacher once over the encoded examples (eval mode, no grad, at most one
``(chunk_size, V)`` block of float32 logits at a time) and stores, for every *supervised position*
only (position ``t`` whose next token ``t + 1`` is REASON or ACT, exactly the rows
``DistillTrainer`` selects), the teacher's top-k log-probs, their token ids and the log of the
remaining mass (``losses.topk_from_logits``), plus each example's mean teacher entropy on those
positions (the curriculum's ``H_T``, so a cached run never needs the teacher again).
``load_cache`` reads it back and refuses a cache built for other examples, another teacher, top-k,
temperature or vocabulary. ``teacher_signal`` is what ``distill`` uses: it reuses the run's cache or
says the teacher must be loaded, then ``TeacherSignal.prepare`` builds the cache (and drops the teacher)
and gives the curriculum its entropies.

File layout (``safetensors``; rows of all examples concatenated, in example then position order):

- ``topk_ids`` ``(R, K)`` int32, ``topk_logprobs`` ``(R, K)`` float32 (descending per row),
  ``tail_logprob`` ``(R,)`` float32 (-inf when K = V);
- ``offsets`` ``(E + 1,)`` int64: example ``i`` owns rows ``offsets[i]:offsets[i + 1]``;
- ``entropy`` ``(E,)`` float64: mean teacher entropy (nats, τ = 1) over the example's supervised positions;
- metadata: ``format``, ``version``, ``teacher``, ``vocab_size``, ``topk``, ``temperature``,
  ``num_examples``, ``num_rows``, ``fingerprint`` (sha256 of every example's input_ids and masks),
  ``teacher_dtype`` (what the teacher ran in; recorded, not checked).

Log-probs are float32: a cache with K = V then reproduces the live loss to float32 rounding, and
K·8 bytes per supervised token (512 B at K = 64) is small next to the models. They are stored at the
run's ``--temperature`` (the teacher is tempered once, when the cache is written; the loss tempers
only the student, see ``losses.divergence_topk``): a tail bin cannot be re-tempered exactly, so
another temperature needs another cache. The entropy is always at τ = 1, like the live path's.
"""

import gc
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from agentdistill.data import DistillCollator, TeacherRows, num_supervised_positions
from agentdistill.errors import ConfigError
from agentdistill.files import atomic_path
from agentdistill.losses import topk_from_logits
from agentdistill.masks import Encoded
from agentdistill.modeling import final_hidden, output_head
from agentdistill.trainer import DistillConfig

logger = logging.getLogger(__name__)

CACHE_FILE = "teacher_cache.safetensors"
_FORMAT, _VERSION = "agentdistill.teacher_cache", "1"
_TENSORS = ("topk_ids", "topk_logprobs", "tail_logprob", "offsets", "entropy")


def cache_path(cfg: DistillConfig) -> Path:
    """Where the cached teacher signal lives: ``--teacher_cache`` or ``<output_dir>/teacher_cache.safetensors``."""
    return Path(cfg.teacher_cache) if cfg.teacher_cache else Path(cfg.output_dir) / CACHE_FILE


def examples_fingerprint(examples: Sequence[Encoded]) -> str:
    """sha256 over every example's length, ``input_ids``, ``reason_mask`` and ``act_mask`` (in order)."""
    h = hashlib.sha256(len(examples).to_bytes(8, "little"))
    for ex in examples:
        h.update(len(ex).to_bytes(8, "little"))
        h.update(np.asarray(ex.input_ids, dtype=np.int64).tobytes())
        h.update(np.asarray(ex.reason_mask, dtype=np.uint8).tobytes())
        h.update(np.asarray(ex.act_mask, dtype=np.uint8).tobytes())
    return h.hexdigest()


def canonical_name(name_or_path: str | Path) -> str:
    """A model's name as the cache records its teacher: the resolved path of a local directory, else the name."""
    p = Path(name_or_path)
    return str(p.resolve()) if p.exists() else str(name_or_path)


@torch.no_grad()
def supervised_logits(
    teacher: torch.nn.Module, examples: Sequence[Encoded], batch_size: int = 8, chunk_size: int = 1024
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(example index, (n, V) float32 teacher logits)`` over each example's supervised positions.

    Examples are batched in order (right-padded by ``DistillCollator``), and each example's
    supervised positions are projected through the head ``chunk_size`` rows at a time, in position
    order; an example with no supervised position yields nothing. Puts the teacher in eval mode.
    """
    if batch_size < 1 or chunk_size < 1:
        raise ValueError(f"batch_size and chunk_size must be >= 1, got {batch_size}, {chunk_size}")
    teacher.eval()
    device = next(teacher.parameters()).device
    collate = DistillCollator()
    weight, bias = output_head(teacher)
    for i in range(0, len(examples), batch_size):
        batch = collate(examples[i : i + batch_size])
        ids, attn = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        sup = (batch["reason_mask"] | batch["act_mask"])[:, 1:].to(device)
        hidden = final_hidden(teacher, ids, attn)[:, :-1]
        for b in range(ids.shape[0]):
            h = hidden[b][sup[b]]
            for s in range(0, h.shape[0], chunk_size):
                yield i + b, F.linear(h[s : s + chunk_size], weight, bias).float()


def entropy_sum(logits: torch.Tensor) -> float:
    """Σ over rows of the entropy (nats) of softmax(logits), as a Python float."""
    logp = torch.log_softmax(logits, -1)
    return float(-(logp.exp() * logp).sum())


@torch.no_grad()
def teacher_entropies(
    teacher: torch.nn.Module, examples: Sequence[Encoded], batch_size: int = 8, chunk_size: int = 1024
) -> list[float]:
    """Teacher's mean per-token entropy on each example's supervised positions (curriculum's H_T).

    The same pass as ``build_cache``, which stores these values for a cached run.
    """
    totals = [0.0] * len(examples)
    for i, logits in supervised_logits(teacher, examples, batch_size, chunk_size):
        totals[i] += entropy_sum(logits)
    return [t / max(num_supervised_positions(ex), 1) for t, ex in zip(totals, examples, strict=True)]


@dataclass
class TeacherCache:
    """The cached teacher signal in memory (see the module docstring for the layout).

    ``cache[i]`` is example ``i``'s ``TeacherRows`` (views, no copy); ``len(cache)`` the number of examples.
    """

    topk_ids: torch.Tensor
    topk_logprobs: torch.Tensor
    tail_logprob: torch.Tensor
    offsets: torch.Tensor
    entropy: torch.Tensor
    meta: dict[str, str]

    def __len__(self) -> int:
        return self.offsets.numel() - 1

    def __getitem__(self, i: int) -> TeacherRows:
        if not 0 <= i < len(self):
            raise IndexError(f"example {i} not in a cache of {len(self)}")
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return TeacherRows(self.topk_ids[a:b], self.topk_logprobs[a:b], self.tail_logprob[a:b])

    @property
    def topk(self) -> int:
        return int(self.meta["topk"])

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    def entropies(self) -> list[float]:
        """Mean teacher entropy per example, as ``teacher_entropies`` returns it."""
        return self.entropy.tolist()


def build_cache(
    teacher: torch.nn.Module,
    examples: Sequence[Encoded],
    path: str | Path,
    topk: int = 64,
    batch_size: int = 8,
    chunk_size: int = 1024,
    temperature: float = 1.0,
    teacher_name: str = "",
) -> TeacherCache:
    """Run the teacher once over ``examples`` and write the cache to ``path`` (atomically).

    Args:
        teacher: the teacher model, already on the device to run on.
        examples: the training examples, in dataset order (the cache is indexed like them).
        path: the ``.safetensors`` file to write.
        topk: K, cached tokens per position (1 ≤ K ≤ V).
        batch_size: examples per teacher forward.
        chunk_size: positions projected to the vocabulary at once.
        temperature: τ the log-probs are stored at (the run's ``--temperature``).
        teacher_name: recorded and checked by ``load_cache`` (see ``canonical_name``).

    Returns:
        The cache as ``load_cache`` would return it.
    """
    vocab = output_head(teacher)[0].shape[0]
    if not 1 <= topk <= vocab:
        raise ConfigError(f"--cache_topk must be in [1, {vocab}] (the teacher's vocabulary); got {topk}")
    counts = [num_supervised_positions(ex) for ex in examples]
    offsets = torch.tensor([0, *np.cumsum(counts, dtype=np.int64).tolist()], dtype=torch.int64)
    rows = int(offsets[-1])
    ids = torch.empty((rows, topk), dtype=torch.int32)
    logprobs = torch.empty((rows, topk), dtype=torch.float32)
    tail = torch.empty((rows,), dtype=torch.float32)
    totals = [0.0] * len(examples)
    filled = list(offsets[:-1].tolist())
    for i, logits in supervised_logits(teacher, examples, batch_size, chunk_size):
        totals[i] += entropy_sum(logits)
        k_ids, k_lp, k_tail = topk_from_logits(logits, topk, temperature)
        a, b = filled[i], filled[i] + logits.shape[0]
        ids[a:b], logprobs[a:b], tail[a:b] = k_ids.to(torch.int32).cpu(), k_lp.cpu(), k_tail.cpu()
        filled[i] = b
    assert filled == offsets[1:].tolist(), "teacher pass and mask counts disagree"
    entropy = torch.tensor([t / max(n, 1) for t, n in zip(totals, counts, strict=True)], dtype=torch.float64)
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "teacher": teacher_name,
        "vocab_size": str(vocab),
        "topk": str(topk),
        "temperature": repr(float(temperature)),
        "num_examples": str(len(examples)),
        "num_rows": str(rows),
        "fingerprint": examples_fingerprint(examples),
        "logprob_dtype": "float32",
        "teacher_dtype": str(output_head(teacher)[0].dtype).removeprefix("torch."),  # informational, not checked
    }
    cache = TeacherCache(ids, logprobs, tail, offsets, entropy, meta)
    _save(cache, Path(path))
    return cache


def _save(cache: TeacherCache, path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {name: getattr(cache, name).contiguous() for name in _TENSORS}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=cache.meta)
    size = path.stat().st_size
    logger.info(
        "wrote teacher cache %s: %s examples, %s supervised positions, top-%s (%.1f MB)",
        path,
        cache.meta["num_examples"],
        cache.meta["num_rows"],
        cache.meta["topk"],
        size / 2**20,
    )


def load_cache(
    path: str | Path,
    examples: Sequence[Encoded],
    teacher: str | None = None,
    topk: int | None = None,
    temperature: float | None = None,
    vocab_size: int | None = None,
) -> TeacherCache:
    """Read a cache written by ``build_cache`` and check that it belongs to this run.

    Args:
        path: the ``.safetensors`` file.
        examples: this run's training examples; their fingerprint must match the cache's.
        teacher, topk, temperature, vocab_size: when given, must equal what the cache was built with
            (``teacher`` as ``canonical_name`` records it; ``vocab_size`` is the student's head size).

    Raises:
        ConfigError: one line saying what differs and to delete the file (or choose another
            ``--teacher_cache``) so that the next run rebuilds it.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    fix = f"delete {path} (or pass another --teacher_cache) to rebuild it"
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            if meta.get("format") != _FORMAT or not set(_TENSORS) <= set(f.keys()):
                raise ConfigError(f"{path} is not an agentdistill teacher cache; {fix}")
            tensors = {name: f.get_tensor(name) for name in _TENSORS}
    except (SafetensorError, OSError) as e:
        raise ConfigError(f"cannot read the teacher cache {path} ({e}); {fix}") from None
    if meta.get("version") != _VERSION:
        raise ConfigError(f"{path} is a teacher cache of version {meta.get('version')}, not {_VERSION}; {fix}")

    def stale(what: str, cached: object, now: object) -> ConfigError:
        return ConfigError(f"stale teacher cache {path}: built for {what} {cached}, this run has {now}; {fix}")

    if int(meta["num_examples"]) != len(examples):
        raise stale("a number of training examples of", meta["num_examples"], len(examples))
    if meta["fingerprint"] != examples_fingerprint(examples):
        raise ConfigError(
            f"stale teacher cache {path}: built for other training examples (the data, tokenizer, --max_length "
            f"or --truncation changed); {fix}"
        )
    if teacher is not None and meta["teacher"] != teacher:
        raise stale("teacher", meta["teacher"], teacher)
    if topk is not None and int(meta["topk"]) != topk:
        raise stale("--cache_topk", meta["topk"], topk)
    if temperature is not None and float(meta["temperature"]) != float(temperature):
        raise stale("--temperature", meta["temperature"], temperature)
    if vocab_size is not None and int(meta["vocab_size"]) != vocab_size:
        raise stale("a vocabulary size of", meta["vocab_size"], f"a student predicting {vocab_size} tokens")
    cache = TeacherCache(**tensors, meta=meta)
    if cache.offsets.numel() != len(examples) + 1 or int(cache.offsets[-1]) != cache.topk_ids.shape[0]:
        raise ConfigError(f"{path} is corrupt (offsets do not match its rows); {fix}")
    return cache


@dataclass
class TeacherSignal:
    """What a run's student learns from: the live ``teacher``, or its ``cache``, or neither (``--loss sft``).

    ``teacher_signal`` makes it before any model is loaded; the caller loads ``teacher`` when
    ``needs_teacher``, then ``prepare`` builds the cache (a cached run then drops the teacher, so
    training holds only the student) and sets ``entropies``, the curriculum's H_T per example.
    """

    teacher_name: str | None  # as the cache records it (``canonical_name``); None for sft
    cache: TeacherCache | None = None
    teacher: torch.nn.Module | None = None
    entropies: list[float] | None = None

    @property
    def needs_teacher(self) -> bool:
        """Whether the teacher model must be loaded: a distillation loss with no cache to reuse."""
        return self.teacher_name is not None and self.cache is None

    @property
    def vocab_size(self) -> int | None:
        """The teacher's head size (the model's, else the cache's); None when there is neither."""
        if self.teacher is not None:
            return output_head(self.teacher)[0].shape[0]
        return self.cache.vocab_size if self.cache is not None else None

    def prepare(self, cfg: DistillConfig, examples: Sequence[Encoded]) -> None:
        """Build the cache of a cached run that has none yet, then compute the curriculum's entropies (γ ≠ 0)."""
        if cfg.teacher_signal == "cached" and self.needs_teacher:
            self.cache = _build_or_reuse(cfg, self.teacher_name, examples, self.teacher)
            self.teacher = None  # training holds only the student
            _free_memory()
        if cfg.curriculum == "none" or cfg.weights()[2] == 0:
            return
        if self.cache is not None:
            self.entropies = self.cache.entropies()  # computed in the caching pass, exactly as teacher_entropies does
        elif self.teacher is not None:
            self.entropies = teacher_entropies(self.teacher.to(cfg.device), examples, cfg.per_device_train_batch_size)


def teacher_signal(cfg: DistillConfig, teacher: str | None, examples: Sequence[Encoded]) -> TeacherSignal:
    """The run's teacher signal before any model is loaded: a cached run reuses its cache file when there is one.

    Args:
        cfg: the run's options (``--loss``, ``--teacher_signal``, ``--teacher_cache``, ``--cache_topk``, ...).
        teacher: ``--teacher``, a model directory or hub name.
        examples: the training examples, in dataset order.

    Raises:
        ConfigError: a distillation loss without ``--teacher``, or a stale cache (see ``load_cache``).
    """
    if cfg.loss == "sft":
        return TeacherSignal(None)
    if teacher is None:
        raise ConfigError(f"--loss {cfg.loss} needs --teacher (only sft trains without one)")
    name = canonical_name(str(teacher))
    if cfg.teacher_signal == "cached" and cache_path(cfg).exists():
        return TeacherSignal(name, cache=_reuse(cfg, name, examples))
    return TeacherSignal(name)


def _reuse(cfg: DistillConfig, teacher_name: str, examples: Sequence[Encoded]) -> TeacherCache:
    path = cache_path(cfg)
    cache = load_cache(path, examples, teacher=teacher_name, topk=cfg.cache_topk, temperature=cfg.temperature)
    logger.info("reusing teacher cache %s (%d examples, top-%d)", path, len(cache), cache.topk)
    return cache


def _build_or_reuse(
    cfg: DistillConfig, teacher_name: str, examples: Sequence[Encoded], teacher: torch.nn.Module
) -> TeacherCache:
    """The main process writes the cache; the others wait for it and read it."""
    path = cache_path(cfg)
    with cfg.main_process_first(desc="teacher cache"):
        if path.exists():  # another process wrote it while this one loaded the teacher
            return _reuse(cfg, teacher_name, examples)
        logger.info("building teacher cache %s: %d examples, top-%d", path, len(examples), cfg.cache_topk)
        return build_cache(
            teacher.to(cfg.device),
            examples,
            path,
            topk=cfg.cache_topk,
            batch_size=cfg.per_device_train_batch_size,
            chunk_size=cfg.loss_chunk_size,
            temperature=cfg.temperature,
            teacher_name=teacher_name,
        )


def _free_memory() -> None:
    """Collect garbage and empty the CUDA cache (after the caller dropped its last teacher reference)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

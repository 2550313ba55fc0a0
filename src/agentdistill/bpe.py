"""BPE tokenizers trained in process (``tokenizers``), wrapped as ``PreTrainedTokenizerFast``.

The embedded teacher trains its tokenizer here, and the tests train the families real models use.
Every tokenizer has the same special tokens at the same ids, which ``modeling.causal_lm_config``
writes into the model config.

    tok = train_bpe_tokenizer(texts, vocab_size=512)
"""

from collections.abc import Iterable
from typing import Any

SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>", "<bos>")  # ids 0..3, as in the benchmark workload
PAD_ID, UNK_ID, EOS_ID, BOS_ID = range(len(SPECIAL_TOKENS))  # the trainers add SPECIAL_TOKENS first, in order


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 512, model_max_length: int = 2048
) -> Any:  # -> transformers.PreTrainedTokenizerFast
    """Train a byte-level BPE tokenizer in process and wrap it as a ``PreTrainedTokenizerFast``.

    Args:
        texts: training corpus.
        vocab_size: target vocabulary size, special tokens included.
        model_max_length: written into the tokenizer config.

    Returns:
        A fast tokenizer with ``<pad>`` (0), ``<unk>`` (1), ``<eos>`` (2), ``<bos>`` (3); it adds no
        special tokens when encoding, and its offsets are character offsets into the input.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    return _wrap(tok, model_max_length)


# Pre-tokenizer regex of Llama 3 / GPT-4 (cl100k): newline runs and punctuation+newlines are pre-tokens of their own.
_SPLIT_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
TOKENIZER_FAMILIES = ("bytelevel", "split-bytelevel", "metaspace", "sentencepiece")


def train_tokenizer(
    texts: Iterable[str], family: str = "bytelevel", vocab_size: int = 512, model_max_length: int = 2048
) -> Any:  # -> transformers.PreTrainedTokenizerFast
    """Train a BPE tokenizer of one of the families real models use, in process.

    Families: ``bytelevel`` (``train_bpe_tokenizer``: GPT-2's byte-level BPE, the embedded teacher's);
    ``split-bytelevel`` (Llama 3 / GPT-4 style: a regex ``Split`` then byte-level, ``\n\n`` and
    ``]\n`` are single pre-tokens); ``metaspace`` (SentencePiece-style: spaces become ``▁``, a ``▁``
    is prepended to the text, pieces split only at ``▁``, so merges run across newlines);
    ``sentencepiece`` (Llama 2 style: a ``Prepend("▁")`` normalizer, no pre-tokenizer at all, byte
    fallback, and a decoder that strips the leading space).
    """
    if family == "bytelevel":
        return train_bpe_tokenizer(texts, vocab_size, model_max_length)
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if family == "split-bytelevel":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(_SPLIT_REGEX), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    elif family == "metaspace":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
        tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        alphabet = []
    elif family == "sentencepiece":
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence(
            [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
        )
        alphabet = []
    else:
        raise ValueError(f"unknown tokenizer family {family!r}; choose one of {', '.join(TOKENIZER_FAMILIES)}")
    texts = list(texts)
    if family != "split-bytelevel":  # every character of the corpus in the vocabulary: no <unk> in tests
        alphabet = sorted({c for t in texts for c in t.replace(" ", "▁")} | {"▁"})
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=alphabet, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return _wrap(tok, model_max_length)


def _wrap(tok: Any, model_max_length: int) -> Any:
    """A trained ``tokenizers.Tokenizer`` as a ``PreTrainedTokenizerFast`` with our special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=SPECIAL_TOKENS[PAD_ID],
        unk_token=SPECIAL_TOKENS[UNK_ID],
        eos_token=SPECIAL_TOKENS[EOS_ID],
        bos_token=SPECIAL_TOKENS[BOS_ID],
        model_max_length=model_max_length,
    )

"""Tiny, hermetic building blocks: a BPE tokenizer trained in process and small causal LMs from config.

Used by the tests, the benchmarks and the embedded-teacher path of ``agentdistill run``; nothing
here touches the network.
"""

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

SPECIAL_TOKENS = ("<pad>", "<unk>", "<eos>", "<bos>")  # ids 0..3, as in the benchmark workload

SAMPLE_CORPUS = (
    "Question: Which magazine was started first, Arthur's Magazine or First for Women?\n"
    "Thought 1: I need to search Arthur's Magazine and First for Women, and find which was started first.\n"
    "Action 1: Search[Arthur's Magazine]\n"
    "Observation 1: Arthur's Magazine (1844-1846) was an American literary periodical published in Philadelphia.\n"
    "Thought 2: Arthur's Magazine was started in 1844. I need to search First for Women next.\n"
    "Action 2: Search[First for Women]\nObservation 2: First for Women is a woman's magazine started in 1989.\n"
    "Action 3: Finish[Arthur's Magazine]\n",
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, a countertop 1, "
    "a drawer 2, a fridge 1, a microwave 1, a sinkbasin 1, and a toaster 1.\n\n"
    "Your task is to: put a clean mug in coffeemachine.\n"
    "> think: To solve the task, I need to find and take a mug, then clean it with sinkbasin.\nOK.\n"
    "> go to countertop 1\nOn the countertop 1, you see a mug 1, and a apple 2.\n"
    ">take mug 1 from countertop 1\nYou pick up the mug 1 from the countertop 1.\n"
    "> open fridge 1\nYou open the fridge 1. The fridge 1 is open. In it, you see nothing.\nNothing happens.\n",
    "WebShop [SEP] Instruction: [SEP] i need a long lasting deodorant for sensitive skin, and price lower "
    "than 40.00 dollars [SEP] Search\n"
    "Action: search[long lasting deodorant sensitive skin]\n"
    "Observation: [Back to Search]\nPage 1 (Total results: 50)\n[Next >]\n[B078GWRC1J]\nBright Citrus Deodorant\n$10.99\n\n"
    "Action: think[B078GWRC1J is a deodorant under $40. I can check it first.]\nObservation: OK.\n\n"
    "Action: click[B078GWRC1J]\nObservation: size [3 ounce (pack of 1)] [3.4 ounce]\n[Buy Now]\n\n"
    "Your score (min 0.0, max 1.0): 0.67\n",
)


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
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<eos>",
        bos_token="<bos>",
        model_max_length=model_max_length,
    )


def tiny_tokenizer(vocab_size: int = 512, extra_texts: Sequence[str] = ()) -> Any:
    """The test tokenizer: BPE trained on ``SAMPLE_CORPUS`` (and ``extra_texts``)."""
    return train_bpe_tokenizer(list(SAMPLE_CORPUS) * 4 + list(extra_texts), vocab_size=vocab_size)


def tiny_causal_lm(
    vocab_size: int,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 2048,
    arch: Literal["llama", "gpt2"] = "llama",
    seed: int = 0,
) -> Any:  # -> transformers.PreTrainedModel
    """A randomly initialised causal LM built from a config (no hub), fp32, untied head for Llama.

    Args:
        vocab_size: must equal the tokenizer's ``len(tok)``.
        hidden_size, num_layers, num_heads, intermediate_size: model shape (Llama default
            intermediate size is ``int(2.7 * hidden_size)``).
        max_position_embeddings: longest sequence the model accepts.
        arch: ``llama`` (RoPE, RMSNorm, SiLU) or ``gpt2``.
        seed: torch seed used for the initialisation.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from agentdistill.modeling import causal_lm_config

    config = causal_lm_config(
        vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings, arch
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


def save_tiny_pair(
    out_dir: str | Path, tokenizer: Any, hidden_sizes: tuple[int, int] = (64, 32), seed: int = 0
) -> tuple[Path, Path]:
    """Save a tiny teacher and a smaller student (same tokenizer) as ``from_pretrained`` directories."""
    out_dir = Path(out_dir)
    paths = []
    for name, hidden, layers in (("teacher", hidden_sizes[0], 2), ("student", hidden_sizes[1], 2)):
        model = tiny_causal_lm(len(tokenizer), hidden_size=hidden, num_layers=layers, seed=seed)
        path = out_dir / name
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths.append(path)
    return paths[0], paths[1]


class ScriptedPolicy:
    """A ``Policy`` that replays known trajectories: for each input text it emits what follows it in the
    trajectory whose full rendering starts with that text (cut at the stop strings), else ``fallback``.

    It drives ``agent.run_episodes`` without a model, so the loop, the format's prefix-consistent
    rendering and ``parse_output`` are tested together.
    """

    def __init__(self, full_texts: Sequence[str], fallback: str = "???") -> None:
        self.full_texts, self.fallback = list(full_texts), fallback

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, contexts: Sequence[Any], fmt: Any) -> list[Any]:
        from agentdistill.agent import Generation, cut_turn

        out = []
        for text in (c.text for c in contexts):
            full = next((f for f in self.full_texts if f.startswith(text) and len(f) > len(text)), None)
            cont = cut_turn(full[len(text) :], fmt) if full is not None else self.fallback
            out.append(Generation(cont, len(cont.split())))
        return out

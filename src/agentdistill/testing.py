"""Tiny, hermetic building blocks: a BPE tokenizer trained on a sample corpus and small causal LMs from config.

Used by the tests and the benchmarks; nothing here touches the network. Tokenizer training itself
lives in ``bpe``.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from agentdistill.bpe import train_bpe_tokenizer

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


def commands_writing(tmp_path: Path, out: str) -> dict[str, list[str]]:
    """The CLI argv of every command that writes ``out``, with a one-record ReAct data file written under
    ``tmp_path`` and an existing directory as the model: the ``--out`` check must come before both."""
    data = tmp_path / "trajs.jsonl"
    data.write_text('{"id": "a", "format": "react", "text": "Q\\nThought 1: t\\nAction 1: Finish[x]\\n"}\n')
    model = str(tmp_path)
    return {
        "segment": ["segment", str(data), "--out", out],
        "distill": ["distill", "--data", str(data), "--student", model, "--loss", "sft", "--out", out],
        "evaluate": ["evaluate", "--model", model, "--env", "hotpotqa", "--out", out],
        "collect": ["collect", "--env", "hotpotqa", "--out", out],
        "run": ["run", "--preset", "smoke", "--out", out],
    }

"""The embedded teacher of ``agentdistill run`` (when no ``--teacher`` is given): the envs' scripted experts
play the train split, a BPE tokenizer is trained on their transcripts, and a small causal LM learns them by
SFT through ``distill``. What it reaches on a CPU is recorded in ``docs/embedded-teacher.md``.

Layout under ``RUN/teacher/``: ``expert/<env>.jsonl`` and ``expert/train.jsonl``, ``tokenizer/``,
``init/config.json``, ``model/``.
"""

import shutil
from pathlib import Path
from typing import Any

from agentdistill.checkpoints import drop_checkpoints
from agentdistill.files import drop_if_corrupt, merge_jsonl
from agentdistill.manifest import count_params
from agentdistill.runconfig import RunConfig, teacher_training_args


def train_embedded_teacher(cfg: RunConfig, tdir: Path) -> dict[str, Any]:
    """Expert data → tokenizer → SFT into ``tdir/model``; each step that is already on disk is reused.

    Returns:
        the teacher marker's info: ``params`` and ``longest_turn`` (the tokens of the longest expert turn).
    """
    from agentdistill.collect import collect
    from agentdistill.distill import DistillArgs, distill
    from agentdistill.modeling import causal_lm_config, load_tokenizer
    from agentdistill.runconfig import CollectArgs

    tspec = cfg.teacher
    expert_files = []
    for env in cfg.envs:
        out = tdir / "expert" / f"{env}.jsonl"
        drop_if_corrupt(out)
        collect(
            CollectArgs(
                env=env,
                agent="expert",
                split="train",
                episodes=tspec.expert_episodes,
                train_size=tspec.train_size,
                out=str(out),
                **cfg.env_options(env),
            )
        )
        expert_files.append(out)
    data = tdir / "expert" / "train.jsonl"
    merge_jsonl(expert_files, data, seed=cfg.env_seed)
    tok_dir = tdir / "tokenizer"
    if not (tok_dir / "tokenizer.json").exists():
        train_tokenizer(data, tok_dir, tspec.vocab_size)
    init = tdir / "init"
    if not (init / "config.json").exists():
        conf = causal_lm_config(
            len(load_tokenizer(tok_dir)),
            hidden_size=tspec.hidden_size,
            num_layers=tspec.num_layers,
            num_heads=tspec.num_heads,
            intermediate_size=tspec.intermediate_size,
            max_position_embeddings=tspec.max_position_embeddings,
            arch=tspec.arch,
        )
        conf.save_pretrained(init)
    mdir = tdir / "model"
    targs = teacher_training_args(cfg, str(mdir))
    distill(DistillArgs(data=str(data), student_config=str(init / "config.json"), tokenizer=str(tok_dir)), targs)
    drop_checkpoints(mdir)
    return {"params": count_params(mdir), "longest_turn": longest_turn(data, load_tokenizer(tok_dir))}


def train_tokenizer(data: Path, tok_dir: Path, vocab_size: int) -> None:
    """Train a BPE on the trajectories of ``data`` and save it to ``tok_dir`` (atomically, as a directory)."""
    from agentdistill.bpe import train_bpe_tokenizer
    from agentdistill.formats import get_format
    from agentdistill.masks import text_pieces
    from agentdistill.trajectory import read_trajectories

    texts = []
    for t in read_trajectories(data):  # trained on the pieces training encodes, never across a span boundary
        texts += text_pieces(*get_format(t.text_format).render(t.prompt, t.steps))
    tok = train_bpe_tokenizer(texts, vocab_size=vocab_size)
    tmp = tok_dir.with_name(tok_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tok.save_pretrained(tmp)
    shutil.rmtree(tok_dir, ignore_errors=True)
    tmp.rename(tok_dir)


def longest_turn(data: Path, tokenizer: Any) -> int:
    """Tokens in the longest turn an agent generates when it replays ``data``: the longest run of consecutive
    reasoning/action tokens (a ReAct turn is a thought and its action; an ALFWorld or WebShop turn is one span).

    ``max_new_tokens`` below this cuts such turns, so no agent could solve every task.
    """
    from agentdistill.data import load_examples

    examples, _ = load_examples(data, tokenizer, max_length=1 << 30)
    best = 0
    for ex in examples:
        run = 0
        for r, a in zip(ex.reason_mask, ex.act_mask, strict=True):
            run = run + 1 if r or a else 0
            best = max(best, run)
    return best

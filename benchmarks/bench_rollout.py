"""Rollout speed: episodes/s and generated tokens/s of the agent with and without KV cache reuse between turns.

    .venv/bin/python benchmarks/bench_rollout.py [--tasks 32] [--repeat 2] [--turn_tokens 32] [--positions 1024,2048]
        [--variants "generate,32 reuse,32 generate,1 reuse,1"] [--device cuda] [--hidden 384 --layers 6 --heads 6]

The model is the embedded teacher's architecture at the quick preset's size (Llama, hidden 128, 2 layers,
4 heads, fp32, on the CPU; ``--hidden/--layers/--heads`` and ``--device`` change them; a window of 1024 positions, or each of ``--positions``), randomly initialised, with a BPE
tokenizer (vocab 2048) trained on expert transcripts as ``agentdistill run`` trains it. A random model
writes random tokens and seldom ends a turn; with ``--turn_tokens N`` it writes a newline (where an ALFWorld
turn ends) at a pseudo-random 1 in N of the positions, so its turns end after about N tokens, as a trained
teacher's do (0: the raw model). Episodes: the first ``--tasks`` ALFWorld test tasks with the quick
preset's evaluate settings (max_new_tokens 104, 25 steps). Histories longer than the window are cut from
the left, and a cut context shares only its prompt with the cache.

Variants: batch 32 and batch 1, each with ``reuse_cache`` on and off ("generate": today's path, every
turn re-reads the whole context). Each variant runs in its own process (1 torch thread: the 2 cores are
shared), the variants are interleaved over ``--repeat`` rounds, and the fastest round is reported; ratios
are against the batched generate path measured in the same run. Greedy decoding: the trajectories of
every variant must be identical. Results go to ``benchmarks/results/rollout.json``.
"""

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ENV = "alfworld"
MAX_NEW_TOKENS = 104  # the quick preset's evaluate
MAX_STEPS = 25
VARIANTS = (("generate", 32), ("reuse", 32), ("generate", 1), ("reuse", 1))
RESULTS = Path(__file__).parent / "results" / "rollout.json"


def build(out: Path, positions: int, hidden: int = 128, layers: int = 2, heads: int = 4) -> None:
    """Tokenizer (trained on expert transcripts) + randomly initialised quick-size Llama with a window of
    ``positions`` tokens, saved to ``out``."""
    import torch
    from transformers import AutoModelForCausalLM

    from agentdistill.agent import expert_episode
    from agentdistill.bpe import train_bpe_tokenizer
    from agentdistill.envs import make_env
    from agentdistill.formats import get_format
    from agentdistill.masks import text_pieces
    from agentdistill.modeling import causal_lm_config

    texts = []
    for env in ("alfworld", "webshop", "hotpotqa"):
        for tid in make_env(env).task_ids("train")[:100]:
            t = expert_episode(env, tid)
            texts += text_pieces(*get_format(t.text_format).render(t.prompt, t.steps))
    tok = train_bpe_tokenizer(texts, vocab_size=2048)
    config = causal_lm_config(
        len(tok), hidden_size=hidden, num_layers=layers, num_heads=heads, max_position_embeddings=positions
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    model.save_pretrained(out)
    tok.save_pretrained(out)


def end_turns(model: Any, newline: int, turn_tokens: int) -> None:
    """Make ``model`` end its turns after about ``turn_tokens`` tokens, as a trained teacher's end: it writes
    ``newline`` after a pseudo-random 1 in ``turn_tokens`` of the positions. A function of the position ids
    alone (both decoding paths give a token the same position), so every variant ends the same turns."""
    import torch

    fed: dict[str, torch.Tensor] = {}

    def read_positions(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        fed["position_ids"] = kwargs["position_ids"]

    def hook(_module: Any, _inputs: Any, logits: torch.Tensor) -> torch.Tensor:  # (B, T, V)
        pos = fed["position_ids"][:, -logits.shape[1] :]
        end = (pos * 2654435761 % 2**32 >> 16) % turn_tokens == 0  # Knuth's multiplicative hash
        return logits + 1e4 * end[..., None] * (torch.arange(logits.shape[-1], device=logits.device) == newline)

    model.register_forward_pre_hook(read_positions, with_kwargs=True)
    model.get_output_embeddings().register_forward_hook(hook)


def run_variant(
    model_dir: Path, mode: str, batch_size: int, tasks: int, threads: int, turn_tokens: int, device: str = "cpu"
) -> dict[str, Any]:
    """Time one variant's episodes (in this process) and describe what they produced."""
    import torch

    from agentdistill.agent import AgentConfig, HFPolicy, run_episodes
    from agentdistill.envs import make_env
    from agentdistill.modeling import load_causal_lm, load_tokenizer

    torch.set_num_threads(threads)
    model, tok = load_causal_lm(model_dir).to(device), load_tokenizer(model_dir)
    if turn_tokens:
        end_turns(model, tok.convert_tokens_to_ids("Ċ"), turn_tokens)  # "Ċ": byte-level BPE's "\n"
    cfg = AgentConfig(max_new_tokens=MAX_NEW_TOKENS, batch_size=batch_size, reuse_cache=mode == "reuse")
    policy = HFPolicy(model, tok, cfg)
    task_ids = make_env(ENV).task_ids("test")[:tasks]
    t = time.perf_counter()
    records = run_episodes(ENV, task_ids, policy, max_steps=MAX_STEPS)
    seconds = time.perf_counter() - t
    trajectories = json.dumps([r.trajectory.to_json() for r in records], sort_keys=True)
    stats = policy.turns.stats if policy.turns is not None else {}
    return {
        "mode": mode,
        "batch_size": batch_size,
        "seconds": seconds,
        "episodes": len(records),
        "steps": sum(r.steps for r in records),
        "gen_tokens": sum(r.gen_tokens for r in records),
        "context_tokens": stats.get("context"),
        "reused_tokens": stats.get("reused"),
        "prefilled_tokens": stats.get("prefilled"),
        "trajectories_sha1": hashlib.sha1(trajectories.encode()).hexdigest(),
    }


def bench(model_dir: Path, a: argparse.Namespace, variants: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Every variant ``a.repeat`` times, interleaved, each in a fresh process; the fastest round of each."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(a.repeat):
        for mode, batch in variants:
            cmd = [sys.executable, __file__, "--variant", f"{mode},{batch},{model_dir}", "--tasks", str(a.tasks)]
            cmd += ["--threads", str(a.threads), "--turn_tokens", str(a.turn_tokens), "--device", a.device]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[mode, batch].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}: {mode} batch {batch}: {runs[mode, batch][-1]['seconds']:.1f} s", flush=True)
    best = {v: min(rs, key=lambda x: x["seconds"]) for v, rs in runs.items()}
    if len({b["trajectories_sha1"] for b in best.values()}) != 1:
        raise SystemExit("the variants' trajectories differ: reuse must generate what generate does")
    base = best["generate", 32]
    return [
        {
            **b,
            "episodes_per_s": b["episodes"] / b["seconds"],
            "gen_tokens_per_s": b["gen_tokens"] / b["seconds"],
            "x_generate_batched": base["seconds"] / b["seconds"],
            "all_seconds": [x["seconds"] for x in runs[v]],
        }
        for v, b in best.items()
    ]


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("variant", "batch", "seconds", "episodes/s", "gen tokens/s", "x generate b32", "reused", "prefilled")
    table = [header]
    for r in rows:
        ctx = r["context_tokens"]
        table.append(
            (
                r["mode"],
                str(r["batch_size"]),
                f"{r['seconds']:.1f}",
                f"{r['episodes_per_s']:.3f}",
                f"{r['gen_tokens_per_s']:.0f}",
                f"{r['x_generate_batched']:.2f}",
                f"{r['reused_tokens'] / ctx:.1%}" if ctx else "-",
                f"{r['prefilled_tokens'] / ctx:.1%}" if ctx else "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=32, help="first N ALFWorld test tasks")
    p.add_argument("--repeat", type=int, default=2, help="interleaved rounds of all variants; the fastest is reported")
    p.add_argument("--turn_tokens", type=int, default=32, help="about how many tokens a turn has (0: no end forced)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per variant process (2 cores shared: 1)")
    p.add_argument(
        "--positions",
        default="1024",
        help="comma-separated context windows to bench (1024: the quick preset; longer: histories are cut later)",
    )
    p.add_argument("--hidden", type=int, default=128, help="the model's hidden size (128: the quick preset's teacher)")
    p.add_argument("--layers", type=int, default=2, help="its layers")
    p.add_argument("--heads", type=int, default=4, help="its attention heads")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--variants",
        default=" ".join(f"{m},{b}" for m, b in VARIANTS),
        help="space-separated MODE,BATCH pairs (MODE generate or reuse); ratios are to generate,32",
    )
    p.add_argument("--out", default=str(RESULTS), help="where the JSON results go")
    p.add_argument("--variant", help=argparse.SUPPRESS)  # internal: MODE,BATCH,MODEL_DIR -> one JSON line
    a = p.parse_args(argv)
    if a.variant:
        mode, batch, model_dir = a.variant.split(",", 2)
        result = run_variant(Path(model_dir), mode, int(batch), a.tasks, a.threads, a.turn_tokens, a.device)
        print(json.dumps(result))
        return 0
    import torch
    import transformers

    variants = []
    for v in a.variants.split():
        mode, _, batch = v.partition(",")
        if mode not in ("generate", "reuse") or not batch.isdigit() or int(batch) < 1:
            p.error(f"--variants: {v!r} is not MODE,BATCH with MODE generate or reuse and BATCH >= 1")
        variants.append((mode, int(batch)))
    if ("generate", 32) not in variants:
        p.error("--variants must include generate,32: the baseline of every ratio")
    results = []
    for positions in map(int, a.positions.split(",")):
        print(f"== {positions} positions", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp), positions, a.hidden, a.layers, a.heads)
            rows = bench(Path(tmp), a, variants)
        print_table(rows)
        base = rows[0]
        print(
            f"\n{base['episodes']} {ENV} test episodes, {base['steps']} steps, {base['gen_tokens']} generated tokens "
            f"per variant (identical trajectories); best of {a.repeat}. x generate b32 = the batched generate path's "
            "seconds / this variant's. reused / prefilled = context ids taken from the cache / fed to the model "
            "(pads and recomputed ids included), as shares of all context ids.\n"
        )
        model = f"llama hidden {a.hidden}, {a.layers} layers, {a.heads} heads, {positions} positions"
        setup = {"positions": positions, "model": model}
        results.append({"setup": setup, "variants": rows})
    common = {
        "env": ENV,
        "tasks": a.tasks,
        "max_new_tokens": MAX_NEW_TOKENS,
        "max_steps": MAX_STEPS,
        "turn_tokens": a.turn_tokens,
        "threads": a.threads,
        "repeat": a.repeat,
        "model": f"llama hidden {a.hidden}, {a.layers} layers, {a.heads} heads, vocab 2048, random init, fp32",
        "device": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"setup": common, "runs": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Teacher-forced agreement of a model with expert trajectories: how close it is to acting right, offline.

    python benchmarks/teacher_forcing.py MODEL_DIR [--envs alfworld,webshop,hotpotqa] [--episodes 30]

For each env, runs the oracle on the first N tasks of the test split, feeds each rendered trajectory to
the model once and prints: top-1 agreement on reasoning tokens, on action tokens, and the share of
action spans whose every token is the model's top-1 prediction ("act exact"). Whole-episode success
needs act exact close to 1, so this tells how far an undertrained teacher is from competent, in
seconds and without running episodes (docs/embedded-teacher.md).
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch

from agentdistill.agent import expert_episode
from agentdistill.data import load_examples
from agentdistill.envs import make_env
from agentdistill.modeling import load_causal_lm, load_tokenizer


@torch.no_grad()
def agreement(model: torch.nn.Module, tokenizer: object, data: Path) -> dict[str, float]:
    examples, _ = load_examples(data, tokenizer, max_length=model.config.max_position_embeddings)
    hits = {"reason": [0, 0], "act": [0, 0], "act_exact": [0, 0]}
    for ex in examples:
        ids = torch.tensor([ex.input_ids])
        ok = model(input_ids=ids).logits[0, :-1].argmax(-1) == ids[0, 1:]
        reason = torch.tensor(ex.reason_mask[1:], dtype=torch.bool)
        act = torch.tensor(ex.act_mask[1:], dtype=torch.bool)
        spans = torch.tensor(ex.span_ids[1:])
        for name, mask in (("reason", reason), ("act", act)):
            hits[name][0] += int(ok[mask].sum())
            hits[name][1] += int(mask.sum())
        for span in torch.unique(spans[act]).tolist():
            hits["act_exact"][0] += int(ok[(spans == span) & act].all())
            hits["act_exact"][1] += 1
    return {k: round(a / b, 3) if b else float("nan") for k, (a, b) in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model directory (with its tokenizer)")
    ap.add_argument("--envs", default="alfworld,webshop,hotpotqa")
    ap.add_argument("--episodes", type=int, default=30, help="first N test tasks per env")
    args = ap.parse_args()
    model, tok = load_causal_lm(args.model).eval(), load_tokenizer(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        for env in args.envs.split(","):
            path = Path(tmp) / f"{env}.jsonl"
            rows = [expert_episode(env, t).to_json() for t in make_env(env).task_ids("test")[: args.episodes]]
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
            print(env, json.dumps(agreement(model, tok, path)), flush=True)


if __name__ == "__main__":
    main()

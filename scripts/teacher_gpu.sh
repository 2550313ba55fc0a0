#!/usr/bin/env bash
# Train the embedded teacher with the `teacher` preset, evaluate it as an agent on the test split of
# every env, measure its teacher-forced agreement, and leave what came out in $OUT: summary.json
# (success per env and task type with n, seconds per phase), train_log.jsonl, and the model in bf16
# packed as teacher-model.tgz.part-* (parts under 16 MiB: `cat teacher-model.tgz.part-* | tar xz`).
#
#   OUT=out bash scripts/teacher_gpu.sh                              # the preset as it is
#   SETS="teacher.train_size=30000 teacher.expert_episodes=30000 teacher.train.max_steps=3000" bash scripts/teacher_gpu.sh
#   SETS="teacher.train.max_steps=5 teacher.num_layers=1 teacher.hidden_size=32 teacher.expert_episodes=20 \
#     teacher.vocab_size=512" EPISODES=2 MAX_STEPS=3 bash scripts/teacher_gpu.sh  # a CPU dry run, ~1 min
#
# On the device machine (its python lacks bm25s and rapidfuzz): download their wheels into .whl/ first
# (README: "Training the teacher on a GPU"), carry it, and this script installs them into a private dir.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
RUN=${RUN:-/tmp/agentdistill-teacher}
EPISODES=${EPISODES:-200}  # first N test tasks per env (ALFWorld has 134)
steps=(); [ -n "${MAX_STEPS:-}" ] && steps=(--max_steps "$MAX_STEPS")  # default: each env's own step cap
PY=${PY:-python3}
mkdir -p "$OUT"
if ! "$PY" -c "import bm25s, rapidfuzz" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/agentdistill-deps .whl/*.whl
  export PYTHONPATH="/tmp/agentdistill-deps:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" TQDM_DISABLE=1 EPISODES SETS="${SETS:-}" PRESET="${PRESET:-teacher}"
bf16=$("$PY" -c "import torch; print(str(torch.cuda.is_available() and torch.cuda.is_bf16_supported()).lower())")
sets=(--set "teacher.train.bf16=$bf16")
for s in ${SETS:-}; do sets+=(--set "$s"); done

t0=$(date +%s)
"$PY" -m agentdistill run --preset "${PRESET:-teacher}" --stop_after teacher --out "$RUN" "${sets[@]}"
t1=$(date +%s)
for env in alfworld webshop hotpotqa; do
  "$PY" -m agentdistill evaluate --model "$RUN/teacher/model" --env "$env" --split test --episodes "$EPISODES" \
    --batch_size "$EPISODES" --max_new_tokens 128 "${steps[@]}" --out "$RUN/eval/$env.json"
done
t2=$(date +%s)
"$PY" benchmarks/teacher_forcing.py "$RUN/teacher/model" | tee "$RUN/teacher_forcing.txt"
if [ -f "$RUN/teacher/model/train_log.jsonl" ]; then cp "$RUN/teacher/model/train_log.jsonl" "$OUT/"; fi

"$PY" - "$RUN" "$OUT" "$((t1 - t0))" "$((t2 - t1))" <<'EOF'
import json, sys
from pathlib import Path

import torch

from agentdistill.modeling import load_causal_lm, load_tokenizer

run, out, train_s, eval_s = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import os

summary = {
    "preset": os.environ.get("PRESET", "teacher"),
    "sets": os.environ.get("SETS", "").split(),
    "eval_episodes_per_env": int(os.environ.get("EPISODES", "200")),
    "train_seconds": train_s,
    "eval_seconds": eval_s,
    "envs": {},
}
for path in sorted((run / "eval").glob("*.json")):
    m = json.loads(path.read_text())
    summary["envs"][path.stem] = {"overall": m["overall"], "by_type": m.get("by_type")}
for line in (run / "teacher_forcing.txt").read_text().splitlines():
    env, figures = line.split(" ", 1)
    summary["envs"].setdefault(env, {})["teacher_forcing"] = json.loads(figures)
summary["torch"], summary["cuda"] = torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else None
(out / "summary.json").write_text(json.dumps(summary, indent=1))
model = load_causal_lm(run / "teacher" / "model").to(torch.bfloat16)  # shipped in bf16
model.save_pretrained(run / "ship" / "model")
load_tokenizer(run / "teacher" / "model").save_pretrained(run / "ship" / "model")
print(json.dumps({e: v.get("overall", {}).get("success_rate") for e, v in summary["envs"].items()}))
EOF
tar -C "$RUN/ship" -czf - model | split -b 15m - "$OUT/teacher-model.tgz.part-"
ls -la "$OUT"

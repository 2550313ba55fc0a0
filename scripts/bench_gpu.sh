#!/usr/bin/env bash
# Issue 16, part 4: the training step and the agent's rollouts on a GPU, in one call; results in $OUT.
#   distill_gpu.json  bench_distill.py, workload `gpu` (Llama 12 x 768 -> 4 x 384, vocabulary 32k, 16 x 1024
#                     tokens), bf16 mixed precision: sad live and cached, token-kd, sft, and HF Trainer's step
#                     (TRL is not on the device machine: no ratios to it)
#   rollout_gpu.json  bench_rollout.py with a 6 x 384 model (the GPU teacher's size), 32 ALFWorld test tasks,
#                     batch 32 with and without KV reuse, windows of 1024 and 2048
#
#   OUT=out bash scripts/bench_gpu.sh                                   # on the device machine
#   DEVICE=cpu WORKLOAD=tiny TASKS=2 HIDDEN=32 LAYERS=1 HEADS=2 POSITIONS=512 OUT=/tmp/o bash scripts/bench_gpu.sh
#                                                                       # a CPU dry run, ~2 min
#
# The device machine's python lacks bm25s and rapidfuzz: download their wheels into .whl/ first (README:
# "Training the teacher on a GPU"), carry it, and this script installs them into a private dir.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
if ! "$PY" -c "import bm25s, rapidfuzz" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --target /tmp/agentdistill-deps .whl/*.whl
  export PYTHONPATH="/tmp/agentdistill-deps:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" TQDM_DISABLE=1
bf16=(); [ "$DEVICE" != cpu ] && bf16=(--bf16)
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

t0=$(date +%s)
"$PY" benchmarks/bench_distill.py --device "$DEVICE" "${bf16[@]}" --workload "${WORKLOAD:-gpu}" \
  --variants sad,sad-cached,token-kd,sft,student --warmup 3 --steps 10 --repeats 2 --threads 4 \
  --out "$OUT/distill_gpu.json" 2>&1 | tee "$OUT/distill_gpu.txt"
t1=$(date +%s)
"$PY" benchmarks/bench_rollout.py --device "$DEVICE" --tasks "${TASKS:-32}" --repeat 1 \
  --hidden "${HIDDEN:-384}" --layers "${LAYERS:-6}" --heads "${HEADS:-6}" --positions "${POSITIONS:-1024,2048}" \
  --variants "generate,32 reuse,32" --out "$OUT/rollout_gpu.json" 2>&1 | grep -v '^Writing\|^Loading' | tee "$OUT/rollout_gpu.txt"
t2=$(date +%s)
echo "distill bench $((t1 - t0)) s, rollout bench $((t2 - t1)) s" | tee "$OUT/times.txt"

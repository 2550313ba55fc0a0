#!/usr/bin/env bash
# Interim demo until `agentdistill run` exists: segment + distill a tiny student from a tiny teacher built here.
set -euo pipefail
out=${1:-runs/demo}
mkdir -p "$out"
.venv/bin/python - "$out" <<'PY'
import sys
from agentdistill.testing import save_tiny_pair, tiny_tokenizer
save_tiny_pair(sys.argv[1], tiny_tokenizer())
PY
.venv/bin/agentdistill segment examples/trajs.jsonl --out "$out/segmented.jsonl"
.venv/bin/agentdistill distill --teacher "$out/teacher" --student "$out/student" --data examples/trajs.jsonl \
  --loss sad --max_steps 20 --logging_steps 5 --per_device_train_batch_size 2 --max_length 512 --out "$out/sad"

"""benchmarks/bench_distill.py end to end on the tiny workload: our variants only (no TRL), its JSON."""

import json
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "bench_distill.py"
OURS = ("sad", "sad-cached", "token-kd", "student", "sft")


def test_bench_distill_tiny_writes_its_results(tmp_path):
    out = tmp_path / "distill.json"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--workload",
        "tiny",
        "--quick",
        "--variants",
        ",".join(OURS),
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["settings"] == {
        "warmup": 1, "steps": 2, "repeats": 1, "threads": 2, "device": "cpu", "bf16": False,
    }  # fmt: skip
    assert result["workload"]["name"] == "tiny" and result["workload"]["tokens_per_step"] == 2 * 64
    assert result["matmul"]["peak_gflops"] > 0
    rows = result["variants"]
    assert list(rows) == list(OURS)
    for name, row in rows.items():
        assert row["timed_steps"] == 2 and len(row["runs"]) == 1, name
        assert row["tokens_per_s_p25"] <= row["tokens_per_s"] <= row["tokens_per_s_p75"], name
        assert row["peak_rss_mb"] >= row["rss_before_mb"] > 0, name
        assert math.isfinite(row["loss0"]) and row["loss0"] > 0, name
        assert row["x_tokens_per_s"] is None and row["x_peak_rss"] is None  # no TRL baseline in this run
        assert row["peak_gpu_mb"] is None and row["x_peak_gpu"] is None
    assert rows["token-kd"]["teacher_dtype"] == "float32"  # TRL's precision, for the loss check
    assert rows["sad"]["teacher_dtype"] in ("float32", "bfloat16")  # --teacher_dtype auto
    assert rows["sad-cached"]["teacher_dtype"] is None and rows["student"]["teacher_dtype"] is None
    assert rows["sft"]["teacher_dtype"] is None
    # our SFT loss is HF's causal-LM cross-entropy over the supervised positions, computed fused
    assert math.isclose(rows["sft"]["loss0"], rows["student"]["loss0"], rel_tol=1e-5)
    # sad with λ_r = λ_a = 1 and token normalisation is token-kd's loss (up to a bf16 teacher's rounding)
    assert math.isclose(rows["sad"]["loss0"], rows["token-kd"]["loss0"], rel_tol=1e-2)
    assert result["loss_check"] is None and result["targets"] is None
    assert "| sad: ours" in proc.stdout and f"wrote {out}" in proc.stdout

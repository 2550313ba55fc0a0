"""Time a distillation training step against TRL's GKDTrainer on the reference KD workload.

    .venv/bin/python benchmarks/bench_distill.py [--warmup 3] [--steps 5] [--repeats 3] [--quick]
        [--variants trl-fkl,trl-gkd,sad,sad-cached,token-kd,student] [--out benchmarks/results/distill.json]

Variants not run by default: sad-unfused (the defaults before the fused loss), sft and sft-unfused (the SFT
loss fused and checkpointed; compare them with student, HF Trainer's own step).

The workload (``/work/shared/bench/WORKLOAD.md``): a Llama teacher (4 layers x 512) and student (2 x 256),
vocabulary 8192, one batch of 8 x 512 random tokens with an agent-like segment layout (62.6 % of the
positions supervised), reused every step, fp32, AdamW (fused, lr 1e-4), 2 threads. Every variant trains
through its real ``Trainer.train`` loop in its own subprocess (``--warmup`` untimed steps, then
``--steps`` timed ones). The subprocesses of a round run side by side but step in turns, one step of one
variant at a time, in an order rotated every step, so a spell of load elsewhere on the machine falls on
all variants alike; ``--repeats`` rounds. A step's time runs from its go-ahead to its end, so it includes
the loop's own work between steps (fetching the batch, logging). Reported: median
tokens/s (all 4096 tokens of a step) with p25/p75 over every timed step, the median peak RSS of the
subprocesses (``ru_maxrss``), each as a ratio to TRL with beta=0 from the same run, utilisation against
the fp32 matmul peak measured at the start, and the step-0 loss of each variant: ``token-kd`` computes
TRL's beta=0 loss (forward KL at temperature 1, summed over the supervised positions and divided by
their number) with a float32 teacher like TRL's, so the two must agree. TRL is an optional extra
(``pip install agentdistill[bench]``); without it the TRL rows are skipped and the ratios are left out.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "distill.json"
BASELINE = "trl-fkl"
VARIANTS = {
    "trl-fkl": "TRL GKDTrainer, beta=0 (forward KL)",
    "trl-gkd": "TRL GKDTrainer, beta=0.5 (its default)",
    "sad": "ours: sad, live teacher (defaults)",
    "sad-cached": "ours: sad, cached top-64 teacher (defaults)",
    "token-kd": "ours: token-kd, live float32 teacher (TRL beta=0's loss)",
    "student": "student step alone (HF Trainer, its own CE loss)",
    # not run by default: the previous default path, for before/after comparisons
    "sad-unfused": "ours: sad, live, the previous defaults (checkpointed loss, chunks of 1024, float32 teacher)",
    "sft": "ours: sft (the baseline's and the embedded teacher's loss; defaults: fused)",
    "sft-unfused": "ours: sft, checkpointed loss (recomputes its logits in backward), chunks of 512",
}
NO_TEACHER = ("sad-cached", "student", "sft", "sft-unfused")
DEFAULT_VARIANTS = ("trl-fkl", "trl-gkd", "sad", "sad-cached", "token-kd", "student")


@dataclass(frozen=True)
class Workload:
    """Model shapes (layers, hidden, heads, intermediate), batch and segment layout (token ranges, inclusive)."""

    teacher: tuple[int, int, int, int]
    student: tuple[int, int, int, int]
    vocab: int
    batch: int
    seq: int
    prompt: tuple[int, int]
    reason: tuple[int, int]
    act: tuple[int, int]
    obs: tuple[int, int]
    topk: int

    @property
    def tokens(self) -> int:
        return self.batch * self.seq


WORKLOADS = {
    "reference": Workload(
        (4, 512, 8, 1376), (2, 256, 4, 688), 8192, 8, 512, (32, 64), (24, 72), (8, 24), (16, 48), 64
    ),
    "tiny": Workload((2, 64, 4, 172), (1, 32, 2, 86), 512, 2, 64, (4, 8), (3, 9), (1, 3), (2, 6), 16),
    # issue 16's GPU pair: 12 x 768 -> 4 x 384, vocabulary 32k, 16 x 1024 tokens (run with --device cuda --bf16)
    "gpu": Workload(
        (12, 768, 12, 3072), (4, 384, 6, 1536), 32000, 16, 1024, (32, 64), (24, 72), (8, 24), (16, 48), 64
    ),
}


# ---- the workload ------------------------------------------------------------------------------
def build_batch(w: Workload) -> tuple[Any, Any]:
    """``input_ids`` (B, T) and ``segment_type`` (B, T): 0 context, 1 reasoning, 2 action (WORKLOAD.md)."""
    import torch

    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(4, w.vocab, (w.batch, w.seq), generator=g)
    seg = torch.zeros(w.batch, w.seq, dtype=torch.long)

    def draw(lo_hi: tuple[int, int]) -> int:
        return int(torch.randint(lo_hi[0], lo_hi[1] + 1, (1,), generator=g))

    for row in range(w.batch):
        pos = draw(w.prompt)
        while pos < w.seq:
            for kind, span in ((1, w.reason), (2, w.act), (0, w.obs)):
                n = draw(span)
                seg[row, pos : pos + n] = kind
                pos += n
                if pos >= w.seq:
                    break
    return ids, seg


def build_models(w: Workload, out: Path) -> None:
    """Teacher then student from ``torch.manual_seed(0)``, saved to ``out/teacher`` and ``out/student``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    for name, (layers, hidden, heads, inter) in (("teacher", w.teacher), ("student", w.student)):
        config = LlamaConfig(
            vocab_size=w.vocab,
            hidden_size=hidden,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=max(1024, w.seq),
            tie_word_embeddings=False,
            pad_token_id=0,
            bos_token_id=3,
            eos_token_id=2,
        )
        LlamaForCausalLM._from_config(config, attn_implementation="sdpa").save_pretrained(out / name)


def examples(w: Workload) -> list:
    """The batch rows as ``masks.Encoded`` examples (a span id per contiguous reasoning/action run)."""
    from agentdistill.masks import CONTEXT_SPAN, Encoded

    ids, seg = build_batch(w)
    out = []
    for row_ids, row_seg in zip(ids.tolist(), seg.tolist(), strict=True):
        span_ids, span, prev = [], -1, 0
        for kind in row_seg:
            span += kind != 0 and kind != prev
            span_ids.append(span if kind else CONTEXT_SPAN)
            prev = kind
        out.append(Encoded(row_ids, [int(k == 1) for k in row_seg], [int(k == 2) for k in row_seg], span_ids))
    return out


def prepare(w: Workload, out: Path, device: str = "cpu") -> None:
    """Models, and the teacher's top-k cache for ``sad-cached`` (built here, so no variant pays for the teacher)."""
    from transformers.utils import logging

    from agentdistill.modeling import load_causal_lm
    from agentdistill.teacher_cache import build_cache

    logging.disable_progress_bar()
    build_models(w, out)
    build_cache(load_causal_lm(out / "teacher").to(device), examples(w), out / "cache.safetensors", topk=w.topk)


# ---- one variant, in its own process -----------------------------------------------------------
def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Fixed:
    """A dataset of ``n`` placeholders and a collator that returns the same ready batch every step."""

    def __init__(self, batch: dict, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i

    def __call__(self, _features: list) -> dict:
        return self.batch


def _training_args(cls: Any, setup: Path, w: Workload, steps: int, device: str, **extra: Any) -> Any:
    common = {
        "output_dir": str(setup / "out"),
        "per_device_train_batch_size": w.batch,
        "max_steps": steps,
        "learning_rate": 1e-4,
        "weight_decay": 0.0,
        "optim": "adamw_torch_fused",
        "lr_scheduler_type": "constant",
        "logging_steps": 10**6,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": device == "cpu",
        "seed": 0,
        "remove_unused_columns": False,
    }
    return cls(**common, **extra)


def _trainer(name: str, setup: Path, w: Workload, steps: int, device: str, bf16: bool) -> Any:
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from agentdistill.data import DistillCollator, EncodedDataset
    from agentdistill.teacher_cache import load_cache
    from agentdistill.trainer import DistillConfig, DistillTrainer

    def load(who: str) -> Any:
        return AutoModelForCausalLM.from_pretrained(setup / who, dtype=torch.float32, attn_implementation="sdpa")

    ids, seg = build_batch(w)
    labels = torch.where(seg > 0, ids, -100)
    rows = w.batch * steps  # one epoch holds every step: no per-epoch work in the timed loop
    plain = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    if name == "student":
        fixed = _Fixed(plain, rows)
        args = _training_args(TrainingArguments, setup, w, steps, device, bf16=bf16)
        return Trainer(model=load("student"), args=args, train_dataset=fixed, data_collator=fixed)
    if name.startswith("trl-"):
        from datasets import Dataset
        from trl.experimental.gkd import GKDConfig, GKDTrainer

        from agentdistill.testing import tiny_tokenizer

        fixed = _Fixed(plain, rows)
        data = Dataset.from_dict({"input_ids": ids.tolist() * steps, "labels": labels.tolist() * steps})
        # fp32 and no activation checkpointing, as ours (TRL's SFTConfig defaults would be bf16 autocast and
        # checkpointing); lmbda=0: no on-policy generation, so a step is teacher + student forward and the loss.
        beta = 0.0 if name == "trl-fkl" else 0.5
        args = _training_args(
            GKDConfig, setup, w, steps, device, lmbda=0.0, beta=beta, bf16=bf16, gradient_checkpointing=False
        )
        return GKDTrainer(
            model=load("student"),
            teacher_model=load("teacher"),
            args=args,
            train_dataset=data,
            data_collator=fixed,
            processing_class=tiny_tokenizer(),
        )
    exs = examples(w)
    cfg: dict[str, Any] = {"curriculum": "none", "max_length": w.seq}
    if name == "token-kd":
        cfg.update(loss="token-kd", teacher_dtype="float32")
    if name == "sad-unfused":  # the defaults before issue 16
        cfg.update(fused_loss=False, loss_chunk_size=1024, teacher_dtype="float32")
    if name.startswith("sft"):
        cfg.update(loss="sft", fused_loss=name == "sft")
    cache = None
    if name == "sad-cached":
        cfg.update(teacher_signal="cached", cache_topk=w.topk)
        cache = load_cache(setup / "cache.safetensors", exs)
    batch = DistillCollator()(list(EncodedDataset(exs, teacher_cache=cache)))
    fixed = _Fixed(batch, rows)
    args = _training_args(DistillConfig, setup, w, steps, device, bf16=bf16, **cfg)
    teacher = None if cache is not None or name.startswith("sft") else load("teacher")
    return DistillTrainer(model=load("student"), args=args, teacher=teacher, train_dataset=fixed, data_collator=fixed)


class _Baton:
    """The parent's go-ahead, one step at a time (``--_baton R,W``: pipe ends); without one, steps run freely."""

    def __init__(self, fds: str | None) -> None:
        self.r = self.w = None
        if fds:
            r, w = (int(x) for x in fds.split(","))
            self.r, self.w = os.fdopen(r, "rb", buffering=0), os.fdopen(w, "wb", buffering=0)

    def wait(self) -> None:
        if self.r is not None and not self.r.read(1):
            raise SystemExit("the benchmark's parent process is gone")

    def done(self) -> None:
        if self.w is not None:
            self.w.write(b".")


def run_variant(
    name: str, setup: Path, w: Workload, warmup: int, steps: int, threads: int, baton: _Baton, device: str, bf16: bool
) -> dict:
    """Train ``warmup + steps`` steps; the timed steps' seconds, the step-0 loss and the RSS (and GPU memory) figures.

    A step's time runs from the go-ahead after the previous step (or the end of it) to the end of this
    one, so it includes the training loop's own work between steps (fetching the batch, logging).
    """
    import torch
    from transformers import TrainerCallback

    torch.set_num_threads(threads)
    trainer = _trainer(name, setup, w, warmup + steps, device, bf16)
    cuda = device.startswith("cuda")
    losses: list[float] = []
    compute_loss = trainer.compute_loss

    def recording(*args: Any, **kwargs: Any) -> Any:
        loss = compute_loss(*args, **kwargs)
        if not losses:
            value = loss[0] if isinstance(loss, tuple) else loss
            losses.append(float(value.detach()))
        return loss

    trainer.compute_loss = recording
    starts: list[float] = []
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_train_begin(self, *a: Any, **k: Any) -> None:
            baton.wait()
            starts.append(time.perf_counter())

        def on_step_end(self, args: Any, state: Any, control: Any, **k: Any) -> None:
            if cuda:
                torch.cuda.synchronize()  # the step's kernels have run
            times.append(time.perf_counter() - starts[-1])
            baton.done()
            if state.global_step < state.max_steps:
                baton.wait()
            starts.append(time.perf_counter())

    trainer.add_callback(Clock())
    rss_before = _rss_mb()
    trainer.train()
    teacher = getattr(trainer, "teacher", None)
    return {
        "step_s": times[warmup:],
        "warmup_s": times[:warmup],
        "loss0": losses[0],
        "rss_before_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "teacher_dtype": str(next(teacher.parameters()).dtype).removeprefix("torch.") if teacher else None,
    }


def matmul_peak(threads: int, sizes: Sequence[int], reps: int, device: str = "cpu", bf16: bool = False) -> dict:
    """Median-of-``reps`` GFLOP/s of ``torch.mm`` at each size, fp32 and bf16, on ``device``; the peak is the
    fp32 maximum (``--bf16``: the bf16 maximum)."""
    import torch

    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if device.startswith("cuda") else lambda: None
    out: dict[str, Any] = {}
    for dtype in (torch.float32, torch.bfloat16):
        rates = []
        for n in sizes:
            a, b = torch.randn(n, n, device=device).to(dtype), torch.randn(n, n, device=device).to(dtype)
            torch.mm(a, b)
            sync()
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                torch.mm(a, b)
                sync()
                times.append(time.perf_counter() - t)
            rates.append(2 * n**3 / statistics.median(times) / 1e9)
        out[str(dtype).removeprefix("torch.")] = dict(zip(map(str, sizes), rates, strict=True))
    out["peak_gflops"] = max(out["bfloat16" if bf16 else "float32"].values())
    return out


# ---- the parent: subprocesses, interleaving, the table -----------------------------------------
def _env(threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), TRL_EXPERIMENTAL_SILENCE="1")
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def _child(args: list[str], threads: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [sys.executable, __file__, *args, "--_result", f.name]
        proc = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
        return json.loads(Path(f.name).read_text())


def run_round(names: list[str], args: list[str], threads: int, total_steps: int, tmp: Path) -> dict[str, dict]:
    """One subprocess per variant, all started at once, stepping in turns: one step of one variant at a time.

    Step ``i`` goes round the variants in an order rotated by ``i``, so a spell of load elsewhere on
    the machine falls on every variant alike rather than on whichever ran then.
    """
    procs = {}
    for name in names:
        to_child, from_parent = os.pipe()[::-1]  # (write end, read end)
        from_child, to_parent = os.pipe()
        log = (tmp / f"{name}.log").open("w")
        cmd = [sys.executable, __file__, *args, "--_variant", name, "--_result", str(tmp / f"{name}.json")]
        cmd += ["--_baton", f"{from_parent},{to_parent}"]
        proc = subprocess.Popen(cmd, env=_env(threads), stdout=log, stderr=log, pass_fds=(from_parent, to_parent))
        os.close(from_parent)
        os.close(to_parent)
        procs[name] = (proc, to_child, from_child, log)

    def failed(name: str) -> SystemExit:
        for proc, *_ in procs.values():
            proc.kill()
        return SystemExit(f"{name} failed:\n{(tmp / f'{name}.log').read_text()[-3000:]}")

    for step in range(total_steps):
        for name in names[step % len(names) :] + names[: step % len(names)]:
            _, to_child, from_child, _ = procs[name]
            os.write(to_child, b".")
            if not os.read(from_child, 1):
                raise failed(name)
    results = {}
    for name, (proc, to_child, from_child, log) in procs.items():
        if proc.wait() != 0:
            raise failed(name)
        os.close(to_child)
        os.close(from_child)
        log.close()
        results[name] = json.loads((tmp / f"{name}.json").read_text())
    return results


def _has_trl() -> bool:
    import importlib.util

    return importlib.util.find_spec("trl") is not None


def _params(path: Path) -> tuple[int, int]:
    """(all parameters, non-embedding ones incl. lm_head) of a saved model."""
    from safetensors import safe_open

    total = embed = 0
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            n = f.get_slice(key).get_shape()
            size = 1
            for d in n:
                size *= d
            total += size
            embed += size if "embed_tokens" in key else 0
    return total, total - embed


def summarise(runs: dict[str, list[dict]], w: Workload, peak: dict, n_params: dict) -> dict:
    """Per variant: tokens/s quantiles over every timed step, median peak RSS, ratios to the baseline, utilisation."""
    flops = {
        "teacher_fwd": 2 * n_params["teacher"] * w.tokens,
        "student_fwd_bwd": 6 * n_params["student"] * w.tokens,
    }
    rows = {}
    for name, results in runs.items():
        steps = sorted(s for r in results for s in r["step_s"])
        q = statistics.quantiles(steps, n=4, method="inclusive") if len(steps) > 1 else [steps[0]] * 3
        median_s = statistics.median(steps)
        teacher_runs = name not in NO_TEACHER
        step_flops = flops["student_fwd_bwd"] + (flops["teacher_fwd"] if teacher_runs else 0)
        rows[name] = {
            "description": VARIANTS[name],
            "timed_steps": len(steps),
            "median_step_s": median_s,
            "tokens_per_s": w.tokens / median_s,
            "tokens_per_s_p25": w.tokens / q[2],  # the slower quarter's edge
            "tokens_per_s_p75": w.tokens / q[0],
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in results),
            "peak_gpu_mb": statistics.median(r["peak_gpu_mb"] for r in results)
            if results[0].get("peak_gpu_mb")
            else None,
            "rss_before_mb": statistics.median(r["rss_before_mb"] for r in results),
            "loss0": results[0]["loss0"],
            "teacher_dtype": results[0]["teacher_dtype"],
            "step_gflop": step_flops / 1e9,
            "utilisation": step_flops / median_s / 1e9 / peak["peak_gflops"],
            "runs": results,
        }
    base = rows.get(BASELINE)
    for row in rows.values():
        row["x_tokens_per_s"] = row["tokens_per_s"] / base["tokens_per_s"] if base else None
        row["x_peak_rss"] = row["peak_rss_mb"] / base["peak_rss_mb"] if base else None
        row["x_peak_gpu"] = row["peak_gpu_mb"] / base["peak_gpu_mb"] if base and row["peak_gpu_mb"] else None
    return rows


def loss_check(rows: dict) -> dict | None:
    """Our step-0 losses against TRL beta=0's on the same batch and weights."""
    if BASELINE not in rows:
        return None
    ref = rows[BASELINE]["loss0"]
    out: dict[str, Any] = {"trl_fkl_loss0": ref}
    for name in ("token-kd", "sad", "sad-unfused"):
        if name in rows:
            got = rows[name]["loss0"]
            out[name] = {
                "loss0": got,
                "abs_diff": abs(got - ref),
                "rel_diff": abs(got - ref) / abs(ref),
                "equal": got == ref,
            }
    return out


TARGETS = (
    ("sad", "x_tokens_per_s", ">=", 1.5),
    ("sad-cached", "x_tokens_per_s", ">=", 4.0),
    ("sad", "x_peak_rss", "<=", 0.5),
)


def targets(rows: dict) -> list[dict]:
    out = []
    for name, key, op, bound in TARGETS:
        value = rows.get(name, {}).get(key)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out.append({"variant": name, "metric": key, "target": f"{op} {bound}", "value": value, "met": met})
    return out


def table(rows: dict) -> str:
    gpu = any(r["peak_gpu_mb"] for r in rows.values())
    mem = "peak GPU memory MB" if gpu else "peak RSS MB"
    head = f"| variant | tokens/s (p25–p75) | x TRL β=0 | {mem} | x TRL β=0 | util. of the matmul peak | step-0 loss |"
    lines = [head, "|---|---|---|---|---|---|---|"]

    def ratio(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    for name, r in rows.items():
        speed = f"{r['tokens_per_s']:.0f} ({r['tokens_per_s_p25']:.0f}–{r['tokens_per_s_p75']:.0f})"
        lines.append(
            f"| {name}: {r['description']} | {speed} | {ratio(r['x_tokens_per_s'])} | "
            f"{r['peak_gpu_mb' if gpu else 'peak_rss_mb']:.0f} | {ratio(r['x_peak_gpu' if gpu else 'x_peak_rss'])} | "
            f"{100 * r['utilisation']:.0f} % | {r['loss0']:.9g} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per subprocess")
    p.add_argument("--steps", type=int, default=5, help="timed steps per subprocess")
    p.add_argument(
        "--repeats", type=int, default=3, help="rounds: fresh subprocesses of every variant, stepping in turns"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: --warmup 1 --steps 2 --repeats 1")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--workload", choices=WORKLOADS, default="reference", help="tiny: seconds-long, for the tests")
    p.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads per subprocess")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU shared by the variants' processes)")
    p.add_argument(
        "--bf16", action="store_true", help="bf16 mixed precision in every variant (utilisation: of bf16's peak)"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    p.add_argument("--_variant", help=argparse.SUPPRESS)
    p.add_argument("--_setup", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--_result", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--_peak", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_baton", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.warmup, a.steps, a.repeats = 1, 2, 1
    w = WORKLOADS[a.workload]
    if a._result:  # a child
        if a._peak:
            sizes = {"reference": (2048, 4096), "gpu": (4096, 8192)}.get(a.workload, (256,))
            result = matmul_peak(a.threads, sizes, 3 if a.workload == "tiny" else 5, a.device, a.bf16)
        else:
            baton = _Baton(a._baton)
            result = run_variant(a._variant, a._setup, w, a.warmup, a.steps, a.threads, baton, a.device, a.bf16)
        a._result.write_text(json.dumps(result))
        return 0

    names = [n for n in a.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if not _has_trl() and any(n.startswith("trl-") for n in names):
        print("trl is not installed (pip install agentdistill[bench]): skipping the TRL rows and the ratios to them")
        names = [n for n in names if not n.startswith("trl-")]
    common = ["--workload", a.workload, "--threads", str(a.threads), "--device", a.device, *["--bf16"] * a.bf16]
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        setup = Path(tmp)
        prepare(w, setup, a.device)
        n_params = {who: _params(setup / who)[1] for who in ("teacher", "student")}
        peak = _child([*common, "--_peak"], a.threads)
        fp32, bf16 = max(peak["float32"].values()), max(peak["bfloat16"].values())
        print(f"matmul peak on {a.device}: fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s")
        runs: dict[str, list[dict]] = {n: [] for n in names}
        steps = ["--warmup", str(a.warmup), "--steps", str(a.steps), "--_setup", tmp]
        for rep in range(a.repeats):
            with tempfile.TemporaryDirectory() as logs:
                results = run_round(names, [*common, *steps], a.threads, a.warmup + a.steps, Path(logs))
            for name in names:
                runs[name].append(results[name])
                print(
                    f"  round {rep + 1}/{a.repeats} {name}: median step {statistics.median(results[name]['step_s']):.3f} s"
                )
    rows = summarise(runs, w, peak, n_params)
    result = {
        "command": " ".join(["benchmarks/bench_distill.py", *(argv if argv is not None else sys.argv[1:])]),
        "workload": {"name": a.workload, **asdict(w), "tokens_per_step": w.tokens, "params_non_embedding": n_params},
        "settings": {
            "warmup": a.warmup,
            "steps": a.steps,
            "repeats": a.repeats,
            "threads": a.threads,
            "device": a.device,
            "bf16": a.bf16,
        },
        "machine": {**_machine(), "load_avg_start": load_start, "load_avg_end": os.getloadavg()},
        "matmul": peak,
        "variants": rows,
        "loss_check": loss_check(rows),
        "targets": targets(rows) if BASELINE in rows else None,
        "wall_s": time.perf_counter() - t0,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    check = result["loss_check"]
    if check and "token-kd" in check:
        c = check["token-kd"]
        print(
            f"\nstep-0 loss: token-kd {c['loss0']!r} vs TRL beta=0 {check['trl_fkl_loss0']!r} (rel. diff {c['rel_diff']:.1e})"
        )
    for t in result["targets"] or []:
        value = "—" if t["value"] is None else f"{t['value']:.2f}"
        print(f"target {t['variant']} {t['metric']} {t['target']}: {value} {'met' if t['met'] else 'MISSED'}")
    print(f"wrote {a.out} ({result['wall_s']:.0f} s)")
    return 0


def _machine() -> dict:
    import torch
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    if _has_trl():
        import trl

        info["trl"] = trl.__version__
    cpu = [
        ln.split(":", 1)[1].strip()
        for ln in Path("/proc/cpuinfo").read_text().splitlines()
        if ln.startswith("model name")
    ]
    info.update(cpu=cpu[0] if cpu else platform.processor(), cores=os.cpu_count())
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


if __name__ == "__main__":
    raise SystemExit(main())

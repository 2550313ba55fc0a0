"""The cached teacher signal: cache file, alignment with the batch, loss parity with the live teacher, CLI reuse."""

import gc
import json
import logging
import weakref

import pytest
import torch

from agentdistill.agent import expert_episode
from agentdistill.cli import main
from agentdistill.data import TEACHER_KEYS, DistillCollator, EncodedDataset, encode_records, num_supervised_positions
from agentdistill.envs import make_env
from agentdistill.errors import ConfigError
from agentdistill.losses import topk_from_logits
from agentdistill.masks import Encoded
from agentdistill.modeling import load_causal_lm
from agentdistill.teacher_cache import build_cache, cache_path, load_cache, teacher_entropies
from agentdistill.trainer import DistillConfig, DistillTrainer
from agentdistill.trajectory import record_from_json


@pytest.fixture(scope="module")
def rows():
    return [
        expert_episode(env, t).to_json()
        for env in ("alfworld", "hotpotqa")
        for t in make_env(env).task_ids("train")[:2]
    ]


@pytest.fixture(scope="module")
def examples(rows, tok):
    return encode_records([record_from_json(r) for r in rows], tok, max_length=256)  # 20 windows


@pytest.fixture(scope="module")
def data_file(rows, tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "trajs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def teacher(tiny_pair):
    return load_causal_lm(tiny_pair[0]).eval()


@pytest.fixture(scope="module")
def full_cache(tmp_path_factory, examples, teacher):
    """Every token cached (K = V), at τ = 2 (the cache stores tempered teacher log-probs)."""
    path = tmp_path_factory.mktemp("full") / "c.safetensors"
    return build_cache(teacher, examples, path, topk=teacher.config.vocab_size, temperature=2.0)


def _sharp(model, scale, noise=0.0):
    """Scale the head so the distributions are peaked (a random tiny LM is close to uniform, where a
    small top-k holds almost no mass), plus relative Gaussian noise on it."""
    with torch.no_grad():
        w = model.get_output_embeddings().weight
        w.mul_(scale).add_(noise * w.std() * torch.randn_like(w))
    return model


def _trainer(tmp_path, student, teacher=None, cache=None, examples=(), **cfg):
    cfg.setdefault("teacher_dtype", "float32")  # the cache fixtures are built by a float32 teacher
    args = DistillConfig(output_dir=str(tmp_path / "o"), report_to="none", **cfg)
    return DistillTrainer(
        model=student,
        args=args,
        teacher=teacher,
        train_dataset=EncodedDataset(examples, teacher_cache=cache),
        data_collator=DistillCollator(),
    )


def _loss(trainer, idx):
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in idx]))
    trainer._stats = {}
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
    return float(loss), dict(trainer._stats)


def test_cache_round_trip(tmp_path, examples, teacher):
    path = tmp_path / "sub" / "cache.safetensors"
    built = build_cache(teacher, examples, path, topk=8, batch_size=3, chunk_size=50, teacher_name="T")
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.safetensors"]  # no temp file left behind
    cache = load_cache(path, examples, teacher="T", topk=8, temperature=1.0, vocab_size=teacher.config.vocab_size)
    counts = [num_supervised_positions(ex) for ex in examples]
    R = sum(counts)
    assert len(cache) == len(examples) and R > 0
    assert cache.topk_ids.shape == (R, 8) and cache.topk_ids.dtype == torch.int32
    assert cache.topk_logprobs.shape == (R, 8) and cache.topk_logprobs.dtype == torch.float32
    assert cache.tail_logprob.shape == (R,) and cache.tail_logprob.dtype == torch.float32
    assert cache.offsets.dtype == torch.int64 and cache.offsets.diff().tolist() == counts
    assert cache.meta["topk"] == "8" and cache.meta["num_examples"] == str(len(examples))
    assert cache.meta["vocab_size"] == str(teacher.config.vocab_size) and cache.meta["teacher"] == "T"
    for name in ("topk_ids", "topk_logprobs", "tail_logprob", "offsets", "entropy"):
        assert torch.equal(getattr(cache, name), getattr(built, name)), name
    # only supervised positions, in position order: an unpadded forward of each example gives the same rows
    for i in (0, 5, len(examples) - 1):
        ex = examples[i]
        with torch.no_grad():
            logits = teacher(torch.tensor([ex.input_ids])).logits[0, :-1]
        sup = torch.tensor(ex.reason_mask[1:], dtype=torch.bool) | torch.tensor(ex.act_mask[1:], dtype=torch.bool)
        ids, logprobs, tail = topk_from_logits(logits[sup], 8)
        got = cache[i]
        assert torch.equal(got.ids.long(), ids)
        torch.testing.assert_close(got.logprobs, logprobs, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got.tail, tail, atol=1e-5, rtol=1e-5)
    assert (cache.topk_logprobs.diff(dim=-1) <= 0).all()  # sorted, descending
    total = torch.logsumexp(torch.cat([cache.topk_logprobs, cache.tail_logprob[:, None]], -1), -1)
    torch.testing.assert_close(total, torch.zeros(R), atol=1e-5, rtol=0)  # top-k + tail = all the mass
    # the curriculum's H_T, exactly as the live path computes it
    assert cache.entropies() == teacher_entropies(teacher, examples, batch_size=3, chunk_size=50)


def test_collator_aligns_rows_with_supervised_positions(tmp_path, examples, teacher):
    cache = build_cache(teacher, examples, tmp_path / "c.safetensors", topk=4, batch_size=4)
    ds = EncodedDataset(examples, teacher_cache=cache)
    order = [7, 0, 19, 3]  # any sampler order: rows follow the example, not the batch position
    batch = DistillCollator()([ds[i] for i in order])
    sup = (batch["reason_mask"] | batch["act_mask"])[:, 1:]
    assert batch[TEACHER_KEYS[0]].shape == (int(sup.sum()), 4)
    for key, part in zip(TEACHER_KEYS, range(3), strict=True):
        assert torch.equal(batch[key], torch.cat([cache[i][part] for i in order])), key
    # a cache of other examples cannot be batched silently
    shifted = EncodedDataset(examples[1:] + examples[:1], teacher_cache=cache)
    with pytest.raises(ValueError, match="cached teacher rows"):
        DistillCollator()([shifted[i] for i in range(4)])
    assert not set(TEACHER_KEYS) & set(DistillCollator()([examples[0]]))  # the live batch is unchanged


@pytest.mark.parametrize("kind", ["fkl", "rkl", "jsd", "tvd"])
@pytest.mark.parametrize("normalize", ["token", "span"])
def test_full_vocab_cache_loss_equals_live(tmp_path, examples, teacher, full_cache, tiny_pair, kind, normalize):
    student = load_causal_lm(tiny_pair[1])
    cache = full_cache
    assert torch.isneginf(cache.tail_logprob).all()
    cfg = {"divergence": kind, "normalize": normalize, "temperature": 2.0, "lambda_act": 2.0}
    live = _trainer(tmp_path, student, teacher=teacher, examples=examples, **cfg)
    cached = _trainer(tmp_path, student, cache=cache, examples=examples, teacher_signal="cached", **cfg)
    assert cached.teacher is None
    for idx in ([0, 1, 2], [19, 4]):
        (a, stats_a), (b, stats_b) = _loss(live, idx), _loss(cached, idx)
        assert b == pytest.approx(a, rel=1e-5, abs=1e-7)
        assert stats_a.keys() == stats_b.keys()
        for k in stats_a:
            assert stats_b[k] == pytest.approx(stats_a[k], rel=1e-5, abs=1e-6), k  # loss_cot/act, top-1 agreement


@pytest.mark.parametrize("kind", ["fkl", "rkl", "jsd"])
def test_small_topk_loss_is_finite_and_close(tmp_path, examples, tiny_pair, kind):
    # a peaked teacher (top-8 holds ~99% of its mass) and a student near it (a noisy copy)
    teacher = _sharp(load_causal_lm(tiny_pair[0]).eval(), 50.0)
    student = _sharp(load_causal_lm(tiny_pair[0]), 50.0, noise=0.2)
    cache = build_cache(teacher, examples, tmp_path / "c.safetensors", topk=8)
    live = _trainer(tmp_path, student, teacher=teacher, examples=examples, divergence=kind)
    cached = _trainer(tmp_path, student, cache=cache, examples=examples, teacher_signal="cached", divergence=kind)
    for idx in ([0, 1, 2, 3], [10, 19]):
        (a, stats_a), (b, stats_b) = _loss(live, idx), _loss(cached, idx)
        assert torch.isfinite(torch.tensor(b)) and b > 0
        assert b <= a * (1 + 1e-5)  # coarse-graining to K + 1 bins never increases an f-divergence
        assert b >= 0.9 * a, (a, b)
        assert stats_b["agree_act"] == stats_a["agree_act"]  # the cached top-1 is the teacher's argmax


def test_stale_cache_is_a_clear_error(tmp_path, examples, teacher):
    path = tmp_path / "c.safetensors"
    build_cache(teacher, examples, path, topk=4, teacher_name="T")

    def err(exs, **kw):
        with pytest.raises(ConfigError) as e:
            load_cache(path, exs, **kw)
        msg = str(e.value)
        assert "\n" not in msg and str(path) in msg and "delete" in msg
        return msg

    assert "stale" in err(examples[:-1])
    changed = [Encoded(list(e.input_ids), list(e.reason_mask), list(e.act_mask), list(e.span_ids)) for e in examples]
    changed[3].input_ids[-1] = (changed[3].input_ids[-1] + 1) % 512
    assert "other training examples" in err(changed)
    assert "teacher" in err(examples, teacher="U")
    assert "--cache_topk" in err(examples, topk=8)
    assert "--temperature" in err(examples, temperature=0.5)
    assert "vocabulary" in err(examples, vocab_size=300)
    path.write_bytes(b"not a cache")
    assert "cannot read" in err(examples)


def test_config_validation(tmp_path):
    with pytest.raises(ConfigError, match="nothing to cache"):
        DistillConfig(output_dir=str(tmp_path), loss="sft", teacher_signal="cached")
    with pytest.raises(ConfigError, match="--cache_topk"):
        DistillConfig(output_dir=str(tmp_path), teacher_signal="cached", cache_topk=0)
    cfg = DistillConfig(output_dir=str(tmp_path), teacher_signal="cached")
    assert cache_path(cfg) == tmp_path / "teacher_cache.safetensors"
    assert (
        cache_path(DistillConfig(output_dir=str(tmp_path), teacher_signal="cached", teacher_cache="x.st")).name
        == "x.st"
    )


def test_cached_trainer_needs_cached_batches(tmp_path, examples, tiny_pair, teacher):
    student = load_causal_lm(tiny_pair[1])
    trainer = _trainer(tmp_path, student, teacher=teacher, examples=examples, teacher_signal="cached")
    assert trainer.teacher is None  # a teacher handed to a cached trainer is not kept
    with pytest.raises(ConfigError, match="cached teacher rows"):
        _loss(trainer, [0])


def _cli(data, tiny_pair, out, *extra):
    teacher, student = tiny_pair
    return main([
        "distill", "--data", str(data), "--teacher", str(teacher), "--student", str(student), "--out", str(out),
        "--per_device_train_batch_size", "2", "--max_length", "256", "--logging_steps", "1", "--save_steps", "2",
        "--lr_scheduler_type", "constant", "--learning_rate", "3e-3", *extra,
    ])  # fmt: skip


def _log(out):
    return [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]


def test_cli_writes_and_reuses_the_cache(tmp_path, data_file, tiny_pair, caplog, capsys):
    caplog.set_level(logging.INFO, logger="agentdistill")
    out = tmp_path / "cached"
    assert _cli(data_file, tiny_pair, out, "--teacher_signal", "cached", "--cache_topk", "8", "--max_steps", "2") == 0
    cache = out / "teacher_cache.safetensors"
    for name in ("model.safetensors", "config.yaml", ".distill.done", "teacher_cache.safetensors"):
        assert (out / name).exists(), name
    assert "building teacher cache" in caplog.text
    assert "teacher_signal: cached" in (out / "config.yaml").read_text()
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in _log(out))
    mtime = cache.stat().st_mtime_ns
    caplog.clear()
    assert _cli(data_file, tiny_pair, out, "--teacher_signal", "cached", "--cache_topk", "8", "--max_steps", "4") == 0
    assert "reusing teacher cache" in caplog.text and "building teacher cache" not in caplog.text
    assert cache.stat().st_mtime_ns == mtime
    assert [r["step"] for r in _log(out)] == [1, 2, 3, 4]
    # other data, same output dir: one line naming the file and the fix, before any model is loaded
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(data_file.read_text().splitlines(keepends=True)[:2]))
    capsys.readouterr()
    assert _cli(fewer, tiny_pair, out, "--teacher_signal", "cached", "--cache_topk", "8", "--max_steps", "6") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: stale teacher cache") and str(cache) in err and "delete" in err
    assert _cli(data_file, tiny_pair, tmp_path / "sft", "--loss", "sft", "--teacher_signal", "cached") == 2
    assert "nothing to cache" in capsys.readouterr().err


def test_cli_full_vocab_cache_matches_live_curve(tmp_path, data_file, tiny_pair, tok):
    """Same curriculum (entropies from the cache), same batches, gradient accumulation: the same loss curve."""
    common = ("--max_steps", "4", "--gradient_accumulation_steps", "2", "--normalize", "span")
    common += ("--teacher_dtype", "float32")  # bf16 rounding depends on the batch's padding: equal only in float32
    assert _cli(data_file, tiny_pair, tmp_path / "live", *common) == 0
    cached = ("--teacher_signal", "cached", "--cache_topk", str(len(tok)))
    assert _cli(data_file, tiny_pair, tmp_path / "cached", *common, *cached) == 0
    live, cache = _log(tmp_path / "live"), _log(tmp_path / "cached")
    assert [r["step"] for r in live] == [r["step"] for r in cache] == [1, 2, 3, 4]
    for a, b in zip(live, cache, strict=True):
        for key in ("loss", "loss_cot", "loss_act"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), key
        assert b["top1_agree_act"] == pytest.approx(a["top1_agree_act"], abs=1e-6)


def test_teacher_is_freed_before_training(tmp_path, data_file, tiny_pair, monkeypatch):
    import agentdistill.distill as d

    teacher_dir = str(tiny_pair[0])
    refs, seen = [], {}
    real_load, real_train = d.load_causal_lm, d.DistillTrainer.train

    def load(name, *a, **kw):
        model = real_load(name, *a, **kw)
        if str(name) == teacher_dir:
            refs.append(weakref.ref(model))
        return model

    def train(self, *a, **kw):
        gc.collect()
        seen["teacher_alive"] = any(r() is not None for r in refs)
        seen["trainer_teacher"] = self.teacher
        return real_train(self, *a, **kw)

    monkeypatch.setattr(d, "load_causal_lm", load)
    monkeypatch.setattr(d.DistillTrainer, "train", train)
    assert _cli(data_file, tiny_pair, tmp_path / "o", "--teacher_signal", "cached", "--max_steps", "1") == 0
    assert len(refs) == 1  # the teacher was loaded once, to build the cache
    assert seen == {"teacher_alive": False, "trainer_teacher": None}

"""The agent's KV cache reuse between turns (``decoding.TurnDecoder``) generates exactly what re-reading the
whole context with ``generate`` does: the same ids at every turn, for Llama- and GPT-2-style models, in every
env, one episode per batch or several of uneven lengths, across left cuts, and when a new context shares
only part of what was cached (a crop) or nothing (a fresh start)."""

import pytest
import torch

from agentdistill.agent import AgentConfig, Episode, HFPolicy, run_episodes
from agentdistill.decoding import TurnDecoder, _common_prefix, _prefill_runs, unsupported
from agentdistill.envs import make_env
from agentdistill.formats import get_format
from agentdistill.masks import context_ids
from agentdistill.testing import tiny_causal_lm

ARCHS = ("llama", "gpt2")
ENVS = ("alfworld", "webshop", "hotpotqa")


class Recording:
    """A policy that passes everything to ``policy`` and records every turn: the ids of each context and
    what was generated for it."""

    def __init__(self, policy):
        self.policy, self.turns = policy, []

    @property
    def tokenizer(self):
        return self.policy.tokenizer

    def count_tokens(self, text):
        return self.policy.count_tokens(text)

    def release(self, key):
        self.policy.release(key)

    def generate(self, contexts, fmt):
        gens = self.policy.generate(contexts, fmt)
        self.turns.append(
            [(tuple(self.policy.encode(c)), g.text, g.num_tokens) for c, g in zip(contexts, gens, strict=True)]
        )
        return gens


def _model(tok, arch):
    return tiny_causal_lm(len(tok), hidden_size=32, num_layers=2, num_heads=4, arch=arch, seed=1).eval()


def _run(env, tok, model, reuse, batch_size=8, max_context=None, tasks=3, max_steps=5, max_new=16):
    cfg = AgentConfig(max_new_tokens=max_new, batch_size=batch_size, max_context=max_context, reuse_cache=reuse)
    policy = Recording(HFPolicy(model, tok, cfg))
    assert (policy.policy.turns is not None) == reuse
    records = run_episodes(env, make_env(env).task_ids("test")[:tasks], policy, max_steps=max_steps)
    if reuse:
        assert policy.policy.turns.held == {}, "every episode's cache is released when it ends"
    return records, policy


def _assert_same(with_reuse, without):
    (recs, pol), (want_recs, want_pol) = with_reuse, without
    assert pol.turns == want_pol.turns  # every turn: the same context ids, generated text and token count
    for rec, want in zip(recs, want_recs, strict=True):
        assert rec.trajectory.to_json() == want.trajectory.to_json()
        assert rec.gen_tokens == want.gen_tokens


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("env", ENVS)
def test_reuse_generates_what_generate_does(env, arch, tok):
    model = _model(tok, arch)
    without = _run(env, tok, model, reuse=False)
    for batch_size in (1, 8):  # one row per batch; all three episodes (uneven lengths) in one batch
        with_reuse = _run(env, tok, model, reuse=True, batch_size=batch_size)
        _assert_same(with_reuse, without)
        stats = with_reuse[1].policy.turns.stats
        assert stats["reused"] > stats["context"] / 2  # most of every later turn came from the cache
    assert len(without[1].turns) >= 3 and {n for turn in without[1].turns for _, _, n in turn} != {0}


@pytest.mark.parametrize("cut", ["prompt", "history"])
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("env", ENVS)
def test_reuse_across_left_cuts(env, arch, cut, tok):
    """``prompt``: the window is shorter than the prompt, every context is cut; ``history``: the prompt
    fits with room for about two turns, later contexts are cut."""
    model = _model(tok, arch)
    max_context = 200 if cut == "prompt" else _longest_prompt(env, tok) + 24 + 48
    runs = [_run(env, tok, model, reuse, max_context=max_context, max_steps=8, max_new=24) for reuse in (True, False)]
    _assert_same(*runs)
    sizes = [len(ids) for turn in runs[0][1].turns for ids, _, _ in turn]
    assert sizes.count(max_context - 24) >= 3, "too few contexts were cut"
    assert (min(sizes) < max_context - 24) == (cut == "history")


def _longest_prompt(env, tok, tasks=3):
    """Tokens in the longest first-turn context of the first ``tasks`` test tasks."""
    e = make_env(env)
    fmt = get_format(e.format)
    first = (fmt.open_turn(Episode.start(e, env, t).prompt, [], tok) for t in e.task_ids("test")[:tasks])
    return max(len(context_ids(text, spans, tok, 10**6)) for text, spans in first)


@pytest.mark.parametrize("arch", ARCHS)
def test_turn_decoder_crops_to_the_common_prefix_and_equals_generate(arch):
    """Second turn: one context extends what was cached (generated ids included), one leaves the
    generated ids (non-canonical re-encoding), one changes the first turn's context (a cut), one is new."""
    model = tiny_causal_lm(97, hidden_size=32, num_layers=2, num_heads=4, arch=arch, seed=2).eval()
    g = torch.Generator().manual_seed(0)
    first = [torch.randint(4, 97, (n,), generator=g).tolist() for n in (9, 30, 17)]
    picked = []
    dec = TurnDecoder(model, 6, pad_id=0, eos_id=None, pick=lambda logits: picked.append(logits) or logits.argmax(-1))
    gens = dec.decode(["a", "b", "c"], first, lambda ids: False)
    assert gens == [_generate(model, ids, 6) for ids in first]
    _assert_prefill_logits(model, first, picked[0])
    picked.clear()
    assert {k: h.ids for k, h in dec.held.items()} == {
        k: ctx + gen[:-1] for k, ctx, gen in zip("abc", first, gens, strict=True)
    }
    second = [
        first[0] + gens[0] + [5, 6, 7],
        first[1] + gens[1][:2] + [8] * 12,
        first[2][:4] + [9, 9] + first[2][4:],
        torch.randint(4, 97, (40,), generator=g).tolist(),
    ]
    got = dec.decode(["a", "b", "c", "d"], second, lambda ids: False)
    assert got == [_generate(model, ids, 6) for ids in second]
    _assert_prefill_logits(model, second, picked[0])  # the cropped caches hold exactly the uncached states
    assert dec.stats["reused"] == (len(first[0]) + 5) + (len(first[1]) + 2) + 4 + 0


@pytest.mark.parametrize("arch", ARCHS)
def test_uninitialised_cache_columns_are_never_read(arch, monkeypatch):
    """The batch's buffers are allocated uninitialised and only the left pads zeroed: with every other
    column poisoned (NaN) at allocation, rows of uneven lengths, crops and prefill runs still generate
    what ``generate`` does, so each such column is written before attention reads it."""
    from agentdistill import decoding

    allocate = decoding._Buffers.layer

    def poisoned(self, i, k, v):
        fresh = self.k[i] is None
        bk, bv = allocate(self, i, k, v)
        if fresh:
            for r, pad in enumerate(self.pads):
                bk[r, :, pad:], bv[r, :, pad:] = float("nan"), float("nan")
        return bk, bv

    monkeypatch.setattr(decoding._Buffers, "layer", poisoned)
    model = tiny_causal_lm(97, hidden_size=32, num_layers=2, num_heads=4, arch=arch, seed=3).eval()
    g = torch.Generator().manual_seed(1)
    dec = TurnDecoder(model, max_new_tokens=5, pad_id=0, eos_id=None, pick=lambda logits: logits.argmax(-1))
    first = [torch.randint(4, 97, (n,), generator=g).tolist() for n in (3, 40, 21, 8)]
    gens = dec.decode(list("abcd"), first, lambda ids: len(ids) >= 2 + len(ids) % 3)
    second = [ctx + gen + [7] * (3 * i) for i, (ctx, gen) in enumerate(zip(first, gens, strict=True))]
    second[2] = second[2][:5] + second[2][6:]  # a crop
    for contexts in (first, second):
        got = dec.decode(list("abcd"), contexts, lambda ids: False)
        assert got == [_generate(model, ids, 5) for ids in contexts]


@pytest.mark.parametrize("arch", ARCHS)
def test_new_episodes_start_from_the_prefix_they_share(arch):
    """New episodes' first contexts share an env's instruction: the first is prefilled alone and the others
    start from its first ids (copied, not recomputed), as do later new episodes; still exactly generate, and
    every row's logits after its prefill are the uncached model's."""
    model = tiny_causal_lm(97, hidden_size=32, num_layers=2, num_heads=4, arch=arch, seed=4).eval()
    prefix = torch.randint(4, 97, (30,), generator=torch.Generator().manual_seed(2)).tolist()
    first = [prefix + [10 + i] + [20 + i] * (3 * i) for i in range(3)]  # their common prefix: exactly 30 ids
    picked = []

    def pick(logits):
        picked.append(logits)
        return logits.argmax(-1)

    dec = TurnDecoder(model, max_new_tokens=6, pad_id=0, eos_id=None, pick=pick)
    assert dec.decode(list("abc"), first, lambda ids: False) == [_generate(model, ids, 6) for ids in first]
    _assert_prefill_logits(model, first, picked[0])
    assert dec.shared.ids == prefix and dec.stats["shared"] == 2 * 30
    prefilled, picked[:] = dec.stats["prefilled"], []
    later = [prefix + [40] * 4, prefix[:20] + [41] * 9, [42] * 25]  # all of it, 20 ids of it, none
    assert dec.decode(list("def"), later, lambda ids: False) == [_generate(model, ids, 6) for ids in later]
    _assert_prefill_logits(model, later, picked[0])
    assert dec.shared.ids == prefix and dec.stats["shared"] == 2 * 30 + 30 + 20
    assert prefilled == 31 + 2 * 7  # the leader, then the two others' new ids (in one run: 7 and 4 wide)
    assert dec.stats["prefilled"] - prefilled == 2 * 25 + 4  # runs: 25 and 9 new ids (padded to 25), then 4


def _assert_prefill_logits(model, contexts, logits):
    """``logits`` (B, V), in the decoder's row order, are the uncached model's after each context, one each."""
    with torch.no_grad():
        want = torch.stack([model(torch.tensor([c])).logits[0, -1].float() for c in contexts])
    close = (logits[:, None] - want[None]).abs().amax(-1) < 1e-4  # (rows, contexts)
    assert close.sum(0).tolist() == [1] * len(contexts) and close.sum(1).tolist() == [1] * len(contexts)


def _generate(model, ids, n):
    out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, pad_token_id=0, eos_token_id=None)
    return out[0, len(ids) :].tolist()


def test_caches_beyond_the_memory_budget_are_dropped_and_start_afresh(tok):
    model = _model(tok, "llama")
    without = _run("webshop", tok, model, reuse=False)
    cfg = AgentConfig(max_new_tokens=16, batch_size=8)
    policy = HFPolicy(model, tok, cfg)
    one = 2 * 2 * 4 * 8 * 4  # bytes per cached id: (k, v) x 2 layers x 4 heads x head dim 8 x fp32
    policy.turns.max_held_bytes = 700 * one  # about one episode's cache
    recording = Recording(policy)
    records = run_episodes("webshop", make_env("webshop").task_ids("test")[:3], recording, max_steps=5)
    _assert_same((records, recording), without)
    stats = policy.turns.stats
    own = stats["reused"] - stats["shared"]  # from each episode's own cache
    assert 0 < own < stats["context"] / 2  # some episodes were dropped and started afresh (from the shared prefix)
    assert stats["shared"] > 0


def test_turn_decoder_stops_rows_like_generate():
    """``done``, eos and ``max_new_tokens`` end rows at different steps; finished rows leave the batch."""
    model = tiny_causal_lm(97, hidden_size=32, num_layers=2, num_heads=4, seed=3).eval()
    contexts = [torch.randint(4, 97, (n,)).tolist() for n in (5, 12, 8, 20, 3)]
    free = TurnDecoder(model, 12, 0, None, lambda logits: logits.argmax(-1)).decode(
        [None] * 5, contexts, lambda ids: False
    )
    eos = free[1][4]
    dec = TurnDecoder(model, 12, 0, eos, lambda logits: logits.argmax(-1))
    stops = dec.decode(list("abcde"), contexts, lambda ids: len(ids) >= 3 and ids[-1] % 2 == 0)
    for row, got in zip(free, stops, strict=True):
        n = next((t + 1 for t in range(len(row)) if row[t] == eos or (t + 1 >= 3 and row[t] % 2 == 0)), len(row))
        assert got == row[:n]
    assert len({len(s) for s in stops}) > 1


def test_sampling_is_seeded(tok):
    model = _model(tok, "llama")
    tasks = make_env("alfworld").task_ids("test")[:2]

    def run(seed):
        policy = HFPolicy(model, tok, AgentConfig(max_new_tokens=12, temperature=1.0, top_p=0.9, seed=seed))
        return [r.trajectory.to_json() for r in run_episodes("alfworld", tasks, policy, max_steps=3)]

    assert run(0) == run(0) != run(1)


def test_models_the_decoder_cannot_drive_fall_back_to_generate(tok):
    model = _model(tok, "llama")
    assert unsupported(model, 512) is None
    model.generation_config.suppress_tokens = []  # as some configs write "none"
    assert unsupported(model, 512) is None
    model.generation_config.repetition_penalty = 1.3  # generate applies it, the decoder does not
    assert "repetition_penalty" in unsupported(model, 512)
    assert HFPolicy(model, tok, AgentConfig()).turns is None
    model.generation_config.repetition_penalty = None
    model.config.sliding_window = 128
    assert "sliding window" in unsupported(model, 512) and unsupported(model, 128) is None


def test_prefill_runs_split_where_padding_would_double_a_row():
    assert _prefill_runs([40, 13, 6, 3]) == [(0, 1), (1, 4)]  # a new context prefills alone
    assert _prefill_runs([20, 12, 9]) == [(0, 3)]  # a few pads are cheaper than another forward
    assert _prefill_runs([7]) == [(0, 1)]


def test_common_prefix():
    assert [_common_prefix(a, b) for a, b in [([], [1]), ([1, 2, 3], [1, 2]), ([1, 2], [1, 3]), ([4], [1])]] == [
        0,
        2,
        1,
        0,
    ]

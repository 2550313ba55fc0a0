"""The agent feeds the model exactly what training fed it, token for token, at every turn boundary.

A "model" that has memorised the training encodings of expert transcripts drives the agent's real
code path (``run_episodes`` -> ``HFPolicy`` -> encode, generate, decode, parse, env step). It only
answers a context whose ids are exactly the training ids of a transcript up to a turn boundary
(left-cut as training's ``truncation="left"`` cuts, when the context is longer than the window),
and it answers with the training ids that follow. Every episode must then replay its expert
trajectory, for every format and every tokenizer family (byte-level BPE with GPT-2's and with
Llama 3's pre-tokenizer, SentencePiece-style Metaspace, and Llama 2's prepend-normalizer style).
"""

import copy
import dataclasses
from types import SimpleNamespace

import pytest
import torch

from agentdistill.agent import AgentConfig, HFPolicy, expert_episode, run_episodes
from agentdistill.bpe import TOKENIZER_FAMILIES, train_tokenizer
from agentdistill.data import encode_records
from agentdistill.envs import make_env
from agentdistill.formats import get_format
from agentdistill.masks import build_masks, fit_length
from agentdistill.segment import segment

ENVS = ("alfworld", "webshop", "hotpotqa")
N_TASKS = 5
MAX_NEW = 160  # longer than any expert turn with these tokenizers (asserted below)


@pytest.fixture(scope="module")
def experts():
    """The longest of the first 20 test tasks' expert trajectories, per env (long histories get cut)."""
    out = {}
    for env in ENVS:
        trajs = [expert_episode(env, t) for t in make_env(env).task_ids("test")[:20]]
        out[env] = sorted(trajs, key=lambda t: -len(t.steps))[:N_TASKS]
    return out


@pytest.fixture(scope="module")
def tokenizers():
    """Tokenizers trained on whole transcripts (merges across span boundaries: ``]\n\nAction:``) and on
    transcripts cut at span boundaries (``\n\n`` tokens, as every real tokenizer has, which a whole-text
    encoding never uses before ``Action:`` but an agent's context ending in a blank line would)."""
    texts = []
    for env in ENVS:
        for fmt in (get_format(make_env(env).format), get_format("chat")):
            for t in make_env(env).task_ids("train")[:15]:
                traj = expert_episode(env, t)
                text, spans = fmt.render(traj.prompt, traj.steps)
                cuts = [0, *(i for s in spans for i in (s.start, s.end)), len(text)]
                texts += [text, *(text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a)]
    return {family: train_tokenizer(texts, family, vocab_size=1024) for family in TOKENIZER_FAMILIES}


class Memorised(torch.nn.Module):
    """Continues a context only if its ids are a training prefix that ends at a turn boundary, with the
    training ids that follow, one token at a time until the agent's stopping criteria say stop.

    ``table`` maps those ids to the continuations, in transcript order: a left-cut window can be the
    same at two turns of one transcript (the same page seen twice), and the agent reaches them in order.

    The agent drives it through ``forward`` with a KV cache (``decoding.TurnDecoder``, the default) or
    through ``generate`` (``reuse_cache=False``). Its cached "keys" are the ids themselves, so at every
    forward it reads each row's whole context as the agent assembled it (cached columns and new ones,
    where the attention mask is 1) and checks that the position ids count those ids from 0.
    """

    def __init__(
        self, table: dict[tuple[int, ...], list[list[int]]], max_position_embeddings: int, vocab_size: int, pad: int
    ) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(max_position_embeddings=max_position_embeddings, num_hidden_layers=1)
        self.table, self.vocab_size, self.pad = table, vocab_size, pad
        self.hits, self.misses, self.forwards = 0, [], 0
        self.streams: dict[tuple[int, ...], tuple[list[int], int]] = {}  # context + i ids of a continuation -> (it, i)

    def forward(self, input_ids, attention_mask, position_ids, cache, use_cache=True, logits_to_keep=0):
        self.forwards += 1
        as_keys = input_ids[:, None, :, None].float()  # (B, 1 head, T, 1): the ids are the cached states
        seen, _ = cache.update(as_keys, as_keys, 0)
        q = input_ids.shape[1]
        logits = torch.zeros(len(input_ids), 1, self.vocab_size)
        rows = zip(seen[:, 0, :, 0].long().tolist(), attention_mask.tolist(), position_ids.tolist(), strict=True)
        for b, (ids, keep, pos) in enumerate(rows):
            context = tuple(i for i, k in zip(ids, keep, strict=True) if k)
            fed = [p for p, k in zip(pos, keep[-q:], strict=True) if k]
            assert fed == list(range(len(context) - len(fed), len(context))), f"positions {fed} of {len(context)} ids"
            logits[b, -1, self._next(context)] = 1.0
        return SimpleNamespace(logits=logits)

    def _next(self, context):
        """The id that follows ``context``: a training prefix at a turn boundary starts its continuation."""
        if self.table.get(context):
            self.hits += 1
            stream = (self.table[context].pop(0), 0)
        elif context in self.streams:
            stream = self.streams.pop(context)
        else:
            if context[-1] != self.pad:  # a finished row is fed pads
                self.misses.append(context)
            return self.pad
        cont, i = stream
        if i == len(cont):
            return self.pad  # the transcript ended: nothing more to write (padding, as generate pads finished rows)
        self.streams[(*context, cont[i])] = (cont, i + 1)
        return cont[i]

    def generate(self, input_ids, attention_mask, max_new_tokens, pad_token_id, stopping_criteria, **_):
        rows = []
        for ids, keep in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            context = tuple(i for i, k in zip(ids, keep, strict=True) if k)
            if self.table.get(context):
                self.hits += 1
                rows.append(self.table[context].pop(0))
            else:
                self.misses.append(context)
                rows.append([])
        out, done = input_ids, torch.tensor([not r for r in rows])
        for t in range(max_new_tokens):
            if done.all():
                break
            step = [pad_token_id if d or t >= len(r) else r[t] for r, d in zip(rows, done.tolist(), strict=True)]
            out = torch.cat([out, torch.tensor(step).reshape(-1, 1)], dim=1)
            done |= torch.tensor([t + 1 >= len(r) for r in rows])
            for criterion in stopping_criteria:
                done |= criterion(out, None)
        return out


def _turn_starts(ex):
    """Token positions where the model starts writing: a supervised token after a context token."""
    sup = [r or a for r, a in zip(ex.reason_mask, ex.act_mask, strict=True)]
    return [t for t in range(1, len(ex)) if sup[t] and not sup[t - 1]]


def _replay(env, trajs, tok, fmt, cut=False, reuse_cache=True):
    """Run the agent on the expert trajectories' tasks against the memorised training encodings.

    With ``cut``, the model's window is so short that long histories are cut from the left, while
    the task prompt is still kept whole (else two tasks' cut contexts could coincide). With
    ``reuse_cache``, the agent keeps each episode's KV cache between turns (it calls ``forward``),
    else it calls ``generate`` every turn.
    """
    trajs = [dataclasses.replace(t, format=fmt) for t in trajs]
    examples = encode_records(trajs, tok, max_length=10**6)  # the training path: segment -> build_masks
    budget = 2 * max(_turn_starts(ex)[0] for ex in examples) + 8 if cut else 10**6
    table, supervised = {}, {}
    for ex in examples:
        supervised[ex.meta["id"]] = ex.num_reason + ex.num_act
        for a in _turn_starts(ex):
            n = next((t for t in range(a, len(ex)) if not (ex.reason_mask[t] or ex.act_mask[t])), len(ex)) - a
            assert n <= MAX_NEW, "an expert turn is longer than the agent generates"
            context = fit_length(ex.slice(range(a)), budget, "left")[0]  # training's left cut of that prefix
            table.setdefault(tuple(context.input_ids), []).append(ex.input_ids[a:])
    model = Memorised(table, budget + MAX_NEW, len(tok), tok.pad_token_id)
    policy = HFPolicy(model, tok, AgentConfig(max_new_tokens=MAX_NEW, batch_size=4, reuse_cache=reuse_cache))
    assert (policy.turns is not None) == reuse_cache
    records = run_episodes(env, [t.id for t in trajs], policy, fmt=fmt)
    assert (model.forwards > 0) == reuse_cache
    # the model writes a thought and its action in one turn, or (separate_thinks) in two
    separate = get_format(fmt).separate_thinks
    turns = {
        t.id: sum(
            (s.thought is not None) + (s.action is not None) if separate else (s.thought, s.action) != (None, None)
            for s in t.steps
        )
        for t in trajs
    }
    n_cut = sum(a > budget for ex in examples for a in _turn_starts(ex))
    return SimpleNamespace(records=records, trajs=trajs, model=model, turns=turns, supervised=supervised, n_cut=n_cut)


def _assert_replayed(r, last_newline_generated=True):
    """Every context was a training prefix, every episode replayed its expert, and the agent generated
    exactly the supervised tokens (chat stops at its end-of-turn marker, before the newline after it)."""
    assert r.model.misses == [], (
        f"{len(r.model.misses)} of {r.model.hits + len(r.model.misses)} contexts are no training prefix"
    )
    assert r.model.hits == sum(r.turns.values())
    for rec, traj in zip(r.records, r.trajs, strict=True):
        assert rec.trajectory.steps == traj.steps
        assert rec.success and rec.invalid == 0
        want = r.supervised[traj.id]
        if last_newline_generated:
            assert rec.gen_tokens == want
        else:
            assert want - r.turns[traj.id] <= rec.gen_tokens <= want


@pytest.mark.parametrize("reuse_cache", [True, False])
@pytest.mark.parametrize("family", TOKENIZER_FAMILIES)
@pytest.mark.parametrize("env", ENVS)
def test_agent_context_is_the_training_prefix_at_every_turn(env, family, reuse_cache, experts, tokenizers):
    fmt = make_env(env).format
    _assert_replayed(_replay(env, experts[env], tokenizers[family], fmt, reuse_cache=reuse_cache))


@pytest.mark.parametrize("family", TOKENIZER_FAMILIES)
@pytest.mark.parametrize("env", ENVS)
def test_chat_format_agent_context_is_the_training_prefix(env, family, experts, tokenizers):
    _assert_replayed(_replay(env, experts[env], tokenizers[family], "chat"), last_newline_generated=False)


# A Qwen2.5-style template (Hermes tool calls, tool answers as user turns), written for this test.
QWEN_LIKE_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m.role == 'tool' -%}"
    "<|im_start|>user\n<tool_response>\n{{ m.content }}\n</tool_response><|im_end|>\n"
    "{%- elif m.role == 'assistant' -%}"
    "<|im_start|>assistant\n{{ m.content or '' }}"
    "{%- for c in m.tool_calls or [] -%}"
    "{{ '\n' if m.content else '' }}<tool_call>\n"
    '{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments }}}\n</tool_call>'
    "{%- endfor -%}"
    "<|im_end|>\n"
    "{%- else -%}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant\n{%- endif -%}"
)


@pytest.mark.parametrize("family", ["bytelevel", "metaspace"])
@pytest.mark.parametrize("env", ENVS)
def test_chat_template_agent_context_is_the_training_prefix(env, family, experts, tokenizers):
    tok = copy.deepcopy(tokenizers[family])
    tok.chat_template = QWEN_LIKE_TEMPLATE
    r = _replay(env, experts[env], tok, "chat")
    assert "<tool_response>" in segment(r.trajs[0], tokenizer=tok).text  # training renders with the template
    _assert_replayed(r, last_newline_generated=False)


@pytest.mark.parametrize("reuse_cache", [True, False])
@pytest.mark.parametrize("family", TOKENIZER_FAMILIES)
@pytest.mark.parametrize("env", ENVS)
def test_left_cut_context_is_training_left_truncation(env, family, reuse_cache, experts, tokenizers):
    fmt = make_env(env).format
    r = _replay(env, experts[env], tokenizers[family], fmt, cut=True, reuse_cache=reuse_cache)
    assert r.n_cut >= 3, "too few contexts are long enough to be cut"
    _assert_replayed(r)


@pytest.mark.parametrize("family", TOKENIZER_FAMILIES)
def test_span_ids_decode_to_span_text_and_transcript_round_trips(family, experts, tokenizers):
    from agentdistill.masks import piece_encoder

    tok = tokenizers[family]
    for env in ENVS:
        traj = experts[env][0]
        text, spans = get_format(make_env(env).format).render(traj.prompt, traj.steps)
        ex = build_masks(text, spans, tok)
        for j, span in enumerate(spans):
            ids = [i for i, s in zip(ex.input_ids, ex.span_ids, strict=True) if s == j]
            assert piece_encoder(tok).decode(ids) == text[span.start : span.end]
        assert tok.decode(ex.input_ids) == text

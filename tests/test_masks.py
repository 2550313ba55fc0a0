import pytest

from agentdistill.bpe import TOKENIZER_FAMILIES, train_tokenizer
from agentdistill.masks import CONTEXT_SPAN, build_masks, fit_length
from agentdistill.trajectory import Span, SpanKind

R, A = SpanKind.REASON, SpanKind.ACT

TEXT = (
    "Question: Which band formed first?\n"
    "Thought 1: I need to search Blur.\n"
    "Action 1: Search[Blur]\n"
    "Observation 1: Blur are an English rock band formed in 1988.\n"
    "Thought 2: Blur formed in 1988.\n"
    "Action 2: Finish[Blur]\n"
)


def _spans(text):
    out = []
    for kind, marker in ((R, "Thought"), (A, "Action")):
        start = 0
        while (i := text.find(marker, start)) != -1:
            end = text.index("\n", i) + 1
            out.append(Span(kind, i, end))
            start = end
    return sorted(out, key=lambda s: s.start)


def test_supervised_ids_equal_encoding_of_span_texts(tok):
    spans = _spans(TEXT)
    enc = build_masks(TEXT, spans, tok)
    reason_ids = [i for i, m in zip(enc.input_ids, enc.reason_mask, strict=True) if m]
    act_ids = [i for i, m in zip(enc.input_ids, enc.act_mask, strict=True) if m]
    want_r = [t for s in spans if s.kind is R for t in tok.encode(TEXT[s.start : s.end], add_special_tokens=False)]
    want_a = [t for s in spans if s.kind is A for t in tok.encode(TEXT[s.start : s.end], add_special_tokens=False)]
    assert reason_ids == want_r
    assert act_ids == want_a
    assert tok.decode(reason_ids) == "Thought 1: I need to search Blur.\nThought 2: Blur formed in 1988.\n"


def test_masks_disjoint_and_context_unsupervised(tok):
    spans = _spans(TEXT)
    enc = build_masks(TEXT, spans, tok)
    assert all(not (r and a) for r, a in zip(enc.reason_mask, enc.act_mask, strict=True))
    offsets = tok(TEXT, return_offsets_mapping=True, add_special_tokens=False)["offset_mapping"]
    obs_start = TEXT.index("Observation 1")
    obs_end = TEXT.index("Thought 2")
    for t, (a, _b) in enumerate(offsets):
        if obs_start <= a < obs_end or a < TEXT.index("Thought 1"):
            assert enc.reason_mask[t] == 0 and enc.act_mask[t] == 0
            assert enc.span_ids[t] == CONTEXT_SPAN
    assert enc.num_reason > 0 and enc.num_act > 0


def test_span_ids_index_spans(tok):
    spans = _spans(TEXT)
    enc = build_masks(TEXT, spans, tok)
    seen = sorted({s for s in enc.span_ids if s != CONTEXT_SPAN})
    assert seen == list(range(len(spans)))


def test_span_boundaries_are_token_boundaries(tok):
    # a span that starts mid-word: the text is cut there, so no token straddles it and the span's
    # tokens decode to exactly its text
    text = "Thought 1: abc\n"
    spans = [Span(R, 3, len(text))]
    enc = build_masks(text, spans, tok)
    head = [i for i, m in zip(enc.input_ids, enc.reason_mask, strict=True) if not m]
    body = [i for i, m in zip(enc.input_ids, enc.reason_mask, strict=True) if m]
    assert enc.input_ids == head + body
    assert tok.decode(head) == "Tho"
    assert tok.decode(body) == "ught 1: abc\n"
    assert tok(text, add_special_tokens=False)["input_ids"] != enc.input_ids  # the whole text merges "Thought"


def test_slow_tokenizer_rejected():
    class Slow:
        is_fast = False

    with pytest.raises(Exception, match="not a fast tokenizer"):
        build_masks("x", [], Slow())


def test_fit_length_windows_keep_prompt_and_train_each_token_once(tok):
    spans = _spans(TEXT)
    enc = build_masks(TEXT, spans, tok)
    prompt_len = next(i for i, (r, a) in enumerate(zip(enc.reason_mask, enc.act_mask, strict=True)) if r or a)
    max_len = 2 * prompt_len + 2  # the prompt may take at most half a window
    wins = fit_length(enc, max_len, "windows")
    assert len(wins) > 1
    assert all(len(w) <= max_len for w in wins)
    assert all(w.input_ids[:prompt_len] == enc.input_ids[:prompt_len] for w in wins)
    assert sum(w.num_reason + w.num_act for w in wins) == enc.num_reason + enc.num_act


def test_fit_length_left_keeps_prompt_and_tail(tok):
    spans = _spans(TEXT)
    enc = build_masks(TEXT, spans, tok)
    prompt_len = next(i for i, (r, a) in enumerate(zip(enc.reason_mask, enc.act_mask, strict=True)) if r or a)
    max_len = 2 * prompt_len + 2
    (w,) = fit_length(enc, max_len, "left")
    tail = max_len - prompt_len
    assert w.input_ids == enc.input_ids[:prompt_len] + enc.input_ids[-tail:]
    assert fit_length(enc, len(enc), "left")[0] is enc


@pytest.mark.parametrize("family", TOKENIZER_FAMILIES)
def test_piece_encoder_memo_gives_what_fresh_encoding_gives(family, monkeypatch):
    from agentdistill import masks

    tok = train_tokenizer([TEXT, *TEXT.splitlines(keepends=True)] * 3, family, vocab_size=300)
    enc = masks.PieceEncoder(tok)

    def fresh(pieces):
        return [enc.first.encode(pieces[0], add_special_tokens=False).ids] + [
            e.ids for e in enc.rest.encode_batch(list(pieces[1:]), add_special_tokens=False)
        ]

    lines = TEXT.splitlines(keepends=True)
    if family == "metaspace":  # a text's start is marked, its continuations are not: the memo must tell them apart
        assert fresh(["Blur formed"]) != fresh(["x", "Blur formed"])[1:]
    monkeypatch.setattr(masks, "MEMO_PIECES", 5)
    for pieces in (lines[:3], lines[1:4], lines[:3], [lines[2], lines[0], lines[2]], lines, lines[::-1], lines):
        got = enc.encode(pieces)
        assert got == fresh(pieces)
        got[0].append(-1)  # the caller's lists are its own
        assert enc.encode(pieces) == fresh(pieces)
        assert len(enc.memo) <= 5

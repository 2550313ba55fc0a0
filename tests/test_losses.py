"""Divergences pinned to naive float64 references written from the formulas; cached top-k, chunking, span sums."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from agentdistill.losses import (
    KINDS,
    chunked_ce,
    chunked_kd,
    chunked_kd_topk,
    divergence,
    divergence_topk,
    span_loss_sums,
    topk_from_logits,
)

INF = float("inf")


# ---- naive references: straight probabilities, explicit sums, float64 ----------------------------
def naive_kl(p, q):
    """KL(p‖q) = Σ_v p_v log(p_v / q_v), 0·log 0 = 0 (+inf where p > 0 = q)."""
    terms = torch.where(p > 0, p * torch.log(p / q), torch.zeros_like(p))
    return terms.sum(-1)


def naive_from_probs(s, t, kind, beta):
    if kind == "fkl":
        return naive_kl(t, s)
    if kind == "rkl":
        return naive_kl(s, t)
    if kind == "jsd":
        m = beta * t + (1 - beta) * s
        return beta * naive_kl(t, m) + (1 - beta) * naive_kl(s, m)
    if kind == "skl":
        return naive_kl(t, beta * t + (1 - beta) * s)
    if kind == "srkl":
        return naive_kl(s, (1 - beta) * t + beta * s)
    assert kind == "tvd"
    return 0.5 * (t - s).abs().sum(-1)


def naive(student_logits, teacher_logits, kind, beta=0.5, temperature=1.0):
    s = torch.softmax(student_logits.double() / temperature, -1)
    t = torch.softmax(teacher_logits.double() / temperature, -1)
    return naive_from_probs(s, t, kind, beta)


def naive_topk(student_logits, ids, logprobs, tail, kind, beta, temperature):
    """The K+1-bin divergence: K cached tokens plus one bin for everything else."""
    s = torch.softmax(student_logits.double() / temperature, -1)
    s_k = s.gather(-1, ids)
    s_bins = torch.cat([s_k, (1 - s_k.sum(-1)).clamp_min(0).unsqueeze(-1)], -1)
    t_bins = torch.cat([logprobs.double().exp(), tail.double().exp().unsqueeze(-1)], -1)
    return naive_from_probs(s_bins, t_bins, kind, beta)


def logits(*shape, scale=3.0, dtype=torch.float64):
    return (scale * torch.randn(*shape)).to(dtype)


# ---- divergence ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
def test_divergence_matches_naive_reference(kind, temperature, beta):
    s, t = logits(3, 4, 11), logits(3, 4, 11)
    got = divergence(s, t, kind, beta=beta, temperature=temperature)
    assert got.shape == (3, 4)
    assert_close(got, naive(s, t, kind, beta, temperature))


def test_pinned_two_token_example():
    # t = (1/2, 1/2), s = (1/4, 3/4); values by hand.
    s, t = torch.tensor([0.25, 0.75]).log(), torch.tensor([0.5, 0.5]).log()
    kl_t_m = 0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.625)  # m = (3/8, 5/8)
    kl_s_m = 0.25 * math.log(0.25 / 0.375) + 0.75 * math.log(0.75 / 0.625)
    expected = {
        "fkl": 0.5 * math.log(2) + 0.5 * math.log(2 / 3),
        "rkl": 0.25 * math.log(0.5) + 0.75 * math.log(1.5),
        "jsd": 0.5 * kl_t_m + 0.5 * kl_s_m,
        "skl": kl_t_m,
        "srkl": kl_s_m,
        "tvd": 0.25,
    }
    for kind, value in expected.items():
        assert divergence(s, t, kind, beta=0.5).item() == pytest.approx(value, rel=1e-6), kind


@pytest.mark.parametrize("kind", KINDS)
def test_zero_for_equal_inputs_and_nonnegative(kind):
    x = logits(5, 13)
    for beta in (0.0, 0.3, 1.0):
        assert_close(divergence(x, x.clone(), kind, beta=beta), torch.zeros(5, dtype=torch.float64))
        assert (divergence(logits(64, 13), logits(64, 13), kind, beta=beta) >= 0).all()


def test_half_precision_inputs_are_upcast():
    s, t = logits(4, 9, dtype=torch.bfloat16), logits(4, 9, dtype=torch.bfloat16)
    got = divergence(s, t, "jsd")
    assert got.dtype == torch.float32
    assert_close(got.double(), naive(s, t, "jsd"), rtol=1e-5, atol=1e-6)


def test_jsd_endpoints_are_fkl_and_rkl_and_the_formula_vanishes_near_them():
    s, t = logits(6, 10), logits(6, 10)
    fkl, rkl = divergence(s, t, "fkl"), divergence(s, t, "rkl")
    assert_close(divergence(s, t, "jsd", beta=0.0), fkl)
    assert_close(divergence(s, t, "jsd", beta=1.0), rkl)
    # The endpoints are special cases (as in TRL): the formula itself is ≈ β·FKL and ≈ (1 − β)·RKL there.
    eps = 1e-7
    assert_close(divergence(s, t, "jsd", beta=eps) / eps, fkl, rtol=1e-3, atol=1e-6)
    assert_close(divergence(s, t, "jsd", beta=1 - eps) / eps, rkl, rtol=1e-3, atol=1e-6)


def test_skew_kl_limits():
    s, t = logits(6, 10), logits(6, 10)
    zero = torch.zeros(6, dtype=torch.float64)
    assert_close(divergence(s, t, "skl", beta=0.0), divergence(s, t, "fkl"))
    assert_close(divergence(s, t, "srkl", beta=0.0), divergence(s, t, "rkl"))
    assert_close(divergence(s, t, "skl", beta=1.0), zero)
    assert_close(divergence(s, t, "srkl", beta=1.0), zero)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck(kind):
    s = logits(3, 5).requires_grad_()
    t = logits(3, 5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: divergence(a, b, kind, beta=0.3, temperature=1.5), (s, t))


@pytest.mark.parametrize("kind", KINDS)
def test_shared_masked_vocab_equals_the_reduced_vocab(kind):
    s, t = logits(4, 9), logits(4, 9)
    masked = torch.tensor([False, True, False, False, True, False, False, False, True])
    s_inf, t_inf = s.masked_fill(masked, -INF).requires_grad_(), t.masked_fill(masked, -INF)
    got = divergence(s_inf, t_inf, kind, beta=0.4)
    assert_close(got, divergence(s[:, ~masked], t[:, ~masked], kind, beta=0.4))
    got.sum().backward()
    assert torch.isfinite(s_inf.grad).all()
    assert (s_inf.grad[:, masked] == 0).all()


# Which kinds stay finite when only one side gives some tokens probability 0 (β = α = 0.5).
_FINITE = {
    "teacher": {"fkl", "jsd", "skl", "srkl", "tvd"},  # rkl: s > 0 = t  ->  +inf
    "student": {"rkl", "jsd", "skl", "srkl", "tvd"},  # fkl: t > 0 = s  ->  +inf
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("side", ["teacher", "student"])
def test_one_sided_neg_inf_logits(kind, side):
    s, t = logits(4, 9), logits(4, 9)
    masked = torch.zeros(9, dtype=torch.bool)
    masked[[0, 5]] = True
    if side == "teacher":
        t = t.masked_fill(masked, -INF)
    else:
        s = s.masked_fill(masked, -INF)
    s.requires_grad_()
    got = divergence(s, t, kind, beta=0.5)
    if kind not in _FINITE[side]:
        assert (got == INF).all()
        return
    assert torch.isfinite(got).all()
    assert_close(got, naive(s.detach(), t, kind))
    got.sum().backward()
    assert torch.isfinite(s.grad).all()


def test_invalid_arguments_raise_clear_errors():
    x = logits(2, 5)
    with pytest.raises(ValueError, match="choose one of fkl, rkl, jsd, skl, srkl, tvd"):
        divergence(x, x, "kl")
    with pytest.raises(ValueError, match="beta must be in"):
        divergence(x, x, "jsd", beta=1.5)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        divergence(x, x, "fkl", temperature=0.0)
    with pytest.raises(ValueError, match="!= teacher"):
        divergence(x, logits(2, 6), "fkl")


# ---- cached top-k teacher --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_topk_with_full_vocab_equals_full_divergence(kind, temperature):
    s, t = logits(5, 12).requires_grad_(), logits(5, 12)
    ids, logprobs, tail = topk_from_logits(t, 12, temperature=temperature)
    assert (tail == -INF).all()
    got = divergence_topk(s, ids, logprobs, tail, kind, beta=0.3, temperature=temperature)
    want = divergence(s, t, kind, beta=0.3, temperature=temperature)
    assert_close(got, want)
    (g_got,) = torch.autograd.grad(got.sum(), s)
    (g_want,) = torch.autograd.grad(want.sum(), s)
    assert_close(g_got, g_want)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_topk_matches_naive_k_plus_one_bins(kind, temperature):
    s, t = logits(6, 20), logits(6, 20)
    ids, logprobs, tail = topk_from_logits(t, 5, temperature=temperature)
    assert ids.shape == logprobs.shape == (6, 5) and tail.shape == (6,)
    assert_close(torch.cat([logprobs, tail[:, None]], -1).logsumexp(-1), torch.zeros(6, dtype=torch.float64))
    got = divergence_topk(s, ids, logprobs, tail, kind, beta=0.7, temperature=temperature)
    assert_close(got, naive_topk(s, ids, logprobs, tail, kind, 0.7, temperature))
    # Coarse-graining never increases an f-divergence (data processing inequality).
    assert (got <= divergence(s, t, kind, beta=0.7, temperature=temperature) + 1e-12).all()


@pytest.mark.parametrize("kind", KINDS)
def test_topk_close_to_full_when_tail_is_tiny(kind):
    t = logits(4, 50, scale=1.0)
    t[:, :8] += 25.0  # the top 8 hold all but ~1e-9 of the mass
    s = t + 0.5 * torch.randn_like(t)
    ids, logprobs, tail = topk_from_logits(t, 8)
    assert (tail < -18).all()
    got = divergence_topk(s, ids, logprobs, tail, kind, beta=0.5)
    assert_close(got, divergence(s, t, kind, beta=0.5), rtol=0, atol=1e-6)


# ---- chunked from hidden states -----------------------------------------------------------------
def _hidden_problem(n, v=11, h=6, bias=True):
    hidden = logits(n, h, scale=1.0).requires_grad_()
    weight = logits(v, h, scale=1.0).requires_grad_()
    b = logits(v, scale=1.0).requires_grad_() if bias else None
    return hidden, weight, b


def _grads(out, *params):
    torch.manual_seed(1)
    weights = torch.rand_like(out)  # non-uniform upstream gradient, as λ_r/λ_a and span weights give
    return torch.autograd.grad((weights * out).sum(), [p for p in params if p is not None], allow_unused=True)


CHUNKING = [(7, 7), (7, 3), (7, 1), (7, 100), (1, 4), (0, 3)]


@pytest.mark.parametrize(("n", "chunk_size"), CHUNKING)
@pytest.mark.parametrize("kind", ["fkl", "jsd", "tvd"])
def test_chunked_kd_equals_unchunked(n, chunk_size, kind):
    hidden, weight, bias = _hidden_problem(n)
    t_logits = logits(n, 11)
    out = chunked_kd(hidden, weight, lambda a, b: t_logits[a:b], kind, 0.3, 2.0, chunk_size=chunk_size, bias=bias)
    s_logits = F.linear(hidden, weight, bias)
    want = divergence(s_logits, t_logits, kind, beta=0.3, temperature=2.0)
    assert out.div.shape == out.student_top1.shape == out.teacher_top1.shape == (n,)
    assert_close(out.div, want)
    assert torch.equal(out.student_top1, s_logits.argmax(-1))
    assert torch.equal(out.teacher_top1, t_logits.argmax(-1))
    for got, ref in zip(_grads(out.div, hidden, weight, bias), _grads(want, hidden, weight, bias), strict=True):
        assert torch.isfinite(got).all()
        assert_close(got, ref)


@pytest.mark.parametrize(("n", "chunk_size"), CHUNKING)
def test_chunked_kd_topk_equals_unchunked(n, chunk_size):
    hidden, weight, _ = _hidden_problem(n, bias=False)
    ids, logprobs, tail = topk_from_logits(logits(n, 11), 4)
    out = chunked_kd_topk(hidden, weight, ids, logprobs, tail, "srkl", 0.2, 0.5, chunk_size=chunk_size)
    want = divergence_topk(F.linear(hidden, weight), ids, logprobs, tail, "srkl", 0.2, 0.5)
    assert_close(out.div, want)
    assert torch.equal(out.teacher_top1, ids[:, 0])  # topk_from_logits sorts descending
    for got, ref in zip(_grads(out.div, hidden, weight), _grads(want, hidden, weight), strict=True):
        assert_close(got, ref)


@pytest.mark.parametrize(("n", "chunk_size"), CHUNKING)
def test_chunked_ce_equals_cross_entropy(n, chunk_size):
    hidden, weight, bias = _hidden_problem(n)
    targets = torch.randint(0, 11, (n,))
    out = chunked_ce(hidden, weight, targets, chunk_size=chunk_size, bias=bias)
    s_logits = F.linear(hidden, weight, bias)
    want = F.cross_entropy(s_logits, targets, reduction="none")
    assert_close(out.loss, want)
    assert torch.equal(out.student_top1, s_logits.argmax(-1))
    for got, ref in zip(_grads(out.loss, hidden, weight, bias), _grads(want, hidden, weight, bias), strict=True):
        assert_close(got, ref)


def test_empty_batch_gives_empty_outputs_and_zero_grads():
    hidden, weight, _ = _hidden_problem(0, bias=False)
    out = chunked_kd(hidden, weight, lambda a, b: torch.zeros(b - a, 11), "jsd", chunk_size=4)
    assert out.div.shape == (0,) and out.student_top1.dtype == torch.long
    out.div.sum().backward()
    assert hidden.grad.shape == (0, 6)
    assert torch.equal(weight.grad, torch.zeros_like(weight))


def test_no_gradient_reaches_the_teacher_and_half_precision_is_upcast():
    hidden = logits(5, 6, dtype=torch.bfloat16).requires_grad_()
    weight = logits(11, 6, dtype=torch.bfloat16).requires_grad_()
    t_hidden = logits(5, 6, dtype=torch.bfloat16)
    t_weight = logits(11, 6, dtype=torch.bfloat16).requires_grad_()
    out = chunked_kd(hidden, weight, lambda a, b: F.linear(t_hidden[a:b], t_weight), "fkl", chunk_size=2)
    assert out.div.dtype == torch.float32
    out.div.sum().backward()
    assert t_weight.grad is None
    assert weight.grad is not None


def test_chunked_path_saves_no_full_logits_for_backward():
    n, v, h, chunk = 64, 512, 8, 16
    hidden, weight, _ = _hidden_problem(n, v=v, h=h, bias=False)
    t_logits = logits(n, v)
    saved = []

    def pack(x):
        saved.append(x.numel())
        return x

    # Control: the unchunked computation does save (N, V) tensors, so the probe sees them.
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        divergence(F.linear(hidden, weight), t_logits, "jsd")
    assert n * v in saved

    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        out = chunked_kd(hidden, weight, lambda a, b: t_logits[a:b], "jsd", chunk_size=chunk)
    assert saved
    assert max(saved) < chunk * v  # not even one chunk of logits is kept
    assert sum(saved) < n * v  # nor all chunks together
    out.div.sum().backward()
    assert torch.isfinite(weight.grad).all()


# ---- span sums -------------------------------------------------------------------------------------
def _span_example():
    div = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.0], requires_grad=True)
    reason = torch.tensor([1, 1, 0, 1, 0, 0, 0], dtype=torch.bool)
    act = torch.tensor([0, 0, 1, 0, 1, 1, 0], dtype=torch.bool)  # position 6 is neither: ignored
    span_ids = torch.tensor([0, 0, 1, 2, 3, 3, 4])
    return div, reason, act, span_ids


def test_span_loss_sums_token_normalisation():
    div, reason, act, span_ids = _span_example()
    out = span_loss_sums(div, reason, act, span_ids, normalize="token")
    assert out["reason_sum"].item() == 7.0 and out["reason_count"].item() == 3
    assert out["act_sum"].item() == 14.0 and out["act_count"].item() == 3


def test_span_loss_sums_span_normalisation():
    div, reason, act, span_ids = _span_example()
    out = span_loss_sums(div, reason, act, span_ids, normalize="span")
    assert out["reason_sum"].item() == 1.5 + 4.0 and out["reason_count"].item() == 2
    assert out["act_sum"].item() == 3.0 + 5.5 and out["act_count"].item() == 2
    (grad,) = torch.autograd.grad(out["reason_sum"], div)
    assert grad.tolist() == [0.5, 0.5, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_span_loss_sums_empty_and_errors():
    empty = torch.zeros(0, requires_grad=True)
    none = torch.zeros(0, dtype=torch.bool)
    for normalize in ("token", "span"):
        out = span_loss_sums(empty, none, none, torch.zeros(0, dtype=torch.long), normalize=normalize)
        assert out["reason_sum"].item() == 0.0 and out["act_count"].item() == 0
        assert out["reason_sum"].requires_grad
    div, reason, act, _ = _span_example()
    with pytest.raises(ValueError, match="needs span_ids"):
        span_loss_sums(div, reason, act, None, normalize="span")
    with pytest.raises(ValueError, match="'token' or 'span'"):
        span_loss_sums(div, reason, act, None, normalize="mean")

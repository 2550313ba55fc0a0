"""Depth pruning: the pruned student computes exactly what its teacher computes with the dropped layers
skipped, for Llama- and GPT-2-style models, through save/load and generation with a KV cache."""

import re

import pytest
import torch

from agentdistill.errors import ConfigError
from agentdistill.modeling import load_causal_lm, load_tokenizer
from agentdistill.students import depth_pruned, even_layers, init_student, prune_student
from agentdistill.testing import tiny_causal_lm, tiny_tokenizer

ARCHS = ("llama", "gpt2")


def _teacher(arch):
    return tiny_causal_lm(97, hidden_size=32, num_layers=4, num_heads=4, arch=arch, seed=1).eval()


def _skipping(model, dropped):
    """Hooks that make the ``dropped`` decoder layers of ``model`` return their input unchanged."""
    from agentdistill.students import _decoder_layers

    owner, name = _decoder_layers(model)

    def identity(_module, args, kwargs, out):
        hidden = args[0] if args else kwargs["hidden_states"]
        return (hidden, *out[1:]) if isinstance(out, tuple) else hidden

    return [getattr(owner, name)[i].register_forward_hook(identity, with_kwargs=True) for i in dropped]


@pytest.mark.parametrize("arch", ARCHS)
def test_pruned_model_equals_the_teacher_with_the_dropped_layers_skipped(arch):
    teacher = _teacher(arch)
    ids = torch.randint(4, 97, (2, 11))
    pruned = depth_pruned(teacher, [0, 3])
    assert pruned.config.num_hidden_layers == 2 and teacher.config.num_hidden_layers == 4
    handles = _skipping(teacher, [1, 2])
    try:
        want = teacher(input_ids=ids).logits
    finally:
        for h in handles:
            h.remove()
    torch.testing.assert_close(pruned(input_ids=ids).logits, want)
    assert not torch.allclose(teacher(input_ids=ids).logits, want)  # the skipped layers did matter
    # embeddings and head are the teacher's, copied
    torch.testing.assert_close(pruned.get_input_embeddings().weight, teacher.get_input_embeddings().weight)
    assert pruned.get_input_embeddings().weight.data_ptr() != teacher.get_input_embeddings().weight.data_ptr()


@pytest.mark.parametrize("arch", ARCHS)
def test_pruned_student_saves_loads_and_generates_with_its_kv_cache(arch, tmp_path, tok):
    teacher_dir = tmp_path / "teacher"
    teacher = tiny_causal_lm(len(tok), hidden_size=32, num_layers=4, num_heads=4, arch=arch, seed=1)
    teacher.save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    out = prune_student(teacher_dir, [1, 3], tmp_path / "student")
    student = load_causal_lm(out).eval()
    assert student.config.num_hidden_layers == 2
    assert (out / "tokenizer.json").is_file() and not (tmp_path / "student.tmp").exists()
    ids = torch.tensor([tok.encode("Thought 1: I need to search Blur.\nAction 1:", add_special_tokens=False)])
    torch.testing.assert_close(
        student(input_ids=ids).logits, depth_pruned(teacher.eval(), [1, 3])(input_ids=ids).logits
    )
    cached = student.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)
    uncached = student.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0, use_cache=False)
    assert cached.tolist() == uncached.tolist()  # layer_idx renumbered: the cache is indexed right


@pytest.mark.parametrize("keep", [[], [2, 1], [1, 1], [4], [-1]])
def test_bad_layer_lists_are_one_line_errors(keep):
    with pytest.raises(ConfigError, match=r"layers to keep .*: give ascending, distinct indices in 0\.\.3"):
        depth_pruned(_teacher("llama"), keep)


def test_even_layers_keep_first_and_last():
    assert even_layers(6, 3) == [0, 2, 5]
    assert even_layers(6, 2) == [0, 5]
    assert even_layers(6, 1) == [0]
    assert even_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="cannot keep 7 of 6 layers"):
        even_layers(6, 7)


def test_prune_command_keeps_evenly_spaced_layers_and_rejects_bad_ones_before_loading(tmp_path, tok, capsys):
    from agentdistill.cli import main

    teacher_dir = tmp_path / "teacher"
    tiny_causal_lm(len(tok), hidden_size=32, num_layers=6, num_heads=4, seed=1).save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    assert main(["prune", "--teacher", str(teacher_dir), "--num_layers", "3", "--out", str(tmp_path / "s")]) == 0
    assert f"student with layers [0, 2, 5] of {teacher_dir}" in capsys.readouterr().out
    assert load_causal_lm(tmp_path / "s").config.num_hidden_layers == 3
    assert main(["prune", "--teacher", str(teacher_dir), "--layers", "0,9", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # above it: the test's own loading progress bar
    assert err[-1] == "error: layers to keep [0, 9]: give ascending, distinct indices in 0..5"
    assert main(["prune", "--teacher", str(teacher_dir), "--layers", "a,b", "--out", str(tmp_path / "t")]) == 2
    assert "--layers 'a,b': give comma-separated layer indices" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_run_config_size_with_init_prune_makes_the_teacher_with_fewer_layers(tmp_path, tok):
    from agentdistill.runconfig import load_run_config
    from agentdistill.students import init_student

    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(
        "teacher:\n  num_layers: 4\n"  # the teacher built below
        "distill:\n  sizes:\n    - {name: p, init: prune, num_layers: 2}\n"
        "    - {name: q, init: prune, num_layers: 2, layers: [1, 2]}\n"
    )
    cfg = load_run_config("smoke", config=str(cfg_file))
    p, q = cfg.distill.sizes
    assert (p.init, p.num_layers, p.hidden_size, q.layers) == ("prune", 2, None, [1, 2])
    teacher_dir = tmp_path / "teacher"
    teacher = tiny_causal_lm(len(tok), hidden_size=32, num_layers=4, num_heads=4, seed=1).eval()
    teacher.save_pretrained(teacher_dir)
    tok.save_pretrained(teacher_dir)
    ids = torch.tensor([tok.encode("> go to countertop 1\n", add_special_tokens=False)])
    for size, keep in ((p, [0, 3]), (q, [1, 2])):
        init_student(teacher_dir, size, seed=0, out=tmp_path / size.name)
        student = load_causal_lm(tmp_path / size.name).eval()
        torch.testing.assert_close(student(input_ids=ids).logits, depth_pruned(teacher, keep)(input_ids=ids).logits)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        ("{name: s, init: scratch, num_layers: 2}", "distill.sizes[s]: init scratch needs num_layers, hidden_size and num_heads"),
        ("{name: s, init: prune, num_layers: 2, layers: [0]}", "distill.sizes[s]: layers [0] are not num_layers 2"),
        ("{name: s, init: grow, num_layers: 2}", "must be one of scratch, prune, pretrained or null; got 'grow'"),
        ("{name: s, init: prune, num_layers: 2, hidden_size: 64}", "distill.sizes[s]: hidden_size apply only to init: scratch (init is prune)"),
        ("{name: s}", "distill.sizes[s]: init prune needs num_layers (or layers: the teacher layers to keep)"),
        ("{name: s, init: pretrained}", "distill.sizes[s]: model (a directory or hub name) goes with init: pretrained, and it needs one"),
        ("{name: s, model: some/dir, num_layers: 2}", "distill.sizes[s]: a pretrained student keeps its own layers; drop num_layers"),
        ("{name: s, num_layers: 2, hidden_size: 64, num_heads: 2, layers: [0, 1]}", "distill.sizes[s]: layers (teacher layers to keep) go with init: prune, not scratch"),
    ],
)  # fmt: skip
def test_bad_student_sizes_are_one_line_errors(tmp_path, size, message):
    from agentdistill.runconfig import load_run_config

    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text(f"distill:\n  sizes:\n    - {size}\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_run_config("smoke", config=str(cfg_file))


@pytest.mark.parametrize(
    ("size", "init", "num_layers"),
    [
        ({"name": "s", "num_layers": 2}, "prune", 2),
        ({"name": "s", "layers": [0, 3]}, "prune", 2),
        ({"name": "s", "num_layers": 2, "hidden_size": 64, "num_heads": 2}, "scratch", 2),
        ({"name": "s", "model": "my/student"}, "pretrained", None),
    ],
)
def test_student_init_is_inferred_from_what_the_size_gives(size, init, num_layers):
    from agentdistill.runconfig import StudentSize

    got = StudentSize(**size)
    assert (got.init, got.num_layers) == (init, num_layers)


def test_pretrained_student_is_copied_with_the_teachers_tokenizer_and_a_foreign_vocabulary_refused(tmp_path):
    from agentdistill.runconfig import StudentSize

    tok = tiny_tokenizer()
    teacher_dir, mine, foreign = tmp_path / "teacher", tmp_path / "mine", tmp_path / "foreign"
    for d, seed in ((teacher_dir, 1), (mine, 2)):
        tiny_causal_lm(len(tok), hidden_size=32, num_layers=2, num_heads=4, seed=seed).save_pretrained(d)
        tok.save_pretrained(d)
    init_student(teacher_dir, StudentSize(name="p", model=str(mine)), seed=0, out=tmp_path / "p")
    got, want = load_causal_lm(tmp_path / "p"), load_causal_lm(mine)
    for (name, a), (_, b) in zip(got.state_dict().items(), want.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert load_tokenizer(tmp_path / "p").get_vocab() == tok.get_vocab()
    other = tiny_tokenizer(vocab_size=len(tok) + 40)
    tiny_causal_lm(len(other), hidden_size=32, num_layers=2, num_heads=4).save_pretrained(foreign)
    other.save_pretrained(foreign)
    with pytest.raises(ConfigError, match="the tokenizer of .*foreign differs from the teacher's"):
        init_student(teacher_dir, StudentSize(name="f", model=str(foreign)), seed=0, out=tmp_path / "f")
    assert not (tmp_path / "f").exists()

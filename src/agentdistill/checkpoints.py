"""Training checkpoints: which ``checkpoint-N`` a run can resume from, and setting aside torn ones.

A kill or a full disk during ``Trainer``'s checkpoint save leaves a ``checkpoint-N`` that
``transformers.trainer_utils.get_last_checkpoint`` would still pick; ``last_complete_checkpoint``
returns the newest one that is whole and renames the others out of ``Trainer``'s way.
"""

import json
import logging
import re
import shutil
import struct
import time
from pathlib import Path

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")  # transformers.trainer_utils' own pattern


def _safetensors_problem(path: Path) -> str | None:
    """Why the safetensors file ``path`` is not whole, or ``None``: its header must parse and its size must
    equal 8 + header + the end of the last tensor (a save cut short by a kill or a full disk fails this)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > size:  # the header length itself is garbage
                raise ValueError(n)
            header = json.loads(f.read(n))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError, AttributeError):
        return f"{path.name} is missing or cut short"
    return None if size == 8 + n + end else f"{path.name} is cut short ({size} of {8 + n + end} bytes)"


def _weights_problem(ck: Path) -> str | None:
    """Why ``ck`` lacks whole model weights (the files ``Trainer._load_from_checkpoint`` reads), or ``None``."""
    index = ck / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError):
            return f"{index.name} is cut short"
        return next((p for p in (_safetensors_problem(ck / s) for s in shards) if p), None)
    for name in ("model.safetensors", "adapter_model.safetensors"):
        if (ck / name).exists():
            return _safetensors_problem(ck / name)
    # torch pickles and FSDP shards cannot be checked without loading them: present and not empty will do
    for name in ("pytorch_model.bin", "pytorch_model.bin.index.json", "adapter_model.bin"):
        if (ck / name).is_file():
            return None if (ck / name).stat().st_size > 0 else f"{name} is empty"
    if any("pytorch_model_fsdp" in p.name for p in ck.iterdir()):
        return None
    return "no model weights"


def checkpoint_problem(ck: str | Path) -> str | None:
    """Why ``ck`` cannot be resumed from, or ``None`` when it is complete.

    Complete means: ``trainer_state.json`` (the file ``Trainer._save_checkpoint`` writes last, after the
    weights, optimizer, scheduler and RNG states) parses, its ``global_step`` is the directory's
    ``checkpoint-N``, and the model weights are whole (``_weights_problem``).
    """
    ck = Path(ck)
    if not ck.is_dir():
        return "not a directory"
    try:
        state = json.loads((ck / "trainer_state.json").read_text(encoding="utf-8"))
        step = state["global_step"]
    except FileNotFoundError:
        return "no trainer_state.json: its save was interrupted"
    except (OSError, ValueError, KeyError, TypeError):
        return "trainer_state.json is cut short"
    m = _CHECKPOINT.match(ck.name)
    if m and int(m[1]) != step:
        return f"trainer_state.json says step {step}"
    return _weights_problem(ck)


def _set_aside(ck: Path) -> Path:
    """Rename a torn ``checkpoint-N`` out of every pattern ``Trainer`` reads: it resumes from
    ``checkpoint-<digits>`` and its ``save_total_limit`` rotation globs ``checkpoint-*`` (ordered by
    mtime when saves are more than a second apart, so a torn one there would be deleted or counted)."""
    stem = f"torn-{ck.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    dest, i = ck.with_name(stem), 1
    while dest.exists():
        dest, i = ck.with_name(f"{stem}-{i}"), i + 1
    ck.rename(dest)
    return dest


def last_complete_checkpoint(out: str | Path, set_aside: bool = True) -> Path | None:
    """The newest complete ``checkpoint-N`` in ``out`` (``checkpoint_problem``), or ``None``.

    With ``set_aside`` every incomplete one is renamed ``torn-checkpoint-N-<time>``, so neither
    ``Trainer``'s ``save_total_limit`` rotation nor a later rerun counts it, and a warning says so.
    """
    out = Path(out)
    if not out.is_dir():
        return None
    found = sorted((int(m[1]), p) for p in out.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir())
    last = None
    for _, ck in reversed(found):
        problem = checkpoint_problem(ck)
        if problem is None:
            last = last or ck
        elif set_aside:
            logger.warning("%s is incomplete (%s); set aside as %s", ck, problem, _set_aside(ck).name)
    return last


def drop_checkpoints(out: str | Path) -> None:
    """A finished training's checkpoints are only needed to resume it: remove them (torn ones too)."""
    for ck in [*Path(out).glob("checkpoint-*"), *Path(out).glob("torn-checkpoint-*")]:
        shutil.rmtree(ck, ignore_errors=True)

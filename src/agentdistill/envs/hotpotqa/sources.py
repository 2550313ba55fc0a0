"""HotPotQA question records from the files users have, all in the original schema.

The original files (``hotpot_dev_distractor_v1.json``, ``hotpot_train_v1.1.json``) are a JSON list of::

    {"_id": "5a8b57f25542995d1e6f1371", "question": "...", "answer": "yes", "type": "comparison",
     "level": "hard", "supporting_facts": [["Scott Derrickson", 0], ["Ed Wood", 0]],
     "context": [["Ed Wood", ["Edward Davis Wood Jr. ...", "..."]], ...]}

The Hugging Face ``hotpot_qa`` dataset (configs ``distractor`` and ``fullwiki``) has the same fields
as columns: ``id`` for ``_id``, ``supporting_facts: {"title": [...], "sent_id": [...]}`` and
``context: {"title": [...], "sentences": [[...], ...]}``. It is read as a JSON list, as JSON Lines
(``Dataset.to_json`` writes one record per line) or as a directory written by
``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk`` (``datasets.load_from_disk``; needs
``pip install agentdistill[datasets]``). Records of either schema may share a file.
"""

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentdistill.errors import AgentDistillError, ConfigError


@dataclass(frozen=True, eq=False)
class Records:
    """Question records of one split of a source; ``where`` names it in messages ("hotpotqa data file X").

    Compared and hashed by identity: ``read_source`` returns the same object while the file is unchanged.
    """

    where: str
    records: list[Any]


def read_source(path: str | Path) -> dict[str, Records]:
    """The records of a file or ``save_to_disk`` directory, by split: ``{"": ...}`` for one set of
    questions, the dataset's own split names (``train``, ``validation``) for a ``DatasetDict``.

    Records are converted to the original schema; their fields are checked by the caller
    (``distractor.check_record``). Cached per path and modification time.

    Raises:
        AgentDistillError: the path is missing, unreadable, not JSON / JSON Lines, or not a dataset directory.
        ConfigError: a dataset directory and ``datasets`` is not installed.
    """
    p = Path(path)
    try:
        stamp = p.stat().st_mtime_ns
    except OSError as e:
        raise AgentDistillError(
            f"hotpotqa data file {p}: cannot read it ({e.strerror}); pass an existing JSON / JSONL file or a "
            "datasets save_to_disk directory"
        ) from e
    return _read(str(p.resolve()), stamp)


@functools.lru_cache(maxsize=8)
def _read(path: str, _stamp: int) -> dict[str, Records]:
    p = Path(path)
    if p.is_dir():
        out = {}
        for split, rows in _read_dataset_dir(p).items():
            where = f"hotpotqa data {path}" + (f" (split {split})" if split else "")
            out[split] = Records(where, _convert(rows, where))
        return out
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise AgentDistillError(f"hotpotqa data file {path}: cannot read it ({e})") from e
    if p.suffix in (".jsonl", ".jsonlines"):
        records: Any = _json_lines(text, path, None)
    else:
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            records = _json_lines(text, path, e)  # Dataset.to_json writes JSON Lines, often named .json
    if not isinstance(records, list) or not records:
        raise AgentDistillError(
            f"hotpotqa data file {path}: expected a non-empty JSON list of questions (or JSON Lines), "
            f"got {type(records).__name__}"
        )
    where = f"hotpotqa data file {path}"
    return {"": Records(where, _convert(records, where))}


def _convert(records: list[Any], where: str) -> list[Any]:
    return [to_original(r, f"{where}: record {n}") for n, r in enumerate(records)]


def _json_lines(text: str, path: str, first_error: json.JSONDecodeError | None) -> list[Any]:
    """Parse ``text`` as JSON Lines; if its first line is not JSON either, report ``first_error`` (the
    whole-file error: the file is more likely broken JSON than JSON Lines)."""
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if lineno == 1 and first_error is not None:
                raise AgentDistillError(f"hotpotqa data file {path}: not valid JSON ({first_error})") from None
            raise AgentDistillError(f"hotpotqa data file {path}: line {lineno} is not valid JSON") from None
    return records


def _read_dataset_dir(p: Path) -> dict[str, list[dict[str, Any]]]:
    if not ((p / "dataset_dict.json").exists() or (p / "dataset_info.json").exists()):
        raise AgentDistillError(
            f"hotpotqa data {p}: a directory, but not one written by datasets' save_to_disk "
            "(no dataset_info.json or dataset_dict.json); pass that directory or a JSON / JSONL file"
        )
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"hotpotqa data {p} is a datasets save_to_disk directory; reading it needs the datasets package: "
            "pip install agentdistill[datasets]"
        ) from None
    loaded = datasets.load_from_disk(str(p))
    if isinstance(loaded, datasets.DatasetDict):
        return {split: loaded[split].to_list() for split in loaded}
    return {"": loaded.to_list()}


def to_original(record: Any, where: str) -> Any:
    """A Hugging Face ``hotpot_qa`` record in the original schema; anything else is returned as it is
    (``distractor.check_record`` reports what is wrong with it).

    Raises:
        AgentDistillError: a Hugging Face record whose ``supporting_facts`` or ``context`` column is
            not two lists of equal length; ``where`` names the file and record.
    """
    if not isinstance(record, dict) or "_id" in record or "id" not in record:
        return record
    out = {k: v for k, v in record.items() if k != "id"}
    out["_id"] = record["id"]
    for key, (a, b) in {"supporting_facts": ("title", "sent_id"), "context": ("title", "sentences")}.items():
        column = record.get(key)
        if isinstance(column, dict):
            left, right = column.get(a), column.get(b)
            if not (isinstance(left, list) and isinstance(right, list) and len(left) == len(right)):
                raise AgentDistillError(
                    f"{where}: {key!r} must be {{{a!r}: [...], {b!r}: [...]}} with lists of equal length "
                    "(the Hugging Face hotpot_qa layout)"
                )
            out[key] = [[x, y] for x, y in zip(left, right, strict=True)]
    return out

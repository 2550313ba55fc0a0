"""A local Wikipedia dump as the wiki every question searches: HotPotQA's full-wiki setting.

The dump is JSON Lines, one page per line, paragraphs separated by newlines::

    {"title": "Ed Wood", "text": "Edward Davis Wood Jr. (October 10, 1924 – December 10, 1978) was an American ...\\n..."}

It plugs into ``wiki.WikiBrowser`` like the local ``Wiki`` does, with the semantics of ReAct's
``wikienv.py``: a page's sentences are its non-empty paragraphs split at ". " (the full stop kept;
ReAct re-appends one, which doubles a paragraph's final full stop, and that quirk is left out), a
search shows the first five, a lookup walks the sentences that contain the keyword. A search whose
title resolves nowhere answers ``Could not find e. Similar: [...]`` with the five titles BM25
(``bm25s``) ranks best for ``e`` over all titles (Wikipedia's own search, which ReAct queried, ranks
its results by text relevance too); none when no title shares a word with ``e``.

The file is scanned once for its titles and the byte offset of each line; a page's text is read
when a search reaches it. A dump of all of English Wikipedia's abstracts (5 M pages, HotPotQA's
``enwiki-20171001-pages-meta-current-withlinks-abstracts``) needs a few GB of memory for the titles
and their BM25 index.
"""

import functools
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import bm25s
import numpy as np

from agentdistill.envs.hotpotqa.scoring import normalize_answer
from agentdistill.envs.hotpotqa.wiki import SIMILAR_TITLES
from agentdistill.errors import AgentDistillError

_SENTENCE_END = re.compile(r"(?<=\.) ")
_WORD = re.compile(r"\w+")


def split_sentences(text: str) -> tuple[str, ...]:
    """ReAct's sentences of a page: each non-empty paragraph split after every ". "."""
    out: list[str] = []
    for paragraph in text.split("\n"):
        out += [s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s.strip()]
    return tuple(out)


def _tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class _Pages(Mapping[str, tuple[str, ...]]):
    """Title -> sentences, read from the dump on demand (the last 4096 pages read are kept)."""

    def __init__(self, path: Path, offsets: dict[str, int]) -> None:
        self._path, self._offsets = path, offsets
        self.sentences = functools.lru_cache(maxsize=4096)(self._read)

    def _read(self, title: str) -> tuple[str, ...]:
        with self._path.open("rb") as f:
            f.seek(self._offsets[title])
            return split_sentences(json.loads(f.readline())["text"])

    def __getitem__(self, title: str) -> tuple[str, ...]:
        if title not in self._offsets:
            raise KeyError(title)
        return self.sentences(title)

    def __iter__(self) -> Iterator[str]:
        return iter(self._offsets)

    def __len__(self) -> int:
        return len(self._offsets)


class WikiDump:
    """The pages of a ``{title, text}`` JSON Lines dump, with ``Wiki``'s interface (``pages``,
    ``resolve``, ``similar``). When a title occurs twice, the first page wins.

    Raises:
        AgentDistillError: the file is missing, or a line is not a ``{"title": str, "text": str}`` object.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        offsets: dict[str, int] = {}
        try:
            with self.path.open("rb") as f:
                pos = 0
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        title = self._title(line, lineno)
                        offsets.setdefault(title, pos)
                    pos += len(line)
        except OSError as e:
            raise AgentDistillError(
                f"hotpotqa wiki dump {self.path}: cannot read it ({e.strerror}); pass a JSON Lines file of "
                '{"title": ..., "text": ...} pages'
            ) from None
        if not offsets:
            raise AgentDistillError(f"hotpotqa wiki dump {self.path}: no pages in it")
        self.pages = _Pages(self.path, offsets)
        self._titles = list(offsets)
        self._lower: dict[str, str] = {}
        self._normal: dict[str, str] = {}
        for title in self._titles:
            self._lower.setdefault(title.lower(), title)
            self._normal.setdefault(normalize_answer(title), title)
        self._bm25: bm25s.BM25 | None = None  # built on the first miss

    def _title(self, line: bytes, lineno: int) -> str:
        try:
            page = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            page = None
        if not (isinstance(page, dict) and isinstance(page.get("title"), str) and isinstance(page.get("text"), str)):
            raise AgentDistillError(
                f'hotpotqa wiki dump {self.path}: line {lineno} is not a {{"title": str, "text": str}} object'
            )
        return page["title"]

    def __len__(self) -> int:
        return len(self._titles)

    def resolve(self, query: str) -> str | None:
        """The title ``query`` names, or ``None``: exact, then case-insensitive, then normalised."""
        if query in self.pages:
            return query
        return self._lower.get(query.lower()) or self._normal.get(normalize_answer(query) or "\0")

    def similar(self, query: str, limit: int = SIMILAR_TITLES) -> list[str]:
        """Up to ``limit`` titles that BM25 ranks best for ``query`` (ties in dump order), none without a shared word."""
        tokens = _tokens(query)
        if not tokens:
            return []
        if self._bm25 is None:
            self._bm25 = bm25s.BM25()
            self._bm25.index([_tokens(t) for t in self._titles], show_progress=False)
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:limit]
        return [self._titles[i] for i in order if scores[i] > 0]


@functools.lru_cache(maxsize=2)
def load_dump(path: str, stamp: int) -> WikiDump:
    """The dump at ``path`` (``stamp``: its modification time, so an edited file is read again)."""
    return WikiDump(path)


def wiki_dump(path: str | Path) -> WikiDump:
    """``load_dump`` for ``path``, scanned once per process while the file is unchanged.

    Raises:
        AgentDistillError: the file is missing or malformed.
    """
    p = Path(path)
    try:
        stamp = p.stat().st_mtime_ns
    except OSError as e:
        raise AgentDistillError(f"hotpotqa wiki dump {p}: cannot read it ({e.strerror})") from None
    return load_dump(str(p.resolve()), stamp)

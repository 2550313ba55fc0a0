"""Invented words for the extra train shards of the embedded HotPotQA, so their names are new.

A model trained on the default pool alone memorises its few hundred surnames and title words and
then misspells unseen test names (``Search[Hunn Systems]`` for "Weber Systems"). Each extra train
shard (``corpus.build_train_shard``) draws its names from the default word lists plus several
hundred pronounceable invented words of its own ("Dravomel", "Keshwin"), so most of its entities
carry a name no other shard uses and an agent can only succeed by copying names from the text.
"""

import random

from agentdistill.envs.hotpotqa.corpus import BASE_WORDS, Words, plural

_ONSETS = (
    "b", "br", "c", "ch", "d", "dr", "f", "fl", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "pr", "qu", "r",
    "s", "sh", "sk", "t", "tr", "v", "w", "y", "z",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "rk", "nd", "st", "m", "v", "ck", "sh", "ll")
# Invented words never contain a Lookup keyword, so a keyword's first hit stays the fact it names.
# (These are the words of ``questions.KEYWORDS``; a test keeps the two in step.)
BANNED = (
    "directed", "released", "stars", "lead", "role", "born", "citizenship", "written", "founded", "headquarters",
    "formed", "started", "published", "by", "founding", "editor", "population", "located", "recorded",
)  # fmt: skip
# Invented words per shard, per list (the default lists hold 20-200 words each).
FRESH = {"first": 160, "surnames": 900, "city_a": 240, "firm": 200, "noun": 240, "novel_words": 160, "trades": 60,
         "band_noun": 120, "mag_noun": 120}  # fmt: skip


def invent(r: random.Random, syllables: int, coda: bool = True) -> str:
    """One capitalised pronounceable word of ``syllables`` consonant-vowel pairs (and a final coda)."""
    word = "".join(r.choice(_ONSETS) + r.choice(_VOWELS) for _ in range(syllables))
    return (word + (r.choice(_CODAS) if coda else "")).capitalize()


def _fresh(
    r: random.Random, n: int, known: set[str], syllables: tuple[int, ...] = (2, 3), coda: bool = True
) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        word = invent(r, r.choice(syllables), coda)
        if 4 <= len(word) <= 10 and word.lower() not in known and not any(b in word.lower() for b in BANNED):
            known.add(word.lower())
            out.append(word)
    return out


def fresh_words(seed: int, shard: int) -> Words:
    """The default word lists, each extended by ``FRESH`` invented words drawn for this shard."""
    r = random.Random(f"hotpotqa-words-{seed}-{shard}")
    base = BASE_WORDS
    known = {w.lower() for ws in (*base.first.values(), base.surnames, base.firm, base.noun) for w in ws}
    return Words(
        first={sex: names + _fresh(r, FRESH["first"], known) for sex, names in base.first.items()},
        surnames=base.surnames + _fresh(r, FRESH["surnames"], known),
        city_a=base.city_a + _fresh(r, FRESH["city_a"], known, (1, 2), coda=False),
        firm=base.firm + _fresh(r, FRESH["firm"], known),
        noun=base.noun + _fresh(r, FRESH["noun"], known),
        novel_words=base.novel_words + _fresh(r, FRESH["novel_words"], known, (1, 2)),
        trades=base.trades + _fresh(r, FRESH["trades"], known),
        band_noun=base.band_noun + [plural(w) for w in _fresh(r, FRESH["band_noun"], known, (2,))],
        mag_noun=base.mag_noun + _fresh(r, FRESH["mag_noun"], known),
    )

"""Encyclopedic page text for the synthetic corpus: one writer per entity kind.

A writer returns the sentences that state facts (``lead``, shown by a search; ``tail``, only
reachable by ``Lookup``) and a few filler sentences that state none. ``write_page`` lays them out
as lead, fillers, tail, so a tail fact always sits at sentence six or later. Fillers avoid the
words the lookups use ("directed", "born", "started", ...) so a lookup's first hit is the fact.
"""

import random
from collections.abc import Callable
from typing import Any

from agentdistill.envs.hotpotqa.wiki import SHOWN_SENTENCES

Row = tuple[str, tuple[str, ...]]  # (sentence, names of the facts it states)
Layout = tuple[list[Row], list[Row], list[str]]  # (lead, tail, fillers)
LATE = 0.25  # share of pages that hold one of their facts beyond the first five sentences
ORDINALS = ["debut", "second", "third", "fourth", "fifth"]


def an(words: str) -> str:
    """``words`` with its indefinite article: ``an("American actor")`` is ``"an American actor"``."""
    return f"an {words}" if words[0].lower() in "aeiou" else f"a {words}"


def _person(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    he, his = ("he", "his") if a["sex"] == "m" else ("she", "her")
    He, His = he.capitalize(), his.capitalize()
    nat_occ = an(f"{a['nationality']} {a['occupation']}")
    if late == 1:
        lead = [
            (f"{t} (born {a['born']}) is {an(a['occupation'])}.", ("born",)),
            (f"{He} was born in {a['city']}.", ("birthplace",)),
        ]
        tail = [(f"{He} holds {a['nationality']} citizenship.", ("nationality",))]
    elif late == 2:
        lead = [(f"{t} is {nat_occ}.", ("nationality",))]
        tail = [(f"{t} was born in {a['city']}, {a['country']}, in {a['born']}.", ("born", "birthplace"))]
    else:
        lead = [
            (f"{t} (born {a['born']}) is {nat_occ}.", ("nationality", "born")),
            (f"{He} was born in {a['city']}, {a['country']}.", ("birthplace",)),
        ]
        tail = []
    lead += [(s, ()) for s in links[:2]]
    tail += [(s, ()) for s in links[2:4]]
    fill = [
        f"{He} began {his} career in the {(a['born'] + 20) // 10 * 10}s.",
        f"{He} studied {r.choice(['history', 'music', 'law', 'philosophy', 'economics', 'painting'])} at university.",
        f"{His} work has been described as {r.choice(['restless', 'precise', 'playful', 'austere'])} and {r.choice(['warm', 'inventive', 'lyrical'])}.",
        f"{He} has received {r.randint(2, 9)} major awards.",
        f"{He} lives with {his} family in the countryside.",
        f"{He} is also a keen {r.choice(['sailor', 'chess player', 'gardener', 'cyclist', 'birdwatcher'])}.",
        f"{He} has taught master classes at several schools.",
    ]  # fmt: skip
    return lead, tail, fill


def _city(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    country, pop = (
        (f"{t} is a city in {a['country']}.", ("country",)),
        (f"It has a population of {a['population']:,}.", ("population",)),
    )
    if late == 1:
        lead, tail = (
            [country],
            [(f"According to the most recent census, {t} has a population of {a['population']:,}.", ("population",))],
        )
    elif late == 2:
        lead, tail = (
            [(f"{t} is a {r.choice(['market', 'port', 'university', 'cathedral'])} city.", ()), pop],
            [(f"{t} is located in {a['country']}.", ("country",))],
        )
    else:
        lead, tail = [country, pop], []
    fill = [
        f"The city lies on the {r.choice(['Lune', 'Arden', 'Wend', 'Tarn', 'Esk', 'Calder', 'Brent', 'Tamar'])} River.",
        f"{t} is known for its {r.choice(['textile mills', 'old harbour', 'botanical garden', 'railway museum'])}.",
        f"The local economy is based on {r.choice(['tourism', 'shipbuilding', 'agriculture', 'light industry', 'finance'])}.",
        f"The city hosts an annual {r.choice(['jazz', 'film', 'food', 'lantern'])} festival.",
        f"{t} received a town charter in {r.randint(1100, 1800)}.",
        f"Its old town contains several {r.choice(['fourteenth', 'fifteenth', 'sixteenth'])}-century churches.",
        "The city is served by a regional railway station.",
    ]  # fmt: skip
    return lead, tail, fill


def _company(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    full = (f"{t} is {an(a['industry'])} founded in {a['founded']} by {a['founder']}.", ("founded", "founder"))
    if late == 1:
        lead = [(f"{t} is {an(a['industry'])} headquartered in {a['city']}.", ("city",))]
        tail = [(f"{t} was founded in {a['founded']} by {a['founder']}.", ("founded", "founder"))]
    elif late == 2:
        lead, tail = [full], [(f"The company's headquarters are in {a['city']}.", ("city",))]
    else:
        lead, tail = [full, (f"It is headquartered in {a['city']}.", ("city",))], []
    fill = [
        f"The company employs about {r.randint(2, 90) * 100} people.",
        f"It expanded into {r.choice(['European', 'Asian', 'overseas'])} markets in the {min(a['founded'] + r.randint(5, 40), 2015) // 10 * 10}s.",
        "The company is privately held.",
        f"It operates {r.randint(2, 14)} regional offices.",
        f"Its logo, a stylised {r.choice(['bird', 'tree', 'star', 'wave'])}, was introduced in {min(a['founded'] + r.randint(0, 60), 2022)}.",
        "The firm has won several industry awards.",
        f"It sponsors a number of local {r.choice(['arts', 'sports', 'music'])} events.",
    ]  # fmt: skip
    return lead, tail, fill


def _magazine(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    kind = an(f"{a['freq']} {a['topic']}")
    intro, editor = (
        (f"{t} is {kind} magazine published by {a['publisher']}.", ("publisher",)),
        (f"Its founding editor was {a['editor']}.", ("editor",)),
    )
    if late == 1:
        lead, tail = [intro, editor], [(f"{t} was started in {a['started']}.", ("started",))]
    elif late == 2:
        lead = [(f"{t} is {kind} magazine that was started in {a['started']}.", ("started",)), editor]
        tail = [(f"The magazine is published by {a['publisher']}.", ("publisher",))]
    else:
        lead, tail = (
            [
                intro,
                (
                    f"It was started in {a['started']} with {a['editor']} as its founding editor.",
                    ("started", "editor"),
                ),
            ],
            [],
        )
    fill = [
        f"Its circulation peaked at about {r.randint(5, 400) * 1000:,} copies.",
        f"The magazine is known for its {r.choice(['long interviews', 'photo essays', 'annual awards', 'reader surveys'])}.",
        "It has featured contributions from many well-known writers.",
        f"Each issue runs to about {r.randint(4, 20) * 10} pages.",
        f"The magazine moved to a new format in {min(a['started'] + r.randint(3, 50), 2023)}.",
        f"It launched an online edition in {max(a['started'], 1995) + r.randint(1, 12)}.",
        "Its cover art is designed by a rotating group of illustrators.",
    ]  # fmt: skip
    return lead, tail, fill


def _film(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    dated, star = an(f"{a['year']} {a['genre']}"), (f"It stars {a['star']} in the lead role.", ("star",))
    if late == 1:
        lead, tail = (
            [(f"{t} is {dated} film.", ("year",)), star],
            [(f"The film was directed by {a['director']}.", ("director",))],
        )
    elif late == 2:
        lead = [(f"{t} is {an(a['genre'])} film directed by {a['director']}.", ("director",)), star]
        tail = [(f"{t} was released in {a['year']}.", ("year",))]
    else:
        lead, tail = [(f"{t} is {dated} film directed by {a['director']}.", ("year", "director")), star], []
    fill = [
        f"The film premiered at the {r.choice(['Lakeside', 'Riverside', 'Midsummer', 'Harborview'])} Film Festival.",
        f"It received {r.choice(['mixed', 'positive', 'generally favourable', 'poor'])} reviews from critics.",
        f"Principal photography took place over {r.randint(5, 16)} weeks.",
        f"The film grossed ${r.randint(2, 240)} million at the box office.",
        f"Its score was praised for its use of {r.choice(['strings', 'piano', 'synthesizers', 'brass'])}.",
        f"It was nominated for {r.randint(2, 9)} awards.",
        "Several scenes were shot at night to save money.",
    ]  # fmt: skip
    return lead, tail, fill


def _novel(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    dated = an(f"{a['year']} {a['genre']}")
    if late:
        lead, tail = [(f"{t} is {dated} novel.", ("year",))], [(f"It was written by {a['author']}.", ("author",))]
    else:
        lead, tail = [(f"{t} is {dated} novel by {a['author']}.", ("year", "author"))], []
    fill = [
        f"The novel was a {r.choice(['commercial', 'critical', 'modest'])} success.",
        f"It has been translated into {r.randint(3, 30)} languages.",
        f"The story is set in a small {r.choice(['fishing village', 'mining town', 'seaside resort', 'river port'])}.",
        "It was shortlisted for a national book award.",
        f"The novel is narrated by {r.choice(['a retired teacher', 'a young girl', 'a ship captain', 'an unnamed clerk'])}.",
        f"It runs to {r.randint(18, 70) * 10} pages in its first edition.",
        f"Critics praised its {r.choice(['spare', 'lush', 'witty', 'careful'])} prose.",
    ]  # fmt: skip
    return lead, tail, fill


def _band(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    formed = (f"The band was formed in {a['city']} in {a['formed']}.", ("city", "formed"))
    if late:
        lead, tail = [(f"{t} is {an(a['genre'])} band led by {a['member']}.", ())], [formed]
    else:
        lead = [(f"{t} is {an(a['genre'])} band formed in {a['city']} in {a['formed']}.", ("city", "formed"))]
        lead, tail = [*lead, (f"The band was founded by {a['member']}.", ())], []
    fill = [
        f"The band has released {max(2, a['albums'] + r.randint(0, 3))} studio albums.",
        f"Their music has been described as {r.choice(['brooding', 'joyful', 'noisy', 'delicate'])}.",
        f"The band toured extensively in the {a['formed'] // 10 * 10 + 10}s.",
        "The band's line-up has changed several times.",
        f"They went on hiatus in {a['formed'] + r.randint(5, 20)} before reuniting.",
        "The band is known for its energetic live shows.",
        "Their debut single was played widely on college radio.",
    ]  # fmt: skip
    return lead, tail, fill


def _album(t: str, a: dict[str, Any], links: list[str], late: int, r: random.Random) -> Layout:
    if late:
        lead = [(f"{t} is a studio album released in {a['year']}.", ("year",))]
        tail = [(f"The album was recorded by the band {a['band']}.", ("band",))]
    else:
        lead = [
            (f"{t} is the {ORDINALS[a['number']]} studio album by {a['band']}.", ("band",)),
            (f"It was released in {a['year']}.", ("year",)),
        ]
        tail = []
    fill = [
        f"It was produced over {r.randint(2, 14)} months.",
        f"The album received {r.choice(['mixed', 'positive', 'glowing'])} reviews.",
        f"It contains {r.randint(8, 16)} tracks.",
        f"The lead single reached number {r.randint(2, 40)} on the national chart.",
        "The cover photograph was taken by a friend of the band.",
        f"A deluxe edition appeared in {a['year'] + r.randint(5, 25)}.",
        f"Critics praised its {r.choice(['warm', 'sparse', 'glossy', 'raw'])} production.",
    ]  # fmt: skip
    return lead, tail, fill


WRITERS: dict[str, Callable[[str, dict[str, Any], list[str], int, random.Random], Layout]] = {
    "person": _person, "city": _city, "company": _company, "magazine": _magazine,
    "film": _film, "novel": _novel, "band": _band, "album": _album,
}  # fmt: skip


def write_page(
    kind: str, title: str, attrs: dict[str, Any], links: list[str], r: random.Random
) -> tuple[tuple[str, ...], dict[str, int]]:
    """The sentences of one page and, per fact name, the index of the sentence stating it.

    Args:
        kind: entity kind (a key of ``WRITERS``).
        title: page title.
        attrs: the entity's facts.
        links: "known for" sentences other entities contributed (a person's films, novels ...).
        r: the page's own random stream.
    """
    late = r.randrange(1, 3) if r.random() < LATE else 0  # 0: every fact up front; 1, 2: which fact waits
    lead, tail, fill = WRITERS[kind](title, attrs, links, late, r)
    r.shuffle(fill)
    pad = max(0, SHOWN_SENTENCES - len(lead)) + r.randint(0, 1) if tail else r.randint(1, 3)
    rows = lead + [(s, ()) for s in fill[:pad]] + tail + [(s, ()) for s in fill[pad : pad + r.randint(0, 2)]]
    return tuple(s for s, _ in rows), {name: i for i, (_, names) in enumerate(rows) for name in names}

"""The synthetic encyclopedia behind the embedded HotPotQA: entities, their facts, and their pages.

``build_world(seed)`` generates cities, people, companies, magazines, films, novels, bands and
albums in three disjoint pools (``train``, ``dev``, ``test``): an entity only links to entities of
its own pool, so questions of different splits share no entity. Each page is a title and a few
encyclopedic sentences; ``Entity.facts`` maps a fact name (``"director"``, ``"nationality"`` ...)
to the sentence that states it. About a quarter of the pages hold a fact after the fifth sentence,
where only ``Lookup`` reaches it. Deterministic in ``seed``.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentdistill.envs.hotpotqa.pages import write_page
from agentdistill.envs.hotpotqa.scoring import normalize_answer

POOLS = {"train": 1.0, "dev": 0.15, "test": 0.3}  # pool -> size relative to train
# Entities per pool at scale 1 ("publisher" are the publishing houses magazines name).
COUNTS = {
    "city": 90,
    "company": 240,
    "publisher": 60,
    "magazine": 240,
    "film": 300,
    "novel": 240,
    "band": 240,
    "album": 220,
}

# Word lists (data, so kept compact and out of the formatter's hands).
# fmt: off
COUNTRIES = [  # (country as written in a sentence, nationality)
    ("the United States", "American"), ("the United Kingdom", "British"), ("France", "French"),
    ("Germany", "German"), ("Italy", "Italian"), ("Spain", "Spanish"), ("Canada", "Canadian"),
    ("Australia", "Australian"), ("Japan", "Japanese"), ("Sweden", "Swedish"), ("Norway", "Norwegian"),
    ("Ireland", "Irish"), ("the Netherlands", "Dutch"), ("Brazil", "Brazilian"), ("Mexico", "Mexican"),
    ("Poland", "Polish"), ("Denmark", "Danish"), ("Argentina", "Argentine")
]
FIRST = {
    "m": [
        "James", "John", "Robert", "Michael", "William", "David", "Richard", "Thomas", "Charles", "Daniel",
        "Matthew", "Anthony", "Mark", "Paul", "Steven", "Andrew", "Kenneth", "George", "Edward", "Brian", "Ronald",
        "Timothy", "Jason", "Ryan", "Jacob", "Gary", "Nicholas", "Eric", "Jonathan", "Stephen", "Scott", "Frank",
        "Benjamin", "Gregory", "Samuel", "Raymond", "Patrick", "Alexander", "Jack", "Dennis", "Aaron", "Henry",
        "Adam", "Douglas", "Nathan", "Peter", "Walter", "Harold", "Carl", "Arthur", "Lawrence", "Victor", "Ralph",
        "Louis", "Philip", "Oscar", "Felix", "Hugo", "Martin", "Simon", "Leon", "Ivan"
    ],
    "f": [
        "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
        "Nancy", "Lisa", "Margaret", "Sandra", "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa",
        "Rebecca", "Laura", "Sharon", "Kathleen", "Amy", "Angela", "Helen", "Anna", "Brenda", "Nicole", "Ruth",
        "Katherine", "Samantha", "Christine", "Emma", "Catherine", "Virginia", "Rachel", "Janet", "Maria",
        "Heather", "Diane", "Julie", "Victoria", "Kelly", "Joan", "Evelyn", "Lauren", "Judith", "Olivia", "Martha",
        "Megan", "Andrea", "Hannah", "Claire", "Alice", "Clara", "Irene", "Vera", "Nora"
    ],
}
SURNAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor", "Moore",
    "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen",
    "King", "Wright", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner",
    "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Rogers", "Reed", "Cook",
    "Morgan", "Bell", "Murphy", "Bailey", "Cooper", "Richardson", "Cox", "Howard", "Ward", "Peterson", "Gray",
    "Watson", "Brooks", "Sanders", "Price", "Bennett", "Wood", "Barnes", "Ross", "Henderson", "Coleman", "Jenkins",
    "Perry", "Powell", "Long", "Patterson", "Hughes", "Butler", "Simmons", "Foster", "Bryant", "Russell",
    "Griffin", "Hayes", "Myers", "Ford", "Hamilton", "Graham", "Sullivan", "Wallace", "Cole", "West", "Owens",
    "Reynolds", "Fisher", "Ellis", "Harrison", "Gibson", "Marshall", "Wells", "Webb", "Tucker", "Porter", "Hunter",
    "Crawford", "Boyd", "Mason", "Kennedy", "Warren", "Dixon", "Burns", "Gordon", "Shaw", "Holmes", "Rice", "Hunt",
    "Black", "Palmer", "Mills", "Nichols", "Grant", "Knight", "Ferguson", "Stone", "Hawkins", "Dunn", "Hudson",
    "Spencer", "Gardner", "Payne", "Pierce", "Berry", "Arnold", "Wagner", "Willis", "Carroll", "Duncan", "Snyder",
    "Hart", "Bradley", "Lane", "Harper", "Riley", "Carpenter", "Weaver", "Elliott", "Lawson", "Fields", "Schmidt",
    "Wheeler", "Chapman", "Oliver", "Banks", "Meyer", "Bishop", "Morrison", "Hansen", "Harvey", "Burton",
    "Stanley", "Jacobs", "Reid", "Fuller", "Lynch", "Dean", "Larson", "Burke", "Fowler", "Hoffman", "Carlson",
    "Pearson", "Holland", "Fleming", "Jensen", "Hopkins", "Walters", "Curtis", "Lowe", "Barnett", "Graves",
    "Sutton", "Lucas", "Craig", "Fletcher", "Bates", "Hale", "Rhodes", "Beck", "Newman", "Dawson", "Norris",
    "Hardy", "Steele", "Barker", "Keller", "Weber", "Walsh", "Lyons", "Wolfe", "Benson", "Sharp", "Bowen"
]
ADJ = [
    "Silent", "Broken", "Golden", "Hidden", "Crimson", "Distant", "Endless", "Frozen", "Hollow", "Lonely",
    "Northern", "Painted", "Quiet", "Restless", "Scarlet", "Secret", "Shattered", "Silver", "Sleeping", "Burning",
    "Wandering", "Wild", "Winter", "Velvet", "Iron", "Glass", "Paper", "Electric", "Bitter", "Gentle", "Savage",
    "Pale", "Fading", "Rising", "Falling", "Forgotten", "Invisible", "Last", "Lost", "Bright", "Dark", "Hungry",
    "Southern", "Sunken"
]
NOUN = [
    "Harbor", "River", "Garden", "Mirror", "Kingdom", "Empire", "Horizon", "Lantern", "Orchard", "Island",
    "Valley", "Shadow", "Whisper", "Promise", "Voyage", "Frontier", "Tide", "Summer", "Autumn", "Crown", "Forest",
    "Castle", "Bridge", "Station", "Letter", "Highway", "Carnival", "Heart", "Storm", "Ocean", "Mountain",
    "Desert", "Circus", "Anthem", "Echo", "Compass", "Feather", "Engine", "Signal", "Window", "Canyon", "Meadow",
    "Lighthouse", "Orchestra", "Parade", "Requiem", "Sanctuary", "Labyrinth", "Paradise", "Citadel", "Monument",
    "Tower"
]
NOVEL_WORDS = [
    "Salt", "Ember", "Ash", "Bone", "Thorn", "Smoke", "Honey", "Stone", "Silk", "Rain", "Ink", "Dust", "Frost",
    "Wool", "Clay", "Bread", "Wine", "Amber", "Ivory", "Copper", "Marble", "Cinder", "Pepper", "Linen"
]
TRADES = [
    "Clockmaker", "Beekeeper", "Cartographer", "Gardener", "Ferryman", "Glassblower", "Weaver", "Astronomer",
    "Bookbinder", "Tailor", "Printer", "Falconer", "Harpist", "Locksmith", "Mapmaker"
]
KIN = [
    "Daughter", "Son", "Wife", "Apprentice", "Secret", "Widow", "Promise", "Journey", "Notebook", "Garden",
    "Shadow", "Ledger"
]
BAND_ADJ = [
    "Velvet", "Electric", "Neon", "Paper", "Glass", "Copper", "Static", "Cosmic", "Atomic", "Lunar", "Solar",
    "Wooden", "Radio", "Plastic", "Golden", "Crystal", "Midnight", "Sonic", "Hollow", "Violet"
]
BAND_NOUN = [
    "Engines", "Lanterns", "Wolves", "Pilots", "Ghosts", "Rockets", "Sparrows", "Tigers", "Saints", "Machines",
    "Giants", "Foxes", "Kites", "Horses", "Owls", "Ravens", "Comets", "Robots", "Echoes", "Anchors"
]
FIRM = [
    "Kestrel", "Falcon", "Heron", "Cedar", "Willow", "Granite", "Summit", "Beacon", "Meridian", "Pinnacle",
    "Northwind", "Bluestone", "Redwood", "Silverline", "Oakridge", "Ironbridge", "Starling", "Lark", "Osprey",
    "Juniper", "Maple", "Aspen", "Sterling", "Crescent", "Harrow", "Thistle"
]
INDUSTRIES = {
    "software company": ["Systems", "Software", "Technologies", "Labs"],
    "film studio": ["Pictures", "Studios", "Films"],
    "record label": ["Records", "Music"],
    "food company": ["Foods", "Brewing", "Bakeries"],
    "engineering firm": ["Industries", "Engineering", "Motors"],
    "publishing house": ["Publishing", "Press", "Media"],
}
HOBBY = {  # magazine title word -> topic
    "Angler": "fishing", "Gardener": "gardening", "Traveler": "travel", "Cyclist": "cycling",
    "Photographer": "photography", "Sailor": "sailing", "Architect": "architecture", "Collector": "antiques",
    "Gourmet": "food", "Naturalist": "nature", "Motorist": "motoring", "Climber": "climbing", "Golfer": "golf",
    "Rambler": "walking", "Woodworker": "woodworking", "Stargazer": "astronomy"
}
MAG_ADJ = [
    "Modern", "Practical", "Weekend", "Urban", "Coastal", "Amateur", "Complete", "Outdoor", "Weekly", "Monthly",
    "Country", "Northern", "Young", "Serious", "Everyday", "Working"
]
MAG_NOUN = [
    "Garden", "Harbor", "Frontier", "Compass", "Lantern", "Prairie", "Atlas", "Horizon", "Meridian", "Summit",
    "Ledger", "Almanac", "Beacon", "Observer", "Courier", "Chronicle", "Sentinel", "Gazette", "Spectator",
    "Herald", "Mercury", "Tribune", "Pilot", "Crossroads"
]
MAG_KIND = [
    "Review", "Journal", "Digest", "Monthly", "Quarterly", "Weekly", "Magazine"
]
CITY_A = [
    "Ash", "Bel", "Brook", "Clay", "Crest", "Dun", "East", "Elm", "Fair", "Glen", "Hart", "Hol", "Kings", "Lang",
    "Lin", "Mar", "Mill", "North", "Oak", "Pen", "Rad", "Red", "Ros", "Salt", "Stan", "Thorn", "Wal", "West",
    "Wick", "Wil", "Win", "Bram", "Car", "Dor", "Gal", "Hav", "Lor", "Mor", "Ren"
]
CITY_B = [
    "ford", "ton", "bury", "field", "ham", "wick", "mouth", "stead", "by", "dale", "holm", "haven", "port",
    "minster", "ville", "bridge", "burgh", "chester", "wood", "mere"
]
FILM_GENRES = [
    "drama", "comedy", "thriller", "science fiction", "horror", "crime", "war", "western", "fantasy", "mystery",
    "musical", "adventure", "animated"
]
BAND_GENRES = [
    "rock", "indie rock", "folk", "jazz", "punk", "synth-pop", "blues", "post-rock", "bluegrass", "heavy metal",
    "electronic", "soul"
]
NOVEL_GENRES = [
    "mystery", "historical", "science fiction", "fantasy", "crime", "coming-of-age", "gothic", "romance",
    "satirical", "adventure"
]
MAG_TOPICS = [
    "arts", "politics", "literary", "science", "business", "travel", "music", "fashion", "sports", "cooking"
]
OCCUPATION = {  # role -> (male, female) occupation
    "director": ("film director", "film director"),
    "actor": ("actor", "actress"),
    "author": ("novelist", "novelist"),
    "musician": ("musician", "singer-songwriter"),
    "founder": ("businessman", "businesswoman"),
    "editor": ("journalist", "editor"),
}
# fmt: on


@dataclass(frozen=True)
class Words:
    """The word lists names are drawn from; ``BASE_WORDS`` for the default pools, larger ones for train shards."""

    first: dict[str, list[str]]  # "m" | "f" -> first names
    surnames: list[str]
    city_a: list[str]  # first half of a city name ("Ash" + "ford")
    firm: list[str]
    noun: list[str]  # film and album titles
    novel_words: list[str]
    trades: list[str]
    band_noun: list[str]  # plural
    mag_noun: list[str]


BASE_WORDS = Words(FIRST, SURNAMES, CITY_A, FIRM, NOUN, NOVEL_WORDS, TRADES, BAND_NOUN, MAG_NOUN)


@dataclass
class Entity:
    """One page of the corpus: its kind, pool, facts (``attrs``) and, once built, its sentences."""

    kind: str
    title: str
    pool: str
    attrs: dict[str, Any]
    sentences: tuple[str, ...] = ()
    facts: dict[str, int] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)  # "known for" sentences added by the entities that name it


@dataclass
class World:
    """All entities by title, and the titles of each ``(pool, kind)`` (people also under ``(pool, role)``)."""

    entities: dict[str, Entity]
    index: dict[tuple[str, str], list[str]]

    def of(self, pool: str, kind: str) -> list[Entity]:
        return [self.entities[t] for t in self.index.get((pool, kind), [])]


def plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x", "o")):
        return noun + "es"
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2] not in "aeiou" else noun + "s"


class _Builder:
    """Generates one world; names are unique across all pools and ``taken`` (compared after normalisation)."""

    def __init__(self, rng_key: str, words: Words = BASE_WORDS, taken: set[str] | None = None) -> None:
        self.r = random.Random(rng_key)
        self.words = words
        self.world = World({}, {})
        self.taken: set[str] = set() if taken is None else taken

    def name(self, *patterns: Callable[[], str]) -> str:
        """A fresh name from one of ``patterns`` (each draws its words from ``self.r``)."""
        for _ in range(200):
            title = self.r.choice(patterns)()
            if normalize_answer(title) not in self.taken:
                self.taken.add(normalize_answer(title))
                return title
        raise RuntimeError("hotpotqa corpus: name space exhausted")  # a bug in the word lists, not user input

    def add(self, kind: str, title: str, pool: str, attrs: dict[str, Any], *also: str) -> Entity:
        """Register an entity under ``(pool, kind)`` and under each ``(pool, also)``."""
        entity = Entity(kind, title, pool, attrs)
        self.world.entities[title] = entity
        for key in (kind, *also):
            self.world.index.setdefault((pool, key), []).append(title)
        return entity

    def person(self, pool: str, role: str, born: tuple[int, int], reuse: float = 0.0) -> Entity:
        """A person of ``role`` born in the range; with probability ``reuse``, one that already exists."""
        r, vocab = self.r, self.words
        old = [e for e in self.world.of(pool, role) if born[0] <= e.attrs["born"] <= born[1]]
        if old and r.random() < reuse:
            return r.choice(old)
        sex = r.choice("mf")
        title = self.name(lambda: f"{r.choice(vocab.first[sex])} {r.choice(vocab.surnames)}")
        city = self.world.entities[r.choice(self.world.index[(pool, "city")])]
        country = city.attrs["country"]
        occupation = OCCUPATION[role][sex == "f"]
        attrs = {"sex": sex, "role": role, "born": r.randint(*born), "city": city.title, "country": country}
        return self.add(
            "person", title, pool, {**attrs, "nationality": dict(COUNTRIES)[country], "occupation": occupation}, role
        )

    def pool(self, pool: str, scale: float) -> None:
        """Generate one pool's entities; every link stays inside the pool."""
        r, vocab, n = self.r, self.words, {k: max(8, round(v * scale)) for k, v in COUNTS.items()}
        cities = [self.add("city", self.name(lambda: r.choice(vocab.city_a) + r.choice(CITY_B)), pool, {
            "country": r.choice(COUNTRIES)[0], "population": r.randint(150, 25000) * 100}).title for _ in range(n["city"])]  # fmt: skip
        for industry in [r.choice(list(INDUSTRIES)[:-1]) for _ in range(n["company"])] + ["publishing house"] * n[
            "publisher"
        ]:
            title = self.name(lambda i=industry: f"{r.choice(vocab.firm + vocab.surnames)} {r.choice(INDUSTRIES[i])}")
            year = r.randint(1880, 2010)
            founder = self.person(pool, "founder", (year - 60, year - 22))
            founder.links.append(f"{founder.title} founded {title} in {year}.")
            attrs = {"industry": industry, "founded": year, "founder": founder.title, "city": r.choice(cities)}
            self.add("company", title, pool, attrs, "publisher" if industry == "publishing house" else "firm")
        for _ in range(n["magazine"]):
            title = self.name(
                lambda: f"{r.choice(MAG_ADJ)} {r.choice(list(HOBBY))}",
                lambda: f"The {r.choice(vocab.mag_noun)} {r.choice(MAG_KIND)}",
                lambda: f"{r.choice(vocab.surnames)}'s {r.choice(MAG_KIND)}",
            )
            words = title.split()
            freqs = [w.lower() for w in words if w in ("Weekly", "Monthly", "Quarterly")]  # the title's word wins
            freq = freqs[0] if freqs else r.choice(["monthly", "weekly", "quarterly", "bimonthly"])
            year = r.randint(1870, 2012)
            editor = self.person(pool, "editor", (year - 55, year - 24))
            editor.links.append(f"{editor.title} was the founding editor of {title}.")
            publisher = r.choice(self.world.index[(pool, "publisher")])
            attrs = {"started": year, "publisher": publisher, "editor": editor.title, "freq": freq}
            self.add("magazine", title, pool, {**attrs, "topic": HOBBY.get(words[-1], r.choice(MAG_TOPICS))})
        for _ in range(n["film"]):
            title = self.name(
                lambda: f"The {r.choice(ADJ)} {r.choice(vocab.noun)}",
                lambda: f"{r.choice(vocab.noun)} of {plural(r.choice(vocab.noun))}",
                lambda: f"{r.choice(ADJ)} {r.choice(vocab.noun)}",
            )
            year = r.randint(1950, 2022)
            director = self.person(pool, "director", (year - 65, year - 25), reuse=0.35)
            star = self.person(pool, "actor", (year - 60, year - 18), reuse=0.25)
            director.links.append(f"{director.title} directed {title} ({year}).")
            star.links.append(f"{star.title} starred in {title} ({year}).")
            attrs = {"year": year, "genre": r.choice(FILM_GENRES), "director": director.title, "star": star.title}
            self.add("film", title, pool, attrs)
        for _ in range(n["novel"]):
            title = self.name(
                lambda: f"{r.choice(vocab.novel_words)} and {r.choice(vocab.novel_words)}",
                lambda: f"The {r.choice(vocab.trades)}'s {r.choice(KIN)}",
            )
            year = r.randint(1900, 2022)
            author = self.person(pool, "author", (year - 70, year - 21), reuse=0.3)
            author.links.append(f"{author.title} wrote the novel {title} ({year}).")
            self.add("novel", title, pool, {"year": year, "genre": r.choice(NOVEL_GENRES), "author": author.title})
        for _ in range(n["band"]):
            title = self.name(
                lambda: f"The {r.choice(BAND_ADJ)} {r.choice(vocab.band_noun)}",
                lambda: f"{r.choice(BAND_ADJ)} {r.choice(vocab.band_noun)}",
            )
            year = r.randint(1960, 2015)
            member = self.person(pool, "musician", (year - 30, year - 17))
            member.links.append(f"{member.title} co-founded the band {title} in {year}.")
            attrs = {"formed": year, "city": r.choice(cities), "genre": r.choice(BAND_GENRES), "member": member.title}
            self.add("band", title, pool, {**attrs, "albums": 0})
        bands = self.world.of(pool, "band")
        for _ in range(n["album"]):
            band = r.choice(bands)
            title = self.name(
                lambda: f"{r.choice(ADJ)} {plural(r.choice(vocab.noun))}",
                lambda: f"Songs from the {r.choice(vocab.noun)}",
                lambda: f"{r.choice(vocab.noun)} Sessions",
            )
            band.attrs["albums"] += 1
            attrs = {"band": band.title, "year": band.attrs["formed"] + r.randint(1, 12)}
            self.add("album", title, pool, {**attrs, "number": min(band.attrs["albums"], 5) - 1})


def _write_pages(world: World, seed: int) -> World:
    for e in world.entities.values():
        rng = random.Random(f"hotpotqa-page-{seed}-{e.title}")  # per page, so a page never depends on another's text
        e.sentences, e.facts = write_page(e.kind, e.title, e.attrs, e.links, rng)
    return world


def build_world(seed: int) -> World:
    """Generate every entity and page of the corpus for ``seed`` (pure and deterministic)."""
    builder = _Builder(f"hotpotqa-world-{seed}")
    for pool, scale in POOLS.items():
        builder.pool(pool, scale)
    return _write_pages(builder.world, seed)


def build_train_shard(seed: int, shard: int, words: Words, taken: set[str]) -> World:
    """An extra train pool (``shard`` >= 1) of the size of the default one, named from ``words``.

    Its titles avoid ``taken`` (normalised titles of the default world and of earlier shards), which
    it extends with its own, so a shard never names a dev or test entity.
    """
    builder = _Builder(f"hotpotqa-world-{seed}-train-shard-{shard}", words, taken)
    builder.pool("train", POOLS["train"])
    return _write_pages(builder.world, seed)

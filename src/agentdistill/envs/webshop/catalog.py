"""The generated WebShop catalog: five categories, six product types each, 16 products per type.

Products come in families of four near-duplicates (the WebShop distractors): a base product, one
with one attribute swapped, one with other option values, and one at about twice the price. Titles
spell out every attribute (``Kalora Long Lasting Aluminum Free Deodorant for Sensitive Skin``), so
what a product is can be read off the results list; the options show only on its item page.
"""

import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache

ATTRS_PER_PRODUCT = 3
FAMILIES_PER_TYPE = 4
_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UPPER = {"usb", "led", "uv", "spf", "gmo", "dpi", "c"}
_LOWER = {"for", "with", "and", "of"}


@dataclass(frozen=True)
class Dim:
    """One option dimension of a product type: its name, how an instruction says it, its values."""

    name: str
    phrase: str  # "{} scent" -> "bright citrus scent"
    values: tuple[str, ...]


@dataclass(frozen=True)
class ProductType:
    """A kind of product (``deodorant``); attributes starting "for "/"with " follow the noun."""

    category: str
    noun: str
    plural: bool
    attributes: tuple[str, ...]
    dims: tuple[Dim, ...]
    price: tuple[float, float]


@dataclass(frozen=True)
class Product:
    """One catalog item. ``attributes`` are canonical ("sensitive skin", not "for sensitive skin")."""

    asin: str
    category: str
    noun: str
    brand: str
    title: str
    price: float
    attributes: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]  # (dim, values) in display order
    description: str
    features: tuple[str, ...]
    reviews: tuple[str, ...]


@dataclass(frozen=True)
class Goal:
    """What an instruction asks for; built from a target product so that it can be satisfied."""

    category: str
    noun: str
    attributes: tuple[str, ...]  # canonical attribute names
    options: tuple[tuple[str, str], ...]  # (dim, value)
    price_cap: float
    target: str  # asin of the product the goal was built from
    instruction: str


def canonical(attribute: str) -> str:
    """``"for sensitive skin"`` -> ``"sensitive skin"``: the name the reward and the expert match on."""
    for lead in ("for ", "with "):
        if attribute.startswith(lead):
            return attribute[len(lead) :]
    return attribute


def is_suffix(attribute: str) -> bool:
    """Whether the attribute is written after the noun ("deodorant for sensitive skin")."""
    return attribute.startswith(("for ", "with "))


def normalize(text: str) -> str:
    """Lowercase words and numbers joined by single spaces (punctuation dropped, "3.0" kept)."""
    return " ".join(re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower()))


def _t(category: str, noun: str, attrs: str, dims: tuple[Dim, ...], price: tuple[float, float]) -> ProductType:
    return ProductType(category, noun, noun.endswith("s"), tuple(attrs.split(", ")), dims, price)


def _d(name: str, phrase: str, values: str) -> Dim:
    return Dim(name, phrase, tuple(values.split(", ")))


_COLOR = "{} color"
BRANDS: dict[str, tuple[str, ...]] = {
    "beauty": ("Aveline", "Norwick", "Solvane", "Brightwell", "Kalora", "Miravel", "Ostrea", "Pellora"),
    "fashion": ("Halvern", "Corvo", "Stitchby", "Marlowe", "Tessaro", "Quillan", "Ardent", "Vellum"),
    "food": ("Harvest Lane", "Greenfold", "Old Mill", "Pantry Co", "Sunvale", "Brookside", "Terrace", "Meadowlark"),
    "electronics": ("Voltix", "Lumora", "Kestrel", "Nexon", "Auralis", "Tarvo", "Zentric", "Helio"),
    "home": ("Hearthly", "Oakmere", "Linden", "Nestwell", "Calder", "Stonebrook", "Pinecrest", "Willowby"),
}
# fmt: off
PRODUCT_TYPES: tuple[ProductType, ...] = (
    _t("beauty", "deodorant", "long lasting, aluminum free, for sensitive skin, paraben free, natural ingredients, cruelty free",
       (_d("size", "{} size", "2.6 ounce, 5 ounce, 12 ounce, twin pack, travel kit"),
        _d("scent", "{} scent", "bright citrus, calming lavender, fresh coconut, unscented, cedar and sage")), (6, 28)),
    _t("beauty", "shampoo", "sulfate free, for dry hair, color safe, anti dandruff, volumizing, silicone free",
       (_d("size", "{} size", "8.5 fl oz, 16.9 fl oz, 33.8 fl oz, refill pouch"),
        _d("scent", "{} scent", "argan oil, tea tree, coconut milk, rosemary mint, fragrance free")), (7, 32)),
    _t("beauty", "face moisturizer", "for oily skin, oil free, with spf 30, hyaluronic acid, fragrance free, non comedogenic",
       (_d("size", "{} size", "1.7 ounce, 3.4 ounce, 6 ounce, trial jar"),), (9, 45)),
    _t("beauty", "lipstick", "long lasting, matte finish, moisturizing, cruelty free, waterproof, vegan",
       (_d("color", _COLOR, "ruby red, nude pink, berry, coral, deep plum"),
        _d("count", "{}", "single tube, set of 3")), (5, 24)),
    _t("beauty", "nail polish", "quick dry, chip resistant, non toxic, gel effect, long lasting, vegan",
       (_d("color", _COLOR, "cherry red, pastel pink, navy, glitter gold, classic white"),
        _d("count", "{}", "single bottle, pack of 6")), (4, 19)),
    _t("beauty", "hair dryer", "ionic, lightweight, fast drying, with diffuser, low noise, foldable",
       (_d("color", _COLOR, "black, rose gold, white, pink, purple"),), (19, 90)),
    _t("fashion", "running shoes", "lightweight, breathable, non slip, memory foam, for wide feet, cushioned",
       (_d("size", "size {}", "7, 8.5, 10, 11.5, 13"),
        _d("color", _COLOR, "black, white, navy, grey, red")), (29, 95)),
    _t("fashion", "walking shoes", "laceless, arch support, orthopedic, non slip, lightweight, for women",
       (_d("size", "size {}", "6, 7.5, 9, 10.5, 12"),
        _d("color", _COLOR, "beige, black, brown, white, blue")), (25, 85)),
    _t("fashion", "rain jacket", "waterproof, hooded, packable, windproof, with zipper pockets, lightweight",
       (_d("size", "{} size", "small, medium, large, x-large"),
        _d("color", _COLOR, "olive green, black, navy, yellow, red")), (24, 110)),
    _t("fashion", "t-shirt", "cotton, slim fit, short sleeve, crew neck, machine wash, moisture wicking",
       (_d("size", "{} size", "small, medium, large, x-large"),
        _d("color", _COLOR, "white, black, heather grey, navy, olive")), (8, 30)),
    _t("fashion", "backpack", "water resistant, laptop compartment, anti theft, lightweight, with usb charging port, large capacity",
       (_d("color", _COLOR, "black, grey, navy, camo, pink"),), (18, 75)),
    _t("fashion", "sunglasses", "polarized, uv protection, lightweight, for men, oversized, scratch resistant",
       (_d("color", _COLOR, "black, tortoise, gold, silver, blue mirror"),), (9, 60)),
    _t("food", "green tea", "organic, decaf, non gmo, individually wrapped, loose leaf, gluten free",
       (_d("flavor", "{} flavor", "jasmine, mint, lemon ginger, matcha, original"),
        _d("count", "{}", "20 count, 100 count, pack of 6")), (5, 26)),
    _t("food", "black tea", "organic, decaf, fair trade, non gmo, loose leaf, kosher",
       (_d("flavor", "{} flavor", "earl grey, english breakfast, chai spice, vanilla, lemon"),
        _d("count", "{}", "20 count, 100 count, pack of 6")), (5, 26)),
    _t("food", "protein bars", "gluten free, low sugar, high protein, keto friendly, plant based, non gmo",
       (_d("flavor", "{} flavor", "chocolate peanut butter, cookie dough, salted caramel, blueberry, mint chocolate"),
        _d("count", "{}", "12 count, pack of 4 boxes")), (12, 45)),
    _t("food", "coffee beans", "organic, dark roast, medium roast, fair trade, low acid, single origin",
       (_d("size", "{} size", "12 ounce, 2 pound, 5 lb bag"),), (9, 48)),
    _t("food", "olive oil", "extra virgin, cold pressed, organic, non gmo, kosher, first harvest",
       (_d("size", "{} size", "500 ml, 1 liter, 1 gallon, pack of 2"),), (8, 55)),
    _t("food", "trail mix", "gluten free, no added sugar, vegan, high protein, individually wrapped, kosher",
       (_d("flavor", "{} flavor", "tropical, dark chocolate, sweet and salty, honey nut, cranberry"),
        _d("size", "{} size", "8 ounce, 26 ounce, pack of 12")), (6, 30)),
    _t("electronics", "earbuds", "wireless, noise cancelling, waterproof, with charging case, long battery life, bluetooth 5.3",
       (_d("color", _COLOR, "black, white, navy, rose gold, midnight green"),), (19, 120)),
    _t("electronics", "phone charger", "fast charging, usb c, foldable plug, dual port, compact, with cable",
       (_d("color", _COLOR, "white, black"),
        _d("length", "{} cable", "3 ft, 6 ft, 10 ft")), (9, 40)),
    _t("electronics", "phone case", "shockproof, slim, with kickstand, magsafe compatible, card holder, for iphone 15",
       (_d("color", _COLOR, "black, navy blue, lavender, forest green, pink"),), (7, 35)),
    _t("electronics", "bluetooth speaker", "portable, waterproof, with deep bass, long battery life, wireless, outdoor",
       (_d("color", _COLOR, "black, blue, red, teal, grey"),), (19, 130)),
    _t("electronics", "usb flash drive", "high speed, usb 3.0, metal casing, waterproof, with keychain, dual connector",
       (_d("capacity", "{} capacity", "32gb, 64gb, 128gb, 256gb"),), (6, 45)),
    _t("electronics", "mouse", "wireless, ergonomic, silent click, rechargeable, for gaming, adjustable dpi",
       (_d("color", _COLOR, "black, white, grey, pink, blue"),), (9, 70)),
    _t("home", "bath towels", "quick dry, highly absorbent, cotton, oversized, machine washable, hotel quality",
       (_d("color", _COLOR, "white, grey, navy, sage green, beige"),
        _d("size", "{}", "pair, set of 4, 6 piece bundle")), (15, 70)),
    _t("home", "scented candle", "long lasting, soy wax, non toxic, hand poured, for aromatherapy, wooden wick",
       (_d("scent", "{} scent", "vanilla, lavender, sea salt, sandalwood, fresh linen"),
        _d("size", "{} size", "8 ounce, 14 ounce, 3 pack")), (8, 40)),
    _t("home", "throw blanket", "fleece, machine washable, lightweight, oversized, for couch, reversible",
       (_d("color", _COLOR, "grey, cream, navy, mustard, blush pink"),
        _d("size", "{}", "throw size, twin size, queen size")), (15, 65)),
    _t("home", "storage bins", "collapsible, with lids, stackable, fabric, with handles, clear plastic",
       (_d("color", _COLOR, "grey, beige, black, white, navy"),
        _d("count", "{}", "pack of 3, set of 6")), (12, 50)),
    _t("home", "coffee mug", "ceramic, microwave safe, dishwasher safe, insulated, with lid, large",
       (_d("color", _COLOR, "white, black, matte blue, sage, terracotta"),
        _d("size", "{} size", "8 ounce, 14 ounce, 20 ounce")), (7, 35)),
    _t("home", "desk lamp", "led, dimmable, with usb port, touch control, eye caring, adjustable arm",
       (_d("color", _COLOR, "black, white, silver, wood grain"),), (15, 70)),
)
# fmt: on
CATEGORIES: tuple[str, ...] = tuple(BRANDS)
TYPES_BY_NOUN: dict[str, ProductType] = {t.noun: t for t in PRODUCT_TYPES}
_BLURBS = {
    "beauty": "Dermatologist tested and made for everyday personal care.",
    "fashion": "Comfortable, durable and made for everyday wear.",
    "food": "Packed fresh and sealed for lasting flavor.",
    "electronics": "Backed by a one year warranty and friendly support.",
    "home": "Built to make everyday life at home a little easier.",
}
_FEATURE_TAILS = ("tested for everyday use", "a customer favorite", "made to high standards", "quality you can feel")
_REVIEWS = (
    "Exactly as described, I would buy this {noun} again.",
    "Good value for the price, the {noun} arrived quickly.",
    "Works well so far. Packaging could be better.",
    "My second {noun} from {brand}, still happy with it.",
    "Nice quality, but it took a while to arrive.",
)


def describe(noun: str, attributes: tuple[str, ...]) -> str:
    """``"long lasting, aluminum free deodorant for sensitive skin"`` from canonical attribute names."""
    surface = {canonical(a): a for a in TYPES_BY_NOUN[noun].attributes}
    pre = [surface[a] for a in attributes if not is_suffix(surface[a])]
    post: list[str] = []
    for a in (surface[a] for a in attributes if is_suffix(surface[a])):
        lead, rest = a.split(" ", 1)
        if post and post[-1].startswith(lead + " "):
            post[-1] += f" and {rest}"  # "with lids and handles"
        else:
            post.append(a)
    return " ".join([", ".join(pre), noun, *post]).strip()


def option_phrase(noun: str, dim: str, value: str) -> str:
    """How an instruction names an option: ``"bright citrus scent"``, ``"size 8.5"``."""
    return next(d.phrase for d in TYPES_BY_NOUN[noun].dims if d.name == dim).format(value)


def title_case(text: str) -> str:
    """Amazon-style title casing: "with usb port" -> "with USB Port"."""
    words = text.split()
    return " ".join(w if w in _LOWER else w.upper() if w in _UPPER else w[:1].upper() + w[1:] for w in words)


def _title(brand: str, ptype: ProductType, attributes: tuple[str, ...]) -> str:
    pre = [a for a in attributes if not is_suffix(a)]
    post = [a for a in attributes if is_suffix(a)]
    return title_case(" ".join([brand, *pre, ptype.noun, *post])).replace("T-shirt", "T-Shirt")


def _product(
    rng: random.Random,
    asin: str,
    brand: str,
    ptype: ProductType,
    attributes: tuple[str, ...],
    options: tuple[tuple[str, tuple[str, ...]], ...],
    price: float,
) -> Product:
    title = _title(brand, ptype, attributes)
    names = [canonical(a) for a in attributes]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    dims = " ".join(f"Available {d}: {', '.join(v)}." for d, v in options)
    description = f"{title}. This {ptype.noun} is {listed}. {_BLURBS[ptype.category]} {dims}"
    features = tuple(f"{title_case(n)}: {rng.choice(_FEATURE_TAILS)}" for n in names) + (f"Brand: {brand}",)
    picks = rng.sample(range(len(_REVIEWS)), 2)
    stars = (rng.choice((4, 5)), rng.choice((3, 4, 5)))
    reviews = tuple(
        f"{s} stars: {_REVIEWS[i].format(noun=ptype.noun, brand=brand)}" for s, i in zip(stars, picks, strict=True)
    )
    return Product(
        asin, ptype.category, ptype.noun, brand, title, price, tuple(names), options, description, features, reviews
    )


def _options(rng: random.Random, ptype: ProductType) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for dim in ptype.dims:
        k = min(len(dim.values), 3 if len(dim.values) > 3 else 2)
        idx = sorted(rng.sample(range(len(dim.values)), k))  # keep the pool's natural order (sizes ascending)
        out.append((dim.name, tuple(dim.values[i] for i in idx)))
    return tuple(out)


def _price(rng: random.Random, lo: float, hi: float) -> float:
    return math.floor(rng.uniform(lo, hi)) + rng.choice((0.49, 0.95, 0.99, 0.5, 0.0, 0.89))


def _asin(rng: random.Random, taken: set[str]) -> str:
    while (asin := "B0" + "".join(rng.choices(_ID_CHARS, k=8))) in taken:
        pass
    taken.add(asin)
    return asin


def build_catalog(seed: int, shard: int = 0) -> tuple[Product, ...]:
    """Generate the catalog for ``seed`` (480 products, deterministic, not cached).

    ``shard`` 0 is the catalog every split searches; shard ``k`` >= 1 is a fresh catalog of the
    same shape for extra train tasks (``tasks.task_set``), whose ASINs differ from every earlier shard's.
    """
    rng = random.Random(f"webshop-catalog-{seed}" if shard == 0 else f"webshop-catalog-{seed}-shard-{shard}")
    taken: set[str] = {p.asin for k in range(shard) for p in catalog(seed, k)}
    products = []
    for ptype in PRODUCT_TYPES:
        for _ in range(FAMILIES_PER_TYPE):
            brands = rng.sample(BRANDS[ptype.category], 4)
            attrs = tuple(rng.sample(ptype.attributes, ATTRS_PER_PRODUCT))
            options = _options(rng, ptype)
            price = _price(rng, *ptype.price)
            # one attribute swapped for one the base lacks
            swapped = list(attrs)
            swapped[rng.randrange(len(swapped))] = rng.choice([a for a in ptype.attributes if a not in attrs])
            # other option values: redraw until at least one dimension differs
            other = _options(rng, ptype)
            while other == options and any(len(d.values) > 2 for d in ptype.dims):
                other = _options(rng, ptype)
            pricier = round(price * rng.uniform(1.8, 2.4), 2)
            members = (
                (attrs, options, price),
                (tuple(swapped), options, _price(rng, *ptype.price)),
                (tuple(rng.sample(attrs, len(attrs))), other, price + rng.choice((-1, 1, 2))),
                (tuple(rng.sample(attrs, len(attrs))), options, pricier),
            )
            for brand, (a, o, p) in zip(brands, members, strict=True):
                products.append(_product(rng, _asin(rng, taken), brand, ptype, a, o, round(max(p, 1.99), 2)))
    rng.shuffle(products)  # search breaks score ties by catalog order: no member of a family always comes first
    return tuple(products)


@lru_cache(maxsize=128)
def catalog(seed: int, shard: int = 0) -> tuple[Product, ...]:
    """The catalog of ``seed`` (``shard`` > 0: an extra train catalog), built once per process."""
    return build_catalog(seed, shard)

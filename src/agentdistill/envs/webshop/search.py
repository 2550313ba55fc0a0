"""BM25 search over the catalog (``bm25s``), one index per seed.

A product's document is its title, category and feature lines. Ranking sorts by
score and breaks ties by catalog order, so a query always returns the same 50 results.
"""

import re
from dataclasses import dataclass
from functools import lru_cache

import bm25s
import numpy as np

from agentdistill.envs.webshop.catalog import Product, catalog

NUM_RESULTS = 50
RESULTS_PER_PAGE = 10
# Filler of instructions and queries; kept as a string (one split at import) to stay readable.
_FILLER = (
    "a an and are as at be by for from i im in is it me my need of on or that the this to with want would like "
    "looking find buy can you please price lower than dollars am m s"
)
_STOPWORDS = frozenset(_FILLER.split())


def tokenize(text: str) -> list[str]:
    """Lowercase words and numbers ("usb 3.0" -> ["usb", "3.0"]), English filler words dropped."""
    return [w for w in re.findall(r"[a-z0-9]+(?:\.[0-9]+)?", text.lower()) if w not in _STOPWORDS]


def document(product: Product) -> str:
    """The text a product is indexed under: title, category and feature lines.

    Option values are left out, as most of them (colors, sizes) are not in WebShop's titles
    either: a product of the right kind may lack the wanted option, and only its item page tells.
    """
    return " ".join([product.title, product.category, *product.features])


@dataclass
class SearchIndex:
    """A BM25 index over ``products``; ``search`` returns asins, best first."""

    products: tuple[Product, ...]
    retriever: bm25s.BM25

    def search(self, query: str, k: int = NUM_RESULTS) -> list[str]:
        """The ``k`` best asins for ``query`` (always ``k``, zero-score ones in catalog order)."""
        tokens = tokenize(query)
        if tokens:
            scores = self.retriever.get_scores(tokens)
        else:
            scores = np.zeros(len(self.products))
        order = np.argsort(-scores, kind="stable")[:k]
        return [self.products[i].asin for i in order]


def build_index(products: tuple[Product, ...]) -> SearchIndex:
    """Index ``products`` with BM25 (Lucene variant, bm25s defaults)."""
    retriever = bm25s.BM25()
    retriever.index([tokenize(document(p)) for p in products], show_progress=False)
    return SearchIndex(products, retriever)


@lru_cache(maxsize=128)
def search_index(seed: int, shard: int = 0) -> SearchIndex:
    """The index of the catalog of ``seed`` (and ``shard``, see ``catalog``), built once per process."""
    return build_index(catalog(seed, shard))

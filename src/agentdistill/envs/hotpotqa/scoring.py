"""HotPotQA answer scoring: SQuAD normalisation, exact match and token F1.

Follows the official ``hotpot_evaluate_v1.py``: answers are lower-cased, stripped of punctuation and
of the articles a/an/the, and whitespace is collapsed before comparing. F1 is 0 whenever one side
is a yes/no/noanswer answer and the two differ, so "yes" never earns partial credit against "no".
"""

import re
import string
from collections import Counter

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# Answers that are scored all-or-nothing by F1 (HotPotQA's comparison answers and its null answer).
_SPECIAL = frozenset({"yes", "no", "noanswer"})


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation, drop articles, collapse whitespace.

    Args:
        text: a predicted or gold answer.

    Returns:
        The normalised answer, e.g. ``"The  Beatles!"`` -> ``"beatles"``.
    """
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> bool:
    """Whether the two answers are equal after ``normalize_answer``."""
    return normalize_answer(prediction) == normalize_answer(gold)


def f1_score(prediction: str, gold: str) -> float:
    """HotPotQA's token-level F1 between a prediction and the gold answer.

    Args:
        prediction: the agent's answer.
        gold: the reference answer.

    Returns:
        F1 in [0, 1] over the bags of normalised tokens; 0.0 when either normalised answer is
        ``yes``/``no``/``noanswer`` and they differ, or when no token is shared.
    """
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)

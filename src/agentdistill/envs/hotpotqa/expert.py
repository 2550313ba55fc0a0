"""The HotPotQA oracle: the next ReAct thought and action, from what the transcript has shown.

For each hop of the task in order, it searches the page, and if the needed sentence was not among
the five a search shows, looks it up; once every needed sentence has been shown it finishes with
the answer. Whether a sentence "has been shown" comes from the browser's record of observations, so
the expert never acts on a fact the transcript does not hold, and it recovers from any state an
agent left (a wrong page, a spent lookup). Thoughts follow ReAct's HotPotQA prompt and their
wording is picked from a few variants by a hash of the task id, so it is stable across runs.
"""

import zlib

from agentdistill.envs.hotpotqa.tasks import Hop, Task
from agentdistill.envs.hotpotqa.wiki import WikiBrowser

SEARCH_NEXT = (
    "{said}. I need to search {title} next and find {seek}.",
    "{said}. Next, I need to search {title} to find {seek}.",
    "{said}. So I need to search {title} and find {seek}.",
)
SEARCH_NEXT_SAID = ("{said}. I need to search {title} next.", "{said}. Now I need to search {title}.")
SEARCH_NEXT_PLAIN = ("I need to search {title} next.", "Now I need to search {title}.")
SEARCH_AGAIN = ("I need to search {title}.", "I should search {title} to continue.")
LOOKUP = (
    "The first paragraph of {title} does not mention {seek}. I need to look up {keyword}.",
    "It does not mention {seek}. So I need to look up {keyword}.",
    "{title} does not mention {seek} in its first sentences. Let me look up {keyword}.",
)
LOOKUP_PLAIN = (
    "The first paragraph of {title} does not have what I need. I need to look up {keyword}.",
    "I need to look up {keyword} on the {title} page.",
)


def pick(variants: tuple[str, ...], task_id: str, slot: str) -> str:
    """One of ``variants``, fixed by ``task_id`` and ``slot`` (a stable hash, not Python's ``hash``)."""
    return variants[zlib.crc32(f"{task_id}/{slot}".encode()) % len(variants)]


def _shown(hop: Hop, browser: WikiBrowser) -> bool:
    if hop.fact < 0:
        return hop.title in browser.visited
    return (hop.title, hop.fact) in browser.seen


def expert_step(task: Task, browser: WikiBrowser) -> tuple[str, str]:
    """The oracle's ``(thought, action)`` for ``task`` in the state ``browser`` is in.

    Args:
        task: the current task, with its hops.
        browser: the episode's wiki state (current page, lookup cursor, sentences shown so far).

    Returns:
        ``(thought, action)``, the action one of ``Search[title]``, ``Lookup[keyword]``,
        ``Finish[answer]``.
    """
    for i, hop in enumerate(task.hops):
        if _shown(hop, browser):
            continue
        spent = browser.keyword == hop.keyword and browser.cursor > 0  # this lookup already ran past the fact
        if browser.page != hop.title or not hop.keyword or spent:
            return _search_thought(task, i, browser), f"Search[{hop.title}]"
        variants = LOOKUP if hop.seek else LOOKUP_PLAIN
        thought = pick(variants, task.id, f"lookup{i}").format(title=hop.title, seek=hop.seek, keyword=hop.keyword)
        return thought, f"Lookup[{hop.keyword}]"
    return pick(task.conclusion, task.id, "finish"), f"Finish[{task.answer}]"


def _search_thought(task: Task, i: int, browser: WikiBrowser) -> str:
    hop = task.hops[i]
    if i == 0 and not browser.visited:
        return pick(task.plan, task.id, "plan")
    previous = task.hops[i - 1] if i > 0 else None
    if previous is None or previous.title == hop.title or hop.title in browser.visited:
        return pick(SEARCH_AGAIN, task.id, f"again{i}").format(title=hop.title)
    variants = (SEARCH_NEXT if hop.seek else SEARCH_NEXT_SAID) if previous.statement else SEARCH_NEXT_PLAIN
    return pick(variants, task.id, f"search{i}").format(said=previous.statement, title=hop.title, seek=hop.seek)
